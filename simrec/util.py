"""Small helpers shared across simrec (kept free of heavy imports: numpy is imported lazily)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["jsonable"]


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
