"""Benchmarks of the trace hot paths: reading, profiling, stack distances, bounded-memory profiling.

Usage::

    python benchmarks/bench_trace.py           # full run (a few minutes on 2 cores)
    python benchmarks/bench_trace.py --quick   # under a minute

Prints the median of several runs for each figure (and the spread, min..max):

(a) reading a ``.trc`` (iterate all batches, CRC + CSR checks on, touching every index), lookups/s;
(b) ``profile_trace(stack_distance=False)``: counts, unique, pooling, coverage, CDF, reuse histogram;
(c) LRU stack distances on a stream of N = 10^6 references: the Fenwick counter against the naive
    O(N·U) move-to-front list (run on a prefix, its rate extrapolated, when it would take long),
    and ``profile_trace`` with stack distances (per table + overall);
(d) profiling a 100 M-lookup trace (10 M with ``--quick``) in a child process: peak RSS.

Traces are generated here (Zipf(1)-like: rank = floor(n^u) - 1 with u uniform, scattered over the
rows by a fixed bijection) with the trace writer into a temporary folder that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from simrec.trace.format import TableSpec, TraceHeader, TraceReader, TraceWriter
from simrec.trace.stackdist import StackDistanceCounter, naive_stack_distances
from simrec.trace.stats import profile_trace

SEED = 20251125
#: rows per table of the generated traces: a mix of tiny, medium and large tables (sum ~ 20 M)
ROWS = [100, 10_000, 100_000, 1_000_000, 2_000_000, 4_000_000, 5_000_000, 8_000_000]


def zipf_like(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """``n`` Zipf(1)-like row numbers in ``0..rows-1`` (hot ranks scattered by a bijection)."""
    rank = np.floor(np.power(float(rows), rng.random(n))).astype(np.int64) - 1
    rank = np.clip(rank, 0, rows - 1)
    a = 2_654_435_761
    while math.gcd(a, rows) != 1:
        a += 2
    return (rank * a + 12345) % rows


def make_trace(path: Path, lookups: int, batch_size: int = 16384, pooling: int = 20) -> Path:
    """Write a trace of about ``lookups`` lookups over the tables in ROWS."""
    rng = np.random.default_rng(SEED)
    T = len(ROWS)
    hdr = TraceHeader(
        tables=[TableSpec(name=f"t{i}", rows=r, dim=64) for i, r in enumerate(ROWS)],
        batch_size=batch_size,
        index_dtype="int32",
        provenance={"source": "generated", "generator": "bench_trace.zipf_like", "seed": SEED},
    )
    per_batch = T * batch_size * pooling
    nb = max(1, round(lookups / per_batch))
    with TraceWriter(path, hdr) as w:
        for _ in range(nb):
            lengths = rng.integers(0, 2 * pooling + 1, size=(T, batch_size))
            off = np.concatenate([[0], np.cumsum(lengths.ravel())])
            idx = np.concatenate(
                [zipf_like(rng, r, int(lengths[t].sum())) for t, r in enumerate(ROWS)]
            ).astype(np.int32)
            w.write_batch(off, idx)
    return path


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def report(label: str, work: float, unit: str, times: list[float], target: float | None = None):
    rates = sorted(work / t for t in times)
    med = statistics.median(rates)
    tgt = ""
    if target is not None:
        tgt = f"   target >= {target / 1e6:g} M{unit}/s: {'ok' if med >= target else 'MISSED'}"
    print(
        f"{label:<46} median {med / 1e6:8.2f} M{unit}/s   "
        f"(min {rates[0] / 1e6:.2f}, max {rates[-1] / 1e6:.2f}, n={len(times)}){tgt}"
    )
    return med


def read_all(path: Path) -> int:
    r = TraceReader(path)
    s = 0
    for b in r:
        s += int(b.indices.max(initial=0))  # touch every index
    return s


_CHILD = """
import sys, time
import numpy as np
from simrec.trace.stats import profile_trace
from simrec.trace.stackdist import StackDistanceCounter


def hwm():
    # peak RSS of this process (VmHWM; unlike ru_maxrss it does not inherit the parent's peak)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


