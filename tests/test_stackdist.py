"""LRU stack distances: the Fenwick method against hand-computed answers, the naive O(N·U) list
method, a direct LRU-cache simulation and dlrm's published distribution file."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simrec.trace.stackdist import (
    StackDistanceCounter,
    StackDistanceHistogram,
    naive_stack_distances,
    stack_distance_histogram,
    stack_distances,
    to_dlrm_convention,
)


def _read_ints(path) -> list[int]:
    return [int(x) for x in path.read_text().split(",") if x.strip()]


# dlrm's input/trace.log (reference/anchors.md §3.2): 1, 2, 3, 4, 5, 3, 4, 1, 1, 6, 3.
# Distance = distinct *other* rows since the previous reference of the same row:
#   t0..t4  1 2 3 4 5    first references                              -> cold x5
#   t5      3            since t2: {4, 5}                              -> 2
#   t6      4            since t3: {5, 3}                              -> 2
#   t7      1            since t0: {2, 3, 4, 5}                        -> 4
#   t8      1            immediate repeat                              -> 0
#   t9      6            first reference                               -> cold
#   t10     3            since t5: {4, 1, 6}                           -> 3
DLRM_TRACE_DISTANCES = [-1, -1, -1, -1, -1, 2, 2, 4, 0, -1, 3]


def test_dlrm_trace_by_hand(shared_data):
    refs = _read_ints(shared_data / "dlrm_trace.log")
    assert refs == [1, 2, 3, 4, 5, 3, 4, 1, 1, 6, 3]
    assert stack_distances(refs).tolist() == DLRM_TRACE_DISTANCES
    assert naive_stack_distances(refs) == DLRM_TRACE_DISTANCES


def test_dlrm_distribution_file(shared_data):
    """dlrm's input/dist_emb_0.log is the profile of input/trace.log in dlrm's convention
    (depth = distance + 1, 0 = cold): line 1 the cold rows in order, line 2 the distinct values,
    line 3 their cumulative probabilities (printed with 2 decimals)."""
    refs = _read_ints(shared_data / "dlrm_trace.log")
    lines = (shared_data / "dlrm_dist_emb_0.log").read_text().strip().splitlines()
    unique_accesses = [int(x) for x in lines[0].split(",")]
    sd_values = [int(x) for x in lines[1].split(",")]
    cum_p = [float(x) for x in lines[2].split(",")]

    d = stack_distances(refs)
    cold_rows = [r for r, di in zip(refs, d, strict=True) if di < 0]
    assert cold_rows == unique_accesses
    dl = to_dlrm_convention(d)
    vals, cnt = np.unique(dl, return_counts=True)
    assert vals.tolist() == sd_values
    np.testing.assert_allclose(np.cumsum(cnt) / len(dl), cum_p, atol=0.005)


def test_hand_made_streams():
    assert stack_distances([7, 7, 7]).tolist() == [-1, 0, 0]
    assert stack_distances([1, 2, 1, 2]).tolist() == [-1, -1, 1, 1]
    # a cyclic scan over k rows always has distance k-1
    k = 5
    assert stack_distances(list(range(k)) * 3).tolist() == [-1] * k + [k - 1] * (2 * k)
    # huge labels are fine (relabelled internally)
    assert stack_distances([10**15, 3, 10**15]).tolist() == [-1, -1, 1]
    assert stack_distances([]).tolist() == []


def _lru_misses(refs, capacity: int) -> int:
    """Direct simulation of a fully-associative LRU cache of ``capacity`` rows."""
    cache: OrderedDict[int, None] = OrderedDict()
    misses = 0
    for x in refs:
        if x in cache:
            cache.move_to_end(x)
        else:
            misses += 1
            if capacity == 0:
                continue
            cache[x] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    return misses


streams = st.lists(st.integers(min_value=0, max_value=40), min_size=0, max_size=300)


@settings(max_examples=150, deadline=None)
@given(
    refs=streams,
    nchunks=st.integers(min_value=1, max_value=6),
    window=st.sampled_from([2, 3, 8, 1024]),
    exact=st.sampled_from([1, 2, 4, 1024]),
)
def test_fenwick_matches_naive(refs, nchunks, window, exact):
    """Chunked streaming with tiny windows (forcing compaction and growth) equals the naive list."""
    want = naive_stack_distances(refs)
    c = StackDistanceCounter(41, exact_limit=exact, initial_window=window)
    got = []
    for ch in np.array_split(np.array(refs, dtype=np.int64), nchunks):
        o = np.empty(len(ch), dtype=np.int64)
        c.update(ch, out=o)
        got.extend(o.tolist())
    assert got == want
    h = c.histogram()
    assert h.references == len(refs)
    assert h.cold == sum(1 for x in want if x < 0)
    # the histogram bins hold exactly the naive distances
    lo, hi = h.bin_lo(), h.bin_hi()
    for k in np.flatnonzero(h.counts):
        assert h.counts[k] == sum(1 for x in want if lo[k] <= x < hi[k])


@settings(max_examples=60, deadline=None)
@given(refs=streams, cap=st.integers(min_value=0, max_value=45))
def test_miss_ratio_equals_lru_simulation(refs, cap):
    h = stack_distance_histogram(np.array(refs, dtype=np.int64), key_space=41, exact_limit=8)
    if not refs:
        assert h.references == 0
        return
    # exact for capacities <= exact_limit and for powers of two
    if cap <= 8 or cap & (cap - 1) == 0:
        assert h.misses(cap) == _lru_misses(refs, cap)


def test_log_bins_and_interpolation():
    # cyclic scan over 20 rows: every re-reference has distance 19 (bin [16, 32) for exact_limit 4)
    refs = np.tile(np.arange(20), 3)
    h = stack_distance_histogram(refs, exact_limit=4)
    assert h.cold == 20 and h.reuses == 40
    k = int(np.flatnonzero(h.counts)[0])
    assert (h.bin_lo()[k], h.bin_hi()[k]) == (16, 32)
    assert h.miss_ratio(16) == 1.0  # power of two: exact (19 >= 16, all miss)
    assert h.miss_ratio(32) == pytest.approx(20 / 60)  # exact: only cold misses
    # between powers of two: linear inside the bin [16, 32): at 24 half of the bin counts
    assert h.misses(24) == pytest.approx(20 + 40 * 0.5)
    caps, mr = h.mrc()
    assert caps.tolist() == [1, 2, 4, 8, 16, 32]
    assert np.all(np.diff(mr) <= 0)
    assert h.miss_ratio(0) == 1.0
    # a cache holds whole rows: fractional capacities round down (up to exact_limit)
    h2 = stack_distance_histogram(np.array([1, 1, 2, 2]))
    assert h2.misses(0.9) == h2.misses(0) == 4
    assert h2.misses(1.5) == h2.misses(1) == 2


def test_histogram_add_and_dict():
    a = stack_distance_histogram(np.array([1, 1, 2, 1]))
    b = stack_distance_histogram(np.array([3, 3]))
    s = a + b
    assert s.references == 6 and s.cold == 3
    d = s.to_dict()
    assert d["references"] == 6 and d["cold"] == 3
    assert dict(zip(d["bin_lo"], d["counts"], strict=True)) == {0: 2, 1: 1}
    assert d["mrc"]["capacity"][0] == 1
    with pytest.raises(ValueError):
        StackDistanceHistogram(exact_limit=3)


def test_counter_rejects_out_of_range():
    c = StackDistanceCounter(10)
    with pytest.raises(ValueError, match="out of range"):
        c.update(np.array([3, 10]))
    with pytest.raises(ValueError):
        c.update(np.array([-1]))
    with pytest.raises(TypeError):
        c.update(np.array([1.5]))


def test_large_random_stream_against_naive():
    rng = np.random.default_rng(7)
    refs = (3000 * rng.random(30_000) ** 3).astype(np.int64)
    assert stack_distances(refs).tolist() == naive_stack_distances(refs.tolist())


def test_growable_key_space_matches_fixed():
    rng = np.random.default_rng(3)
    refs = rng.integers(0, 5000, 20_000)
    fixed = StackDistanceCounter(5000)
    grow = StackDistanceCounter(4, growable=True, initial_window=2)
    o1 = np.empty(len(refs), dtype=np.int64)
    fixed.update(refs, out=o1)
    parts = []
    for ch in np.array_split(refs, 9):
        o = np.empty(len(ch), dtype=np.int64)
        grow.update(ch, out=o)
        parts.append(o)
    assert np.array_equal(np.concatenate(parts), o1)
    assert grow.key_space >= 5000 and grow.distinct == fixed.distinct
    with pytest.raises(ValueError):
        grow.update(np.array([-2]))


def test_any_integer_dtype_and_byte_order():
    refs = [4, 1, 4, 2, 1, 1]
    want = naive_stack_distances(refs)
    for dt in ("<i4", ">i4", "<u2", ">i8", "u1"):
        c = StackDistanceCounter(5)
        out = np.empty(len(refs), dtype=np.int64)
        c.update(np.array(refs, dtype=dt), out=out)
        assert out.tolist() == want, dt
