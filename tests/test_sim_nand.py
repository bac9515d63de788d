"""NAND flash component: MQSim geometry, page-read ceiling, theory vs simulation, Little's law.

Golden values come from shared/reference/data.md §5.5 (MQSim default ssdconfig.xml and the derived
1.71 M rows/s ceiling) and anchors.md §2.1 (MQSim parameter names and units); the others are
derived in the comments from those parameters, independently of the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from simrec.errors import ConfigError
from simrec.sim.components.nand import MQSIM_NAMES, Nand, NandParams, chunk_service

TR = 75e-6  # data.md §5.5: MQSim default Page_Read_Latency 75 us
PLANES = 8 * 4 * 2 * 2  # data.md §5.5: 8 channels x 4 chips x 2 dies x 2 planes = 128
CH_BW = 333e6 * 1  # Channel_Transfer_Rate 333 MT/s x Flash_Channel_Width 1 B


def _throughput(nand_mode: str, params: NandParams, pages: np.ndarray, nbytes: float) -> float:
    env = simpy.Environment()
    nand = Nand(env, params, mode=nand_mode)
    proc = env.process(nand.read(pages, nbytes))
    env.run()
    return len(pages) / proc.value


def test_mqsim_defaults_and_names() -> None:
    p = NandParams()
    assert p.planes == PLANES
    assert p.dies == 64
    assert p.page_bytes == 8192
    assert p.channel_bandwidth == pytest.approx(CH_BW)
    # data.md §5.5: 8 channels x 333 MT/s x 1 B = 2.66 GB/s total
    assert p.channels * p.channel_bandwidth == pytest.approx(2.664e9)
    # MQSim names in MQSim units (ns, MT/s) map onto the same defaults (anchors.md §2.1)
    q = NandParams.from_mqsim(
        {
            "Flash_Channel_Count": 8,
            "Chip_No_Per_Channel": 4,
            "Die_No_Per_Chip": 2,
            "Plane_No_Per_Die": 2,
            "Page_Capacity": 8192,
            "Page_Read_Latency_LSB": 75000,
            "Page_Program_Latency_LSB": 750000,
            "Block_Erase_Latency": 3800000,
            "Channel_Transfer_Rate": 333,
            "Flash_Channel_Width": 1,
        }
    )
    assert q == p
    assert "Page_Read_Latency_LSB" in MQSIM_NAMES
    with pytest.raises(ConfigError, match="Page_Read_Latency_XYZ"):
        NandParams.from_mqsim({"Page_Read_Latency_XYZ": 1})


def test_bad_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="t_read_s"):
        NandParams(t_read_s=0.0)
    with pytest.raises(ConfigError, match="channels"):
        NandParams(channels=-1)
    with pytest.raises(ConfigError, match="mode"):
        Nand(simpy.Environment(), NandParams(), mode="slow")  # type: ignore[arg-type]


def test_locate_is_cwdp_striping() -> None:
    p = NandParams()
    ch, die, srv = p.locate(np.arange(p.servers))
    # channel first: pages 0..7 on channels 0..7
    assert ch[:8].tolist() == list(range(8))
    # the first 128 pages touch every plane exactly once
    assert sorted(srv.tolist()) == list(range(PLANES))
    assert np.bincount(die, minlength=64).tolist() == [2] * 64
    # page 8 is on channel 0, the next chip (way): die id = (0 * 4 + 1) * 2 + 0 = 2
    assert int(die[8]) == 2


def test_page_read_ceiling_one_useful_row_per_page() -> None:
    """data.md §5.5: one useful 64 B row per page gives ~1.71 M rows/s on MQSim's geometry.

    Derivation: 128 planes work independently; each read holds its plane for tR = 75 us plus the
    channel transfer of what it reads. data.md's figure ignores the transfer:
    128 / 75 us = 1.7067 M rows/s (x 64 B = 109 MB/s useful, 128x read amplification).
    Our default moves one 512 B sector per read: x = 512 / 333e6 = 1.538 us, so the ceiling is
    128 / (75 + 1.538) us = 1.6724 M rows/s (2 % under 1.71 M); moving only the 64 B row gives
    128 / (75 + 0.192) us = 1.7024 M rows/s. Channels are far from saturated
    (16 planes x 1.54 us / 76.5 us = 32 % per bus).
    """
    p = NandParams()
    assert p.planes / p.t_read_s == pytest.approx(1.7067e6, rel=1e-3)
    assert p.planes / p.t_read_s * 64 == pytest.approx(109e6, rel=0.01)
    expected = PLANES / (TR + 512 / CH_BW)
    assert p.peak_read_rate(64) == pytest.approx(expected, rel=1e-9)
    # saturate: 60 reads on every plane, balanced
    pages = np.tile(np.arange(PLANES), 60)
    for mode in ("fast", "fine"):
        rate = _throughput(mode, p, pages, 64)
        assert rate == pytest.approx(expected, rel=0.01), mode
        assert rate == pytest.approx(1.71e6, rel=0.03), mode
    p64 = NandParams(min_transfer_bytes=64)
    rate = _throughput("fast", p64, pages, 64)
    assert rate == pytest.approx(1.71e6, rel=0.005)


def test_unloaded_latency_equals_formula() -> None:
    p = NandParams()
    for nbytes, moved in ((64, 512), (4096, 4096), (8192, 8192)):
        formula = TR + moved / CH_BW  # tR + transfer, no command overhead by default
        assert p.unloaded_read_latency(nbytes) == pytest.approx(formula, rel=1e-12)
        for mode in ("fast", "fine"):
            env = simpy.Environment()
            nand = Nand(env, p, mode=mode)
            proc = env.process(nand.read(np.array([12345]), nbytes))
            env.run()
            assert proc.value == pytest.approx(formula, rel=1e-9), (mode, nbytes)
    q = NandParams(cmd_overhead_s=1e-6)
    assert q.unloaded_read_latency(64) == pytest.approx(TR + 1e-6 + 512 / CH_BW)


def test_saturated_throughput_channel_bound() -> None:
    """Full 8 KiB pages saturate the buses: 8 x 333e6 / 8192 = 325.2 K pages/s = 2.66 GB/s
    (data.md §5.5: 'the channels cap it at 2.66 GB/s'), far below the array's 128 / 75 us."""
    p = NandParams()
    expected = 8 * CH_BW / 8192
    assert p.peak_read_rate(8192) == pytest.approx(expected, rel=1e-9)
    pages = np.tile(np.arange(PLANES), 40)
    for mode in ("fast", "fine"):
        rate = _throughput(mode, p, pages, 8192)
        assert rate == pytest.approx(expected, rel=0.01), mode
        assert rate * 8192 == pytest.approx(2.664e9, rel=0.01)
    r = chunk_service(p, pages, 8192)
    assert r.bound == "channel"
    assert chunk_service(p, pages, 64).bound == "array"


