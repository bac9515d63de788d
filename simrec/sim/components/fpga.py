"""FPGA resource budget and the SCRec core types (memory-centric EMB, compute-centric TT-EMB, MLP).

What the model covers
---------------------
* A device resource budget (LUT, FF, DSP, BRAM36, URAM) minus what the platform shell reserves, and
  on-chip SRAM capacity (BRAM36 = 36 Kib, URAM = 288 Kib per block).
* Three core types, each with a resource cost, so that a core configuration that does not fit the
  device is rejected with a :class:`~simrec.errors.ConfigError` naming the resource, the need and
  the budget (:meth:`CoreConfig.check`):
  - :class:`EmbCoreSpec` (memory-centric): gathers rows from a memory (on-chip SRAM, DDR4 or NAND,
    whose timing lives in those components) and pools them per bag with ``lanes`` adders;
  - :class:`TTCoreSpec` (compute-centric): reconstructs rows from tensor-train cores held on chip
    as a chain of small GEMMs on ``mac_units`` DSP MACs (MAC count per row from the TT formula of
    ``shared/reference/screc.md`` §4.3), optionally reusing partial products for rows that share
    an index prefix within a chunk;
  - :class:`MlpCoreSpec`: dense layers on a DSP MAC array.
* Throughput of each core as a vectorised service-time function (fast path), and a simpy fine path
  for the TT pipeline (one event per row) that agrees with it.

What it leaves out
------------------
Routing congestion and achieved clock after place-and-route (the clock is a parameter), HLS
initiation intervals other than 1, DSP cascade/packing tricks (two INT8 MACs per DSP), power, and
the SCRec paper's actual core microarchitecture and resource figures, which were not available
(``screc.md`` §10 item 2): every per-core cost here is an [INF] estimate and a parameter.

Sources for the KU15P budget: ``screc.md`` §1.2 gives the counts as [recall] from the Xilinx
UltraScale+ selection guide (XMP103); the Kintex page of XMP103 was not in our search index. The
DSP, BRAM and URAM totals are corroborated by a routed Vivado utilization quoted in a public
repository's design notes for an ``xcku15p-ffve1517-2-i`` design (denominators "727/984
RAMB36E2", "75/128 URAM288", "1/1968 DSP48E2"); "~522K LUTs, 984 BRAMs, 1968 DSPs" also appears in
a public SmartSSD (Smart-Infinity) summary. The FF count (2 per LUT) is unverified. The device name
(``xcku15p-ffva1156-2LV-e``) is confirmed by SmartSSD netlist headers in public repositories.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import simpy

from simrec.errors import ConfigError

__all__ = [
    "RESOURCE_NAMES",
    "BRAM36_BYTES",
    "URAM_BYTES",
    "FpgaResources",
    "KU15P_RESOURCES",
    "SMARTSSD_SHELL",
    "FpgaDevice",
    "TTShape",
    "tt_macs_per_row",
    "tt_stage_macs",
    "tt_param_count",
    "tt_q_factors",
    "dsp_bound_row_rate",
    "EmbCoreSpec",
    "TTCoreSpec",
    "MlpCoreSpec",
    "CoreConfig",
    "TTCore",
]

RESOURCE_NAMES: tuple[str, ...] = ("lut", "ff", "dsp", "bram", "uram")
_PRETTY = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram": "BRAM36", "uram": "URAM"}

#: Bytes per BRAM36 block: 36 Kib (data + parity bits, all usable as storage at x72 width).
BRAM36_BYTES = 36 * 1024 // 8
#: Bytes per UltraRAM block: 288 Kib (4K x 72).
URAM_BYTES = 288 * 1024 // 8


@dataclass(frozen=True)
class FpgaResources:
    """A vector of FPGA resources (counts of primitives)."""

    lut: int = 0
    ff: int = 0
    dsp: int = 0
    bram: int = 0
    uram: int = 0

    def __add__(self, other: FpgaResources) -> FpgaResources:
        return FpgaResources(*(getattr(self, n) + getattr(other, n) for n in RESOURCE_NAMES))

    def __sub__(self, other: FpgaResources) -> FpgaResources:
        return FpgaResources(*(getattr(self, n) - getattr(other, n) for n in RESOURCE_NAMES))

    def scale(self, k: int) -> FpgaResources:
        """``k`` copies of this cost."""
        return FpgaResources(*(getattr(self, n) * k for n in RESOURCE_NAMES))

    def as_dict(self) -> dict[str, int]:
        return {n: int(getattr(self, n)) for n in RESOURCE_NAMES}


#: XCKU15P totals: 522,720 CLB LUTs, 1,045,440 CLB FFs, 1,968 DSP48E2, 984 BRAM36 (34.6 Mib),
#: 128 URAM (36 Mib). screc.md §1.2 [recall]; DSP/BRAM/URAM corroborated by a Vivado utilization
#: report of an xcku15p design (see the module docstring); LUTs by a SmartSSD summary; FFs unverified.
KU15P_RESOURCES = FpgaResources(lut=522_720, ff=1_045_440, dsp=1_968, bram=984, uram=128)

#: Resources the SmartSSD platform shell (``xilinx_u2_gen3x4_xdma_gc``: PCIe switch, XDMA, DDR4
#: controller) keeps for itself. DSP: a public SmartSSD roofline README states the dynamic region
#: has only 1,344 placeable DSPs, so 1,968 - 1,344 = 624 are unavailable to kernels. LUT/FF/BRAM/
#: URAM: [INF] guesses (~15 % LUT/FF, ~10 % BRAM, for XDMA + MIG + switch); replace them with
#: ``platforminfo`` numbers of the real shell.
SMARTSSD_SHELL = FpgaResources(lut=80_000, ff=160_000, dsp=624, bram=100, uram=0)


@dataclass(frozen=True)
class FpgaDevice:
    """An FPGA: total resources, shell reservation and kernel clock.

    Attributes:
        name: part name.
        total: all resources of the part.
        shell: resources the platform shell reserves (not available to cores).
        clock_hz: kernel clock. 250 MHz [INF] (screc.md §4.3's budget); the SCRec clock is unknown.
        bram_bytes_each / uram_bytes_each: storage per block.
    """

    name: str = "XCKU15P"
    total: FpgaResources = KU15P_RESOURCES
    shell: FpgaResources = SMARTSSD_SHELL
    clock_hz: float = 250e6
    bram_bytes_each: int = BRAM36_BYTES
    uram_bytes_each: int = URAM_BYTES

    def __post_init__(self) -> None:
        for n in RESOURCE_NAMES:
            if getattr(self.shell, n) > getattr(self.total, n) or getattr(self.shell, n) < 0:
                raise ConfigError(
                    f"the shell reserves {getattr(self.shell, n)} {_PRETTY[n]} but the "
                    f"{self.name} has {getattr(self.total, n)}",
                    where=f"fpga.shell.{n}",
                    fix="reserve no more than the device has",
                )
        if not self.clock_hz > 0:
            raise ConfigError(
                "the FPGA clock must be positive", where="fpga.clock_hz", fix="e.g. 250e6"
            )

    @property
    def available(self) -> FpgaResources:
        """Resources left for cores."""
        return self.total - self.shell

    def onchip_bytes(self, used: FpgaResources | None = None) -> int:
        """BRAM + URAM bytes available for data after the shell and ``used`` (core buffers)."""
        free = self.available - (used or FpgaResources())
        return max(free.bram, 0) * self.bram_bytes_each + max(free.uram, 0) * self.uram_bytes_each


# -------------------------------------------------------------------------------------------------
# Tensor-train arithmetic (screc.md §4.3)
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TTShape:
    """TT factorisation of one table: rows <= prod(p), dim == prod(q), inner ranks R_1..R_{d-1}.

    Attributes:
        p: row factors (p_1..p_d), row index i = ((i_1 p_2 + i_2) p_3 + i_3) ... (mixed radix).
        q: column factors (q_1..q_d), dim = prod(q).
        ranks: inner TT ranks (R_1..R_{d-1}); R_0 = R_d = 1.
    """

    p: tuple[int, ...]
    q: tuple[int, ...]
    ranks: tuple[int, ...]

    def __post_init__(self) -> None:
        d = len(self.q)
        if len(self.p) != d or len(self.ranks) != d - 1 or d < 2:
            raise ConfigError(
                f"TT shape needs len(p) == len(q) == len(ranks) + 1 >= 2; got p={self.p}, "
                f"q={self.q}, ranks={self.ranks}",
                where="tt.shape",
                fix="give d row factors, d column factors and d-1 inner ranks",
            )
        if min(self.p + self.q + self.ranks) < 1:
            raise ConfigError(
                "TT factors and ranks must be >= 1", where="tt.shape", fix="use positive integers"
            )

    @property
    def full_ranks(self) -> tuple[int, ...]:
        """(R_0, R_1, ..., R_d) with R_0 = R_d = 1."""
        return (1, *self.ranks, 1)

    @property
    def dim(self) -> int:
        return math.prod(self.q)

    @property
    def max_rows(self) -> int:
        return math.prod(self.p)

    @classmethod
    def from_spec(cls, spec: Any, rows: int, dim: int) -> TTShape:
        """From a :class:`simrec.functional.spec.TTSpec` (shapes resolved for ``rows`` x ``dim``)."""
        r = spec.resolved(rows, dim)
        return cls(p=tuple(r.p_shapes), q=tuple(r.q_shapes), ranks=tuple(r.ranks))

    def prefix_divisors(self) -> list[int]:
        """For stage k = 2..d, the divisor that turns a row index into its (i_1..i_k) prefix."""
        return [math.prod(self.p[k:]) for k in range(2, len(self.p) + 1)]


def tt_stage_macs(shape: TTShape) -> list[int]:
    """MACs of each GEMM in the reconstruction chain (stages 2..d).

    Stage k multiplies the running (q_1...q_{k-1}) x R_{k-1} matrix by core k's R_{k-1} x (q_k R_k)
    slice: ``prod(q_1..q_{k-1}) * R_{k-1} * q_k * R_k`` MACs (screc.md §4.3).
    """
    r = shape.full_ranks
    out = []
    for k in range(1, len(shape.q)):  # 0-based core index of the core being multiplied in
        out.append(math.prod(shape.q[:k]) * r[k] * shape.q[k] * r[k + 1])
    return out


def tt_macs_per_row(shape: TTShape) -> int:
    """MACs to reconstruct one row: for d = 3, ``q1 R1 q2 R2 + q1 q2 R2 q3`` (screc.md §4.3)."""
    return sum(tt_stage_macs(shape))


def tt_param_count(shape: TTShape) -> int:
    """TT parameters: sum_k R_{k-1} p_k q_k R_k (screc.md §4.3)."""
    r = shape.full_ranks
    return sum(r[k] * shape.p[k] * shape.q[k] * r[k + 1] for k in range(len(shape.p)))


#: Column factorisations of screc.md §4.3's MAC table (d = 3).
_Q_TABLE: dict[int, tuple[int, int, int]] = {
    16: (2, 2, 4),
    32: (2, 4, 4),
    64: (4, 4, 4),
    128: (4, 4, 8),
}


def tt_q_factors(dim: int) -> tuple[int, int, int]:
    """Three column factors of ``dim``: screc.md §4.3's choices for 16/32/64/128, otherwise the
    most balanced ascending factorisation."""
    if dim in _Q_TABLE:
        return _Q_TABLE[dim]
    best: tuple[int, int, int] | None = None
    for a in range(1, int(round(dim ** (1 / 3))) + 2):
        if dim % a:
            continue
        for b in range(a, int(math.isqrt(dim // a)) + 1):
            if (dim // a) % b:
                continue
            c = dim // a // b
            cand = (a, b, c)
            if best is None or max(cand) - min(cand) < max(best) - min(best):
                best = cand
    if best is None:
        raise ConfigError(
            f"cannot factor dim {dim} into three TT factors",
            where="tt.dim",
            fix="use a positive dimension",
        )
    return best


def dsp_bound_row_rate(
    dsps: int,
    clock_hz: float,
    macs_per_row: int,
    dsp_per_mac: float = 1.0,
    efficiency: float = 1.0,
) -> float:
    """Rows/s that ``dsps`` DSP slices can reconstruct: ``dsps / dsp_per_mac * clock *
    efficiency / macs_per_row``. ``dsp_per_mac`` = DSP slices per MAC/cycle (1 for 16-bit fixed
    point on one DSP48E2; about 3 for fp32 with the adder in fabric)."""
    return dsps / dsp_per_mac * clock_hz * efficiency / macs_per_row


# -------------------------------------------------------------------------------------------------
# Core types
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbCoreSpec:
    """Memory-centric embedding core: issues row reads and sums them per bag.

    Attributes:
        lanes: elements accumulated per cycle (fp32 adders in fabric) [INF].
        outstanding: row requests in flight (memory-level parallelism) [INF].
        cost: resources per core [INF: 16 fp32 adders ~ 0.4 K LUT each, AXI masters, FIFOs].
    """

    lanes: int = 16
    outstanding: int = 64
    cost: FpgaResources = FpgaResources(lut=14_000, ff=22_000, dsp=0, bram=8, uram=0)

    def pool_time(self, rows: int | np.ndarray, dim: int, clock_hz: float) -> Any:
        """Time to accumulate ``rows`` rows of ``dim`` elements (s), memory time excluded."""
        return np.asarray(rows) * math.ceil(dim / self.lanes) / clock_hz


@dataclass(frozen=True)
class TTCoreSpec:
    """Compute-centric TT-EMB core: index decoder + two-stage GEMM pipeline on DSP MACs.

    Attributes:
        mac_units: multiply-accumulate units (each ``dsp_per_mac`` DSP slices) [INF].
        dsp_per_mac: 1.0 for 16-bit fixed point (one DSP48E2); about 3 for fp32 multipliers with
            adders in fabric (a public SmartSSD roofline README maps an fp32 multiply to 3 DSPs).
        efficiency: fraction of MAC slots doing useful work (pipeline bubbles, ragged GEMM tiles)
            [INF]; 1.0 means the DSP bound.
        prefix_reuse: reuse partial products of rows sharing an index prefix within a chunk.
        lut_per_mac / ff_per_mac: fabric per MAC unit (operand muxing, accumulators) [INF].
        base: fixed cost (index decoder, pooling accumulator, control) [INF].
        bram_buffers: BRAM36 for stage buffers [INF]; TT cores themselves are data (counted
            against on-chip capacity by the planner, not here).
    """

    mac_units: int = 256
    dsp_per_mac: float = 1.0
    efficiency: float = 1.0
    prefix_reuse: bool = False
    lut_per_mac: int = 60
    ff_per_mac: int = 120
    base: FpgaResources = FpgaResources(lut=12_000, ff=20_000, dsp=0, bram=0, uram=0)
    bram_buffers: int = 16

    @property
    def cost(self) -> FpgaResources:
        """Resources per TT core."""
        return self.base + FpgaResources(
            lut=self.lut_per_mac * self.mac_units,
            ff=self.ff_per_mac * self.mac_units,
            dsp=int(math.ceil(self.mac_units * self.dsp_per_mac)),
            bram=self.bram_buffers,
        )

    def macs_per_second(self, clock_hz: float) -> float:
        """Useful MACs/s of one core."""
        return self.mac_units * clock_hz * self.efficiency

    def chunk_macs(self, shape: TTShape, rows: np.ndarray) -> int:
        """MACs to reconstruct ``rows`` (row indices of one table), with prefix reuse if enabled.

        Without reuse: ``len(rows) * tt_macs_per_row`` (every lookup is reconstructed). With reuse,
        stage k is computed once per distinct (i_1..i_k) prefix in the chunk, the last stage once
        per distinct row (an unbounded partial-product cache per chunk; for d = 3 this is
        ``unique_prefixes * stage_2 + unique_rows * stage_3``).
        """
        rows = np.asarray(rows, dtype=np.int64)
        stages = tt_stage_macs(shape)
        if not self.prefix_reuse:
            return int(len(rows) * sum(stages))
        total = 0
        for cost, div in zip(stages, shape.prefix_divisors(), strict=True):
            keys = np.sort(rows // div)
            n = int(np.count_nonzero(np.diff(keys))) + 1 if len(keys) else 0
            total += cost * n
        return int(total)

    def time(self, macs: float | np.ndarray, clock_hz: float, cores: int = 1) -> Any:
        """Seconds for ``macs`` MACs spread over ``cores`` TT cores."""
        return np.asarray(macs) / (self.macs_per_second(clock_hz) * cores)


@dataclass(frozen=True)
class MlpCoreSpec:
    """MLP core: a systolic MAC array for dense layers.

    Attributes:
        mac_units: MAC units [INF].
        dsp_per_mac / efficiency: as for :class:`TTCoreSpec`.
        cost_base: fixed cost [INF]; fabric per MAC as ``lut_per_mac``/``ff_per_mac``.
        bram_buffers: weight/activation buffers in BRAM36 [INF].
    """

    mac_units: int = 512
    dsp_per_mac: float = 1.0
    efficiency: float = 0.8
    lut_per_mac: int = 40
    ff_per_mac: int = 80
    cost_base: FpgaResources = FpgaResources(lut=10_000, ff=15_000, dsp=0, bram=0, uram=0)
    bram_buffers: int = 64

    @property
    def cost(self) -> FpgaResources:
        return self.cost_base + FpgaResources(
            lut=self.lut_per_mac * self.mac_units,
            ff=self.ff_per_mac * self.mac_units,
            dsp=int(math.ceil(self.mac_units * self.dsp_per_mac)),
            bram=self.bram_buffers,
        )

    @staticmethod
    def macs_per_sample(layers: Sequence[int]) -> int:
        """MACs of one sample through an MLP with layer widths ``layers`` (input first)."""
        return int(sum(a * b for a, b in zip(layers[:-1], layers[1:], strict=False)))

    def time(self, samples: int, layers: Sequence[int], clock_hz: float, cores: int = 1) -> float:
        """Seconds to run ``samples`` samples through ``layers`` on ``cores`` MLP cores."""
        rate = self.mac_units * clock_hz * self.efficiency * cores
        return samples * self.macs_per_sample(layers) / rate


@dataclass(frozen=True)
class CoreConfig:
    """How many cores of each type one FPGA instantiates, and their specs."""

    n_emb: int = 2
    n_tt: int = 2
    n_mlp: int = 1
    emb: EmbCoreSpec = field(default_factory=EmbCoreSpec)
    tt: TTCoreSpec = field(default_factory=TTCoreSpec)
    mlp: MlpCoreSpec = field(default_factory=MlpCoreSpec)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name.startswith("n_") and (
                not isinstance(getattr(self, f.name), int) or getattr(self, f.name) < 0
            ):
                raise ConfigError(
                    f"core count {f.name} must be a non-negative integer, got "
                    f"{getattr(self, f.name)!r}",
                    where=f"cores.{f.name}",
                    fix="give 0 or more cores",
                )

    def resources(self) -> FpgaResources:
        """Total resources of the configuration."""
        return (
            self.emb.cost.scale(self.n_emb)
            + self.tt.cost.scale(self.n_tt)
            + self.mlp.cost.scale(self.n_mlp)
        )

    def check(self, device: FpgaDevice, where: str = "cores") -> dict[str, float]:
        """Raise :class:`ConfigError` if the configuration does not fit ``device``.

        Returns the utilisation of each resource (need / budget) when it fits.
        """
        need = self.resources()
        budget = device.available
        over = []
        util: dict[str, float] = {}
        for n in RESOURCE_NAMES:
            nd, bd = getattr(need, n), getattr(budget, n)
            util[n] = nd / bd if bd > 0 else (0.0 if nd == 0 else math.inf)
            if nd > bd:
                over.append(f"{nd:,} {_PRETTY[n]} but the budget is {bd:,}")
        if over:
            raise ConfigError(
                f"core configuration ({self.n_emb} EMB, {self.n_tt} TT, {self.n_mlp} MLP) does not "
                f"fit the {device.name} (after the shell's reservation): it needs "
                + "; ".join(over),
                where=where,
                fix="use fewer or smaller cores (n_emb/n_tt/n_mlp, mac_units, lanes) or a larger "
                "device",
            )
        return util


class TTCore:
    """A TT-EMB core in simpy (fine path): one event per reconstructed row.

    Rows are processed in order; the GEMM pipeline issues ``mac_units * efficiency`` MACs per
    cycle, so a row occupies it for ``macs / (mac_units * efficiency * clock)`` s (initiation
    interval), plus a fixed pipeline ``latency_cycles`` for the last row to drain.
    """

    def __init__(
        self,
        env: simpy.Environment,
        spec: TTCoreSpec,
        clock_hz: float,
        latency_cycles: int = 0,
    ):
        self.env = env
        self.spec = spec
        self.clock_hz = clock_hz
        self.latency_s = latency_cycles / clock_hz
        self.pipe = simpy.Resource(env, capacity=1)
        self.busy_s = 0.0
        self.macs = 0

    def reconstruct(self, macs: int) -> Generator[simpy.events.Event, Any, None]:
        """simpy process: push one row needing ``macs`` MACs through the pipeline."""
        dt = macs / self.spec.macs_per_second(self.clock_hz)
        with self.pipe.request() as req:
            yield req
            yield self.env.timeout(dt)
            self.busy_s += dt
            self.macs += macs
        if self.latency_s:
            yield self.env.timeout(self.latency_s)

    def run_rows(self, shape: TTShape, rows: np.ndarray) -> float:
        """Fine path helper: reconstruct ``rows`` (with prefix reuse if the spec enables it) and
        return the completion time of the last row."""
        rows = np.asarray(rows, dtype=np.int64)
        stages = tt_stage_macs(shape)
        divs = shape.prefix_divisors()
        seen: list[set[int]] = [set() for _ in stages]
        start = self.env.now
        for r in rows.tolist():
            m = 0
            for k, (cost, div) in enumerate(zip(stages, divs, strict=True)):
                if self.spec.prefix_reuse:
                    key = r // div
                    if key in seen[k]:
                        continue
                    seen[k].add(key)
                m += cost
            self.env.process(self.reconstruct(m))
        self.env.run()
        return self.env.now - start
