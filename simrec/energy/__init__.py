"""Energy: a reference table of energy per (component, action) and static power, and the estimator
energy = sum(counts x energy per action) + static power x time (see docs/energy.md).

>>> from simrec.energy import table_from_hw, estimate_energy  # doctest: +SKIP
>>> est = estimate_energy(result, table_from_hw(hw), hw)       # doctest: +SKIP
>>> est.device_j, est.server_j                                  # doctest: +SKIP
"""

from __future__ import annotations

from simrec.energy.estimate import EnergyEstimate, Usage, estimate_energy, usages_for
from simrec.energy.table import (
    SMARTSSD_TABLE,
    STATIC,
    EnergyEntry,
    EnergyTable,
    smartssd_envelope,
    smartssd_table,
    table_from_hw,
)

__all__ = [
    "EnergyEntry",
    "EnergyTable",
    "EnergyEstimate",
    "Usage",
    "STATIC",
    "SMARTSSD_TABLE",
    "estimate_energy",
    "usages_for",
    "smartssd_envelope",
    "smartssd_table",
    "table_from_hw",
]
