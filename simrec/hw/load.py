"""Read a hardware YAML file into a :class:`~simrec.hw.schema.SystemConfig`, with precise errors.

The loader keeps the line and column of every key (from PyYAML's node marks), so a problem is
reported as ``file: field devices.dram0.timing.tRCD (line 23, column 7): <what>. Fix: <how>.``.
It also resolves ``extends:`` (Ramulator-style presets with overrides):

* ``extends: base.yaml`` (a path relative to the file, or the name of a preset in ``hwconfigs/``)
  loads the base first (recursively; cycles are an error) and deep-merges this file over it:
  mappings merge key by key, any other value (numbers, strings, lists) replaces the base's, and
  ``null`` deletes the key from the base (e.g. ``devices: {gpu7: null}`` drops a device).
* A value inherited from a base file is reported at its place in the base file.

YAML anchors, aliases and ``<<`` merge keys work as usual; duplicate keys are an error.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

from simrec.errors import ConfigError, did_you_mean, did_you_mean_or_list
from simrec.hw.schema import (
    FieldError,
    SystemConfig,
    describe_field_kind,
    example_for,
)

__all__ = ["load_hw", "loads_hw", "preset_dir", "preset_path", "list_presets"]

Mark = tuple[str, int, int]  # (file, line 1-based, column 1-based)
Path_ = tuple[Any, ...]


def preset_dir() -> Path:
    """The folder holding the bundled presets (``hwconfigs/`` at the repository root)."""
    env = os.environ.get("SIMREC_HWCONFIGS")
    if env:
        return Path(env)
    # A source checkout (editable install) has hwconfigs/ beside the package; an installed wheel
    # does not, so fall back to ./hwconfigs of the current directory (e.g. a clone's root).
    beside = Path(__file__).resolve().parents[2] / "hwconfigs"
    return beside if beside.is_dir() else Path.cwd() / "hwconfigs"


def list_presets() -> list[str]:
    """Names of the bundled presets (``["cpu_dram", "multi_gpu", ...]``)."""
    d = preset_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def preset_path(name: str) -> Path:
    """Path of a bundled preset by name (with or without ``.yaml``)."""
    stem = name[:-5] if name.endswith(".yaml") else name
    p = preset_dir() / f"{stem}.yaml"
    if not p.is_file():
        raise ConfigError(
            f"there is no hardware preset called {name!r}",
            path=name,
            fix=_suggest(stem, list_presets(), "use a YAML file path or one of the presets"),
        )
    return p


def _resolve_arg(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_file():
        return p
    short = not p.suffix or (p.suffix == ".yaml" and len(p.parts) == 1)
    if short and (preset_dir() / f"{p.stem}.yaml").is_file():
        return preset_dir() / f"{p.stem}.yaml"
    if p.exists():
        raise ConfigError("is not a file", path=p, fix="give the path of a hardware YAML file")
    raise ConfigError(
        "the hardware config file does not exist",
        path=p,
        fix=_suggest(p.stem, list_presets(), "check the path, or name a preset"),
    )


def _suggest(word: object, options: Any, otherwise: str) -> str:
    """This module's suggestion: the closest option at similarity 0.5, else (and after it) the
    options, the first 30 of them (:func:`~simrec.errors.did_you_mean_or_list`)."""
    return did_you_mean_or_list(word, options, otherwise, cutoff=0.5, limit=30)


def load_hw(path: str | os.PathLike[str]) -> SystemConfig:
    """Load and validate a hardware YAML file (or a bundled preset by name).

    Raises :class:`~simrec.errors.ConfigError` naming the file, the field path, the line and the
    fix for malformed YAML, unknown keys, missing units, bad values and dangling references.
    """
    p = _resolve_arg(path)
    data, marks = _load_tree(p, ())
    return _validate(data, marks, str(p))


def loads_hw(text: str, name: str = "<string>") -> SystemConfig:
    """Like :func:`load_hw` for YAML text (``extends`` resolves against the current folder)."""
    data, marks = _parse_text(text, name)
    data, marks = _apply_extends(data, marks, Path(name), Path.cwd(), ())
    return _validate(data, marks, name)


# --------------------------------------------------------------------------------------------------
# YAML with marks
# --------------------------------------------------------------------------------------------------


def _parse_text(text: str, fname: str) -> tuple[Any, dict[Path_, Mark]]:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
            what = " ".join(x for x in (e.context, e.problem) if x) or "malformed YAML"
            raise ConfigError(
                f"the file is not valid YAML ({what})",
                path=fname,
                where=where,
                fix="fix the YAML syntax at that place (indentation, a missing ':' or quote)",
            ) from None
        except yaml.YAMLError as e:
            raise ConfigError(
                f"the file is not valid YAML ({e})", path=fname, fix="fix the YAML syntax"
            ) from None
        if node is None:
            raise ConfigError(
                "the file is empty",
                path=fname,
                fix="write a system config (name, devices, links); see docs/hw-yaml.md",
            )
        _check_duplicates(node, fname)
        try:
            data = loader.construct_document(node)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            raise ConfigError(
                f"the file is not valid YAML ({e.problem})",
                path=fname,
                where=f"line {mark.line + 1}, column {mark.column + 1}" if mark else None,
                fix="fix the YAML at that place",
            ) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(
            f"the top level is a {type(data).__name__}, not a mapping",
            path=fname,
            where="line 1",
            fix="start the file with keys such as 'name:', 'devices:' and 'links:'",
        )
    marks: dict[Path_, Mark] = {(): (fname, node.start_mark.line + 1, node.start_mark.column + 1)}
    _collect_marks(node, (), marks, fname)
    return data, marks


def _check_duplicates(node: Any, fname: str) -> None:
    import yaml

    seen_nodes: set[int] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if id(n) in seen_nodes:
            continue
        seen_nodes.add(id(n))
        if isinstance(n, yaml.MappingNode):
            keys: dict[str, Any] = {}
            for k, v in n.value:
                if k.tag == "tag:yaml.org,2002:merge":
                    stack.append(v)
                    continue
                if isinstance(k, yaml.ScalarNode):
                    if k.value in keys:
                        first = keys[k.value]
                        raise ConfigError(
                            f"the key {k.value!r} appears twice in one mapping (first on line "
                            f"{first.start_mark.line + 1})",
                            path=fname,
                            where=f"line {k.start_mark.line + 1}, column {k.start_mark.column + 1}",
                            fix="keep one of them",
                        )
                    keys[k.value] = k
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)


def _collect_marks(node: Any, path: Path_, out: dict[Path_, Mark], fname: str) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):  # already flattened by construct_document
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            if key is None:
                continue
            p = path + (key,)
            out[p] = (fname, k.start_mark.line + 1, k.start_mark.column + 1)
            _collect_marks(v, p, out, fname)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            p = path + (i,)
            out[p] = (fname, v.start_mark.line + 1, v.start_mark.column + 1)
            _collect_marks(v, p, out, fname)


# --------------------------------------------------------------------------------------------------
# extends
# --------------------------------------------------------------------------------------------------


def _load_tree(path: Path, stack: tuple[Path, ...]) -> tuple[dict, dict[Path_, Mark]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            "the file is not UTF-8 text", path=path, fix="save it as UTF-8 YAML"
        ) from None
    except OSError as e:
        raise ConfigError(
            f"cannot read the file ({e.strerror})", path=path, fix="check the path"
        ) from None
    data, marks = _parse_text(text, str(path))
    return _apply_extends(data, marks, path, path.parent, stack)


def _apply_extends(
    data: dict, marks: dict[Path_, Mark], path: Path, base_dir: Path, stack: tuple[Path, ...]
) -> tuple[dict, dict[Path_, Mark]]:
    if "extends" not in data:
        return data, marks
    ext = data.pop("extends")
    fname, line, col = marks.get(("extends",), (str(path), 0, 0))
    where = f"field extends (line {line}, column {col})"
    if not isinstance(ext, str) or not ext.strip():
        raise ConfigError(
            "extends must be one file name",
            path=fname,
            where=where,
            fix="write e.g. 'extends: cpu_dram.yaml' (relative to this file) or a preset name",
        )
    cand = (base_dir / ext).resolve()
    if not cand.is_file():
        stem = ext[:-5] if ext.endswith(".yaml") else ext
        if "/" not in ext and (preset_dir() / f"{stem}.yaml").is_file():
            cand = (preset_dir() / f"{stem}.yaml").resolve()
        else:
            raise ConfigError(
                f"extends names {ext!r}, which does not exist (looked in {base_dir} and the "
                "bundled presets)",
                path=fname,
                where=where,
                fix=_suggest(
                    stem, list_presets(), "give a path relative to this file, or a preset"
                ),
            )
    me = path.resolve() if path.exists() else path
    chain = stack + (me,)
    if cand in chain:
        cycle = " -> ".join(p.name for p in chain[chain.index(cand) :]) + f" -> {cand.name}"
        raise ConfigError(
            f"extends makes a cycle ({cycle})",
            path=fname,
            where=where,
            fix="remove the extends that points back to a file that extends this one",
        )
    base, base_marks = _load_tree(cand, chain)
    marks = {k: v for k, v in marks.items() if k != ("extends",)}
    return _merge(base, data, base_marks, marks, ())


def _merge(
    base: Any, over: Any, bmarks: dict[Path_, Mark], omarks: dict[Path_, Mark], path: Path_
) -> tuple[Any, dict[Path_, Mark]]:
    """Deep-merge ``over`` onto ``base`` (mappings merge, others replace, None deletes)."""
    out_marks = dict(bmarks)

    def drop(prefix: Path_) -> None:
        for k in [k for k in out_marks if k[: len(prefix)] == prefix and len(k) > len(prefix)]:
            del out_marks[k]

    def rec(b: Any, o: Any, p: Path_) -> Any:
        if isinstance(b, dict) and isinstance(o, dict):
            res = dict(b)
            for k, v in o.items():
                kp = p + (k,)
                if v is None:
                    res.pop(k, None)
                    drop(kp)
                    out_marks.pop(kp, None)
                    continue
                if k in res and isinstance(res[k], dict) and isinstance(v, dict):
                    if kp in omarks:
                        out_marks[kp] = omarks[kp]
                    res[k] = rec(res[k], v, kp)
                else:
                    drop(kp)
                    for mk, mv in omarks.items():
                        if mk[: len(kp)] == kp:
                            out_marks[mk] = mv
                    res[k] = v
            return res
        drop(p)
        for mk, mv in omarks.items():
            if mk[: len(p)] == p:
                out_marks[mk] = mv
        return o

    return rec(base, over, path), out_marks


# --------------------------------------------------------------------------------------------------
# validation and error reporting
# --------------------------------------------------------------------------------------------------


def _normalise_lists(data: dict, marks: dict[Path_, Mark]) -> None:
    """Turn list-form ``devices``/``links`` into mappings, moving the marks along."""
    for section in ("devices", "links"):
        items = data.get(section)
        if not isinstance(items, list):
            continue
        if not all(isinstance(it, dict) for it in items):
            return  # let the schema report it
        names = [
            it.get("name", f"link{i}" if section == "links" else None) for i, it in enumerate(items)
        ]
        if any(n is None or not isinstance(n, str) for n in names) or len(set(names)) != len(names):
            return  # let the schema report it
        new: dict[str, Any] = {}
        for i, (n, it) in enumerate(zip(names, items, strict=True)):
            it = {k: v for k, v in it.items() if k != "name"}
            new[n] = it
            for mk in [mk for mk in marks if mk[:2] == (section, i)]:
                marks[(section, n) + mk[2:]] = marks.pop(mk)
        data[section] = new


def _validate(data: dict, marks: dict[Path_, Mark], fname: str) -> SystemConfig:
    from pydantic import ValidationError

    _normalise_lists(data, marks)
    try:
        cfg = SystemConfig.model_validate(data)
    except ValidationError as e:
        raise _to_config_error(e, data, marks, fname) from None
    except FieldError as e:
        path, line = _place(e.loc, marks, fname)
        raise ConfigError(e.message, path=path, where=line, fix=e.fix) from None
    cfg._source = fname
    return cfg


def _place(loc: Path_, marks: dict[Path_, Mark], fname: str) -> tuple[str, str]:
    """(file, "field a.b.c (line L, column C)") for a field path, using the closest known mark."""
    from simrec.hw.schema import _path_str

    text = "field " + _path_str(tuple(loc))
    for n in range(len(loc), -1, -1):
        m = marks.get(tuple(loc[:n]))
        if m:
            f, line, col = m
            if n == len(loc):
                text += f" (line {line}, column {col})"
            else:
                text += f" (in the block at line {line})"
            return f, text
    return fname, text


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    import types

    return get_origin(tp) in (typing.Union, types.UnionType)


def _resolve(loc: Path_) -> tuple[Path_, Any, Any]:
    """Strip pydantic's union tags from ``loc``; return (clean path, model class, field annotation)
    where the class is the model that holds the last element (None if unknown)."""
    from pydantic import BaseModel

    tp: Any = SystemConfig
    clean: list[Any] = []
    owner: Any = None
    ann: Any = None
    i = 0
    while i < len(loc):
        el = loc[i]
        tp = _unwrap(tp)
        if _is_union(tp):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
            picked = None
            for a in args:
                a2 = _unwrap(a)
                f = getattr(a2, "model_fields", {}).get("kind")
                if f is not None and el in get_args(f.annotation):
                    picked = a2
            if picked is not None:
                tp = picked
                i += 1
                continue
            owner, ann = None, None
            clean.append(el)
            tp = None
            i += 1
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            owner = tp
            f = tp.model_fields.get(el) if isinstance(el, str) else None
            ann = f.annotation if f is not None else None
            if f is not None:
                ann = _field_annotation(tp, el)
            clean.append(el)
            tp = ann
            i += 1
            continue
        origin = get_origin(tp)
        if origin is dict:
            owner, ann = None, None
            clean.append(el)
            tp = get_args(tp)[1]
        elif origin in (list, tuple):
            owner, ann = None, None
            clean.append(el)
            args = get_args(tp)
            tp = args[0] if args else None
        else:
            owner, ann = None, None
            clean.append(el)
            tp = None
        i += 1
    return tuple(clean), owner, ann


def _field_annotation(model: Any, name: str) -> Any:
    f = model.model_fields[name]
    if f.metadata:
        return typing.Annotated[(f.annotation, *f.metadata)]
    return f.annotation


def _raw_at(data: Any, path: Path_) -> Any:
    for el in path:
        if (
            isinstance(data, dict)
            and el in data
            or isinstance(data, list)
            and isinstance(el, int)
            and el < len(data)
        ):
            data = data[el]
        else:
            return None
    return data


def _describe(err: dict, data: Any) -> tuple[Path_, str, str | None]:
    """(clean path, message, fix) for one pydantic error dict."""
    loc = tuple(err["loc"])
    typ = err["type"]
    ctx = err.get("ctx") or {}
    clean, owner, ann = _resolve(loc)
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    fix: str | None = None
    kind = describe_field_kind(ann) if ann is not None else None
    if typ == "extra_forbidden":
        key = clean[-1]
        parent = owner
        valid = list(parent.model_fields) if parent is not None else []
        msg = f"unknown key {key!r}"
        if parent is not None:
            msg += f" for a {_model_word(parent)}"
        raw_parent = _raw_at(data, clean[:-1])
        present = set(raw_parent) if isinstance(raw_parent, dict) else set()
        absent = [k for k in valid if k not in present]
        # a typo usually stands for a key that is absent: prefer those
        required = [k for k in absent if parent.model_fields[k].is_required()] if parent else []
        form = "did you mean {}? "
        hint = did_you_mean(key, required, cutoff=0.5, form=form)
        hint = hint or did_you_mean(key, absent, cutoff=0.5, form=form)
        if hint:
            fix = f"{hint}(valid keys here: {', '.join(valid)})"
        else:
            fix = _suggest(key, valid, "valid keys here") if valid else "remove it"
            home = _nested_home(parent, str(key)) if parent is not None else None
            if home:
                fix = f"move it under '{home}:' ({fix})"
    elif typ == "missing":
        key = clean[-1]
        msg = f"the required key {key!r} is missing"
        fix = f"add '{key}: {example_for(kind).strip(chr(39))}'" if kind else f"add '{key}: ...'"
    elif typ == "config":
        msg = ctx.get("message", msg)
        fix = ctx.get("fix") or None
    elif typ in ("greater_than", "greater_than_equal"):
        shown = _raw_at(data, clean)
        what = "positive" if typ == "greater_than" else "zero or more"
        msg = f"must be {what}, got {shown!r}"
        if kind in ("bandwidth", "bytes", "frequency", "transfer_rate", "flop_rate"):
            fix = f"give a positive {kind.replace('_', ' ')}, e.g. {example_for(kind)}"
        else:
            fix = "use a value above zero" if typ == "greater_than" else "use zero or more"
    elif typ in ("less_than_equal", "less_than"):
        shown = _raw_at(data, clean)
        msg = f"must be at most {ctx.get('le', ctx.get('lt'))}, got {shown!r}"
        fix = "efficiencies and fractions are written as numbers in (0, 1], e.g. 0.8 for 80%"
    elif typ == "union_tag_invalid":
        tags = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",")]
        got = ctx.get("tag")
        msg = f"unknown kind {got!r}"
        fix = _suggest(str(got), tags, "use one of the kinds")
    elif typ == "union_tag_not_found":
        parent = _raw_at(data, clean[:-1]) if clean else None
        expected = _kinds_for(clean)
        msg = "this entry has no 'kind'"
        if isinstance(parent, dict):
            pass
        fix = f"add 'kind: ...' with one of: {', '.join(expected)}"
    elif typ == "literal_error":
        msg = f"got {_raw_at(data, clean)!r}; expected {ctx.get('expected')}"
        fix = f"use one of {ctx.get('expected')}"
    elif typ in ("int_type", "int_parsing", "int_from_float"):
        msg = f"expected a whole number (a count, no unit), got {_raw_at(data, clean)!r}"
        fix = "write a plain integer, e.g. 8"
    elif typ in ("float_type", "float_parsing"):
        msg = f"expected a plain number, got {_raw_at(data, clean)!r}"
        fix = "write a number without a unit"
    elif typ in ("dict_type", "model_type", "model_attributes_type"):
        msg = f"expected a mapping of keys, got {type(_raw_at(data, clean)).__name__}"
        fix = "indent the keys of this block under it"
    elif typ in ("string_type",):
        msg = f"expected text, got {_raw_at(data, clean)!r}"
        fix = "quote the value"
    elif typ in ("too_short",):
        fix = "add at least one entry"
    elif typ == "value_error" and kind:
        fix = f"write the value with a unit, e.g. {example_for(kind)}"
    elif typ == "value_error" and "plain number" in msg:
        fix = "write a bare number, e.g. 0.5 (fractions) or 8 (counts)"
    return clean, msg, fix


def _nested_home(model: Any, key: str) -> str | None:
    """The sub-block of ``model`` (e.g. ``energy``, ``timing``) that has a key called ``key``."""
    from pydantic import BaseModel

    for name, f in model.model_fields.items():
        sub = _unwrap(f.annotation)
        if _is_union(sub):
            args = [a for a in get_args(sub) if a is not type(None)]
            sub = _unwrap(args[0]) if len(args) == 1 else None
        if isinstance(sub, type) and issubclass(sub, BaseModel) and key in sub.model_fields:
            return name
    return None


def _kinds_for(path: Path_) -> list[str]:
    from simrec.hw.schema import DEVICE_KINDS, LINK_KINDS

    if path and path[0] == "links":
        return list(LINK_KINDS)
    return list(DEVICE_KINDS)


def _model_word(model: Any) -> str:
    name = model.__name__
    words = {
        "SystemConfig": "system file",
        "CpuDevice": "cpu device",
        "DramDevice": "dram device",
        "HbmDevice": "hbm device",
        "GpuDevice": "gpu device",
        "SwitchDevice": "switch device",
        "DramTiming": "timing block",
        "PcieLink": "pcie link",
        "NvlinkLink": "nvlink link",
        "NetworkLink": "network link",
        "Validation": "validation block",
        "GatherPoint": "gather_efficiency row",
    }
    if name.endswith("Energy"):
        return "energy block"
    return words.get(name, name)


def _to_config_error(e: Any, data: Any, marks: dict[Path_, Mark], fname: str) -> ConfigError:
    errs = e.errors(include_url=False)
    # an unknown key usually explains a "missing" one next to it (a typo): report it first
    errs = sorted(errs, key=lambda er: 0 if er["type"] == "extra_forbidden" else 1)
    described = [_describe(err, data) for err in errs]
    # the first error gives the place; the others are listed briefly
    path0, msg0, fix0 = described[0]
    f, where = _place(path0, marks, fname)
    message = msg0
    if len(described) > 1:
        from simrec.hw.schema import _path_str

        more = []
        for p, m, _ in described[1:6]:
            pf, pw = _place(p, marks, fname)
            line = pw[pw.find("(") :] if "(" in pw else ""
            more.append(f"{_path_str(p)} {line}: {m}".replace("  ", " "))
        extra = f" (and {len(described) - 1} more problem{'s' if len(described) > 2 else ''}: "
        extra += "; ".join(more)
        if len(described) > 6:
            extra += "; ..."
        message = message.rstrip(".") + extra + ")"
    return ConfigError(message, path=f, where=where, fix=fix0)
