"""Multi-GPU system: sharded embeddings in HBM (or host DRAM over PCIe), all-to-all, MLPs on GPUs.

What the model covers
---------------------
* **Sharding**: every table is cut into *bands* of row ranks, each on one GPU's HBM or in host DRAM
  (served to one GPU over its PCIe link, as UVM/zero-copy does). Without a plan: ``sharding="table"``
  puts whole tables, largest first, on the GPU with the fewest bytes that still has room;
  ``sharding="row"`` cuts each table into one equal band per GPU. A band that fits no HBM goes to
  host DRAM. A :class:`simrec.shard.plan.Plan` gives the bands explicitly (tiers ``hbm`` or
  ``host_dram``/``dram``; row orders ``index``, ``hotness`` and ``hot_set`` map rows to ranks).
* **Caching model (stated)**. Rows in HBM bands are local. Rows in host bands are, per batch, the
  *distinct* rows of each table's band (rows repeated within a batch are fetched once). Two caches:

  - *static*: a plan whose ``hot_set`` (or ``hotness``-ordered) band lives in HBM;
  - *dynamic* (``uvm_cache``, FBGEMM's UVM-caching TBE style): each GPU that serves host bands keeps
    a software-managed row cache in its HBM, one line per row (line size = the largest row of the
    tables it caches), capacity in rows or as a share of the HBM its own bands leave free, fully
    associative LRU over ``(table, row)`` keys. Per batch the cache sees, table by table, the
    batch's distinct rows of the band in ascending row order (FBGEMM's prefetch works on sorted
    unique indices); a row hits when fewer than ``capacity`` distinct other rows were accessed
    since its last access (LRU stack distance, :class:`LruRowCache`). The lookups of hit rows are
    gathered from HBM with the HBM bands' lookups (same calibrated gather kernel); the missed rows
    cross PCIe (and load the host DRAM) exactly as uncached host rows do, and are inserted.
    So a batch costs ``hit lookups x HBM gather + missed rows x PCIe/DRAM``; with ``rows=0`` it is
    the uncached model. Not charged: writing missed rows into the cache, the cache-lookup kernel,
    and the pooling of missed rows' lookups (as for uncached host rows).
* **GPU L2** (when the GPU has an ``l2_bandwidth``): each GPU keeps a fully associative LRU of
  ``l2_size // line`` rows (line = the largest of its HBM tables' rows rounded up to 32 B sectors)
  over ``(table, row)`` keys of its HBM bands. Every lookup of an HBM band, in index order and with
  repeats (one batch's lookups after the previous batch's, the L2 keeping its state between
  batches), hits when its LRU stack distance is below that capacity (:class:`LruRowCache`, the
  code of the UVM cache); hits are priced at the L2 bandwidth, misses as HBM reads. So a hot Zipf
  head or a table smaller than the L2 is served from the L2 once warm. Not modelled: the index,
  offset and output streams that share the L2, its two partitions and its set associativity.
* **Pooled outputs** (when the GPU has an ``output_efficiency``): the gather kernel of every GPU
  that owns a band of a table writes one row of that table per bag of the batch (``B`` rows of
  ``bytes_per_row``; partial sums for row-wise bands), priced as HBM writes.
* **Per batch** (data-parallel samples, model-parallel embeddings, ``B/G`` samples per GPU):
  1. every GPU runs one fused gather kernel for its HBM lookups (calibrated efficiency vs row size,
     L2 hits and pooled outputs as above, :mod:`simrec.sim.components.gpu`; a kernel also runs
     when a GPU has only outputs to write) while its PCIe link brings its host-band rows (TLP overhead
     per row, counted once) and, when host DRAM parameters are given, the host socket's
     :class:`~simrec.sim.components.dram.Dram` reads those rows (GPUs of one socket share its
     channels); the GPU's embedding time is the longest of the three (prefetch pipelined with the
     gather, as FBGEMM's prefetch pipeline does);
  2. the pooled (or, for row-wise bands, partial) embeddings go through one all-to-all on the
     network (:mod:`simrec.sim.components.network`), with the largest per-pair message of any GPU;
  3. each GPU runs the bottom MLP, interaction and top MLP of its ``B/G`` samples (data-parallel
     MLPs, one kernel each). With ``overlap_bottom_mlp=True`` (default) the bottom MLP runs on a
     second stream from the batch's start, concurrently with steps 1-2, and the interaction waits
     for both; the assumption is that the two streams do not slow each other down (no SM or HBM
     contention is modelled), so the batch takes ``max(bottom, embedding + all-to-all) +
     interaction + top``. ``overlap_bottom_mlp=False`` runs the three kernels after step 2.
* **Granularity**: ``mode="fast"`` computes each GPU's gather, PCIe transfer and host DRAM chunk
  as one service time. ``mode="fine"``: one simpy event per row request of the gather
  (:meth:`Gpu.gather_fine <simrec.sim.components.gpu.Gpu.gather_fine>`, ``sm_count`` request
  slots; L2 hits and output rows are requests too), per row transfer on PCIe (:meth:`PcieLink.transfer_rows_fine
  <simrec.sim.components.pcie.PcieLink.transfer_rows_fine>`) and per DRAM command in host DRAM (the
  FR-FCFS controller of :mod:`simrec.sim.components.dram`). Both agree within 5% once a GPU gathers
  a few thousand rows per batch (tests/test_sim_multi_gpu_fine.py).
* **Memory**: batches are streamed (one batch's arrays at a time); the LRU state is one integer per
  ``(table, row)`` key of the cached tables (zero pages, touched lazily) plus O(distinct rows seen).
* **Load**: as for every system (:mod:`simrec.sim.results`).

What it leaves out: set associativity and LFU replacement in the dynamic cache, PCIe
switch/root-complex sharing (each GPU's link is its own), host DRAM row-buffer state between a
table's bands (host rows are laid out as the whole table), contention between the overlapped
streams, gradient traffic and optimizer state (inference only).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np
import simpy

from simrec.errors import ConfigError
from simrec.sim.components.dram import Dram, DramParams, unique_first
from simrec.sim.components.gpu import Gpu, GpuParams
from simrec.sim.components.network import Network, NetworkParams
from simrec.sim.components.pcie import PcieLink, PcieParams
from simrec.sim.results import LoadSpec, SimResult, run_load
from simrec.trace.format import Batch, TraceHeader
from simrec.trace.stackdist import StackDistanceCounter
from simrec.workloads.dlrm import DlrmModel

__all__ = ["LruRowCache", "MultiGpuSystem", "TableShards", "UvmCache", "parse_uvm_cache"]

HOST_TIERS = ("host_dram", "dram", "ddr", "host")


@dataclass(frozen=True)
class UvmCache:
    """The size of the software-managed HBM row cache in front of host-DRAM (UVM) bands.

    Exactly one of ``rows`` (cache lines, one row each) or ``hbm_share`` (a fraction in (0, 1] of
    the HBM that the GPU's own bands leave free) is given. ``policy`` is ``"lru"``.
    """

    policy: Literal["lru"] = "lru"
    rows: int | None = None
    hbm_share: float | None = None

    def __post_init__(self) -> None:
        if self.policy != "lru":
            raise ConfigError(
                f"unknown UVM cache policy {self.policy!r}",
                where="uvm cache policy",
                fix="use lru (e.g. --uvm-cache lru:0.1)",
            )
        if (self.rows is None) == (self.hbm_share is None):
            raise ConfigError(
                "give the UVM cache size either in rows or as a share of free HBM",
                where="uvm cache size",
                fix="e.g. lru:100000 (rows) or lru:0.1 / lru:10% (share of free HBM)",
            )
        if self.rows is not None and self.rows < 0:
            raise ConfigError(
                f"UVM cache rows must be >= 0, got {self.rows}",
                where="uvm cache size",
                fix="give a non-negative number of rows",
            )
        if self.hbm_share is not None and not 0 < self.hbm_share <= 1:
            raise ConfigError(
                f"UVM cache share of free HBM must be in (0, 1], got {self.hbm_share}",
                where="uvm cache size",
                fix="e.g. lru:0.1 or lru:10%",
            )

    def capacity_rows(
        self, free_bytes: float, line_bytes: float, gpu: str = "gpu", source: str | None = None
    ) -> int:
        """Cache lines of ``line_bytes`` on a GPU with ``free_bytes`` of HBM left by its bands."""
        if self.rows is not None:
            if self.rows * line_bytes > free_bytes:
                raise ConfigError(
                    f"a UVM cache of {self.rows} rows x {line_bytes:.0f} B does not fit the "
                    f"{free_bytes / 2**30:.2f} GiB of HBM that {gpu}'s bands leave free",
                    path=source,
                    where=f"device {gpu!r}, uvm cache",
                    fix=f"use at most {int(free_bytes // line_bytes)} rows, or a share (lru:0.5)",
                )
            return int(self.rows)
        assert self.hbm_share is not None
        return int(self.hbm_share * free_bytes // line_bytes)


def parse_uvm_cache(text: str | None) -> UvmCache | None:
    """Parse the ``--uvm-cache`` option: ``none``, ``lru:ROWS`` (an integer number of rows) or
    ``lru:SHARE`` (a fraction with a decimal point, e.g. ``lru:0.1``, or a percentage ``lru:10%``
    of the HBM the GPU's own bands leave free)."""
    if text is None or text.strip().lower() in ("", "none", "off", "0"):
        return None
    policy, sep, size = text.strip().lower().partition(":")
    fix = "use none, lru:ROWS (e.g. lru:100000) or lru:SHARE (e.g. lru:0.1 or lru:10%)"
    if policy != "lru" or not sep:
        raise ConfigError(
            f"cannot read the UVM cache {text!r}: only the lru policy with a size is known",
            where="--uvm-cache",
            fix=fix,
        )
    try:
        if size.endswith("%"):
            return UvmCache("lru", hbm_share=float(size[:-1]) / 100.0)
        if any(c in size for c in ".e"):
            return UvmCache("lru", hbm_share=float(size))
        return UvmCache("lru", rows=int(size))
    except ValueError:
        raise ConfigError(
            f"cannot read the UVM cache size {size!r}", where="--uvm-cache", fix=fix
        ) from None


@numba.njit(cache=True, nogil=True)
def _relabel(
    tkeys: np.ndarray, tvals: np.ndarray, keys: np.ndarray, out: np.ndarray, nxt: int
) -> int:  # pragma: no cover - compiled; checked through LruRowCache(dense=True) in the tests
    """Dense id of every key via an open-addressing table (``tkeys`` -1 = empty, size a power of
    two, at most half full); new keys get ``nxt, nxt+1, ...``. Returns the next free id."""
    mask = tkeys.shape[0] - 1
    for i in range(keys.shape[0]):
        k = keys[i]
        h = (k * 0x9E3779B97F4A7C15) & mask
        while True:
            cur = tkeys[h]
            if cur == k:
                out[i] = tvals[h]
                break
            if cur == -1:
                tkeys[h] = k
                tvals[h] = nxt
                out[i] = nxt
                nxt += 1
                break
            h = (h + 1) & mask
    return nxt


@numba.njit(cache=True, nogil=True)
def _rehash(
    okeys: np.ndarray, ovals: np.ndarray, nkeys: np.ndarray, nvals: np.ndarray
) -> None:  # pragma: no cover - compiled
    mask = nkeys.shape[0] - 1
    for i in range(okeys.shape[0]):
        k = okeys[i]
        if k == -1:
            continue
        h = (k * 0x9E3779B97F4A7C15) & mask
        while nkeys[h] != -1:
            h = (h + 1) & mask
        nkeys[h] = k
        nvals[h] = ovals[i]


#: Key spaces above this many keys are relabelled densely (a hash table from key to first-seen
#: order, 32 bytes per distinct key at most half full) before the stack-distance counter, whose state is one integer per key: numpy backs large
#: zeroed arrays with 2 MiB huge pages, so sparse keys in a huge space would touch most of it.
DENSE_KEY_LIMIT = 1 << 22


class LruRowCache:
    """A fully associative LRU cache of embedding rows (one row per line), as FBGEMM's UVM-caching
    embedding bags keep in HBM (theirs is 32-way set associative; this one is fully associative).

    Keys are ``(table, row)`` pairs (``key_offsets[table] + row``). :meth:`access` takes a batch's
    *distinct* rows of one table (the caller passes them sorted, as FBGEMM's prefetch sees the
    unique indices) and returns which were resident; every accessed row becomes most recent and
    missed rows are inserted, evicting the least recent. A reference hits exactly when its LRU
    stack distance (distinct other rows accessed since its previous access,
    :mod:`simrec.trace.stackdist`) is below ``capacity``; the counter is O(N log N) and keeps
    O(key space) state, nothing per reference. Key spaces above :data:`DENSE_KEY_LIMIT` (or with
    ``dense=True``) are first relabelled in first-seen order, so the state is O(distinct rows).
    """

    def __init__(
        self,
        capacity: int,
        key_offsets: dict[int, int],
        key_space: int,
        line_bytes: float = 0.0,
        dense: bool | None = None,
    ) -> None:
        self.capacity = int(capacity)
        self.key_offsets = dict(key_offsets)
        self.line_bytes = float(line_bytes)
        self.dense = int(key_space) > DENSE_KEY_LIMIT if dense is None else bool(dense)
        if self.dense:
            self._tkeys = np.full(1 << 12, -1, dtype=np.int64)
            self._tvals = np.zeros(1 << 12, dtype=np.int64)
            self._next = 0
            self._sd = StackDistanceCounter(1024, growable=True)
        else:
            self._sd = StackDistanceCounter(max(int(key_space), 1))
        self.refs = 0
        self.hits = 0

    def access(self, table: int, rows: np.ndarray) -> np.ndarray:
        """Access distinct ``rows`` of ``table`` in the given order; boolean hit mask."""
        keys = np.asarray(rows, dtype=np.int64) + self.key_offsets[table]
        if self.dense:
            need = 2 * (self._next + len(keys))
            if need > len(self._tkeys):
                size = len(self._tkeys)
                while size < need:
                    size *= 2
                nk = np.full(size, -1, dtype=np.int64)
                nv = np.zeros(size, dtype=np.int64)
                _rehash(self._tkeys, self._tvals, nk, nv)
                self._tkeys, self._tvals = nk, nv
            ids = np.empty(len(keys), dtype=np.int64)
            self._next = _relabel(self._tkeys, self._tvals, keys, ids, self._next)
            keys = ids
        d = np.empty(len(keys), dtype=np.int64)
        self._sd.update(keys, out=d)
        hit = (d >= 0) & (d < self.capacity)
        self.refs += len(keys)
        self.hits += int(hit.sum())
        return hit


@dataclass
class TableShards:
    """Bands of one table: ``starts[k]`` is the first rank of band k (ascending, starts[0] = 0);
    ``gpu[k]`` the serving GPU; ``host[k]`` whether the band is in host DRAM; ``rank_of_row`` maps a
    row id to its rank (None: the identity)."""

    starts: np.ndarray
    gpu: np.ndarray
    host: np.ndarray
    rank_of_row: np.ndarray | None = None


class MultiGpuSystem:
    """G GPUs with HBM, a switch network between them and a PCIe link each to the host."""

    kind = "multi_gpu"

    def __init__(
        self,
        gpus: list[GpuParams],
        network: NetworkParams,
        pcie: list[PcieParams],
        host_capacity_bytes: float,
        model: DlrmModel | None = None,
        sharding: Literal["table", "row"] = "table",
        plan: Any | None = None,
        gpu_names: list[str] | None = None,
        host_names: list[str] | None = None,
        name: str = "multi_gpu",
        mode: str = "fast",
        host_drams: list[DramParams] | None = None,
        gpu_host: list[int] | None = None,
        uvm_cache: UvmCache | None = None,
        overlap_bottom_mlp: bool = True,
    ) -> None:
        if mode not in ("fast", "fine"):
            raise ConfigError(
                f"the multi_gpu system has no {mode!r} granularity",
                where="--mode",
                fix="use --mode fast (transaction level) or --mode fine (one event per request)",
            )
        if not gpus:
            raise ConfigError("a multi_gpu system needs GPUs", where="devices", fix="add gpus")
        if len(pcie) != len(gpus):
            raise ConfigError(
                f"{len(gpus)} GPUs but {len(pcie)} PCIe links",
                where="links",
                fix="give every GPU one pcie link to the host",
            )
        if network.npus != len(gpus):
            raise ConfigError(
                f"the network joins {network.npus} endpoints but the system has {len(gpus)} GPUs",
                where="links",
                fix="make the nvlink/network members the system's GPUs",
            )
        if sharding not in ("table", "row"):
            raise ConfigError(
                f"unknown sharding {sharding!r}", where="sharding", fix="use table or row"
            )
        self.gpus = gpus
        self.network = network
        self.pcie = pcie
        self.host_capacity_bytes = host_capacity_bytes
        self.model = model
        self.sharding = sharding
        self.plan = plan
        self.gpu_names = gpu_names or [f"gpu{i}" for i in range(len(gpus))]
        self.host_names = host_names or ["host"]
        self.host_drams = host_drams or []
        self.gpu_host = gpu_host or [0] * len(gpus)
        if self.host_drams and (
            len(self.gpu_host) != len(gpus) or max(self.gpu_host) >= len(self.host_drams)
        ):
            raise ConfigError(
                "every GPU needs the index of the host DRAM that serves it",
                where="gpu_host",
                fix="give one host DRAM index per GPU",
            )
        self.name = name
        self.mode = mode
        self.uvm_cache = uvm_cache
        self.overlap_bottom_mlp = bool(overlap_bottom_mlp)

    @classmethod
    def from_hw(
        cls,
        hw: Any,
        model: DlrmModel | None = None,
        sharding: Literal["table", "row"] = "table",
        plan: Any | None = None,
        mode: str = "fast",
        uvm_cache: UvmCache | str | None = None,
        overlap_bottom_mlp: bool = True,
    ) -> MultiGpuSystem:
        """Build from a :class:`simrec.hw.SystemConfig`: its GPUs, network and PCIe links.

        ``uvm_cache`` is a :class:`UvmCache` or its CLI text (see :func:`parse_uvm_cache`)."""
        if isinstance(uvm_cache, str):
            uvm_cache = parse_uvm_cache(uvm_cache)
        names = list(hw.devices_of_kind("gpu"))
        if not names:
            raise ConfigError(
                f"system {hw.name!r} has no gpu device",
                path=hw.source,
                where="devices",
                fix="use a config with gpus (e.g. the multi_gpu preset)",
            )
        gpus = [hw.gpu_params(n) for n in names]
        pcie = []
        for n in names:
            links = [
                ln
                for ln, lk in hw.links.items()
                if lk.kind == "pcie" and n in (getattr(lk, "endpoints", None) or [])
            ]
            if len(links) != 1:
                raise ConfigError(
                    f"gpu {n!r} has {len(links)} pcie links; the multi_gpu system needs one",
                    path=hw.source,
                    where=f"links (endpoints with {n!r})",
                    fix="give every gpu exactly one pcie link towards the host",
                )
            pcie.append(hw.params(links[0]))
        net = hw.network_params()
        hosts = [n for n, d in hw.memories().items() if d.kind == "dram"]
        cap = sum(hw.capacity_of(n) for n in hosts)
        # the host DRAM of each GPU: pcie link -> (switch ->) cpu -> its attached dram
        gpu_host = []
        for n in names:
            lk = next(
                lk
                for lk in hw.links.values()
                if lk.kind == "pcie" and n in (getattr(lk, "endpoints", None) or [])
            )
            other = [e for e in lk.endpoints if e != n][0]
            seen = set()
            while hw.device(other).kind == "switch" and other not in seen:
                seen.add(other)
                other = getattr(hw.device(other), "attached_to", None) or other
            drams = [
                m for m, d in hw.memories().items() if d.kind == "dram" and d.attached_to == other
            ]
            gpu_host.append(hosts.index(drams[0]) if drams else -1)
        host_drams = [hw.params(h) for h in hosts] if hosts and min(gpu_host) >= 0 else None
        return cls(
            gpus,
            net,
            pcie,
            cap,
            model=model,
            sharding=sharding,
            plan=plan,
            gpu_names=names,
            host_names=hosts,
            name=hw.name,
            mode=mode,
            host_drams=host_drams,
            gpu_host=gpu_host if host_drams else None,
            uvm_cache=uvm_cache,
            overlap_bottom_mlp=overlap_bottom_mlp,
        )

    # ------------------------------------------------------------------ placement
    def shard(self, header: TraceHeader, source: str | None = None) -> list[TableShards]:
        """Bands of every table (from the plan, or the default sharding); checks capacities."""
        shards = self._from_plan(header) if self.plan is not None else self._default(header)
        self._check_capacity(header, shards, source)
        return shards

    def caches(
        self, header: TraceHeader, shards: list[TableShards], source: str | None = None
    ) -> list[LruRowCache | None]:
        """One UVM row cache per GPU that serves host bands (None elsewhere or without a cache).

        The cache of GPU ``g`` holds rows of every table with a host band served by ``g``; a cache
        line is one row of the largest such row size; its capacity comes from :attr:`uvm_cache`
        (rows, or a share of the HBM the GPU's bands leave free) and must fit that free HBM.
        """
        G = len(self.gpus)
        if self.uvm_cache is None:
            return [None] * G
        used = self._check_capacity(header, shards, source)
        rb = self._row_bytes(header)
        out: list[LruRowCache | None] = []
        for g in range(G):
            tables = [t for t, s in enumerate(shards) if bool(np.any(s.host & (s.gpu == g)))]
            if not tables:
                out.append(None)
                continue
            line = float(max(rb[t] for t in tables))
            free = max(self.gpus[g].hbm_capacity_bytes - float(used[g]), 0.0)
            cap = self.uvm_cache.capacity_rows(free, line, self.gpu_names[g], source)
            offsets, key = {}, 0
            for t in tables:
                offsets[t] = key
                key += int(header.rows[t])
            out.append(LruRowCache(cap, offsets, key, line))
        return out

    def l2_caches(self, header: TraceHeader, shards: list[TableShards]) -> list[LruRowCache | None]:
        """One L2 model per GPU whose parameters price L2 hits (None elsewhere): an LRU over the
        rows of the GPU's HBM bands, ``l2_bytes // line`` rows, line = the largest such row
        rounded up to whole 32 B sectors (as the UVM cache sizes its lines)."""
        rb = self._row_bytes(header)
        out: list[LruRowCache | None] = []
        for g, p in enumerate(self.gpus):
            tables = [t for t, s in enumerate(shards) if bool(np.any(~s.host & (s.gpu == g)))]
            if not p.l2_modelled or not tables:
                out.append(None)
                continue
            line = float(max(p.l2_line_bytes(rb[t]) for t in tables))
            offsets, key = {}, 0
            for t in tables:
                offsets[t] = key
                key += int(header.rows[t])
            out.append(LruRowCache(int(p.l2_bytes // line), offsets, key, line))
        return out

    def _row_bytes(self, header: TraceHeader) -> np.ndarray:
        return np.array([float(s.bytes_per_row) for s in header.tables])

    def _default(self, header: TraceHeader) -> list[TableShards]:
        g = len(self.gpus)
        rb = self._row_bytes(header)
        size = header.rows * rb
        free = np.array([p.hbm_capacity_bytes for p in self.gpus], dtype=np.float64)
        used = np.zeros(g)
        out: list[TableShards | None] = [None] * header.num_tables
        if self.sharding == "table":
            for t in np.argsort(-size, kind="stable").tolist():
                fits = np.nonzero(used + size[t] <= free)[0]
                if len(fits):
                    k = int(fits[np.argmin(used[fits])])
                    used[k] += size[t]
                    out[t] = TableShards(np.array([0]), np.array([k]), np.array([False]))
                else:
                    out[t] = TableShards(np.array([0]), np.array([t % g]), np.array([True]))
        else:
            for t in range(header.num_tables):
                rows = int(header.rows[t])
                starts = (np.arange(g) * rows) // g
                host = np.zeros(g, dtype=bool)
                for k in range(g):
                    stop = starts[k + 1] if k + 1 < g else rows
                    nbytes = (stop - starts[k]) * rb[t]
                    if used[k] + nbytes <= free[k]:
                        used[k] += nbytes
                    else:
                        host[k] = True
                out[t] = TableShards(starts, np.arange(g), host)
        return [s for s in out if s is not None]

    def _from_plan(self, header: TraceHeader) -> list[TableShards]:
        plan = self.plan
        gidx = {n: i for i, n in enumerate(self.gpu_names)}
        out = []
        for t, spec in enumerate(header.tables):
            try:
                tp = plan.table(spec.name)
            except KeyError:
                raise ConfigError(
                    f"the plan has no table {spec.name!r}",
                    where=f"table {spec.name!r}",
                    fix="plan every table of the trace",
                ) from None
            bands = tp.sorted_bands()
            starts, gpu, host = [], [], []
            owner = next((gidx[b.device] for b in bands if b.device in gidx), t % len(self.gpus))
            for b in bands:
                is_host = b.tier in HOST_TIERS or b.device in self.host_names
                if not is_host and b.device not in gidx:
                    raise ConfigError(
                        f"band on device {b.device!r} tier {b.tier!r}: not a GPU of this system "
                        f"({', '.join(self.gpu_names)}) nor host DRAM",
                        where=f"table {spec.name!r}, band rows {list(b.rows)}",
                        fix="place bands on the system's gpus (tier hbm) or in host_dram",
                    )
                starts.append(b.start)
                gpu.append(owner if is_host else gidx[b.device])
                host.append(is_host)
            rank = None
            if tp.order.kind == "hotness" and tp.order.permutation is not None:
                perm = np.asarray(tp.order.permutation, dtype=np.int64)
                rank = np.empty_like(perm)
                rank[perm] = np.arange(len(perm))
            elif tp.order.kind == "hot_set" and tp.order.hot_rows:
                hot = np.asarray(tp.order.hot_rows, dtype=np.int64)
                is_hot = np.zeros(spec.rows, dtype=bool)
                is_hot[hot] = True
                rank = np.empty(spec.rows, dtype=np.int64)
                rank[hot] = np.arange(len(hot))
                rank[~is_hot] = len(hot) + np.arange(spec.rows - len(hot))
            out.append(TableShards(np.array(starts), np.array(gpu), np.array(host), rank))
        return out

    def _check_capacity(
        self, header: TraceHeader, shards: list[TableShards], source: str | None
    ) -> np.ndarray:
        rb = self._row_bytes(header)
        hbm = np.zeros(len(self.gpus))
        host = 0.0
        for t, s in enumerate(shards):
            stops = np.r_[s.starts[1:], header.rows[t]]
            nbytes = (stops - s.starts) * rb[t]
            host += float(nbytes[s.host].sum())
            np.add.at(hbm, s.gpu[~s.host], nbytes[~s.host])
        for k, used in enumerate(hbm):
            if used > self.gpus[k].hbm_capacity_bytes:
                raise ConfigError(
                    f"{self.gpu_names[k]} would hold {used / 2**30:.2f} GiB of embeddings, its HBM "
                    f"holds {self.gpus[k].hbm_capacity_bytes / 2**30:.2f} GiB",
                    path=source,
                    where=f"device {self.gpu_names[k]!r}",
                    fix="move bands to other GPUs or to host_dram in the plan",
                )
        if host > self.host_capacity_bytes:
            raise ConfigError(
                f"{host / 2**30:.2f} GiB of embeddings do not fit any GPU's HBM and the host DRAM "
                f"holds {self.host_capacity_bytes / 2**30:.2f} GiB",
                path=source,
                where="tables (host DRAM tier)",
                fix="use more GPUs or more host memory, or compress/shrink the tables",
            )
        return hbm

    # ------------------------------------------------------------------ simulation
    def simulate(
        self,
        batches: Iterable[Batch],
        header: TraceHeader,
        load: LoadSpec | None = None,
        source: str | None = None,
    ) -> SimResult:
        """Run the batches (streamed: one batch at a time is held); returns a :class:`SimResult`."""
        wall0 = time.perf_counter()
        shards = self.shard(header, source)
        caches = self.caches(header, shards, source)
        l2s = self.l2_caches(header, shards)
        outputs = any(p.output_efficiency is not None for p in self.gpus)
        env = simpy.Environment()
        G = len(self.gpus)
        fine = self.mode == "fine"
        model = self.model
        overlap = self.overlap_bottom_mlp and model is not None and model.bottom_flops() > 0
        gpus = [
            Gpu(env, p, n, streams=2 if overlap else 1)
            for p, n in zip(self.gpus, self.gpu_names, strict=True)
        ]
        links = [
            PcieLink(env, p, f"{n}.pcie") for p, n in zip(self.pcie, self.gpu_names, strict=True)
        ]
        net = Network(env, self.network)
        hdram = [
            Dram(env, p, self.mode, n)  # type: ignore[arg-type]
            for p, n in zip(self.host_drams, self.host_names, strict=False)
        ]
        rb = self._row_bytes(header)
        if hdram:
            burst = self.host_drams[0].burst_bytes
            nb_host = np.maximum(1, np.ceil(rb / burst).astype(np.int64))
            stride = nb_host * burst
            # Tables laid out back to back, each starting on a 4 KiB page (as cpu_dram does):
            # start_t = sum over earlier tables of their size rounded up to whole pages.
            padded = (header.rows * stride + 4095) // 4096 * 4096
            base = np.concatenate([[0], np.cumsum(padded)[:-1]])
        dims = np.array([s.dim for s in header.tables])
        # GPUs producing pooled or partial outputs per table (for the all-to-all volume)
        out_dims = np.zeros(G)
        for t, s in enumerate(shards):
            for k in np.unique(s.gpu).tolist():
                out_dims[k] += dims[t]
        breakdown = {"embedding": 0.0, "embedding_hbm": 0.0, "embedding_pcie": 0.0}
        breakdown.update({"alltoall": 0.0, "dense": 0.0})
        if overlap:
            breakdown.update({"bottom_mlp": 0.0, "bottom_mlp_exposed": 0.0})
        counters = {"hbm_bytes": 0.0, "pcie_bytes": 0.0, "alltoall_bytes": 0.0}
        if any(c is not None for c in caches):
            counters.update({"uvm_cache_hit_lookups": 0.0, "uvm_cache_miss_lookups": 0.0})
        if any(c is not None for c in l2s):
            counters.update({"l2_lookups": 0.0, "l2_hit_lookups": 0.0})
        if outputs:
            counters["output_bytes"] = 0.0

        Segs = list[list[tuple[int, float]]]

        def split(batch: Batch) -> tuple[Segs, Segs, Segs, Segs, list[list[Any]]]:
            """Per GPU: (lookups, row bytes) read from HBM, (lookups, row bytes) served by the L2,
            (bags, row bytes) of pooled outputs, (rows, row bytes) read over PCIe, host DRAM
            reads."""
            hbm: Segs = [[] for _ in range(G)]
            l2hit: Segs = [[] for _ in range(G)]
            outs: Segs = [[] for _ in range(G)]
            pcie: Segs = [[] for _ in range(G)]
            host_reads: list[list[Any]] = [[] for _ in range(G)]
            for t, s in enumerate(shards):
                if outputs:
                    for k in np.unique(s.gpu).tolist():
                        if self.gpus[k].output_efficiency is not None:
                            outs[k].append((batch.batch_size, float(rb[t])))
                            counters["output_bytes"] += batch.batch_size * float(rb[t])
                idx = batch.table_indices(t)
                if len(idx) == 0:
                    continue
                if len(s.starts) == 1:
                    band = np.zeros(len(idx), dtype=np.int64)
                else:
                    ranks = idx if s.rank_of_row is None else s.rank_of_row[idx]
                    band = np.searchsorted(s.starts, ranks, side="right") - 1
                counts = np.bincount(band, minlength=len(s.starts))
                r = float(rb[t])
                for k in np.nonzero(counts)[0].tolist():
                    gk = int(s.gpu[k])
                    if not s.host[k]:
                        n = int(counts[k])
                        l2 = l2s[gk]
                        if l2 is not None:
                            sel = idx if len(s.starts) == 1 else idx[band == k]
                            nh = int(l2.access(t, sel).sum())
                            counters["l2_lookups"] += n
                            counters["l2_hit_lookups"] += nh
                            if nh:
                                l2hit[gk].append((nh, r))
                            n -= nh
                        if n:
                            hbm[gk].append((n, r))
                        counters["hbm_bytes"] += n * r
                        continue
                    sel = idx if len(s.starts) == 1 else idx[band == k]
                    cache = caches[gk]
                    if cache is None:
                        rows = unique_first(sel)
                    else:
                        uq, cnt = np.unique(sel, return_counts=True)
                        hit = cache.access(t, uq)
                        nh = int(cnt[hit].sum())
                        counters["uvm_cache_hit_lookups"] += nh
                        counters["uvm_cache_miss_lookups"] += int(cnt.sum()) - nh
                        if nh:
                            hbm[gk].append((nh, r))
                            counters["hbm_bytes"] += nh * r
                        rows = uq[~hit]
                    if len(rows) == 0:
                        continue
                    pcie[gk].append((len(rows), r))
                    counters["pcie_bytes"] += len(rows) * self.pcie[gk].wire_bytes(r)
                    if hdram:
                        addr = rows * int(stride[t]) + int(base[t])
                        host_reads[gk].append((addr, int(nb_host[t])))
            return hbm, l2hit, outs, pcie, host_reads

        def kernel_time(k: int, h: list[Any], lh: list[Any], o: list[Any]) -> float:
            """The GPU's gather kernel (0 when it has nothing to read, serve or write)."""
            if not (h or lh or o):
                return 0.0
            return self.gpus[k].kernel_launch_s + self.gpus[k].gather_body_s(h, lh, o)

        def wire(k: int, segs: list[tuple[int, float]]) -> float:
            return sum(n * self.pcie[k].wire_bytes(r) for n, r in segs)

        def gpu_embedding(
            k: int,
            hsegs: list[tuple[int, float]],
            lsegs: list[tuple[int, float]],
            osegs: list[tuple[int, float]],
            psegs: list[tuple[int, float]],
            reads: list[Any],
        ) -> Generator[Any, Any, None]:
            procs = [env.process(hdram[self.gpu_host[k]].read(a, nb)) for a, nb in reads]
            if hsegs or lsegs or osegs:
                if fine:
                    procs.append(env.process(gpus[k].gather_fine(hsegs, 0, lsegs, osegs)))
                else:
                    t = kernel_time(k, hsegs, lsegs, osegs)
                    procs.append(env.process(gpus[k].kernel(t)))
            if psegs:
                if fine:
                    procs.append(env.process(links[k].transfer_rows_fine(psegs, "down")))
                else:
                    procs.append(env.process(links[k].transfer_wire(wire(k, psegs), "down")))
            if procs:
                yield env.all_of(procs)

        def mlp(k: int, flops: float, stream: int = 0) -> Generator[Any, Any, None]:
            if flops > 0:
                yield from gpus[k].kernel(self.gpus[k].mlp_time_s(flops), stream)

        def gpu_dense(k: int, samples: float, bottom: bool) -> Generator[Any, Any, None]:
            assert model is not None
            if bottom:
                yield from mlp(k, model.bottom_flops() * samples)
            yield from mlp(k, model.interaction_flops() * samples)
            yield from mlp(k, model.top_flops() * samples)

        def serve(batch: Batch) -> Generator[Any, Any, None]:
            t0 = float(env.now)
            per_gpu = batch.batch_size / G
            bottom = []
            if overlap:
                assert model is not None
                # the bottom MLP of the GPU's B/G samples on a second stream, from the batch start
                bottom = [
                    env.process(mlp(k, model.bottom_flops() * per_gpu, stream=1)) for k in range(G)
                ]
                breakdown["bottom_mlp"] += max(
                    self.gpus[k].mlp_time_s(model.bottom_flops() * per_gpu) for k in range(G)
                )
            hsegs, lsegs, osegs, psegs, reads = split(batch)
            breakdown["embedding_hbm"] += max(
                kernel_time(k, hsegs[k], lsegs[k], osegs[k]) for k in range(G)
            )
            breakdown["embedding_pcie"] += max(
                self.pcie[k].wire_time_s(wire(k, psegs[k])) for k in range(G)
            )
            yield env.all_of(
                [
                    env.process(gpu_embedding(k, hsegs[k], lsegs[k], osegs[k], psegs[k], reads[k]))
                    for k in range(G)
                ]
            )
            t1 = float(env.now)
            breakdown["embedding"] += t1 - t0
            msg = per_gpu * 4.0 * float(out_dims.max())
            if G > 1 and msg > 0:
                yield from net.all_to_all(msg)
                counters["alltoall_bytes"] += msg * G * (G - 1)
            t2 = float(env.now)
            breakdown["alltoall"] += t2 - t1
            if model is not None:
                if bottom:
                    yield env.all_of(bottom)
                    breakdown["bottom_mlp_exposed"] += float(env.now) - t2
                yield env.all_of(
                    [env.process(gpu_dense(k, per_gpu, not overlap)) for k in range(G)]
                )
            breakdown["dense"] += float(env.now) - t2

        spec = load or LoadSpec()
        out = run_load(env, batches, serve, spec)
        util = {g.name: g.stream.stats().utilisation for g in gpus}
        if overlap:
            util.update({g.streams[1].name: g.streams[1].stats().utilisation for g in gpus})
        for lk in links:
            util[lk.dirs["down"].name] = lk.dirs["down"].stats().utilisation
        for d in hdram:
            util[d.name] = d.utilisation()
        counters["host_dram_bursts"] = sum(d.bursts for d in hdram)
        live = [c for c in caches if c is not None]
        if live:
            counters["uvm_cache_rows"] = float(sum(c.capacity for c in live))
            counters["uvm_cache_refs"] = float(sum(c.refs for c in live))
            counters["uvm_cache_hits"] = float(sum(c.hits for c in live))
            refs = counters["uvm_cache_refs"]
            counters["uvm_cache_hit_ratio"] = counters["uvm_cache_hits"] / refs if refs else 0.0
        if "l2_lookups" in counters:
            n = counters["l2_lookups"]
            counters["l2_hit_ratio"] = counters["l2_hit_lookups"] / n if n else 0.0
        if fine:
            counters["fine_events"] = float(
                sum(g.events for g in gpus)
                + sum(lk.events for lk in links)
                + sum(d.events for d in hdram)
            )
        return SimResult.build(
            system=self.name,
            kind=self.kind,
            mode=self.mode,
            load=out,
            breakdown_s=breakdown,
            utilisation=util,
            counters={**counters, "network_messages": net.messages},
            wall_s=time.perf_counter() - wall0,
            load_kind=spec.kind,
        )
