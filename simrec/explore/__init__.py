"""Design-space exploration: sweep specs, local/Dask execution, resumable results, Pareto fronts.

The names below are imported from their submodules on first use (``simrec sweep --help`` and
``import simrec.explore.cli`` stay free of pandas).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simrec.util import lazy_exports

if TYPE_CHECKING:
    from simrec.explore.spec import Point, SweepSpec, expand_points, load_spec, parse_spec
    from simrec.explore.sweep import combine, pareto_mask, read_results, run_point, run_sweep

__all__ = [
    "Point",
    "SweepSpec",
    "combine",
    "expand_points",
    "load_spec",
    "pareto_mask",
    "parse_spec",
    "read_results",
    "run_point",
    "run_sweep",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(["Point", "SweepSpec", "expand_points", "load_spec", "parse_spec"], "spec"),
        **dict.fromkeys(
            ["combine", "pareto_mask", "read_results", "run_point", "run_sweep"], "sweep"
        ),
    },
)
