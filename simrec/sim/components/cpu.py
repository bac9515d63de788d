"""CPU cores: embedding gather/pooling instruction cost and MLP FLOPs at a stated efficiency.

What the model covers: ``sockets * cores_per_socket`` identical cores, each a server of a simpy
:class:`~simrec.sim.engine.Server` with that many slots (a software thread = one job on one core).
Compute time of one thread:

* pooling: ``lookups * lookup_cycles + lookups * dim / (simd_flops_per_cycle * pool_efficiency)
  + bags * bag_cycles`` cycles (address arithmetic and loop overhead per lookup, the vector adds of
  the row, and the per-bag work: offsets, the output row, the loop over bags);
* MLP / interaction: ``flops / (simd_flops_per_cycle * mlp_efficiency)`` cycles;

divided by ``freq_hz``. Work split over ``threads`` threads runs as ``threads`` equal jobs. The memory
side of the gather (DRAM reads) is *not* here: the system overlaps it with this compute using the DRAM
component.

The socket's last-level cache and per-call cost are parameters here too, used by the system
(:mod:`simrec.sim.systems.cpu_dram`): ``llc_bytes`` of fully associative LRU cache over embedding
rows, whose hits are read at ``llc_bandwidth_Bps`` (0 = no LLC model), ``call_overhead_s`` per
embedding-bag call (one per table and batch: dispatch to the threads and the wait for them), and
``output_bandwidth_Bps``, the rate at which the cores store the pooled output tensors (``bags x dim
x 4`` bytes of fp32 per call; 0 = no output cost, the default). The output stores are one fitted
rate for writes through the whole cache hierarchy: no DRAM write-back traffic is modelled.

Address translation (optional, ``tlb_entries`` > 0 and ``tlb_walk_s`` > 0): a fully associative
LRU of ``tlb_entries`` pages of ``tlb_page_bytes`` per socket (the second-level TLB, shared by the
cores in the model: a thread's lookups are spread over every page of the table, so one LRU of the
entries stands for every core's), which every lookup of a batch goes through, in order (LLC hits
too: a hit still needs its translation); each miss is a page walk of ``tlb_walk_s`` on the core
that takes it, the walks of a batch spread evenly over the cores and run before that core's reads
(:meth:`tlb_time_s`). One walk time stands for the whole walk (under a hypervisor the
two-dimensional one), whatever the page-walk caches hold.

Partial overlap (optional, ``serial_fraction`` > 0): the system overlaps a socket's pooling
compute, its DRAM reads and its LLC reads, and the batch takes the longest of them; with a
``serial_fraction`` of ``k`` it also pays ``k`` times the sum of the other two (the part of the
non-binding work a core's instruction window does not hide under the binding one:
:meth:`serial_time_s`). 0 (the default) is perfect overlap, 1 no overlap at all.

Private caches (optional, ``l2_bytes`` > 0): each core has its own cache of ``l2_bytes`` for
embedding rows (the system splits a call's bags over the cores in contiguous chunks and keeps one
LRU per core across batches, :mod:`simrec.sim.systems.cpu_dram`); a row that hits there costs no
read time beyond the pooling compute.

What it leaves out: SMT, frequency scaling with the number of active cores, NUMA effects (the system
charges cross-socket traffic), a per-core limit on outstanding misses, and OS jitter.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

from simrec.errors import ConfigError
from simrec.sim.engine import Server

__all__ = ["CpuParams", "Cpu"]


@dataclass(frozen=True)
class CpuParams:
    """CPU cores.

    Attributes:
        sockets: CPU sockets.
        cores_per_socket: physical cores per socket.
        freq_hz: sustained core clock, hertz.
        simd_flops_per_cycle: peak fp32 FLOPs per cycle per core (AVX-512, 2 FMA units: 64).
        mlp_efficiency: fraction of the SIMD peak reached by dense MLP GEMMs.
        pool_efficiency: fraction of the SIMD peak reached by the pooling adds.
        lookup_cycles: cycles of index load, address arithmetic and loop overhead per lookup.
        name: a label.
        bag_cycles: cycles per bag (pooled output row, offsets, loop over bags); default 0.
        call_overhead_s: seconds per embedding-bag call (per table and batch); default 0.
        llc_bytes: last-level cache of the socket used for embedding rows, bytes (0 = none).
        llc_bandwidth_Bps: rate at which the cores read rows that hit in the LLC, bytes/s; 0
            turns the LLC model off (every distinct row of a batch is read from DRAM).
        output_bandwidth_Bps: rate at which the cores write the pooled output tensors (``bags x
            dim x 4`` bytes per embedding-bag call), bytes/s; the time adds to the pooling
            compute (:meth:`output_time_s`). 0 (the default) turns the output cost off.
        tlb_entries: translation entries (second-level TLB) per socket; 0 (the default) turns
            the translation model off.
        tlb_page_bytes: page size the entries map, bytes (default 2 MiB: transparent huge pages).
        tlb_walk_s: seconds of one page walk (a TLB miss) on one core; 0 turns the model off.
        serial_fraction: fraction, 0..1, of the non-binding stages' time (pooling, DRAM reads,
            LLC reads: all but the longest) that is not overlapped with the longest; 0 (the
            default) = perfect overlap (:meth:`serial_time_s`).
        l2_bytes: private (per-core) cache for embedding rows, bytes; 0 (the default) turns the
            private-cache tier off.
    """

    sockets: int
    cores_per_socket: int
    freq_hz: float
    simd_flops_per_cycle: float
    mlp_efficiency: float
    pool_efficiency: float
    lookup_cycles: float
    name: str = "cpu"
    bag_cycles: float = 0.0
    call_overhead_s: float = 0.0
    llc_bytes: float = 0.0
    llc_bandwidth_Bps: float = 0.0
    output_bandwidth_Bps: float = 0.0
    tlb_entries: int = 0
    tlb_page_bytes: float = 2.0 * 2**20
    tlb_walk_s: float = 0.0
    serial_fraction: float = 0.0
    l2_bytes: float = 0.0

    def __post_init__(self) -> None:
        for f in ("sockets", "cores_per_socket"):
            if getattr(self, f) < 1:
                raise ConfigError(
                    f"CPU {f} must be >= 1", where=f"field {f}", fix=f"give {f} a positive value"
                )
        for f in ("freq_hz", "simd_flops_per_cycle"):
            if not getattr(self, f) > 0:
                raise ConfigError(
                    f"CPU {f} must be > 0", where=f"field {f}", fix=f"give {f} a positive value"
                )
        for f in ("mlp_efficiency", "pool_efficiency"):
            if not 0 < getattr(self, f) <= 1:
                raise ConfigError(
                    f"CPU {f} must be in (0, 1], got {getattr(self, f)}",
                    where=f"field {f}",
                    fix="give the fraction of peak reached, e.g. 0.5",
                )
        for f in (
            "lookup_cycles",
            "bag_cycles",
            "call_overhead_s",
            "llc_bytes",
            "llc_bandwidth_Bps",
            "output_bandwidth_Bps",
            "tlb_entries",
            "tlb_walk_s",
            "l2_bytes",
        ):
            v = getattr(self, f)
            if not (v >= 0 and v < float("inf")):
                raise ConfigError(
                    f"CPU {f} must be a finite number >= 0, got {v}",
                    where=f"field {f}",
                    fix="give a non-negative value (0 turns the mechanism off)",
                )
        if not 0 <= self.serial_fraction <= 1:
            raise ConfigError(
                f"CPU serial_fraction must be in [0, 1], got {self.serial_fraction}",
                where="field serial_fraction",
                fix="give the fraction of the non-binding stages not overlapped (0 = full overlap)",
            )
        if not (self.tlb_page_bytes >= 1 and self.tlb_page_bytes < float("inf")):
            raise ConfigError(
                f"CPU tlb_page_bytes must be a finite number >= 1, got {self.tlb_page_bytes}",
                where="field tlb_page_bytes",
                fix="give the page size the TLB entries map, e.g. 2 MiB or 4 KiB",
            )

    @property
    def cores(self) -> int:
        return self.sockets * self.cores_per_socket

    @property
    def peak_flops(self) -> float:
        """Peak fp32 FLOP/s of all cores."""
        return self.cores * self.freq_hz * self.simd_flops_per_cycle

    @property
    def has_tlb(self) -> bool:
        """Whether the system models address translation (entries and a walk time both given)."""
        return self.tlb_entries > 0 and self.tlb_walk_s > 0

    def tlb_time_s(self, misses: float, threads: int = 1) -> float:
        """Wall time of ``misses`` page walks spread over ``threads`` threads (0 with the
        translation model off)."""
        return misses * self.tlb_walk_s / max(1, threads) if self.has_tlb else 0.0

    def serial_time_s(self, *stages: float) -> float:
        """The time the overlapped ``stages`` (seconds each) add beyond the longest of them:
        ``serial_fraction * (sum - max)`` (0 with perfect overlap, the default)."""
        if self.serial_fraction <= 0 or not stages:
            return 0.0
        return self.serial_fraction * (sum(stages) - max(stages))

    @property
    def has_l2(self) -> bool:
        """Whether the system models the cores' private caches (``l2_bytes`` > 0)."""
        return self.l2_bytes > 0

    @property
    def has_llc(self) -> bool:
        """Whether the system models the LLC (a size and a hit bandwidth are both given)."""
        return self.llc_bytes > 0 and self.llc_bandwidth_Bps > 0

    def pool_time_s(self, lookups: float, dim: int, threads: int = 1, bags: float = 0) -> float:
        """Wall time of pooling ``lookups`` rows of ``dim`` floats into ``bags`` bags on
        ``threads`` threads."""
        cyc = (
            lookups * self.lookup_cycles
            + lookups * dim / (self.simd_flops_per_cycle * self.pool_efficiency)
            + bags * self.bag_cycles
        )
        return cyc / self.freq_hz / max(1, threads)

    def llc_time_s(self, hit_bytes: float) -> float:
        """Seconds to read ``hit_bytes`` of rows that hit in the LLC (0 without an LLC model)."""
        return hit_bytes / self.llc_bandwidth_Bps if self.llc_bandwidth_Bps > 0 else 0.0

    def output_time_s(self, out_bytes: float) -> float:
        """Seconds for the cores to write ``out_bytes`` of pooled output (0 with the output cost
        off, ``output_bandwidth_Bps`` = 0)."""
        return out_bytes / self.output_bandwidth_Bps if self.output_bandwidth_Bps > 0 else 0.0

    def mlp_time_s(self, flops: float, threads: int = 1) -> float:
        """Wall time of ``flops`` dense FLOPs on ``threads`` threads."""
        return flops / (self.simd_flops_per_cycle * self.mlp_efficiency * self.freq_hz) / threads

    @classmethod
    def xeon_2s_avx512(cls, cores_per_socket: int = 32, freq_hz: float = 2.4e9) -> CpuParams:
        """An illustrative 2-socket AVX-512 server (64 fp32 FLOPs/cycle/core: two 16-lane FMA
        units). The efficiencies (MLP 0.5, pooling 0.25) and 20 cycles per lookup are stated
        assumptions, not measurements; calibrate them with ``simrec calibrate``."""
        return cls(
            sockets=2,
            cores_per_socket=cores_per_socket,
            freq_hz=freq_hz,
            simd_flops_per_cycle=64.0,
            mlp_efficiency=0.5,
            pool_efficiency=0.25,
            lookup_cycles=20.0,
            name=f"2S x {cores_per_socket}-core AVX-512 @ {freq_hz / 1e9:g} GHz",
        )


