"""Ascend-like NPU: strategy formulas vs the DES, feasibility, distribution independence, mappers.

Golden numbers are computed by hand below from the preset values, which come from
reference/papers.md §A.4 (ini values: UB 256 KiB, L1 1 MiB, ddr_rate 32 B/cycle, ub_to_l2 64 B/cycle;
512 B MTE2 alignment) and the formulas of §A.3 as written out in simrec.sim.components.npu.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simrec.errors import ConfigError
from simrec.hw.npu import load_npu_hw, npu_device
from simrec.shard.npu_mapping import (
    NpuMapping,
    Part,
    asymmetric_mapping,
    estimate,
    greedy_mapping,
    load_mapping,
    npu_tables_from_trace,
    symmetric_mapping,
)
from simrec.sim.components.npu import (
    STRATEGIES,
    SharedBandwidth,
    infeasible_reason,
    output_cost,
    strategy_cost,
)
from simrec.sim.systems.npu import NpuSystem, npu_report
from simrec.trace.format import TableSpec, TraceHeader, read_trace, write_trace


def params(name: str = "ascend910", **kw):
    p = npu_device(load_npu_hw(name))[1].to_params()
    return replace(p, **kw) if kw else p


def make_trace(
    path: Path, rows, lookups, batch_size=64, batches=2, dim=16, seed=0, dist="uniform", even=False
):
    """Tables with ``lookups[t]`` look-ups per batch spread over the batch's bags (at random cut
    points, or ``even``ly: ``lookups[t]`` must then be a multiple of the batch size)."""
    rng = np.random.default_rng(seed)
    h = TraceHeader(
        tables=tuple(TableSpec(name=f"t{i}", rows=r, dim=dim) for i, r in enumerate(rows)),
        batch_size=batch_size,
    )
    out = []
    for _ in range(batches):
        lens, idx = [], []
        for r, n in zip(rows, lookups, strict=True):
            cut = np.sort(rng.integers(0, n + 1, batch_size - 1))
            lens.append(np.full(batch_size, n // batch_size) if even else np.diff(np.r_[0, cut, n]))
            if dist == "uniform":
                idx.append(rng.integers(0, r, n))
            elif dist == "one-row":
                idx.append(np.full(n, r // 2, dtype=np.int64))
            else:  # zipf-like: hot low rows
                idx.append(np.minimum(rng.zipf(1.3, n) - 1, r - 1))
        off = np.r_[0, np.cumsum(np.concatenate(lens))].astype(np.int64)
        out.append({"offsets": off, "indices": np.concatenate(idx).astype(np.int64)})
    return write_trace(path, h, out)


# ---- presets ---------------------------------------------------------------------------------


def test_presets_carry_papers_a4_values():
    p = params("ascend910")
    # papers.md §A.4: ai_core_cnt=32, l1_size=1048576, ub_size=262144, HBM 1.2 TB/s
    assert (p.cores, p.l1_bytes, p.ub_bytes, p.gm_Bps, p.coupled) == (
        32, 1048576, 262144, 1.2e12, True,
    )  # fmt: skip
    # 256 TFLOPS / (32 x 4096 MAC x 2) and ddr_rate 32 B/cycle
    assert p.freq_hz == pytest.approx(256e12 / (32 * 4096 * 2))
    assert p.mte2_Bps == pytest.approx(32 * 256e12 / (32 * 4096 * 2))
    b = params("ascend910b")
    # 910B: 48 vector cores, ub_size=196608, separated, 32 B x 24 x 1.8 GHz aggregate
    assert (b.cores, b.ub_bytes, b.coupled) == (48, 196608, False)
    assert b.gm_Bps == pytest.approx(32 * 24 * 1.8e9)
    assert b.mte2_Bps == pytest.approx(32 * 1.8e9)


def test_yaml_rejects_mte1_on_separated_and_missing_mte1_on_coupled(tmp_path):
    text = Path(load_npu_hw("ascend910b").source).read_text()
    bad = text.replace(
        "      mte3:                          # UB -> GM",
        "      mte1: {bandwidth: 100 GB/s, issue: 20 ns}\n      mte3:",
    )
    f = tmp_path / "bad.yaml"
    f.write_text(bad)
    with pytest.raises(ConfigError, match="no L1->UB path") as e:
        load_npu_hw(f)
    assert "bad.yaml" in str(e.value) and "remove core.mte1" in str(e.value)
    text = Path(load_npu_hw("ascend910").source).read_text()
    i = text.index("      mte1:")
    j = text.index("      mte3:")
    f.write_text(text[:i] + text[j:])
    with pytest.raises(ConfigError, match="core.mte1 is missing"):
        load_npu_hw(f)


# ---- strategy formulas -----------------------------------------------------------------------


def hand_costs(n: int, rows: int, dim: int = 16) -> dict[str, float]:
    """papers.md §A.3 with the ascend910 numbers, computed without simrec."""
    f = 256e12 / (32 * 4096 * 2)  # core clock
    bw2, t2 = 32 * f, 250e-9  # MTE2 (ddr_rate 32 B/cycle), issue
    bw1, t1 = 128 * f, 20e-9  # MTE1 L1->UB
    r = dim * 4
    S = rows * r
    C = (262144 - 65536) / 2  # UB minus the reserve, double buffered
    K = math.ceil(S / C)
    tv = (8 + math.ceil(r / 256)) / f  # 8 cycles + row width over a 2048-bit vector unit
    line = 512 * math.ceil(r / 512)  # a 64 B row moves a whole 512 B transfer
    return {
        "GM": n * (t2 + line / bw2),
        "L1": n * (t1 + r / bw1),
        "GM-UB": K * t2 + S / bw2 + n * tv,
        "L1-UB": K * t1 + S / bw1 + n * tv,
    }


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_unloaded_cost_equals_formula_in_the_des(tmp_path, strategy):
    rows, n, B = 8000, 3000, 64
    p = params()
    want = hand_costs(n, rows)[strategy]
    assert strategy_cost(p, strategy, n, rows * 64, 64).time_s == pytest.approx(want, rel=1e-12)
    r = read_trace(make_trace(tmp_path / "t.trc", [rows], [n], batch_size=B, batches=3))
    m = NpuMapping("test", p.cores, [Part(0, 0, rows, 0, strategy)], ("t0",))
    res = NpuSystem(p, m).simulate(r, r.header)
    out = B * 16 * 4 / (64 * f_910()) + 250e-9  # MTE3 write of B pooled fp32 rows (one chunk)
    assert res.latency_s["max"] == pytest.approx(want + out, rel=1e-9)
    assert res.sim_time_s == pytest.approx(3 * (want + out), rel=1e-9)
    if strategy in ("L1", "L1-UB"):  # one-off L1 fill: K DMA issues + S over MTE2
        S = rows * 64
        pre = math.ceil(S / 98304) * 250e-9 + S / (32 * f_910())
        assert res.counters["preload_s"] == pytest.approx(pre, rel=1e-12)


def f_910() -> float:
    return 256e12 / (32 * 4096 * 2)


def test_output_cost_formula():
    p = params()
    # 4096 bags x 64 dims x 4 B = 1 MiB -> ceil(1 MiB / 96 KiB) = 11 MTE3 issues
    assert output_cost(p, 4096, 64) == pytest.approx(
        11 * 250e-9 + 4096 * 64 * 4 / (64 * f_910()), rel=1e-12
    )


def test_l1_strategies_refused_when_the_table_does_not_fit():
    p = params()
    fits, too_big = 1024 * 1024, 1024 * 1024 + 64
    for s in ("L1", "L1-UB"):
        assert infeasible_reason(p, fits, s) is None
        why = infeasible_reason(p, too_big, s)
        assert why is not None and "L1 holds 1,048,576 B" in why
        with pytest.raises(ConfigError, match="L1 holds"):
            strategy_cost(p, s, 10, too_big, 64)
    for s in ("GM", "GM-UB"):
        assert infeasible_reason(p, too_big, s) is None


def test_l1_ub_refused_on_the_separated_910b(tmp_path):
    b = params("ascend910b")
    why = infeasible_reason(b, 64 * 100, "L1-UB")  # a 6.4 KB table fits any L1
    assert why is not None and "coupled" in why and "separated" in why
    assert infeasible_reason(b, 64 * 100, "L1") is not None  # no L1->UB path at all
    tables = npu_tables_from_trace(read_trace(make_trace(tmp_path / "sep.trc", [100], [500])))
    m = asymmetric_mapping(tables, b, time_limit=2)
    assert all(q.strategy in ("GM", "GM-UB") for q in m.parts)
    bad = NpuMapping("x", b.cores, [Part(0, 0, 100, 0, "L1-UB")], ("t0",))
    with pytest.raises(ConfigError, match="coupled"):
        bad.validate(tables, b)


def test_gm_ub_cost_does_not_depend_on_the_index_distribution(tmp_path):
    p = params()
    rows, n = 20_000, 4000
    times = {}
    for dist in ("uniform", "zipf", "one-row"):
        r = read_trace(make_trace(tmp_path / f"{dist}.trc", [rows], [n], dist=dist, seed=3))
        m = NpuMapping("t", p.cores, [Part(0, 0, rows, 0, "GM-UB")], ("t0",))
        times[dist] = NpuSystem(p, m).simulate(r, r.header).sim_time_s
    assert times["uniform"] == times["zipf"] == times["one-row"]
    # ...while a split GM-UB table follows where the look-ups land (the cut matters, not GM-UB)
    m2 = NpuMapping(
        "t", p.cores, [Part(0, 0, rows // 2, 0, "GM-UB"), Part(0, rows // 2, rows, 1, "GM-UB")],
        ("t0",),
    )  # fmt: skip
    r1 = read_trace(make_trace(tmp_path / "u2.trc", [rows], [n], dist="uniform", seed=3))
    r2 = read_trace(make_trace(tmp_path / "z2.trc", [rows], [n], dist="zipf", seed=3))
    t1 = NpuSystem(p, m2).simulate(r1, r1.header).sim_time_s
    t2 = NpuSystem(p, m2).simulate(r2, r2.header).sim_time_s
    assert t2 > t1


# ---- the shared global memory --------------------------------------------------------------


def test_shared_bandwidth_processor_sharing_matches_theory():
    import simpy

    env = simpy.Environment()
    ch = SharedBandwidth(env, 100.0)
    done = {}

    def flow(name, nbytes, cap, start):
        yield env.timeout(start)
        yield from ch.transfer(nbytes, cap)
        done[name] = env.now

    # three flows capped at 60 B/s on a 100 B/s channel: 33.3 each until the first ends
    env.process(flow("a", 100, 60, 0))
    env.process(flow("b", 200, 60, 0))
    env.process(flow("c", 200, 60, 0))
    env.run()
    # a: 100 B at 100/3 -> t = 3; then b, c have 100 B left each at 50 B/s -> t = 5
    assert done["a"] == pytest.approx(3.0)
    assert done["b"] == pytest.approx(5.0) and done["c"] == pytest.approx(5.0)
    assert ch.utilisation(5.0) == pytest.approx(1.0)
    env2 = simpy.Environment()
    ch2 = SharedBandwidth(env2, 100.0)
    env2.process(_one(env2, ch2, done))
    env2.run()
    assert done["solo"] == pytest.approx(10.0)  # alone, a flow runs at its cap (30 B/s)


def _one(env, ch, done):
    yield from ch.transfer(300, 30)
    done["solo"] = env.now


def test_contention_on_the_910b_gm(tmp_path):
    """48 cores x 57.6 GB/s exceed the 1.38 TB/s aggregate: 48 GM-UB streams of S bytes take
    48 S / 1.3824 TB/s instead of S / 57.6 GB/s."""
    b = params("ascend910b")
    rows = [200_000] * 48
    r = read_trace(make_trace(tmp_path / "c.trc", rows, [1] * 48, batch_size=1, batches=1))
    m = NpuMapping(
        "t",
        48,
        [Part(t, 0, rows[t], t, "GM-UB") for t in range(48)],
        tuple(f"t{i}" for i in range(48)),
    )
    res = NpuSystem(b, m).simulate(r, r.header)
    S = 200_000 * 64
    local = math.ceil(S / 73728) * 250e-9 + (8 + 1) / 1.8e9 + (16 * 4 / 115.2e9 + 250e-9)
    assert res.sim_time_s == pytest.approx(local + 48 * S / (32 * 24 * 1.8e9), rel=1e-9)


# ---- mappings ---------------------------------------------------------------------------------


def test_symmetric_baselines(tmp_path):
    p = params(cores=4)
    t = npu_tables_from_trace(
        read_trace(make_trace(tmp_path / "sym.trc", [10, 5000, 300, 70, 90000], [5] * 5))
    )
    by_count = symmetric_mapping(t, p, by="count")
    assert [q.core for q in by_count.parts] == [0, 1, 2, 3, 0]
    assert {q.strategy for q in by_count.parts} == {"GM"}
    by_rows = symmetric_mapping(t, p, by="rows")
    # LPT on bytes: 90000 -> c0, 5000 -> c1, 300 -> c2, 70 -> c3, 10 -> c3
    assert {t[q.table].name: q.core for q in by_rows.parts} == {
        "t4": 0, "t1": 1, "t2": 2, "t3": 3, "t0": 3,
    }  # fmt: skip


def test_mip_splits_a_hot_table_and_beats_the_baseline(tmp_path):
    p = params(cores=4)
    tr = make_trace(tmp_path / "h.trc", [2_000_000, 1000, 1000, 1000], [6000, 100, 100, 100])
    tables = npu_tables_from_trace(read_trace(tr))
    sym = symmetric_mapping(tables, p)
    asym = asymmetric_mapping(tables, p, time_limit=5)
    assert len(asym.parts_of(0)) == 4  # the 2M-row GM table is cut over all four cores
    assert asym.estimate_s < sym.estimate_s / 2.5
    # the solver ran and reported (its status depends on the time limit and machine load)
    assert asym.record["status"] not in ("NotSolved", "Skipped") and "bound_s" in asym.record
    assert asym.record["bound_s"] <= asym.estimate_s * (1 + 1e-9)
    # the small tables go to L1 (they fit) rather than GM
    assert {q.strategy for q in asym.parts if q.table > 0} <= {"L1", "L1-UB"}


def test_greedy_respects_l1_capacity(tmp_path):
    p = params(cores=2)
    rows = [16_000] * 5  # 1.02 MB each: one per core fits the 1 MiB L1
    t = npu_tables_from_trace(read_trace(make_trace(tmp_path / "l1cap.trc", rows, [3000] * 5)))
    for m in (greedy_mapping(t, p), asymmetric_mapping(t, p, time_limit=3)):
        m.validate(t, p)
        for c in range(2):
            l1 = sum((q.hi - q.lo) * 64 for q in m.core_parts(c) if q.strategy.startswith("L1"))
            assert l1 <= p.l1_bytes


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cores=st.integers(2, 4),
    rows=st.lists(st.integers(50, 300_000), min_size=1, max_size=5),
    seed=st.integers(0, 10_000),
    skew=st.floats(0.0, 3.0),
    dist=st.sampled_from(["uniform", "zipf"]),
    gm_share=st.sampled_from([None, 1.0, 1.5]),
)
def test_asymmetric_never_slower_than_symmetric(tmp_path, cores, rows, seed, skew, dist, gm_share):
    """Property over random small instances; ``gm_share`` (aggregate GM bandwidth in units of one
    core's MTE2 rate) makes the shared global memory a bottleneck, which the MIP only bounds."""
    rng = np.random.default_rng(seed)
    share = (np.arange(1, len(rows) + 1, dtype=float) ** -skew)[rng.permutation(len(rows))]
    lookups = np.maximum(1, np.round(4000 * share / share.sum())).astype(int).tolist()
    tr = make_trace(tmp_path / f"p{seed}.trc", rows, lookups, dist=dist, seed=seed, batches=2)
    tables = npu_tables_from_trace(read_trace(tr))
    p = params(cores=cores)
    if gm_share is not None:
        p = replace(p, gm_Bps=gm_share * p.mte2_Bps)
    sym = symmetric_mapping(tables, p)
    asym = asymmetric_mapping(tables, p, time_limit=2)
    assert asym.estimate_s <= sym.estimate_s * (1 + 1e-12)  # the cost model
    r = read_trace(tr)
    t_sym = NpuSystem(p, sym).simulate(r, r.header).sim_time_s
    r = read_trace(tr)
    t_asym = NpuSystem(p, asym).simulate(r, r.header).sim_time_s
    assert t_asym <= t_sym * (1 + 1e-9)  # the DES replay of the same trace


# ---- the JSON contract ------------------------------------------------------------------------


def test_report_contract_both(tmp_path):
    tr = make_trace(tmp_path / "j.trc", [500_000, 2000, 40], [3000, 200, 50], batches=2)
    res, d = npu_report(
        "ascend910", tr, mapping="both", time_limit=3, out_mapping=tmp_path / "m.json"
    )
    assert len(d["cores"]) == 32
    assert set(d["cores"][0]) == {"core", "tables", "strategy", "busy_s"}
    served = [t for c in d["cores"] for t in c["tables"]]
    assert any(s.startswith("t0[") for s in served)  # the big GM table is split
    busy = sum(c["busy_s"] for c in d["cores"])
    assert busy > 0
    sp = d["speedup_asymmetric_vs_symmetric"]
    assert sp == pytest.approx(d["symmetric"]["sim_time_s"] / d["sim_time_s"])
    assert sp >= 1.0
    json.dumps(d)  # plain data
    m = load_mapping(tmp_path / "m.json")
    assert m.parts == sorted(m.parts, key=lambda q: (q.table, q.lo))
    res2, d2 = npu_report("ascend910", tr, mapping=str(tmp_path / "m.json"))
    assert d2["sim_time_s"] == pytest.approx(d["sim_time_s"], rel=1e-12)


def test_report_rejects_unknown_mapping(tmp_path):
    tr = make_trace(tmp_path / "u.trc", [100], [10])
    with pytest.raises(ConfigError, match="neither a mapping kind nor a file"):
        npu_report("ascend910", tr, mapping="fastest")


def test_estimate_matches_des_on_uncontended_mean_batch(tmp_path):
    p = params(cores=4)
    tr = make_trace(tmp_path / "e.trc", [5000, 100_000, 300], [800, 800, 800], batches=1)
    t = npu_tables_from_trace(read_trace(tr))
    m = greedy_mapping(t, p)
    core, ms = estimate(m, t, p)
    r = read_trace(tr)
    assert NpuSystem(p, m).simulate(r, r.header).sim_time_s == pytest.approx(ms, rel=1e-9)


# ---- the CLI bodies (hooked into `simrec simulate` / `simrec shard` by the lead) --------------


def test_cli_bodies(tmp_path, capsys):
    from simrec.sim.systems.npu import has_npu, npu_shard_cli, simulate_npu_cli

    assert has_npu("ascend910b") and not has_npu("cpu_dram")
    tr = make_trace(tmp_path / "c.trc", [300_000, 500, 60], [2000, 300, 40], batches=2)
    d = simulate_npu_cli("ascend910", tr, "both", None, as_json=True, time_limit=2)
    printed = json.loads(capsys.readouterr().out)
    assert printed["speedup_asymmetric_vs_symmetric"] == pytest.approx(
        d["speedup_asymmetric_vs_symmetric"]
    )
    assert len(printed["cores"]) == 32
    simulate_npu_cli("ascend910", tr, "symmetric", None, as_json=False, out=tmp_path / "o")
    text = capsys.readouterr().out
    assert "mapping     symmetric" in text and "t0 (GM)" in text
    assert (tmp_path / "o" / "result.json").is_file()
    plan = tmp_path / "plan.json"
    d = npu_shard_cli("ascend910", tr, True, 2.0, 1e-3, "highs", str(plan), as_json=True)
    out = json.loads(capsys.readouterr().out)
    assert out["plan"] == str(plan) and out["makespan_s"] <= out["heuristics"]["symmetric-count"]
    assert {"status", "objective_s", "bound_s", "gap", "solve_time_s"} <= set(out)
    # the saved plan replays through `simulate --mapping FILE`
    d2 = simulate_npu_cli("ascend910", tr, str(plan), None, as_json=True)
    capsys.readouterr()
    assert d2["mapping"] == "file"
    npu_shard_cli("ascend910", tr, False, 2.0, 1e-3, "highs", None, as_json=False)
    assert "Heuristic" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="fast"):
        simulate_npu_cli("ascend910", tr, "symmetric", None, as_json=True, mode="fine")


