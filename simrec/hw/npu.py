"""Hardware YAML models of an Ascend-like multi-core NPU SoC (``kind: npu``).

One ``npu`` device is a whole SoC: ``cores`` identical AI cores (the cores that run embedding
look-ups: the Da Vinci AI cores of a "coupled" part such as the Ascend 910, the AIV vector cores of
a "separated" part such as the 910B), each with an L1 buffer, a Unified Buffer (UB), DMA engines
(MTE2 GM->L1/UB, MTE1 L1->UB on the coupled architecture only, MTE3 UB->GM) and a vector unit; a
shared L2 and the global memory (HBM) with an aggregate bandwidth and a transfer granularity.
Every number is an SI float after loading (see :mod:`simrec.hw.units`). Facts and their sources:
``reference/papers.md`` §A.4; the presets ``hwconfigs/ascend910.yaml`` and
``hwconfigs/ascend910b.yaml`` cite them line by line.

What it leaves out: the Cube unit and L0A/L0B/L0C (embedding look-ups do not use them), per-bank
UB conflicts, L2 hit modelling (every GM read pays the HBM path), and frequency scaling.

**Plugging into the schema.** Until :data:`simrec.hw.schema.Device` lists :class:`NpuDevice`,
:func:`load_npu_hw` validates a file with :func:`npu_system_class` (the system model with ``npu``
added to the device union); once it is listed, ``simrec.hw.load_hw`` reads NPU files directly and
:func:`load_npu_hw` gives the same result.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args

from pydantic import BeforeValidator, Field, create_model, model_validator

from simrec.errors import ConfigError
from simrec.hw.schema import (  # only names defined before schema.py's Device union
    Bandwidth,
    Bytes,
    Count,
    DeviceBase,
    Energy0,
    FieldError,
    Frequency,
    PositiveNumber,
    Power0,
    Time0,
    _Base,
    _EnergyBase,
    _problem,
)

if TYPE_CHECKING:
    from simrec.hw.schema import SystemConfig

__all__ = [
    "DmaEngine",
    "NpuCore",
    "NpuL2",
    "GlobalMemory",
    "NpuEnergy",
    "NpuDevice",
    "npu_system_class",
    "load_npu_hw",
    "npu_device",
]


class DmaEngine(_Base):
    """One DMA engine of a core: a fixed cost per DMA command and a per-core bandwidth."""

    bandwidth: Bandwidth = Field(description="bytes/s one core's engine moves")
    issue: Time0 = Field(description="fixed cost per DMA command (issue + the latency not hidden)")


class NpuCore(_Base):
    """One AI core (identical for all cores of the SoC)."""

    l1_size: Bytes | None = Field(
        None, description="L1 buffer per core; omitted when the core has none it can use"
    )
    ub_size: Bytes = Field(description="Unified Buffer per core")
    ub_reserved: Bytes = Field(
        description="UB held for indices and the pooled-output accumulator tile; the rest is "
        "split into two chunk buffers (double buffering)"
    )
    vector_width_bits: Count = Field(description="vector unit width (Ascend: 2048 bits)")
    vector_cycles_per_row: PositiveNumber = Field(
        description="vector/scalar cycles per gathered row besides the row's width in vector ops"
    )
    mte2: DmaEngine = Field(description="GM -> L1/UB")
    mte1: DmaEngine | None = Field(None, description="L1 -> UB; coupled architecture only")
    mte3: DmaEngine = Field(description="UB -> GM (pooled outputs)")


class NpuL2(_Base):
    """The shared L2 cache (every GM access passes through it)."""

    size: Bytes


class GlobalMemory(_Base):
    """Global memory (HBM or DRAM) behind the L2: capacity, aggregate bandwidth, granularity."""

    standard: str | None = Field(None, description="e.g. HBM2, HBM2E (free text)")
    capacity: Bytes
    bandwidth: Bandwidth = Field(description="aggregate bytes/s shared by all cores")
    granularity: Bytes = Field(
        description="smallest transfer (cache line / burst): a row smaller than this moves a whole "
        "transfer"
    )


class NpuEnergy(_EnergyBase):
    """Energy of the SoC: per GM byte moved, TDP and static power (numbers: the energy issue)."""

    gm_energy_per_bit: Annotated[float, Field(ge=0)] | None = Field(
        None, description="J/bit of global-memory traffic"
    )
    energy_per_lookup: Energy0 | None = Field(None, description="core-side energy per row")
    tdp: Power0 | None = Field(None, description="thermal design power")


class NpuDevice(DeviceBase):
    """An Ascend-like NPU SoC. ``architecture: coupled`` has an L1->UB path (MTE1) so the L1 and
    L1-UB strategies exist; ``separated`` (910B-like AIC/AIV split) has none, and ``core.mte1``
    must be left out."""

    kind: Literal["npu"] = "npu"
    soc: str | None = Field(None, description="the part this preset stands for")
    architecture: Literal["coupled", "separated"]
    cores: Count = Field(description="cores that run look-ups (910: AI cores; 910B: AIV cores)")
    frequency: Frequency = Field(description="core clock")
    core: NpuCore
    l2: NpuL2
    global_memory: GlobalMemory
    energy: NpuEnergy = NpuEnergy()

    @model_validator(mode="after")
    def _check(self) -> NpuDevice:
        c = self.core
        if self.architecture == "coupled" and c.mte1 is None:
            raise _problem(
                "a coupled NPU has an L1->UB DMA engine, but core.mte1 is missing",
                "add 'mte1: {bandwidth: ..., issue: ...}' under core, or set architecture: "
                "separated",
            )
        if self.architecture == "separated" and c.mte1 is not None:
            raise _problem(
                "a separated NPU has no L1->UB path, but core.mte1 is given",
                "remove core.mte1, or set architecture: coupled",
            )
        if self.architecture == "coupled" and c.l1_size is None:
            raise _problem(
                "a coupled NPU core needs l1_size", "add 'l1_size: 1 MiB' (or the part's L1)"
            )
        if c.ub_reserved >= c.ub_size:
            raise _problem(
                f"ub_reserved ({c.ub_reserved:.0f} B) leaves no UB for chunks "
                f"(ub_size {c.ub_size:.0f} B)",
                "reserve less than the UB size, e.g. a quarter of it",
            )
        if (c.ub_size - c.ub_reserved) / 2 < self.global_memory.granularity:
            raise _problem(
                "half of the free UB is smaller than one global-memory transfer",
                "lower ub_reserved or the granularity",
            )
        return self

    def to_params(self, name: str = "npu") -> Any:
        """The simulator's :class:`simrec.sim.components.npu.NpuParams` with these numbers."""
        from simrec.sim.components.npu import NpuParams

        c = self.core
        return NpuParams(
            name=name,
            cores=self.cores,
            coupled=self.architecture == "coupled",
            freq_hz=self.frequency,
            l1_bytes=float(c.l1_size or 0.0),
            ub_bytes=c.ub_size,
            ub_reserved_bytes=c.ub_reserved,
            vector_bytes_per_cycle=c.vector_width_bits / 8,
            vector_cycles_per_row=c.vector_cycles_per_row,
            mte2_Bps=c.mte2.bandwidth,
            mte2_issue_s=c.mte2.issue,
            mte1_Bps=c.mte1.bandwidth if c.mte1 else 0.0,
            mte1_issue_s=c.mte1.issue if c.mte1 else 0.0,
            mte3_Bps=c.mte3.bandwidth,
            mte3_issue_s=c.mte3.issue,
            l2_bytes=self.l2.size,
            gm_Bps=self.global_memory.bandwidth,
            gm_granularity_bytes=self.global_memory.granularity,
            gm_capacity_bytes=self.global_memory.capacity,
        )


