"""``simrec calibrate`` (a click command the main group registers) and the ``--measure`` part of
``simrec validate`` (:func:`measure_options` + :func:`validate_measure`).

Errors are :class:`~simrec.errors.SimrecError`; the ``simrec`` group prints them as one paragraph
and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from simrec.errors import SimrecError, read_json

__all__ = ["calibrate_command", "measure_options", "validate_measure", "validate_measure_command"]

DEFAULT_SPREAD = 0.25
QUICK_SPREAD = 1.0


def _say(quiet: bool) -> Callable[[str], None]:
    return (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))


def _read_json(path: str) -> dict[str, Any]:
    return read_json(
        path,
        "the measurements file",
        "give a JSON written by simrec calibrate or python3 -m simrec.calibrate.gpu_probe",
    )


def _is_cpu_probe(path: str) -> bool:
    """Whether ``path`` looks like a CPU probe output (its first bytes name the kind), so that a
    truncated probe gets the probe's own message."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return b'"simrec-cpu-probe"' in head


def _cuda_check() -> None:
    from simrec.calibrate.gpu_probe import gpu_available

    ok, why = gpu_available()
    if ok:
        return
    if why.startswith("PyTorch is not installed"):
        fix = (
            "install a CUDA build of PyTorch (pip install torch) on a machine with an NVIDIA GPU, "
            "or calibrate the CPU with --device cpu, or fit a probe run from elsewhere with "
            "--from-json PROBE.json"
        )
    else:
        fix = (
            "no GPU is visible: check nvidia-smi and CUDA_VISIBLE_DEVICES, run where a GPU is, "
            "or fit a probe run from elsewhere with --from-json PROBE.json"
        )
    raise SimrecError(f"--device cuda: {why}", where="--device cuda", fix=fix)