def test_mapping_errors_name_the_table_and_the_fix(tmp_path):
    p = params(cores=2)
    tr = make_trace(tmp_path / "v.trc", [1000, 50], [100, 10])
    t = npu_tables_from_trace(read_trace(tr))
    gap = NpuMapping("x", 2, [Part(0, 0, 400, 0, "GM"), Part(0, 500, 1000, 1, "GM"),
                              Part(1, 0, 50, 0, "GM")], ("t0", "t1"))  # fmt: skip
    with pytest.raises(ConfigError, match="do not cover") as e:
        gap.validate(t, p)
    assert "table 't0'" in str(e.value) and "Fix:" in str(e.value)
    core = NpuMapping("x", 2, [Part(0, 0, 1000, 5, "GM"), Part(1, 0, 50, 0, "GM")], ("t0", "t1"))
    with pytest.raises(ConfigError, match="core 5 does not exist"):
        core.validate(t, p)
    l1 = NpuMapping(
        "x", 2, [Part(0, 0, 1000, 0, "L1"), Part(1, 0, 50, 0, "L1")], ("t0", "t1")
    )  # 64 KB + 3.2 KB: fits one 1 MiB L1
    l1.validate(t, p)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({**l1.to_dict(), "parts": [{"table": "t9", "rows": [0, 1],
                                                         "core": 0, "strategy": "GM"}]}))  # fmt: skip
    with pytest.raises(ConfigError, match="t9") as e:
        load_mapping(f)
    assert "parts[0]" in str(e.value)


