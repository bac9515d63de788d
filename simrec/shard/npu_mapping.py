"""Mapping embedding tables onto the cores of an Ascend-like NPU: symmetric baseline, asymmetric MIP.

A *mapping* lists *parts*: a row range ``[lo, hi)`` of a table, the core that serves it and the
look-up strategy it uses there (GM, L1, GM-UB, L1-UB; :mod:`simrec.sim.components.npu`). A table
that is not split is one part covering all its rows; a split table's parts each pool their rows
and write partial sums (each part pays the full output write; the partial sums are added by the
atomic-add of the output DMA, whose cost is not modelled).

* :func:`symmetric_mapping` — what a compiler does: whole tables spread evenly over the cores,
  by count (table ``t`` on core ``t mod N``) or by size (largest first onto the core with the
  fewest bytes), every table with one default strategy (GM: row-by-row gather).
* :func:`asymmetric_mapping` — per table a split level ``k`` (1 or a power of two up to the core
  count), per part a (core, strategy); minimise the slowest core. A split cuts the table into
  ``k`` equal row ranges; a table too small to cut further (fewer row buckets than cores) may
  instead be *replicated* ``k`` times, replica ``q`` serving the ``q``-th slice of every batch's
  bags (``replicate=False`` turns this off). A greedy "LPT with splitting"
  heuristic gives a start; the MIP (PuLP + HiGHS) improves it:

  - ``z[t,k]`` binary: table ``t`` is cut into ``k`` equal row ranges (``k < 0``: ``|k|``
    replicas over bag slices), ``Σ_k z[t,k] = 1``;
  - ``x[t,k,p,s,c]`` binary: part ``p`` of that cut uses strategy ``s`` on core ``c``,
    ``Σ_{s,c} x = z[t,k]``;
  - per core: ``Σ cost·x <= Z`` (cost: strategy formula + output write, with the part's mean
    look-ups per batch) and ``Σ bytes·x <= L1`` over the L1-resident parts;
  - shared global memory: ``Σ gm_bytes·x / BW_gm <= Z``;
  - core loads ordered (identical cores: a valid symmetry cut); ``Z <= `` the best start;
  - minimise ``Z``.

  The plan returned is the best of the MIP's, the heuristic's and the symmetric baseline's on this
  cost model, so it is never worse than the baseline on it. Solver status, bound, gap and solve
  time are reported as for the sharding MIP (:class:`simrec.shard.mip.SolveRecord`).

Planning statistics come from the trace (:func:`npu_tables_from_trace`): per table the mean
look-ups per batch in each of ``buckets`` equal row ranges, and the bags per batch.

What it leaves out: unequal row ranges (cuts follow the buckets), replicating hot rows only, L1
sharing between cores, and per-batch variation (it plans on the mean batch; a replica is planned
with ``1/k`` of the table's look-ups although the bags of a batch differ in size).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simrec.errors import ConfigError, atomic_output
from simrec.sim.components.npu import (
    L1_STRATEGIES,
    STRATEGIES,
    NpuParams,
    infeasible_reason,
    output_cost,
    strategy_cost,
)
from simrec.util import jsonable

__all__ = [
    "NpuTable",
    "Part",
    "NpuMapping",
    "npu_tables_from_trace",
    "part_cost",
    "estimate",
    "symmetric_mapping",
    "greedy_mapping",
    "asymmetric_mapping",
    "MAPPING_VERSION",
]

MAPPING_VERSION = 1
DEFAULT_BUCKETS = 64
MAX_BINARIES = 12_000


@dataclass(frozen=True)
class NpuTable:
    """Planning statistics of one table: ``hist[b]`` = mean look-ups per batch whose row falls in
    bucket ``b`` (rows ``bounds[b]`` to ``bounds[b+1]``); ``bags`` = samples per batch."""

    name: str
    rows: int
    dim: int
    row_bytes: int
    bags: float
    hist: np.ndarray

    @property
    def bounds(self) -> np.ndarray:
        nb = len(self.hist)
        return (np.arange(nb + 1, dtype=np.int64) * self.rows) // nb

    @property
    def lookups(self) -> float:
        return float(self.hist.sum())

    @property
    def table_bytes(self) -> int:
        return self.rows * self.row_bytes


@dataclass(frozen=True)
class Part:
    """Rows ``[lo, hi)`` of table ``table`` (index into the trace's tables) on ``core`` with
    ``strategy``. A *sample-split* table (``sk > 1``) is replicated: part ``sq`` of ``sk`` holds
    all rows and serves bags ``[sq·B/sk, (sq+1)·B/sk)`` of every batch of ``B`` bags."""

    table: int
    lo: int
    hi: int
    core: int
    strategy: str
    sq: int = 0
    sk: int = 1


@dataclass
class NpuMapping:
    """A mapping of table row ranges to (core, strategy), with how it was found."""

    kind: str
    cores: int
    parts: list[Part]
    table_names: tuple[str, ...]
    estimate_s: float = math.nan
    record: dict[str, Any] = field(default_factory=dict)

    def core_parts(self, core: int) -> list[Part]:
        return [p for p in self.parts if p.core == core]

    def parts_of(self, table: int) -> list[Part]:
        return sorted((p for p in self.parts if p.table == table), key=lambda p: (p.lo, p.sq))

    def label(self, p: Part, rows: int) -> str:
        """``name``, ``name[lo:hi]`` (a row range) or ``name{q/k}`` (bag slice q of k)."""
        name = self.table_names[p.table]
        if p.sk > 1:
            return f"{name}{{{p.sq}/{p.sk}}}"
        return name if (p.lo == 0 and p.hi == rows) else f"{name}[{p.lo}:{p.hi}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "simrec-npu-mapping",
            "version": MAPPING_VERSION,
            "kind": self.kind,
            "cores": self.cores,
            "tables": list(self.table_names),
            "estimate_s": self.estimate_s,
            "record": self.record,
            "parts": [
                {
                    "table": self.table_names[p.table],
                    "rows": [p.lo, p.hi],
                    "core": p.core,
                    "strategy": p.strategy,
                    **({"samples": [p.sq, p.sk]} if p.sk > 1 else {}),
                }
                for p in self.parts
            ],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the mapping as JSON (atomically)."""
        with atomic_output(Path(path)) as tmp:
            tmp.write_text(json.dumps(jsonable(self.to_dict()), indent=2) + "\n")
        return Path(path)

    def validate(self, tables: tuple[NpuTable, ...], p: NpuParams, source: str | None = None):
        """Check coverage (every row of every table exactly once), cores, strategies and L1."""
        if len(tables) != len(self.table_names):
            raise ConfigError(
                f"the mapping has {len(self.table_names)} tables, the trace {len(tables)}",
                path=source,
                where="tables",
                fix="make the mapping for this trace",
            )
        l1 = np.zeros(self.cores)
        for t, tab in enumerate(tables):
            ps = self.parts_of(t)
            where = f"table {tab.name!r}"
            pos = 0
            sk = max((q.sk for q in ps), default=1)
            if sk > 1:
                if any(q.sk != sk or (q.lo, q.hi) != (0, tab.rows) for q in ps) or sorted(
                    q.sq for q in ps
                ) != list(range(sk)):
                    raise ConfigError(
                        f"a sample-split table needs parts 0..{sk - 1} of {sk}, each with all rows",
                        path=source,
                        where=where,
                        fix="give every bag slice once, with rows [0, rows)",
                    )
                pos = tab.rows
            for q in ps:
                if sk == 1 and (q.lo != pos or q.hi <= q.lo):
                    raise ConfigError(
                        f"row ranges do not cover rows 0..{tab.rows} once (at row {pos})",
                        path=source,
                        where=where,
                        fix="give contiguous, non-overlapping row ranges",
                    )
                if sk == 1:
                    pos = q.hi
                if not 0 <= q.core < self.cores or self.cores > p.cores:
                    raise ConfigError(
                        f"core {q.core} does not exist ({p.cores} cores)",
                        path=source,
                        where=where,
                        fix=f"use cores 0..{p.cores - 1}",
                    )
                why = infeasible_reason(p, (q.hi - q.lo) * tab.row_bytes, q.strategy)
                if why:
                    raise ConfigError(
                        why, path=source, where=f"{where} rows [{q.lo}, {q.hi})", fix=_FIX
                    )
                if q.strategy in L1_STRATEGIES:
                    l1[q.core] += (q.hi - q.lo) * tab.row_bytes
            if pos != tab.rows:
                raise ConfigError(
                    f"row ranges end at {pos}, the table has {tab.rows} rows",
                    path=source,
                    where=where,
                    fix="cover every row",
                )
        for c in np.nonzero(l1 > p.l1_bytes * (1 + 1e-12))[0].tolist():
            raise ConfigError(
                f"core {c} holds {l1[c]:,.0f} B of L1-resident tables, L1 is {p.l1_bytes:,.0f} B",
                path=source,
                where=f"core {c}",
                fix="move a table to GM or GM-UB, or to another core",
            )


_FIX = "use GM or GM-UB for it, or a smaller row range"


def load_mapping(path: str | os.PathLike[str]) -> NpuMapping:
    """Read a mapping written by :meth:`NpuMapping.save`."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"cannot read the mapping ({e})", path=path, fix="give a JSON file from simrec shard"
        ) from None
    if not isinstance(d, dict) or d.get("format") != "simrec-npu-mapping":
        raise ConfigError(
            "not an NPU mapping file", path=path, where="format", fix="write it with simrec shard"
        )
    names = tuple(d["tables"])
    idx = {n: i for i, n in enumerate(names)}
    parts = []
    for i, q in enumerate(d["parts"]):
        if q.get("table") not in idx or q.get("strategy") not in STRATEGIES:
            raise ConfigError(
                f"part {i} names table {q.get('table')!r} / strategy {q.get('strategy')!r}",
                path=path,
                where=f"parts[{i}]",
                fix=f"use a listed table and one of {', '.join(STRATEGIES)}",
            )
        sq, sk = (int(v) for v in q.get("samples", (0, 1)))
        parts.append(
            Part(
                idx[q["table"]],
                int(q["rows"][0]),
                int(q["rows"][1]),
                int(q["core"]),
                q["strategy"],
                sq,
                sk,
            )
        )
    return NpuMapping(
        d.get("kind", "file"), int(d["cores"]), parts, names, float(d.get("estimate_s") or math.nan)
    )


# --------------------------------------------------------------------------------------------------
# statistics and costs
# --------------------------------------------------------------------------------------------------


def npu_tables_from_trace(reader: Any, buckets: int = DEFAULT_BUCKETS) -> tuple[NpuTable, ...]:
    """Planning statistics from a trace: mean look-ups per batch per row bucket, per table."""
    h = reader.header
    nt = h.num_tables if hasattr(h, "num_tables") else len(h.tables)
    counts = [np.zeros(min(buckets, max(1, s.rows)), dtype=np.float64) for s in h.tables]
    bounds = [
        (np.arange(len(c) + 1, dtype=np.int64) * s.rows) // len(c)
        for c, s in zip(counts, h.tables, strict=True)
    ]
    nb = 0
    bags = 0.0
    for batch in reader:
        nb += 1
        bags += batch.batch_size
        for t in range(nt):
            idx = np.asarray(batch.table_indices(t))
            if len(idx):
                b = np.searchsorted(bounds[t], idx, side="right") - 1
                counts[t] += np.bincount(b, minlength=len(counts[t]))
    if nb == 0:
        raise ConfigError("the trace has no batches", where="trace", fix="give a trace with data")
    out = []
    for t, s in enumerate(h.tables):
        out.append(
            NpuTable(
                s.name, int(s.rows), int(s.dim), int(s.bytes_per_row), bags / nb, counts[t] / nb
            )
        )
    return tuple(out)


def part_cost(
    p: NpuParams,
    tab: NpuTable,
    lo: int,
    hi: int,
    lookups: float,
    strategy: str,
    bags: float | None = None,
) -> tuple[float, float]:
    """(seconds on its core, GM bytes) of one part in one batch: strategy formula + output of
    ``bags`` pooled rows (default: all the batch's bags)."""
    c = strategy_cost(p, strategy, lookups, (hi - lo) * tab.row_bytes, tab.row_bytes)
    return c.time_s + output_cost(p, tab.bags if bags is None else bags, tab.dim), c.gm_bytes


def _part_lookups(tab: NpuTable, b0: int, b1: int) -> float:
    return float(tab.hist[b0:b1].sum())


def estimate(m: NpuMapping, tables: tuple[NpuTable, ...], p: NpuParams) -> tuple[np.ndarray, float]:
    """Cost-model per-core seconds per mean batch, and the makespan estimate
    ``max(slowest core, total GM bytes / BW_gm)``."""
    core = np.zeros(m.cores)
    gm = 0.0
    for q in m.parts:
        tab = tables[q.table]
        if q.sk > 1:
            s, g = part_cost(
                p, tab, q.lo, q.hi, tab.lookups / q.sk, q.strategy, _slice(tab.bags, q.sq, q.sk)
            )
            core[q.core] += s
            gm += g
            continue
        bnd = tab.bounds
        b0 = int(np.searchsorted(bnd, q.lo, side="left"))
        b1 = int(np.searchsorted(bnd, q.hi, side="left"))
        if bnd[b0] == q.lo and bnd[min(b1, len(bnd) - 1)] == q.hi:
            n = _part_lookups(tab, b0, b1)
        else:  # a cut inside a bucket: share the bucket's look-ups by rows
            n = _lookups_in(tab, q.lo, q.hi)
        s, g = part_cost(p, tab, q.lo, q.hi, n, q.strategy)
        core[q.core] += s
        gm += g
    return core, max(float(core.max(initial=0.0)), gm / p.gm_Bps)


def _slice(bags: float, q: int, k: int) -> float:
    """Bags in slice ``q`` of ``k`` of a batch of ``bags`` bags (as the DES cuts them)."""
    b = round(bags)
    return float((q + 1) * b // k - q * b // k)


def _lookups_in(tab: NpuTable, lo: int, hi: int) -> float:
    bnd = tab.bounds
    tot = 0.0
    for b in range(len(tab.hist)):
        a, z = max(lo, bnd[b]), min(hi, bnd[b + 1])
        if z > a:
            tot += tab.hist[b] * (z - a) / max(1, bnd[b + 1] - bnd[b])
    return tot


# --------------------------------------------------------------------------------------------------
# symmetric baseline
# --------------------------------------------------------------------------------------------------


def symmetric_mapping(
    tables: tuple[NpuTable, ...],
    p: NpuParams,
    by: str = "count",
    strategy: str = "GM",
) -> NpuMapping:
    """The compiler-like baseline: whole tables spread evenly over the cores, one strategy."""
    n = p.cores
    parts = []
    if by == "count":
        for t, tab in enumerate(tables):
            parts.append(Part(t, 0, tab.rows, t % n, strategy))
    elif by == "rows":
        load = np.zeros(n)
        for t in sorted(range(len(tables)), key=lambda t: (-tables[t].table_bytes, t)):
            c = int(np.argmin(load))
            load[c] += tables[t].table_bytes
            parts.append(Part(t, 0, tables[t].rows, c, strategy))
    else:
        raise ConfigError(f"unknown baseline {by!r}", where="baseline", fix="use count or rows")
    parts.sort(key=lambda q: (q.table, q.lo))
    m = NpuMapping(f"symmetric-{by}", n, parts, tuple(t.name for t in tables))
    m.validate(tables, p)
    m.estimate_s = estimate(m, tables, p)[1]
    m.record = {"baseline": by, "strategy": strategy}
    return m


# --------------------------------------------------------------------------------------------------
# asymmetric: options, greedy start, MIP
# --------------------------------------------------------------------------------------------------


@dataclass
class _Opt:
    table: int
    level: int
    part: int
    lo: int
    hi: int
    strategy: str
    cost: float
    gm: float
    l1: float


def _levels(tab: NpuTable, cores: int, replicate: bool = True) -> list[int]:
    """Split levels in the order they are tried: 1, row splits 2, 4, ... (``k`` equal row ranges
    on the buckets), then, for a table too small to cut further, sample splits ``-2k, -4k, ...``
    (replicas serving ``1/|k|`` of the bags each), all up to the core count."""
    out, k = [1], 2
    while k <= min(cores, len(tab.hist), tab.rows):
        if len(tab.hist) % k == 0:
            out.append(k)
        k *= 2
    k = 2 * out[-1]
    while replicate and k <= min(cores, round(tab.bags)):
        out.append(-k)
        k *= 2
    return out


def _options(
    tables: tuple[NpuTable, ...], p: NpuParams, levels: dict[int, list[int]]
) -> dict[tuple[int, int, int], list[_Opt]]:
    """Per (table, level, part): its feasible strategies with costs (dominated ones dropped)."""
    out: dict[tuple[int, int, int], list[_Opt]] = {}
    for t, tab in enumerate(tables):
        nb = len(tab.hist)
        bnd = tab.bounds
        for k in levels[t]:
            for q in range(abs(k)):
                if k > 0:
                    b0, b1 = q * nb // k, (q + 1) * nb // k
                    lo, hi = int(bnd[b0]), int(bnd[b1])
                    n, bags = _part_lookups(tab, b0, b1), tab.bags
                else:
                    lo, hi = 0, tab.rows
                    n, bags = tab.lookups / -k, _slice(tab.bags, q, -k)
                S = (hi - lo) * tab.row_bytes
                opts = []
                for s in STRATEGIES:
                    if infeasible_reason(p, S, s) is None:
                        c, g = part_cost(p, tab, lo, hi, n, s, bags)
                        opts.append(_Opt(t, k, q, lo, hi, s, c, g, S if s in L1_STRATEGIES else 0))
                # keep an option unless another is no worse in time, GM bytes and L1 bytes
                keep = []
                for o in opts:
                    dom = any(
                        (o2.cost <= o.cost and o2.gm <= o.gm and o2.l1 <= o.l1)
                        and (o2.cost, o2.gm, o2.l1) != (o.cost, o.gm, o.l1)
                        for o2 in opts
                    )
                    if not dom:
                        keep.append(o)
                out[t, k, q] = keep
    return out


def _lpt(
    items: list[_Opt], alt: dict[int, _Opt], cores: int, l1_cap: float
) -> tuple[list[tuple[_Opt, int]], np.ndarray]:
    """Longest-processing-time assignment; an L1 item that fits no core falls back to ``alt``."""
    load = np.zeros(cores)
    l1 = np.zeros(cores)
    out = []
    for i, o in sorted(enumerate(items), key=lambda x: (-x[1].cost, x[0])):
        if o.l1 > 0:
            order = np.argsort(load, kind="stable")
            c = next((int(c) for c in order if l1[c] + o.l1 <= l1_cap), None)
            if c is None:
                o = alt[i]
            else:
                l1[c] += o.l1
                load[c] += o.cost
                out.append((o, c))
                continue
        c = int(np.argmin(load))
        load[c] += o.cost
        out.append((o, c))
    return out, load


def _to_mapping(
    kind: str, assign: list[tuple[_Opt, int]], tables: tuple[NpuTable, ...], p: NpuParams
) -> NpuMapping:
    parts = [
        Part(o.table, o.lo, o.hi, c, o.strategy, *((o.part, -o.level) if o.level < 0 else (0, 1)))
        for o, c in assign
    ]
    parts.sort(key=lambda q: (q.table, q.lo, q.sq))
    m = NpuMapping(kind, p.cores, parts, tuple(t.name for t in tables))
    m.estimate_s = estimate(m, tables, p)[1]
    return m


def greedy_mapping(
    tables: tuple[NpuTable, ...], p: NpuParams, max_rounds: int = 400, replicate: bool = True
) -> NpuMapping:
    """LPT with splitting: every table at its cheapest strategy, largest first onto the least
    loaded core; then, while it helps, double the split level of the costliest part's table."""
    levels = {t: _levels(tab, p.cores, replicate) for t, tab in enumerate(tables)}
    opts = _options(tables, p, levels)
    level = dict.fromkeys(range(len(tables)), 1)

    def build() -> tuple[list[tuple[_Opt, int]], tuple[float, ...]]:
        items, alt = [], {}
        for t in range(len(tables)):
            k = level[t]
            for q in range(abs(k)):
                os_ = opts[t, k, q]
                best = min(os_, key=lambda o: (o.cost, o.gm))
                items.append(best)
                alt[len(items) - 1] = min(
                    (o for o in os_ if o.l1 == 0), key=lambda o: (o.cost, o.gm)
                )
        assign, load = _lpt(items, alt, p.cores, p.l1_bytes)
        gm = sum(o.gm for o, _ in assign) / p.gm_Bps
        # compare plans by makespan, then by the sorted core loads (fewer cores at the top first)
        key = (max(float(load.max()), gm), *sorted((float(v) for v in load), reverse=True))
        return assign, key

    assign, key = build()
    for _ in range(max_rounds):
        loads: dict[int, float] = {}
        for o, c in assign:
            loads[c] = loads.get(c, 0.0) + o.cost
        top = max(loads.values())
        crit = [c for c in loads if loads[c] >= top * (1 - 1e-9)]
        cands = sorted({(o.cost, o.table) for o, c in assign if c in crit}, reverse=True)
        improved = False
        for _, t in cands:
            nxt = levels[t][levels[t].index(level[t]) + 1 :]
            if not nxt:
                continue
            old = level[t]
            level[t] = nxt[0]
            a2, key2 = build()
            if key2 < key and key2[0] <= key[0] * (1 + 1e-12):
                assign, key, improved = a2, key2, True
                break
            level[t] = old
        if not improved:
            break
    m = _to_mapping("greedy", assign, tables, p)
    m.record = {"levels": {tables[t].name: k for t, k in level.items() if k != 1}}
    return m


def _lv(k: int) -> str:
    return f"r{k}" if k > 0 else f"s{-k}"


class _Skip(Exception):
    """Internal: the MIP is not run."""


class _WarmHiGHS:
    """Built on first use (pulp is imported lazily): pulp's HiGHS interface that passes a start
    solution to HiGHS before it runs."""

    def __new__(cls, start: dict[str, float] | None, **kw: Any) -> Any:
        import pulp

        class _Solver(pulp.HiGHS):
            def callSolver(self, lp: Any) -> None:  # noqa: N802 - PuLP's method name
                if start:
                    import highspy

                    h = lp.solverModel
                    col = [0.0] * h.getNumCol()
                    for v in lp.variables():
                        col[v.index] = float(start.get(v.name, 0.0))
                    sol = highspy.HighsSolution()
                    sol.col_value = col
                    sol.value_valid = True
                    h.setSolution(sol)
                lp.solverModel.run()

        return _Solver(**kw)


def _start_values(
    m: NpuMapping,
    opts: dict[tuple[int, int, int], list[_Opt]],
    x: dict[tuple[int, int, int, int, int], tuple[Any, _Opt]],
    z: dict[tuple[int, int], Any],
    Z: Any,
    p: NpuParams,
    tables: tuple[NpuTable, ...],
    scale: float,
) -> dict[str, float] | None:
    """MIP variable values of mapping ``m`` (cores relabelled by decreasing load to satisfy the
    symmetry cut), or None when ``m`` uses an option the MIP does not offer."""
    load = np.zeros(p.cores)
    picks = []
    for t in range(len(tables)):
        ps = m.parts_of(t)
        for j, part in enumerate(ps):
            k, q = (-part.sk, part.sq) if part.sk > 1 else (len(ps), j)
            os_ = opts.get((t, k, q))
            if os_ is None:
                return None
            i = next((i for i, o in enumerate(os_) if o.strategy == part.strategy), None)
            if i is None or (os_[i].lo, os_[i].hi) != (part.lo, part.hi):
                return None
            picks.append((t, k, q, i, part.core))
            load[part.core] += os_[i].cost
    relabel = {int(c): r for r, c in enumerate(np.argsort(-load, kind="stable"))}
    vals: dict[str, float] = {}
    for t, k, q, i, c in picks:
        vals[x[t, k, q, i, relabel[c]][0].name] = 1.0
        vals[z[t, k].name] = 1.0
    gm = sum(x[key][1].gm for key in [(t, k, q, i, relabel[c]) for t, k, q, i, c in picks])
    vals[Z.name] = max(float(load.max()), gm / p.gm_Bps) / scale
    return vals


def asymmetric_mapping(
    tables: tuple[NpuTable, ...],
    p: NpuParams,
    solver: str = "highs",
    time_limit: float = 20.0,
    gap: float = 1e-3,
    baseline: NpuMapping | None = None,
    max_binaries: int = MAX_BINARIES,
    replicate: bool = True,
) -> NpuMapping:
    """The asymmetric mapper (module docstring): greedy start, then the MIP; never worse than
    ``baseline`` (default: the symmetric-by-count GM mapping) on the cost model. ``replicate``
    allows sample splits (replicas of a table that cannot be cut further by rows)."""
    import pulp

    t0 = time.perf_counter()
    base = baseline or symmetric_mapping(tables, p)
    greedy = greedy_mapping(tables, p, replicate=replicate)
    start = min((greedy, base), key=lambda m: m.estimate_s)
    ub = start.estimate_s
    # levels worth offering: a table is split further only while its cheapest part exceeds the
    # average-load bound (a finer cut cannot shorten the makespan below it)
    levels0 = {t: _levels(tab, p.cores, replicate) for t, tab in enumerate(tables)}
    opts0 = _options(tables, p, {t: [1] for t in range(len(tables))})
    avg = sum(min(o.cost for o in opts0[t, 1, 0]) for t in range(len(tables))) / p.cores
    levels: dict[int, list[int]] = {}
    for t in range(len(tables)):
        ks = [1]
        best1 = min(o.cost for o in opts0[t, 1, 0])
        for k in levels0[t][1:]:
            if best1 / (abs(k) // 2) <= avg * 0.999:
                break
            ks.append(k)
        gk = greedy.record.get("levels", {}).get(tables[t].name, 1)
        levels[t] = levels0[t][: max(len(ks), levels0[t].index(gk) + 1)]
    opts = _options(tables, p, levels)

    def nbin() -> int:
        return sum(len(v) for v in opts.values()) * p.cores

    gl = {t: greedy.record.get("levels", {}).get(tables[t].name, 1) for t in levels}
    while nbin() > max_binaries:  # drop the finest level above the start's of the most split table
        cand = [t for t in levels if levels[t][-1] != gl[t]]
        if not cand:
            break
        t = max(cand, key=lambda t: (abs(levels[t][-1]), t))
        k = levels[t].pop()
        for q in range(abs(k)):
            del opts[t, k, q]
    rec: dict[str, Any] = {
        "solver": solver,
        "status": "NotSolved",
        "start": start.kind,
        "start_estimate_s": ub,
        "greedy_estimate_s": greedy.estimate_s,
        "baseline_estimate_s": base.estimate_s,
        "binaries": nbin(),
    }
    scale = ub if ub > 0 else 1.0
    prob = pulp.LpProblem("npu_mapping", pulp.LpMinimize)
    Z = prob.add_variable("Z", lowBound=0, upBound=1.0 + 1e-6)
    z = {
        (t, k): prob.add_variable(f"z_{t}_{_lv(k)}", cat="Binary")
        for t in levels
        for k in levels[t]
    }
    x: dict[tuple[int, int, int, int, int], tuple[pulp.LpVariable, _Opt]] = {}
    for (t, k, q), os_ in opts.items():
        for i, o in enumerate(os_):
            for c in range(p.cores):
                x[t, k, q, i, c] = (
                    prob.add_variable(f"x_{t}_{_lv(k)}_{q}_{i}_{c}", cat="Binary"),
                    o,
                )
    prob += Z
    for t in levels:
        prob += pulp.lpSum(z[t, k] for k in levels[t]) == 1
    for (t, k, q), os_ in opts.items():
        prob += (
            pulp.lpSum(x[t, k, q, i, c][0] for i in range(len(os_)) for c in range(p.cores))
            == z[t, k]
        )
    load = []
    for c in range(p.cores):
        mine = [(v, o) for key, (v, o) in x.items() if key[4] == c]
        expr = pulp.lpSum(o.cost / scale * v for v, o in mine)
        load.append(expr)
        prob += expr <= Z
        l1 = [(v, o) for v, o in mine if o.l1 > 0]
        if l1:
            prob += pulp.lpSum(o.l1 * v for v, o in l1) <= p.l1_bytes
    prob += pulp.lpSum(o.gm / p.gm_Bps / scale * v for v, o in x.values()) <= Z
    for c in range(p.cores - 1):
        prob += load[c] >= load[c + 1]
    best = start
    if nbin() > max_binaries:
        rec["status"] = "Skipped"
        rec.setdefault("notes", []).append(
            f"the MIP would have {nbin():,} binaries (limit {max_binaries:,}); the start is returned"
        )
        time_limit = 0.0
    try:
        if time_limit <= 0:
            raise _Skip
        from simrec.shard.cli import _stdout_to_stderr

        with _stdout_to_stderr():
            if solver == "highs":
                sv = _start_values(start, opts, x, z, Z, p, tables, scale)
                rec["warm_start"] = sv is not None
                s = _WarmHiGHS(sv, msg=False, timeLimit=time_limit, gapRel=gap, threads=1)
            elif solver == "cbc":
                s = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=gap)
            else:
                raise ConfigError(
                    f"unknown solver {solver!r}", where="--solver", fix="use highs or cbc"
                )
            prob.solve(s)
        if solver == "highs":
            h = prob.solverModel
            rec["status"] = h.modelStatusToString(h.getModelStatus())
            if rec["status"] == "Infeasible":  # Z <= the start's makespan: nothing better exists
                rec["status"] = "Optimal"
                rec["bound_s"] = ub
                rec.setdefault("notes", []).append(
                    "the solver proved no plan of the offered options beats the start"
                )
            info = h.getInfo()
            rec["bound_s"] = float(info.mip_dual_bound) * scale
        else:
            rec["status"] = pulp.LpStatus[prob.status]
        rec["num_variables"] = int(prob.numVariables())
        rec["num_constraints"] = int(prob.numConstraints())
        if prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible) or (
            rec["status"] in ("Optimal", "Time limit reached")
        ):
            assign = []
            ok = True
            for (t, k, q), os_ in opts.items():
                if (z[t, k].varValue or 0) < 0.5:
                    continue
                pick = [
                    (i, c)
                    for i in range(len(os_))
                    for c in range(p.cores)
                    if (x[t, k, q, i, c][0].varValue or 0) > 0.5
                ]
                if len(pick) != 1:
                    ok = False
                    break
                i, c = pick[0]
                assign.append((os_[i], c))
            if ok and assign:
                cand = _to_mapping("mip", assign, tables, p)
                try:
                    cand.validate(tables, p)
                    if cand.estimate_s < best.estimate_s * (1 - 1e-12):
                        best = cand
                except ConfigError:
                    rec.setdefault("notes", []).append("the solver's plan failed validation")
    except _Skip:
        pass
    except pulp.PulpSolverError as e:  # pragma: no cover - solver missing
        rec.setdefault("notes", []).append(f"solver failed: {e}")
    out = NpuMapping("asymmetric", p.cores, best.parts, best.table_names, best.estimate_s)
    rec["chosen"] = best.kind
    rec["objective_s"] = out.estimate_s
    b = rec.get("bound_s")
    if b is not None and math.isfinite(b) and out.estimate_s > 0:
        rec["gap"] = max(0.0, (out.estimate_s - min(b, out.estimate_s)) / out.estimate_s)
    rec["solve_time_s"] = time.perf_counter() - t0
    out.record = rec
    out.validate(tables, p)
    return out
