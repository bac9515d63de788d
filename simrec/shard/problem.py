"""The statistical-sharding problem as typed data, and its cost model.

What the planner sees (DESIGN.md §4, screc.md §3.3, anchors.md §1.4):

* :class:`TableStat` — one embedding table: rows, dim, bytes per element, look-ups per batch, pooling,
  coverage, the access CDF at breakpoints (row fraction hottest-first -> share of accesses), and the
  tensor-train (TT) shapes/ranks from which the TT size and the MACs per reconstructed row follow.
* :class:`Tier` — one memory tier of a device (capacity, effective random-row bandwidth, per-access
  floor, read granule, the channel it shares, energy per byte/access).
* :class:`CoreTemplate` — one core configuration of a device (memory-centric vs compute-centric cores,
  FPGA resources it uses, on-chip bytes it reserves, per-channel speed factor, TT MAC rate).
* :class:`Device` — tiers fastest first, templates, resource budget, output link.
* :class:`ShardProblem` — tables, devices, batch size, energy weight.

The cost model (one for the MIP and every heuristic):

* A *placement option* of table ``t`` on a device is either **raw** with a hot/cold row band per tier —
  rows sorted hottest first and cut at CDF breakpoints ``k_1 <= k_2 <= ...`` so tier ``i`` holds rows
  ``[r_{k_i-1}, r_{k_i})`` and serves the access share ``c_{k_i} - c_{k_i-1}`` — or **TT**: the TT
  cores live in one tier and every look-up is rebuilt on the TT (compute-centric) cores.
* A raw look-up on tier ``i`` costs ``max(ceil(row_bytes / granule) * granule / bandwidth, access_s)``
  seconds of that tier's *channel* (tiers on one channel serialise, channels run in parallel).
  A TT look-up costs ``macs_per_row`` MACs on the TT cores plus reading one slice of each TT core.
* Device time per batch = ``output_s + max_channel(work_channel / speed_channel(template),
  macs / tt_macs_per_s(template))`` with ``output_s`` the pooled vectors sent to the host.
* Makespan = slowest device; objective = makespan + ``energy_weight`` x energy per batch.

What it leaves out: queueing and contention inside a channel beyond the bandwidth bound, caching that
adapts at run time, replication of hot rows, row-wise splitting of one table over several devices,
and the MLP. The discrete-event simulator (simrec.sim) measures what this model predicts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from simrec.errors import ConfigError
from simrec.functional.spec import CodecCost, TTSpec
from simrec.functional.spec import tt_macs_per_row as _spec_tt_macs
from simrec.functional.spec import tt_params as _spec_tt_params

__all__ = [
    "TableStat",
    "Tier",
    "CoreTemplate",
    "Device",
    "ShardProblem",
    "OptionSet",
    "Assignment",
    "Evaluation",
    "tt_shapes",
    "tt_params",
    "tt_macs_per_row",
    "build_options",
    "evaluate",
    "check_feasibility",
    "tables_from_profile",
    "devices_from_hw",
    "default_breakpoints",
    "fine_breakpoints",
    "fine_candidates",
    "FINE_MIN_FAST_SHARE",
    "FINE_OPTION_BUDGET",
    "table_breaks",
    "zipf_cdf",
    "synthetic_tables",
    "smartssd_device",
    "two_tier_device",
    "devices_from_smartssd",
    "devices_from_system",
    "dram_row_seconds",
]

TT_RESOURCE = "tt"
POOL_RESOURCE = "pool"

# --------------------------------------------------------------------------------------------------
# Tensor-train shapes (data.md §4: "suggested_tt_shapes", restated; params = Σ R_{k-1} p_k q_k R_k)
# --------------------------------------------------------------------------------------------------


def tt_shapes(rows: int, dim: int, d: int = 3) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(p, q) TT shapes from the functional model's entropy-balanced rule (data.md §4)."""
    spec = TTSpec(ranks=[1] * (d - 1)).resolved(int(rows), int(dim))
    return tuple(spec.p_shapes or ()), tuple(spec.q_shapes or ())


def tt_params(p: Sequence[int], q: Sequence[int], ranks: Sequence[int]) -> int:
    """Number of TT parameters, Σ_k R_{k-1}·p_k·q_k·R_k (data.md §4)."""
    return int(_spec_tt_params(list(p), list(q), list(ranks)))


def tt_macs_per_row(q: Sequence[int], ranks: Sequence[int]) -> int:
    """MACs to rebuild one row by the left-to-right GEMM chain (screc.md §4.3)."""
    return int(_spec_tt_macs(list(q), list(ranks)))


# --------------------------------------------------------------------------------------------------
# Typed problem
# --------------------------------------------------------------------------------------------------


def default_breakpoints(k: int = 16) -> np.ndarray:
    """Row fractions 0, then a geometric ladder 2^-(k-1) … 1 (fine at the hot end, where CDFs bend)."""
    return np.concatenate([[0.0], np.geomspace(2.0 ** -(k - 1), 1.0, k)])


def fine_breakpoints(k: int = 61, lo: float = 2.0**-15) -> np.ndarray:
    """Row fractions 0, then ``k`` geometric points from ``lo`` to 1 (61 points: ratio 2^(1/4), a
    superset of :func:`default_breakpoints`'s ladder ``2^-15 … 1`` up to rounding)."""
    return np.concatenate([[0.0], np.geomspace(lo, 1.0, max(int(k), 2))])


#: Automatic finer breakpoints (docs/sharding.md, "Finer breakpoints"): a table is a candidate
#: when its bytes are at least this share of the smallest fast-tier capacity (the first tier's
#: capacity less the smallest template reservation, over devices with two or more tiers).
FINE_MIN_FAST_SHARE = 0.25
#: ... and candidates are refined, largest first, while the extra placement options they add (over
#: all devices) stay within this share of the coarse problem's options.
FINE_OPTION_BUDGET = 0.30


def _check_cdf(x: np.ndarray, c: np.ndarray, where: str, what: str) -> None:
    """Raise :class:`ConfigError` unless ``(x, c)`` rises from (0, 0) to (1, 1)."""
    if x.shape != c.shape or x.size < 2:
        raise ConfigError(
            f"{what}_x and {what}_c must have the same length >= 2",
            where=where,
            fix="give the access CDF at matching breakpoints, from 0 to 1",
        )
    if (
        abs(x[0]) > 1e-12
        or abs(x[-1] - 1) > 1e-9
        or np.any(np.diff(x) < 0)
        or np.any(np.diff(c) < -1e-12)
        or abs(c[0]) > 1e-9
        or abs(c[-1] - 1) > 1e-6
    ):
        raise ConfigError(
            f"the access CDF{'' if what == 'cdf' else f' ({what})'} must rise from (0, 0) to (1, 1)",
            where=where,
            fix="recompute the profile of the trace (simrec trace stats)",
        )


def zipf_cdf(rows: int, alpha: float, x: np.ndarray) -> np.ndarray:
    """Access share of the hottest ``x`` fraction of rows under Zipf(alpha) (integral approximation)."""
    x = np.asarray(x, dtype=np.float64)
    k = np.maximum(x * rows, 0.0)
    if abs(alpha - 1.0) < 1e-9:
        h = np.log1p(k)
        tot = math.log1p(rows)
    else:
        h = ((1.0 + k) ** (1.0 - alpha) - 1.0) / (1.0 - alpha)
        tot = ((1.0 + rows) ** (1.0 - alpha) - 1.0) / (1.0 - alpha)
    c = h / tot
    c[x <= 0] = 0.0
    c[x >= 1] = 1.0
    return c


