"""DLRM forward pass in numpy: bottom MLP, dot interaction, top MLP, sigmoid.

Follows the structure of facebookresearch/dlrm's ``DLRM_Net`` (restated, not copied):

* bottom MLP on the dense features, ReLU after every layer;
* interaction ``dot``: stack the bottom output x and the T pooled embeddings into a (T+1) x d
  matrix per sample, take all pairwise dot products below the diagonal (pairs (i, j) with j < i, in
  row-major order), and concatenate them after x;
* top MLP, ReLU after every layer but the last, then a sigmoid -> click probability.

The Criteo-Kaggle configuration (data.md §1.1): dense 13, bottom 13-512-256-64-16, 26 tables of
dim 16, top 367-512-256-1 (367 = 16 + 27·26/2). Weights are **seeded random** (DLRM's init:
W ~ N(0, sqrt(2 / (fan_in + fan_out))), b ~ N(0, sqrt(1 / fan_out))): no trained model is available,
so outputs are not meaningful CTRs, but the arithmetic is the model's. Float32 throughout.

What it leaves out: the ``cat`` interaction, training, and the dense-feature preprocessing (the
trace converter applies log(x + 1) to Criteo dense features; the forward takes them as stored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simrec.errors import SimrecError

__all__ = ["DLRM", "DLRMConfig", "dot_interaction"]


@dataclass(frozen=True)
class DLRMConfig:
    """Layer widths: ``bottom`` starts with the dense-feature count and ends with the embedding dim;
    ``top`` lists the hidden and output widths after the interaction (its input is derived)."""

    bottom: tuple[int, ...]
    top: tuple[int, ...]
    num_tables: int

    @classmethod
    def criteo_kaggle(cls) -> DLRMConfig:
        """13-512-256-64-16 bottom, 26 tables, top 367-512-256-1 (data.md §1.1)."""
        return cls(bottom=(13, 512, 256, 64, 16), top=(512, 256, 1), num_tables=26)

    @property
    def dim(self) -> int:
        return self.bottom[-1]

    @property
    def top_input(self) -> int:
        f = self.num_tables + 1
        return self.dim + f * (f - 1) // 2

    @property
    def top_layers(self) -> tuple[int, ...]:
        return (self.top_input, *self.top)

    @property
    def num_params(self) -> int:
        def mlp(ls: tuple[int, ...]) -> int:
            return sum(a * b + b for a, b in zip(ls[:-1], ls[1:], strict=False))

        return mlp(self.bottom) + mlp(self.top_layers)


def dot_interaction(x: np.ndarray, pooled: list[np.ndarray]) -> np.ndarray:
    """[b, d + F(F-1)/2] = x followed by the strictly-lower-triangular dot products of
    (x, pooled_0, ..., pooled_{T-1}), F = T + 1."""
    t = np.stack([x, *pooled], axis=1)  # (b, F, d)
    z = np.matmul(t, t.transpose(0, 2, 1))  # (b, F, F)
    li, lj = np.tril_indices(t.shape[1], k=-1)
    return np.concatenate([x, z[:, li, lj]], axis=1)


class DLRM:
    """A seeded-random DLRM (see the module docstring)."""

    def __init__(self, config: DLRMConfig, seed: int = 0):
        self.config = config
        rng = np.random.default_rng(seed)

        def layers(widths: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
            out = []
            for n_in, n_out in zip(widths[:-1], widths[1:], strict=False):
                w = rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), size=(n_in, n_out))
                b = rng.normal(0.0, np.sqrt(1.0 / n_out), size=n_out)
                out.append((w.astype(np.float32), b.astype(np.float32)))
            return out

        self.bottom = layers(config.bottom)
        self.top = layers(config.top_layers)

    def forward(self, dense: np.ndarray, pooled: list[np.ndarray]) -> np.ndarray:
        """Click probabilities [b] from dense features [b, n_dense] and T pooled [b, d] arrays."""
        c = self.config
        dense = np.asarray(dense, dtype=np.float32)
        if dense.ndim != 2 or dense.shape[1] != c.bottom[0]:
            raise SimrecError(
                f"dense features have shape {dense.shape}, the model expects [batch, {c.bottom[0]}]",
                where="DLRM forward",
                fix="use a trace with the model's number of dense features (Criteo: 13)",
            )
        if len(pooled) != c.num_tables:
            raise SimrecError(
                f"{len(pooled)} pooled embeddings, the model has {c.num_tables} tables",
                where="DLRM forward",
                fix="pass one pooled array per table",
            )
        for k, p in enumerate(pooled):
            if p.shape != (dense.shape[0], c.dim):
                raise SimrecError(
                    f"pooled embedding {k} has shape {p.shape}, expected "
                    f"({dense.shape[0]}, {c.dim})",
                    where="DLRM forward",
                    fix="the tables' dim must equal the bottom MLP's output width",
                )
        x = dense
        for w, b in self.bottom:
            x = np.maximum(x @ w + b, 0.0)
        z = dot_interaction(x, [np.asarray(p, dtype=np.float32) for p in pooled])
        for k, (w, b) in enumerate(self.top):
            z = z @ w + b
            if k < len(self.top) - 1:
                z = np.maximum(z, 0.0)
        return (1.0 / (1.0 + np.exp(-z[:, 0]))).astype(np.float32)
