"""Sharding: the plan format, the address remapper (and, from the MIP issue, the planners)."""

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
