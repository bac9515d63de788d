"""matplotlib figures of a report, returned as PNG bytes (Agg backend, no display needed).

* :func:`breakdown_figure`: stacked time per sample of the top-level stages per system;
* :func:`speedup_figure`: speedup vs the baseline;
* :func:`energy_figure`: energy per sample, device-only and whole-server;
* :func:`utilisation_figure`: busy fraction of each system's components (the busiest 12);
* :func:`pareto_figure`: a sweep's speed vs energy scatter with the Pareto front marked.

Each figure's title or axis names the model behind its numbers.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = [
    "breakdown_figure",
    "speedup_figure",
    "energy_figure",
    "utilisation_figure",
    "pareto_figure",
    "to_png",
]


def to_png(fig: Any) -> bytes:
    """The figure as PNG bytes (closes it)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _labels(summary: pd.DataFrame) -> list[str]:
    many = summary["trace"].nunique() > 1
    return [
        f"{s}\n{t}" if many else str(s) for s, t in zip(summary.system, summary.trace, strict=True)
    ]


def breakdown_figure(summary: pd.DataFrame, stages: tuple[str, ...]) -> bytes:
    """Stacked bars: time per sample of each top-level stage (simulator model)."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(summary))
    bottom = np.zeros(len(summary))
    for st in stages:
        col = f"stage_{st}_s_per_sample"
        vals = summary[col].fillna(0.0).to_numpy() * 1e6 if col in summary else np.zeros(len(x))
        if not vals.any():
            continue
        ax.bar(x, vals, bottom=bottom, label=st)
        bottom += vals
    ax.set_xticks(x, _labels(summary))
    ax.set_ylabel("stage time per sample (us)")
    ax.set_title("time breakdown (simrec.sim system models)")
    ax.legend(fontsize=8)
    return to_png(fig)


def speedup_figure(summary: pd.DataFrame, baseline: str) -> bytes:
    """Bars: speedup vs the baseline (samples/s ratio)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(summary))
    ax.bar(x, summary["speedup"].to_numpy(), color="tab:green")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(x, _labels(summary))
    ax.set_ylabel(f"speedup vs {baseline} (x)")
    ax.set_title("throughput speedup (samples/s ratio, simulator)")
    return to_png(fig)


def energy_figure(summary: pd.DataFrame) -> bytes:
    """Grouped bars: energy per sample, device-only and whole-server (simrec.energy)."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    x = np.arange(len(summary))
    w = 0.38
    ax.bar(x - w / 2, summary["device_j_per_sample"].to_numpy() * 1e6, w, label="device-only")
    ax.bar(x + w / 2, summary["server_j_per_sample"].to_numpy() * 1e6, w, label="whole server")
    ax.set_xticks(x, _labels(summary))
    ax.set_ylabel("energy per sample (uJ)")
    vals = np.concatenate(
        [summary["device_j_per_sample"].to_numpy(), summary["server_j_per_sample"].to_numpy()]
    )
    pos = vals[vals > 0] * 1e6
    if len(pos):
        ax.set_yscale("log")
        ax.set_ylim(pos.min() / 3, pos.max() * 3)
    ax.set_title("energy per sample (simrec.energy reference tables)")
    ax.legend(fontsize=8)
    return to_png(fig)


def utilisation_figure(util: pd.DataFrame, top: int = 12) -> bytes:
    """Horizontal bars per system: the ``top`` busiest components."""
    groups = list(util.groupby(["trace", "system"], sort=False))
    n = max(1, len(groups))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 1, 3.6), squeeze=False)
    for ax, ((_trace, system), g) in zip(axes[0], groups, strict=False):
        g = g.sort_values("utilisation", ascending=False).head(top)[::-1]
        ax.barh(g["component"], g["utilisation"] * 100, color="tab:orange")
        ax.set_xlim(0, 100)
        ax.set_title(str(system), fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("busy (%)")
    fig.suptitle("utilisation (simrec.sim component busy time)", fontsize=10)
    return to_png(fig)


def pareto_figure(df: pd.DataFrame, x: str, y: str, hue: str = "system") -> bytes:
    """Scatter of ``x`` vs ``y`` for every sweep point; Pareto points circled and joined."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, g in df.groupby(hue, sort=True):
        ax.scatter(g[x], g[y], s=18, label=str(key), alpha=0.8)
    front = df[df["pareto"]].sort_values(x)
    ax.scatter(front[x], front[y], s=90, facecolors="none", edgecolors="k", label="Pareto front")
    ax.plot(front[x], front[y], "k--", lw=0.8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if (df[y] > 0).all():
        ax.set_yscale("log")
    ax.set_title("sweep: speed vs energy (Pareto over speed, energy, cost)")
    ax.legend(fontsize=7)
    return to_png(fig)
