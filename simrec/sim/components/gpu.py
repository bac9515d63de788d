"""GPU: embedding gather efficiency vs row size, SM compute for MLPs, kernel launch overhead.

What the model covers: one in-order stream (a FIFO :class:`~simrec.sim.engine.Server`) on which
kernels run one after another; each kernel pays ``kernel_launch_s`` and then

* an embedding gather moving ``lookups * row_bytes`` bytes at ``gather_efficiency(row_bytes) *
  hbm_peak`` (the efficiency, interpolated linearly in log2 of the row size and clamped at the ends,
  is calibrated from the measured H100 ``embedding_bag`` runs with L = 32 in reference/data.md §5.2);
* a dense kernel of ``flops`` FLOPs at ``mlp_efficiency * peak_flops``.

Streams: a :class:`Gpu` has ``streams`` in-order streams (default one). Kernels on different
streams run concurrently and, by assumption, do not slow each other down (no SM or HBM contention
between streams is modelled); a system uses a second stream to overlap the bottom MLP with the
embedding look-ups, as TorchRec's pipelines do.

Fine granularity (:meth:`Gpu.gather_fine`): the rows of a gather kernel are requests served by
``sm_count`` parallel request slots (one per SM), each row taking ``sm_count * row_bytes /
(efficiency * hbm_peak)`` on its slot, rows handed to the next free slot in order; one simpy event per
row. With ``N`` rows the kernel time is the list-scheduling makespan, within one row time of the
fast formula (relative gap ``<= sm_count / N``).

What it leaves out: contention between concurrent streams, the L2 cache (hot rows served from L2 are not
faster), CPU-side dispatch beyond the launch overhead, and small-batch occupancy effects (the L = 1
runs in data.md §5.2 are launch/latency bound, which this model only captures through
``kernel_launch_s``). Use :mod:`simrec.sim.components.hbm` for a timing-level model of the memory.
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

__all__ = ["GpuParams", "Gpu", "H100_EMBEDDING_BAG_L32"]

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
    """

    name: str
    peak_flops: float
    mlp_efficiency: float
    kernel_launch_s: float
    hbm: HbmParams
    hbm_capacity_bytes: float
    gather_efficiency: tuple[tuple[int, float], ...]
    sm_count: int = 132

    def __post_init__(self) -> None:
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

    def gather_time_s(self, lookups: float, row_bytes: float) -> float:
        """One gather kernel: ``launch + lookups * row_bytes / (eff(row_bytes) * peak)``."""
        if lookups <= 0:
            return 0.0
        bw = self.gather_eff(row_bytes) * self.hbm.peak_bw_Bps
        return self.kernel_launch_s + lookups * row_bytes / bw

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
        self, segments: list[tuple[int, float]], stream: int = 0
    ) -> Generator[Any, Any, float]:
        """simpy process body: one gather kernel, one event per row request.

        ``segments`` lists ``(rows, row_bytes)`` in issue order. The kernel holds ``stream``, pays
        ``kernel_launch_s``, then ``sm_count`` slots take rows in order, each row lasting
        ``sm_count * row_bytes / (eff(row_bytes) * hbm_peak)``. Returns the sojourn time.
        """
        env = self.env
        t0 = float(env.now)
        self.kernels += 1
        token = yield from self.streams[stream].acquire()
        if self.p.kernel_launch_s > 0:
            yield env.timeout(self.p.kernel_launch_s)
        slots = self.p.sm_count
        durs: list[float] = []
        for n, rb in segments:
            if n > 0:
                bw = self.p.gather_eff(rb) * self.p.hbm.peak_bw_Bps
                durs.extend([slots * rb / bw] * int(n))
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
