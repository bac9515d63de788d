"""Tensor-train (TT) embedding math: shape suggestion, cores, batched row reconstruction.

What it covers:

* :func:`suggested_tt_shapes` — the entropy-balanced factorisation TT-Rec uses (restated in
  ``shared/reference/data.md`` §4, implemented here from that description): for each candidate
  n' = n rounded up to a multiple of 10^i, take every way to write n' as a product of ``d`` factors
  > 1 (the block products of a partition of its prime factors into d groups), keep the one whose
  factors have the largest Shannon entropy (as a distribution f / sum f, natural log), and across
  candidates keep the highest entropy. Factors come out sorted, then the lower and upper halves are
  interleaved (for d = 3: ascending).
* :class:`TTCores` — the cores G_k of shape (R[k-1], p[k], q[k], R[k]), seeded Gaussian init
  (std chosen so reconstructed rows have the given std), TT-SVD from a dense table, batched
  reconstruction of rows (a chain of small batched GEMMs), optional first-stage prefix reuse
  (EL-Rec, papers.md §B.2), and a plain float64 reference (independent einsum contraction).

What it leaves out: training (no gradients), the TT-Rec LFU row cache, and more than one TT
"layer" per table.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

from simrec.errors import ConfigError

__all__ = ["PrefixStats", "TTCores", "prefix_reuse_stats", "suggested_tt_shapes", "tt_indices"]


def _prime_factors(n: int) -> list[int]:
    out: list[int] = []
    f = 2
    while f * f <= n:
        while n % f == 0:
            out.append(f)
            n //= f
        f += 1 if f == 2 else 2
    if n > 1:
        out.append(n)
    return out


def _divisors(n: int) -> list[int]:
    small, large = [], []
    i = 1
    while i * i <= n:
        if n % i == 0:
            small.append(i)
            if i != n // i:
                large.append(n // i)
        i += 1
    return small + large[::-1]


def _factorisations(n: int, d: int, lo: int = 2) -> list[tuple[int, ...]]:
    """All non-decreasing tuples of ``d`` factors >= ``lo`` whose product is ``n``."""
    if d == 1:
        return [(n,)] if n >= lo else []
    out = []
    for a in _divisors(n):
        if a < lo:
            continue
        if a**d > n:
            break
        for rest in _factorisations(n // a, d - 1, a):
            out.append((a, *rest))
    return out


def _entropy(f: tuple[int, ...]) -> float:
    p = np.asarray(f, dtype=np.float64)
    p = p / p.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _interleave(sorted_f: list[int]) -> list[int]:
    half = len(sorted_f) // 2
    lo, hi = sorted_f[:half], sorted_f[half:]
    out: list[int] = []
    for k in range(max(len(lo), len(hi))):
        if k < len(lo):
            out.append(lo[k])
        if k < len(hi):
            out.append(hi[k])
    return out


def _best_shape(n: int, d: int) -> list[int]:
    primes = _prime_factors(n) if n > 1 else []
    if len(primes) <= d:
        return _interleave(sorted(primes + [1] * (d - len(primes))))
    cands = _factorisations(n, d)
    best = max(cands, key=_entropy)  # first maximum in a deterministic order
    return _interleave(sorted(best))


def suggested_tt_shapes(n: int, d: int = 3, allow_round_up: bool = True) -> list[int]:
    """Entropy-balanced factorisation of ``n`` into ``d`` TT shape factors (data.md §4).

    With ``allow_round_up`` (row counts), n may be rounded up to a multiple of 10^i for any
    i < number of digits, so the product is >= n; without it (embedding dims) the product is n.

    >>> suggested_tt_shapes(10_131_227)
    [200, 220, 250]
    >>> suggested_tt_shapes(16, allow_round_up=False)
    [2, 2, 4]
    """
    return list(_suggested(int(n), int(d), bool(allow_round_up)))


@functools.lru_cache(maxsize=4096)
def _suggested(n: int, d: int, allow_round_up: bool) -> tuple[int, ...]:
    """Cached body of :func:`suggested_tt_shapes`."""
    if n < 1 or d < 1:
        raise ConfigError(
            f"cannot factor n={n} into d={d} TT cores",
            fix="use a positive row count/dim and at least one core",
        )
    if not allow_round_up:
        return tuple(_best_shape(n, d))
    best: list[int] | None = None
    best_h = -1.0
    for i in range(len(str(n))):
        step = 10**i
        n_i = -(-n // step) * step
        f = _best_shape(n_i, d)
        h = _entropy(tuple(f))
        if h > best_h + 1e-12:
            best, best_h = f, h
    assert best is not None
    return tuple(best)


def tt_indices(rows: np.ndarray, p_shapes: list[int]) -> np.ndarray:
    """Mixed-radix digits of ``rows`` (most significant first): int64 array [len(p), n]."""
    r = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(p_shapes), r.size), dtype=np.int64)
    for k in range(len(p_shapes) - 1, -1, -1):
        r, out[k] = np.divmod(r, p_shapes[k])
    return out


@dataclass(frozen=True)
class PrefixStats:
    """First-stage reuse within one set of lookups.

    ``lookups`` rows requested, ``unique_rows`` distinct rows, ``unique_prefixes`` distinct
    (i1, ..., i[d-1]) prefixes; ``reuse_ratio`` = unique_rows / unique_prefixes (>= 1; higher means
    more first-stage products are shared).
    """

    lookups: int
    unique_rows: int
    unique_prefixes: int

    @property
    def reuse_ratio(self) -> float:
        return self.unique_rows / self.unique_prefixes if self.unique_prefixes else 1.0


def prefix_reuse_stats(rows: np.ndarray, p_shapes: list[int]) -> PrefixStats:
    """Count unique rows and unique TT prefixes (all digits but the last) in ``rows``."""
    r = np.unique(np.asarray(rows, dtype=np.int64))
    prefixes = np.unique(r // p_shapes[-1])
    return PrefixStats(int(np.asarray(rows).size), int(r.size), int(prefixes.size))


class TTCores:
    """The cores of one TT table; ``cores[k]`` has shape (R[k-1], p[k], q[k], R[k]), float32."""

    def __init__(self, cores: list[np.ndarray], rows: int):
        self.cores = [np.ascontiguousarray(c, dtype=np.float32) for c in cores]
        self.p_shapes = [c.shape[1] for c in self.cores]
        self.q_shapes = [c.shape[2] for c in self.cores]
        self.ranks = [c.shape[3] for c in self.cores[:-1]]
        self.rows = rows
        self.dim = math.prod(self.q_shapes)
        if self.cores[0].shape[0] != 1 or self.cores[-1].shape[3] != 1:
            raise ConfigError("the first and last TT cores must have outer rank 1", fix="fix cores")
        for a, b in zip(self.cores[:-1], self.cores[1:], strict=True):
            if a.shape[3] != b.shape[0]:
                raise ConfigError(
                    f"TT core ranks do not chain: {a.shape} then {b.shape}",
                    fix="core k's last axis must equal core k+1's first axis",
                )
        if math.prod(self.p_shapes) < rows:
            raise ConfigError(
                f"TT p_shapes {self.p_shapes} hold {math.prod(self.p_shapes)} rows < {rows}",
                fix="choose p_shapes whose product is >= the row count",
            )
        # Per-core slices laid out for the GEMM chain: slab[k][i] is (R[k-1], q[k] * R[k]).
        self._slabs = [
            np.ascontiguousarray(c.transpose(1, 0, 2, 3).reshape(c.shape[1], c.shape[0], -1))
            for c in self.cores
        ]
        # last core as (p_d, q_d, R[d-1]): stage 2's reduction runs over contiguous memory
        self._last_t = np.ascontiguousarray(self.cores[-1][:, :, :, 0].transpose(1, 2, 0))

    @classmethod
    def random(
        cls,
        rows: int,
        p_shapes: list[int],
        q_shapes: list[int],
        ranks: list[int],
        seed: int,
        row_std: float | None = None,
    ) -> TTCores:
        """Seeded Gaussian cores whose reconstructed entries have std ``row_std``.

        Default ``row_std`` = sqrt(1/rows), the scale of DLRM's uniform(-sqrt(1/n), sqrt(1/n))
        embedding init. Each entry is a sum of prod(R) products of d Gaussians, so each core gets
        std (row_std^2 / prod(R)) ** (1 / (2 d)).
        """
        if min(ranks) < 1:
            raise ConfigError(f"TT ranks must be >= 1, got {ranks}", fix="use positive ranks")
        rng = np.random.default_rng(seed)
        d = len(p_shapes)
        row_std = math.sqrt(1.0 / rows) if row_std is None else row_std
        core_std = (row_std**2 / math.prod(ranks)) ** (1.0 / (2 * d))
        r = [1, *ranks, 1]
        cores = [
            rng.standard_normal((r[k], p_shapes[k], q_shapes[k], r[k + 1])).astype(np.float32)
            * np.float32(core_std)
            for k in range(d)
        ]
        return cls(cores, rows)

    @classmethod
    def from_table(
        cls, table: np.ndarray, p_shapes: list[int], q_shapes: list[int], ranks: list[int]
    ) -> TTCores:
        """TT-SVD of a dense ``rows`` x dim table (rows padded with zeros to prod(p)).

        The table is viewed as a tensor with axes (p1, q1, p2, q2, ..., pd, qd) and split by
        truncated SVDs left to right; a table that has an exact TT form with these ranks is
        recovered to float precision. Cost grows with rows * dim, so use it on small tables.
        """
        rows, dim = table.shape
        if math.prod(q_shapes) != dim:
            raise ConfigError(
                f"q_shapes {q_shapes} multiply to {math.prod(q_shapes)}, not dim {dim}",
                fix=f"choose q_shapes whose product is {dim}",
            )
        d = len(p_shapes)
        full = np.zeros((math.prod(p_shapes), dim), dtype=np.float64)
        full[:rows] = table
        t = full.reshape(*p_shapes, *q_shapes)
        perm = [ax for k in range(d) for ax in (k, d + k)]
        t = t.transpose(perm)
        r = [1, *ranks, 1]
        cores = []
        rest = t.reshape(1, -1)
        for k in range(d - 1):
            m = rest.reshape(r[k] * p_shapes[k] * q_shapes[k], -1)
            u, s, vt = np.linalg.svd(m, full_matrices=False)
            rk = min(r[k + 1], s.size)
            core = u[:, :rk].reshape(r[k], p_shapes[k], q_shapes[k], rk)
            if rk < r[k + 1]:
                core = np.concatenate(
                    [core, np.zeros((r[k], p_shapes[k], q_shapes[k], r[k + 1] - rk))], axis=3
                )
                s = np.concatenate([s, np.zeros(r[k + 1] - rk)])
                vt = np.concatenate([vt, np.zeros((r[k + 1] - rk, vt.shape[1]))], axis=0)
            cores.append(core)
            rest = s[: r[k + 1], None] * vt[: r[k + 1]]
        cores.append(rest.reshape(r[d - 1], p_shapes[-1], q_shapes[-1], 1))
        return cls(cores, rows)

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.cores)

    def _check_rows(self, rows: np.ndarray) -> np.ndarray:
        r = np.asarray(rows, dtype=np.int64)
        if r.size and (r.min() < 0 or r.max() >= self.rows):
            raise ConfigError(
                f"TT row index out of range 0..{self.rows - 1}",
                fix="remap indices into the table's row range",
            )
        return r

    def reconstruct(
        self, rows: np.ndarray, prefix_reuse: bool = False, threads: int = 1
    ) -> np.ndarray:
        """Rows ``rows`` as float32 [n, dim], by a chain of batched GEMMs.

        With ``prefix_reuse`` the product of all cores but the last is computed once per distinct
        prefix (i1..i[d-1]) and shared by the rows that have it; the result is identical.
        ``threads`` > 1 splits the rows of the 3-core kernels over threads (same bits).
        """
        r = self._check_rows(rows)
        p = self.p_shapes
        if len(p) == 3:
            return self._reconstruct3(r, prefix_reuse, threads)
        if prefix_reuse and len(p) > 1:
            prefix, last = np.divmod(r, p[-1])
            uniq, inv = np.unique(prefix, return_inverse=True)
            head = self._chain(tt_indices(uniq, p[:-1]), len(p) - 1)
            part = head[inv.reshape(-1)]
            return self._last(part, last)
        digits = tt_indices(r, p)
        if len(p) == 1:
            return self._slabs[0][digits[0]].reshape(r.size, self.dim)
        part = self._chain(digits[:-1], len(p) - 1)
        return self._last(part, digits[-1])

    def _reconstruct3(self, r: np.ndarray, prefix_reuse: bool, threads: int = 1) -> np.ndarray:
        """Three cores (the TT-Rec default): two compiled stages, stage 1 once per distinct
        (i1, i2) prefix with ``prefix_reuse``, stage 2 once per row."""
        p2, p3 = self.p_shapes[1], self.p_shapes[2]
        prefix, last = np.divmod(r, p3)
        if prefix_reuse:
            uniq, inv = np.unique(prefix, return_inverse=True)
            inv = inv.reshape(-1).astype(np.int64)
        else:
            uniq, inv = prefix, np.arange(r.size, dtype=np.int64)
        i1, i2 = np.divmod(uniq, p2)
        q1, q2 = self.q_shapes[0], self.q_shapes[1]
        head = np.empty((uniq.size, q1 * q2, self.ranks[1]), dtype=np.float32)
        out = np.empty((r.size, self.dim), dtype=np.float32)
        s0, s1, lt = self._slabs[0], self._slabs[1], self._last_t
        if threads <= 1 or r.size < 64 * threads:
            _tt_stage1(s0, s1, i1, i2, q1, head)
            _tt_stage2(head, inv, lt, last, out)
            return out
        # the kernels release the GIL: split rows (and prefixes) into contiguous ranges
        with ThreadPoolExecutor(max_workers=threads) as ex:
            c1 = np.linspace(0, uniq.size, threads + 1).astype(np.int64).tolist()
            list(
                ex.map(
                    lambda k: _tt_stage1(
                        s0, s1, i1[c1[k] : c1[k + 1]], i2[c1[k] : c1[k + 1]], q1,
                        head[c1[k] : c1[k + 1]],
                    ),
                    range(threads),
                )
            )  # fmt: skip
            c2 = np.linspace(0, r.size, threads + 1).astype(np.int64).tolist()
            list(
                ex.map(
                    lambda k: _tt_stage2(
                        head, inv[c2[k] : c2[k + 1]], lt, last[c2[k] : c2[k + 1]],
                        out[c2[k] : c2[k + 1]],
                    ),
                    range(threads),
                )
            )  # fmt: skip
        return out

    def _chain(self, digits: np.ndarray, ncores: int) -> np.ndarray:
        """Product of cores 0..ncores-1 at ``digits``: [n, prod(q[:ncores]), R[ncores]]."""
        n = digits.shape[1]
        acc = self._slabs[0][digits[0]]  # (n, 1, q1 R1)
        lead = self.q_shapes[0]
        acc = acc.reshape(n, lead, -1)  # (n, q1, R1)
        for k in range(1, ncores):
            acc = self._stage(acc, k, digits[k])  # (n, lead, q_k R_k)
            lead *= self.q_shapes[k]
            acc = acc.reshape(n, lead, -1)
        return acc

    def _last(self, part: np.ndarray, last: np.ndarray) -> np.ndarray:
        k = len(self.p_shapes) - 1
        out = self._stage(part, k, last)  # (n, lead, q_d)
        return out.reshape(part.shape[0], self.dim)

    def _stage(self, acc: np.ndarray, k: int, digit: np.ndarray) -> np.ndarray:
        """acc[i] @ slab_k[digit[i]] for every row i (one batched small-matrix matmul)."""
        return np.matmul(acc, self._slabs[k][digit])

    def reference(self, rows: np.ndarray) -> np.ndarray:
        """Rows by a plain float64 contraction (einsum per row set), for checking the GEMM chain."""
        r = self._check_rows(rows)
        digits = tt_indices(r, self.p_shapes)
        res = self.cores[0][0, digits[0]].astype(np.float64)  # (n, q1, R1)
        for k in range(1, len(self.cores)):
            g = self.cores[k][:, digits[k]].astype(np.float64)  # (R, n, q, R')
            res = np.einsum("nar,rnbs->nabs", res, g)
            res = res.reshape(res.shape[0], -1, res.shape[-1])
        return res.reshape(r.size, self.dim)

    def macs_per_row(self) -> int:
        from simrec.functional.spec import tt_macs_per_row

        return tt_macs_per_row(self.q_shapes, self.ranks)


@numba.njit(fastmath=True, cache=True, nogil=True)
def _tt_stage1(
    s0: np.ndarray, s1: np.ndarray, i1: np.ndarray, i2: np.ndarray, q1: int, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """out[t] = (G1[i1] as q1 x R1) @ (G2[i2] as R1 x q2 R2), written as (q1 q2, R2)."""
    r1 = s1.shape[1]
    m = s1.shape[2]  # q2 * R2
    r2 = out.shape[2]
    q2 = m // r2
    acc = np.zeros(m, dtype=np.float32)
    for t in range(i1.size):
        a = s0[i1[t], 0]
        b = s1[i2[t]]
        for j1 in range(q1):
            acc[:] = 0.0
            for r in range(r1):
                av = a[j1 * r1 + r]
                for c in range(m):
                    acc[c] += av * b[r, c]
            for j2 in range(q2):
                for s in range(r2):
                    out[t, j1 * q2 + j2, s] = acc[j2 * r2 + s]


@numba.njit(fastmath=True, cache=True, nogil=True)
def _tt_stage2(
    head: np.ndarray, inv: np.ndarray, last_t: np.ndarray, last: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """out[t] = head[inv[t]] (q1 q2 x R2) @ G3[last[t]] (R2 x q3), flattened row-major."""
    lead = head.shape[1]
    r2 = head.shape[2]
    q3 = last_t.shape[1]
    for t in range(inv.size):
        h = head[inv[t]]
        c = last_t[last[t]]
        for a in range(lead):
            for j in range(q3):
                acc = np.float32(0.0)
                for s in range(r2):
                    acc += h[a, s] * c[j, s]
                out[t, a * q3 + j] = acc
