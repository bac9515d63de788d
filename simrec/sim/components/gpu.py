"""GPU: embedding gather efficiency vs row size, L2 hits, per-bag outputs, SM compute for MLPs,
kernel launch overhead.

What the model covers: one in-order stream (a FIFO :class:`~simrec.sim.engine.Server`) on which
kernels run one after another; each kernel pays ``kernel_launch_s`` and then

* an embedding gather (one fused ``embedding_bag``-style kernel) that takes the sum of three terms:

  - **HBM reads**: ``misses * row_bytes / (gather_efficiency(row_bytes) * hbm_peak)`` for the
    lookups not served by the L2 (the efficiency, interpolated linearly in log2 of the row size and
    clamped at the ends, is calibrated from measured ``embedding_bag`` runs; the built-in H100
    values from the L = 32 runs of reference/data.md §5.2);
  - **L2 hits** (only when ``l2_bandwidth_Bps`` is given): ``hits * sectors(row_bytes) /
    l2_bandwidth_Bps``, the row rounded up to whole 32 B L2 sectors. Which lookups hit is decided
    by the system from the access stream (an LRU of ``l2_bytes`` over rows,
    :class:`simrec.sim.systems.multi_gpu.MultiGpuSystem`); this class only prices them;
  - **pooled outputs** (only when ``output_efficiency`` is given): ``bags * out_row_bytes /
    (output_efficiency * hbm_peak)``, one pooled row written per bag (``embedding_bag`` writes
    ``batch x dim`` outputs whatever the pooling factor; at L = 1 that is as many bytes as it reads);

* a dense kernel of ``flops`` FLOPs at ``mlp_efficiency * peak_flops``.

The three gather terms are added (the kernel is assumed not to overlap them); with neither
``l2_bandwidth_Bps`` nor ``output_efficiency`` the gather is the earlier reads-only formula, so
presets without the new keys predict exactly what they did.

Streams: a :class:`Gpu` has ``streams`` in-order streams (default one). Kernels on different
streams run concurrently and, by assumption, do not slow each other down (no SM or HBM contention
between streams is modelled); a system uses a second stream to overlap the bottom MLP with the
embedding look-ups, as TorchRec's pipelines do.

Fine granularity (:meth:`Gpu.gather_fine`): the row reads, L2 hits and output rows of a gather
kernel are requests served by ``sm_count`` parallel request slots (one per SM), each request taking
``sm_count`` times its per-row time of the fast formula on its slot, requests handed to the next
free slot in order; one simpy event per request. With ``N`` requests the kernel time is the
list-scheduling makespan, within one request time of the fast formula (relative gap ``<= sm_count /
N``).

What it leaves out: contention between concurrent streams; L2 associativity, its split into two
partitions, and the L2 space taken by the index and output streams; overlap between the read,
hit and output phases; CPU-side dispatch beyond the launch overhead; and small-batch occupancy
effects (``kernel_launch_s`` absorbs them). Use :mod:`simrec.sim.components.hbm` for a timing-level
model of the memory.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from simrec.errors import ConfigError
from simrec.sim.components.hbm import HbmParams
from simrec.sim.engine import Server

__all__ = ["GpuParams", "Gpu", "H100_EMBEDDING_BAG_L32", "L2_SECTOR_BYTES", "Segment"]

#: L2 sector size of NVIDIA GPUs since Volta (the unit the L2 moves data in), bytes [recall:
#: CUDA C++ Best Practices Guide, "memory transactions ... 32-byte segments"].
L2_SECTOR_BYTES = 32

#: ``(count, row_bytes)``: ``count`` rows (or bags) of ``row_bytes`` bytes each.
Segment = tuple[int, float]

#: Measured PyTorch embedding_bag on one H100 (reference/data.md §5.2): (row bytes, lookups per
#: batch B*L, seconds) for B = 65,536 and L = 32.
H100_EMBEDDING_BAG_L32: tuple[tuple[int, int, float], ...] = (
    (64, 65_536 * 32, 0.170e-3),
    (256, 65_536 * 32, 0.353e-3),
    (512, 65_536 * 32, 0.676e-3),
)


def calibrate_gather(
    runs: tuple[tuple[int, int, float], ...], peak_Bps: float, launch_s: float
) -> tuple[tuple[int, float], ...]:
    """Efficiency per row size from measured runs: ``bytes / ((t - launch) * peak)``."""
    out = []
    for row_bytes, lookups, t in runs:
        out.append((row_bytes, lookups * row_bytes / ((t - launch_s) * peak_Bps)))
    return tuple(out)


@dataclass(frozen=True)
class GpuParams:
    """A GPU.

    Attributes:
        name: a label.
        peak_flops: dense peak FLOP/s of the datatype the MLPs use.
        mlp_efficiency: fraction of ``peak_flops`` the MLP kernels reach.
        kernel_launch_s: fixed cost per kernel (launch + tail), seconds.
        hbm: the memory (its ``peak_bw_Bps`` is the gather's reference bandwidth).
        hbm_capacity_bytes: memory capacity, bytes.
        gather_efficiency: ``(row_bytes, fraction of HBM peak)`` points, ascending row size.
        sm_count: streaming multiprocessors, the parallel request slots of the fine-grained gather
            (H100 SXM: 132).
        output_efficiency: fraction of ``hbm.peak_bw_Bps`` at which the pooled output rows (one
            per bag) are written; None = outputs not charged (the reads-only model).
        l2_bytes: L2 capacity, bytes (the system's LRU of rows in front of HBM; H100 SXM 50 MB,
            H200 60 MB). 0 = no L2.
        l2_bandwidth_Bps: rate at which lookups that hit the L2 are served, bytes of whole 32 B
            sectors per second; None = the L2 is not modelled (every lookup is an HBM read).
    """

    name: str
    peak_flops: float
    mlp_efficiency: float
    kernel_launch_s: float
    hbm: HbmParams
    hbm_capacity_bytes: float
    gather_efficiency: tuple[tuple[int, float], ...]
    sm_count: int = 132
    output_efficiency: float | None = None
    l2_bytes: float = 0.0
    l2_bandwidth_Bps: float | None = None

    def __post_init__(self) -> None:
        if self.output_efficiency is not None and not 0 < self.output_efficiency <= 1:
            raise ConfigError(
                f"GPU output_efficiency must be in (0, 1], got {self.output_efficiency}",
                where="field output_efficiency",
                fix="e.g. 0.12, or leave it out to not charge the pooled outputs",
            )
        if not self.l2_bytes >= 0:
            raise ConfigError(
                f"GPU l2_bytes must be >= 0, got {self.l2_bytes}",
                where="field l2_size",
                fix="e.g. 50 MB",
            )
        if self.l2_bandwidth_Bps is not None and not self.l2_bandwidth_Bps > 0:
            raise ConfigError(
                f"GPU l2_bandwidth must be > 0, got {self.l2_bandwidth_Bps}",
                where="field l2_bandwidth",
                fix="e.g. 4 TB/s, or leave it out to not model the L2",
            )
        if self.sm_count < 1:
            raise ConfigError(
                f"GPU sm_count must be >= 1, got {self.sm_count}",
                where="field sm_count",
                fix="e.g. 132",
            )
        if not self.peak_flops > 0:
            raise ConfigError(
                "GPU peak_flops must be > 0", where="field peak_flops", fix="e.g. 989 TFLOPS"
            )
        if not 0 < self.mlp_efficiency <= 1:
            raise ConfigError(
                "GPU mlp_efficiency must be in (0, 1]", where="field mlp_efficiency", fix="e.g. 0.6"
            )
        if self.kernel_launch_s < 0:
            raise ConfigError(
                "GPU kernel_launch_s must be >= 0", where="field kernel_launch_s", fix="e.g. 5 us"
            )
        pts = self.gather_efficiency
        if (
            not pts
            or any(not 0 < e <= 1 for _, e in pts)
            or any(a[0] >= b[0] for a, b in zip(pts, pts[1:], strict=False))
        ):
            raise ConfigError(
                "GPU gather_efficiency must be (row_bytes, efficiency in (0, 1]) points with "
                "increasing row_bytes",
                where="field gather_efficiency",
                fix="give at least one point, sorted by row size",
            )

    def gather_eff(self, row_bytes: float) -> float:
        """Fraction of HBM peak reached gathering rows of ``row_bytes`` bytes."""
        xs = np.log2([r for r, _ in self.gather_efficiency])
        ys = [e for _, e in self.gather_efficiency]
        return float(np.interp(math.log2(max(row_bytes, 1.0)), xs, ys))

    @property
    def l2_modelled(self) -> bool:
        """Whether L2 hits are priced separately (an L2 bandwidth and a non-zero L2 size)."""
        return self.l2_bandwidth_Bps is not None and self.l2_bytes > 0

    @staticmethod
    def l2_line_bytes(row_bytes: float) -> int:
        """Bytes the L2 moves for one row: ``row_bytes`` rounded up to whole 32 B sectors."""
        return int(math.ceil(max(row_bytes, 1.0) / L2_SECTOR_BYTES)) * L2_SECTOR_BYTES

    def read_row_s(self, row_bytes: float) -> float:
        """Time per row read from HBM by a gather: ``row_bytes / (eff(row_bytes) * peak)``."""
        return row_bytes / (self.gather_eff(row_bytes) * self.hbm.peak_bw_Bps)

    def l2_row_s(self, row_bytes: float) -> float:
        """Time per row served by the L2 (HBM read time when the L2 is not modelled)."""
        if self.l2_bandwidth_Bps is None:
            return self.read_row_s(row_bytes)
        return self.l2_line_bytes(row_bytes) / self.l2_bandwidth_Bps

    def output_row_s(self, out_row_bytes: float) -> float:
        """Time per pooled output row written (0 when ``output_efficiency`` is None)."""
        if self.output_efficiency is None:
            return 0.0
        return out_row_bytes / (self.output_efficiency * self.hbm.peak_bw_Bps)

    def gather_body_s(
        self,
        reads: list[Segment],
        hits: list[Segment] | None = None,
        outputs: list[Segment] | None = None,
    ) -> float:
        """The gather kernel without its launch: HBM ``reads`` + L2 ``hits`` + pooled
        ``outputs`` (each a list of ``(count, row_bytes)``)."""
        t = sum(n * self.read_row_s(r) for n, r in reads if n > 0)
        t += sum(n * self.l2_row_s(r) for n, r in hits or () if n > 0)
        t += sum(n * self.output_row_s(r) for n, r in outputs or () if n > 0)
        return t

    def gather_time_s(
        self,
        lookups: float,
        row_bytes: float,
        bags: float = 0.0,
        l2_hits: float = 0.0,
        out_row_bytes: float | None = None,
    ) -> float:
        """One gather kernel of ``lookups`` rows of ``row_bytes`` (``l2_hits`` of them served by
        the L2) writing ``bags`` pooled rows of ``out_row_bytes`` (default ``row_bytes``):
        ``launch + (lookups - l2_hits) * row_bytes / (eff * peak) + l2_hits * sectors / l2_bw +
        bags * out_row_bytes / (output_efficiency * peak)``."""
        if lookups <= 0 and bags <= 0:
            return 0.0
        hits = min(max(l2_hits, 0.0), max(lookups, 0.0))
        body = self.gather_body_s(
            [(lookups - hits, row_bytes)],  # type: ignore[list-item]
            [(hits, row_bytes)],  # type: ignore[list-item]
            [(bags, row_bytes if out_row_bytes is None else out_row_bytes)],  # type: ignore[list-item]
        )
        return self.kernel_launch_s + body

    def mlp_time_s(self, flops: float) -> float:
        """One dense kernel: ``launch + flops / (mlp_efficiency * peak_flops)``."""
        if flops <= 0:
            return 0.0
        return self.kernel_launch_s + flops / (self.mlp_efficiency * self.peak_flops)

    @classmethod
    def h100_sxm(cls, kernel_launch_s: float = 5e-6, mlp_efficiency: float = 0.6) -> GpuParams:
        """H100 SXM 80 GB: HBM3 3.35 TB/s (data.md §5.2), gather efficiency calibrated from the
        measured embedding_bag runs of data.md §5.2 after removing ``kernel_launch_s``.

        ``peak_flops`` = 989 TFLOP/s dense BF16 and 132 SMs (NVIDIA H100 SXM datasheet [recall]); the launch
        overhead (5 us) and MLP efficiency (0.6) are stated assumptions.
        """
        hbm = HbmParams.h100_sxm_hbm3()
        return cls(
            name="H100 SXM 80GB",
            peak_flops=989e12,
            mlp_efficiency=mlp_efficiency,
            kernel_launch_s=kernel_launch_s,
            hbm=hbm,
            hbm_capacity_bytes=80e9,
            gather_efficiency=calibrate_gather(
                H100_EMBEDDING_BAG_L32, hbm.peak_bw_Bps, kernel_launch_s
            ),
        )


class Gpu:
    """One GPU with ``streams`` in-order kernel streams (FIFO servers; :attr:`stream` is the first).

    Counters: ``kernels`` (kernels launched) and ``events`` (simpy timeouts of fine-grained gathers).
    """

    def __init__(
        self, env: simpy.Environment, params: GpuParams, name: str | None = None, streams: int = 1
    ):
        if streams < 1:
            raise ConfigError(
                f"a GPU needs >= 1 stream, got {streams}", where="streams", fix="use 1 or 2"
            )
        self.env = env
        self.p = params
        self.name = name or params.name
        self.streams = [
            Server(env, 1, f"{self.name}.stream" + (f"{i}" if i else "")) for i in range(streams)
        ]
        self.stream = self.streams[0]
        self.kernels = 0
        self.events = 0

    def kernel(self, seconds: float, stream: int = 0) -> Generator[Any, Any, float]:
        """simpy process body: one kernel of ``seconds`` on ``stream``; returns the sojourn time."""
        self.kernels += 1
        return (yield from self.streams[stream].serve(seconds))

    def gather_fine(
        self,
        segments: list[Segment],
        stream: int = 0,
        hits: list[Segment] | None = None,
        outputs: list[Segment] | None = None,
    ) -> Generator[Any, Any, float]:
        """simpy process body: one gather kernel, one event per request.

        ``segments`` lists the HBM row reads ``(rows, row_bytes)`` in issue order, ``hits`` the
        L2 hits and ``outputs`` the pooled output rows ``(bags, out_row_bytes)``. The kernel holds
        ``stream``, pays ``kernel_launch_s``, then ``sm_count`` slots take the requests in order
        (reads, hits, outputs), each lasting ``sm_count`` times its per-row time of
        :meth:`GpuParams.gather_body_s`. Returns the sojourn time.
        """
        env = self.env
        t0 = float(env.now)
        self.kernels += 1
        token = yield from self.streams[stream].acquire()
        if self.p.kernel_launch_s > 0:
            yield env.timeout(self.p.kernel_launch_s)
        slots = self.p.sm_count
        durs: list[float] = []
        for segs, per_row in (
            (segments, self.p.read_row_s),
            (hits or [], self.p.l2_row_s),
            (outputs or [], self.p.output_row_s),
        ):
            for n, rb in segs:
                d = slots * per_row(rb)
                if n > 0 and d > 0:
                    durs.extend([d] * int(n))
        nxt = [0]

        def slot() -> Generator[Any, Any, None]:
            while nxt[0] < len(durs):
                d = durs[nxt[0]]
                nxt[0] += 1
                self.events += 1
                yield env.timeout(d)

        procs = [env.process(slot()) for _ in range(min(slots, len(durs)))]
        if procs:
            yield env.all_of(procs)
        self.streams[stream].release(token)
        return float(env.now) - t0

    def gather(self, lookups: float, row_bytes: float) -> Generator[Any, Any, float]:
        """simpy process body: an embedding gather kernel."""
        return (yield from self.kernel(self.p.gather_time_s(lookups, row_bytes)))

    def mlp(self, flops: float) -> Generator[Any, Any, float]:
        """simpy process body: a dense kernel."""
        return (yield from self.kernel(self.p.mlp_time_s(flops)))