@click.command("calibrate")
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="calibrate the CPU-DRAM model (cpu) or the multi-GPU model (cuda)",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="preset to write, e.g. hwconfigs/measured/NAME.yaml (NAME.calib.json is written beside)",
)
@click.option("--quick", is_flag=True, help="small sizes and few repetitions (a pipeline check)")
@click.option(
    "--impl",
    type=click.Choice(["auto", "torch", "numba"]),
    default="auto",
    show_default=True,
    help="CPU embedding-bag implementation to calibrate (auto: simrec's numba kernel; torch: "
    "torch.nn.functional.embedding_bag with its OpenMP threads)",
)
@click.option("--threads", type=int, default=None, help="CPU threads (default: all usable CPUs)")
@click.option(
    "--reps",
    type=int,
    default=None,
    help="repetitions per benchmark (default: CPU 9, 3 with --quick; GPU 5)",
)
@click.option(
    "--max-spread",
    type=float,
    default=None,
    help="refuse to fit when the median of a benchmark the fit uses is uncertain by more than "
    "this fraction: the relative width of its 93.75 % distribution-free interval, which is "
    f"(max-min)/median over 5 repetitions (default {DEFAULT_SPREAD}; {QUICK_SPREAD} with --quick)",
)
@click.option(
    "--from-json",
    "from_json",
    type=click.Path(dir_okay=False),
    default=None,
    help="fit saved measurements instead of measuring: a cpu_probe output or a NAME.calib.json "
    "(cpu), a gpu_probe output (cuda); a probe's held-out runs are kept for --validate",
)
@click.option(
    "--validate/--no-validate",
    "do_validate",
    default=False,
    help="also run the held-out validation and record it in the preset",
)
@click.option(
    "--pages",
    type=click.Choice(["huge", "4k"]),
    default="huge",
    show_default=True,
    help="CPU: page backing of every benchmark table and buffer when measuring here (huge: "
    "transparent huge pages, what the model describes; 4k: adds page walks the model lacks)",
)
@click.option("--json", "as_json", is_flag=True, help="print the fit (and validation) as JSON")
@click.option("-q", "--quiet", is_flag=True, help="no progress lines on stderr")
def calibrate_command(
    device: str,
    output: str,
    quick: bool,
    impl: str,
    threads: int | None,
    reps: int | None,
    max_spread: float | None,
    from_json: str | None,
    do_validate: bool,
    pages: str,
    as_json: bool,
    quiet: bool,
) -> None:
    """Measure this machine and fit a hardware preset for the CPU-DRAM or multi-GPU model.

    Microbenchmarks (sequential bandwidth, pointer-chase latency, random gathers of 64/256/512 B
    rows at 1..all threads, embedding-bag, GEMM) feed a fit of the model parameters; the preset
    records the machine, the date, every measurement and the fit residuals. A machine whose
    repetitions vary by more than --max-spread gets no preset.
    """
    from simrec.calibrate import fit as F
    from simrec.calibrate.bench_cpu import run_cpu_benchmarks, torch_available
    from simrec.calibrate.preset import render_validation_table, write_cpu_preset, write_gpu_preset
    from simrec.calibrate.validate import run_measure_validation

    say = _say(quiet)
    spread = max_spread if max_spread is not None else (QUICK_SPREAD if quick else DEFAULT_SPREAD)
    out = Path(output)
    if out.suffix not in (".yaml", ".yml"):
        raise SimrecError(
            "the preset must be a .yaml file", path=output, where="-o", fix="e.g. -o NAME.yaml"
        )
    if not out.parent.is_dir():
        raise SimrecError(
            "the output folder does not exist",
            path=output,
            where="-o",
            fix=f"create {out.parent} first (mkdir -p) or choose another path",
        )
    summary: dict[str, Any] = {"preset": str(out), "device": device}
    if device == "cuda":
        if from_json is None:
            _cuda_check()
            from simrec.calibrate.gpu_probe import probe as run_probe

            probe = run_probe("cuda", quick, reps or 5, log=say)
        else:
            probe = _read_json(from_json)
            if probe.get("kind") == "simrec-calibration-record":
                probe = probe.get("probe") or {}
            if probe.get("kind") != "simrec-gpu-probe":
                raise SimrecError(
                    "not a GPU probe output",
                    path=from_json,
                    fix="give the JSON written by python3 -m simrec.calibrate.gpu_probe --out",
                )
        F.check_noise(
            [{**m, "name": m["workload"]["name"]} for m in probe["calibration"]],
            spread,
            " (GPU calibration runs)",
        )
        fit = F.fit_gpu(probe)
        write_gpu_preset(out, probe, fit, source=Path(from_json).name if from_json else None)
        summary["fit"] = {k: v for k, v in fit.__dict__.items() if k != "residuals"}
        summary["residuals"] = fit.residuals
        l2bw = fit.l2_bandwidth_Bps
        say(
            f"fit ({fit.gpu_model}, HBM peak {fit.hbm_peak_Bps / 1e12:.3g} TB/s): launch "
            f"{fit.kernel_launch_s * 1e6:.2f} us, gather efficiency "
            f"{[(rb, round(e, 3)) for rb, e in fit.gather_efficiency]}, output efficiency "
            f"{fit.output_efficiency if fit.output_efficiency is None else round(fit.output_efficiency, 4)}"
            f", L2 {fit.l2_bytes / 2**20:.0f} MiB at "
            f"{'(not modelled)' if l2bw is None else format(l2bw / 1e12, '.3g') + ' TB/s'}, mlp "
            f"{fit.mlp_efficiency:.3f}, pcie {fit.pcie_efficiency:.3f}"
        )
        if do_validate:
            v = run_measure_validation(out, record=True, log=say)
            summary["validation"] = v
            for ln in render_validation_table(v):
                say(ln)
    else:
        cprobe: dict[str, Any] | None = None
        if from_json is not None:
            from simrec.calibrate.validate import CPU_PROBE_KIND, check_cpu_probe, read_cpu_probe

            raw = read_cpu_probe(from_json) if _is_cpu_probe(from_json) else _read_json(from_json)
            if raw.get("kind") == CPU_PROBE_KIND:
                cprobe = raw
                data = raw["calibration"]
            else:
                if raw.get("probe"):  # a calibration record of a probe-fitted preset
                    cprobe = check_cpu_probe(raw["probe"], from_json)
                data = raw.get("benchmarks", raw)
            if not isinstance(data, dict) or data.get("kind") != "simrec-cpu-calibration":
                raise SimrecError(
                    "not CPU calibration measurements",
                    path=from_json,
                    fix="give the JSON of python3 -m simrec.calibrate.cpu_probe --out, or a "
                    "NAME.calib.json written by simrec calibrate --device cpu",
                )
            for k in ("measurements", "machine", "threads", "impl"):
                if k not in data:
                    raise SimrecError(
                        f"the CPU calibration measurements lack {k!r} (truncated or edited?)",
                        path=from_json,
                        fix="re-run the CPU probe or simrec calibrate",
                    )
        else:
            use = impl
            if use == "auto":
                use = "numba"
            elif use == "torch" and not torch_available():
                raise SimrecError(
                    "--impl torch but PyTorch is not installed",
                    where="--impl",
                    fix="pip install torch==2.13.0, or use --impl numba",
                )
            data = run_cpu_benchmarks(quick, use, threads, reps, log=say, pages=pages)
        use_impl = None if impl == "auto" else impl
        used = F.cpu_fit_inputs(data, use_impl)
        check = [m for m in data["measurements"] if m["name"] in used]
        try:
            F.check_noise(check, spread)
        except SimrecError as e:
            la = data["machine"].get("loadavg")
            e.message += f" (load average {la} at the start)"
            raise
        worst = max(check, key=F.noise_of, default=None)
        wv = F.noise_of(worst) if worst else 0.0
        noise = {
            "max_spread": spread,
            "default_max_spread": DEFAULT_SPREAD,
            "statistic": f"relative width of the {F.NOISE_CONFIDENCE:.2%} interval of the median",
            "worst": worst["name"] if worst else None,
            "worst_spread": wv,
            "forced": bool(worst is not None and wv > DEFAULT_SPREAD),
        }
        if noise["forced"]:
            say(
                f"warning: forced fit: the median of {worst['name']} is uncertain by {wv:.0%}, "
                f"above the default --max-spread {DEFAULT_SPREAD:g}; the preset says "
                "so, and its held-out error is not a validation by docs/validation.md's rules"
            )
        fit = F.fit_cpu(data, iters=8 if (quick or data.get("quick")) else 15, impl=use_impl)
        src = Path(from_json).name if from_json and cprobe is not None else None
        write_cpu_preset(out, data, fit, probe=cprobe, source=src, noise=noise)
        say(
            f"fit ({fit.impl}, {fit.cores} threads): lookup_cycles {fit.lookup_cycles:.3g}, "
            f"pool_efficiency {fit.pool_efficiency:.3g}, bag_cycles {fit.bag_cycles:.3g}, "
            f"call overhead {fit.call_overhead_s * 1e6:.3g} us, LLC "
            f"{fit.llc_bandwidth_Bps / 1e9:.3g} GB/s, effective DRAM bus "
            f"{fit.stream_Bps / 1e9:.3g} GB/s, tFAW {fit.tFAW_s * 1e9:.4g} ns, rms log residual "
            f"{fit.rms_log_residual():.3f}"
        )
        rule = fit.output_rule or {}
        if rule:
            kept = fit.output_selected
            say(
                f"pooled-output term: {'kept' if kept else 'not kept'} (objective "
                f"{rule.get('output_objective', float('nan')):.4g} with it vs "
                f"{rule.get('base_objective', float('nan')):.4g} without; kept only if <= "
                f"{rule.get('threshold', 0.9):g} x)"
                + (f", output bandwidth {fit.output_bandwidth_Bps / 1e9:.3g} GB/s" if kept else "")
            )
        trule = fit.tlb_rule or {}
        if trule:
            say(
                f"translation term: {'kept' if fit.tlb_selected else 'not kept'} (objective "
                f"{trule.get('objective_with', float('nan')):.4g} with a TLB of "
                f"{trule.get('entries')} entries vs {trule.get('objective_without', float('nan')):.4g}"
                f" without; kept only if <= {trule.get('threshold', 0.9):g} x)"
                + (f", page walk {fit.tlb_walk_s * 1e9:.3g} ns" if fit.tlb_selected else "")
            )
        srule = fit.serial_rule or {}
        if srule:
            say(
                f"partial-overlap term: {'kept' if fit.serial_selected else 'not kept'} (objective "
                f"{srule.get('objective_with', float('nan')):.4g} with it vs "
                f"{srule.get('objective_without', float('nan')):.4g} without; kept only if <= "
                f"{srule.get('threshold', 0.9):g} x)"
                + (
                    f", serial_fraction {fit.serial_fraction:.3g}, LLC "
                    f"{fit.llc_bytes / 2**20:.4g} MiB"
                    if fit.serial_selected
                    else ""
                )
            )
        lrule = fit.l2_rule or {}
        if lrule and "objective_with" in lrule:
            say(
                f"private-cache tier: {'kept' if fit.l2_selected else 'not kept'} (objective "
                f"{lrule['objective_with']:.4g} with l2_size {lrule['l2_bytes'] / 2**20:.4g} MiB "
                f"per core vs {lrule['objective_without']:.4g} without; kept only if <= "
                f"{lrule.get('threshold', 0.9):g} x)"
                + (f", LLC {fit.llc_bytes / 2**20:.4g} MiB" if fit.l2_selected else "")
            )
        elif lrule:
            say(f"private-cache tier: not tried ({lrule.get('reason')})")
        edge = F.llc_edge_note(fit)
        if edge:
            say(f"warning: {edge}")
        summary["fit"] = {k: v for k, v in fit.__dict__.items() if k != "residuals"}
        summary["residuals"] = fit.residuals
        if do_validate:
            v = run_measure_validation(
                out, quick=quick, threads=None if cprobe else threads, record=True, log=say
            )
            summary["validation"] = v
            for ln in render_validation_table(v):
                say(ln)
    say(f"wrote {out} and {out.with_name(out.stem + '.calib.json')}")
    if as_json:
        from simrec.cli import echo_json

        echo_json(summary)


