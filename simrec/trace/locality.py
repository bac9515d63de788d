"""Reuse ("column size") histograms in the format of Meta's dlrm_datasets ``locality_stats.txt``.

For one batch, every distinct (table, row) pair that the batch touches is a "column"; its "size" is
how many lookups of the batch hit it. The published files give, per batch file, two histograms over
power-of-two bins ``(0,1], (1,2], (2,4], … (16384,32768], 32768+``:

* the share of *unique rows* whose reuse falls in each bin ("Histogram of col sizes"), and
* the share of *accesses* that go to rows in each bin ("Ratio of index distribution at different
  column sizes").

This module parses the published files and computes the same histograms from a trace, so a
generated trace can be compared to the published profile (:func:`histogram_distance`).
Assumption (the file does not say): distinct columns are counted per (table, row) pair.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simrec.errors import SimrecError

__all__ = [
    "BIN_EDGES",
    "BIN_LABELS",
    "LocalityHistogram",
    "histogram_distance",
    "locality_from_counts",
    "parse_locality_stats",
]

#: Lower edges of the 17 reuse bins; bin k holds counts c with BIN_EDGES[k] < c <= BIN_EDGES[k+1],
#: the last bin holds c > 32768.
BIN_EDGES = np.array([0] + [2**k for k in range(16)], dtype=np.int64)
NUM_BINS = 17
BIN_LABELS = [f"({BIN_EDGES[k]}, {2**k}]" for k in range(16)] + ["32768+"]


def reuse_bin(counts: np.ndarray) -> np.ndarray:
    """Bin number (0..16) of each positive reuse count: ``ceil(log2(c))`` capped at 16."""
    c = np.asarray(counts, dtype=np.int64)
    if c.size and c.min() < 1:
        raise ValueError("reuse counts must be >= 1")
    # ceil(log2 c) for integers: bit length of c-1.
    _, e = np.frexp((c - 1).astype(np.float64))
    k = np.where(c == 1, 0, e).astype(np.int64)
    return np.minimum(k, NUM_BINS - 1)


@dataclass
class LocalityHistogram:
    """One batch's (or the mean batch's) reuse profile, dlrm_datasets style."""

    name: str
    num_batches: int
    batch_size: int
    avg_indices: float
    avg_unique: float
    unique_share: np.ndarray  # [17] share of unique (table,row) pairs per reuse bin
    access_share: np.ndarray  # [17] share of accesses per reuse bin
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def avg_col_size(self) -> float:
        return self.avg_indices / self.avg_unique if self.avg_unique else 0.0

    def to_text(self) -> str:
        """Render in the layout of ``locality_stats.txt`` (3 decimals, like the published file)."""
        lines = [
            self.name,
            f"Locality stats after processing {self.num_batches} batches of size {self.batch_size}",
            f"Avg # of indices: {round(self.avg_indices)}",
            f"Avg # of unique cols: {round(self.avg_unique)}",
            f"Avg col size: {self.avg_col_size:.1f}",
            "Histogram of col sizes:",
        ]
        edges = [int(x) for x in BIN_EDGES]
        for lab, v in zip(BIN_LABELS, self.unique_share, strict=True):
            lines.append(f"{lab.replace('32768+', '(32768+')}: {v:.3f}")
        lines.append(str(edges))
        cum = np.concatenate([[0.0], np.cumsum(self.unique_share)])
        lines.append(str([f"{x:.3f}" for x in cum]))
        lines.append("Ratio of index distribution at different column sizes:")
        for lab, v in zip(BIN_LABELS, self.access_share, strict=True):
            lines.append(f"{lab.replace('32768+', '(32768+')}: {v:.3f}")
        lines.append(str(edges))
        cum = np.concatenate([[0.0], np.cumsum(self.access_share)])
        lines.append(str([f"{x:.3f}" for x in cum]))
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "num_batches": self.num_batches,
            "batch_size": self.batch_size,
            "avg_indices": self.avg_indices,
            "avg_unique": self.avg_unique,
            "avg_col_size": self.avg_col_size,
            "bins": BIN_LABELS,
            "unique_share": [float(x) for x in self.unique_share],
            "access_share": [float(x) for x in self.access_share],
        }


def locality_from_counts(
    counts: np.ndarray, name: str = "trace", batch_size: int = 0, num_batches: int = 1
) -> LocalityHistogram:
    """Histograms from the per-(table,row) access counts of one batch (zeros are ignored)."""
    c = np.asarray(counts, dtype=np.int64)
    c = c[c > 0]
    n = float(c.sum())
    u = float(len(c))
    k = reuse_bin(c)
    uniq = np.bincount(k, minlength=NUM_BINS).astype(np.float64)
    acc = np.bincount(k, weights=c.astype(np.float64), minlength=NUM_BINS)
    return LocalityHistogram(
        name=name,
        num_batches=num_batches,
        batch_size=batch_size,
        avg_indices=n,
        avg_unique=u,
        unique_share=uniq / u if u else uniq,
        access_share=acc / n if n else acc,
    )


def histogram_distance(a: LocalityHistogram, b: LocalityHistogram) -> dict[str, float]:
    """Total-variation distance (½·Σ|p−q|, in [0, 1]) and max bin difference of both histograms."""
    du = np.abs(np.asarray(a.unique_share) - np.asarray(b.unique_share))
    da = np.abs(np.asarray(a.access_share) - np.asarray(b.access_share))
    return {
        "unique_tv": float(du.sum() / 2),
        "unique_max_abs": float(du.max()),
        "access_tv": float(da.sum() / 2),
        "access_max_abs": float(da.max()),
        "avg_col_size_ratio": (a.avg_col_size / b.avg_col_size) if b.avg_col_size else float("nan"),
    }


_NUM = r"([0-9]*\.?[0-9]+)"


def parse_locality_stats(path: str | os.PathLike[str]) -> list[LocalityHistogram]:
    """Parse a dlrm_datasets ``locality_stats.txt``: one :class:`LocalityHistogram` per batch file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SimrecError(
            f"cannot read the file ({e.strerror})", path=p, fix="check the path"
        ) from None
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    out: list[LocalityHistogram] = []
    for bi, block in enumerate(blocks):
        lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
        try:
            name = lines[0]
            m = re.match(r"Locality stats after processing (\d+) batches of size (\d+)", lines[1])
            assert m, "second line"
            nb, bs = int(m.group(1)), int(m.group(2))
            avg_idx = float(re.search(_NUM, lines[2].split(":", 1)[1]).group(1))  # type: ignore[union-attr]
            avg_u = float(re.search(_NUM, lines[3].split(":", 1)[1]).group(1))  # type: ignore[union-attr]
            hists = []
            for title in ("Histogram of col sizes", "Ratio of index distribution"):
                start = next(i for i, ln in enumerate(lines) if ln.startswith(title))
                vals = [float(lines[start + 1 + k].rsplit(":", 1)[1]) for k in range(NUM_BINS)]
                hists.append(np.array(vals))
        except (AssertionError, IndexError, StopIteration, ValueError, AttributeError):
            raise SimrecError(
                "not in the dlrm_datasets locality_stats.txt layout",
                path=p,
                where=f"block {bi + 1}",
                fix="pass an unmodified embedding_bag/<year>/locality_stats.txt",
            ) from None
        out.append(
            LocalityHistogram(
                name=name,
                num_batches=nb,
                batch_size=bs,
                avg_indices=avg_idx,
                avg_unique=avg_u,
                unique_share=hists[0],
                access_share=hists[1],
            )
        )
    if not out:
        raise SimrecError("the file is empty", path=p, fix="pass a locality_stats.txt file")
    return out
