"""Run a sweep: every point simulated, priced and written at once; resumable; Pareto front marked.

* Each finished point is written immediately (atomically) as ``<out>.points/<point_id>.json``;
  a rerun skips the points whose file exists, so an interrupted sweep loses no finished point.
* Points run in-process (``workers=1``), in a local process pool (``workers>1``, default: the CPU
  count), or on a Dask cluster (``scheduler="tcp://host:port"``); a rich progress bar shows
  progress when the output is a terminal (or ``progress=True``).
* The result is a tidy DataFrame, one row per point: the point's system, trace, planner and one
  column per swept parameter, then throughput, latency, energy per sample (device and server),
  power, cost, the models that produced them, ``status``/``error``, and ``pareto``: whether the
  point is on the Pareto front of (max samples/s, min server J/sample, min cost) among the ok
  points of its trace.

A point whose simulation raises a :class:`~simrec.errors.SimrecError` (a table that does not fit,
say) is recorded with ``status="error"`` and the message, and is never on the front.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simrec.errors import ConfigError, SimrecError, atomic_output
from simrec.explore.spec import Point, SweepSpec, expand_points

__all__ = [
    "run_point",
    "run_sweep",
    "pareto_mask",
    "points_dir",
    "combine",
    "read_results",
]


def points_dir(out: str | Path) -> Path:
    """The folder of per-point files next to the output: ``results.parquet.points/``."""
    o = Path(out)
    return o.with_name(o.name + ".points")


def run_point(p: Point) -> dict[str, Any]:
    """Simulate one point; returns its row (a plain dict; never raises a SimrecError)."""
    from simrec.hw import loads_hw
    from simrec.report.systems import SystemSpec, parse_system, run_system
    from simrec.sim.results import LoadSpec, QuerySizes

    row: dict[str, Any] = {
        "point_id": p.point_id,
        "system": p.system,
        "trace": Path(p.trace).name,
        "planner": p.planner,
    }
    row.update({f"param:{k}": v for k, v in p.params})
    try:
        params = dict(p.params)
        if p.kind == "screc":
            spec = parse_system(p.system_arg, p.system)
            spec.screc.update({k[6:]: v for k, v in params.items() if k.startswith("screc.")})
            spec.name = p.system
        else:
            cfg = loads_hw(p.hw_yaml or "", f"{p.system_arg} with {dict(p.params)}")
            screc = {k[6:]: v for k, v in params.items() if k.startswith("screc.")}
            spec = SystemSpec(p.system, "hw", cfg, screc, p.system_arg)
        run = run_system(
            spec,
            p.trace,
            planner=p.planner,
            mode=p.mode,
            model=p.model,
            load=LoadSpec(
                max_batches=p.max_batches,
                inflight=int(params.get("load.inflight", 1)),
                query_sizes=QuerySizes("fixed", size=int(params["load.query_size"]))
                if "load.query_size" in params
                else None,
            ),
            prices=dict(p.prices) if p.prices else None,
        )
        r, e = run.result, run.energy
        row.update(
            {
                "kind": r.kind,
                "status": "ok",
                "error": "",
                "samples": r.samples,
                "lookups": r.lookups,
                "sim_time_s": r.sim_time_s,
                "samples_per_s": r.samples_per_s,
                "lookups_per_s": r.lookups_per_s,
                "latency_p50_s": r.latency_s["p50"],
                "latency_p99_s": r.latency_s["p99"],
                "device_j_per_sample": e.device_j_per_sample,
                "server_j_per_sample": e.server_j_per_sample,
                "server_power_w": e.server_power_w,
                "cost": run.cost,
                "timing_model": run.model_name(),
                "energy_model": "simrec.energy (" + ", ".join(e.estimators) + ")",
                "cost_model": run.cost_model,
            }
        )
    except SimrecError as e:
        row.update({"kind": "", "status": "error", "error": str(e)})
    return row


def _write_point(d: Path, row: dict[str, Any]) -> None:
    with atomic_output(d / f"{row['point_id']}.json") as tmp:
        tmp.write_text(json.dumps(row, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def _read_point(f: Path) -> dict[str, Any] | None:
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return None


def pareto_mask(speed: np.ndarray, energy: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """True where no other point is at least as good on all three (max speed, min energy, min
    cost) and strictly better on one."""
    s, e, c = (np.asarray(a, dtype=np.float64) for a in (speed, energy, cost))
    n = len(s)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        ge = (s >= s[i]) & (e <= e[i]) & (c <= c[i])
        gt = (s > s[i]) | (e < e[i]) | (c < c[i])
        keep[i] = not np.any(ge & gt)
    return keep


_ORDER = ["point_id", "system", "kind", "trace", "planner"]
_METRICS = [
    "status",
    "samples_per_s",
    "server_j_per_sample",
    "device_j_per_sample",
    "cost",
    "lookups_per_s",
    "latency_p50_s",
    "latency_p99_s",
    "server_power_w",
    "sim_time_s",
    "samples",
    "lookups",
    "timing_model",
    "energy_model",
    "cost_model",
    "error",
]


def combine(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The tidy results table of the rows (in the given order), with ``pareto`` marked."""
    df = pd.DataFrame(rows)
    params = sorted(c for c in df.columns if c.startswith("param:"))
    for c in _METRICS:
        if c not in df.columns:
            df[c] = np.nan if c not in ("status", "error") else ""
    rest = [c for c in df.columns if c not in _ORDER + _METRICS and c not in params]
    df = df[[c for c in _ORDER if c in df.columns] + params + _METRICS + rest]
    for c in params:  # mixed value types (e.g. 8 and "8 GB/s") are kept as text
        if df[c].map(type).nunique() > 1:
            df[c] = df[c].astype(str)
    df["pareto"] = False
    ok = df["status"] == "ok"
    for _trace, idx in df[ok].groupby("trace").groups.items():
        sub = df.loc[idx]
        m = pareto_mask(sub.samples_per_s, sub.server_j_per_sample, sub.cost)
        df.loc[idx[m], "pareto"] = True
    return df.reset_index(drop=True)


