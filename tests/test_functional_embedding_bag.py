"""Embedding-bag: pooling semantics, against torch.nn.functional.embedding_bag when installed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simrec.errors import SimrecError
from simrec.functional.embedding_bag import embedding_bag, pool_rows, pooled_batch
from simrec.trace.format import read_trace


def _bags(seed=0, rows=500, dim=8, b=64, maxlen=6):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((rows, dim)).astype(np.float32)
    lengths = rng.integers(0, maxlen, b)
    lengths[3] = 0  # at least one empty bag
    off = np.concatenate([[0], np.cumsum(lengths)])
    idx = rng.integers(0, rows, off[-1])
    w = rng.random(off[-1]).astype(np.float32)
    return table, idx, off, w


def _loop_reference(table, idx, off, mode, w=None):
    t = table.astype(np.float64)
    out = np.zeros((len(off) - 1, table.shape[1]))
    for s in range(len(off) - 1):
        rows = t[idx[off[s] : off[s + 1]]]
        if w is not None:
            rows = rows * w[off[s] : off[s + 1], None]
        if len(rows) == 0:
            continue
        out[s] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0)}[mode]
    return out


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_against_loop(mode, dtype):
    table, idx, off, _ = _bags()
    t = table.astype(dtype)
    got = embedding_bag(t, idx, off, mode)
    assert got.dtype == dtype and got.shape == (64, 8)
    tol = 1e-5 if dtype == np.float32 else 4e-3
    np.testing.assert_allclose(got, _loop_reference(t, idx, off, mode), rtol=tol, atol=tol)
    assert (got[3] == 0).all()


def test_weighted_sum_and_fixed_length():
    table, idx, off, w = _bags(1)
    got = embedding_bag(table, idx, off, "sum", w)
    np.testing.assert_allclose(got, _loop_reference(table, idx, off, "sum", w), rtol=1e-5)
    off2 = np.arange(0, 5 * 40 + 1, 5)
    idx2 = np.random.default_rng(2).integers(0, 500, 200)
    np.testing.assert_allclose(
        embedding_bag(table, idx2, off2, "max"), _loop_reference(table, idx2, off2, "max")
    )


def test_pool_rows_is_bit_identical_to_embedding_bag():
    table, idx, off, w = _bags(3)
    for mode in ("sum", "mean", "max"):
        a = embedding_bag(table, idx, off, mode)
        b = pool_rows(table[idx], off, mode)
        assert np.array_equal(a, b)
    assert np.array_equal(
        embedding_bag(table, idx, off, "sum", w), pool_rows(table[idx], off, "sum", w)
    )


def test_threads_give_the_same_bits():
    table, idx, off, w = _bags(11, rows=3000, dim=16, b=500, maxlen=30)
    for mode, ww in (("sum", None), ("sum", w), ("mean", None), ("max", None)):
        one = embedding_bag(table, idx, off, mode, ww)
        for threads in (2, 3, 7):
            assert np.array_equal(embedding_bag(table, idx, off, mode, ww, threads=threads), one)
    assert np.array_equal(pool_rows(table[idx], off, threads=4), embedding_bag(table, idx, off))
    # callable from several Python threads at once (the calibration benchmark does that)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda _: embedding_bag(table, idx, off), range(8)))
    assert all(np.array_equal(o, outs[0]) for o in outs)


def test_bad_inputs():
    table, idx, off, w = _bags()
    with pytest.raises(SimrecError, match="only defined for mode 'sum'"):
        embedding_bag(table, idx, off, "max", w)
    with pytest.raises(SimrecError, match="out of range"):
        embedding_bag(table, np.array([500]), np.array([0, 1]))
    with pytest.raises(SimrecError, match="offsets"):
        embedding_bag(table, idx, off + 1)
    with pytest.raises(SimrecError, match="dtype"):
        embedding_bag(table.astype(np.int8), idx, off)
    with pytest.raises(SimrecError, match="unknown pooling"):
        embedding_bag(table, idx, off, "median")


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_against_torch_random(mode, dtype):
    torch = pytest.importorskip("torch")
    table, idx, off, w = _bags(7, rows=2000, dim=16, b=256, maxlen=20)
    t = table.astype(dtype)
    want = torch.nn.functional.embedding_bag(
        torch.from_numpy(idx),
        torch.from_numpy(t),
        torch.from_numpy(off),
        mode=mode,
        include_last_offset=True,
    ).numpy()
    got = embedding_bag(t, idx, off, mode)
    if dtype == np.float32 and mode != "mean":
        assert np.array_equal(got, want)  # same summation order: same bits
    tol = 1e-6 if dtype == np.float32 else 2e-3
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=tol, atol=tol)
    if mode == "sum":
        want_w = torch.nn.functional.embedding_bag(
            torch.from_numpy(idx),
            torch.from_numpy(table),
            torch.from_numpy(off),
            mode="sum",
            include_last_offset=True,
            per_sample_weights=torch.from_numpy(w),
        ).numpy()
        np.testing.assert_allclose(
            embedding_bag(table, idx, off, "sum", w), want_w, rtol=1e-5, atol=1e-6
        )


@pytest.mark.torch
def test_against_torch_on_criteo_sample(repo_dir):
    torch = pytest.importorskip("torch")
    path = repo_dir / "traces" / "criteo_sample.trc"
    if not path.exists():
        pytest.skip("traces/criteo_sample.trc is not built yet")
    r = read_trace(path)
    rng = np.random.default_rng(0)
    tables = [rng.standard_normal((s.rows, s.dim)).astype(np.float32) for s in r.header.tables]
    n = 0
    for batch in r:
        got = pooled_batch(tables, batch)
        for t, tab in enumerate(tables):
            want = torch.nn.functional.embedding_bag(
                torch.from_numpy(batch.table_indices(t).astype(np.int64)),
                torch.from_numpy(tab),
                torch.from_numpy(batch.table_offsets(t).copy()),
                mode="sum",
                include_last_offset=True,
            ).numpy()
            assert np.array_equal(got[t], want)
            n += 1
    assert n == 26 * len(r)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 50),
    dim=st.integers(1, 9),
    lengths=st.lists(st.integers(0, 6), min_size=1, max_size=20),
    mode=st.sampled_from(["sum", "mean", "max"]),
    weighted=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_property_against_loop(rows, dim, lengths, mode, weighted, seed):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((rows, dim)).astype(np.float32)
    off = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    idx = rng.integers(0, rows, off[-1])
    w = rng.random(off[-1]).astype(np.float32) if weighted and mode == "sum" else None
    got = embedding_bag(table, idx, off, mode, w)
    want = _loop_reference(table, idx, off, mode, w)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
