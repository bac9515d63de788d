"""Sweep throughput: points per minute for a local process pool and a Dask LocalCluster.

Run: ``python benchmarks/bench_sweep.py [--points 100] [--workers 2] [--no-dask | --only dask]``.

Workload (issue 9): the SCRec model with its default parameters (the ``screc:`` spec) on a ~1 M-lookup trace -- Zipf(1.1), 8 tables x
1 M rows, dim 64, batch 512, pooling 20, 12 batches = 983,040 lookups, seed 0 -- swept over
``screc.n_devices`` x ``screc.tt_rank`` x ``screc.ddr_fraction`` (the first ``--points`` of the
5 x 4 x 5 = 100-point grid). Each mode starts from an empty results folder. Prints, per mode, the
wall time, points/min and the mean time per point per worker (wall x workers / points);
one run per mode (a 100-point sweep takes minutes), so no median.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from simrec.explore import expand_points, parse_spec, run_sweep
from simrec.trace.generate import gen_zipf


def _spec(trace: Path, points: int) -> dict:
    return {
        "name": "bench",
        "systems": ["screc:"],
        "traces": [str(trace)],
        "parameters": {
            "screc.n_devices": [1, 2, 4, 8, 16],
            "screc.tt_rank": [4, 8, 16, 32],
            "screc.ddr_fraction": [0.0, 0.25, 0.5, 0.75, 1.0],
        },
        "sample": {"kind": "random", "n": points, "seed": 0} if points < 100 else "grid",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--only", choices=["local", "dask"], default=None, help="run one mode")
    ap.add_argument("--quick", action="store_true", help="12 points, both modes")
    args = ap.parse_args()
    if args.quick:
        args.points = 12
    with tempfile.TemporaryDirectory() as d:
        trace = Path(d) / "zipf.trc"
        gen_zipf(trace, tables=8, rows=1_000_000, dim=64, alpha=1.1, batches=12, pooling=20)
        spec = parse_spec(_spec(trace, args.points))
        n = len(expand_points(spec))
        modes = ["local"] + ([] if args.no_dask else ["dask"])
        if args.only:
            modes = [args.only]
        for mode in modes:
            out = Path(d) / f"{mode}.parquet"
            t0 = time.perf_counter()
            if mode == "local":
                df, counts = run_sweep(spec, out, workers=args.workers, progress=False)
            else:
                from dask.distributed import LocalCluster

                with LocalCluster(
                    n_workers=args.workers, threads_per_worker=1, dashboard_address=None
                ) as cl:
                    df, counts = run_sweep(
                        spec, out, scheduler=cl.scheduler_address, progress=False
                    )
            wall = time.perf_counter() - t0
            assert counts["run"] == n and counts["errors"] == 0, counts
            per_point = wall * args.workers / n  # one run per mode: a mean, not a median
            print(
                f"{mode:5s}  {n} points  {args.workers} workers  wall {wall:7.1f} s  "
                f"{60 * n / wall:6.1f} points/min  mean {per_point:.2f} s/point/worker  "
                f"{int(df.pareto.sum())} Pareto"
            )


if __name__ == "__main__":
    main()
