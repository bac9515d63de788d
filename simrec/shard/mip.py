"""The sharding MIP (PuLP; HiGHS by default, CBC) and the scale strategy for large instances.

Formulation (mip-probe.md finding 1, extended to several tiers, TT storage and core templates):

* ``y[t,j,o]`` binary: table ``t`` lives on device ``j`` with placement option ``o`` (a raw row band
  per tier, or TT cores in one tier; see :mod:`simrec.shard.problem`); ``Σ_{j,o} y = 1`` per table.
* ``u[j,m]`` binary: device ``j`` runs core template ``m``; ``Σ_m u = 1``.
* ``w[j,m] >= 0``: the part of the makespan device ``j`` spends under template ``m``
  (``w <= Z·u``); it linearises "work / rate(template)" exactly: for every channel or TT resource
  ``r``: ``Σ y·work_r <= Σ_m rate_{m,r}·w[j,m]``, and ``output_j + Σ_m w[j,m] <= z``.
* capacity per device and tier: ``Σ y·bytes + Σ_m u·reserved <= capacity``; templates outside the
  device's FPGA resource budget are not offered.
* objective: ``z + energy_weight · Σ y·energy``.

Strategies: ``full`` solves this model directly (small instances). ``lns`` (mip-probe.md finding 3)
solves the LP relaxation of the *full* model for a proven lower bound, starts from the best
heuristic, and improves it by re-solving the MIP restricted to the tables of two devices (the
slowest and one other), accepting a move when the pair's slower device gets faster without the
global objective getting worse. The gap is always reported against a bound of the full problem:
the LP bound or a combinatorial one (:func:`combinatorial_bounds`: single table, weighted packing
with its top-i term, and the busiest device's exact MIP), which also cuts ``z`` in ``full``.

What it leaves out: row-wise splitting of a table over devices, hot-row replication, and any
randomness in the cost (it plans on mean look-ups per batch).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pulp

from simrec.errors import ConfigError
from simrec.shard.heuristics import HEURISTICS, run_heuristics
from simrec.shard.problem import (
    Assignment,
    ClassOptions,
    Evaluation,
    OptionSet,
    ShardProblem,
    build_options,
    check_feasibility,
    evaluate,
)

__all__ = [
    "SOLVERS",
    "SolveRecord",
    "ShardResult",
    "solve",
    "build_model",
    "busiest_device_bound",
    "combinatorial_bounds",
    "describe_assignment",
    "makespan_bound",
    "plan_from_assignment",
    "result_plan",
    "trivial_bound",
]

SOLVERS = ("highs", "cbc")
AUTO_FULL_MAX_BINARIES = 6000
#: symmetry-breaking rows cover the costliest tables of each group of interchangeable devices
#: (a subset of valid rows is valid; the first tables already fix the device labels)
SYMMETRY_MAX_TABLES = 64
#: LNS sub-problems above this many variables run without HiGHS presolve (see _sub_move)
SUB_PRESOLVE_MAX_VARIABLES = 10000
#: the busiest-device bound (busiest_device_bound) runs while one device class's sub-MIP has at
#: most this many binaries, within this many seconds in all
COUNT_BOUND_MAX_BINARIES = 20000
#: ... and while the busiest device holds at most this many tables (with more, one table's
#: integrality is a small share of a device's time, and the LP bound is the one that matters)
COUNT_BOUND_MAX_TABLES = 16
COUNT_BOUND_TIME_LIMIT = 5.0
#: ... and stops once it cannot close more than this share of the open gap (busiest_device_bound)
COUNT_BOUND_FUTILE = 0.1
#: ... and, once its bound proves the gap target, still runs this long towards a full proof
COUNT_BOUND_GOAL_GRACE = 1.0


@dataclass
class SolveRecord:
    """What the solver did: status (read from the solver itself), objective, bound, gap, sizes."""

    solver: str
    strategy: str
    status: str
    objective: float
    bound: float
    gap: float
    solve_time_s: float
    num_variables: int
    num_constraints: int
    time_limit_s: float | None
    gap_target: float | None
    lp_bound: float | None = None
    start: str | None = None
    start_objective: float | None = None
    lns_moves: int = 0
    lns_subsolves: int = 0
    notes: list[str] = field(default_factory=list)
    #: the combinatorial lower bounds on the makespan, by name (``single_table``, ``packing``,
    #: ``busiest_device``; 0 where not computed), and ``energy`` (energy weight x least energy)
    bounds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "solver": self.solver,
            "strategy": self.strategy,
            "status": self.status,
            "objective_s": self.objective,
            "bound_s": self.bound,
            "gap": self.gap,
            "solve_time_s": self.solve_time_s,
            "num_variables": self.num_variables,
            "num_constraints": self.num_constraints,
            "time_limit_s": self.time_limit_s,
            "gap_target": self.gap_target,
            "lp_bound_s": self.lp_bound,
            "start": self.start,
            "start_objective_s": self.start_objective,
            "lns_moves": self.lns_moves,
            "lns_subsolves": self.lns_subsolves,
            "notes": list(self.notes),
            "bounds_s": dict(self.bounds),
        }


@dataclass
class ShardResult:
    """A solved sharding problem: the assignment, its evaluation and the solver record."""

    opts: OptionSet
    assignment: Assignment
    evaluation: Evaluation
    record: SolveRecord
    heuristics: dict[str, Evaluation | None] = field(default_factory=dict)

    @property
    def problem(self) -> ShardProblem:
        return self.opts.problem

    def summary(self) -> dict[str, Any]:
        """The machine-readable contract of ``simrec shard --json``."""
        d = self.record.to_dict()
        d["makespan_s"] = self.evaluation.makespan_s
        d["energy_J"] = self.evaluation.energy_J
        d["device_s"] = [float(v) for v in self.evaluation.device_s]
        d["heuristics"] = {
            k: (None if v is None else v.makespan_s) for k, v in self.heuristics.items()
        }
        d["heuristics_objective"] = {
            k: (None if v is None else v.objective) for k, v in self.heuristics.items()
        }
        return d

    def placements(self) -> list[dict[str, Any]]:
        """Per table: device, format, rows per tier (hottest first), TT shapes when TT."""
        return describe_assignment(self.opts, self.assignment)


def describe_assignment(opts: OptionSet, a: Assignment) -> list[dict[str, Any]]:
    """Plain-data view of an assignment: one dict per table, in table order."""
    p = opts.problem
    out = []
    for t, tab in enumerate(p.tables):
        j = int(a.device[t])
        o = int(a.option[t])
        co = opts.for_device(j)
        tiers = co.device.tiers
        rec: dict[str, Any] = {
            "table": tab.name,
            "device": p.devices[j].name,
            "device_index": j,
            "template": co.templates[int(a.template[j])].name,
        }
        if int(co.fmt[t][o]) == 1:
            pq = tab.tt_pq
            rec.update(
                format="tt",
                tt_tier=tiers[int(co.tt_tier[t][o])].name,
                tt_p=list(pq[0]),
                tt_q=list(pq[1]),
                tt_ranks=list(tab.tt_ranks),
                tt_bytes=tab.tt_bytes,
                bands=[],
            )
        else:
            rows = co.rows[t][o]
            bands = []
            start = 0
            for i, tier in enumerate(tiers):
                n = int(rows[i])
                if n:
                    bands.append({"tier": tier.name, "start": start, "stop": start + n})
                start += n
            rec.update(format="raw", bands=bands)
        out.append(rec)
    return out


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------


@dataclass
class _Model:
    prob: pulp.LpProblem
    y: dict[tuple[int, int], list[pulp.LpVariable]]
    u: dict[tuple[int, int], pulp.LpVariable]
    w: dict[tuple[int, int], pulp.LpVariable]
    z: pulp.LpVariable
    tables: list[int]
    devices: list[int]
    tau: float = 1.0  # seconds per model time unit (times are scaled to O(1) for the solver)
    sym_groups: list[list[int]] = field(default_factory=list)  # interchangeable devices
    sym_orders: list[list[int]] = field(default_factory=list)  # table order per group

    @property
    def num_variables(self) -> int:
        return int(self.prob.numVariables())

    @property
    def num_constraints(self) -> int:
        return int(self.prob.numConstraints())


def _zmax(opts: OptionSet, tables: list[int], devices: list[int]) -> float:
    """A makespan no optimal plan exceeds: every table's slowest option on one device."""
    total = 0.0
    for t in tables:
        worst = 0.0
        for j in devices:
            co = opts.for_device(j)
            pos = np.where(co.rates > 0, co.rates, np.inf).min(axis=0)
            rmin = np.where(np.isfinite(pos), pos, 1.0)
            if co.num_options(t):
                worst = max(
                    worst,
                    float((co.work[t] / rmin).sum(axis=1).max())
                    + co.output_s[t]
                    + co.device.fixed_s,
                )
        total += worst
    lam = opts.problem.energy_weight
    if lam:
        total += lam * sum(
            max(float(opts.for_device(j).energy[t].max(initial=0.0)) for j in devices)
            for t in tables
        )
    return max(total, 1e-12) * 1.01


