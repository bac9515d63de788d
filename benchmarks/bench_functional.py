"""Benchmarks of the functional model's hot paths.

Usage::

    python benchmarks/bench_functional.py           # full run (about a minute on 2 cores)
    python benchmarks/bench_functional.py --quick   # smaller sizes, fewer repeats

Prints medians (and min..max) of several runs:

(a) embedding-bag sum pooling, fp32, uniform random indices: simrec's numpy/numba kernel vs
    ``torch.nn.functional.embedding_bag`` (CPU) on the same arrays, both with torch's default
    thread count (simrec: ``embedding_bag(..., threads=N)``),
    in the same process, timed alternately so both see the same load; the ratio is the median of
    the per-repeat ratios simrec / torch (issue #7 target: <= 3);
(b) TT row reconstruction at d = 64 (q = 4·4·4, p = 200·220·250 for a 10,131,227-row table),
    ranks 8/16/32, rows/s with and without first-stage prefix reuse, against the MAC-count bound
    of this machine: rows/s <= (measured float32 GEMM FLOP/s) / (2 · MACs per row);
(c) the address remapper: (table, row) -> (device, tier, local) lookups/s for a 10M-row table
    with a hotness permutation and four bands;
(d) index reordering (Rec-AD/EL-Rec) on a generated Zipf trace: TT prefix reuse before/after.

The GEMM rate is the median of a 2048 x 2048 x 2048 float32 ``np.matmul`` (BLAS, all cores).
Without torch installed, (a) reports the simrec figures only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from simrec.functional.embedding_bag import embedding_bag
from simrec.functional.spec import tt_macs_per_row
from simrec.functional.tt import TTCores, suggested_tt_shapes

SEED = 20251125


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """(median, min, max) seconds of ``repeats`` calls after one warm-up call."""
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts), max(ts)


def timed_pair(
    a: Callable[[], object], b: Callable[[], object], repeats: int
) -> tuple[tuple[float, float, float], tuple[float, float, float], float]:
    """Time ``a`` and ``b`` alternately (so both see the same machine load): (median, min, max)
    of each, and the median of the per-repeat ratios a / b."""
    a()
    b()
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    ratio = statistics.median(x / y for x, y in zip(ta, tb, strict=True))
    return (
        (statistics.median(ta), min(ta), max(ta)),
        (statistics.median(tb), min(tb), max(tb)),
        ratio,
    )


def bench_embedding_bag(quick: bool) -> None:
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(SEED)
    rows = 1_000_000 if quick else 4_000_000
    repeats = 5 if quick else 11
    configs = [(16, 1, 65_536), (16, 32, 8_192), (64, 32, 4_096), (128, 8, 8_192)]
    threads = torch.get_num_threads() if torch is not None else os.cpu_count() or 1
    print(f"(a) embedding-bag sum, fp32, {rows:,} rows, uniform indices; {threads} threads each")
    print(
        f"    {'D':>4} {'L':>3} {'B':>6}  {'simrec ms':>10} {'torch ms':>10} {'ratio':>6}  Mrows/s"
    )
    for dim, pool, batch in configs:
        table = rng.standard_normal((rows, dim), dtype=np.float32)
        idx = rng.integers(0, rows, batch * pool)
        off = np.arange(0, batch * pool + 1, pool, dtype=np.int64)

        def run_ours(t=table, i=idx, o=off) -> object:
            return embedding_bag(t, i, o, threads=threads)

        if torch is not None:
            tt, ti, to = torch.from_numpy(table), torch.from_numpy(idx), torch.from_numpy(off)

            def run_torch(tt=tt, ti=ti, to=to) -> object:
                return torch.nn.functional.embedding_bag(ti, tt, to, include_last_offset=True)

            ours, theirs, ratio = timed_pair(run_ours, run_torch, repeats)
            line = f"    {dim:>4} {pool:>3} {batch:>6}  {ours[0] * 1e3:>10.2f}"
            line += f" {theirs[0] * 1e3:>10.2f} {ratio:>6.2f}"
        else:
            ours = timed(run_ours, repeats)
            line = f"    {dim:>4} {pool:>3} {batch:>6}  {ours[0] * 1e3:>10.2f}"
            line += f" {'-':>10} {'-':>6}"
        line += f"  {batch * pool / ours[0] / 1e6:8.1f}"
        line += f"   (simrec min..max {ours[1] * 1e3:.2f}..{ours[2] * 1e3:.2f} ms)"
        print(line)
        del table


def gemm_flops(quick: bool) -> float:
    n = 1024 if quick else 2048
    rng = np.random.default_rng(SEED)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    med, lo, hi = timed(lambda: a @ b, 5)
    rate = 2 * n**3 / med
    print(f"    float32 GEMM {n}^3: {rate / 1e9:.1f} GFLOP/s (median; {2 * n**3 / hi / 1e9:.1f}.."
          f"{2 * n**3 / lo / 1e9:.1f})")  # fmt: skip
    return rate


def bench_tt(quick: bool) -> None:
    nt = os.cpu_count() or 1
    print(
        f"(b) TT row reconstruction, d = 64 (q 4·4·4), 10,131,227 rows (p 200·220·250), "
        f"{nt} threads"
    )
    flops = gemm_flops(quick)
    rows = 10_131_227
    p = suggested_tt_shapes(rows)
    q = suggested_tt_shapes(64, allow_round_up=False)
    n = 16_384 if quick else 65_536
    repeats = 3 if quick else 7
    rng = np.random.default_rng(SEED)
    ids_uniform = rng.integers(0, rows, n)
    # a skewed batch (Zipf-like ranks, hot rows contiguous) where prefixes repeat
    ids_skewed = np.minimum(np.floor(np.power(float(rows), rng.random(n))).astype(np.int64), rows)
    ids_skewed -= 1
    print(f"    {'rank':>4} {'MAC/row':>8} {'bound Mrows/s':>14} {'Mrows/s':>8} {'of bound':>8}"
          f"  {'reuse, skewed':>14} {'uniq/prefix':>11}")  # fmt: skip
    for r in (8, 16, 32):
        cores = TTCores.random(rows, p, q, [r, r], seed=SEED)
        macs = tt_macs_per_row(q, [r, r])
        bound = flops / (2 * macs)
        med = timed(lambda c=cores: c.reconstruct(ids_uniform, threads=nt), repeats)[0]
        med_reuse = timed(
            lambda c=cores: c.reconstruct(ids_skewed, prefix_reuse=True, threads=nt), repeats
        )[0]
        u = np.unique(ids_skewed)
        ratio = u.size / np.unique(u // p[-1]).size
        print(
            f"    {r:>4} {macs:>8,} {bound / 1e6:>14.1f} {n / med / 1e6:>8.2f} "
            f"{n / med / bound:>8.1%}  {n / med_reuse / 1e6:>11.2f} M/s {ratio:>11.2f}"
        )


def bench_remap(quick: bool) -> None:
    from simrec.shard import Band, DevicePlan, Plan, RowOrder, TablePlan
    from simrec.shard.remap import Remapper

    rows = 10_131_227
    n = 2_000_000 if quick else 10_000_000
    rng = np.random.default_rng(SEED)
    perm = rng.permutation(rows)
    plan = Plan(
        devices=[DevicePlan(name="csd0"), DevicePlan(name="csd1")],
        tables=[
            TablePlan(
                name="C3",
                rows=rows,
                dim=16,
                order=RowOrder(kind="hotness"),
                bands=[
                    Band(device="csd0", tier="sram", rows=(0, 10_000)),
                    Band(device="csd0", tier="dram", rows=(10_000, 1_000_000)),
                    Band(device="csd0", tier="nand", rows=(1_000_000, 5_000_000)),
                    Band(device="csd1", tier="nand", rows=(5_000_000, rows)),
                ],
            )
        ],
    )
    rm = Remapper(plan, perms={"C3": perm})
    ids = rng.integers(0, rows, n)
    med, lo, hi = timed(lambda: rm.remap("C3", ids), 5)
    print(f"(c) address remap, hotness order, 4 bands, {rows:,} rows: {n / med / 1e6:.1f} M lookups/s"
          f" (median; {n / hi / 1e6:.1f}..{n / lo / 1e6:.1f})")  # fmt: skip


def bench_reorder(quick: bool) -> None:
    import tempfile
    from pathlib import Path

    from simrec.functional.reorder import reorder_rows, reuse_report
    from simrec.trace.format import TableSpec, TraceHeader, TraceWriter, read_trace

    rows, b, pool = (100_000, 512, 4) if quick else (1_000_000, 2048, 4)
    batches = 10 if quick else 20
    p = suggested_tt_shapes(rows)
    rng = np.random.default_rng(SEED)
    relabel = rng.permutation(rows)  # hot ids scattered over the id space
    print(f"(d) index reordering, Zipf(1.1) over {rows:,} rows (TT p {p}), {batches} batches of "
          f"{b} x {pool} lookups: unique rows / unique TT prefixes per batch")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "z.trc"
        hdr = TraceHeader(tables=[TableSpec(name="t", rows=rows, dim=64)], batch_size=b)
        with TraceWriter(path, hdr) as w:
            for _ in range(batches):
                z = np.minimum(rng.zipf(1.1, b * pool), rows) - 1
                w.write_batch(np.arange(0, b * pool + 1, pool), relabel[z])
        reader = read_trace(path)
        for method in ("degree", "rcm", "frequency"):
            t0 = time.perf_counter()
            perm = reorder_rows(reader, 0, method)  # type: ignore[arg-type]
            dt = time.perf_counter() - t0
            rep = reuse_report(reader, 0, perm, p[-1], method)
            print(f"    {method:<9} before {rep.ratio_before:5.2f}  after {rep.ratio_after:5.2f}"
                  f"  (ordering took {dt:.2f} s)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = ap.parse_args()
    print(f"bench_functional: numpy {np.__version__}, {os.cpu_count()} CPUs")
    bench_embedding_bag(args.quick)
    bench_tt(args.quick)
    bench_remap(args.quick)
    bench_reorder(args.quick)


if __name__ == "__main__":
    main()