@dataclass(frozen=True)
class TableStat:
    """Statistics of one embedding table, as the planner uses them.

    ``cdf_x`` are row fractions (hottest rows first, ascending, starting at 0 and ending at 1) and
    ``cdf_c`` the share of look-ups served by that many hottest rows (non-decreasing, 0 … 1).
    ``lookups_per_batch`` = batch size x pooling factor x coverage.

    ``fine_cdf_x``/``fine_cdf_c`` (optional, same rules) are the same access CDF at more row
    fractions, from the same source (the Zipf law of a synthetic table, the trace's counts of a
    profiled one). The planner uses them only for the tables it refines (:meth:`refined`,
    :func:`build_options`); empty means the table cannot be refined.
    """

    name: str
    rows: int
    dim: int
    lookups_per_batch: float
    cdf_x: tuple[float, ...]
    cdf_c: tuple[float, ...]
    bytes_per_elem: int = 4
    pooling: float = 1.0
    coverage: float = 1.0
    tt_ranks: tuple[int, ...] = (8, 8)
    tt_allowed: bool = True
    fine_cdf_x: tuple[float, ...] = ()
    fine_cdf_c: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        where = f"table '{self.name}'"
        if self.rows < 1 or self.dim < 1 or self.bytes_per_elem < 1:
            raise ConfigError("rows, dim and bytes_per_elem must be positive", where=where)
        if not math.isfinite(self.lookups_per_batch) or self.lookups_per_batch < 0:
            raise ConfigError("lookups_per_batch must be finite and >= 0", where=where)
        x = np.asarray(self.cdf_x, dtype=np.float64)
        c = np.asarray(self.cdf_c, dtype=np.float64)
        _check_cdf(x, c, where, "cdf")
        if self.fine_cdf_x or self.fine_cdf_c:
            fx = np.asarray(self.fine_cdf_x, dtype=np.float64)
            fc = np.asarray(self.fine_cdf_c, dtype=np.float64)
            _check_cdf(fx, fc, where, "fine_cdf")

    def refined(self) -> TableStat:
        """This table with the union of its breakpoints and the finer ones (no finer CDF left).

        Every breakpoint of ``cdf_x`` is kept with its own share, so the refined table offers
        every cut of the coarse one (a superset: the planner's optimum is no worse). A finer point
        is dropped when it rounds to the same number of rows as a kept point (the first one per row
        count is kept). Raises :class:`ConfigError` when the merged curve is not non-decreasing
        (the two CDFs disagree). Without a finer CDF the table is returned unchanged.
        """
        if not self.fine_cdf_x:
            return self
        x = np.asarray(self.cdf_x, dtype=np.float64)
        c = np.asarray(self.cdf_c, dtype=np.float64)
        fx = np.asarray(self.fine_cdf_x, dtype=np.float64)
        fc = np.asarray(self.fine_cdf_c, dtype=np.float64)
        taken = set(np.rint(x * self.rows).astype(np.int64).tolist())
        add_x, add_c = [], []
        for xv, cv, r in zip(fx, fc, np.rint(fx * self.rows).astype(np.int64), strict=True):
            if int(r) in taken:
                continue
            taken.add(int(r))
            add_x.append(xv)
            add_c.append(cv)
        mx = np.concatenate([x, np.asarray(add_x, dtype=np.float64)])
        mc = np.concatenate([c, np.asarray(add_c, dtype=np.float64)])
        order = np.argsort(mx, kind="stable")
        mx, mc = mx[order], mc[order]
        if np.any(np.diff(mc) < -1e-9):
            raise ConfigError(
                "the finer access CDF disagrees with the CDF (the merged curve decreases)",
                where=f"table '{self.name}'",
                fix="take both CDFs from the same source (recompute the profile)",
            )
        return replace(
            self,
            cdf_x=tuple(float(v) for v in mx),
            cdf_c=tuple(float(v) for v in np.maximum.accumulate(mc)),
            fine_cdf_x=(),
            fine_cdf_c=(),
        )

    @property
    def row_bytes(self) -> int:
        return self.dim * self.bytes_per_elem

    @property
    def table_bytes(self) -> int:
        return self.rows * self.row_bytes

    @cached_property
    def tt_spec(self) -> TTSpec:
        """The TT codec of this table (shapes resolved by the functional model)."""
        return TTSpec(ranks=list(self.tt_ranks)).resolved(self.rows, self.dim)

    @cached_property
    def tt_cost(self) -> CodecCost:
        """Per-lookup TT cost as the simulator charges it (simrec.functional.spec)."""
        return self.tt_spec.cost(self.rows, self.dim)

    @property
    def tt_pq(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        s = self.tt_spec
        return tuple(s.p_shapes or ()), tuple(s.q_shapes or ())

    @property
    def tt_params(self) -> int:
        return int(self.tt_spec.params(self.rows, self.dim))

    @property
    def tt_bytes(self) -> int:
        """Bytes of the TT cores (fp32, as the functional model stores them)."""
        return int(self.tt_cost.state_bytes)

    @property
    def tt_ratio(self) -> float:
        """Compression ratio CR = table bytes / TT bytes (screc.md §2)."""
        return self.table_bytes / self.tt_bytes

    @property
    def tt_macs_per_row(self) -> int:
        return int(round(self.tt_cost.flops_per_lookup / 2))

    @property
    def tt_read_bytes_per_row(self) -> int:
        """Bytes read from the TT cores per rebuilt row: one R_{k-1} x q_k x R_k slice per core."""
        return int(self.tt_cost.bytes_per_lookup)


@dataclass(frozen=True)
class Tier:
    """One memory tier of a device. SI units: bytes, bytes/s, seconds, joules.

    ``row_bandwidth`` (optional) gives the effective bandwidth for a row size (e.g. a GPU's gather
    efficiency curve from the hardware config); otherwise ``bandwidth_Bps`` holds for every size.
    """

    name: str
    capacity_bytes: float
    bandwidth_Bps: float
    access_s: float = 0.0
    granule_bytes: int = 1
    channel: str | None = None
    energy_per_byte_J: float = 0.0
    energy_per_access_J: float = 0.0
    row_bandwidth: Callable[[int], float] | None = field(default=None, compare=False, hash=False)

    @property
    def channel_name(self) -> str:
        return self.channel or self.name

    def lookup_s(self, row_bytes: int) -> float:
        """Seconds of channel time per random row read (read amplification to the granule)."""
        g = max(int(self.granule_bytes), 1)
        eff = -(-int(row_bytes) // g) * g
        bw = self.row_bandwidth(int(row_bytes)) if self.row_bandwidth else self.bandwidth_Bps
        return max(eff / bw, self.access_s)

    def lookup_J(self, row_bytes: int) -> float:
        g = max(int(self.granule_bytes), 1)
        eff = -(-int(row_bytes) // g) * g
        return eff * self.energy_per_byte_J + self.energy_per_access_J


@dataclass(frozen=True)
class CoreTemplate:
    """One core configuration of a device (e.g. FPGA kernels: EMB vs TT-EMB cores).

    ``speed`` maps a channel name to the fraction of its bandwidth this template's memory-centric
    cores can drive (default 1); ``tt_macs_per_s`` is the MAC rate of its compute-centric cores;
    ``resources`` what it uses of the device budget; ``reserved_bytes`` tier -> bytes of buffers.
    """

    name: str
    mem_cores: int = 1
    tt_cores: int = 0
    mlp_cores: int = 0
    tt_macs_per_s: float = 0.0
    speed: Mapping[str, float] = field(default_factory=dict)
    resources: Mapping[str, float] = field(default_factory=dict)
    reserved_bytes: Mapping[str, float] = field(default_factory=dict)

    def rate(self, resource: str) -> float:
        if resource == TT_RESOURCE:
            return float(self.tt_macs_per_s)
        return float(self.speed.get(resource, 1.0))

    def __hash__(self) -> int:
        return hash(
            (
                self.name,
                self.mem_cores,
                self.tt_cores,
                self.mlp_cores,
                self.tt_macs_per_s,
                tuple(sorted(self.speed.items())),
                tuple(sorted(self.resources.items())),
                tuple(sorted(self.reserved_bytes.items())),
            )
        )


@dataclass(frozen=True)
class Device:
    """A device: tiers fastest first, core templates, resource budget, output link to the host.

    ``tt_tiers`` names the tiers that may hold TT cores (empty: TT is not possible here).
    With no templates the device has one implicit full-speed template without TT cores.
    """

    name: str
    tiers: tuple[Tier, ...]
    templates: tuple[CoreTemplate, ...] = ()
    resource_budget: Mapping[str, float] = field(default_factory=dict)
    output_Bps: float | None = None
    tt_tiers: tuple[str, ...] = ()
    energy_per_mac_J: float = 0.0
    pool_lanes: int = 0
    pool_clock_hz: float = 0.0
    pool_fn: Callable[[int], float] | None = field(default=None, compare=False, hash=False)
    kind: str | None = None
    fixed_s: float = 0.0

    def __hash__(self) -> int:
        return hash((self.name, *self.signature()))

    def pool_s(self, dim: int) -> float:
        """Seconds of one memory-centric core (or of the pooling processor) to add one raw row."""
        if self.pool_fn is not None:
            return float(self.pool_fn(int(dim)))
        if not self.pool_lanes:
            return 0.0
        return math.ceil(dim / self.pool_lanes) / self.pool_clock_hz

    def signature(self) -> tuple[Any, ...]:
        """Everything but the name: identical signatures share one option set."""
        return (
            self.tiers,
            self.templates,
            tuple(sorted(self.resource_budget.items())),
            self.output_Bps,
            self.tt_tiers,
            self.energy_per_mac_J,
            self.pool_lanes,
            self.pool_clock_hz,
            id(self.pool_fn) if self.pool_fn is not None else None,
            self.fixed_s,
            tuple(id(t.row_bandwidth) for t in self.tiers if t.row_bandwidth is not None),
            self.kind,
        )

    @property
    def channels(self) -> tuple[str, ...]:
        seen: list[str] = []
        for t in self.tiers:
            if t.channel_name not in seen:
                seen.append(t.channel_name)
        return tuple(seen)

    @property
    def resources(self) -> tuple[str, ...]:
        """Work dimensions: its channels, the pooling (memory-centric) cores if charged, TT cores."""
        pool = (POOL_RESOURCE,) if (self.pool_lanes or self.pool_fn is not None) else ()
        return (*self.channels, *pool, TT_RESOURCE)

    def usable_templates(self) -> tuple[CoreTemplate, ...]:
        """Templates within the resource budget (the implicit one if none are declared)."""
        if not self.templates:
            return (CoreTemplate(name="default"),)
        ok = []
        for m in self.templates:
            if all(
                m.resources.get(r, 0.0) <= self.resource_budget.get(r, math.inf) + 1e-9
                for r in m.resources
            ):
                ok.append(m)
        if not ok:
            raise ConfigError(
                "no core template fits the device's resource budget",
                where=f"device '{self.name}'",
                fix="lower the cores per template or raise the resource budget in the hardware file",
            )
        return tuple(ok)


@dataclass(frozen=True)
class ShardProblem:
    """Tables x devices x tiers, with the batch size and the energy weight (seconds per joule).

    ``fine_tables`` chooses which tables with a finer access CDF (``TableStat.fine_cdf_x``) are
    planned at their finer breakpoints: ``None`` (default) by the automatic rule of
    :func:`build_options` (``FINE_MIN_FAST_SHARE``, ``FINE_OPTION_BUDGET``), ``0`` none, ``N`` the
    ``N`` largest by bytes (no threshold, no budget).
    """

    tables: tuple[TableStat, ...]
    devices: tuple[Device, ...]
    batch_size: int
    energy_weight: float = 0.0
    allow_tt: bool = True
    fine_tables: int | None = None

    def __post_init__(self) -> None:
        if self.fine_tables is not None and int(self.fine_tables) < 0:
            raise ConfigError(
                f"fine_tables must be >= 0 or None, got {self.fine_tables}",
                where="fine_tables",
                fix="give None (automatic), 0 (off) or a number of tables",
            )
        if not self.tables:
            raise ConfigError("the problem has no tables", fix="profile a trace with tables")
        if not self.devices:
            raise ConfigError("the problem has no devices", fix="list devices in the hardware file")
        names = [t.name for t in self.tables]
        if len(set(names)) != len(names):
            raise ConfigError("table names must be unique", fix="rename the duplicated tables")
        for d in self.devices:
            if not d.tiers:
                raise ConfigError("a device needs at least one tier", where=f"device '{d.name}'")

    @property
    def num_tables(self) -> int:
        return len(self.tables)

    @property
    def num_devices(self) -> int:
        return len(self.devices)


# --------------------------------------------------------------------------------------------------
# Placement options (the cost model, precomputed)
# --------------------------------------------------------------------------------------------------


@dataclass
class ClassOptions:
    """Options of every table on one device class (devices with identical signatures)."""

    device: Device
    templates: tuple[CoreTemplate, ...]
    resources: tuple[str, ...]
    # per table t: arrays over options o
    fmt: list[np.ndarray]  # 0 raw, 1 TT
    rows: list[np.ndarray]  # [O, n_tiers] rows per tier (raw); 0 for TT
    bytes: list[np.ndarray]  # [O, n_tiers]
    work: list[np.ndarray]  # [O, n_resources] channel seconds / MACs
    energy: list[np.ndarray]  # [O] joules per batch
    output_s: np.ndarray  # [T] seconds per batch on the output link
    tt_tier: list[np.ndarray]  # [O] tier index holding TT cores (-1 raw)
    cut_index: list[dict[tuple[int, ...], int]]  # raw cut rows -> option index
    # template data [M, n_resources] rates and [M, n_tiers] reserved bytes
    rates: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    reserved: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    capacity: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def num_options(self, t: int) -> int:
        return int(self.fmt[t].shape[0])


@dataclass
class OptionSet:
    """Options for all device classes; ``cls_of[j]`` is the class index of device ``j``."""

    problem: ShardProblem
    classes: list[ClassOptions]
    cls_of: list[int]
    #: names of the tables planned at their finer breakpoints (``problem`` holds them refined)
    refined: tuple[str, ...] = ()

    def for_device(self, j: int) -> ClassOptions:
        return self.classes[self.cls_of[j]]

    def total_options(self) -> int:
        return sum(
            self.for_device(j).num_options(t)
            for j in range(self.problem.num_devices)
            for t in range(self.problem.num_tables)
        )


def table_breaks(tab: TableStat) -> tuple[np.ndarray, np.ndarray]:
    """Distinct hot-row counts ``r_k`` (0 … rows) at the CDF breakpoints and their shares ``c_k``."""
    x = np.asarray(tab.cdf_x, dtype=np.float64)
    c = np.asarray(tab.cdf_c, dtype=np.float64)
    r = np.rint(x * tab.rows).astype(np.int64)
    r[0], r[-1] = 0, tab.rows
    r = np.maximum.accumulate(r)
    # unique row counts; keep the largest access share at each (the CDF is non-decreasing)
    uniq, idx = np.unique(r, return_index=True)
    last = np.r_[idx[1:] - 1, r.size - 1]
    ck = np.maximum.accumulate(np.clip(c[last], 0.0, 1.0))
    ck[0] = 0.0
    ck[-1] = 1.0
    return uniq, ck


def _raw_options(
    tab: TableStat, dev: Device, resources: tuple[str, ...], cap: np.ndarray
) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Enumerate raw cut vectors over the table's breakpoints; prune duplicates and misfits."""
    n = len(dev.tiers)
    rk, ck = table_breaks(tab)
    K = rk.size
    rb = tab.row_bytes
    ell = tab.lookups_per_batch
    per_s = np.array([t.lookup_s(rb) for t in dev.tiers])
    per_J = np.array([t.lookup_J(rb) for t in dev.tiers])
    ch_idx = np.array([resources.index(t.channel_name) for t in dev.tiers])
    pool_i = resources.index(POOL_RESOURCE) if POOL_RESOURCE in resources else -1
    # cut vectors: nondecreasing indices into rk of length n-1 (last tier takes the rest)
    combos: list[tuple[int, ...]] = []

    def rec(start: int, acc: tuple[int, ...]) -> None:
        if len(acc) == n - 1:
            combos.append(acc)
            return
        i = len(acc)
        prev_rows = rk[acc[-1]] if acc else 0
        for k in range(start, K):
            b = (rk[k] - prev_rows) * rb
            if b > cap[i] + 1e-6:
                break
            rec(k, (*acc, k))

    rec(0, ())
    cuts_rows: list[tuple[int, ...]] = []
    rows_l, bytes_l, work_l, en_l = [], [], [], []
    for cv in combos:
        bounds = [0, *cv, K - 1]
        rows_t = np.array([rk[bounds[i + 1]] - rk[bounds[i]] for i in range(n)], dtype=np.int64)
        if rows_t[-1] * rb > cap[-1] + 1e-6:
            continue
        share = np.array([ck[bounds[i + 1]] - ck[bounds[i]] for i in range(n)])
        w = np.zeros(len(resources))
        np.add.at(w, ch_idx, ell * share * per_s)
        if pool_i >= 0:
            w[pool_i] += ell * dev.pool_s(tab.dim)
        cuts_rows.append(tuple(int(rk[b]) for b in cv))
        rows_l.append(rows_t)
        bytes_l.append(rows_t * float(rb))
        work_l.append(w)
        en_l.append(float(ell * np.dot(share, per_J)))
    if not rows_l:
        z = np.zeros((0, n))
        return [], z.astype(np.int64), z, np.zeros((0, len(resources))), np.zeros(0)
    return cuts_rows, np.array(rows_l), np.array(bytes_l), np.array(work_l), np.array(en_l)


def _pareto_keep(bytes_: np.ndarray, work: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Indices of options not dominated in (bytes per tier, work per resource, energy)."""
    v = np.concatenate(
        [
            bytes_ / max(bytes_.max(), 1.0),
            work / np.maximum(work.max(0), 1e-300),
            (energy / max(energy.max(), 1e-300))[:, None],
        ],
        axis=1,
    )
    o = v.shape[0]
    if o <= 1:
        return np.arange(o)
    le = np.all(v[:, None, :] <= v[None, :, :] + 1e-12, axis=2)  # le[a, b]: a <= b everywhere
    lt = np.any(v[:, None, :] < v[None, :, :] - 1e-12, axis=2)
    dom = le & lt  # a dominates b
    dominated = dom.any(axis=0)
    return np.flatnonzero(~dominated)


def build_options(problem: ShardProblem, prune: bool = True) -> OptionSet:
    """Precompute every table's placement options on every device class (the cost model).

    Tables chosen by :func:`fine_candidates` are then refined (:meth:`TableStat.refined`) in that
    order: under the automatic rule (``problem.fine_tables is None``) each is kept while the
    extra options of all refined tables on all devices stay within ``FINE_OPTION_BUDGET`` of the
    coarse options, and the first that would exceed it ends the refinement; with
    ``fine_tables=N`` all N are refined. The returned ``OptionSet.problem`` holds the refined
    tables (with ``fine_tables=0``), so heuristics, MIP and plan all see the same breakpoints.
    """
    sig_to_cls: dict[Any, int] = {}
    cls_of: list[int] = []
    classes: list[ClassOptions] = []
    for dev in problem.devices:
        sig = dev.signature()
        if sig not in sig_to_cls:
            sig_to_cls[sig] = len(classes)
            classes.append(_class_options(problem, dev, prune))
        cls_of.append(sig_to_cls[sig])
    cand = fine_candidates(problem, classes)
    if not cand:
        return OptionSet(problem, classes, cls_of)
    ndev = np.bincount(np.asarray(cls_of), minlength=len(classes))
    coarse = sum(
        int(ndev[k]) * co.num_options(t)
        for k, co in enumerate(classes)
        for t in range(problem.num_tables)
    )
    budget = FINE_OPTION_BUDGET * coarse if problem.fine_tables is None else math.inf
    tables = list(problem.tables)
    used = 0.0
    names: list[str] = []
    one = replace(problem, fine_tables=0)
    for t in cand:
        tab = tables[t].refined()
        sub = [_class_options(replace(one, tables=(tab,)), co.device, prune) for co in classes]
        extra = sum(
            int(ndev[k]) * (sub[k].num_options(0) - co.num_options(t))
            for k, co in enumerate(classes)
        )
        if used + extra > budget:
            break
        used += extra
        tables[t] = tab
        names.append(tab.name)
        for co, so in zip(classes, sub, strict=True):
            for attr in ("fmt", "rows", "bytes", "work", "energy", "tt_tier", "cut_index"):
                getattr(co, attr)[t] = getattr(so, attr)[0]
    return OptionSet(
        replace(problem, tables=tuple(tables), fine_tables=0), classes, cls_of, tuple(names)
    )


def fine_candidates(
    problem: ShardProblem, classes: Sequence[ClassOptions] | None = None
) -> list[int]:
    """Indices of the tables to try at finer breakpoints, in the order they are tried.

    Only tables with a finer CDF (``TableStat.fine_cdf_x``) qualify, largest (bytes) first, ties
    by index. ``problem.fine_tables``: 0 gives none, N the first N. ``None`` (the automatic rule)
    keeps those whose bytes are at least ``FINE_MIN_FAST_SHARE`` of the smallest fast tier: the
    first tier's capacity less the smallest template reservation there, over the devices with
    two or more tiers (none without such a device: a single tier has no cut to refine). Such a
    table's hot band in a fast tier grows in steps of its own size at ratio-2 breakpoints, steps
    comparable to the tier; smaller tables already move in small steps. ``classes`` (the coarse
    options of :func:`build_options`) saves recomputing the reservations.
    """
    if problem.fine_tables == 0:
        return []
    cand = [t for t, tab in enumerate(problem.tables) if tab.fine_cdf_x]
    cand.sort(key=lambda t: (-problem.tables[t].table_bytes, t))
    if problem.fine_tables is not None:
        return cand[: int(problem.fine_tables)]
    fast = []
    for d in problem.devices if classes is None else [co.device for co in classes]:
        if len(d.tiers) < 2:
            continue
        res = [m.reserved_bytes.get(d.tiers[0].name, 0.0) for m in d.usable_templates()]
        fast.append(float(d.tiers[0].capacity_bytes) - min(res))
    if not fast:
        return []
    thr = FINE_MIN_FAST_SHARE * min(fast)
    return [t for t in cand if problem.tables[t].table_bytes >= thr]


def _class_options(problem: ShardProblem, dev: Device, prune: bool) -> ClassOptions:
    templates = dev.usable_templates()
    resources = dev.resources
    tier_names = [t.name for t in dev.tiers]
    for m in templates:
        for k in m.reserved_bytes:
            if k not in tier_names:
                raise ConfigError(
                    f"template '{m.name}' reserves bytes in unknown tier '{k}'",
                    where=f"device '{dev.name}'",
                    fix=f"use one of {tier_names}",
                )
    for k in dev.tt_tiers:
        if k not in tier_names:
            raise ConfigError(
                f"tt_tiers names unknown tier '{k}'",
                where=f"device '{dev.name}'",
                fix=f"use one of {tier_names}",
            )
    rates = np.array([[m.rate(r) for r in resources] for m in templates])
    reserved = np.array([[m.reserved_bytes.get(n, 0.0) for n in tier_names] for m in templates])
    capacity = np.array([t.capacity_bytes for t in dev.tiers], dtype=np.float64)
    cap_free = capacity - reserved.min(axis=0)
    tt_possible = problem.allow_tt and bool(dev.tt_tiers) and bool(np.any(rates[:, -1] > 0))
    fmt, rows, bytes_, work, energy, tt_tier, cut_index = [], [], [], [], [], [], []
    out_s = np.zeros(problem.num_tables)
    for ti, tab in enumerate(problem.tables):
        if dev.output_Bps:
            out_s[ti] = problem.batch_size * tab.row_bytes / dev.output_Bps
        cuts, r, b, w, e = _raw_options(tab, dev, resources, cap_free)
        f = np.zeros(len(cuts), dtype=np.int8)
        tti = np.full(len(cuts), -1, dtype=np.int64)
        if tt_possible and tab.tt_allowed:
            extra_b, extra_w, extra_e, extra_t = [], [], [], []
            for tn in dev.tt_tiers:
                i = tier_names.index(tn)
                if tab.tt_bytes > cap_free[i]:
                    continue
                bb = np.zeros(len(dev.tiers))
                bb[i] = tab.tt_bytes
                ww = np.zeros(len(resources))
                tier = dev.tiers[i]
                ell = tab.lookups_per_batch
                ww[resources.index(tier.channel_name)] += ell * tier.lookup_s(
                    tab.tt_read_bytes_per_row
                )
                ww[-1] += ell * tab.tt_macs_per_row
                ee = ell * (
                    tier.lookup_J(tab.tt_read_bytes_per_row)
                    + tab.tt_macs_per_row * dev.energy_per_mac_J
                )
                extra_b.append(bb)
                extra_w.append(ww)
                extra_e.append(ee)
                extra_t.append(i)
            if extra_b:
                nt = len(extra_b)
                r = np.vstack([r, np.zeros((nt, len(dev.tiers)), dtype=np.int64)])
                b = np.vstack([b, np.array(extra_b)])
                w = np.vstack([w, np.array(extra_w)])
                e = np.concatenate([e, np.array(extra_e)])
                f = np.concatenate([f, np.ones(nt, dtype=np.int8)])
                tti = np.concatenate([tti, np.array(extra_t, dtype=np.int64)])
        keep = np.arange(len(f))
        if prune and len(f) > 1:
            keep = _pareto_keep(b, w, e)
        index = {}
        kept_set = {int(k): n for n, k in enumerate(keep)}
        # every raw cut maps to a kept option that is no worse (itself or a dominator)
        for o, cv in enumerate(cuts):
            if o in kept_set:
                index[cv] = kept_set[o]
            else:
                dom = [
                    n
                    for n, k in enumerate(keep)
                    if np.all(b[k] <= b[o] + 1e-9) and np.all(w[k] <= w[o] * (1 + 1e-12) + 1e-300)
                ]
                if dom:
                    index[cv] = dom[0]
        fmt.append(f[keep])
        rows.append(r[keep])
        bytes_.append(b[keep])
        work.append(w[keep])
        energy.append(e[keep])
        tt_tier.append(tti[keep])
        cut_index.append(index)
    return ClassOptions(
        device=dev,
        templates=templates,
        resources=resources,
        fmt=fmt,
        rows=rows,
        bytes=bytes_,
        work=work,
        energy=energy,
        output_s=out_s,
        tt_tier=tt_tier,
        cut_index=cut_index,
        rates=rates,
        reserved=reserved,
        capacity=capacity,
    )


# --------------------------------------------------------------------------------------------------
# Assignments and their evaluation
# --------------------------------------------------------------------------------------------------


@dataclass
class Assignment:
    """A complete plan in option space: device and option per table, template per device."""

    device: np.ndarray  # [T] int
    option: np.ndarray  # [T] int, index into the device class's options of that table
    template: np.ndarray  # [J] int

    def copy(self) -> Assignment:
        return Assignment(self.device.copy(), self.option.copy(), self.template.copy())


@dataclass
class Evaluation:
    """The cost model's verdict on an assignment."""

    device_s: np.ndarray  # [J] seconds per batch
    makespan_s: float
    energy_J: float
    objective: float
    feasible: bool
    violations: list[str]
    tier_bytes: list[np.ndarray]  # per device, bytes per tier (incl. reserved)


def device_time(
    co: ClassOptions, tables: Sequence[int], options: Sequence[int], m: int
) -> tuple[float, float]:
    """(seconds per batch, joules per batch) of one device running ``tables`` with template m."""
    n_res = len(co.resources)
    w = np.zeros(n_res)
    e = 0.0
    out = 0.0
    for t, o in zip(tables, options, strict=True):
        w += co.work[t][o]
        e += float(co.energy[t][o])
        out += float(co.output_s[t])
    rate = co.rates[m]
    with np.errstate(divide="ignore", invalid="ignore"):
        busy = np.where(w > 0, w / rate, 0.0)
    base = out + float(co.device.fixed_s)
    return base + float(np.max(busy)) if busy.size else base, e


def evaluate(opts: OptionSet, a: Assignment) -> Evaluation:
    """Device times, makespan, energy, objective and capacity check of an assignment."""
    p = opts.problem
    J = p.num_devices
    dev_s = np.zeros(J)
    en = 0.0
    viol: list[str] = []
    tb: list[np.ndarray] = []
    if a.device.shape != (p.num_tables,):
        raise ValueError("assignment has the wrong number of tables")
    for j in range(J):
        co = opts.for_device(j)
        ts = np.flatnonzero(a.device == j)
        os_ = a.option[ts]
        m = int(a.template[j])
        s, e = device_time(co, ts, os_, m)
        dev_s[j] = s
        en += e
        used = co.reserved[m].copy()
        for t, o in zip(ts, os_, strict=True):
            used += co.bytes[t][o]
        tb.append(used)
        for i, tier in enumerate(co.device.tiers):
            if used[i] > tier.capacity_bytes * (1 + 1e-9) + 1e-6:
                viol.append(
                    f"device '{p.devices[j].name}' tier '{tier.name}': {used[i]:.0f} B > "
                    f"{tier.capacity_bytes:.0f} B"
                )
    ms = float(dev_s.max())
    return Evaluation(dev_s, ms, en, ms + p.energy_weight * en, not viol, viol, tb)


# --------------------------------------------------------------------------------------------------
# Feasibility (actionable errors, TorchRec-style)
# --------------------------------------------------------------------------------------------------


def _fmt_bytes(b: float) -> str:
    for unit, s in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= s:
            return f"{b / s:.2f} {unit} ({b:,.0f} B)"
    return f"{b:,.0f} B"


def check_feasibility(opts: OptionSet) -> None:
    """Raise :class:`ConfigError` naming tables/tiers, shortfall and options if no plan can exist.

    Checks (necessary conditions): every table has an option on some device; the tables' smallest
    footprints fit in all tiers together.
    """
    p = opts.problem
    misfits = []
    for t, tab in enumerate(p.tables):
        if all(opts.for_device(j).num_options(t) == 0 for j in range(p.num_devices)):
            best = max(
                float(opts.for_device(j).capacity.sum() - opts.for_device(j).reserved.min(0).sum())
                for j in range(p.num_devices)
            )
            misfits.append((tab, best))
    if misfits:
        names = ", ".join(f"'{t.name}' ({_fmt_bytes(t.table_bytes)})" for t, _ in misfits[:8])
        more = f" and {len(misfits) - 8} more" if len(misfits) > 8 else ""
        tab, best = misfits[0]
        short = tab.table_bytes - best
        tt_hint = (
            f"store it in TT format (TT size {_fmt_bytes(tab.tt_bytes)}, needs a device with "
            "TT cores and tt_tiers)"
            if tab.tt_allowed
            else "allow TT for it"
        )
        raise ConfigError(
            f"{len(misfits)} table(s) fit on no device: {names}{more}; the largest device holds "
            f"{_fmt_bytes(best)}, a shortfall of {_fmt_bytes(max(short, 0))} for '{tab.name}' "
            "(or no tier split fits its per-tier capacities)",
            where="sharding problem",
            fix=f"use a device with larger tiers, {tt_hint}, or split the table row-wise into "
            "several tables before planning (this planner places each table on one device)",
        )
    need = 0.0
    for t in range(p.num_tables):
        need += min(
            float(opts.for_device(j).bytes[t].sum(axis=1).min())
            for j in range(p.num_devices)
            if opts.for_device(j).num_options(t)
        )
    have = 0.0
    for j in range(p.num_devices):
        co = opts.for_device(j)
        have += float(co.capacity.sum() - co.reserved.min(0).sum())
    if need > have * (1 + 1e-12):
        tiers = "; ".join(
            f"{d.name}: " + ", ".join(f"{t.name} {_fmt_bytes(t.capacity_bytes)}" for t in d.tiers)
            for d in p.devices[:4]
        )
        raise ConfigError(
            f"the model needs at least {_fmt_bytes(need)} but all tiers of all "
            f"{p.num_devices} devices hold {_fmt_bytes(have)}: a shortfall of "
            f"{_fmt_bytes(need - have)} (tiers: {tiers}{' …' if p.num_devices > 4 else ''})",
            where="sharding problem",
            fix="add devices or larger tiers, allow TT storage for more tables, or shrink tables "
            "(hashing/quantisation) before planning",
        )


# --------------------------------------------------------------------------------------------------
# Adapters: profile -> tables, hardware config -> devices
# --------------------------------------------------------------------------------------------------


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        if isinstance(obj, Mapping) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    return default


def tables_from_profile(
    profile: Any,
    batch_size: int | None = None,
    bytes_per_elem: int | None = None,
    tt_ranks: tuple[int, ...] = (8, 8),
    tt_allowed: bool = True,
) -> tuple[tuple[TableStat, ...], int]:
    """Build :class:`TableStat` s from a trace profile (simrec.trace.stats ``TraceProfile``).

    Read duck-typed so it works with the profile object or its dict form: per table ``name``,
    ``rows``, ``dim``, look-ups per batch (``lookups_per_batch``, or ``lookups`` / batches),
    ``pooling`` (mean), ``coverage`` and the access CDF at breakpoints (``cdf_x``/``cdf_c`` or
    ``cdf_breakpoints``/``cdf``). The finer CDF of the profile (per table ``fine_cdf`` at the
    profile's ``fine_cdf_breakpoints``, simrec.trace.stats) becomes ``TableStat.fine_cdf_x``/
    ``fine_cdf_c`` when present, for the tables the planner refines. Returns (tables, batch_size).
    """
    tabs_in = _get(profile, "tables")
    if tabs_in is None:
        raise ConfigError(
            "the profile has no tables", fix="profile a trace with simrec trace stats"
        )
    bs = int(batch_size or _get(profile, "batch_size", default=0) or 0)
    nb = _get(profile, "num_batches", "batches", default=None)
    out = []
    for i, tp in enumerate(tabs_in):
        name = str(_get(tp, "name", default=f"t{i}"))
        rows = int(_get(tp, "rows"))
        dim = int(_get(tp, "dim"))
        bpe = bytes_per_elem or _dtype_bytes(_get(tp, "dtype", default="float32"))
        lpb = _get(tp, "lookups_per_batch", "mean_lookups_per_batch", default=None)
        if lpb is None:
            look = _get(tp, "lookups", default=None)
            if look is None or not nb:
                raise ConfigError(
                    "the profile gives no look-ups per batch",
                    where=f"table '{name}'",
                    fix="profile the trace again with simrec trace stats",
                )
            lpb = float(look) / float(nb)
        x = _get(tp, "cdf_x", "cdf_breakpoints", "cdf_row_fraction", default=None)
        c = _get(tp, "cdf_c", "cdf", "cdf_access_share", default=None)
        if x is None or c is None:
            raise ConfigError(
                "the profile has no access CDF",
                where=f"table '{name}'",
                fix="profile the trace again with simrec trace stats",
            )
        x = np.asarray(x, dtype=np.float64)
        c = np.asarray(c, dtype=np.float64)
        if not np.all(np.isfinite(c)):  # a table without lookups: any CDF will do
            c = x.copy()
        if x[0] > 0:
            x, c = np.r_[0.0, x], np.r_[0.0, c]
        if x[-1] < 1:
            x, c = np.r_[x, 1.0], np.r_[c, 1.0]
        fx, fc = _fine_profile_cdf(profile, tp)
        out.append(
            TableStat(
                name=name,
                rows=rows,
                dim=dim,
                bytes_per_elem=int(bpe),
                lookups_per_batch=float(lpb),
                pooling=float(
                    _get(tp, "pooling", "pooling_mean_nonempty", "mean_pooling", default=1.0)
                ),
                coverage=float(_get(tp, "coverage", default=1.0)),
                cdf_x=tuple(float(v) for v in x),
                cdf_c=tuple(float(v) for v in c),
                tt_ranks=tt_ranks,
                tt_allowed=tt_allowed,
                fine_cdf_x=fx,
                fine_cdf_c=fc,
            )
        )
    return tuple(out), bs


def _fine_profile_cdf(profile: Any, tp: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A table's finer access CDF from the profile (``fine_cdf`` at ``fine_cdf_breakpoints``, of
    the table or else of the profile), with 0 and 1 added; empty when the profile has none (older
    profiles) or the table had no look-ups."""
    fc = _get(tp, "fine_cdf", default=None)
    fx = _get(tp, "fine_cdf_breakpoints", default=None)
    if fx is None:
        fx = _get(profile, "fine_cdf_breakpoints", default=None)
    if fc is None or fx is None:
        return (), ()
    fx = np.asarray(fx, dtype=np.float64)
    fc = np.asarray([np.nan if v is None else v for v in fc], dtype=np.float64)
    if fx.shape != fc.shape or fx.size == 0 or not np.all(np.isfinite(fc)):
        return (), ()
    if fx[0] > 0:
        fx, fc = np.r_[0.0, fx], np.r_[0.0, fc]
    if fx[-1] < 1:
        fx, fc = np.r_[fx, 1.0], np.r_[fc, 1.0]
    return tuple(float(v) for v in fx), tuple(float(v) for v in fc)


def _dtype_bytes(dt: Any) -> int:
    try:
        return int(np.dtype(str(dt)).itemsize)
    except TypeError:
        return 4


def devices_from_hw(hw: Any) -> tuple[Device, ...]:
    """The one adapter from the hardware description to planner devices.

    Accepts the loaded hardware config (``simrec.hw``; read duck-typed: ``devices`` each with
    ``name``, ``count``, ``tiers`` [name, capacity, bandwidth, access latency/IOPS floor, granule,
    channel, energy], optional ``templates``/``core_templates``, ``resources``/``resource_budget``,
    ``output_bandwidth``/``link_bandwidth``, ``tt_tiers``) or a plain dict of the same shape with
    SI numbers. A device with ``count: N`` becomes N identical devices ``name0 … name{N-1}``.
    """
    if hasattr(hw, "memories_of") and hasattr(hw, "params"):
        return devices_from_system(hw)
    devs_in = _get(hw, "devices")
    if not devs_in:
        raise ConfigError(
            "the hardware description lists no devices",
            where="field devices",
            fix="add at least one device with memory tiers",
        )
    if isinstance(devs_in, Mapping):
        devs_in = [dict(v, name=_get(v, "name", default=k)) for k, v in devs_in.items()]
    out: list[Device] = []
    for di, d in enumerate(devs_in):
        name = str(_get(d, "name", default=f"dev{di}"))
        where = f"field devices[{di}] ('{name}')"
        tiers_in = _get(d, "tiers", "memory", default=None)
        if not tiers_in:
            raise ConfigError("device has no memory tiers", where=where, fix="add tiers")
        if isinstance(tiers_in, Mapping):
            tiers_in = [dict(v, name=_get(v, "name", default=k)) for k, v in tiers_in.items()]
        tiers = []
        for ti, t in enumerate(tiers_in):
            tw = f"{where}.tiers[{ti}]"
            cap = _num(_get(t, "capacity_bytes", "capacity"), tw + ".capacity")
            bw = _num(_get(t, "bandwidth_Bps", "bandwidth", "random_bandwidth"), tw + ".bandwidth")
            iops = _get(t, "iops", default=None)
            acc = _get(t, "access_s", "access_time", "latency_floor", default=None)
            acc_s = float(acc) if acc is not None else (1.0 / float(iops) if iops else 0.0)
            tiers.append(
                Tier(
                    name=str(_get(t, "name", default=f"tier{ti}")),
                    capacity_bytes=cap,
                    bandwidth_Bps=bw,
                    access_s=acc_s,
                    granule_bytes=int(_get(t, "granule_bytes", "granule", default=1) or 1),
                    channel=_get(t, "channel", default=None),
                    energy_per_byte_J=float(_get(t, "energy_per_byte_J", default=0.0) or 0.0),
                    energy_per_access_J=float(_get(t, "energy_per_access_J", default=0.0) or 0.0),
                )
            )
        temps = []
        for mi, m in enumerate(_get(d, "templates", "core_templates", default=()) or ()):
            temps.append(
                CoreTemplate(
                    name=str(_get(m, "name", default=f"cfg{mi}")),
                    mem_cores=int(_get(m, "mem_cores", default=1)),
                    tt_cores=int(_get(m, "tt_cores", default=0)),
                    tt_macs_per_s=float(_get(m, "tt_macs_per_s", default=0.0) or 0.0),
                    speed=dict(_get(m, "speed", default={}) or {}),
                    resources=dict(_get(m, "resources", default={}) or {}),
                    reserved_bytes=dict(_get(m, "reserved_bytes", default={}) or {}),
                )
            )
        count = int(_get(d, "count", default=1) or 1)
        base = dict(
            tiers=tuple(tiers),
            templates=tuple(temps),
            resource_budget=dict(_get(d, "resource_budget", "resources", default={}) or {}),
            output_Bps=_get(d, "output_Bps", "output_bandwidth", "link_bandwidth", default=None),
            tt_tiers=tuple(_get(d, "tt_tiers", default=()) or ()),
            energy_per_mac_J=float(_get(d, "energy_per_mac_J", default=0.0) or 0.0),
        )
        if base["output_Bps"] is not None:
            base["output_Bps"] = float(base["output_Bps"])
        for k in range(count):
            out.append(Device(name=f"{name}{k}" if count > 1 else name, **base))
    return tuple(out)


def _num(v: Any, where: str) -> float:
    if v is None:
        raise ConfigError("missing number", where=where, fix="give it in SI units")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"not a number: {v!r}", where=where, fix="give it in SI units") from None
    if not (f > 0 and math.isfinite(f)):
        raise ConfigError(f"must be positive and finite, got {v!r}", where=where)
    return f


# --------------------------------------------------------------------------------------------------
# Presets and synthetic instances (for tests, benchmarks and examples)
# --------------------------------------------------------------------------------------------------


def two_tier_device(
    name: str,
    fast_bytes: float,
    slow_bytes: float,
    fast_Bps: float = 19.2e9,
    slow_Bps: float = 0.192e9,
    output_Bps: float | None = None,
) -> Device:
    """A plain fast/slow device (the probe's shape, mip-probe.md): slow tier 100x slower."""
    return Device(
        name=name,
        tiers=(
            Tier("fast", fast_bytes, fast_Bps, channel="fast"),
            Tier("slow", slow_bytes, slow_Bps, channel="slow"),
        ),
        output_Bps=output_Bps,
    )


def smartssd_device(name: str = "csd", sram_bytes: float = 8.8e6) -> Device:
    """A SmartSSD-like computational-storage device (screc.md §1.2/§4.3, data.md §5.5).

    Tiers: on-chip SRAM (BRAM+URAM ≈ 8.8 MB, screc.md §1.2 [recall]), FPGA DDR4 4 GB at
    19.2 GB/s (DDR4-2400 x64, screc.md §1.2 [recall/INF]), NAND 3.84 TB behind P2P at 2.36 GB/s
    with 4 KiB reads and the 0.05 GB/s 4 KB-transfer floor (data.md §5.5: 4 KiB / 0.05 GB/s ≈
    82 µs per isolated read; with 32 reads in flight ≈ 2.6 µs). Templates split 1,968 DSPs at
    250 MHz between memory-centric (EMB) and compute-centric (TT) cores (screc.md §4.3 [INF]).
    Numbers are modelling defaults, not measurements.
    """
    dsp, f = 1968, 250e6
    temps = []
    for mem, tt in ((4, 0), (3, 1), (2, 2), (1, 3)):
        share = tt / 4
        temps.append(
            CoreTemplate(
                name=f"emb{mem}_tt{tt}",
                mem_cores=mem,
                tt_cores=tt,
                tt_macs_per_s=share * dsp * f,
                speed={"sram": 1.0, "dram": min(1.0, mem / 2), "nand": min(1.0, mem / 2)},
                resources={"dsp": share * dsp + 16 * mem, "lut": 60e3 * mem + 80e3 * tt},
                reserved_bytes={"sram": 0.25e6 * (mem + tt)},
            )
        )
    return Device(
        name=name,
        tiers=(
            Tier("sram", sram_bytes, 100e9, channel="sram", energy_per_byte_J=1e-12),
            Tier("dram", 4e9, 19.2e9, granule_bytes=64, channel="dram", energy_per_byte_J=20e-12),
            Tier(
                "nand",
                3.84e12,
                2.36e9,
                access_s=4096 / 0.05e9 / 32,
                granule_bytes=4096,
                channel="nand",
                energy_per_byte_J=50e-12,
            ),
        ),
        templates=tuple(temps),
        resource_budget={"dsp": dsp, "lut": 523e3},
        output_Bps=3.94e9,
        tt_tiers=("sram", "dram"),
        energy_per_mac_J=1e-12,
    )


def synthetic_tables(
    num_tables: int,
    seed: int = 0,
    batch_size: int = 4096,
    rows_range: tuple[float, float] = (1e3, 4e7),
    dims: Sequence[int] = (16, 32, 64, 128),
    alpha_range: tuple[float, float] = (0.6, 1.3),
    pooling_mean: float = 15.0,
    breakpoints: int = 16,
    uniform: bool = False,
    fine_tables: int = 0,
    fine_breakpoints: int | None = None,
) -> tuple[TableStat, ...]:
    """MELS-like synthetic tables (mip-probe.md): rows log-uniform, dims from ``dims``, Zipf
    exponents uniform in ``alpha_range`` (or uniform access with ``uniform``), pooling lognormal
    with mean ``pooling_mean``. Deterministic in ``seed``.

    Every table carries its CDF at ``breakpoints + 1`` row fractions (:func:`default_breakpoints`,
    ratio 2) and, as ``fine_cdf_x``/``fine_cdf_c``, at ``fine_breakpoints + 1`` over the same range
    (default ``4 * breakpoints - 3``, ratio 2^(1/4): 61 for 16), from the same Zipf law; the
    planner refines the tables that need it (:func:`build_options`). ``fine_tables``: the that many
    largest tables (by bytes) are returned refined already (:meth:`TableStat.refined`), whatever
    the devices."""
    rng = np.random.default_rng(seed)
    lo, hi = np.log(rows_range[0]), np.log(rows_range[1])
    rows = np.exp(rng.uniform(lo, hi, num_tables)).astype(np.int64)
    dim = rng.choice(np.asarray(dims), num_tables)
    alpha = rng.uniform(*alpha_range, num_tables)
    sigma = 0.8
    pool = rng.lognormal(np.log(pooling_mean) - sigma**2 / 2, sigma, num_tables)
    x0 = default_breakpoints(breakpoints)
    nf = 4 * int(breakpoints) - 3 if fine_breakpoints is None else int(fine_breakpoints)
    xf = np.concatenate([[0.0], np.geomspace(x0[1], 1.0, max(nf, 2))])
    nbytes = rows * dim
    fine = set(np.argsort(-nbytes, kind="stable")[: max(int(fine_tables), 0)].tolist())
    out = []
    for t in range(num_tables):

        def cdf(x: np.ndarray, t: int = t) -> tuple[float, ...]:
            c = x.copy() if uniform else zipf_cdf(int(rows[t]), float(alpha[t]), x)
            return tuple(float(v) for v in c)

        tab = TableStat(
            name=f"t{t}",
            rows=int(rows[t]),
            dim=int(dim[t]),
            lookups_per_batch=float(batch_size * pool[t]),
            pooling=float(pool[t]),
            cdf_x=tuple(float(v) for v in x0),
            cdf_c=cdf(x0),
            fine_cdf_x=tuple(float(v) for v in xf),
            fine_cdf_c=cdf(xf),
        )
        out.append(tab.refined() if t in fine else tab)
    return tuple(out)


# --------------------------------------------------------------------------------------------------
# Adapters from the simulator's component parameters (the numbers the DES charges)
# --------------------------------------------------------------------------------------------------


def dram_row_seconds(
    params: Any, row_bytes: int, capacity_bytes: float, n: int = 16384, seed: int = 0
) -> float:
    """Seconds per random row read on a DRAM/HBM, from the simulator's fast-path timing bound.

    Rows of ``row_bytes`` (padded to whole bursts) at uniformly random row slots of the device are
    counted with :func:`simrec.sim.components.dram.count_chunk` and timed with
    :func:`~simrec.sim.components.dram.channel_times`; the result is the slowest channel's time
    divided by ``n``. Deterministic in ``seed``.
    """
    from simrec.sim.components.dram import channel_times, count_chunk

    bb = int(params.burst_bytes)
    nb = max(1, -(-int(row_bytes) // bb))
    slots = max(int(capacity_bytes // (nb * bb)), 1)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, slots, n, dtype=np.int64) * nb * bb
    open_row = np.full(params.total_banks, -1, dtype=np.int64)
    c = count_chunk(params, starts, nb, open_row)
    return float(np.max(channel_times(params, c))) / n


def devices_from_smartssd(
    count: int,
    params: Any | None = None,
    name: str = "csd",
    max_emb: int = 6,
    max_tt: int = 4,
) -> tuple[Device, ...]:
    """``count`` SmartSSD-like devices with the simulator's own parameters (SmartSSDParams).

    Tiers: ``sram`` (BRAM+URAM left after the shell; ``sram_bytes_per_cycle`` per EMB core per
    clock), ``dram`` (the FPGA DDR4; per-row time from the DRAM timing model on random rows),
    ``nand`` (cold rows at the pipeline's saturated rate ``cold_row_peak_rate``, one LBA per row).
    Core templates: every (EMB, TT) core count up to ``max_emb``/``max_tt`` (with the configured
    MLP cores) that passes the FPGA budget check; each reserves the BRAM/URAM its buffers use.
    Pooling costs ``ceil(dim / lanes)`` cycles per raw row on the EMB cores; TT rows cost
    ``macs_per_row`` on the TT cores (``mac_units x clock x efficiency`` each). Output: pooled
    vectors over the achieved host link.
    """
    from simrec.sim.components.fpga import CoreConfig as SimCoreConfig
    from simrec.sim.components.smartssd import SmartSSDParams

    p = params if params is not None else SmartSSDParams()
    clock = float(p.fpga.clock_hz)
    base_onchip = float(p.fpga.onchip_bytes(None))
    cc0 = p.cores
    temps: list[CoreTemplate] = []
    for n_emb in range(1, max_emb + 1):
        for n_tt in range(0, max_tt + 1):
            cc = SimCoreConfig(
                n_emb=n_emb, n_tt=n_tt, n_mlp=cc0.n_mlp, emb=cc0.emb, tt=cc0.tt, mlp=cc0.mlp
            )
            try:
                cc.check(p.fpga)
            except ConfigError:
                continue
            used = cc.resources()
            temps.append(
                CoreTemplate(
                    name=f"emb{n_emb}_tt{n_tt}",
                    mem_cores=n_emb,
                    tt_cores=n_tt,
                    mlp_cores=cc0.n_mlp,
                    tt_macs_per_s=n_tt * cc0.tt.macs_per_second(clock),
                    speed={"sram": float(n_emb), POOL_RESOURCE: float(n_emb)},
                    resources={k: float(v) for k, v in used.as_dict().items()},
                    reserved_bytes={"sram": base_onchip - float(p.fpga.onchip_bytes(used))},
                )
            )
    if not temps:
        raise ConfigError(
            "no core configuration with at least one EMB core fits the FPGA budget",
            where="smartssd.cores",
            fix="use smaller cores or a larger FPGA",
        )
    ddr = p.ddr
    ddr_cache: dict[int, float] = {}

    def ddr_bw(row_bytes: int) -> float:
        nb = max(1, -(-int(row_bytes) // int(ddr.burst_bytes)))
        if nb not in ddr_cache:
            ddr_cache[nb] = dram_row_seconds(
                ddr, nb * int(ddr.burst_bytes), float(p.ddr_capacity_bytes)
            )
        return nb * float(ddr.burst_bytes) / ddr_cache[nb]

    lba = int(p.lba_bytes)
    sram_g = int(p.sram_bytes_per_cycle)
    tiers = (
        Tier("sram", base_onchip, sram_g * clock, granule_bytes=sram_g, channel="sram"),
        Tier(
            "dram",
            float(p.ddr_capacity_bytes),
            float(ddr.peak_bw_Bps),
            granule_bytes=int(ddr.burst_bytes),
            channel="dram",
            row_bandwidth=ddr_bw,
        ),
        Tier(
            "nand",
            float(p.ssd_capacity_bytes),
            lba * float(p.cold_row_peak_rate()),
            granule_bytes=lba,
            channel="nand",
        ),
    )
    budget = {k: float(v) for k, v in p.fpga.available.as_dict().items()}
    return tuple(
        Device(
            name=f"{name}{k}",
            tiers=tiers,
            templates=tuple(temps),
            resource_budget=budget,
            output_Bps=float(p.host_bandwidth),
            tt_tiers=("sram",),
            pool_lanes=int(cc0.emb.lanes),
            pool_clock_hz=clock,
        )
        for k in range(count)
    )


def _unnamed(obj: Any) -> Any:
    """A dataclass as plain data without its ``name`` fields (to compare device parameters)."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {k: _unnamed(v) for k, v in sorted(obj.items()) if k != "name"}
    if isinstance(obj, (list, tuple)):
        return [_unnamed(v) for v in obj]
    return obj


def devices_from_system(hw: Any) -> tuple[Device, ...]:
    """Planner devices of a :class:`simrec.hw.SystemConfig`, costed with its simulator parameters.

    * GPUs present: one device per GPU. Tier ``hbm``: its HBM capacity, per-row time
      ``row_bytes / (gather_eff(row_bytes) x HBM peak)`` (``GpuParams.gather_time_s`` without the
      launch). Tier ``host_dram`` (if the GPU has a PCIe link): an equal share of all host DRAM,
      rows read over that link at its effective bandwidth (64 B granule): TorchRec's UVM path.
    * CSDs present (``kind: csd``, the SCRec preset): one SmartSSD-like device per CSD from
      :func:`devices_from_smartssd` on that CSD's ``SmartSSDParams`` (its tiers, core templates
      and FPGA budget, and its host link for the pooled outputs); the host CPUs are not planned.
    * Otherwise one device per CPU socket: tier ``dram`` with the DRAM timing model's random-row
      time (:func:`dram_row_seconds`) and a ``pool`` resource ``CpuParams.pool_time_s`` per lookup
      on all cores.

    A GPU pays one gather-kernel launch per batch (``fixed_s``). Left out: all-to-all of pooled outputs (GPU), cross-socket
    traffic (CPU), and caching in L2/LLC.
    """
    gpus = list(hw.devices_of_kind("gpu"))
    out: list[Device] = []
    csds = list(hw.devices_of_kind("csd")) if hasattr(hw, "devices_of_kind") else []
    if csds:
        # SmartSSD-like CSDs (SCRec): the smartssd adapter on each device's own parameters
        # (SystemConfig.csd_params: its NAND, FPGA, DDR4 and host link). Devices with equal
        # parameters share one Device body, so they share one option class.
        made: dict[str, Device] = {}
        for c in csds:
            prm = hw.params(c)
            key = repr(_unnamed(prm))
            if key not in made:
                made[key] = replace(devices_from_smartssd(1, prm, name=c)[0], kind="csd")
            out.append(replace(made[key], name=c))
        return tuple(out)
    if gpus:
        host = [d for d in hw.memories().values() if d.kind == "dram"]
        host_cap = sum(float(d.capacity) for d in host) / len(gpus)
        for g in gpus:
            gp = hw.params(g)
            peak = float(gp.hbm.peak_bw_Bps)

            def hbm_bw(rb: int, gp: Any = gp, peak: float = peak) -> float:
                return float(gp.gather_eff(rb)) * peak

            tiers = [
                Tier(
                    "hbm",
                    float(gp.hbm_capacity_bytes),
                    peak,
                    channel="hbm",
                    row_bandwidth=hbm_bw,
                )
            ]
            link_bw = None
            for link in hw.links.values():
                eps = getattr(link, "endpoints", None)
                if link.kind == "pcie" and eps is not None and g in eps:
                    link_bw = float(link.bandwidth)
                    break
            if link_bw and host_cap > 0:
                tiers.append(Tier("host_dram", host_cap, link_bw, granule_bytes=64, channel="pcie"))
            out.append(
                Device(name=g, tiers=tuple(tiers), kind="gpu", fixed_s=float(gp.kernel_launch_s))
            )
        return tuple(out)
    for c in hw.devices_of_kind("cpu"):
        drams = [n for n, d in hw.memories_of(c).items() if d.kind == "dram"]
        if not drams:
            continue
        cp = hw.params(c)
        tiers = []
        for dn in drams:
            dp = hw.params(dn)
            cap = float(hw.capacity_of(dn))
            cache: dict[int, float] = {}

            def bw(
                rb: int, dp: Any = dp, cap: float = cap, cache: dict[int, float] = cache
            ) -> float:
                bb = int(dp.burst_bytes)
                nb = max(1, -(-int(rb) // bb))
                if nb not in cache:
                    cache[nb] = dram_row_seconds(dp, nb * bb, cap)
                return nb * bb / cache[nb]

            tiers.append(
                Tier(
                    dn,
                    cap,
                    float(dp.peak_bw_Bps),
                    granule_bytes=int(dp.burst_bytes),
                    channel=dn,
                    row_bandwidth=bw,
                )
            )

        def pool(dim: int, cp: Any = cp) -> float:
            return float(cp.pool_time_s(1.0, dim, threads=cp.cores))

        out.append(Device(name=c, tiers=tuple(tiers), pool_fn=pool, kind="cpu"))
    if not out:
        raise ConfigError(
            f"system {getattr(hw, 'name', '?')!r} has no GPU and no CPU with attached DRAM",
            path=getattr(hw, "source", None),
            where="devices",
            fix="use a config with gpu+hbm or cpu+dram devices (presets: multi_gpu, cpu_dram)",
        )
    return tuple(out)
