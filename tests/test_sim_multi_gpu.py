"""Multi-GPU system tests: gather formula, all-to-all = alpha-beta formula, UVM over PCIe, plans."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simrec.errors import ConfigError
from simrec.shard.plan import plan_from_dict
from simrec.sim.components.gpu import GpuParams
from simrec.sim.components.network import NetworkParams
from simrec.sim.components.pcie import PcieParams
from simrec.sim.systems.multi_gpu import MultiGpuSystem
from simrec.trace.format import read_trace
from simrec.trace.generate import gen_uniform
from simrec.workloads.dlrm import get_model

G = 8
B, L, ROWS, DIM = 512, 4, 100_000, 64


def trace(tmp: Path, tables=G, batches=2, seed=0, rows=ROWS):
    """Uniform indices, fixed bags of L lookups (the library's own generator)."""
    g = gen_uniform(
        tmp / "g.trc", tables=tables, rows=rows, dim=DIM, batches=batches, batch_size=B,
        pooling=L, seed=seed,
    )  # fmt: skip
    return read_trace(g.path)


def system(gpu: GpuParams | None = None, **kw) -> MultiGpuSystem:
    g = gpu or GpuParams.h100_sxm()
    return MultiGpuSystem(
        [g] * G,
        NetworkParams.hgx_h100_astrasim(),
        [PcieParams.gen5_x16()] * G,
        host_capacity_bytes=1e12,
        **kw,
    )


def test_table_wise_gather_and_alltoall_match_formulas(tmp_path):
    r = trace(tmp_path)
    res = system().simulate(r, r.header)
    g = GpuParams.h100_sxm()
    row = DIM * 4
    # one table per GPU: one fused gather of B*L rows (data.md §5.2 calibrated efficiency)
    gather = g.kernel_launch_s + B * L * row / (g.gather_eff(row) * 3.35e12)
    assert res.breakdown_s["embedding"] == pytest.approx(2 * gather, rel=1e-9)
    # all-to-all of pooled outputs: (B/G) samples x DIM floats per pair, ASTRA-sim HGX preset
    msg = B / G * DIM * 4
    a2a = 936.25e-9 + (G - 1) * msg / 400e9  # anchors.md §2.4 alpha-beta, one switch
    assert res.breakdown_s["alltoall"] == pytest.approx(2 * a2a, rel=1e-9)
    assert res.sim_time_s == pytest.approx(2 * (gather + a2a), rel=1e-9)
    assert res.counters["pcie_bytes"] == 0


def test_row_wise_moves_g_times_the_partial_sums(tmp_path):
    r = trace(tmp_path)
    tw = system(sharding="table").simulate(r, r.header)
    rw = system(sharding="row").simulate(r, r.header)
    assert rw.counters["alltoall_bytes"] == pytest.approx(G * tw.counters["alltoall_bytes"])
    assert rw.counters["hbm_bytes"] == tw.counters["hbm_bytes"]


def test_row_wise_alltoall_matches_the_alpha_beta_formula(tmp_path):
    r = trace(tmp_path)
    res = system(sharding="row").simulate(r, r.header)
    # every GPU holds a band of each of the G tables: it sends (B/G) samples x G*DIM partial sums
    # (fp32) to every other GPU; one switch, alpha-beta (anchors.md §2.4, ASTRA-sim HGX-H100)
    msg = B / G * G * DIM * 4
    a2a = 936.25e-9 + (G - 1) * msg / 400e9
    assert res.breakdown_s["alltoall"] == pytest.approx(2 * a2a, rel=1e-9)
    assert res.counters["alltoall_bytes"] == pytest.approx(2 * msg * G * (G - 1))
    # the gather: each GPU reads the lookups of every table that fall in its band of rows
    b0, b1 = r.batch(0), r.batch(1)
    g = GpuParams.h100_sxm()
    row = DIM * 4
    emb = 0.0
    for b in (b0, b1):
        per_gpu = np.zeros(G)
        for t in range(G):
            band = np.searchsorted((np.arange(G) * ROWS) // G, b.table_indices(t), side="right") - 1
            per_gpu += np.bincount(band, minlength=G)
        emb += g.kernel_launch_s + per_gpu.max() * row / (g.gather_eff(row) * 3.35e12)
    assert res.breakdown_s["embedding"] == pytest.approx(emb, rel=1e-9)


def test_tables_beyond_hbm_are_read_over_pcie(tmp_path):
    r = trace(tmp_path, batches=1)
    tiny = replace(GpuParams.h100_sxm(), hbm_capacity_bytes=1e6)  # no table fits
    res = system(tiny).simulate(r, r.header)
    row = DIM * 4
    b = r.batch(0)
    uniq = [len(np.unique(b.table_indices(t))) for t in range(G)]
    # each table on its own GPU's link; distinct rows once; TLP overhead per row (one TLP of
    # 256 B payload + 24 B), counted once; Gen5 x16 = 16 x 32 GT/s x 128/130 / 8 (data.md §5.1)
    raw = 16 * 32e9 * 128 / 130 / 8
    expect = [u * (row + 24) / raw for u in uniq]
    assert res.counters["pcie_bytes"] == pytest.approx(sum(uniq) * (row + 24))
    assert res.breakdown_s["embedding"] == pytest.approx(max(expect), rel=1e-9)
    assert res.counters["hbm_bytes"] == 0


def test_plan_with_hot_rows_in_hbm_and_the_rest_on_host(tmp_path):
    r = trace(tmp_path, tables=1, batches=1)
    hot = list(range(0, 1000))
    plan = plan_from_dict(
        {
            "devices": [{"name": f"gpu{i}"} for i in range(G)] + [{"name": "dram0"}],
            "tables": [
                {
                    "name": "t0",
                    "rows": ROWS,
                    "dim": DIM,
                    "order": {"kind": "hot_set", "hot_rows": hot},
                    "bands": [
                        {"device": "gpu3", "tier": "hbm", "rows": [0, 1000]},
                        {"device": "dram0", "tier": "host_dram", "rows": [1000, ROWS]},
                    ],
                }
            ],
        }
    )
    res = system(plan=plan, host_names=["dram0"]).simulate(r, r.header)
    idx = r.batch(0).table_indices(0)
    cold = np.unique(idx[idx >= 1000])
    assert res.counters["pcie_bytes"] == pytest.approx(len(cold) * (DIM * 4 + 24))
    assert res.counters["hbm_bytes"] == pytest.approx((idx < 1000).sum() * DIM * 4)
    assert res.utilisation["gpu3.pcie.down"] > 0
    assert res.utilisation["gpu0.pcie.down"] == 0


def test_plan_naming_a_missing_device_is_an_error(tmp_path):
    r = trace(tmp_path, tables=1, batches=1)
    plan = plan_from_dict(
        {
            "devices": [{"name": "gpu9"}],
            "tables": [
                {
                    "name": "t0",
                    "rows": ROWS,
                    "dim": DIM,
                    "bands": [{"device": "gpu9", "tier": "hbm", "rows": [0, ROWS]}],
                }
            ],
        }
    )
    with pytest.raises(ConfigError) as e:
        system(plan=plan).simulate(r, r.header)
    assert "gpu9" in str(e.value) and e.value.fix


def test_capacity_errors(tmp_path):
    r = trace(tmp_path, tables=1, batches=1)
    tiny = replace(GpuParams.h100_sxm(), hbm_capacity_bytes=1e6)
    s = MultiGpuSystem(
        [tiny] * G,
        NetworkParams.hgx_h100_astrasim(),
        [PcieParams.gen5_x16()] * G,
        host_capacity_bytes=1e6,
    )
    with pytest.raises(ConfigError) as e:
        s.simulate(r, r.header, source="g.trc")
    assert "host DRAM" in str(e.value)
    with pytest.raises(ConfigError):
        system(mode="turbo")


def test_dense_stage_uses_model_flops(tmp_path):
    r = trace(tmp_path, batches=1)
    m = replace(get_model("rm1"), num_tables=G, emb_dim=DIM, bottom_mlp=(256, 128, DIM))
    res = system(model=m, overlap_bottom_mlp=False).simulate(r, r.header)
    g = GpuParams.h100_sxm()
    per_gpu = B / G
    bottom, inter, top = (
        g.mlp_time_s(f * per_gpu) for f in (m.bottom_flops(), m.interaction_flops(), m.top_flops())
    )
    assert res.breakdown_s["dense"] == pytest.approx(bottom + inter + top, rel=1e-9)
    # overlapped (default): the bottom MLP runs on a second stream during the embedding stage and
    # the all-to-all, which take longer here, so only interaction + top remain after them
    ov = system(model=m).simulate(r, r.header)
    assert bottom < ov.breakdown_s["embedding"] + ov.breakdown_s["alltoall"]
    assert ov.breakdown_s["dense"] == pytest.approx(inter + top, rel=1e-9)
    assert ov.breakdown_s["bottom_mlp_exposed"] == 0
    assert ov.sim_time_s == pytest.approx(res.sim_time_s - bottom, rel=1e-9)


def test_long_bottom_mlp_is_exposed_by_what_the_embedding_stage_does_not_hide(tmp_path):
    r = trace(tmp_path, batches=1)
    # a wide bottom MLP (about 2 x 8192^2 x 2 FLOPs per sample) outlasts the embedding stage
    m = replace(get_model("rm1"), num_tables=G, emb_dim=DIM, bottom_mlp=(8192, 8192, 8192, DIM))
    off = system(model=m, overlap_bottom_mlp=False).simulate(r, r.header)
    on = system(model=m).simulate(r, r.header)
    g = GpuParams.h100_sxm()
    bottom = g.mlp_time_s(m.bottom_flops() * B / G)
    emb_a2a = off.breakdown_s["embedding"] + off.breakdown_s["alltoall"]
    assert bottom > emb_a2a
    # batch time = max(bottom, embedding + all-to-all) + interaction + top
    assert on.sim_time_s == pytest.approx(off.sim_time_s - emb_a2a, rel=1e-9)
    assert on.breakdown_s["bottom_mlp_exposed"] == pytest.approx(bottom - emb_a2a, rel=1e-9)
    assert on.utilisation["gpu0.stream1"] > 0


def test_uvm_rows_also_load_the_host_dram(tmp_path):
    from simrec.sim.components.dram import DramParams

    r = trace(tmp_path, batches=1)
    tiny = replace(GpuParams.h100_sxm(), hbm_capacity_bytes=1e6)
    no_host = system(tiny).simulate(r, r.header)
    host = DramParams.ddr4_3200_dramsim3(channels=1, ranks=2)
    with_host = system(tiny, host_drams=[host], gpu_host=[0] * G).simulate(r, r.header)
    b = r.batch(0)
    rows = sum(len(np.unique(b.table_indices(t))) for t in range(G))
    assert with_host.counters["host_dram_bursts"] == rows * (DIM * 4 // 64)
    # all eight GPUs share one DDR4 channel: at least its bus time, slower than PCIe alone
    bus = rows * (DIM * 4 // 64) * host.tBURST_s
    assert with_host.breakdown_s["embedding"] >= bus
    assert with_host.breakdown_s["embedding"] > no_host.breakdown_s["embedding"]
    assert with_host.utilisation["host"] > 0.9
    with pytest.raises(ConfigError):
        system(tiny, host_drams=[host], gpu_host=[1] * G)


def test_from_hw_preset_maps_gpus_to_their_socket_dram():
    from simrec.hw import load_hw

    s = MultiGpuSystem.from_hw(load_hw("multi_gpu"))
    assert s.gpu_host == [0, 0, 0, 0, 1, 1, 1, 1]  # pcie_root0 -> cpu0 -> dram0, root1 -> dram1
    assert len(s.host_drams) == 2 and s.network.npus == 8
