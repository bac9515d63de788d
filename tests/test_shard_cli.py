"""``simrec shard`` (simrec.shard.cli.shard_command) through click's test runner."""

from __future__ import annotations

import json

import click
import numpy as np
import pytest
from click.testing import CliRunner

from simrec.cli import SimrecGroup
from simrec.shard.cli import shard_command


@pytest.fixture(scope="module")
def app() -> click.Group:
    @click.group(cls=SimrecGroup)
    def root() -> None:
        """Test root."""

    root.add_command(shard_command, "shard")
    return root


def _run(app: click.Group, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_json_contract_with_the_mip(app: click.Group, tmp_path) -> None:
    out = tmp_path / "plan.json"
    code, stdout, _ = _run(
        app, "shard", "--hw", "cpu_dram", "--synthetic", "12", "--solve", "--json", "-o", str(out)
    )
    assert code == 0, stdout
    d = json.loads(stdout)
    for key in (
        "status",
        "objective_s",
        "bound_s",
        "gap",
        "solve_time_s",
        "num_variables",
        "num_constraints",
        "heuristics",
    ):
        assert key in d
    assert d["bound_s"] <= d["objective_s"] * (1 + 1e-9)
    assert set(d["heuristics"]) >= {"size_greedy", "torchrec_greedy", "pooled_lpt", "random"}
    assert all(v is None or v >= d["objective_s"] * (1 - 1e-9) for v in d["heuristics"].values())
    from simrec.shard.plan import load_plan

    plan = load_plan(out)
    assert len(plan.tables) == 12
    assert plan.solver is not None and plan.solver.status == d["status"]


def test_heuristic_only_run_and_human_output(app: click.Group) -> None:
    code, stdout, _ = _run(
        app, "shard", "--csd", "2", "--synthetic", "10", "--heuristic", "dim_greedy"
    )
    assert code == 0, stdout
    assert "dim_greedy" in stdout and "makespan" in stdout
    assert "size_greedy" not in stdout


def test_trace_input(app: click.Group, tmp_path) -> None:
    from simrec.trace.format import TableSpec, TraceHeader, TraceWriter

    hdr = TraceHeader(
        tables=(TableSpec(name="a", rows=1000, dim=16), TableSpec(name="b", rows=300, dim=8)),
        batch_size=8,
    )
    path = tmp_path / "t.trc"
    rng = np.random.default_rng(1)
    with TraceWriter(path, hdr) as w:
        for _ in range(4):
            lengths = rng.integers(0, 4, 16)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            n_a = int(lengths[:8].sum())
            n_b = int(lengths[8:].sum())
            idx = np.concatenate([rng.zipf(1.2, n_a) % 1000, rng.integers(0, 300, n_b)])
            w.write_batch(offsets, idx)
    out = tmp_path / "plan.json"
    code, stdout, _ = _run(
        app, "shard", "--hw", "cpu_dram", "--trace", str(path), "--solve", "--json", "-o", str(out)
    )
    assert code == 0, stdout
    d = json.loads(stdout)
    assert d["status"] == "Optimal"
    from simrec.shard.plan import load_plan

    # the plan ranks each table's touched rows by access count, hottest first
    plan = load_plan(out, trace_header=hdr)
    counts = np.zeros(1000, dtype=np.int64)
    from simrec.trace.format import TraceReader

    for b in TraceReader(path):
        np.add.at(counts, b.table_indices(0), 1)
    hot = plan.table("a").order.hot_rows
    assert plan.table("a").order.kind == "hot_set"
    assert sorted(hot) == sorted(np.flatnonzero(counts).tolist())
    assert np.all(np.diff(counts[hot]) <= 0)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--hw", "cpu_dram", "--synthetic", "4", "--solve", "--solver", "gurobi"), "--solver"),
        (("--hw", "cpu_dram", "--synthetic", "4", "--heuristic", "best"), "--heuristic"),
        (("--synthetic", "4"), "--hw/--csd"),
        (("--hw", "cpu_dram"), "--trace/--synthetic"),
        (("--hw", "no_such_preset", "--synthetic", "4"), "no_such_preset"),
    ],
)
def test_bad_input_is_one_paragraph_and_exit_2(app: click.Group, args, needle) -> None:
    code, stdout, stderr = _run(app, "shard", *args)
    assert code == 2
    assert stderr.startswith("error: ") and needle in stderr
    assert "Traceback" not in stderr
    assert stdout == ""


def test_infeasible_model_is_actionable(app: click.Group, tmp_path) -> None:
    # 300 synthetic tables of up to 4e9 rows cannot fit one CPU-DRAM server's 2 x 128 GiB
    out = tmp_path / "plan.json"
    code, _, stderr = _run(
        app, "shard", "--hw", "cpu_dram", "--synthetic", "300", "--solve", "-o", str(out)
    )
    assert code == 2
    assert "shortfall" in stderr and "Fix:" in stderr
    assert not out.exists()