def _class_fingerprint(co: ClassOptions) -> bytes:
    """A digest of everything the cost model knows about a device class (names excluded)."""
    h = hashlib.sha1()
    d = co.device
    h.update(repr((len(d.tiers), float(d.fixed_s), co.resources)).encode())
    for arr in (co.rates, co.reserved, co.capacity, co.output_s):
        h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    for per_t in (co.fmt, co.rows, co.bytes, co.work, co.energy, co.tt_tier):
        for arr in per_t:
            a = np.ascontiguousarray(arr)
            h.update(repr(a.shape).encode())
            h.update(a.tobytes())
    return h.digest()


def interchangeable_groups(opts: OptionSet, devices: list[int] | None = None) -> list[list[int]]:
    """Groups (of size >= 2) of ``devices`` that the cost model cannot tell apart.

    Two devices are interchangeable when every table has the same options (bytes, work, energy)
    on both, and their templates, capacities, output and fixed costs agree — e.g. the 8 GPUs of
    the multi_gpu preset, which :func:`build_options` keeps as separate classes because their
    gather-efficiency curves are distinct Python callables.
    """
    p = opts.problem
    devices = list(range(p.num_devices)) if devices is None else list(devices)
    fp_of_cls: dict[int, bytes] = {}
    groups: dict[bytes, list[int]] = {}
    for j in devices:
        c = opts.cls_of[j]
        if c not in fp_of_cls:
            fp_of_cls[c] = _class_fingerprint(opts.classes[c])
        groups.setdefault(fp_of_cls[c], []).append(j)
    return [g for g in groups.values() if len(g) > 1]


def symmetry_order(opts: OptionSet, tables: list[int], j: int) -> list[int]:
    """Tables of device ``j``'s class, costliest first (its cheapest busy time + output).

    The symmetry-breaking rows follow this order, so the largest tables pick devices first and
    fix the labels of interchangeable devices early in the branch-and-bound tree.
    """
    co = opts.for_device(j)
    rmax = np.where(co.rates.max(axis=0) > 0, co.rates.max(axis=0), np.inf)
    key = []
    for t in tables:
        busy = float((co.work[t] / rmax).max(axis=1).min()) if co.num_options(t) else 0.0
        key.append(-(busy + float(co.output_s[t])))
    return [tables[i] for i in np.argsort(np.array(key), kind="stable")]


def canonical_assignment(
    opts: OptionSet, a: Assignment, groups: list[list[int]], order: list[list[int]]
) -> Assignment:
    """Relabel interchangeable devices so ``a`` satisfies the symmetry-breaking rows.

    Within each group, devices are sorted by the position (in that group's table order) of the
    first table they hold; empty devices go last. The plan is the same up to device names.
    """
    out = a.copy()
    for g, ordr in zip(groups, order, strict=True):
        pos = {t: i for i, t in enumerate(ordr)}
        first = []
        for j in g:
            held = [pos[t] for t in np.flatnonzero(a.device == j) if int(t) in pos]
            first.append(min(held) if held else len(ordr) + len(first))
        src = [g[i] for i in np.argsort(np.array(first), kind="stable")]
        for dst_j, src_j in zip(g, src, strict=True):
            out.device[a.device == src_j] = dst_j
            out.template[dst_j] = a.template[src_j]
    return out


def build_model(
    opts: OptionSet,
    tables: list[int] | None = None,
    devices: list[int] | None = None,
    relax: bool = False,
    zmax: float | None = None,
    symmetry: bool = True,
    zmin: float = 0.0,
) -> _Model:
    """The y-formulation over ``tables`` x ``devices`` (all by default) as a PuLP problem.

    Numerics: times are divided by ``tau`` (``zmax``, or the crude bound over the device count),
    capacity rows by the capacity and work rows by the largest rate, so every coefficient the solver
    sees is O(1) whatever the units (microsecond makespans would otherwise sit at HiGHS's 1e-6
    tolerances).
    """
    p = opts.problem
    tables = list(range(p.num_tables)) if tables is None else list(tables)
    devices = list(range(p.num_devices)) if devices is None else list(devices)
    cat = pulp.LpContinuous if relax else pulp.LpBinary
    prob = pulp.LpProblem("simrec_shard", pulp.LpMinimize)
    if zmax is None:
        zmax = _zmax(opts, tables, devices)
        tau = zmax / max(len(devices), 1)
    else:
        tau = zmax
    zs = zmax / tau
    # zmin: a proven lower bound on the makespan of *this* model (the full problem's
    # combinatorial bound; never pass a global bound to a sub-problem)
    z = prob.add_variable("z", lowBound=min(max(zmin, 0.0) / tau, zs), upBound=zs)
    y: dict[tuple[int, int], list[pulp.LpVariable]] = {}
    for t in tables:
        for j in devices:
            n = opts.for_device(j).num_options(t)
            y[t, j] = [prob.add_variable(f"y_{t}_{j}_{o}", 0, 1, cat) for o in range(n)]
    u: dict[tuple[int, int], pulp.LpVariable] = {}
    w: dict[tuple[int, int], pulp.LpVariable] = {}
    lam = p.energy_weight
    obj = [(z, 1.0)]
    if lam:
        for (t, j), vs in y.items():
            en = opts.for_device(j).energy[t]
            obj += [(v, lam * float(en[o]) / tau) for o, v in enumerate(vs) if en[o]]
    prob += pulp.LpAffineExpression(obj)
    for t in tables:
        terms = [(v, 1.0) for j in devices for v in y[t, j]]
        prob += pulp.LpConstraint(
            pulp.LpAffineExpression(terms), pulp.LpConstraintEQ, f"assign_{t}", 1
        )
    for j in devices:
        co = opts.for_device(j)
        M = len(co.templates)
        for m in range(M):
            lo = 1 if M == 1 else 0
            u[j, m] = prob.add_variable(f"u_{j}_{m}", lo, 1, cat)
            w[j, m] = prob.add_variable(f"w_{j}_{m}", 0, zs)
        prob += pulp.LpConstraint(
            pulp.LpAffineExpression([(u[j, m], 1.0) for m in range(M)]),
            pulp.LpConstraintEQ,
            f"template_{j}",
            1,
        )
        if M > 1:
            for m in range(M):
                prob += pulp.LpConstraint(
                    pulp.LpAffineExpression([(w[j, m], 1.0), (u[j, m], -zs)]),
                    pulp.LpConstraintLE,
                    f"link_{j}_{m}",
                    0,
                )
        # capacity per tier
        for i, tier in enumerate(co.device.tiers):
            worst = sum(float(co.bytes[t][:, i].max(initial=0.0)) for t in tables)
            if worst + float(co.reserved[:, i].max()) <= tier.capacity_bytes:
                continue
            terms = []
            cap = float(tier.capacity_bytes)
            for t in tables:
                col = co.bytes[t][:, i] / cap
                terms += [(v, float(col[o])) for o, v in enumerate(y[t, j]) if col[o]]
            terms += [
                (u[j, m], float(co.reserved[m, i]) / cap) for m in range(M) if co.reserved[m, i]
            ]
            prob += pulp.LpConstraint(
                pulp.LpAffineExpression(terms), pulp.LpConstraintLE, f"cap_{j}_{i}", 1.0
            )
        # work per resource vs template rates
        for r, rname in enumerate(co.resources):
            rmax = float(co.rates[:, r].max())
            scale = rmax * tau
            if scale <= 0:
                scale = max(float(co.work[t][:, r].max(initial=0.0)) for t in tables) or 1.0
            terms = []
            for t in tables:
                col = co.work[t][:, r] / scale
                terms += [(v, float(col[o])) for o, v in enumerate(y[t, j]) if col[o]]
            if not terms:
                continue
            terms += [(w[j, m], -float(co.rates[m, r]) / rmax) for m in range(M) if co.rates[m, r]]
            prob += pulp.LpConstraint(
                pulp.LpAffineExpression(terms), pulp.LpConstraintLE, f"work_{j}_{rname}", 0
            )
        terms = [(w[j, m], 1.0) for m in range(M)]
        for t in tables:
            if co.output_s[t]:
                terms += [(v, float(co.output_s[t]) / tau) for v in y[t, j]]
        terms.append((z, -1.0))
        prob += pulp.LpConstraint(
            pulp.LpAffineExpression(terms),
            pulp.LpConstraintLE,
            f"time_{j}",
            -float(co.device.fixed_s) / tau,
        )
    groups: list[list[int]] = []
    orders: list[list[int]] = []
    if symmetry and not relax:
        for g in interchangeable_groups(opts, devices):
            ordr = symmetry_order(opts, tables, g[0])
            groups.append(g)
            orders.append(ordr)
            head = ordr[:SYMMETRY_MAX_TABLES]
            for prev, j in zip(g, g[1:], strict=False):
                before: list[tuple[pulp.LpVariable, float]] = []
                for t in head:
                    terms = [(v, 1.0) for v in y[t, j]] + before
                    prob += pulp.LpConstraint(
                        pulp.LpAffineExpression(terms), pulp.LpConstraintLE, f"sym_{t}_{j}", 0
                    )
                    before = before + [(v, -1.0) for v in y[t, prev]]
    return _Model(prob, y, u, w, z, tables, devices, tau, groups, orders)


