"""Tests of simrec.util.jsonable (the one JSON-sanitising helper)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from simrec.util import jsonable


def test_numpy_values_become_python() -> None:
    d = {
        1: np.int64(7),
        "b": np.bool_(True),
        "f32": np.float32(0.5),
        "arr": np.arange(3, dtype=np.int32),
        "t": (np.float64(1.25), np.uint8(3)),
        "s": np.str_("x"),
    }
    out = jsonable(d)
    assert out == {"1": 7, "b": True, "f32": 0.5, "arr": [0, 1, 2], "t": [1.25, 3], "s": "x"}
    assert type(out["1"]) is int and type(out["b"]) is bool and type(out["f32"]) is float
    assert all(type(v) is int for v in out["arr"])


def test_non_finite_floats_become_null() -> None:
    vals = [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf"), np.array([np.nan])]
    out = jsonable(vals)
    assert out == [None, None, None, None, None, [None]]
    assert json.dumps(out, allow_nan=False) == "[null, null, null, null, null, [null]]"


def test_plain_values_unchanged() -> None:
    d = {"a": [1, 2.5, "x", None, True], "n": {"m": False}}
    assert jsonable(d) == d


def test_lazy_package_exports_resolve_to_the_submodule_objects() -> None:
    import simrec.explore as ex
    import simrec.report as rp
    import simrec.trace as tr
    from simrec.explore import spec, sweep
    from simrec.report import core, systems
    from simrec.trace import stats

    assert tr.profile_trace is stats.profile_trace and tr.TableProfile is stats.TableProfile
    assert rp.build_report is core.build_report and rp.SystemSpec is systems.SystemSpec
    assert ex.load_spec is spec.load_spec and ex.run_sweep is sweep.run_sweep
    for mod in (tr, rp, ex):
        assert set(mod.__all__) <= set(dir(mod))
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            mod.nope  # noqa: B018


def test_cli_import_stays_light() -> None:
    """`simrec --help` must not pay for pandas or numba (they load when a command needs them)."""
    code = (
        "import sys, simrec.cli, simrec.trace, simrec.report, simrec.explore; "
        "print(sorted(m for m in ('pandas', 'numba', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
