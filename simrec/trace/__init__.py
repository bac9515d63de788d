"""Embedding access traces: the ``.trc`` container, generators, converters and statistics.

The container classes are imported eagerly (they are light). The profiler names
(``profile_trace``, ``TraceProfile``, ``TableProfile``) are loaded from :mod:`simrec.trace.stats`
on first use, so ``import simrec.trace`` does not pay for the stack-distance code (numba).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from simrec.util import lazy_exports

if TYPE_CHECKING:
    from simrec.trace.stats import TableProfile, TraceProfile, profile_trace

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


__getattr__, __dir__ = lazy_exports(
    __name__, {"profile_trace": "stats", "TraceProfile": "stats", "TableProfile": "stats"}
)
