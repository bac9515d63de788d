"""Random building blocks shared by the trace generators (``simrec trace gen``).

* :func:`stream_rng` — one independent, seeded numpy ``Generator`` per purpose (indices, pooling,
  weights, arrival times, …), so that switching one option on (say ``--weighted``) does not change
  the random numbers any other part of the trace uses.
* :class:`FeistelPermutation` — a seeded bijection of ``[0, n)`` computed on the fly (a 4-round
  Feistel network on the next even power of two, with cycle walking). It replaces an explicit
  ``rng.permutation(n)``: mapping Zipf *ranks* to *rows* of a 40M-row table needs no 320 MB array.
* :class:`TruncatedZipf` — ``P(rank k) ∝ k^-alpha`` on ``k = 1..n`` (``alpha > 1``), sampled by
  inverse CDF: the exact CDF of the first 65,536 ranks is tabulated, the rest of the CDF uses the
  midpoint-rule integral ``∑_{j=K+1}^{k} j^-a ≈ ∫_{K+½}^{k+½} x^-a dx`` and is inverted in closed
  form. Unlike ``numpy.random.zipf`` it is bounded to ``n`` and needs no rejection loop.
* :class:`Pooling` — bag sizes: fixed, or drawn from a uniform / normal / lognormal distribution with
  a given mean and standard deviation, rounded to integers and clipped at 0 (0 = the feature is
  absent for that sample).

What this leaves out: the tail approximation of :class:`TruncatedZipf` is not exact (its relative
error per rank beyond 65,536 is far below 10^-9 for alpha in (1, 3]); the Feistel permutation is a
good scrambler, not a cryptographic one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from simrec.errors import SimrecError

__all__ = [
    "FeistelPermutation",
    "Pooling",
    "TruncatedZipf",
    "mix64",
    "stream_key",
    "stream_rng",
]

# Stream numbers: each purpose draws from its own generator, seeded by (stream, seed, *extra).
STREAM_INDICES = 1
STREAM_POOLING = 2
STREAM_WEIGHTS = 3
STREAM_ARRIVAL = 4
STREAM_DENSE = 5
STREAM_LABELS = 6
STREAM_PERM = 7
STREAM_REUSE = 8
STREAM_TABLES = 9

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def stream_rng(seed: int, stream: int, *extra: int) -> np.random.Generator:
    """A numpy Generator for one purpose (``stream``) of a trace with ``seed`` (plus e.g. a table)."""
    return np.random.default_rng([int(stream), int(seed), *(int(e) for e in extra)])


def stream_key(seed: int, stream: int, *extra: int) -> int:
    """A 64-bit key derived from (stream, seed, *extra), e.g. for a table's row permutation."""
    ss = np.random.SeedSequence([int(stream), int(seed), *(int(e) for e in extra)])
    return int(ss.generate_state(1, np.uint64)[0])


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast 64-bit mixing function applied element-wise (uint64 in/out)."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


class FeistelPermutation:
    """A seeded bijection of ``[0, n)`` evaluated element-wise, in O(1) memory.

    Four Feistel rounds on ``2h``-bit words (``2^(2h) >= n``, at most ``4n``) with a multiplicative
    round function, then cycle walking (re-encrypt until the value falls below ``n``), which keeps the
    map a bijection of ``[0, n)``. The expected number of walks is below 4.
    """

    ROUNDS = 4

    def __init__(self, n: int, key: int):
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n = int(n)
        bits = max(2, (self.n - 1).bit_length())
        bits += bits % 2
        self.half = bits // 2
        self._h = np.uint64(self.half)
        self._shift = np.uint64(64 - self.half)
        self._mask = np.uint64((1 << self.half) - 1)
        ks = np.random.SeedSequence([0x5EED, int(key) & (2**64 - 1)]).generate_state(
            self.ROUNDS, np.uint64
        )
        self._keys = [np.uint64(k) for k in ks]

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        left = x >> self._h
        right = x & self._mask
        for k in self._keys:
            f = ((right ^ k) * _GOLDEN) >> self._shift
            left, right = right, left ^ f
        return (left << self._h) | right

    def __call__(self, x: np.ndarray | Sequence[int] | int) -> np.ndarray:
        """Map values in ``[0, n)`` to their images in ``[0, n)`` (returns int64)."""
        a = np.atleast_1d(np.asarray(x, dtype=np.int64))
        if a.size and (a.min() < 0 or a.max() >= self.n):
            raise ValueError(f"values must lie in [0, {self.n})")
        y = self._encrypt(a.astype(np.uint64))
        n = np.uint64(self.n)
        bad = np.flatnonzero(y >= n)
        while bad.size:
            z = self._encrypt(y[bad])
            y[bad] = z
            bad = bad[z >= n]
        return y.astype(np.int64)


