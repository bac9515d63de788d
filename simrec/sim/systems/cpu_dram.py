"""CPU-DRAM system: embedding tables in host DRAM across sockets, cores gather and pool, MLPs on cores.

What the model covers
---------------------
* **Placement**: whole tables go to sockets, largest first onto the socket with the fewest bytes
  (greedy balance); each socket lays its tables out back to back in its own DRAM, rows padded to whole
  bursts, every table starting on a 4 KiB boundary. A trace whose tables do not fit the sockets' DRAM
  capacity is a :class:`~simrec.errors.ConfigError`.
* **Embedding stage** (per batch, all sockets in parallel): the rows each socket's tables touch are
  read by that socket's :class:`~simrec.sim.components.dram.Dram` (fast or fine granularity) while
  its :class:`~simrec.sim.components.cpu.Cpu` cores pool them (all cores, threads = cores); the
  socket is done when both are done (gathers and adds overlap). Repeated rows of one table within a
  batch are read from DRAM once (``dedupe=True``: the LLC holds a batch's working set); the pooling
  compute counts every lookup and every bag (``lookup_cycles``, ``pool_efficiency``,
  ``bag_cycles``).
* **Last-level cache** (when the CPU has ``llc_bytes`` and ``llc_bandwidth_Bps``): each batch's
  distinct rows go, table by table, through a fully associative LRU of the socket's LLC that lives
  across batches (:class:`~simrec.sim.systems.multi_gpu.LruRowCache`, exact LRU by stack
  distance); its capacity in rows is ``llc_bytes // row stride`` (with tables of different strides
  on one socket: ``llc_bytes`` / the mean stride, an approximation). Rows that hit are read by the
  cores at ``llc_bandwidth_Bps`` (a server of its own, overlapping the DRAM reads and the pooling);
  only the misses go to the DRAM. Time per socket and batch:
  ``calls * call_overhead_s + max(t_pool + t_out, t_dram(misses), hit_bytes / llc_bandwidth)``
  (plus the partial-overlap term below, when it is on).
* **Private caches** (when the CPU has ``l2_bytes`` > 0): each embedding-bag call's bags are split
  over the socket's cores in contiguous chunks (chunk ``c`` = bags ``c*B//cores`` to
  ``(c+1)*B//cores - 1``, as torch's ``at::parallel_for`` and simrec's numba runner split them, the
  same chunk every call), and chunk ``c``'s distinct rows, in first-occurrence order, go through
  core ``c``'s own fully associative LRU of ``l2_bytes // row stride`` rows that lives across
  batches. A hit there costs nothing beyond the pooling compute (the cores' loads of
  cache-resident rows are part of ``lookup_cycles`` / ``pool_efficiency``); the misses of all
  cores, deduplicated over the batch, go on to the LLC and the DRAM as above. Record key
  ``l2_hit_bytes``, counters ``l2_refs`` / ``l2_hits`` (present only with the tier on). Left out:
  the private cache's associativity and other occupants (outputs, indices, code), threads that
  move between cores, and inclusion (a row held only in a private cache ages in the LLC model as
  if unused).
* **Pooled output** (when the CPU has ``output_bandwidth_Bps`` > 0; 0, the default, turns it off):
  every embedding-bag call writes a fresh output tensor of ``bags x dim x 4`` bytes (fp32);
  ``t_out = out_bytes / output_bandwidth_Bps`` (``out_bytes`` summed over the socket's calls of
  the batch) is added to the cores' pooling time ``t_pool``: the cores do the stores, which still
  overlap the LLC and DRAM reads through the max. One fitted rate stands for writes through the
  whole cache hierarchy (wherever the output lands); the output is 4 bytes per element whatever
  the table's storage type. Breakdown key ``embedding_output`` (present only with the cost on;
  included in ``embedding_pool``).
* **Address translation** (when the CPU has a ``tlb``: ``tlb_entries`` and ``tlb_walk_s``): every
  lookup of a batch, in the batch's order, table by table (LLC hits alike: a hit still needs its
  translation; repeated rows too: a page's entry may be gone by the next use), maps to a page of
  ``tlb_page_bytes`` (by the row's first byte: rows are padded to bursts and no larger than a 4 KiB
  page in practice), and the pages go through one fully associative LRU of ``tlb_entries`` pages
  per socket, living across batches; every miss is a page walk, ``misses * tlb_walk_s / cores`` of walking
  before the socket's DRAM reads start (they overlap the pooling and the LLC reads). Breakdown key
  ``embedding_tlb`` (present only with the model on; included in ``embedding_dram``).
* **Partial overlap** (when the CPU has ``serial_fraction`` > 0): the pooling compute (with the
  outputs), the DRAM reads (with the walks) and the LLC reads of a socket run side by side, and
  the socket then also pays ``serial_fraction * (t_pool + t_dram + t_llc - max(...))``: the part
  of the non-binding stages that a core's instruction window does not hide under the binding one
  (a core stalled on misses does not add, an adding core issues few loads). One fraction stands
  for every mix. Breakdown key ``embedding_serial`` (present only with the term on).
* **Per-call overhead**: every table with lookups in a batch is one embedding-bag call, which costs
  ``call_overhead_s`` (thread dispatch and join) before its reads and adds start.
* **Dense stage**: bottom MLP + interaction + top MLP FLOPs of the :class:`DlrmModel` (if given) for
  the batch on all cores of all sockets, after the embedding stage.
* **Load**: ``throughput`` (batches back to back, ``inflight`` of them at a time) or ``latency``
  (Poisson arrivals: exponential gaps at ``rate_per_s``, or the trace's own ``arrival_s``).

What it leaves out: cross-socket (UPI) traffic for pooled outputs, DRAM write-back traffic of the
outputs (they do not occupy the DRAM model's banks or bus, nor evict rows from the LLC model), set
associativity and the LLC's other occupants (code, outputs, other processes), a per-core limit on
outstanding misses (the effective DRAM of a calibrated preset folds it into tFAW), prefetching,
the page-walk caches and the page tables' own cache footprint (one walk time stands for every
walk; without a ``tlb`` no translation cost at all: on 4 KiB pages in a VM the walks made an
embedding bag 1.4-2.3x slower, docs/validation.md), per-core TLBs (one LRU per socket: for
lookups spread over a table's pages alike, each core's TLB sees the same page distribution), and
framework overheads beyond
the per-call cost; the bottom MLP does not overlap the embedding stage.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import simpy

from simrec.errors import ConfigError
from simrec.sim.components.cpu import Cpu, CpuParams
from simrec.sim.components.dram import Dram, DramParams, unique_first
from simrec.sim.engine import Server
from simrec.sim.results import LoadSpec, SimResult, run_load
from simrec.trace.format import Batch, TraceHeader
from simrec.workloads.dlrm import DlrmModel

__all__ = ["Socket", "CpuDramSystem"]

_PAGE = 4096


@dataclass(frozen=True)
class Socket:
    """One CPU socket with its DRAM."""

    cpu: CpuParams
    dram: DramParams
    dram_capacity_bytes: float
    name: str = "socket"


@dataclass
class _Placement:
    socket: np.ndarray  # table -> socket
    base: np.ndarray  # table -> base byte address in its socket's DRAM
    stride: np.ndarray  # table -> row stride, bytes
    nbursts: np.ndarray  # table -> bursts per row
    used: list[float] = field(default_factory=list)


class CpuDramSystem:
    """A multi-socket CPU server serving embeddings from DRAM (see the module docstring)."""

    kind = "cpu_dram"

    def __init__(
        self,
        sockets: list[Socket],
        mode: Literal["fast", "fine"] = "fast",
        model: DlrmModel | None = None,
        dedupe: bool = True,
        name: str = "cpu_dram",
    ) -> None:
        if not sockets:
            raise ConfigError(
                "a cpu_dram system needs at least one socket",
                where="devices",
                fix="add a cpu with an attached dram",
            )
        self.sockets = sockets
        self.mode = mode
        self.model = model
        self.dedupe = dedupe
        self.name = name

    @classmethod
    def from_hw(
        cls,
        hw: Any,
        mode: Literal["fast", "fine"] = "fast",
        model: DlrmModel | None = None,
        dedupe: bool = True,
    ) -> CpuDramSystem:
        """Build from a :class:`simrec.hw.SystemConfig`: every CPU with its attached DRAM(s)."""
        sockets = []
        for cname in hw.devices_of_kind("cpu"):
            drams = [n for n, d in hw.memories_of(cname).items() if d.kind == "dram"]
            if len(drams) != 1:
                raise ConfigError(
                    f"cpu {cname!r} has {len(drams)} dram devices attached; the cpu_dram system "
                    "needs exactly one per cpu",
                    path=hw.source,
                    where=f"devices.{cname}",
                    fix="attach one dram device to each cpu (attached_to: <cpu>)",
                )
            sockets.append(
                Socket(
                    cpu=hw.params(cname),
                    dram=hw.params(drams[0]),
                    dram_capacity_bytes=hw.capacity_of(drams[0]),
                    name=cname,
                )
            )
        if not sockets:
            raise ConfigError(
                f"system {hw.name!r} has no cpu device",
                path=hw.source,
                where="devices",
                fix="use a config with cpu and dram devices (e.g. the cpu_dram preset)",
            )
        return cls(sockets, mode=mode, model=model, dedupe=dedupe, name=hw.name)

    # ----------------------------------------------------------------- placement
    def place(self, header: TraceHeader, source: str | None = None) -> _Placement:
        """Greedy table placement (largest first onto the least-filled socket)."""
        burst = self.sockets[0].dram.burst_bytes
        t = header.num_tables
        nb = np.array([max(1, -(-int(np.ceil(s.bytes_per_row)) // burst)) for s in header.tables])
        stride = nb * burst
        size = header.rows * stride
        order = np.argsort(-size, kind="stable")
        used = [0.0] * len(self.sockets)
        sock = np.zeros(t, dtype=np.int64)
        base = np.zeros(t, dtype=np.int64)
        for i in order.tolist():
            s = int(np.argmin(used))
            start = -(-int(used[s]) // _PAGE) * _PAGE
            if start + size[i] > self.sockets[s].dram_capacity_bytes:
                need = float(size.sum())
                have = sum(k.dram_capacity_bytes for k in self.sockets)
                raise ConfigError(
                    f"table {header.tables[i].name!r} ({size[i] / 2**30:.2f} GiB) does not fit: "
                    f"the trace needs {need / 2**30:.2f} GiB of embeddings, the system's DRAM "
                    f"holds {have / 2**30:.2f} GiB",
                    path=source,
                    where=f"table {header.tables[i].name!r}",
                    fix="use a system with more DRAM, fewer/smaller tables, or a multi-tier "
                    "system with a sharding plan",
                )
            sock[i], base[i] = s, start
            used[s] = start + float(size[i])
        return _Placement(sock, base, stride, nb, used)

    # ----------------------------------------------------------------- LLC
    @staticmethod
    def _row_keys(tables: np.ndarray, header: TraceHeader) -> tuple[dict[int, int], int]:
        """Key offsets of the socket's tables in its row caches (table -> first key) and the
        number of keys: the tables' rows one after another."""
        offs: dict[int, int] = {}
        k = 0
        for t in tables.tolist():
            offs[t] = k
            k += int(header.tables[t].rows)
        return offs, k

    @staticmethod
    def _llc(sock: Socket, tables: np.ndarray, pl: _Placement, header: TraceHeader) -> Any:
        """The socket's LLC row cache (None without an LLC model or without tables)."""
        if not sock.cpu.has_llc or len(tables) == 0:
            return None
        from simrec.sim.systems.multi_gpu import LruRowCache

        strides = pl.stride[tables].astype(np.float64)
        cap = int(sock.cpu.llc_bytes // float(strides.mean()))
        offs, k = CpuDramSystem._row_keys(tables, header)
        return LruRowCache(max(cap, 0), offs, k)

    # ----------------------------------------------------------------- private caches
    @staticmethod
    def _l2s(sock: Socket, tables: np.ndarray, pl: _Placement, header: TraceHeader) -> Any:
        """One private row cache per core of the socket (None without ``l2_bytes`` or tables):
        LRUs of ``l2_bytes // mean row stride`` rows, keyed like the LLC's; their state is kept
        per distinct row (``dense``), not per row of the key space."""
        if not sock.cpu.has_l2 or len(tables) == 0:
            return None
        from simrec.sim.systems.multi_gpu import LruRowCache

        strides = pl.stride[tables].astype(np.float64)
        cap = int(sock.cpu.l2_bytes // float(strides.mean()))
        offs, k = CpuDramSystem._row_keys(tables, header)
        return [LruRowCache(max(cap, 0), offs, k, dense=True) for _ in range(sock.cpu.cores)]

    @staticmethod
    def _l2_misses(
        l2: list[Any], t: int, idx: np.ndarray, offs: np.ndarray
    ) -> tuple[np.ndarray, int]:
        """Table ``t``'s lookups ``idx`` (bags at ``offs``) through the private caches ``l2``:
        chunk ``c`` of the bags (``c*B//cores`` .. ``(c+1)*B//cores - 1``) has its distinct rows,
        in first-occurrence order, go through core ``c``'s cache; returns every core's misses,
        concatenated in core order, and the number of hits."""
        nbag, nc = len(offs) - 1, len(l2)
        misses: list[np.ndarray] = []
        hits = 0
        for c in range(nc):
            lo, hi = int(offs[c * nbag // nc]), int(offs[(c + 1) * nbag // nc])
            if hi <= lo:
                continue
            u = unique_first(idx[lo:hi])
            h = l2[c].access(t, u)
            n2 = int(np.count_nonzero(h))
            hits += n2
            misses.append(u[~h] if n2 else u)
        return (np.concatenate(misses) if misses else idx[:0]), hits

    # ----------------------------------------------------------------- TLB
    @staticmethod
    def _tlb(sock: Socket, used_bytes: float, tables: np.ndarray) -> Any:
        """The socket's TLB as an LRU over page numbers (None without entries or tables); pages
        are numbered over the socket's DRAM, its tables laid out back to back."""
        if sock.cpu.tlb_entries <= 0 or len(tables) == 0:
            return None
        from simrec.sim.systems.multi_gpu import LruRowCache

        pages = int(-(-int(used_bytes) // int(sock.cpu.tlb_page_bytes))) + 1
        return LruRowCache(int(sock.cpu.tlb_entries), {0: 0}, pages)

    # ----------------------------------------------------------------- simulation
    def simulate(
        self,
        batches: Iterable[Batch],
        header: TraceHeader,
        load: LoadSpec | None = None,
        source: str | None = None,
        record: list[dict[str, Any]] | None = None,
    ) -> SimResult:
        """Run the trace's batches through the system; returns a :class:`SimResult`.

        ``record`` (calibration; fast mode, one batch in flight): receives one dict per batch and
        socket with the quantities the socket's time is made of: ``socket``, ``calls``,
        ``lookups``, ``dim_lookups`` (sum of lookups x dim), ``bags``, ``out_bytes`` (pooled
        output bytes: sum over the calls of bags x dim x 4), ``hit_bytes`` (LLC),
        ``l2_hit_bytes`` (the private caches'; 0 without them), ``tlb_misses`` (0
        without TLB entries; counted whenever ``tlb_entries`` > 0, also with a walk time of 0) and
        ``dram_counts`` (the DRAM chunks' :class:`~simrec.sim.components.dram.ChunkCounts`). The
        socket's time is then ``calls * call_overhead_s + max(pool, tlb + dram, llc) +
        serial_fraction * (pool + tlb + dram + llc - max(...))`` with ``tlb =
        tlb_misses * tlb_walk_s / cores``, ``pool = (lookups *
        lookup_cycles + dim_lookups / (flops_per_cycle * pool_efficiency) + bags * bag_cycles) /
        freq / cores + out_bytes / output_bandwidth`` (the last term 0 when
        ``output_bandwidth_Bps`` is 0), ``dram`` = per channel the sum over chunks of
        :func:`~simrec.sim.components.dram.channel_times`, largest channel, and ``llc =
        hit_bytes / llc_bandwidth``; :mod:`simrec.calibrate.fit` re-evaluates that for other
        parameters without re-running the trace (tests check it equals a new simulation)."""
        wall0 = time.perf_counter()
        pl = self.place(header, source)
        env = simpy.Environment()
        drams = [Dram(env, s.dram, self.mode, f"{s.name}.dram") for s in self.sockets]
        cpus = [Cpu(env, s.cpu, f"{s.name}.cores") for s in self.sockets]
        total_cores = sum(s.cpu.cores for s in self.sockets)
        dims = np.array([s.dim for s in header.tables], dtype=np.int64)
        breakdown = {
            "embedding_dram": 0.0,
            "embedding_pool": 0.0,
            "embedding_llc": 0.0,
            "embedding_overhead": 0.0,
            "embedding": 0.0,
            "dense": 0.0,
        }
        has_out = any(s.cpu.output_bandwidth_Bps > 0 for s in self.sockets)
        if has_out:  # only with the output cost on, so that other results keep their keys
            breakdown["embedding_output"] = 0.0
        by_socket = [np.nonzero(pl.socket == s)[0] for s in range(len(self.sockets))]
        dedupe = self.dedupe
        llcs = [self._llc(s, by_socket[i], pl, header) for i, s in enumerate(self.sockets)]
        llc_srv = [Server(env, 1, f"{s.name}.llc") for s in self.sockets]
        l2s = [self._l2s(s, by_socket[i], pl, header) for i, s in enumerate(self.sockets)]
        tlbs = [self._tlb(s, pl.used[i], by_socket[i]) for i, s in enumerate(self.sockets)]
        has_tlb = any(s.cpu.has_tlb for s in self.sockets)
        if has_tlb:  # only with the model on, so that other results keep their keys
            breakdown["embedding_tlb"] = 0.0
        has_serial = any(s.cpu.serial_fraction > 0 for s in self.sockets)
        if has_serial:  # only with partial overlap, so that other results keep their keys
            breakdown["embedding_serial"] = 0.0

        def socket_stage(
            s: int, batch: Batch
        ) -> Generator[Any, Any, tuple[float, float, float, float, float, float, float]]:
            tables = by_socket[s]
            cpu = cpus[s]
            llc = llcs[s]
            l2 = l2s[s]
            tlb = tlbs[s]
            tlb_misses = 0
            pool_s = 0.0
            hit_bytes = 0.0
            l2_hit_bytes = 0.0
            calls = 0
            nlook = 0
            dim_look = 0
            out_bytes = 0
            groups: dict[int, list[np.ndarray]] = {}
            for t in tables.tolist():
                idx = batch.table_indices(t)
                if len(idx) == 0:
                    continue
                calls += 1
                nlook += len(idx)
                dim_look += len(idx) * int(dims[t])
                out_bytes += batch.batch_size * int(dims[t]) * 4  # fp32 pooled output
                pool_s += cpu.p.pool_time_s(len(idx), int(dims[t]), cpu.p.cores, batch.batch_size)
                if tlb is not None:  # every lookup's translation, in the batch's order
                    page = (idx.astype(np.int64) * int(pl.stride[t]) + int(pl.base[t])) // int(
                        cpu.p.tlb_page_bytes
                    )
                    tlb_misses += len(page) - int(np.count_nonzero(tlb.access(0, page)))
                if l2 is not None:  # each core's chunk of bags through its own cache
                    idx, n2 = self._l2_misses(l2, t, idx, batch.table_offsets(t))
                    l2_hit_bytes += n2 * float(pl.stride[t])
                    if len(idx) == 0:
                        continue
                if dedupe:
                    idx = unique_first(idx)
                if llc is not None:
                    hit = llc.access(t, idx)
                    nhit = int(np.count_nonzero(hit))
                    if nhit:
                        hit_bytes += nhit * float(pl.stride[t])
                        idx = idx[~hit]
                    if len(idx) == 0:
                        continue
                addr = idx.astype(np.int64) * int(pl.stride[t]) + int(pl.base[t])
                groups.setdefault(int(pl.nbursts[t]), []).append(addr)
            t_out = cpu.p.output_time_s(out_bytes)
            pool_s += t_out  # the cores write the outputs: part of their pooling time
            t_ovh = calls * cpu.p.call_overhead_s
            if t_ovh > 0:
                yield env.timeout(t_ovh)
            counts: list[Any] | None = None
            if record is not None:
                counts = []
                record.append(
                    {
                        "socket": s,
                        "calls": calls,
                        "lookups": nlook,
                        "dim_lookups": dim_look,
                        "bags": calls * batch.batch_size,
                        "out_bytes": out_bytes,
                        "hit_bytes": hit_bytes,
                        "l2_hit_bytes": l2_hit_bytes,
                        "tlb_misses": tlb_misses,
                        "dram_counts": counts,
                    }
                )
            t_tlb = cpu.p.tlb_time_s(tlb_misses, cpu.p.cores)

            def walk_then_read() -> Generator[Any, Any, None]:
                if t_tlb > 0:  # the page walks come before the reads they translate
                    yield env.timeout(t_tlb)
                reads = [
                    env.process(
                        drams[s].read(np.concatenate(a) if len(a) > 1 else a[0], nb, counts)
                    )
                    for nb, a in groups.items()
                ]
                if reads:
                    yield env.all_of(reads)

            mem = [env.process(walk_then_read())] if groups or t_tlb > 0 else []
            t_llc = cpu.p.llc_time_s(hit_bytes)
            hits = env.process(llc_srv[s].serve(t_llc)) if t_llc > 0 else None
            comp = env.process(cpu.run(pool_s * cpu.p.cores, cpu.p.cores)) if pool_s > 0 else None
            t0 = float(env.now)
            t_mem = 0.0
            if mem:
                yield env.all_of(mem)
                t_mem = float(env.now) - t0
            if hits is not None:
                yield hits
            if comp is not None:
                yield comp
            # partial overlap: the part of the non-binding stages the cores do not hide
            t_ser = cpu.p.serial_time_s(pool_s, t_mem, t_llc)
            if t_ser > 0:
                yield env.timeout(t_ser)
            return t_mem, pool_s, t_llc, t_ovh, t_out, t_tlb, t_ser

        model = self.model
        cpu_all = cpus  # the dense stage spreads over every socket's cores

        def serve_batch(batch: Batch) -> Generator[Any, Any, None]:
            t0 = float(env.now)
            procs = [env.process(socket_stage(s, batch)) for s in range(len(self.sockets))]
            res = yield env.all_of(procs)
            t_emb = float(env.now) - t0
            breakdown["embedding"] += t_emb
            breakdown["embedding_dram"] += max(v[0] for v in res.values())
            breakdown["embedding_pool"] += max(v[1] for v in res.values())
            breakdown["embedding_llc"] += max(v[2] for v in res.values())
            breakdown["embedding_overhead"] += max(v[3] for v in res.values())
            if has_out:
                breakdown["embedding_output"] += max(v[4] for v in res.values())
            if has_tlb:
                breakdown["embedding_tlb"] += max(v[5] for v in res.values())
            if has_serial:
                breakdown["embedding_serial"] += max(v[6] for v in res.values())
            if model is not None:
                flops = model.dense_flops() * batch.batch_size
                t1 = float(env.now)
                share = flops / total_cores
                yield env.all_of(
                    [
                        env.process(c.run(c.p.mlp_time_s(share * c.p.cores, 1), c.p.cores))
                        for c in cpu_all
                    ]
                )
                breakdown["dense"] += float(env.now) - t1

        spec = load or LoadSpec()
        out = run_load(env, batches, serve_batch, spec)
        util: dict[str, float] = {}
        for d in drams:
            util[d.name] = d.utilisation()
        for c in cpus:
            util[c.name] = c.cores.stats().utilisation
        counters = {
            "dram_bursts": sum(d.bursts for d in drams),
            "dram_activates": sum(d.activates for d in drams),
            "dram_bytes": sum(d.bytes_read for d in drams),
            "fine_events": sum(d.events for d in drams),
            "fine_commands": sum(d.commands for d in drams),
            "llc_refs": sum(c.refs for c in llcs if c is not None),
            "llc_hits": sum(c.hits for c in llcs if c is not None),
        }
        if any(x is not None for x in l2s):  # only with the tier on, so that others keep keys
            counters["l2_refs"] = sum(c.refs for x in l2s if x is not None for c in x)
            counters["l2_hits"] = sum(c.hits for x in l2s if x is not None for c in x)
        return SimResult.build(
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