def _start_values(opts: OptionSet, model: _Model, a: Assignment) -> dict[str, float]:
    """Variable values of assignment ``a`` restricted to the model's tables and devices.

    Interchangeable devices are relabelled first so the start satisfies the symmetry rows.
    """
    if model.sym_groups:
        a = canonical_assignment(opts, a, model.sym_groups, model.sym_orders)
    vals: dict[str, float] = {}
    for t in model.tables:
        j = int(a.device[t])
        o = int(a.option[t])
        if (t, j) in model.y:
            vals[model.y[t, j][o].name] = 1.0
    zs = 0.0
    for j in model.devices:
        co = opts.for_device(j)
        m = int(a.template[j])
        ts = [t for t in model.tables if int(a.device[t]) == j]
        work = np.zeros(len(co.resources))
        out = 0.0
        for t in ts:
            work += co.work[t][int(a.option[t])]
            out += float(co.output_s[t])
        with np.errstate(divide="ignore", invalid="ignore"):
            busy = float(np.max(np.where(work > 0, work / co.rates[m], 0.0)))
        vals[model.u[j, m].name] = 1.0
        vals[model.w[j, m].name] = busy / model.tau
        zs = max(zs, busy + out + float(co.device.fixed_s))
    vals[model.z.name] = zs / model.tau
    return vals


class _HiGHSInterrupt(pulp.HiGHS):
    """pulp.HiGHS that interrupts a MIP when ``stop(primal, dual)`` (HiGHS's current primal and
    dual bounds, model units) returns True; the dual bound stays valid."""

    def __init__(self, stop: Any = None, **kw: Any):
        super().__init__(**kw)
        self._stop = stop

    def callSolver(self, lp: pulp.LpProblem) -> None:  # noqa: N802 - PuLP's name
        h = lp.solverModel
        stop = self._stop
        if stop is not None and hasattr(h, "cbMipInterrupt"):

            def on_interrupt(e: Any) -> None:
                try:
                    if stop(float(e.data_out.mip_primal_bound), float(e.data_out.mip_dual_bound)):
                        e.interrupt()
                except Exception:  # noqa: BLE001 - never let a callback break the solve
                    pass

            h.cbMipInterrupt.subscribe(on_interrupt)
        h.run()


class _HiGHSWarm(pulp.HiGHS):
    """pulp.HiGHS that hands a start solution to HiGHS (``setSolution``) before ``run()``."""

    def __init__(self, start: dict[str, float] | None = None, **kw: Any):
        super().__init__(**kw)
        self._start = start

    def callSolver(self, lp: pulp.LpProblem) -> None:  # noqa: N802 - PuLP's name
        if self._start:
            import highspy

            h = lp.solverModel
            vals = [0.0] * h.getNumCol()
            for v in lp.variables():
                vals[v.index] = float(self._start.get(v.name, 0.0))
            sol = highspy.HighsSolution()
            sol.col_value = vals
            sol.value_valid = True
            h.setSolution(sol)
        lp.solverModel.run()


@dataclass
class _Run:
    status: str
    objective: float
    bound: float
    has_solution: bool
    seconds: float


def _run(
    model: _Model,
    solver: str,
    time_limit: float | None,
    gap: float | None,
    start: dict[str, float] | None,
    mip: bool = True,
    threads: int | None = None,
    presolve: bool = True,
) -> _Run:
    prob = model.prob
    t0 = time.perf_counter()
    if solver == "highs":
        _quiet_highs()
        extra = {} if presolve else {"presolve": "off"}
        s = _HiGHSWarm(
            start=start if mip else None,
            mip=mip,
            msg=False,
            timeLimit=time_limit,
            gapRel=gap,
            threads=threads,
            random_seed=0,
            **extra,
        )
        prob.solve(s)
        h = prob.solverModel
        status = h.modelStatusToString(h.getModelStatus())
        info = h.getInfo()
        obj = float(info.objective_function_value) * model.tau
        if mip:
            bound = float(info.mip_dual_bound) * model.tau
            has = int(info.primal_solution_status) == 2 or (
                math.isfinite(obj) and abs(obj) < 1e300 and status != "Infeasible"
            )
        else:
            bound = obj if status == "Optimal" else -math.inf
            has = status == "Optimal"
        return _Run(status, obj, bound, has, time.perf_counter() - t0)
    if solver == "cbc":
        with tempfile.TemporaryDirectory() as td:
            log = Path(td) / "cbc.log"
            # No MIPStart for CBC: with PuLP's .mst warm start, CBC 2.10 claimed "Optimal" at
            # the start's value (and "infeasible" with a looser z bound) on feasible instances
            # in our tests; the caller still keeps the best heuristic plan if CBC does worse.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                s = pulp.PULP_CBC_CMD(
                    mip=mip,
                    msg=False,
                    timeLimit=time_limit,
                    gapRel=gap,
                    warmStart=False,
                    threads=threads,
                    logPath=str(log),
                )
            prob.solve(s)
            text = log.read_text(errors="replace") if log.exists() else ""
        return _parse_cbc(text, prob, mip, time.perf_counter() - t0, model.tau)
    raise ConfigError(
        f"unknown solver '{solver}'", where="--solver", fix=f"use one of {', '.join(SOLVERS)}"
    )


def _parse_cbc(
    text: str, prob: pulp.LpProblem, mip: bool, seconds: float, tau: float = 1.0
) -> _Run:
    """Read status, objective and bound from CBC's own log (PuLP reports Optimal on time limit)."""
    m = re.search(r"Result - (.+)", text)
    status = m.group(1).strip() if m else pulp.LpStatus[prob.status]
    if m:
        text = text[m.start() :]  # the final summary, not progress lines
    obj_m = re.search(r"Objective value:\s+([-\d.eE+]+)", text)
    lb_m = re.search(r"Lower bound:\s+([-\d.eE+]+)", text)
    obj = (float(obj_m.group(1)) if obj_m else float(pulp.value(prob.objective) or math.inf)) * tau
    has = prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    if not mip:
        bound = obj if status.startswith("Optimal") else -math.inf
        return _Run(status, obj, bound, has, seconds)
    if lb_m:
        bound = float(lb_m.group(1)) * tau
    elif status.startswith("Optimal"):
        bound = obj
    else:
        bound = -math.inf
    return _Run(status, obj, bound, has, seconds)


def _extract(opts: OptionSet, model: _Model, base: Assignment) -> Assignment:
    a = base.copy()
    for t in model.tables:
        best = (-1.0, -1, -1)
        for j in model.devices:
            for o, v in enumerate(model.y[t, j]):
                val = v.varValue or 0.0
                if val > best[0]:
                    best = (val, j, o)
        a.device[t] = best[1]
        a.option[t] = best[2]
    for j in model.devices:
        M = len(opts.for_device(j).templates)
        vals = [model.u[j, m].varValue or 0.0 for m in range(M)]
        a.template[j] = int(np.argmax(vals))
    return a


# --------------------------------------------------------------------------------------------------
# Solve
# --------------------------------------------------------------------------------------------------


