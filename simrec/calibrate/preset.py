"""Writing measured presets: ``NAME.yaml`` (loads with :func:`simrec.hw.load_hw`) and
``NAME.calib.json`` (every measurement, the machine, the fit, its residuals and the validation).

The hardware schema has no structured field for measurements, so the YAML carries them as comments
(machine, date, load, every measurement's median and spread, every residual, the validation table)
and names the JSON record in ``validation.reference``; the JSON is the machine-readable copy.
A preset is marked ``validated: true`` only once a held-out validation is recorded in it, with
``validation.error`` = the geometric-mean absolute error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from simrec.calibrate.fit import CpuFit, GpuFit, cpu_system_dict
from simrec.errors import atomic_output
from simrec.util import jsonable

__all__ = ["record_path", "write_cpu_preset", "write_gpu_preset", "render_validation_table"]


def record_path(yaml_path: str | Path) -> Path:
    """The JSON record beside a preset: ``x/NAME.yaml`` -> ``x/NAME.calib.json``."""
    p = Path(yaml_path)
    return p.with_name(p.stem + ".calib.json")


class _NoAliases(yaml.SafeDumper):
    """A YAML dumper that writes repeated values out instead of as anchors/aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_NoAliases, sort_keys=False, width=100)


def _comment(lines: list[str]) -> str:
    return "".join(f"# {ln}".rstrip() + "\n" for ln in lines)


def render_validation_table(v: dict[str, Any]) -> list[str]:
    """The validation result as fixed-width text lines (also printed by the CLI)."""
    out = [
        f"{'workload':34s} {'measured':>12s} {'predicted':>12s} {'error':>8s} {'cache':>6s} "
        f"{'spread':>7s}"
    ]
    for w in v["workloads"]:
        c = w.get("cache_hit_estimate")
        sp = w.get("spread")
        out.append(
            f"{w['name']:34s} {w['measured_s'] * 1e3:10.4f}ms {w['predicted_s'] * 1e3:10.4f}ms "
            f"{w['error']:+8.1%} {'' if c is None else format(c, '6.0%')} "
            f"{'' if sp is None else format(sp, '7.1%')}"
        )
    out.append(
        "(cache: estimated fraction of lookups on rows that fit the last-level cache (CPU) or "
        "the L2 (GPU), which the models do not have; spread: (max - min) / median of the "
        "repetitions)"
    )
    out.append(
        f"geomean |error| over {len(v['workloads'])} held-out workloads: "
        f"{v['geomean_abs_error']:.1%}"
    )
    return out


def _resid_lines(res: list[dict[str, Any]]) -> list[str]:
    out = [f"{'point':34s} {'measured':>12s} {'model':>12s} {'residual':>9s}"]
    for r in res:
        tag = "" if r.get("in_fit", True) else "  (not in the objective)"
        out.append(
            f"{r['name']:34s} {r['measured_s'] * 1e3:10.4f}ms {r['predicted_s'] * 1e3:10.4f}ms "
            f"{r['residual']:+9.1%}{tag}"
        )
    return out


def _validation_block(
    method: str, ref: str, validation: dict[str, Any] | None
) -> tuple[bool, dict[str, Any]]:
    if validation is None:
        return False, {
            "method": method,
            "reference": ref,
            "notes": "fitted, not yet validated: run simrec validate --measure --record",
        }
    return True, {
        "method": method,
        "reference": ref,
        "error": round(float(validation["geomean_abs_error"]), 4),
        "notes": (
            f"geometric-mean absolute error of the predicted embedding-bag time per batch over "
            f"{len(validation['workloads'])} held-out workloads measured on this machine "
            f"({validation.get('date_utc', '')}); table in the comments above and in {ref}"
        ),
    }


def _write(path: Path, text: str, record: dict[str, Any]) -> None:
    rp = record_path(path)
    with atomic_output(rp) as tmp:
        Path(tmp).write_text(json.dumps(jsonable(record), indent=1, allow_nan=False) + "\n")
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text)


