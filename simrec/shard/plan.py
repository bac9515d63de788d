"""The sharding plan: which rows of which table live in which tier of which device, in what format.

A :class:`Plan` is the value the planner (MIP or heuristic) produces and the simulator, the
functional model and the reports consume. It is versioned JSON (``format: "simrec-plan"``,
``version: 1``) with:

* ``devices`` — per device its name, an optional kind and the core configuration
  (memory-centric, compute-centric/TT and MLP core counts, plus free-form counts);
* ``tables`` — per table its name, rows, dim, a storage codec (``raw``, ``tt``, ``quant``, ``hash``,
  ``qr``, ``cafe``, ``memrec``: :mod:`simrec.functional.spec`), a row *order* and row *bands*.

**Row order and bands (the address-remapper contract, screc.md §2–§3).** A table's ``order`` ranks its
rows: ``index`` (rank = row id), ``hotness`` (a permutation of row ids, hottest first; given inline
or supplied at run time, e.g. from trace statistics) or ``hot_set`` (the listed hot rows first, in
the given order, then the others by index). Each band takes the ranks ``[start, stop)`` and puts
them on one (device, tier); bands must cover ``0 .. rows-1`` exactly once. Inside a (table, device,
tier) the bands are packed in rank order into local rows ``0 .. n-1``: that local space is the row
space of the band's codec (a TT band's cores are indexed by local row). A band may override the
table's codec.

``solver`` records how the plan was made (status, objective, bound, gap, time, problem size).
:meth:`Plan.sharding_plan_view` gives a TorchRec-like ``ShardingPlan`` dict (anchors.md §1.1).

:func:`load_plan` reads and validates a plan file; every problem is a :class:`ConfigError` that names
the file, the table and field, and the fix (unknown keys get the closest valid key suggested).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simrec.errors import ConfigError, atomic_output, did_you_mean
from simrec.functional.spec import CodecSpec, QuantSpec, RawSpec, TTSpec

__all__ = [
    "PLAN_VERSION",
    "Band",
    "CoreConfig",
    "DevicePlan",
    "Plan",
    "RowOrder",
    "SolverRecord",
    "TablePlan",
    "load_plan",
    "plan_from_dict",
    "single_device_plan",
]

PLAN_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:\-]+$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CoreConfig(_Model):
    """Cores instantiated on a device (SCRec's adaptive core configuration, screc.md §1.3)."""

    memory_centric: int = Field(default=0, ge=0, description="row-gather (EMB) cores")
    compute_centric: int = Field(default=0, ge=0, description="TT reconstruction cores")
    mlp: int = Field(default=0, ge=0, description="MLP cores")
    other: dict[str, int] = Field(default_factory=dict, description="free-form core counts")


class DevicePlan(_Model):
    """One device of the plan (names must match the hardware config's device names)."""

    name: str = Field(min_length=1)
    kind: str | None = None
    cores: CoreConfig = Field(default_factory=CoreConfig)


class RowOrder(_Model):
    """How a table's rows are ranked before bands cut the ranks into tiers."""

    kind: Literal["index", "hotness", "hot_set"] = "index"
    permutation: list[int] | None = Field(
        default=None, description="hotness: row ids, hottest first (None: supplied at run time)"
    )
    hot_rows: list[int] | None = Field(default=None, description="hot_set: the hot row ids")
    source: str | None = Field(default=None, description="where the ranking came from")


class Band(_Model):
    """Ranks ``rows = [start, stop)`` of a table stored on (``device``, ``tier``)."""

    device: str
    tier: str = Field(description="tier name, e.g. sram, dram, nand, hbm, host_dram")
    rows: tuple[int, int]
    codec: CodecSpec | None = Field(default=None, description="overrides the table's codec")

    @property
    def start(self) -> int:
        return self.rows[0]

    @property
    def stop(self) -> int:
        return self.rows[1]

    @property
    def length(self) -> int:
        return self.rows[1] - self.rows[0]


class TablePlan(_Model):
    """Placement and storage of one embedding table."""

    name: str = Field(min_length=1)
    rows: int = Field(gt=0)
    dim: int = Field(gt=0)
    codec: CodecSpec = Field(default_factory=RawSpec)
    order: RowOrder = Field(default_factory=RowOrder)
    bands: list[Band] = Field(min_length=1)

    @property
    def devices(self) -> list[str]:
        """Owning devices, in first-band order."""
        return list(dict.fromkeys(b.device for b in self.bands))

    def band_codec(self, band: Band) -> Any:
        return band.codec if band.codec is not None else self.codec

    def sorted_bands(self) -> list[Band]:
        return sorted(self.bands, key=lambda b: b.start)


class SolverRecord(_Model):
    """How the plan was produced."""

    solver: str | None = None
    status: str = "unknown"
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    solve_time_s: float | None = None
    num_variables: int | None = None
    num_constraints: int | None = None
    num_integer: int | None = None
    message: str | None = None


class Plan(_Model):
    """A versioned sharding plan (see the module docstring)."""

    format: Literal["simrec-plan"] = "simrec-plan"
    version: int = PLAN_VERSION
    devices: list[DevicePlan] = Field(min_length=1)
    tables: list[TablePlan] = Field(min_length=1)
    solver: SolverRecord | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)

    # -- lookups -------------------------------------------------------------------------------
    @property
    def device_names(self) -> list[str]:
        return [d.name for d in self.devices]

    @property
    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]

    def table(self, name: str) -> TablePlan:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def tiers(self) -> list[str]:
        """All tier names used, in first-use order."""
        return list(dict.fromkeys(b.tier for t in self.tables for b in t.bands))

    # -- validation ----------------------------------------------------------------------------
    def check(
        self,
        path: str | os.PathLike[str] | None = None,
        hw_device_names: list[str] | None = None,
        trace_header: Any | None = None,
    ) -> Plan:
        """Check the plan's internal consistency (and against hardware / trace when given).

        Returns the plan with every TT codec's shapes filled in. Raises ConfigError.
        """
        if self.version != PLAN_VERSION:
            raise ConfigError(
                f"plan version {self.version} is not supported (this simrec reads {PLAN_VERSION})",
                path=path,
                where="field 'version'",
                fix=f"regenerate the plan or set version: {PLAN_VERSION}",
            )
        names = self.device_names
        dup = _first_duplicate(names)
        if dup is not None:
            raise ConfigError(
                f"device {dup!r} is listed twice",
                path=path,
                where="field 'devices'",
                fix="give each device one entry",
            )
        for n in names:
            if not _NAME_RE.match(n):
                raise ConfigError(
                    f"device name {n!r} has characters other than letters, digits, _ . : -",
                    path=path,
                    where="field 'devices'",
                    fix="rename the device",
                )
        if hw_device_names is not None:
            unknown = [n for n in names if n not in hw_device_names]
            if unknown:
                raise ConfigError(
                    f"device {unknown[0]!r} is not in the hardware config "
                    f"(devices there: {', '.join(hw_device_names)})",
                    path=path,
                    where=f"field 'devices' ({unknown[0]!r})",
                    fix="use one of the hardware's devices"
                    + did_you_mean(unknown[0], hw_device_names),
                )
        dup = _first_duplicate(self.table_names)
        if dup is not None:
            raise ConfigError(
                f"table {dup!r} is listed twice",
                path=path,
                where="field 'tables'",
                fix="give each table one entry",
            )
        new_tables = [self._check_table(t, path) for t in self.tables]
        if trace_header is not None:
            self._check_trace(trace_header, path)
        return self.model_copy(update={"tables": new_tables})

    def _check_table(self, t: TablePlan, path: Any) -> TablePlan:
        where = f"table {t.name!r}"
        devs = set(self.device_names)
        for i, b in enumerate(t.bands):
            if b.device not in devs:
                raise ConfigError(
                    f"band {i} is on device {b.device!r}, which the plan's devices do not list",
                    path=path,
                    where=f"{where}, field 'bands[{i}].device'",
                    fix=f"add it to 'devices' or use one of {sorted(devs)}"
                    f"{did_you_mean(b.device, list(devs))}",
                )
            if not _NAME_RE.match(b.tier):
                raise ConfigError(
                    f"band {i} has tier name {b.tier!r}",
                    path=path,
                    where=f"{where}, field 'bands[{i}].tier'",
                    fix="use a tier name such as sram, dram, nand, hbm, host_dram",
                )
            if not (0 <= b.start < b.stop <= t.rows):
                raise ConfigError(
                    f"band {i} has rows [{b.start}, {b.stop}), outside 0..{t.rows} or empty",
                    path=path,
                    where=f"{where}, field 'bands[{i}].rows'",
                    fix=f"give [start, stop) with 0 <= start < stop <= {t.rows}",
                )
        bands = t.sorted_bands()
        expect = 0
        for b in bands:
            if b.start < expect:
                raise ConfigError(
                    f"bands overlap: rows [{b.start}, {b.stop}) start before {expect}, "
                    "where the previous band ends",
                    path=path,
                    where=f"{where}, field 'bands'",
                    fix="make the bands' row ranges disjoint",
                )
            if b.start > expect:
                raise ConfigError(
                    f"rows [{expect}, {b.start}) are in no band",
                    path=path,
                    where=f"{where}, field 'bands'",
                    fix=f"add a band for them; the bands must cover 0..{t.rows} exactly",
                )
            expect = b.stop
        if expect != t.rows:
            raise ConfigError(
                f"rows [{expect}, {t.rows}) are in no band",
                path=path,
                where=f"{where}, field 'bands'",
                fix=f"add a band for them; the bands must cover 0..{t.rows} exactly",
            )
        o = t.order
        if o.kind == "hotness" and o.permutation is not None:
            _check_perm(o.permutation, t.rows, path, f"{where}, field 'order.permutation'")
        if o.kind == "hot_set":
            if o.hot_rows is None:
                raise ConfigError(
                    "order kind 'hot_set' needs hot_rows",
                    path=path,
                    where=f"{where}, field 'order.hot_rows'",
                    fix="list the hot row ids",
                )
            _check_subset(o.hot_rows, t.rows, path, f"{where}, field 'order.hot_rows'")
        if o.kind == "index" and (o.permutation is not None or o.hot_rows is not None):
            raise ConfigError(
                "order kind 'index' takes no permutation or hot_rows",
                path=path,
                where=f"{where}, field 'order'",
                fix="set order.kind to 'hotness' or 'hot_set', or drop the row list",
            )
        seen: dict[tuple[str, str], Any] = {}
        for i, b in enumerate(t.bands):
            c = t.band_codec(b)
            prev = seen.setdefault((b.device, b.tier), c)
            if prev != c:
                raise ConfigError(
                    f"band {i} on ({b.device}, {b.tier}) has codec {c.kind!r}, but an earlier band "
                    f"of this table on the same tier has {prev.kind!r} (they share one local space)",
                    path=path,
                    where=f"{where}, field 'bands[{i}].codec'",
                    fix="give bands of one table on one (device, tier) the same codec",
                )
        codec = _checked_codec(t.codec, t.rows, t.dim, path, f"{where}, field 'codec'")
        new_bands = []
        for i, b in enumerate(t.bands):
            if b.codec is not None:
                n = self._band_space(t, b)
                c = _checked_codec(b.codec, n, t.dim, path, f"{where}, field 'bands[{i}].codec'")
                b = b.model_copy(update={"codec": c})
            elif not isinstance(t.codec, RawSpec | QuantSpec) and len(t.bands) > 1:
                n = self._band_space(t, b)
                _checked_codec(t.codec, n, t.dim, path, f"{where}, field 'bands[{i}]'")
            new_bands.append(b)
        return t.model_copy(update={"codec": codec, "bands": new_bands})

    @staticmethod
    def _band_space(t: TablePlan, b: Band) -> int:
        return sum(x.length for x in t.bands if x.device == b.device and x.tier == b.tier)

    def _check_trace(self, header: Any, path: Any) -> None:
        by_name = {s.name: s for s in header.tables}
        for t in self.tables:
            s = by_name.get(t.name)
            if s is None:
                raise ConfigError(
                    f"table {t.name!r} is not in the trace (its tables: "
                    f"{', '.join(list(by_name)[:8])}{'…' if len(by_name) > 8 else ''})",
                    path=path,
                    where=f"table {t.name!r}, field 'name'",
                    fix=f"name a trace table{did_you_mean(t.name, list(by_name))}",
                )
            if s.rows != t.rows or s.dim != t.dim:
                raise ConfigError(
                    f"the plan says {t.rows} rows x dim {t.dim}, the trace {s.rows} x {s.dim}",
                    path=path,
                    where=f"table {t.name!r}, field 'rows'/'dim'",
                    fix="regenerate the plan for this trace",
                )
        missing = [n for n in by_name if n not in set(self.table_names)]
        if missing:
            raise ConfigError(
                f"trace table {missing[0]!r} has no entry in the plan",
                path=path,
                where="field 'tables'",
                fix="add a table entry (with bands) for every trace table",
            )

    # -- views and I/O -------------------------------------------------------------------------
    def sharding_plan_view(self) -> dict[str, dict[str, Any]]:
        """A TorchRec-like ``ShardingPlan`` view: per table sharding_type, compute_kernel, ranks.

        ``table_wise`` when one device owns the table, ``row_wise`` when several do; ranks are
        indices into ``devices``. Kernels: ``quant`` for quantised codecs, ``fused`` for raw rows in
        one fast tier, ``fused_uvm_caching`` when rows also sit in host DRAM, ``key_value`` when some
        sit on NAND; non-TorchRec formats are reported as ``custom:<kind>``. ``shards`` gives each
        band's rank range as (offset, size) rows.
        """
        rank_of = {n: i for i, n in enumerate(self.device_names)}
        out: dict[str, dict[str, Any]] = {}
        for t in self.tables:
            tiers = {b.tier for b in t.bands}
            if t.codec.kind == "quant":
                kernel = "quant"
            elif t.codec.kind != "raw":
                kernel = f"custom:{t.codec.kind}"
            elif "nand" in tiers or "ssd" in tiers:
                kernel = "key_value"
            elif "host_dram" in tiers and len(tiers) > 1:
                kernel = "fused_uvm_caching"
            else:
                kernel = "fused"
            devs = t.devices
            out[t.name] = {
                "sharding_type": "table_wise" if len(devs) == 1 else "row_wise",
                "compute_kernel": kernel,
                "ranks": [rank_of[d] for d in devs],
                "shards": [
                    {"rank": rank_of[b.device], "tier": b.tier, "offset": b.start, "size": b.length}
                    for b in t.sorted_bands()
                ],
            }
        return out

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=1, sort_keys=True)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the plan as JSON (atomically: no partial file on failure)."""
        with atomic_output(path) as tmp:
            tmp.write_text(self.to_json() + "\n")
        return Path(path)

    def nbytes(self) -> dict[tuple[str, str], int]:
        """Stored bytes per (device, tier), from each band's codec."""
        out: dict[tuple[str, str], int] = {}
        for t in self.tables:
            groups: dict[tuple[str, str], list[Band]] = {}
            for b in t.bands:
                groups.setdefault((b.device, b.tier), []).append(b)
            for key, bs in groups.items():
                n = sum(b.length for b in bs)
                out[key] = out.get(key, 0) + t.band_codec(bs[0]).nbytes(n, t.dim)
        return out


