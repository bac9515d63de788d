"""SmartSSD-like computational storage device: SSD controller + NAND, FPGA with DDR4 and SRAM.

The device SCRec is built on (``shared/reference/screc.md`` §1.2, ``data.md`` §5.5): a Samsung
PCIe Gen3 NVMe SSD (3.84 TB) and a Xilinx KU15P FPGA with 4 GB of DDR4, joined by a private
peer-to-peer (P2P) PCIe link; the FPGA also contains the PCIe switch through which the host reaches
both (PCIe Gen3 x4, platform ``xilinx_u2_gen3x4``).

What the model covers
---------------------
* **Cold-row path** (NAND -> FPGA over P2P), per embedding row: an NVMe read command through the SSD
  controller (``controller_iops`` commands/s, ``controller_latency_s`` each), a page read on the
  NAND array (:mod:`simrec.sim.components.nand`; read amplification: a 64 B row costs a page read and
  a ``lba_bytes`` transfer) unless the controller's DRAM read cache holds the page (a page read
  again within a chunk), and ``lba_bytes`` over the P2P link at ``p2p_peak_bandwidth``. The three
  stages pipeline; the chunk time is the slowest stage plus the fill latency of the others.
* **Bulk P2P transfers**: the published SmartSSD SSD->FPGA / FPGA->SSD bandwidth sweep (Xilinx
  Vitis_Accel_Examples ``host/p2p_bandwidth``, data.md §5.5), interpolated piecewise linearly in
  log(size)-log(bandwidth) between the published points; below 4 KiB a transfer costs the 4 KiB
  transfer time, above 128 MiB the 128 MiB bandwidth holds (:func:`p2p_bandwidth`).
* **FPGA DDR4** (hot rows): the DRAM component of :mod:`simrec.sim.components.dram` with a DDR4-2400
  x64 single-rank timing set (:func:`smartssd_ddr4`), 4 GiB capacity.
* **On-chip SRAM** (BRAM + URAM): capacity from the FPGA budget; reads at ``sram_bytes_per_cycle``
  per memory-centric core per clock.
* **FPGA cores** (:mod:`simrec.sim.components.fpga`): memory-centric EMB cores pool rows,
  compute-centric TT-EMB cores reconstruct rows (MAC-bound), MLP cores run dense layers; the core
  configuration is checked against the device's resource budget at construction.
* **Host link**: PCIe Gen3 x4 through the FPGA's switch, ``host_link_bandwidth`` x
  ``host_link_efficiency`` plus ``host_link_latency_s`` per transfer.
* Utilisation of every part (NAND, controller, P2P, DDR4, SRAM, each core type, host link) for the
  system's ``devices`` report.

What it leaves out
------------------
FTL/GC/writes, the SSD's own DRAM cache, NVMe queue-depth limits beyond ``controller_iops``,
contention between the P2P link and host traffic inside the switch, DDR4 refresh, FPGA power, and
the real SCRec kernels (their microarchitecture is not public, screc.md §10). Every number whose
source is weak is marked [recall] or [INF] at its definition and is a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import simpy

from simrec.errors import ConfigError
from simrec.sim.components.dram import Dram, DramParams
from simrec.sim.components.fpga import CoreConfig, FpgaDevice, TTShape
from simrec.sim.components.nand import Nand, NandParams, chunk_service
from simrec.sim.engine import Server

__all__ = [
    "P2P_SWEEP_BYTES",
    "P2P_READ_GBPS",
    "P2P_WRITE_GBPS",
    "p2p_bandwidth",
    "p2p_transfer_time",
    "smartssd_ddr4",
    "SmartSSDParams",
    "SmartSSD",
]

_KIB = 1024
_MIB = 1024 * 1024

#: Buffer sizes of the published SmartSSD P2P sweep (data.md §5.5; Xilinx Vitis_Accel_Examples
#: ``host/p2p_bandwidth/README.rst``, platform ``xilinx_u2_gen3x4_xdma_gc_base_1``). The README
#: writes "4 KB ... 128 MB"; the example allocates power-of-two buffers, so we read KiB/MiB.
P2P_SWEEP_BYTES: tuple[int, ...] = (
    4 * _KIB,
    8 * _KIB,
    16 * _KIB,
    32 * _KIB,
    64 * _KIB,
    128 * _KIB,
    256 * _KIB,
    1 * _MIB,
    4 * _MIB,
    16 * _MIB,
    128 * _MIB,
)
#: SSD -> FPGA (read) bandwidth at those sizes, GB/s (10^9 B/s) (data.md §5.5).
P2P_READ_GBPS: tuple[float, ...] = (
    0.05,
    0.17,
    0.31,
    0.54,
    0.87,
    1.21,
    1.55,
    1.59,
    2.15,
    2.28,
    2.36,
)
#: FPGA -> SSD (write) bandwidth at those sizes, GB/s (data.md §5.5).
P2P_WRITE_GBPS: tuple[float, ...] = (
    0.16,
    0.25,
    0.37,
    0.50,
    0.68,
    0.82,
    0.92,
    0.99,
    1.02,
    1.03,
    1.04,
)


def p2p_bandwidth(
    size_bytes: float | np.ndarray, direction: Literal["read", "write"] = "read"
) -> Any:
    """Effective P2P bandwidth (bytes/s) for transfers of ``size_bytes``, from the published sweep.

    Interpolation: piecewise linear in (log size, log bandwidth) between published points. Below
    the smallest point (4 KiB) the per-transfer time of 4 KiB is kept (bandwidth proportional to
    size); above the largest (128 MiB) the bandwidth stays at its 128 MiB value.
    """
    if direction not in ("read", "write"):
        raise ConfigError(
            f"unknown P2P direction {direction!r}", where="direction", fix="use 'read' or 'write'"
        )
    gbps = P2P_READ_GBPS if direction == "read" else P2P_WRITE_GBPS
    xs = np.log(np.asarray(P2P_SWEEP_BYTES, dtype=float))
    ys = np.log(np.asarray(gbps, dtype=float) * 1e9)
    s = np.asarray(size_bytes, dtype=float)
    if np.any(s <= 0):
        raise ConfigError(
            "P2P transfer size must be positive", where="size_bytes", fix="give bytes > 0"
        )
    bw = np.exp(np.interp(np.log(s), xs, ys))
    small = s < P2P_SWEEP_BYTES[0]
    bw = np.where(small, gbps[0] * 1e9 * s / P2P_SWEEP_BYTES[0], bw)
    return bw if bw.ndim else float(bw)


def p2p_transfer_time(
    size_bytes: float | np.ndarray, direction: Literal["read", "write"] = "read"
) -> Any:
    """Seconds for one P2P transfer of ``size_bytes`` (``size / p2p_bandwidth(size)``)."""
    return np.asarray(size_bytes, dtype=float) / p2p_bandwidth(size_bytes, direction)


def _fifo(arrivals: np.ndarray, group: np.ndarray, service: float) -> np.ndarray:
    """Departure times of jobs at per-``group`` FIFO single servers with constant ``service``.

    Lindley's recursion ``D_k = max(A_k, D_{k-1}) + s`` in closed form,
    ``D_k = s k + max_{j <= k} (A_j - s (j - 1))`` (k counted within the group, arrivals in time
    order), evaluated for all groups at once with a segmented running maximum.
    """
    order = np.lexsort((arrivals, group))
    g = group[order]
    a = arrivals[order]
    n = len(a)
    start = np.r_[True, g[1:] != g[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    k = np.arange(n) - first  # 0-based position within the group
    v = a - service * k
    span = float(v.max() - v.min()) + 1.0
    seg = np.cumsum(start) * span  # increasing offset per group keeps maxima inside a group
    run = np.maximum.accumulate(v + seg) - seg
    out = np.empty(n)
    out[order] = run + service * (k + 1)
    return out


def _first_occurrences(x: np.ndarray) -> np.ndarray:
    """Mask marking one occurrence of each distinct value in ``x`` (deterministic sort)."""
    order = np.argsort(x)
    xs = x[order]
    first = np.ones(len(x), dtype=bool)
    first[1:] = xs[1:] != xs[:-1]
    out = np.zeros(len(x), dtype=bool)
    out[order[first]] = True
    return out


def smartssd_ddr4(name: str = "SmartSSD FPGA DDR4-2400 x64") -> DramParams:
    """The FPGA's 4 GB DDR4: one x64 channel, one rank of four 8 Gb x16 devices, DDR4-2400.

    Speed grade [recall/INF] (screc.md §1.2: "likely DDR4-2400 x64, 19.2 GB/s"); 4 x 8 Gb x16 = 4 GB
    is our inference from the capacity. Timings [recall: JEDEC JESD79-4 DDR4-2400R 17-17-17, x16
    2 KB page]: tCK 0.833 ns, CL = tRCD = tRP = 17, tRAS 32 ns (39), tRRD_S 5.3 ns (7), tRRD_L
    6.4 ns (8), tFAW 30 ns (36), tCCD_S 4, tCCD_L 6, tRTP 7.5 ns (9); x16 devices have 2 bank groups
    x 4 banks; row = 4 devices x 2 KiB = 8 KiB.
    """
    return DramParams(
        channels=1,
        ranks=1,
        bank_groups=2,
        banks_per_group=4,
        tCK_s=1.0 / 1.2e9,
        CL=17,
        tRCD=17,
        tRP=17,
        tRAS=39,
        tRRD_S=7,
        tRRD_L=8,
        tFAW=36,
        tCCD_S=4,
        tCCD_L=6,
        tRTP=9,
        burst_length=8,
        bus_bytes=8,
        row_bytes=8 * 1024,
        name=name,
    )


@dataclass(frozen=True)
class SmartSSDParams:
    """One SmartSSD-like device; SI units.

    Attributes:
        nand: NAND array (MQSim defaults, data.md §5.5).
        ssd_capacity_bytes: 3.84 TB (screc.md §1.2).
        lba_bytes: NVMe read unit per cold row (4 KiB LBA format); also what the NAND channel and the
            P2P link move per cold row. 512 models a 512 B LBA format.
        controller_iops: NVMe read commands/s the SSD controller completes. 540 K [recall: Samsung
            PM983 3.84 TB U.2, 4 KB random read; the SmartSSD's SSD is a PCIe Gen3 enterprise part
            of that generation].
        controller_latency_s: fixed per-command controller/firmware latency [INF].
        ssd_cache_bytes: the SSD controller's DRAM read cache. A page read again within a chunk is
            served from it (no NAND read) as long as the chunk's distinct pages fit; longer chunks
            are cut into windows of that many distinct pages (an LRU approximation). Default
            256 MiB, MQSim's ``Data_Cache_Capacity`` (anchors.md §2.1); 0 disables it.
        p2p_peak_bandwidth: SSD->FPGA link ceiling for pipelined transfers: the published 128 MiB
            plateau, 2.36 GB/s (data.md §5.5); Gen3 x4 theory is 3.94 GB/s.
        ddr: FPGA DDR4 timing (:func:`smartssd_ddr4`).
        ddr_capacity_bytes: 4 GiB (the product says 4 GB).
        fpga: FPGA part, shell reservation and kernel clock.
        cores: core configuration (checked against ``fpga`` at construction).
        sram_bytes_per_cycle: on-chip read width per EMB core, bytes/cycle [INF: 8 BRAM36 ports x
            72 bit].
        host_link_bandwidth: PCIe Gen3 x4 theoretical per direction, 3.94 GB/s (data.md §5.1).
        host_link_efficiency: achieved fraction for large DMA [INF: data.md §5.1 measured 80 % of
            theory on a Gen5 x16 link].
        host_link_latency_s: per-transfer latency [INF].
    """

    nand: NandParams = field(default_factory=NandParams)
    ssd_capacity_bytes: float = 3.84e12
    lba_bytes: int = 4096
    controller_iops: float = 540e3
    controller_latency_s: float = 10e-6
    ssd_cache_bytes: float = 256 * 2**20
    p2p_peak_bandwidth: float = 2.36e9
    ddr: DramParams = field(default_factory=smartssd_ddr4)
    ddr_capacity_bytes: float = 4 * 2**30
    fpga: FpgaDevice = field(default_factory=FpgaDevice)
    cores: CoreConfig = field(default_factory=CoreConfig)
    sram_bytes_per_cycle: int = 64
    host_link_bandwidth: float = 3.94e9
    host_link_efficiency: float = 0.8
    host_link_latency_s: float = 1e-6

    def __post_init__(self) -> None:
        for name in (
            "ssd_capacity_bytes",
            "lba_bytes",
            "controller_iops",
            "p2p_peak_bandwidth",
            "ddr_capacity_bytes",
            "sram_bytes_per_cycle",
            "host_link_bandwidth",
        ):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ConfigError(
                    f"SmartSSD parameter {name} must be a positive number, got {v!r}",
                    where=f"smartssd.{name}",
                    fix="give a positive value in SI units",
                )
        if not 0 < self.host_link_efficiency <= 1:
            raise ConfigError(
                f"host_link_efficiency must be in (0, 1], got {self.host_link_efficiency}",
                where="smartssd.host_link_efficiency",
                fix="give a fraction such as 0.8",
            )
        if self.lba_bytes > self.nand.page_bytes:
            raise ConfigError(
                f"lba_bytes {self.lba_bytes} exceeds the NAND page ({self.nand.page_bytes} B)",
                where="smartssd.lba_bytes",
                fix="use an LBA no larger than a page",
            )
        self.cores.check(self.fpga, where="smartssd.cores")

    # -- derived -----------------------------------------------------------------------------------
    @property
    def host_bandwidth(self) -> float:
        """Achieved host-link bandwidth, bytes/s."""
        return self.host_link_bandwidth * self.host_link_efficiency

    @property
    def ssd_cache_pages(self) -> int:
        """Pages the SSD read cache holds."""
        return int(self.ssd_cache_bytes // self.nand.page_bytes)

    @property
    def onchip_bytes(self) -> int:
        """BRAM + URAM bytes left for data after the shell and the cores' buffers."""
        return self.fpga.onchip_bytes(self.cores.resources())

    def cold_row_stage_rates(self) -> dict[str, float]:
        """Saturated cold rows/s of each pipeline stage: controller, NAND, P2P link."""
        return {
            "controller": self.controller_iops,
            "nand": self.nand.peak_read_rate(self.lba_bytes),
            "p2p": self.p2p_peak_bandwidth / self.lba_bytes,
        }

    def cold_row_peak_rate(self) -> float:
        """Saturated cold rows/s of the whole NAND->FPGA path (slowest stage)."""
        return min(self.cold_row_stage_rates().values())

    def cold_row_latency(self) -> float:
        """Unloaded latency of one cold row: controller + tR + NAND transfer + P2P transfer."""
        return (
            self.controller_latency_s
            + 1.0 / self.controller_iops
            + self.nand.unloaded_read_latency(self.lba_bytes)
            + self.lba_bytes / self.p2p_peak_bandwidth
        )


