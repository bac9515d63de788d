"""Ascend-like NPU SoC: per-core look-up strategies (GM, L1, GM-UB, L1-UB) and a shared GM.

What the model covers (reference/papers.md §A.2-§A.4; the formulas are §A.3's, written out):

Notation for one table (or one row range of it) on one core in one batch: ``n`` look-ups, ``S``
bytes of table, ``r`` bytes per row, ``g`` the global-memory transfer granularity, ``C`` the UB
chunk = half of the UB left after ``ub_reserved`` (double buffering), ``K = ceil(S / C)`` chunks.

* **GM** — row by row from global memory, double buffered (the pooling add hides behind the next
  row's DMA): ``T = n * (t_mte2 + ceil(r / g) * g / BW_mte2)``. A 64 B row moves a whole 512 B
  transfer: that waste is why streaming wins.
* **L1** — the same loop from a copy of the table kept in L1 across batches:
  ``T = n * (t_mte1 + r / BW_mte1)``; the copy costs ``ceil(S / C) * t_mte2 + S / BW_mte2`` once
  (``preload_s``, paid before the first batch, not per batch). Needs ``S <= L1`` and an L1->UB path.
* **GM-UB** — stream the table chunk by chunk into UB, the vector unit gathers and pools the rows
  of each chunk: ``T = K * t_mte2 + S / BW_mte2 + n * t_v`` with ``t_v = (c_row + ceil(r / w)) / f``
  (``c_row`` cycles per row, ``w`` vector bytes per cycle, ``f`` clock). Independent of which rows
  are asked for, only of how many.
* **L1-UB** — as GM-UB from the L1-resident copy: ``T = K * t_mte1 + S / BW_mte1 + n * t_v``
  (+ the same one-off preload). Needs ``S <= L1`` and the coupled architecture (MTE1 L1->UB).

Every strategy then writes the table's pooled outputs (``bags * E * 4`` bytes, fp32) with MTE3:
``T_out = ceil(out / C) * t_mte3 + out / BW_mte3``.

In the simulation (:class:`NpuSoc`) every core is a FIFO :class:`~simrec.sim.engine.Server`; a
task holds its core for its local time (issue costs, vector work, L1 traffic, output) and moves
its global-memory bytes through :class:`SharedBandwidth`, a fluid processor-sharing channel of the
SoC's aggregate GM bandwidth in which each core's flow is capped at its own MTE2 rate. Unloaded
(one core busy, or the aggregate never exceeded) a task takes exactly its formula.

What it leaves out: L2 hits (repeated rows pay the GM path again), UB bank conflicts, the scalar
unit's index bucketing beyond ``c_row``, the cube unit, and overlap of the output write with the
next table's look-ups.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

from simrec.errors import ConfigError
from simrec.sim.engine import Server

__all__ = [
    "STRATEGIES",
    "NpuParams",
    "TaskCost",
    "strategy_cost",
    "output_cost",
    "infeasible_reason",
    "check_strategy",
    "SharedBandwidth",
    "NpuSoc",
]

#: The four single-core look-up strategies of papers.md §A.2, in a fixed order.
STRATEGIES: tuple[str, ...] = ("GM", "L1", "GM-UB", "L1-UB")
L1_STRATEGIES = ("L1", "L1-UB")
OUTPUT_BYTES = 4  # pooled outputs are fp32


@dataclass(frozen=True)
class NpuParams:
    """An NPU SoC in SI units (see :class:`simrec.hw.npu.NpuDevice` for the YAML side).

    Attributes:
        name: a label.
        cores: cores that run look-ups.
        coupled: whether an L1->UB path (MTE1) exists.
        freq_hz: core clock.
        l1_bytes: L1 per core (0: none usable).
        ub_bytes, ub_reserved_bytes: UB per core, and the part held for indices/accumulators.
        vector_bytes_per_cycle: vector width in bytes.
        vector_cycles_per_row: cycles per gathered row besides its width in vector ops.
        mte2_Bps, mte2_issue_s: GM->L1/UB rate per core and cost per DMA.
        mte1_Bps, mte1_issue_s: L1->UB (0 on a separated part).
        mte3_Bps, mte3_issue_s: UB->GM.
        l2_bytes: shared L2 (reported; hits are not modelled).
        gm_Bps: aggregate global-memory bandwidth shared by the cores.
        gm_granularity_bytes: smallest GM transfer.
        gm_capacity_bytes: global-memory capacity.
    """

    name: str
    cores: int
    coupled: bool
    freq_hz: float
    l1_bytes: float
    ub_bytes: float
    ub_reserved_bytes: float
    vector_bytes_per_cycle: float
    vector_cycles_per_row: float
    mte2_Bps: float
    mte2_issue_s: float
    mte1_Bps: float
    mte1_issue_s: float
    mte3_Bps: float
    mte3_issue_s: float
    l2_bytes: float
    gm_Bps: float
    gm_granularity_bytes: float
    gm_capacity_bytes: float

    def __post_init__(self) -> None:
        if self.cores < 1:
            raise ConfigError("an NPU needs at least one core", where="field cores", fix="e.g. 32")
        for f in ("freq_hz", "ub_bytes", "mte2_Bps", "mte3_Bps", "gm_Bps", "gm_granularity_bytes"):
            if not getattr(self, f) > 0:
                raise ConfigError(f"NPU {f} must be > 0", where=f"field {f}", fix="give it")
        if self.coupled and not self.mte1_Bps > 0:
            raise ConfigError(
                "a coupled NPU needs an L1->UB bandwidth",
                where="field mte1_Bps",
                fix="give mte1_Bps, or coupled=False",
            )
        if self.chunk_bytes < self.gm_granularity_bytes:
            raise ConfigError(
                "the UB chunk is smaller than one GM transfer",
                where="field ub_reserved_bytes",
                fix="reserve less UB",
            )

    @property
    def chunk_bytes(self) -> float:
        """Bytes of one UB chunk buffer: half of the UB left after the reserve."""
        return (self.ub_bytes - self.ub_reserved_bytes) / 2

    def gm_row_bytes(self, row_bytes: float) -> float:
        """Bytes global memory moves for one row read on its own (whole transfers)."""
        g = self.gm_granularity_bytes
        return math.ceil(row_bytes / g) * g

    def vgather_s(self, row_bytes: float) -> float:
        """Vector-unit time to gather and pool one row from UB."""
        return (
            self.vector_cycles_per_row + math.ceil(row_bytes / self.vector_bytes_per_cycle)
        ) / self.freq_hz


@dataclass(frozen=True)
class TaskCost:
    """Cost of one strategy for ``n`` look-ups into ``S`` bytes on one core (unloaded).

    ``local_s`` is the time the core spends that does not use global memory (issue costs, vector
    work, L1 traffic); ``gm_bytes`` the bytes it moves from GM at its MTE2 rate; ``time_s`` =
    ``local_s + gm_bytes / BW_mte2``; ``preload_s`` the one-off L1 fill; ``l1_bytes`` the L1 held.
    """

    strategy: str
    time_s: float
    local_s: float
    gm_bytes: float
    preload_s: float = 0.0
    l1_bytes: float = 0.0


def infeasible_reason(p: NpuParams, table_bytes: float, strategy: str) -> str | None:
    """Why ``strategy`` cannot serve a table of ``table_bytes`` on one core of ``p`` (or None)."""
    if strategy not in STRATEGIES:
        return f"unknown strategy {strategy!r} (use one of {', '.join(STRATEGIES)})"
    if strategy in L1_STRATEGIES:
        if not p.coupled:
            return (
                f"{strategy} needs an L1->UB path (MTE1), which only the coupled architecture "
                f"has; {p.name} is separated"
            )
        if table_bytes > p.l1_bytes:
            return (
                f"{strategy} keeps the table in L1, but it has {table_bytes:,.0f} B and L1 holds "
                f"{p.l1_bytes:,.0f} B"
            )
    return None


def check_strategy(p: NpuParams, table_bytes: float, strategy: str, where: str = "") -> None:
    """Raise a ConfigError when ``strategy`` is infeasible for the table."""
    why = infeasible_reason(p, table_bytes, strategy)
    if why is not None:
        raise ConfigError(
            why,
            where=where or "mapping",
            fix="use GM or GM-UB for this table, split it into row ranges that fit L1, or use a "
            "coupled part",
        )


def strategy_cost(
    p: NpuParams, strategy: str, lookups: float, table_bytes: float, row_bytes: float
) -> TaskCost:
    """The unloaded cost of ``strategy`` (formulas in the module docstring); checks feasibility."""
    check_strategy(p, table_bytes, strategy)
    n, S, r = float(lookups), float(table_bytes), float(row_bytes)
    k = math.ceil(S / p.chunk_bytes) if S > 0 else 0
    preload = k * p.mte2_issue_s + S / p.mte2_Bps
    if strategy == "GM":
        gm = n * p.gm_row_bytes(r)
        local = n * p.mte2_issue_s
        return TaskCost(strategy, local + gm / p.mte2_Bps, local, gm)
    if strategy == "L1":
        local = n * (p.mte1_issue_s + r / p.mte1_Bps)
        return TaskCost(strategy, local, local, 0.0, preload, S)
    tv = n * p.vgather_s(r)
    if strategy == "GM-UB":
        local = k * p.mte2_issue_s + tv
        return TaskCost(strategy, local + S / p.mte2_Bps, local, S)
    local = k * p.mte1_issue_s + S / p.mte1_Bps + tv  # L1-UB
    return TaskCost(strategy, local, local, 0.0, preload, S)


def output_cost(p: NpuParams, bags: float, dim: int) -> float:
    """MTE3 time to write ``bags`` pooled rows of ``dim`` fp32 values back to GM."""
    out = float(bags) * dim * OUTPUT_BYTES
    if out <= 0:
        return 0.0
    return math.ceil(out / p.chunk_bytes) * p.mte3_issue_s + out / p.mte3_Bps


class SharedBandwidth:
    """A fluid processor-sharing channel: active flows share ``bandwidth_Bps`` equally, each
    capped at its own rate (max-min fair water-filling). Tracks bytes moved and busy time."""

    def __init__(self, env: simpy.Environment, bandwidth_Bps: float, name: str = "gm") -> None:
        if not bandwidth_Bps > 0:
            raise ValueError("bandwidth must be > 0")
        self.env = env
        self.bw = float(bandwidth_Bps)
        self.name = name
        self._flows: dict[int, list[Any]] = {}  # id -> [remaining, cap, event, rate]
        self._next_id = 0
        self._last = float(env.now)
        self._version = 0
        self.bytes_moved = 0.0
        self.busy_s = 0.0  # time with at least one flow
        self.used_area = 0.0  # integral of allocated bandwidth over time (bytes)

    def _advance(self) -> None:
        now = float(self.env.now)
        dt = now - self._last
        if dt > 0 and self._flows:
            self.busy_s += dt
            for f in self._flows.values():
                moved = f[3] * dt
                f[0] -= moved
                self.used_area += moved
        self._last = now

    def _allocate(self) -> None:
        flows = sorted(self._flows.values(), key=lambda f: f[1])
        left, k = self.bw, len(flows)
        for f in flows:
            share = left / k
            f[3] = min(f[1], share)
            left -= f[3]
            k -= 1

    def _schedule(self) -> None:
        self._allocate()
        self._version += 1
        if not self._flows:
            return
        dt = min(max(f[0], 0.0) / f[3] for f in self._flows.values())
        self.env.process(self._wake(dt, self._version))

    def _wake(self, dt: float, version: int) -> Generator[Any, Any, None]:
        yield self.env.timeout(dt)
        if version != self._version:
            return
        self._advance()
        done = [i for i, f in self._flows.items() if f[0] <= f[3] * 1e-15]
        for i in done:
            f = self._flows.pop(i)
            f[2].succeed()
        self._schedule()

    def transfer(self, nbytes: float, cap_Bps: float) -> Generator[Any, Any, float]:
        """simpy process body: move ``nbytes`` at most at ``cap_Bps``; returns the time taken."""
        t0 = float(self.env.now)
        if nbytes <= 0:
            return 0.0
        self._advance()
        ev = self.env.event()
        self._flows[self._next_id] = [float(nbytes), float(cap_Bps), ev, 0.0]
        self._next_id += 1
        self.bytes_moved += float(nbytes)
        self._schedule()
        yield ev
        return float(self.env.now) - t0

    def utilisation(self, duration_s: float) -> float:
        """Average fraction of the bandwidth in use over ``duration_s``."""
        self._advance()
        return self.used_area / (self.bw * duration_s) if duration_s > 0 else 0.0


class NpuSoc:
    """The SoC in a simpy environment: ``cores`` FIFO servers and the shared GM channel."""

    def __init__(self, env: simpy.Environment, params: NpuParams, name: str | None = None):
        self.env = env
        self.p = params
        self.name = name or params.name
        self.cores = [Server(env, 1, f"{self.name}.core{c}") for c in range(params.cores)]
        self.gm = SharedBandwidth(env, params.gm_Bps, f"{self.name}.gm")

    def run_task(self, core: int, local_s: float, gm_bytes: float) -> Generator[Any, Any, float]:
        """simpy process body: one task on ``core`` (queued FIFO behind earlier tasks): its local
        time, then its GM bytes through the shared channel at the core's MTE2 cap. Returns the
        time from start of service to the end."""
        srv = self.cores[core]
        tok = yield from srv.acquire()
        t0 = float(self.env.now)
        if local_s > 0:
            yield self.env.timeout(local_s)
        if gm_bytes > 0:
            yield from self.gm.transfer(gm_bytes, self.p.mte2_Bps)
        srv.release(tok)
        return float(self.env.now) - t0

    def run_core(self, core: int, tasks: list[tuple[float, float]]) -> Generator[Any, Any, float]:
        """simpy process body: the core's tasks ``(local_s, gm_bytes)`` one after another."""
        t0 = float(self.env.now)
        for local_s, gm_bytes in tasks:
            yield from self.run_task(core, local_s, gm_bytes)
        return float(self.env.now) - t0