def _first_duplicate(xs: list[str]) -> str | None:
    seen: set[str] = set()
    for x in xs:
        if x in seen:
            return x
        seen.add(x)
    return None


def _check_perm(perm: list[int], rows: int, path: Any, where: str) -> None:
    a = np.asarray(perm, dtype=np.int64)
    if a.size != rows or (a.size and (a.min() < 0 or a.max() >= rows)) or np.unique(a).size != rows:
        raise ConfigError(
            f"the permutation is not a permutation of 0..{rows - 1} "
            f"(length {a.size}, {np.unique(a).size} distinct)",
            path=path,
            where=where,
            fix="list every row id exactly once, hottest first",
        )


def _check_subset(ids: list[int], rows: int, path: Any, where: str) -> None:
    a = np.asarray(ids, dtype=np.int64)
    if a.size and (a.min() < 0 or a.max() >= rows):
        raise ConfigError(
            f"hot row ids must be in 0..{rows - 1}", path=path, where=where, fix="fix the ids"
        )
    if np.unique(a).size != a.size:
        raise ConfigError("hot row ids repeat", path=path, where=where, fix="list each id once")


def _checked_codec(codec: Any, rows: int, dim: int, path: Any, where: str) -> Any:
    codec.check(rows, dim, where=where, path=str(path) if path is not None else None)
    return codec.resolved(rows, dim) if isinstance(codec, TTSpec) else codec


