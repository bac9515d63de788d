"""Hardware descriptions: the YAML schema, units, presets and the topology graph.

>>> from simrec.hw import load_hw
>>> hw = load_hw("cpu_dram")          # a preset name or a path  # doctest: +SKIP
>>> hw.device("dram0").peak_bandwidth  # bytes/s, SI floats everywhere  # doctest: +SKIP

See docs/hw-yaml.md for every key. pint is only imported when a unit string is first parsed.
"""

from __future__ import annotations

from simrec.hw.load import list_presets, load_hw, loads_hw, preset_path
from simrec.hw.schema import SystemConfig
from simrec.hw.units import UnitError, format_si, parse_quantity

__all__ = [
    "load_hw",
    "loads_hw",
    "list_presets",
    "preset_path",
    "SystemConfig",
    "format_si",
    "parse_quantity",
    "UnitError",
]
