"""Throughput of `simrec trace convert --from criteo` on synthetic Criteo-like text (medians).

Generates N tab-separated lines (label, 13 ints, 26 8-digit hex values drawn from per-column Zipf-ish
vocabularies, ~5% missing) with a fixed seed, converts them 3 times per mode and prints the median
wall time and lines/s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from simrec.trace.convert import convert


def make_file(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    vocab = [rng.integers(0, 2**32, size=min(10**6, 10 ** rng.integers(1, 7))) for _ in range(26)]
    with open(path, "w") as f:
        for start in range(0, n, 10000):
            m = min(10000, n - start)
            lab = rng.integers(0, 2, m)
            dense = rng.integers(-1, 1000, size=(m, 13))
            cols = []
            for v in vocab:
                k = np.minimum(rng.zipf(1.2, m) - 1, len(v) - 1)
                h = [f"{x:08x}" for x in v[k]]
                miss = rng.random(m) < 0.05
                cols.append(["" if mi else x for mi, x in zip(miss, h, strict=True)])
            for i in range(m):
                f.write("\t".join([str(lab[i]), *map(str, dense[i]), *(c[i] for c in cols)]) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lines", nargs="?", type=int, default=200_000, help="lines to convert")
    ap.add_argument("--quick", action="store_true", help="20,000 lines")
    args = ap.parse_args()
    n = 20_000 if args.quick else args.lines
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "day.txt"
        make_file(src, n)
        size = src.stat().st_size
        for label, opts in [("dense ids", {}), ("max-ind-range 1e6", {"max_ind_range": 10**6})]:
            times, cpu = [], []
            for _ in range(3):
                t0, c0 = time.perf_counter(), time.process_time()
                convert("criteo", src, Path(d) / "o.trc", **opts)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            med, cmed = statistics.median(times), statistics.median(cpu)
            print(
                f"criteo {label:<18} {n:,} lines ({size / 1e6:.1f} MB): median wall {med:.2f} s "
                f"({n / med:,.0f} lines/s), median CPU {cmed:.2f} s ({n / cmed:,.0f} lines/s)"
            )


if __name__ == "__main__":
    main()
