"""Design-space exploration: sweep specs, local/Dask execution, resumable results, Pareto fronts."""

from __future__ import annotations

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