def write_cpu_preset(
    path: str | Path,
    data: dict[str, Any],
    fit: CpuFit,
    validation: dict[str, Any] | None = None,
) -> Path:
    """Write the CPU-DRAM preset ``path`` and its JSON record; returns ``path``."""
    path = Path(path)
    info = data["machine"]
    name = path.stem
    sysd = cpu_system_dict(fit, name=f"measured_{name}")
    ref = record_path(path).name
    validated, vblock = _validation_block(
        f"simrec calibrate --device cpu ({'quick' if data['quick'] else 'full'}; embedding-bag "
        f"impl {data['impl']}, {data['threads']} threads, {data['reps']} repetitions each)",
        ref,
        validation,
    )
    doc: dict[str, Any] = {
        "name": sysd["name"],
        "description": (
            f"Measured on {info['cpu_model']} ({info['cores']} cores, "
            f"{info['memory_bytes'] / 2**30:.1f} GiB) on {info['date_utc']}: one socket with an "
            "effective DRAM fitted by simrec calibrate (see docs/validation.md)"
        ),
        "validated": validated,
        "validation": vblock,
        "devices": sysd["devices"],
    }
    dev = doc["devices"]
    caches = info.get("caches", {})
    head = [
        f"simrec measured preset, written by `simrec calibrate --device cpu -o {path.name}`",
        f"machine: {info['cpu_model']} ({info['vendor']} family {info['cpu_family']}), "
        f"{info['cores']} cores usable, {info['cpu_mhz']:.0f} MHz (/proc/cpuinfo), "
        f"caches {caches}, {info['memory_bytes'] / 2**30:.1f} GiB, "
        f"{'VM' if info.get('hypervisor') else 'bare metal'}, kernel {info['kernel']}",
        f"software: python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
        f"torch {info.get('torch', '-')}",
        f"date: {info['date_utc']}; load average before {info['loadavg']}, after "
        f"{info.get('loadavg_after')}",
        "",
        "measurements (median of the repetitions; spread = (max - min) / median):",
    ]
    for m in data["measurements"]:
        head.append(
            f"  {m['name']:34s} {m['rate']:.4g} {m['unit']}/s  ({m['median_s'] * 1e3:.4g} ms, "
            f"spread {m['spread']:.1%})"
        )
    head += [
        "",
        "fit (simrec.calibrate.fit): lookup_cycles, pool_efficiency, the DRAM data_rate and tFAW "
        "refined together",
        f"  start: {json.dumps({k: float(f'{v:.4g}') for k, v in fit.initial.items()})}",
        f"  rms log residual over the fitted points: {fit.rms_log_residual():.3f}",
        "residuals (model / measured - 1):",
    ]
    head += ["  " + ln for ln in _resid_lines(fit.residuals)]
    if validation is not None:
        head += ["", "held-out validation (simrec validate --measure):"]
        head += ["  " + ln for ln in render_validation_table(validation)]
    head += [
        "",
        "sources: [measured] = this run; [assumption] = a stated choice (see simrec.calibrate.fit)",
        "cpu0: cores [measured: usable CPUs]; frequency [measured: /proc/cpuinfo]; "
        "flops_per_cycle [assumption from the ISA flags];",
        "      pool_efficiency, lookup_cycles [fitted]; mlp_efficiency [measured SGEMM / peak]; "
        "llc_size [measured: sysfs]",
        "dram0: an effective memory, not the DIMMs: data_rate and tFAW [fitted], CL = tRCD = tRP "
        "= chase latency / 3 [measured],",
        "       one channel, one rank, one bank group of 16 banks [assumption]; "
        "capacity [measured: MemTotal]",
    ]
    text = _comment(head) + _dump(doc)
    record = {
        "kind": "simrec-calibration-record",
        "device": "cpu",
        "preset": path.name,
        "machine": info,
        "benchmarks": data,
        "fit": {k: v for k, v in fit.__dict__.items() if k != "residuals"},
        "residuals": fit.residuals,
        "validation": validation,
    }
    del dev
    _write(path, text, record)
    return path


