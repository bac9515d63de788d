"""``simrec validate --measure``: measured vs predicted embedding-bag time on held-out workloads.

For a CPU preset every workload of :func:`simrec.calibrate.heldout.cpu_heldout` is run on this
machine (the embedding-bag implementation and thread count the preset was calibrated with) and
predicted by :class:`~simrec.sim.systems.cpu_dram.CpuDramSystem` built from the preset; for a GPU
preset the held-out times come from a GPU probe run (``--probe-json``, or the probe stored in the
preset's JSON record, or a live probe when this machine has a CUDA GPU) and are predicted by
:class:`~simrec.sim.systems.multi_gpu.MultiGpuSystem` with one GPU of the preset.

The result (JSON contract): ``workloads``: list of ``{name, measured_s, predicted_s, error,
...}`` with ``error = predicted / measured - 1``, and ``geomean_abs_error`` = the geometric mean of
``|error|`` (each floored at 1e-4).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from simrec.calibrate.heldout import Workload, cpu_heldout
from simrec.errors import SimrecError, atomic_output
from simrec.util import jsonable

__all__ = ["run_measure_validation", "summarise", "load_record"]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Add ``error`` to each row and return ``{"workloads", "geomean_abs_error",
    "max_abs_error"}``."""
    for r in rows:
        r["error"] = r["predicted_s"] / r["measured_s"] - 1.0
    errs = np.array([max(abs(r["error"]), 1e-4) for r in rows])
    return {
        "workloads": rows,
        "geomean_abs_error": float(np.exp(np.mean(np.log(errs)))) if len(errs) else math.nan,
        "max_abs_error": float(errs.max()) if len(errs) else math.nan,
    }


def load_record(hw_path: str | Path) -> dict[str, Any] | None:
    """The JSON record beside a measured preset (``NAME.calib.json``), or None."""
    from simrec.calibrate.preset import record_path

    p = record_path(hw_path)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise SimrecError(
            f"the calibration record is not valid JSON ({e})",
            path=p,
            fix="re-run simrec calibrate to rewrite it",
        ) from None


def _gpu_rows(hw: Any, probe: dict[str, Any], say: Callable[[str], None]) -> list[dict[str, Any]]:
    from simrec.calibrate.fit import predict_gpu
    from simrec.calibrate.whatif import cache_hit_estimate

    l2 = float(probe.get("machine", {}).get("l2_bytes") or 50e6)

    def key(w: Workload) -> tuple[int, int, int, int, str]:
        return (w.rows, w.dim, w.pooling, w.batch, w.dist)

    calib = {key(Workload.from_dict(m["workload"])) for m in probe.get("calibration", [])}
    rows = []
    for m in probe.get("heldout", []):
        w = Workload.from_dict(m["workload"])
        if key(w) in calib:  # identical to a calibration run: not held out
            say(f"{w.name}: skipped, it is one of the calibration runs")
            continue
        pred = predict_gpu(hw, w)
        rows.append(
            {
                "name": w.name,
                "measured_s": float(m["median_s"]),
                "predicted_s": pred,
                "spread": float(m["spread"]),
                "workload": w.to_dict(),
                "unique_rows": m.get("unique_rows"),
                "cache_hit_estimate": cache_hit_estimate(w, l2),
            }
        )
        say(f"{w.name}: measured {m['median_s'] * 1e3:.4f} ms, predicted {pred * 1e3:.4f} ms")
    if not rows:
        raise SimrecError(
            "the GPU probe data has no held-out runs",
            where="heldout",
            fix="run python3 -m simrec.calibrate.gpu_probe (without --quick for the full set)",
        )
    return rows


