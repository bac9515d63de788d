"""The energy reference table: (component, action) -> energy per action, plus static power.

Like Accelergy's ERT (anchors.md §2.6), every entry carries the *estimator* that produced it
(``yaml`` for a number typed into a hardware file, ``DRAMsim3 IDD``, ``derived``, ``assumption``...)
and its *source* text, and a lookup of a missing entry raises a :class:`~simrec.errors.ConfigError`
naming the component, the action and the fix: there is no silent zero default.

Two builders:

* :func:`table_from_hw` reads the ``energy:`` blocks of a :class:`~simrec.hw.SystemConfig`
  (CPU, DRAM/HBM, GPU, switch devices; PCIe/NVLink/network links). Only the keys that are
  present become entries; which ones are *needed* depends on what the simulator counted (see
  :mod:`simrec.energy.estimate`).
* :func:`smartssd_table` reads ``simrec/energy/smartssd.yaml`` (the SCRec device, which has no
  hardware-YAML kind yet) for ``n`` devices named ``ssd0..ssd{n-1}``.

What it leaves out: argument-dependent actions (Accelergy's ``read{address_delta}``), area, and
temperature/voltage scaling; every energy is a constant per action.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from simrec.errors import ConfigError

__all__ = [
    "EnergyEntry",
    "EnergyTable",
    "STATIC",
    "SMARTSSD_TABLE",
    "table_from_hw",
    "smartssd_table",
]

#: The action name under which a component's static (always-on) power is stored, in watts.
STATIC = "static"

#: The bundled SmartSSD energy reference table.
SMARTSSD_TABLE = Path(__file__).with_name("smartssd.yaml")

_UNIT_OF_ACTION = {STATIC: "W"}


@dataclass(frozen=True)
class EnergyEntry:
    """One row of the reference table.

    Attributes:
        component: device or link name (``dram0``, ``pcie3``, ``ssd1.fpga``).
        kind: the component's kind (``dram``, ``gpu``, ``pcie``, ``smartssd.fpga``...).
        action: action name (``activate``, ``read_burst``, ``bit``, ``busy_s``, ``static``...).
        value: joules per action, or watts for ``static`` and for the ``*_s`` (per busy second)
            actions.
        unit: ``J``, ``J/bit`` or ``W``.
        estimator: the model that produced the number.
        source: where the number comes from (free text with the reference).
    """

    component: str
    kind: str
    action: str
    value: float
    unit: str
    estimator: str
    source: str


@dataclass
class EnergyTable:
    """A set of :class:`EnergyEntry` keyed by (component, action)."""

    name: str
    entries: dict[tuple[str, str], EnergyEntry] = field(default_factory=dict)
    origin: str = ""

    def add(self, e: EnergyEntry) -> None:
        """Add (or replace) an entry."""
        self.entries[(e.component, e.action)] = e

    def has(self, component: str, action: str) -> bool:
        """Whether the table has an entry."""
        return (component, action) in self.entries

    def get(self, component: str, action: str, fix: str | None = None) -> EnergyEntry:
        """The entry, or a ConfigError naming the component, the action and the fix."""
        try:
            return self.entries[(component, action)]
        except KeyError:
            have = sorted(a for c, a in self.entries if c == component)
            raise ConfigError(
                f"no energy entry for component {component!r}, action {action!r}"
                + (f" (it has: {', '.join(have)})" if have else " (it has no energy entries)"),
                path=self.origin or None,
                where=f"devices.{component}.energy" if "." not in component else component,
                fix=fix or _default_fix(component, action),
            ) from None

    def components(self) -> list[str]:
        """Component names in insertion order."""
        seen: dict[str, None] = {}
        for c, _ in self.entries:
            seen.setdefault(c, None)
        return list(seen)

    def merged(self, other: EnergyTable, name: str | None = None) -> EnergyTable:
        """A new table with the entries of both (``other`` wins on a clash)."""
        t = EnergyTable(name or f"{self.name}+{other.name}", dict(self.entries), self.origin)
        t.entries.update(other.entries)
        return t

    def to_frame(self) -> pd.DataFrame:
        """One row per entry (the ERT as a table)."""
        rows = [e.__dict__ for e in self.entries.values()]
        cols = ["component", "kind", "action", "value", "unit", "estimator", "source"]
        return pd.DataFrame(rows, columns=cols)


def _default_fix(component: str, action: str) -> str:
    key = {
        STATIC: "static_power",
        "activate": "activate",
        "read_burst": "read_burst",
        "bit": "energy_per_bit (links) or io_energy_per_bit (memories)",
        "busy_s": "static_power and tdp (gpu) or active_power_per_core (cpu)",
    }.get(action, action)
    return (
        f"add `{key}` with a unit and a source comment to the `energy:` block of {component!r} "
        "in the hardware YAML (docs/energy.md lists the keys each kind needs)"
    )


# --------------------------------------------------------------------------------------------------
# from a hardware YAML
# --------------------------------------------------------------------------------------------------


def _src(block: Any, key: str, cfg_source: str | None) -> str:
    text = getattr(block, "source", None)
    where = f"{cfg_source or 'hardware YAML'}: energy.{key}"
    return f"{where}" + (f" ({text})" if text else "")


def table_from_hw(cfg: Any) -> EnergyTable:
    """The entries given in the ``energy:`` blocks of every device and link of ``cfg``.

    Mapping (joules per action unless stated):

    * every device/link: ``static_power`` -> action ``static`` (W);
    * cpu: ``active_power_per_core`` -> ``core_busy_s`` (W per busy core);
      ``energy_per_flop`` -> ``flop``;
    * dram/hbm: ``activate``, ``read_burst``, ``write_burst``, ``refresh``;
      ``io_energy_per_bit`` -> ``bit`` (J/bit);
    * gpu: ``tdp`` - ``static_power`` -> ``busy_s`` (W while busy, estimator
      ``utilisation-scaled TDP``); ``energy_per_flop`` -> ``flop``;
    * links and switches: ``energy_per_bit`` -> ``bit`` (J/bit).
    """
    origin = getattr(cfg, "_source", None) or ""
    t = EnergyTable(name=str(cfg.name), origin=origin)
    items: list[tuple[str, Any]] = list(cfg.devices.items()) + list(cfg.links.items())
    for name, dev in items:
        en = getattr(dev, "energy", None)
        if en is None:
            continue
        kind = str(dev.kind)

        def put(
            action: str,
            value: float | None,
            unit: str,
            key: str,
            est: str = "hw YAML",
            _n: str = name,
            _k: str = kind,
            _en: Any = en,
        ) -> None:
            if value is None:
                return
            src = _src(_en, key, origin or None)
            t.add(EnergyEntry(_n, _k, action, float(value), unit, est, src))

        put(STATIC, en.static_power, "W", "static_power")
        if kind == "cpu":
            put("core_busy_s", en.active_power_per_core, "W", "active_power_per_core")
            put("flop", en.energy_per_flop, "J", "energy_per_flop")
        elif kind in ("dram", "hbm"):
            for a in ("activate", "read_burst", "write_burst", "refresh"):
                put(a, getattr(en, a), "J", a)
            put("bit", en.io_energy_per_bit, "J/bit", "io_energy_per_bit")
        elif kind == "gpu":
            put("flop", en.energy_per_flop, "J", "energy_per_flop")
            if en.tdp is not None and en.static_power is not None:
                if en.tdp < en.static_power:
                    raise ConfigError(
                        f"gpu {name!r}: tdp {en.tdp} W is below static_power {en.static_power} W",
                        path=origin or None,
                        where=f"devices.{name}.energy",
                        fix="static_power is the idle part of the board power: make it <= tdp",
                    )
                put("busy_s", en.tdp - en.static_power, "W", "tdp", "utilisation-scaled TDP")
        else:  # switch, pcie, nvlink, network
            put("bit", getattr(en, "energy_per_bit", None), "J/bit", "energy_per_bit")
    return t


# --------------------------------------------------------------------------------------------------
# the SmartSSD table
# --------------------------------------------------------------------------------------------------


def _quantity(text: Any, where: str, path: Path) -> tuple[float, str]:
    from simrec.hw.units import UnitError, parse_quantity

    for kind, unit in (("energy", "J"), ("power", "W"), ("energy_per_bit", "J/bit")):
        try:
            return parse_quantity(text, kind), unit
        except UnitError:
            continue
    raise ConfigError(
        f"{text!r} is not an energy, a power or an energy per bit",
        path=path,
        where=where,
        fix="write e.g. '4.2 nJ', '5 W' or '5 pJ/bit'",
    )


def load_component_table(path: str | Path, prefix: str, kind_prefix: str) -> EnergyTable:
    """Read a component energy file (the ``smartssd.yaml`` layout) for one device ``prefix``."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read energy table: {e}", path=p, fix="check the file") from None
    comps = doc.get("components") if isinstance(doc, dict) else None
    if not isinstance(comps, dict):
        raise ConfigError(
            "no `components:` mapping", path=p, fix="see simrec/energy/smartssd.yaml for the layout"
        )
    t = EnergyTable(name=prefix, origin=str(p))
    for cname, spec in comps.items():
        comp = f"{prefix}.{cname}"
        kind = f"{kind_prefix}.{cname}"
        items = [(STATIC, spec.get("static_power"))] if "static_power" in spec else []
        items += list((spec.get("actions") or {}).items())
        for action, e in items:
            where = f"components.{cname}." + ("static_power" if action == STATIC else action)
            if not isinstance(e, dict) or not {"value", "estimator", "source"} <= set(e):
                raise ConfigError(
                    "an entry needs value, estimator and source",
                    path=p,
                    where=where,
                    fix="write {value: '4.2 nJ', estimator: ..., source: ...}",
                )
            v, unit = _quantity(e["value"], where, p)
            want = "W" if action == STATIC else None
            if want and unit != want:
                raise ConfigError(
                    f"static power must be in W, got {e['value']!r}", path=p, where=where
                )
            t.add(
                EnergyEntry(comp, kind, str(action), v, unit, str(e["estimator"]), str(e["source"]))
            )
    return t


def smartssd_envelope(path: str | Path = SMARTSSD_TABLE) -> float:
    """The device's thermal envelope in watts (the ``envelope:`` key)."""
    from simrec.hw.units import parse_quantity

    return parse_quantity(yaml.safe_load(Path(path).read_text())["envelope"], "power")


def smartssd_table(n_devices: int, path: str | Path = SMARTSSD_TABLE) -> EnergyTable:
    """The SmartSSD entries for devices ``ssd0 .. ssd{n-1}`` (components ``ssdJ.<part>``)."""
    t = EnergyTable(name=f"{n_devices} x smartssd", origin=str(path))
    one = load_component_table(path, "ssd0", "smartssd")  # read and check the file once
    for j in range(n_devices):
        for e in one.entries.values():
            t.add(replace(e, component=f"ssd{j}." + e.component.split(".", 1)[1]))
    return t
