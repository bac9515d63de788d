"""Every non-Python file inside the package is declared as package data, so a wheel has it."""

from __future__ import annotations

import fnmatch
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_all_package_files_are_package_data() -> None:
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = conf["tool"]["setuptools"]["package-data"]["simrec"]
    files = subprocess.run(
        ["git", "ls-files", "simrec"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    missing = [
        f
        for f in files
        if not f.endswith(".py")
        and not any(fnmatch.fnmatch(f.removeprefix("simrec/"), p) for p in patterns)
    ]
    assert not missing, f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"