def solve(
    problem: ShardProblem | OptionSet,
    solver: str = "highs",
    time_limit: float | None = 60.0,
    gap: float | None = 1e-4,
    strategy: str = "auto",
    heuristics: list[str] | None = None,
    warm_start: bool = True,
    seed: int = 0,
    threads: int | None = None,
    sub_time_limit: float = 4.0,
) -> ShardResult:
    """Plan ``problem``: heuristics, then the MIP (``full``) or LP bound + LNS (``lns``).

    ``auto`` picks ``full`` when the model has at most ``AUTO_FULL_MAX_BINARIES`` placement
    binaries or the solver is CBC, else ``lns``. ``gap`` is the relative gap target; the returned
    plan is never worse (on the cost model) than the best heuristic run.
    """
    t_start = time.perf_counter()
    solver = solver.lower()
    if solver not in SOLVERS:
        raise ConfigError(
            f"unknown solver '{solver}'", where="--solver", fix=f"use one of {', '.join(SOLVERS)}"
        )
    if strategy not in ("auto", "full", "lns"):
        raise ConfigError(
            f"unknown strategy '{strategy}'", where="--strategy", fix="use auto, full or lns"
        )
    opts = problem if isinstance(problem, OptionSet) else build_options(problem)
    check_feasibility(opts)
    names = list(HEURISTICS) if heuristics is None else list(heuristics)
    hres = run_heuristics(opts, names, seed)
    heur_eval = {k: (None if v is None else v[1]) for k, v in hres.items()}
    best_name, best = None, None
    for k, v in hres.items():
        if v is not None and (best is None or v[1].objective < best[1].objective - 1e-15):
            best_name, best = k, v
    nbin = opts.total_options()
    if strategy == "auto":
        strategy = "full" if (nbin <= AUTO_FULL_MAX_BINARIES or solver == "cbc") else "lns"
    bounds = combinatorial_bounds(
        opts,
        incumbent=None if best is None else best[1].objective,
        gap=gap,
        time_limit=COUNT_BOUND_TIME_LIMIT
        if time_limit is None
        else min(COUNT_BOUND_TIME_LIMIT, 0.25 * time_limit),
        threads=threads,
    )
    ms_bound = max(bounds["single_table"], bounds["packing"], bounds["busiest_device"])
    comb = ms_bound + bounds["energy"]
    if strategy == "full":
        res = _solve_full(
            opts, solver, time_limit, gap, best if warm_start else None, threads, ms_bound
        )
    else:
        if best is None:
            raise ConfigError(
                "no heuristic found a feasible start for the large-neighbourhood search",
                where="sharding problem",
                fix="use --strategy full, add devices or larger tiers",
            )
        res = _solve_lns(
            opts, solver, time_limit, gap, best[0], threads, sub_time_limit, t_start, comb
        )
    a, rec = res
    rec.bounds = dict(bounds)
    if best is not None:
        rec.start = best_name
        rec.start_objective = best[1].objective
    if a is None:
        if best is None:
            raise ConfigError(
                f"no feasible plan found (solver status: {rec.status})",
                where="sharding problem",
                fix="add devices or larger tiers, allow TT storage, or raise --time-limit",
            )
        a = best[0]
        rec.notes.append("solver returned no plan; the best heuristic plan is returned")
    ev = evaluate(opts, a)
    if best is not None and best[1].objective < ev.objective - 1e-12:
        a, ev = best[0], best[1]
        rec.notes.append(f"the heuristic '{best_name}' beat the solver's plan and is returned")
    rec.objective = ev.objective
    if not rec.bound >= comb:
        rec.bound = comb
        if rec.strategy != "lns":
            rec.notes.append(
                "bound from the combinatorial bounds (single table / weighted packing / busiest "
                "device; the full model also gets them as z >= bound); the solver proved none "
                "better"
            )
    target = gap if gap is not None else 1e-4
    if (
        _gap(rec.objective, rec.bound) > target
        and best is not None
        and rec.objective < best[1].objective * (1 - 1e-9)
    ):
        # the search improved on the start: the busiest-device bound may now be worth its MIP
        # (it stops early when it cannot close a useful share of the gap to the incumbent)
        left = COUNT_BOUND_TIME_LIMIT
        if time_limit is not None:
            left = min(left, max(1.0, t_start + time_limit - time.perf_counter()))
        again = busiest_device_bound(
            opts,
            cap=rec.objective - bounds["energy"],
            goal=rec.objective * (1 - target) - bounds["energy"],
            time_limit=left,
            threads=threads,
            floor=max(ms_bound, rec.bound - bounds["energy"]),
        )
        if again > bounds["busiest_device"]:
            rec.bounds["busiest_device"] = again
            if again + bounds["energy"] > rec.bound:
                rec.bound = again + bounds["energy"]
                rec.notes.append("bound from the busiest-device bound, rerun after the search")
                if _gap(rec.objective, rec.bound) <= target and not rec.status.startswith("Opt"):
                    rec.notes.append(f"solver status was '{rec.status}'")
                    rec.status = "Gap limit reached"
    if rec.bound > rec.objective:
        rec.bound = rec.objective
    rec.objective, rec.bound = float(rec.objective), float(rec.bound)
    rec.gap = float(_gap(rec.objective, rec.bound))
    if rec.gap <= 1e-9 and rec.status != "Optimal":
        rec.notes.append(f"solver status was '{rec.status}'; the bound proves optimality")
        rec.status = "Optimal"
    rec.solve_time_s = time.perf_counter() - t_start
    return ShardResult(opts, a, ev, rec, heur_eval)


_GRID = {1: 1, 2: 200, 3: 30}


def _simplex_grid(n: int, steps: int) -> np.ndarray:
    """All weight vectors of ``n`` non-negative multiples of ``1/steps`` summing to 1."""
    if n == 1:
        return np.ones((1, 1))
    out = []
    for first in range(steps + 1):
        rest = _simplex_grid(n - 1, steps - first) if steps - first else np.zeros((1, n - 1))
        if steps - first:
            rest = rest * (steps - first)
        for r in rest:
            out.append(np.r_[first, r] / steps)
    return np.array(out)


def _best_weights_lp(
    wn: list[np.ndarray | None], out: np.ndarray, A: np.ndarray, active: list[int], n: int
) -> float:
    """``max_λ`` (sum of the ``n`` smallest ``min_o out_t + λ·wn_t,o`` over ``t`` in ``A``), an LP.

    The sum of the ``n`` smallest of ``v_t`` is ``max_θ n·θ − Σ_t max(0, θ − v_t)`` (LP duality),
    so with ``v_t <= out_t + λ·wn_t,o`` for every option the whole maximisation is one LP.
    """
    lp = pulp.LpProblem("weights", pulp.LpMaximize)
    scale = max(float(max(wn[t][:, active].max() for t in A)), float(out[A].max()), 1e-300)
    lam = [lp.add_variable(f"l{r}", 0, 1) for r in range(len(active))]
    theta = lp.add_variable("theta", 0, None)
    v = [lp.add_variable(f"v{i}", None, None) for i in range(len(A))]
    pi = [lp.add_variable(f"p{i}", 0, None) for i in range(len(A))]
    lp += pulp.LpAffineExpression([(theta, float(n))] + [(x, -1.0) for x in pi])
    lp += pulp.LpConstraint(pulp.LpAffineExpression([(x, 1.0) for x in lam]), 0, "simplex", 1)
    for i, t in enumerate(A):
        lp += pulp.LpConstraint(
            pulp.LpAffineExpression([(pi[i], 1.0), (theta, -1.0), (v[i], 1.0)]), 1, f"pi{i}", 0
        )
        w = wn[int(t)][:, active] / scale
        for o in range(w.shape[0]):
            lp += pulp.LpConstraint(
                pulp.LpAffineExpression(
                    [(v[i], 1.0)]
                    + [(lam[r], -float(w[o, r])) for r in range(len(active)) if w[o, r]]
                ),
                -1,
                f"v{i}_{o}",
                float(out[int(t)]) / scale,
            )
    _quiet_highs()
    lp.solve(pulp.HiGHS(msg=False))
    if lp.status != pulp.LpStatusOptimal:
        return 0.0
    # re-evaluate the weights exactly (the LP's value may carry solver tolerances)
    lv = np.array([x.varValue or 0.0 for x in lam])
    lv = np.maximum(lv, 0.0)
    lv /= max(lv.sum(), 1e-300)
    sz = np.sort([float((wn[int(t)][:, active] @ lv).min() + out[int(t)]) for t in A])
    return float(sz[:n].sum())


def single_table_times(opts: OptionSet) -> np.ndarray:
    """Per table, the least time any device needs for it alone: ``min_{j,o,m} time(t, o, m)``
    (``inf`` where no device can hold it)."""
    p = opts.problem
    out = np.full(p.num_tables, np.inf)
    seen: set[int] = set()
    for j in range(p.num_devices):
        c = opts.cls_of[j]
        if c in seen:
            continue
        seen.add(c)
        co = opts.classes[c]
        for t in range(p.num_tables):
            if not co.num_options(t):
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                for m in range(len(co.templates)):
                    busy = np.where(co.work[t] > 0, co.work[t] / co.rates[m], 0.0).max(axis=1)
                    v = float((busy + co.output_s[t] + co.device.fixed_s).min())
                    out[t] = min(out[t], v)
    return out


def balanced_top_counts(a: int, J: int) -> np.ndarray:
    """``n_i`` for ``i = 1..J``: the fewest tables the ``i`` fullest of ``J`` devices can hold
    when ``a`` tables are placed, ``i·q + min(i, r)`` with ``a = qJ + r``.

    If the ``i`` fullest devices held ``s < i·q + min(i, r)`` tables, each of the other ``J − i``
    would hold at most ``floor(s / i) = q``, so all ``J`` held at most ``s + (J − i)·q < a``.
    """
    q, r = divmod(int(a), int(J))
    i = np.arange(1, J + 1)
    return i * q + np.minimum(i, r)


