"""SCRec system: one host with N SmartSSDs serving embeddings from on-chip SRAM, DDR4, NAND and TT.

What the model covers
---------------------
* **Devices**: N :class:`~simrec.sim.components.smartssd.SmartSSD` (same parameters), working in
  parallel; each holds whole tables (table-wise model parallelism, screc.md §1.3).
* **Placement**: a planner plan (:class:`PlanPlacement`: a :class:`simrec.shard.plan.Plan`, e.g. the
  MIP's, read through its :class:`~simrec.shard.remap.Remapper`, with its per-device core counts),
  or else the documented default plan (:func:`default_placement`):
  1. statistics from the trace (the Data Statistic Analyzer): per table the accessed rows and their
     counts over ``profile_batches`` batches;
  2. tables to devices by longest-processing-time on lookups (most lookups first onto the device
     with the fewest);
  3. per device, TT format (``tt_policy="auto"``, rank ``tt_rank``) for the tables with the most
     estimated raw-path time per TT byte, while their TT cores fit the on-chip SRAM left after the
     cores' buffers and the TT cores' time stays below the raw-path time they remove. The raw-path
     time comes from the SRAM/DDR4 fill of step 4 with leave-one-out hit counts (a row seen c times
     in the profile predicts c - 1 hits, ``coverage_estimate``), so rows seen once do not count
     as covered;
  4. per device, raw rows by access count per byte, hottest first, into the SRAM left over, then
     DDR4 (``ddr_fraction`` of its capacity); then whole tables (by profiled lookups per byte)
     into the DDR4 still free, so rows the profile never saw are read from DDR4 when the table
     fits; the rest on NAND (``sharding="statistical"``); or, as the ablation, the lowest-index
     rows of every table first (``sharding="index"``);
  5. per device, the core mix (:func:`plan_core_mix`): the EMB/TT core counts within the FPGA
     budget that minimise the larger of the profiled pooling and TT times (the "uniform cores"
     ablation, ``plan_cores=False``, keeps ``device.cores`` on every device).
  NAND keeps a full raw copy of every raw table (row r of table t at its own LBA), so a cold row is
  found at its row id.
* **Per batch**: the host remaps each lookup to (device, tier, local row), sends each device its
  index list (``index_bytes`` per lookup) over the device's PCIe Gen3 x4 link (and the host
  uplink that all devices share, ``host_uplink_bandwidth``); each device reads
  SRAM rows, DDR4 rows (DRAM component), cold rows (controller -> NAND -> P2P) and reconstructs TT
  rows concurrently, its EMB cores pool the raw rows, and it returns ``B x sum(dim) x 4`` bytes of
  pooled vectors to the host. The batch's embedding stage ends when the slowest device is done.
* **Dense stage** (when a :class:`~simrec.workloads.dlrm.DlrmModel` is given): ``mlp_on="fpga"``:
  the bottom MLP runs on the devices' MLP cores (B/N samples each) during the embedding stage, and
  interaction + top MLP on the MLP cores after the host has gathered the pooled vectors (the
  redistribution of interaction inputs over PCIe is counted); ``mlp_on="host"``: all dense FLOPs on
  the host CPU after the embedding stage.
* **Load**: the shared throughput/latency drivers of :mod:`simrec.sim.results`.

What it leaves out
------------------
Host-side remapping and dispatch CPU time, host DRAM, inter-batch caching in DDR4/SRAM (placement is
static), accuracy effects of TT, the P2P link's contention with host traffic, and (in the default
plan) multi-device tables; a planner plan may split a table, and each holding device then returns a
partial pooled vector. The statistics come from the simulated trace itself by default (an oracle
profile); give ``profile_batches`` to profile on a prefix.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np
import simpy

from simrec.errors import ConfigError
from simrec.sim.components.cpu import CpuParams
from simrec.sim.components.fpga import TTShape, tt_macs_per_row, tt_param_count, tt_q_factors
from simrec.sim.components.smartssd import SmartSSD, SmartSSDParams
from simrec.sim.engine import Server
from simrec.sim.results import LoadSpec, SimResult, run_load
from simrec.trace.format import Batch, TraceHeader
from simrec.workloads.dlrm import DlrmModel

__all__ = [
    "TIERS",
    "ScrecConfig",
    "TablePlacement",
    "Placement",
    "table_statistics",
    "default_placement",
    "plan_core_mix",
    "PlanPlacement",
    "ScrecSystem",
]

#: Tier codes used by the placement.
TIERS = ("sram", "ddr4", "nand", "tt")
SRAM, DDR, NAND, TT = range(4)
_FP32 = 4


@dataclass(frozen=True)
class ScrecConfig:
    """System-level choices (defaults: the reconstruction of screc.md §1.3, [INF] where marked).

    Attributes:
        n_devices: SmartSSDs in the server (4 [INF]; screc.md §10 item 1).
        device: parameters of each SmartSSD.
        mlp_on: ``"fpga"`` (MLP cores) or ``"host"`` (host CPU).
        host_cpu: host CPU for ``mlp_on="host"`` [assumption: the cpu_dram preset's socket pair].
        tt_policy: ``"auto"`` (default plan step 3) or ``"none"`` (ablation: all raw).
        tt_rank: TT rank for TT tables (screc.md §4.2: unknown; 16 [INF]).
        sharding: ``"statistical"`` (hottest rows to the fastest tier) or ``"index"`` (ablation).
        ddr_fraction: share of the DDR4 capacity used for rows.
        profile_batches: batches of the trace used for statistics (None: all).
        coverage_estimate: how the TT choice predicts the hot tiers' hits: ``"leave_one_out"``
            (a row seen c times counts c - 1 hits: the plan is made for batches it has not seen)
            or ``"profile"`` (the profiled counts: right when the simulated batches are the
            profiled ones).
        plan_cores: use the per-device core counts of the plan (a planner plan's, or the default
            plan's :func:`plan_core_mix`); False is the "uniform core configuration" ablation
            (every device gets ``device.cores``).
        index_bytes: bytes per lookup index sent to a device (int32).
        host_uplink_bandwidth: aggregate bandwidth into the host that all devices share (the
            backplane switch's uplink or root-complex ports): PCIe Gen3 x16, 15.75 GB/s
            (data.md §5.1) x 0.8 [INF]; None = no shared limit.
    """

    n_devices: int = 4
    device: SmartSSDParams = field(default_factory=SmartSSDParams)
    mlp_on: Literal["fpga", "host"] = "fpga"
    host_cpu: CpuParams = field(default_factory=CpuParams.xeon_2s_avx512)
    tt_policy: Literal["auto", "none"] = "auto"
    tt_rank: int = 16
    sharding: Literal["statistical", "index"] = "statistical"
    ddr_fraction: float = 1.0
    profile_batches: int | None = None
    coverage_estimate: Literal["leave_one_out", "profile"] = "leave_one_out"
    plan_cores: bool = True
    index_bytes: int = 4
    host_uplink_bandwidth: float | None = 15.75e9 * 0.8

    def __post_init__(self) -> None:
        if self.n_devices < 1:
            raise ConfigError(
                f"n_devices must be >= 1, got {self.n_devices}",
                where="screc.n_devices",
                fix="use at least one SmartSSD",
            )
        checks = {
            "mlp_on": (self.mlp_on, ("fpga", "host")),
            "tt_policy": (self.tt_policy, ("auto", "none")),
            "sharding": (self.sharding, ("statistical", "index")),
            "coverage_estimate": (self.coverage_estimate, ("leave_one_out", "profile")),
        }
        for name, (v, ok) in checks.items():
            if v not in ok:
                raise ConfigError(
                    f"unknown {name} {v!r}",
                    where=f"screc.{name}",
                    fix="use one of " + ", ".join(ok),
                )
        if not 0.0 <= self.ddr_fraction <= 1.0:
            raise ConfigError(
                f"ddr_fraction must be in [0, 1], got {self.ddr_fraction}",
                where="screc.ddr_fraction",
                fix="give a fraction of the DDR4 capacity",
            )


@dataclass
class TablePlacement:
    """Where one table's rows live on its device.

    ``tt`` set: every lookup is reconstructed by the TT cores (shape ``tt``). Otherwise rows whose
    ids are in ``ids`` (sorted) sit in ``tier[k]`` at local row ``local[k]``; with index sharding,
    ids below ``sram_below`` sit in SRAM and ids in ``[sram_below, ddr_below)`` in DDR4 (local row
    ``id - sram_below``); every other row is read from NAND at its own id.
    """

    device: int
    row_bytes: int
    dim: int
    tt: TTShape | None = None
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tier: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    local: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sram_below: int = 0
    ddr_below: int = 0
    ddr_base_byte: int = 0  # byte address of this table's first DDR4 row slot
    nand_base_byte: int = 0  # byte address of row 0 of this table on the device's NAND

    def classify(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tier code, local row) of each lookup in ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        if self.tt is not None:
            return np.full(len(idx), TT, dtype=np.int8), idx
        tier = np.full(len(idx), NAND, dtype=np.int8)
        local = idx.copy()
        if self.ddr_below or self.sram_below:
            d = (idx >= self.sram_below) & (idx < self.ddr_below)
            tier[d] = DDR
            local[d] = idx[d] - self.sram_below
            tier[idx < self.sram_below] = SRAM
        if len(self.ids):
            pos = np.minimum(np.searchsorted(self.ids, idx), len(self.ids) - 1)
            hit = self.ids[pos] == idx
            tier[hit] = self.tier[pos[hit]]
            local[hit] = self.local[pos[hit]]
        return tier, local


@dataclass
class _Ctx:
    lanes: int
    sram_bpc: int
    burst: int
    page: int
    tt: Any


@dataclass
class _Work:
    """One device's share of one batch."""

    lookups: int = 0
    sram_rows: int = 0
    sram_cycles: float = 0.0
    pool_rows: int = 0
    pool_cycles: float = 0.0
    tt_rows: int = 0
    tt_macs: float = 0.0
    ddr: dict[int, list[np.ndarray]] = field(default_factory=dict)
    nand: list[np.ndarray] = field(default_factory=list)

    def add_raw(
        self,
        tier: np.ndarray,
        local: np.ndarray,
        row_bytes: int,
        dim: int,
        ddr_base: int,
        nand_base: int,
        c: _Ctx,
    ) -> None:
        """Raw lookups with their tier codes and local rows."""
        self.lookups += len(tier)
        self.pool_rows += len(tier)
        self.pool_cycles += len(tier) * math.ceil(dim / c.lanes)
        k_s = int(np.count_nonzero(tier == SRAM))
        if k_s:
            self.sram_rows += k_s
            self.sram_cycles += k_s * math.ceil(row_bytes / c.sram_bpc)
        sel = tier == DDR
        if sel.any():
            nb = max(1, -(-row_bytes // c.burst))
            self.ddr.setdefault(nb, []).append(ddr_base + local[sel] * (nb * c.burst))
        sel = tier == NAND
        if sel.any():
            self.nand.append((nand_base + local[sel] * row_bytes) // c.page)

    def add_tt(self, shape: TTShape, local: np.ndarray, c: _Ctx) -> None:
        self.lookups += len(local)
        self.tt_rows += len(local)
        self.tt_macs += c.tt.chunk_macs(shape, local)


@dataclass
class Placement:
    """The default plan: one :class:`TablePlacement` per table, and per-device summaries."""

    tables: list[TablePlacement]
    n_devices: int
    summary: list[dict[str, float]]
    #: per device (n_emb, n_tt, n_mlp) chosen by :func:`plan_core_mix`, or None (device.cores)
    cores: list[tuple[int, int, int] | None] = field(default_factory=list)

    @property
    def num_tables(self) -> int:
        return len(self.tables)

    def out_bytes_per_sample(self, j: int) -> int:
        """Pooled-vector bytes device ``j`` returns per sample."""
        return sum(tp.dim for tp in self.tables if tp.device == j) * _FP32

    def collect(self, batch: Batch, works: list[_Work], c: _Ctx) -> None:
        """Split ``batch`` into per-device work."""
        for t, tp in enumerate(self.tables):
            idx = batch.table_indices(t)
            if len(idx) == 0:
                continue
            w = works[tp.device]
            if tp.tt is not None:
                w.add_tt(tp.tt, np.asarray(idx, dtype=np.int64), c)
                continue
            tier, local = tp.classify(idx)
            w.add_raw(tier, local, tp.row_bytes, tp.dim, tp.ddr_base_byte, tp.nand_base_byte, c)


_TIER_NAMES = {
    "sram": SRAM,
    "bram": SRAM,
    "uram": SRAM,
    "onchip": SRAM,
    "dram": DDR,
    "ddr": DDR,
    "ddr4": DDR,
    "nand": NAND,
    "ssd": NAND,
}


class PlanPlacement:
    """A :class:`simrec.shard.plan.Plan` (e.g. from the MIP) as the SCRec system's placement.

    Devices are the plan's devices in order (device ``j`` of the system is the plan's ``j``-th);
    tiers ``sram``/``dram``/``nand`` (aliases: bram, uram, onchip, ddr, ddr4, ssd) map to on-chip
    SRAM, DDR4 and NAND; a band whose codec is ``tt`` is served by the TT cores with its cores
    indexed by the band's local rows (shape resolved over the (table, device, tier) local space).
    Lookups go through the plan's vectorised :class:`~simrec.shard.remap.Remapper`. A table split
    over several devices returns one partial pooled vector per device. Codecs other than raw and TT
    are rejected.
    """

    def __init__(
        self,
        plan: Any,
        header: TraceHeader,
        perms: dict[str, np.ndarray] | None = None,
        ddr_burst: int = 64,
        page_bytes: int = 8192,
    ) -> None:
        from simrec.shard.remap import Remapper

        self.plan = plan
        self.remap = Remapper(plan, perms)
        self.n_devices = len(self.remap.devices)
        names = [s.name for s in header.tables]
        if [t.name for t in plan.tables] != names:
            raise ConfigError(
                "the plan's tables do not match the trace's tables (names and order)",
                where="plan.tables",
                fix="make the plan for this trace",
            )
        self.tier_code = []
        for tn in self.remap.tiers:
            if tn.lower() not in _TIER_NAMES:
                raise ConfigError(
                    f"tier {tn!r} is not a SmartSSD tier",
                    where="plan.tables.bands.tier",
                    fix="use sram, dram or nand",
                )
            self.tier_code.append(_TIER_NAMES[tn.lower()])
        self.row_bytes = [int(math.ceil(s.bytes_per_row)) for s in header.tables]
        self.dims = [s.dim for s in header.tables]
        self.tt: dict[tuple[int, int, int], TTShape] = {}
        ddr_used = [0] * self.n_devices
        nand_used = [0] * self.n_devices
        self.ddr_base: dict[tuple[int, int], int] = {}
        self.nand_base: dict[tuple[int, int], int] = {}
        out = [0] * self.n_devices
        dcode = {n: i for i, n in enumerate(self.remap.devices)}
        tcode = {n: i for i, n in enumerate(self.remap.tiers)}
        for t, tpl in enumerate(plan.tables):
            space = self.remap.tables[t].space
            held = set()
            for b in tpl.bands:
                codec = tpl.band_codec(b)
                key = (t, dcode[b.device], tcode[b.tier])
                held.add(dcode[b.device])
                if codec.kind == "tt":
                    self.tt[key] = TTShape.from_spec(codec, space[key[1:]], tpl.dim)
                elif codec.kind != "raw":
                    raise ConfigError(
                        f"codec {codec.kind!r} is not modelled by the SCRec system",
                        where=f"table {tpl.name!r}",
                        fix="use raw or tt bands",
                    )
            nb = max(1, -(-self.row_bytes[t] // ddr_burst))
            for (dj, ti), n_rows in sorted(space.items()):
                if (t, dj, ti) in self.tt:
                    continue
                if self.tier_code[ti] == DDR:
                    self.ddr_base[(t, dj)] = ddr_used[dj]
                    ddr_used[dj] += n_rows * nb * ddr_burst
                elif self.tier_code[ti] == NAND:
                    self.nand_base[(t, dj)] = nand_used[dj]
                    nand_used[dj] += -(-n_rows * self.row_bytes[t] // page_bytes) * page_bytes
            for dj in held:
                out[dj] += tpl.dim * _FP32
        self._out = out
        by_name = {d.name: d for d in plan.devices}
        self.cores: list[tuple[int, int, int] | None] = []
        for name in self.remap.devices:
            dp = by_name.get(name)
            c = dp.cores if dp is not None else None
            if c is None or (c.memory_centric, c.compute_centric, c.mlp) == (0, 0, 0):
                self.cores.append(None)
            else:
                self.cores.append((c.memory_centric, c.compute_centric, c.mlp))
        self.summary = [
            {"ddr4_bytes": float(ddr_used[j]), "nand_bytes": float(nand_used[j])}
            for j in range(self.n_devices)
        ]

    @property
    def num_tables(self) -> int:
        return len(self.plan.tables)

    def out_bytes_per_sample(self, j: int) -> int:
        return self._out[j] if j < len(self._out) else 0

    def collect(self, batch: Batch, works: list[_Work], c: _Ctx) -> None:
        """Split ``batch`` into per-device work through the remapper."""
        for t in range(self.num_tables):
            idx = batch.table_indices(t)
            if len(idx) == 0:
                continue
            dev, tier, local = self.remap.remap(t, idx)
            for dj in np.unique(dev).tolist():
                m = dev == dj
                tiers = tier[m]
                loc = local[m]
                for ti in np.unique(tiers).tolist():
                    mm = tiers == ti
                    shape = self.tt.get((t, dj, ti))
                    if shape is not None:
                        works[dj].add_tt(shape, loc[mm], c)
                    else:
                        code = np.full(int(mm.sum()), self.tier_code[ti], dtype=np.int8)
                        works[dj].add_raw(
                            code,
                            loc[mm],
                            self.row_bytes[t],
                            self.dims[t],
                            self.ddr_base.get((t, dj), 0),
                            self.nand_base.get((t, dj), 0),
                            c,
                        )


def table_statistics(
    batches: Iterable[Batch], num_tables: int, max_batches: int | None = None
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Per table: accessed row ids sorted by count (desc, ties by id), their counts, and lookups.

    Memory grows with the distinct rows accessed, not with the table sizes.
    """
    parts: list[list[np.ndarray]] = [[] for _ in range(num_tables)]
    for i, b in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        for t in range(num_tables):
            idx = b.table_indices(t)
            if len(idx):
                parts[t].append(np.asarray(idx, dtype=np.int64))
    ids, counts = [], []
    lookups = np.zeros(num_tables, dtype=np.int64)
    for t in range(num_tables):
        if not parts[t]:
            ids.append(np.zeros(0, dtype=np.int64))
            counts.append(np.zeros(0, dtype=np.int64))
            continue
        x = np.concatenate(parts[t]) if len(parts[t]) > 1 else parts[t][0]
        lookups[t] = len(x)
        top = int(x.max()) + 1
        if top <= 16 * len(x):  # dense enough: count with bincount, O(n + rows)
            c_all = np.bincount(x, minlength=top)
            u = np.flatnonzero(c_all)
            c = c_all[u]
        else:
            x = np.sort(x)
            starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
            c = np.diff(np.r_[starts, len(x)])
            u = x[starts]
        order = np.argsort(-c, kind="stable")  # u is ascending, so ties stay in id order
        ids.append(u[order])
        counts.append(c[order])
    return ids, counts, lookups


def _ddr_row_rate(dev: SmartSSDParams, slot: int) -> float:
    """Rough random-row rate of the FPGA DDR4 for one planning estimate: the smaller of the
    four-activate-window bound and the data bus."""
    d = dev.ddr
    return min(4.0 * d.ranks * d.channels / (d.tFAW * d.tCK_s), d.peak_bw_Bps / slot)


def _fill_statistical(
    raw: list[int],
    ids: list[np.ndarray],
    counts: list[np.ndarray],
    row_bytes: list[int],
    slot: dict[int, int],
    sram_bytes: float,
    ddr_bytes: float,
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, int, int]]:
    """Hottest rows (accesses per byte) of the ``raw`` tables into SRAM, then DDR4.

    Returns per table: placed row ids (sorted), their tier codes and local rows, and the profiled
    lookups that hit SRAM and DDR4.
    """
    out: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, int, int]] = {}
    if not raw:
        return out
    cnt = np.concatenate([counts[t] for t in raw]).astype(float)
    rid = np.concatenate([ids[t] for t in raw])
    rb = np.array([row_bytes[t] for t in raw], dtype=float)
    sl = np.array([slot[t] for t in raw], dtype=float)
    pos = {t: i for i, t in enumerate(raw)}
    ti = np.array([pos[t] for t in raw], dtype=np.int64)
    tab_i = np.repeat(ti, [len(ids[t]) for t in raw])
    sz, dsz = rb[tab_i], sl[tab_i]
    dens = cnt / sz
    # only the rows that can fit need ordering: at most sram / min(size) + ddr / min(slot) rows
    k = int(sram_bytes // sz.min() + ddr_bytes // dsz.min()) + 1
    if k >= len(dens):
        cand = np.arange(len(dens))
    else:  # the k + 1 densest rows, ties at the cut taken in table order, then hotness order
        v = -np.partition(-dens, k)[k]
        gt = np.flatnonzero(dens > v)
        cand = np.r_[gt, np.flatnonzero(dens == v)[: k + 1 - len(gt)]]
    order = cand[np.lexsort((cand, -dens[cand]))]  # ties: table order, then hotness order
    n_sram = int(np.searchsorted(np.cumsum(sz[order]), sram_bytes, side="right"))
    rest = order[n_sram:]
    n_ddr = int(np.searchsorted(np.cumsum(dsz[rest]), ddr_bytes, side="right"))
    tier_of = np.full(len(rid), NAND, dtype=np.int8)
    tier_of[order[:n_sram]] = SRAM
    tier_of[rest[:n_ddr]] = DDR
    starts = np.r_[0, np.cumsum([len(ids[t]) for t in raw])]
    for k, t in enumerate(raw):
        sl_t = slice(starts[k], starts[k + 1])
        tier_t = tier_of[sl_t]
        keep = tier_t != NAND
        pid = rid[sl_t][keep]
        ptier = tier_t[keep]
        c_t = counts[t][keep]
        # local rows: hottest first within each tier (the order of ids[t] is by count)
        plocal = np.zeros(len(pid), dtype=np.int64)
        for code in (SRAM, DDR):
            m = ptier == code
            plocal[m] = np.arange(int(m.sum()))
        o = np.argsort(pid, kind="stable")
        out[t] = (
            pid[o],
            ptier[o],
            plocal[o],
            int(c_t[ptier == SRAM].sum()),
            int(c_t[ptier == DDR].sum()),
        )
    return out


def _whole_tables(
    raw: list[int],
    fill: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, int, int]],
    rows: list[int],
    slot: dict[int, int],
    lookups: np.ndarray,
    ddr_bytes: float,
) -> set[int]:
    """Raw tables that move entirely into DDR4 after the profiled hot rows were placed: by
    profiled lookups per table byte (ties: table order), while the DDR4 left over holds the
    whole table (``rows x slot``; the slots of its hot rows are reused). A table's rows already
    in SRAM stay there (their DDR4 slots stay empty)."""
    used = sum(int(np.count_nonzero(fill[t][1] == DDR)) * slot[t] for t in raw if t in fill)
    left = ddr_bytes - used
    out: set[int] = set()
    order = sorted(raw, key=lambda t: (-lookups[t] / max(rows[t] * slot[t], 1), t))
    for t in order:
        n_d = int(np.count_nonzero(fill[t][1] == DDR)) if t in fill else 0
        need = (rows[t] - n_d) * slot[t]
        if need <= left:
            out.add(t)
            left -= need
    return out


def _tt_shape(rows: int, dim: int, rank: int) -> TTShape:
    q = tt_q_factors(dim)
    side = max(2, math.ceil(rows ** (1 / 3)))
    p = (side, side, max(2, math.ceil(rows / (side * side))))
    return TTShape(p=p, q=q, ranks=(rank, rank))


def default_placement(header: TraceHeader, batches: Iterable[Batch], cfg: ScrecConfig) -> Placement:
    """The documented default plan (module docstring, steps 1-5)."""
    dev = cfg.device
    T = header.num_tables
    ids, counts, lookups = table_statistics(batches, T, cfg.profile_batches)
    dims = [s.dim for s in header.tables]
    rows = [int(r) for r in header.rows]
    row_bytes = [int(math.ceil(s.bytes_per_row)) for s in header.tables]
    # step 2: LPT on lookups
    load = np.zeros(cfg.n_devices)
    owner = np.zeros(T, dtype=np.int64)
    for t in np.argsort(-lookups, kind="stable").tolist():
        j = int(np.argmin(load))
        owner[t] = j
        load[j] += lookups[t]
    clock = dev.fpga.clock_hz
    tt_rate = dev.cores.tt.macs_per_second(clock) * dev.cores.n_tt
    cold_rate = dev.cold_row_peak_rate()
    tables: list[TablePlacement] = [
        TablePlacement(device=int(owner[t]), row_bytes=row_bytes[t], dim=dims[t]) for t in range(T)
    ]
    summary = []
    cores: list[tuple[int, int, int] | None] = []
    for j in range(cfg.n_devices):
        mine = [t for t in range(T) if owner[t] == j]
        sram_left = float(dev.onchip_bytes)
        ddr_bytes = dev.ddr_capacity_bytes * cfg.ddr_fraction
        ddr_burst = dev.ddr.burst_bytes
        slot = {t: max(1, -(-row_bytes[t] // ddr_burst)) * ddr_burst for t in mine}
        # step 3: TT tables, judged against the raw placement they would otherwise get
        if cfg.tt_policy == "auto" and dev.cores.n_tt > 0 and mine:
            fill = _fill_statistical(mine, ids, counts, row_bytes, slot, sram_left, ddr_bytes)
            whole = (
                _whole_tables(mine, fill, rows, slot, lookups, ddr_bytes)
                if cfg.sharding == "statistical"
                else set()
            )
            raw_t = {}
            for t in mine:
                # leave-one-out hits: a placed row seen c times predicts c - 1 future hits, so
                # rows seen once (most of a long-tailed table) do not count as covered
                ptier = fill[t][1]
                loo = cfg.coverage_estimate == "leave_one_out"
                hit_s = fill[t][3] - (int(np.count_nonzero(ptier == SRAM)) if loo else 0)
                hit_d = fill[t][4] - (int(np.count_nonzero(ptier == DDR)) if loo else 0)
                if t in whole:  # every row not in SRAM is in DDR4: nothing is cold
                    hit_d = lookups[t] - hit_s
                cold = lookups[t] - hit_s - hit_d
                raw_t[t] = cold / cold_rate + hit_d / _ddr_row_rate(dev, slot[t])
            remaining = sum(raw_t.values())
            tt_time = 0.0
            cand = []
            for t in mine:
                if lookups[t] == 0:
                    continue
                shape = _tt_shape(rows[t], dims[t], cfg.tt_rank)
                nbytes = tt_param_count(shape) * _FP32
                if nbytes < rows[t] * row_bytes[t]:
                    cand.append((raw_t[t] / nbytes, t, shape, nbytes))
            for _, t, shape, nbytes in sorted(cand, key=lambda c: (-c[0], c[1])):
                add = lookups[t] * tt_macs_per_row(shape) / tt_rate
                if nbytes <= sram_left and tt_time + add <= remaining - raw_t[t]:
                    tables[t].tt = shape
                    sram_left -= nbytes
                    tt_time += add
                    remaining -= raw_t[t]
        raw = [t for t in mine if tables[t].tt is None]
        if cfg.sharding == "statistical":
            # step 4: rows by count per byte, hottest first: SRAM, then DDR4
            fill = _fill_statistical(raw, ids, counts, row_bytes, slot, sram_left, ddr_bytes)
            # then whole tables into the DDR4 the profiled rows left free (rows never seen in
            # the profile are read from DDR4 instead of NAND)
            whole = _whole_tables(raw, fill, rows, slot, lookups, ddr_bytes)
            ddr_byte = 0
            sram_used = ddr_used = 0.0
            for t in raw:
                pid, ptier, plocal, n_s, _ = fill[t]
                n_d = int(np.count_nonzero(ptier == DDR))
                tp = tables[t]
                tp.ids, tp.tier, tp.local = pid, ptier, plocal
                tp.ddr_base_byte = ddr_byte
                if t in whole:  # the table's DDR4 region holds every row at its id
                    tp.local = np.where(ptier == DDR, pid, plocal)
                    tp.sram_below, tp.ddr_below = 0, rows[t]
                    n_d = rows[t]
                ddr_byte += n_d * slot[t]
                ddr_used += n_d * slot[t]
                sram_used += int(np.count_nonzero(ptier == SRAM)) * row_bytes[t]
        else:
            # ablation: the lowest-index rows of every table, in proportion to table size
            total = sum(rows[t] * row_bytes[t] for t in raw)
            f_s = min(1.0, sram_left / total) if total else 0.0
            total_ddr = sum(rows[t] * slot[t] for t in raw)
            f_d = min(1.0, ddr_bytes / total_ddr) if total_ddr else 0.0
            ddr_byte = 0
            sram_used = ddr_used = 0.0
            for t in raw:
                tp = tables[t]
                tp.sram_below = int(rows[t] * f_s)
                n_d = int(rows[t] * f_d)
                tp.ddr_below = min(rows[t], tp.sram_below + n_d)
                tp.ddr_base_byte = ddr_byte
                ddr_byte += (tp.ddr_below - tp.sram_below) * slot[t]
                sram_used += tp.sram_below * row_bytes[t]
                ddr_used += (tp.ddr_below - tp.sram_below) * slot[t]
        nand_byte = 0
        page = dev.nand.page_bytes
        for t in raw:
            tables[t].nand_base_byte = nand_byte
            nand_byte += -(-rows[t] * row_bytes[t] // page) * page
        if nand_byte > dev.ssd_capacity_bytes:
            raise ConfigError(
                f"the raw tables of device {j} need {nand_byte / 1e12:.2f} TB of NAND but a "
                f"SmartSSD holds {dev.ssd_capacity_bytes / 1e12:.2f} TB",
                where=f"screc.device{j}",
                fix="use more devices or TT-compress more tables",
            )
        sram_need = float(dev.onchip_bytes - sram_left) + sram_used
        pool_cycles = sum(lookups[t] * math.ceil(dims[t] / dev.cores.emb.lanes) for t in raw)
        macs = sum(lookups[t] * tt_macs_per_row(tables[t].tt) for t in mine if tables[t].tt)
        mix = plan_core_mix(dev, float(pool_cycles), float(macs), sram_need)
        cores.append(mix)
        summary.append(
            {
                "tables": float(len(mine)),
                "tt_tables": float(len(mine) - len(raw)),
                "sram_bytes": sram_need,
                "ddr4_bytes": ddr_used,
                "nand_bytes": float(nand_byte),
                "lookups_profiled": float(sum(lookups[t] for t in mine)),
                "emb_cores": float(mix[0]),
                "tt_cores": float(mix[1]),
                "mlp_cores": float(mix[2]),
            }
        )
    return Placement(tables, cfg.n_devices, summary, cores)


def plan_core_mix(
    dev: SmartSSDParams, pool_cycles: float, tt_macs: float, sram_bytes: float
) -> tuple[int, int, int]:
    """The per-device core configuration of the default plan (SCRec's "adaptively configuring
    memory-centric and compute-centric cores", screc.md §1.3 [INF]).

    Among the mixes that fit the FPGA budget and leave at least ``sram_bytes`` of on-chip SRAM
    (the cores' buffers take BRAM), with the device's MLP-core count kept, pick the one that
    minimises the larger of the EMB cores' pooling time (``pool_cycles`` / n_emb) and the TT
    cores' time (``tt_macs`` / (n_tt x MAC rate)); ties go to fewer cores. A device with no
    profiled work keeps ``dev.cores``. Memory time (DDR4, NAND) is not a function of the mix and
    is left out of the choice.
    """
    from simrec.sim.components.fpga import CoreConfig

    base = dev.cores
    if pool_cycles <= 0 and tt_macs <= 0:
        return (base.n_emb, base.n_tt, base.n_mlp)
    clock = dev.fpga.clock_hz
    best: tuple[float, int, int, int] | None = None
    avail = dev.fpga.available
    max_emb = max(1, avail.lut // max(base.emb.cost.lut, 1))
    max_tt = avail.dsp // max(base.tt.cost.dsp, 1) if base.tt.cost.dsp else 0
    for n_tt in range(0 if tt_macs <= 0 else 1, max_tt + 1):
        for n_emb in range(1 if pool_cycles > 0 else 0, max_emb + 1):
            cc = CoreConfig(n_emb, n_tt, base.n_mlp, base.emb, base.tt, base.mlp)
            try:
                cc.check(dev.fpga)
            except ConfigError:
                break  # more EMB cores only need more
            if dev.fpga.onchip_bytes(cc.resources()) < sram_bytes:
                break
            t_pool = pool_cycles / (n_emb * clock) if n_emb else 0.0
            t_tt = tt_macs / (n_tt * base.tt.macs_per_second(clock)) if n_tt else 0.0
            key = (max(t_pool, t_tt), n_emb + n_tt, n_emb, n_tt)
            if best is None or key < best:
                best = key
    if best is None:
        return (base.n_emb, base.n_tt, base.n_mlp)
    return (best[2], best[3], base.n_mlp)


class ScrecSystem:
    """The SCRec server (see the module docstring)."""

    kind = "screc"

    def __init__(
        self,
        config: ScrecConfig | None = None,
        mode: Literal["fast", "fine"] = "fast",
        model: DlrmModel | None = None,
        name: str = "screc",
    ) -> None:
        self.cfg = config if config is not None else ScrecConfig()
        self.mode = mode
        self.model = model
        self.name = name
        self.placement: Placement | PlanPlacement | None = None
        self.devices_report: list[dict[str, Any]] = []
        self.device_names: list[str] = [f"ssd{j}" for j in range(self.cfg.n_devices)]

    @classmethod
    def from_hw(
        cls,
        hw: Any,
        mode: Literal["fast", "fine"] = "fast",
        model: DlrmModel | None = None,
        overrides: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> ScrecSystem:
        """The SCRec system of a hardware config (:class:`simrec.hw.schema.SystemConfig`).

        Devices: every ``csd`` device in file order (they must have equal parameters: the model
        has one device type). Host CPU: the config's ``cpu`` devices (sockets added up). Host
        uplink: the ``bandwidth`` of the switch that the CSDs' pcie links reach (None = no shared
        limit). ``overrides`` sets other :class:`ScrecConfig` fields (``tt_rank``, ``mlp_on``,
        ``sharding``, ...).
        """
        src = getattr(hw, "source", None)
        csds = list(hw.devices_of_kind("csd"))
        if not csds:
            raise ConfigError(
                f"system {hw.name!r} has no csd device, so it is not an SCRec system",
                path=src,
                where="devices",
                fix="add csd devices (see hwconfigs/screc.yaml) or simulate it as cpu_dram/multi_gpu",
            )
        params = [hw.csd_params(n) for n in csds]

        def same(p: SmartSSDParams) -> SmartSSDParams:
            return replace(p, ddr=replace(p.ddr, name=""))

        for n, p in zip(csds[1:], params[1:], strict=True):
            if same(p) != same(params[0]):
                raise ConfigError(
                    f"csd {n!r} differs from {csds[0]!r}; the SCRec model has one device type",
                    path=src,
                    where=f"devices.{n}",
                    fix="give every csd the same parameters (a YAML anchor, e.g. ssd1: *smartssd)",
                )
        uplinks = set()
        for n in csds:
            _, link = hw.host_link_of(n)
            other = [e for e in link.endpoints if e != n][0]
            dev = hw.devices[other]
            uplinks.add(getattr(dev, "bandwidth", None) if dev.kind == "switch" else None)
        if len(uplinks) != 1:
            raise ConfigError(
                "the csds reach the host through switches of different bandwidths",
                path=src,
                where="links",
                fix="join every csd to one switch (or to switches of equal bandwidth)",
            )
        kw: dict[str, Any] = {
            "n_devices": len(csds),
            "device": params[0],
            "host_uplink_bandwidth": uplinks.pop(),
        }
        cpus = list(hw.devices_of_kind("cpu"))
        if cpus:
            cp = hw.params(cpus[0])
            kw["host_cpu"] = replace(
                cp, sockets=sum(hw.devices[c].sockets for c in cpus), name="+".join(cpus)
            )
        kw.update(overrides or {})
        try:
            cfg = ScrecConfig(**kw)
        except TypeError as e:
            raise ConfigError(
                f"bad SCRec option: {e}",
                path=src,
                where="screc options",
                fix="use fields of ScrecConfig: " + ", ".join(f.name for f in fields(ScrecConfig)),
            ) from None
        sim = cls(cfg, mode=mode, model=model, name=name or hw.name)
        sim.device_names = csds
        return sim

    def simulate(
        self,
        batches: Iterable[Batch] | Sequence[Batch],
        header: TraceHeader,
        load: LoadSpec | None = None,
        source: str | None = None,
        placement: Placement | PlanPlacement | None = None,
    ) -> SimResult:
        """Place (unless ``placement`` is given), then run the batches; returns a SimResult.

        ``batches`` must be re-iterable (a list or a :class:`~simrec.trace.format.TraceReader`)
        when the placement is computed from it.
        """
        wall0 = time.perf_counter()
        cfg = self.cfg
        pl = placement if placement is not None else default_placement(header, batches, cfg)
        if pl.num_tables != header.num_tables:
            raise ConfigError(
                f"the placement has {pl.num_tables} tables, the trace {header.num_tables}",
                path=source,
                where="placement",
                fix="build the placement from this trace",
            )
        if pl.n_devices > cfg.n_devices:
            raise ConfigError(
                f"the placement uses {pl.n_devices} devices but the system has {cfg.n_devices}",
                path=source,
                where="placement",
                fix="give n_devices at least as large as the plan's device count",
            )
        self.placement = pl
        env = simpy.Environment()
        dev_params = [cfg.device] * cfg.n_devices
        if cfg.plan_cores:
            for j, cc in enumerate(getattr(pl, "cores", None) or []):
                if cc is not None:
                    cores = replace(cfg.device.cores, n_emb=cc[0], n_tt=cc[1], n_mlp=cc[2])
                    dev_params[j] = replace(cfg.device, cores=cores)  # checks the FPGA budget
        names = self.device_names
        if len(names) != cfg.n_devices:
            names = [f"ssd{j}" for j in range(cfg.n_devices)]
        devs = [SmartSSD(env, dev_params[j], self.mode, names[j]) for j in range(cfg.n_devices)]
        up = Server(env, 1, "host_uplink")
        down = Server(env, 1, "host_downlink")
        up_bw = cfg.host_uplink_bandwidth

        def to_host(d: SmartSSD, nbytes: float) -> Generator[Any, Any, None]:
            procs = [env.process(d.to_host(nbytes))]
            if up_bw:
                procs.append(env.process(up.serve(nbytes / up_bw)))
            yield env.all_of(procs)

        def from_host(d: SmartSSD, nbytes: float) -> Generator[Any, Any, None]:
            procs = [env.process(d.from_host(nbytes))]
            if up_bw:
                procs.append(env.process(down.serve(nbytes / up_bw)))
            yield env.all_of(procs)

        lanes = cfg.device.cores.emb.lanes
        tt_spec = cfg.device.cores.tt
        page = cfg.device.nand.page_bytes
        burst = cfg.device.ddr.burst_bytes
        model = self.model
        host = cfg.host_cpu
        breakdown = dict.fromkeys(
            ("embedding", "sram", "ddr4", "nand", "tt", "pool", "to_host", "dense"), 0.0
        )
        n = len(devs)

        ctx = _Ctx(
            lanes=lanes,
            sram_bpc=cfg.device.sram_bytes_per_cycle,
            burst=burst,
            page=page,
            tt=tt_spec,
        )

        def device_stage(j: int, batch: Batch, w: _Work) -> Generator[Any, Any, dict[str, float]]:
            d = devs[j]
            n_look = w.lookups
            sram_cycles, sram_rows = w.sram_cycles, w.sram_rows
            pool_cycles, tt_macs = w.pool_cycles, w.tt_macs
            ddr_groups, nand_pages = w.ddr, w.nand
            t0 = float(env.now)
            times: dict[str, float] = {}
            yield env.process(from_host(d, n_look * cfg.index_bytes))
            parts: dict[str, Any] = {}
            if sram_cycles:
                parts["sram"] = env.process(d.sram_cycles(sram_cycles, sram_rows))
            for nb, arrs in ddr_groups.items():
                starts = np.concatenate(arrs) if len(arrs) > 1 else arrs[0]
                parts[f"ddr4_{nb}"] = env.process(d.read_ddr(starts, nb))
            if nand_pages:
                pages = np.concatenate(nand_pages)
                parts["nand"] = env.process(d.read_cold_rows(pages))
            if tt_macs:
                parts["tt"] = env.process(d.tt_macs(tt_macs, w.tt_rows))
            if pool_cycles:
                parts["pool"] = env.process(d.pool_cycles(pool_cycles, w.pool_rows))
            if parts:
                yield env.all_of(list(parts.values()))
            for key, pr in parts.items():
                k2 = "ddr4" if key.startswith("ddr4") else key
                times[k2] = max(times.get(k2, 0.0), float(pr.value))
            t1 = float(env.now)
            yield env.process(to_host(d, batch.batch_size * pl.out_bytes_per_sample(j)))
            times["to_host"] = float(env.now) - t1
            times["embedding"] = float(env.now) - t0
            return times

        def serve_batch(batch: Batch) -> Generator[Any, Any, None]:
            t0 = float(env.now)
            works = [_Work() for _ in range(n)]
            pl.collect(batch, works, ctx)
            procs = [env.process(device_stage(j, batch, works[j])) for j in range(n)]
            bottom = []
            if model is not None and cfg.mlp_on == "fpga":
                share = -(-batch.batch_size // n)
                layers = (model.num_dense, *model.bottom_mlp)
                bottom = [env.process(devs[j].run_mlp(share, layers)) for j in range(n)]
            res = yield env.all_of(procs)
            vals = list(res.values())
            breakdown["embedding"] += float(env.now) - t0
            for key in ("sram", "ddr4", "nand", "tt", "pool", "to_host"):
                breakdown[key] += max(v.get(key, 0.0) for v in vals)
            if model is None:
                return
            t1 = float(env.now)
            if cfg.mlp_on == "fpga":
                if bottom:
                    yield env.all_of(bottom)
                share = -(-batch.batch_size // n)
                width = model.num_features * model.emb_dim * _FP32
                # top part as MACs on the MLP cores: (interaction + top) FLOPs / 2 per sample
                top_macs = (model.interaction_flops() + model.top_flops()) / 2
                dense = []
                for j in range(n):
                    dense.append(
                        env.process(
                            _top_on_device(devs[j], share, width, top_macs, to_host, from_host)
                        )
                    )
                yield env.all_of(dense)
            else:
                secs = host.mlp_time_s(model.dense_flops() * batch.batch_size, host.cores)
                yield env.timeout(secs)
            breakdown["dense"] += float(env.now) - t1

        spec = load or LoadSpec()
        it = batches if spec.max_batches is None else _take(batches, spec.max_batches)
        out = run_load(env, it, serve_batch, spec)
        end = out.end_s
        util: dict[str, float] = {}
        self.devices_report = []
        counters: dict[str, float] = {}
        for j, d in enumerate(devs):
            u = d.utilisation(end) if end > 0 else dict.fromkeys(d.utilisation(0.0), 0.0)
            summ = pl.summary[j] if j < len(pl.summary) else {}
            self.devices_report.append(
                {"name": d.name, "utilisation": u, "placement": summ, **d.counters}
            )
            for k, v in u.items():
                util[f"{d.name}.{k}"] = v
            for k, v in d.counters.items():
                counters[k] = counters.get(k, 0.0) + float(v)
        if end > 0:
            util["host_uplink"] = up.stats(end).utilisation
            util["host_downlink"] = down.stats(end).utilisation
        counters["nand_page_reads"] = float(sum(d.nand.page_reads for d in devs))
        counters["ddr4_bursts"] = float(sum(d.ddr.bursts for d in devs))
        res = SimResult.build(
            system=self.name,
            kind=self.kind,
            mode=self.mode,
            load=out,
            breakdown_s=breakdown,
            utilisation=util,
            counters=counters,
            wall_s=time.perf_counter() - wall0,
            load_kind=spec.kind,
        )
        res.extra["devices"] = self.devices_report
        return res


def _top_on_device(
    d: SmartSSD,
    samples: int,
    width_bytes: int,
    macs_per_sample: float,
    to_host: Any,
    from_host: Any,
) -> Generator[Any, Any, None]:
    """Interaction inputs in, interaction + top MLP on the MLP cores, scores out."""
    yield from from_host(d, samples * width_bytes)
    c = d.p.cores
    if c.n_mlp == 0:
        raise ConfigError(
            "mlp_on='fpga' but the device has no MLP core",
            where=f"{d.name}.cores.n_mlp",
            fix="give the devices an MLP core or use mlp_on='host'",
        )
    rate = c.mlp.mac_units * d.p.fpga.clock_hz * c.mlp.efficiency
    d.counters["mlp_macs"] += samples * macs_per_sample
    yield from d._spread(d.mlp, samples * macs_per_sample / rate)
    yield from to_host(d, samples * _FP32)


def _take(batches: Iterable[Batch], k: int) -> Iterable[Batch]:
    for i, b in enumerate(batches):
        if i >= k:
            return
        yield b
