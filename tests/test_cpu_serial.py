"""The partial-overlap term (``serial_fraction``) of the CPU-DRAM model and the fit's rule for it.

Covers: the term's formula in the simulator (on a DRAM-bound trace the extra time is exactly
``k`` x the pooling and LLC times of the same run without it, which the breakdown gives
independently), k = 0 changing nothing, bad values refused (CpuParams and YAML, with file and
field), the fit's fast evaluator equal to the simulator with the term on, the ``_zipf``
calibration points, and the rule (kept only if the objective is >= 10 % lower) on data generated
by the model itself with a planted fraction and without one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import test_calibrate as TC  # the CPU fitter's planted-parameter helper and its workloads
from test_hw_schema import MINI

from simrec.calibrate import fit as F
from simrec.calibrate.bench_cpu import ZIPF_CALIBRATION, cpu_calibration_workloads
from simrec.calibrate.cpufit import SERIAL_RULE_RATIO, SERIAL_STARTS, CpuEvaluator
from simrec.calibrate.heldout import Workload, cpu_heldout
from simrec.calibrate.preset import record_path, write_cpu_preset
from simrec.errors import ConfigError
from simrec.hw import load_hw, loads_hw
from simrec.sim.components.cpu import CpuParams
from simrec.sim.components.dram import DramParams
from simrec.sim.systems.cpu_dram import CpuDramSystem, Socket
from simrec.trace.format import Batch, TableSpec, TraceHeader

MiB = 2**20


def _socket(
    k: float, lookup_cycles: float = 1.0, llc: bool = False, bag_cycles: float = 10.0
) -> Socket:
    cpu = CpuParams(
        1,
        4,
        1e9,
        64,
        0.5,
        0.25,
        lookup_cycles,
        bag_cycles=bag_cycles,
        llc_bytes=1 * MiB if llc else 0.0,
        llc_bandwidth_Bps=20e9 if llc else 0.0,
        serial_fraction=k,
    )
    return Socket(cpu, DramParams.ddr4_3200_dramsim3(4, 2), 2**34, "s0")


def _uniform(
    rows: int, lookups: int, n: int, dim: int = 16, seed: int = 3
) -> tuple[TraceHeader, list[Batch]]:
    rng = np.random.default_rng(seed)
    header = TraceHeader(tables=(TableSpec(name="t0", rows=rows, dim=dim),), batch_size=lookups)
    out = []
    for i in range(n):
        idx = rng.integers(0, rows, lookups).astype(np.int64)
        offs = np.arange(lookups + 1, dtype=np.int64)
        out.append(Batch(offsets=offs, indices=idx, num_tables=1, number=i))
    return header, out


# ------------------------------------------------------------------ simulator
@pytest.mark.parametrize("k", [0.3, 1.0])
def test_serial_time_is_k_times_the_hidden_stages(k: float) -> None:
    header, batches = _uniform(2**19, 512, 20, dim=128)  # 256 MiB of rows, 1 MiB LLC
    off = CpuDramSystem([_socket(0.0, llc=True, bag_cycles=0.0)]).simulate(batches, header)
    on = CpuDramSystem([_socket(k, llc=True, bag_cycles=0.0)]).simulate(batches, header)
    b = off.breakdown_s
    assert b["embedding_dram"] > 2 * (b["embedding_pool"] + b["embedding_llc"])  # DRAM binds
    hidden = b["embedding_pool"] + b["embedding_llc"]
    assert hidden > 0.05 * b["embedding_dram"]  # the term is visible
    assert on.breakdown_s["embedding_serial"] == pytest.approx(k * hidden, rel=1e-9)
    assert float(on.sim_time_s) - float(off.sim_time_s) == pytest.approx(k * hidden, rel=1e-6)
    assert "embedding_serial" not in b


def test_k_zero_is_the_old_model_and_compute_bound_pays_the_reads() -> None:
    header, batches = _uniform(2**22, 512, 10)
    a = CpuDramSystem([_socket(0.0)]).simulate(batches, header)
    plain = Socket(
        CpuParams(1, 4, 1e9, 64, 0.5, 0.25, 1.0, bag_cycles=10.0),
        DramParams.ddr4_3200_dramsim3(4, 2),
        2**34,
        "s0",
    )
    b = CpuDramSystem([plain]).simulate(batches, header)
    assert float(a.sim_time_s) == float(b.sim_time_s)
    # compute-bound (1e5 cycles a lookup): full serialisation adds the DRAM time to it
    slow0 = CpuDramSystem([_socket(0.0, lookup_cycles=1e5)]).simulate(batches, header)
    slow1 = CpuDramSystem([_socket(1.0, lookup_cycles=1e5)]).simulate(batches, header)
    d = slow0.breakdown_s["embedding_dram"]
    assert slow0.breakdown_s["embedding_pool"] > 10 * d > 0
    assert float(slow1.sim_time_s) - float(slow0.sim_time_s) == pytest.approx(d, rel=1e-6)


@pytest.mark.parametrize("k", [-0.1, 1.5, float("nan")])
def test_cpu_params_refuse_bad_serial_fraction(k: float) -> None:
    with pytest.raises(ConfigError, match="serial_fraction"):
        CpuParams(1, 4, 1e9, 64, 0.5, 0.25, 1.0, serial_fraction=k)


def _mini_with(line: str) -> str:
    assert "    llc_size:" in MINI
    return MINI.replace("    llc_size:", line + "    llc_size:", 1)


def test_yaml_serial_fraction_reaches_the_system() -> None:
    hw = loads_hw(_mini_with("    serial_fraction: 0.35\n"), "x.yaml")
    assert hw.params("cpu0").serial_fraction == pytest.approx(0.35)
    assert loads_hw(MINI, "x.yaml").params("cpu0").serial_fraction == 0.0


@pytest.mark.parametrize("value", ["1.5", "-0.2", "lots"])
def test_yaml_refuses_bad_serial_fraction(value: str) -> None:
    with pytest.raises(ConfigError) as e:
        loads_hw(_mini_with(f"    serial_fraction: {value}\n"), "bad.yaml")
    msg = str(e.value)
    assert "bad.yaml" in msg and "serial_fraction" in msg


def test_cpu_system_dict_writes_the_fraction_only_when_on() -> None:
    assert "serial_fraction" not in F.cpu_system_dict(TC.TRUTH)["devices"]["cpu0"]
    on = F.CpuFit(**{**TC.TRUTH.__dict__, "serial_fraction": 0.25})
    assert F.cpu_system_dict(on)["devices"]["cpu0"]["serial_fraction"] == 0.25


# ------------------------------------------------------------------ calibration points
def test_zipf_calibration_points_are_skewed_dram_tables_and_not_heldout_shapes() -> None:
    llc = 300 * MiB
    ws = {w.name: w for w in cpu_calibration_workloads(llc_bytes=llc)}
    dram = ws["cal_d16_l32_b4096_dram"]
    held = {(w.dim, w.pooling, w.batch) for w in cpu_heldout(llc)}
    for d, lp, b in ZIPF_CALIBRATION:
        w = ws[f"cal_d{d}_l{lp}_b{b}_zipf"]
        assert w.dist == "zipf" and w.alpha == 1.05
        assert w.table_bytes == dram.table_bytes  # the _dram table
        assert (d, lp, b) not in held
        assert w.nbatches * w.lookups * w.row_bytes >= 2 * llc  # cycled like a uniform point
    quick = [w for w in cpu_calibration_workloads(quick=True) if w.dist == "zipf"]
    assert [w.name for w in quick] == ["cal_d32_l16_b1024_zipf"]


# ------------------------------------------------------------------ fit
PLANTED = 0.5
TRUTH_SERIAL = F.CpuFit(**{**TC.TRUTH.__dict__, "serial_fraction": PLANTED})
#: the synthetic set of test_calibrate (11 points) plus 7 more: with 10 free parameters, 11
#: points leave the rule nothing to judge (on them a planted-free fit kept a fraction that
#: lowered the objective 26 x, fitting the noise); on these 18 the seed-4 data without the term
#: still keeps a fraction of 0.022 (ratio 0.86: the rule's false-positive rate is not zero), the
#: seed-5 data keeps none, which is what the test below checks
SERIAL_WORKLOADS = [
    *TC.SYN_WORKLOADS,
    Workload("cal_d32_l8_b2048_dram", 64 * MiB // 128, 32, 8, 2048, nbatches=2),
    Workload("cal_d16_l1_b8192_dram", 64 * MiB // 64, 16, 1, 8192, nbatches=2),
    Workload("cal_d128_l4_b1024_llc", 6144, 128, 4, 1024, nbatches=2),
    Workload("cal_d64_l16_b512_l2", 2048, 64, 16, 512, nbatches=2),
    Workload("cal_d32_l16_b1024_zipf", 64 * MiB // 128, 32, 16, 1024, "zipf", nbatches=2),
    Workload("cal_d64_l4_b4096_dram", 64 * MiB // 256, 64, 4, 4096, nbatches=2),
    Workload("cal_d16_l8_b2048_llc", 24576, 16, 8, 2048, nbatches=2),
]


def _data(truth: F.CpuFit, seed: int) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TC, "SYN_WORKLOADS", SERIAL_WORKLOADS)
        return TC.synthetic_cpu_data(truth, noise=0.02, seed=seed)


def test_cpu_evaluator_equals_the_simulator_with_the_term_on() -> None:
    wls = [TC.SYN_WORKLOADS[i] for i in (0, 5, 6, 9, 10)]
    ev = CpuEvaluator(TRUTH_SERIAL, [(w, 1.0) for w in wls], [])
    off = ev.predict(TC.TRUTH)
    on = ev.predict(TRUTH_SERIAL)
    assert np.all(on > off * 1.02)  # every point has a hidden stage that now shows
    rng = np.random.default_rng(7)
    for _ in range(3):
        g = F.CpuFit(**TRUTH_SERIAL.__dict__)
        g.serial_fraction = float(rng.uniform(0.05, 1.0))
        g.lookup_cycles *= float(rng.uniform(0.5, 2))
        fast = ev.predict(g)
        slow = [F.predict_cpu(g, w) for w in wls]
        assert fast == pytest.approx(slow, rel=1e-9)


@pytest.fixture(scope="module")
def data_on() -> dict:
    return _data(TRUTH_SERIAL, seed=5)


@pytest.fixture(scope="module")
def fit_on(data_on: dict) -> F.CpuFit:
    return F.fit_cpu(data_on, iters=10)


@pytest.fixture(scope="module")
def fit_off() -> F.CpuFit:
    return F.fit_cpu(_data(TC.TRUTH, seed=5), iters=10)


def _rule_is_consistent(fit: F.CpuFit) -> None:
    r = fit.serial_rule
    assert r["threshold"] == SERIAL_RULE_RATIO == 0.9
    assert sorted({t["start"] for t in r["tries"]}) == sorted([0.0, *SERIAL_STARTS])
    withk = [t["objective"] for t in r["tries"] if t["start"] > 0]
    without = [t["objective"] for t in r["tries"] if t["start"] == 0]
    assert r["objective_with"] == pytest.approx(min(withk))
    assert r["objective_refit_without"] == pytest.approx(min(without))
    assert r["objective_without"] == pytest.approx(
        min(r["objective_kept_model"], r["objective_refit_without"])
    )
    assert r["ratio"] == pytest.approx(r["objective_with"] / r["objective_without"])
    assert fit.serial_selected == r["selected"] == (r["ratio"] <= 0.9)
    t = fit.tlb_rule
    assert r["objective_kept_model"] == pytest.approx(
        t["objective_with"] if t["selected"] else t["objective_without"]
    )


def test_rule_keeps_the_planted_fraction_and_recovers_it(fit_on: F.CpuFit) -> None:
    _rule_is_consistent(fit_on)
    assert fit_on.serial_selected is True
    assert fit_on.serial_rule["ratio"] < 0.5
    assert fit_on.serial_fraction == pytest.approx(PLANTED, rel=0.25)
    assert fit_on.llc_bytes == TC.TRUTH.llc_bytes
    assert fit_on.rms_log_residual() < 0.06  # step 6 simulates with the kept term


def test_rule_keeps_no_fraction_when_not_planted(fit_off: F.CpuFit) -> None:
    _rule_is_consistent(fit_off)
    assert fit_off.serial_selected is False and fit_off.serial_fraction == 0.0
    assert "serial_fraction" not in F.cpu_system_dict(fit_off)["devices"]["cpu0"]


def test_start_values_only_run_no_serial_rule(data_on: dict) -> None:
    fit = F.fit_cpu(data_on, refine=False)
    assert fit.serial_selected is None and fit.serial_rule == {} and fit.serial_fraction == 0.0


def test_preset_and_record_carry_the_fraction(
    tmp_path: Path, data_on: dict, fit_on: F.CpuFit
) -> None:
    p = write_cpu_preset(tmp_path / "syn.yaml", data_on, fit_on)
    assert load_hw(p).params("cpu0").serial_fraction == pytest.approx(
        fit_on.serial_fraction, rel=1e-6
    )
    text = p.read_text()
    assert "partial-overlap term" in text and "kept (serial_fraction" in text
    rec = json.loads(record_path(p).read_text())
    assert rec["fit"]["serial_selected"] is True
    back = F.CpuFit(**{**rec["fit"], "residuals": rec["residuals"]})
    assert F.cpu_system_dict(back) == F.cpu_system_dict(fit_on)
