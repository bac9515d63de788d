"""Embedding access traces: the ``.trc`` container, generators, converters and statistics.

The container classes are imported eagerly (they are light). The profiler names
(``profile_trace``, ``TraceProfile``, ``TableProfile``) are loaded from :mod:`simrec.trace.stats`
on first use, so ``import simrec.trace`` does not pay for the stack-distance code (numba).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simrec.trace.format import (
    FORMAT_VERSION,
    Batch,
    TableSpec,
    TraceHeader,
    TraceReader,
    TraceWriter,
    read_trace,
    write_trace,
)

if TYPE_CHECKING:
    from simrec.trace.stats import TableProfile, TraceProfile, profile_trace

_LAZY = {"profile_trace", "TraceProfile", "TableProfile"}

__all__ = [
    "FORMAT_VERSION",
    "Batch",
    "TableProfile",
    "TableSpec",
    "TraceHeader",
    "TraceProfile",
    "TraceReader",
    "TraceWriter",
    "profile_trace",
    "read_trace",
    "write_trace",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from simrec.trace import stats

        value = getattr(stats, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
