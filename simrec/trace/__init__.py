"""Embedding access traces: the ``.trc`` container, generators, converters and statistics."""

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

__all__ = [
    "FORMAT_VERSION",
    "Batch",
    "TableSpec",
    "TraceHeader",
    "TraceReader",
    "TraceWriter",
    "read_trace",
    "write_trace",
]
