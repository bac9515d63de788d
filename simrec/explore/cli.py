"""``simrec sweep SPEC.yaml -o results.parquet``: a design-space sweep (see docs/cli.md)."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["sweep_command"]


@click.command("sweep")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="results Parquet file (finished points go to OUT.points/ as they finish)",
)
@click.option(
    "--scheduler",
    default=None,
    help="Dask scheduler address (tcp://host:port); default: a local process pool",
)
@click.option(
    "--workers", type=int, default=None, help="local worker processes (default: CPU count)"
)
@click.option("--dry-run", is_flag=True, help="list the points and exit")
@click.option(
    "--progress/--no-progress", default=None, help="progress bar (default: when stderr is a tty)"
)
@click.option("--json", "as_json", is_flag=True, help="print the counts as JSON")
def sweep_command(
    spec: Path,
    out: Path,
    scheduler: str | None,
    workers: int | None,
    dry_run: bool,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Simulate a grid (or seeded random sample) of systems x parameters x traces x planners;
    resumable; writes a tidy table with the Pareto front (speed, energy, cost) marked."""
    from simrec.cli import echo_json
    from simrec.errors import ConfigError
    from simrec.explore.spec import expand_points, load_spec
    from simrec.explore.sweep import run_sweep

    if workers is not None and workers < 1:
        raise ConfigError("--workers must be >= 1", where="--workers", fix="e.g. --workers 2")
    s = load_spec(spec)
    if dry_run:
        for p in expand_points(s):
            click.echo(
                f"{p.point_id}  {p.system}  {Path(p.trace).name}  {p.planner}  {dict(p.params)}"
            )
        return
    df, counts = run_sweep(s, out, workers=workers, scheduler=scheduler, progress=progress)
    if as_json:
        echo_json(counts)
    else:
        click.echo(
            f"{counts['points']} points ({counts['run']} run, {counts['skipped']} already done, "
            f"{counts['errors']} errors), {counts['pareto']} on the Pareto front -> {out}"
        )
