"""Generation speed of the synthetic trace generators (``simrec trace gen``), in lookups per second.

Each configuration writes about 10^7 lookups to a temporary ``.trc`` file; the script prints the
median (and min/max) over ``--repeats`` runs, the first run excluded as a warm-up (numba compile,
page cache). Usage::

    python benchmarks/bench_generate.py            # zipf, mels, mlperf-dlrmv2, dlrm-lru
    python benchmarks/bench_generate.py --repeats 5 --only zipf,mels
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from simrec.trace.generate import (
    GenResult,
    gen_dlrm_lru,
    gen_mels,
    gen_mlperf_dlrmv2,
    gen_zipf,
)

DIST_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "dlrm_dist_emb_0.log"

CASES: dict[str, tuple[str, Callable[[Path], GenResult]]] = {
    "zipf": (
        "16 tables x 1M rows, alpha 1.1, reuse 0.2, pooling 20, batch 4096, 8 batches",
        lambda p: gen_zipf(
            p,
            tables=16,
            rows=1_000_000,
            alpha=1.1,
            reuse=0.2,
            pooling=20,
            batch_size=4096,
            batches=8,
        ),  # fmt: skip
    ),
    "zipf-40M": (
        "8 tables x 40M rows, alpha 1.05, lognormal pooling mean 20 std 10, batch 8192, 8 batches",
        lambda p: gen_zipf(
            p,
            tables=8,
            rows=40_000_000,
            alpha=1.05,
            pooling_dist="lognormal",
            pooling_mean=20,
            pooling_std=10,
            batch_size=8192,
            batches=8,
        ),  # fmt: skip
    ),
    "mels": (
        "2021 profile, 64 tables, batch 4096 (15.8 lookups/sample/table), 3 batches",
        lambda p: gen_mels(p, profile="2021", tables=64, batch_size=4096, batches=3),
    ),
    "mlperf-dlrmv2": (
        "26 tables, 214 lookups/sample, batch 16384, 3 batches, dense + labels",
        lambda p: gen_mlperf_dlrmv2(p, batch_size=16384, batches=3),
    ),
    "dlrm-lru": (
        "dist_emb_0.log, 8 tables, pooling 25, batch 2048, 5 batches (2 passes: rows unknown)",
        lambda p: gen_dlrm_lru(
            p, dist_file=DIST_FILE, tables=8, pooling=25, batch_size=2048, batches=5
        ),  # fmt: skip
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case (after 1 warm-up)")
    ap.add_argument("--only", default=",".join(CASES), help="comma list of cases")
    ap.add_argument("--quick", action="store_true", help="one timed run of zipf and mels only")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.only = 1, "zipf,mels"
    print(f"{'case':<14} {'lookups':>12} {'median M/s':>11} {'min':>7} {'max':>7}  configuration")
    with tempfile.TemporaryDirectory() as d:
        for name in args.only.split(","):
            desc, fn = CASES[name]
            out = Path(d) / f"{name}.trc"
            fn(out)  # warm-up
            rates = []
            lookups = 0
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                res = fn(out)
                dt = time.perf_counter() - t0
                lookups = res.num_lookups
                rates.append(lookups / dt / 1e6)
            print(
                f"{name:<14} {lookups:>12,} {statistics.median(rates):>11.2f} "
                f"{min(rates):>7.2f} {max(rates):>7.2f}  {desc}"
            )


if __name__ == "__main__":
    main()
