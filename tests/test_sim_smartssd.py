"""SmartSSD device: published P2P sweep, cold-row path theory vs simulation, DDR4 vs NAND placement.

Golden values: shared/reference/data.md §5.5 (P2P sweep, MQSim NAND), §5.1 (PCIe Gen3 x4 3.94 GB/s)
and screc.md §1.2 (4 GB DDR4, DDR4-2400 x64 = 19.2 GB/s, 3.84 TB SSD).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from simrec.errors import ConfigError
from simrec.sim.components.fpga import CoreConfig, TTCoreSpec, TTShape
from simrec.sim.components.nand import NandParams
from simrec.sim.components.smartssd import (
    P2P_SWEEP_BYTES,
    SmartSSD,
    SmartSSDParams,
    p2p_bandwidth,
    p2p_transfer_time,
)

KIB, MIB = 1024, 1024 * 1024
# data.md §5.5, Xilinx Vitis_Accel_Examples host/p2p_bandwidth README (SmartSSD)
PUBLISHED = {
    4 * KIB: (0.05, 0.16),
    8 * KIB: (0.17, 0.25),
    16 * KIB: (0.31, 0.37),
    32 * KIB: (0.54, 0.50),
    64 * KIB: (0.87, 0.68),
    128 * KIB: (1.21, 0.82),
    256 * KIB: (1.55, 0.92),
    1 * MIB: (1.59, 0.99),
    4 * MIB: (2.15, 1.02),
    16 * MIB: (2.28, 1.03),
    128 * MIB: (2.36, 1.04),
}


def _run(dev_proc, env: simpy.Environment) -> float:
    p = env.process(dev_proc)
    env.run()
    return p.value


def test_p2p_curve_at_published_points() -> None:
    assert tuple(sorted(PUBLISHED)) == P2P_SWEEP_BYTES
    for size, (rd, wr) in PUBLISHED.items():
        assert p2p_bandwidth(size, "read") == pytest.approx(rd * 1e9, rel=1e-9)
        assert p2p_bandwidth(size, "write") == pytest.approx(wr * 1e9, rel=1e-9)
    # 4 KiB: 4096 B / 0.05 GB/s = 81.92 us per transfer
    assert p2p_transfer_time(4 * KIB) == pytest.approx(81.92e-6, rel=1e-9)


def test_p2p_curve_interpolation_is_log_log_piecewise_linear() -> None:
    # geometric midpoint of two published sizes -> geometric mean of their bandwidths
    for (s0, (r0, w0)), (s1, (r1, w1)) in zip(
        sorted(PUBLISHED.items()), sorted(PUBLISHED.items())[1:], strict=False
    ):
        mid = math.sqrt(s0 * s1)
        assert p2p_bandwidth(mid, "read") == pytest.approx(math.sqrt(r0 * r1) * 1e9, rel=1e-9)
        assert p2p_bandwidth(mid, "write") == pytest.approx(math.sqrt(w0 * w1) * 1e9, rel=1e-9)
    # a quarter of the way in log size between 1 MiB and 4 MiB
    s = 2 ** (20 + 0.5)
    expected = math.exp(math.log(1.59e9) + 0.25 * (math.log(2.15e9) - math.log(1.59e9)))
    assert p2p_bandwidth(s) == pytest.approx(expected, rel=1e-9)
    sizes = np.geomspace(4 * KIB, 128 * MIB, 200)
    assert np.all(np.diff(p2p_bandwidth(sizes, "read")) >= 0)
    # outside the sweep: small transfers cost the 4 KiB time, large ones keep 2.36 GB/s
    assert p2p_transfer_time(1 * KIB) == pytest.approx(81.92e-6, rel=1e-9)
    assert p2p_bandwidth(1 << 30) == pytest.approx(2.36e9, rel=1e-9)
    with pytest.raises(ConfigError):
        p2p_bandwidth(0)
    with pytest.raises(ConfigError, match="direction"):
        p2p_bandwidth(4096, "sideways")  # type: ignore[arg-type]


def test_bulk_transfer_uses_the_curve() -> None:
    env = simpy.Environment()
    dev = SmartSSD(env)
    dt = _run(dev.read_bulk(256 * MIB, 128 * MIB), env)
    assert dt == pytest.approx(256 * MIB / 2.36e9, rel=1e-9)


def test_device_defaults_match_reference() -> None:
    p = SmartSSDParams()
    assert p.ddr_capacity_bytes == 4 * 2**30
    assert p.ssd_capacity_bytes == 3.84e12
    # DDR4-2400 x64: 2400 MT/s x 8 B = 19.2 GB/s (screc.md §1.2)
    assert p.ddr.peak_bw_Bps == pytest.approx(19.2e9, rel=1e-9)
    # host link: PCIe Gen3 x4 3.94 GB/s theoretical (data.md §5.1) x 0.8 efficiency
    assert p.host_bandwidth == pytest.approx(3.94e9 * 0.8)
    assert p.onchip_bytes > 0
    assert p.onchip_bytes < 984 * 4608 + 128 * 36864


def test_cold_row_unloaded_latency_equals_formula() -> None:
    p = SmartSSDParams()
    # controller latency + one command slot + tR + 4 KiB over a 333 MB/s channel + 4 KiB over P2P
    formula = 10e-6 + 1 / 540e3 + 75e-6 + 4096 / 333e6 + 4096 / 2.36e9
    assert p.cold_row_latency() == pytest.approx(formula, rel=1e-12)
    for mode in ("fast", "fine"):
        env = simpy.Environment()
        dev = SmartSSD(env, p, mode=mode)
        assert _run(dev.read_cold_rows(np.array([777])), env) == pytest.approx(formula, rel=1e-9)


@pytest.mark.parametrize(
    ("kw", "bound", "rate"),
    [
        ({}, "controller", 540e3),
        # P2P-bound with a fast controller: 2.36e9 / 4096 = 576.2 K rows/s
        ({"controller_iops": 1e9}, "p2p", 2.36e9 / 4096),
        # 512 B LBAs and a fast controller: the NAND page-read ceiling, 128 / (75 + 1.54) us
        ({"controller_iops": 1e9, "lba_bytes": 512}, "nand", 128 / (75e-6 + 512 / 333e6)),
    ],
)
def test_cold_row_saturated_throughput(kw: dict, bound: str, rate: float) -> None:
    p = SmartSSDParams(**kw)
    stages = p.cold_row_stage_rates()
    assert min(stages, key=lambda k: stages[k]) == bound
    assert p.cold_row_peak_rate() == pytest.approx(rate, rel=1e-9)
    pages = np.arange(128 * 150)  # distinct pages, balanced over the planes by CWDP striping
    env = simpy.Environment()
    dev = SmartSSD(env, p, mode="fast")
    sim_rate = len(pages) / _run(dev.read_cold_rows(pages), env)
    assert sim_rate == pytest.approx(rate, rel=0.02)
    assert sim_rate <= rate


def test_cold_rows_fast_and_fine_agree() -> None:
    p = SmartSSDParams()
    pages = np.random.default_rng(5).integers(0, p.nand.pages, 5000)
    times = {}
    for mode in ("fast", "fine"):
        env = simpy.Environment()
        dev = SmartSSD(env, p, mode=mode)
        times[mode] = _run(dev.read_cold_rows(pages), env)
        assert dev.counters["cold_rows"] == 5000
        assert dev.nand.page_reads == 5000
    assert times["fine"] == pytest.approx(times["fast"], rel=0.05)


def test_hot_rows_in_ddr4_speed_up_by_the_cdf_ratio() -> None:
    """All rows in NAND vs the hottest rows in DDR4: the cold path is ~250x slower per row than
    DDR4, so the split plan is bound by its cold path, whose time is proportional to the number of
    cold lookups (the controller's command rate binds; repeated hot pages hit the SSD's DRAM
    cache instead of piling onto one plane). It therefore runs 1 / (1 - CDF(k)) times faster,
    where CDF(k) is the share of lookups that hit the k hottest rows."""
    rng = np.random.default_rng(2024)
    n_rows, n_lookups = 1_000_000, 60_000
    lookups = np.minimum(rng.zipf(1.15, n_lookups) - 1, n_rows - 1)
    counts = np.bincount(lookups, minlength=n_rows)
    hot = np.argsort(-counts, kind="stable")[:500]  # the 500 hottest rows go to DDR4
    is_hot = np.zeros(n_rows, dtype=bool)
    is_hot[hot] = True
    cdf_k = counts[hot].sum() / n_lookups
    assert 0.5 < cdf_k < 0.95
    p = SmartSSDParams()

    env = simpy.Environment()
    dev = SmartSSD(env, p)
    t_all_nand = _run(dev.read_cold_rows(lookups), env)  # row r stored on NAND page r

    env = simpy.Environment()
    dev = SmartSSD(env, p)
    hot_local = np.searchsorted(np.sort(hot), lookups[is_hot[lookups]])
    procs = [
        env.process(dev.read_cold_rows(lookups[~is_hot[lookups]])),
        env.process(dev.read_ddr_rows(hot_local, 64)),
    ]
    env.run()
    t_split = max(pr.value for pr in procs)
    assert procs[1].value < 0.05 * procs[0].value  # DDR4 is not the bottleneck
    assert t_all_nand / t_split == pytest.approx(1 / (1 - cdf_k), rel=0.05)
    assert dev.utilisation(t_split)["ddr4"] < 0.1


def test_ssd_read_cache() -> None:
    p = SmartSSDParams()
    assert p.ssd_cache_pages == 256 * 2**20 // 8192  # MQSim Data_Cache_Capacity 256 MiB
    pages = np.r_[np.arange(100), np.arange(100), np.arange(50)]
    for mode in ("fast", "fine"):
        env = simpy.Environment()
        dev = SmartSSD(env, p, mode=mode)
        _run(dev.read_cold_rows(pages), env)
        assert dev.nand.page_reads == 100
        assert dev.counters["ssd_cache_hits"] == 150
    # a cache of 40 pages: 250 reads in ceil(100 / 40) = 3 windows (0:83, 83:166, 166:250); a page
    # comes back only after 100 other reads, so (like LRU with 40 pages) every read misses
    small = SmartSSD(simpy.Environment(), SmartSSDParams(ssd_cache_bytes=40 * 8192))
    assert small.cache_misses(pages).all()
    # 30 pages read 10 times fit the 40-page cache: only the first 30 reads miss
    assert small.cache_misses(np.tile(np.arange(30), 10)).sum() == 30
    off = SmartSSD(simpy.Environment(), SmartSSDParams(ssd_cache_bytes=0)).cache_misses(pages)
    assert off.all()


def test_cores_sram_and_host_link() -> None:
    cores = CoreConfig(n_emb=2, n_tt=2, n_mlp=1, tt=TTCoreSpec(mac_units=256, efficiency=1.0))
    p = SmartSSDParams(cores=cores)
    env = simpy.Environment()
    dev = SmartSSD(env, p)
    clock = p.fpga.clock_hz
    # SRAM: 1,000 rows of 256 B at 64 B/cycle = 4,000 cycles, split over 2 ports -> 2,000 cycles
    assert _run(dev.read_sram_rows(1000, 256), env) == pytest.approx(2000 / clock)
    # TT: 1,000 rows x 18,432 MAC over 2 cores x 256 MAC/cycle
    shape = TTShape((200, 200, 250), (4, 4, 4), (32, 32))
    t0 = env.now
    dt = _run(dev.tt_reconstruct(shape, np.arange(1000)), env)
    assert dt == pytest.approx(1000 * 18_432 / (2 * 256 * clock))
    assert env.now - t0 == pytest.approx(dt)
    # pooling: 10,000 rows of d = 64 at 16 lanes = 40,000 cycles over 2 cores
    assert _run(dev.pool(10_000, 64), env) == pytest.approx(20_000 / clock)
    # pooled vectors to the host: 1 us + 4 MiB / (3.94 GB/s x 0.8)
    assert _run(dev.to_host(4 * MIB), env) == pytest.approx(1e-6 + 4 * MIB / (3.94e9 * 0.8))
    # MLP: 1,024 samples x 155,136 MAC / (512 x 0.8 x clock)
    assert _run(dev.run_mlp(1024, [13, 512, 256, 64, 16]), env) == pytest.approx(
        1024 * 155_136 / (512 * 0.8 * clock)
    )
    util = dev.utilisation()
    for key in ("nand", "ddr4", "sram", "emb_cores", "tt_cores", "mlp_cores", "host_link", "p2p"):
        assert 0.0 <= util[key] <= 1.0 + 1e-12
    assert util["tt_cores"] > 0 and util["nand"] == 0.0
    assert dev.counters["tt_macs"] == 1000 * 18_432


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError) as exc:
        SmartSSDParams(cores=CoreConfig(n_tt=8))
    assert exc.value.where == "smartssd.cores"
    assert "DSP" in str(exc.value)
    with pytest.raises(ConfigError, match="lba_bytes"):
        SmartSSDParams(lba_bytes=16384)
    with pytest.raises(ConfigError, match="host_link_efficiency"):
        SmartSSDParams(host_link_efficiency=1.5)
    with pytest.raises(ConfigError, match="controller_iops"):
        SmartSSDParams(controller_iops=0)
    env = simpy.Environment()
    dev = SmartSSD(env, SmartSSDParams(cores=CoreConfig(n_emb=1, n_tt=0, n_mlp=0)))
    with pytest.raises(ConfigError, match="TT"):
        _run(dev.tt_reconstruct(TTShape((10, 10, 10), (2, 2, 4), (8, 8)), np.arange(5)), env)
    env = simpy.Environment()
    dev = SmartSSD(env, SmartSSDParams(nand=NandParams(channels=4)))
    assert dev.nand.p.planes == 64
    # 4 GiB of DDR4 holds 2^26 rows of 64 B: row 2^26 is one too many
    env = simpy.Environment()
    dev = SmartSSD(env)
    assert _run(dev.read_ddr_rows(np.array([2**26 - 1]), 64), env) > 0
    with pytest.raises(ConfigError, match="DDR4"):
        _run(dev.read_ddr_rows(np.array([2**26]), 64), env)
