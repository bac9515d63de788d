"""The ``.trc`` embedding-access trace container (format version 1.0).

A ``.trc`` file holds a header (tables, batch size, provenance) and a sequence of batches of
table-major CSR embedding lookups — the layout of FBGEMM's table-batched-embedding requests and of
Meta's ``dlrm_datasets`` files: for a batch of ``b`` samples over ``T`` tables, ``offsets`` has length
``T*b + 1`` and the bag of sample ``s`` in table ``t`` is
``indices[offsets[t*b + s] : offsets[t*b + s + 1]]``.

The byte layout is specified in ``docs/trace-format.md``. In short::

    magic "SIMRTRC\\0" | u16 major | u16 minor | u32 flags | u64 header_len | header JSON | pad to 64
    batch 0: offsets int64[T*b+1] | indices int32/int64[n] | weights f32[n]? | dense f32[b*D]? | labels f32[b]?
             (each array starts on a 64-byte boundary)
    batch 1 ...
    index: one 40-byte record per batch (pos u64, b u64, n u64, arrival f64, crc32 u32, pad u32)
    trailer: u64 index_pos | u64 num_batches | u64 total_lookups | "SIMREND\\0"

Reading memory-maps the file, so one batch at a time can be read from a trace larger than RAM, and
batch ``i`` costs O(size of batch ``i``). Every batch carries a CRC-32 of its bytes; readers check it
and the CSR invariants (monotone offsets, ``0 <= index < rows``) and raise :class:`TraceFormatError`
naming the file, batch and table on any violation. Writers write to a temporary file and rename it
only when the trace is complete, so a failed write never leaves a partial ``.trc`` behind.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from simrec.errors import TraceFormatError, atomic_output

__all__ = [
    "FORMAT_VERSION",
    "Batch",
    "TableSpec",
    "TraceHeader",
    "TraceReader",
    "TraceWriter",
    "offsets_from_lengths",
    "read_trace",
    "write_trace",
]

MAGIC = b"SIMRTRC\x00"
END_MAGIC = b"SIMREND\x00"
FORMAT_VERSION = (1, 0)
ALIGN = 64
_PREFIX = struct.Struct("<8sHHIQ")  # magic, major, minor, flags, header_len -> 24 bytes
_TRAILER = struct.Struct("<QQQ8s")  # index_pos, num_batches, total_lookups, end magic -> 32 bytes
INDEX_DTYPE = np.dtype(
    [("pos", "<u8"), ("b", "<u8"), ("n", "<u8"), ("arrival", "<f8"), ("crc", "<u4"), ("pad", "<u4")]
)
_EMB_DTYPES = ("float32", "float16", "bfloat16", "int8", "int4", "int2")


def _align(x: int) -> int:
    return (x + ALIGN - 1) // ALIGN * ALIGN


class TableSpec(BaseModel):
    """One embedding table: name, number of rows, embedding dimension and element type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    rows: int = Field(gt=0, description="number of rows (valid indices are 0 .. rows-1)")
    dim: int = Field(gt=0, description="embedding dimension (elements per row)")
    dtype: Literal["float32", "float16", "bfloat16", "int8", "int4", "int2"] = "float32"

    @property
    def bytes_per_row(self) -> float:
        """Bytes of one stored row (no quantisation scale/bias overhead)."""
        bits = {"float32": 32, "float16": 16, "bfloat16": 16, "int8": 8, "int4": 4, "int2": 2}
        return self.dim * bits[self.dtype] / 8


