"""FPGA budget and SCRec core types: TT arithmetic, DSP-bound rates, resource checks.

Golden values: shared/reference/screc.md §4.3 (MAC-per-row table, TT sizes of Kaggle's largest
table, the DSP budget example) and §1.2 (KU15P counts, on-chip budget ~8.8 MB).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from simrec.errors import ConfigError
from simrec.sim.components.fpga import (
    KU15P_RESOURCES,
    CoreConfig,
    EmbCoreSpec,
    FpgaDevice,
    FpgaResources,
    MlpCoreSpec,
    TTCore,
    TTCoreSpec,
    TTShape,
    dsp_bound_row_rate,
    tt_macs_per_row,
    tt_param_count,
    tt_q_factors,
    tt_stage_macs,
)

# screc.md §4.3 table: MACs per row = q1 R1 q2 R2 + q1 q2 R2 q3, rows d (q), columns R
SCREC_MAC_TABLE = {
    16: {8: 384, 16: 1_280, 32: 4_608, 64: 17_408},
    32: {8: 768, 16: 2_560, 32: 9_216, 64: 34_816},
    64: {8: 1_536, 16: 5_120, 32: 18_432, 64: 69_632},
    128: {8: 2_048, 16: 6_144, 32: 20_480, 64: 73_728},
}
SCREC_Q = {16: (2, 2, 4), 32: (2, 4, 4), 64: (4, 4, 4), 128: (4, 4, 8)}


@pytest.mark.parametrize("dim", sorted(SCREC_MAC_TABLE))
def test_tt_mac_count_matches_screc_table(dim: int) -> None:
    q = tt_q_factors(dim)
    assert q == SCREC_Q[dim]
    for rank, golden in SCREC_MAC_TABLE[dim].items():
        shape = TTShape(p=(100, 100, 100), q=q, ranks=(rank, rank))
        assert tt_macs_per_row(shape) == golden, (dim, rank)
        s1, s2 = tt_stage_macs(shape)
        assert s1 == q[0] * rank * q[1] * rank  # (q1 x R1) . (R1 x q2 R2)
        assert s2 == q[0] * q[1] * rank * q[2]  # (q1 q2 x R2) . (R2 x q3)


def test_tt_param_count_kaggle_largest_table() -> None:
    # screc.md §4.3: 10,131,227 rows -> p = 200 x 220 x 250, d = 16: 39,360 params at R = 8,
    # 495,360 at R = 32
    assert 200 * 220 * 250 >= 10_131_227
    assert tt_param_count(TTShape((200, 220, 250), (2, 2, 4), (8, 8))) == 39_360
    assert tt_param_count(TTShape((200, 220, 250), (2, 2, 4), (32, 32))) == 495_360


def test_tt_shape_validation() -> None:
    with pytest.raises(ConfigError, match="ranks"):
        TTShape((10, 10, 10), (2, 2, 4), (8,))
    with pytest.raises(ConfigError):
        TTShape((10, 0, 10), (2, 2, 4), (8, 8))
    assert tt_q_factors(48) == (3, 4, 4)
    assert math.prod(tt_q_factors(96)) == 96


def test_dsp_bound_row_rate() -> None:
    # screc.md §4.3: 1,968 DSPs at 250 MHz, d = 64 and R = 32 (18,432 MAC/row) -> <= 26.7 M rows/s
    # at 100 % of the DSPs; d = 16, R = 16 -> <= 384 M rows/s
    assert dsp_bound_row_rate(1968, 250e6, 18_432) == pytest.approx(26.7e6, rel=2e-3)
    assert dsp_bound_row_rate(1968, 250e6, 1_280) == pytest.approx(384e6, rel=2e-3)
    # stated efficiency and fp32 cost: 3 DSPs per MAC, 60 % efficiency
    # 1968 / 3 * 250e6 * 0.6 / 18432 = 5.339 M rows/s
    assert dsp_bound_row_rate(1968, 250e6, 18_432, dsp_per_mac=3, efficiency=0.6) == (
        pytest.approx(5.339e6, rel=1e-3)
    )


def test_tt_core_rate_and_fine_path_agree() -> None:
    spec = TTCoreSpec(mac_units=256, efficiency=0.75)
    clock = 250e6
    shape = TTShape((200, 220, 250), (4, 4, 4), (32, 32))
    rows = np.random.default_rng(3).integers(0, 10_000_000, 400)
    macs = spec.chunk_macs(shape, rows)
    assert macs == 400 * 18_432
    # 256 MACs x 250 MHz x 0.75 = 48 G useful MAC/s
    t_fast = float(spec.time(macs, clock))
    assert t_fast == pytest.approx(400 * 18_432 / 48e9, rel=1e-12)
    assert float(spec.time(macs, clock, cores=4)) == pytest.approx(t_fast / 4, rel=1e-12)
    env = simpy.Environment()
    core = TTCore(env, spec, clock)
    assert core.run_rows(shape, rows) == pytest.approx(t_fast, rel=1e-9)
    assert core.macs == macs
    # the core's DSP cost is its MAC units (1 DSP each at 16-bit fixed point)
    assert spec.cost.dsp == 256
    assert TTCoreSpec(mac_units=100, dsp_per_mac=3).cost.dsp == 300


def test_tt_prefix_reuse() -> None:
    shape = TTShape((10, 10, 10), (4, 4, 4), (16, 16))
    s1, s2 = tt_stage_macs(shape)
    # rows 0..9 share the prefix (i1, i2) = (0, 0); rows 100..109 share (1, 0): 2 prefixes;
    # row 5 is looked up twice: 20 distinct rows, 21 lookups
    rows = np.r_[np.arange(10), np.arange(100, 110), 5]
    reuse = TTCoreSpec(prefix_reuse=True)
    assert reuse.chunk_macs(shape, rows) == 2 * s1 + 20 * s2
    assert TTCoreSpec().chunk_macs(shape, rows) == 21 * (s1 + s2)
    env = simpy.Environment()
    core = TTCore(env, reuse, 250e6)
    core.run_rows(shape, rows)
    assert core.macs == 2 * s1 + 20 * s2


def test_tt_shape_from_functional_spec_and_reuse_stats() -> None:
    """Cross-check with the functional model (simrec.functional): its resolved TT shapes and its
    prefix statistics give the same MAC count as the core's own counting."""
    from simrec.functional.spec import TTSpec
    from simrec.functional.tt import prefix_reuse_stats

    spec = TTSpec(ranks=[16, 16], prefix_reuse=True)
    shape = TTShape.from_spec(spec, 10_131_227, 64)
    assert math.prod(shape.p) >= 10_131_227 and shape.dim == 64 and shape.ranks == (16, 16)
    rows = np.random.default_rng(9).zipf(1.2, 20_000) % 10_131_227
    st = prefix_reuse_stats(rows, list(shape.p))
    s1, s2 = tt_stage_macs(shape)
    assert TTCoreSpec(prefix_reuse=True).chunk_macs(shape, rows) == (
        st.unique_prefixes * s1 + st.unique_rows * s2
    )