@cache
def npu_system_class() -> type:
    """:class:`~simrec.hw.schema.SystemConfig` whose devices may also be ``kind: npu`` (built on
    first use, so that schema.py may import this module to list :class:`NpuDevice` itself)."""
    from simrec.hw.schema import Device, SystemConfig, _list_to_mapping

    union = Annotated[
        Union[(*get_args(get_args(Device)[0]), NpuDevice)],  # noqa: UP007 - built at runtime
        Field(discriminator="kind"),
    ]

    devices = Annotated[
        dict[str, union],  # type: ignore[valid-type]
        BeforeValidator(lambda v: _list_to_mapping(v, "devices")),
    ]
    return create_model(
        "NpuSystemConfig", __base__=SystemConfig, devices=(devices, Field(min_length=1))
    )


def _validate(data: dict, marks: dict, fname: str) -> SystemConfig:
    from pydantic import ValidationError

    from simrec.hw.load import _normalise_lists, _place, _to_config_error

    _normalise_lists(data, marks)
    try:
        cfg = npu_system_class().model_validate(data)
    except ValidationError as e:
        raise _to_config_error(e, data, marks, fname) from None
    except FieldError as e:
        path, line = _place(e.loc, marks, fname)
        raise ConfigError(e.message, path=path, where=line, fix=e.fix) from None
    cfg._source = fname
    return cfg


def load_npu_hw(path: str | os.PathLike[str] | SystemConfig) -> SystemConfig:
    """Load a hardware file (or preset name, e.g. ``ascend910``) that may hold ``npu`` devices,
    with the loader's file/line/fix errors. A ``SystemConfig`` is returned unchanged."""
    from simrec.hw.schema import SystemConfig

    if isinstance(path, SystemConfig):
        return path
    from simrec.hw.load import _load_tree, _resolve_arg

    p = _resolve_arg(path)
    data, marks = _load_tree(Path(p), ())
    return _validate(data, marks, str(p))


def npu_device(cfg: SystemConfig, name: str | None = None) -> tuple[str, NpuDevice]:
    """The (only, or named) NPU device of a config; a ConfigError naming the fix otherwise."""
    npus = {n: d for n, d in cfg.devices.items() if getattr(d, "kind", None) == "npu"}
    if name is not None:
        dev = cfg.device(name)
        if dev.kind != "npu":
            raise ConfigError(
                f"device {name!r} is a {dev.kind}, not an npu",
                path=cfg.source,
                where=f"devices.{name}",
                fix="name an npu device",
            )
        return name, dev
    if len(npus) != 1:
        raise ConfigError(
            f"system {cfg.name!r} has {len(npus)} npu devices; the NPU system needs exactly one",
            path=cfg.source,
            where="devices",
            fix="use an NPU preset (ascend910, ascend910b) or give one 'kind: npu' device",
        )
    return next(iter(npus.items()))