# -- loading ------------------------------------------------------------------------------------
def _model_fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Valid keys of the model reached by following ``loc`` from :class:`Plan`."""
    cur: Any = Plan
    for part in loc:
        if isinstance(part, int):
            continue
        models = _models_in(cur)
        nxt = None
        for m in models:
            if part in m.model_fields:
                nxt = m.model_fields[part].annotation
                break
            kind = m.model_fields.get("kind")
            if kind is not None and part in typing.get_args(kind.annotation):
                nxt = m
                break
        if nxt is None:
            break
        cur = nxt
    models = _models_in(cur)
    return sorted({f for m in models for f in m.model_fields})


def _models_in(ann: Any) -> list[type[BaseModel]]:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    out: list[type[BaseModel]] = []
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(ann)[0])
    if origin in (list, tuple, dict, typing.Union, types.UnionType) or origin is not None:
        for a in typing.get_args(ann):
            out.extend(_models_in(a))
    return out


def _loc_text(loc: tuple[Any, ...], data: Any) -> str:
    """'table 'C1', field 'bands[0].tier'' from a pydantic location."""
    parts = list(loc)
    prefix = ""
    if len(parts) >= 2 and parts[0] == "tables" and isinstance(parts[1], int):
        name = None
        with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
            name = data["tables"][parts[1]].get("name")
        prefix = f"table {name!r}, " if name else f"tables[{parts[1]}], "
        parts = parts[2:]
    field = ""
    for p in parts:
        if isinstance(p, int):
            field += f"[{p}]"
        elif p in ("raw", "tt", "quant", "hash", "qr", "cafe", "memrec"):
            continue
        else:
            field += ("." if field else "") + str(p)
    return f"{prefix}field {field!r}" if field else prefix.rstrip(", ") or "top level"


def load_plan(
    path: str | os.PathLike[str],
    hw_device_names: list[str] | None = None,
    trace_header: Any | None = None,
) -> Plan:
    """Read and validate a plan JSON file (see :meth:`Plan.check`); raises ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            "plan file not found", path=p, fix="check the path (plans are .json files)"
        )
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"not valid JSON ({e})", path=p, fix="write the plan as JSON (see docs/functional.md)"
        ) from None
    return plan_from_dict(data, path=p, hw_device_names=hw_device_names, trace_header=trace_header)