def write_gpu_preset(
    path: str | Path,
    probe: dict[str, Any],
    fit: GpuFit,
    validation: dict[str, Any] | None = None,
    base: str = "multi_gpu",
    gpus: int = 8,
    source: str | None = None,
) -> Path:
    """Write a multi-GPU preset that ``extends`` ``base`` with the fitted per-GPU parameters
    (every ``gpu0..gpu{gpus-1}``, every ``pcie0..``); returns ``path``."""
    path = Path(path)
    info = probe["machine"]
    micro = probe.get("micro", {})
    ref = record_path(path).name
    validated, vblock = _validation_block(
        f"simrec.calibrate.gpu_probe on one {info.get('gpu_name')} (torch {info.get('torch')}, "
        "CUDA events) + simrec calibrate --device cuda --from-json",
        ref,
        validation,
    )
    gpu_over = {
        "description": f"{info.get('gpu_name')}, per-GPU parameters measured on one GPU",
        "kernel_launch_overhead": f"{fit.kernel_launch_s * 1e6:.4g} us",
        "mlp_efficiency": round(fit.mlp_efficiency, 4),
        "gather_efficiency": [
            {"row_bytes": f"{rb} B", "efficiency": round(e, 4)} for rb, e in fit.gather_efficiency
        ],
    }
    devices = {f"gpu{i}": dict(gpu_over) for i in range(gpus)}
    links = {f"pcie{i}": {"efficiency": round(fit.pcie_efficiency, 4)} for i in range(gpus)}
    doc = {
        "extends": base,
        "name": f"{path.stem}_measured",
        "description": (
            f"The {base} preset with its GPUs' launch overhead, gather efficiency and MLP "
            f"efficiency, and the PCIe efficiency, measured on one {info.get('gpu_name')} on "
            f"{info.get('date_utc')} (the NVLink network is not measured: it keeps {base}'s values)"
        ),
        "validated": validated,
        "validation": vblock,
        "devices": devices,
        "links": links,
    }
    smi = info.get("nvidia_smi", {})
    head = [
        "simrec measured preset: simrec.calibrate.gpu_probe on the GPU machine, then",
        f"`simrec calibrate --device cuda --from-json {source or 'PROBE.json'} -o {path.name}`",
        f"machine: {info.get('gpu_name')} ({info.get('sms')} SMs, "
        f"{info.get('gpu_memory_bytes', 0) / 2**30:.1f} GiB, L2 {info.get('l2_bytes', 0) / 1e6:.0f}"
        f" MB, driver {smi.get('driver_version')}, CUDA {info.get('cuda')}), host "
        f"{info.get('cpu_model')} x {info.get('cpu_count')} CPUs",
        f"software: torch {info.get('torch')}, numpy {info.get('numpy')}, python "
        f"{info.get('python')}; date {info.get('date_utc')}",
        "",
        "microbenchmarks (median of 5 repetitions, CUDA events):",
    ]
    for k, m in micro.items():
        if k == "gather":
            for rb, g in m.items():
                head.append(
                    f"  gather {rb:>4s} B rows: {g['GBps']:.0f} GB/s (spread {g['spread']:.1%})"
                )
            continue
        extra = {
            kk: round(v, 2)
            for kk, v in m.items()
            if kk.startswith(("GBps", "TFLOPs")) and isinstance(v, float)
        }
        head.append(
            f"  {k:20s} {m['median_s'] * 1e6:10.2f} us/call {extra} (spread {m['spread']:.1%})"
        )
    head += ["", "embedding_bag (sum, fp32) calibration runs: residuals of the fitted model"]
    head += ["  " + ln for ln in _resid_lines(fit.residuals)]
    cross = probe.get("crosscheck") or []
    if cross:
        head += ["", "cross-check against reference/data.md §5.2 (same shapes, re-measured here):"]
        for c in cross:
            head.append(f"  {c['workload']['name']:24s} {c['median_s'] * 1e3:.4f} ms")
    if validation is not None:
        head += [
            "",
            "held-out validation (measured in the same probe run, predicted by the model):",
        ]
        head += ["  " + ln for ln in render_validation_table(validation)]
    head += [
        "",
        "sources: kernel_launch_overhead, gather_efficiency [fitted to the calibration runs above,",
        "against the 3.35 TB/s HBM3 peak]; mlp_efficiency [measured bf16 matmul / 989.4 TFLOP/s];",
        "pcie efficiency [measured pinned H2D / 63.02 GB/s]",
    ]
    text = _comment(head) + _dump(doc)
    record = {
        "kind": "simrec-calibration-record",
        "device": "cuda",
        "preset": path.name,
        "machine": info,
        "probe": probe,
        "source": source,
        "fit": {k: v for k, v in fit.__dict__.items() if k != "residuals"},
        "residuals": fit.residuals,
        "validation": validation,
    }
    _write(path, text, record)
    return path
