"""The ``csd`` device kind: the SCRec preset loads, maps to SmartSSDParams with the cited numbers,
and bad CSD configurations are ConfigErrors naming the file, the field and the fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from simrec.errors import ConfigError
from simrec.hw import load_hw
from simrec.sim.components.smartssd import SmartSSDParams

PRESET = Path(__file__).resolve().parents[1] / "hwconfigs" / "screc.yaml"


def _write(tmp_path: Path, edit) -> Path:
    """A copy of the preset (its base resolved by name) with ``edit`` applied to ssd0."""
    data = yaml.safe_load(PRESET.read_text())
    edit(data["devices"]["ssd0"])
    # the anchors were expanded by safe_load; keep one device so the edit is the only difference
    for n in ("ssd1", "ssd2", "ssd3"):
        data["devices"].pop(n)
        data["links"].pop(f"pcie_{n}")
    p = tmp_path / "hw.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_preset_loads_with_four_csds_and_the_cited_numbers() -> None:
    hw = load_hw(PRESET)
    csds = hw.devices_of_kind("csd")
    assert list(csds) == ["ssd0", "ssd1", "ssd2", "ssd3"]  # N = 4 (screc.md §10 item 1, [INF])
    p = hw.params("ssd0")
    assert isinstance(p, SmartSSDParams)
    # MQSim geometry (data.md §5.5): 8 x 4 x 2 x 2 = 128 planes, 8 KiB pages, tR 75 us
    assert p.nand.planes == 128 and p.nand.page_bytes == 8192 and p.nand.t_read_s == 75e-6
    # 2.66 GB/s over 8 channels of 333 MT/s x 1 B (data.md §5.5)
    assert p.nand.channels * p.nand.channel_transfer_rate * p.nand.channel_width_bytes == (
        pytest.approx(2.664e9)
    )
    assert p.p2p_peak_bandwidth == 2.36e9  # P2P plateau at 128 MB (data.md §5.5)
    assert p.ssd_capacity_bytes == 3.84e12 and p.ddr_capacity_bytes == 4 * 2**30  # screc.md §1.2
    # host link: Gen3 x4 = 8 GT/s x 128/130 / 8 x 4 = 3.938 GB/s (data.md §5.1) x 0.8
    assert p.host_bandwidth == pytest.approx(8e9 * 128 / 130 / 8 * 4 * 0.8)
    # KU15P budget (screc.md §1.2) minus the 624 DSPs the shell keeps: 1,344 kernel DSPs
    assert p.fpga.available.dsp == 1344 and p.fpga.total.bram == 984 and p.fpga.total.uram == 128
    # DDR4-2400: tCK = 2 / 2400 MT/s; tFAW 36 cycles = 30 ns
    assert p.ddr.tCK_s == pytest.approx(1 / 1.2e9) and p.ddr.tFAW == 36


def test_preset_equals_the_component_defaults() -> None:
    """The YAML and the component defaults (each with its own cited source) are the same device."""
    p = load_hw(PRESET).params("ssd0")
    d = SmartSSDParams()
    for f in dataclasses.fields(SmartSSDParams):
        a, b = getattr(p, f.name), getattr(d, f.name)
        if f.name == "ddr":
            a, b = dataclasses.replace(a, name=""), dataclasses.replace(b, name="")
        if isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-3), f.name
        else:
            assert a == b, f.name


def test_yaml_round_trip() -> None:
    hw = load_hw(PRESET)
    from simrec.hw import loads_hw

    assert loads_hw(hw.to_yaml()) == hw


def test_core_configuration_over_the_fpga_budget_is_rejected(tmp_path: Path) -> None:
    # 6 TT cores x 256 DSP = 1,536 DSP + 512 (MLP) > 1,344 kernel DSPs
    p = _write(tmp_path, lambda d: d["cores"].update(compute_centric=6))
    with pytest.raises(ConfigError) as e:
        load_hw(p)
    msg = str(e.value)
    assert "hw.yaml" in msg and "devices.ssd0" in msg
    assert "DSP" in msg and "1,344" in msg and "Fix:" in msg


def test_csd_field_errors(tmp_path: Path) -> None:
    p = _write(tmp_path, lambda d: d["nand"].update(read_latency=75))
    with pytest.raises(ConfigError, match=r"devices\.ssd0\.nand\.read_latency.*unit"):
        load_hw(p)
    p = _write(tmp_path, lambda d: d["controller"].update(lba_sise="4 KiB"))
    with pytest.raises(ConfigError, match=r"lba_sise.*did you mean 'lba_size'"):
        load_hw(p)


def test_csd_without_a_host_link(tmp_path: Path) -> None:
    data = yaml.safe_load(PRESET.read_text())
    data["links"].pop("pcie_ssd0")
    p = tmp_path / "hw.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    hw = load_hw(p)
    with pytest.raises(ConfigError, match=r"ssd0.*exactly one pcie link.*Fix"):
        hw.params("ssd0")
