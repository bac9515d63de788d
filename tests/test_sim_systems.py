"""System-level simulation tests: CPU-DRAM embedding stage, load models, results, DLRM FLOPs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simrec.errors import ConfigError
from simrec.sim.components.cpu import CpuParams
from simrec.sim.components.dram import DramParams
from simrec.sim.results import LoadSpec
from simrec.sim.systems.cpu_dram import CpuDramSystem, Socket
from simrec.trace.format import TableSpec, TraceHeader, read_trace, write_trace
from simrec.trace.generate import gen_uniform
from simrec.workloads.dlrm import MODELS, get_model


def make_trace(
    path: Path, tables=4, rows=200_000, dim=16, batch=256, pooling=8, batches=3, seed=0
) -> Path:
    """Uniform indices, fixed bags of ``pooling`` lookups (the library's own generator)."""
    return gen_uniform(
        path, tables=tables, rows=rows, dim=dim, batches=batches, batch_size=batch,
        pooling=pooling, seed=seed,
    ).path  # fmt: skip


def mem_bound_socket(channels: int, ranks: int = 1) -> Socket:
    # a CPU so fast that the DRAM bounds the embedding stage
    cpu = CpuParams(1, 64, 4e9, 64, 0.5, 1.0, 0.0)
    return Socket(cpu, DramParams.ddr4_3200_dramsim3(channels, ranks), 64 * 2**30, "s0")


def test_doubling_channels_doubles_memory_bound_embedding_stage(tmp_path):
    r = read_trace(make_trace(tmp_path / "t.trc"))
    res = []
    for ch in (2, 4):
        s = CpuDramSystem([mem_bound_socket(ch)])
        res.append(s.simulate(r, r.header))
    assert res[0].breakdown_s["embedding_dram"] > res[0].breakdown_s["embedding_pool"]
    assert res[0].sim_time_s / res[1].sim_time_s == pytest.approx(2.0, rel=0.10)
    assert res[1].lookups_per_s == pytest.approx(res[1].lookups / res[1].sim_time_s)


def test_system_fast_and_fine_agree(tmp_path):
    r = read_trace(make_trace(tmp_path / "t.trc", batches=2, batch=128))
    fast = CpuDramSystem([mem_bound_socket(2, 2)], mode="fast").simulate(r, r.header)
    fine = CpuDramSystem([mem_bound_socket(2, 2)], mode="fine").simulate(r, r.header)
    assert fast.counters["dram_activates"] == fine.counters["dram_activates"]
    assert fast.sim_time_s == pytest.approx(fine.sim_time_s, rel=0.05)
    assert fine.counters["fine_commands"] >= fine.counters["dram_bursts"]


def test_cpu_bound_stage_is_the_pooling_formula(tmp_path):
    r = read_trace(make_trace(tmp_path / "t.trc", batches=1))
    cpu = CpuParams(1, 4, 1e9, 64, 0.5, 0.25, 100.0)  # slow cores: compute bound
    s = CpuDramSystem([Socket(cpu, DramParams.ddr4_3200_dramsim3(4, 2), 2**34, "s0")])
    res = s.simulate(r, r.header)
    lookups = r.total_lookups
    expected = (lookups * 100 + lookups * 16 / (64 * 0.25)) / 1e9 / 4  # 4 cores, independent
    assert res.sim_time_s == pytest.approx(expected, rel=1e-9)
    assert res.utilisation["s0.cores"] == pytest.approx(1.0)


def test_dedupe_reads_each_row_once_per_batch(tmp_path):
    h = TraceHeader(tables=(TableSpec(name="a", rows=1000, dim=16),), batch_size=4)
    p = write_trace(
        tmp_path / "d.trc",
        h,
        [{"offsets": np.array([0, 3, 6, 9, 12]), "indices": np.array([5, 5, 7] * 4)}],
    )
    r = read_trace(p)
    on = CpuDramSystem([mem_bound_socket(1)], dedupe=True).simulate(r, r.header)
    off = CpuDramSystem([mem_bound_socket(1)], dedupe=False).simulate(r, r.header)
    assert on.counters["dram_bursts"] == 2
    assert off.counters["dram_bursts"] == 12


def test_tables_that_do_not_fit_are_a_config_error(tmp_path):
    r = read_trace(make_trace(tmp_path / "t.trc", rows=200_000, batches=1))
    small = replace(mem_bound_socket(1), dram_capacity_bytes=10e6)
    with pytest.raises(ConfigError) as e:
        CpuDramSystem([small]).simulate(r, r.header, source="t.trc")
    assert "table 't" in str(e.value) and e.value.fix


def test_latency_mode_poisson_littles_law_and_percentiles(tmp_path):
    r = read_trace(make_trace(tmp_path / "t.trc", batches=60, batch=64, pooling=4))
    s = CpuDramSystem([mem_bound_socket(1)])
    service = s.simulate(r, r.header).latency_s["mean"]
    light = s.simulate(r, r.header, LoadSpec("latency", rate_per_s=0.05 / service, seed=1))
    heavy = s.simulate(r, r.header, LoadSpec("latency", rate_per_s=0.9 / service, seed=1))
    # light load: almost no queueing
    assert light.latency_s["p50"] == pytest.approx(service, rel=0.05)
    assert heavy.latency_s["p99"] > heavy.latency_s["p50"] >= light.latency_s["p50"] * 0.99
    # Little's law over the whole run: time-average batches in system = rate x mean latency
    df = heavy.per_batch
    area = float(df["latency_s"].sum())
    assert area / heavy.sim_time_s == pytest.approx(
        heavy.batches / heavy.sim_time_s * heavy.latency_s["mean"], rel=1e-9
    )
    # exponential gaps: mean gap close to 1 / rate
    gaps = np.diff(df["arrival_s"].to_numpy())
    assert gaps.mean() == pytest.approx(service / 0.9, rel=0.3)


def test_results_are_deterministic_and_written(tmp_path):
    r = read_trace(make_trace(tmp_path / "t.trc", batches=3))
    s = CpuDramSystem([mem_bound_socket(2)], model=get_model("dlrm-criteo-kaggle"))
    a = s.simulate(r, r.header, LoadSpec("latency", rate_per_s=2000.0, seed=3)).to_dict()
    b = s.simulate(r, r.header, LoadSpec("latency", rate_per_s=2000.0, seed=3))
    bd = b.to_dict()
    for k in ("wall_s", "simulated_lookups_per_wall_s"):
        a.pop(k), bd.pop(k)
    assert a == bd
    assert a["breakdown_s"]["dense"] > 0
    paths = b.write(tmp_path / "out")
    assert {p.name for p in paths} == {"result.json", "batches.csv", "batches.parquet"}
    j = json.loads((tmp_path / "out" / "result.json").read_text())
    for key in ("system", "samples_per_s", "lookups_per_s", "latency_s", "breakdown_s"):
        assert key in j
    assert set(j["latency_s"]) >= {"mean", "p50", "p95", "p99"}


def test_bad_load_specs():
    with pytest.raises(ConfigError):
        LoadSpec("latency")
    with pytest.raises(ConfigError):
        LoadSpec("burst")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        LoadSpec(inflight=0)


def test_dlrm_kaggle_flops_independent():
    m = get_model("dlrm-criteo-kaggle")
    assert m.bottom_flops() == 2 * (13 * 512 + 512 * 256 + 256 * 64 + 64 * 16)
    # 26 tables + bottom output = 27 vectors -> 351 pairs; top input 16 + 351 = 367 (DLRM's width)
    assert m.interaction_out == 367
    assert m.interaction_flops() == 2 * 16 * 351
    assert m.top_flops() == 2 * (367 * 512 + 512 * 256 + 256 * 1)
    dcn = get_model("mlperf-dlrmv2-dcnv2")
    assert dcn.interaction_out == 27 * 128
    assert dcn.pooling == pytest.approx(214 / 26)  # data.md §1.2 multi-hot sizes
    assert set(MODELS) >= {"rm1", "rm2", "rm3"}
    with pytest.raises(ConfigError):
        get_model("rm9")


def test_slice_samples_and_split_queries(tmp_path):
    from simrec.sim.results import QuerySizes, slice_samples, split_queries

    r = read_trace(make_trace(tmp_path / "t.trc", tables=3, batch=16, pooling=2, batches=2))
    b = r.batch(0)
    s = slice_samples(b, 4, 9)
    assert s.batch_size == 5 and s.num_tables == 3
    for t in range(3):
        # independent: sample i of table t holds indices[offsets[t*B+i] : offsets[t*B+i+1]]
        want = np.concatenate(
            [b.indices[b.offsets[t * 16 + i] : b.offsets[t * 16 + i + 1]] for i in range(4, 9)]
        )
        np.testing.assert_array_equal(s.table_indices(t), want)
    qs = list(split_queries(r, QuerySizes("fixed", size=5)))
    assert [q.batch_size for q in qs] == [5, 5, 5, 1] * 2  # queries never span trace batches
    assert sum(q.num_lookups for q in qs) == r.total_lookups
    rng = np.random.default_rng(0)
    logn = QuerySizes("lognormal", size=40, sigma=0.5)
    draws = np.array([logn.draw(rng) for _ in range(4000)])
    assert np.median(draws) == pytest.approx(40, rel=0.05)  # median of a lognormal = exp(mu)
    emp = QuerySizes("empirical", values=(3, 7))
    assert {emp.draw(rng) for _ in range(50)} == {3, 7}
    assert QuerySizes("fixed", size=100, max_size=8).draw(rng) == 8
    with pytest.raises(ConfigError):
        QuerySizes("empirical")
    with pytest.raises(ConfigError):
        QuerySizes("fixed", size=0)


def test_latency_mode_with_query_sizes(tmp_path):
    from simrec.sim.results import QuerySizes

    r = read_trace(make_trace(tmp_path / "t.trc", batch=64, batches=2))
    s = CpuDramSystem([mem_bound_socket(1)])
    res = s.simulate(
        r, r.header, LoadSpec("latency", rate_per_s=1e5, query_sizes=QuerySizes("fixed", size=8))
    )
    assert res.batches == 16 and res.samples == 128
    assert res.lookups == r.total_lookups


# ------------------------------------------------------------------ LLC, per-bag and per-call costs
def _llc_socket(llc_bytes: float, bw: float, **kw) -> Socket:
    # a CPU so fast that memory bounds the embedding stage
    cpu = CpuParams(1, 64, 4e9, 64, 0.5, 1.0, 0.0, llc_bytes=llc_bytes, llc_bandwidth_Bps=bw, **kw)
    return Socket(cpu, DramParams.ddr4_3200_dramsim3(1, 1), 2**34, "s0")


def _batches(rows: tuple[int, ...], batch: int, pooling: int, n: int, seed: int = 0) -> list:
    from simrec.trace.format import Batch

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        idx = np.concatenate([rng.integers(0, r, batch * pooling) for r in rows]).astype(np.int64)
        offs = np.arange(0, len(idx) + 1, pooling, dtype=np.int64)
        out.append(Batch(offsets=offs, indices=idx, num_tables=len(rows), number=i))
    return out


def test_llc_hits_match_a_brute_force_lru():
    from collections import OrderedDict

    rows = (300, 200)
    h = TraceHeader(
        tables=tuple(TableSpec(name=f"t{i}", rows=r, dim=16) for i, r in enumerate(rows)),
        batch_size=8,
    )
    batches = _batches(rows, 8, 3, 12, seed=5)
    cap = 100  # rows of 64 B
    res = CpuDramSystem([_llc_socket(cap * 64, 50e9)]).simulate(batches, h)
    lru: OrderedDict = OrderedDict()
    hits = refs = 0
    for b in batches:
        for t in range(len(rows)):
            seen = set()
            for x in b.table_indices(t).tolist():  # distinct rows, first occurrence order
                if x in seen:
                    continue
                seen.add(x)
                refs += 1
                if (t, x) in lru:
                    hits += 1
                    lru.move_to_end((t, x))
                else:
                    lru[(t, x)] = True
                    if len(lru) > cap:
                        lru.popitem(last=False)
    assert 0 < hits < refs
    assert res.counters["llc_refs"] == refs and res.counters["llc_hits"] == hits
    assert res.counters["dram_bursts"] == refs - hits  # only the misses reach the DRAM


def test_table_in_the_llc_is_faster_than_without():
    h = TraceHeader(tables=(TableSpec(name="a", rows=2000, dim=16),), batch_size=256)
    batches = _batches((2000,), 256, 8, 12, seed=1)  # cold misses: at most the 2,000 rows
    no_llc = CpuDramSystem([_llc_socket(0, 0)]).simulate(batches, h)
    llc = CpuDramSystem([_llc_socket(8 * 2**20, 200e9)]).simulate(batches, h)
    assert llc.counters["llc_hits"] > 0.8 * llc.counters["llc_refs"]
    assert llc.sim_time_s < 0.5 * no_llc.sim_time_s
    assert llc.counters["dram_bursts"] < 0.2 * no_llc.counters["dram_bursts"]
    # hits at a low LLC bandwidth cost more than the DRAM would: the parameter is used
    slow = CpuDramSystem([_llc_socket(8 * 2**20, 0.1e9)]).simulate(batches, h)
    assert slow.sim_time_s > no_llc.sim_time_s
    hit_bytes = slow.counters["llc_hits"] * 64
    assert slow.breakdown_s["embedding_llc"] == pytest.approx(hit_bytes / 0.1e9, rel=1e-9)


def test_per_call_and_per_bag_costs_follow_the_formula(tmp_path):
    r = read_trace(make_trace(tmp_path / "t.trc", tables=3, batches=2, batch=128, pooling=4))
    cpu = CpuParams(1, 4, 1e9, 64, 0.5, 0.25, 100.0, bag_cycles=50.0, call_overhead_s=20e-6)
    s = CpuDramSystem([Socket(cpu, DramParams.ddr4_3200_dramsim3(4, 2), 2**34, "s0")])
    res = s.simulate(r, r.header)
    lookups, bags = r.total_lookups, 2 * 3 * 128
    compute = (lookups * 100 + lookups * 16 / (64 * 0.25) + bags * 50) / 1e9 / 4
    assert res.sim_time_s == pytest.approx(2 * 3 * 20e-6 + compute, rel=1e-9)
    assert res.breakdown_s["embedding_overhead"] == pytest.approx(2 * 3 * 20e-6, rel=1e-9)


def test_cpu_yaml_llc_and_overhead_fields(tmp_path):
    from simrec.hw import load_hw

    base = load_hw("cpu_dram")
    assert base.params("cpu0").has_llc is False  # the preset keeps its old behaviour
    p = tmp_path / "c.yaml"
    p.write_text(
        "extends: cpu_dram\n"
        "devices:\n"
        "  cpu0: {llc_bandwidth: 400 GB/s, bag_cycles: 12, call_overhead: 15 us}\n"
    )
    c = load_hw(p).params("cpu0")
    assert c.has_llc and c.llc_bandwidth_Bps == pytest.approx(400e9)
    assert c.llc_bytes == pytest.approx(60e6)
    assert c.bag_cycles == 12 and c.call_overhead_s == pytest.approx(15e-6)