def _cpu_rows(
    hw: Any,
    workloads: list[Workload],
    impl: str,
    threads: int,
    reps: int,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    from simrec.calibrate.bench_cpu import EmbeddingRunner, measure_workload
    from simrec.calibrate.fit import predict_detail
    from simrec.calibrate.whatif import cache_hit_estimate
    from simrec.sim.systems.cpu_dram import CpuDramSystem

    system = CpuDramSystem.from_hw(hw)
    llc = float(max(d.llc_size for d in hw.devices_of_kind("cpu").values()))
    runner = EmbeddingRunner(impl, threads)
    rows = []
    try:
        for w in workloads:
            m = measure_workload(runner, w, reps)
            meas = m.median_s / m.work
            pred, parts = predict_detail(system, w)
            hit = cache_hit_estimate(w, llc)
            # what-if (diagnostic): the DRAM reads thinned by the rows an LLC would hold
            whatif = max(
                parts.get("embedding_pool", 0.0), parts.get("embedding_dram", 0.0) * (1 - hit)
            )
            rows.append(
                {
                    "name": w.name,
                    "measured_s": meas,
                    "predicted_s": pred,
                    "spread": m.spread,
                    "times_s": m.times_s,
                    "workload": w.to_dict(),
                    "unique_rows": m.params["unique"],
                    "cache_hit_estimate": hit,
                    "predicted_pool_s": parts.get("embedding_pool"),
                    "predicted_dram_s": parts.get("embedding_dram"),
                    "whatif_llc_s": whatif,
                }
            )
            say(
                f"{w.name}: measured {meas * 1e3:.4f} ms, predicted {pred * 1e3:.4f} ms "
                f"({pred / meas - 1:+.1%}, spread {m.spread:.1%})"
            )
    finally:
        runner.close()
    return rows


def run_measure_validation(
    hw_path: str | Path,
    *,
    quick: bool = False,
    probe_json: str | Path | None = None,
    impl: str | None = None,
    threads: int | None = None,
    reps: int | None = None,
    workloads: list[Workload] | None = None,
    record: bool = False,
    json_out: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure the held-out workloads, predict them with the preset ``hw_path``, report errors.

    Args:
        hw_path: a hardware YAML (a measured preset, or any cpu_dram / multi_gpu config).
        quick: the small CI set (CPU: 4 workloads on tables <= 64 MiB).
        probe_json: GPU presets: a ``gpu_probe`` output to take the measured times from.
        impl: CPU embedding-bag implementation (``torch``/``numba``; default: the one the
            preset was calibrated with, else numba).
        threads: CPU threads (default: the preset's cores).
        reps: repetitions per workload (default 5, quick 3).
        workloads: override the held-out set (CPU).
        record: write the result into the preset (``validated: true``, ``validation.error``,
            the table as comments) and its JSON record; needs the preset's ``.calib.json``.
        json_out: also write the result there (atomically).
        log: progress callback (one line per workload).

    Returns the JSON-able result (module docstring); raises :class:`SimrecError` on bad input.
    """
    from simrec.calibrate.bench_cpu import machine_info, torch_available
    from simrec.hw import load_hw

    say = log or (lambda s: None)
    hw = load_hw(hw_path)
    rec = load_record(hw_path)
    date = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if hw.devices_of_kind("gpu"):
        probe = None
        if probe_json is not None:
            try:
                probe = json.loads(Path(probe_json).read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise SimrecError(
                    f"cannot read the GPU probe output ({e})",
                    path=probe_json,
                    fix="give the JSON written by python3 -m simrec.calibrate.gpu_probe --out",
                ) from None
        elif rec is not None and rec.get("probe"):
            probe = rec["probe"]
        else:
            from simrec.calibrate.gpu_probe import gpu_available
            from simrec.calibrate.gpu_probe import probe as run_probe

            ok, why = gpu_available()
            if not ok:
                raise SimrecError(
                    f"{why}, and no GPU measurements were given for this GPU preset",
                    path=hw_path,
                    where="--measure",
                    fix="run on a machine with an NVIDIA GPU and a CUDA build of PyTorch, or "
                    "pass --probe-json with the output of python3 -m simrec.calibrate.gpu_probe",
                )
            probe = run_probe("cuda", quick, log=say)
        rows = _gpu_rows(hw, probe, say)
        out = summarise(rows)
        out.update(
            device="cuda",
            machine=probe.get("machine", {}),
            date_utc=probe.get("machine", {}).get("date_utc", date),
            impl="torch.nn.functional.embedding_bag (CUDA)",
            model="simrec.sim.systems.multi_gpu.MultiGpuSystem (one GPU)",
        )
    else:
        if not hw.devices_of_kind("cpu"):
            raise SimrecError(
                f"system {hw.name!r} has neither a gpu nor a cpu device",
                path=hw_path,
                where="devices",
                fix="validate a cpu_dram or multi_gpu preset",
            )
        bench = (rec or {}).get("benchmarks") or {}
        impl = impl or bench.get("impl") or "numba"
        if impl == "torch" and not torch_available():
            raise SimrecError(
                "PyTorch is not installed but the preset was calibrated with torch's embedding_bag",
                where="--impl",
                fix="pip install torch==2.13.0, or pass --impl numba (and calibrate with it)",
            )
        cores = sum(d.cores for d in hw.devices_of_kind("cpu").values())
        threads = threads or cores
        reps = reps or (3 if quick else 5)
        wls = workloads or cpu_heldout(quick)
        info = machine_info()
        rows = _cpu_rows(hw, wls, impl, threads, reps, say)
        info["loadavg_after"] = machine_info()["loadavg"]
        out = summarise(rows)
        wi = np.array([max(abs(r["whatif_llc_s"] / r["measured_s"] - 1), 1e-4) for r in rows])
        out["whatif_llc_geomean_abs_error"] = float(np.exp(np.mean(np.log(wi))))
        out.update(
            device="cpu",
            machine=info,
            date_utc=date,
            impl=impl,
            threads=threads,
            reps=reps,
            model="simrec.sim.systems.cpu_dram.CpuDramSystem",
        )
    out.update(hw=str(hw_path), quick=quick, kind="simrec-validation")
    out["noisy_workloads"] = [r["name"] for r in out["workloads"] if r.get("spread", 0) > 0.25]
    if out["noisy_workloads"]:
        say(
            f"warning: {len(out['noisy_workloads'])} workloads varied by more than 25 % across "
            "repetitions; their errors include that noise (run on an idle machine)"
        )
    if record:
        _record(hw_path, rec, out)
    if json_out is not None:
        with atomic_output(json_out) as tmp:
            Path(tmp).write_text(json.dumps(jsonable(out), indent=1, allow_nan=False) + "\n")
    return out


def _record(hw_path: str | Path, rec: dict[str, Any] | None, result: dict[str, Any]) -> None:
    from simrec.calibrate.fit import CpuFit, GpuFit
    from simrec.calibrate.preset import write_cpu_preset, write_gpu_preset

    if rec is None:
        from simrec.calibrate.preset import record_path

        raise SimrecError(
            "--record needs the calibration record beside the preset, which is missing",
            path=record_path(hw_path),
            fix="record only into presets written by simrec calibrate (or drop --record)",
        )
    v = jsonable(result)
    if rec["device"] == "cpu":
        fit = CpuFit(**{**rec["fit"], "residuals": rec["residuals"]})
        write_cpu_preset(hw_path, rec["benchmarks"], fit, validation=v)
    else:
        f = dict(rec["fit"])
        f["gather_efficiency"] = [tuple(x) for x in f["gather_efficiency"]]
        fit = GpuFit(**{**f, "residuals": rec["residuals"]})
        write_gpu_preset(hw_path, rec["probe"], fit, validation=v, source=rec.get("source"))
