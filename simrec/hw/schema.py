"""Pydantic models of the hardware YAML: devices, links, energy blocks, the whole system.

A system file names its ``devices`` (a mapping ``name -> device``; each device has a ``kind``) and
its ``links``. Every dimensional number is written with its unit and stored as an SI float (see
:mod:`simrec.hw.units`); counts are plain integers; efficiencies are plain fractions in (0, 1].
Unknown keys are rejected (``extra="forbid"``), and the loader (:mod:`simrec.hw.load`) turns every
validation problem into a :class:`~simrec.errors.ConfigError` naming file, field path, line and fix.

What the schema covers: CPU sockets (cores, clock, SIMD FLOPs, stated gather/MLP efficiencies, LLC),
DDR4/DDR5 DRAM (channels x ranks x bank groups x banks, bus width, burst length, the JEDEC timing
set), GPUs (SMs, clock, FP32/BF16 throughput, L2, kernel launch overhead, gather efficiency vs row
size), HBM (stacks x channels x pseudo-channels and a timing set), PCIe switches/root complexes,
and links: PCIe (generation, lanes, per-transfer overhead, measured efficiency), NVLink (point to
point or a switched fabric, alpha-beta per dimension as in ASTRA-sim) and generic networks (UPI,
Ethernet, InfiniBand). Every component has an ``energy`` block whose keys exist now (the energy
issue fills the numbers). What it leaves out: refresh and write timings beyond the listed set,
caches below the LLC/L2, NUMA distances other than through links, anything time-varying.

**Adding a device kind** (e.g. a SmartSSD-like ``csd`` or an Ascend-like ``npu``): write a model
class deriving from :class:`DeviceBase` with ``kind: Literal["csd"] = "csd"`` and its own
``energy`` block, add it to the :data:`Device` union below (and to :data:`MEMORY_KINDS` or
:data:`PROCESSOR_KINDS` if it stores data or computes), and, if it has internal structure that
should appear in the topology graph, teach :func:`simrec.hw.topology.build_graph` about it. Nothing
else changes: the loader, error messages (with suggestions), ``to_yaml`` and the docs table pick
the new class up from the union. Links are extended the same way through :data:`Link`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from simrec.errors import ConfigError, did_you_mean_or_list
from simrec.hw.units import UnitError, expected_example, format_exact, parse_quantity

__all__ = [
    "UnitKind",
    "FieldError",
    "CpuEnergy",
    "CpuTlb",
    "MemoryEnergy",
    "GpuEnergy",
    "LinkEnergy",
    "SwitchEnergy",
    "Validation",
    "CpuDevice",
    "DramTiming",
    "DramDevice",
    "HbmDevice",
    "GatherPoint",
    "GpuDevice",
    "SwitchDevice",
    "CsdDevice",
    "PcieLink",
    "NvlinkLink",
    "NetworkLink",
    "Device",
    "Link",
    "DEVICE_KINDS",
    "LINK_KINDS",
    "MEMORY_KINDS",
    "PROCESSOR_KINDS",
    "PCIE_GENERATIONS",
    "SystemConfig",
]


# --------------------------------------------------------------------------------------------------
# field types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitKind:
    """Annotation marker: the field holds an SI float of this :mod:`~simrec.hw.units` kind."""

    kind: str


def _unit_parser(kind: str):
    def parse(value: Any, info: ValidationInfo) -> Any:
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and info.context
            and info.context.get("si_floats")
        ):
            if not math.isfinite(value):
                raise UnitError(f"{value!r} is not a finite number")
            return float(value)
        return parse_quantity(value, kind)

    return parse


def _unit(kind: str, *, positive: bool = True) -> Any:
    bound = Field(gt=0) if positive else Field(ge=0)
    return Annotated[
        float,
        UnitKind(kind),
        BeforeValidator(_unit_parser(kind)),
        bound,
        PlainSerializer(lambda v, _k=kind: format_exact(v, _k), return_type=str, when_used="json"),
    ]


def _plain_number(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(
            f"expected a plain number without a unit, got the string {value!r}; "
            "counts and fractions are written as bare numbers"
        )
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return value


Time = _unit("time")
Time0 = _unit("time", positive=False)
Bytes = _unit("bytes")
Bandwidth = _unit("bandwidth")
Frequency = _unit("frequency")
TransferRate = _unit("transfer_rate")
FlopRate = _unit("flop_rate")
Energy0 = _unit("energy", positive=False)
Power0 = _unit("power", positive=False)
EnergyPerBit0 = _unit("energy_per_bit", positive=False)
Energy = Energy0  # energies may be zero (an action that costs nothing in a model)

Count = Annotated[int, Strict(), Field(gt=0)]
Fraction = Annotated[float, BeforeValidator(_plain_number), Field(gt=0, le=1)]
Fraction0 = Annotated[float, BeforeValidator(_plain_number), Field(ge=0, le=1)]
PositiveNumber = Annotated[float, BeforeValidator(_plain_number), Field(gt=0)]
NonNegativeNumber = Annotated[float, BeforeValidator(_plain_number), Field(ge=0)]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class FieldError(ConfigError):
    """A cross-field problem found after the fields themselves parsed (e.g. a link to a missing
    device). ``loc`` is the field path inside the YAML document; the loader adds file and line."""

    loc: tuple[str | int, ...] = ()

    def __init__(self, message: str, loc: tuple[str | int, ...], fix: str | None = None):
        super().__init__(message, where="field " + _path_str(loc), fix=fix)
        self.loc = loc


def _path_str(loc: tuple[str | int, ...]) -> str:
    out = ""
    for el in loc:
        if isinstance(el, int):
            out += f"[{el}]"
        else:
            out += ("." if out else "") + str(el)
    return out or "(top level)"


def _problem(message: str, fix: str | None = None) -> PydanticCustomError:
    """A validation error carrying a fix; the loader prints both."""
    return PydanticCustomError("config", "{message}", {"message": message, "fix": fix or ""})


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------------
# energy blocks (keys exist now; the energy issue fills in most numbers)
# --------------------------------------------------------------------------------------------------


class _EnergyBase(_Base):
    static_power: Power0 | None = Field(
        None, description="always-on power of the component (background/idle), W"
    )
    source: str | None = Field(None, description="where the energy numbers come from")


class CpuEnergy(_EnergyBase):
    """Energy of a CPU socket: per FLOP and per active core, plus static power."""

    energy_per_flop: Energy0 | None = Field(None, description="dynamic energy per FP32 FLOP")
    active_power_per_core: Power0 | None = Field(
        None, description="extra power of one busy core over idle"
    )


class MemoryEnergy(_EnergyBase):
    """Energy of a DRAM/HBM device per command (per rank or pseudo-channel) and per bit of I/O."""

    activate: Energy0 | None = Field(None, description="one ACT+PRE pair, per rank")
    read_burst: Energy0 | None = Field(None, description="one read burst (array + core), per rank")
    write_burst: Energy0 | None = Field(None, description="one write burst, per rank")
    refresh: Energy0 | None = Field(None, description="one all-bank refresh, per rank")
    io_energy_per_bit: EnergyPerBit0 | None = Field(
        None, description="I/O and termination energy per bit transferred"
    )


class GpuEnergy(_EnergyBase):
    """Energy of a GPU die: per FLOP, TDP and static power (HBM energy is in its hbm device)."""

    energy_per_flop: Energy0 | None = Field(None, description="dynamic energy per FLOP")
    tdp: Power0 | None = Field(None, description="thermal design power (board)")


class LinkEnergy(_EnergyBase):
    """Energy of a link: per bit moved, plus static (SerDes) power."""

    energy_per_bit: EnergyPerBit0 | None = Field(None, description="energy per bit transferred")


class SwitchEnergy(_EnergyBase):
    """Energy of a switch/root complex: per bit switched, plus static power."""

    energy_per_bit: EnergyPerBit0 | None = Field(None, description="energy per bit switched")


class Validation(_Base):
    """How (and whether) a preset was checked against real hardware; calibration fills it."""

    method: str | None = Field(None, description="what was measured, with which tool")
    reference: str | None = Field(None, description="where the measurement is recorded")
    error: Annotated[float, BeforeValidator(_plain_number), Field(ge=0)] | None = Field(
        None, description="relative error of the model vs the measurement (0.1 = 10%)"
    )
    notes: str | None = None


# --------------------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------------------


class DeviceBase(_Base):
    """Fields every device has: an optional ``host`` group name and a free-text ``description``."""

    host: str | None = Field(None, description="name of the server/node this device belongs to")
    description: str | None = None


class CpuTlb(_Base):
    """Address translation of a CPU socket (the cpu_dram system's optional TLB model): an LRU of
    ``entries`` pages of ``page_size``, which every lookup of a batch goes through, in order;
    every miss costs one page walk of ``walk_time`` on the core that takes it."""

    entries: Count = Field(description="second-level TLB entries (pages it maps)")
    page_size: Bytes = Field(
        description="page size the entries map: 2 MiB for transparent huge pages, 4 KiB otherwise"
    )
    walk_time: Time = Field(description="time of one page walk (a TLB miss) on one core")


class CpuDevice(DeviceBase):
    """One CPU device (by default one socket): cores, clock, SIMD throughput, stated efficiencies.

    The CPU model (``simrec.sim.components.cpu``) charges ``lookup_cycles`` of index/address work
    per looked-up row, pooling adds at ``pool_efficiency`` of the SIMD peak, ``bag_cycles`` per bag,
    ``call_overhead`` per embedding-bag call, and MLP FLOPs at ``mlp_efficiency`` of the SIMD peak;
    the row bytes themselves come from the attached memory's model, or from the LLC when
    ``llc_bandwidth`` is given; the pooled outputs' stores cost ``bags x dim x 4 /
    output_bandwidth`` when ``output_bandwidth`` is given. The efficiencies and cycle counts are
    stated parameters, to be calibrated (``simrec calibrate``).
    """

    kind: Literal["cpu"] = "cpu"
    sockets: Count = Field(1, description="sockets this device stands for (1 = one socket)")
    cores_per_socket: Count
    frequency: Frequency = Field(description="sustained all-core clock")
    simd_width_bits: Count = Field(description="vector register width, e.g. 512 for AVX-512")
    flops_per_cycle: PositiveNumber = Field(
        description="peak FP32 FLOP per cycle per core (FMA units x lanes x 2)"
    )
    pool_efficiency: Fraction = Field(
        description="fraction of the SIMD peak reached by the gather/pool adds"
    )
    mlp_efficiency: Fraction = Field(description="fraction of the SIMD peak reached by MLP GEMMs")
    lookup_cycles: NonNegativeNumber = Field(
        description="cycles of index load, address arithmetic and loop overhead per lookup"
    )
    llc_size: Bytes = Field(description="last-level cache per socket")
    llc_bandwidth: Bandwidth | None = Field(
        None,
        description="rate at which the cores read embedding rows that hit in the LLC; given, the "
        "cpu_dram system keeps an LRU of llc_size bytes of rows across batches and sends only "
        "the misses to DRAM (omitted: no LLC model, every distinct row of a batch from DRAM)",
    )
    output_bandwidth: Bandwidth | None = Field(
        None,
        description="rate at which the cores write the pooled output tensors (bags x dim x 4 "
        "bytes of fp32 per embedding-bag call); given, the cpu_dram system adds out_bytes / "
        "output_bandwidth to the pooling time (omitted: no output cost)",
    )
    bag_cycles: NonNegativeNumber = Field(
        0.0, description="cycles per pooled bag (offsets, output row, loop over bags)"
    )
    call_overhead: Time0 = Field(
        0.0, description="time per embedding-bag call (one per table and batch): thread dispatch"
    )
    tlb: CpuTlb | None = Field(
        None,
        description="address translation: given, the cpu_dram system charges a page walk per "
        "TLB miss of the rows a batch touches (omitted: no translation cost)",
    )
    serial_fraction: Fraction0 = Field(
        0.0,
        description="fraction of the non-binding embedding stages (pooling, DRAM reads, LLC "
        "reads: all but the longest) that does not overlap the longest; the cpu_dram system "
        "adds serial_fraction x (their sum - the longest) per socket and batch (0: full overlap)",
    )
    l2_size: Bytes | None = Field(
        None,
        description="private cache per core for embedding rows (e.g. the L2); given, the "
        "cpu_dram system splits each call's bags over the cores in contiguous chunks and keeps "
        "an LRU of l2_size bytes of rows per core across batches, whose hits cost no read time "
        "beyond the pooling (omitted: no private-cache tier)",
    )
    energy: CpuEnergy = CpuEnergy()

    @property
    def cores(self) -> int:
        """Total cores of this device (all its sockets)."""
        return self.sockets * self.cores_per_socket

    @property
    def peak_flops(self) -> float:
        """Peak FP32 FLOP/s of all cores: cores x clock x FLOP/cycle."""
        return self.cores * self.frequency * self.flops_per_cycle

    def to_params(self, name: str = "cpu") -> Any:
        """The simulator's :class:`simrec.sim.components.cpu.CpuParams` with these numbers."""
        from simrec.sim.components.cpu import CpuParams

        return CpuParams(
            sockets=self.sockets,
            cores_per_socket=self.cores_per_socket,
            freq_hz=self.frequency,
            simd_flops_per_cycle=self.flops_per_cycle,
            mlp_efficiency=self.mlp_efficiency,
            pool_efficiency=self.pool_efficiency,
            lookup_cycles=self.lookup_cycles,
            name=name,
            bag_cycles=self.bag_cycles,
            call_overhead_s=self.call_overhead,
            llc_bytes=self.llc_size,
            llc_bandwidth_Bps=self.llc_bandwidth or 0.0,
            output_bandwidth_Bps=self.output_bandwidth or 0.0,
            serial_fraction=self.serial_fraction,
            l2_bytes=self.l2_size or 0.0,
            **(
                {
                    "tlb_entries": self.tlb.entries,
                    "tlb_page_bytes": self.tlb.page_size,
                    "tlb_walk_s": self.tlb.walk_time,
                }
                if self.tlb is not None
                else {}
            ),
        )


_CYCLES_RE = re.compile(
    r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(nCK|tCK|CK|clk|cycles?)\s*$"
)


class DramTiming(_Base):
    """JEDEC timing set (DRAMsim3 naming). Each value is a time (``"13.75 ns"``) or a count of
    clock cycles (``"22 nCK"``, converted with ``tCK``). ``tCK`` defaults to 2 / data rate (DDR);
    ``tRC`` defaults to tRAS + tRP. Write, refresh and power-down timings are not modelled."""

    tCK: Time = Field(description="clock period; DDR: 2 / data rate")
    CL: Time = Field(description="CAS (read) latency")
    tRCD: Time = Field(description="ACT to READ/WRITE")
    tRP: Time = Field(description="PRE to ACT (precharge)")
    tRAS: Time = Field(description="ACT to PRE (minimum row open time)")
    tRRD_S: Time = Field(description="ACT to ACT, different bank group")
    tRRD_L: Time = Field(description="ACT to ACT, same bank group")
    tFAW: Time = Field(description="window holding at most four ACTs per rank")
    tCCD_S: Time = Field(description="column command to column command, different bank group")
    tCCD_L: Time = Field(description="column command to column command, same bank group")
    tRC: Time | None = Field(None, description="ACT to ACT same bank; default tRAS + tRP")
    tRTP: Time | None = Field(None, description="READ to PRE (needed by the simulator)")

    @field_validator(
        "CL", "tRCD", "tRP", "tRAS", "tRRD_S", "tRRD_L", "tFAW", "tCCD_S", "tCCD_L", "tRC",
        "tRTP", mode="before",
    )  # fmt: skip
    @classmethod
    def _cycles(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, str):
            m = _CYCLES_RE.match(v)
            if m:
                tck = info.data.get("tCK")
                if tck is None:
                    raise ValueError(
                        f"{v!r} is a cycle count but tCK is unknown; give tCK (or the device's "
                        "data_rate) or write the time, e.g. '13.75 ns'"
                    )
                n = float(m.group(1))
                if n <= 0:
                    raise ValueError(f"{v!r}: a timing must be positive")
                return f"{n * tck!r} s"
        return v

    @model_validator(mode="after")
    def _check(self) -> DramTiming:
        if self.tRC is None:
            object.__setattr__(self, "tRC", self.tRAS + self.tRP)
        elif self.tRC < self.tRAS * (1 - 1e-9):
            raise ValueError(
                f"tRC ({self.tRC * 1e9:.4g} ns) is shorter than tRAS ({self.tRAS * 1e9:.4g} ns); "
                "tRC is at least tRAS (usually tRAS + tRP)"
            )
        if self.tRRD_L < self.tRRD_S * (1 - 1e-9):
            raise ValueError("tRRD_L is shorter than tRRD_S; the same-bank-group gap is the longer")
        if self.tCCD_L < self.tCCD_S * (1 - 1e-9):
            raise ValueError("tCCD_L is shorter than tCCD_S; the same-bank-group gap is the longer")
        return self

    def cycles(self, name: str) -> float:
        """A timing expressed in clock cycles (``timing.cycles("CL") == 22`` for DDR4-3200)."""
        return getattr(self, name) / self.tCK

    def int_cycles(self, name: str) -> int:
        """A timing in whole clock cycles, rounded up (a controller cannot issue early)."""
        v = getattr(self, name)
        if v is None:
            raise ConfigError(
                f"timing.{name} is not given but the simulator needs it",
                where=f"field timing.{name}",
                fix=f"add '{name}: ...' (a time like '7.5 ns' or cycles like '12 nCK')",
            )
        return math.ceil(v / self.tCK - 1e-6)

    def cycle_dict(self) -> dict[str, int]:
        """All timings the DRAM/HBM models use, in whole cycles."""
        names = ("CL", "tRCD", "tRP", "tRAS", "tRRD_S", "tRRD_L", "tFAW", "tCCD_S", "tCCD_L")
        out = {n: self.int_cycles(n) for n in names}
        out["tRTP"] = self.int_cycles("tRTP")
        return out


def _inject_tck(data: Any) -> Any:
    """Before-validator for memories: default ``timing.tCK`` to 2 / data_rate."""
    if not isinstance(data, dict):
        return data
    timing = data.get("timing")
    if isinstance(timing, dict) and "tCK" not in timing and "data_rate" in data:
        rate = data["data_rate"]
        try:
            r = rate if isinstance(rate, int | float) else parse_quantity(rate, "transfer_rate")
        except (UnitError, ValueError):
            return data  # the data_rate field reports its own error
        if isinstance(r, int | float) and r > 0:
            data = dict(data)
            data["timing"] = {"tCK": f"{2.0 / r!r} s", **timing}
    return data


class _MemoryBase(DeviceBase):
    """Fields shared by DRAM and HBM devices."""

    attached_to: str = Field(description="name of the processor (or switch) that owns this memory")
    data_rate: TransferRate = Field(description="transfers per second per data pin")
    bank_groups: Count
    banks_per_group: Count
    bus_width_bits: Count = Field(description="data bus width of one channel")
    burst_length: Count
    row_buffer_size: Bytes = Field(description="row (page) size of one rank / pseudo-channel")
    capacity: Bytes = Field(description="total capacity of this memory device")
    timing: DramTiming
    energy: MemoryEnergy = MemoryEnergy()

    @model_validator(mode="before")
    @classmethod
    def _default_tck(cls, data: Any) -> Any:
        return _inject_tck(data)

    @model_validator(mode="after")
    def _check_clock(self) -> _MemoryBase:
        expect = 2.0 / self.data_rate
        if abs(self.timing.tCK - expect) > 0.02 * expect:
            raise _problem(
                f"timing.tCK ({self.timing.tCK * 1e9:.4g} ns) does not match data_rate "
                f"({self.data_rate / 1e6:.6g} MT/s needs tCK = 2 / data rate = "
                f"{expect * 1e9:.4g} ns)",
                "correct tCK or data_rate, or leave tCK out to derive it",
            )
        return self

    @property
    def burst_bytes(self) -> float:
        """Bytes moved by one burst on one channel: bus width / 8 x burst length."""
        return self.bus_width_bits / 8 * self.burst_length

    @property
    def burst_time(self) -> float:
        """Seconds one burst occupies the data bus: burst length / data rate."""
        return self.burst_length / self.data_rate

    @property
    def channel_bandwidth(self) -> float:
        """Peak bytes/s of one channel: data rate x bus width / 8."""
        return self.data_rate * self.bus_width_bits / 8

    @property
    def banks_per_rank(self) -> int:
        return self.bank_groups * self.banks_per_group


class DramDevice(_MemoryBase):
    """DDR4/DDR5 memory behind one processor: ``channels`` x ``ranks_per_channel`` x bank groups x
    banks. For DDR5 count the two 32-bit sub-channels of a DIMM as two channels (bus 32 bits,
    BL16). Optional ``device_width_bits``/``rows``/``columns`` (DRAMsim3 geometry) are checked
    against ``capacity`` and ``row_buffer_size``. ECC devices are not counted."""

    kind: Literal["dram"] = "dram"
    standard: Literal["DDR4", "DDR5"]
    channels: Count
    ranks_per_channel: Count
    device_width_bits: Count | None = Field(None, description="DRAM chip width (x4/x8/x16)")
    rows: Count | None = Field(None, description="rows per bank")
    columns: Count | None = Field(None, description="columns per row")

    @model_validator(mode="after")
    def _check_geometry(self) -> DramDevice:
        bl_ok = {"DDR4": (8,), "DDR5": (16, 32)}[self.standard]
        if self.burst_length not in bl_ok:
            raise _problem(
                f"{self.standard} uses burst length {' or '.join(map(str, bl_ok))}, "
                f"not {self.burst_length}",
                fix=f"set burst_length: {bl_ok[0]}",
            )
        if self.device_width_bits is not None:
            if self.bus_width_bits % self.device_width_bits:
                raise _problem(
                    f"bus_width_bits {self.bus_width_bits} is not a multiple of "
                    f"device_width_bits {self.device_width_bits}",
                    fix="use the chip width (4, 8 or 16) that divides the bus width",
                )
            devices = self.bus_width_bits // self.device_width_bits
            if self.columns is not None:
                page = self.columns * self.device_width_bits / 8 * devices
                if page != self.row_buffer_size:
                    raise _problem(
                        f"row_buffer_size is {self.row_buffer_size:.0f} B but columns x "
                        f"device width x devices per rank gives {page:.0f} B",
                        fix=f"set row_buffer_size: '{page:.0f} B' or correct the geometry",
                    )
                if self.rows is not None:
                    cap = (
                        self.channels
                        * self.ranks_per_channel
                        * self.banks_per_rank
                        * self.rows
                        * page
                    )
                    if cap != self.capacity:
                        raise _problem(
                            f"capacity is {self.capacity:.6g} B but channels x ranks x banks x "
                            f"rows x row size gives {cap:.6g} B",
                            fix=f"set capacity: '{cap / 2**30:.6g} GiB' or correct the geometry",
                        )
        return self

    @property
    def ranks(self) -> int:
        return self.channels * self.ranks_per_channel

    def to_params(self, name: str = "dram") -> Any:
        """The simulator's :class:`simrec.sim.components.dram.DramParams` (timings in whole cycles
        of tCK, rounded up; row size per rank; default address mapping)."""
        from simrec.sim.components.dram import DramParams

        return DramParams(
            channels=self.channels,
            ranks=self.ranks_per_channel,
            bank_groups=self.bank_groups,
            banks_per_group=self.banks_per_group,
            tCK_s=self.timing.tCK,
            **self.timing.cycle_dict(),
            burst_length=self.burst_length,
            bus_bytes=self.bus_width_bits // 8,
            row_bytes=int(self.row_buffer_size),
            data_rate=2,
            name=name,
        )

    @property
    def peak_bandwidth(self) -> float:
        """Peak bytes/s of all channels: channels x data rate x bus width / 8."""
        return self.channels * self.channel_bandwidth


class HbmDevice(_MemoryBase):
    """High-bandwidth memory of one GPU/accelerator: ``stacks`` x ``channels_per_stack`` channels of
    ``bus_width_bits`` each, every channel split in ``pseudo_channels_per_channel`` pseudo-channels
    that behave like independent ranks. Timings as for DRAM."""

    kind: Literal["hbm"] = "hbm"
    standard: Literal["HBM2", "HBM2E", "HBM3", "HBM3E"]
    stacks: Count
    channels_per_stack: Count
    pseudo_channels_per_channel: Count = 2

    @property
    def channels(self) -> int:
        return self.stacks * self.channels_per_stack

    @property
    def pseudo_channels(self) -> int:
        return self.channels * self.pseudo_channels_per_channel

    @property
    def bus_width_total_bits(self) -> int:
        return self.channels * self.bus_width_bits

    @property
    def peak_bandwidth(self) -> float:
        """Peak bytes/s: stacks x channels per stack x bus width / 8 x data rate."""
        return self.channels * self.channel_bandwidth

    @model_validator(mode="after")
    def _check_split(self) -> HbmDevice:
        if self.bus_width_bits % (8 * self.pseudo_channels_per_channel):
            raise _problem(
                f"bus_width_bits {self.bus_width_bits} does not split into "
                f"{self.pseudo_channels_per_channel} pseudo-channels of whole bytes",
                "use a channel width that is a multiple of 8 x pseudo_channels_per_channel",
            )
        return self

    def to_params(self, name: str = "hbm") -> Any:
        """The simulator's :class:`simrec.sim.components.hbm.HbmParams` (timings in whole cycles,
        rounded up; bus bytes and row size per pseudo-channel)."""
        from simrec.sim.components.hbm import HbmParams

        return HbmParams(
            stacks=self.stacks,
            channels_per_stack=self.channels_per_stack,
            pseudo_channels=self.pseudo_channels_per_channel,
            bank_groups=self.bank_groups,
            banks_per_group=self.banks_per_group,
            tCK_s=self.timing.tCK,
            **self.timing.cycle_dict(),
            burst_length=self.burst_length,
            bus_bytes=self.bus_width_bits // self.pseudo_channels_per_channel // 8,
            row_bytes=int(self.row_buffer_size),
            name=name,
        )


class GatherPoint(_Base):
    """One point of a GPU's gather efficiency table: rows of ``row_bytes`` reach ``efficiency``
    of the HBM peak."""

    row_bytes: Bytes
    efficiency: Fraction


class GpuDevice(DeviceBase):
    """A GPU: SMs, clock, FP32/BF16 throughput, L2, kernel launch overhead, and the fraction of HBM
    peak that an embedding gather reaches as a function of row size (interpolated linearly in
    log2(row size), clamped at the ends). Its memory is an ``hbm`` device ``attached_to`` it.

    Optional, off when left out (so older presets predict what they did): ``output_efficiency``
    charges the pooled output rows of a gather (one per bag) at that fraction of the HBM peak, and
    ``l2_bandwidth`` serves the lookups that an LRU of ``l2_size`` over rows would hit at that
    rate (see :mod:`simrec.sim.components.gpu`)."""

    kind: Literal["gpu"] = "gpu"
    sms: Count
    clock: Frequency
    fp32_flops: FlopRate = Field(description="peak FP32 (non-tensor) FLOP/s")
    bf16_flops: FlopRate = Field(description="peak dense BF16 tensor-core FLOP/s")
    l2_size: Bytes
    kernel_launch_overhead: Time0
    mlp_dtype: Literal["fp32", "bf16"] = Field("bf16", description="datatype of the MLP GEMMs")
    mlp_efficiency: Fraction = Field(description="fraction of the dtype's peak the MLPs reach")
    gather_efficiency: list[GatherPoint] = Field(min_length=1)
    output_efficiency: Fraction | None = Field(
        None,
        description="fraction of the HBM peak at which pooled output rows (one per bag) are "
        "written; omitted = outputs not charged",
    )
    l2_bandwidth: Bandwidth | None = Field(
        None,
        description="rate at which lookups that hit the L2 are served (bytes of whole 32 B "
        "sectors); omitted = the L2 is not modelled",
    )
    energy: GpuEnergy = GpuEnergy()

    @property
    def mlp_peak_flops(self) -> float:
        """Peak FLOP/s of the datatype the MLPs use."""
        return self.bf16_flops if self.mlp_dtype == "bf16" else self.fp32_flops

    def to_params(self, hbm: HbmDevice, name: str = "gpu") -> Any:
        """The simulator's :class:`simrec.sim.components.gpu.GpuParams`, with ``hbm`` (the HBM
        device attached to this GPU; see :meth:`SystemConfig.gpu_params`)."""
        from simrec.sim.components.gpu import GpuParams

        return GpuParams(
            name=name,
            peak_flops=self.mlp_peak_flops,
            mlp_efficiency=self.mlp_efficiency,
            kernel_launch_s=self.kernel_launch_overhead,
            hbm=hbm.to_params(name=f"{name}.hbm"),
            hbm_capacity_bytes=hbm.capacity,
            gather_efficiency=tuple(
                (int(p.row_bytes), p.efficiency) for p in self.gather_efficiency
            ),
            sm_count=self.sms,
            output_efficiency=self.output_efficiency,
            l2_bytes=float(self.l2_size),
            l2_bandwidth_Bps=self.l2_bandwidth,
        )

    @field_validator("gather_efficiency")
    @classmethod
    def _increasing(cls, pts: list[GatherPoint]) -> list[GatherPoint]:
        for a, b in zip(pts, pts[1:], strict=False):
            if b.row_bytes <= a.row_bytes:
                raise ValueError("gather_efficiency rows must be listed by increasing row_bytes")
        return pts

    def gather_efficiency_at(self, row_bytes: float) -> float:
        """Efficiency for rows of ``row_bytes`` bytes (log2-linear interpolation, clamped)."""
        pts = self.gather_efficiency
        if row_bytes <= pts[0].row_bytes:
            return pts[0].efficiency
        if row_bytes >= pts[-1].row_bytes:
            return pts[-1].efficiency
        for a, b in zip(pts, pts[1:], strict=False):
            if a.row_bytes <= row_bytes <= b.row_bytes:
                t = math.log2(row_bytes / a.row_bytes) / math.log2(b.row_bytes / a.row_bytes)
                return a.efficiency + t * (b.efficiency - a.efficiency)
        raise AssertionError("unreachable")  # pragma: no cover


class SwitchDevice(DeviceBase):
    """A PCIe switch or a processor's root complex: a node that links meet at. ``attached_to``
    joins it to its processor with an internal edge of ``bandwidth`` (omitted = not a bottleneck).
    """

    kind: Literal["switch"] = "switch"
    attached_to: str | None = None
    bandwidth: Bandwidth | None = Field(None, description="switching capacity per direction")
    latency: Time0 = Field(0.0, description="cut-through latency")
    energy: SwitchEnergy = SwitchEnergy()


class CsdEnergy(_EnergyBase):
    """Energy of a computational-storage device. Only ``static_power`` (whole device) and
    ``source`` live here; the per-action SmartSSD energies (NAND page read, DDR4, SRAM, MACs, PCIe
    bits) are in ``simrec/energy/smartssd.yaml``, which the SCRec energy estimate reads."""


class CsdNand(_Base):
    """NAND array of a CSD, in MQSim's terms (``Flash_Channel_Count``, ``Chip_No_Per_Channel``,
    ``Die_No_Per_Chip``, ``Plane_No_Per_Die``, ``Page_Capacity``, ``Page_Read_Latency``,
    ``Page_Program_Latency``, ``Channel_Transfer_Rate``, ``Flash_Channel_Width``)."""

    channels: Count
    chips_per_channel: Count
    dies_per_chip: Count
    planes_per_die: Count
    page_size: Bytes
    read_latency: Time = Field(description="tR, page array read")
    program_latency: Time = Field(description="tPROG (writes are not simulated)")
    channel_transfer_rate: TransferRate
    channel_width_bits: Count = Field(description="data width of one flash channel")
    min_transfer: Bytes = Field(description="smallest unit moved over the channel per read")
    independent_planes: bool = Field(
        True, description="planes serve reads independently (False: one read per die at a time)"
    )


class CsdController(_Base):
    """The SSD controller's NVMe read path for one cold row."""

    read_iops: PositiveNumber = Field(description="random read commands per second")
    latency: Time0 = Field(description="fixed firmware latency per command")
    lba_size: Bytes = Field(description="NVMe read unit per cold row (LBA format)")
    read_cache: _unit("bytes", positive=False) = Field(  # type: ignore[valid-type]
        description="controller DRAM read cache (0 disables it)"
    )


class CsdFpga(_Base):
    """The FPGA part: resource totals, what the platform shell keeps, and the kernel clock."""

    part: str
    luts: Count
    ffs: Count
    dsps: Count
    brams: Count = Field(description="BRAM36 blocks")
    urams: Count = Field(description="UltraRAM blocks")
    shell_luts: Annotated[int, Strict(), Field(ge=0)] = 0
    shell_ffs: Annotated[int, Strict(), Field(ge=0)] = 0
    shell_dsps: Annotated[int, Strict(), Field(ge=0)] = 0
    shell_brams: Annotated[int, Strict(), Field(ge=0)] = 0
    shell_urams: Annotated[int, Strict(), Field(ge=0)] = 0
    clock: Frequency = Field(description="kernel clock")


class CsdDram(_Base):
    """The FPGA's own DRAM (same fields and timing set as a ``dram`` device, minus ``attached_to``:
    it belongs to the CSD that holds it)."""

    standard: Literal["DDR4", "DDR5"]
    data_rate: TransferRate
    channels: Count
    ranks_per_channel: Count
    bank_groups: Count
    banks_per_group: Count
    bus_width_bits: Count
    burst_length: Count
    row_buffer_size: Bytes
    capacity: Bytes
    timing: DramTiming

    @model_validator(mode="before")
    @classmethod
    def _default_tck(cls, data: Any) -> Any:
        return _inject_tck(data)


_Count0 = Annotated[int, Strict(), Field(ge=0)]


class CsdCores(_Base):
    """Core configuration of the FPGA (SCRec's memory-centric EMB, compute-centric TT-EMB and MLP
    cores, :mod:`simrec.sim.components.fpga`). Per-core resource costs are the [INF] defaults of
    that module; a mix that exceeds the FPGA after the shell is rejected."""

    memory_centric: _Count0
    compute_centric: _Count0
    mlp: _Count0
    emb_lanes: Count = Field(description="fp32 adders per EMB core")
    sram_bytes_per_cycle: Count = Field(description="on-chip read width per EMB core")
    tt_mac_units: Count
    tt_dsp_per_mac: PositiveNumber = 1.0
    tt_efficiency: Fraction = 1.0
    tt_prefix_reuse: bool = False
    mlp_mac_units: Count
    mlp_efficiency: Fraction = 0.8


class CsdDevice(DeviceBase):
    """A SmartSSD-like computational storage device: NVMe SSD (controller + NAND) and an FPGA with
    its own DRAM and on-chip SRAM, joined by a private P2P link; the host reaches it over the
    ``pcie`` link that names it. Simulated by :class:`simrec.sim.components.smartssd.SmartSSD`
    (``SystemConfig.params(name)`` gives its ``SmartSSDParams``)."""

    kind: Literal["csd"] = "csd"
    capacity: Bytes = Field(description="SSD user capacity")
    nand: CsdNand
    controller: CsdController
    p2p_bandwidth: Bandwidth = Field(description="SSD->FPGA ceiling for pipelined row reads")
    fpga: CsdFpga
    ddr: CsdDram
    cores: CsdCores
    energy: CsdEnergy = CsdEnergy()

    @model_validator(mode="after")
    def _check_cores(self) -> CsdDevice:
        try:
            self.to_params()
        except ConfigError as e:
            raise _problem(e.message, e.fix) from None
        return self

    def to_params(
        self,
        name: str = "csd",
        host_bandwidth: float = 3.94e9,
        host_efficiency: float = 0.8,
        host_latency: float = 1e-6,
    ) -> Any:
        """The simulator's :class:`~simrec.sim.components.smartssd.SmartSSDParams`; the host-link
        numbers come from the device's pcie link (:meth:`SystemConfig.params` passes them)."""
        from simrec.sim.components.dram import DramParams
        from simrec.sim.components.fpga import (
            CoreConfig,
            EmbCoreSpec,
            FpgaDevice,
            FpgaResources,
            MlpCoreSpec,
            TTCoreSpec,
        )
        from simrec.sim.components.nand import NandParams
        from simrec.sim.components.smartssd import SmartSSDParams

        n, f, d, c, k = self.nand, self.fpga, self.ddr, self.cores, self.controller
        nand = NandParams(
            channels=n.channels,
            chips_per_channel=n.chips_per_channel,
            dies_per_chip=n.dies_per_chip,
            planes_per_die=n.planes_per_die,
            page_bytes=int(n.page_size),
            t_read_s=n.read_latency,
            t_prog_s=n.program_latency,
            channel_transfer_rate=n.channel_transfer_rate,
            channel_width_bytes=max(1, n.channel_width_bits // 8),
            min_transfer_bytes=int(n.min_transfer),
            independent_planes=n.independent_planes,
        )
        fpga = FpgaDevice(
            name=f.part,
            total=FpgaResources(f.luts, f.ffs, f.dsps, f.brams, f.urams),
            shell=FpgaResources(
                f.shell_luts, f.shell_ffs, f.shell_dsps, f.shell_brams, f.shell_urams
            ),
            clock_hz=f.clock,
        )
        cores = CoreConfig(
            n_emb=c.memory_centric,
            n_tt=c.compute_centric,
            n_mlp=c.mlp,
            emb=EmbCoreSpec(lanes=c.emb_lanes),
            tt=TTCoreSpec(
                mac_units=c.tt_mac_units,
                dsp_per_mac=c.tt_dsp_per_mac,
                efficiency=c.tt_efficiency,
                prefix_reuse=c.tt_prefix_reuse,
            ),
            mlp=MlpCoreSpec(mac_units=c.mlp_mac_units, efficiency=c.mlp_efficiency),
        )
        ddr = DramParams(
            channels=d.channels,
            ranks=d.ranks_per_channel,
            bank_groups=d.bank_groups,
            banks_per_group=d.banks_per_group,
            tCK_s=d.timing.tCK,
            **d.timing.cycle_dict(),
            burst_length=d.burst_length,
            bus_bytes=d.bus_width_bits // 8,
            row_bytes=int(d.row_buffer_size),
            data_rate=2,
            name=f"{name}.ddr",
        )
        return SmartSSDParams(
            nand=nand,
            ssd_capacity_bytes=self.capacity,
            lba_bytes=int(k.lba_size),
            controller_iops=k.read_iops,
            controller_latency_s=k.latency,
            ssd_cache_bytes=k.read_cache,
            p2p_peak_bandwidth=self.p2p_bandwidth,
            ddr=ddr,
            ddr_capacity_bytes=d.capacity,
            fpga=fpga,
            cores=cores,
            sram_bytes_per_cycle=c.sram_bytes_per_cycle,
            host_link_bandwidth=host_bandwidth,
            host_link_efficiency=host_efficiency,
            host_link_latency_s=host_latency,
        )


from simrec.hw.npu import NpuDevice  # noqa: E402 - npu.py imports only names defined above

Device = Annotated[
    CpuDevice | DramDevice | HbmDevice | GpuDevice | SwitchDevice | CsdDevice | NpuDevice,
    Field(discriminator="kind"),
]
DEVICE_KINDS: dict[str, type[DeviceBase]] = {
    "cpu": CpuDevice,
    "dram": DramDevice,
    "hbm": HbmDevice,
    "gpu": GpuDevice,
    "switch": SwitchDevice,
    "csd": CsdDevice,
    "npu": NpuDevice,
}
MEMORY_KINDS = ("dram", "hbm")
PROCESSOR_KINDS = ("cpu", "gpu")


# --------------------------------------------------------------------------------------------------
# links
# --------------------------------------------------------------------------------------------------

# generation -> (GT/s per lane, encoding efficiency). Gen 3-5: data.md §5.1 (128b/130b);
# Gen 1-2: 2.5 / 5 GT/s with 8b/10b [recall, PCIe base spec not consulted].
PCIE_GENERATIONS: dict[int, tuple[float, float]] = {
    1: (2.5e9, 8 / 10),
    2: (5.0e9, 8 / 10),
    3: (8.0e9, 128 / 130),
    4: (16.0e9, 128 / 130),
    5: (32.0e9, 128 / 130),
}


class _LinkBase(_Base):
    description: str | None = None
    energy: LinkEnergy = LinkEnergy()


class PcieLink(_LinkBase):
    """A PCIe link between two devices. Per-direction bandwidth = GT/s x encoding / 8 x lanes x
    ``efficiency`` (the measured fraction of the theoretical rate, e.g. 0.8 for H100 Gen5 x16,
    data.md §5.1); each transfer also pays ``per_transfer_overhead``. Full duplex."""

    kind: Literal["pcie"] = "pcie"
    endpoints: tuple[str, str]
    generation: Literal[1, 2, 3, 4, 5]
    lanes: Literal[1, 2, 4, 8, 16, 32]
    efficiency: Fraction = Field(1.0, description="measured fraction of the raw rate")
    per_transfer_overhead: Time0 = Field(0.0, description="fixed time per transfer (DMA setup)")
    latency: Time0 = Field(0.0, description="one-way flight time")
    max_payload: Bytes | None = Field(
        None, description="TLP max payload; omitted = overheads are inside efficiency"
    )
    tlp_overhead: Bytes | None = Field(None, description="wire bytes per TLP besides payload")

    @property
    def raw_bandwidth(self) -> float:
        """Theoretical bytes/s per direction: GT/s x encoding / 8 x lanes."""
        rate, enc = PCIE_GENERATIONS[self.generation]
        return rate * enc / 8 * self.lanes

    @property
    def bandwidth(self) -> float:
        """Effective bytes/s per direction: raw bandwidth x efficiency (x payload share of each
        TLP when ``max_payload`` is given)."""
        bw = self.raw_bandwidth * self.efficiency
        if self.max_payload:
            bw *= self.max_payload / (self.max_payload + (self.tlp_overhead or 0.0))
        return bw

    def to_params(self, name: str = "pcie") -> Any:
        """The simulator's :class:`simrec.sim.components.pcie.PcieParams`; ``latency_s`` is the
        per-transfer overhead plus the flight latency."""
        from simrec.sim.components.pcie import PcieParams

        return PcieParams(
            generation=self.generation,
            lanes=self.lanes,
            max_payload_bytes=int(self.max_payload or 0),
            tlp_overhead_bytes=int(self.tlp_overhead or 0),
            latency_s=self.per_transfer_overhead + self.latency,
            efficiency=self.efficiency,
            name=name,
        )


class _FabricBase(_LinkBase):
    """Either ``endpoints`` (a point-to-point link) or ``members`` (one network dimension joining
    all members with ``topology``: a switch, a ring or fully connected), as in ASTRA-sim."""

    endpoints: tuple[str, str] | None = None
    members: list[str] | None = None
    topology: Literal["switch", "ring", "fully_connected"] = "switch"
    latency: Time0 = Field(0.0, description="alpha: one-way latency between two members")
    efficiency: Fraction = 1.0

    @model_validator(mode="after")
    def _one_shape(self) -> _FabricBase:
        if (self.endpoints is None) == (self.members is None):
            raise ValueError(
                "give exactly one of 'endpoints' (two devices) or 'members' (a switched/ring "
                "network of two or more devices)"
            )
        if self.members is not None and len(self.members) < 2:
            raise ValueError("'members' needs at least two devices")
        return self

    @property
    def nodes(self) -> list[str]:
        return list(self.endpoints) if self.endpoints is not None else list(self.members or [])

    def to_netdim(self) -> Any:
        """This dimension as the simulator's :class:`simrec.sim.components.network.NetDim`
        (a switch of ``len(members)`` NPUs; a point-to-point link is a 2-NPU dimension)."""
        from simrec.sim.components.network import NetDim

        if self.topology != "switch" and self.members is not None:
            raise ConfigError(
                f"the simulator's network model is a switch per dimension, not {self.topology!r}",
                where="field topology",
                fix="use topology: switch, or model the ring/mesh as point-to-point links",
            )
        return NetDim(len(self.nodes), self.bandwidth, self.latency)  # type: ignore[attr-defined]


class NvlinkLink(_FabricBase):
    """NVLink: ``links`` NVLinks per GPU of ``link_bandwidth`` each (per direction). With
    ``members`` and ``topology: switch`` it is an NVSwitch fabric: every GPU reaches every other at
    its full per-GPU bandwidth. ``latency`` is ASTRA-sim's alpha, 1 / bandwidth its beta."""

    kind: Literal["nvlink"] = "nvlink"
    link_bandwidth: Bandwidth = Field(description="one NVLink, one direction")
    links: Count = Field(description="NVLinks per GPU in this fabric (or in this P2P link)")

    @property
    def bandwidth(self) -> float:
        """Effective bytes/s per direction per GPU: links x link bandwidth x efficiency."""
        return self.links * self.link_bandwidth * self.efficiency


class NetworkLink(_FabricBase):
    """A generic network link or dimension (UPI between sockets, Ethernet, InfiniBand):
    ``bandwidth`` per direction per member, ``latency`` alpha."""

    kind: Literal["network"] = "network"
    protocol: str | None = Field(None, description="e.g. UPI, InfiniBand NDR, RoCE")
    link_bandwidth: Bandwidth = Field(description="per direction per member (per endpoint)")

    @property
    def bandwidth(self) -> float:
        """Effective bytes/s per direction: link bandwidth x efficiency."""
        return self.link_bandwidth * self.efficiency


Link = Annotated[PcieLink | NvlinkLink | NetworkLink, Field(discriminator="kind")]
LINK_KINDS: dict[str, type[_LinkBase]] = {
    "pcie": PcieLink,
    "nvlink": NvlinkLink,
    "network": NetworkLink,
}


# --------------------------------------------------------------------------------------------------
# the system
# --------------------------------------------------------------------------------------------------


def _list_to_mapping(v: Any, what: str) -> Any:
    if v is None and what == "links":
        return {}  # "links:" with nothing under it
    if isinstance(v, list):
        out: dict[str, Any] = {}
        for i, item in enumerate(v):
            if not isinstance(item, dict):
                raise ValueError(f"{what}[{i}] must be a mapping with a 'name'")
            if what == "devices" and "name" not in item:
                raise ValueError(f"{what}[{i}] has no 'name'; every listed device needs one")
            item = dict(item)
            name = item.pop("name", f"link{i}")
            if name in out:
                raise ValueError(f"two {what} are named {name!r}")
            out[name] = item
        return out
    return v


class SystemConfig(_Base):
    """A whole system: named devices and links, plus provenance and validation status.

    Build it with :func:`simrec.hw.load_hw` (from YAML, with file/line errors) or
    ``SystemConfig.model_validate(dict)``. All numbers are SI floats.
    """

    name: str = Field(min_length=1)
    description: str = ""
    validated: bool = False
    validation: Validation = Validation()
    devices: Annotated[
        dict[str, Device], BeforeValidator(lambda v: _list_to_mapping(v, "devices"))
    ] = Field(min_length=1)
    links: Annotated[dict[str, Link], BeforeValidator(lambda v: _list_to_mapping(v, "links"))] = {}

    _source: str | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:  # ignore where it was loaded from
        if not isinstance(other, SystemConfig):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _check_references(self) -> SystemConfig:
        names = set(self.devices)
        for n in list(self.devices) + list(self.links):
            if not _NAME_RE.match(n):
                where = ("devices", n) if n in self.devices else ("links", n)
                raise FieldError(
                    f"{n!r} is not a valid name",
                    where,
                    fix="use letters, digits, '_', '-' or '.', starting with a letter",
                )
        for n in self.links:
            if n in names:
                raise FieldError(
                    f"link {n!r} has the same name as a device",
                    ("links", n),
                    fix="give links and devices distinct names",
                )
        for dn, dev in self.devices.items():
            target = getattr(dev, "attached_to", None)
            if target is None:
                continue
            ok_kinds = PROCESSOR_KINDS + ("switch",)
            if target not in names:
                raise FieldError(
                    f"attached_to names {target!r}, which is not a device",
                    ("devices", dn, "attached_to"),
                    fix=did_you_mean_or_list(
                        target, sorted(names), "name one of the devices", cutoff=0.5
                    ),
                )
            if target == dn:
                raise FieldError(
                    "a device cannot be attached to itself", ("devices", dn, "attached_to")
                )
            if self.devices[target].kind not in ok_kinds:
                raise FieldError(
                    f"attached_to names {target!r}, a {self.devices[target].kind}; memories and "
                    "switches attach to a processor (cpu, gpu) or a switch",
                    ("devices", dn, "attached_to"),
                    fix="attach it to the cpu or gpu that owns it",
                )
        pairs: dict[frozenset[str], str] = {}
        for ln, link in self.links.items():
            field = "endpoints" if getattr(link, "endpoints", None) is not None else "members"
            nodes = list(link.endpoints) if field == "endpoints" else list(link.members)  # type: ignore[union-attr]
            for i, node in enumerate(nodes):
                if node not in names:
                    raise FieldError(
                        f"{field} names {node!r}, which is not a device",
                        ("links", ln, field, i),
                        fix=did_you_mean_or_list(
                            node, sorted(names), "name one of the devices", cutoff=0.5
                        ),
                    )
            if len(set(nodes)) != len(nodes):
                raise FieldError(
                    f"{field} lists a device twice", ("links", ln, field), fix="list each once"
                )
            if field == "endpoints":
                key = frozenset(nodes)
                if key in pairs:
                    raise FieldError(
                        f"links {pairs[key]!r} and {ln!r} join the same two devices",
                        ("links", ln, "endpoints"),
                        fix="merge them into one link (add up lanes/links/bandwidth)",
                    )
                pairs[key] = ln
        return self

    # ---- lookups ---------------------------------------------------------------------------------

    @property
    def source(self) -> str | None:
        """The YAML file this config was loaded from (None if built in Python)."""
        return self._source

    def device(self, name: str) -> Any:
        """The device called ``name``; a ConfigError with the closest name if there is none."""
        try:
            return self.devices[name]
        except KeyError:
            raise ConfigError(
                f"system {self.name!r} has no device {name!r}",
                path=self._source,
                where="devices",
                fix=did_you_mean_or_list(
                    name, sorted(self.devices), "use one of the devices", cutoff=0.5
                ),
            ) from None

    def link(self, name: str) -> Any:
        """The link called ``name``."""
        try:
            return self.links[name]
        except KeyError:
            raise ConfigError(
                f"system {self.name!r} has no link {name!r}",
                path=self._source,
                where="links",
                fix=did_you_mean_or_list(
                    name, sorted(self.links), "use one of the links", cutoff=0.5
                ),
            ) from None

    def devices_of_kind(self, kind: str) -> dict[str, Any]:
        """All devices of one kind, in file order."""
        return {n: d for n, d in self.devices.items() if d.kind == kind}

    def memories(self) -> dict[str, Any]:
        """All memory devices (DRAM, HBM, ...), in file order."""
        return {n: d for n, d in self.devices.items() if d.kind in MEMORY_KINDS}

    def memories_of(self, processor: str) -> dict[str, Any]:
        """Memory devices attached to ``processor``."""
        self.device(processor)
        return {n: d for n, d in self.memories().items() if d.attached_to == processor}

    def hosts(self) -> dict[str | None, list[str]]:
        """Device names grouped by their ``host`` (None for devices without one), in file order."""
        out: dict[str | None, list[str]] = {}
        for n, d in self.devices.items():
            out.setdefault(d.host, []).append(n)
        return out

    def capacities(self) -> dict[str, float]:
        """Total bytes per memory tier (device kind): e.g. ``{"hbm": 6.4e11, "dram": 2.2e12}``."""
        out: dict[str, float] = {}
        for d in self.memories().values():
            out[d.kind] = out.get(d.kind, 0.0) + d.capacity
        return out

    def capacity_of(self, name: str) -> float:
        """Capacity of one memory device, bytes."""
        dev = self.device(name)
        if dev.kind not in MEMORY_KINDS:
            raise ConfigError(
                f"device {name!r} is a {dev.kind}, not a memory",
                path=self._source,
                where=f"devices.{name}",
                fix="ask for a dram or hbm device",
            )
        return float(dev.capacity)

    def gpu_params(self, name: str) -> Any:
        """:class:`simrec.sim.components.gpu.GpuParams` of GPU ``name`` with its attached HBM."""
        gpu = self.device(name)
        hbms = [d for d in self.memories_of(name).values() if d.kind == "hbm"]
        if gpu.kind != "gpu" or len(hbms) != 1:
            raise ConfigError(
                f"device {name!r} is not a gpu with exactly one hbm attached "
                f"(kind {gpu.kind}, {len(hbms)} hbm)",
                path=self._source,
                where=f"devices.{name}",
                fix="attach one hbm device to the gpu (attached_to: <gpu name>)",
            )
        return gpu.to_params(hbms[0], name=name)

    def host_link_of(self, name: str) -> tuple[str, Any]:
        """(link name, link) of the one ``pcie`` link that names device ``name``."""
        self.device(name)
        found = [
            (ln, lk) for ln, lk in self.links.items() if lk.kind == "pcie" and name in lk.endpoints
        ]
        if len(found) != 1:
            raise ConfigError(
                f"device {name!r} needs exactly one pcie link to the host, found {len(found)}",
                path=self._source,
                where=f"devices.{name}",
                fix="add one pcie link with endpoints [<device>, <switch or cpu>]",
            )
        return found[0]

    def csd_params(self, name: str) -> Any:
        """:class:`simrec.sim.components.smartssd.SmartSSDParams` of CSD ``name``, with the
        host-link numbers of its pcie link (raw bandwidth, efficiency, per-transfer overhead +
        latency)."""
        dev = self.device(name)
        if dev.kind != "csd":
            raise ConfigError(
                f"device {name!r} is a {dev.kind}, not a csd",
                path=self._source,
                where=f"devices.{name}",
                fix="ask for a csd device",
            )
        _, link = self.host_link_of(name)
        return dev.to_params(
            name=name,
            host_bandwidth=link.raw_bandwidth,
            host_efficiency=link.efficiency,
            host_latency=link.per_transfer_overhead + link.latency,
        )

    def params(self, name: str) -> Any:
        """Simulator parameters of device or link ``name`` (DramParams, HbmParams, CpuParams,
        GpuParams, SmartSSDParams, PcieParams or a NetDim): the very numbers of this config, no
        second copy."""
        if name in self.links:
            link = self.links[name]
            return link.to_params(name=name) if link.kind == "pcie" else link.to_netdim()
        dev = self.device(name)
        if dev.kind == "gpu":
            return self.gpu_params(name)
        if dev.kind == "csd":
            return self.csd_params(name)
        if not hasattr(dev, "to_params"):
            raise ConfigError(
                f"device {name!r} ({dev.kind}) has no simulator parameters",
                path=self._source,
                where=f"devices.{name}",
                fix="ask for a cpu, dram, hbm, gpu or a link",
            )
        return dev.to_params(name=name)

    def network_params(self, links: list[str] | None = None) -> Any:
        """:class:`simrec.sim.components.network.NetworkParams` from the network dimensions
        (links with ``members``, in file order, or the ``links`` named)."""
        from simrec.sim.components.network import NetworkParams

        names = (
            links
            if links is not None
            else [n for n, lk in self.links.items() if getattr(lk, "members", None)]
        )
        if not names:
            raise ConfigError(
                f"system {self.name!r} has no network dimension (a link with 'members')",
                path=self._source,
                where="links",
                fix="add e.g. an nvlink link with members: [gpu0, gpu1, ...]",
            )
        dims = tuple(self.link(n).to_netdim() for n in names)
        return NetworkParams(dims=dims, name="+".join(names))

    def graph(self) -> Any:
        """The system as a networkx graph (see :mod:`simrec.hw.topology`)."""
        from simrec.hw.topology import build_graph

        return build_graph(self)

    def topology(self) -> Any:
        """Routes, shared links and bottlenecks over :meth:`graph`."""
        from simrec.hw.topology import Topology

        return Topology(self)

    def summary(self) -> list[dict[str, Any]]:
        """One row per device and link with its headline numbers written with units (for
        ``simrec``'s reports and a future ``hw info`` command)."""
        from simrec.hw.units import format_si

        rows: list[dict[str, Any]] = []
        for n, d in self.devices.items():
            row: dict[str, Any] = {"name": n, "kind": d.kind}
            if d.kind == "cpu":
                row["cores"] = d.cores
                row["peak"] = format_si(d.peak_flops, "flop_rate")
            elif d.kind in MEMORY_KINDS:
                row["capacity"] = format_si(d.capacity, "bytes")
                row["peak"] = format_si(d.peak_bandwidth, "bandwidth")
                row["attached_to"] = d.attached_to
            elif d.kind == "gpu":
                row["peak"] = format_si(d.mlp_peak_flops, "flop_rate") + f" {d.mlp_dtype}"
            elif d.kind == "csd":
                row["capacity"] = format_si(d.capacity, "bytes")
                row["peak"] = format_si(d.p2p_bandwidth, "bandwidth") + " P2P"
            rows.append(row)
        for n, lk in self.links.items():
            rows.append(
                {
                    "name": n,
                    "kind": lk.kind,
                    "peak": format_si(lk.bandwidth, "bandwidth"),
                    "between": ", ".join(lk.nodes if lk.kind != "pcie" else lk.endpoints),
                }
            )
        return rows

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str = "<dict>") -> SystemConfig:
        """Validate plain data (unit strings, as in YAML) with the loader's ConfigError
        messages; ``name`` stands in for the file name in them."""
        from simrec.hw.load import _validate

        return _validate(dict(data), {}, name)

    # ---- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data with units written out (what :meth:`to_yaml` writes)."""
        out = self.model_dump(mode="json", exclude_none=True)
        for section in ("devices", "links"):  # "kind" first reads best
            for name, item in out.get(section, {}).items():
                out[section][name] = {"kind": item.pop("kind"), **item}
        return out

    def to_yaml(self) -> str:
        """YAML text that :func:`simrec.hw.load_hw` reads back to an equal config."""
        import yaml

        class _Dumper(yaml.SafeDumper):
            """Unicode written as is, except YAML's non-ASCII line breaks (NEL, U+2028, U+2029):
            PyYAML emits those raw inside single quotes, where a reader folds them into
            spaces; such strings are written double-quoted, with escapes."""

        def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
            style = '"' if any(c in value for c in "\x85\u2028\u2029") else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

        _Dumper.add_representer(str, _str)
        return yaml.dump(
            self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
        )


def describe_field_kind(annotation: Any) -> str | None:
    """The unit kind of a field annotation (``"time"``...), or None for counts/fractions/text."""
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, UnitKind):
            return meta.kind
    return None


def example_for(kind: str | None) -> str:
    """An example value for a field of this unit kind."""
    return repr(expected_example(kind)) if kind else "a number"
