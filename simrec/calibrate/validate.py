"""``simrec validate --measure``: measured vs predicted embedding-bag time on held-out workloads.

For a CPU preset every workload of :func:`simrec.calibrate.heldout.cpu_heldout` (its tables
sized from this machine's LLC) is run on this machine (the embedding-bag implementation and thread count the preset was calibrated with), or its
time is taken from a CPU probe run (``--probe-json``, or the probe stored in the preset's JSON
record; the probe's own held-out set is used, as it ran), and predicted by :class:`~simrec.sim.systems.cpu_dram.CpuDramSystem` built from the
preset, in the warm state of the measurement (:func:`simrec.calibrate.cpufit.steady_detail`); for a GPU
preset the held-out times come from a GPU probe run (``--probe-json``, or the probe stored in the
preset's JSON record, or a live probe when this machine has a CUDA GPU) and are predicted by
:class:`~simrec.sim.systems.multi_gpu.MultiGpuSystem` with one GPU of the preset.

The result (JSON contract): ``workloads``: list of ``{name, measured_s, predicted_s, error,
...}`` with ``error = predicted / measured - 1``, and ``geomean_abs_error`` = the geometric mean of
``|error|`` (each floored at 1e-4). A CPU result from a probe with drift sentinels also has
``drift`` (:func:`probe_drift`: ``points`` with ``name``, ``calibration_s``, ``end_s``,
``difference``; ``geomean_abs_difference``; ``threshold``), and with ``--repeat-probe``
``repeat`` (:func:`repeat_difference`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from simrec.calibrate.heldout import Workload, cpu_heldout_set_for, heldout_key
from simrec.errors import SimrecError, atomic_output, read_json
from simrec.util import jsonable

__all__ = [
    "run_measure_validation",
    "summarise",
    "load_record",
    "check_cpu_probe",
    "read_cpu_probe",
    "CPU_PROBE_KIND",
]


def record_path_of(hw_path: str | Path) -> Path:
    from simrec.calibrate.preset import record_path

    return record_path(hw_path)


def geomean_abs(xs: list[float]) -> float:
    """Geometric mean of ``|x|`` (each floored at 1e-4 so that a zero does not zero it); NaN
    for no values."""
    a = np.array([max(abs(float(x)), 1e-4) for x in xs])
    return float(np.exp(np.mean(np.log(a)))) if len(a) else math.nan


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Add ``error`` to each row and return ``{"workloads", "geomean_abs_error",
    "max_abs_error"}``."""
    for r in rows:
        r["error"] = r["predicted_s"] / r["measured_s"] - 1.0
    errs = [r["error"] for r in rows]
    return {
        "workloads": rows,
        "geomean_abs_error": geomean_abs(errs),
        "max_abs_error": max((max(abs(e), 1e-4) for e in errs), default=math.nan),
    }


def repeat_difference(
    rows: list[dict[str, Any]],
    repeat: dict[str, Any],
    impl: str,
    threads: int,
    path: Any,
    which: str = "v2",
) -> dict[str, Any]:
    """How much a second CPU probe's held-out measurements differ from the validated ones
    (``rows``): per workload ``difference = repeat / measured - 1`` and its geomean of absolute
    values, the machine's own run-to-run floor against which a model error is read."""
    other = _probe_heldout(repeat, impl, threads, path, which)
    ws = []
    for r in rows:
        m = other.get(r["name"])
        if m is None:
            continue
        rep_s = float(m["median_s"]) / float(m["work"])
        ws.append(
            {
                "name": r["name"],
                "measured_s": r["measured_s"],
                "repeat_s": rep_s,
                "difference": rep_s / r["measured_s"] - 1.0,
            }
        )
    if not ws:
        raise SimrecError(
            "the repeat probe ran none of the validated held-out workloads",
            path=path,
            where="heldout",
            fix="give a probe of the same simrec version and machine (same held-out set)",
        )
    return {
        "probe": str(path),
        "date_utc": repeat.get("machine", {}).get("date_utc"),
        "workloads": ws,
        "geomean_abs_difference": geomean_abs([w["difference"] for w in ws]),
    }


