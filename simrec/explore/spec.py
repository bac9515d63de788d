"""Sweep specs: which systems, traces, planners and parameter values to simulate.

A spec is a YAML file::

    name: screc-design-space
    systems: ["screc:", hwconfigs/cpu_dram.yaml] # --hw specs; or a mapping NAME: SPEC
    traces: [../traces/criteo_sample.trc]        # relative to the spec file
    planners: [statistical, index]               # optional; each system takes the ones it knows
    parameters:                                  # dotted path -> list of values
      screc.n_devices: [1, 2, 4]                 # ScrecConfig fields for screc systems
      screc.tt_rank: [8, 16]
      screc.device.cores.n_tt: [1, 2]            # nested ScrecConfig fields (core mix)
      devices.dram*.channels: [4, 8]             # into a hardware YAML (fnmatch per level)
      load.query_size: [64, 128]                 # samples per query (every system)
    sample: grid                                 # or {kind: random, n: 20, seed: 0}
    mode: fast                                   # simulator mode
    model: null                                  # DLRM model for the dense stage
    max_batches: null                            # simulate only the first N batches
    prices: {cpu: 10000, dram: 4000, ...}        # optional, per device kind (cost axis)

:func:`load_spec` checks every key (unknown keys and parameters get the closest valid name) and
:func:`expand_points` lists the points: per system, the grid over the parameters that apply to it,
times the traces, times the planners it accepts; ``sample: random`` draws ``n`` of them with a
seeded generator (no repeats).
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simrec.errors import ConfigError
from simrec.report.systems import PLANNERS, SystemSpec, check_screc_key, closest, parse_system

#: Load parameters a sweep may vary (``load.<key>``) for every system: ``query_size`` re-cuts the
#: trace's samples into queries of that many samples (the batch-size axis; at most the trace's
#: batch size), ``inflight`` is the number of queries in flight (throughput load).
LOAD_KEYS = ("query_size", "inflight")

__all__ = [
    "LOAD_KEYS",
    "SweepSpec",
    "Point",
    "load_spec",
    "parse_spec",
    "expand_points",
    "apply_hw_params",
]

_TOP_KEYS = [
    "name",
    "systems",
    "traces",
    "planners",
    "parameters",
    "sample",
    "mode",
    "model",
    "max_batches",
    "prices",
]


@dataclass
class SweepSpec:
    """A checked sweep spec."""

    name: str
    systems: list[SystemSpec]
    system_args: list[str]
    traces: list[str]
    planners: list[str] | None
    parameters: dict[str, list[Any]]
    sample: dict[str, Any]
    mode: str = "fast"
    model: str | None = None
    max_batches: int | None = None
    prices: dict[str, float] | None = None
    path: str = ""
    hw_trees: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Point:
    """One simulation of a sweep (picklable; ships to worker processes)."""

    system: str
    system_arg: str
    kind: str  # "hw" or "screc"
    trace: str
    planner: str
    params: tuple[tuple[str, Any], ...]
    mode: str
    model: str | None
    max_batches: int | None
    prices: tuple[tuple[str, float], ...] | None
    hw_yaml: str | None  # the system's hardware YAML text with the params applied

    @property
    def point_id(self) -> str:
        """A stable id: the hash of what determines the result."""
        key = json.dumps(
            [
                self.system,
                self.system_arg,
                self.trace,
                self.planner,
                list(self.params),
                self.mode,
                self.model,
                self.max_batches,
                list(self.prices or ()),
                hashlib.sha256((self.hw_yaml or "").encode()).hexdigest(),
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]


def _err(msg: str, path: str, where: str, fix: str) -> ConfigError:
    return ConfigError(msg, path=path or None, where=where, fix=fix)


def _match(tree: Any, parts: list[str], prefix: str, path: str, pname: str) -> list[list[str]]:
    """Concrete key paths in ``tree`` matching the dotted pattern (the leaf may be new)."""
    if not parts:
        return [[]]
    head, rest = parts[0], parts[1:]
    if not isinstance(tree, dict):
        raise _err(
            f"parameter {pname!r}: {prefix or 'the file'} is not a mapping",
            path,
            f"parameters.{pname}",
            "point the path at a key of a mapping",
        )
    keys = [k for k in tree if fnmatch.fnmatchcase(str(k), head)]
    if not keys:
        if not rest and not any(c in head for c in "*?["):
            return [[head]]  # a leaf the file leaves at its default; the schema checks it
        where = f"{prefix}." if prefix else ""
        raise _err(
            f"parameter {pname!r}: no key {head!r} under {prefix or 'the top level'}",
            path,
            f"parameters.{pname}",
            f"{closest(head, [str(k) for k in tree])} (valid keys under {where or 'top'}: "
            + ", ".join(sorted(str(k) for k in tree))
            + ")",
        )
    out = []
    for k in keys:
        for tail in _match(tree[k], rest, f"{prefix}.{k}" if prefix else str(k), path, pname):
            out.append([str(k), *tail])
    return out


def apply_hw_params(tree: dict[str, Any], params: dict[str, Any], spec_path: str = "") -> dict:
    """A copy of the YAML ``tree`` with each dotted (fnmatch) path set to its value."""
    t = copy.deepcopy(tree)
    for pname, value in params.items():
        for keys in _match(t, pname.split("."), "", spec_path, pname):
            node = t
            for k in keys[:-1]:
                node = node[k]
            node[keys[-1]] = value
    return t


def _hw_text(tree: dict[str, Any]) -> str:
    return yaml.safe_dump(tree, sort_keys=False)


def parse_spec(doc: Any, path: str = "", base: Path | None = None) -> SweepSpec:
    """Check a spec mapping (see the module docstring)."""
    base = base or Path.cwd()
    if not isinstance(doc, dict):
        raise _err("a sweep spec is a YAML mapping", path, "top level", "see docs/cli.md#sweep")
    for k in doc:
        if k not in _TOP_KEYS:
            raise _err(f"unknown key {k!r}", path, str(k), closest(str(k), _TOP_KEYS))
    sys_doc = doc.get("systems")
    if not sys_doc:
        raise _err("no systems", path, "systems", 'list --hw specs, e.g. ["screc:", cpu_dram]')
    pairs: list[tuple[str | None, str]]
    if isinstance(sys_doc, dict):
        pairs = [(str(n), str(s)) for n, s in sys_doc.items()]
    elif isinstance(sys_doc, list):
        for s in sys_doc:
            if not isinstance(s, str):
                raise _err(
                    f"system entry {s!r} is not a string",
                    path,
                    "systems",
                    'quote it: a bare `screc:` in YAML is a mapping, write "screc:"',
                )
        pairs = [(None, str(s)) for s in sys_doc]
    else:
        raise _err("systems must be a list or a mapping", path, "systems", "e.g. [screc]")

    def resolve(arg: str) -> str:
        if arg.startswith("screc:") or Path(arg).is_absolute():
            return arg
        cand = base / arg
        return str(cand) if cand.exists() else arg

    pairs = [(n, resolve(a)) for n, a in pairs]
    systems = []
    for n, a in pairs:
        try:
            systems.append(parse_system(a, n))
        except ConfigError as e:
            raise _err(f"system {a!r}: {e}", path, "systems", e.fix or "check the system") from None
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise _err("two systems have the same name", path, "systems", "name them: {NAME: SPEC}")
    traces = []
    for t in doc.get("traces") or []:
        p = Path(t) if Path(t).is_absolute() else base / t
        if not p.is_file():
            raise _err(f"trace {t!r} not found", path, "traces", f"looked for {p}")
        traces.append(str(p))
    if not traces:
        raise _err("no traces", path, "traces", "list at least one .trc file")
    planners = doc.get("planners")
    if planners is not None:
        planners = [str(p) for p in planners]
        known = sorted({p for ps in PLANNERS.values() for p in ps} | {"default"})
        for p in planners:
            if p not in known:
                raise _err(f"unknown planner {p!r}", path, "planners", closest(p, known))
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise _err("parameters must be a mapping", path, "parameters", "path: [values]")
    trees = {s.name: yaml.safe_load(s.hw.to_yaml()) for s in systems if s.kind == "hw"}
    for pname, values in params.items():
        if not isinstance(values, list) or not values:
            raise _err(
                f"parameter {pname!r} needs a non-empty list of values",
                path,
                f"parameters.{pname}",
                "write e.g. [1, 2, 4]",
            )
        if pname.startswith("load."):
            f = pname[len("load.") :]
            if f not in LOAD_KEYS:
                raise _err(
                    f"unknown load parameter {f!r}",
                    path,
                    f"parameters.{pname}",
                    closest(f, list(LOAD_KEYS)) + " (load.query_size, load.inflight)",
                )
            if not all(isinstance(v, int) and v >= 1 for v in values):
                raise _err(
                    f"{pname} takes positive integers",
                    path,
                    f"parameters.{pname}",
                    "e.g. [64, 128, 256]",
                )
            continue
        if pname.startswith("screc."):
            f = pname[len("screc.") :]
            try:
                check_screc_key(f, f"parameters.{pname}")
            except ConfigError as e:
                raise _err(
                    e.message,
                    path,
                    f"parameters.{pname}",
                    (e.fix or "") + " (screc.<field of ScrecConfig>, dotted for nested fields)",
                ) from None
            if not any(s.sim_kind == "screc" for s in systems):
                raise _err(
                    f"parameter {pname!r} applies to no system (no screc system)",
                    path,
                    f"parameters.{pname}",
                    "add a screc system or drop the parameter",
                )
            continue
        applies = [n for n, t in trees.items() if _applies(t, pname)]
        if not applies:
            if not trees:
                raise _err(
                    f"parameter {pname!r} applies to no system (no hardware YAML system)",
                    path,
                    f"parameters.{pname}",
                    "hardware paths start with devices. or links.; SCRec ones with screc.",
                )
            first = next(iter(trees.values()))
            _match(first, pname.split("."), "", path, pname)  # raises with the closest key
        for n in applies:  # a key the file does not have: the schema says whether it exists
            if not _leaf_exists(trees[n], pname):
                s = next(x for x in systems if x.name == n)
                _validate_hw(trees[n], {pname: values[0]}, s, path)
    sample = doc.get("sample", "grid")
    if sample == "grid" or sample is None:
        sample = {"kind": "grid"}
    if not isinstance(sample, dict) or sample.get("kind") not in ("grid", "random"):
        raise _err(
            f"cannot read sample {sample!r}",
            path,
            "sample",
            "write `grid` or {kind: random, n: 20, seed: 0}",
        )
    if sample["kind"] == "random" and not (isinstance(sample.get("n"), int) and sample["n"] > 0):
        raise _err("random sampling needs n > 0", path, "sample.n", "e.g. {kind: random, n: 20}")
    mode = str(doc.get("mode", "fast"))
    if mode not in ("fast", "fine"):
        raise _err(f"unknown mode {mode!r}", path, "mode", "use fast or fine")
    prices = doc.get("prices")
    return SweepSpec(
        name=str(doc.get("name") or Path(path).stem or "sweep"),
        systems=systems,
        system_args=[a for _, a in pairs],
        traces=traces,
        planners=planners,
        parameters={k: list(v) for k, v in params.items()},
        sample=sample,
        mode=mode,
        model=doc.get("model"),
        max_batches=doc.get("max_batches"),
        prices={str(k): float(v) for k, v in prices.items()} if prices else None,
        path=path,
        hw_trees=trees,
    )


def _applies(tree: dict[str, Any], pname: str) -> bool:
    try:
        _match(tree, pname.split("."), "", "", pname)
        return True
    except ConfigError:
        return False


def _leaf_exists(tree: dict[str, Any], pname: str) -> bool:
    parts = pname.split(".")
    for keys in _match(tree, parts, "", "", pname):
        node: Any = tree
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                return False
            node = node[k]
    return True


def _validate_hw(tree: dict, params: dict[str, Any], s: SystemSpec, path: str) -> Any:
    from simrec.hw import loads_hw

    text = _hw_text(apply_hw_params(tree, params, path))
    try:
        return loads_hw(text, f"{s.source} with {params}")
    except ConfigError as e:
        pname = next(iter(params))
        raise _err(
            f"parameter {pname!r} = {params[pname]!r} makes {s.name} invalid: {e.message}",
            path,
            f"parameters.{pname}",
            e.fix or "check the path and the value's unit",
        ) from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep spec file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("sweep spec not found", path=p, fix="give a YAML file")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(
            f"not valid YAML: {getattr(e, 'problem', e)}",
            path=p,
            where=f"line {mark.line + 1}" if mark else None,
            fix="fix the YAML syntax",
        ) from None
    return parse_spec(doc, str(p), p.parent)


def expand_points(spec: SweepSpec) -> list[Point]:
    """All points of the spec, in a fixed order (then sampled if ``sample`` is random)."""
    pts: list[Point] = []
    for s, arg in zip(spec.systems, spec.system_args, strict=True):
        kind = s.sim_kind
        if spec.planners is None:
            planners = [PLANNERS[kind][0]]
        else:
            planners = [p if p != "default" else PLANNERS[kind][0] for p in spec.planners]
            planners = list(dict.fromkeys(p for p in planners if p in PLANNERS[kind]))
            if not planners:
                planners = [PLANNERS[kind][0]]
        loads = [k for k in spec.parameters if k.startswith("load.")]
        if s.kind == "screc":
            names = [k for k in spec.parameters if k.startswith("screc.")] + loads
        else:
            tree = spec.hw_trees[s.name]
            names = [
                k
                for k in spec.parameters
                if not k.startswith(("screc.", "load.")) and _applies(tree, k)
            ]
            if kind == "screc":  # a hardware YAML with csd devices takes screc.* too
                names += [k for k in spec.parameters if k.startswith("screc.")]
            names += loads
        for combo in itertools.product(*(spec.parameters[k] for k in names)):
            params = tuple(zip(names, combo, strict=True))
            hw_yaml = None
            if s.kind == "hw":
                hw_params = {k: v for k, v in params if not k.startswith(("load.", "screc."))}
                hw_yaml = _hw_text(apply_hw_params(spec.hw_trees[s.name], hw_params, spec.path))
            for trace in spec.traces:
                for pl in planners:
                    pts.append(
                        Point(
                            system=s.name,
                            system_arg=arg,
                            kind=s.kind,
                            trace=trace,
                            planner=pl,
                            params=params,
                            mode=spec.mode,
                            model=spec.model,
                            max_batches=spec.max_batches,
                            prices=tuple(sorted(spec.prices.items())) if spec.prices else None,
                            hw_yaml=hw_yaml,
                        )
                    )
    if spec.sample["kind"] == "random":
        n = min(int(spec.sample["n"]), len(pts))
        rng = np.random.default_rng(int(spec.sample.get("seed", 0)))
        keep = np.sort(rng.choice(len(pts), size=n, replace=False))
        pts = [pts[i] for i in keep]
    return pts
