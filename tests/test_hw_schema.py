"""Hardware YAML schema and loader: every bad input is a ConfigError naming file, field, line, fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simrec.errors import ConfigError
from simrec.hw import load_hw, loads_hw
from simrec.hw.schema import PcieLink, SystemConfig

MINI = """\
name: mini
description: a small test system
devices:
  cpu0:
    kind: cpu
    cores_per_socket: 8
    frequency: 3.0 GHz
    simd_width_bits: 512
    flops_per_cycle: 64
    pool_efficiency: 0.25
    mlp_efficiency: 0.5
    lookup_cycles: 20
    llc_size: 32 MiB
  dram0:
    kind: dram
    attached_to: cpu0
    standard: DDR4
    data_rate: 3200 MT/s
    channels: 2
    ranks_per_channel: 1
    bank_groups: 4
    banks_per_group: 4
    bus_width_bits: 64
    burst_length: 8
    row_buffer_size: 8 KiB
    capacity: 16 GiB
    timing:
      CL: 22 nCK
      tRCD: 13.75 ns
      tRP: 22 nCK
      tRAS: 52 nCK
      tRRD_S: 4 nCK
      tRRD_L: 8 nCK
      tFAW: 34 nCK
      tCCD_S: 4 nCK
      tCCD_L: 8 nCK
