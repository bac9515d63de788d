"""Self-contained HTML pages: inline CSS, figures embedded as base64 PNG, no scripts or links.

:func:`render_report_html` renders a :class:`~simrec.report.core.Report`;
:func:`render_sweep_html` a sweep's results. Every table has a ``model`` column (or names the
model in its caption) so each number says what produced it.
"""

from __future__ import annotations

import base64
import html
from typing import Any

import pandas as pd

__all__ = ["render_report_html", "render_sweep_html"]

_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; }
th { background: #e8eef6; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.note { color: #555; font-size: 0.85em; }
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame, caption: str) -> str:
    body = df.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}", border=0)
    return f"<p class='note'>{html.escape(caption)}</p>\n{body}"


def _page(title: str, parts: list[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def render_report_html(rep: Any, title: str = "simrec report") -> str:
    """The comparison report page."""
    from simrec.report.core import TOP_STAGES
    from simrec.report.plots import (
        breakdown_figure,
        energy_figure,
        speedup_figure,
        utilisation_figure,
    )

    s = rep.summary
    cols = ["trace", "system", "kind", "planner", "samples_per_s", "latency_p50_s"]
    cols += ["latency_p99_s", "device_j_per_sample", "server_j_per_sample", "speedup"]
    cols += ["energy_efficiency_device", "energy_efficiency_server", "cost"]
    models = s[["system", "timing_model", "energy_model", "cost_model"]]
    stage_cols = ["system"] + [c for c in s.columns if c.startswith("stage_")]
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Baseline: <b>{html.escape(rep.baseline)}</b>. Traces: "
        + html.escape(", ".join(str(t) for t in rep.traces))
        + ".</p>",
        "<h2>Summary</h2>",
        _table(s[cols], "speedup and energy efficiency are relative to the baseline"),
        _table(models, "models and estimators behind each system's numbers"),
        "<h2>Time breakdown</h2>",
        _img(breakdown_figure(s, TOP_STAGES), "stacked time breakdown"),
        _table(s[stage_cols], "seconds per sample per stage (sub-stages overlap 'embedding')"),
        "<h2>Speedup</h2>",
        _img(speedup_figure(s, rep.baseline), "speedup bars"),
        "<h2>Energy</h2>",
        _img(energy_figure(s), "energy bars"),
        _table(
            rep.energy[
                ["system", "component", "action", "boundary", "count", "energy_j", "estimator"]
            ],
            "priced actions: energy = count x energy per action (static: W x s)",
        ),
        "<h2>Utilisation</h2>",
        _img(utilisation_figure(rep.utilisation), "utilisation bars"),
        "<h2>All metrics</h2>",
        _table(rep.metrics, "one row per metric, with its unit and the model that produced it"),
    ]
    excl = rep.meta.get("excluded", {})
    if any(excl.values()):
        items = "".join(
            f"<li>{html.escape(k)}: {html.escape(x)}</li>" for k, v in excl.items() for x in v
        )
        parts.append(f"<h2>Not in the energy model</h2><ul class='note'>{items}</ul>")
    return _page(title, parts)


def render_sweep_html(df: pd.DataFrame, title: str = "simrec sweep") -> str:
    """The sweep page: Pareto scatter plus the table of Pareto points and of all points."""
    from simrec.report.plots import pareto_figure

    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{len(df)} points.</p>"]
    for trace, g in df.groupby("trace", sort=True):
        parts.append(f"<h2>trace {html.escape(str(trace))}</h2>")
        parts.append(_img(pareto_figure(g, "samples_per_s", "server_j_per_sample"), "pareto"))
        front = g[g["pareto"]]
        parts.append(_table(front, "Pareto-optimal points (max samples/s, min J/sample, min cost)"))
    parts.append("<h2>All points</h2>")
    parts.append(_table(df, "one row per sweep point; models are named in the *_model columns"))
    return _page(title, parts)