def plan_from_dict(
    data: Any,
    path: str | os.PathLike[str] | None = None,
    hw_device_names: list[str] | None = None,
    trace_header: Any | None = None,
) -> Plan:
    """Validate a plan given as a dict (the parsed JSON); raises ConfigError like :func:`load_plan`."""
    if isinstance(data, dict) and data.get("format", "simrec-plan") != "simrec-plan":
        raise ConfigError(
            f"format is {data.get('format')!r}, not 'simrec-plan'",
            path=path,
            where="field 'format'",
            fix="pass a simrec plan file",
        )
    try:
        plan = Plan.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        where = _loc_text(loc, data)
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            valid = _model_fields_at(loc[:-1])
            raise ConfigError(
                f"unknown key {key!r}",
                path=path,
                where=where,
                fix=f"remove it or use a valid key{did_you_mean(key, valid)}; valid keys: "
                + ", ".join(valid),
            ) from None
        if err["type"] == "union_tag_invalid":
            raise ConfigError(
                f"unknown codec kind: {err['msg']}",
                path=path,
                where=where,
                fix="use one of raw, tt, quant, hash, qr, cafe, memrec",
            ) from None
        raise ConfigError(
            f"invalid value: {err['msg']}",
            path=path,
            where=where,
            fix="see docs/functional.md for the plan schema",
        ) from None
    return plan.check(path=path, hw_device_names=hw_device_names, trace_header=trace_header)


def single_device_plan(
    header: Any, device: str = "dev0", tier: str = "dram", codec: Any | None = None
) -> Plan:
    """A plan that puts every table of a trace header on one device tier.

    Each table's codec is ``codec`` if given, else follows the header's element type: float32 ->
    raw fp32, float16 -> raw fp16, int8/int4/int2 -> row-wise quantised (fp32 scale/bias for INT8,
    fp16 below, as FBGEMM stores them); bfloat16 has no codec here and is kept as raw fp32.
    """

    def from_dtype(dtype: str) -> Any:
        if dtype == "float16":
            return RawSpec(dtype="float16")
        if dtype in ("int8", "int4", "int2"):
            bits = int(dtype[3:])
            return QuantSpec(bits=bits, scale_dtype="float32" if bits == 8 else "float16")
        return RawSpec()

    tables = [
        TablePlan(
            name=s.name,
            rows=s.rows,
            dim=s.dim,
            codec=codec or from_dtype(getattr(s, "dtype", "float32")),
            bands=[Band(device=device, tier=tier, rows=(0, s.rows))],
        )
        for s in header.tables
    ]
    return Plan(devices=[DevicePlan(name=device)], tables=tables).check()
