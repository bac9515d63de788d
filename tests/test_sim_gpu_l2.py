"""The GPU model's L2 and per-bag output terms: the L2 hit count against a brute-force LRU, the
output term's scaling with bags, fast vs fine agreement with both on, presets without the new keys
unchanged, and the schema's checks of the new keys."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

import numpy as np
import pytest

from simrec.errors import ConfigError
from simrec.hw import load_hw, loads_hw
from simrec.sim.components.gpu import GpuParams
from simrec.sim.components.hbm import HbmParams
from simrec.sim.components.network import NetDim, NetworkParams
from simrec.sim.components.pcie import PcieParams
from simrec.sim.systems.multi_gpu import MultiGpuSystem
from simrec.trace.format import Batch, TableSpec, TraceHeader

PEAK = HbmParams.h100_sxm_hbm3().peak_bw_Bps


def _gpu(**kw: object) -> GpuParams:
    base = dict(
        name="g",
        peak_flops=1e15,
        mlp_efficiency=0.6,
        kernel_launch_s=5e-6,
        hbm=HbmParams.h100_sxm_hbm3(),
        hbm_capacity_bytes=80e9,
        gather_efficiency=((64, 0.25), (512, 0.5)),
    )
    base.update(kw)
    return GpuParams(**base)  # type: ignore[arg-type]


def _system(p: GpuParams, mode: str = "fast") -> MultiGpuSystem:
    net = NetworkParams(dims=(NetDim(npus=1, bandwidth_Bps=1e12, latency_s=0.0),), name="none")
    return MultiGpuSystem(
        [p], net, [PcieParams(generation=5, lanes=16)], 1e12, gpu_names=["g"], mode=mode
    )


def _trace(tables: list[tuple[int, int]], B: int, L: int, nb: int, seed: int = 0, zipf=False):
    """``tables`` = (rows, dim) each; ``nb`` batches of ``B`` bags of ``L`` lookups per table."""
    rng = np.random.default_rng(seed)
    h = TraceHeader(
        tables=tuple(TableSpec(name=f"t{i}", rows=r, dim=d) for i, (r, d) in enumerate(tables)),
        batch_size=B,
    )
    T = len(tables)
    off = np.arange(T * B + 1, dtype=np.int64) * L
    out = []
    for i in range(nb):
        parts = []
        for r, _ in tables:
            if zipf:
                parts.append((rng.zipf(1.2, B * L) - 1) % r)
            else:
                parts.append(rng.integers(0, r, B * L))
        idx = np.concatenate(parts).astype(np.int64)
        out.append(Batch(offsets=off, indices=idx, num_tables=T, number=i))
    return h, out


def _brute_lru_hits(keys: list[int], capacity: int) -> int:
    lru: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for k in keys:
        if k in lru:
            hits += 1
            lru.move_to_end(k)
        else:
            lru[k] = None
            if len(lru) > capacity:
                lru.popitem(last=False)
    return hits


@pytest.mark.parametrize("zipf", [False, True])
def test_l2_hits_match_a_brute_force_lru(zipf: bool) -> None:
    # two tables, 48 B and 64 B rows -> line 64 B (sector-rounded max); L2 of 300 lines
    tables = [(2000, 12), (500, 16)]
    h, batches = _trace(tables, B=64, L=5, nb=4, seed=1, zipf=zipf)
    p = _gpu(l2_bytes=300 * 64, l2_bandwidth_Bps=4e12)
    res = _system(p).simulate(batches, h)
    # the stream the model describes: per batch, table by table, every lookup in index order
    keys = []
    offs = {0: 0, 1: tables[0][0]}
    for b in batches:
        for t in range(2):
            keys += (b.table_indices(t) + offs[t]).tolist()
    want = _brute_lru_hits(keys, 300)
    assert 0 < want < len(keys)
    assert res.counters["l2_hit_lookups"] == want
    assert res.counters["l2_lookups"] == len(keys)


def test_l2_hits_are_cheaper_and_priced_by_sectors() -> None:
    # a table that fits the L2: after the first batch every lookup hits
    h, batches = _trace([(1000, 24)], B=256, L=8, nb=3, seed=2)  # 96 B rows = 3 sectors
    p = _gpu(l2_bytes=1e6, l2_bandwidth_Bps=5e12)
    res = _system(p).simulate(batches, h)
    n = 256 * 8
    hits = res.counters["l2_hit_lookups"]
    misses = 3 * n - hits
    eff96 = float(np.interp(np.log2(96), np.log2([64, 512]), [0.25, 0.5]))
    want = 3 * 5e-6 + misses * 96 / (eff96 * PEAK) + hits * 96 / 5e12
    assert res.sim_time_s == pytest.approx(want, rel=1e-9)
    off = _system(_gpu()).simulate(batches, h)  # no L2 model: everything from HBM
    assert off.sim_time_s == pytest.approx(3 * 5e-6 + 3 * n * 96 / (eff96 * PEAK), rel=1e-9)
    assert res.sim_time_s < off.sim_time_s
    # 40 B rows move two 32 B sectors
    assert _gpu(l2_bytes=1e6, l2_bandwidth_Bps=5e12).l2_row_s(40) == pytest.approx(64 / 5e12)


def test_output_term_scales_with_bags() -> None:
    p = _gpu(output_efficiency=0.2)
    base = p.gather_time_s(1e5, 256)
    for bags in (1000, 2000, 8000):
        assert p.gather_time_s(1e5, 256, bags=bags) - base == pytest.approx(
            bags * 256 / (0.2 * PEAK), rel=1e-12
        )
    # in the system: same lookups per batch, B bags of L vs 2B bags of L/2
    h1, b1 = _trace([(100_000, 64)], B=512, L=8, nb=2, seed=3)
    h2, b2 = _trace([(100_000, 64)], B=1024, L=4, nb=2, seed=3)
    s = _system(p)
    d = s.simulate(b2, h2).sim_time_s - s.simulate(b1, h1).sim_time_s
    assert d == pytest.approx(2 * 512 * 256 / (0.2 * PEAK), rel=1e-9)
    assert s.simulate(b1, h1).counters["output_bytes"] == 2 * 512 * 256


def test_without_new_keys_the_model_is_unchanged() -> None:
    h, batches = _trace([(100_000, 32)], B=512, L=8, nb=2, seed=4)
    eff = float(np.interp(np.log2(128), np.log2([64, 512]), [0.25, 0.5]))
    res = _system(_gpu()).simulate(batches, h)
    assert res.sim_time_s == pytest.approx(2 * (5e-6 + 512 * 8 * 128 / (eff * PEAK)), rel=1e-9)
    assert "l2_lookups" not in res.counters and "output_bytes" not in res.counters


@pytest.mark.parametrize("zipf", [False, True])
def test_fast_and_fine_agree_with_l2_and_outputs(zipf: bool) -> None:
    h, batches = _trace([(50_000, 32), (20_000, 64)], B=512, L=6, nb=2, seed=5, zipf=zipf)
    p = _gpu(output_efficiency=0.15, l2_bytes=1e6, l2_bandwidth_Bps=4e12)
    fast = _system(p, "fast").simulate(batches, h)
    fine = _system(p, "fine").simulate(batches, h)
    assert fine.counters["l2_hit_lookups"] == fast.counters["l2_hit_lookups"] > 0
    assert fine.sim_time_s == pytest.approx(fast.sim_time_s, rel=0.05)


def test_gpu_params_reject_bad_values() -> None:
    for kw in (
        {"output_efficiency": 0.0},
        {"output_efficiency": 1.5},
        {"output_efficiency": -0.1},
        {"l2_bytes": -1.0},
        {"l2_bandwidth_Bps": 0.0},
        {"l2_bandwidth_Bps": -1e12},
    ):
        with pytest.raises(ConfigError):
            _gpu(**kw)
    g = _gpu(l2_bandwidth_Bps=1e12)
    assert not g.l2_modelled  # no L2 size: nothing to hit
    assert replace(g, l2_bytes=1e6).l2_modelled


@pytest.mark.parametrize(
    "key,value",
    [
        ("output_efficiency", "-0.1"),
        ("output_efficiency", "1.2"),
        ("output_efficiency", "0"),
        ("output_efficiency", "'12 %'"),
        ("l2_bandwidth", "-2 TB/s"),
        ("l2_bandwidth", "0 TB/s"),
        ("l2_bandwidth", "3 GHz"),
        ("l2_bandwith", "3 TB/s"),  # misspelt: unknown key
    ],
)
def test_schema_rejects_bad_gpu_l2_and_output_values(key: str, value: str) -> None:
    text = f"extends: multi_gpu\ndevices:\n  gpu0:\n    {key}: {value}\n"
    with pytest.raises(ConfigError):
        loads_hw(text)


def test_schema_carries_the_new_keys_into_the_simulator() -> None:
    hw = loads_hw(
        "extends: multi_gpu\ndevices:\n  gpu0:\n    output_efficiency: 0.12\n"
        "    l2_bandwidth: 3.5 TB/s\n"
    )
    g = hw.gpu_params("gpu0")
    assert g.output_efficiency == 0.12
    assert g.l2_bandwidth_Bps == pytest.approx(3.5e12)
    assert g.l2_bytes == pytest.approx(50e6)  # the preset's l2_size
    assert g.l2_modelled
    base = load_hw("multi_gpu").gpu_params("gpu1")
    assert base.output_efficiency is None and base.l2_bandwidth_Bps is None
