"""The default plan's per-device core mix (plan_core_mix) and the uniform-cores ablation.

Expected mixes are worked out by hand from the KU15P budget after the shell (fpga.py: 442,720 LUT,
885,440 FF, 1,344 DSP, 884 BRAM36 available) and the [INF] per-core costs of fpga.py:
EMB 14,000 LUT / 22,000 FF / 8 BRAM; TT (256 MACs) 12,000 + 60 x 256 = 27,360 LUT, 256 DSP,
16 BRAM; MLP (512 MACs) 10,000 + 40 x 512 = 30,480 LUT, 512 DSP, 64 BRAM.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simrec.sim.components.fpga import CoreConfig
from simrec.sim.components.smartssd import SmartSSDParams
from simrec.sim.systems.screc import ScrecConfig, ScrecSystem, default_placement, plan_core_mix
from simrec.trace.format import read_trace
from simrec.trace.generate import gen_zipf

DEV = SmartSSDParams()


def test_embedding_only_device_gets_every_emb_core_the_luts_allow() -> None:
    # LUTs bind: (442,720 - 30,480 for the MLP core) // 14,000 = 29 EMB cores; no TT core
    assert plan_core_mix(DEV, pool_cycles=1e9, tt_macs=0.0, sram_bytes=0.0) == (29, 0, 1)


def test_tt_only_device_gets_the_tt_cores_the_dsps_allow() -> None:
    # DSPs bind: (1,344 - 512 for the MLP core) // 256 = 3 TT cores; no raw rows, no EMB core
    assert plan_core_mix(DEV, pool_cycles=0.0, tt_macs=1e12, sram_bytes=0.0) == (0, 3, 1)


def test_mix_keeps_the_sram_the_placement_needs() -> None:
    # every EMB core takes 8 BRAM36 (4,608 B each) of buffers: asking for all but 10 blocks'
    # worth of the on-chip SRAM that the MLP core alone leaves caps the EMB cores at 1
    free = DEV.fpga.onchip_bytes(CoreConfig(0, 0, 1).resources())
    need = free - 10 * 4608
    mix = plan_core_mix(DEV, pool_cycles=1e9, tt_macs=0.0, sram_bytes=need)
    assert mix == (1, 0, 1)


def test_idle_device_keeps_the_configured_mix() -> None:
    assert plan_core_mix(DEV, 0.0, 0.0, 0.0) == (DEV.cores.n_emb, DEV.cores.n_tt, DEV.cores.n_mlp)


@pytest.fixture(scope="module")
def zipf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("cores") / "z.trc"
    gen_zipf(p, tables=8, rows=200_000, dim=64, alpha=1.05, batches=2, batch_size=1024, pooling=16)
    return p


def test_uniform_cores_ablation_is_slower_and_uses_the_configured_mix(zipf: Path) -> None:
    tr = read_trace(zipf)
    cfg = ScrecConfig(n_devices=2, ddr_fraction=0.0)
    pl = default_placement(tr.header, tr, cfg)
    # the planned mix is what the placement summary reports, and it fits the FPGA (no error)
    for j, mix in enumerate(pl.cores):
        assert mix is not None
        assert (pl.summary[j]["emb_cores"], pl.summary[j]["tt_cores"]) == mix[:2]
    full = ScrecSystem(cfg).simulate(tr, tr.header, placement=pl)
    uni_cfg = ScrecConfig(n_devices=2, ddr_fraction=0.0, plan_cores=False)
    uni = ScrecSystem(uni_cfg).simulate(tr, tr.header, placement=pl)
    assert uni.samples_per_s < full.samples_per_s
    # the planned mix differs from the configured 2 EMB / 2 TT; the stage of the core type it
    # adds cores to is the one the uniform mix makes longer
    assert all(m != (2, 2, 1) for m in pl.cores)
    if min(m[1] for m in pl.cores) > 2:
        assert uni.breakdown_s["tt"] > full.breakdown_s["tt"]
    if min(m[0] for m in pl.cores) > 2:
        assert uni.breakdown_s["pool"] > full.breakdown_s["pool"]
    assert any(m[1] > 2 or m[0] > 2 for m in pl.cores)