class TraceHeader(BaseModel):
    """Everything about a trace except its batches.

    ``provenance`` records where the trace came from: ``source`` (input file or ``"generated"``),
    ``converter`` or ``generator`` name, ``seed`` and ``params`` (the generator/converter options), so
    a trace can be regenerated exactly.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["simrec-trace"] = "simrec-trace"
    version: tuple[int, int] = FORMAT_VERSION
    tables: tuple[TableSpec, ...] = Field(min_length=1)
    batch_size: int = Field(gt=0, description="nominal samples per batch (the last may be smaller)")
    index_dtype: Literal["int32", "int64"] = "int64"
    has_weights: bool = False
    num_dense: int = Field(default=0, ge=0, description="dense features per sample (Criteo: 13)")
    has_labels: bool = False
    provenance: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _unique_names(cls, v: tuple[TableSpec, ...]) -> tuple[TableSpec, ...]:
        seen: set[str] = set()
        for t in v:
            if t.name in seen:
                raise ValueError(f"table name {t.name!r} appears twice")
            seen.add(t.name)
        return v

    @model_validator(mode="after")
    def _index_dtype_fits(self) -> TraceHeader:
        if self.index_dtype == "int32" and max(t.rows for t in self.tables) > 2**31:
            raise ValueError("index_dtype int32 cannot address tables with more than 2^31 rows")
        return self

    @property
    def num_tables(self) -> int:
        return len(self.tables)

    @property
    def rows(self) -> np.ndarray:
        """Rows per table as an int64 array."""
        return np.array([t.rows for t in self.tables], dtype=np.int64)

    @property
    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]

    @staticmethod
    def pick_index_dtype(rows: Iterable[int]) -> Literal["int32", "int64"]:
        """The narrowest index dtype that addresses every row."""
        return "int32" if max(rows) <= 2**31 else "int64"

    def to_json_bytes(self) -> bytes:
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        ).encode()


def offsets_from_lengths(lengths: np.ndarray) -> np.ndarray:
    """CSR offsets (int64, a leading 0, length ``lengths.size + 1``) of bag sizes ``lengths``.

    ``lengths`` is ``[T, b]`` (or already flat, table-major); the inverse of :meth:`Batch.lengths`.
    """
    a = np.asarray(lengths)
    off = np.empty(a.size + 1, dtype=np.int64)
    off[0] = 0
    np.cumsum(a.ravel(), dtype=np.int64, out=off[1:])
    return off


@dataclass
class Batch:
    """One batch of table-major CSR lookups.

    ``offsets`` (int64, length ``T*b+1``), ``indices``, and optionally per-lookup ``weights`` (float32),
    ``dense`` features (float32 ``[b, num_dense]``), ``labels`` (float32 ``[b]``) and the batch's
    arrival time in seconds. Arrays read from a file are read-only memory-mapped views.
    """

    offsets: np.ndarray
    indices: np.ndarray
    num_tables: int
    weights: np.ndarray | None = None
    dense: np.ndarray | None = None
    labels: np.ndarray | None = None
    arrival_s: float | None = None
    number: int = 0

    @property
    def batch_size(self) -> int:
        return (len(self.offsets) - 1) // self.num_tables

    @property
    def num_lookups(self) -> int:
        return int(self.offsets[-1] - self.offsets[0])

    def table_slice(self, t: int) -> slice:
        """The slice of ``indices`` that holds table ``t``'s lookups."""
        b = self.batch_size
        return slice(int(self.offsets[t * b]), int(self.offsets[(t + 1) * b]))

    def table_indices(self, t: int) -> np.ndarray:
        """All indices of table ``t`` in this batch, in sample order."""
        return self.indices[self.table_slice(t)]

    def table_offsets(self, t: int) -> np.ndarray:
        """Bag offsets of table ``t`` rebased to start at 0 (length ``b+1``)."""
        b = self.batch_size
        o = self.offsets[t * b : (t + 1) * b + 1]
        return o - o[0]

    def lengths(self) -> np.ndarray:
        """Bag sizes as an int64 array of shape ``[T, b]`` (the dlrm_datasets ``lengths``)."""
        return np.diff(self.offsets).reshape(self.num_tables, self.batch_size)

    def lookups_per_table(self) -> np.ndarray:
        b = self.batch_size
        edges = self.offsets[::b] if b else np.zeros(self.num_tables + 1, dtype=np.int64)
        return np.diff(edges).astype(np.int64)


