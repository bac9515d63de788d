"""The report's HTML rendered in a real headless browser (Chromium) is not blank.

Needs Chromium (Debian: ``apt-get install -y chromium``); skipped with a message otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
TRACE = REPO / "traces" / "criteo_sample.trc"

BROWSER = next(
    (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
    None,
)

pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no headless browser: install Chromium (apt-get install -y chromium) to run this test",
)


def _screenshot(html: Path, png: Path) -> np.ndarray:
    import matplotlib.image as mpimg

    cmd = [
        str(BROWSER),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--hide-scrollbars",
        "--window-size=1200,1600",
        f"--screenshot={png}",
        html.resolve().as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return mpimg.imread(png)[..., :3]


def test_report_html_renders_non_blank(tmp_path):
    from simrec.report.cli import report_command

    r = CliRunner().invoke(
        report_command,
        ["--trace", str(TRACE), "--hw", "cpu_dram", "--hw", "multi_gpu", "-o", str(tmp_path)],
    )
    assert r.exit_code == 0, repr(r.exception)
    img = _screenshot(tmp_path / "report.html", tmp_path / "shot.png")
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    non_white = np.mean(img.min(axis=2) < 0.9)
    assert non_white > 0.03, f"only {non_white:.1%} of the screenshot is not white"
    assert img.std() > 0.05
    # colour: the bar charts (matplotlib's tab colours) are on the first screen
    sat = img.max(axis=2) - img.min(axis=2)
    assert np.mean(sat > 0.3) > 0.002


def test_blank_page_fails_the_same_check(tmp_path):
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>")
    img = _screenshot(page, tmp_path / "blank.png")
    assert np.mean(img.min(axis=2) < 0.9) < 0.01