def test_ku15p_budget_and_onchip_bytes() -> None:
    # screc.md §1.2: 1,968 DSP48E2, 984 BRAM36, 128 URAM
    assert KU15P_RESOURCES.dsp == 1968
    assert KU15P_RESOURCES.bram == 984
    assert KU15P_RESOURCES.uram == 128
    bare = FpgaDevice(shell=FpgaResources())
    # 984 x 36 Kib + 128 x 288 Kib = 4,534,272 B + 4,718,592 B: screc.md's "~8.8 MB" (MiB: 8.82)
    assert bare.onchip_bytes() == 984 * 4608 + 128 * 36864
    assert bare.onchip_bytes() / 2**20 == pytest.approx(8.8, abs=0.05)
    dev = FpgaDevice()
    assert dev.available.dsp == 1344  # SmartSSD shell: 1,344 DSPs placeable by kernels
    used = FpgaResources(bram=84, uram=28)
    assert dev.onchip_bytes(used) == (984 - dev.shell.bram - 84) * 4608 + 100 * 36864
    with pytest.raises(ConfigError, match="shell"):
        FpgaDevice(shell=FpgaResources(dsp=5000))


def test_core_config_that_fits() -> None:
    dev = FpgaDevice()
    util = CoreConfig().check(dev)
    assert set(util) == {"lut", "ff", "dsp", "bram", "uram"}
    assert all(0 <= u <= 1 for u in util.values())
    need = CoreConfig().resources()
    assert util["dsp"] == pytest.approx(need.dsp / dev.available.dsp)


def test_core_config_over_dsp_budget_is_rejected() -> None:
    dev = FpgaDevice()
    cfg = CoreConfig(n_emb=1, n_tt=6, n_mlp=0)  # 6 x 256 = 1,536 DSP > 1,344
    assert cfg.resources().dsp == 1536
    with pytest.raises(ConfigError) as exc:
        cfg.check(dev)
    msg = str(exc.value)
    assert "1,536 DSP" in msg and "1,344" in msg
    assert exc.value.where == "cores"
    assert exc.value.fix
    assert "LUT" not in msg  # only the exceeded resources are named


@pytest.mark.parametrize(
    ("cost", "name", "budget"),
    [
        (FpgaResources(lut=600_000), "LUT", 522_720 - 80_000),
        (FpgaResources(ff=2_000_000), "FF", 1_045_440 - 160_000),
        (FpgaResources(bram=900), "BRAM36", 984 - 100),
        (FpgaResources(uram=129), "URAM", 128),
    ],
)
def test_each_resource_is_checked(cost: FpgaResources, name: str, budget: int) -> None:
    cfg = CoreConfig(n_emb=1, n_tt=0, n_mlp=0, emb=EmbCoreSpec(cost=cost))
    with pytest.raises(ConfigError) as exc:
        cfg.check(FpgaDevice())
    msg = str(exc.value)
    need = getattr(cost, {"LUT": "lut", "FF": "ff", "BRAM36": "bram", "URAM": "uram"}[name])
    assert f"{need:,} {name} but the budget is {budget:,}" in msg


def test_bad_core_counts() -> None:
    with pytest.raises(ConfigError, match="n_tt"):
        CoreConfig(n_tt=-1)


def test_mlp_core() -> None:
    # MLPerf-style bottom MLP 13-512-256-64-16 (screc.md §5.3): 155,136 MACs per sample
    assert MlpCoreSpec.macs_per_sample([13, 512, 256, 64, 16]) == 155_136
    spec = MlpCoreSpec(mac_units=512, efficiency=0.8)
    # 65,536 samples x 155,136 MACs / (512 x 250e6 x 0.8 MAC/s) = 0.09928 s
    assert spec.time(65_536, [13, 512, 256, 64, 16], 250e6) == pytest.approx(0.099287, rel=1e-4)
    assert spec.cost.dsp == 512


def test_emb_pool_time() -> None:
    spec = EmbCoreSpec(lanes=16)
    # 1,000 rows of d = 64 at 16 lanes = 4 cycles per row -> 4,000 cycles at 250 MHz = 16 us
    assert float(spec.pool_time(1000, 64, 250e6)) == pytest.approx(16e-6)
    assert float(spec.pool_time(1000, 20, 250e6)) == pytest.approx(8e-6)  # ceil(20/16) = 2