def _progress(total: int, enabled: bool) -> tuple[Callable[[], None], Callable[[], None]]:
    if not enabled:
        return (lambda: None), (lambda: None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    prog = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    task = prog.add_task("sweep", total=total)
    prog.start()
    return (lambda: prog.advance(task)), prog.stop


def _run_local(points: list[Point], workers: int, on_row: Callable[[dict], None]) -> None:
    if workers <= 1:
        for p in points:
            on_row(run_point(p))
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers) as ex:
        futs = [ex.submit(run_point, p) for p in points]
        for f in as_completed(futs):
            on_row(f.result())


def _run_dask(
    points: list[Point], address: str, on_row: Callable[[dict], None], timeout_s: float
) -> None:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ConfigError(
            "--scheduler needs dask.distributed, which is not installed",
            where="--scheduler",
            fix="pip install 'dask[distributed]' (or drop --scheduler to run locally)",
        ) from None
    try:
        client = Client(address, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError, ValueError) as e:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address!r}: {e}",
            where="--scheduler",
            fix="start one (dask scheduler; dask worker ADDRESS) and give its tcp://host:port, "
            "or drop --scheduler to run in a local process pool",
        ) from None
    try:
        futs = client.map(run_point, points, pure=False)
        for f in as_completed(futs):
            on_row(f.result())
    finally:
        client.close()


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool | None = None,
    scheduler_timeout_s: float = 10.0,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Run (or resume) the sweep and write ``out`` (Parquet); returns (table, counts)."""
    o = Path(out)
    d = points_dir(o)
    d.mkdir(parents=True, exist_ok=True)
    points = expand_points(spec)
    done: dict[str, dict[str, Any]] = {}
    todo: list[Point] = []
    for p in points:
        row = _read_point(d / f"{p.point_id}.json") if (d / f"{p.point_id}.json").exists() else None
        if row is not None:
            done[p.point_id] = row
        else:
            todo.append(p)
    skipped = len(done)
    show = progress if progress is not None else os.isatty(2)
    advance, stop = _progress(len(todo), show and bool(todo))

    def on_row(row: dict[str, Any]) -> None:
        _write_point(d, row)
        done[row["point_id"]] = row
        advance()

    try:
        if scheduler:
            _run_dask(todo, scheduler, on_row, scheduler_timeout_s)
        else:
            _run_local(todo, workers or os.cpu_count() or 1, on_row)
    finally:
        stop()
    df = combine([done[p.point_id] for p in points])
    o.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(o) as tmp:
        df.to_parquet(tmp, index=False)
    counts = {
        "points": len(points),
        "run": len(todo),
        "skipped": skipped,
        "errors": int((df["status"] != "ok").sum()),
        "pareto": int(df["pareto"].sum()),
    }
    return df, counts


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a sweep's results.parquet (checks it is one)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("sweep results not found", path=p, fix="run `simrec sweep` first")
    try:
        df = pd.read_parquet(p)
    except Exception as e:  # pyarrow raises several types for a non-Parquet file
        raise ConfigError(
            f"not a Parquet file: {e}", path=p, fix="give the -o file of simrec sweep"
        ) from None
    need = {"system", "trace", "samples_per_s", "server_j_per_sample", "cost", "pareto"}
    missing = sorted(need - set(df.columns))
    if missing:
        raise ConfigError(
            f"not a sweep result (no {', '.join(missing)} column)",
            path=p,
            fix="give the -o file of simrec sweep",
        )
    return df
