"""HBM: stacks x channels x pseudo-channels, modelled with the DRAM timing model.

What the model covers: an HBM device is ``stacks * channels_per_stack * pseudo_channels`` independent
pseudo-channels, each a DRAM channel of ``bus_bytes`` width with its own bank groups and banks; every
pseudo-channel runs the same open-page timing model as :mod:`simrec.sim.components.dram` (row
hit/miss/conflict, tFAW/tRRD per pseudo-channel, tCCD_S/L, tRC, burst on the pseudo-channel's bus),
in both the fast (vectorised bounds) and the fine (one event per command) granularity.

What it leaves out: everything the DRAM model leaves out (writes, refresh, ...), plus the GPU's address
hashing across channels, the L2 cache in front of HBM, and the stack's thermal throttling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import simpy

from simrec.errors import ConfigError
from simrec.sim.components.dram import Dram, DramParams

__all__ = ["HbmParams", "Hbm"]


@dataclass(frozen=True)
class HbmParams:
    """HBM organisation and timing; timings in cycles of ``tCK_s``.

    Attributes:
        stacks: HBM stacks on the package.
        channels_per_stack: channels per stack (HBM2: 8, HBM3: 16).
        pseudo_channels: pseudo-channels per channel (2 in pseudo-channel mode).
        bank_groups, banks_per_group: per pseudo-channel.
        tCK_s: clock period, seconds; data moves on both edges (``data_rate`` 2).
        CL, tRCD, tRP, tRAS, tRRD_S, tRRD_L, tFAW, tCCD_S, tCCD_L, tRTP: cycles, as in DramParams.
        burst_length: beats per burst.
        bus_bytes: bytes per beat of one pseudo-channel (HBM3: 32 bits = 4 B).
        row_bytes: row (page) size of one pseudo-channel's bank, bytes.
        name: a label.
    """

    stacks: int
    channels_per_stack: int
    pseudo_channels: int
    bank_groups: int
    banks_per_group: int
    tCK_s: float
    CL: int
    tRCD: int
    tRP: int
    tRAS: int
    tRRD_S: int
    tRRD_L: int
    tFAW: int
    tCCD_S: int
    tCCD_L: int
    tRTP: int
    burst_length: int
    bus_bytes: int
    row_bytes: int
    name: str = "hbm"

    def __post_init__(self) -> None:
        for f in ("stacks", "channels_per_stack", "pseudo_channels"):
            if getattr(self, f) < 1:
                raise ConfigError(
                    f"HBM parameter {f} must be >= 1, got {getattr(self, f)}",
                    where=f"field {f}",
                    fix=f"give {f} a positive value",
                )
        self.to_dram_params()  # validates the rest

    @property
    def pseudo_channels_total(self) -> int:
        return self.stacks * self.channels_per_stack * self.pseudo_channels

    @property
    def peak_bw_Bps(self) -> float:
        """Aggregate peak, bytes/s: pseudo-channels x bus bytes x 2 beats per clock."""
        return self.pseudo_channels_total * self.bus_bytes * 2 / self.tCK_s

    def to_dram_params(self) -> DramParams:
        """The equivalent DRAM: one channel per pseudo-channel, one rank."""
        return DramParams(
            channels=self.pseudo_channels_total,
            ranks=1,
            bank_groups=self.bank_groups,
            banks_per_group=self.banks_per_group,
            tCK_s=self.tCK_s,
            CL=self.CL,
            tRCD=self.tRCD,
            tRP=self.tRP,
            tRAS=self.tRAS,
            tRRD_S=self.tRRD_S,
            tRRD_L=self.tRRD_L,
            tFAW=self.tFAW,
            tCCD_S=self.tCCD_S,
            tCCD_L=self.tCCD_L,
            tRTP=self.tRTP,
            burst_length=self.burst_length,
            bus_bytes=self.bus_bytes,
            row_bytes=self.row_bytes,
            data_rate=2,
            name=self.name,
        )

    @classmethod
    def h100_sxm_hbm3(cls) -> HbmParams:
        """H100 SXM 80 GB: 5 active HBM3 stacks, 5120-bit bus, 3.35 TB/s peak (data.md §5.2).

        The clock is chosen so the peak is exactly the datasheet's 3.35 TB/s:
        5 stacks x 16 channels x 2 pseudo-channels x 4 B x 2 beats/clock / tCK = 3.35e12 B/s.
        Core timings are the DRAMsim3 ``HBM2_8Gb_x128.ini`` values in nanoseconds (tRCD = tRP = CL
        = 14 ns, tRAS 34 ns, tRRD_S 4 ns, tRRD_L 6 ns, tFAW 30 ns, tRTP 6 ns, 4 bank groups x 4
        banks, 1 KiB rows), re-expressed in cycles of the faster HBM3 clock (rounded up); tCCD_S is
        one BL8 burst and tCCD_L twice that, the HBM2 file's ratio. These core timings are an
        assumption (no public HBM3 timing set was at hand): DRAM core timings in ns change little
        between generations.
        """
        pcs = 5 * 16 * 2
        tck = pcs * 4 * 2 / 3.35e12

        def cyc(ns: float) -> int:
            return math.ceil(ns * 1e-9 / tck - 1e-9)

        return cls(
            stacks=5,
            channels_per_stack=16,
            pseudo_channels=2,
            bank_groups=4,
            banks_per_group=4,
            tCK_s=tck,
            CL=cyc(14),
            tRCD=cyc(14),
            tRP=cyc(14),
            tRAS=cyc(34),
            tRRD_S=cyc(4),
            tRRD_L=cyc(6),
            tFAW=cyc(30),
            tCCD_S=4,
            tCCD_L=8,
            tRTP=cyc(6),
            burst_length=8,
            bus_bytes=4,
            row_bytes=1024,
            name="H100 SXM HBM3 (5 stacks)",
        )

    @classmethod
    def hbm2_dramsim3(cls, stacks: int = 1) -> HbmParams:
        """DRAMsim3 ``HBM2_8Gb_x128.ini`` (reference/anchors.md §2.3 names it as a preset source).

        8 channels of 128 bits per stack (no pseudo-channel split), tCK 1 ns, CL = tRCD = tRP = 14,
        tRAS 34, tRRD_S 4, tRRD_L 6, tFAW 30, tCCD_S 1, tCCD_L 2, tRTP 6 (tRTP_L), BL4 on the
        128-bit channel (64 B per burst, 2 cycles), 64 columns x 16 B = 1 KiB rows, 4 x 4 banks.
        Peak: 8 x 16 B x 2 / 1 ns = 256 GB/s per stack.
        """
        return cls(
            stacks=stacks,
            channels_per_stack=8,
            pseudo_channels=1,
            bank_groups=4,
            banks_per_group=4,
            tCK_s=1e-9,
            CL=14,
            tRCD=14,
            tRP=14,
            tRAS=34,
            tRRD_S=4,
            tRRD_L=6,
            tFAW=30,
            tCCD_S=1,
            tCCD_L=2,
            tRTP=6,
            burst_length=4,
            bus_bytes=16,
            row_bytes=1024,
            name="HBM2 (DRAMsim3 HBM2_8Gb_x128)",
        )


class Hbm(Dram):
    """An HBM device: a :class:`~simrec.sim.components.dram.Dram` with one channel per
    pseudo-channel. ``read`` / ``service_times`` / ``stats`` as for DRAM."""

    def __init__(
        self,
        env: simpy.Environment,
        params: HbmParams,
        mode: Literal["fast", "fine"] = "fast",
        name: str | None = None,
    ) -> None:
        self.hbm = params
        super().__init__(env, params.to_dram_params(), mode=mode, name=name or params.name)