def _small_trace(path, tables: int = 6, batches: int = 3, batch: int = 64) -> None:
    from simrec.trace.format import TableSpec, TraceHeader, TraceWriter

    rng = np.random.default_rng(7)
    rows = rng.integers(1_000, 50_000, tables)
    dims = rng.choice([16, 32, 64], tables)
    specs = tuple(
        TableSpec(name=f"t{i}", rows=int(r), dim=int(d))
        for i, (r, d) in enumerate(zip(rows, dims, strict=True))
    )
    with TraceWriter(path, TraceHeader(tables=specs, batch_size=batch)) as w:
        for _ in range(batches):
            lengths = rng.integers(0, 8, tables * batch)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            idx = [
                (rng.zipf(1.1, int(lengths[t * batch : (t + 1) * batch].sum())) - 1) % rows[t]
                for t in range(tables)
            ]
            w.write_batch(offsets, np.concatenate(idx))


def test_verify_replays_the_plan_in_the_simulator(app: click.Group, tmp_path) -> None:
    path = tmp_path / "v.trc"
    _small_trace(path)
    code, stdout, _ = _run(
        app, "shard", "--hw", "multi_gpu", "--trace", str(path), "--solve", "--time-limit", "2",
        "--verify", "--json",
    )  # fmt: skip
    assert code == 0, stdout
    v = json.loads(stdout)["verify"]
    assert v["system"] == "multi_gpu" and v["batches"] == 3
    assert v["predicted_s"] == pytest.approx(json.loads(stdout)["makespan_s"])
    # the planner's cost model and the DES agree on the embedding stage within 25 %
    assert abs(v["error"]) < 0.25


def test_verify_needs_a_plan_reading_simulator(app: click.Group, tmp_path) -> None:
    path = tmp_path / "v.trc"
    _small_trace(path, tables=2, batches=1)
    code, _, stderr = _run(app, "shard", "--hw", "cpu_dram", "--trace", str(path), "--verify")
    assert code == 2 and "--verify" in stderr


def test_screc_config_plans_csd_devices_and_verifies(app: click.Group, tmp_path) -> None:
    # hwconfigs/screc.yaml has 4 `kind: csd` devices: the planner builds SmartSSD-like devices
    # from their own parameters and --verify replays the plan in the SCRec system
    path = tmp_path / "v.trc"
    _small_trace(path)
    code, stdout, _ = _run(
        app, "shard", "--hw", "screc", "--trace", str(path), "--solve", "--time-limit", "3",
        "--verify", "--json",
    )  # fmt: skip
    assert code == 0, stdout
    d = json.loads(stdout)
    assert len(d["device_s"]) == 4
    v = d["verify"]
    assert v["system"] == "screc" and v["batches"] == 3
    assert v["predicted_s"] == pytest.approx(d["makespan_s"])
    assert abs(v["error"]) < 0.5


def test_human_output_has_no_highs_banner(tmp_path) -> None:
    # HiGHS prints "Running HiGHS ..." from C++ when a process builds its first Highs object,
    # before PuLP can switch its output off; it must reach neither stdout nor stderr. A fresh
    # interpreter, because the banner comes once per process.
    import subprocess
    import sys

    code = "import sys; from simrec.cli import main; sys.argv = ['simrec'] + sys.argv[1:]; main()"
    r = subprocess.run(
        [sys.executable, "-c", code, "shard", "--hw", "cpu_dram", "--synthetic", "8", "--solve"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("problem "), r.stdout[:200]
    assert "HiGHS" not in r.stdout and "HiGHS" not in r.stderr
    assert "solver    highs (full)" in r.stdout


def test_fine_tables_option_reaches_the_problem(app: click.Group) -> None:
    """--fine-tables N gives N tables the finer CDF (more placement options, so more variables)
    and can only improve the optimum; a negative count is refused by click with exit 2."""
    res = {}
    for n in ("0", "3"):
        code, stdout, _ = _run(
            app,
            *("shard", "--hw", "multi_gpu", "--synthetic", "20", "--fine-tables", n),
            *("--solve", "--time-limit", "20", "--json"),
        )
        assert code == 0, stdout
        res[n] = json.loads(stdout)
    assert res["3"]["num_variables"] > res["0"]["num_variables"]
    assert res["0"]["status"] == res["3"]["status"] == "Optimal"
    # the coarse breakpoints are a subset of the refined ones: the optimum cannot get worse
    assert res["3"]["objective_s"] <= res["0"]["objective_s"] * (1 + 2e-4)
    code, _, _ = _run(app, "shard", "--hw", "multi_gpu", "--synthetic", "5", "--fine-tables", "-1")
    assert code == 2
