"""PCIe link: generation, lanes, line encoding, per-TLP overhead, full duplex.

What the model covers: the raw per-direction bandwidth ``lanes * GT/s * encoding / 8`` (8b/10b for
Gen 1-2, 128b/130b for Gen 3-5, reference/data.md §5.1); a transfer of ``N`` bytes is cut into
``ceil(N / max_payload_bytes)`` TLPs, each carrying ``tlp_overhead_bytes`` of header/framing/CRC on the
wire, and pays a fixed ``latency_s`` once (DMA setup, switch and flight time); an optional
``efficiency`` (<= 1) scales the bandwidth to match a measured DMA engine. The two directions are
independent FIFO servers (full duplex); transfers in one direction are serialised.

Fine granularity (:meth:`PcieLink.transfer_rows_fine`): a gather of many small rows (UVM reads of
embedding rows) is one transfer per row, one simpy event each, every row occupying the direction
for ``wire_bytes(row) / bandwidth``; the fixed latency is pipelined (paid once, after the last row),
so it equals :meth:`PcieParams.wire_time_s` of the summed wire bytes.

What it leaves out: flow-control credits, DLLP (ACK/NAK, flow-control updates) bandwidth, replays,
read-request round trips and the completion split of non-posted reads, and Gen 6 FLIT mode.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal

import simpy

from simrec.errors import ConfigError
from simrec.sim.engine import Server

__all__ = ["PcieParams", "PcieLink", "GT_PER_S"]

#: Transfer rate per lane, transfers/s, and line-code efficiency per generation (data.md §5.1).
GT_PER_S = {1: 2.5e9, 2: 5.0e9, 3: 8.0e9, 4: 16.0e9, 5: 32.0e9}
_ENCODING = {1: 8 / 10, 2: 8 / 10, 3: 128 / 130, 4: 128 / 130, 5: 128 / 130}


@dataclass(frozen=True)
class PcieParams:
    """One PCIe link.

    Attributes:
        generation: 1-5.
        lanes: link width (1, 2, 4, 8, 16).
        max_payload_bytes: TLP max payload size (MPS); 0 means no per-TLP overhead.
        tlp_overhead_bytes: wire bytes per TLP besides the payload (header, sequence number, LCRC,
            framing); 24 B is a 4-DW header + 2 B sequence + 4 B LCRC + 2 B framing.
        latency_s: fixed time per transfer (DMA setup + flight), seconds.
        efficiency: multiplies the bandwidth (1.0 = the TLP-limited ceiling).
        name: a label.
    """

    generation: int
    lanes: int
    max_payload_bytes: int = 256
    tlp_overhead_bytes: int = 24
    latency_s: float = 0.0
    efficiency: float = 1.0
    name: str = "pcie"

    def __post_init__(self) -> None:
        if self.generation not in GT_PER_S:
            raise ConfigError(
                f"unknown PCIe generation {self.generation}",
                where="field generation",
                fix="use 1, 2, 3, 4 or 5",
            )
        if self.lanes < 1:
            raise ConfigError(
                f"PCIe lanes must be >= 1, got {self.lanes}", where="field lanes", fix="e.g. 16"
            )
        if self.max_payload_bytes < 0 or self.tlp_overhead_bytes < 0 or self.latency_s < 0:
            raise ConfigError(
                "PCIe payload, overhead and latency must be >= 0",
                where="fields max_payload_bytes / tlp_overhead_bytes / latency_s",
                fix="give non-negative values",
            )
        if not 0 < self.efficiency <= 1:
            raise ConfigError(
                f"PCIe efficiency must be in (0, 1], got {self.efficiency}",
                where="field efficiency",
                fix="use 1.0 for the theoretical link",
            )

    @property
    def raw_bw_Bps(self) -> float:
        """Per-direction bandwidth after line encoding, bytes/s (Gen5 x16: 63.02e9)."""
        return self.lanes * GT_PER_S[self.generation] * _ENCODING[self.generation] / 8

    @property
    def payload_bw_Bps(self) -> float:
        """Large-transfer payload bandwidth, bytes/s (TLP overhead and efficiency included)."""
        bw = self.raw_bw_Bps * self.efficiency
        if self.max_payload_bytes == 0:
            return bw
        return bw * self.max_payload_bytes / (self.max_payload_bytes + self.tlp_overhead_bytes)

    def wire_bytes(self, nbytes: float) -> float:
        """Bytes on the wire for ``nbytes`` of payload."""
        if nbytes <= 0:
            return 0.0
        if self.max_payload_bytes == 0:
            return float(nbytes)
        tlps = math.ceil(nbytes / self.max_payload_bytes)
        return float(nbytes) + tlps * self.tlp_overhead_bytes

    def transfer_time_s(self, nbytes: float) -> float:
        """Unloaded time of one transfer: ``latency + wire_bytes / (raw_bw * efficiency)``."""
        if nbytes <= 0:
            return 0.0
        return self.latency_s + self.wire_bytes(nbytes) / (self.raw_bw_Bps * self.efficiency)

    def wire_time_s(self, wire_bytes: float) -> float:
        """Unloaded time to move ``wire_bytes`` already counted on the wire (TLP overhead included):
        ``latency + wire_bytes / (raw_bw * efficiency)``."""
        if wire_bytes <= 0:
            return 0.0
        return self.latency_s + wire_bytes / (self.raw_bw_Bps * self.efficiency)

    @classmethod
    def gen5_x16(cls) -> PcieParams:
        """PCIe 5.0 x16 (H100 PCIe host link): 63.02 GB/s per direction raw (data.md §5.1)."""
        return cls(generation=5, lanes=16, name="PCIe 5.0 x16")

    @classmethod
    def gen4_x16(cls) -> PcieParams:
        """PCIe 4.0 x16 (A100 host link): 31.51 GB/s per direction raw (data.md §5.1)."""
        return cls(generation=4, lanes=16, name="PCIe 4.0 x16")

    @classmethod
    def gen3_x4(cls) -> PcieParams:
        """PCIe 3.0 x4 (SmartSSD): 3.94 GB/s per direction raw (data.md §5.1, §5.5)."""
        return cls(generation=3, lanes=4, name="PCIe 3.0 x4")


class PcieLink:
    """A full-duplex PCIe link: two FIFO servers, ``"down"`` (host to device) and ``"up"``."""

    def __init__(self, env: simpy.Environment, params: PcieParams, name: str | None = None):
        self.env = env
        self.p = params
        self.name = name or params.name
        self.dirs = {
            "down": Server(env, 1, f"{self.name}.down"),
            "up": Server(env, 1, f"{self.name}.up"),
        }
        self.bytes = {"down": 0.0, "up": 0.0}
        self.events = 0

    def transfer(
        self, nbytes: float, direction: Literal["down", "up"] = "down"
    ) -> Generator[Any, Any, float]:
        """simpy process body: move ``nbytes`` in one direction; returns the sojourn time."""
        if direction not in self.dirs:
            raise ConfigError(
                f"unknown PCIe direction {direction!r}", where="direction", fix="use 'down' or 'up'"
            )
        self.bytes[direction] += nbytes
        return (yield from self.dirs[direction].serve(self.p.transfer_time_s(nbytes)))

    def transfer_wire(
        self, wire_bytes: float, direction: Literal["down", "up"] = "down"
    ) -> Generator[Any, Any, float]:
        """simpy process body: move ``wire_bytes`` counted on the wire (many small TLPs whose
        overhead the caller already added); returns the sojourn time."""
        self._check(direction)
        self.bytes[direction] += wire_bytes
        return (yield from self.dirs[direction].serve(self.p.wire_time_s(wire_bytes)))

    def transfer_rows_fine(
        self, segments: list[tuple[int, float]], direction: Literal["down", "up"] = "down"
    ) -> Generator[Any, Any, float]:
        """simpy process body: ``(rows, row_bytes)`` segments, one transfer (one event) per row.

        The direction is held for the rows back to back; the latency is paid once at the end
        (pipelined). Returns the sojourn time.
        """
        self._check(direction)
        env = self.env
        t0 = float(env.now)
        bw = self.p.raw_bw_Bps * self.p.efficiency
        srv = self.dirs[direction]
        token = yield from srv.acquire()
        moved = 0.0
        for n, rb in segments:
            w = self.p.wire_bytes(rb)
            for _ in range(int(n)):
                self.events += 1
                yield env.timeout(w / bw)
                moved += w
        srv.release(token)
        self.bytes[direction] += moved
        if moved > 0 and self.p.latency_s > 0:
            yield env.timeout(self.p.latency_s)
        return float(env.now) - t0

    def _check(self, direction: str) -> None:
        if direction not in self.dirs:
            raise ConfigError(
                f"unknown PCIe direction {direction!r}", where="direction", fix="use 'down' or 'up'"
            )
