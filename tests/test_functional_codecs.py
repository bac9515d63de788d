"""Codecs: data path vs plain reference, error bounds, sizes, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from simrec.errors import ConfigError
from simrec.functional.codecs import (
    CAFECodec,
    HotSketch,
    QuantCodec,
    build_codec,
    universal_hash,
)
from simrec.functional.spec import (
    CAFESpec,
    HashSpec,
    MemRecSpec,
    QRSpec,
    QuantSpec,
    RawSpec,
    TTSpec,
)

ROWS, DIM = 1000, 16
SPECS = [
    RawSpec(),
    RawSpec(dtype="float16"),
    QuantSpec(bits=8, scale_dtype="float32"),
    QuantSpec(bits=4),
    QuantSpec(bits=2),
    QuantSpec(bits=4, granularity="table"),
    QuantSpec(bits=8, granularity="table"),
    TTSpec(ranks=[4, 4]),
    TTSpec(ranks=[4, 4], prefix_reuse=True),
    HashSpec(buckets=97),
    HashSpec(buckets=97, hash="mod"),
    QRSpec(num_remainder=32),
    QRSpec(num_remainder=32, op="add"),
    CAFESpec(hot_rows=40, hash_rows=100, threshold=3),
    CAFESpec(hot_rows=40, hash_rows=100, threshold=3, level_rate=1.0),
    MemRecSpec(token_rows=64, weight_rows=16, token_hashes=3, weight_hashes=2),
]


@pytest.fixture(scope="module")
def table():
    return np.random.default_rng(0).standard_normal((ROWS, DIM)).astype(np.float32)


def _build(spec, table):
    if spec.kind in ("qr", "cafe", "memrec"):
        c = build_codec(spec, ROWS, DIM, seed=1)
    else:
        c = build_codec(spec, ROWS, DIM, table=table)
    if isinstance(c, CAFECodec):
        z = np.minimum(np.random.default_rng(2).zipf(1.3, 5000), ROWS) - 1
        for _ in range(3):
            c.observe(z)
    return c


@pytest.mark.parametrize("spec", SPECS, ids=[f"{i}-{s.kind}" for i, s in enumerate(SPECS)])
def test_lookup_within_bound_of_reference(spec, table):
    c = _build(spec, table)
    ids = np.random.default_rng(5).integers(0, ROWS, 4000)
    a = c.lookup(ids)
    assert a.dtype == np.float32 and a.shape == (4000, DIM)
    err = np.abs(a - c.reference(ids)).max(axis=1)
    assert (err <= c.error_bound(ids)).all()
    assert c.nbytes() == spec.resolved(ROWS, DIM).nbytes(ROWS, DIM)


def test_raw_fp32_is_exact_and_fp16_is_not(table):
    ids = np.arange(ROWS)
    c = build_codec(RawSpec(), ROWS, DIM, table=table)
    assert c.exact and np.array_equal(c.lookup(ids), table)
    c16 = build_codec(RawSpec(dtype="float16"), ROWS, DIM, table=table)
    assert not c16.exact and not np.array_equal(c16.lookup(ids), table)


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_rowwise_quant_half_step_bound(bits, table):
    c = build_codec(QuantSpec(bits=bits, scale_dtype="float32"), ROWS, DIM, table=table)
    assert isinstance(c, QuantCodec)
    # independent bound: half of (row max - row min) / (2^b - 1), plus float32 slack
    half = (table.max(1) - table.min(1)) / ((1 << bits) - 1) / 2
    err = np.abs(c.lookup(np.arange(ROWS)) - table).max(axis=1)
    assert (err <= half * (1 + 1e-4) + 1e-6).all()
    # the bound is tight: some row comes within 20% of it
    assert (err > 0.8 * half).any()
    # packed storage: ceil(16 * bits / 8) bytes per row + fp32 scale and bias
    assert c.packed.shape == (ROWS, DIM * bits // 8)
    assert c.stored_nbytes() == c.nbytes() == ROWS * (DIM * bits // 8 + 8)


def test_tablewise_quant_is_dqrm_symmetric(table):
    c = build_codec(QuantSpec(bits=4, granularity="table"), ROWS, DIM, table=table)
    s = np.abs(table).max() / 7  # papers.md §C.3: max|w| / (2^(b-1) - 1)
    assert np.isclose(float(c.scale), s)
    deq = c.lookup(np.arange(ROWS))
    levels = np.unique(np.rint(deq / s))
    assert levels.min() >= -8 and levels.max() <= 7 and levels.size <= 16


def test_quant_of_constant_row():
    t = np.ones((3, 8), dtype=np.float32)
    c = build_codec(QuantSpec(bits=4), 3, 8, table=t)
    np.testing.assert_allclose(c.lookup(np.arange(3)), t, atol=1e-3)


def test_hash_from_table_is_bucket_mean(table):
    c = build_codec(HashSpec(buckets=10, hash="mod"), ROWS, DIM, table=table)
    np.testing.assert_allclose(c.lookup(np.array([3]))[0], table[3::10].mean(axis=0), rtol=1e-5)


def test_universal_hash_matches_python_ints():
    ids = np.array([0, 1, 2**32 - 1, 123456789], dtype=np.int64)
    a, c, m = 2**31 - 1, 12345, 1000
    want = [((a * int(x) + c) % ((1 << 61) - 1)) % m for x in ids]
    assert universal_hash(ids, m, a, c).tolist() == want


def test_qr_formula():
    c = build_codec(QRSpec(num_remainder=7), 50, 4, seed=0)
    np.testing.assert_array_equal(c.lookup(np.array([23]))[0], c.q[3] * c.r[2])
    assert c.nbytes() == (8 + 7) * 4 * 4  # ceil(50/7) quotient rows + 7 remainder rows, fp32


def test_hotsketch_spacesaving():
    sk = HotSketch(buckets=1, hot_rows=2, threshold=3, decay=0.5)
    for key in (1, 2, 3, 4):
        sk.insert(key, 1.0)
    assert sorted(sk.ids[0].tolist()) == [1, 2, 3, 4]
    sk.insert(1, 2.0)  # 1 reaches 3 -> hot id 1, moves to the front
    assert sk.ids[0, 0] == 1 and sk.dic[0, 0] == 1
    sk.insert(5, 1.0)  # full bucket, smallest not hot: 5 replaces it and inherits its count
    assert 5 in sk.ids[0] and sk.cnt[0].sum() == 3 + 1 + 1 + 2
    sk.insert(5, 1.0)  # 5 now has 3 -> hot id 2
    assert sk.query(np.array([1, 5, 2])).tolist() == [1, 2, 0]
    # decay: mass inserted (8) is not above buckets * threshold * 10 = 30, nothing decays yet
    sk.start_batch()
    assert sk.cnt[0, 0] == 3
    sk.total = 31
    sk.start_batch()  # counts halve: 1.5 < 3, both hot slots are demoted and free their ids
    assert (sk.dic == 0).all() and len(sk.free) == 2


def test_cafe_promotes_hot_ids_with_hash_row_copy():
    spec = CAFESpec(hot_rows=4, hash_rows=50, threshold=5)
    c = build_codec(spec, 10_000, 8, seed=0)
    before = c.lookup(np.array([42]))
    c.observe(np.array([42] * 6 + [7]))
    assert c.sketch.query(np.array([42, 7])).tolist()[1] == 0
    assert c.sketch.query(np.array([42])).tolist()[0] > 0
    np.testing.assert_array_equal(c.lookup(np.array([42])), before)  # promoted from its hash row
    assert c.nbytes() == (4 + 50) * 8 * 4 + 48 * 4


def test_memrec_sizes_and_gathers():
    spec = MemRecSpec(token_rows=100, weight_rows=20, token_hashes=3, weight_hashes=2)
    c = build_codec(spec, 10_000, 16, seed=0)
    assert c.nbytes() == (100 * 16 + 20 * 3) * 4
    assert c.gathers_per_lookup() == 5


def test_costs():
    assert RawSpec().cost(10, 16).bytes_per_lookup == 64
    tt = TTSpec(ranks=[32, 32]).cost(10_131_227, 64)
    assert tt.flops_per_lookup == 2 * 18_432 and tt.gathers_per_lookup == 3
    q = QuantSpec(bits=4).cost(10, 16)
    assert q.bytes_per_lookup == 8 + 4  # packed row + fp16 scale and bias


def test_bad_inputs(table):
    with pytest.raises(ConfigError, match="shape"):
        build_codec(RawSpec(), ROWS + 1, DIM, table=table)
    with pytest.raises(ConfigError, match="dtype"):
        build_codec(QuantSpec(), ROWS, DIM, table=table.astype(np.int32))
    with pytest.raises(ConfigError, match="no encoder"):
        build_codec(QRSpec(num_remainder=3), ROWS, DIM, table=table)
    c = build_codec(RawSpec(), ROWS, DIM, table=table)
    with pytest.raises(ConfigError, match="out of range"):
        c.lookup(np.array([ROWS]))
    with pytest.raises(ConfigError, match="dtype"):
        c.lookup(np.array([1.5]))
