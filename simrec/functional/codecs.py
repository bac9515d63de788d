"""Embedding codecs: one interface for every way of storing a table, with its math and its cost.

A :class:`Codec` holds the arrays of one table (or one band of it) in a storage format and answers:

* :meth:`Codec.lookup` — rows [n, dim] float32, computed the way the simulated hardware computes
  them (the *data path*: packed-integer dequantisation, batched TT GEMM chains, hashing, sketch
  probes);
* :meth:`Codec.reference` — the same rows by the plain definition, in float64 (for raw and quantised
  codecs: the uncompressed source table), so the end-to-end check can compare the two;
* :meth:`Codec.error_bound` — per-row max abs error of ``lookup`` vs ``reference`` that the format
  allows (quantisation half-step, fp16 rounding); 0 for exact paths;
* :meth:`Codec.nbytes`, :meth:`Codec.gathers_per_lookup`, :meth:`Codec.flops_per_lookup`,
  :meth:`Codec.cost` — from the codec's :mod:`spec <simrec.functional.spec>`.

:func:`build_codec` builds one from a spec: from a dense table (raw, quantised, TT by TT-SVD, hash
by bucket means) or, train-free, from a seed (every format). What is left out: training (no
gradients, so CAFE's importance score is the access count, papers.md §D.2 ``use_freq``), DHE,
ROBE and the other methods of the compression benchmark beyond those listed in the spec module.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from typing import Any

import numpy as np

from simrec.errors import ConfigError
from simrec.functional.spec import (
    CAFESpec,
    CodecCost,
    HashSpec,
    MemRecSpec,
    QRSpec,
    QuantSpec,
    RawSpec,
    TTSpec,
)
from simrec.functional.tt import TTCores

__all__ = [
    "CAFECodec",
    "Codec",
    "HashCodec",
    "HotSketch",
    "MemRecCodec",
    "QRCodec",
    "QuantCodec",
    "RawCodec",
    "TTCodec",
    "build_codec",
    "dlrm_uniform_table",
    "universal_hash",
]

_P61 = np.uint64((1 << 61) - 1)


def dlrm_uniform_table(rows: int, dim: int, seed: int) -> np.ndarray:
    """Seeded float32 table drawn like DLRM's init: uniform(-sqrt(1/rows), sqrt(1/rows))."""
    rng = np.random.default_rng(seed)
    a = math.sqrt(1.0 / rows)
    return rng.uniform(-a, a, size=(rows, dim)).astype(np.float32)


def _hash_params(seed: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 31, size=k, dtype=np.int64).astype(np.uint64)
    c = rng.integers(0, 1 << 31, size=k, dtype=np.int64).astype(np.uint64)
    return a, c


def universal_hash(ids: np.ndarray, m: int, a: int | np.uint64, c: int | np.uint64) -> np.ndarray:
    """((a * id + c) mod (2^61 - 1)) mod m, for ids < 2^32 (uint64 arithmetic, no overflow)."""
    x = np.asarray(ids, dtype=np.int64).astype(np.uint64)
    return ((np.uint64(a) * x + np.uint64(c)) % _P61 % np.uint64(m)).astype(np.int64)


def _check_ids(ids: Any, rows: int, name: str) -> np.ndarray:
    r = np.asarray(ids)
    if r.size and not np.issubdtype(r.dtype, np.integer):
        raise ConfigError(f"ids have dtype {r.dtype}", where=name, fix="pass integer row ids")
    r = r.astype(np.int64, copy=False).reshape(-1)
    if r.size and (r.min() < 0 or r.max() >= rows):
        raise ConfigError(
            f"row id out of range 0..{rows - 1} (got {int(r.min())}..{int(r.max())})",
            where=name,
            fix="remap ids into the codec's row space",
        )
    return r


