"""Held-out CPU set v3: new shapes, measured last by the probe, validated with ``--heldout v3``.

Covers: no v3 shape is a calibration point's or a v2 workload's (on several LLC sizes, full and
quick), v3 spans the issue's ranges and the three regimes, the probe measures v3 after v2 and
the drift sentinels with the chosen implementation only, and ``validate --measure --heldout v3``
reports the v3 error from a probe (and refuses, naming the file and field, a probe without v3,
``--record`` with v3, and an unknown set).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_calibrate as TC  # the planted CPU model, its synthetic probe and CLI helpers
from click.testing import CliRunner

from simrec.calibrate import fit as F
from simrec.calibrate.bench_cpu import Measurement, cpu_calibration_workloads
from simrec.calibrate.heldout import (
    HELDOUT_SETS,
    cpu_heldout,
    cpu_heldout_set_for,
    cpu_heldout_v3,
)
from simrec.errors import SimrecError

MiB = 2**20
LLCS = [32 * MiB, 300 * MiB, None]


def _shape(w) -> tuple[int, int, int]:
    return (w.dim, w.pooling, w.batch)


@pytest.mark.parametrize("llc", LLCS)
@pytest.mark.parametrize("quick", [False, True])
def test_v3_shapes_are_new(llc: int | None, quick: bool) -> None:
    v3 = cpu_heldout_v3(quick, llc)
    seen = {_shape(w) for w in cpu_calibration_workloads(False, llc)}
    seen |= {_shape(w) for w in cpu_calibration_workloads(True, llc)}
    seen |= {_shape(w) for w in cpu_heldout(False, llc)} | {_shape(w) for w in cpu_heldout(True)}
    assert not {_shape(w) for w in v3} & seen
    assert len({_shape(w) for w in v3}) == len(v3)
    assert all(w.name.startswith("h3") for w in v3)
    assert not {w.name for w in v3} & {w.name for w in cpu_heldout(False, llc)}


def test_v3_spans_the_ranges_and_regimes() -> None:
    llc = 300 * MiB
    v3 = cpu_heldout_v3(llc_bytes=llc)
    assert len(v3) == 14
    assert min(w.dim for w in v3) >= 16 and max(w.dim for w in v3) <= 256
    assert {min(w.pooling for w in v3), max(w.pooling for w in v3)} == {1, 64}
    assert {min(w.batch for w in v3), max(w.batch for w in v3)} == {512, 65_536}
    assert {w.dist for w in v3} == {"uniform", "zipf"}
    private = [w for w in v3 if w.table_bytes <= 512 * 1024]
    llcres = [w for w in v3 if 512 * 1024 < w.table_bytes < llc]
    dram = [w for w in v3 if w.table_bytes >= 9 * llc - 4 * w.dim]
    assert (len(private), len(llcres), len(dram)) == (2, 3, 9)
    capped = cpu_heldout_v3(llc_bytes=llc, max_table_bytes=1 * 2**30)
    assert max(w.table_bytes for w in capped) <= 2**30


def test_heldout_set_for_picks_and_refuses() -> None:
    info = {"caches": {"L3": 300 * MiB}, "memory_bytes": 64 * 2**30}
    assert HELDOUT_SETS == ("v2", "v3")
    assert [w.name for w in cpu_heldout_set_for(info, "v3")][0].startswith("h3_")
    assert cpu_heldout_set_for(info, "v2")[0].name == cpu_heldout(False, 300 * MiB)[0].name
    with pytest.raises(SimrecError, match="unknown held-out set 'v9'"):
        cpu_heldout_set_for(info, "v9")


# ------------------------------------------------------------------ the probe
def test_probe_measures_v3_last_with_the_chosen_impl(monkeypatch: pytest.MonkeyPatch) -> None:
    from simrec.calibrate import cpu_probe

    cal = TC.synthetic_cpu_data(TC.TRUTH, noise=0.0, seed=1)
    cal.update(reps=3, min_rep_s=0.0)
    order: list[tuple[str, str]] = []

    class Runner:
        def __init__(self, impl: str, threads: int) -> None:
            self.impl = impl

        def close(self) -> None:
            pass

    def measure(runner, w, reps, min_rep, pages):  # measuring itself is tested elsewhere
        order.append((runner.impl, w.name))
        params = {"workload": w.to_dict(), "impl": runner.impl, "threads": 2, "unique": []}
        return Measurement(w.name, "batches", 1, [1e-3] * 3, params)

    monkeypatch.setattr(cpu_probe, "run_cpu_benchmarks", lambda *a, **k: cal)
    monkeypatch.setattr(cpu_probe, "EmbeddingRunner", Runner)
    monkeypatch.setattr(cpu_probe, "measure_workload", measure)
    monkeypatch.setattr(cpu_probe, "torch_available", lambda: True)
    rec = cpu_probe.probe(True, "numba", 2, 3)
    info = rec["machine"]
    v2 = [w.name for w in cpu_heldout_set_for(info, "v2", True)]
    v3 = [w.name for w in cpu_heldout_set_for(info, "v3", True)]
    drift = [w.name for w in cpu_probe.drift_points(cal)]
    first = [n for i, n in order if i == "numba"]
    assert first == v2 + drift + v3  # v3 after the sentinels: v2's protocol is unchanged
    assert [n for i, n in order if i == "torch"] == v2  # the other impl: v2 only
    assert [m["name"] for m in rec["heldout_v3"]] == v3
    assert len(rec["heldout"]) == 2 * len(v2)


# ------------------------------------------------------------------ validation
def _probe_with_v3(factor3: float) -> dict:
    rec = TC._synthetic_cpu_probe(TC.synthetic_cpu_data(TC.TRUTH, noise=0.02, seed=1))
    held = []
    for w in cpu_heldout_v3(quick=True):
        t = F.predict_cpu(TC.TRUTH, w) * factor3
        params = {"workload": w.to_dict(), "impl": "numba", "threads": 2, "unique": []}
        held.append(Measurement(w.name, "batches", 1, [t, t * 1.01, t * 0.99], params).to_dict())
    rec["heldout_v3"] = held
    return rec


@pytest.fixture(scope="module")
def preset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("v3")
    src = d / "cpu.probe.json"
    src.write_text(json.dumps(_probe_with_v3(1.25)))
    out = d / "c.yaml"
    r = TC._calibrate_and_validate("cpu", src, out)
    assert r.exit_code == 0, r.output
    return out, src


def _validate(*args: str):
    return CliRunner().invoke(TC._group(), ["validate-measure", *args])


def test_validate_heldout_v3_reports_the_v3_error(preset: tuple[Path, Path]) -> None:
    out, src = preset
    for extra in ([], ["--probe-json", str(src)]):  # from the record, or from the file
        r = _validate("--hw", str(out), "--json", "-q", "--heldout", "v3", *extra)
        assert r.exit_code == 0, r.output
        v = json.loads(r.output)
        assert v["heldout_set"] == "v3"
        assert [w["name"] for w in v["workloads"]] == [w.name for w in cpu_heldout_v3(True)]
        # v3 times are the planted model's x 1.25 and the fit recovers it: error -0.2
        assert v["geomean_abs_error"] == pytest.approx(0.2, rel=0.1)
    r = _validate("--hw", str(out), "--heldout", "v3", "-q")
    assert r.exit_code == 0 and "held-out workloads of set v3:" in r.output
    v2 = json.loads(_validate("--hw", str(out), "--json", "-q").output)
    assert v2["heldout_set"] == "v2" and v2["geomean_abs_error"] == pytest.approx(1 / 11, rel=0.1)


def test_validate_heldout_v3_refuses_what_it_cannot_do(
    preset: tuple[Path, Path], tmp_path: Path
) -> None:
    out, src = preset
    old = json.loads(src.read_text())
    del old["heldout_v3"]
    p = tmp_path / "old.probe.json"
    p.write_text(json.dumps(old))
    r = _validate("--hw", str(out), "--heldout", "v3", "--probe-json", str(p))
    assert r.exit_code == 2
    assert "old.probe.json" in r.output and "heldout_v3" in r.output and "--heldout v2" in r.output
    r = _validate("--hw", str(out), "--heldout", "v3", "--record")
    assert r.exit_code == 2 and "reported, not recorded" in r.output
    r = _validate("--hw", str(out), "--heldout", "v4")
    assert r.exit_code == 2 and "v4" in r.output