def _top_i_bound(weakest: np.ndarray, J: int, big: float) -> np.ndarray:
    """``max`` over ``a`` and ``i >= 2`` of ``S_a(n_i(a)) / i`` per column of ``weakest``.

    ``weakest[t, l]`` is a lower bound on what table ``t`` adds to the time of *any* device
    (every class and template, weights ``l``). Take ``A`` = the ``a`` costliest tables: the ``i``
    devices holding most of them hold ``n_i(a)`` or more (:func:`balanced_top_counts`), so the
    slowest of those ``i`` devices needs at least the mean, ``S_A(n_i) / i``, where ``S_A(n)`` is
    the sum of the ``n`` smallest sizes in ``A`` (plus the smallest fixed cost, added by the
    caller). ``i = 1`` is the per-template loop of :func:`makespan_bound`.
    """
    T, L = weakest.shape
    if J < 2 or T <= J:
        return np.zeros(L)
    v = np.where(weakest < big, weakest, np.nan)
    if np.isnan(v).any():  # a table no device can hold: leave the bound to the other terms
        return np.zeros(L)
    desc = -np.sort(-v, axis=0)  # [T, L], costliest first
    csum = np.vstack([np.zeros((1, L)), np.cumsum(desc, axis=0)])  # csum[a] = sum of a largest
    out = np.zeros(L)
    a = np.arange(J + 1, T + 1)
    q, r = np.divmod(a, J)
    for i in range(2, J + 1):
        n = i * q + np.minimum(i, r)  # [len(a)], all <= a
        # the n smallest of the a costliest: ranks a - n .. a - 1 of the descending order
        val = (csum[a] - csum[a - n]) / i
        out = np.maximum(out, val.max(axis=0))
    return out


def makespan_bound(opts: OptionSet) -> float:
    """A valid lower bound on the makespan (energy excluded) without a solver: the largest of
    :func:`makespan_bound_parts` (the single-table and weighted packing bounds)."""
    return max(makespan_bound_parts(opts).values())


def makespan_bound_parts(opts: OptionSet) -> dict[str, float]:
    """Valid lower bounds on the makespan (energy excluded) without a solver, by name.

    * single table: a device is at least as slow as any one of its tables:
      ``max_t min_{j,o,m} time(t, o, m)``;
    * weighted packing: for weights ``λ >= 0`` (summing to 1) over a device's work resources
      (channels, pooling, TT cores), ``max_r W_r/rate_r >= Σ_r λ_r W_r/rate_r``, and the right
      side adds up over tables: under template ``m`` table ``t`` costs at least
      ``s_t = output_t + min_o λ·work_t,o / rate_m``. Any ``kJ + 1`` tables put ``k + 1`` on one
      device (the classic P||Cmax argument), so the makespan is at least the smallest fixed cost
      plus the sum of the ``k + 1`` smallest ``s_t`` of those tables, minimised over templates.
      ``λ`` runs over a grid on the simplex (step 1/200 for 2 resources, 1/30 for 3, 1/4 above),
      refined by a pattern search on the template-free sizes (best rate per resource); with
      several templates, the weakest templates at the largest ``k`` get their exact best ``λ``
      from a small LP (:func:`_best_weights_lp`). ``λ`` on the output alone is the pooled-vector
      transfer bound. It proves optimality where devices hold a few tables of similar cost on
      top of a constant (26 Criteo tables on 8 GPUs: the LP bound is the fractional average).
      The top-``i`` term (:func:`_top_i_bound`) adds the ``i`` fullest devices together.

    Returns ``single_table``, ``packing`` (0 when ``T <= J``) and ``fixed`` (the smallest fixed
    cost, itself a bound). The busiest-device bound (:func:`busiest_device_bound`) needs a MIP
    and is separate; :func:`combinatorial_bounds` gives all of them.
    """
    p = opts.problem
    J = p.num_devices
    T = p.num_tables
    tmin = single_table_times(opts)
    single = float(np.where(np.isfinite(tmin), tmin, 0.0).max(initial=0.0))
    fixed = min(float(opts.for_device(j).device.fixed_s) for j in range(J))
    packing = 0.0
    if T > J:
        # per (class, template): normalised work [T][O, R]; a device of that class running that
        # template needs at least the sum of its tables' sizes s_t(λ)
        blocks: list[tuple[list[np.ndarray | None], np.ndarray]] = []
        res_sets = set()
        seen: set[bytes] = set()  # classes the cost model cannot tell apart count once
        for c in sorted(set(opts.cls_of)):
            co = opts.classes[c]
            fp = _class_fingerprint(co)
            if fp in seen:
                continue
            seen.add(fp)
            res_sets.add(co.resources)
            for m in range(len(co.templates)):
                rate = co.rates[m]
                wn: list[np.ndarray | None] = []
                for t in range(T):
                    w = co.work[t]
                    ok = np.all((w <= 0) | (rate > 0), axis=1) if co.num_options(t) else []
                    if not np.any(ok):
                        wn.append(None)
                        continue
                    with np.errstate(divide="ignore", invalid="ignore"):
                        wn.append(np.where(w > 0, w / rate, 0.0)[ok])
                blocks.append((wn, co.output_s))
        R = len(next(iter(res_sets)))
        if len(res_sets) == 1:
            active = [
                r
                for r in range(R)
                if any(b is not None and b[:, r].max() > 0 for wn, _ in blocks for b in wn)
            ]
        else:
            active = []
        big = 1e300

        def values(lam: np.ndarray) -> np.ndarray:
            """The packing bound for each weight vector (rows of ``lam`` over ``active``)."""
            L = lam.shape[0]
            stack = np.empty((len(blocks), T, L))
            for bi, (wn, out) in enumerate(blocks):
                for t in range(T):
                    b = wn[t]
                    if b is None:
                        stack[bi, t] = big
                    elif active:
                        stack[bi, t] = (b[:, active] @ lam.T).min(axis=0) + out[t]
                    else:
                        stack[bi, t] = out[t]
            weakest = stack.min(axis=0)
            order = np.argsort(-weakest, axis=0, kind="stable")
            best = np.zeros(L)
            k = 1
            while k * J + 1 <= T:
                # any set A of kJ + 1 tables puts k + 1 on one device, whatever its template
                sel = order[: k * J + 1]
                sub = np.take_along_axis(stack, np.broadcast_to(sel, (len(blocks), *sel.shape)), 1)
                sub = np.sort(sub, axis=1)[:, : k + 1, :].sum(axis=1).min(axis=0)
                best = np.maximum(best, np.where(sub < big, sub, 0.0))
                k += 1
            return np.maximum(best, _top_i_bound(weakest, J, big))

        na = len(active)
        lam = _simplex_grid(na, _GRID.get(na, 4)) if na else np.zeros((1, 0))
        vals = values(lam)
        cur = lam[int(np.argmax(vals))]
        packing = float(vals.max())
        # refine: move weight between pairs of resources in halving steps (the bound is concave
        # in λ, so this pattern search climbs towards the best weights)
        step = 1.0 / _GRID.get(na, 4)
        while na > 1 and step > 1e-3:
            moves = []
            for a in range(na):
                for b in range(na):
                    if a != b and cur[a] >= step:
                        v = cur.copy()
                        v[a] -= step
                        v[b] += step
                        moves.append(v)
            mv = np.array(moves)
            vv = values(mv)
            if vv.max() > packing * (1 + 1e-12):
                packing = float(vv.max())
                cur = mv[int(np.argmax(vv))]
            else:
                step /= 2
        if len(blocks) > 1 and na:
            # a device runs one template: per set A of kJ + 1 tables, the bound is the smallest
            # over templates of that template's best weights (λ chosen per template)
            lam2 = np.vstack([lam, cur[None, :]])
            stacks = np.empty((len(blocks), T, lam2.shape[0]))
            for bi, (wn, out) in enumerate(blocks):
                for t in range(T):
                    b = wn[t]
                    stacks[bi, t] = big if b is None else (b[:, active] @ lam2.T).min(0) + out[t]
            order = np.argsort(-stacks[:, :, -1].min(axis=0), kind="stable")
            k = 1
            g = np.zeros((len(blocks), 1))
            while k * J + 1 <= T:
                sub = stacks[:, order[: k * J + 1], :]
                g = np.sort(sub, axis=1)[:, : k + 1, :].sum(axis=1)  # [blocks, L]
                val = float(g.max(axis=1).min())
                if val < big:
                    packing = max(packing, val)
                k += 1
            k -= 1
            if k >= 1:
                # exact weights for the weakest templates at the largest k
                A = order[: k * J + 1]
                best_val = g.max(axis=1)
                done: set[int] = set()
                for _ in range(len(blocks)):
                    # the weakest template's weights, solved exactly (an LP), until the weakest
                    # one is already exact
                    bi = int(np.argmin(best_val))
                    if bi in done or best_val[bi] >= big:
                        break
                    done.add(bi)
                    wn, out = blocks[bi]
                    hostable = np.array([t for t in A if wn[int(t)] is not None], dtype=np.int64)
                    if hostable.size < k + 1:  # this template cannot hold k + 1 of these tables
                        best_val[bi] = big
                        continue
                    best_val[bi] = max(
                        best_val[bi], _best_weights_lp(wn, out, hostable, active, k + 1)
                    )
                if best_val.min() < big:
                    packing = max(packing, float(best_val.min()))
        if packing > 0:
            packing += fixed
    return {"single_table": single, "packing": packing, "fixed": fixed}


