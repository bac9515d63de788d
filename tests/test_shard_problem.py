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


# ---- finer breakpoints for the tables that need them (docs/sharding.md) ---------------------------


def _zipf_table(name: str, nbytes: float, fine: bool = True, alpha: float = 1.1) -> TableStat:
    """A dim-16 fp32 table of about ``nbytes`` bytes with its Zipf CDF (coarse, and fine)."""
    from simrec.shard.problem import default_breakpoints, fine_breakpoints

    rows = max(int(nbytes // 64), 1)
    x, fx = default_breakpoints(16), fine_breakpoints(61)
    return TableStat(
        name=name,
        rows=rows,
        dim=16,
        lookups_per_batch=1000.0,
        cdf_x=tuple(x),
        cdf_c=tuple(zipf_cdf(rows, alpha, x)),
        fine_cdf_x=tuple(fx) if fine else (),
        fine_cdf_c=tuple(zipf_cdf(rows, alpha, fx)) if fine else (),
    )


def _assert_superset(coarse: TableStat, fine: TableStat) -> None:
    """Every (hot rows, share) of the coarse breakpoints is one of the refined table's."""
    from simrec.shard.problem import table_breaks

    rk, ck = table_breaks(coarse)
    rf, cf = table_breaks(fine)
    at = {int(r): float(c) for r, c in zip(rf, cf, strict=True)}
    for r, c in zip(rk, ck, strict=True):
        assert int(r) in at
        assert at[int(r)] == pytest.approx(float(c), abs=1e-9)
    x, c = np.asarray(fine.cdf_x), np.asarray(fine.cdf_c)
    assert np.all(np.diff(x) > 0) and np.all(np.diff(c) >= 0)
    slope = np.diff(c) / np.diff(
        x
    )  # an access CDF is concave: a finer point off the curve breaks it
    assert np.all(np.diff(slope) <= 1e-9 * slope.max())


def test_refined_breakpoints_are_a_superset_of_the_coarse_ones() -> None:
    for tab in (*synthetic_tables(12, seed=5), *synthetic_tables(4, seed=6, uniform=True)):
        r = tab.refined()
        _assert_superset(tab, r)
        assert r.fine_cdf_x == () and r.refined() == r
        assert len(r.cdf_x) >= len(tab.cdf_x)
        if tab.rows >= 2**18:  # ratio-2^(1/4) steps of at least one row even at 2^-15
            assert len(r.cdf_x) == 62
    # a table without a finer CDF is unchanged
    plain = _zipf_table("p", 1e6, fine=False)
    assert plain.refined() is plain


def test_refined_profile_table_follows_the_trace(tmp_path) -> None:
    from collections import Counter

    from simrec.trace.format import TableSpec, TraceHeader, TraceWriter
    from simrec.trace.stats import profile_trace

    rows = 20_000
    hdr = TraceHeader(tables=(TableSpec(name="big", rows=rows, dim=16),), batch_size=256)
    path = tmp_path / "t.trc"
    rng = np.random.default_rng(1)
    seen: list[int] = []
    with TraceWriter(path, hdr) as w:
        for _ in range(4):
            idx = (rng.zipf(1.2, 512) - 1) % rows  # 2 look-ups per sample
            seen += idx.tolist()
            w.write_batch(np.arange(0, 513, 2), idx)
    (tab,), _ = tables_from_profile(profile_trace(path, stack_distance=False))
    assert len(tab.fine_cdf_x) == 62
    r = tab.refined()
    _assert_superset(tab, r)
    hot = np.sort(np.array(list(Counter(seen).values())))[::-1]
    cum = np.concatenate([[0], np.cumsum(hot), np.full(rows, hot.sum())]) / hot.sum()
    for x, c in zip(r.cdf_x, r.cdf_c, strict=True):  # linear between whole rows
        k = int(np.floor(x * rows + 1e-9))
        want = cum[k] + (x * rows - k) * (cum[k + 1] - cum[k]) if k < rows else 1.0
        assert c == pytest.approx(want, abs=1e-12)
    # an old profile (no fine_cdf): the table has no finer CDF and is never refined
    d = profile_trace(path, stack_distance=False).to_dict()
    del d["fine_cdf_breakpoints"]
    for td in d["tables"]:
        del td["fine_cdf"]
    (old,), _ = tables_from_profile(d)
    assert old.fine_cdf_x == () and old.cdf_x == tab.cdf_x and old.cdf_c == tab.cdf_c


def test_disagreeing_finer_cdf_is_a_config_error() -> None:
    t = TableStat("x", 100, 4, 1.0, (0.0, 0.5, 1.0), (0.0, 0.9, 1.0),
                  fine_cdf_x=(0.0, 0.25, 0.75, 1.0), fine_cdf_c=(0.0, 0.95, 0.96, 1.0))  # fmt: skip
    with pytest.raises(ConfigError, match="disagrees"):
        t.refined()
    with pytest.raises(ConfigError, match="fine_cdf"):
        TableStat(
            "y", 100, 4, 1.0, (0.0, 1.0), (0.0, 1.0), fine_cdf_x=(0.0, 1.0), fine_cdf_c=(0.0,)
        )


def test_which_tables_are_refined_follows_the_documented_rule() -> None:
    from dataclasses import replace

    from simrec.shard.problem import (
        FINE_MIN_FAST_SHARE,
        FINE_OPTION_BUDGET,
        fine_candidates,
        two_tier_device,
    )

    assert FINE_MIN_FAST_SHARE == 0.25 and FINE_OPTION_BUDGET == 0.30  # as documented
    # fast tiers of 1 MB and 4 MB: the smaller decides, threshold 250 kB of table bytes
    devs = (two_tier_device("a", 1e6, 1e15), two_tier_device("b", 4e6, 1e15))
    sizes = [3e5, 64e3, 4e6, 2.5e5 + 64, 2.4e5, 1e6, 8e6]
    tabs = [_zipf_table(f"t{i}", b) for i, b in enumerate(sizes)]
    tabs.append(_zipf_table("nofine", 5e7, fine=False))  # largest, but no finer CDF
    tabs += [_zipf_table(f"s{i}", 2e4, alpha=1.0 + i / 100) for i in range(40)]  # small ones
    p = ShardProblem(tuple(tabs), devs, 64)
    # bytes >= 0.25 x 1 MB, largest first: t6 (8 MB), t2, t5, t0, t3; not t4 (240 kB), t1
    assert fine_candidates(p) == [6, 2, 5, 0, 3]
    coarse = build_options(replace(p, fine_tables=0))
    assert coarse.refined == () and coarse.problem.tables == p.tables
    n0 = coarse.total_options()

    def extra(k: int) -> int:
        return build_options(replace(p, fine_tables=k)).total_options() - n0

    auto = build_options(p)
    k = len(auto.refined)
    assert auto.refined == tuple(f"t{i}" for i in [6, 2, 5, 0, 3][:k])  # a prefix
    assert auto.total_options() - n0 == extra(k) <= FINE_OPTION_BUDGET * n0
    assert k == 5 or extra(k + 1) > FINE_OPTION_BUDGET * n0  # the next one would exceed it
    assert 0 < k < 5  # this instance has the budget binding
    for t, tab in enumerate(auto.problem.tables):
        assert (len(tab.cdf_x) > 17) == (tab.name in auto.refined)
        assert tab.fine_cdf_x == () if tab.name in auto.refined else tab == p.tables[t]
    assert auto.problem.fine_tables == 0  # the planned problem is not refined again
    # override: the N largest with a finer CDF, below the threshold too; 0 is off
    over = build_options(replace(p, fine_tables=7))
    assert over.refined == ("t6", "t2", "t5", "t0", "t3", "t4", "t1")
    # one-tier devices have no cut to refine
    flat = ShardProblem(tuple(tabs), (Device("m", (Tier("m", 1e9, 1e9),)),), 64)
    assert fine_candidates(flat) == [] and build_options(flat).refined == ()
    with pytest.raises(ConfigError, match="fine_tables"):
        ShardProblem(tuple(tabs), devs, 64, fine_tables=-1)


def test_finer_problem_keeps_every_coarse_cut_and_is_no_worse() -> None:
    from dataclasses import replace

    from simrec.shard.mip import solve
    from simrec.shard.problem import two_tier_device

    tabs = synthetic_tables(8, seed=2, rows_range=(1e4, 1e6))
    fast = sum(t.table_bytes for t in tabs) * 0.1 / 2
    devs = tuple(two_tier_device(f"d{j}", fast, 1e15) for j in range(2))
    pc = ShardProblem(tabs, devs, 4096, fine_tables=0)
    pf = replace(pc, fine_tables=3)
    oc, of = build_options(pc), build_options(pf)
    big = sorted(tabs, key=lambda t: -t.table_bytes)[:3]
    assert of.refined == tuple(t.name for t in big)
    for t in range(len(tabs)):
        cc, cf = oc.for_device(0), of.for_device(0)
        assert set(cc.cut_index[t]) <= set(cf.cut_index[t])
        for key, o in cc.cut_index[t].items():  # the same cut costs no more in the finer problem
            assert cf.work[t][cf.cut_index[t][key]][0] <= cc.work[t][o][0] * (1 + 1e-12)
    rc = solve(oc, strategy="full", gap=1e-9, time_limit=30)
    rf = solve(of, strategy="full", gap=1e-9, time_limit=30)
    assert rc.record.status == rf.record.status == "Optimal"
    assert rf.evaluation.objective <= rc.evaluation.objective * (1 + 1e-9)