def test_dies_without_independent_planes_halve_the_ceiling() -> None:
    p = NandParams(independent_planes=False)
    expected = 64 / (TR + 512 / CH_BW)
    pages = np.tile(np.arange(PLANES), 50)
    assert _throughput("fast", p, pages, 64) == pytest.approx(expected, rel=0.01)
    assert _throughput("fine", p, pages, 64) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("nbytes", [64, 2048, 4096, 8192])
def test_fast_and_fine_agree_on_random_chunks(nbytes: int) -> None:
    p = NandParams()
    rng = np.random.default_rng(7)
    pages = rng.integers(0, p.pages, 2500)
    fast = _throughput("fast", p, pages, nbytes)
    fine = _throughput("fine", p, pages, nbytes)
    assert fine == pytest.approx(fast, rel=0.01)
    assert fine <= fast * (1 + 1e-9)  # the fast path is a lower bound on time


def test_read_amplification_counters() -> None:
    p = NandParams()
    env = simpy.Environment()
    nand = Nand(env, p, mode="fine")
    pages = np.arange(300)
    env.process(nand.read(pages, 64))
    env.run()
    assert nand.page_reads == 300  # one full page-array read per 64 B row
    assert nand.bytes_out == 300 * 512  # one sector over the channel per row
    st = nand.stats()
    assert len(st["server_utilisation"]) == PLANES
    assert max(st["server_utilisation"]) <= 1.0 + 1e-12


def test_littles_law_in_die_queues() -> None:
    """Poisson arrivals at ~70 % of the ceiling; per die, L = lambda W over a window that starts
    and ends empty (exact), and queueing makes W exceed the unloaded latency somewhere."""
    p = NandParams()
    rng = np.random.default_rng(11)
    n = 3000
    rate = 0.7 * p.peak_read_rate(64)
    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    pages = rng.integers(0, p.pages, n)
    env = simpy.Environment()
    nand = Nand(env, p, mode="fine")
    done = nand.run_reads(pages, 64, arrivals)
    assert np.all(np.isfinite(done))
    end = float(env.now)
    total = 0
    worst_w = 0.0
    for die in range(p.dies):
        s = nand.die_stats(die, end)
        total += s.completed
        if s.completed:
            assert s.littles_law_error() < 1e-9
            assert s.mean_sojourn_s >= p.unloaded_read_latency(64) * (1 - 1e-12)
            worst_w = max(worst_w, s.mean_sojourn_s)
    assert total == n
    assert worst_w > p.unloaded_read_latency(64) * 1.05
