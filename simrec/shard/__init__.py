"""Sharding: the plan format, the address remapper and the planners (MIP and heuristics).

Names are imported on first use (``simrec.util.lazy_exports``), so ``import simrec.shard.cli``
(and ``simrec --help``) does not pay for pydantic models it does not need.
"""

from typing import TYPE_CHECKING

from simrec.util import lazy_exports

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from simrec.shard.plan import (
        PLAN_VERSION,
        Band,
        CoreConfig,
        DevicePlan,
        Plan,
        RowOrder,
        SolverRecord,
        TablePlan,
        load_plan,
        plan_from_dict,
        single_device_plan,
    )
    from simrec.shard.remap import Remapper, order_permutation

__all__ = [
    "PLAN_VERSION",
    "Band",
    "CoreConfig",
    "DevicePlan",
    "Plan",
    "Remapper",
    "RowOrder",
    "SolverRecord",
    "TablePlan",
    "load_plan",
    "order_permutation",
    "plan_from_dict",
    "single_device_plan",
]

_FROM_REMAP = ("Remapper", "order_permutation")
__getattr__, __dir__ = lazy_exports(
    __name__, {n: "remap" if n in _FROM_REMAP else "plan" for n in __all__}
)
