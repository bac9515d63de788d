"""DLRM model configurations and their per-sample compute: bottom MLP, interaction, top MLP.

What it covers: the dense part of a DLRM-style model as FLOPs per sample (a multiply-add counts as
two FLOPs): the bottom MLP on the dense features, the feature interaction (``dot``: pairwise dot
products of the ``T + 1`` feature vectors, DLRM; ``dcn``: low-rank DCNv2 cross layers, MLPerf
DLRMv2; ``cat``: concatenation), and the top MLP on the interaction output. The embedding stage is
described by the trace (tables, dims, pooling) and simulated by the systems, not here.

What it leaves out: activations, bias adds and sigmoid (a few FLOPs per element), backward passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simrec.errors import ConfigError

__all__ = ["DlrmModel", "MODELS", "get_model"]


@dataclass(frozen=True)
class DlrmModel:
    """A DLRM-style model.

    Attributes:
        name: a label.
        num_dense: dense input features.
        num_tables: embedding tables (sparse features).
        emb_dim: embedding dimension (the bottom MLP's last layer has this width).
        bottom_mlp: layer widths after the input (the last equals ``emb_dim``).
        top_mlp: layer widths after the interaction (the last is 1 for CTR).
        interaction: ``"dot"``, ``"dcn"`` or ``"cat"``.
        dcn_layers: DCNv2 cross layers (``interaction == "dcn"``).
        dcn_rank: DCNv2 low rank.
        pooling: mean lookups per table per sample, when the model fixes one (None: from the trace).
        source: where the numbers come from.
    """

    name: str
    num_dense: int
    num_tables: int
    emb_dim: int
    bottom_mlp: tuple[int, ...]
    top_mlp: tuple[int, ...]
    interaction: Literal["dot", "dcn", "cat"] = "dot"
    dcn_layers: int = 0
    dcn_rank: int = 0
    pooling: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.bottom_mlp and self.bottom_mlp[-1] != self.emb_dim:
            raise ConfigError(
                f"model {self.name!r}: the bottom MLP ends at {self.bottom_mlp[-1]}, not the "
                f"embedding dimension {self.emb_dim}",
                where="bottom_mlp",
                fix="make the last bottom layer as wide as the embeddings",
            )

    @staticmethod
    def _mlp_flops(inp: int, layers: tuple[int, ...]) -> float:
        f, w = 0.0, inp
        for out in layers:
            f += 2.0 * w * out
            w = out
        return f

    @property
    def num_features(self) -> int:
        """Vectors entering the interaction: one per table plus the bottom MLP output."""
        return self.num_tables + (1 if self.bottom_mlp else 0)

    @property
    def interaction_out(self) -> int:
        """Width of the interaction output (the top MLP's input)."""
        f, d = self.num_features, self.emb_dim
        if self.interaction == "dot":
            return d + f * (f - 1) // 2
        return f * d  # dcn and cat keep the concatenated width

    def bottom_flops(self) -> float:
        """Bottom MLP FLOPs per sample."""
        return self._mlp_flops(self.num_dense, self.bottom_mlp)

    def interaction_flops(self) -> float:
        """Interaction FLOPs per sample: dot = F(F-1)/2 dot products of length d; dcn = per
        layer x (U: D->r, V: r->D) = 2*(D*r + r*D), plus the elementwise product."""
        f, d = self.num_features, self.emb_dim
        if self.interaction == "dot":
            return 2.0 * d * f * (f - 1) / 2
        if self.interaction == "dcn":
            big = f * d
            return self.dcn_layers * (2.0 * (2 * big * self.dcn_rank) + 2.0 * big)
        return 0.0

    def top_flops(self) -> float:
        """Top MLP FLOPs per sample."""
        return self._mlp_flops(self.interaction_out, self.top_mlp)

    def dense_flops(self) -> float:
        """All dense FLOPs per sample."""
        return self.bottom_flops() + self.interaction_flops() + self.top_flops()


MODELS: dict[str, DlrmModel] = {
    m.name: m
    for m in (
        DlrmModel(
            name="dlrm-criteo-kaggle",
            num_dense=13,
            num_tables=26,
            emb_dim=16,
            bottom_mlp=(512, 256, 64, 16),
            top_mlp=(512, 256, 1),
            interaction="dot",
            source="facebookresearch/dlrm README, Criteo Kaggle run: --arch-sparse-feature-size=16 "
            '--arch-mlp-bot="13-512-256-64-16" --arch-mlp-top="512-256-1" [recall]',
        ),
        DlrmModel(
            name="mlperf-dlrmv2-dcnv2",
            num_dense=13,
            num_tables=26,
            emb_dim=128,
            bottom_mlp=(512, 256, 128),
            top_mlp=(1024, 1024, 512, 256, 1),
            interaction="dcn",
            dcn_layers=3,
            dcn_rank=512,
            pooling=214 / 26,  # 214 lookups per sample over 26 tables (data.md §1.2)
            source="MLPerf DLRMv2 (facebookresearch/dlrm torchrec_dlrm README): dim 128, DCN "
            "interaction, multi-hot sizes sum to 214 (data.md §1.2); MLP widths and 3 cross "
            "layers of rank 512 [recall]",
        ),
        DlrmModel(
            name="rm1",
            num_dense=256,
            num_tables=8,
            emb_dim=32,
            bottom_mlp=(256, 128, 32),
            top_mlp=(256, 64, 1),
            pooling=80.0,
            source="DeepRecSys-like RMC1 (Gupta et al., ISCA 2020): small MLPs, few tables, "
            "pooling 80 [recall]",
        ),
        DlrmModel(
            name="rm2",
            num_dense=256,
            num_tables=32,
            emb_dim=64,
            bottom_mlp=(256, 128, 64),
            top_mlp=(512, 128, 1),
            pooling=120.0,
            source="DeepRecSys-like RMC2: many tables, embedding dominated [recall]",
        ),
        DlrmModel(
            name="rm3",
            num_dense=2560,
            num_tables=10,
            emb_dim=32,
            bottom_mlp=(2560, 512, 32),
            top_mlp=(512, 128, 1),
            pooling=20.0,
            source="DeepRecSys-like RMC3: large bottom MLP, MLP dominated [recall]",
        ),
    )
}


def get_model(name: str) -> DlrmModel:
    """A model from :data:`MODELS` by name; a ConfigError naming the choices otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}",
            where="model",
            fix="use one of " + ", ".join(sorted(MODELS)),
        ) from None
