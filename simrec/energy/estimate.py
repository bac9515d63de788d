"""Energy of a simulation: sum over actions of counts x energy per action + static power x time.

The simulator counts actions (:attr:`SimResult.counters`) and busy fractions
(:attr:`SimResult.utilisation`); this module turns them into *usages* -- (component, action,
count) -- with one function per system model, then prices every usage with the
:class:`~simrec.energy.table.EnergyTable`. A usage without a table entry is a
:class:`~simrec.errors.ConfigError` (never a zero).

Boundaries. Every usage is tagged ``device`` (the parts that serve the embeddings: CPU sockets and
their DRAM in ``cpu_dram``; GPUs, HBM and NVLink in ``multi_gpu``; the SmartSSDs in ``screc``) or
``host`` (the rest of the server: host CPUs and DRAM, PCIe root complexes and links, UPI). The
estimate reports *device-only* energy and *whole-server* energy (device + host), because the SCRec
paper's boundary is unknown (screc.md §8).

What each system's usages cover
-------------------------------
* ``cpu_dram``: DRAM activates and 64 B read bursts (``dram_activates``, ``dram_bursts``, summed
  over sockets, priced with the DRAMs' shared entries), busy core-seconds per socket
  (``utilisation[<cpu>.cores]`` x cores x time, at ``active_power_per_core``), static power of
  every device.
* ``multi_gpu``: GPU busy seconds (``utilisation[gpuN]`` x time, at ``tdp - static_power``),
  HBM bits (``hbm_bytes`` x 8 at the HBM's per-bit energy), PCIe bits (``pcie_bytes``), NVLink
  bits (``alltoall_bytes``), static power of every device.
* ``screc``: per SmartSSD part (entries ``ssdJ.<part>`` of ``simrec/energy/smartssd.yaml``): NAND
  page reads, DDR4 activates (one per DDR4 row read) and bursts, SRAM row reads, pooled rows, TT
  and MLP multiply-accumulates, PCIe bits (host link and P2P), static power; the host's static
  power from the host hardware config (by default the ``cpu_dram`` preset).

What it leaves out: the counters are summed over devices by the simulator, so per-device dynamic
energy is split only where the counters are (see the report); DRAM refresh, writes and I/O
energy unless the simulator counts them; the GPU's busy power overlaps its HBM energy (the board
TDP includes HBM), so multi-GPU energy is an upper bound; the host CPU time SCRec spends on
remapping; fans, power supplies and NICs; link static power where a link's ``energy`` block gives
none (listed in :attr:`EnergyEstimate.excluded`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from simrec.energy.table import STATIC, EnergyTable
from simrec.errors import ConfigError

__all__ = ["Usage", "EnergyEstimate", "estimate_energy", "usages_for"]


@dataclass(frozen=True)
class Usage:
    """``count`` of ``action`` on ``components`` (several names when the counter is summed)."""

    components: tuple[str, ...]
    action: str
    count: float
    boundary: str  # "device" or "host"
    counter: str  # what the count was computed from


@dataclass
class EnergyEstimate:
    """The priced usages of one simulation.

    ``rows``: one row per usage with ``component, kind, action, boundary, count, counter, value,
    unit, energy_j, estimator, source``. Totals in joules; per-sample figures in J/sample.
    """

    system: str
    rows: pd.DataFrame
    sim_time_s: float
    samples: int
    excluded: list[str] = field(default_factory=list)

    @property
    def device_j(self) -> float:
        """Device-only energy (J)."""
        return float(self.rows.loc[self.rows.boundary == "device", "energy_j"].sum())

    @property
    def server_j(self) -> float:
        """Whole-server energy (J): device + host."""
        return float(self.rows["energy_j"].sum())

    @property
    def static_j(self) -> float:
        """Static (always-on) part of the whole-server energy (J)."""
        return float(self.rows.loc[self.rows.action == STATIC, "energy_j"].sum())

    @property
    def device_j_per_sample(self) -> float:
        return self.device_j / self.samples if self.samples else 0.0

    @property
    def server_j_per_sample(self) -> float:
        return self.server_j / self.samples if self.samples else 0.0

    @property
    def server_power_w(self) -> float:
        """Average whole-server power over the simulated time (W)."""
        return self.server_j / self.sim_time_s if self.sim_time_s > 0 else 0.0

    @property
    def estimators(self) -> list[str]:
        """The distinct estimators behind the numbers."""
        return sorted(set(self.rows["estimator"]))

    def summary(self) -> dict[str, Any]:
        """JSON-friendly totals, with the estimators named."""
        return {
            "device_j": self.device_j,
            "server_j": self.server_j,
            "static_j": self.static_j,
            "device_j_per_sample": self.device_j_per_sample,
            "server_j_per_sample": self.server_j_per_sample,
            "server_power_w": self.server_power_w,
            "estimators": self.estimators,
            "excluded": list(self.excluded),
            "model": "simrec.energy: sum(counts x energy per action) + static power x time",
        }

    def by_component(self) -> pd.DataFrame:
        """Energy per component (J), device and host."""
        return (
            self.rows.groupby(["component", "boundary"], sort=False)["energy_j"].sum().reset_index()
        )


# --------------------------------------------------------------------------------------------------
# usages per system model
# --------------------------------------------------------------------------------------------------


def _need(d: dict[str, float], key: str, system: str) -> float:
    if key not in d:
        raise ConfigError(
            f"the {system} result has no {key!r}; the energy model needs it",
            where=f"result of {system}",
            fix="re-run the simulation with a simrec version whose system model counts it",
        )
    return float(d[key])


def _statics(cfg: Any, boundary_of: dict[str, str], t: float) -> list[Usage]:
    """Static power x time of every device, and of every link whose energy block gives one."""
    names = list(cfg.devices) + [
        n for n, lk in cfg.links.items() if getattr(lk.energy, "static_power", None) is not None
    ]
    return [Usage((n,), STATIC, t, boundary_of.get(n, "host"), "sim_time_s") for n in names]


def _cpu_dram(res: Any, cfg: Any) -> list[Usage]:
    t = res.sim_time_s
    cpus = list(cfg.devices_of_kind("cpu"))
    drams = list(cfg.devices_of_kind("dram"))
    out = _statics(cfg, dict.fromkeys(cfg.devices, "device"), t)
    for c in cpus:
        u = _need(res.utilisation, f"{c}.cores", "cpu_dram")
        cores = int(cfg.devices[c].cores)
        out.append(Usage((c,), "core_busy_s", u * cores * t, "device", f"utilisation[{c}.cores]"))
    out.append(
        Usage(
            tuple(drams),
            "activate",
            _need(res.counters, "dram_activates", "cpu_dram"),
            "device",
            "dram_activates",
        )
    )
    out.append(
        Usage(
            tuple(drams),
            "read_burst",
            _need(res.counters, "dram_bursts", "cpu_dram"),
            "device",
            "dram_bursts",
        )
    )
    return out


def _multi_gpu(res: Any, cfg: Any) -> list[Usage]:
    t = res.sim_time_s
    gpus = list(cfg.devices_of_kind("gpu"))
    hbms = list(cfg.devices_of_kind("hbm"))
    pcie = [n for n, lk in cfg.links.items() if lk.kind == "pcie" and set(lk.endpoints) & set(gpus)]
    fabric = [n for n, lk in cfg.links.items() if lk.kind == "nvlink"]
    if not fabric:
        fabric = [
            n for n, lk in cfg.links.items() if set(getattr(lk, "members", None) or ()) & set(gpus)
        ]
    boundary = {n: "device" for n in gpus + hbms}
    out = _statics(cfg, boundary, t)
    for g in gpus:
        u = _need(res.utilisation, g, "multi_gpu")
        out.append(Usage((g,), "busy_s", u * t, "device", f"utilisation[{g}]"))
    hbm_bits = 8.0 * _need(res.counters, "hbm_bytes", "multi_gpu")
    out.append(Usage(tuple(hbms), "bit", hbm_bits, "device", "hbm_bytes x 8"))
    pcie_bits = 8.0 * _need(res.counters, "pcie_bytes", "multi_gpu")
    if pcie:
        out.append(Usage(tuple(pcie), "bit", pcie_bits, "host", "pcie_bytes x 8"))
    elif pcie_bits:
        raise ConfigError("PCIe bytes were counted but the config has no pcie link", where="links")
    a2a_bits = 8.0 * _need(res.counters, "alltoall_bytes", "multi_gpu")
    if fabric:
        out.append(Usage(tuple(fabric), "bit", a2a_bits, "device", "alltoall_bytes x 8"))
    elif a2a_bits:
        raise ConfigError("all-to-all bytes were counted but no GPU fabric link", where="links")
    return out


def _screc(res: Any, n_devices: int, host_cfg: Any | None) -> list[Usage]:
    t = res.sim_time_s
    c = res.counters
    ssds = [f"ssd{j}" for j in range(n_devices)]

    def parts(p: str) -> tuple[str, ...]:
        return tuple(f"{s}.{p}" for s in ssds)

    out: list[Usage] = []
    for p in ("ssd", "fpga", "sram", "ddr4", "pcie"):
        out += [Usage((f"{s}.{p}",), STATIC, t, "device", "sim_time_s") for s in ssds]
    g = _need
    out += [
        Usage(
            parts("ssd"), "page_read", g(c, "nand_page_reads", "screc"), "device", "nand_page_reads"
        ),
        Usage(parts("ddr4"), "activate", g(c, "ddr_rows", "screc"), "device", "ddr_rows"),
        Usage(parts("ddr4"), "read_burst", g(c, "ddr4_bursts", "screc"), "device", "ddr4_bursts"),
        Usage(parts("sram"), "row_read", g(c, "sram_rows", "screc"), "device", "sram_rows"),
        Usage(parts("fpga"), "pool_row", g(c, "pooled_rows", "screc"), "device", "pooled_rows"),
        Usage(parts("fpga"), "tt_mac", g(c, "tt_macs", "screc"), "device", "tt_macs"),
        Usage(parts("fpga"), "mlp_mac", g(c, "mlp_macs", "screc"), "device", "mlp_macs"),
    ]
    bits = 8.0 * (
        g(c, "host_bytes", "screc") + g(c, "host_bytes_in", "screc") + g(c, "p2p_bytes", "screc")
    )
    out.append(
        Usage(parts("pcie"), "bit", bits, "device", "(host_bytes + host_bytes_in + p2p_bytes) x 8")
    )
    if host_cfg is not None:
        out += _statics(host_cfg, {}, t)
    return out


def usages_for(res: Any, cfg: Any | None = None, n_devices: int | None = None) -> list[Usage]:
    """The usages of a result, by its system kind (``cpu_dram``, ``multi_gpu``, ``screc``).

    ``cfg`` is the hardware config (for ``screc``: the host's, may be None for device-only);
    ``n_devices`` the number of SmartSSDs for ``screc``.
    """
    if res.kind == "cpu_dram":
        return _cpu_dram(res, cfg)
    if res.kind == "multi_gpu":
        return _multi_gpu(res, cfg)
    if res.kind == "screc":
        if not n_devices:
            raise ConfigError("screc energy needs the number of devices", where="n_devices")
        return _screc(res, n_devices, cfg)
    raise ConfigError(
        f"no energy model for system kind {res.kind!r}",
        where="result.kind",
        fix="use cpu_dram, multi_gpu or screc, or add a usage function to simrec/energy/estimate.py",
    )


# --------------------------------------------------------------------------------------------------
# pricing
# --------------------------------------------------------------------------------------------------


def _entry_for(table: EnergyTable, u: Usage) -> tuple[str, Any]:
    entries = [table.get(c, u.action) for c in u.components]
    first = entries[0]
    for c, e in zip(u.components[1:], entries[1:], strict=True):
        if e.value != first.value:
            raise ConfigError(
                f"{u.counter} is summed over {', '.join(u.components)} by the simulator, but "
                f"{u.components[0]!r} and {c!r} have different {u.action!r} energies "
                f"({first.value:g} vs {e.value:g} {first.unit})",
                where=f"energy of {c}",
                fix="give those components the same energy entry, or ask for per-device counters",
            )
    label = u.components[0] if len(u.components) == 1 else ",".join(u.components)
    return label, first


def estimate_energy(
    res: Any,
    table: EnergyTable,
    cfg: Any | None = None,
    n_devices: int | None = None,
    usages: list[Usage] | None = None,
) -> EnergyEstimate:
    """Price the usages of ``res`` with ``table`` (see the module docstring)."""
    us = usages if usages is not None else usages_for(res, cfg, n_devices)
    rows = []
    for u in us:
        label, e = _entry_for(table, u)
        if u.action == STATIC or u.action.endswith("_s"):
            count_unit = "s"
        else:
            count_unit = "bit" if e.unit == "J/bit" else "actions"
        energy = u.count * e.value  # W x s, J x actions, J/bit x bits
        rows.append(
            {
                "component": label,
                "kind": e.kind,
                "action": u.action,
                "boundary": u.boundary,
                "count": float(u.count),
                "count_unit": count_unit,
                "counter": u.counter,
                "value": e.value,
                "unit": e.unit,
                "energy_j": float(energy),
                "estimator": e.estimator,
                "source": e.source,
            }
        )
    excluded = []
    if cfg is not None:
        for n, lk in cfg.links.items():
            if getattr(lk.energy, "static_power", None) is None:
                excluded.append(f"{n}: link static power (no static_power in its energy block)")
    return EnergyEstimate(
        system=res.system,
        rows=pd.DataFrame(rows),
        sim_time_s=float(res.sim_time_s),
        samples=int(res.samples),
        excluded=excluded,
    )
