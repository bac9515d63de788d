"""The README contract: its first screen holds exactly two commands, and .ci/run runs them verbatim."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _first_screen_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    first = text.split("\n---\n", 1)[0]
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", first, flags=re.S)
    return [ln for b in blocks for ln in b.strip().splitlines() if ln.strip()]


def test_readme_first_screen_has_exactly_two_commands() -> None:
    cmds = _first_screen_commands()
    assert len(cmds) == 2, cmds
    assert "pip install" in cmds[0] and "simrec " in cmds[0]
    assert "pip install" in cmds[1] and "pytest" in cmds[1]
    assert len((REPO / "README.md").read_text().split("\n---\n", 1)[0].splitlines()) <= 40


def test_ci_extracts_the_same_commands() -> None:
    """.ci/run finds the commands by their markers; check that the extraction yields them."""
    cmds = _first_screen_commands()
    for marker, want in (("main-command", cmds[0]), ("test-command", cmds[1])):
        got = subprocess.run(
            ["awk", f"/<!-- {marker} -->/{{getline; getline; print; exit}}", "README.md"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert got == want
    ci = (REPO / ".ci" / "run").read_text()
    assert 'bash -c "$TEST_CMD"' in ci and 'bash -c "$MAIN_CMD"' in ci


def test_main_command_inputs_are_shipped() -> None:
    """Every file the main command names exists in the repository (it must work on a fresh clone)."""
    cmd = _first_screen_commands()[0]
    for tok in cmd.split():
        if tok.startswith(("traces/", "hwconfigs/")):
            assert (REPO / tok).is_file(), tok