def _check_batch(
    header: TraceHeader,
    offsets: np.ndarray,
    indices: np.ndarray,
    path: str | os.PathLike[str] | None,
    number: int,
) -> None:
    """Raise TraceFormatError unless (offsets, indices) is a valid CSR batch for ``header``."""
    T = header.num_tables
    where = f"batch {number}"
    if offsets.ndim != 1 or len(offsets) < 1 or (len(offsets) - 1) % T != 0:
        raise TraceFormatError(
            f"offsets has length {len(offsets)}, which is not T*b+1 for T={T} tables",
            path=path,
            where=where,
            fix="write offsets of length num_tables*batch_size+1 (table-major CSR)",
        )
    b = (len(offsets) - 1) // T
    if b > header.batch_size:
        raise TraceFormatError(
            f"batch has {b} samples but the header's batch_size is {header.batch_size}",
            path=path,
            where=where,
            fix="split the batch or raise batch_size in the header",
        )
    if offsets[0] != 0 or offsets[-1] != len(indices):
        raise TraceFormatError(
            f"offsets must start at 0 and end at len(indices)={len(indices)}, "
            f"found {int(offsets[0])} .. {int(offsets[-1])}",
            path=path,
            where=where,
            fix="rebuild offsets as the cumulative sum of bag sizes with a leading 0",
        )
    d = np.diff(offsets)
    if len(d) and d.min() < 0:
        pos = int(np.argmax(d < 0))
        t, s = divmod(pos, b) if b else (0, 0)
        raise TraceFormatError(
            f"offsets decrease at position {pos} ({int(offsets[pos])} -> {int(offsets[pos + 1])})",
            path=path,
            where=f"{where}, table {header.tables[t].name!r}, sample {s}",
            fix="offsets must be non-decreasing; rebuild them from the bag sizes",
        )
    if len(indices) == 0 or b == 0:
        return
    starts = offsets[:-1:b] if b else offsets[:1]
    counts = np.diff(offsets[::b])
    nonempty = np.flatnonzero(counts > 0)
    if len(nonempty) == 0:
        return
    st = starts[nonempty]
    mins = np.minimum.reduceat(indices, st)
    maxs = np.maximum.reduceat(indices, st)
    # reduceat over non-empty tables: each segment ends where the next non-empty one starts, and
    # empty tables in between contribute nothing, so these are exact per-table extrema.
    rows = header.rows[nonempty]
    bad_neg = np.flatnonzero(mins < 0)
    if len(bad_neg):
        t = int(nonempty[bad_neg[0]])
        raise TraceFormatError(
            f"negative index {int(mins[bad_neg[0]])}",
            path=path,
            where=f"{where}, table {header.tables[t].name!r} (table {t})",
            fix="indices are row numbers 0..rows-1; map missing values to a row explicitly",
        )
    bad_hi = np.flatnonzero(maxs >= rows)
    if len(bad_hi):
        k = bad_hi[0]
        t = int(nonempty[k])
        raise TraceFormatError(
            f"index {int(maxs[k])} >= rows {int(rows[k])}",
            path=path,
            where=f"{where}, table {header.tables[t].name!r} (table {t})",
            fix=(
                "declare the table with enough rows in the header, or hash the indices "
                "into range (e.g. `simrec trace convert --max-ind-range N`)"
            ),
        )


