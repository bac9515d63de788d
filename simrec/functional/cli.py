"""``simrec validate``: check simulated systems against ground truth.

``--functional`` runs the planned data path (address remapping, sharding across devices and tiers,
per-table codec) on a trace's lookups and compares the pooled embeddings and the DLRM outputs with
the reference (:mod:`simrec.functional.verify`). The command is built to grow: another mode
(``--measure``) will be added beside ``--functional``; with no mode flag it is a usage error.

Exit status: 0 when every check passes, 1 when a check fails, 2 for bad input.
"""

from __future__ import annotations

import click

__all__ = ["validate_command"]


@click.command("validate")
@click.option(
    "--functional",
    is_flag=True,
    help="Run the planned data path on a trace and compare with the numpy reference.",
)
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="The .trc trace whose lookups are replayed.",
)
@click.option(
    "--hw",
    "hw_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Hardware YAML; the plan's devices must be among its devices.",
)
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Plan JSON (default: every table raw fp32 on one device).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the model parameters.")
@click.option(
    "--pooling",
    type=click.Choice(["sum", "mean", "max"]),
    default="sum",
    show_default=True,
    help="Embedding-bag pooling mode.",
)
@click.option("--max-batches", type=click.IntRange(min=1), help="Check only the first N batches.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def validate_command(
    functional: bool,
    trace_path: str | None,
    hw_path: str | None,
    plan_path: str | None,
    seed: int,
    pooling: str,
    max_batches: int | None,
    as_json: bool,
) -> None:
    """Validate a simulated system: --functional checks the embedding math end to end.

    \b
    Example:
      simrec validate --functional --trace traces/criteo_sample.trc --plan plan.json
    """
    if not functional:
        raise click.UsageError(
            "choose what to validate: --functional (replay the planned data path on a trace "
            "and compare with the reference)"
        )
    if trace_path is None:
        raise click.UsageError("--functional needs --trace T.trc")
    from simrec.functional.verify import (
        hotness_permutations,
        hw_device_names,
        verify_functional,
    )
    from simrec.shard.plan import load_plan
    from simrec.trace.format import TraceReader

    reader = TraceReader(trace_path)
    devices = None
    source = "plan"
    if hw_path is not None:
        devices = hw_device_names(hw_path)
        source = f"hw:{hw_path}"
    plan = None
    if plan_path is not None:
        plan = load_plan(plan_path, hw_device_names=devices, trace_header=reader.header)
    elif devices is not None:
        from simrec.shard.plan import single_device_plan

        plan = single_device_plan(reader.header, device=devices[0])
    perms = hotness_permutations(reader, plan) if plan is not None else {}
    report = verify_functional(
        reader,
        plan,
        seed=seed,
        mode=pooling,  # type: ignore[arg-type]
        perms=perms,
        max_batches=max_batches,
        device_source=source,
    )
    if perms:
        names = [t.name for t in reader.header.tables if t.name in perms]
        report.notes.append(
            f"hotness order from the trace's access counts for {len(names)} table(s): "
            + ", ".join(names)
        )
    if as_json:
        from simrec.cli import echo_json

        echo_json(report.to_dict())
    else:
        _print(report)
    if not report.passed:
        raise click.exceptions.Exit(1)


def _print(report: object) -> None:
    r = report  # VerifyReport
    click.echo(
        f"trace {r.trace}: {r.batches} batches; devices {', '.join(r.devices)} "  # type: ignore[attr-defined]
        f"(from {r.device_source})"  # type: ignore[attr-defined]
    )
    click.echo(
        f"{'table':<14} {'codec':<10} {'check':<10} {'lookups':>9} {'max err':>10} "
        f"{'mean err':>10} {'err/tol':>8}  result"
    )
    for t in r.tables:  # type: ignore[attr-defined]
        kind = "bit-exact" if t.exact else "tolerance"
        ratio = "-" if t.exact else f"{t.worst_ratio:.3f}"
        click.echo(
            f"{t.name:<14} {t.codec:<10} {kind:<10} {t.lookups:>9,} {t.max_abs_err:>10.3g} "
            f"{t.mean_abs_err:>10.3g} {ratio:>8}  {'ok' if t.passed else 'FAIL'}"
        )
        if t.failure:
            click.echo(f"    first failure: {t.failure}")
    d = r.dlrm  # type: ignore[attr-defined]
    if d is not None:
        verdict = {True: "ok", False: "FAIL", None: "reported"}[d["passed"]]
        click.echo(
            f"DLRM {'-'.join(map(str, d['config']['bottom']))} / "
            f"{'-'.join(map(str, d['config']['top']))} ({d['config']['weights']}): "
            f"{d['samples']} samples, max |diff| {d['max_abs_diff']:.3g}, "
            f"mean {d['mean_abs_diff']:.3g}, {d['checked']}: {verdict}"
        )
    for note in r.notes:  # type: ignore[attr-defined]
        click.echo(f"note: {note}")
    click.echo("PASSED" if r.passed else "FAILED")  # type: ignore[attr-defined]
