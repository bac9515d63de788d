"""Small helpers shared across simrec (kept free of heavy imports: numpy is imported lazily)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["jsonable", "lazy_exports"]


def jsonable(o: Any) -> Any:
    """Return ``o`` as plain JSON-ready Python values.

    Dict keys become strings; lists, tuples and numpy arrays become lists; numpy integers, booleans
    and other numpy scalars become their Python counterparts; floats (Python or numpy) that are NaN
    or infinite become ``None``, so the result passes ``json.dumps(..., allow_nan=False)``. Any
    other value is returned unchanged (``json.dumps`` decides whether it can be written).
    """
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [jsonable(v) for v in o]
    if isinstance(o, float):  # includes numpy.float64
        return o if math.isfinite(o) else None
    if o is None or isinstance(o, str | int):  # includes bool and numpy.str_
        return o
    import numpy as np

    if isinstance(o, np.ndarray):
        return jsonable(o.tolist())
    if isinstance(o, np.generic):
        return jsonable(o.item())
    return o


def lazy_exports(
    package: str, names: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__``/``__dir__`` that import ``names`` (name -> submodule) on first use.

    A package ``__init__`` assigns the pair to ``__getattr__, __dir__`` so that importing the
    package (for example to reach its ``cli`` submodule) does not import every submodule's
    dependencies (pandas, numba). The first access imports ``package.submodule``, caches the
    value in the package namespace and returns it; unknown names raise ``AttributeError``.
    """
    import importlib
    import sys

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook's name
        sub = names.get(name)
        if sub is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{sub}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