StackDistanceCounter(4).update(np.arange(3))  # load the compiled kernels first
base = hwm()
t0 = time.perf_counter()
p = profile_trace(sys.argv[1], stack_distance=sys.argv[2] == "1")
dt = time.perf_counter() - t0
print(p.lookups, dt, base, hwm(), p.unique)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, fewer repeats (< 1 min)")
    args = ap.parse_args()
    quick = args.quick
    repeat = 3 if quick else 5
    tmp = Path(tempfile.mkdtemp(prefix="simrec-bench-"))
    try:
        print(f"simrec trace benchmarks ({'quick' if quick else 'full'}), {os.cpu_count()} CPUs")
        n_ab = 10_000_000 if quick else 30_000_000
        t0 = time.perf_counter()
        tr = make_trace(tmp / "ab.trc", n_ab)
        nl = TraceReader(tr).total_lookups
        print(
            f"generated {nl:,} lookups over {len(ROWS)} tables in {time.perf_counter() - t0:.1f} s"
        )
        read_all(tr)  # warm the page cache

        # (a) reading
        report("(a) read .trc (CRC + CSR checks)", nl, "lookups", timed(lambda: read_all(tr), repeat),
               50e6)  # fmt: skip

        # (b) counts / unique / pooling / CDF / reuse histogram
        profile_trace(tr, stack_distance=False, max_batches=1)  # warm-up
        report("(b) profile, no stack distances", nl, "lookups",
               timed(lambda: profile_trace(tr, stack_distance=False), repeat), 10e6)  # fmt: skip

        # (c) stack distances, N = 10^6 references of a 100k-row Zipf-like table
        n = 1_000_000
        refs = zipf_like(np.random.default_rng(SEED + 1), 100_000, n)
        u = len(np.unique(refs))
        StackDistanceCounter(4).update(np.arange(3))  # compile / load the kernels

        def fenwick() -> None:
            StackDistanceCounter(100_000).update(refs)

        fen = report(f"(c) stack distances, Fenwick (N=1e6, U={u:,})", n, "refs",
                     timed(fenwick, repeat), 5e6)  # fmt: skip
        prefix = 20_000 if quick else 100_000
        t_naive = timed(lambda: naive_stack_distances(refs[:prefix].tolist()), 1 if quick else 3)
        naive_rate = prefix / statistics.median(t_naive)
        print(
            f"(c) naive O(N*U) list, prefix of {prefix:,} refs  {naive_rate / 1e6:8.3f} Mrefs/s  "
            f"(prefix only; full N=1e6 would take ~{n / naive_rate:.0f} s and slow down as the "
            f"stack grows); Fenwick / naive = {fen / naive_rate:.0f}x"
        )
        report("(c) profile_trace + SD (2 streams per lookup)", nl, "lookups",
               timed(lambda: profile_trace(tr, stack_distance=True), max(2, repeat - 2)))  # fmt: skip
        (tmp / "ab.trc").unlink()

        # (d) bounded memory on a large trace, in a child process
        n_d = 10_000_000 if quick else 100_000_000
        t0 = time.perf_counter()
        big = make_trace(tmp / "big.trc", n_d)
        size = big.stat().st_size
        print(
            f"(d) generated {TraceReader(big).total_lookups:,} lookups ({size / 2**30:.2f} GiB) "
            f"in {time.perf_counter() - t0:.1f} s; sum of rows {sum(ROWS):,}"
        )
        for sd in ("0", "1"):
            res = subprocess.run(
                [sys.executable, "-c", _CHILD, str(big), sd],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            lk, dt, base, peak, uniq = res.stdout.split()
            print(
                f"(d) profile {'with' if sd == '1' else 'without'} stack distances: "
                f"{int(lk) / float(dt) / 1e6:.2f} M lookups/s, peak RSS {int(peak) / 2**10:.0f} MiB "
                f"(after imports {int(base) / 2**10:.0f} MiB; file {size / 2**20:.0f} MiB, "
                f"{int(uniq):,} unique rows)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