def busiest_device_bound(
    opts: OptionSet,
    cap: float | None = None,
    goal: float | None = None,
    time_limit: float = COUNT_BOUND_TIME_LIMIT,
    threads: int | None = None,
    floor: float | None = None,
) -> float:
    """A lower bound on the makespan from the device that holds the most tables (0 if skipped).

    With ``T`` tables on ``J`` devices some device holds ``n = ceil(T/J)`` tables; more
    precisely, of any set ``A`` of ``(n−1)·J + 1`` tables (here: all but the cheapest, by
    :func:`single_table_times`) some device holds ``n``. Its time is at least that of the ``n``
    tables alone (more tables only add output and work), so the makespan is at least
    ``D(n) = min`` over device classes, ``n``-subsets of ``A``, their options and the class's
    templates of the device time, subject to the tier capacities: a small MIP
    (:func:`_count_mip`) that, unlike the weighted packing bound, charges every table's output,
    work and bytes integrally. First each class runs a *super-template* (the largest rate per
    resource, the smallest reserved bytes of its templates: a relaxation of every one of them,
    so one MIP without template variables); where that is below ``goal`` and the class has
    several templates, the exact template choice (``u``/``w`` as in :func:`build_model`) is
    solved as well. The result is HiGHS's dual bound (valid when a time limit stops it), and
    never more than the exact time of the subset it found.

    ``cap``: an upper bound on the optimal plan's makespan (the incumbent), used as the big-M of
    the template linearisation (the optimal plan's busiest device fits under it). A MIP stops
    early (HiGHS's interrupt callback; its dual bound is still valid) once its bound reaches
    ``goal``, or once a subset it found shows that the bound cannot close more than
    ``COUNT_BOUND_FUTILE`` of the gap between ``floor`` (a bound already known) and ``cap``: on
    the GPUs, where a 5 us launch cost dwarfs the work, HiGHS proves the last 0.02 % of the
    work part only slowly, and that is worth 6e-6 of the makespan. Skipped (0) when ``T <= J``
    (the single-table bound is exact there), when ``n > COUNT_BOUND_MAX_TABLES`` or when a class
    would need more than ``COUNT_BOUND_MAX_BINARIES`` binaries.
    """
    p = opts.problem
    T, J = p.num_tables, p.num_devices
    n = -(-T // J)
    if T <= J or n > COUNT_BOUND_MAX_TABLES:
        return 0.0
    single = single_table_times(opts)
    keep = (n - 1) * J + 1
    order = np.argsort(-np.where(np.isfinite(single), single, -np.inf), kind="stable")
    A = sorted(int(t) for t in order[:keep])
    t_end = time.perf_counter() + time_limit
    futile = None
    if cap is not None and floor is not None and cap > floor:
        futile = floor + COUNT_BOUND_FUTILE * (cap - floor)
    values = []
    seen: set[bytes] = set()
    for c in sorted(set(opts.cls_of)):
        co = opts.classes[c]
        fp = _class_fingerprint(co)
        if fp in seen:
            continue
        seen.add(fp)
        At = [t for t in A if co.num_options(t)]
        if len(At) < n:
            continue  # a device of this class cannot hold n tables of A
        if sum(co.num_options(t) for t in At) > COUNT_BOUND_MAX_BINARIES:
            return 0.0
        supr = [(co.rates.max(axis=0), co.reserved.min(axis=0))]
        left = t_end - time.perf_counter()
        d = _count_mip(co, At, n, supr, cap, max(left, 0.2), threads, goal, futile)
        if len(co.templates) > 1 and (goal is None or d < goal):
            left = t_end - time.perf_counter()
            if left > 0.2:
                exact = list(zip(co.rates, co.reserved, strict=True))
                d = max(d, _count_mip(co, At, n, exact, cap, left, threads, goal, futile))
        values.append(d)
    if not values:
        return 0.0
    return float(min(values))


def _count_mip(
    co: ClassOptions,
    A: list[int],
    n: int,
    templates: list[tuple[np.ndarray, np.ndarray]],
    cap: float | None,
    time_limit: float,
    threads: int | None,
    stop_at: float | None = None,
    futile_below: float | None = None,
) -> float:
    """``min`` device time of ``n`` of the tables ``A`` on one device of class ``co`` (a MIP).

    ``templates``: (rates per resource, reserved bytes per tier) to choose from. Returns a lower
    bound on that minimum (HiGHS's dual bound, capped by the exact time of the best subset
    found); ``inf`` when no ``n`` tables of ``A`` fit the device. The search stops early when
    the dual bound has reached ``stop_at`` (after ``COUNT_BOUND_GOAL_GRACE`` seconds) or a
    subset faster than ``futile_below`` is found.
    """
    _quiet_highs()
    M = len(templates)
    rates = np.array([r for r, _ in templates])
    reserved = np.array([b for _, b in templates])
    fixed = float(co.device.fixed_s)
    R = len(co.resources)
    # times in units of tau (the incumbent, or the n costliest single options) keep rows O(1)
    rpos = np.where(rates > 0, rates, np.inf).min(axis=0)  # slowest positive rate per resource
    worst = []
    for t in A:
        with np.errstate(divide="ignore", invalid="ignore"):
            busy = np.where(co.work[t] > 0, co.work[t] / rpos, 0.0).sum(axis=1)
        worst.append(float(busy.max(initial=0.0)) + float(co.output_s[t]))
    zsafe = sum(sorted(worst, reverse=True)[:n]) * 1.01 + 1e-300
    zcap = zsafe if cap is None or not cap > fixed else min(zsafe, (cap - fixed) * (1 + 1e-6))
    tau = zcap
    free = co.capacity - reserved.min(axis=0)
    prob = pulp.LpProblem("busiest_device", pulp.LpMinimize)
    ys: dict[int, list[tuple[int, pulp.LpVariable]]] = {}
    for t in A:
        w = co.work[t]
        ok = np.all((w <= 0) | (rates.max(axis=0) > 0), axis=1)
        ok &= np.all(co.bytes[t] <= free * (1 + 1e-9) + 1e-6, axis=1)
        ys[t] = [
            (int(o), prob.add_variable(f"y_{t}_{o}", 0, 1, pulp.LpBinary))
            for o in np.flatnonzero(ok)
        ]
    allv = [(t, o, v) for t in A for o, v in ys[t]]
    if len({t for t, _, _ in allv}) < n:
        return math.inf
    if M == 1:
        b = prob.add_variable("b", 0, 1.0)
        busy_terms: list[tuple[pulp.LpVariable, float]] = [(b, 1.0)]
    else:
        u = [prob.add_variable(f"u_{m}", 0, 1, pulp.LpBinary) for m in range(M)]
        w_ = [prob.add_variable(f"w_{m}", 0, 1.0) for m in range(M)]
        busy_terms = [(x, 1.0) for x in w_]
        prob += pulp.LpConstraint(
            pulp.LpAffineExpression([(x, 1.0) for x in u]), pulp.LpConstraintEQ, "template", 1
        )
        for m in range(M):
            prob += pulp.LpConstraint(
                pulp.LpAffineExpression([(w_[m], 1.0), (u[m], -1.0)]),
                pulp.LpConstraintLE,
                f"link_{m}",
                0,
            )
    prob += pulp.LpAffineExpression(
        busy_terms + [(v, float(co.output_s[t]) / tau) for t, _, v in allv if co.output_s[t]]
    )
    for t in A:
        if ys[t]:
            prob += pulp.LpConstraint(
                pulp.LpAffineExpression([(v, 1.0) for _, v in ys[t]]),
                pulp.LpConstraintLE,
                f"once_{t}",
                1,
            )
    prob += pulp.LpConstraint(
        pulp.LpAffineExpression([(v, 1.0) for _, _, v in allv]), pulp.LpConstraintEQ, "count", n
    )
    for i in range(len(co.capacity)):
        if M == 1:
            room = float(co.capacity[i] - reserved[0, i])
            terms = [(v, float(co.bytes[t][o, i]) / room) for t, o, v in allv if co.bytes[t][o, i]]
        else:
            room = float(co.capacity[i])
            terms = [(v, float(co.bytes[t][o, i]) / room) for t, o, v in allv if co.bytes[t][o, i]]
            terms += [(u[m], float(reserved[m, i]) / room) for m in range(M) if reserved[m, i]]
        # a row that no choice of n tables can overflow is left out
        need = sorted((float(co.bytes[t][:, i].max(initial=0.0)) for t in A), reverse=True)[:n]
        if sum(need) + float(reserved[:, i].max()) <= co.capacity[i] or not terms:
            continue
        prob += pulp.LpConstraint(
            pulp.LpAffineExpression(terms), pulp.LpConstraintLE, f"cap_{i}", 1.0
        )
    for r in range(R):
        rmax = float(rates[:, r].max())
        if rmax <= 0:
            continue
        terms = [
            (v, float(co.work[t][o, r]) / (rmax * tau)) for t, o, v in allv if co.work[t][o, r]
        ]
        if not terms:
            continue
        if M == 1:
            terms.append((b, -1.0))
        else:
            terms += [(w_[m], -float(rates[m, r]) / rmax) for m in range(M) if rates[m, r]]
        prob += pulp.LpConstraint(
            pulp.LpAffineExpression(terms), pulp.LpConstraintLE, f"work_{r}", 0
        )

    t0 = time.perf_counter()

    def stop(primal: float, dual: float) -> bool:
        # reaching the goal ends the search only after a grace period: a completed proof
        # (status Optimal, gap 0) is worth a fraction of a second
        if stop_at is not None and dual * tau + fixed >= stop_at:
            return time.perf_counter() - t0 >= COUNT_BOUND_GOAL_GRACE
        return futile_below is not None and primal * tau + fixed < futile_below

    s = _HiGHSInterrupt(
        stop=stop if (stop_at is not None or futile_below is not None) else None,
        msg=False,
        timeLimit=max(time_limit, 0.1),
        # below the 1e-9 at which solve() calls a gap closed
        gapRel=1e-10,
        gapAbs=1e-12,
        threads=threads,
        random_seed=0,
        mip_feasibility_tolerance=1e-9,
        primal_feasibility_tolerance=1e-9,
    )
    prob.solve(s)
    h = prob.solverModel
    status = h.modelStatusToString(h.getModelStatus())
    if status == "Infeasible":
        return math.inf
    dual = float(h.getInfo().mip_dual_bound)
    if not math.isfinite(dual) and status == "Optimal":
        dual = float(h.getInfo().objective_function_value)
    if not math.isfinite(dual):
        return 0.0
    bound = dual * tau + fixed
    if int(h.getInfo().primal_solution_status) == 2:
        # the exact time of the subset found: a feasible point, so the minimum is no larger;
        # when HiGHS proved it optimal (1e-10 relative gap) it *is* the minimum, up to HiGHS's
        # 1e-9 feasibility tolerance, which otherwise leaves the dual bound ~1e-9 below it
        chosen = [(t, o) for t, o, v in allv if (v.varValue or 0.0) > 0.5]
        if len(chosen) == n:
            work = np.zeros(R)
            out = 0.0
            for t, o in chosen:
                work += co.work[t][o]
                out += float(co.output_s[t])
            m = 0 if M == 1 else int(np.argmax([x.varValue or 0.0 for x in u]))
            with np.errstate(divide="ignore", invalid="ignore"):
                busy = np.where(work > 0, work / rates[m], 0.0)
            exact = fixed + out + float(busy.max(initial=0.0))
            bound = exact if status == "Optimal" else min(bound, exact)
    return max(bound, 0.0)


_HIGHS_BANNER_SHOWN = False


def _quiet_highs() -> None:
    """Create the process's first HiGHS object with file descriptor 1 on /dev/null.

    HiGHS prints its banner from C++ when the first ``Highs`` object of a process is built,
    before PuLP can set ``output_flag``; that line would land in ``simrec shard``'s stdout.
    Later objects print nothing unless asked to.
    """
    global _HIGHS_BANNER_SHOWN
    if _HIGHS_BANNER_SHOWN:
        return
    _HIGHS_BANNER_SHOWN = True
    try:
        import highspy
    except ImportError:  # CBC only
        return
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:
        highspy.Highs()
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            h = highspy.Highs()
            h.setOptionValue("output_flag", False)
            _flush_c_stdio()
        finally:
            os.dup2(saved, 1)
            os.close(null)
    finally:
        os.close(saved)


def _flush_c_stdio() -> None:
    """``fflush(NULL)``: push what C code buffered to the file descriptor it belongs to now."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


def _energy_bound(opts: OptionSet) -> float:
    """Energy weight x the smallest total energy (each table's least-energy option)."""
    p = opts.problem
    if not p.energy_weight:
        return 0.0
    e_min = np.full(p.num_tables, np.inf)
    for t in range(p.num_tables):
        for j in range(p.num_devices):
            co = opts.for_device(j)
            if co.num_options(t):
                e_min[t] = min(e_min[t], float(co.energy[t].min()))
    return p.energy_weight * float(np.where(np.isfinite(e_min), e_min, 0.0).sum())


def trivial_bound(opts: OptionSet) -> float:
    """A valid lower bound on the objective without a solver: :func:`makespan_bound` plus, with an
    energy weight, the smallest total energy (each table's least-energy option)."""
    return makespan_bound(opts) + _energy_bound(opts)


def combinatorial_bounds(
    opts: OptionSet,
    incumbent: float | None = None,
    gap: float | None = None,
    time_limit: float = COUNT_BOUND_TIME_LIMIT,
    threads: int | None = None,
) -> dict[str, float]:
    """The bounds of the original problem that need no LP, by name (seconds).

    ``single_table``, ``packing`` (:func:`makespan_bound_parts`) and ``busiest_device``
    (:func:`busiest_device_bound`) bound the makespan; ``energy`` is the energy term's least
    value, so ``max`` of the first three plus ``energy`` bounds the objective. With an
    ``incumbent`` objective the busiest-device MIP is skipped when the cheap bounds already
    prove it within ``gap``, and the incumbent caps its big-M (the optimal plan's makespan is at
    most the incumbent's objective minus the least energy term).
    """
    parts = makespan_bound_parts(opts)
    energy = _energy_bound(opts)
    out = {"single_table": parts["single_table"], "packing": parts["packing"]}
    cheap = max(parts.values())
    cap = goal = None
    if incumbent is not None and math.isfinite(incumbent):
        cap = incumbent - energy
        goal = incumbent * (1 - (gap if gap is not None else 0.0)) - energy
    out["busiest_device"] = (
        0.0
        if goal is not None and cheap >= goal
        else busiest_device_bound(
            opts, cap=cap, goal=goal, time_limit=time_limit, threads=threads, floor=cheap
        )
    )
    out["single_table"] = max(out["single_table"], parts["fixed"])
    out["energy"] = energy
    return out


def _gap(obj: float, bound: float) -> float:
    if not math.isfinite(bound):
        return math.inf
    if obj <= 0:
        return 0.0
    return max(0.0, (obj - bound) / obj)


def _solve_full(
    opts: OptionSet,
    solver: str,
    time_limit: float | None,
    gap: float | None,
    start: tuple[Assignment, Evaluation] | None,
    threads: int | None,
    zmin: float | None = None,
) -> tuple[Assignment | None, SolveRecord]:
    """One MIP over the whole problem; ``zmin`` (default :func:`makespan_bound`) is a proven
    lower bound on the makespan, added as ``z >= zmin``."""
    # the incumbent's objective bounds z (a cut-off) for HiGHS; CBC gets the crude bound (above)
    zmax = start[1].objective * (1 + 1e-6) if (start is not None and solver == "highs") else None
    if zmin is None:
        zmin = makespan_bound(opts)
    model = build_model(opts, zmax=zmax, zmin=zmin * (1 - 1e-9))
    sv = _start_values(opts, model, start[0]) if start is not None else None
    run = _run(model, solver, time_limit, gap, sv, mip=True, threads=threads)
    rec = SolveRecord(
        solver=solver,
        strategy="full",
        status=run.status,
        objective=run.objective,
        bound=run.bound,
        gap=math.inf,
        solve_time_s=run.seconds,
        num_variables=model.num_variables,
        num_constraints=model.num_constraints,
        time_limit_s=time_limit,
        gap_target=gap,
    )
    if run.status.lower().startswith("infeasible"):
        raise ConfigError(
            "the MIP is infeasible: the tables cannot be packed into the devices' tiers "
            f"({_capacity_summary(opts)})",
            where="sharding problem",
            fix="add devices or larger tiers, allow TT storage for more tables, or split the "
            "largest tables before planning",
        )
    if not run.has_solution:
        return None, rec
    a0 = start[0] if start is not None else _empty(opts)
    a = _extract(opts, model, a0)
    if not evaluate(opts, a).feasible:
        return None, rec
    return a, rec


def _empty(opts: OptionSet) -> Assignment:
    p = opts.problem
    return Assignment(
        np.zeros(p.num_tables, dtype=np.int64),
        np.zeros(p.num_tables, dtype=np.int64),
        np.zeros(p.num_devices, dtype=np.int64),
    )


def _capacity_summary(opts: OptionSet) -> str:
    p = opts.problem
    model_b = sum(t.table_bytes for t in p.tables)
    cap = sum(float(opts.for_device(j).capacity.sum()) for j in range(p.num_devices))
    return f"model {model_b:,.0f} B raw, {p.num_devices} devices with {cap:,.0f} B in all tiers"


def _solve_lns(
    opts: OptionSet,
    solver: str,
    time_limit: float | None,
    gap: float | None,
    start: Assignment,
    threads: int | None,
    sub_time_limit: float,
    t_start: float,
    comb: float | None = None,
    polish: bool = True,
    max_sub_time_limit: float = 32.0,
) -> tuple[Assignment, SolveRecord]:
    """LP bound of the full model + start + device-pair large-neighbourhood search.

    ``comb``: a proven lower bound on the objective from the combinatorial bounds (default
    :func:`trivial_bound`); the gap is against the larger of it and the LP bound."""
    deadline = t_start + (time_limit if time_limit is not None else math.inf)
    target = gap if gap is not None else 1e-4
    cur = start.copy()
    ev = evaluate(opts, cur)
    zmax = ev.objective * (1 + 1e-6)
    lp = build_model(opts, relax=True, zmax=zmax)
    left = deadline - time.perf_counter()
    lp_run = _run(
        lp,
        solver,
        max(left, 1.0) if math.isfinite(left) else None,
        None,
        None,
        mip=False,
        threads=threads,
    )
    bound = lp_run.bound
    triv = trivial_bound(opts) if comb is None else comb
    if not bound >= triv:
        bound = triv
    rec = SolveRecord(
        solver=solver,
        strategy="lns",
        status="",
        objective=ev.objective,
        bound=bound,
        gap=_gap(ev.objective, bound),
        solve_time_s=0.0,
        num_variables=lp.num_variables,
        num_constraints=lp.num_constraints,
        time_limit_s=time_limit,
        gap_target=gap,
        lp_bound=lp_run.bound,
    )
    if bound > lp_run.bound:
        rec.notes.append(
            "the combinatorial bound (single table / packing / busiest device) is stronger "
            "than the LP bound"
        )
    if lp_run.status != "Optimal" and not lp_run.status.startswith("Optimal"):
        rec.notes.append(f"LP relaxation status: {lp_run.status}; no proven bound")
    del lp
    J = opts.problem.num_devices
    stop = "No improving move"

    def accept(cand: Assignment | None, devs: list[int]) -> bool:
        nonlocal cur, ev
        if cand is None:
            return False
        cev = evaluate(opts, cand)
        old = max(ev.device_s[d] for d in devs)
        new = max(cev.device_s[d] for d in devs)
        if (
            cev.feasible
            and cev.objective <= ev.objective + 1e-12
            and (new < old * (1 - 1e-9) or cev.objective < ev.objective * (1 - 1e-9))
        ):
            cur, ev = cand, cev
            rec.lns_moves += 1
            return True
        return False

    def left() -> float:
        return deadline - time.perf_counter()

    # 1. polish: re-solve every device's bands, formats and template exactly, slowest first
    if polish:
        for d in [int(x) for x in np.argsort(-ev.device_s, kind="stable")]:
            if _gap(ev.objective, bound) <= target or left() <= 0.5:
                break
            cand, _ = _sub_move(opts, cur, [d], solver, sub_time_limit * 2, deadline, threads)
            rec.lns_subsolves += 1
            accept(cand, [d])
    # 2. device pairs: the slowest device with each other one, fastest partner first
    limit = sub_time_limit
    while True:
        if _gap(ev.objective, bound) <= target:
            stop = "Gap limit reached" if _gap(ev.objective, bound) > 1e-9 else "Optimal"
            break
        if left() <= 1.0:
            stop = "Time limit reached"
            break
        if J < 2:
            break
        order = np.argsort(-ev.device_s, kind="stable")
        a_dev = int(order[0])
        improved = False
        all_proven = True
        for b_dev in [int(x) for x in order[::-1] if int(x) != a_dev]:
            if left() <= 1.0:
                break
            cand, proven = _sub_move(opts, cur, [a_dev, b_dev], solver, limit, deadline, threads)
            rec.lns_subsolves += 1
            all_proven = all_proven and proven
            if accept(cand, [a_dev, b_dev]):
                improved = True
                break
        if not improved:
            if left() <= 1.0:
                stop = "Time limit reached"
                break
            if all_proven or limit >= max_sub_time_limit:
                break
            limit = min(limit * 2, max_sub_time_limit)
    rec.status = stop
    rec.objective = ev.objective
    return cur, rec


def _sub_move(
    opts: OptionSet,
    cur: Assignment,
    devs: list[int],
    solver: str,
    time_limit: float,
    deadline: float,
    threads: int | None,
) -> tuple[Assignment | None, bool]:
    """Re-solve the tables of ``devs`` over those devices, warm-started from ``cur``.

    The solver gets ``time_limit`` seconds, less whatever building the model left of the time to
    ``deadline``. Returns (candidate or None, whether the sub-problem was proven optimal).
    """
    tables = [int(t) for t in np.flatnonzero(np.isin(cur.device, devs))]
    if not tables:
        return None, True
    sub = build_model(opts, tables, devs)
    sv = _start_values(opts, sub, cur)
    # keep a margin for handing the model to the solver and reading the solution back
    tl = min(time_limit, deadline - time.perf_counter() - 0.1 * time_limit - 0.3)
    if tl <= 0.2:
        return None, False
    # HiGHS's presolve ignores the time limit and takes many seconds on sub-problems with dense
    # work rows (100 SmartSSD tables: 15 s on a 4 s limit); without it the search starts at once
    presolve = sub.num_variables <= SUB_PRESOLVE_MAX_VARIABLES
    run = _run(sub, solver, tl, 1e-6, sv, mip=True, threads=threads, presolve=presolve)
    proven = run.status.startswith("Optimal")
    if not run.has_solution:
        return None, proven
    return _extract(opts, sub, cur), proven


# --------------------------------------------------------------------------------------------------
# Plan output (simrec.shard.plan)
# --------------------------------------------------------------------------------------------------


def plan_from_assignment(
    opts: OptionSet,
    a: Assignment,
    record: SolveRecord | None = None,
    provenance: dict[str, Any] | None = None,
) -> Any:
    """A :class:`simrec.shard.plan.Plan` for an assignment.

    Rows are ranked by hotness (``order.kind = "hotness"``, permutation supplied at run time from
    the trace statistics) and cut into one band per used tier; TT tables get one band holding all
    rows with a TT codec (resolved shapes and ranks). Devices carry their template's core counts.
    """
    from simrec.functional.spec import RawSpec, TTSpec
    from simrec.shard.plan import Band, CoreConfig, DevicePlan, Plan, RowOrder, TablePlan
    from simrec.shard.plan import SolverRecord as PlanSolverRecord

    p = opts.problem
    devices = []
    for j, d in enumerate(p.devices):
        m = opts.for_device(j).templates[int(a.template[j])]
        cores = (
            CoreConfig(memory_centric=m.mem_cores, compute_centric=m.tt_cores, mlp=m.mlp_cores)
            if d.templates
            else CoreConfig()
        )
        devices.append(DevicePlan(name=d.name, kind=d.kind, cores=cores))
    tables = []
    for rec in describe_assignment(opts, a):
        tab = p.tables[[t.name for t in p.tables].index(rec["table"])]
        order = RowOrder(kind="hotness", source="simrec.trace.stats access counts, hottest first")
        if rec["format"] == "tt":
            codec: Any = TTSpec(ranks=rec["tt_ranks"], p_shapes=rec["tt_p"], q_shapes=rec["tt_q"])
            bands = [Band(device=rec["device"], tier=rec["tt_tier"], rows=(0, tab.rows))]
        else:
            codec = RawSpec(dtype="float16" if tab.bytes_per_elem == 2 else "float32")
            bands = [
                Band(device=rec["device"], tier=b["tier"], rows=(b["start"], b["stop"]))
                for b in rec["bands"]
            ]
        tables.append(
            TablePlan(
                name=tab.name, rows=tab.rows, dim=tab.dim, codec=codec, order=order, bands=bands
            )
        )
    solver = None
    if record is not None:
        nint = record.num_variables
        solver = PlanSolverRecord(
            solver=record.solver,
            status=record.status,
            objective=_finite(record.objective),
            bound=_finite(record.bound),
            gap=_finite(record.gap),
            solve_time_s=record.solve_time_s,
            num_variables=record.num_variables,
            num_constraints=record.num_constraints,
            num_integer=nint,
            message=f"strategy {record.strategy}; start {record.start}; " + "; ".join(record.notes),
        )
    plan = Plan(devices=devices, tables=tables, solver=solver, provenance=provenance or {})
    return plan.check()


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def result_plan(res: ShardResult, provenance: dict[str, Any] | None = None) -> Any:
    """The plan of a solved result, with the predicted per-device times in its provenance."""
    prov = {
        "planner": "simrec.shard.mip.solve",
        "predicted_makespan_s": res.evaluation.makespan_s,
        "predicted_device_s": [float(v) for v in res.evaluation.device_s],
        "heuristics_makespan_s": {
            k: (None if v is None else v.makespan_s) for k, v in res.heuristics.items()
        },
        "templates": [
            res.opts.for_device(j).templates[int(res.assignment.template[j])].name
            for j in range(res.problem.num_devices)
        ],
    }
    prov.update(provenance or {})
    return plan_from_assignment(res.opts, res.assignment, res.record, prov)