def measure_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``simrec validate`` needs for ``--measure`` (apply as a decorator)."""
    opts = [
        click.option(
            "--measure",
            is_flag=True,
            help="measure held-out embedding workloads on this machine and compare with the "
            "model built from --hw",
        ),
        click.option("--quick", is_flag=True, help="with --measure: the small CI set"),
        click.option(
            "--probe-json",
            type=click.Path(dir_okay=False, exists=True),
            default=None,
            help="with --measure: measured held-out times from a gpu_probe (GPU preset) or "
            "cpu_probe (CPU preset) run instead of measuring here",
        ),
        click.option(
            "--repeat-probe",
            type=click.Path(dir_okay=False, exists=True),
            default=None,
            help="with --measure (CPU): a second cpu_probe run of the same machine; also report "
            "how much its held-out measurements differ from the validated ones (the machine's "
            "own run-to-run floor, to read the model's error against)",
        ),
        click.option(
            "--heldout",
            type=click.Choice(["v2", "v3"]),
            default="v2",
            show_default=True,
            help="with --measure (CPU): the held-out set; v3 (fixed 2026-12-04) has shapes the "
            "model was never developed against, and is reported, not recorded",
        ),
        click.option(
            "--record",
            is_flag=True,
            help="with --measure: write the error into the measured preset (validated: true)",
        ),
        click.option(
            "--json-out",
            type=click.Path(dir_okay=False),
            default=None,
            help="with --measure: also write the result JSON here",
        ),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def validate_measure(
    hw: str,
    quick: bool = False,
    probe_json: str | None = None,
    record: bool = False,
    json_out: str | None = None,
    as_json: bool = False,
    quiet: bool = False,
    repeat_probe: str | None = None,
    heldout: str = "v2",
) -> dict[str, Any]:
    """Body of ``simrec validate --measure --hw HW``: runs, prints the table (or JSON)."""
    from simrec.calibrate.preset import render_validation_table
    from simrec.calibrate.validate import run_measure_validation

    v = run_measure_validation(
        hw,
        quick=quick,
        probe_json=probe_json,
        record=record,
        json_out=json_out,
        log=_say(quiet),
        repeat_probe=repeat_probe,
        heldout=heldout,
    )
    if as_json:
        from simrec.cli import echo_json

        echo_json(v)
    else:
        for ln in render_validation_table(v):
            click.echo(ln)
    return v


@click.command("validate-measure")
@click.option("--hw", required=True, type=click.Path(dir_okay=False), help="hardware YAML")
@measure_options
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("-q", "--quiet", is_flag=True)
def validate_measure_command(
    hw: str,
    measure: bool,
    quick: bool,
    probe_json: str | None,
    repeat_probe: str | None,
    heldout: str,
    record: bool,
    json_out: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Stand-alone form of ``simrec validate --measure`` (for tests and until it is wired)."""
    validate_measure(hw, quick, probe_json, record, json_out, as_json, quiet, repeat_probe, heldout)
