"""simrec report: tables, exports, speedup/energy vs the baseline, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from simrec.errors import ConfigError
from simrec.report.cli import report_command, split_named

REPO = Path(__file__).resolve().parents[1]
TRACE = REPO / "traces" / "criteo_sample.trc"
HWS = ["--hw", "cpu_dram", "--hw", "gpus=multi_gpu", "--hw", "screc:n_devices=2"]


def _invoke(args: list[str]):
    return CliRunner().invoke(report_command, args, catch_exceptions=True)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep")
    r = _invoke(["--trace", str(TRACE), *HWS, "-o", str(out)])
    assert r.exit_code == 0, r.output + repr(r.exception)
    return out


def test_split_named():
    assert split_named("base=cpu_dram") == ("base", "cpu_dram")
    assert split_named("screc:n_devices=4") == (None, "screc:n_devices=4")
    assert split_named("hwconfigs/cpu_dram.yaml") == (None, "hwconfigs/cpu_dram.yaml")


def test_report_files_and_every_metric_names_its_model(report_dir):
    for f in ("report.json", "report.csv", "report.parquet", "report.html"):
        assert (report_dir / f).stat().st_size > 0
    doc = json.loads((report_dir / "report.json").read_text())
    assert doc["baseline"] == "cpu_dram"
    assert [s["system"] for s in doc["systems"]] == [
        "cpu_dram",
        "gpus",
        "screc_builtin_n_devices=2",
    ]
    assert all(m["model"] for m in doc["metrics"])
    assert all(e["estimator"] and e["source"] for e in doc["energy"])
    csv = pd.read_csv(report_dir / "report.csv")
    pq = pd.read_parquet(report_dir / "report.parquet")
    assert list(csv.columns) == ["trace", "system", "metric", "value", "unit", "model"]
    assert len(csv) == len(pq) and np.allclose(csv.value, pq.value, equal_nan=True)


def test_speedup_and_energy_efficiency_match_independent_runs(report_dir):
    from simrec.energy import estimate_energy, table_from_hw
    from simrec.hw import load_hw
    from simrec.sim.cli import simulate

    runs = {}
    for name in ("cpu_dram", "multi_gpu"):
        cfg = load_hw(name)
        r = simulate(cfg, TRACE)
        runs[name] = (r, estimate_energy(r, table_from_hw(cfg), cfg))
    doc = json.loads((report_dir / "report.json").read_text())
    m = {(x["system"], x["metric"]): x["value"] for x in doc["metrics"]}
    base, gpu = runs["cpu_dram"], runs["multi_gpu"]
    assert m[("gpus", "speedup")] == pytest.approx(gpu[0].samples_per_s / base[0].samples_per_s)
    assert m[("cpu_dram", "speedup")] == pytest.approx(1.0)
    eff = base[1].server_j_per_sample / gpu[1].server_j_per_sample
    assert m[("gpus", "energy_efficiency_server")] == pytest.approx(eff)
    eff_d = base[1].device_j_per_sample / gpu[1].device_j_per_sample
    assert m[("gpus", "energy_efficiency_device")] == pytest.approx(eff_d)
    assert m[("gpus", "latency_p99_s")] == pytest.approx(gpu[0].latency_s["p99"])


def test_html_is_self_contained_with_four_figures(report_dir):
    html = (report_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "utilisation-scaled TDP" in html  # the estimator is named in the page


def test_same_inputs_give_byte_identical_outputs(report_dir, tmp_path):
    r = _invoke(["--trace", str(TRACE), *HWS, "-o", str(tmp_path)])
    assert r.exit_code == 0
    for f in ("report.json", "report.csv", "report.html"):
        assert (tmp_path / f).read_bytes() == (report_dir / f).read_bytes(), f


def test_baseline_choice_and_unknown_baseline(tmp_path):
    r = _invoke(["--trace", str(TRACE), *HWS, "--baseline", "gpus", "-o", str(tmp_path)])
    assert r.exit_code == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    m = {(x["system"], x["metric"]): x["value"] for x in doc["metrics"]}
    assert m[("gpus", "speedup")] == pytest.approx(1.0)
    r = _invoke(["--trace", str(TRACE), *HWS, "--baseline", "gpu", "-o", str(tmp_path / "b")])
    assert isinstance(r.exception, ConfigError)
    assert "gpus" in str(r.exception)  # the closest valid name


def _other_shape_trace(path: Path) -> Path:
    from simrec.trace.format import TableSpec, TraceHeader, write_trace

    h = TraceHeader(tables=(TableSpec(name="t0", rows=10, dim=16),), batch_size=2)
    b = {"offsets": np.array([0, 1, 2], dtype=np.int64), "indices": np.array([1, 2])}
    return write_trace(path, h, [b])


def test_traces_of_different_shapes_are_an_error(tmp_path):
    other = _other_shape_trace(tmp_path / "other.trc")
    r = _invoke(
        [
            "--trace",
            str(TRACE),
            "--trace",
            str(other),
            "--hw",
            "cpu_dram",
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert isinstance(r.exception, ConfigError)
    msg = str(r.exception)
    assert "other.trc" in msg and "tables" in msg and "shape" in msg
    assert not (tmp_path / "o" / "report.json").exists()


def test_two_traces_of_one_shape(tmp_path):
    import shutil

    t2 = tmp_path / "copy.trc"
    shutil.copy(TRACE, t2)
    r = _invoke(
        [
            "--trace",
            str(TRACE),
            "--trace",
            str(t2),
            "--hw",
            "cpu_dram",
            "--hw",
            "multi_gpu",
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert r.exit_code == 0, repr(r.exception)
    doc = json.loads((tmp_path / "o" / "report.json").read_text())
    assert len(doc["systems"]) == 4


def test_missing_inputs_are_errors(tmp_path):
    r = _invoke(["--hw", "cpu_dram", "-o", str(tmp_path)])
    assert isinstance(r.exception, ConfigError)
    r = _invoke(["--trace", str(TRACE), "--hw", "screc:n_device=2", "-o", str(tmp_path)])
    assert isinstance(r.exception, ConfigError) and "n_devices" in str(r.exception)


def test_report_from_a_sweep(tmp_path):
    from simrec.explore import parse_spec, run_sweep

    spec = parse_spec(
        {
            "systems": ["screc:", "cpu_dram"],
            "traces": [str(TRACE)],
            "parameters": {"screc.n_devices": [1, 2]},
        }
    )
    run_sweep(spec, tmp_path / "res.parquet", workers=1, progress=False)
    r = _invoke(["--sweep", str(tmp_path / "res.parquet"), "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, repr(r.exception)
    html = (tmp_path / "o" / "sweep.html").read_text()
    assert "Pareto" in html and html.count("data:image/png;base64,") == 1
    r = _invoke(["--sweep", str(TRACE), "-o", str(tmp_path / "o2")])
    assert isinstance(r.exception, ConfigError)


def test_errors_through_the_simrec_group_are_one_paragraph_and_exit_2(tmp_path):
    import click

    from simrec.cli import SimrecGroup
    from simrec.explore.cli import sweep_command

    @click.group(cls=SimrecGroup)
    def grp() -> None:
        pass

    grp.add_command(report_command, "report")
    grp.add_command(sweep_command, "sweep")
    r = CliRunner().invoke(
        grp, ["report", "--trace", str(TRACE), "--hw", "nope.yaml", "-o", str(tmp_path)]
    )
    assert r.exit_code == 2 and "Traceback" not in r.output
    spec = tmp_path / "s.yaml"
    spec.write_text(f"systems: [screc]\ntraces: [{TRACE}]\nparameters: {{screc.tt_rnk: [4]}}\n")
    r = CliRunner().invoke(grp, ["sweep", str(spec), "-o", str(tmp_path / "r.parquet")])
    assert r.exit_code == 2 and "tt_rank" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "r.parquet").exists()