class SmartSSD:
    """One SmartSSD in a simpy environment.

    Parts (each an :class:`~simrec.sim.engine.Server` or a component): ``controller``, ``nand``
    (:class:`~simrec.sim.components.nand.Nand`), ``p2p``, ``ddr``
    (:class:`~simrec.sim.components.dram.Dram`), ``sram`` (one port per EMB core), ``emb``, ``tt``
    and ``mlp`` core pools, ``host_link``. Process bodies (``yield from dev.x(...)`` or
    ``env.process(dev.x(...))``) serve one chunk of work each and return its duration.
    """

    def __init__(
        self,
        env: simpy.Environment,
        params: SmartSSDParams | None = None,
        mode: Literal["fast", "fine"] = "fast",
        name: str = "smartssd",
    ) -> None:
        self.env = env
        self.p = params if params is not None else SmartSSDParams()
        self.mode = mode
        self.name = name
        p = self.p
        self.nand = Nand(env, p.nand, mode=mode, name=f"{name}.nand")
        self.ddr = Dram(env, p.ddr, mode=mode, name=f"{name}.ddr")
        self.controller = Server(env, 1, f"{name}.controller")
        self.p2p = Server(env, 1, f"{name}.p2p")
        self.host_link = Server(env, 1, f"{name}.host_link")
        self.host_link_in = Server(env, 1, f"{name}.host_link_in")
        c = p.cores
        self.sram = Server(env, max(c.n_emb, 1), f"{name}.sram")
        self.emb = Server(env, max(c.n_emb, 1), f"{name}.emb")
        self.tt = Server(env, max(c.n_tt, 1), f"{name}.tt")
        self.mlp = Server(env, max(c.n_mlp, 1), f"{name}.mlp")
        self.counters: dict[str, float] = {
            "cold_rows": 0,
            "ssd_cache_hits": 0,
            "ddr_rows": 0,
            "sram_rows": 0,
            "tt_rows": 0,
            "tt_macs": 0,
            "pooled_rows": 0,
            "mlp_macs": 0,
            "host_bytes": 0,
            "host_bytes_in": 0,
            "p2p_bytes": 0,
        }

    # -- cold rows: controller -> NAND -> P2P ------------------------------------------------------
    def cache_misses(self, pages: np.ndarray) -> np.ndarray:
        """Boolean mask of the reads in ``pages`` that go to NAND (SSD read-cache misses).

        Within a window of at most ``ssd_cache_pages`` distinct pages, one read of each page misses
        (the rest are merged with it or hit the cache); the windows are consecutive equal slices
        of the chunk.
        """
        pages = np.asarray(pages, dtype=np.int64)
        n = len(pages)
        cap = self.p.ssd_cache_pages
        if cap <= 0 or n == 0:
            return np.ones(n, dtype=bool)
        miss = _first_occurrences(pages)
        windows = max(1, -(-int(miss.sum()) // cap))
        if windows > 1:
            cuts = np.linspace(0, n, windows + 1).astype(np.int64)
            for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
                miss[lo:hi] = _first_occurrences(pages[lo:hi])
        return miss

    def cold_rows_service_time(self, pages: np.ndarray, miss: np.ndarray | None = None) -> float:
        """Fast-path time for cold rows at NAND ``pages`` on an idle device (no simpy).

        Pipelined stages: ``max(n / iops, NAND chunk time, n * lba / p2p_bw)`` plus the fill
        latency of the stages that are not the bottleneck (one row's time through each). ``miss``
        is :meth:`cache_misses` of ``pages`` when the caller has it already.
        """
        p = self.p
        pages = np.asarray(pages, dtype=np.int64)
        n = len(pages)
        if n == 0:
            return 0.0
        if miss is None:
            miss = self.cache_misses(pages)
        t_ctrl = n / p.controller_iops
        t_nand = chunk_service(p.nand, pages[miss], p.lba_bytes).time_s
        t_p2p = n * p.lba_bytes / p.p2p_peak_bandwidth
        one = {
            "ctrl": 1.0 / p.controller_iops,
            "nand": p.nand.unloaded_read_latency(p.lba_bytes),
            "p2p": p.lba_bytes / p.p2p_peak_bandwidth,
        }
        stages = {"ctrl": t_ctrl, "nand": t_nand, "p2p": t_p2p}
        slow = max(stages, key=lambda k: stages[k])
        fill = sum(v for k, v in one.items() if k != slow)
        bound = p.controller_latency_s + stages[slow] + fill
        return max(bound, self._tandem_time(pages, miss))

    def _tandem_time(self, pages: np.ndarray, miss: np.ndarray) -> float:
        """The cold path as a tandem of FIFO queues with deterministic service, solved in closed
        form with numpy: controller (1/iops per command, in order), the row's plane (tR), its
        channel bus (the transfer), then the P2P link. Captures the queueing between near-balanced
        stages that the bottleneck bound misses for short chunks; it ignores that a plane stays
        held while its page waits for the bus."""
        p = self.p
        n = len(pages)
        a = p.controller_latency_s + np.arange(1, n + 1) / p.controller_iops
        ready = a.copy()
        if miss.any():
            ch, _die, srv = p.nand.locate(pages[miss])
            t_plane = _fifo(a[miss], srv, p.nand.t_read_s)
            ready[miss] = _fifo(t_plane, ch, float(p.nand.transfer_time(p.lba_bytes)))
        done = _fifo(ready, np.zeros(n, dtype=np.int64), p.lba_bytes / p.p2p_peak_bandwidth)
        return float(done.max())

    def read_cold_rows(self, pages: np.ndarray) -> Generator[Any, Any, float]:
        """simpy process body: gather cold rows stored at NAND ``pages`` into the FPGA."""
        t0 = float(self.env.now)
        p = self.p
        pages = np.asarray(pages, dtype=np.int64)
        n = len(pages)
        if n == 0:
            return 0.0
        self.counters["cold_rows"] += n
        self.counters["p2p_bytes"] += n * p.lba_bytes
        miss = self.cache_misses(pages)
        self.counters["ssd_cache_hits"] += int(n - miss.sum())
        if self.mode == "fast":
            total = self.cold_rows_service_time(pages, miss)
            procs = [
                self.env.process(self.controller.serve(n / p.controller_iops)),
                self.env.process(self.nand.read(pages[miss], p.lba_bytes)),
                self.env.process(self.p2p.serve(n * p.lba_bytes / p.p2p_peak_bandwidth)),
            ]
            yield self.env.all_of(procs)
            rest = t0 + total - float(self.env.now)
            if rest > 0:
                yield self.env.timeout(rest)
        else:
            procs = [
                self.env.process(self._cold_row(int(pg), bool(m)))
                for pg, m in zip(pages.tolist(), miss.tolist(), strict=True)
            ]
            yield self.env.all_of(procs)
        return float(self.env.now) - t0

    def _cold_row(self, page: int, from_nand: bool) -> Generator[Any, Any, None]:
        p = self.p
        yield from self.controller.serve(1.0 / p.controller_iops)
        if p.controller_latency_s:
            yield self.env.timeout(p.controller_latency_s)
        if from_nand:
            yield from self.nand.read_page(page, p.lba_bytes)
        yield from self.p2p.serve(p.lba_bytes / p.p2p_peak_bandwidth)

    def read_bulk(
        self, nbytes: float, transfer_bytes: float, direction: Literal["read", "write"] = "read"
    ) -> Generator[Any, Any, float]:
        """simpy process body: move ``nbytes`` between SSD and FPGA in transfers of
        ``transfer_bytes`` at the published sweep's bandwidth (:func:`p2p_bandwidth`)."""
        dt = float(nbytes) / float(p2p_bandwidth(transfer_bytes, direction))
        self.counters["p2p_bytes"] += nbytes
        yield from self.p2p.serve(dt)
        return dt

    # -- hot rows: DDR4, on-chip SRAM ------------------------------------------------------------
    def read_ddr_rows(self, rows: np.ndarray, row_bytes: int) -> Generator[Any, Any, float]:
        """simpy process body: read DDR4-resident rows (local row numbers, packed back to back,
        each padded to whole bursts)."""
        bursts = max(1, -(-int(row_bytes) // self.p.ddr.burst_bytes))
        starts = np.asarray(rows, dtype=np.int64) * bursts * self.p.ddr.burst_bytes
        return (yield from self.read_ddr(starts, bursts))

    def read_ddr(self, starts: np.ndarray, nbursts: int) -> Generator[Any, Any, float]:
        """simpy process body: read ``nbursts`` bursts at each byte address in ``starts``."""
        starts = np.asarray(starts, dtype=np.int64)
        if len(starts) == 0:
            return 0.0
        top = int(starts.max()) + nbursts * self.p.ddr.burst_bytes
        if top > self.p.ddr_capacity_bytes or int(starts.min()) < 0:
            raise ConfigError(
                f"DDR4 rows reach byte {top:,} but the FPGA DDR4 holds "
                f"{int(self.p.ddr_capacity_bytes):,} B",
                where=f"{self.name}.ddr",
                fix="place fewer rows in the DDR4 tier (or give the device more DDR4)",
            )
        self.counters["ddr_rows"] += len(starts)
        return (yield from self.ddr.read(starts, nbursts))

    def sram_cycles(self, cycles: float, rows: int = 0) -> Generator[Any, Any, float]:
        """simpy process body: ``cycles`` of on-chip reads (one port's cycles) spread over the
        EMB cores' ports."""
        self.counters["sram_rows"] += rows
        return (yield from self._spread(self.sram, float(cycles) / self.p.fpga.clock_hz))

    def sram_time(self, n_rows: int, row_bytes: int) -> float:
        """Seconds for one EMB core to read ``n_rows`` rows of ``row_bytes`` from on-chip SRAM."""
        cycles = n_rows * math.ceil(row_bytes / self.p.sram_bytes_per_cycle)
        return cycles / self.p.fpga.clock_hz

    def read_sram_rows(self, n_rows: int, row_bytes: int) -> Generator[Any, Any, float]:
        """simpy process body: read rows from on-chip SRAM, spread over the EMB cores' ports."""
        t0 = float(self.env.now)
        self.counters["sram_rows"] += n_rows
        k = self.sram.capacity
        share = [n_rows // k + (1 if i < n_rows % k else 0) for i in range(k)]
        procs = [
            self.env.process(self.sram.serve(self.sram_time(s, row_bytes))) for s in share if s
        ]
        if procs:
            yield self.env.all_of(procs)
        return float(self.env.now) - t0

    # -- cores -------------------------------------------------------------------------------------
    def _spread(self, pool: Server, total_s: float) -> Generator[Any, Any, float]:
        t0 = float(self.env.now)
        k = pool.capacity
        procs = [self.env.process(pool.serve(total_s / k)) for _ in range(k)]
        yield self.env.all_of(procs)
        return float(self.env.now) - t0

    def pool(self, n_rows: int, dim: int) -> Generator[Any, Any, float]:
        """simpy process body: EMB cores sum ``n_rows`` rows of ``dim`` elements into bags."""
        c = self.p.cores
        if c.n_emb == 0:
            raise ConfigError(
                "rows need pooling but the device has no EMB core",
                where=f"{self.name}.cores.n_emb",
                fix="give the device at least one memory-centric core",
            )
        cycles = float(n_rows) * math.ceil(dim / c.emb.lanes)
        return (yield from self.pool_cycles(cycles, n_rows))

    def pool_cycles(self, cycles: float, rows: int = 0) -> Generator[Any, Any, float]:
        """simpy process body: ``cycles`` of pooling work (one EMB core's cycles) spread over
        the EMB cores; ``rows`` is counted in ``pooled_rows``."""
        if self.p.cores.n_emb == 0:
            raise ConfigError(
                "rows need pooling but the device has no EMB core",
                where=f"{self.name}.cores.n_emb",
                fix="give the device at least one memory-centric core",
            )
        self.counters["pooled_rows"] += rows
        return (yield from self._spread(self.emb, float(cycles) / self.p.fpga.clock_hz))

    def tt_reconstruct(self, shape: TTShape, rows: np.ndarray) -> Generator[Any, Any, float]:
        """simpy process body: TT-EMB cores reconstruct ``rows`` of one TT table."""
        c = self.p.cores
        if c.n_tt == 0:
            raise ConfigError(
                "a TT table is placed on a device without TT cores",
                where=f"{self.name}.cores.n_tt",
                fix="give the device at least one compute-centric core or store the table raw",
            )
        return (yield from self.tt_macs(c.tt.chunk_macs(shape, rows), len(rows)))

    def tt_macs(self, macs: float, rows: int = 0) -> Generator[Any, Any, float]:
        """simpy process body: ``macs`` TT MACs (``rows`` reconstructed rows) spread over the TT
        cores."""
        c = self.p.cores
        if c.n_tt == 0:
            raise ConfigError(
                "a TT table is placed on a device without TT cores",
                where=f"{self.name}.cores.n_tt",
                fix="give the device at least one compute-centric core or store the table raw",
            )
        self.counters["tt_macs"] += macs
        self.counters["tt_rows"] += rows
        total = float(c.tt.time(macs, self.p.fpga.clock_hz, cores=1))
        return (yield from self._spread(self.tt, total))

    def run_mlp(self, samples: int, layers: Sequence[int]) -> Generator[Any, Any, float]:
        """simpy process body: MLP cores run ``samples`` through ``layers``."""
        c = self.p.cores
        if c.n_mlp == 0:
            raise ConfigError(
                "the MLP is placed on a device without MLP cores",
                where=f"{self.name}.cores.n_mlp",
                fix="give the device an MLP core or run the MLP on the host",
            )
        self.counters["mlp_macs"] += samples * c.mlp.macs_per_sample(layers)
        total = c.mlp.time(samples, layers, self.p.fpga.clock_hz, cores=1)
        return (yield from self._spread(self.mlp, total))

    def to_host(self, nbytes: float) -> Generator[Any, Any, float]:
        """simpy process body: send ``nbytes`` (pooled vectors, scores) to the host."""
        self.counters["host_bytes"] += nbytes
        dt = self.p.host_link_latency_s + nbytes / self.p.host_bandwidth
        return (yield from self.host_link.serve(dt))

    def from_host(self, nbytes: float) -> Generator[Any, Any, float]:
        """simpy process body: receive ``nbytes`` (index lists, dense inputs) from the host; the
        link is full duplex, so this direction has its own server."""
        self.counters["host_bytes_in"] += nbytes
        dt = self.p.host_link_latency_s + nbytes / self.p.host_bandwidth
        return (yield from self.host_link_in.serve(dt))

    # -- reporting ---------------------------------------------------------------------------------
    def utilisation(self, until: float | None = None) -> dict[str, float]:
        """Busy fraction of every part over ``[0, until]`` (default now)."""
        end = float(self.env.now if until is None else until)

        def u(s: Server) -> float:
            return s.stats(end).utilisation if end > 0 else 0.0

        nand_srv = [u(s) for s in self.nand.servers]
        return {
            "nand": float(np.mean(nand_srv)),
            "nand_channels": float(np.mean([u(c) for c in self.nand.channels])),
            "controller": u(self.controller),
            "p2p": u(self.p2p),
            "ddr4": float(np.mean([u(c) for c in self.ddr.channels])),
            "sram": u(self.sram),
            "emb_cores": u(self.emb),
            "tt_cores": u(self.tt),
            "mlp_cores": u(self.mlp),
            "host_link": u(self.host_link),
            "host_link_in": u(self.host_link_in),
        }
