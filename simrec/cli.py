"""The ``simrec`` command line: a thin layer over the Python API.

Every command turns a :class:`~simrec.errors.SimrecError` into a one-paragraph message on stderr and
exit status 2 (no traceback); ``--debug`` (or ``SIMREC_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from simrec import __version__
from simrec.errors import SimrecError
from simrec.util import jsonable


class SimrecGroup(click.Group):
    """A click group that reports SimrecError as a clean message with exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SimrecError as e:
            if os.environ.get("SIMREC_DEBUG") or (ctx.obj or {}).get("debug"):
                raise
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)


def echo_json(obj: Any) -> None:
    """Print ``obj`` as one JSON document on stdout (NaN/inf become null; see :func:`jsonable`)."""
    click.echo(json.dumps(jsonable(obj), indent=2, allow_nan=False))


@click.group(cls=SimrecGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="simrec")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for input errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """simrec: simulate and cost the hardware that serves DLRM embedding look-ups.

    \b
    Typical flow:
      simrec trace gen zipf --tables 8 --rows 1000000 -o t.trc   # make or convert a trace
      simrec trace stats t.trc                                    # profile it
      simrec simulate --hw hwconfigs/cpu_dram.yaml --trace t.trc  # simulate a system
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@cli.group(cls=SimrecGroup)
def trace() -> None:
    """Create, convert, inspect and profile .trc embedding-access traces."""


@trace.command("info")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the header as one JSON object.")
def trace_info(path: str, as_json: bool) -> None:
    """Print the header of the trace at PATH (tables, batch size, provenance, counts)."""
    from simrec.trace.format import TraceReader

    r = TraceReader(path)
    info = r.info()
    if as_json:
        echo_json(info)
        return
    click.echo(f"file         {info['path']}  ({info['file_bytes']:,} bytes)")
    click.echo(f"format       simrec-trace {info['version'][0]}.{info['version'][1]}")
    click.echo(
        f"tables       {len(info['tables'])}   batch size {info['batch_size']}   "
        f"batches {info['num_batches']}   samples {info['num_samples']:,}   "
        f"lookups {info['num_lookups']:,}"
    )
    click.echo(
        f"index dtype  {info['index_dtype']}   weights {info['has_weights']}   "
        f"dense features {info['num_dense']}   labels {info['has_labels']}"
    )
    prov = info.get("provenance") or {}
    for k in sorted(prov):
        click.echo(f"provenance   {k}: {json.dumps(prov[k], sort_keys=True)}")
    click.echo(f"{'#':>4}  {'name':<16} {'rows':>14} {'dim':>5} dtype")
    for i, t in enumerate(info["tables"]):
        click.echo(f"{i:>4}  {t['name']:<16} {t['rows']:>14,} {t['dim']:>5} {t['dtype']}")


@trace.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
def trace_validate(path: str) -> None:
    """Check every batch of PATH (checksums, offsets, index ranges); exit 2 on the first fault."""
    from simrec.trace.format import TraceReader

    r = TraceReader(path)
    r.validate()
    click.echo(f"{path}: ok ({len(r)} batches, {r.total_lookups:,} lookups)")


@cli.group(cls=SimrecGroup)
def hw() -> None:
    """Inspect and check hardware YAML files (see docs/hw-yaml.md)."""


@hw.command("list")
def hw_list() -> None:
    """List the bundled hardware presets (hwconfigs/*.yaml)."""
    from simrec.hw import list_presets, preset_path

    for name in list_presets():
        click.echo(f"{name:<20} {preset_path(name)}")


@hw.command("validate")
@click.argument("path", type=str)
def hw_validate(path: str) -> None:
    """Load PATH (a YAML file or a preset name) with every check; exit 2 on the first fault."""
    from simrec.hw import load_hw

    cfg = load_hw(path)
    click.echo(f"{path}: ok ({len(cfg.devices)} devices, {len(cfg.links)} links)")


@hw.command("info")
@click.argument("path", type=str)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def hw_info(path: str, as_json: bool) -> None:
    """Print the devices and links of PATH (a YAML file or a preset name) with their headline numbers."""
    from simrec.hw import load_hw

    cfg = load_hw(path)
    rows = cfg.summary()
    if as_json:
        echo_json({"name": cfg.name, "description": cfg.description, "components": rows})
        return
    click.echo(f"{cfg.name}: {cfg.description}".rstrip(": "))
    keys = ["name", "kind", "capacity", "peak", "cores", "attached_to", "between"]
    for r in rows:
        click.echo("  " + "  ".join(f"{k}={r[k]}" for k in keys if r.get(k) not in (None, "")))


def _register() -> None:
    from simrec.calibrate.cli import calibrate_command
    from simrec.explore.cli import sweep_command
    from simrec.functional.cli import size_command, validate_command
    from simrec.report.cli import report_command
    from simrec.shard.cli import shard_command
    from simrec.sim.cli import simulate_command
    from simrec.trace.convert import convert_command, export_command
    from simrec.trace.generate import gen_command
    from simrec.trace.stats import stats_command

    trace.add_command(gen_command, "gen")
    trace.add_command(convert_command, "convert")
    trace.add_command(export_command, "export")
    trace.add_command(stats_command, "stats")
    cli.add_command(simulate_command, "simulate")
    cli.add_command(validate_command, "validate")
    cli.add_command(size_command, "model-size")
    cli.add_command(report_command, "report")
    cli.add_command(sweep_command, "sweep")
    cli.add_command(shard_command, "shard")
    cli.add_command(calibrate_command, "calibrate")


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="simrec", standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
