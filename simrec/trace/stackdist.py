"""LRU stack distances and miss-ratio curves, in O(N log N), streaming.

**Convention.** For a reference stream ``r_0, r_1, …`` the *stack distance* of reference ``i`` to row
``x`` is the number of **distinct other rows** referenced since the previous reference to ``x``
(strictly between the two). A reference with no previous reference is a *cold* reference (no
distance; reported as ``-1`` by :func:`stack_distances`). So an immediate repeat (``x, x``) has
distance 0, and the 1-based depth of ``x`` in the LRU stack at the time of the reference is
``distance + 1``. (facebookresearch/dlrm's ``trace_profile`` reports that depth, with 0 for a cold
reference; :func:`to_dlrm_convention` converts.)

A fully-associative LRU cache of ``C`` rows (starting empty) hits reference ``i`` exactly when
``distance_i < C``. Its **miss ratio** is therefore ``MR(C) = (cold + #{i: distance_i >= C}) / N``;
``MR(0) = 1`` and ``MR(C)`` for ``C`` >= the number of distinct rows is the cold share.

**Algorithm** (the classic "count the distinct rows since the last use with a tree over time"
idea, our own implementation): each reference takes the next position of a time window; every
position is either *live* (the latest reference of its row) or a *hole* (its row was referenced
again later). Holes are bits, 32 window positions to a word, and a Fenwick (binary indexed) tree
over the words counts them (a popcount finishes the word), so a re-reference of ``x`` whose
previous reference sits at position ``j`` has distance ``(pos - j - 1) - holes after j``; then ``j``
becomes a hole. That is one ``O(log M)`` prefix query and one point update per re-reference and
nothing for a cold one, ``M`` being the window size; the tree is 32 times smaller than the window,
which keeps it in cache. When the window is full it is compacted (the
``U`` live positions are renumbered ``0..U-1`` in order, holes vanish) and doubled when more than half
of it is live, so the state is ``O(U)`` for the window plus one integer per row of the key space for
the latest position (allocated zeroed, so the operating system backs only the pages that are
touched). Nothing grows with the number of references: streams of any length are fed in chunks
through :meth:`StackDistanceCounter.update`, which carries the state between calls. Total cost
``O(N log U)``.

**Histogram.** Distances below ``exact_limit`` (a power of two, default 1024) are counted exactly;
larger ones in log2 bins ``[2^k, 2^(k+1))``. Miss ratios are exact for every ``C <= exact_limit`` and
every power of two; between powers of two beyond ``exact_limit`` they are interpolated linearly
(distances assumed uniform inside the bin).

:func:`naive_stack_distances` is the O(N·U) move-to-front list method (what dlrm's ``trace_profile``
does with a deque); it is the reference for tests and benchmarks.

Not covered: set-associative caches, caches of bytes rather than rows, and policies other than LRU.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_EXACT_LIMIT",
    "StackDistanceCounter",
    "StackDistanceHistogram",
    "naive_stack_distances",
    "stack_distance_histogram",
    "stack_distances",
    "to_dlrm_convention",
]

DEFAULT_EXACT_LIMIT = 1024
_MIN_WINDOW = 1024


# ---------------------------------------------------------------------------------------------
# numba kernels
# ---------------------------------------------------------------------------------------------
_BLOCK_BITS = 5  # holes are kept as 32-bit words, the Fenwick tree counts holes per word
_BLOCK = 1 << _BLOCK_BITS


def _popcount32(v):  # pragma: no cover - jit
    v = v - ((v >> 1) & 0x55555555)
    v = (v & 0x33333333) + ((v >> 2) & 0x33333333)
    v = (v + (v >> 4)) & 0x0F0F0F0F
    return ((v * 0x01010101) & 0xFFFFFFFF) >> 24


def _sd_run(refs, start, last, who, bits, tree, state, hist, log_e, e, out):  # pragma: no cover
    """Process ``refs[start:]`` until done or the window is full; return the next unprocessed index.

    ``state`` = [next free window position, live rows, cold references, holes]. Every window
    position below ``state[0]`` is either *live* (the latest reference of its row) or a *hole* (its
    row was referenced again later). Holes are bits of ``bits`` (32 positions per word, low 32
    bits of an int64); ``tree`` is a 1-based Fenwick tree over the words counting their holes, so
    it is 32 times smaller than the window and stays in cache. The distinct rows touched since
    position ``j`` are ``(pos - j - 1) - holes after j``: one prefix query and one point update
    per re-reference, none for a cold reference. ``who[p]`` is the row whose latest reference sits
    at position ``p`` (-1 for a hole), ``last[x]`` = 1 + position of row x's latest reference
    (0 = never referenced). ``out`` receives per-reference distances when it is not empty.
    """
    m = who.shape[0]
    nblk = bits.shape[0]
    pos = state[0]
    live = state[1]
    cold = state[2]
    holes = state[3]
    n = refs.shape[0]
    write_out = out.shape[0] > 0
    i = start
    while i < n and pos < m:
        x = refs[i]
        j = np.int64(last[x]) - 1
        if j < 0:
            d = -1
            live += 1
            cold += 1
        else:
            blk = j >> 5
            sh = j & 31
            s = 0
            k = blk
            while k > 0:
                s += tree[k]
                k -= k & (-k)
            w = bits[blk]
            s += _popcount32(w & ((np.int64(2) << sh) - 1))
            d = (pos - j - 1) - (holes - s)
            bits[blk] = w | (np.int64(1) << sh)
            k = blk + 1
            while k <= nblk:
                tree[k] += 1
                k += k & (-k)
            holes += 1
            who[j] = -1
            if d < e:
                hist[d] += 1
            else:
                b = 0
                v = d
                while v > 1:
                    v >>= 1
                    b += 1
                hist[e + b - log_e] += 1
        who[pos] = x
        last[x] = pos + 1
        pos += 1
        if write_out:
            out[i] = d
        i += 1
    state[0] = pos
    state[1] = live
    state[2] = cold
    state[3] = holes
    return i


def _sd_compact(who, last, new_who, new_bits, new_tree, pos):  # pragma: no cover - jit
    """Move the live positions of ``who[:pos]`` to ``0..U-1`` of ``new_who`` (no holes); return U."""
    k = 0
    for p in range(pos):
        x = who[p]
        if x >= 0:
            new_who[k] = x
            last[x] = k + 1
            k += 1
    for p in range(k, new_who.shape[0]):
        new_who[p] = -1
    for p in range(new_bits.shape[0]):
        new_bits[p] = 0
    for p in range(new_tree.shape[0]):
        new_tree[p] = 0
    return k


@functools.cache
def _kernels() -> types.SimpleNamespace:
    """The kernels above compiled with numba, on first use (``import`` stays free of numba).

    ``_popcount32`` is rebound to its compiled version before ``_sd_run`` is compiled, because
    numba resolves the helper through the module's globals at compile time.
    """
    from numba import njit

    global _popcount32
    _popcount32 = njit(cache=True, nogil=True, inline="always")(_popcount32)
    return types.SimpleNamespace(
        sd_run=njit(cache=True, nogil=True)(_sd_run),
        sd_compact=njit(cache=True, nogil=True)(_sd_compact),
    )


# ---------------------------------------------------------------------------------------------
# histogram
# ---------------------------------------------------------------------------------------------
def _num_bins(exact_limit: int) -> int:
    # exact bins, then [2^k, 2^(k+1)) for k = log2(exact_limit) .. 61 (distances stay below 2^62)
    return exact_limit + 62 - (int(exact_limit).bit_length() - 1)


@dataclass
class StackDistanceHistogram:
    """Histogram of LRU stack distances (see the module docstring for the convention).

    ``counts[d]`` for ``d < exact_limit`` is the number of references at distance exactly ``d``;
    ``counts[exact_limit + k]`` counts distances in ``[exact_limit·2^k, exact_limit·2^(k+1))``.
    ``cold`` counts first references. ``references = cold + counts.sum()``.
    """

    exact_limit: int = DEFAULT_EXACT_LIMIT
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cold: int = 0

    def __post_init__(self) -> None:
        e = int(self.exact_limit)
        if e < 1 or e & (e - 1):
            raise ValueError(f"exact_limit must be a power of two >= 1, got {e}")
        n = _num_bins(e)
        c = np.asarray(self.counts, dtype=np.int64)
        if c.size == 0:
            c = np.zeros(n, dtype=np.int64)
        if c.shape != (n,):
            raise ValueError(f"counts must have {n} bins for exact_limit {e}, got {c.shape}")
        self.counts = c
        self.cold = int(self.cold)

    # -- bins ---------------------------------------------------------------------------------
    @property
    def references(self) -> int:
        """Total number of references (cold included)."""
        return self.cold + int(self.counts.sum())

    @property
    def reuses(self) -> int:
        """References that are not cold."""
        return int(self.counts.sum())

    def bin_lo(self) -> np.ndarray:
        """Smallest distance of each bin."""
        e = self.exact_limit
        k = np.arange(len(self.counts) - e, dtype=np.int64)
        return np.concatenate([np.arange(e, dtype=np.int64), e * (2**k)]).astype(np.int64)

    def bin_hi(self) -> np.ndarray:
        """One past the largest distance of each bin (``bin_lo + 1`` for exact bins)."""
        e = self.exact_limit
        k = np.arange(len(self.counts) - e, dtype=np.int64)
        return np.concatenate([np.arange(1, e + 1, dtype=np.int64), e * (2 ** (k + 1))])

    def used_bins(self) -> int:
        """Number of bins up to and including the last non-empty one."""
        nz = np.flatnonzero(self.counts)
        return int(nz[-1]) + 1 if len(nz) else 0

    @property
    def max_distance_bound(self) -> int:
        """An upper bound (exact below ``exact_limit``) of the largest distance seen, -1 if none."""
        u = self.used_bins()
        return int(self.bin_hi()[u - 1]) - 1 if u else -1

    # -- miss ratios --------------------------------------------------------------------------
    def misses(self, capacity: float) -> float:
        """Misses of an LRU cache of ``capacity`` rows: cold + references at distance >= capacity.

        A cache holds whole rows, so a fractional capacity up to ``exact_limit`` is rounded down;
        beyond it, capacities between powers of two are interpolated inside their log2 bin.
        """
        c = float(capacity)
        if c < 0:
            raise ValueError("capacity must be >= 0")
        e = self.exact_limit
        if c <= e:
            ci = int(np.floor(c))
            return float(self.cold + int(self.counts[ci:].sum()))
        lo = self.bin_lo()
        hi = self.bin_hi()
        k = int(np.searchsorted(lo, c, side="right")) - 1
        above = int(self.counts[k + 1 :].sum())
        frac = (hi[k] - c) / (hi[k] - lo[k])
        return float(self.cold + above) + float(self.counts[k]) * frac

    def miss_ratio(self, capacity: float) -> float:
        """``misses(capacity) / references`` (NaN for an empty histogram)."""
        n = self.references
        return self.misses(capacity) / n if n else float("nan")

    def default_capacities(self) -> np.ndarray:
        """Capacities 1, 2, 4, … up to the first power of two beyond every distance seen."""
        top = max(self.max_distance_bound + 1, 1)
        k = int(np.ceil(np.log2(top))) if top > 1 else 0
        return (2 ** np.arange(k + 1, dtype=np.int64)).astype(np.int64)

    def mrc(
        self, capacities: Sequence[float] | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The miss-ratio curve ``(capacities, miss ratios)``; default capacities are powers of two."""
        caps = self.default_capacities() if capacities is None else np.asarray(capacities)
        return caps, np.array([self.miss_ratio(c) for c in caps], dtype=np.float64)

    # -- combination and export ---------------------------------------------------------------
    def __add__(self, other: StackDistanceHistogram) -> StackDistanceHistogram:
        if other.exact_limit != self.exact_limit:
            raise ValueError("cannot add histograms with different exact_limit")
        return StackDistanceHistogram(
            self.exact_limit, self.counts + other.counts, self.cold + other.cold
        )

    def to_dict(self, capacities: Sequence[float] | None = None) -> dict[str, Any]:
        """JSON-ready: non-empty bins (lo, hi exclusive, count), cold count and the miss-ratio curve."""
        u = self.used_bins()
        caps, mr = self.mrc(capacities)
        nz = np.flatnonzero(self.counts[:u])
        return {
            "convention": "distinct other rows since the previous reference; cold = first reference",
            "references": self.references,
            "cold": self.cold,
            "exact_limit": self.exact_limit,
            "bin_lo": self.bin_lo()[nz].tolist(),
            "bin_hi": self.bin_hi()[nz].tolist(),
            "counts": self.counts[nz].tolist(),
            "mrc": {"capacity": [int(c) for c in caps], "miss_ratio": [float(x) for x in mr]},
        }


