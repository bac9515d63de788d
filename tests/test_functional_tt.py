"""TT shapes, parameter/MAC counts and reconstruction (golden values: data.md §4, screc.md §4.3)."""

from __future__ import annotations

import numpy as np
import pytest

from simrec.errors import ConfigError
from simrec.functional.codecs import build_codec
from simrec.functional.spec import TTSpec, tt_macs_per_row, tt_params
from simrec.functional.tt import TTCores, prefix_reuse_stats, suggested_tt_shapes

# data.md §4, "Factorisations obtained by running that function" and the Terabyte list below it.
SHAPES = {
    10_131_227: [200, 220, 250],
    8_351_593: [200, 200, 209],
    7_046_547: [200, 200, 200],
    5_461_306: [166, 175, 188],
    2_202_608: [125, 130, 136],
    286_181: [53, 72, 75],
    142_572: [50, 52, 55],
    93_145: [45, 45, 46],
    9_994_222: [200, 200, 250],
    9_980_333: [200, 222, 225],
    9_946_608: [200, 203, 245],
    9_758_201: [203, 209, 230],
    7_267_859: [200, 200, 200],
    1_333_352: [125, 125, 128],
    415_421: [70, 75, 80],
}
# data.md §4 table: TT params at r = 8/16/32/64 with q = 2·2·4 (d = 16).
PARAMS = {
    10_131_227: [39_360, 135_040, 495_360, 1_891_840],
    8_351_593: [35_488, 122_176, 449_152, 1_717_504],
    7_046_547: [35_200, 121_600, 448_000, 1_715_200],
    5_461_306: [31_072, 106_944, 393_088, 1_502_976],
    2_202_608: [22_992, 79_264, 291_648, 1_115_776],
    286_181: [12_464, 43_360, 160_448, 615_808],
    142_572: [9_216, 31_744, 116_736, 446_464],
}


@pytest.mark.parametrize(("n", "shape"), sorted(SHAPES.items()))
def test_suggested_row_shapes(n, shape):
    assert suggested_tt_shapes(n) == shape


def test_suggested_dim_shapes():
    # data.md §4: dims 16 -> 2·2·4, 32 -> 2·4·4, 64 -> 4·4·4, 128 -> 4·4·8
    got = [suggested_tt_shapes(d, allow_round_up=False) for d in (16, 32, 64, 128)]
    assert got == [[2, 2, 4], [2, 4, 4], [4, 4, 4], [4, 4, 8]]


@pytest.mark.parametrize(("n", "params"), sorted(PARAMS.items()))
def test_tt_params(n, params):
    got = [tt_params(SHAPES[n], [2, 2, 4], [r, r]) for r in (8, 16, 32, 64)]
    assert got == params
    assert TTSpec(ranks=[8, 8]).params(n, 16) == params[0]


def test_macs_per_row_table():
    # screc.md §4.3 MACs per row
    want = {
        16: [384, 1280, 4608, 17408],
        32: [768, 2560, 9216, 34816],
        64: [1536, 5120, 18432, 69632],
        128: [2048, 6144, 20480, 73728],
    }
    for d, row in want.items():
        q = suggested_tt_shapes(d, allow_round_up=False)
        assert [tt_macs_per_row(q, [r, r]) for r in (8, 16, 32, 64)] == row
    # papers.md §I.2/§I.4: FBTT README example 1M x 64, p 120·90·110, ranks (12, 14): 72,400
    # params, 7,168 FLOP... per row is 2·MACs: MACs = 4·12·4·14 + 16·14·4 = 3,584
    assert tt_params([120, 90, 110], [4, 4, 4], [12, 14]) == 72_400
    assert 2 * tt_macs_per_row([4, 4, 4], [12, 14]) == 7_168
    assert tt_params([200, 220, 250], [4, 4, 4], [32, 32]) == 958_720


