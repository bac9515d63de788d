"""Systems to compare: a hardware YAML (``cpu_dram``/``multi_gpu`` models) or the SCRec model.

A *system spec* is what ``simrec report --hw`` and ``simrec sweep`` take:

* a hardware YAML path or preset name (``hwconfigs/cpu_dram.yaml``, ``multi_gpu``, ``screc``):
  simulated by :func:`simrec.sim.cli.simulate` (``multi_gpu`` when it has GPUs, else ``cpu_dram``),
  priced with its own ``energy:`` blocks; a YAML with ``csd`` devices by
  ``ScrecSystem.from_hw`` and priced like :func:`simrec.sim.cli.screc_energy`;
* ``screc:`` or ``screc:KEY=VALUE,...`` (the built-in SCRec spec: keys of
  :class:`~simrec.sim.systems.screc.ScrecConfig`, e.g. ``screc:n_devices=8,tt_rank=16``; bare
  ``screc`` is the ``hwconfigs/screc.yaml`` preset): the SCRec model with SmartSSDs priced by
  ``simrec/energy/smartssd.yaml`` and, for whole-server energy, the host of the ``cpu_dram``
  preset (``host=PATH`` picks another host YAML).

:func:`run_system` simulates one spec on one trace and estimates its energy and cost.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from simrec.energy import EnergyEstimate, estimate_energy, smartssd_table, table_from_hw
from simrec.errors import ConfigError, did_you_mean

__all__ = [
    "SystemSpec",
    "SystemRun",
    "parse_system",
    "run_system",
    "screc_fields",
    "check_screc_key",
    "build_screc_config",
    "device_cost",
    "PLANNERS",
]

#: Planners each system kind accepts (the sweep's ``planners`` axis).
PLANNERS: dict[str, tuple[str, ...]] = {
    "cpu_dram": ("default",),
    "multi_gpu": ("table", "row"),
    "screc": ("statistical", "index"),
}


def screc_fields() -> list[str]:
    """The top-level :class:`ScrecConfig` fields a spec may set (nested ones via dots, e.g.
    ``device.cores.n_tt``; see :func:`check_screc_key`)."""
    from simrec.sim.systems.screc import ScrecConfig

    return [f.name for f in fields(ScrecConfig)]


def _default_of(cls: Any, name: str) -> Any:
    f = next(f for f in fields(cls) if f.name == name)
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default


def check_screc_key(key: str, where: str = "screc") -> None:
    """Raise a ConfigError (with the closest name) unless ``key`` is a (dotted) ScrecConfig field
    such as ``tt_rank`` or ``device.cores.n_tt``."""
    from simrec.sim.systems.screc import ScrecConfig

    cls: Any = ScrecConfig
    done: list[str] = []
    for part in key.split("."):
        if not is_dataclass(cls):
            raise ConfigError(
                f"SCRec parameter {key!r}: {'.'.join(done)} is a value, not a group",
                where=where,
                fix=f"stop the path at {'.'.join(done)!r}",
            )
        names = [f.name for f in fields(cls)]
        if part not in names:
            at = ".".join(done) or "ScrecConfig"
            raise ConfigError(
                f"unknown SCRec parameter {key!r} (no {part!r} in {at})",
                where=where,
                fix=closest(part, names),
            )
        value = _default_of(cls, part)
        cls = type(value) if is_dataclass(value) else None
        done.append(part)


def build_screc_config(over: dict[str, Any], base: Any = None) -> Any:
    """A :class:`ScrecConfig` with the (dotted) overrides applied to ``base`` (default: the
    ScrecConfig defaults)."""
    from simrec.sim.systems.screc import ScrecConfig

    for k in over:
        check_screc_key(k)

    def build(cls: Any, items: dict[str, Any], base: Any = None) -> Any:
        flat = {k: v for k, v in items.items() if "." not in k}
        nested: dict[str, dict[str, Any]] = {}
        for k, v in items.items():
            if "." in k:
                head, rest = k.split(".", 1)
                nested.setdefault(head, {})[rest] = v
        for head, sub in nested.items():
            cur = getattr(base, head) if base is not None else _default_of(cls, head)
            flat[head] = build(type(cur), sub, cur)
        if base is not None:
            return replace(base, **flat)
        return cls(**flat)

    return build(ScrecConfig, over, base)


def closest(word: str, options: list[str]) -> str:
    """``"did you mean 'x'?"`` text (or the list of valid options)."""
    hint = did_you_mean(word, options, cutoff=0.5, form="did you mean {}?")
    return hint or "valid: " + ", ".join(sorted(options))


@dataclass
class SystemSpec:
    """One system to simulate (see the module docstring)."""

    name: str
    kind: str  # "hw" or "screc"
    hw: Any  # SystemConfig: the system (hw) or the host (screc)
    screc: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    hw_data: dict[str, Any] | None = None  # the raw YAML tree (for sweeps)

    @property
    def sim_kind(self) -> str:
        """``cpu_dram``, ``multi_gpu`` or ``screc``."""
        if self.kind == "screc" or self.hw.devices_of_kind("csd"):
            return "screc"
        return "multi_gpu" if self.hw.devices_of_kind("gpu") else "cpu_dram"


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _screc_overrides(items: dict[str, Any], where: str) -> dict[str, Any]:
    for k in items:
        if k != "host":
            check_screc_key(k, where)
    return dict(items)


def parse_system(arg: str, name: str | None = None) -> SystemSpec:
    """A :class:`SystemSpec` from a ``--hw`` argument."""
    from simrec.hw import load_hw

    if arg.startswith("screc:"):
        over: dict[str, Any] = {}
        body = arg[len("screc:") :]
        for part in filter(None, body.split(",")):
            if "=" not in part:
                raise ConfigError(
                    f"cannot read {part!r} in {arg!r}",
                    where="--hw",
                    fix="write screc:KEY=VALUE,KEY=VALUE (e.g. screc:n_devices=8)",
                )
            k, v = part.split("=", 1)
            over[k.strip()] = _parse_value(v.strip())
        over = _screc_overrides(over, f"--hw {arg}")
        host_arg = over.pop("host", "cpu_dram")
        host = load_hw(str(host_arg))
        default = "screc_builtin" + (f"_{body}" if body else "")
        return SystemSpec(name or default, "screc", host, over, arg)
    cfg = load_hw(arg)
    return SystemSpec(name or cfg.name, "hw", cfg, {}, str(getattr(cfg, "_source", None) or arg))


def device_cost(spec: SystemSpec, prices: dict[str, float] | None) -> tuple[float, str]:
    """(cost, model) of a system: Σ price per device kind when ``prices`` is given, else the
    number of devices (host devices + SmartSSDs for SCRec)."""
    kinds: list[str] = [d.kind for d in spec.hw.devices.values()]
    if spec.kind == "screc":
        n = build_screc_config({k: v for k, v in spec.screc.items() if k != "sharding"}).n_devices
        kinds += ["smartssd"] * int(n)
    if not prices:
        return float(len(kinds)), "device count (no prices given)"
    missing = sorted({k for k in kinds if k not in prices})
    if missing:
        raise ConfigError(
            f"no price for device kind(s) {', '.join(missing)}",
            where="prices",
            fix="give a price for every device kind in the sweep spec's `prices:`",
        )
    return float(sum(prices[k] for k in kinds)), "sum of prices per device (sweep spec)"


@dataclass
class SystemRun:
    """A simulated system: its spec, :class:`SimResult`, energy estimate and cost."""

    spec: SystemSpec
    trace: str
    planner: str
    result: Any
    energy: EnergyEstimate
    cost: float
    cost_model: str

    def model_name(self) -> str:
        """The simulator model that produced the timing numbers."""
        r = self.result
        return f"simrec.sim.systems.{r.kind} ({r.mode} mode, {r.load} load)"


def run_system(
    spec: SystemSpec,
    trace: str | Path,
    planner: str = "default",
    mode: str = "fast",
    model: str | None = None,
    load: Any | None = None,
    prices: dict[str, float] | None = None,
) -> SystemRun:
    """Simulate ``spec`` on ``trace`` with ``planner``; estimate energy and cost."""
    from simrec.sim.cli import simulate
    from simrec.trace.format import read_trace
    from simrec.workloads.dlrm import get_model

    kind = spec.sim_kind
    ok = PLANNERS[kind]
    if planner == "default":
        planner = ok[0]
    if planner not in ok:
        raise ConfigError(
            f"planner {planner!r} does not apply to {spec.name} ({kind})",
            where="planners",
            fix=f"{kind} takes: {', '.join(ok)}",
        )
    if kind == "screc" and spec.kind == "hw":  # a hardware YAML with csd devices
        res, est = _run_screc_yaml(spec, trace, planner, mode, model, load)
    elif kind == "screc":
        from simrec.sim.systems.screc import ScrecSystem

        kw = {k: v for k, v in spec.screc.items()}
        kw["sharding"] = planner
        try:
            cfg = build_screc_config(kw)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"bad SCRec parameters {kw}: {e}", where=spec.source, fix="check the values"
            ) from None
        reader = read_trace(trace)
        m = get_model(model) if model else None
        res = ScrecSystem(cfg, mode=mode, model=m, name=spec.name).simulate(  # type: ignore[arg-type]
            reader, reader.header, load, source=str(trace)
        )
        table = smartssd_table(cfg.n_devices).merged(table_from_hw(spec.hw))
        est = estimate_energy(res, table, spec.hw, n_devices=cfg.n_devices)
    else:
        sharding = planner if kind == "multi_gpu" else "table"
        res = simulate(spec.hw, trace, mode=mode, model=model, sharding=sharding, load=load)
        res.system = spec.name
        est = estimate_energy(res, table_from_hw(spec.hw), spec.hw)
    cost, cost_model = device_cost(spec, prices)
    return SystemRun(spec, str(trace), planner, res, est, cost, cost_model)


def _run_screc_yaml(
    spec: SystemSpec, trace: str | Path, planner: str, mode: str, model: str | None, load: Any
) -> tuple[Any, EnergyEstimate]:
    """SCRec from a hardware YAML with ``csd`` devices (``ScrecSystem.from_hw``), with the
    spec's (dotted) ScrecConfig overrides; energy as :func:`simrec.sim.cli.screc_energy`."""
    from simrec.sim.cli import screc_energy
    from simrec.sim.systems.screc import ScrecSystem
    from simrec.trace.format import read_trace
    from simrec.workloads.dlrm import get_model

    over = {**spec.screc, "sharding": planner}
    if "n_devices" in over:
        raise ConfigError(
            "n_devices of an SCRec hardware YAML is its number of csd devices",
            path=spec.source,
            where="screc.n_devices",
            fix="add or remove csd devices in the YAML (or use the screc:n_devices=N spec)",
        )
    for k in over:
        check_screc_key(k, spec.source)
    top = {k: v for k, v in over.items() if "." not in k}
    nested = {k: v for k, v in over.items() if "." in k}
    m = get_model(model) if model else None
    ss = ScrecSystem.from_hw(spec.hw, mode=mode, model=m, overrides=top, name=spec.name)  # type: ignore[arg-type]
    if nested:
        ss.cfg = build_screc_config(nested, ss.cfg)
    reader = read_trace(trace)
    res = ss.simulate(reader, reader.header, load, source=str(trace))
    return res, screc_energy(res, spec.hw, ss.cfg.n_devices)
