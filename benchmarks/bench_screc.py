"""SCRec system simulation speed: simulated lookups per wall-clock second (default fast mode).

Run: ``python benchmarks/bench_screc.py [--lookups 8000000] [--repeat 3]``. Prints medians.
``--quick`` (CI) runs 1 M lookups, 1 repeat: a smoke run that finishes in seconds.

Workload: a Zipf(1.05) trace (``simrec.trace.generate.gen_zipf``) of 64 tables x 1 M rows, dim 64
fp32, batch 8192, pooling 4, seed 3; the SCRec system with 4 SmartSSDs, 1 % of each device's DDR4
for rows (so every tier, TT and the NAND path are exercised), default plan. Reported separately:
the placement (statistics + default plan, done once per trace) and the simulation proper, and
both together. One process (one core).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from simrec.sim.systems.screc import ScrecConfig, ScrecSystem, default_placement
from simrec.trace.format import read_trace
from simrec.trace.generate import gen_zipf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lookups", type=int, default=8_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 M lookups, 1 repeat (CI smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.lookups, args.repeat = 1_000_000, 1
    batch, pooling, tables = 8192, 4, 64
    batches = max(1, args.lookups // (batch * pooling * tables))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "zipf.trc"
        gen_zipf(
            path,
            tables=tables,
            rows=1_000_000,
            dim=64,
            alpha=1.05,
            batches=batches,
            batch_size=batch,
            pooling=pooling,
            seed=3,
        )
        tr = read_trace(path)
        cfg = ScrecConfig(ddr_fraction=0.01)
        ScrecSystem(cfg).simulate(tr, tr.header)  # warm-up: numba compilation, imports
        place, sim, both = [], [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            pl = default_placement(tr.header, tr, cfg)
            t1 = time.perf_counter()
            res = ScrecSystem(cfg).simulate(tr, tr.header, placement=pl)
            t2 = time.perf_counter()
            place.append(t1 - t0)
            sim.append(t2 - t1)
            both.append(t2 - t0)
        n = res.lookups
        print(
            f"lookups: {n:,} in {res.batches} batches; simulated {res.samples_per_s:,.0f} samples/s"
        )
        print(f"placement        median {statistics.median(place):.3f} s")
        print(
            f"simulation       median {statistics.median(sim):.3f} s = "
            f"{n / statistics.median(sim) / 1e6:.1f} M lookups/s"
        )
        print(
            f"placement + sim  median {statistics.median(both):.3f} s = "
            f"{n / statistics.median(both) / 1e6:.1f} M lookups/s"
        )


if __name__ == "__main__":
    main()
