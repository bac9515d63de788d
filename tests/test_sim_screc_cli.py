"""``simrec simulate`` on the SCRec preset: the JSON contract (``devices``, ``speedup_vs``,
``energy_efficiency_vs``, ``ablations``) and bad input -> exit code 2 with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from simrec.cli import SimrecGroup
from simrec.sim.cli import simulate_command
from simrec.trace.format import TableSpec, TraceHeader, write_trace
from simrec.trace.generate import gen_zipf

PRESET = str(Path(__file__).resolve().parents[1] / "hwconfigs" / "screc.yaml")


@click.group(cls=SimrecGroup)
def cli() -> None:
    """Test group."""


cli.add_command(simulate_command)


def _run(*args: str):
    return CliRunner().invoke(cli, ["simulate", *args])


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("screc_cli") / "z.trc"
    gen_zipf(p, tables=8, rows=200_000, dim=16, alpha=1.05, batches=2, batch_size=512, pooling=8)
    return p


def test_summary_table(trace: Path) -> None:
    r = _run("--hw", PRESET, "--trace", str(trace))
    assert r.exit_code == 0, r.output
    assert "screc (screc, fast mode" in r.output
    for name in ("ssd0", "ssd1", "ssd2", "ssd3"):
        assert f"  {name} " in r.output
    assert "uJ/sample" in r.output


def test_json_contract_with_baselines(trace: Path) -> None:
    r = _run(
        "--hw", PRESET, "--trace", str(trace), "--json",
        "--baseline", "hwconfigs/cpu_dram.yaml", "--baseline", "hwconfigs/multi_gpu.yaml",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)
    assert j["kind"] == "screc"
    assert [d["name"] for d in j["devices"]] == ["ssd0", "ssd1", "ssd2", "ssd3"]
    for d in j["devices"]:
        for key in ("nand", "ddr4", "sram", "emb_cores", "tt_cores", "mlp_cores"):
            assert 0.0 <= d["utilisation"][key] <= 1.0
    # every lookup of the trace is served by exactly one tier of one device
    c = j["counters"]
    served = c["sram_rows"] + c["ddr_rows"] + c["cold_rows"] + c["tt_rows"]
    assert served == j["lookups"]
    assert set(j["speedup_vs"]) == {"cpu_dram", "multi_gpu"}
    assert set(j["energy_efficiency_vs"]) == {"cpu_dram", "multi_gpu"}
    for name, b in j["baselines"].items():
        # the ratios are the baselines' own figures divided as documented
        assert j["speedup_vs"][name] == pytest.approx(j["samples_per_s"] / b["samples_per_s"])
        assert j["energy_efficiency_vs"][name] == pytest.approx(
            b["energy"]["server_j_per_sample"] / j["energy"]["server_j_per_sample"]
        )
    assert j["baselines"]["cpu_dram"]["kind"] == "cpu_dram"
    assert j["baselines"]["multi_gpu"]["kind"] == "multi_gpu"


def test_ablations(trace: Path) -> None:
    r = _run(
        "--hw", PRESET, "--trace", str(trace), "--json", "--screc", "ddr_fraction=0.001",
        "--ablation", "no-tt", "--ablation", "no-stat-sharding", "--ablation", "uniform-cores",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)
    a = j["ablations"]
    assert set(a) == {"no-tt", "no-stat-sharding", "uniform-cores"}
    # index sharding leaves hot rows on NAND: slower than statistical sharding
    assert a["no-stat-sharding"]["slowdown"] > 1.0
    assert a["no-stat-sharding"]["options"] == {"sharding": "index"}
    for v in a.values():
        assert v["slowdown"] == pytest.approx(j["samples_per_s"] / v["samples_per_s"])


def test_screc_options_change_the_system(trace: Path) -> None:
    r1 = json.loads(_run("--hw", PRESET, "--trace", str(trace), "--json").output)
    r2 = _run("--hw", PRESET, "--trace", str(trace), "--json", "--screc", "ddr_fraction=0")
    assert r2.exit_code == 0, r2.output
    j2 = json.loads(r2.output)
    assert j2["counters"]["ddr_rows"] == 0 and r1["counters"]["ddr_rows"] >= 0
    assert sum(d["placement"]["ddr4_bytes"] for d in j2["devices"]) == 0


def _tiny_trace(path: Path) -> Path:
    h = TraceHeader(
        tables=tuple(TableSpec(name=f"t{i}", rows=1000, dim=16) for i in range(2)), batch_size=4
    )
    off = np.arange(2 * 4 + 1, dtype=np.int64)
    return write_trace(path, h, [{"offsets": off, "indices": np.arange(8) % 1000}])


def test_plan_naming_devices_the_config_lacks_exits_2(tmp_path: Path) -> None:
    from simrec.shard.plan import single_device_plan

    t = _tiny_trace(tmp_path / "t.trc")
    from simrec.trace.format import read_trace

    plan = single_device_plan(read_trace(t).header, device="ssd9", tier="dram")
    plan.save(tmp_path / "plan.json")
    r = _run("--hw", PRESET, "--trace", str(t), "--plan", str(tmp_path / "plan.json"))
    assert r.exit_code == 2, r.output
    assert "ssd9" in r.output and "Fix:" in r.output and "Traceback" not in r.output


def test_core_configuration_over_the_fpga_budget_exits_2(tmp_path: Path) -> None:
    t = _tiny_trace(tmp_path / "t.trc")
    hw = tmp_path / "big.yaml"
    hw.write_text(
        yaml.safe_dump(
            {
                "extends": PRESET,
                "name": "big",
                "devices": {
                    n: {"cores": {"compute_centric": 3, "mlp": 2}}
                    for n in ("ssd0", "ssd1", "ssd2", "ssd3")
                },
            }
        )
    )
    r = _run("--hw", str(hw), "--trace", str(t))
    assert r.exit_code == 2, r.output
    assert "big.yaml" in r.output and "DSP" in r.output and "budget" in r.output
    assert "Fix:" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize(
    "args, text",
    [
        (["--screc", "tt_rnak=8"], "did you mean 'tt_rank'"),
        (["--screc", "mlp_on=gpu"], "mlp_on"),
        (["--screc", "ddr_fraction=2"], "ddr_fraction"),
    ],
)
def test_bad_screc_options_exit_2(tmp_path: Path, args: list[str], text: str) -> None:
    t = _tiny_trace(tmp_path / "t.trc")
    r = _run("--hw", PRESET, "--trace", str(t), *args)
    assert r.exit_code == 2, r.output
    assert text in r.output and "Fix:" in r.output


def test_baseline_on_a_non_screc_config_exits_2(tmp_path: Path) -> None:
    t = _tiny_trace(tmp_path / "t.trc")
    r = _run("--hw", "cpu_dram", "--trace", str(t), "--baseline", "multi_gpu")
    assert r.exit_code == 2 and "SCRec" in r.output and "Fix:" in r.output
    r = _run("--hw", PRESET, "--trace", str(t), "--baseline", PRESET)
    assert r.exit_code == 2 and "baseline" in r.output and "Fix:" in r.output
