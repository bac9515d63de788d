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

from simrec.calibrate.cpufit import huge_fractions
from simrec.calibrate.fit import GPU_SPECS, CpuFit, GpuFit, cpu_system_dict, llc_edge_note
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
        "(cache: CPU: fraction of lookups on the hottest rows that fit the preset's llc_size "
        "(a diagnostic; the model's LLC is an LRU of rows, warm); GPU: fraction of lookups the simulator's L2 (an LRU of "
        "rows, warm) serves; spread: (max - min) / median of the repetitions)"
    )
    out.append(
        f"geomean |error| over {len(v['workloads'])} held-out workloads"
        + (f" of set {v['heldout_set']}" if v.get("heldout_set", "v2") != "v2" else "")
        + ": "
        f"{v['geomean_abs_error']:.1%}"
    )
    dr = v.get("drift")
    if dr:
        out.append(
            "drift: the probe's sentinels, measured again after the held-out runs, differ from "
            f"their calibration runs by a geomean |difference| of {dr['geomean_abs_difference']:.1%} ("
            + ", ".join(f"{p['name']} {p['difference']:+.1%}" for p in dr["points"])
            + ")"
        )
    rep = v.get("repeat")
    if rep:
        out.append(
            f"run to run: the repeat probe's measurements ({Path(rep['probe']).name}) differ from "
            f"these by a geomean |difference| of {rep['geomean_abs_difference']:.1%} over "
            f"{len(rep['workloads'])} workloads (the machine's own floor: an error near it is "
            "measurement noise, one well above it is the model's)"
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


def _forced_note(noise: dict[str, Any] | None) -> str:
    """The warning a preset carries when its fit overrode the noise check (empty otherwise)."""
    if not noise or not noise.get("forced"):
        return ""
    return (
        f"FORCED FIT: {noise.get('worst')} varied by {float(noise.get('worst_spread', 0)):.0%} "
        f"across repetitions, above the default --max-spread "
        f"{float(noise.get('default_max_spread', 0.25)):g} (run with --max-spread "
        f"{float(noise.get('max_spread', 0)):g}); an indication, not a validation "
        "(docs/validation.md)"
    )


def _validation_block(
    method: str, ref: str, validation: dict[str, Any] | None, noise: dict[str, Any] | None = None
) -> tuple[bool, dict[str, Any]]:
    forced = _forced_note(noise)
    if validation is None:
        return False, {
            "method": method,
            "reference": ref,
            "notes": (forced + "; " if forced else "")
            + "fitted, not yet validated: run simrec validate --measure --record",
        }
    return True, {
        "method": method,
        "reference": ref,
        "error": round(float(validation["geomean_abs_error"]), 4),
        "notes": (forced + "; " if forced else "")
        + (
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


def _output_rule_line(fit: CpuFit) -> str:
    """One comment line on the pooled-output rule of a CPU fit (simrec.calibrate.cpufit)."""
    r = fit.output_rule
    if fit.output_selected is None or not r:
        return "  pooled-output term: rule not run (start values only); output_bandwidth 0"
    verdict = (
        f"kept (output_bandwidth {fit.output_bandwidth_Bps / 1e9:.4g} GB/s)"
        if fit.output_selected
        else "not kept (output_bandwidth 0)"
    )
    return (
        f"  pooled-output term (kept only if the objective is >= 10 % lower): base objective "
        f"{r['base_objective']:.4g}, with output_bandwidth "
        f"({r['output_bandwidth_Bps'] / 1e9:.4g} GB/s) {r['output_objective']:.4g}: {verdict}"
    )


def _tlb_rule_line(fit: CpuFit) -> str:
    """One comment line on the translation rule of a CPU fit (simrec.calibrate.cpufit)."""
    r = fit.tlb_rule
    if fit.tlb_selected is None or not r:
        return "  translation term: rule not run; no tlb"
    page = "2 MiB" if r["page_bytes"] >= 2**21 else f"{r['page_bytes'] / 1024:g} KiB"
    verdict = (
        f"kept ({fit.tlb_entries} entries, walk {fit.tlb_walk_s * 1e9:.4g} ns)"
        if fit.tlb_selected
        else "not kept (no tlb)"
    )
    tries = ", ".join(f"{t['entries']}: {t['objective']:.4g}" for t in r.get("tries", []))
    return (
        f"  translation term (kept only if the objective is >= 10 % lower; {page} pages): "
        f"without {r['objective_without']:.4g}, with a TLB of n entries {{{tries}}}: {verdict}"
    )


def _serial_rule_line(fit: CpuFit) -> str:
    """One comment line on the partial-overlap rule of a CPU fit (simrec.calibrate.cpufit)."""
    r = fit.serial_rule
    if fit.serial_selected is None or not r:
        return "  partial-overlap term: rule not run; serial_fraction 0 (the stages overlap)"
    verdict = (
        f"kept (serial_fraction {fit.serial_fraction:.4g}, LLC {fit.llc_bytes / 2**20:.4g} MiB)"
        if fit.serial_selected
        else "not kept (serial_fraction 0)"
    )
    best: dict[float, float] = {}
    for t in r.get("tries", []):
        f = t["llc_fraction"]
        best[f] = min(best.get(f, float("inf")), t["objective"])
    tries = ", ".join(f"{f:g}: {c:.4g}" for f, c in best.items())
    return (
        "  partial-overlap term (kept only if the objective is >= 10 % lower): without "
        f"{r['objective_without']:.4g}, with it by LLC fraction {{{tries}}}: {verdict}"
    )


def _l2_rule_line(fit: CpuFit) -> str:
    """One comment line on the private-cache rule of a CPU fit (simrec.calibrate.cpufit)."""
    r = fit.l2_rule
    if fit.l2_selected is None or not r:
        return "  private-cache tier: rule not run; no l2_size"
    if "objective_with" not in r:
        return f"  private-cache tier: not tried ({r.get('reason', 'no L2 size')}); no l2_size"
    size = f"{r['l2_bytes'] / 2**20:.4g} MiB per core"
    verdict = (
        f"kept (l2_size {size}, LLC {fit.llc_bytes / 2**20:.4g} MiB)"
        if fit.l2_selected
        else "not kept (no l2_size)"
    )
    tries = ", ".join(
        f"{t['llc_fraction']:g}: {t['objective']:.4g}" for t in r.get("tries", []) if t.get("l2")
    )
    return (
        f"  private-cache tier (sysfs L2 {r['l2_sysfs_bytes'] / 2**20:.4g} MiB / "
        f"{r['threads_per_core']} threads per core = {size}; kept only if the objective is "
        f">= 10 % lower): without {r['objective_without']:.4g}, with it by LLC fraction "
        f"{{{tries}}}: {verdict}"
    )


def _pages_line(data: dict[str, Any]) -> str:
    """The preset header's line on the tables' page backing (what the kernel gave, measured)."""
    pages = data.get("pages")
    if not pages:
        return (
            "pages: not recorded (measured before simrec recorded the page backing: numpy's "
            "buffers, which numpy advises onto transparent huge pages where it can; how far the "
            "kernel did is unknown)"
        )
    fr = huge_fractions(data)
    got = (
        f"{min(fr):.0%}-{max(fr):.0%} of each table of 2 MiB or more on huge pages"
        if fr
        else "not readable"
    )
    what = "transparent huge pages (madvise)" if pages == "huge" else "4 KiB pages"
    return f"pages: every table on {what}; the kernel gave {got} (/proc/self/smaps)"


def write_cpu_preset(
    path: str | Path,
    data: dict[str, Any],
    fit: CpuFit,
    validation: dict[str, Any] | None = None,
    probe: dict[str, Any] | None = None,
    source: str | None = None,
    noise: dict[str, Any] | None = None,
) -> Path:
    """Write the CPU-DRAM preset ``path`` and its JSON record; returns ``path``. ``probe``: the
    CPU probe output the measurements came from (kept in the record, with its held-out runs, so
    that ``simrec validate --measure`` finds them); ``source``: its file name; ``noise``: the
    noise check's threshold and the worst spread of the fit inputs (``forced`` when it was above
    the default threshold: the preset's header and validation notes say so)."""
    path = Path(path)
    info = data["machine"]
    name = path.stem
    sysd = cpu_system_dict(fit, name=f"measured_{name}")
    ref = record_path(path).name
    how = (
        f"python3 -m simrec.calibrate.cpu_probe ({source or 'probe'}) + simrec calibrate "
        "--device cpu --from-json"
        if probe is not None
        else "simrec calibrate --device cpu"
    )
    forced = _forced_note(noise)
    validated, vblock = _validation_block(
        f"{how} ({'quick' if data['quick'] else 'full'}; embedding-bag "
        f"impl {fit.impl}, {data['threads']} threads, {data['reps']} repetitions each)",
        ref,
        validation,
        noise,
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
        f"threads: the preset describes {data['threads']} threads of {fit.impl}'s embedding-bag "
        f"(cores_per_socket = threads; {info.get('threads_per_core', '?')} threads per core, "
        f"{info.get('numa_nodes', '?')} NUMA nodes, THP {info.get('thp', '?')})",
        _pages_line(data),
        *([forced] if forced else []),
        "",
        "measurements (median of the repetitions; spread = (max - min) / median):",
    ]
    for m in data["measurements"]:
        head.append(
            f"  {m['name']:34s} {m['rate']:.4g} {m['unit']}/s  ({m['median_s'] * 1e3:.4g} ms, "
            f"spread {m['spread']:.1%})"
        )
    finals = [g for g in fit.grid if g.get("final")]
    head += [
        "",
        "fit (simrec.calibrate.cpufit): for each LLC capacity (a fraction of the sysfs size), the "
        "data rate on a grid with tFAW, lookup_cycles,",
        "  pool_efficiency, bag_cycles, call_overhead, llc_bandwidth by Levenberg-Marquardt at "
        "each, then all seven together; the capacity with",
        "  the least squared log error over the embedding-bag calibration points is kept (the "
        "gathers set only tFAW's start value)",
        f"  start: {json.dumps({k: float(f'{v:.4g}') for k, v in fit.initial.items()})}",
        "  objective by LLC fraction: "
        + (", ".join(f"{g['llc_fraction']:g}: {g['cost']:.4g}" for g in finals) or "not run"),
        f"  rms log residual over the fitted points: {fit.rms_log_residual():.3f}",
        *([f"  note: {edge}"] if (edge := llc_edge_note(fit)) else []),
        _output_rule_line(fit),
        _tlb_rule_line(fit),
        _serial_rule_line(fit),
        _l2_rule_line(fit),
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
        "      pool_efficiency, lookup_cycles, bag_cycles, call_overhead, llc_bandwidth [fitted]; "
        "mlp_efficiency [measured SGEMM / peak];",
        *(
            ["      output_bandwidth [fitted; kept by the pre-registered rule]"]
            if fit.output_bandwidth_Bps > 0
            else []
        ),
        *(
            [
                "      tlb: entries [fitted: a grid], page_size [measured: the tables' backing], "
                "walk_time [fitted; kept by the pre-registered rule]"
            ]
            if fit.tlb_entries > 0 and fit.tlb_walk_s > 0
            else []
        ),
        *(
            ["      serial_fraction [fitted; kept by the pre-registered rule]"]
            if fit.serial_fraction > 0
            else []
        ),
        *(
            [
                "      l2_size [measured: the largest sysfs L2 / threads per core; kept by the "
                "pre-registered rule]"
            ]
            if fit.l2_bytes > 0
            else []
        ),
        "      llc_size [fitted: a fraction of the largest sysfs cache, "
        f"{fit.initial.get('llc_nominal_bytes', 0) / 2**20:g} MiB]",
        "dram0: an effective memory, not the DIMMs: data_rate and tFAW [fitted], CL = chase "
        "latency - 2 cycles [measured],",
        f"       one channel, {fit.ranks} ranks of one bank group of {fit.banks} banks, tRCD = tRP "
        "= tRAS = tRRD = 1 nCK [assumption: simrec.calibrate.cpufit]; capacity [measured: "
        "MemTotal]",
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
        "noise_check": noise,
        "validation": validation,
        "probe": probe,
        "source": source,
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
    """Write a multi-GPU preset that ``extends`` ``base`` (the 8 x H100 SXM server) with the
    fitted per-GPU parameters (every ``gpu0..gpu{gpus-1}``, every ``pcie0..``) and, for a GPU other
    than the H100 (the fit's ``gpu_model``, :data:`~simrec.calibrate.fit.GPU_SPECS`), that GPU's
    HBM (peak, capacity) and L2 size in every ``hbm0..``; returns ``path``."""
    path = Path(path)
    info = probe["machine"]
    spec = GPU_SPECS[fit.gpu_model]
    micro = probe.get("micro", {})
    ref = record_path(path).name
    validated, vblock = _validation_block(
        f"simrec.calibrate.gpu_probe on one {info.get('gpu_name')} (torch {info.get('torch')}, "
        "CUDA events) + simrec calibrate --device cuda --from-json",
        ref,
        validation,
    )
    gpu_over: dict[str, Any] = {
        "description": f"{info.get('gpu_name')}, per-GPU parameters measured on one GPU",
        "l2_size": f"{int(fit.l2_bytes or spec.l2_bytes)} B",
        "kernel_launch_overhead": f"{fit.kernel_launch_s * 1e6:.4g} us",
        "mlp_efficiency": round(fit.mlp_efficiency, 4),
        "gather_efficiency": [
            {"row_bytes": f"{rb} B", "efficiency": round(e, 4)} for rb, e in fit.gather_efficiency
        ],
        # None deletes an inherited key (the mechanism is then not modelled)
        "output_efficiency": None
        if fit.output_efficiency is None
        else round(fit.output_efficiency, 4),
        "l2_bandwidth": None
        if fit.l2_bandwidth_Bps is None
        else f"{fit.l2_bandwidth_Bps / 1e12:.4g} TB/s",
    }
    if info.get("sms"):
        gpu_over["sms"] = int(info["sms"])
    devices: dict[str, Any] = {f"gpu{i}": dict(gpu_over) for i in range(gpus)}
    if spec.hbm_yaml:
        devices.update({f"hbm{i}": dict(spec.hbm_yaml) for i in range(gpus)})
    links = {f"pcie{i}": {"efficiency": round(fit.pcie_efficiency, 4)} for i in range(gpus)}
    doc = {
        "extends": base,
        "name": f"{path.stem}_measured",
        "description": (
            f"The {base} preset with its GPUs' launch overhead, gather, output and MLP "
            f"efficiencies, L2 size and bandwidth, and the PCIe efficiency, measured on one "
            f"{info.get('gpu_name')} on {info.get('date_utc')}"
            + (f", and the {spec.label}'s HBM" if spec.hbm_yaml else "")
            + f" (the NVLink network is not measured: it keeps {base}'s values)"
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
    head += [
        "",
        f"fit (simrec.calibrate.fit.fit_gpu, {spec.label}, HBM peak "
        f"{fit.hbm_peak_Bps / 1e12:.3g} TB/s, L2 {fit.l2_bytes / 2**20:.0f} MiB):",
        f"  launch {fit.kernel_launch_s * 1e6:.3g} us, output efficiency "
        f"{fit.output_efficiency if fit.output_efficiency is None else round(fit.output_efficiency, 4)}"
        f", L2 bandwidth "
        + (
            "not modelled"
            if fit.l2_bandwidth_Bps is None
            else f"{fit.l2_bandwidth_Bps / 1e12:.3g} TB/s"
        ),
    ]
    head += [f"  held: {k}: {v}" for k, v in fit.held.items()]
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
        "sources: kernel_launch_overhead, gather_efficiency, output_efficiency, l2_bandwidth "
        "[fitted to the calibration runs above,",
        f"against the {fit.hbm_peak_Bps / 1e12:.3g} TB/s HBM peak]; l2_size, sms [measured: torch "
        "device properties];",
        f"mlp_efficiency [measured bf16 matmul / {spec.bf16_peak / 1e12:.1f} TFLOP/s]; pcie "
        "efficiency [measured pinned H2D / 63.02 GB/s]",
        f"{spec.label}: {spec.sources}",
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
