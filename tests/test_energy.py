"""Energy reference table and estimator: golden values from reference/data.md §5.3 and screc.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from simrec.energy import (
    STATIC,
    estimate_energy,
    smartssd_envelope,
    smartssd_table,
    table_from_hw,
)
from simrec.errors import ConfigError
from simrec.hw import load_hw, loads_hw

REPO = Path(__file__).resolve().parents[1]
TRACE = REPO / "traces" / "criteo_sample.trc"


@pytest.fixture(scope="module")
def cpu_cfg():
    return load_hw(REPO / "hwconfigs" / "cpu_dram.yaml")


@pytest.fixture(scope="module")
def cpu_result(cpu_cfg):
    from simrec.sim.cli import simulate

    return simulate(cpu_cfg, TRACE)


def test_ddr4_entries_are_the_dramsim3_idd_values(cpu_cfg):
    t = table_from_hw(cpu_cfg)
    # data.md §5.3: 4.2 nJ per rank activate, 2.78 nJ per 64 B read burst
    assert t.get("dram0", "activate").value == pytest.approx(4.2e-9)
    assert t.get("dram1", "read_burst").value == pytest.approx(2.78e-9)
    assert "data.md" in t.get("dram0", "activate").source


def test_cpu_dram_energy_is_counts_times_entries_plus_static(cpu_cfg, cpu_result):
    r = cpu_result
    est = estimate_energy(r, table_from_hw(cpu_cfg), cpu_cfg)
    # independent sum: data.md §5.3 per-action energies; cpu_dram.yaml static powers
    # (2 x 135 W sockets + 2 x 32 W DIMM sets) and 3.375 W per busy core, 40 cores per socket
    dram = r.counters["dram_activates"] * 4.2e-9 + r.counters["dram_bursts"] * 2.78e-9
    static = (2 * 135.0 + 2 * 32.0) * r.sim_time_s
    busy = sum(r.utilisation[f"cpu{s}.cores"] * 40 * r.sim_time_s * 3.375 for s in (0, 1))
    assert r.counters["dram_bursts"] > 0
    assert est.server_j == pytest.approx(dram + static + busy, rel=1e-9)
    assert est.device_j == pytest.approx(est.server_j)  # the CPU-DRAM server is its own device
    assert est.static_j == pytest.approx(static, rel=1e-9)
    assert est.server_j_per_sample == pytest.approx(est.server_j / r.samples)
    assert all(est.rows["estimator"].str.len() > 0)
    assert all(est.rows["source"].str.len() > 0)


def test_missing_entry_is_an_error_naming_component_action_and_fix(cpu_result):
    text = (REPO / "hwconfigs" / "cpu_dram.yaml").read_text()
    text = text.replace("      read_burst: 2.78 nJ", "      write_burst: 2.78 nJ")
    cfg = loads_hw(text, str(REPO / "hwconfigs" / "x.yaml"))
    with pytest.raises(ConfigError) as ei:
        estimate_energy(cpu_result, table_from_hw(cfg), cfg)
    msg = str(ei.value)
    assert "dram0" in msg and "read_burst" in msg and "energy" in msg
    assert ei.value.fix


def test_missing_static_power_is_an_error(cpu_result):
    text = (REPO / "hwconfigs" / "cpu_dram.yaml").read_text()
    text = text.replace("      static_power: 135 W", "      # static power removed")
    cfg = loads_hw(text, "x.yaml")
    with pytest.raises(ConfigError, match="cpu0.*static"):
        estimate_energy(cpu_result, table_from_hw(cfg), cfg)


def test_multi_gpu_device_and_server_boundaries():
    from simrec.sim.cli import simulate

    cfg = load_hw(REPO / "hwconfigs" / "multi_gpu.yaml")
    r = simulate(cfg, TRACE)
    est = estimate_energy(r, table_from_hw(cfg), cfg)
    t = r.sim_time_s
    # GPU: 70 W static + (700 W TDP - 70 W) x busy fraction (multi_gpu.yaml); HBM 6.0 pJ/bit
    # (data.md §5.4); NVLink 1.3 pJ/bit, all on the device side
    gpu = sum(70.0 * t + 630.0 * r.utilisation[f"gpu{g}"] * t for g in range(8))
    hbm = r.counters["hbm_bytes"] * 8 * 6.0e-12
    nvl = r.counters["alltoall_bytes"] * 8 * 1.3e-12
    assert est.device_j == pytest.approx(gpu + hbm + nvl, rel=1e-9)
    host = 2 * 175.0 * t + 2 * 32.0 * t + r.counters["pcie_bytes"] * 8 * 5e-12
    assert est.server_j == pytest.approx(gpu + hbm + nvl + host, rel=1e-9)


def test_smartssd_table_stays_within_the_25w_envelope_at_saturation():
    t = smartssd_table(1)
    # screc.md §1.2: 25 W thermal envelope
    assert smartssd_envelope() == pytest.approx(25.0)
    static = sum(e.value for (c, a), e in t.entries.items() if a == STATIC)
    # saturated rates (independent of the table): data.md §5.5 NAND page-read ceiling
    # 128 planes / 75 us; PCIe Gen3 x4 3.94 GB/s per direction both ways (data.md §5.1);
    # 1,968 DSPs at 300 MHz doing one MAC per cycle [screc.md §1.2 KU15P, clock assumed]
    nand = 128 / 75e-6 * t.get("ssd0.ssd", "page_read").value
    pcie = 2 * 3.94e9 * 8 * t.get("ssd0.pcie", "bit").value
    macs = 1968 * 300e6 * t.get("ssd0.fpga", "tt_mac").value
    assert static + nand + pcie + macs <= 25.0


def test_screc_energy_device_plus_host(cpu_cfg):
    from simrec.sim.systems.screc import ScrecConfig, ScrecSystem
    from simrec.trace.format import read_trace

    rd = read_trace(TRACE)
    r = ScrecSystem(ScrecConfig(n_devices=2)).simulate(rd, rd.header)
    table = smartssd_table(2).merged(table_from_hw(cpu_cfg))
    est = estimate_energy(r, table, cpu_cfg, n_devices=2)
    t = r.sim_time_s
    c = r.counters
    dev_static = 2 * (5.0 + 5.0 + 0.0 + 1.5 + 0.0) * t  # smartssd.yaml static powers
    dev_dyn = (
        c["nand_page_reads"] * 1.46e-6
        + c["ddr_rows"] * 4.2e-9
        + c["ddr4_bursts"] * 2.78e-9
        + c["sram_rows"] * 80e-12
        + c["pooled_rows"] * 14.4e-12
        + (c["tt_macs"] + c["mlp_macs"]) * 4.6e-12
        + (c["host_bytes"] + c["host_bytes_in"] + c["p2p_bytes"]) * 8 * 5e-12
    )
    assert est.device_j == pytest.approx(dev_static + dev_dyn, rel=1e-9)
    assert est.server_j == pytest.approx(est.device_j + (2 * 135 + 2 * 32) * t, rel=1e-9)
    with pytest.raises(ConfigError, match="ssd2"):
        estimate_energy(r, smartssd_table(2), None, n_devices=3)


def test_smartssd_table_has_every_entry_per_device() -> None:
    """n devices = the file's entries once per ``ssdJ`` prefix, values unchanged."""
    from simrec.energy.table import SMARTSSD_TABLE, load_component_table

    t = smartssd_table(3)
    ref = {}
    for j in range(3):
        ref.update(load_component_table(SMARTSSD_TABLE, f"ssd{j}", "smartssd").entries)
    assert t.entries == ref
    assert {c.split(".")[0] for c in t.components()} == {"ssd0", "ssd1", "ssd2"}
