"""UVM row cache of the multi-GPU system: hit ratio = an independent brute-force LRU; batch time =
hits x HBM cost + misses x PCIe cost; option parsing and capacity errors."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simrec.errors import ConfigError
from simrec.sim.components.gpu import GpuParams
from simrec.sim.components.network import NetworkParams
from simrec.sim.components.pcie import PcieParams
from simrec.sim.systems.multi_gpu import LruRowCache, MultiGpuSystem, UvmCache, parse_uvm_cache
from simrec.trace.format import TableSpec, TraceHeader, read_trace, write_trace

G = 8
B, L, ROWS, DIM = 256, 4, 20_000, 64
ROW = DIM * 4
HBM = 2e6  # bytes per GPU: no 5.12 MB table fits, so every table is served from host DRAM


def brute_lru(stream: list[int], capacity: int) -> list[bool]:
    """Textbook LRU with an ordered dict: hit flags of a reference stream."""
    cache: OrderedDict[int, None] = OrderedDict()
    out = []
    for x in stream:
        if x in cache:
            cache.move_to_end(x)
            out.append(True)
        else:
            out.append(False)
            if capacity > 0:
                cache[x] = None
                if len(cache) > capacity:
                    cache.popitem(last=False)
    return out


def zipf_trace(tmp: Path, batches: int = 4, seed: int = 1, a: float = 1.2, rows: int = ROWS):
    rng = np.random.default_rng(seed)
    h = TraceHeader(
        tables=tuple(TableSpec(name=f"t{i}", rows=rows, dim=DIM) for i in range(G)),
        batch_size=B,
    )
    off = np.arange(G * B + 1, dtype=np.int64) * L
    bs = []
    for _ in range(batches):
        idx = (rng.zipf(a, G * B * L) - 1) % rows
        bs.append({"offsets": off, "indices": idx.astype(np.int64)})
    return read_trace(write_trace(tmp / "z.trc", h, bs))


def system(cache: UvmCache | None, **kw) -> MultiGpuSystem:
    gpu = replace(GpuParams.h100_sxm(), hbm_capacity_bytes=HBM)
    return MultiGpuSystem(
        [gpu] * G,
        NetworkParams.hgx_h100_astrasim(),
        [PcieParams.gen5_x16()] * G,
        host_capacity_bytes=1e13,
        uvm_cache=cache,
        **kw,
    )


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("capacity", [0, 1, 5, 37, 200])
def test_lru_row_cache_equals_brute_force(seed, capacity, dense):
    rng = np.random.default_rng(seed)
    cache = LruRowCache(capacity, {0: 0, 1: 300}, 600, dense=dense)
    stream, flags = [], []
    for _ in range(40):  # batches of distinct rows of two tables, sorted, skewed
        for t in (0, 1):
            rows = np.unique((rng.zipf(1.3, 30) - 1) % 300)
            flags.extend(cache.access(t, rows).tolist())
            stream.extend((rows + 300 * t).tolist())
    expect = brute_lru(stream, capacity)
    assert flags == expect
    assert cache.hits == sum(expect) and cache.refs == len(stream)


def test_parse_uvm_cache():
    assert parse_uvm_cache("none") is None and parse_uvm_cache(None) is None
    assert parse_uvm_cache("lru:100000") == UvmCache("lru", rows=100_000)
    assert parse_uvm_cache("lru:0.1") == UvmCache("lru", hbm_share=0.1)
    assert parse_uvm_cache("LRU:25%") == UvmCache("lru", hbm_share=0.25)
    for bad in ("lfu:0.1", "lru", "lru:abc", "lru:1.5", "lru:-3", "lru:0%"):
        with pytest.raises(ConfigError) as e:
            parse_uvm_cache(bad)
        assert e.value.fix


def expected_run(r, capacity: int):
    """Independent model of the cached run: per GPU an OrderedDict LRU fed, batch by batch and
    table by table, the sorted distinct rows; hits are gathered from HBM (calibrated gather), the
    missed rows cross PCIe (payload + one 24 B TLP header each, data.md §5.1)."""
    g = GpuParams.h100_sxm()
    bw_hbm = g.gather_eff(ROW) * 3.35e12  # data.md §5.2 peak
    raw = 16 * 32e9 * 128 / 130 / 8  # Gen5 x16 (data.md §5.1)
    caches: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(G)]
    refs = hits = 0
    emb = 0.0
    pcie_bytes = 0.0
    for b in r:
        per_gpu = []
        for t in range(G):  # table-wise default: table t on GPU t (host band, served by t % G)
            idx = b.table_indices(t)
            uq, cnt = np.unique(idx, return_counts=True)
            c = caches[t]
            hit_lookups = misses = 0
            for row, n in zip(uq.tolist(), cnt.tolist(), strict=True):
                refs += 1
                if row in c:
                    c.move_to_end(row)
                    hits += 1
                    hit_lookups += n
                else:
                    misses += 1
                    if capacity:
                        c[row] = None
                        if len(c) > capacity:
                            c.popitem(last=False)
            t_hbm = g.kernel_launch_s + hit_lookups * ROW / bw_hbm if hit_lookups else 0.0
            t_pcie = misses * (ROW + 24) / raw
            pcie_bytes += misses * (ROW + 24)
            per_gpu.append(max(t_hbm, t_pcie))
        emb += max(per_gpu)
    return refs, hits, emb, pcie_bytes


@pytest.mark.parametrize(("share", "rows"), [(0.05, ROWS), (0.5, ROWS), (1.0, ROWS), (0.5, 10**9)])
def test_system_hit_ratio_and_time_follow_an_lru_of_distinct_rows(tmp_path, share, rows):
    # 10^9 rows per table: a key space beyond DENSE_KEY_LIMIT, relabelled densely
    r = zipf_trace(tmp_path, rows=rows)
    res = system(UvmCache("lru", hbm_share=share)).simulate(r, r.header)
    cap = int(share * HBM // ROW)  # no band in HBM: the whole HBM is free for the cache
    assert res.counters["uvm_cache_rows"] == G * cap
    refs, hits, emb, pcie_bytes = expected_run(r, cap)
    assert res.counters["uvm_cache_refs"] == refs
    assert res.counters["uvm_cache_hits"] == hits
    assert res.counters["uvm_cache_hit_ratio"] == pytest.approx(hits / refs)
    assert res.counters["pcie_bytes"] == pytest.approx(pcie_bytes)
    assert res.breakdown_s["embedding"] == pytest.approx(emb, rel=1e-9)
    assert 0 < hits < refs


def test_bigger_cache_hits_more_and_zero_rows_equals_no_cache(tmp_path):
    r = zipf_trace(tmp_path)
    none = system(None).simulate(r, r.header)
    zero = system(UvmCache("lru", rows=0)).simulate(r, r.header)
    assert zero.counters["uvm_cache_hits"] == 0
    assert zero.counters["pcie_bytes"] == none.counters["pcie_bytes"]
    assert zero.sim_time_s == pytest.approx(none.sim_time_s, rel=1e-12)
    ratios = [
        system(UvmCache("lru", rows=n)).simulate(r, r.header).counters["uvm_cache_hit_ratio"]
        for n in (100, 1000, 7000)
    ]
    assert ratios[0] < ratios[1] < ratios[2]


def test_cache_that_does_not_fit_free_hbm_is_an_error(tmp_path):
    r = zipf_trace(tmp_path, batches=1)
    with pytest.raises(ConfigError) as e:
        system(UvmCache("lru", rows=10_000)).simulate(r, r.header, source="z.trc")
    assert "gpu0" in str(e.value) and "7812 rows" in e.value.fix  # 2e6 // 256


def test_cache_only_in_front_of_host_bands(tmp_path):
    # with room for the tables in HBM nothing is cached and nothing crosses PCIe
    r = zipf_trace(tmp_path, batches=1)
    s = MultiGpuSystem(
        [GpuParams.h100_sxm()] * G,
        NetworkParams.hgx_h100_astrasim(),
        [PcieParams.gen5_x16()] * G,
        host_capacity_bytes=1e12,
        uvm_cache=UvmCache("lru", hbm_share=0.1),
    )
    res = s.simulate(r, r.header)
    assert "uvm_cache_hits" not in res.counters and res.counters["pcie_bytes"] == 0


def test_static_hot_band_plus_lru_over_the_cold_band(tmp_path):
    from simrec.shard.plan import plan_from_dict

    r = zipf_trace(tmp_path, batches=3)
    hot = list(range(500))  # the 500 hottest Zipf ranks (rows 0..499) in gpu2's HBM
    plan = plan_from_dict(
        {
            "devices": [{"name": f"gpu{i}"} for i in range(G)] + [{"name": "dram0"}],
            "tables": [
                {
                    "name": f"t{t}",
                    "rows": ROWS,
                    "dim": DIM,
                    "order": {"kind": "hot_set", "hot_rows": hot},
                    "bands": [
                        {"device": "gpu2", "tier": "hbm", "rows": [0, 500]},
                        {"device": "dram0", "tier": "host_dram", "rows": [500, ROWS]},
                    ],
                }
                for t in range(G)
            ],
        }
    )
    res = system(UvmCache("lru", hbm_share=0.5), plan=plan, host_names=["dram0"]).simulate(
        r, r.header
    )
    # gpu2 holds 8 hot bands of 500 rows; its cache gets half of what is left
    free = HBM - G * 500 * ROW
    assert res.counters["uvm_cache_rows"] == int(0.5 * free // ROW)
    cap = int(0.5 * free // ROW)
    c: OrderedDict[int, None] = OrderedDict()
    refs = hits = 0
    for b in r:
        for t in range(G):
            idx = b.table_indices(t)
            for row in np.unique(idx[idx >= 500]).tolist():
                key = t * ROWS + row
                refs += 1
                if key in c:
                    c.move_to_end(key)
                    hits += 1
                else:
                    c[key] = None
                    if len(c) > cap:
                        c.popitem(last=False)
    assert res.counters["uvm_cache_refs"] == refs and res.counters["uvm_cache_hits"] == hits
    cold_rows = refs - hits
    assert res.counters["pcie_bytes"] == pytest.approx(cold_rows * (ROW + 24))