# ---------------------------------------------------------------------------------------------
# streaming counter
# ---------------------------------------------------------------------------------------------
class StackDistanceCounter:
    """Streaming LRU stack-distance histogram over keys ``0 .. key_space-1``.

    Feed the reference stream in chunks with :meth:`update` (any integer array); the state (latest
    position per key, Fenwick window) carries over between calls, so splitting a stream into chunks
    never changes the result. Memory: one ``int32`` per key (``int64`` from 2^29 keys; zeroed
    lazily by the OS) plus ``O(distinct keys seen)`` for the window; nothing proportional to the
    stream length. With ``growable=True`` a key beyond ``key_space`` enlarges it (doubling)
    instead of being an error; use that with densely numbered keys.
    """

    def __init__(
        self,
        key_space: int,
        exact_limit: int = DEFAULT_EXACT_LIMIT,
        initial_window: int = _MIN_WINDOW,
        growable: bool = False,
    ):
        if key_space < 1:
            raise ValueError("key_space must be >= 1")
        self.key_space = int(key_space)
        self.growable = growable
        self.hist = StackDistanceHistogram(exact_limit)
        self._log_e = int(exact_limit).bit_length() - 1
        # positions stay below 2 * key_space + window, so int32 state suffices below 2^29 keys
        self._pdt = np.int32 if self.key_space < 2**29 else np.int64
        self._last = np.zeros(self.key_space, dtype=self._pdt)
        w = -(-max(int(initial_window), 2) // _BLOCK) * _BLOCK  # a whole number of words
        self._who = np.full(w, -1, dtype=self._pdt)
        self._bits = np.zeros(w // _BLOCK, dtype=np.int64)
        self._tree = np.zeros(w // _BLOCK + 1, dtype=self._pdt)
        self._state = np.zeros(4, dtype=np.int64)  # next position, live, cold, holes
        self._empty_out = np.zeros(0, dtype=np.int64)

    @property
    def distinct(self) -> int:
        """Distinct keys seen so far."""
        return int(self._state[1])

    def _grow(self, needed: int) -> None:
        """Enlarge the key space to at least ``needed`` keys (doubling)."""
        new_ks = max(int(needed), 2 * self.key_space)
        if new_ks >= 2**29 and self._pdt is np.int32:
            self._pdt = np.int64
            self._who = self._who.astype(np.int64)
            self._tree = self._tree.astype(np.int64)
        last = np.zeros(new_ks, dtype=self._pdt)
        last[: self.key_space] = self._last
        self._last = last
        self.key_space = new_ks

    def _make_room(self) -> None:
        """Compact the full window; double it first when more than half of it is live."""
        live = int(self._state[1])
        m = len(self._who)
        new_m = m
        while live > new_m // 2:
            new_m *= 2
        new_who = np.empty(new_m, dtype=self._pdt)
        new_bits = np.empty(new_m // _BLOCK, dtype=np.int64)
        new_tree = np.empty(new_m // _BLOCK + 1, dtype=self._pdt)
        k = _kernels().sd_compact(
            self._who, self._last, new_who, new_bits, new_tree, int(self._state[0])
        )
        assert k == live
        self._who, self._bits, self._tree = new_who, new_bits, new_tree
        self._state[0] = live
        self._state[3] = 0

    def update(self, refs: np.ndarray, out: np.ndarray | None = None, check: bool = True) -> None:
        """Account the references ``refs`` (keys in ``0..key_space-1``).

        If ``out`` (int64, same length) is given, the distance of each reference is stored there
        (-1 for cold). ``check=False`` skips the range check (a growable counter still grows);
        pass it only for keys already known to be in range, the kernel does not check bounds.
        """
        r = np.asarray(refs)
        if r.dtype.kind not in "iu":
            raise TypeError("references must be integers")
        if r.ndim != 1:
            r = r.reshape(-1)
        if r.size == 0:
            return
        if check or self.growable:
            lo, hi = int(r.min()), int(r.max())
            if hi >= self.key_space and self.growable and lo >= 0:
                self._grow(hi + 1)
        if check and (lo < 0 or hi >= self.key_space):
            raise ValueError(
                f"reference out of range 0..{self.key_space - 1}: {lo if lo < 0 else hi}"
            )
        if not r.dtype.isnative:
            r = r.astype(r.dtype.newbyteorder("="))
        o = self._empty_out if out is None else out
        if out is not None and (out.shape != r.shape or out.dtype != np.int64):
            raise ValueError("out must be an int64 array of the same length as refs")
        i = 0
        n = len(r)
        while i < n:
            if self._state[0] >= len(self._who):
                self._make_room()
            i = _kernels().sd_run(
                r, i, self._last, self._who, self._bits, self._tree, self._state, self.hist.counts,
                self._log_e, self.hist.exact_limit, o,
            )  # fmt: skip
        self.hist.cold = int(self._state[2])

    def histogram(self) -> StackDistanceHistogram:
        """A copy of the histogram so far."""
        return StackDistanceHistogram(
            self.hist.exact_limit, self.hist.counts.copy(), self.hist.cold
        )


# ---------------------------------------------------------------------------------------------
# convenience functions and the naive reference
# ---------------------------------------------------------------------------------------------
def _key_space(r: np.ndarray) -> int:
    return int(r.max()) + 1 if r.size else 1


def stack_distances(refs: Sequence[int] | np.ndarray) -> np.ndarray:
    """Distances of every reference (int64, -1 = cold), by the O(N log N) method."""
    r = np.asarray(refs, dtype=np.int64).reshape(-1)
    out = np.empty(len(r), dtype=np.int64)
    if r.size == 0:
        return out
    if r.min() < 0:
        raise ValueError("references must be >= 0")
    # relabel to a dense key space so huge labels cost nothing
    _, dense = np.unique(r, return_inverse=True)
    StackDistanceCounter(_key_space(dense)).update(dense.astype(np.int64), out=out)
    return out


def stack_distance_histogram(
    refs: Iterable[np.ndarray] | np.ndarray,
    key_space: int | None = None,
    exact_limit: int = DEFAULT_EXACT_LIMIT,
) -> StackDistanceHistogram:
    """Histogram of a stream given as one array or an iterable of chunks (keys >= 0)."""
    if isinstance(refs, np.ndarray):
        chunks: list[np.ndarray] | Iterable[np.ndarray] = [refs]
        if key_space is None:
            key_space = _key_space(refs)
    else:
        chunks = list(refs) if key_space is None else refs
        if key_space is None:
            key_space = max((_key_space(np.asarray(c)) for c in chunks), default=1)  # type: ignore[union-attr]
    c = StackDistanceCounter(key_space, exact_limit=exact_limit)
    for ch in chunks:
        c.update(np.asarray(ch))
    return c.histogram()


def naive_stack_distances(refs: Iterable[int]) -> list[int]:
    """Reference O(N·U) method: an LRU list searched linearly and moved to the front.

    Returns the distance of each reference (distinct other rows since its previous reference),
    -1 for a cold reference. Plain Python; use only on short streams.
    """
    stack: list[int] = []  # most recent first
    seen: set[int] = set()
    out: list[int] = []
    for x in refs:
        x = int(x)
        if x in seen:
            i = stack.index(x)
            del stack[i]
            out.append(i)
        else:
            seen.add(x)
            out.append(-1)
        stack.insert(0, x)
    return out


def to_dlrm_convention(distances: np.ndarray | Sequence[int]) -> np.ndarray:
    """facebookresearch/dlrm ``trace_profile`` values: LRU depth ``distance + 1``, 0 for cold."""
    d = np.asarray(distances, dtype=np.int64)
    return np.where(d < 0, 0, d + 1)
