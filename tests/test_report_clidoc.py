"""docs/cli.md is generated from click's help and must be current."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current():
    from simrec.report.clidoc import render_cli_reference

    want = render_cli_reference()
    have = (REPO / "docs" / "cli.md").read_text()
    assert have == want, "docs/cli.md is stale: run python -m simrec.report.clidoc > docs/cli.md"


def test_cli_reference_lists_every_command_and_option():
    import click

    from simrec.cli import cli
    from simrec.report.clidoc import render_cli_reference

    text = render_cli_reference()

    def walk(cmd: click.Command, path: list[str]) -> None:
        assert f"### `{' '.join(path)}`" in text
        for p in cmd.params:
            if isinstance(p, click.Option):
                assert p.opts[0] in text, (path, p.opts)
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])

    walk(cli, ["simrec"])
    for name in ("report", "sweep"):
        assert f"### `simrec {name}`" in text
    assert "--baseline" in text and "--scheduler" in text


def test_cli_reference_does_not_depend_on_what_ran_before():
    """click caches a command's help option on first use; running a subcommand on its own (as
    many tests do) must not change the reference, and the help flags are the real ones."""
    from click.testing import CliRunner

    from simrec.report.clidoc import render_cli_reference
    from simrec.trace.convert import convert_command

    before = render_cli_reference()
    assert CliRunner().invoke(convert_command, ["--help"]).exit_code == 0  # caches `--help` only
    assert render_cli_reference() == before
    assert "### `simrec trace convert`" in before
    part = before.split("### `simrec trace convert`")[1].split("###")[0]
    assert "| `-h, --help` |" in part  # inherited from the root group, as `simrec ... -h` accepts