class Cpu:
    """Cores as a multi-slot :class:`~simrec.sim.engine.Server`; :meth:`run` runs threaded work."""

    def __init__(self, env: simpy.Environment, params: CpuParams, name: str | None = None):
        self.env = env
        self.p = params
        self.name = name or params.name
        self.cores = Server(env, params.cores, f"{self.name}.cores")

    def run(self, seconds_one_thread: float, threads: int = 1) -> Generator[Any, Any, float]:
        """simpy process body: split ``seconds_one_thread`` of work into ``threads`` equal jobs on
        the cores; returns the wall time (queueing included)."""
        t0 = float(self.env.now)
        threads = max(1, int(threads))
        if threads == 1:
            yield from self.cores.serve(seconds_one_thread)
        else:
            share = seconds_one_thread / threads
            yield self.env.all_of(
                [self.env.process(self.cores.serve(share)) for _ in range(threads)]
            )
        return float(self.env.now) - t0

    def pool(self, lookups: float, dim: int, threads: int = 1) -> Generator[Any, Any, float]:
        """simpy process body: pooling compute of ``lookups`` rows of ``dim`` floats."""
        return (yield from self.run(self.p.pool_time_s(lookups, dim, 1), threads))

    def mlp(self, flops: float, threads: int = 1) -> Generator[Any, Any, float]:
        """simpy process body: dense compute of ``flops`` FLOPs."""
        return (yield from self.run(self.p.mlp_time_s(flops, 1), threads))