links: {}
"""


def write(tmp_path: Path, text: str, name: str = "hw.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def load_error(tmp_path: Path, text: str, name: str = "hw.yaml") -> ConfigError:
    p = write(tmp_path, text, name)
    with pytest.raises(ConfigError) as ei:
        load_hw(p)
    return ei.value


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle`` (computed from the text itself)."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_mini_loads_with_si_values(tmp_path: Path) -> None:
    cfg = load_hw(write(tmp_path, MINI))
    dram = cfg.device("dram0")
    assert dram.timing.tCK == pytest.approx(0.625e-9)  # defaulted: 2 / 3200 MT/s
    cas = dram.timing.CL
    assert cas == pytest.approx(13.75e-9)  # 22 cycles x 0.625 ns
    assert dram.timing.tRCD == pytest.approx(13.75e-9)  # written in ns
    assert dram.timing.tRC == pytest.approx(dram.timing.tRAS + dram.timing.tRP)
    assert dram.timing.cycles("tFAW") == pytest.approx(34)
    assert cfg.capacities() == {"dram": 16 * 2**30}
    assert cfg.source == str(tmp_path / "hw.yaml")


def test_devices_and_links_may_be_lists(tmp_path: Path) -> None:
    text = MINI.replace("  cpu0:\n", "  - name: cpu0\n").replace("  dram0:\n", "  - name: dram0\n")
    text = re.sub(r"\n    (?=\w)", "\n    ", text)  # keys keep their indentation under the dash
    cfg = load_hw(write(tmp_path, text))
    assert list(cfg.devices) == ["cpu0", "dram0"]


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    text = MINI.replace("      tRCD: 13.75 ns", "      tRDC: 13.75 ns")
    err = load_error(tmp_path, text)
    msg = str(err)
    assert "hw.yaml" in msg
    assert "devices.dram0.timing.tRDC" in msg
    assert f"line {line_of(text, 'tRDC')}" in msg
    assert "unknown key 'tRDC'" in msg
    assert "did you mean 'tRCD'" in msg


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = MINI.replace("description:", "descripton:")
    msg = str(load_error(tmp_path, text))
    assert "field descripton (line 2" in msg and "did you mean 'description'" in msg


def test_unknown_device_kind_suggests(tmp_path: Path) -> None:
    text = MINI.replace("kind: dram", "kind: dramm")
    msg = str(load_error(tmp_path, text))
    assert "unknown kind 'dramm'" in msg and "did you mean 'dram'" in msg
    assert "devices.dram0" in msg


def test_missing_kind(tmp_path: Path) -> None:
    text = MINI.replace("    kind: cpu\n", "")
    msg = str(load_error(tmp_path, text))
    assert "devices.cpu0" in msg and "no 'kind'" in msg and "cpu" in msg


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("frequency: 3.0 GHz", "frequency: -3.0 GHz", "devices.cpu0.frequency", "positive"),
        ("capacity: 16 GiB", "capacity: 0 GiB", "devices.dram0.capacity", "positive"),
        ("channels: 2", "channels: 0", "devices.dram0.channels", "positive"),
        ("channels: 2", "channels: -2", "devices.dram0.channels", "positive"),
        ("channels: 2", "channels: 2.5", "devices.dram0.channels", "whole number"),
        ("channels: 2", "channels: '2 ch'", "devices.dram0.channels", "whole number"),
        ("frequency: 3.0 GHz", "frequency: 3.0", "devices.cpu0.frequency", "missing unit"),
        (
            "frequency: 3.0 GHz",
            "frequency: 3.0 GB/s",
            "devices.cpu0.frequency",
            "needs a frequency",
        ),
        ("tRAS: 52 nCK", "tRAS: 52", "devices.dram0.timing.tRAS", "missing unit"),
        ("mlp_efficiency: 0.5", "mlp_efficiency: 50", "devices.cpu0.mlp_efficiency", "at most 1"),
        (
            "mlp_efficiency: 0.5",
            "mlp_efficiency: '50 %'",
            "devices.cpu0.mlp_efficiency",
            "plain number",
        ),
        ("standard: DDR4", "standard: DDR3", "devices.dram0.standard", "DDR4"),
        ("burst_length: 8", "burst_length: 16", "devices.dram0", "burst length 8"),
        (
            "attached_to: cpu0",
            "attached_to: cpu9",
            "devices.dram0.attached_to",
            "did you mean 'cpu0'",
        ),
    ],
)
def test_bad_values_name_field_line_and_fix(
    tmp_path: Path, old: str, new: str, field: str, words: str
) -> None:
    assert old in MINI
    text = MINI.replace(old, new, 1)
    err = load_error(tmp_path, text)
    msg = str(err)
    assert str(tmp_path / "hw.yaml") in msg
    assert f"field {field}" in msg
    assert words in msg
    assert "Fix:" in msg
    assert re.search(r"line \d+", msg)


def test_negative_bandwidth_on_a_link(tmp_path: Path) -> None:
    text = MINI.replace(
        "links: {}",
        "links:\n  l0:\n    kind: network\n    endpoints: [cpu0, dram0]\n"
        "    link_bandwidth: -5 GB/s\n",
    )
    msg = str(load_error(tmp_path, text))
    assert f"field links.l0.link_bandwidth (line {line_of(text, 'link_bandwidth')}" in msg
    assert "must be positive" in msg and "'-5 GB/s'" in msg


def test_zero_bandwidth_rejected_in_python_api() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        PcieLink(endpoints=("a", "b"), generation=5, lanes=16, efficiency=0)


def test_missing_required_key(tmp_path: Path) -> None:
    text = MINI.replace("    capacity: 16 GiB\n", "")
    msg = str(load_error(tmp_path, text))
    assert "field devices.dram0.capacity" in msg and "required key 'capacity' is missing" in msg
    assert "add 'capacity: 4 GiB'" in msg


def test_tck_must_match_data_rate(tmp_path: Path) -> None:
    text = MINI.replace("    timing:\n", "    timing:\n      tCK: 0.7 ns\n")
    msg = str(load_error(tmp_path, text))
    assert "tCK" in msg and "0.625 ns" in msg


def test_timing_ordering_checked(tmp_path: Path) -> None:
    text = MINI.replace("tRRD_L: 8 nCK", "tRRD_L: 2 nCK")
    assert "tRRD_L is shorter than tRRD_S" in str(load_error(tmp_path, text))


def test_geometry_checked_against_capacity(tmp_path: Path) -> None:
    # 2 ch x 1 rank x 16 banks x 65536 rows x 8 KiB = 16 GiB; with 32768 rows it is 8 GiB
    geo = "    device_width_bits: 8\n    rows: 32768\n    columns: 1024\n"
    text = MINI.replace("    capacity: 16 GiB\n", "    capacity: 16 GiB\n" + geo)
    msg = str(load_error(tmp_path, text))
    assert "capacity" in msg and "8 GiB" in msg
    ok = MINI.replace(
        "    capacity: 16 GiB\n", "    capacity: 16 GiB\n" + geo.replace("32768", "65536")
    )
    load_hw(write(tmp_path, ok, "ok.yaml"))


def test_malformed_yaml_reports_line_and_column(tmp_path: Path) -> None:
    text = MINI.replace("    cores_per_socket: 8\n", "    cores_per_socket: [8,\n   oops: 1\n")
    err = load_error(tmp_path, text)
    msg = str(err)
    assert "not valid YAML" in msg
    m = re.search(r"line (\d+), column (\d+)", msg)
    assert m is not None
    assert abs(int(m.group(1)) - line_of(text, "oops")) <= 1


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    text = MINI.replace("    channels: 2\n", "    channels: 2\n    channels: 4\n")
    msg = str(load_error(tmp_path, text))
    assert "'channels' appears twice" in msg and f"line {line_of(text, 'channels: 4')}" in msg


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    assert "empty" in str(load_error(tmp_path, ""))
    assert "not a mapping" in str(load_error(tmp_path, "- 1\n- 2\n"))


def test_missing_file_suggests_presets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_hw(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="did you mean 'cpu_dram'"):
        load_hw("cpu_dramm")


def test_link_endpoint_must_exist(tmp_path: Path) -> None:
    text = MINI.replace(
        "links: {}",
        "links:\n  l0:\n    kind: pcie\n    endpoints: [cpu0, gpu0]\n    generation: 4\n    lanes: 16\n",
    )
    msg = str(load_error(tmp_path, text))
    assert "links.l0.endpoints[1]" in msg and "'gpu0'" in msg


def test_link_kind_fields(tmp_path: Path) -> None:
    text = MINI.replace(
        "links: {}",
        "links:\n  l0:\n    kind: pcie\n    endpoints: [cpu0, dram0]\n    generation: 7\n    lanes: 16\n",
    )
    msg = str(load_error(tmp_path, text))
    assert "links.l0.generation" in msg and "7" in msg


def test_device_lookup_suggests(tmp_path: Path) -> None:
    cfg = load_hw(write(tmp_path, MINI))
    with pytest.raises(ConfigError, match="did you mean 'dram0'"):
        cfg.device("dram1")


# ---- extends ------------------------------------------------------------------------------------


def test_extends_overrides_and_deletes(tmp_path: Path) -> None:
    write(tmp_path, MINI, "base.yaml")
    child = (
        "extends: base.yaml\n"
        "name: child\n"
        "devices:\n"
        "  dram0:\n"
        "    channels: 4\n"
        "    capacity: 32 GiB\n"
        "  cpu0:\n"
        "    llc_size: null\n"  # deleting a required key must be reported
    )
    msg = str(load_error(tmp_path, child, "child.yaml"))
    assert "devices.cpu0.llc_size" in msg and "missing" in msg
    child = child.replace("  cpu0:\n    llc_size: null\n", "")
    cfg = load_hw(write(tmp_path, child, "child.yaml"))
    assert cfg.name == "child"
    assert cfg.description == "a small test system"  # inherited
    assert cfg.device("dram0").channels == 4
    assert cfg.device("dram0").timing.tRAS == pytest.approx(52 * 0.625e-9)


def test_extends_cycle_count_rule_under_a_new_clock(tmp_path: Path) -> None:
    """Timings written in cycles follow the overriding clock; those in ns stay."""
    write(tmp_path, MINI, "base.yaml")
    child = "extends: base.yaml\nname: slow\ndevices:\n  dram0:\n    data_rate: 2400 MT/s\n"
    cfg = load_hw(write(tmp_path, child, "slow.yaml"))
    t = cfg.device("dram0").timing
    assert t.tCK == pytest.approx(2 / 2400e6)
    cas = t.CL
    assert cas == pytest.approx(22 * 2 / 2400e6)
    assert t.tRCD == pytest.approx(13.75e-9)


def test_error_in_inherited_value_points_at_the_base_file(tmp_path: Path) -> None:
    bad = MINI.replace("llc_size: 32 MiB", "llc_size: 32 MHz")
    write(tmp_path, bad, "base.yaml")
    err = load_error(tmp_path, "extends: base.yaml\nname: c\n", "child.yaml")
    assert err.path == str(tmp_path / "base.yaml")
    assert f"line {line_of(bad, 'llc_size')}" in str(err)


def test_extends_cycle_detected(tmp_path: Path) -> None:
    write(tmp_path, "extends: b.yaml\nname: a\n", "a.yaml")
    write(tmp_path, "extends: c.yaml\nname: b\n", "b.yaml")
    write(tmp_path, "extends: a.yaml\nname: c\n", "c.yaml")
    with pytest.raises(ConfigError, match=r"cycle \(a.yaml -> b.yaml -> c.yaml -> a.yaml\)"):
        load_hw(tmp_path / "a.yaml")


def test_extends_missing_file(tmp_path: Path) -> None:
    msg = str(load_error(tmp_path, "extends: nothere.yaml\nname: x\n"))
    assert "extends" in msg and "nothere.yaml" in msg and "line 1" in msg


def test_extends_a_bundled_preset_by_name(tmp_path: Path) -> None:
    text = "extends: cpu_dram\nname: my_server\ndevices:\n  dram1: null\n"
    with pytest.raises(ConfigError, match="dram1"):
        # socket 1's DRAM gone: fine for the schema; the lookup must then fail
        load_hw(write(tmp_path, text)).device("dram1")


def test_python_api_accepts_si_floats_with_context() -> None:
    cfg = loads_hw(MINI)
    again = SystemConfig.model_validate(cfg.model_dump(), context={"si_floats": True})
    assert again == cfg
    with pytest.raises(Exception, match="missing unit"):
        SystemConfig.model_validate(cfg.model_dump())


# ---- docs stay in step with the schema -----------------------------------------------------------


def test_docs_name_every_key(repo_dir: Path) -> None:
    from simrec.hw import schema as s

    doc = (repo_dir / "docs" / "hw-yaml.md").read_text()
    models = [
        s.SystemConfig,
        s.Validation,
        s.CpuDevice,
        s.CpuTlb,
        s.DramDevice,
        s.DramTiming,
        s.HbmDevice,
        s.GpuDevice,
        s.GatherPoint,
        s.SwitchDevice,
        s.PcieLink,
        s.NvlinkLink,
        s.NetworkLink,
        s.CpuEnergy,
        s.MemoryEnergy,
        s.GpuEnergy,
        s.LinkEnergy,
        s.SwitchEnergy,
    ]
    missing = [f"{m.__name__}.{k}" for m in models for k in m.model_fields if f"`{k}`" not in doc]
    assert not missing, f"docs/hw-yaml.md does not mention: {missing}"
    for kind in list(s.DEVICE_KINDS) + list(s.LINK_KINDS):
        assert f"kind: {kind}" in doc or f"`{kind}`" in doc


def test_docs_extends_example_works(tmp_path: Path) -> None:
    text = (
        "extends: cpu_dram\nname: my_server\ndevices:\n  dram0:\n    data_rate: 2933 MT/s\n"
        "    timing: {tCK: null}\n  dram1: null\n"
    )
    cfg = load_hw(write(tmp_path, text, "my_server.yaml"))
    assert "dram1" not in cfg.devices
    assert cfg.device("dram0").timing.cycles("CL") == pytest.approx(22)
    assert cfg.device("dram0").timing.tCK == pytest.approx(2 / 2933e6)


def test_empty_links_and_from_dict_errors() -> None:
    cfg = loads_hw(MINI.replace("links: {}", "links:"))
    assert cfg.links == {}
    data = {"name": "x", "devices": {"a": {"kind": "cpuu"}}}
    with pytest.raises(ConfigError, match=r"<dict>: field devices.a: unknown kind 'cpuu'"):
        SystemConfig.from_dict(data)


def test_summary_rows_have_units() -> None:
    rows = {r["name"]: r for r in loads_hw(MINI).summary()}
    assert rows["dram0"]["peak"] == "51.2 GB/s"  # 2 channels x 25.6 GB/s (data.md §5.3)
    assert rows["dram0"]["capacity"] == "16 GiB"
    assert rows["cpu0"]["cores"] == 8


def test_key_in_the_wrong_block_points_to_its_home(tmp_path: Path) -> None:
    text = MINI.replace("    llc_size: 32 MiB\n", "    llc_size: 32 MiB\n    static_power: 5 W\n")
    msg = str(load_error(tmp_path, text))
    assert "unknown key 'static_power'" in msg and "move it under 'energy:'" in msg