class TraceWriter:
    """Write a ``.trc`` file batch by batch; the file appears only when :meth:`close` succeeds.

    >>> hdr = TraceHeader(tables=[TableSpec(name="t0", rows=10, dim=4)], batch_size=2)
    >>> with TraceWriter("x.trc", hdr) as w:  # doctest: +SKIP
    ...     w.write_batch(offsets=[0, 1, 3], indices=[4, 5, 6])
    """

    def __init__(self, path: str | os.PathLike[str], header: TraceHeader):
        self.path = Path(path)
        self.header = header
        if not self.path.parent.exists():
            raise TraceFormatError(
                "the output folder does not exist",
                path=self.path,
                fix=f"create {self.path.parent} first or choose another output path",
            )
        self._out = atomic_output(self.path)
        self.tmp = self._out.tmp
        self._f = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._index: list[tuple[int, int, int, float, int]] = []
        self._total = 0
        self._idx_dtype = np.dtype(header.index_dtype).newbyteorder("<")
        hjson = header.to_json_bytes()
        self._f.write(_PREFIX.pack(MAGIC, *FORMAT_VERSION, 0, len(hjson)))
        self._f.write(hjson)
        self._pad()
        self._closed = False

    def _pad(self) -> None:
        pos = self._f.tell()
        self._f.write(b"\x00" * (_align(pos) - pos))

    def write_batch(
        self,
        offsets: Any,
        indices: Any,
        weights: Any | None = None,
        dense: Any | None = None,
        labels: Any | None = None,
        arrival_s: float | None = None,
    ) -> None:
        """Append one batch (validated: CSR shape, monotone offsets, ``0 <= index < rows``)."""
        h = self.header
        number = len(self._index)
        off = np.ascontiguousarray(offsets, dtype="<i8")
        idx_in = np.asarray(indices)
        if idx_in.size and not np.issubdtype(idx_in.dtype, np.integer):
            raise TraceFormatError(
                f"indices have dtype {idx_in.dtype}, not an integer type",
                path=self.path,
                where=f"batch {number}",
                fix="pass integer row indices",
            )
        _check_batch(h, off, idx_in.astype(np.int64, copy=False), self.path, number)
        idx = np.ascontiguousarray(idx_in, dtype=self._idx_dtype)
        b = (len(off) - 1) // h.num_tables
        arrays = [off, idx]
        if h.has_weights:
            if weights is None:
                raise TraceFormatError(
                    "header declares per-sample weights but none were given",
                    path=self.path,
                    where=f"batch {number}",
                    fix="pass weights= or write the header with has_weights=False",
                )
            w = np.ascontiguousarray(weights, dtype="<f4")
            if w.shape != idx.shape:
                raise TraceFormatError(
                    f"weights has shape {w.shape}, indices {idx.shape}",
                    path=self.path,
                    where=f"batch {number}",
                    fix="give one weight per index",
                )
            arrays.append(w)
        elif weights is not None:
            raise TraceFormatError(
                "weights given but the header has has_weights=False",
                path=self.path,
                where=f"batch {number}",
                fix="set has_weights=True in the header",
            )
        if h.num_dense:
            if dense is None:
                raise TraceFormatError(
                    f"header declares {h.num_dense} dense features but none were given",
                    path=self.path,
                    where=f"batch {number}",
                    fix="pass dense= of shape [batch, num_dense]",
                )
            d = np.ascontiguousarray(dense, dtype="<f4")
            if d.shape != (b, h.num_dense):
                raise TraceFormatError(
                    f"dense has shape {d.shape}, expected {(b, h.num_dense)}",
                    path=self.path,
                    where=f"batch {number}",
                    fix="pass dense features of shape [batch, num_dense]",
                )
            arrays.append(d)
        if h.has_labels:
            if labels is None:
                raise TraceFormatError(
                    "header declares labels but none were given",
                    path=self.path,
                    where=f"batch {number}",
                    fix="pass labels= of shape [batch]",
                )
            lab = np.ascontiguousarray(labels, dtype="<f4")
            if lab.shape != (b,):
                raise TraceFormatError(
                    f"labels has shape {lab.shape}, expected {(b,)}",
                    path=self.path,
                    where=f"batch {number}",
                    fix="pass one label per sample",
                )
            arrays.append(lab)
        pos = self._f.tell()
        crc = 0
        for i, a in enumerate(arrays):
            if i:
                here = self._f.tell()
                padding = b"\x00" * (_align(here) - here)
                self._f.write(padding)
                crc = zlib.crc32(padding, crc)
            buf = memoryview(a).cast("B")
            self._f.write(buf)
            crc = zlib.crc32(buf, crc)
        self._pad()
        arr = float("nan") if arrival_s is None else float(arrival_s)
        self._index.append((pos, b, len(idx), arr, crc))
        self._total += len(idx)

    def write(self, batch: Batch) -> None:
        """Append a :class:`Batch` (e.g. one read from another trace)."""
        self.write_batch(
            batch.offsets, batch.indices, batch.weights, batch.dense, batch.labels, batch.arrival_s
        )

    def close(self) -> Path:
        """Finish the file (index + trailer) and move it into place. Returns the final path."""
        if self._closed:
            return self.path
        if not self._index:
            self.abort()
            raise TraceFormatError(
                "no batches were written",
                path=self.path,
                fix="write at least one batch; an empty trace is not a valid .trc file",
            )
        index = np.zeros(len(self._index), dtype=INDEX_DTYPE)
        for i, (pos, b, n, arr, crc) in enumerate(self._index):
            index[i] = (pos, b, n, arr, crc, 0)
        index_pos = self._f.tell()
        self._f.write(index.tobytes())
        self._f.write(_TRAILER.pack(index_pos, len(self._index), self._total, END_MAGIC))
        self._f.close()
        self._out.commit()
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Discard everything written so far."""
        if self._closed:
            return
        self._f.close()
        self._out.discard()
        self._closed = True

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class TraceReader:
    """Read a ``.trc`` file one batch at a time (memory-mapped; nothing is loaded up front).

    ``verify=True`` (the default) checks each batch's CRC-32 and CSR invariants when it is read.
    """

    def __init__(self, path: str | os.PathLike[str], verify: bool = True):
        self.path = Path(path)
        self.verify = verify
        if not self.path.exists():
            raise TraceFormatError(
                "file not found", path=self.path, fix="check the path (traces end in .trc)"
            )
        if self.path.is_dir():
            raise TraceFormatError(
                "is a folder, not a .trc file", path=self.path, fix="name a file"
            )
        size = self.path.stat().st_size
        if size == 0:
            raise TraceFormatError(
                "the file is empty",
                path=self.path,
                fix="regenerate it with `simrec trace gen` or `simrec trace convert`",
            )
        with open(self.path, "rb") as f:
            prefix = f.read(_PREFIX.size)
            if (
                len(prefix) < _PREFIX.size
                or not prefix.startswith(MAGIC[:4])
                or prefix[:8] != MAGIC
            ):
                raise TraceFormatError(
                    "not a simrec trace (wrong magic bytes)",
                    path=self.path,
                    fix=(
                        "convert the source data first, e.g. `simrec trace convert --from criteo "
                        "FILE -o out.trc`"
                    ),
                )
            _, major, minor, _flags, hlen = _PREFIX.unpack(prefix)
            if major != FORMAT_VERSION[0]:
                raise TraceFormatError(
                    f"format version {major}.{minor} is not supported "
                    f"(this simrec reads {FORMAT_VERSION[0]}.x)",
                    path=self.path,
                    fix="convert the trace with a matching simrec version",
                )
            if _PREFIX.size + hlen + _TRAILER.size > size:
                raise TraceFormatError(
                    "the file is truncated (header runs past the end)",
                    path=self.path,
                    fix="the write was interrupted; regenerate the trace",
                )
            hjson = f.read(hlen)
            try:
                self.header = TraceHeader.model_validate(json.loads(hjson))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise TraceFormatError(
                    f"the header is not valid JSON ({e})",
                    path=self.path,
                    where="header",
                    fix="the file is corrupted; regenerate the trace",
                ) from None
            except ValidationError as e:
                err = e.errors()[0]
                field = ".".join(str(x) for x in err["loc"])
                raise TraceFormatError(
                    f"invalid header: {err['msg']}",
                    path=self.path,
                    where=f"header field {field!r}",
                    fix="the file is corrupted or from an incompatible writer; regenerate it",
                ) from None
            f.seek(size - _TRAILER.size)
            index_pos, nb, total, end = _TRAILER.unpack(f.read(_TRAILER.size))
        if end != END_MAGIC:
            raise TraceFormatError(
                "the file is truncated (no trailer: the write did not finish)",
                path=self.path,
                fix="regenerate the trace; a complete .trc ends with the SIMREND trailer",
            )
        data_start = _align(_PREFIX.size + hlen)
        if not (data_start <= index_pos <= size - _TRAILER.size) or (
            index_pos + nb * INDEX_DTYPE.itemsize != size - _TRAILER.size
        ):
            raise TraceFormatError(
                "the batch index is inconsistent with the file size (corrupted or truncated)",
                path=self.path,
                where="trailer",
                fix="regenerate the trace",
            )
        with open(self.path, "rb") as f:
            self._map: mmap.mmap | None = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._mm = np.frombuffer(self._map, dtype=np.uint8)
        self.index = np.frombuffer(self._mm, dtype=INDEX_DTYPE, count=nb, offset=index_pos).copy()
        self.total_lookups = int(total)
        if int(self.index["n"].sum()) != self.total_lookups:
            raise TraceFormatError(
                "the batch index does not add up to the trailer's lookup count",
                path=self.path,
                where="index",
                fix="the file is corrupted; regenerate it",
            )
        h = self.header
        self._idx_dtype = np.dtype(h.index_dtype).newbyteorder("<")
        # Validate every index record's extent up front (cheap) so batch() cannot read past the end.
        for i in range(nb):
            end_i = self._layout(i)[-1][1]
            if self.index["pos"][i] < data_start or end_i > index_pos:
                raise TraceFormatError(
                    "batch extends outside the data region (corrupted index)",
                    path=self.path,
                    where=f"batch {i}",
                    fix="regenerate the trace",
                )

    # -- layout -------------------------------------------------------------------------------
    def _layout(self, i: int) -> list[tuple[int, int]]:
        """(start, end) byte ranges of offsets, indices, [weights], [dense], [labels] of batch i."""
        h = self.header
        rec = self.index[i]
        b, n = int(rec["b"]), int(rec["n"])
        sizes = [(h.num_tables * b + 1) * 8, n * self._idx_dtype.itemsize]
        if h.has_weights:
            sizes.append(n * 4)
        if h.num_dense:
            sizes.append(b * h.num_dense * 4)
        if h.has_labels:
            sizes.append(b * 4)
        out = []
        pos = int(rec["pos"])
        for k, s in enumerate(sizes):
            if k:
                pos = _align(pos)
            out.append((pos, pos + s))
            pos += s
        return out

    def __len__(self) -> int:
        return len(self.index)

    @property
    def num_batches(self) -> int:
        return len(self.index)

    @property
    def num_samples(self) -> int:
        return int(self.index["b"].sum())

    def batch(self, i: int, verify: bool | None = None) -> Batch:
        """Batch ``i`` as read-only memory-mapped views (checked unless ``verify=False``)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"batch {i} out of range (trace has {len(self)} batches)")
        i %= len(self)
        verify = self.verify if verify is None else verify
        h = self.header
        lay = self._layout(i)
        rec = self.index[i]
        mm = self._mm
        if verify:
            crc = zlib.crc32(memoryview(mm[lay[0][0] : lay[-1][1]]))
            if crc != int(rec["crc"]):
                raise TraceFormatError(
                    "checksum mismatch: the batch's bytes were changed or damaged",
                    path=self.path,
                    where=f"batch {i}",
                    fix="regenerate or re-copy the trace",
                )
        off = np.frombuffer(mm, dtype="<i8", count=(lay[0][1] - lay[0][0]) // 8, offset=lay[0][0])
        idx = np.frombuffer(mm, dtype=self._idx_dtype, count=int(rec["n"]), offset=lay[1][0])
        k = 2
        weights = dense = labels = None
        if h.has_weights:
            weights = np.frombuffer(mm, dtype="<f4", count=int(rec["n"]), offset=lay[k][0])
            k += 1
        if h.num_dense:
            dense = np.frombuffer(
                mm, dtype="<f4", count=int(rec["b"]) * h.num_dense, offset=lay[k][0]
            ).reshape(int(rec["b"]), h.num_dense)
            k += 1
        if h.has_labels:
            labels = np.frombuffer(mm, dtype="<f4", count=int(rec["b"]), offset=lay[k][0])
        if verify:
            _check_batch(h, off, idx, self.path, i)
        arr = float(rec["arrival"])
        return Batch(
            offsets=off,
            indices=idx,
            num_tables=h.num_tables,
            weights=weights,
            dense=dense,
            labels=labels,
            arrival_s=None if np.isnan(arr) else arr,
            number=i,
        )

    def __iter__(self) -> Iterator[Batch]:
        for i in range(len(self)):
            yield self.batch(i)

    def validate(self) -> None:
        """Check every batch (CRC and CSR invariants); raises TraceFormatError on the first fault."""
        for i in range(len(self)):
            self.batch(i, verify=True)

    def info(self) -> dict[str, Any]:
        """The header plus counts, as a JSON-ready dict."""
        d = self.header.model_dump(mode="json")
        d.update(
            path=str(self.path),
            num_batches=len(self),
            num_samples=self.num_samples,
            num_lookups=self.total_lookups,
            file_bytes=self.path.stat().st_size,
        )
        return d

    def release(self, through: int) -> None:
        """Let the OS drop this process's mapped pages of batches ``0 .. through`` (a hint).

        The reader maps the whole file, so a long sequential pass would otherwise keep every page
        it touched in its resident set (clean page-cache pages, but they count as RSS). Batches
        already returned stay valid: their pages are read again from the file if touched. Best
        effort: it does nothing where the platform has no ``madvise``, for ``through < 0``, for
        the last batch, or after :meth:`close`.
        """
        m = self._map
        if m is None or not hasattr(m, "madvise") or through < 0 or through + 1 >= len(self):
            return
        end = int(self.index["pos"][through + 1]) // mmap.PAGESIZE * mmap.PAGESIZE
        if end > 0:
            with contextlib.suppress(OSError, ValueError):  # platform dependent
                m.madvise(mmap.MADV_DONTNEED, 0, end)

    def close(self) -> None:
        """Drop the reader's map of the file (batches already returned stay valid)."""
        self._mm = None
        self._map = None

    def __enter__(self) -> TraceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_trace(path: str | os.PathLike[str], verify: bool = True) -> TraceReader:
    """Open a ``.trc`` file for batch-at-a-time reading."""
    return TraceReader(path, verify=verify)


def write_trace(
    path: str | os.PathLike[str],
    header: TraceHeader,
    batches: Iterable[Batch | Mapping[str, Any]],
) -> Path:
    """Write ``batches`` (``Batch`` objects or dicts of ``write_batch`` arguments) to ``path``."""
    with TraceWriter(path, header) as w:
        for b in batches:
            if isinstance(b, Batch):
                w.write(b)
            else:
                w.write_batch(**b)
    return Path(path)