def test_small_hot_table_is_replicated_over_bag_slices(tmp_path):
    """An 18-row table with most look-ups cannot be cut by rows four ways: the mapper replicates
    it, each replica serving a quarter of the bags (its look-ups and its pooled outputs)."""
    p = params(cores=4)
    tr = make_trace(tmp_path / "s.trc", [18, 5000], [8192, 256], batch_size=256, even=True)
    tables = npu_tables_from_trace(read_trace(tr))
    m = asymmetric_mapping(tables, p, time_limit=3)
    hot = m.parts_of(0)
    assert (
        len(hot) == 4 and {q.sk for q in hot} == {4} and sorted(q.sq for q in hot) == [0, 1, 2, 3]
    )
    assert all((q.lo, q.hi) == (0, 18) for q in hot)
    assert m.label(hot[1], 18) == "t0{1/4}"
    r = read_trace(tr)
    res = NpuSystem(p, m).simulate(r, r.header)
    assert res.counters["lookups_gm"] + res.counters["lookups_l1"] + res.counters[
        "lookups_ub"
    ] == pytest.approx(2 * (8192 + 256))
    # equal bags: each replica sees exactly its share; only t1's random row ranges differ from
    # their mean, so the DES is within 1 % of the plan's estimate
    assert res.latency_s["mean"] == pytest.approx(m.estimate_s, rel=0.01)
    sym = symmetric_mapping(tables, p)
    assert res.sim_time_s < NpuSystem(p, sym).simulate(read_trace(tr), r.header).sim_time_s / 3
    bad = NpuMapping("x", 4, [replace(hot[0], sq=0), replace(hot[1], sq=0)] + m.parts_of(1),
                     ("t0", "t1"))  # fmt: skip
    with pytest.raises(ConfigError, match="sample-split"):
        bad.validate(tables, p)
    m.save(tmp_path / "m.json")
    assert load_mapping(tmp_path / "m.json").parts == m.parts
