"""``simrec report``: compare systems on a trace, or plot a sweep's results.

``simrec report --trace T.trc --hw A.yaml --hw B.yaml [--baseline NAME] -o DIR`` simulates every
system on every trace (all traces must have one shape), estimates energy, and writes
``report.json``, ``report.csv``, ``report.parquet`` and ``report.html`` under ``DIR``.
``simrec report --sweep results.parquet -o DIR`` writes ``sweep.html`` (Pareto plot and tables).
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from simrec.errors import ConfigError, atomic_output

__all__ = ["report_command", "split_named"]

_NAME = re.compile(r"^[A-Za-z][\w.-]*$")


def split_named(arg: str) -> tuple[str | None, str]:
    """``NAME=SPEC`` -> (NAME, SPEC); a plain SPEC (also ``screc:k=v``) -> (None, SPEC)."""
    if "=" in arg:
        head, rest = arg.split("=", 1)
        if _NAME.match(head) and not head.startswith("screc"):
            return head, rest
    return None, arg


@click.command("report")
@click.option(
    "--trace",
    "traces",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=".trc trace (repeat for several traces of one shape)",
)
@click.option(
    "--hw",
    "hws",
    multiple=True,
    help="system: hardware YAML, preset name or screc[:KEY=VALUE,...]; NAME=SPEC names it (repeat)",
)
@click.option("--baseline", default=None, help="system name to compare against (default: first)")
@click.option(
    "--sweep",
    "sweep",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="plot a `simrec sweep` results.parquet instead",
)
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="output folder",
)
@click.option("--mode", type=click.Choice(["fast", "fine"]), default="fast", show_default=True)
@click.option("--model", default=None, help="DLRM model for the dense stage (e.g. rm1)")
@click.option("--max-batches", type=int, default=None, help="simulate only the first N batches")
@click.option("--title", default="simrec report", show_default=True, help="HTML page title")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def report_command(
    traces: tuple[Path, ...],
    hws: tuple[str, ...],
    baseline: str | None,
    sweep: Path | None,
    out: Path,
    mode: str,
    model: str | None,
    max_batches: int | None,
    title: str,
    as_json: bool,
) -> None:
    """Compare systems on a trace (speedup, energy per sample, breakdown), or plot a sweep."""
    from simrec.cli import echo_json

    if sweep is not None:
        if traces or hws:
            raise ConfigError(
                "--sweep plots a finished sweep; it takes no --trace or --hw",
                where="--sweep",
                fix="drop --trace/--hw, or drop --sweep",
            )
        from simrec.explore.sweep import read_results
        from simrec.report.html import render_sweep_html

        df = read_results(sweep)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_output(out / "sweep.html") as tmp:
            tmp.write_text(render_sweep_html(df, title))
        click.echo(f"wrote {out / 'sweep.html'} ({len(df)} points, {int(df.pareto.sum())} Pareto)")
        return
    if not traces or not hws:
        raise ConfigError(
            "a report needs --trace and at least one --hw",
            where="simrec report",
            fix="e.g. simrec report --trace t.trc --hw cpu_dram --hw screc -o out/",
        )
    from simrec.report.core import build_report, check_same_shape, write_report
    from simrec.report.systems import parse_system, run_system
    from simrec.sim.results import LoadSpec

    for t in traces:
        if not t.is_file():
            raise ConfigError("trace not found", path=t, fix="give an existing .trc file")
    check_same_shape(list(traces))
    specs = [parse_system(s, n) for n, s in map(split_named, hws)]
    load = LoadSpec(max_batches=max_batches)
    runs = [run_system(sp, t, mode=mode, model=model, load=load) for t in traces for sp in specs]
    rep = build_report(runs, baseline)
    paths = write_report(rep, out, title)
    if as_json:
        from simrec.report.core import report_json

        echo_json(report_json(rep)["systems"])
    else:
        cols = ["system", "samples_per_s", "speedup", "server_j_per_sample"]
        cols += ["energy_efficiency_server"]
        click.echo(rep.summary[["trace", *cols]].to_string(index=False))
        click.echo("wrote " + ", ".join(str(p) for p in paths))
