"""Model-size accounting: bytes of a whole DLRM's embeddings with a codec chosen per table.

Computed from row counts and codec specs alone (no arrays are built), so it reproduces published
sizes from published inputs (``shared/reference/data.md`` §1.3, §4; ``papers.md`` §C):

* fp32 embeddings: sum(rows) * dim * 4 B (Criteo Kaggle d16 = 2.1608 GB);
* quantised: with the format's scale/bias overhead (``bytes``) and without it (``payload_bytes``,
  DQRM's convention: INT4 = fp32 / 8);
* TT-Rec: :func:`tt_largest` compresses the k largest tables, the rest stay dense.

The dataset cardinality lists below are facts copied from data.md §1 (with their sources there).
What it leaves out: optimizer state, index/offset buffers, allocator padding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simrec.errors import ConfigError
from simrec.functional.spec import RawSpec, TTSpec

__all__ = [
    "CRITEO_KAGGLE_ROWS",
    "CRITEO_TB_HASH10M_ROWS",
    "CRITEO_TB_MLPERF40M_ROWS",
    "ModelSize",
    "TableSize",
    "mlp_params",
    "model_size",
    "tt_largest",
]

#: Criteo Kaggle, 26 categorical features as used by DLRM (data.md §1.1).
CRITEO_KAGGLE_ROWS = [
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
    5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
]  # fmt: skip
#: Criteo Terabyte, DLRM hash % 10M with --data-sub-sample-rate=0.875 (data.md §1.2).
CRITEO_TB_HASH10M_ROWS = [
    9980333, 36084, 17217, 7378, 20134, 3, 7112, 1442, 61, 9758201, 1333352, 313829, 10, 2208,
    11156, 122, 4, 970, 14, 9994222, 7267859, 9946608, 415421, 12420, 101, 36,
]  # fmt: skip
#: Criteo Terabyte, MLPerf cap min(n, 40M) (data.md §1.2).
CRITEO_TB_MLPERF40M_ROWS = [
    40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956, 405282, 10, 2209,
    11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152, 12973, 108, 36,
]  # fmt: skip


def mlp_params(layers: Sequence[int]) -> int:
    """Weights + biases of a fully connected stack with the given layer widths."""
    return sum(a * b + b for a, b in zip(layers[:-1], layers[1:], strict=False))


@dataclass(frozen=True)
class TableSize:
    """One table's size under its codec."""

    name: str
    rows: int
    dim: int
    codec: str
    bytes: int
    payload_bytes: int
    fp32_bytes: int


@dataclass
class ModelSize:
    """Sizes of all tables (+ optional dense MLP params counted in fp32)."""

    tables: list[TableSize]
    mlp_params: int = 0
    mlp_bytes_per_param: float = 4.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def embedding_bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    @property
    def embedding_payload_bytes(self) -> int:
        return sum(t.payload_bytes for t in self.tables)

    @property
    def fp32_embedding_bytes(self) -> int:
        return sum(t.fp32_bytes for t in self.tables)

    @property
    def mlp_bytes(self) -> float:
        return self.mlp_params * self.mlp_bytes_per_param

    @property
    def total_bytes(self) -> float:
        return self.embedding_bytes + self.mlp_bytes

    @property
    def compression(self) -> float:
        """fp32 model bytes / model bytes (embeddings + MLP, the MLP in fp32 in both)."""
        return (self.fp32_embedding_bytes + self.mlp_params * 4) / self.total_bytes

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([t.__dict__ for t in self.tables])


def _codec_for(codecs: Any, i: int, name: str) -> Any:
    if codecs is None:
        return RawSpec()
    if isinstance(codecs, Mapping):
        return codecs.get(name, codecs.get(i, RawSpec()))  # type: ignore[call-overload]
    if isinstance(codecs, Sequence) and not isinstance(codecs, str):
        return codecs[i]
    return codecs


def model_size(
    rows: Sequence[int],
    dim: int | Sequence[int],
    codecs: Any = None,
    names: Sequence[str] | None = None,
    mlp: int = 0,
) -> ModelSize:
    """Size of a model with tables of ``rows`` and ``dim`` under per-table ``codecs``.

    ``codecs``: None (fp32 raw), one spec for all tables, a list (one per table) or a mapping
    from table name or index to spec (others raw). ``mlp``: dense parameters, counted in fp32.
    """
    n = len(rows)
    dims = [dim] * n if isinstance(dim, int) else list(dim)
    if len(dims) != n:
        raise ConfigError(f"{len(dims)} dims for {n} tables", fix="give one dim, or one per table")
    if isinstance(codecs, Sequence) and not isinstance(codecs, str) and len(codecs) != n:
        raise ConfigError(
            f"{len(codecs)} codecs for {n} tables", fix="give one codec per table, or a mapping"
        )
    names = list(names) if names is not None else [f"t{i}" for i in range(n)]
    out = []
    for i, (r, d) in enumerate(zip(rows, dims, strict=True)):
        spec = _codec_for(codecs, i, names[i])
        spec.check(r, d, where=f"table {names[i]!r}")
        out.append(
            TableSize(
                name=names[i],
                rows=int(r),
                dim=int(d),
                codec=spec.kind,
                bytes=int(spec.nbytes(r, d)),
                payload_bytes=int(spec.payload_bytes(r, d)),
                fp32_bytes=int(r) * int(d) * 4,
            )
        )
    return ModelSize(out, mlp_params=mlp)


def tt_largest(rows: Sequence[int], k: int, ranks: list[int]) -> list[Any]:
    """Per-table specs: TT (suggested shapes, ``ranks``) for the ``k`` largest tables, raw else."""
    order = sorted(range(len(rows)), key=lambda i: (-rows[i], i))[:k]
    chosen = set(order)
    return [TTSpec(ranks=list(ranks)) if i in chosen else RawSpec() for i in range(len(rows))]
