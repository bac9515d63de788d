"""simrec sweep: spec checks, grid/random points, Pareto front, resume, kill, Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from simrec.errors import ConfigError
from simrec.explore import expand_points, load_spec, pareto_mask, parse_spec, run_sweep
from simrec.explore.sweep import points_dir

REPO = Path(__file__).resolve().parents[1]
TRACE = str(REPO / "traces" / "criteo_sample.trc")

SPEC = {
    "name": "t",
    "systems": ["screc:", "cpu_dram"],
    "traces": [TRACE],
    "planners": ["statistical", "index", "default"],
    "parameters": {
        "screc.n_devices": [1, 2, 4],
        "screc.tt_rank": [8, 16],
        "devices.cpu*.cores_per_socket": [20, 40],
    },
}


def test_grid_has_every_combination():
    pts = expand_points(parse_spec(SPEC))
    # screc: 3 x 2 values x 2 planners; cpu_dram: 2 values x its one planner
    assert len(pts) == 3 * 2 * 2 + 2
    assert len({p.point_id for p in pts}) == len(pts)
    cpu = [p for p in pts if p.system == "cpu_dram"]
    assert {dict(p.params)["devices.cpu*.cores_per_socket"] for p in cpu} == {20, 40}
    assert all("cores_per_socket: 20" in p.hw_yaml for p in cpu if "20" in str(p.params))


def test_random_sample_is_seeded_subset():
    grid = {p.point_id for p in expand_points(parse_spec(SPEC))}
    a = expand_points(parse_spec({**SPEC, "sample": {"kind": "random", "n": 5, "seed": 3}}))
    b = expand_points(parse_spec({**SPEC, "sample": {"kind": "random", "n": 5, "seed": 3}}))
    c = expand_points(parse_spec({**SPEC, "sample": {"kind": "random", "n": 5, "seed": 4}}))
    assert [p.point_id for p in a] == [p.point_id for p in b]
    assert len(a) == 5 and {p.point_id for p in a} <= grid
    assert [p.point_id for p in a] != [p.point_id for p in c]


@pytest.mark.parametrize(
    ("params", "want"),
    [
        ({"screc.n_device": [1]}, "n_devices"),
        ({"devices.dramX.channels": [4]}, "dram0"),
        ({"devices.dram0.chanels": [4]}, "channels"),
    ],
)
def test_unknown_parameter_names_the_closest_key(params, want):
    with pytest.raises(ConfigError) as ei:
        parse_spec({**SPEC, "parameters": params})
    assert want in str(ei.value)


def test_unknown_top_level_key_and_planner():
    with pytest.raises(ConfigError, match="parameters"):
        parse_spec({**SPEC, "parameter": {}})
    with pytest.raises(ConfigError, match="statistical"):
        parse_spec({**SPEC, "planners": ["statistic"]})
    with pytest.raises(ConfigError, match="quote"):  # `- screc:` unquoted in YAML is a mapping
        parse_spec({**SPEC, "systems": [{"screc": None}]})


def test_pareto_mask_by_brute_force():
    rng = np.random.default_rng(0)
    s, e, c = rng.random(40), rng.random(40), rng.integers(1, 4, 40).astype(float)
    m = pareto_mask(s, e, c)
    for i in range(40):
        dominated = any(
            s[j] >= s[i]
            and e[j] <= e[i]
            and c[j] <= c[i]
            and (s[j], e[j], c[j]) != (s[i], e[i], c[i])
            for j in range(40)
        )
        assert m[i] == (not dominated)
    # a hand case: (fast, costly energy) and (slow, frugal) both survive, (slow, costly) does not
    assert list(pareto_mask([2, 1, 1], [2, 1, 2], [1, 1, 1])) == [True, True, False]


def test_sweep_runs_resumes_and_marks_pareto(tmp_path):
    spec = parse_spec({**SPEC, "parameters": {"screc.n_devices": [1, 2]}, "planners": None})
    out = tmp_path / "res.parquet"
    df, counts = run_sweep(spec, out, workers=1, progress=False)
    assert counts == {
        "points": 3,
        "run": 3,
        "skipped": 0,
        "errors": 0,
        "pareto": int(df.pareto.sum()),
    }
    assert (df.status == "ok").all() and df.pareto.any()
    assert "param:screc.n_devices" in df.columns
    # the front: no point beats a Pareto point on all of speed, energy and cost
    for _, p in df[df.pareto].iterrows():
        better = df[
            (df.samples_per_s >= p.samples_per_s)
            & (df.server_j_per_sample <= p.server_j_per_sample)
            & (df.cost <= p.cost)
        ]
        assert len(better) == 1
    files = sorted(points_dir(out).glob("*.json"))
    assert len(files) == 3
    files[0].unlink()
    df2, counts2 = run_sweep(spec, out, workers=1, progress=False)
    assert counts2["run"] == 1 and counts2["skipped"] == 2
    pd.testing.assert_frame_equal(df, df2)


def test_process_pool_gives_the_same_table(tmp_path):
    spec = parse_spec({**SPEC, "parameters": {"screc.n_devices": [1, 2]}, "planners": None})
    a, _ = run_sweep(spec, tmp_path / "a.parquet", workers=1, progress=False)
    b, _ = run_sweep(spec, tmp_path / "b.parquet", workers=2, progress=False)
    pd.testing.assert_frame_equal(a, b)


def test_a_failing_point_is_recorded_not_fatal(tmp_path):
    spec = parse_spec(
        {
            "systems": ["cpu_dram"],
            "traces": [TRACE],
            "parameters": {"devices.dram*.channels": [4, 8]},
        }
    )
    df, counts = run_sweep(spec, tmp_path / "r.parquet", workers=1, progress=False)
    assert counts["errors"] == 1
    bad = df[df.status == "error"].iloc[0]
    assert "capacity" in bad.error and not bad.pareto


def test_killed_sweep_loses_no_finished_point(tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        yaml.safe_dump(
            {
                **SPEC,
                "planners": None,
                "parameters": {"screc.n_devices": [1, 2, 3, 4, 5, 6], "screc.tt_rank": [4, 8]},
            }
        )
    )
    out = tmp_path / "res.parquet"
    d = points_dir(out)
    code = "from simrec.explore.cli import sweep_command; sweep_command()"
    cmd = [
        sys.executable,
        "-c",
        code,
        str(spec_path),
        "-o",
        str(out),
        "--workers",
        "1",
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while time.time() - t0 < 60 and len(list(d.glob("*.json"))) < 3 and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {f.name: json.loads(f.read_text()) for f in d.glob("*.json")}
    n_points = len(expand_points(load_spec(spec_path)))
    assert 3 <= len(finished) < n_points, "the sweep should have been killed part-way"
    assert not out.exists()
    _, counts = run_sweep(load_spec(spec_path), out, workers=1, progress=False)
    assert counts["skipped"] >= len(finished)
    assert counts["points"] == n_points and counts["run"] == n_points - counts["skipped"]
    for name, row in finished.items():  # finished rows were kept as written
        assert json.loads((d / name).read_text()) == row


def test_unreachable_dask_scheduler_is_a_clear_error(tmp_path):
    pytest.importorskip("dask.distributed")
    spec = parse_spec({**SPEC, "parameters": {}, "planners": None})
    with pytest.raises(ConfigError) as ei:
        run_sweep(
            spec, tmp_path / "r.parquet", scheduler="tcp://127.0.0.1:9", scheduler_timeout_s=2
        )
    assert "tcp://127.0.0.1:9" in str(ei.value) and "--scheduler" in str(ei.value)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_table(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    spec = parse_spec({**SPEC, "parameters": {"screc.n_devices": [1, 2]}, "planners": None})
    local, _ = run_sweep(spec, tmp_path / "a.parquet", workers=1, progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        dask_df, counts = run_sweep(
            spec, tmp_path / "b.parquet", scheduler=cluster.scheduler_address, progress=False
        )
    assert counts["run"] == 3
    pd.testing.assert_frame_equal(local, dask_df)


def test_nested_screc_fields_and_their_errors():
    from simrec.report.systems import build_screc_config

    cfg = build_screc_config({"device.cores.n_tt": 1, "tt_rank": 8})
    assert cfg.device.cores.n_tt == 1 and cfg.tt_rank == 8
    assert cfg.device.cores.n_emb == build_screc_config({}).device.cores.n_emb
    with pytest.raises(ConfigError, match="n_tt"):
        parse_spec({**SPEC, "parameters": {"screc.device.cores.n_ttt": [1]}})
    pts = expand_points(parse_spec({**SPEC, "parameters": {"screc.device.cores.n_tt": [1, 2]}}))
    assert len(pts) == 2 * 2 + 1  # two planners for screc; cpu_dram once


def test_load_query_size_axis(tmp_path):
    spec = parse_spec(
        {
            "systems": ["screc:"],
            "traces": [TRACE],
            "parameters": {"load.query_size": [32, 64]},
        }
    )
    df, _ = run_sweep(spec, tmp_path / "r.parquet", workers=1, progress=False)
    assert list(df["param:load.query_size"]) == [32, 64]
    assert (df.samples == 200).all()  # every sample is simulated, re-cut into queries
    # smaller queries: lower per-query latency (the trace batches are 128 and 72 samples)
    assert df.latency_p50_s.iloc[0] < df.latency_p50_s.iloc[1]
    with pytest.raises(ConfigError, match="query_size"):
        parse_spec({**SPEC, "parameters": {"load.querysize": [32]}})


def test_screc_hardware_yaml_takes_yaml_and_screc_parameters(tmp_path):
    screc_yaml = str(REPO / "hwconfigs" / "screc.yaml")
    if not Path(screc_yaml).exists():
        pytest.skip("no hwconfigs/screc.yaml")
    spec = parse_spec(
        {
            "systems": {"yaml": screc_yaml},
            "traces": [TRACE],
            "parameters": {
                "devices.ssd*.nand.read_latency": ["40 us", "75 us"],
                "screc.tt_rank": [8, 16],
            },
        }
    )
    pts = expand_points(spec)
    assert len(pts) == 4
    assert all("read_latency: 40 us" in p.hw_yaml for p in pts if "40 us" in str(p.params))
    df, counts = run_sweep(spec, tmp_path / "r.parquet", workers=1, progress=False)
    assert counts["errors"] == 0, df.error.tolist()
    assert (df.kind == "screc").all() and (df.device_j_per_sample > 0).all()
    with pytest.raises(ConfigError, match="n_devices"):
        from simrec.report.systems import parse_system, run_system

        s = parse_system(screc_yaml)
        s.screc["n_devices"] = 2
        run_system(s, TRACE)


def test_progress_bar_runs(tmp_path, capsys):
    spec = parse_spec({**SPEC, "parameters": {"screc.n_devices": [1]}, "planners": None})
    df, counts = run_sweep(spec, tmp_path / "r.parquet", workers=1, progress=True)
    assert counts["run"] == 2 and (df.status == "ok").all()
