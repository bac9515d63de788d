"""Multi-GPU system, fine granularity (one event per row request / PCIe row transfer / DRAM
command) against the fast transaction-level mode; exact fine-mode formulas; streaming; CLI errors."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import simpy

from simrec.sim.components.dram import DramParams
from simrec.sim.components.gpu import Gpu, GpuParams
from simrec.sim.components.network import NetworkParams
from simrec.sim.components.pcie import PcieLink, PcieParams
from simrec.sim.systems.multi_gpu import MultiGpuSystem, UvmCache
from simrec.trace.format import Batch, TableSpec, TraceHeader, read_trace, write_trace
from simrec.workloads.dlrm import get_model

G = 8
DIM = 64
ROW = DIM * 4


def trace(tmp: Path, B=512, L=8, rows=100_000, batches=2, seed=0, name="f.trc"):
    rng = np.random.default_rng(seed)
    h = TraceHeader(
        tables=tuple(TableSpec(name=f"t{i}", rows=rows, dim=DIM) for i in range(G)),
        batch_size=B,
    )
    off = np.arange(G * B + 1, dtype=np.int64) * L
    bs = [
        {"offsets": off, "indices": ((rng.zipf(1.1, G * B * L) - 1) % rows).astype(np.int64)}
        for _ in range(batches)
    ]
    return read_trace(write_trace(tmp / name, h, bs))


def system(mode: str, hbm: float = 80e9, **kw) -> MultiGpuSystem:
    g = replace(GpuParams.h100_sxm(), hbm_capacity_bytes=hbm)
    return MultiGpuSystem(
        [g] * G,
        NetworkParams.hgx_h100_astrasim(),
        [PcieParams.gen5_x16()] * G,
        host_capacity_bytes=1e12,
        mode=mode,
        **kw,
    )


CASES = {
    "hbm table-wise": {},
    "hbm row-wise + dense": {
        "sharding": "row",
        "model": replace(get_model("rm1"), num_tables=G, emb_dim=DIM, bottom_mlp=(256, 128, DIM)),
    },
    "uvm over pcie": {"hbm": 2e6},
    "uvm + lru cache": {"hbm": 2e6, "uvm_cache": UvmCache("lru", hbm_share=0.5)},
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_and_fine_agree_within_5_percent(tmp_path, case):
    r = trace(tmp_path)
    fast = system("fast", **CASES[case]).simulate(r, r.header)
    fine = system("fine", **CASES[case]).simulate(r, r.header)
    assert fine.sim_time_s == pytest.approx(fast.sim_time_s, rel=0.05)
    for k in ("embedding", "alltoall", "dense"):
        assert fine.breakdown_s[k] == pytest.approx(fast.breakdown_s[k], rel=0.05, abs=1e-12)
    assert fine.counters["pcie_bytes"] == fast.counters["pcie_bytes"]
    assert fine.counters["hbm_bytes"] == fast.counters["hbm_bytes"]
    assert fine.counters["fine_events"] > 0 and fine.mode == "fine"


def test_fast_and_fine_agree_with_the_host_dram_controller(tmp_path):
    # 8 GPUs' UVM rows through one DDR4 channel of 2 ranks: ~2,900 rows x 4 bursts in the chunk,
    # enough for the DRAM model's fast bounds to be within 5% of its FR-FCFS controller
    r = trace(tmp_path, batches=1)
    kw = {"hbm": 2e6, "host_drams": [DramParams.ddr4_3200_dramsim3(1, 2)], "gpu_host": [0] * G}
    fast = system("fast", **kw).simulate(r, r.header)
    fine = system("fine", **kw).simulate(r, r.header)
    assert fine.sim_time_s == pytest.approx(fast.sim_time_s, rel=0.05)
    assert fine.counters["host_dram_bursts"] == fast.counters["host_dram_bursts"]


def test_fine_gather_is_the_list_schedule_of_row_requests():
    # N rows on S slots, each row S * row / (eff * peak): makespan ceil(N / S) row times
    g = GpuParams.h100_sxm()
    for n in (1, 131, 132, 133, 1000):
        env = simpy.Environment()
        gpu = Gpu(env, g, "g")
        p = env.process(gpu.gather_fine([(n, ROW)]))
        env.run()
        row_t = 132 * ROW / (g.gather_eff(ROW) * 3.35e12)  # 132 SMs; data.md §5.2 peak
        expect = g.kernel_launch_s + -(-n // 132) * row_t
        assert p.value == pytest.approx(expect, rel=1e-12)
        assert gpu.events == n
        # never faster than the fast formula and at most one row time slower
        assert g.gather_time_s(n, ROW) <= p.value + 1e-15
        assert p.value <= g.gather_time_s(n, ROW) + row_t


def test_fine_pcie_rows_pipeline_the_latency():
    p = replace(PcieParams.gen4_x16(), latency_s=1e-6)
    env = simpy.Environment()
    link = PcieLink(env, p)
    proc = env.process(link.transfer_rows_fine([(10, 256), (5, 600)]))
    env.run()
    raw = 16 * 16e9 * 128 / 130 / 8  # Gen4 x16 (data.md §5.1)
    wire = 10 * (256 + 24) + 5 * (600 + 3 * 24)  # 600 B = 3 TLPs of <= 256 B
    assert proc.value == pytest.approx(1e-6 + wire / raw, rel=1e-12)
    assert link.events == 15 and link.bytes["down"] == wire
    assert p.wire_time_s(wire) == pytest.approx(proc.value, rel=1e-12)


@pytest.mark.parametrize("cache", [None, UvmCache("lru", rows=2000)])
def test_batches_are_streamed_not_materialised(cache):
    # batches made on the fly in heap memory (1 MiB of indices each): the peak Python heap of a
    # 40-batch run stays that of a 4-batch run, so batches are consumed one at a time; the LRU
    # state is bounded by the key space (5,000 rows per table, all seen early), not the stream
    B, L, rows = 1024, 16, 5000
    h = TraceHeader(
        tables=tuple(TableSpec(name=f"t{i}", rows=rows, dim=DIM) for i in range(G)),
        batch_size=B,
    )
    off = np.arange(G * B + 1, dtype=np.int64) * L

    def batches(n: int):
        rng = np.random.default_rng(0)
        for i in range(n):
            idx = ((rng.zipf(1.1, G * B * L) - 1) % rows).astype(np.int64)
            yield Batch(offsets=off, indices=idx, num_tables=G, number=i)

    def peak(n: int) -> int:
        s = system("fast", hbm=2e6, uvm_cache=cache)
        tracemalloc.start()
        s.simulate(batches(n), h)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    peak(2)  # imports and compilation outside the measurement
    small, large = peak(4), peak(40)
    one_batch = G * B * L * 8  # bytes of one batch's int64 indices
    assert large < small + one_batch, (small, large)


def test_cli_errors_for_multi_gpu(tmp_path):
    import json

    import click
    from click.testing import CliRunner

    from simrec.cli import SimrecGroup
    from simrec.sim.cli import simulate_command

    @click.group(cls=SimrecGroup)
    def cli() -> None:
        """Test group."""

    cli.add_command(simulate_command)
    h = TraceHeader(
        tables=tuple(TableSpec(name=f"t{i}", rows=10**11, dim=128) for i in range(2)),
        batch_size=4,
    )
    off = np.arange(2 * 4 + 1, dtype=np.int64)
    huge = write_trace(tmp_path / "huge.trc", h, [{"offsets": off, "indices": np.arange(8)}])
    r = CliRunner().invoke(cli, ["simulate", "--hw", "multi_gpu", "--trace", str(huge)])
    # 2 x 10^11 rows x 512 B = 102 TB: no HBM, no host DRAM
    assert r.exit_code == 2, r.output
    assert "do not fit" in r.output and "Fix:" in r.output and "Traceback" not in r.output
    plan = tmp_path / "p.json"
    plan.write_text(
        json.dumps(
            {
                "devices": [{"name": "gpu77"}],
                "tables": [
                    {
                        "name": f"t{i}",
                        "rows": 10**11,
                        "dim": 128,
                        "bands": [{"device": "gpu77", "tier": "hbm", "rows": [0, 10**11]}],
                    }
                    for i in range(2)
                ],
            }
        )
    )
    args = ["simulate", "--hw", "multi_gpu", "--trace", str(huge), "--plan", str(plan)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2 and "gpu77" in r.output and "Traceback" not in r.output
