"""``simrec simulate``: the JSON contract, result files, and bad input -> exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from simrec.cli import SimrecGroup
from simrec.sim.cli import simulate_command
from simrec.trace.format import TableSpec, TraceHeader, write_trace


@click.group(cls=SimrecGroup)
def cli() -> None:
    """Test group (the lead registers simulate_command in simrec.cli)."""


cli.add_command(simulate_command)


def small_trace(path: Path, rows: int = 10_000, tables: int = 8) -> Path:
    rng = np.random.default_rng(0)
    h = TraceHeader(
        tables=tuple(TableSpec(name=f"t{i}", rows=rows, dim=16) for i in range(tables)),
        batch_size=64,
    )
    off = np.arange(tables * 64 + 1, dtype=np.int64) * 2
    bs = [{"offsets": off, "indices": rng.integers(0, 1000, tables * 128)} for _ in range(3)]
    return write_trace(path, h, bs)


@pytest.mark.parametrize("hw", ["cpu_dram", "multi_gpu"])
def test_json_contract_and_result_files(tmp_path, hw):
    t = small_trace(tmp_path / "s.trc")
    out = tmp_path / "out"
    r = CliRunner().invoke(
        cli,
        ["simulate", "--hw", hw, "--trace", str(t), "--json", "--out", str(out), "--model", "rm1"],
    )
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)
    for key in ("system", "samples_per_s", "lookups_per_s", "latency_s", "breakdown_s"):
        assert key in j
    assert set(j["latency_s"]) >= {"mean", "p50", "p95", "p99"}
    assert j["samples"] == 3 * 64 and j["lookups"] == 3 * 8 * 128
    assert j["system"] == hw
    assert (out / "result.json").is_file() and (out / "batches.csv").is_file()
    assert (out / "batches.parquet").is_file()


def test_summary_table_and_latency_mode(tmp_path):
    t = small_trace(tmp_path / "s.trc")
    r = CliRunner().invoke(
        cli,
        ["simulate", "--hw", "cpu_dram", "--trace", str(t), "--load", "latency", "--rate", "1e4"],
    )
    assert r.exit_code == 0, r.output
    assert "throughput" in r.output and "p99" in r.output and "utilisation" in r.output


def _run(args: list[str]):
    return CliRunner().invoke(cli, ["simulate", *args])


def test_bad_inputs_exit_2_with_a_clear_message(tmp_path):
    t = small_trace(tmp_path / "s.trc")
    # tables larger than all memory of the system
    huge = small_trace(tmp_path / "huge.trc", rows=10**12, tables=2)
    r = _run(["--hw", "cpu_dram", "--trace", str(huge)])
    assert r.exit_code == 2 and "does not fit" in r.output and "Fix:" in r.output
    # missing trace
    r = _run(["--hw", "cpu_dram", "--trace", str(tmp_path / "nope.trc")])
    assert r.exit_code == 2 and "nope.trc" in r.output
    # latency mode without a rate
    r = _run(["--hw", "cpu_dram", "--trace", str(t), "--load", "latency"])
    assert r.exit_code == 2 and "rate" in r.output
    # unknown model
    r = _run(["--hw", "cpu_dram", "--trace", str(t), "--model", "rm9"])
    assert r.exit_code == 2 and "rm1" in r.output
    # a plan that names a device the config lacks
    plan = tmp_path / "p.json"
    plan.write_text(
        json.dumps(
            {
                "devices": [{"name": "gpu42"}],
                "tables": [
                    {
                        "name": f"t{i}",
                        "rows": 10_000,
                        "dim": 16,
                        "bands": [{"device": "gpu42", "tier": "hbm", "rows": [0, 10_000]}],
                    }
                    for i in range(8)
                ],
            }
        )
    )
    r = _run(["--hw", "multi_gpu", "--trace", str(t), "--plan", str(plan)])
    assert r.exit_code == 2 and "gpu42" in r.output and str(plan) in r.output
    # malformed hardware YAML
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndevices: [\n")
    r = _run(["--hw", str(bad), "--trace", str(t)])
    assert r.exit_code == 2 and "bad.yaml" in r.output
    # fine mode on a system that has only the fast mode (the NPU SoC)
    r = _run(["--hw", "ascend910", "--trace", str(t), "--mode", "fine"])
    assert r.exit_code == 2 and "fine" in r.output
    assert "Traceback" not in r.output


def test_query_size_option(tmp_path):
    from simrec.errors import ConfigError
    from simrec.sim.cli import parse_query_sizes

    assert parse_query_sizes("16").size == 16
    assert parse_query_sizes("lognormal:32:0.7").sigma == 0.7
    f = tmp_path / "sizes.txt"
    f.write_text("# observed\n4\n9\n")
    assert parse_query_sizes(f"empirical:{f}").values == (4, 9)
    f.write_text("4\nx\n")
    with pytest.raises(ConfigError) as e:
        parse_query_sizes(f"empirical:{f}")
    assert e.value.where == "line 2"
    with pytest.raises(ConfigError):
        parse_query_sizes("gauss:3")
    t = small_trace(tmp_path / "s.trc")
    r = CliRunner().invoke(
        cli,
        ["simulate", "--hw", "cpu_dram", "--trace", str(t), "--json", "--load", "latency"]
        + ["--rate", "1e5", "--query-size", "lognormal:16:0.5", "--seed", "4"],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["samples"] == 3 * 64
