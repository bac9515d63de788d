"""Theory-vs-simulation tests of the DRAM component (the Ramulator habit, anchors.md §2.2).

Golden values: reference/data.md §5.3 (DDR4-3200 DRAMsim3 timing set): one 64 B burst = 4 tCK =
2.5 ns -> 25.6 GB/s per channel; tFAW = 34 tCK = 21.25 ns -> 4 activates per 21.25 ns -> 12.0 GB/s of
random row-miss 64 B reads per rank; two ranks approach the bus limit.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from simrec.errors import ConfigError
from simrec.sim.components.dram import (
    Dram,
    DramParams,
    channel_times,
    count_chunk,
    count_chunk_numpy,
    embedding_addresses,
)

TCK = 0.625e-9  # data.md §5.3


def run_chunks(p: DramParams, starts: np.ndarray, nb: int = 1, mode: str = "fast", chunks: int = 1):
    env = simpy.Environment()
    d = Dram(env, p, mode)  # type: ignore[arg-type]

    def proc():
        for c in np.array_split(starts, chunks):
            yield from d.read(c, nb)

    env.process(proc())
    env.run()
    return float(env.now), d


def random_lines(n: int, seed: int) -> np.ndarray:
    """Random 64 B-aligned addresses over 8 GiB: practically every access misses its row."""
    return np.random.default_rng(seed).integers(0, 2**33 // 64, n) * 64


def test_preset_matches_data_md():
    p = DramParams.ddr4_3200_dramsim3()
    assert p.burst_bytes == 64
    assert p.tBURST_s == pytest.approx(4 * TCK)  # one burst = 4 tCK = 2.5 ns
    assert p.peak_bw_per_channel_Bps == pytest.approx(25.6e9)  # 3200 MT/s x 8 B
    assert p.tRC == 52 + 22
    assert p.banks_per_rank == 16


@pytest.mark.parametrize("mode", ["fast", "fine"])
def test_unloaded_latency_equals_timing_formula(mode):
    """Closed bank tRCD+CL, row hit CL, row conflict tRP+tRCD+CL; each plus the 4-tCK burst."""
    p = DramParams.ddr4_3200_dramsim3()
    env = simpy.Environment()
    d = Dram(env, p, mode)
    a = np.array([0])
    same_bank_other_row = np.array([p.row_bytes * p.banks_per_rank * p.ranks * p.channels])
    assert p.decode(same_bank_other_row)["row"][0] == 1
    assert p.bank_index(p.decode(same_bank_other_row))[0] == 0
    got = {}

    def proc():
        got["closed"] = yield from d.read(a)
        yield env.timeout(1e-6)
        got["hit"] = yield from d.read(a)
        yield env.timeout(1e-6)
        got["conflict"] = yield from d.read(same_bank_other_row)

    env.process(proc())
    env.run()
    assert got["closed"] == pytest.approx((22 + 22 + 4) * TCK, rel=1e-9)
    assert got["hit"] == pytest.approx((22 + 4) * TCK, rel=1e-9)
    assert got["conflict"] == pytest.approx((22 + 22 + 22 + 4) * TCK, rel=1e-9)
    for k in got:
        assert got[k] == pytest.approx(p.latency_s(k), rel=1e-9)


def test_row_miss_random_is_tfaw_bound_per_rank():
    """data.md §5.3: random 64 B row misses on one rank: 4 x 64 B per tFAW = 12.0 GB/s."""
    p = DramParams.ddr4_3200_dramsim3()
    theory = 4 * 64 / (34 * TCK)  # 12.05e9
    assert theory == pytest.approx(12.0e9, rel=0.01)
    n = 16384
    t, d = run_chunks(p, random_lines(n, 1), chunks=4)
    assert d.activates == n  # every access opens a row
    assert n * 64 / t == pytest.approx(theory, rel=0.02)


def test_row_hit_streaming_reaches_bus_peak():
    p = DramParams.ddr4_3200_dramsim3()
    n = 16384
    t, d = run_chunks(p, np.arange(n, dtype=np.int64) * 64, chunks=4)
    assert d.activates == n * 64 // p.row_bytes  # one activate per 8 KiB row
    assert n * 64 / t == pytest.approx(25.6e9, rel=0.01)


def test_two_ranks_approach_bus_limit():
    one = DramParams.ddr4_3200_dramsim3(ranks=1)
    two = DramParams.ddr4_3200_dramsim3(ranks=2)
    n = 16384
    t1, _ = run_chunks(one, random_lines(n, 2), chunks=4)
    t2, _ = run_chunks(two, random_lines(n, 2), chunks=4)
    bw2 = n * 64 / t2
    assert bw2 > 0.88 * 25.6e9  # approaches the bus limit
    assert bw2 <= 25.6e9 * (1 + 1e-9)  # never above it
    assert t1 / t2 > 1.8


def test_row_hit_vs_row_miss_ratio_matches_timing_set():
    """Streaming is bus bound (tBURST per burst), random misses tFAW bound (tFAW/4 per burst)."""
    p = DramParams.ddr4_3200_dramsim3()
    n = 16384
    t_hit, _ = run_chunks(p, np.arange(n, dtype=np.int64) * 64, chunks=2)
    t_miss, _ = run_chunks(p, random_lines(n, 3), chunks=2)
    predicted = (34 / 4) / 4  # (tFAW / 4) / tBURST in cycles = 2.125
    assert t_miss / t_hit == pytest.approx(predicted, rel=0.03)


def test_doubling_channels_doubles_memory_bound_embedding_stage():
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 10_000_000, 20000)
    starts, nb = embedding_addresses(idx, 16 * 4)  # dim-16 fp32 rows: one burst each
    t1, _ = run_chunks(DramParams.ddr4_3200_dramsim3(channels=2, ranks=2), starts, nb, chunks=4)
    t2, _ = run_chunks(DramParams.ddr4_3200_dramsim3(channels=4, ranks=2), starts, nb, chunks=4)
    assert t1 / t2 == pytest.approx(2.0, rel=0.10)


CASES = {
    "random-1rank": (DramParams.ddr4_3200_dramsim3(ranks=1), random_lines(3000, 5), 1),
    "random-2rank": (DramParams.ddr4_3200_dramsim3(ranks=2), random_lines(3000, 6), 1),
    "stream": (DramParams.ddr4_3200_dramsim3(), np.arange(3000, dtype=np.int64) * 64, 1),
}


def _zipf_case():
    rng = np.random.default_rng(7)
    idx = np.minimum(rng.zipf(1.1, 2000), 1_000_000)
    s, nb = embedding_addresses(idx, 256)
    return DramParams.ddr4_3200_dramsim3(channels=2, ranks=2), s, nb


CASES["zipf-256B-2ch2rk"] = _zipf_case()
CASES["other-mapping"] = (
    DramParams.ddr4_3200_dramsim3(ranks=2).with_(
        address_mapping=("row", "bank", "bankgroup", "rank", "column", "channel")
    ),
    random_lines(3000, 8),
    1,
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_and_fine_modes_agree(case):
    p, starts, nb = CASES[case]
    t_fast, d_fast = run_chunks(p, starts, nb, "fast", chunks=3)
    t_fine, d_fine = run_chunks(p, starts, nb, "fine", chunks=3)
    assert d_fast.activates == d_fine.activates
    assert d_fast.bursts == d_fine.bursts
    assert t_fast == pytest.approx(t_fine, rel=0.05)
    assert d_fine.events > 0


def test_compiled_counts_equal_numpy_twin():
    p = DramParams.ddr4_3200_dramsim3(channels=3, ranks=2)  # 3 channels: not a power of two
    rng = np.random.default_rng(9)
    o1 = np.full(p.total_banks, -1, dtype=np.int64)
    o2 = o1.copy()
    for _ in range(5):
        starts = rng.integers(0, 2**22, 3000) * 64  # small range: many hits and conflicts
        a = count_chunk(p, starts, 3, o1)
        b = count_chunk_numpy(p, starts, 3, o2)
        np.testing.assert_array_equal(a.bursts, b.bursts)
        np.testing.assert_array_equal(a.acts, b.acts)
        np.testing.assert_array_equal(a.first_conflict, b.first_conflict)
        np.testing.assert_array_equal(o1, o2)
    assert (a.hits > 0).any() and (a.first_conflict > 0).any()


def test_decode_is_a_bijection_on_one_row_of_each_bank():
    p = DramParams.ddr4_3200_dramsim3(channels=2, ranks=2)
    n = p.total_banks * p.columns_per_row
    d = p.decode(np.arange(n, dtype=np.int64) * 64)
    assert (d["row"] == 0).all()
    key = p.bank_index(d) * p.columns_per_row + d["column"]
    assert len(np.unique(key)) == n


def test_empty_chunk_and_zero_time_channels():
    p = DramParams.ddr4_3200_dramsim3(channels=2)
    o = np.full(p.total_banks, -1, dtype=np.int64)
    c = count_chunk(p, np.array([0], dtype=np.int64), 1, o)  # channel 0 only
    t = channel_times(p, c)
    assert t[1] == 0.0 and t[0] > 0
    t_empty, _ = run_chunks(p, np.array([], dtype=np.int64))
    assert t_empty == 0.0


def test_littles_law_on_channel_queue():
    p = DramParams.ddr4_3200_dramsim3()
    env = simpy.Environment()
    d = Dram(env, p)
    rng = np.random.default_rng(10)

    def arrivals():
        for _ in range(400):
            yield env.timeout(rng.exponential(1.2e-6))
            env.process(d.read(rng.integers(0, 2**27, 64) * 64))

    env.process(arrivals())
    env.run()
    s = d.channels[0].stats()
    assert s.completed == 400
    assert 0.2 < s.utilisation < 1.0
    assert s.mean_in_queue > 0  # chunks did queue
    assert s.mean_in_system == pytest.approx(s.throughput_per_s * s.mean_sojourn_s, rel=1e-9)


@pytest.mark.parametrize(
    "change",
    [
        {"channels": 0},
        {"tCK_s": 0.0},
        {"tFAW": -1},
        {"address_mapping": ("rank", "row", "bank", "column", "bankgroup", "channel")},
        {"address_mapping": ("row", "rank", "bank", "column", "bankgroup")},
        {"row_bytes": 100},
    ],
)
def test_bad_parameters_raise_config_error(change):
    with pytest.raises(ConfigError) as e:
        DramParams.ddr4_3200_dramsim3().with_(**change)
    assert e.value.where and e.value.fix


def test_bad_mode():
    with pytest.raises(ConfigError):
        Dram(simpy.Environment(), DramParams.ddr4_3200_dramsim3(), mode="slow")  # type: ignore[arg-type]


def test_unique_first_keeps_first_occurrence_order():
    from simrec.sim.components.dram import unique_first

    rng = np.random.default_rng(11)
    x = rng.integers(0, 500, 5000)
    _, first = np.unique(x, return_index=True)
    np.testing.assert_array_equal(unique_first(x), x[np.sort(first)])
    assert len(unique_first(np.array([], dtype=np.int64))) == 0


def test_hw_preset_dram_reproduces_data_md_anchor():
    """The cpu_dram YAML preset, built through the hw schema's to_params(), gives the same
    DDR4-3200 anchors (data.md §5.3): ~12.0 GB/s random 64 B per rank, 25.6 GB/s per channel."""
    from simrec.hw import load_hw

    p = load_hw("cpu_dram").params("dram0")
    assert p.peak_bw_per_channel_Bps == pytest.approx(25.6e9)
    one = p.with_(channels=1, ranks=1)
    n = 8192
    t, _ = run_chunks(one, random_lines(n, 12), chunks=2)
    assert n * 64 / t == pytest.approx(12.0e9, rel=0.02)


def test_utilisation_is_the_mean_channel_utilisation():
    p = DramParams.ddr4_3200_dramsim3(channels=2)
    d0 = Dram(simpy.Environment(), p, "fast")
    assert d0.utilisation() == 0.0  # nothing ran yet
    _, d = run_chunks(p, random_lines(2000, 3))
    per_channel = d.stats()["channel_utilisation"]
    assert len(per_channel) == 2 and all(0 < u <= 1 for u in per_channel)
    assert d.utilisation() == pytest.approx(sum(per_channel) / 2)
