"""The CPU held-out set (version 2) and the DRAM calibration points are sized from the machine's
LLC, so that each workload is in the regime its name says on small- and large-L3 machines."""

from __future__ import annotations

import numpy as np
import pytest

from simrec.calibrate.bench_cpu import cpu_calibration_workloads, dram_table_bytes
from simrec.calibrate.heldout import (
    DRAM_FOOTPRINT_LLCS,
    MAX_CYCLED_BATCHES,
    Workload,
    cpu_heldout,
    cycled_batches,
    make_batch,
    make_batches,
)

MiB = 2**20
LLCS = (32 * MiB, 300 * MiB)


def _footprint(w: Workload) -> int:
    return w.nbatches * w.lookups * w.row_bytes


@pytest.mark.parametrize("llc", LLCS)
def test_heldout_v2_covers_the_issue_ranges_relative_to_the_llc(llc: int) -> None:
    held = cpu_heldout(llc_bytes=llc)
    assert len(held) >= 12 and len({w.name for w in held}) == len(held)
    assert {w.pooling for w in held} >= {1, 64} and min(w.pooling for w in held) == 1
    assert min(w.dim for w in held) == 16 and max(w.dim for w in held) == 256
    assert min(w.batch for w in held) == 512 and max(w.batch for w in held) == 65_536
    assert {w.dist for w in held} == {"uniform", "zipf"}
    sizes = [w.table_bytes for w in held]
    # "from L2-resident to 10x DRAM-bandwidth-bound": a 512 KiB table and tables of >= 10 LLCs
    assert min(sizes) <= 512 * 1024
    assert sum(s >= 10 * llc for s in sizes) >= 6
    dram = [w for w in held if w.table_bytes >= 4 * llc]
    for w in dram:  # their cycled batches overflow the LLC (unless capped)
        assert _footprint(w) >= DRAM_FOOTPRINT_LLCS * llc or w.nbatches == MAX_CYCLED_BATCHES
    for w in held:
        assert f"{w.table_bytes / llc:.0f}xLLC" in w.name or w.table_bytes < llc


def test_heldout_v2_is_v1_sized_on_a_32_mib_llc_but_scales_with_the_llc() -> None:
    small = {w.name.rsplit("_", 2)[0]: w for w in cpu_heldout(llc_bytes=32 * MiB)}
    big = {w.name.rsplit("_", 2)[0]: w for w in cpu_heldout(llc_bytes=300 * MiB)}
    assert small.keys() == big.keys()
    # version 1 had 4,194,304 rows of dim 32 for this one (512 MiB = 16 x 32 MiB)
    assert small["d32_l64_b512"].rows == 4_194_304
    assert big["d32_l64_b512"].table_bytes == pytest.approx(16 * 300 * MiB, rel=1e-6)
    assert big["d32_l64_b512"].nbatches > small["d32_l64_b512"].nbatches
    # the private-cache-resident ones do not depend on the LLC
    assert small["d16_l1_b65536"] == big["d16_l1_b65536"]


def test_heldout_tables_are_capped_by_memory() -> None:
    held = cpu_heldout(llc_bytes=300 * MiB, max_table_bytes=1 * 2**30)
    assert max(w.table_bytes for w in held) <= 2**30
    assert any("3xLLC" in w.name for w in held)  # the name says the size it got


@pytest.mark.parametrize("llc", LLCS)
def test_no_heldout_shape_is_a_calibration_shape(llc: int) -> None:
    cal = {(w.dim, w.pooling, w.batch) for w in cpu_calibration_workloads(False, llc)}
    assert not {(w.dim, w.pooling, w.batch) for w in cpu_heldout(llc_bytes=llc)} & cal


@pytest.mark.parametrize("llc", LLCS)
def test_dram_calibration_points_overflow_the_llc(llc: int) -> None:
    pts = [w for w in cpu_calibration_workloads(False, llc) if w.name.endswith("_dram")]
    assert len(pts) == 4
    for w in pts:
        assert w.table_bytes >= 8 * llc - 4 * w.dim and w.table_bytes >= 256 * MiB - 4 * w.dim
        assert _footprint(w) >= DRAM_FOOTPRINT_LLCS * llc
    assert dram_table_bytes(300 * MiB) == 8 * 300 * MiB
    assert dram_table_bytes(None) == 256 * MiB


@pytest.mark.parametrize("llc", LLCS)
def test_every_dram_point_has_a_twin_on_twice_the_table(llc: int) -> None:
    ws = {w.name: w for w in cpu_calibration_workloads(False, llc)}
    pts = [w for n, w in ws.items() if n.endswith("_dram")]
    for w in pts:
        t = ws[w.name + "2"]  # the same shape and batches, twice the pages
        assert (t.dim, t.pooling, t.batch, t.nbatches) == (w.dim, w.pooling, w.batch, w.nbatches)
        assert t.table_bytes == pytest.approx(2 * w.table_bytes, rel=1e-3)
    assert len([n for n in ws if n.endswith("_dram2")]) == len(pts) == 4
    capped = cpu_calibration_workloads(False, llc, max_table_bytes=dram_table_bytes(llc))
    assert not [w for w in capped if w.name.endswith("_dram2")]  # left out, not shrunk


def test_cycled_batches_bounds() -> None:
    assert cycled_batches(1000, 64, 1e3) == 3  # the minimum
    assert cycled_batches(1000, 64, 1e3, minimum=2) == 2
    assert cycled_batches(2**15, 128, 300 * MiB) == 150  # 2 x 300 MiB / 4 MiB
    assert cycled_batches(1, 4, 1e12) == MAX_CYCLED_BATCHES


def test_make_batches_equals_make_batch() -> None:
    w = Workload("z", 50_000, 16, 4, 256, dist="zipf", nbatches=3, seed=7)
    for i, (idx, off) in enumerate(make_batches(w)):
        idx2, off2 = make_batch(w, i)
        assert np.array_equal(idx, idx2) and np.array_equal(off, off2)


def test_dram_regime_workloads_are_dram_bound_in_the_warm_model() -> None:
    """In the simulator's warm LRU (what a measurement cycling the batches sees), the uniform
    DRAM-regime workloads of a small-LLC machine mostly miss; with version 1's three cycled
    batches the same table would have been LLC-served."""
    from simrec.calibrate.cpufit import CpuFit, cpu_system, steady_detail, workload_batches

    llc = 32 * MiB
    f = CpuFit(
        cores=2, freq_hz=2.6e9, flops_per_cycle=32.0, simd_width_bits=512, llc_bytes=llc,
        memory_bytes=16 * 2**30, lookup_cycles=15.0, pool_efficiency=0.08, mlp_efficiency=0.5,
        data_rate=1.2e9, tFAW_s=640e-9, latency_s=120e-9, llc_bandwidth_Bps=5e9,
    )  # fmt: skip
    sysm = cpu_system(f)
    w = next(w for w in cpu_heldout(llc_bytes=llc) if w.name.startswith("d32_l64_b512"))
    assert w.nbatches >= 2 and w.dist == "uniform"

    def hit_share(wl: Workload) -> float:
        h, b = workload_batches(wl)
        _, _, ct = steady_detail(sysm, h, b)
        return ct["llc_hits"] / ct["llc_refs"]

    assert hit_share(w) < 0.15
    # version 1: the same 512 MiB table, 3 cycled batches of 512 x 64 x 128 B = 4 MiB each
    v1 = Workload(w.name, w.rows, w.dim, w.pooling, w.batch, nbatches=3)
    assert hit_share(v1) > 0.9
