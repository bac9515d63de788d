"""Simulation speed: simulated lookups per wall-clock second, fast vs fine vs a naive DES.

Run: ``python benchmarks/bench_sim.py [--lookups 10000000] [--repeat 5]``. Prints medians.

* **fast**: the CPU-DRAM system (``hwconfigs/cpu_dram.yaml``: 2 sockets x 8 channels x 2 ranks of
  DDR4-3200, 40 cores each) in the default transaction-level mode on a Zipf(1.05) trace of
  ``--lookups`` lookups (8 tables of 1 M rows, dim 16 fp32, batch 4096, pooling 20), read from a
  ``.trc`` file (memory-mapped), LLC dedupe on; and the same with dedupe off (every lookup reaches
  the DRAM model).
* **fine**: the same system, ``mode="fine"`` (one simpy event per DRAM command), on a small trace;
  reports simpy events/s and lookups/s.
* **naive**: a one-simpy-event-per-lookup model of the same DRAM (each lookup a timeout of its
  steady-state cost, ``max(tBURST, tFAW / (4 ranks))``, on its channel), measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import simpy

from simrec.hw import load_hw
from simrec.sim.components.dram import DramParams, embedding_addresses
from simrec.sim.results import LoadSpec
from simrec.sim.systems.cpu_dram import CpuDramSystem
from simrec.trace.format import TableSpec, TraceHeader, read_trace, write_trace

TABLES, ROWS, DIM, BATCH, POOLING, ALPHA = 8, 1_000_000, 16, 4096, 20, 1.05


def make_zipf_trace(path: Path, lookups: int, batch: int = BATCH, seed: int = 0) -> Path:
    """A Zipf(ALPHA) trace: ranks drawn by inverse CDF, mapped to rows by a fixed permutation."""
    rng = np.random.default_rng(seed)
    header = TraceHeader(
        tables=tuple(TableSpec(name=f"t{i}", rows=ROWS, dim=DIM) for i in range(TABLES)),
        batch_size=batch,
        index_dtype="int32",
        provenance={
            "source": "generated",
            "generator": "benchmarks/bench_sim.py",
            "seed": seed,
            "params": {"alpha": ALPHA, "pooling": POOLING},
        },
    )
    cdf = np.cumsum(np.arange(1, ROWS + 1, dtype=np.float64) ** -ALPHA)
    cdf /= cdf[-1]
    perm = rng.permutation(ROWS)
    per_batch = TABLES * batch * POOLING
    nb = max(1, lookups // per_batch)

    def gen():
        off = np.arange(TABLES * batch + 1, dtype=np.int64) * POOLING
        for _ in range(nb):
            idx = perm[np.searchsorted(cdf, rng.random(per_batch))]
            yield {"offsets": off, "indices": idx.astype(np.int32)}

    return write_trace(path, header, gen())


def naive_des(p: DramParams, starts: np.ndarray, nbursts: int) -> tuple[float, int]:
    """One simpy event per lookup; returns (simulated seconds, events)."""
    env = simpy.Environment()
    ch = p.decode(starts)["channel"]
    cost = nbursts * max(p.tBURST_s, p.tFAW * p.tCK_s / (4 * p.ranks))
    events = [0]

    def channel(n: int):
        for _ in range(n):
            yield env.timeout(cost)
            events[0] += 1

    for _c, n in enumerate(np.bincount(ch, minlength=p.channels).tolist()):
        env.process(channel(n))
    env.run()
    return float(env.now), events[0]


def median_time(fn, repeat: int) -> tuple[float, object]:
    """Median wall seconds of ``repeat`` calls (and the last result). The CPU-time median of the
    same calls is kept in ``CPU_MEDIANS`` (robust when other processes share the machine)."""
    times, cpu, out = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    CPU_MEDIANS.append(statistics.median(cpu))
    return statistics.median(times), out


CPU_MEDIANS: list[float] = []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lookups", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--fine-lookups", type=int, default=40_000)
    ap.add_argument("--naive-lookups", type=int, default=500_000)
    ap.add_argument("--quick", action="store_true", help="1 M lookups, 3 repeats, small fine/naive")
    a = ap.parse_args(argv)
    if a.quick:
        a.lookups, a.repeat, a.fine_lookups, a.naive_lookups = 1_000_000, 3, 10_000, 100_000
    hw = load_hw("cpu_dram")
    with tempfile.TemporaryDirectory() as td:
        big = make_zipf_trace(Path(td) / "zipf.trc", a.lookups)
        small = make_zipf_trace(Path(td) / "small.trc", a.fine_lookups, batch=128, seed=1)
        r = read_trace(big)
        n = r.total_lookups
        print(f"trace: {n:,} lookups, {len(r)} batches of {BATCH} x {TABLES} tables x {POOLING}")
        fast = CpuDramSystem.from_hw(hw, mode="fast")
        fast.simulate(read_trace(small), read_trace(small).header)  # compile/warm the kernels

        def run_fast(dedupe: bool = True):
            rr = read_trace(big)
            s = CpuDramSystem.from_hw(hw, mode="fast", dedupe=dedupe)
            return s.simulate(rr, rr.header, LoadSpec())

        t_fast, res = median_time(run_fast, a.repeat)
        c_fast = CPU_MEDIANS[-1]
        t_nodd, res_nodd = median_time(lambda: run_fast(False), a.repeat)
        c_nodd = CPU_MEDIANS[-1]
        print(
            f"fast (dedupe on):  median {t_fast:.3f} s wall, {c_fast:.3f} s CPU -> "
            f"{n / t_fast / 1e6:.1f} M simulated lookups per wall s, {n / c_fast / 1e6:.1f} M per "
            f"CPU s (simulated {res.sim_time_s * 1e3:.2f} ms, {res.samples_per_s:,.0f} samples/s)"
        )
        print(
            f"fast (dedupe off): median {t_nodd:.3f} s wall, {c_nodd:.3f} s CPU -> "
            f"{n / t_nodd / 1e6:.1f} M per wall s, {n / c_nodd / 1e6:.1f} M per CPU s "
            f"({res_nodd.counters['dram_bursts']:,} DRAM bursts)"
        )

        ns = read_trace(small).total_lookups

        def run_fine():
            rr = read_trace(small)
            return CpuDramSystem.from_hw(hw, mode="fine").simulate(rr, rr.header)

        t_fine, res_fine = median_time(run_fine, a.repeat)
        c_fine = CPU_MEDIANS[-1]
        ev = res_fine.counters["fine_events"]
        cmds = res_fine.counters["fine_commands"]
        print(
            f"fine: {ns:,} lookups -> {cmds:,} DRAM commands, {ev:,} simpy timeouts; median "
            f"{t_fine:.3f} s wall, {c_fine:.3f} s CPU -> {cmds / c_fine / 1e3:.0f} k commands, "
            f"{ev / c_fine / 1e3:.0f} k timeouts, {ns / c_fine / 1e3:.0f} k lookups per CPU s"
        )
        # naive: one event per lookup on socket 0's DRAM, same addresses as the fast run would use
        p = hw.params("dram0")
        idx = np.concatenate([b.table_indices(0) for b in r])[: a.naive_lookups]
        starts, nbursts = embedding_addresses(idx, DIM * 4, 0, p.burst_bytes)
        t_naive, (_, nev) = median_time(lambda: naive_des(p, starts, nbursts), a.repeat)
        c_naive = CPU_MEDIANS[-1]
        m = len(idx)
        print(
            f"naive (1 simpy event per lookup): {m:,} lookups, median {t_naive:.3f} s wall, "
            f"{c_naive:.3f} s CPU -> {m / c_naive / 1e3:.0f} k lookups (= events) per CPU s"
        )
        naive_rate = m / c_naive
        print(
            f"ratio per CPU second: fast / naive {n / c_fast / naive_rate:.0f}x, "
            f"fast without dedupe / naive {n / c_nodd / naive_rate:.0f}x, "
            f"fine / naive {ns / c_fine / naive_rate:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
