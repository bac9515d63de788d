"""Comparison reports: several systems on the same trace(s), relative to a baseline.

:func:`build_report` turns :class:`~simrec.report.systems.SystemRun` objects into

* ``summary``: one row per (trace, system) -- throughput, latency percentiles, time per sample of
  each stage, energy per sample (device-only and whole-server), average power, cost, speedup and
  energy efficiency vs the baseline;
* ``metrics``: the same numbers in tidy form, one row per (trace, system, metric) with the ``unit``
  and the ``model`` (simulator model, energy estimators, cost model) that produced each;
* ``energy``: the priced actions of every run (component, action, count, energy, estimator,
  source).

:func:`write_report` writes ``report.json``, ``report.csv`` (the tidy metrics), ``report.parquet``
and a self-contained ``report.html`` (see :mod:`simrec.report.html`). Outputs do not contain wall
times, so the same inputs give byte-identical files.

Speedup = samples/s of a system / samples/s of the baseline on the same trace; energy efficiency =
J/sample of the baseline / J/sample of the system (samples per joule, relative), given for the
device-only and the whole-server boundary.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simrec.errors import ConfigError, atomic_output
from simrec.report.systems import SystemRun, closest
from simrec.util import jsonable

__all__ = ["Report", "build_report", "write_report", "check_same_shape", "TOP_STAGES"]

#: Stages that do not overlap and together make up a batch's service time (the stacked plot);
#: other breakdown keys are sub-stages of ``embedding`` (shown in the tables only).
TOP_STAGES = ("embedding", "alltoall", "dense")


@dataclass
class Report:
    """A built comparison (see the module docstring)."""

    summary: pd.DataFrame
    metrics: pd.DataFrame
    energy: pd.DataFrame
    utilisation: pd.DataFrame
    baseline: str
    traces: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


def check_same_shape(paths: list[str | Path]) -> None:
    """Raise a ConfigError unless all traces have the same tables (count, rows, dim)."""
    from simrec.trace.format import read_trace

    if len(paths) < 2:
        return
    first = read_trace(paths[0]).header
    for p in paths[1:]:
        h = read_trace(p).header
        if len(h.tables) != len(first.tables):
            raise ConfigError(
                f"{p} has {len(h.tables)} tables, {paths[0]} has {len(first.tables)}",
                path=p,
                where="header.tables",
                fix="compare systems on traces of one shape (same tables, rows and dims), "
                "or make separate reports",
            )
        for i, (a, b) in enumerate(zip(first.tables, h.tables, strict=True)):
            if (a.rows, a.dim) != (b.rows, b.dim):
                raise ConfigError(
                    f"table {i} ({b.name!r}) is {b.rows} x {b.dim} here but "
                    f"{a.rows} x {a.dim} in {paths[0]}",
                    path=p,
                    where=f"table {i}",
                    fix="compare systems on traces of one shape, or make separate reports",
                )


def _energy_model(run: SystemRun) -> str:
    return "simrec.energy (" + ", ".join(run.energy.estimators) + ")"


def build_report(runs: list[SystemRun], baseline: str | None = None) -> Report:
    """Build the tables of a comparison (see the module docstring)."""
    if not runs:
        raise ConfigError("nothing to report", where="--hw", fix="give at least one --hw")
    names = list(dict.fromkeys(r.spec.name for r in runs))
    if len({(r.spec.name, r.trace) for r in runs}) != len(runs):
        raise ConfigError(
            "two systems have the same name",
            where="--hw",
            fix="give each --hw a distinct name with NAME=SPEC",
        )
    base = baseline or names[0]
    if base not in names:
        raise ConfigError(
            f"baseline {base!r} is not one of the systems",
            where="--baseline",
            fix=closest(base, names),
        )
    traces = list(dict.fromkeys(r.trace for r in runs))
    rows: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    energy_rows: list[pd.DataFrame] = []
    util_rows: list[dict[str, Any]] = []
    by_key = {(r.trace, r.spec.name): r for r in runs}
    for r in runs:
        res, est = r.result, r.energy
        b = by_key.get((r.trace, base))
        if b is None:
            raise ConfigError(f"baseline {base!r} was not run on {r.trace}", where="--baseline")
        tmodel = r.model_name()
        emodel = _energy_model(r)
        row: dict[str, Any] = {
            "trace": Path(r.trace).name,
            "system": r.spec.name,
            "kind": res.kind,
            "planner": r.planner,
            "batches": res.batches,
            "samples": res.samples,
            "lookups": res.lookups,
        }
        m: list[tuple[str, float, str, str]] = [
            ("sim_time_s", res.sim_time_s, "s", tmodel),
            ("samples_per_s", res.samples_per_s, "samples/s", tmodel),
            ("lookups_per_s", res.lookups_per_s, "lookups/s", tmodel),
        ]
        for q in ("mean", "p50", "p95", "p99"):
            m.append((f"latency_{q}_s", res.latency_s[q], "s", tmodel))
        for k, v in res.breakdown_s.items():
            m.append(
                (f"stage_{k}_s_per_sample", v / res.samples if res.samples else 0.0, "s", tmodel)
            )
        m += [
            ("device_j_per_sample", est.device_j_per_sample, "J/sample", emodel),
            ("server_j_per_sample", est.server_j_per_sample, "J/sample", emodel),
            ("server_power_w", est.server_power_w, "W", emodel),
            ("cost", r.cost, "cost", r.cost_model),
            (
                "speedup",
                res.samples_per_s / b.result.samples_per_s if b.result.samples_per_s else math.nan,
                "x",
                f"samples/s ratio vs {base} ({tmodel})",
            ),
            (
                "energy_efficiency_device",
                b.energy.device_j_per_sample / est.device_j_per_sample
                if est.device_j_per_sample
                else math.nan,
                "x",
                f"J/sample ratio {base} / system, device-only ({emodel})",
            ),
            (
                "energy_efficiency_server",
                b.energy.server_j_per_sample / est.server_j_per_sample
                if est.server_j_per_sample
                else math.nan,
                "x",
                f"J/sample ratio {base} / system, whole server ({emodel})",
            ),
        ]
        for name, value, unit, model in m:
            row[name] = float(value)
            metrics.append(
                {
                    "trace": row["trace"],
                    "system": r.spec.name,
                    "metric": name,
                    "value": float(value),
                    "unit": unit,
                    "model": model,
                }
            )
        row["timing_model"] = tmodel
        row["energy_model"] = emodel
        row["cost_model"] = r.cost_model
        rows.append(row)
        e = est.rows.copy()
        e.insert(0, "system", r.spec.name)
        e.insert(0, "trace", row["trace"])
        energy_rows.append(e)
        for comp, u in res.utilisation.items():
            util_rows.append(
                {
                    "trace": row["trace"],
                    "system": r.spec.name,
                    "component": comp,
                    "utilisation": float(u),
                    "model": tmodel,
                }
            )
    return Report(
        summary=pd.DataFrame(rows),
        metrics=pd.DataFrame(metrics),
        energy=pd.concat(energy_rows, ignore_index=True),
        utilisation=pd.DataFrame(util_rows),
        baseline=base,
        traces=traces,
        meta={"excluded": {r.spec.name: r.energy.excluded for r in runs}},
    )


def report_json(rep: Report) -> dict[str, Any]:
    """The JSON object of ``report.json``."""
    return jsonable(
        {
            "baseline": rep.baseline,
            "traces": [Path(t).name for t in rep.traces],
            "systems": rep.summary.to_dict(orient="records"),
            "metrics": rep.metrics.to_dict(orient="records"),
            "energy": rep.energy.to_dict(orient="records"),
            "utilisation": rep.utilisation.to_dict(orient="records"),
            "excluded": rep.meta.get("excluded", {}),
        }
    )


def write_report(rep: Report, out_dir: str | Path, title: str = "simrec report") -> list[Path]:
    """Write report.json, report.csv, report.parquet and report.html under ``out_dir``."""
    from simrec.report.html import render_report_html

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = [d / "report.json", d / "report.csv", d / "report.parquet", d / "report.html"]
    with atomic_output(paths[0]) as tmp:
        tmp.write_text(json.dumps(report_json(rep), indent=2, sort_keys=True) + "\n")
    with atomic_output(paths[1]) as tmp:
        rep.metrics.to_csv(tmp, index=False)
    with atomic_output(paths[2]) as tmp:
        rep.metrics.to_parquet(tmp, index=False)
    html = render_report_html(rep, title)
    with atomic_output(paths[3]) as tmp:
        tmp.write_text(html)
    return paths
