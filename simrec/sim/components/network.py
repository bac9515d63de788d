"""NVLink / switch network: an alpha-beta model per dimension, as in ASTRA-sim's analytical backend.

What the model covers: ``dims`` network dimensions (reference/anchors.md §2.4), each a non-blocking
switch joining ``npus`` endpoints with per-endpoint link bandwidth ``bandwidth_Bps`` (each direction)
and latency ``latency_s``. A message of ``m`` bytes between two endpoints of one dimension takes
``latency + m / bandwidth``; an endpoint's egress and ingress links carry one message at a time
(FIFO servers), and latency is pipelined (it does not occupy the link).

All-to-all (each of the ``N`` endpoints sends ``m`` bytes to every other one) runs dimension by
dimension; in dimension ``d`` each endpoint sends ``m_d = m * N / n_d`` bytes to each of its
``n_d - 1`` peers, in the shifted order ``i+1, i+2, ...`` so no ingress link is shared at a step:

    T = sum_d [ alpha_d + (n_d - 1) * m * N / n_d / beta_d ]

What it leaves out: congestion inside the switch, multi-hop topologies (rings, tori), in-network
reduction (NVLS/SHARP), NCCL's protocol choice and chunking, and the endpoint delay of the NPU.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

from simrec.errors import ConfigError
from simrec.sim.engine import Server

__all__ = ["NetDim", "NetworkParams", "Network"]


@dataclass(frozen=True)
class NetDim:
    """One network dimension: ``npus`` endpoints on a switch.

    Attributes:
        npus: endpoints in the dimension.
        bandwidth_Bps: per-endpoint link bandwidth, bytes/s per direction.
        latency_s: per-message latency, seconds.
    """

    npus: int
    bandwidth_Bps: float
    latency_s: float

    def __post_init__(self) -> None:
        if self.npus < 1:
            raise ConfigError(
                f"a network dimension needs >= 1 NPU, got {self.npus}",
                where="field npus",
                fix="give the number of endpoints",
            )
        if not self.bandwidth_Bps > 0:
            raise ConfigError(
                f"network bandwidth must be > 0, got {self.bandwidth_Bps}",
                where="field bandwidth",
                fix='give a positive bandwidth such as "400 GB/s"',
            )
        if self.latency_s < 0:
            raise ConfigError(
                f"network latency must be >= 0, got {self.latency_s}",
                where="field latency",
                fix="give a non-negative latency",
            )


@dataclass(frozen=True)
class NetworkParams:
    """A multi-dimensional switch network (ASTRA-sim's ``npus_count``/``bandwidth``/``latency``)."""

    dims: tuple[NetDim, ...]
    name: str = "network"

    @property
    def npus(self) -> int:
        return math.prod(d.npus for d in self.dims)

    def alltoall_time_s(self, msg_bytes: float) -> float:
        """Closed form of the all-to-all with ``msg_bytes`` per ordered pair (see the module doc)."""
        n = self.npus
        t = 0.0
        for d in self.dims:
            if d.npus > 1:
                t += d.latency_s + (d.npus - 1) * msg_bytes * n / d.npus / d.bandwidth_Bps
        return t

    def p2p_time_s(self, nbytes: float, dim: int = 0) -> float:
        """One message inside dimension ``dim``: ``alpha + m / beta``."""
        d = self.dims[dim]
        return d.latency_s + nbytes / d.bandwidth_Bps

    @classmethod
    def hgx_h100_astrasim(cls) -> NetworkParams:
        """ASTRA-sim's validated HGX-H100 preset: one switch, 8 NPUs, 400 GB/s, 936.25 ns
        (reference/anchors.md §2.4)."""
        return cls(dims=(NetDim(8, 400e9, 936.25e-9),), name="HGX-H100 NVSwitch (ASTRA-sim)")


class Network:
    """Endpoints with one egress and one ingress :class:`Server` per dimension."""

    def __init__(self, env: simpy.Environment, params: NetworkParams, name: str | None = None):
        self.env = env
        self.p = params
        self.name = name or params.name
        n = params.npus
        self.egress = [
            [Server(env, 1, f"{self.name}.d{k}.tx{i}") for i in range(n)]
            for k in range(len(params.dims))
        ]
        self.ingress = [
            [Server(env, 1, f"{self.name}.d{k}.rx{i}") for i in range(n)]
            for k in range(len(params.dims))
        ]
        self.messages = 0
        self.bytes = 0.0

    def _coords(self, i: int) -> list[int]:
        out = []
        for d in self.p.dims:
            out.append(i % d.npus)
            i //= d.npus
        return out

    def _index(self, c: list[int]) -> int:
        i, mul = 0, 1
        for x, d in zip(c, self.p.dims, strict=True):
            i += x * mul
            mul *= d.npus
        return i

    def send(self, src: int, dst: int, nbytes: float, dim: int) -> Generator[Any, Any, None]:
        """simpy process body: one message inside ``dim`` (holds src egress and dst ingress)."""
        d = self.p.dims[dim]
        tx = yield from self.egress[dim][src].acquire()
        rx = yield from self.ingress[dim][dst].acquire()
        yield self.env.timeout(nbytes / d.bandwidth_Bps)
        self.ingress[dim][dst].release(rx)
        self.egress[dim][src].release(tx)
        self.messages += 1
        self.bytes += nbytes
        yield self.env.timeout(d.latency_s)

    def _sender(self, src: int, dim: int, nbytes: float) -> Generator[Any, Any, None]:
        d = self.p.dims[dim]
        c = self._coords(src)
        pending = []
        for k in range(1, d.npus):
            cd = list(c)
            cd[dim] = (c[dim] + k) % d.npus
            dst = self._index(cd)
            # the message leaves when the link is free; its latency overlaps the next message
            proc = self.env.process(self.send(src, dst, nbytes, dim))
            pending.append(proc)
            yield self.env.timeout(nbytes / d.bandwidth_Bps)
        if pending:
            yield self.env.all_of(pending)

    def all_to_all(self, msg_bytes: float) -> Generator[Any, Any, float]:
        """simpy process body: all-to-all with ``msg_bytes`` per ordered pair; returns its time."""
        t0 = float(self.env.now)
        n = self.p.npus
        for k, d in enumerate(self.p.dims):
            if d.npus <= 1:
                continue
            per_pair = msg_bytes * n / d.npus
            procs = [self.env.process(self._sender(i, k, per_pair)) for i in range(n)]
            yield self.env.all_of(procs)
        return float(self.env.now) - t0
