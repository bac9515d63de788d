"""Generate docs/cli.md from click's own help, so the CLI reference cannot drift.

Run ``python -m simrec.report.clidoc > docs/cli.md``; ``tests/test_report_clidoc.py`` fails when
the file differs from what this prints. Commands whose click objects exist but are not yet
registered in :mod:`simrec.cli` (``report``, ``sweep``) are listed too, marked as such.
"""

from __future__ import annotations

import inspect
import sys

import click

__all__ = ["render_cli_reference", "PENDING"]


def _pending() -> dict[str, click.Command]:
    from simrec.explore.cli import sweep_command
    from simrec.report.cli import report_command

    return {"report": report_command, "sweep": sweep_command}


#: Commands documented here even before the lead registers them in simrec.cli.
PENDING = ("report", "sweep")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _help_option(cmd: click.Command, ctx: click.Context) -> list[click.Option]:
    """The help option as ``ctx`` defines it (not ``cmd.get_params``: click caches the help option
    the first time a command runs, so that would depend on what ran before in the process)."""
    names = cmd.get_help_option_names(ctx) if cmd.add_help_option else []
    if not names:
        return []
    return [click.Option(names, is_flag=True, expose_value=False, help=_HELP_TEXT)]


_HELP_TEXT = "Show this message and exit."


def _command_md(
    cmd: click.Command, path: list[str], note: str = "", parent: click.Context | None = None
) -> list[str]:
    # The context chain a real invocation builds (parent contexts and the command's own
    # context_settings, e.g. ``-h``), so the help flags are the ones `simrec ... -h` accepts.
    ctx = click.Context(cmd, info_name=path[-1], parent=parent, **cmd.context_settings)
    title = " ".join(path)
    out = [f"### `{title}`{note}", ""]
    pieces = cmd.collect_usage_pieces(ctx)
    out += ["```", f"{title} {' '.join(pieces)}".rstrip(), "```", ""]
    if cmd.help:
        out += [inspect.cleandoc(cmd.help), ""]
    rows = []
    for p in [*cmd.params, *_help_option(cmd, ctx)]:
        rec = p.get_help_record(ctx)
        if rec is None:
            if isinstance(p, click.Argument):
                rows.append((p.human_readable_name, "argument"))
            continue
        rows.append((rec[0], rec[1] or ("argument" if isinstance(p, click.Argument) else "")))
    if rows:
        out += ["| option | meaning |", "|---|---|"]
        out += [f"| `{_md_escape(a)}` | {_md_escape(b)} |" for a, b in rows]
        out.append("")
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            out += _command_md(cmd.commands[name], [*path, name], parent=ctx)
    return out


def render_cli_reference() -> str:
    """The Markdown text of docs/cli.md."""
    from simrec.cli import cli

    lines = [
        "# simrec command-line reference",
        "",
        "Generated from click's help by `python -m simrec.report.clidoc > docs/cli.md`;",
        "`tests/test_report_clidoc.py` checks that this file is current. Every command turns an",
        "input error into one paragraph on stderr (file, place, fix) and exit code 2; `--debug`",
        "shows the traceback. See [getting-started.md](getting-started.md) for a walk-through,",
        "[hw-yaml.md](hw-yaml.md) for hardware files, [energy.md](energy.md) and",
        "[report.md](report.md) for energy, reports and sweeps.",
        "",
        "## Commands",
        "",
    ]
    lines += _command_md(cli, ["simrec"])
    missing = {k: v for k, v in _pending().items() if k not in cli.commands}
    root = click.Context(cli, info_name="simrec", **cli.context_settings)
    for name, cmd in missing.items():
        lines += _command_md(cmd, ["simrec", name], " (not yet registered in simrec.cli)", root)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render_cli_reference())
