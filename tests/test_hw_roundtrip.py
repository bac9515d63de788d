"""Property test: any valid system survives to_yaml -> load unchanged (SI floats bit-exact)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simrec.hw import loads_hw
from simrec.hw.schema import SystemConfig

pos = st.floats(min_value=1e-15, max_value=1e18, allow_nan=False, allow_infinity=False)
nonneg = st.one_of(st.just(0.0), pos)
frac = st.floats(min_value=1e-6, max_value=1.0, allow_nan=False)
count = st.integers(1, 4096)
opt = st.one_of(st.none(), nonneg)


@st.composite
def timing(draw: st.DrawFn, data_rate: float) -> dict:
    t = {k: draw(pos) for k in ("CL", "tRCD", "tRP", "tRAS", "tFAW")}
    t["tRRD_S"] = draw(pos)
    t["tRRD_L"] = t["tRRD_S"] * draw(st.floats(1.0, 4.0))
    t["tCCD_S"] = draw(pos)
    t["tCCD_L"] = t["tCCD_S"] * draw(st.floats(1.0, 4.0))
    t["tCK"] = 2.0 / data_rate
    if draw(st.booleans()):
        t["tRC"] = t["tRAS"] * draw(st.floats(1.0, 3.0))
    t["tRTP"] = draw(st.one_of(st.none(), pos))
    return t


@st.composite
def system(draw: st.DrawFn) -> dict:
    rate = draw(st.floats(1e6, 1e11))
    ddr = draw(st.sampled_from([("DDR4", 8), ("DDR5", 16), ("DDR5", 32)]))
    hbm_rate = draw(st.floats(1e6, 1e11))
    pcs = draw(st.integers(1, 4))
    devices = {
        "cpu0": {
            "kind": "cpu",
            "host": draw(st.one_of(st.none(), st.text("abc", min_size=1, max_size=4))),
            "sockets": draw(count),
            "cores_per_socket": draw(count),
            "frequency": draw(pos),
            "simd_width_bits": draw(count),
            "flops_per_cycle": draw(pos),
            "pool_efficiency": draw(frac),
            "mlp_efficiency": draw(frac),
            "lookup_cycles": draw(nonneg),
            "llc_size": draw(pos),
            "energy": {"static_power": draw(opt), "energy_per_flop": draw(opt)},
        },
        "dram0": {
            "kind": "dram",
            "attached_to": "cpu0",
            "standard": ddr[0],
            "data_rate": rate,
            "channels": draw(count),
            "ranks_per_channel": draw(count),
            "bank_groups": draw(count),
            "banks_per_group": draw(count),
            "bus_width_bits": draw(count),
            "burst_length": ddr[1],
            "row_buffer_size": draw(pos),
            "capacity": draw(pos),
            "timing": draw(timing(rate)),
            "energy": {"activate": draw(opt), "io_energy_per_bit": draw(opt)},
        },
        "gpu0": {
            "kind": "gpu",
            "sms": draw(count),
            "clock": draw(pos),
            "fp32_flops": draw(pos),
            "bf16_flops": draw(pos),
            "l2_size": draw(pos),
            "kernel_launch_overhead": draw(nonneg),
            "mlp_dtype": draw(st.sampled_from(["fp32", "bf16"])),
            "mlp_efficiency": draw(frac),
            "gather_efficiency": [
                {"row_bytes": 2.0**i, "efficiency": draw(frac)}
                for i in sorted(draw(st.sets(st.integers(0, 20), min_size=1, max_size=4)))
            ],
            "energy": {"tdp": draw(opt)},
        },
        "hbm0": {
            "kind": "hbm",
            "attached_to": "gpu0",
            "standard": draw(st.sampled_from(["HBM2", "HBM2E", "HBM3", "HBM3E"])),
            "stacks": draw(count),
            "channels_per_stack": draw(count),
            "pseudo_channels_per_channel": pcs,
            "bus_width_bits": 8 * pcs * draw(st.integers(1, 64)),
            "data_rate": hbm_rate,
            "burst_length": draw(count),
            "bank_groups": draw(count),
            "banks_per_group": draw(count),
            "row_buffer_size": draw(pos),
            "capacity": draw(pos),
            "timing": draw(timing(hbm_rate)),
        },
        "sw0": {
            "kind": "switch",
            "attached_to": "cpu0",
            "bandwidth": draw(st.one_of(st.none(), pos)),
            "latency": draw(nonneg),
        },
    }
    links = {
        "p0": {
            "kind": "pcie",
            "endpoints": ["gpu0", "sw0"],
            "generation": draw(st.sampled_from([1, 2, 3, 4, 5])),
            "lanes": draw(st.sampled_from([1, 2, 4, 8, 16, 32])),
            "efficiency": draw(frac),
            "per_transfer_overhead": draw(nonneg),
            "max_payload": draw(st.one_of(st.none(), pos)),
            "tlp_overhead": draw(st.one_of(st.none(), pos)),
        },
        "n0": {
            "kind": draw(st.sampled_from(["nvlink", "network"])),
            "members": ["gpu0", "cpu0"],
            "topology": draw(st.sampled_from(["switch", "ring", "fully_connected"])),
            "latency": draw(nonneg),
            "efficiency": draw(frac),
            "link_bandwidth": draw(pos),
        },
    }
    if links["n0"]["kind"] == "nvlink":
        links["n0"]["links"] = draw(count)
    return {
        "name": draw(st.text(min_size=1, max_size=10)),
        "description": draw(st.text(max_size=20)),
        "validated": draw(st.booleans()),
        "validation": {"error": draw(st.one_of(st.none(), frac)), "notes": draw(st.none())},
        "devices": devices,
        "links": links,
    }


def _strip_none(x):
    if isinstance(x, dict):
        return {k: _strip_none(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [_strip_none(v) for v in x]
    return x


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(system())
def test_to_yaml_load_round_trip(data: dict) -> None:
    cfg = SystemConfig.model_validate(_strip_none(data), context={"si_floats": True})
    text = cfg.to_yaml()
    again = loads_hw(text)
    assert again == cfg
    # SI floats are bit-exact, not just close
    assert again.model_dump() == cfg.model_dump()
    assert again.to_yaml() == text


def test_to_yaml_keeps_yaml_line_break_characters() -> None:
    """Found by the property test above: PyYAML writes NEL (U+0085), U+2028 and U+2029 raw
    inside single quotes, where a reader folds them into spaces."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    cfg = loads_hw((repo / "hwconfigs" / "cpu_dram.yaml").read_text())
    odd = cfg.model_copy(update={"description": "a\x85b\u2028c\u2029d é"})
    again = loads_hw(odd.to_yaml())
    assert again.description == "a\x85b\u2028c\u2029d é"
    assert again == odd
    assert "é" in odd.to_yaml()  # other unicode stays readable