def test_reconstruction_matches_reference_and_prefix_reuse():
    c = TTCores.random(5000, [20, 16, 16], [2, 2, 4], [5, 7], seed=3)
    rows = np.random.default_rng(1).integers(0, 5000, 3000)
    a = c.reconstruct(rows)
    ref = c.reference(rows)
    assert a.dtype == np.float32 and a.shape == (3000, 16)
    np.testing.assert_allclose(a, ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(c.reconstruct(rows, prefix_reuse=True), a)
    np.testing.assert_array_equal(c.reconstruct(rows, threads=3), a)
    np.testing.assert_array_equal(c.reconstruct(rows, prefix_reuse=True, threads=2), a)
    # an independent check of the index convention: row i = (i1*p2 + i2)*p3 + i3,
    # column j = (j1*q2 + j2)*q3 + j3, entry = sum over ranks of G1 G2 G3
    i = 4321
    i1, rem = divmod(i, 16 * 16)
    i2, i3 = divmod(rem, 16)
    g1, g2, g3 = (x.astype(np.float64) for x in c.cores)
    e = np.zeros((2, 2, 4))
    for j1 in range(2):
        for j2 in range(2):
            for j3 in range(4):
                e[j1, j2, j3] = g1[0, i1, j1, :] @ g2[:, i2, j2, :] @ g3[:, i3, j3, 0]
    np.testing.assert_allclose(c.reconstruct(np.array([i]))[0], e.reshape(-1), rtol=1e-5)


def test_random_init_scale():
    c = TTCores.random(10_000, [25, 20, 20], [2, 2, 4], [8, 8], seed=0)
    std = c.reconstruct(np.arange(10_000)).std()
    assert 0.7 * (1 / 10_000) ** 0.5 < std < 1.3 * (1 / 10_000) ** 0.5


def test_tt_svd_recovers_exact_tt_table():
    c = TTCores.random(1000, [10, 10, 10], [2, 2, 4], [3, 4], seed=5)
    table = c.reference(np.arange(1000))
    c2 = TTCores.from_table(table, [10, 10, 10], [2, 2, 4], [3, 4])
    np.testing.assert_allclose(c2.reference(np.arange(1000)), table, atol=1e-6)
    # a rank too small for the table cannot recover it
    c3 = TTCores.from_table(table, [10, 10, 10], [2, 2, 4], [1, 1])
    assert np.abs(c3.reference(np.arange(1000)) - table).max() > 1e-4


def test_prefix_stats():
    s = prefix_reuse_stats(np.array([0, 1, 2, 2, 10, 11, 25]), [3, 2, 5])
    # prefixes = row // 5: 0,0,0,0,2,2,5 -> unique {0, 2, 5}; unique rows 6
    assert (s.lookups, s.unique_rows, s.unique_prefixes) == (7, 6, 3)
    assert s.reuse_ratio == 2.0


def test_bad_tt_inputs():
    with pytest.raises(ConfigError, match="ranks must be >= 1"):
        TTSpec(ranks=[0, 8]).check(1000, 16)
    with pytest.raises(ConfigError, match="not the embedding dim"):
        TTSpec(ranks=[8, 8], q_shapes=[2, 2, 2]).check(1000, 16)
    with pytest.raises(ConfigError, match="fewer than"):
        TTSpec(ranks=[8, 8], p_shapes=[5, 5, 5]).check(1000, 16)
    with pytest.raises(ConfigError, match="3 p and q shapes"):
        TTSpec(ranks=[8, 8], p_shapes=[10, 100]).check(1000, 16)
    with pytest.raises(ConfigError, match="does not factor into 3 TT cores"):
        TTSpec(ranks=[8, 8]).check(1000, 17)
    TTSpec(ranks=[8, 8], q_shapes=[1, 1, 17]).check(1000, 17)  # explicit shapes are the user's call
    TTSpec(ranks=[8]).check(1000, 6)  # 6 = 2·3 factors into 2 cores
    with pytest.raises(ConfigError):
        suggested_tt_shapes(0)
    with pytest.raises(ConfigError, match="do not chain"):
        TTCores([np.zeros((1, 2, 2, 3)), np.zeros((4, 2, 2, 1))], 4)
    with pytest.raises(ConfigError, match="out of range"):
        build_codec(TTSpec(ranks=[2, 2]), 100, 16, seed=0).lookup(np.array([100]))