#: a drift (geomean |difference| of the sentinels) above this gets a warning
DRIFT_WARN = 0.10


def probe_drift(probe: dict[str, Any]) -> dict[str, Any] | None:
    """How far a CPU probe's machine moved between its calibration and the end of its held-out
    runs: each drift sentinel (``probe["drift"]``) against the calibration point of the same
    name, ``difference = end / calibration - 1``, and the geomean of the absolute values.
    None for probes without sentinels (before 2026-12-03's sixth session)."""
    cal = {m["name"]: m for m in probe.get("calibration", {}).get("measurements", [])}
    pts = []
    for m in probe.get("drift") or []:
        c = cal.get(m["name"])
        if c is None:
            continue
        a = float(c["median_s"]) / float(c["work"])
        b = float(m["median_s"]) / float(m["work"])
        pts.append({"name": m["name"], "calibration_s": a, "end_s": b, "difference": b / a - 1})
    if not pts:
        return None
    return {
        "points": pts,
        "geomean_abs_difference": geomean_abs([p["difference"] for p in pts]),
        "threshold": DRIFT_WARN,
    }


def load_record(hw_path: str | Path) -> dict[str, Any] | None:
    """The JSON record beside a measured preset (``NAME.calib.json``), or None."""
    from simrec.calibrate.preset import record_path

    p = record_path(hw_path)
    if not p.is_file():
        return None
    return read_json(p, "the calibration record", "re-run simrec calibrate to rewrite it")


