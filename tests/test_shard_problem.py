"""The sharding problem's data and cost model (simrec.shard.problem)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simrec.errors import ConfigError
from simrec.shard.problem import (
    CoreTemplate,
    Device,
    ShardProblem,
    TableStat,
    Tier,
    build_options,
    check_feasibility,
    devices_from_hw,
    devices_from_smartssd,
    synthetic_tables,
    tables_from_profile,
    tt_macs_per_row,
    tt_params,
    tt_shapes,
    zipf_cdf,
)


def _table(name: str, rows: int = 100, dim: int = 4, ell: float = 10.0, c=(0.0, 0.9, 1.0)):
    return TableStat(
        name=name,
        rows=rows,
        dim=dim,
        lookups_per_batch=ell,
        cdf_x=(0.0, 0.5, 1.0),
        cdf_c=tuple(c),
    )


# ---- TT arithmetic: golden values from shared/reference/data.md §4 and screc.md §4.3 -------------


def test_tt_shapes_and_params_match_data_md_section_4() -> None:
    # data.md §4: 10,131,227 rows -> p = 200·220·250; d=16 -> q = 2·2·4;
    # params r=8: 39,360; r=16: 135,040; r=32: 495,360; r=64: 1,891,840
    p, q = tt_shapes(10_131_227, 16)
    assert sorted(p) == [200, 220, 250]
    assert sorted(q) == [2, 2, 4]
    for r, want in ((8, 39_360), (16, 135_040), (32, 495_360), (64, 1_891_840)):
        assert tt_params(p, q, (r, r)) == want
    # data.md §4: 286,181 rows -> 53·72·75, r=8 -> 12,464 params
    p2, _ = tt_shapes(286_181, 16)
    assert sorted(p2) == [53, 72, 75]
    assert tt_params(p2, q, (8, 8)) == 12_464


@pytest.mark.parametrize(
    ("q", "r", "macs"),
    [((2, 2, 4), 8, 384), ((2, 4, 4), 16, 2_560), ((4, 4, 4), 32, 18_432), ((4, 4, 8), 64, 73_728)],
)
def test_tt_macs_per_row_match_screc_md_table(q, r, macs) -> None:
    # screc.md §4.3 table: MACs per row = q1·R1·q2·R2 + q1·q2·R2·q3
    assert tt_macs_per_row(q, (r, r)) == macs


def test_table_stat_tt_properties() -> None:
    t = TableStat("big", 10_131_227, 16, 1.0, (0.0, 1.0), (0.0, 1.0), tt_ranks=(8, 8))
    assert t.tt_bytes == 39_360 * 4  # fp32 cores, data.md §4 "157 KB fp32"
    assert t.tt_macs_per_row == 384
    assert t.tt_ratio == pytest.approx(10_131_227 * 16 * 4 / (39_360 * 4))
    # one slice per core: R0·q1·R1 + R1·q2·R2 + R2·q3·R3 = 16 + 128 + 32 elements
    assert t.tt_read_bytes_per_row == (1 * 2 * 8 + 8 * 2 * 8 + 8 * 4 * 1) * 4


def test_bad_cdf_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CDF"):
        TableStat("x", 10, 4, 1.0, (0.0, 0.5, 1.0), (0.0, 0.7, 0.6))
    with pytest.raises(ConfigError, match="rows"):
        TableStat("x", 0, 4, 1.0, (0.0, 1.0), (0.0, 1.0))


def test_zipf_cdf_is_concave_and_normalised() -> None:
    x = np.linspace(0, 1, 33)
    c = zipf_cdf(10_000, 1.1, x)
    assert c[0] == 0 and c[-1] == 1
    assert np.all(np.diff(c) >= 0)
    assert np.all(np.diff(c, 2) <= 1e-12)  # concave: hottest rows first


# ---- cost model -----------------------------------------------------------------------------------


def test_tier_lookup_cost_has_read_amplification() -> None:
    nand = Tier("nand", 1e12, 2.36e9, granule_bytes=4096)
    # a 64 B row still moves a 4 KiB LBA (data.md §5.5)
    assert nand.lookup_s(64) == pytest.approx(4096 / 2.36e9)
    assert nand.lookup_s(5000) == pytest.approx(8192 / 2.36e9)
    floor = Tier("x", 1e9, 1e9, access_s=1e-6)
    assert floor.lookup_s(64) == pytest.approx(1e-6)


def test_options_of_a_two_tier_table_by_hand() -> None:
    # rows 100, dim 4 x 4 B = 16 B/row; fast 1 s/lookup (16 B/s), slow 100 s/lookup, one channel
    dev = Device(
        "d",
        (Tier("fast", 16 * 100, 16.0, channel="m"), Tier("slow", 1e9, 0.16, channel="m")),
    )
    p = ShardProblem((_table("a"),), (dev,), batch_size=1)
    co = build_options(p).for_device(0)
    rows = co.rows[0]
    got = {tuple(r): float(w[0]) for r, w in zip(rows, co.work[0], strict=True)}
    # hot rows 0 / 50 / 100: work = ell * (c * 1 + (1 - c) * 100)
    assert got[(0, 100)] == pytest.approx(10 * 100)
    assert got[(50, 50)] == pytest.approx(10 * (0.9 + 0.1 * 100))
    assert got[(100, 0)] == pytest.approx(10 * 1)
    assert co.bytes[0][np.argmin(co.work[0][:, 0])][0] == 1600


def test_options_respect_tier_capacity() -> None:
    dev = Device("d", (Tier("fast", 16 * 50, 16.0), Tier("slow", 1e9, 0.16)))
    p = ShardProblem((_table("a"),), (dev,), batch_size=1)
    co = build_options(p).for_device(0)
    assert co.bytes[0][:, 0].max() <= 16 * 50


def test_infeasible_table_names_table_shortfall_and_options() -> None:
    dev = Device("d", (Tier("m", 1000, 1e9),))
    p = ShardProblem((_table("huge", rows=1000),), (dev, dev), batch_size=1)
    with pytest.raises(ConfigError) as e:
        check_feasibility(build_options(p))
    msg = str(e.value)
    assert "'huge'" in msg and "shortfall" in msg and "TT" in msg and "split" in msg


def test_model_larger_than_all_tiers_reports_the_total_shortfall() -> None:
    dev = Device("d", (Tier("m", 1600, 1e9),))
    tabs = tuple(_table(f"t{i}", rows=100) for i in range(3))  # 3 x 1600 B
    p = ShardProblem(tabs, (dev, dev), batch_size=1)
    with pytest.raises(ConfigError) as e:
        check_feasibility(build_options(p))
    msg = str(e.value)
    assert "shortfall" in msg and "1,600 B" in msg and "add devices" in msg


def test_template_outside_budget_is_not_offered() -> None:
    small = CoreTemplate("small", resources={"dsp": 10})
    big = CoreTemplate("big", resources={"dsp": 1000})
    dev = Device("d", (Tier("m", 1e9, 1e9),), templates=(small, big), resource_budget={"dsp": 100})
    assert [m.name for m in dev.usable_templates()] == ["small"]
    none = Device("d", (Tier("m", 1e9, 1e9),), templates=(big,), resource_budget={"dsp": 100})
    with pytest.raises(ConfigError, match="budget"):
        none.usable_templates()


# ---- adapters: the simulator's own numbers ----------------------------------------------------------


def test_smartssd_adapter_uses_the_simulator_parameters() -> None:
    from simrec.sim.components.smartssd import SmartSSDParams

    p = SmartSSDParams()
    devs = devices_from_smartssd(2, p)
    assert [d.name for d in devs] == ["csd0", "csd1"]
    sram, dram, nand = devs[0].tiers
    # KU15P on-chip (screc.md §1.2): (984 - 100 shell) BRAM36 x 4,608 B + 128 URAM x 36,864 B
    assert sram.capacity_bytes == (984 - 100) * 4608 + 128 * 36864
    assert dram.capacity_bytes == 4 * 2**30
    assert nand.capacity_bytes == 3.84e12
    # a cold row costs one pass through the slowest pipeline stage (controller 540 K IOPS)
    assert nand.lookup_s(64) == pytest.approx(1 / min(p.cold_row_stage_rates().values()))
    # DRAM random rows cannot beat the 64 B burst on the 19.2 GB/s bus
    assert dram.lookup_s(64) >= 64 / 19.2e9
    for m in devs[0].templates:
        assert m.mem_cores >= 1
        assert all(m.resources[k] <= devs[0].resource_budget[k] for k in m.resources)
        # on-chip bytes the cores' buffers take away
        assert m.reserved_bytes["sram"] > 0


def test_system_config_adapter_cpu_and_gpu_presets() -> None:
    from simrec.hw import load_hw

    hw = load_hw("cpu_dram")
    devs = devices_from_hw(hw)
    assert [d.name for d in devs] == list(hw.devices_of_kind("cpu"))
    t = devs[0].tiers[0]
    assert t.capacity_bytes == hw.capacity_of(t.name)
    assert devs[0].pool_s(64) > 0
    gpu = devices_from_hw(load_hw("multi_gpu"))
    assert len(gpu) == len(load_hw("multi_gpu").devices_of_kind("gpu"))
    hbm = gpu[0].tiers[0]
    # slower per byte for small rows (gather efficiency rises with row size)
    assert hbm.lookup_s(64) / 64 > hbm.lookup_s(512) / 512


def test_tables_from_profile_reads_a_real_profile(tmp_path) -> None:
    from simrec.trace.format import TableSpec, TraceHeader, TraceWriter
    from simrec.trace.stats import profile_trace

    hdr = TraceHeader(
        tables=(TableSpec(name="a", rows=50, dim=8), TableSpec(name="b", rows=20, dim=4)),
        batch_size=4,
    )
    path = tmp_path / "t.trc"
    rng = np.random.default_rng(0)
    with TraceWriter(path, hdr) as w:
        for _ in range(3):
            lengths = np.array([2, 1, 0, 3, 1, 1, 1, 1])  # table a: 6 lookups, b: 4
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            idx = np.concatenate([rng.integers(0, 50, 6), rng.integers(0, 20, 4)])
            w.write_batch(offsets, idx)
    tabs, bs = tables_from_profile(profile_trace(path, stack_distance=False))
    assert bs == 4
    assert [t.name for t in tabs] == ["a", "b"]
    assert tabs[0].lookups_per_batch == pytest.approx(6.0)
    assert tabs[1].lookups_per_batch == pytest.approx(4.0)
    assert tabs[0].cdf_c[-1] == pytest.approx(1.0) and tabs[0].cdf_x[0] == 0.0


def test_synthetic_tables_are_deterministic() -> None:
    a = synthetic_tables(20, seed=3)
    b = synthetic_tables(20, seed=3)
    assert a == b
    assert synthetic_tables(20, seed=4) != a
    assert all(math.isclose(t.cdf_c[-1], 1.0) for t in a)


def test_profile_table_without_lookups_gets_a_flat_cdf() -> None:
    prof = {
        "batch_size": 8,
        "batches": 2,
        "tables": [
            {"name": "a", "rows": 10, "dim": 4, "lookups": 0, "cdf_breakpoints": [0.0, 0.5, 1.0],
             "cdf": [float("nan")] * 3},
        ],
    }  # fmt: skip
    (t,), bs = tables_from_profile(prof)
    assert bs == 8 and t.lookups_per_batch == 0.0 and t.cdf_c == (0.0, 0.5, 1.0)


def test_csd_config_gives_smartssd_devices_from_its_own_parameters() -> None:
    from simrec.hw import load_hw
    from simrec.shard.problem import build_options, devices_from_hw, devices_from_smartssd

    hw = load_hw("screc")
    devs = devices_from_hw(hw)
    names = list(hw.devices_of_kind("csd"))
    assert [d.name for d in devs] == names and len(names) == 4
    assert all(d.kind == "csd" for d in devs)
    ref = devices_from_smartssd(1, hw.params(names[0]))[0]
    d0 = devs[0]
    assert [t.name for t in d0.tiers] == ["sram", "dram", "nand"]
    assert [t.capacity_bytes for t in d0.tiers] == [t.capacity_bytes for t in ref.tiers]
    assert d0.output_Bps == ref.output_Bps and len(d0.templates) == len(ref.templates)
    # identical CSDs share one option class
    p = ShardProblem(synthetic_tables(3, seed=0), devs, 64)
    assert build_options(p).cls_of == [0, 0, 0, 0]


def test_fine_breakpoints_for_the_largest_tables_only() -> None:
    from simrec.shard.problem import default_breakpoints, zipf_cdf

    a = synthetic_tables(40, seed=3)
    b = synthetic_tables(40, seed=3, fine_tables=5)
    assert [t.rows for t in a] == [t.rows for t in b]  # same draws
    big = sorted(range(40), key=lambda i: -a[i].table_bytes)[:5]
    x = np.concatenate([[0.0], np.geomspace(2.0**-15, 1.0, 61)])
    for i in range(40):
        if i in big:
            assert np.allclose(b[i].cdf_x, x)
            # same Zipf law, sampled finer: agrees with the coarse CDF where the ladders meet
            fx = np.asarray(b[i].cdf_x)
            matched = 0
            for xv, cv in zip(a[i].cdf_x, a[i].cdf_c, strict=True):
                k = int(np.argmin(np.abs(fx - xv)))
                assert fx[k] == pytest.approx(xv, rel=1e-9, abs=1e-15)  # every 4th fine point
                assert b[i].cdf_c[k] == pytest.approx(cv, rel=1e-9, abs=1e-12)
                matched += 1
            assert matched == 17
        else:
            assert b[i] == a[i]
            assert np.allclose(a[i].cdf_x, default_breakpoints(16))
    assert zipf_cdf(100, 1.1, np.array([1.0]))[0] == 1.0