def _check_table(table: np.ndarray, rows: int, dim: int, kind: str) -> np.ndarray:
    t = np.asarray(table)
    if t.shape != (rows, dim):
        raise ConfigError(
            f"the table has shape {t.shape}, the codec expects ({rows}, {dim})",
            where=f"codec {kind!r}",
            fix="build the codec with the table's own rows and dim",
        )
    if t.dtype not in (np.float32, np.float16, np.float64):
        raise ConfigError(
            f"the table has dtype {t.dtype}; codecs encode float tables",
            where=f"codec {kind!r}",
            fix="pass a float32 (or float16/float64) table",
        )
    return t


class Codec(ABC):
    """One table in one storage format (see the module docstring)."""

    spec: Any
    rows: int
    dim: int

    @abstractmethod
    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` as float32 [n, dim], by the format's data path."""

    @abstractmethod
    def reference(self, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` as float64 [n, dim], by the plain definition (or the source table)."""

    def error_bound(self, ids: np.ndarray) -> np.ndarray:
        """Per-row bound on max |lookup - reference| that the format allows (float64 [n])."""
        return np.zeros(np.asarray(ids).size)

    @property
    def exact(self) -> bool:
        """True when ``lookup`` returns the reference values bit for bit (fp32 raw)."""
        return False

    def nbytes(self) -> int:
        """Bytes of the stored form (from the spec's formula)."""
        return int(self.spec.nbytes(self.rows, self.dim))

    def cost(self) -> CodecCost:
        return self.spec.cost(self.rows, self.dim)

    def gathers_per_lookup(self) -> float:
        return self.cost().gathers_per_lookup

    def flops_per_lookup(self) -> float:
        return self.cost().flops_per_lookup

    def describe(self) -> str:
        c = self.cost()
        return (
            f"{self.spec.kind}: {self.nbytes():,} B stored, {c.bytes_per_lookup:g} B/lookup, "
            f"{c.gathers_per_lookup:g} gathers, {c.flops_per_lookup:g} FLOP/lookup ({c.note})"
        )


class RawCodec(Codec):
    """Dense rows in float32 or float16; the fp16 copy rounds the source table."""

    def __init__(self, spec: RawSpec, table: np.ndarray):
        self.spec = spec
        self.rows, self.dim = table.shape
        self.source = np.ascontiguousarray(table, dtype=np.float32)
        self.data = self.source if spec.dtype == "float32" else self.source.astype(np.float16)

    @property
    def exact(self) -> bool:
        return self.spec.dtype == "float32"

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        r = _check_ids(ids, self.rows, "raw codec")
        return np.take(self.data, r, axis=0).astype(np.float32, copy=False)

    def reference(self, ids: np.ndarray) -> np.ndarray:
        r = _check_ids(ids, self.rows, "raw codec")
        return self.source[r].astype(np.float64)

    def error_bound(self, ids: np.ndarray) -> np.ndarray:
        if self.exact:
            return np.zeros(np.asarray(ids).size)
        r = _check_ids(ids, self.rows, "raw codec")
        # fp16 round-to-nearest: half an ulp; 2^-11 relative (and 2^-25 absolute for subnormals).
        return np.abs(self.source[r]).max(axis=1).astype(np.float64) * 2.0**-11 + 2.0**-25


def _pack(u: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned values < 2^bits along the last axis, low bits first, into uint8."""
    if bits == 8:
        return u.astype(np.uint8)
    per = 8 // bits
    n, d = u.shape
    pad = (-d) % per
    if pad:
        u = np.concatenate([u, np.zeros((n, pad), dtype=u.dtype)], axis=1)
    u = u.astype(np.uint8).reshape(n, -1, per)
    out = np.zeros(u.shape[:2], dtype=np.uint8)
    for k in range(per):
        out |= u[:, :, k] << np.uint8(k * bits)
    return out


def _unpack(p: np.ndarray, bits: int, dim: int) -> np.ndarray:
    if bits == 8:
        return p
    per = 8 // bits
    mask = np.uint8((1 << bits) - 1)
    parts = [(p >> np.uint8(k * bits)) & mask for k in range(per)]
    return np.stack(parts, axis=-1).reshape(p.shape[0], -1)[:, :dim]


class QuantCodec(Codec):
    """INT8/4/2 rows, packed; row-wise asymmetric (scale+bias per row) or table-wise symmetric.

    Row-wise: scale is rounded *up* and bias *down* when narrowed to ``scale_dtype`` so the row's
    range stays covered and no value clips; the error per element is then at most scale/2 (plus
    float32 rounding). Table-wise (DQRM): scale = max|w| / (2^(b-1) - 1), error <= scale/2.
    """

    def __init__(self, spec: QuantSpec, table: np.ndarray):
        self.spec = spec
        self.rows, self.dim = table.shape
        self.source = np.ascontiguousarray(table, dtype=np.float32)
        b = spec.bits
        w = self.source
        if spec.granularity == "row":
            sd = np.float16 if spec.scale_dtype == "float16" else np.float32
            mn = w.min(axis=1)
            mx = w.max(axis=1)
            levels = (1 << b) - 1
            bias = mn.astype(sd)
            too_high = bias.astype(np.float32) > mn
            bias[too_high] = np.nextafter(bias[too_high], sd(-np.inf))
            bias32 = bias.astype(np.float32)
            scale = ((mx - bias32) / levels).astype(sd)
            scale[scale.astype(np.float32) <= 0] = sd(1.0)
            for _ in range(4):  # widen by one ulp until bias + levels * scale >= max
                short = bias32 + levels * scale.astype(np.float32) < mx
                if not short.any():
                    break
                scale[short] = np.nextafter(scale[short], sd(np.inf))
            self.scale = scale
            self.bias = bias
            s32 = scale.astype(np.float32)[:, None]
            q = np.clip(np.rint((w - bias32[:, None]) / s32), 0, levels)
            self.packed = _pack(q.astype(np.uint8), b)
        else:
            qmax = (1 << (b - 1)) - 1
            amax = float(np.abs(w).max()) if w.size else 0.0
            self.scale = np.float32(amax / qmax if amax > 0 else 1.0)
            self.bias = None
            q = np.clip(np.rint(w / self.scale), -(qmax + 1), qmax) + (qmax + 1)
            self.packed = _pack(q.astype(np.uint8), b)

    def _dequant(self, r: np.ndarray) -> np.ndarray:
        u = _unpack(self.packed[r], self.spec.bits, self.dim).astype(np.float32)
        if self.spec.granularity == "row":
            s = self.scale[r].astype(np.float32)[:, None]
            return u * s + self.bias[r].astype(np.float32)[:, None]  # type: ignore[index]
        off = np.float32(1 << (self.spec.bits - 1))
        return (u - off) * self.scale

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        return self._dequant(_check_ids(ids, self.rows, "quant codec"))

    def reference(self, ids: np.ndarray) -> np.ndarray:
        r = _check_ids(ids, self.rows, "quant codec")
        return self.source[r].astype(np.float64)

    def error_bound(self, ids: np.ndarray) -> np.ndarray:
        r = _check_ids(ids, self.rows, "quant codec")
        if self.spec.granularity == "row":
            half = self.scale[r].astype(np.float64) / 2
        else:
            half = np.full(r.size, float(self.scale) / 2)
        mag = np.abs(self.source[r]).max(axis=1).astype(np.float64) if r.size else half
        return half * (1 + 1e-5) + mag * 2.0**-22

    def stored_nbytes(self) -> int:
        """Bytes of the arrays actually held (packed rows + scales/biases)."""
        extra = self.scale.nbytes + (self.bias.nbytes if self.bias is not None else 0)
        return int(self.packed.nbytes + extra)


class TTCodec(Codec):
    """Tensor-train cores (see :mod:`simrec.functional.tt`); ``lookup`` is the batched GEMM chain."""

    def __init__(self, spec: TTSpec, cores: TTCores):
        self.spec = spec
        self.tt = cores
        self.rows, self.dim = cores.rows, cores.dim
        self._abs: TTCores | None = None

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        r = _check_ids(ids, self.rows, "tt codec")
        return self.tt.reconstruct(r, prefix_reuse=self.spec.prefix_reuse)

    def reference(self, ids: np.ndarray) -> np.ndarray:
        return self.tt.reference(_check_ids(ids, self.rows, "tt codec"))

    def error_bound(self, ids: np.ndarray) -> np.ndarray:
        """Float32 rounding bound of the GEMM chain: gamma_k * (chain of |cores|), per row.

        Standard dot-product error analysis: each output is a chain of sums over the ranks, so the
        error is at most k * eps32 * (the same chain on |G|), k = sum of ranks + number of cores.
        """
        r = _check_ids(ids, self.rows, "tt codec")
        if self._abs is None:
            self._abs = TTCores([np.abs(c) for c in self.tt.cores], self.rows)
        k = sum(self.tt.ranks) + len(self.tt.cores) + 2
        mag = self._abs.reconstruct(r).max(axis=1).astype(np.float64) if r.size else np.zeros(0)
        return mag * k * 2.0**-23 * 1.01


class HashCodec(Codec):
    """Hashing trick: row i reads shared row h(i) of a ``buckets`` x dim table."""

    def __init__(self, spec: HashSpec, rows: int, weight: np.ndarray):
        self.spec = spec
        self.rows = rows
        self.dim = weight.shape[1]
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)
        self._a, self._c = _hash_params(spec.seed, 1)

    def bucket(self, r: np.ndarray) -> np.ndarray:
        if self.spec.hash == "mod":
            return r % self.spec.buckets
        return universal_hash(r, self.spec.buckets, self._a[0], self._c[0])

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        r = _check_ids(ids, self.rows, "hash codec")
        return np.take(self.weight, self.bucket(r), axis=0)

    def reference(self, ids: np.ndarray) -> np.ndarray:
        r = _check_ids(ids, self.rows, "hash codec")
        a, c, m = int(self._a[0]), int(self._c[0]), self.spec.buckets
        p = (1 << 61) - 1
        b = [(x % m) if self.spec.hash == "mod" else ((a * x + c) % p) % m for x in r.tolist()]
        return self.weight[np.asarray(b, dtype=np.int64)].astype(np.float64)


class QRCodec(Codec):
    """Quotient-remainder embedding: e(i) = Q[i // m] op R[i % m]."""

    def __init__(self, spec: QRSpec, rows: int, q: np.ndarray, r: np.ndarray):
        self.spec = spec
        self.rows = rows
        self.dim = q.shape[1]
        self.q = np.ascontiguousarray(q, dtype=np.float32)
        self.r = np.ascontiguousarray(r, dtype=np.float32)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        i = _check_ids(ids, self.rows, "qr codec")
        quo, rem = np.divmod(i, self.spec.num_remainder)
        a = np.take(self.q, quo, axis=0)
        b = np.take(self.r, rem, axis=0)
        return a * b if self.spec.op == "mul" else a + b

    def reference(self, ids: np.ndarray) -> np.ndarray:
        i = _check_ids(ids, self.rows, "qr codec")
        m = self.spec.num_remainder
        a = self.q[i // m].astype(np.float64)
        b = self.r[i % m].astype(np.float64)
        return a * b if self.spec.op == "mul" else a + b

    def error_bound(self, ids: np.ndarray) -> np.ndarray:
        n = np.asarray(ids).size
        mag = float(np.abs(self.q).max()) * max(float(np.abs(self.r).max()), 1.0)
        return np.full(n, 2 * mag * 2.0**-23)


class HotSketch:
    """CAFE's HotSketch (papers.md §D.2): buckets of 4 slots (id, count, hot id), SpaceSaving.

    ``insert`` adds importance ``v`` for an id; a slot whose count reaches ``threshold`` gets a free
    hot id (checked after every insert, so a batch-aggregated insert can promote at once); slots stay sorted by descending count; an id that finds a full bucket replaces the
    smallest slot if it is not hot (inheriting its count) and is dropped otherwise. Before each
    batch, once the inserted mass exceeds buckets * threshold * 10, counts decay by ``decay`` and
    hot slots that fall below ``threshold`` release their hot id.
    """

    SLOTS = 4

    def __init__(self, buckets: int, hot_rows: int, threshold: float, decay: float):
        self.buckets = buckets
        self.threshold = threshold
        self.decay = decay
        self.ids = np.full((buckets, self.SLOTS), -1, dtype=np.int64)
        self.cnt = np.zeros((buckets, self.SLOTS), dtype=np.float64)
        self.dic = np.zeros((buckets, self.SLOTS), dtype=np.int64)  # 0 = not hot, else 1-based
        self.free: deque[int] = deque(range(1, hot_rows + 1))
        self.total = 0.0
        self.promoted: list[tuple[int, int]] = []  # (id, hot id) since the last drain

    def start_batch(self) -> None:
        if self.total > self.buckets * self.threshold * 10:
            self.cnt *= self.decay
            demote = (self.dic > 0) & (self.cnt < self.threshold)
            for h in self.dic[demote].tolist():
                self.free.append(int(h))
            self.dic[demote] = 0
            self.total = 0.0

    def insert(self, key: int, v: float) -> None:
        bkt = key % self.buckets
        ids, cnt, dic = self.ids[bkt], self.cnt[bkt], self.dic[bkt]
        self.total += v
        hit = np.flatnonzero(ids == key)
        if hit.size:
            j = int(hit[0])
            cnt[j] += v
        else:
            empty = np.flatnonzero(ids < 0)
            if empty.size:
                j = int(empty[0])
                ids[j], cnt[j] = key, v
            elif dic[-1] == 0:
                j = self.SLOTS - 1
                ids[j] = key
                cnt[j] += v
            else:
                return
        if cnt[j] >= self.threshold and dic[j] == 0 and self.free:
            dic[j] = self.free.popleft()
            self.promoted.append((key, int(dic[j])))
        while j > 0 and cnt[j] > cnt[j - 1]:  # keep slots sorted by descending count
            for a in (ids, cnt, dic):
                a[j], a[j - 1] = a[j - 1], a[j]
            j -= 1

    def query(self, keys: np.ndarray) -> np.ndarray:
        """Hot id (1-based) per key, 0 where the key is not hot (vectorised)."""
        k = np.asarray(keys, dtype=np.int64)
        b = k % self.buckets
        match = (self.ids[b] == k[:, None]) & (self.dic[b] > 0)
        return np.where(match, self.dic[b], 0).max(axis=1)


class CAFECodec(Codec):
    """CAFE: hot ids read their unique row; the rest sum two hash levels (papers.md §D.2–§D.3)."""

    def __init__(self, spec: CAFESpec, rows: int, dim: int, seed: int):
        self.spec = spec
        self.rows, self.dim = rows, dim
        rng = np.random.default_rng(seed)
        a = math.sqrt(1.0 / rows)
        h1, h2 = spec.level_rows
        self.hot = np.zeros((spec.hot_rows, dim), dtype=np.float32)
        self.t1 = rng.uniform(-a, a, size=(h1, dim)).astype(np.float32)
        self.t2 = rng.uniform(-a, a, size=(max(h2, 1), dim)).astype(np.float32) * (h2 > 0)
        self.sketch = HotSketch(spec.hot_rows, spec.hot_rows, spec.threshold, spec.decay)

    def _cold(self, r: np.ndarray) -> np.ndarray:
        out = np.take(self.t1, r % self.t1.shape[0], axis=0)
        if self.spec.level_rows[1] > 0:
            out = out + np.take(self.t2, (7 * r) % self.t2.shape[0], axis=0)
        return out

    def observe(self, ids: np.ndarray, importance: np.ndarray | None = None) -> None:
        """Feed one batch of ids to the sketch (importance = access count when not given).

        A newly hot id's unique row starts as a copy of its current hash embedding.
        """
        r = _check_ids(ids, self.rows, "cafe codec")
        self.sketch.start_batch()
        if importance is None:
            keys, first, counts = np.unique(r, return_index=True, return_counts=True)
            order = np.argsort(first, kind="stable")
            vals = counts.astype(np.float64)
        else:
            keys, order = r, np.arange(r.size)
            vals = np.asarray(importance, dtype=np.float64)
        for k, v in zip(keys[order].tolist(), vals[order].tolist(), strict=True):
            self.sketch.insert(k, v)
        if self.sketch.promoted:
            ks = np.array([p[0] for p in self.sketch.promoted], dtype=np.int64)
            hs = np.array([p[1] for p in self.sketch.promoted], dtype=np.int64)
            self.hot[hs - 1] = self._cold(ks)
            self.sketch.promoted.clear()

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        r = _check_ids(ids, self.rows, "cafe codec")
        h = self.sketch.query(r)
        out = self._cold(r)
        hot = h > 0
        out[hot] = self.hot[h[hot] - 1]
        return out

    def reference(self, ids: np.ndarray) -> np.ndarray:
        r = _check_ids(ids, self.rows, "cafe codec")
        sk = self.sketch
        hot_of = {
            int(k): int(d)
            for k, d in zip(sk.ids.ravel().tolist(), sk.dic.ravel().tolist(), strict=True)
            if d > 0
        }
        h1, h2 = self.spec.level_rows
        out = np.empty((r.size, self.dim))
        for n, x in enumerate(r.tolist()):
            if x in hot_of:
                out[n] = self.hot[hot_of[x] - 1]
            else:
                v = self.t1[x % h1].astype(np.float64)
                if h2 > 0:
                    v = v + self.t2[(7 * x) % h2]
                out[n] = v
        return out

    def error_bound(self, ids: np.ndarray) -> np.ndarray:
        n = np.asarray(ids).size
        return np.full(n, 4 * math.sqrt(1.0 / self.rows) * 2.0**-23)


class MemRecCodec(Codec):
    """MEM-REC: e(x) = sum_j alpha_j(x) T[h_j(x)] with alpha(x) = sum_l W[g_l(x)] (k1 weights)."""

    def __init__(self, spec: MemRecSpec, rows: int, dim: int, seed: int):
        self.spec = spec
        self.rows, self.dim = rows, dim
        rng = np.random.default_rng(seed)
        k1, k2 = spec.token_hashes, spec.weight_hashes
        a = math.sqrt(1.0 / spec.token_rows)
        self.token = rng.uniform(-a, a, size=(spec.token_rows, dim)).astype(np.float32)
        noise = rng.standard_normal((spec.weight_rows, k1)).astype(np.float32)
        self.weight = ((1.0 + 0.1 * noise) / k2).astype(np.float32)
        self._ha, self._hc = _hash_params(spec.seed, k1)
        self._ga, self._gc = _hash_params(spec.seed + 1_000_003, k2)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        r = _check_ids(ids, self.rows, "memrec codec")
        s = self.spec
        alpha = np.zeros((r.size, s.token_hashes), dtype=np.float32)
        for j in range(s.weight_hashes):
            alpha += np.take(
                self.weight, universal_hash(r, s.weight_rows, self._ga[j], self._gc[j]), 0
            )
        out = np.zeros((r.size, self.dim), dtype=np.float32)
        for j in range(s.token_hashes):
            rows_j = np.take(
                self.token, universal_hash(r, s.token_rows, self._ha[j], self._hc[j]), 0
            )
            out += alpha[:, j : j + 1] * rows_j
        return out

    def reference(self, ids: np.ndarray) -> np.ndarray:
        r = _check_ids(ids, self.rows, "memrec codec")
        s = self.spec
        p = (1 << 61) - 1
        out = np.zeros((r.size, self.dim))
        for n, x in enumerate(r.tolist()):
            alpha = np.zeros(s.token_hashes)
            for j in range(s.weight_hashes):
                g = ((int(self._ga[j]) * x + int(self._gc[j])) % p) % s.weight_rows
                alpha += self.weight[g]
            for j in range(s.token_hashes):
                h = ((int(self._ha[j]) * x + int(self._hc[j])) % p) % s.token_rows
                out[n] += alpha[j] * self.token[h].astype(np.float64)
        return out

    def error_bound(self, ids: np.ndarray) -> np.ndarray:
        n = np.asarray(ids).size
        s = self.spec
        mag = float(np.abs(self.token).max()) * float(np.abs(self.weight).max())
        return np.full(n, 4 * s.token_hashes * s.weight_hashes * mag * 2.0**-23)


def build_codec(
    spec: Any,
    rows: int,
    dim: int,
    table: np.ndarray | None = None,
    seed: int = 0,
) -> Codec:
    """Build a codec for a ``rows`` x ``dim`` table from ``spec``.

    With ``table`` (raw, quant, tt, hash): encode that table (TT by TT-SVD, hash by bucket means).
    Without: a seeded train-free init (raw/quant from DLRM's uniform init, TT from seeded Gaussian
    cores, the hash-family codecs from seeded uniform tables). Raises ConfigError when the format
    cannot hold the table (TT shapes that do not factor, bad ranks, shape or dtype mismatch).
    """
    spec.check(rows, dim, where=f"codec {spec.kind!r}")
    spec = spec.resolved(rows, dim)
    if table is not None:
        table = _check_table(table, rows, dim, spec.kind)
    if isinstance(spec, RawSpec | QuantSpec):
        src = table if table is not None else dlrm_uniform_table(rows, dim, seed)
        return RawCodec(spec, src) if isinstance(spec, RawSpec) else QuantCodec(spec, src)
    if isinstance(spec, TTSpec):
        p, q = spec.p_shapes or [], spec.q_shapes or []
        if table is not None:
            cores = TTCores.from_table(np.asarray(table, np.float64), p, q, spec.ranks)
        else:
            cores = TTCores.random(rows, p, q, spec.ranks, seed)
        return TTCodec(spec, cores)
    if isinstance(spec, HashSpec):
        codec = HashCodec(spec, rows, np.zeros((spec.buckets, dim), dtype=np.float32))
        if table is not None:
            b = codec.bucket(np.arange(rows, dtype=np.int64))
            sums = np.zeros((spec.buckets, dim))
            np.add.at(sums, b, np.asarray(table, np.float64))
            counts = np.bincount(b, minlength=spec.buckets)
            codec.weight[:] = sums / np.maximum(counts, 1)[:, None]
        else:
            codec.weight[:] = dlrm_uniform_table(spec.buckets, dim, seed)
        return codec
    if table is not None:
        raise ConfigError(
            f"codec {spec.kind!r} has no encoder from a dense table (its rows are learned)",
            where=f"codec {spec.kind!r}",
            fix="build it train-free from a seed (table=None)",
        )
    if isinstance(spec, QRSpec):
        nq = -(-rows // spec.num_remainder)
        rng = np.random.default_rng(seed)
        a = math.sqrt(1.0 / rows)
        q = rng.uniform(-a, a, size=(nq, dim)).astype(np.float32)
        lo, hi = (0.5, 1.5) if spec.op == "mul" else (-a, a)
        r = rng.uniform(lo, hi, size=(min(spec.num_remainder, rows), dim)).astype(np.float32)
        return QRCodec(spec, rows, q, r)
    if isinstance(spec, CAFESpec):
        return CAFECodec(spec, rows, dim, seed)
    if isinstance(spec, MemRecSpec):
        return MemRecCodec(spec, rows, dim, seed)
    raise ConfigError(f"unknown codec kind {spec.kind!r}", fix="use a kind from the spec module")