def _gpu_rows(hw: Any, probe: dict[str, Any], say: Callable[[str], None]) -> list[dict[str, Any]]:
    from simrec.calibrate.fit import l2_warm_hits, predict_gpu_detail

    gp = hw.gpu_params(next(iter(hw.devices_of_kind("gpu"))))
    l2 = float(gp.l2_bytes or probe.get("machine", {}).get("l2_bytes") or 50e6)

    def key(w: Workload) -> tuple[int, int, int, int, str]:
        return (w.rows, w.dim, w.pooling, w.batch, w.dist)

    calib = {key(Workload.from_dict(m["workload"])) for m in probe.get("calibration", [])}
    rows = []
    for m in probe.get("heldout", []):
        w = Workload.from_dict(m["workload"])
        if key(w) in calib:  # identical to a calibration run: not held out
            say(f"{w.name}: skipped, it is one of the calibration runs")
            continue
        pred, counters = predict_gpu_detail(hw, w)
        # the share of lookups the simulator's L2 (LRU, warm) serves; when the preset does not
        # model the L2, the same LRU with the preset's L2 size (what it would serve)
        hits = counters.get("l2_hit_lookups")
        if hits is None:
            hits = l2_warm_hits(w, l2)
        rows.append(
            {
                "name": w.name,
                "measured_s": float(m["median_s"]),
                "predicted_s": pred,
                "spread": float(m["spread"]),
                "workload": w.to_dict(),
                "unique_rows": m.get("unique_rows"),
                "cache_hit_estimate": float(hits) / w.lookups,
                "l2_modelled": bool(gp.l2_modelled),
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


CPU_PROBE_KIND = "simrec-cpu-probe"
_MEAS_KEYS = ("name", "unit", "work", "times_s", "median_s", "spread", "params")


def check_cpu_probe(probe: Any, path: str | Path | None = None) -> dict[str, Any]:
    """Check the structure of a ``python3 -m simrec.calibrate.cpu_probe`` output; returns it.

    Raises :class:`SimrecError` naming what is missing (another tool's JSON, a truncated or
    hand-edited file)."""
    fix = "give the JSON written by python3 -m simrec.calibrate.cpu_probe --out (re-run it)"
    if not isinstance(probe, dict) or probe.get("kind") != CPU_PROBE_KIND:
        kind = probe.get("kind") if isinstance(probe, dict) else type(probe).__name__
        raise SimrecError(
            f"not a CPU probe output (kind {kind!r}, expected {CPU_PROBE_KIND!r})",
            path=path,
            fix=fix,
        )
    cal = probe.get("calibration")
    if not isinstance(cal, dict) or cal.get("kind") != "simrec-cpu-calibration":
        raise SimrecError(
            "the CPU probe output has no calibration measurements",
            path=path,
            where="calibration",
            fix=fix,
        )
    for part, ms in (("calibration.measurements", cal.get("measurements")),
                     ("heldout", probe.get("heldout"))):  # fmt: skip
        if not isinstance(ms, list) or not ms:
            raise SimrecError(f"the CPU probe output has no {part}", path=path, where=part, fix=fix)
        for i, m in enumerate(ms):
            miss = [k for k in _MEAS_KEYS if not isinstance(m, dict) or k not in m]
            if miss:
                raise SimrecError(
                    f"measurement {i} of {part} lacks {', '.join(miss)}",
                    path=path,
                    where=f"{part}[{i}]",
                    fix=fix,
                )
    for k in ("machine", "threads", "impl"):
        if k not in cal:
            raise SimrecError(
                f"the CPU probe's calibration part lacks {k!r}",
                path=path,
                where=f"calibration.{k}",
                fix=fix,
            )
    return probe


def read_cpu_probe(path: str | Path) -> dict[str, Any]:
    """Read and check a CPU probe JSON (:func:`check_cpu_probe`)."""
    probe = read_json(
        path,
        "the CPU probe output",
        "give the path of the JSON written by python3 -m simrec.calibrate.cpu_probe",
        "copy the whole file again, or re-run python3 -m simrec.calibrate.cpu_probe",
    )
    return check_cpu_probe(probe, path)


def _probe_heldout(
    probe: dict[str, Any], impl: str, threads: int, path: str | Path | None, which: str = "v2"
) -> dict[str, dict[str, Any]]:
    """Held-out measurements of set ``which`` (v2: the probe's ``heldout``, v3: its
    ``heldout_v3``) of ``impl`` on ``threads`` threads, by workload name."""
    key = heldout_key(which)
    if which != "v2" and not probe.get(key):
        raise SimrecError(
            f"the CPU probe has no runs of held-out set {which} ({key!r} is missing or empty)",
            path=path,
            where=key,
            fix="re-run python3 -m simrec.calibrate.cpu_probe of this simrec version (probes "
            "before 2026-12-04 measured set v2 only), or validate with --heldout v2",
        )
    out = {}
    for m in probe[key]:
        q = m["params"]
        if q.get("impl") == impl and int(q.get("threads", -1)) == threads:
            out[q["workload"]["name"]] = m
    if not out:
        have = sorted({(m["params"].get("impl"), m["params"].get("threads")) for m in probe[key]})
        raise SimrecError(
            f"the CPU probe has no held-out runs of {impl} on {threads} threads (it has {have})",
            path=path,
            where=key,
            fix="validate the preset fitted from this probe, or pass --impl/--threads as measured",
        )
    return out


def _cpu_rows(
    hw: Any,
    workloads: list[Workload],
    impl: str,
    threads: int,
    reps: int,
    say: Callable[[str], None],
    measured: dict[str, dict[str, Any]] | None = None,
    quick: bool = False,
    pages: str = "huge",
) -> list[dict[str, Any]]:
    """Measure (or take from ``measured``, a probe's held-out runs by name) and predict each
    workload; the prediction is the simulator's own (:func:`simrec.calibrate.fit.predict_detail`,
    warm state)."""
    from simrec.calibrate.bench_cpu import (
        EmbeddingRunner,
        Measurement,
        measure_workload,
        min_rep_s,
    )
    from simrec.calibrate.fit import predict_detail
    from simrec.calibrate.whatif import cache_hit_estimate
    from simrec.sim.systems.cpu_dram import CpuDramSystem

    system = CpuDramSystem.from_hw(hw)
    llc = float(max(d.llc_size for d in hw.devices_of_kind("cpu").values()))
    runner = EmbeddingRunner(impl, threads) if measured is None else None
    rows = []
    try:
        for w in workloads:
            if runner is not None:
                m = measure_workload(runner, w, reps, min_rep_s(quick), pages)
            else:
                if w.name not in measured:
                    say(f"{w.name}: not in the probe's held-out runs, skipped")
                    continue
                m = Measurement.from_dict(measured[w.name])
                mw = Workload.from_dict(m.params["workload"])
                if mw != w:
                    raise SimrecError(
                        f"the probe's held-out workload {w.name!r} differs from simrec's "
                        f"({mw} vs {w})",
                        where="heldout",
                        fix="run the probe of this simrec version",
                    )
            meas = m.median_s / m.work
            pred, parts = predict_detail(system, w)
            hit = cache_hit_estimate(w, llc)
            rows.append(
                {
                    "name": w.name,
                    "measured_s": meas,
                    "predicted_s": pred,
                    "spread": m.spread,
                    "times_s": m.times_s,
                    "workload": w.to_dict(),
                    "unique_rows": m.params.get("unique"),
                    "cache_hit_estimate": hit,
                    "predicted_pool_s": parts.get("embedding_pool"),
                    "predicted_dram_s": parts.get("embedding_dram"),
                    "predicted_llc_s": parts.get("embedding_llc"),
                    "predicted_overhead_s": parts.get("embedding_overhead"),
                }
            )
            say(
                f"{w.name}: measured {meas * 1e3:.4f} ms, predicted {pred * 1e3:.4f} ms "
                f"({pred / meas - 1:+.1%}, spread {m.spread:.1%})"
            )
    finally:
        if runner is not None:
            runner.close()
    if not rows:
        raise SimrecError(
            "no held-out workload was measured", where="heldout", fix="check the probe output"
        )
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
    repeat_probe: str | Path | None = None,
    heldout: str = "v2",
) -> dict[str, Any]:
    """Measure the held-out workloads, predict them with the preset ``hw_path``, report errors.

    Args:
        hw_path: a hardware YAML (a measured preset, or any cpu_dram / multi_gpu config).
        quick: the small CI set (CPU: 4 workloads on tables <= 64 MiB).
        probe_json: a ``gpu_probe`` (GPU presets) or ``cpu_probe`` (CPU presets) output to
            take the measured held-out times from instead of measuring here (a CPU preset fitted
            from a probe finds it in its JSON record without this).
        impl: CPU embedding-bag implementation (``torch``/``numba``; default: the one the
            preset was calibrated with, else numba).
        threads: CPU threads (default: the preset's cores).
        reps: repetitions per workload (default :data:`~simrec.calibrate.bench_cpu.CPU_REPS`, quick 3).
        workloads: override the held-out set (CPU).
        record: write the result into the preset (``validated: true``, ``validation.error``,
            the table as comments) and its JSON record; needs the preset's ``.calib.json``.
        json_out: also write the result there (atomically).
        log: progress callback (one line per workload).
        repeat_probe: (CPU) a second ``cpu_probe`` output of the same machine: the result gets
            ``repeat`` (:func:`repeat_difference`), the run-to-run floor of the measurements.
        heldout: (CPU) the held-out set, ``v2`` (the default; the one presets record) or ``v3``
            (:func:`~simrec.calibrate.heldout.cpu_heldout_v3`: shapes fixed on 2026-12-04, blind
            to the model's development against v2); v3 cannot be ``record``-ed into a preset.

    Returns the JSON-able result (module docstring); raises :class:`SimrecError` on bad input.
    """
    from simrec.calibrate.bench_cpu import machine_info, torch_available
    from simrec.hw import load_hw

    say = log or (lambda s: None)
    hw = load_hw(hw_path)
    rec = load_record(hw_path)
    date = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if repeat_probe is not None and hw.devices_of_kind("gpu"):
        raise SimrecError(
            "--repeat-probe compares CPU probes; this preset is a GPU one",
            path=repeat_probe,
            where="the preset's devices",
            fix="validate a CPU preset, or compare two gpu_probe runs with --probe-json each",
        )
    heldout_key(heldout)  # an unknown set is refused before anything is read or measured
    if heldout != "v2" and (record or hw.devices_of_kind("gpu")):
        raise SimrecError(
            f"held-out set {heldout} is a CPU set that is reported, not recorded"
            + (": this preset is a GPU one" if hw.devices_of_kind("gpu") else ""),
            path=hw_path,
            where="--heldout",
            fix="validate a CPU preset without --record (--json-out keeps the result), or use "
            "--heldout v2",
        )
    if hw.devices_of_kind("gpu"):
        probe = None
        if probe_json is not None:
            probe = read_json(
                probe_json,
                "the GPU probe output",
                "give the JSON written by python3 -m simrec.calibrate.gpu_probe --out",
            )
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
        impl = impl or (rec or {}).get("fit", {}).get("impl") or bench.get("impl") or "numba"
        cores = sum(d.cores for d in hw.devices_of_kind("cpu").values())
        threads = threads or cores
        cprobe = None
        if probe_json is not None:
            cprobe = read_cpu_probe(probe_json)
        elif rec is not None and rec.get("probe"):
            cprobe = check_cpu_probe(rec["probe"], record_path_of(hw_path))
        if cprobe is None and impl == "torch" and not torch_available():
            raise SimrecError(
                "PyTorch is not installed but the preset was calibrated with torch's embedding_bag",
                where="--impl",
                fix="pip install torch==2.13.0, or pass --impl numba (and calibrate with it)",
            )
        if cprobe is not None:
            quick = bool(cprobe.get("quick", quick))
            reps = int(cprobe.get("reps") or 0)
            measured = _probe_heldout(
                cprobe, impl, threads, probe_json or record_path_of(hw_path), heldout
            )
            info = dict(cprobe["machine"])
        else:
            from simrec.calibrate.bench_cpu import CPU_QUICK_REPS, CPU_REPS

            reps = reps or (CPU_QUICK_REPS if quick else CPU_REPS)
            measured = None
            info = machine_info()
        if workloads:
            wls = workloads
        elif measured is not None:
            # the probe's own held-out set, in its order (its sizes follow the probed machine's
            # LLC, and older probes ran older versions of the set)
            wls = [Workload.from_dict(m["params"]["workload"]) for m in measured.values()]
        else:
            wls = cpu_heldout_set_for(info, heldout, quick)
        # measured here: the tables on the page backing the preset was calibrated on (records
        # before 2026-12-03 have none: numpy's buffers, which numpy advises onto huge pages)
        pages = str(bench.get("pages") or "huge")
        rows = _cpu_rows(hw, wls, impl, threads, reps, say, measured, quick, pages)
        if cprobe is None:
            info["loadavg_after"] = machine_info()["loadavg"]
        out = summarise(rows)
        out.update(
            device="cpu",
            machine=info,
            date_utc=info.get("date_utc", date) if cprobe is not None else date,
            source="cpu probe" if cprobe is not None else "measured here",
            impl=impl,
            threads=threads,
            reps=reps,
            model="simrec.sim.systems.cpu_dram.CpuDramSystem",
        )
        drift = probe_drift(cprobe) if cprobe is not None else None
        if drift is not None:
            out["drift"] = drift
            g = drift["geomean_abs_difference"]
            if g > DRIFT_WARN:
                say(
                    f"warning: the machine drifted by a geomean {g:.1%} between the calibration "
                    "and the end of the held-out runs (drift sentinels: "
                    + ", ".join(f"{p['name']} {p['difference']:+.0%}" for p in drift["points"])
                    + "); held-out errors of that size are the machine's, not the model's"
                )
        if repeat_probe is not None:
            out["repeat"] = repeat_difference(
                out["workloads"], read_cpu_probe(repeat_probe), impl, threads, repeat_probe, heldout
            )
        out["heldout_set"] = heldout
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
        write_cpu_preset(
            hw_path, rec["benchmarks"], fit, validation=v, probe=rec.get("probe"),
            source=rec.get("source"), noise=rec.get("noise_check"),
        )  # fmt: skip
    else:
        f = dict(rec["fit"])
        f["gather_efficiency"] = [tuple(x) for x in f["gather_efficiency"]]
        fit = GpuFit(**{**f, "residuals": rec["residuals"]})
        write_gpu_preset(hw_path, rec["probe"], fit, validation=v, source=rec.get("source"))
