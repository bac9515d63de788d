"""Codec specifications: how one embedding table (or one band of it) is stored, and what it costs.

A *spec* is plain data (a pydantic model, serialisable in a plan) that names a storage format and
its parameters. It answers the sizing and cost questions without building any array, so the size
of a 10-million-row table is computed from its row count alone:

* :meth:`nbytes` — bytes the stored form occupies (including per-row/per-table scale overhead);
* :meth:`payload_bytes` — the same without quantisation scale/bias overhead (DQRM's convention);
* :meth:`cost` — what the simulator charges per lookup (bytes read, gathers, FLOPs).

:func:`simrec.functional.codecs.build_codec` turns a spec into a working codec (the arrays).

Formats: ``raw`` (dense fp32/fp16), ``tt`` (tensor train, TT-Rec), ``quant`` (INT8/4/2, row-wise
asymmetric with scale+bias, or per-table symmetric as in DQRM), ``hash`` (hashing trick), ``qr``
(quotient-remainder compositional embedding), ``cafe`` (HotSketch + multi-level hash, CAFE) and
``memrec`` (bloom-filter token table + weight table, MEM-REC). Sources of the formulas:
``shared/reference/data.md`` §1.3 and §4, ``papers.md`` §B–§E, §G, §I.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from simrec.errors import ConfigError

__all__ = [
    "CAFESpec",
    "CodecCost",
    "CodecSpec",
    "HashSpec",
    "MemRecSpec",
    "QRSpec",
    "QuantSpec",
    "RawSpec",
    "TTSpec",
    "tt_macs_per_row",
    "tt_params",
]

_F32 = 4


@dataclass(frozen=True)
class CodecCost:
    """Per-lookup cost of a codec, as the simulator charges it.

    Attributes:
        bytes_per_lookup: bytes read from the table's storage for one looked-up row.
        gathers_per_lookup: independent memory accesses (row or core-slice fetches) per lookup.
        flops_per_lookup: arithmetic to produce one row (a multiply-add counts as 2 FLOPs).
        state_bytes: total bytes of the stored form (what must fit in the tier).
        note: one line saying what is charged and what is left out.
    """

    bytes_per_lookup: float
    gathers_per_lookup: float
    flops_per_lookup: float
    state_bytes: int
    note: str


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def check(self, rows: int, dim: int, where: str | None = None, path: str | None = None) -> None:
        """Raise ConfigError if this format cannot hold a ``rows`` x ``dim`` table."""

    def resolved(self, rows: int, dim: int) -> _Spec:
        """This spec with every left-open parameter filled in for a ``rows`` x ``dim`` table."""
        return self

    def nbytes(self, rows: int, dim: int) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def payload_bytes(self, rows: int, dim: int) -> int:
        """Stored bytes without scale/bias overhead (equal to :meth:`nbytes` for unscaled formats)."""
        return self.nbytes(rows, dim)

    def cost(self, rows: int, dim: int) -> CodecCost:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def lossless(self) -> bool:
        """True when a lookup returns the stored fp32 row bit for bit."""
        return False


class RawSpec(_Spec):
    """Dense rows: ``rows * dim`` elements of ``dtype`` (fp16 rounds the fp32 model values)."""

    kind: Literal["raw"] = "raw"
    dtype: Literal["float32", "float16"] = "float32"

    @property
    def itemsize(self) -> int:
        return 4 if self.dtype == "float32" else 2

    @property
    def lossless(self) -> bool:
        return self.dtype == "float32"

    def nbytes(self, rows: int, dim: int) -> int:
        return rows * dim * self.itemsize

    def cost(self, rows: int, dim: int) -> CodecCost:
        return CodecCost(
            bytes_per_lookup=dim * self.itemsize,
            gathers_per_lookup=1,
            flops_per_lookup=0,
            state_bytes=self.nbytes(rows, dim),
            note="one row gather; pooling adds are charged by the caller",
        )


def tt_params(p_shapes: list[int], q_shapes: list[int], ranks: list[int]) -> int:
    """TT parameter count: sum over cores of R[k-1] * p[k] * q[k] * R[k] (data.md §4)."""
    r = [1, *ranks, 1]
    return sum(r[k] * p_shapes[k] * q_shapes[k] * r[k + 1] for k in range(len(p_shapes)))


def tt_macs_per_row(q_shapes: list[int], ranks: list[int]) -> int:
    """Multiply-accumulates to rebuild one row by the left-to-right GEMM chain (screc.md §4.3).

    Stage k (k = 2..d) multiplies a (q1..q[k-1]) x R[k-1] partial product by the R[k-1] x
    (q[k] R[k]) core slice: prod(q[:k]) * R[k-1] * q[k] * R[k] MACs.
    """
    r = [1, *ranks, 1]
    macs = 0
    lead = q_shapes[0]
    for k in range(1, len(q_shapes)):
        macs += lead * r[k] * q_shapes[k] * r[k + 1]
        lead *= q_shapes[k]
    return macs


class TTSpec(_Spec):
    """Tensor-train cores (TT-Rec): core k has shape R[k-1] x p[k] x q[k] x R[k], R[0] = R[d] = 1.

    ``p_shapes`` multiply to at least ``rows`` (rows are padded up), ``q_shapes`` multiply to ``dim``
    exactly. Left open (None), they are filled by the entropy-balanced suggestion
    (:func:`simrec.functional.tt.suggested_tt_shapes`) with ``len(ranks) + 1`` cores. Row index i
    maps to core indices mixed-radix, most significant first: i = (i1 * p2 + i2) * p3 + i3.
    ``prefix_reuse`` reuses the first-stage product of rows that share (i1, i2) within a batch
    (EL-Rec); it changes the cost, not the result.
    """

    kind: Literal["tt"] = "tt"
    ranks: list[int] = Field(min_length=1)
    p_shapes: list[int] | None = None
    q_shapes: list[int] | None = None
    prefix_reuse: bool = False

    @property
    def num_cores(self) -> int:
        return len(self.ranks) + 1

    def resolved(self, rows: int, dim: int) -> TTSpec:
        from simrec.functional.tt import suggested_tt_shapes

        self._check_ranks()
        p = self.p_shapes or suggested_tt_shapes(rows, self.num_cores)
        q = self.q_shapes or suggested_tt_shapes(dim, self.num_cores, allow_round_up=False)
        return self.model_copy(update={"p_shapes": list(p), "q_shapes": list(q)})

    def _check_ranks(self, where: str | None = None, path: str | None = None) -> None:
        bad = [r for r in self.ranks if r < 1]
        if bad:
            raise ConfigError(
                f"TT ranks must be >= 1, got {self.ranks}",
                path=path,
                where=where,
                fix="give positive ranks, e.g. ranks: [8, 8] for 3 cores",
            )

    def check(self, rows: int, dim: int, where: str | None = None, path: str | None = None) -> None:
        self._check_ranks(where, path)
        if self.q_shapes is None and self.num_cores > 1:
            from simrec.functional.tt import suggested_tt_shapes

            auto = suggested_tt_shapes(dim, self.num_cores, allow_round_up=False)
            if min(auto) < 2:
                raise ConfigError(
                    f"the embedding dim {dim} does not factor into {self.num_cores} TT cores "
                    f"(best split {auto} leaves a core of width 1)",
                    path=path,
                    where=where,
                    fix="give q_shapes explicitly, use fewer cores (fewer ranks), or another dim",
                )
        s = self.resolved(rows, dim)
        p, q = s.p_shapes or [], s.q_shapes or []
        if len(p) != self.num_cores or len(q) != self.num_cores:
            raise ConfigError(
                f"TT with {len(self.ranks)} ranks needs {self.num_cores} p and q shapes, "
                f"got p={p}, q={q}",
                path=path,
                where=where,
                fix="give len(ranks)+1 shapes in p_shapes and q_shapes (or leave them out)",
            )
        if min(p) < 1 or min(q) < 1:
            raise ConfigError(
                f"TT shapes must be >= 1, got p={p}, q={q}", path=path, where=where, fix="fix them"
            )
        if math.prod(q) != dim:
            raise ConfigError(
                f"q_shapes {q} multiply to {math.prod(q)}, not the embedding dim {dim}",
                path=path,
                where=where,
                fix=f"choose q_shapes whose product is exactly {dim} (or leave them out)",
            )
        if math.prod(p) < rows:
            raise ConfigError(
                f"p_shapes {p} multiply to {math.prod(p)}, fewer than the table's {rows} rows",
                path=path,
                where=where,
                fix=f"choose p_shapes whose product is >= {rows} (or leave them out)",
            )

    def _concrete(self, rows: int, dim: int) -> TTSpec:
        s = self.resolved(rows, dim)
        s.check(rows, dim)
        return s

    def params(self, rows: int, dim: int) -> int:
        s = self._concrete(rows, dim)
        return tt_params(s.p_shapes or [], s.q_shapes or [], self.ranks)

    def macs_per_row(self, rows: int, dim: int) -> int:
        s = self._concrete(rows, dim)
        return tt_macs_per_row(s.q_shapes or [], self.ranks)

    def nbytes(self, rows: int, dim: int) -> int:
        return self.params(rows, dim) * _F32

    def cost(self, rows: int, dim: int) -> CodecCost:
        s = self._concrete(rows, dim)
        r = [1, *self.ranks, 1]
        q = s.q_shapes or []
        slice_elems = sum(r[k] * q[k] * r[k + 1] for k in range(len(q)))
        return CodecCost(
            bytes_per_lookup=slice_elems * _F32,
            gathers_per_lookup=self.num_cores,
            flops_per_lookup=2 * self.macs_per_row(rows, dim),
            state_bytes=self.nbytes(rows, dim),
            note=(
                "one core slice per core + the GEMM chain; without prefix reuse "
                "(reuse lowers the first-stage FLOPs by the batch's rows/prefix ratio)"
            ),
        )


class QuantSpec(_Spec):
    """Integer rows: ``bits`` per element, packed, plus scale (and bias) to dequantise.

    ``granularity="row"``: asymmetric per row, w ~ scale * q + bias with q in [0, 2^b - 1]; each row
    carries a scale and a bias in ``scale_dtype`` (FBGEMM fused row-wise: INT8 with fp32, INT4/2
    with fp16). ``granularity="table"``: symmetric, one fp32 scale per table, q in
    [-2^(b-1), 2^(b-1) - 1], scale = max|w| / (2^(b-1) - 1) (DQRM, papers.md §C.3).
    """

    kind: Literal["quant"] = "quant"
    bits: Literal[8, 4, 2] = 8
    granularity: Literal["row", "table"] = "row"
    scale_dtype: Literal["float16", "float32"] = "float16"

    def row_payload_bytes(self, dim: int) -> int:
        return math.ceil(dim * self.bits / 8)

    def overhead_bytes(self, rows: int) -> int:
        sb = 2 if self.scale_dtype == "float16" else 4
        return rows * 2 * sb if self.granularity == "row" else _F32

    def payload_bytes(self, rows: int, dim: int) -> int:
        return rows * self.row_payload_bytes(dim)

    def nbytes(self, rows: int, dim: int) -> int:
        return self.payload_bytes(rows, dim) + self.overhead_bytes(rows)

    def cost(self, rows: int, dim: int) -> CodecCost:
        per_row = self.row_payload_bytes(dim) + (
            self.overhead_bytes(1) if self.granularity == "row" else 0
        )
        return CodecCost(
            bytes_per_lookup=per_row,
            gathers_per_lookup=1,
            flops_per_lookup=2 * dim,
            state_bytes=self.nbytes(rows, dim),
            note="one packed-row gather + dequantise (multiply-add per element)",
        )


class HashSpec(_Spec):
    """Hashing trick: row i reads shared row h(i) of a ``buckets`` x dim table."""

    kind: Literal["hash"] = "hash"
    buckets: int = Field(ge=1)
    hash: Literal["mod", "universal"] = "universal"
    seed: int = 0

    def nbytes(self, rows: int, dim: int) -> int:
        return self.buckets * dim * _F32

    def cost(self, rows: int, dim: int) -> CodecCost:
        return CodecCost(dim * _F32, 1, 0, self.nbytes(rows, dim), "one hash + one row gather")


class QRSpec(_Spec):
    """Quotient-remainder embedding: e(i) = Q[i // m] (op) R[i % m], op = elementwise mul or add."""

    kind: Literal["qr"] = "qr"
    num_remainder: int = Field(ge=1, description="m: rows of the remainder table")
    op: Literal["mul", "add"] = "mul"

    def nbytes(self, rows: int, dim: int) -> int:
        m = min(self.num_remainder, rows)
        return (math.ceil(rows / self.num_remainder) + m) * dim * _F32

    def cost(self, rows: int, dim: int) -> CodecCost:
        return CodecCost(2 * dim * _F32, 2, dim, self.nbytes(rows, dim), "two gathers + combine")


class CAFESpec(_Spec):
    """CAFE: HotSketch finds hot ids online; hot ids get unique rows, the rest share hash rows.

    ``hot_rows`` unique rows (the sketch has hot_rows buckets of 4 slots, 48 B per bucket,
    papers.md §D.2); ``hash_rows`` shared rows split ``level_rate`` / 1 - level_rate over two
    hash levels (the non-hot embedding is T1[i mod H1] + T2[(7 i) mod H2], §D.3; level_rate 1.0
    gives one level). A slot turns hot when its decayed count reaches ``threshold``.
    """

    kind: Literal["cafe"] = "cafe"
    hot_rows: int = Field(ge=1)
    hash_rows: int = Field(ge=1)
    level_rate: float = Field(default=0.7, gt=0.0, le=1.0)
    threshold: float = Field(default=10.0, gt=0.0)
    decay: float = Field(default=0.99, gt=0.0, le=1.0)

    @property
    def level_rows(self) -> tuple[int, int]:
        h1 = math.ceil(self.level_rate * self.hash_rows)
        return h1, self.hash_rows - h1

    @property
    def sketch_bytes(self) -> int:
        return 48 * self.hot_rows

    def nbytes(self, rows: int, dim: int) -> int:
        return (self.hot_rows + self.hash_rows) * dim * _F32 + self.sketch_bytes

    def cost(self, rows: int, dim: int) -> CodecCost:
        two = self.level_rows[1] > 0
        return CodecCost(
            dim * _F32 * (2 if two else 1),
            1 + (1 if two else 0) + 1,
            dim if two else 0,
            self.nbytes(rows, dim),
            "one 4-slot sketch probe + one hot-row gather, or the hash-level gathers (charged "
            "at the cold-path worst case)",
        )


class MemRecSpec(_Spec):
    """MEM-REC: e(x) = sum_j alpha_j(x) T[h_j(x)], alpha(x) = sum_l W[g_l(x)] (papers.md §E.2).

    Token table T: ``token_rows`` x dim, ``token_hashes`` = k1 hashes; weight table W:
    ``weight_rows`` x k1 (one weight per token hash), ``weight_hashes`` = k2 hashes.
    """

    kind: Literal["memrec"] = "memrec"
    token_rows: int = Field(ge=1)
    token_hashes: int = Field(default=2, ge=1)
    weight_rows: int = Field(ge=1)
    weight_hashes: int = Field(default=2, ge=1)
    seed: int = 0

    def nbytes(self, rows: int, dim: int) -> int:
        return (self.token_rows * dim + self.weight_rows * self.token_hashes) * _F32

    def cost(self, rows: int, dim: int) -> CodecCost:
        k1, k2 = self.token_hashes, self.weight_hashes
        return CodecCost(
            (k1 * dim + k2 * k1) * _F32,
            k1 + k2,
            2 * k1 * dim + k2 * k1,
            self.nbytes(rows, dim),
            "k1 token-row + k2 weight-row gathers, weight sum and weighted token sum",
        )


CodecSpec = Annotated[
    RawSpec | TTSpec | QuantSpec | HashSpec | QRSpec | CAFESpec | MemRecSpec,
    Field(discriminator="kind"),
]
