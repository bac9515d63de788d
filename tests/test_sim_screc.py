"""SCRec system: CDF-predicted gain of hot rows in DDR4, scaling with N until the host uplink
saturates, ablations, dense stage placement, errors and determinism.

Expected values are derived in the comments from the trace's own statistics (recomputed here with
numpy, independently of the placement code) and the link bandwidths of data.md §5.1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simrec.errors import ConfigError
from simrec.sim.components.fpga import FpgaDevice, FpgaResources
from simrec.sim.components.smartssd import SmartSSDParams
from simrec.sim.systems.screc import (
    ScrecConfig,
    ScrecSystem,
    default_placement,
    table_statistics,
)
from simrec.trace.format import read_trace
from simrec.trace.generate import gen_uniform, gen_zipf
from simrec.workloads.dlrm import get_model

# a device whose shell keeps all block RAM except the default cores' buffers: no SRAM rows
NO_SRAM = SmartSSDParams(
    fpga=FpgaDevice(shell=FpgaResources(lut=80_000, ff=160_000, dsp=624, bram=984 - 112, uram=128))
)


# 0.5 MB of on-chip SRAM left (110 BRAM36 x 4,608 B): room for two TT tables of this trace
SMALL_SRAM = SmartSSDParams(
    fpga=FpgaDevice(
        shell=FpgaResources(lut=80_000, ff=160_000, dsp=624, bram=984 - 112 - 110, uram=128)
    )
)


@pytest.fixture(scope="module")
def zipf_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("screc") / "zipf.trc"
    gen_zipf(p, tables=8, rows=500_000, dim=16, alpha=1.05, batches=2, batch_size=2048, pooling=8)
    return p


@pytest.fixture(scope="module")
def uniform_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("screc") / "uniform.trc"
    gen_uniform(p, tables=16, rows=2_000_000, dim=16, batches=2, batch_size=1024, pooling=8)
    return p


def test_hot_rows_in_ddr4_cut_time_by_the_cdf_ratio(zipf_trace: Path) -> None:
    """One device, no SRAM, no TT. All rows on NAND vs the hottest rows in a 2 MiB DDR4 share:
    the cold path is controller-bound (time proportional to cold lookups), so the NAND time shrinks
    by L / (L - top(k)), where top(k) is the number of lookups that hit the k = 2 MiB / 64 B
    hottest rows (all tables have 64 B rows)."""
    tr = read_trace(zipf_trace)
    all_idx = []
    for b in tr:
        for t in range(tr.header.num_tables):
            all_idx.append(b.table_indices(t).astype(np.int64) + t * 10**9)
    x = np.concatenate(all_idx)
    _, cnt = np.unique(x, return_counts=True)
    top = np.sort(cnt)[::-1]
    ddr_bytes = 2 * 2**20
    k = ddr_bytes // 64
    total = len(x)
    predicted = total / (total - top[:k].sum())
    assert predicted > 2.0
    base = {"n_devices": 1, "device": NO_SRAM, "tt_policy": "none"}
    frac = ddr_bytes / NO_SRAM.ddr_capacity_bytes
    r0 = ScrecSystem(ScrecConfig(**base, ddr_fraction=0.0)).simulate(tr, tr.header)
    r1 = ScrecSystem(ScrecConfig(**base, ddr_fraction=frac)).simulate(tr, tr.header)
    assert r0.counters["ddr_rows"] == 0
    assert r1.counters["cold_rows"] == total - top[:k].sum()
    assert r1.counters["pooled_rows"] == total  # every raw lookup is pooled by the EMB cores
    assert r0.breakdown_s["nand"] / r1.breakdown_s["nand"] == pytest.approx(predicted, rel=0.05)
    assert r0.samples_per_s < r1.samples_per_s


def test_devices_scale_embedding_until_the_uplink_saturates(uniform_trace: Path) -> None:
    tr = read_trace(uniform_trace)
    h = tr.header
    # NAND-bound (no DDR4, no SRAM, uniform rows): 16 equal tables split evenly -> linear
    emb = {}
    for n in (1, 2, 4):
        cfg = ScrecConfig(n_devices=n, device=NO_SRAM, tt_policy="none", ddr_fraction=0.0)
        emb[n] = ScrecSystem(cfg).simulate(tr, h).breakdown_s["embedding"]
    assert emb[1] / emb[2] == pytest.approx(2.0, rel=0.1)
    assert emb[1] / emb[4] == pytest.approx(4.0, rel=0.1)
    # host-link bound: pooled vectors of 16 tables x d16 x 4 B per sample are tiny here, so make
    # the output dominate with a slow per-device link (0.05 GB/s) and a shared 0.1 GB/s uplink.
    # N = 1 -> 2 halves the stage (each device sends half over its own link, the uplink keeps
    # up); from N = 2 on, the uplink carries everything at 0.1 GB/s, so the stage can never be
    # shorter than bytes / 0.1 GB/s and more devices barely help.
    slow = SmartSSDParams(fpga=NO_SRAM.fpga, host_link_bandwidth=0.05e9, host_link_efficiency=1.0)
    out = 2 * 1024 * 16 * 16 * 4  # 2 batches x B x tables x dim x 4 B
    stage, res = {}, {}
    for n in (1, 2, 4, 8):
        cfg = ScrecConfig(n_devices=n, device=slow, tt_policy="none", host_uplink_bandwidth=0.1e9)
        res[n] = ScrecSystem(cfg).simulate(tr, h)
        stage[n] = res[n].breakdown_s["embedding"]
    assert res[1].breakdown_s["to_host"] == pytest.approx(out / 0.05e9, rel=0.01)
    assert stage[1] / stage[2] == pytest.approx(2.0, rel=0.05)
    for n in (2, 4, 8):
        assert stage[n] >= out / 0.1e9
    assert stage[4] / stage[8] < 1.2
    assert res[8].utilisation["host_uplink"] > 0.8


def test_ablations_are_slower(zipf_trace: Path) -> None:
    tr = read_trace(zipf_trace)
    h = tr.header
    # a small SRAM and 0.86 MB of DDR4 per device, so that most lookups go to NAND unless TT
    # takes the tables with the most cold lookups per TT byte
    small = {"ddr_fraction": 0.0002, "n_devices": 2, "device": SMALL_SRAM}
    full = ScrecSystem(ScrecConfig(**small)).simulate(tr, h)
    no_tt = ScrecSystem(ScrecConfig(**small, tt_policy="none")).simulate(tr, h)
    by_index = ScrecSystem(ScrecConfig(**small, sharding="index")).simulate(tr, h)
    assert full.samples_per_s > no_tt.samples_per_s
    assert full.samples_per_s > by_index.samples_per_s
    assert full.counters["tt_macs"] > 0 and no_tt.counters["tt_macs"] == 0


def test_dense_stage_on_fpga_or_host(zipf_trace: Path) -> None:
    tr = read_trace(zipf_trace)
    model = get_model("rm2")
    if model.num_tables != tr.header.num_tables:  # the dense stage only needs the MLP shapes
        from dataclasses import replace

        model = replace(model, num_tables=tr.header.num_tables)
    on_fpga = ScrecSystem(ScrecConfig(n_devices=2), model=model).simulate(tr, tr.header)
    on_host = ScrecSystem(ScrecConfig(n_devices=2, mlp_on="host"), model=model).simulate(
        tr, tr.header
    )
    assert on_fpga.breakdown_s["dense"] > 0 and on_host.breakdown_s["dense"] > 0
    assert on_fpga.counters["mlp_macs"] > 0 and on_host.counters["mlp_macs"] == 0
    host = ScrecConfig().host_cpu
    b = tr.header.batch_size
    expected = 2 * host.mlp_time_s(model.dense_flops() * b, host.cores)
    assert on_host.breakdown_s["dense"] == pytest.approx(expected, rel=1e-9)


def test_devices_report_and_determinism(zipf_trace: Path) -> None:
    tr = read_trace(zipf_trace)
    s1 = ScrecSystem(ScrecConfig(n_devices=2, ddr_fraction=0.001))
    r1 = s1.simulate(tr, tr.header)
    r2 = ScrecSystem(ScrecConfig(n_devices=2, ddr_fraction=0.001)).simulate(tr, tr.header)
    assert r1.to_dict() | {"wall_s": 0, "simulated_lookups_per_wall_s": 0} == r2.to_dict() | {
        "wall_s": 0,
        "simulated_lookups_per_wall_s": 0,
    }
    assert len(s1.devices_report) == 2
    for dev in s1.devices_report:
        for key in ("nand", "ddr4", "sram", "emb_cores", "tt_cores", "mlp_cores", "host_link"):
            assert 0.0 <= dev["utilisation"][key] <= 1.0 + 1e-9
    assert r1.lookups == tr.total_lookups


def test_placement_statistics_and_capacity(zipf_trace: Path) -> None:
    tr = read_trace(zipf_trace)
    ids, counts, lookups = table_statistics(tr, tr.header.num_tables)
    assert lookups.sum() == tr.total_lookups
    for i, c in zip(ids, counts, strict=True):
        assert np.all(np.diff(c) <= 0)  # hottest first
        assert len(np.unique(i)) == len(i)
    cfg = ScrecConfig(n_devices=2, tt_policy="none", ddr_fraction=0.001)
    pl = default_placement(tr.header, tr, cfg)
    for j, summ in enumerate(pl.summary):
        assert summ["ddr4_bytes"] <= 0.001 * cfg.device.ddr_capacity_bytes
        assert summ["sram_bytes"] <= cfg.device.onchip_bytes
        assert sum(1 for t in pl.tables if t.device == j) == summ["tables"]


def test_configuration_errors(zipf_trace: Path) -> None:
    with pytest.raises(ConfigError, match="n_devices"):
        ScrecConfig(n_devices=0)
    with pytest.raises(ConfigError, match="mlp_on"):
        ScrecConfig(mlp_on="gpu")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ddr_fraction"):
        ScrecConfig(ddr_fraction=2.0)
    tr = read_trace(zipf_trace)
    pl = default_placement(tr.header, tr, ScrecConfig(n_devices=1))
    pl.tables = pl.tables[:-1]
    with pytest.raises(ConfigError, match="placement"):
        ScrecSystem(ScrecConfig(n_devices=1)).simulate(tr, tr.header, placement=pl)


def test_plan_placement_matches_the_built_in_index_plan(zipf_trace: Path) -> None:
    """A plan (simrec.shard.plan) with the lowest-index rows of each table on DDR4 and the rest on
    NAND, read through the plan's Remapper, simulates like the built-in index sharding: the same
    rows reach each tier; only the NAND page layout differs (the built-in plan keeps a full copy
    at row ids, the plan packs the NAND band from its first rank), which moves a few reads between
    pages."""
    from simrec.shard.plan import Band, DevicePlan, Plan, TablePlan
    from simrec.sim.systems.screc import PlanPlacement

    tr = read_trace(zipf_trace)
    h = tr.header
    frac = 0.01
    cfg = ScrecConfig(n_devices=1, device=NO_SRAM, tt_policy="none", sharding="index")
    cfg = ScrecConfig(**{**cfg.__dict__, "ddr_fraction": frac})
    built_in = default_placement(h, tr, cfg)
    tables = []
    for t, s in enumerate(h.tables):
        k = built_in.tables[t].ddr_below
        tables.append(
            TablePlan(
                name=s.name,
                rows=s.rows,
                dim=s.dim,
                bands=[
                    Band(device="ssd0", tier="dram", rows=(0, k)),
                    Band(device="ssd0", tier="nand", rows=(k, s.rows)),
                ],
            )
        )
    plan = Plan(devices=[DevicePlan(name="ssd0")], tables=tables).check()
    a = ScrecSystem(cfg).simulate(tr, h, placement=built_in)
    b = ScrecSystem(cfg).simulate(tr, h, placement=PlanPlacement(plan, h))
    assert b.samples_per_s == pytest.approx(a.samples_per_s, rel=0.01)
    for key in ("ddr_rows", "cold_rows", "sram_rows", "pooled_rows", "host_bytes", "tt_macs"):
        assert a.counters.get(key) == b.counters.get(key), key
    assert a.counters["ddr_rows"] > 0 and a.counters["cold_rows"] > 0
    assert b.counters["nand_page_reads"] == pytest.approx(a.counters["nand_page_reads"], rel=0.01)


def test_plan_placement_tt_band(zipf_trace: Path) -> None:
    from simrec.functional.spec import TTSpec
    from simrec.shard.plan import single_device_plan
    from simrec.sim.components.fpga import tt_macs_per_row
    from simrec.sim.systems.screc import PlanPlacement

    tr = read_trace(zipf_trace)
    h = tr.header
    plan = single_device_plan(h, device="ssd0", tier="sram", codec=TTSpec(ranks=[8, 8]))
    pp = PlanPlacement(plan, h)
    res = ScrecSystem(ScrecConfig(n_devices=1)).simulate(tr, h, placement=pp)
    shape = next(iter(pp.tt.values()))
    # every lookup is reconstructed: MACs = lookups x (q1 R1 q2 R2 + q1 q2 R2 q3) for d = 16
    assert shape.dim == 16 and shape.ranks == (8, 8)
    assert res.counters["tt_macs"] == tr.total_lookups * tt_macs_per_row(shape)
    assert res.counters["cold_rows"] == 0 and res.counters["ddr_rows"] == 0
    assert res.counters["tt_rows"] == tr.total_lookups and res.counters["pooled_rows"] == 0
    bad = single_device_plan(h, device="ssd0", tier="hbm")
    with pytest.raises(ConfigError, match="hbm"):
        PlanPlacement(bad, h)


def test_fast_and_fine_modes_agree(tmp_path: Path) -> None:
    """The fine mode (one simpy process per cold row and per DRAM command) and the default fast
    mode give the same throughput within 6 % on a small NAND- and DDR4-heavy trace (1-3.6 % on
    three seeds). With only ~1,500 cold rows per device per batch the fast path is slightly
    optimistic (a plane held while its page waits for the bus; docs/screc.md §4); the gap shrinks
    with chunk size."""
    p = tmp_path / "small.trc"
    gen_zipf(p, tables=4, rows=200_000, dim=16, alpha=1.05, batches=1, batch_size=1024, pooling=2)
    tr = read_trace(p)
    cfg = ScrecConfig(n_devices=2, device=NO_SRAM, ddr_fraction=0.00001, tt_policy="none")
    fast = ScrecSystem(cfg, mode="fast").simulate(tr, tr.header)
    fine = ScrecSystem(cfg, mode="fine").simulate(tr, tr.header)
    assert fast.counters["cold_rows"] > 1000 and fast.counters["ddr_rows"] > 1000
    assert fine.counters["cold_rows"] == fast.counters["cold_rows"]
    assert fine.samples_per_s == pytest.approx(fast.samples_per_s, rel=0.06)
    assert fine.samples_per_s <= fast.samples_per_s


def test_plan_core_counts_and_uniform_ablation(zipf_trace: Path) -> None:
    """A plan's per-device core counts configure the FPGA (3 TT cores instead of the uniform 2
    make the TT stage 2/3 as long); plan_cores=False is the uniform-configuration ablation; a
    count that does not fit the FPGA budget is a ConfigError naming DSP."""
    from simrec.functional.spec import TTSpec
    from simrec.shard.plan import CoreConfig as PlanCores
    from simrec.shard.plan import single_device_plan
    from simrec.sim.systems.screc import PlanPlacement

    tr = read_trace(zipf_trace)
    h = tr.header
    plan = single_device_plan(h, device="ssd0", tier="sram", codec=TTSpec(ranks=[8, 8]))
    planned = plan.model_copy(deep=True)
    planned.devices[0].cores = PlanCores(memory_centric=1, compute_centric=3, mlp=1)
    cfg = ScrecConfig(n_devices=1)
    uni = ScrecSystem(ScrecConfig(n_devices=1, plan_cores=False)).simulate(
        tr, h, placement=PlanPlacement(planned, h)
    )
    own = ScrecSystem(cfg).simulate(tr, h, placement=PlanPlacement(planned, h))
    assert cfg.device.cores.n_tt == 2
    assert own.breakdown_s["tt"] == pytest.approx(uni.breakdown_s["tt"] * 2 / 3, rel=1e-9)
    too_big = plan.model_copy(deep=True)
    too_big.devices[0].cores = PlanCores(memory_centric=1, compute_centric=5, mlp=1)
    with pytest.raises(ConfigError, match="DSP"):
        ScrecSystem(cfg).simulate(tr, h, placement=PlanPlacement(too_big, h))