_HEAD_CACHE: dict[tuple[float, int], np.ndarray] = {}


def _head_cdf(alpha: float, head: int) -> np.ndarray:
    """Cumulative sums of k^-alpha for k = 1..head, shared by every table with this alpha."""
    key = (alpha, head)
    if key not in _HEAD_CACHE:
        if len(_HEAD_CACHE) > 16:
            _HEAD_CACHE.clear()
        c = np.cumsum(np.arange(1, head + 1, dtype=np.float64) ** (-alpha))
        c.flags.writeable = False
        _HEAD_CACHE[key] = c
    return _HEAD_CACHE[key]


class TruncatedZipf:
    """Zipf distribution over ranks ``1..n`` with ``P(k) = k^-alpha / H(n, alpha)``, ``alpha > 1``.

    ``sample`` returns 0-based ranks (0 = the most popular). ``share(k)`` is the probability of the
    ``k`` most popular ranks (the analytic "top-k share").
    """

    HEAD = 65536

    def __init__(self, n: int, alpha: float):
        if n < 1:
            raise ValueError("n must be >= 1")
        if not alpha > 1:
            raise ValueError("TruncatedZipf needs alpha > 1 (alpha <= 1 is handled as uniform)")
        self.n = int(n)
        self.alpha = float(alpha)
        k_head = min(self.n, self.HEAD)
        self._k = k_head
        self._head_cdf = _head_cdf(self.alpha, self.HEAD)[:k_head]
        self._h_head = float(self._head_cdf[-1])
        a1 = 1.0 - self.alpha
        self._c0 = (k_head + 0.5) ** a1
        tail = 0.0
        if self.n > k_head:
            tail = (self._c0 - (self.n + 0.5) ** a1) / (self.alpha - 1.0)
        self.total = self._h_head + tail

    def _cum(self, k: np.ndarray) -> np.ndarray:
        """Unnormalised H(k) = sum_{j<=k} j^-alpha (exact for k <= HEAD, integral beyond)."""
        k = np.asarray(k, dtype=np.int64)
        out = np.empty(k.shape, dtype=np.float64)
        head = k <= self._k
        out[head] = np.where(k[head] > 0, self._head_cdf[np.maximum(k[head], 1) - 1], 0.0)
        kt = k[~head].astype(np.float64)
        a1 = 1.0 - self.alpha
        out[~head] = self._h_head + (self._c0 - (kt + 0.5) ** a1) / (self.alpha - 1.0)
        return out

    def share(self, k: int | np.ndarray) -> np.ndarray:
        """Probability mass of the ``k`` most popular ranks."""
        return self._cum(np.minimum(np.asarray(k), self.n)) / self.total

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` 0-based ranks (int64)."""
        s = rng.random(size) * self.total
        out = np.empty(size, dtype=np.int64)
        head = s <= self._h_head
        out[head] = np.searchsorted(self._head_cdf, s[head], side="left")
        if not head.all():
            st = s[~head]
            a1 = 1.0 - self.alpha
            base = np.maximum(self._c0 - (self.alpha - 1.0) * (st - self._h_head), 1e-300)
            y = base ** (1.0 / a1)
            k1 = np.ceil(y - 0.5)
            out[~head] = np.clip(k1, self._k + 1, self.n).astype(np.int64) - 1
        np.minimum(out, self.n - 1, out=out)
        return out


PoolingKind = Literal["fixed", "uniform", "normal", "lognormal"]


@dataclass(frozen=True)
class Pooling:
    """How many lookups a sample makes in a table (its bag size).

    ``fixed``: always ``round(mean)``. ``uniform``: integers uniform on
    ``[round(mean - √3·std), round(mean + √3·std)]`` (the continuous uniform with that mean and std).
    ``normal``: ``round(N(mean, std))``. ``lognormal``: ``round(LogNormal)`` whose *own* mean and std
    are ``mean`` and ``std`` (``σ² = ln(1 + std²/mean²)``, ``μ = ln(mean) − σ²/2``). Every draw is
    clipped to ``[0, max]``; a 0 means the sample does not have this feature (coverage < 1).
    """

    kind: PoolingKind = "fixed"
    mean: float = 1.0
    std: float = 0.0
    max: int | None = None

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        m, s = float(self.mean), float(self.std)
        if self.kind == "fixed":
            out = np.full(shape, round(m), dtype=np.int64)
        elif self.kind == "uniform":
            lo = round(m - math.sqrt(3.0) * s)
            hi = round(m + math.sqrt(3.0) * s)
            out = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
        elif self.kind == "normal":
            out = np.rint(rng.normal(m, s, size=shape)).astype(np.int64)
        elif self.kind == "lognormal":
            if m <= 0:
                out = np.zeros(shape, dtype=np.int64)
            else:
                sig2 = math.log1p((s / m) ** 2)
                mu = math.log(m) - sig2 / 2
                out = np.rint(rng.lognormal(mu, math.sqrt(sig2), size=shape)).astype(np.int64)
        else:  # pragma: no cover - validated by make_pooling
            raise ValueError(self.kind)
        np.maximum(out, 0, out=out)
        if self.max is not None:
            np.minimum(out, self.max, out=out)
        return out

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "mean": self.mean, "std": self.std, "max": self.max}


def make_pooling(
    pooling: float | None,
    pooling_dist: str | None,
    pooling_mean: float | None,
    pooling_std: float | None,
    max_pooling: int | None,
    default: float = 1.0,
) -> Pooling:
    """Validate the pooling options of a generator and build a :class:`Pooling` (SimrecError if bad)."""
    if pooling is not None and pooling_dist not in (None, "fixed"):
        raise SimrecError(
            "--pooling (a fixed bag size) and --pooling-dist were both given",
            where="option --pooling / --pooling-dist",
            fix="give --pooling L for fixed bags, or --pooling-dist with --pooling-mean/--pooling-std",
        )
    if max_pooling is not None and max_pooling < 0:
        raise SimrecError(
            f"--max-pooling must be >= 0, got {max_pooling}",
            where="option --max-pooling",
            fix="give a non-negative cap on the bag size, or leave it out",
        )
    if pooling_dist in (None, "fixed"):
        value = pooling if pooling is not None else pooling_mean
        value = default if value is None else value
        if value < 0 or value != round(value):
            raise SimrecError(
                f"--pooling must be a non-negative integer, got {value}",
                where="option --pooling",
                fix="give the number of lookups per sample and table, e.g. --pooling 20",
            )
        return Pooling("fixed", float(value), 0.0, max_pooling)
    if pooling_dist not in ("uniform", "normal", "lognormal"):
        raise SimrecError(
            f"unknown pooling distribution {pooling_dist!r}",
            where="option --pooling-dist",
            fix="use one of fixed, uniform, normal, lognormal",
        )
    mean = default if pooling_mean is None else float(pooling_mean)
    std = 0.0 if pooling_std is None else float(pooling_std)
    if not (math.isfinite(mean) and mean >= 0):
        raise SimrecError(
            f"--pooling-mean must be >= 0, got {mean}",
            where="option --pooling-mean",
            fix="give the mean bag size, e.g. --pooling-mean 20",
        )
    if not (math.isfinite(std) and std >= 0):
        raise SimrecError(
            f"--pooling-std must be >= 0, got {std}",
            where="option --pooling-std",
            fix="give the standard deviation of the bag size, e.g. --pooling-std 5",
        )
    return Pooling(pooling_dist, mean, std, max_pooling)  # type: ignore[arg-type]
