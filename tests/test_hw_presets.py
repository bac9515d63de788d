"""The bundled presets load, every number has a source comment, and derived numbers equal the
reference values of ../shared/reference/data.md §5 and anchors.md §2.4."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simrec.hw import list_presets, load_hw, loads_hw
from simrec.hw.load import preset_dir
from simrec.hw.schema import PcieLink

PRESETS = ["cpu_dram", "multi_gpu"]


def test_presets_are_listed() -> None:
    assert set(PRESETS) <= set(list_presets())


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_by_name_and_by_path(name: str) -> None:
    a = load_hw(name)
    b = load_hw(preset_dir() / f"{name}.yaml")
    assert a == b
    assert a.name == name
    # A preset is marked validated only with a measured error and where it comes from.
    if a.validated:
        assert a.validation.error is not None and 0 <= a.validation.error < 1
        assert a.validation.reference and a.validation.method


def _leaves(data: object, path: tuple = ()) -> list[tuple[tuple, object]]:
    if isinstance(data, dict):
        return [x for k, v in data.items() for x in _leaves(v, path + (k,))]
    if isinstance(data, list):
        return [x for i, v in enumerate(data) for x in _leaves(v, path + (i,))]
    return [(path, data)]


@pytest.mark.parametrize("name", PRESETS)
def test_every_number_has_a_source_comment(name: str) -> None:
    """Every numeric value (a number, or a quantity string starting with a digit) sits on a line
    with a '#' comment, or inside a block whose header line names its source ('[...]')."""
    from simrec.hw.load import _parse_text

    path = preset_dir() / f"{name}.yaml"
    lines = path.read_text().splitlines()
    data, marks = _parse_text(path.read_text(), str(path))
    missing = []
    for leaf, value in _leaves(data):
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        numeric |= isinstance(value, str) and bool(re.match(r"^\s*[-+.\d]", value))
        if not numeric or leaf[-1] in ("description", "notes", "source"):
            continue
        line = lines[marks[leaf][1] - 1]
        ok = "#" in line
        for n in range(len(leaf) - 1, 0, -1):  # a sourced block header counts
            header = lines[marks[leaf[:n]][1] - 1]
            ok |= "#" in header and "[" in header.split("#", 1)[1]
        if not ok:
            missing.append(f"{'.'.join(map(str, leaf))} = {value!r} (line {marks[leaf][1]})")
    assert not missing, "numbers without a source comment:\n" + "\n".join(missing)


# ---- cpu_dram: DDR4-3200 with the DRAMsim3 DDR4_8Gb_x8_3200 timing set (data.md §5.3) ---------


def test_ddr4_3200_reference_values() -> None:
    cfg = load_hw("cpu_dram")
    dram = cfg.device("dram0")
    # data.md §5.3: peak per 64-bit channel = 3200 MT/s x 8 B = 25.6 GB/s
    assert dram.channel_bandwidth == pytest.approx(25.6e9, rel=1e-12)
    assert dram.peak_bandwidth == pytest.approx(8 * 25.6e9, rel=1e-12)
    # data.md §5.3: one 64 B burst = 4 tCK = 2.5 ns; tFAW = 21.25 ns; tRC = 46.25 ns
    assert dram.burst_bytes == 64
    assert dram.burst_time == pytest.approx(2.5e-9)
    assert dram.timing.tFAW == pytest.approx(21.25e-9)
    assert dram.timing.tRC == pytest.approx(46.25e-9)
    cas = dram.timing.CL
    assert cas == pytest.approx(22 * 0.625e-9)
    # DRAMsim3 organisation: 4 bank groups x 4 banks, x8 devices, 8 KiB rows per rank
    assert dram.banks_per_rank == 16
    assert dram.row_buffer_size == 8 * 1024
    # data.md §5.3 derived ceiling: 4 ACT per tFAW x 64 B = 12.0 GB/s per rank (row-miss random)
    act_limited = 4 / dram.timing.tFAW * dram.burst_bytes
    assert act_limited == pytest.approx(12.0e9, rel=0.01)
    # data.md §5.3: E(ACT+PRE) 4.2 nJ per rank, E(RD burst) 2.78 nJ per 64 B
    assert dram.energy.activate == pytest.approx(4.2e-9)
    assert dram.energy.read_burst == pytest.approx(2.78e-9)


def test_cpu_dram_capacities_and_cores() -> None:
    cfg = load_hw("cpu_dram")
    # 2 sockets x 8 ch x 2 ranks x 8 GiB (8 x 8 Gb x8 devices per rank)
    assert cfg.capacities() == {"dram": 2 * 8 * 2 * 8 * 2**30}
    cpus = cfg.devices_of_kind("cpu")
    assert sum(c.cores for c in cpus.values()) == 80
    # 40 cores x 2.3 GHz x 64 FLOP/cycle
    assert cpus["cpu0"].peak_flops == pytest.approx(40 * 2.3e9 * 64)


# ---- multi_gpu: H100 SXM, NVSwitch, PCIe Gen5 (data.md §5.1/§5.2, anchors.md §2.4) -----------


def test_h100_hbm_reference_values() -> None:
    cfg = load_hw("multi_gpu")
    hbms = {n: d for n, d in cfg.memories().items() if d.kind == "hbm"}
    assert len(hbms) == 8
    for hbm in hbms.values():
        assert hbm.peak_bandwidth == pytest.approx(3.35e12, rel=1e-9)  # data.md §5.2
        assert hbm.bus_width_total_bits == 5120  # data.md §5.2 (A100: 5120 bits too)
    assert cfg.capacities()["hbm"] == 8 * 80 * 2**30
    assert cfg.capacities()["dram"] == 2 * 2**40


def test_pcie_reference_values() -> None:
    # data.md §5.1: per direction, GT/s x 128/130 / 8 x lanes
    gen3x4 = PcieLink(endpoints=("a", "b"), generation=3, lanes=4)
    gen4x16 = PcieLink(endpoints=("a", "b"), generation=4, lanes=16)
    gen5x16 = PcieLink(endpoints=("a", "b"), generation=5, lanes=16)
    assert gen3x4.bandwidth == pytest.approx(3.94e9, rel=2e-3)
    assert gen4x16.bandwidth == pytest.approx(31.51e9, rel=2e-3)
    assert gen5x16.bandwidth == pytest.approx(63.02e9, rel=2e-3)
    assert gen5x16.raw_bandwidth == pytest.approx(32e9 * 128 / 130 / 8 * 16, rel=1e-12)
    # the preset's measured efficiency reproduces the measured H2D 50.3 GB/s (data.md §5.1)
    link = load_hw("multi_gpu").link("pcie0")
    assert link.bandwidth == pytest.approx(50.3e9, rel=1e-3)


def test_pcie_tlp_overhead_reduces_bandwidth() -> None:
    link = PcieLink(
        endpoints=("a", "b"), generation=5, lanes=16, max_payload="256 B", tlp_overhead="24 B"
    )
    assert link.bandwidth == pytest.approx(63.015e9 * 256 / 280, rel=1e-3)


def test_nvlink_reference_values() -> None:
    cfg = load_hw("multi_gpu")
    nv = cfg.link("nvswitch")
    # 18 links x 25 GB/s x 2 directions = 900 GB/s bidirectional per GPU (NVIDIA Hopper page)
    assert 2 * nv.links * nv.link_bandwidth == pytest.approx(900e9)
    # ASTRA-sim validated HGX-H100: 400 GB/s, 936.25 ns per dimension (anchors.md §2.4)
    assert nv.bandwidth == pytest.approx(400e9, rel=1e-4)
    assert nv.latency == pytest.approx(936.25e-9)
    dims = cfg.topology().dimensions()
    assert [(d.npus, d.topology) for d in dims] == [(8, "switch")]
    assert dims[0].beta == pytest.approx(1 / 400e9, rel=1e-4)


def test_gpu_gather_efficiency_from_measurement() -> None:
    gpu = load_hw("multi_gpu").device("gpu3")
    # data.md §5.2, D=64, L=32, B=65536: 0.353 ms; less 5 us launch, vs 3.35 TB/s
    expect = 65536 * 32 * 256 / ((0.353e-3 - 5e-6) * 3.35e12)
    assert gpu.gather_efficiency_at(256) == pytest.approx(expect, rel=1e-3)
    # log2-linear between 256 B and 512 B, clamped outside the table
    mid = gpu.gather_efficiency_at(256 * 2**0.5)
    assert mid == pytest.approx((gpu.gather_efficiency_at(256) + gpu.gather_efficiency_at(512)) / 2)
    assert gpu.gather_efficiency_at(4) == gpu.gather_efficiency_at(64)
    assert gpu.gather_efficiency_at(1 << 20) == gpu.gather_efficiency_at(512)
    assert gpu.mlp_peak_flops == pytest.approx(989.4e12)


# ---- the simulator reads the very numbers of the YAML --------------------------------------------


def test_dram_params_equal_the_dramsim3_set() -> None:
    from simrec.sim.components.dram import DramParams

    ours = load_hw("cpu_dram").params("dram0")
    ref = DramParams.ddr4_3200_dramsim3(channels=8, ranks=2)
    fields = [f for f in ref.__dataclass_fields__ if f != "name"]
    assert {f: getattr(ours, f) for f in fields} == {f: getattr(ref, f) for f in fields}
    assert ours.peak_bw_Bps == pytest.approx(8 * 25.6e9)


def test_hbm_params_match_the_simulators_h100_preset() -> None:
    from simrec.sim.components.hbm import HbmParams

    ours = load_hw("multi_gpu").params("hbm0")
    ref = HbmParams.h100_sxm_hbm3()
    fields = [f for f in ref.__dataclass_fields__ if f != "name"]
    assert {f: getattr(ours, f) for f in fields} == {f: getattr(ref, f) for f in fields}
    assert ours.peak_bw_Bps == pytest.approx(3.35e12)


def test_other_params() -> None:
    cfg = load_hw("multi_gpu")
    gpu = cfg.params("gpu0")
    assert gpu.hbm_capacity_bytes == 80 * 2**30
    assert gpu.kernel_launch_s == pytest.approx(5e-6)
    assert gpu.gather_eff(64) == pytest.approx(0.2428)
    pcie = cfg.params("pcie0")
    assert pcie.raw_bw_Bps == pytest.approx(63.02e9, rel=2e-3)
    assert pcie.efficiency == pytest.approx(0.798)
    net = cfg.network_params()
    assert net.npus == 8
    assert net.dims[0].latency_s == pytest.approx(936.25e-9)
    cpu = load_hw("cpu_dram").params("cpu0")
    assert (cpu.cores_per_socket, cpu.freq_hz) == (40, 2.3e9)


def test_preset_round_trips_through_yaml(tmp_path: Path) -> None:
    for name in PRESETS:
        cfg = load_hw(name)
        text = cfg.to_yaml()
        again = loads_hw(text, name=str(tmp_path / f"{name}.yaml"))
        assert again == cfg
        assert again.to_yaml() == text  # a fixed point
