"""Multi-GPU simulation speed: fast vs fine mode, with and without the UVM LRU row cache.

Run: ``python benchmarks/bench_multi_gpu.py [--repeat 5] [--quick]``. Prints medians (CPU and wall
seconds). ``--quick``: 3 repeats, 2 preset batches.

* **small**: 8 H100 GPUs (ASTRA-sim HGX network, PCIe Gen5 x16 each), 8 tables x 100 k rows, dim
  64 fp32, batch 2048, pooling 8, Zipf(1.1), 2 batches (262 k lookups). ``hbm``: all tables in
  HBM; ``uvm+lru``: HBM limited to 2 MB per GPU, every table in host DRAM behind an LRU row
  cache of half the HBM. Both granularities; fine reports simpy events per CPU second.
* **preset**: ``hwconfigs/multi_gpu.yaml`` (8 GPUs, two DDR sockets), 8 tables x 200 M rows x 512 B
  (they exceed HBM, so they are served from host DRAM), batch 4096, pooling 32, Zipf(1.05), 10
  batches (10.5 M lookups; ``--preset-batches``), fast mode, without a cache and with ``lru:0.5``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from simrec.hw import load_hw
from simrec.sim.components.gpu import GpuParams
from simrec.sim.components.network import NetworkParams
from simrec.sim.components.pcie import PcieParams
from simrec.sim.systems.multi_gpu import MultiGpuSystem, UvmCache
from simrec.trace.format import TableSpec, TraceHeader, TraceReader, read_trace, write_trace
from simrec.workloads.dlrm import get_model

G = 8


def zipf_trace(
    path: Path, rows: int, dim: int, batch: int, pooling: int, batches: int, alpha: float
) -> TraceReader:
    """Rows ``(zipf(alpha) - 1) mod rows`` (seeded), table-major CSR with fixed pooling."""
    rng = np.random.default_rng(0)
    h = TraceHeader(
        tables=tuple(TableSpec(name=f"t{i}", rows=rows, dim=dim) for i in range(G)),
        batch_size=batch,
        provenance={
            "source": "generated",
            "generator": "benchmarks/bench_multi_gpu.py",
            "seed": 0,
            "params": {"alpha": alpha, "pooling": pooling},
        },
    )
    off = np.arange(G * batch + 1, dtype=np.int64) * pooling
    n = G * batch * pooling
    bs = [
        {"offsets": off, "indices": ((rng.zipf(alpha, n) - 1) % rows).astype(np.int64)}
        for _ in range(batches)
    ]
    return read_trace(write_trace(path, h, bs))


def small_system(mode: str, cached: bool) -> MultiGpuSystem:
    gpu = GpuParams.h100_sxm()
    if cached:
        gpu = replace(gpu, hbm_capacity_bytes=2e6)
    return MultiGpuSystem(
        [gpu] * G,
        NetworkParams.hgx_h100_astrasim(),
        [PcieParams.gen5_x16()] * G,
        host_capacity_bytes=1e12,
        mode=mode,
        uvm_cache=UvmCache("lru", hbm_share=0.5) if cached else None,
    )


def timed(make, r: TraceReader, repeat: int) -> tuple[float, float, dict[str, float]]:
    cpu, wall = [], []
    res = None
    for _ in range(repeat):
        s = make()
        c0, w0 = time.process_time(), time.perf_counter()
        res = s.simulate(r, r.header)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    assert res is not None
    return statistics.median(cpu), statistics.median(wall), res.counters


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--preset-batches", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="3 repeats, 2 preset batches")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.preset_batches = 3, 2
    with tempfile.TemporaryDirectory() as tmp:
        r = zipf_trace(Path(tmp) / "small.trc", 100_000, 64, 2048, 8, 2, 1.1)
        n = r.total_lookups
        print(f"small trace: {n} lookups; medians of {args.repeat}")
        for cached in (False, True):
            for mode in ("fast", "fine"):
                c, w, cnt = timed(lambda m=mode, k=cached: small_system(m, k), r, args.repeat)
                line = (
                    f"  {'uvm+lru' if cached else 'hbm':8s} {mode}: {n / c / 1e6:6.2f} M lookups "
                    f"per CPU s, {n / w / 1e6:6.2f} M per wall s"
                )
                if mode == "fine":
                    ev = cnt["fine_events"]
                    line += f"; {ev:.0f} events, {ev / c / 1e3:.0f} k events per CPU s"
                print(line)
        r = zipf_trace(
            Path(tmp) / "preset.trc", 200_000_000, 128, 4096, 32, args.preset_batches, 1.05
        )
        n = r.total_lookups
        hw = load_hw("multi_gpu")
        print(f"multi_gpu preset, 8 x 200 M-row tables in host DRAM: {n} lookups, fast mode")
        for cache in (None, "lru:0.5"):
            c, w, cnt = timed(
                lambda k=cache: MultiGpuSystem.from_hw(hw, model=get_model("rm1"), uvm_cache=k),
                r,
                max(1, args.repeat // 2),
            )
            hr = cnt.get("uvm_cache_hit_ratio")
            print(
                f"  cache {cache or 'none':8s}: {n / c / 1e6:6.2f} M lookups per CPU s, "
                f"{n / w / 1e6:6.2f} M per wall s" + (f", hit ratio {hr:.3f}" if hr else "")
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
