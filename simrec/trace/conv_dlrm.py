"""Converters for facebookresearch/dlrm's address traces and Meta's ``dlrm_datasets`` files.

* ``dlrm-trace``: dlrm's ``trace.log`` (``dlrm_data_pytorch.py``, ``read_trace_from_file``): one line
  of comma-separated integers (``1, 2, 3, ...``), or with ``binary=True`` raw little-endian uint64.
  It becomes one table ``trace`` with one lookup per sample, in file order; rows = max + 1. Text is
  parsed leniently: any mix of commas and whitespace separates values, over any number of lines.
* ``dlrm-datasets``: a ``torch.save`` of the tuple ``(indices, offsets, lengths)`` (optionally
  gzipped): ``lengths`` [T, B], ``offsets`` of length T*B+1, table-major, one file = one batch of B
  samples (``reference/data.md`` §2.1, ``anchors.md`` §3.1). Rows are not stored in these files:
  they are inferred as max index + 1 per table unless given. ``tables`` picks a subset (and order)
  of tables as FBGEMM's ``--requests_data_file ... tables="0,5,9"`` does.
* :func:`export_dlrm_datasets` writes any ``.trc`` back as that tuple; ``.pt -> .trc -> .pt``
  restores every tensor exactly, dtypes included (the importer records them in the provenance).

PyTorch is needed only for the ``.pt`` files (the optional ``torch`` extra). Files are loaded with
``torch.load(weights_only=True)``, which refuses arbitrary pickled code.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simrec.errors import ConvertError, SimrecError, atomic_output
from simrec.trace.conv_common import (
    ChunkTable,
    ConvertResult,
    HashingReader,
    Spool,
    assemble_batches,
    check_input,
)
from simrec.trace.format import (
    TableSpec,
    TraceHeader,
    TraceReader,
    TraceWriter,
    offsets_from_lengths,
)

__all__ = ["convert_dlrm_datasets", "convert_dlrm_trace", "export_dlrm_datasets", "load_pt_tuple"]

DEFAULT_BATCH_SIZE = 128
DEFAULT_DIM = 16
_TOKEN = re.compile(rb"[^,\s]+")
_INT = re.compile(rb"[0-9]+")
NL = b"\n"
_CHUNK = 1 << 16
_INSTALL_FIX = "install the optional extra: pip install 'simrec[torch]'"
_INT_DTYPES = ("int64", "int32", "int16", "int8", "uint8")


def _check_sizes(batch_size: int | None, dim: int) -> None:
    if batch_size is not None and batch_size <= 0:
        raise ConvertError(
            f"batch size {batch_size} is not positive",
            where="option --batch-size",
            fix="pass a batch size >= 1",
        )
    if dim <= 0:
        raise ConvertError(
            f"embedding dim {dim} is not positive", where="option --dim", fix="pass --dim >= 1"
        )


# --------------------------------------------------------------------------------------------
# dlrm trace.log
# --------------------------------------------------------------------------------------------
def _trace_text_values(reader: HashingReader, path: Path) -> Iterator[np.ndarray]:
    """Parse comma/whitespace separated non-negative integers block by block."""
    rest = b""
    line = 1
    for block in [*reader.blocks(), None]:
        if block is None:
            part, rest = rest, b""
        else:
            data = rest + block
            cut = max(data.rfind(b","), data.rfind(b"\n"), data.rfind(b" "), data.rfind(b"\t"))
            if cut < 0:
                rest = data
                continue
            part, rest = data[: cut + 1], data[cut + 1 :]
        toks = _TOKEN.findall(part)
        bad = [i for i, t in enumerate(toks) if not _INT.fullmatch(t) or int(t) >= 2**63]
        if bad:
            tok = toks[bad[0]]
            pos = [m.start() for m in _TOKEN.finditer(part)][bad[0]]
            where = f"line {line + part.count(NL, 0, pos)}"
            raise ConvertError(
                f"value {tok.decode('utf-8', 'replace')!r} is not a non-negative integer "
                "below 2^63",
                path=path,
                where=where,
                fix="dlrm trace.log holds comma-separated row addresses; "
                "for a binary uint64 trace pass --binary",
            )
        line += part.count(NL)
        if toks:
            vals = np.array([int(t) for t in toks], dtype=np.int64)
            yield vals


def _trace_binary_values(reader: HashingReader, path: Path) -> Iterator[np.ndarray]:
    rest = b""
    pos = 0
    for block in reader.blocks():
        data = rest + block
        k = len(data) // 8 * 8
        rest = data[k:]
        vals = np.frombuffer(data[:k], dtype="<u8")
        big = np.flatnonzero(vals >= np.uint64(2**63))
        if len(big):
            raise ConvertError(
                f"value {int(vals[big[0]])} does not fit a signed 64-bit row index",
                path=path,
                where=f"value {pos + int(big[0])} (byte {(pos + int(big[0])) * 8})",
                fix="check that the file is a dlrm binary trace (raw uint64 addresses)",
            )
        pos += len(vals)
        yield vals.astype(np.int64)
    if rest:
        raise ConvertError(
            f"the file size is not a multiple of 8 bytes ({len(rest)} bytes left over)",
            path=path,
            where="end of file",
            fix="a binary dlrm trace is raw uint64 values; pass a text trace without --binary",
        )


def convert_dlrm_trace(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    binary: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dim: int = DEFAULT_DIM,
) -> ConvertResult:
    """Convert dlrm's ``trace.log`` (text, or raw uint64 with ``binary``) to a one-table ``.trc``."""
    path = check_input(input)
    _check_sizes(batch_size, dim)
    chunk = max(1, _CHUNK // batch_size) * batch_size
    reader = HashingReader(path)
    try:
        values = (_trace_binary_values if binary else _trace_text_values)(reader, path)
        vmax = -1
        with Spool(output, ["trace"], batch_size) as spool:
            buf: list[np.ndarray] = []
            held = 0

            def emit(ids: np.ndarray) -> None:
                t = ChunkTable(lengths=np.ones(len(ids), dtype=np.int64), ids=ids)
                for kw in assemble_batches([t], len(ids), batch_size):
                    spool.write_batch(**kw)

            for v in values:
                if len(v):
                    vmax = max(vmax, int(v.max()))
                buf.append(v)
                held += len(v)
                if held >= chunk:
                    allv = np.concatenate(buf)
                    k = len(allv) // chunk * chunk
                    emit(allv[:k])
                    buf, held = [allv[k:]], len(allv) - k
            if held:
                emit(np.concatenate(buf))
            provenance = {
                "source": path.name,
                "source_sha256": reader.hexdigest,
                "converter": "dlrm-trace",
                "seed": None,
                "params": {"batch_size": batch_size, "dim": dim, "binary": binary},
            }
            return spool.finish(
                [vmax + 1],
                dim,
                provenance,
                empty_fix="the trace holds no addresses; pass a non-empty trace.log",
                source=path,
            )
    finally:
        reader.close()


# --------------------------------------------------------------------------------------------
# dlrm_datasets .pt / .pt.gz
# --------------------------------------------------------------------------------------------
def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise SimrecError(
            "reading or writing dlrm_datasets .pt files needs PyTorch, which is not installed",
            fix=_INSTALL_FIX,
        ) from None
    return torch


def load_pt_tuple(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Load and check a ``dlrm_datasets`` file; returns numpy (indices, offsets, lengths, dtypes).

    Raises :class:`ConvertError` naming the tuple element at fault unless the file holds
    ``(indices 1-D, offsets 1-D of length T*B+1 from 0 to len(indices), lengths [T, B])`` of integer
    tensors with ``diff(offsets) == lengths.flatten()`` and no negative index.
    """
    torch = _torch()
    p = check_input(path)
    raw = p.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ConvertError(
                f"the gzip stream is damaged ({e})", path=p, fix="re-download the file"
            ) from None
    if raw[:4] != b"PK\x03\x04" and raw[:1] != b"\x80":
        raise ConvertError(
            f"not a torch-saved file (torch.save writes a zip archive or a pickle; this file "
            f"starts with {raw[:8]!r})",
            path=p,
            fix="pass a dlrm_datasets file (torch.save of (indices, offsets, lengths), "
            "optionally gzipped)",
        )
    try:
        obj = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        msg = str(e)
        if "Weights only load failed" in msg:
            reason = "it holds Python objects other than tensors and tuples, which simrec does "
            reason += "not unpickle (torch.load weights_only=True)"
        else:
            reason = f"{type(e).__name__}: {msg.splitlines()[0] if msg else ''}"
        raise ConvertError(
            f"not a loadable torch-saved file ({reason})",
            path=p,
            fix="pass a dlrm_datasets file (torch.save of (indices, offsets, lengths), "
            "optionally gzipped)",
        ) from None
    names = ("indices", "offsets", "lengths")
    if not isinstance(obj, tuple | list) or len(obj) != 3:
        what = f"a {type(obj).__name__}" + (
            f" of {len(obj)} elements" if isinstance(obj, tuple | list | dict) else ""
        )
        raise ConvertError(
            f"the file holds {what}, not the tuple (indices, offsets, lengths)",
            path=p,
            where="top-level object",
            fix="save the tuple with torch.save((indices, offsets, lengths), f)",
        )
    arrays = []
    dtypes = {}
    for i, (name, t) in enumerate(zip(names, obj, strict=True)):
        where = f"tuple element {i} ({name})"
        if not isinstance(t, torch.Tensor):
            raise ConvertError(
                f"{name} is a {type(t).__name__}, not a tensor",
                path=p,
                where=where,
                fix="save integer torch tensors",
            )
        dt = str(t.dtype).removeprefix("torch.")
        if dt not in _INT_DTYPES:
            raise ConvertError(
                f"{name} has dtype {dt}, not an integer type",
                path=p,
                where=where,
                fix="indices, offsets and lengths must be integer tensors",
            )
        want = 2 if name == "lengths" else 1
        if t.dim() != want:
            raise ConvertError(
                f"{name} has shape {list(t.shape)}, expected {want}-D",
                path=p,
                where=where,
                fix="lengths is [T, B]; indices and offsets are flat",
            )
        dtypes[name] = dt
        arrays.append(t.contiguous().numpy().astype(np.int64, copy=False))
    indices, offsets, lengths = arrays
    T, B = lengths.shape
    if T == 0 or B == 0:
        raise ConvertError(
            f"lengths has shape [{T}, {B}]: no tables or no samples",
            path=p,
            where="tuple element 2 (lengths)",
            fix="the file must hold at least one table and one sample",
        )
    if len(offsets) != T * B + 1:
        raise ConvertError(
            f"offsets has length {len(offsets)}, expected T*B+1 = {T * B + 1} "
            f"for lengths of shape [{T}, {B}]",
            path=p,
            where="tuple element 1 (offsets)",
            fix="offsets must be flat and table-major, one entry per (table, sample) plus one",
        )
    if offsets[0] != 0 or offsets[-1] != len(indices):
        raise ConvertError(
            f"offsets run from {int(offsets[0])} to {int(offsets[-1])}, expected 0 to "
            f"len(indices) = {len(indices)}",
            path=p,
            where="tuple element 1 (offsets)",
            fix="offsets are the cumulative bag sizes with a leading 0",
        )
    d = np.diff(offsets)
    if not np.array_equal(d, lengths.ravel()):
        pos = int(np.flatnonzero(d != lengths.ravel())[0])
        t, s = divmod(pos, B)
        raise ConvertError(
            f"lengths[{t}, {s}] = {int(lengths[t, s])} but offsets give {int(d[pos])}",
            path=p,
            where="tuple element 2 (lengths)",
            fix="lengths must equal diff(offsets) reshaped to [T, B]",
        )
    if len(indices) and indices.min() < 0:
        k = int(np.argmin(indices))
        t = int(np.searchsorted(offsets, k, side="right") - 1) // B
        raise ConvertError(
            f"negative index {int(indices[k])} at position {k}",
            path=p,
            where=f"tuple element 0 (indices), table {t}",
            fix="indices are row numbers >= 0",
        )
    dtypes["sha256"] = sha
    return indices, offsets, lengths, dtypes


def _parse_int_list(text: str, option: str) -> list[int]:
    try:
        vals = [int(x) for x in text.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise ConvertError(
            f"{text!r} is not a comma-separated list of integers",
            where=f"option {option}",
            fix=f"write e.g. {option} 0,5,9",
        ) from None
    if not vals:
        raise ConvertError("the list is empty", where=f"option {option}", fix="name at least one")
    return vals


def convert_dlrm_datasets(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    batch_size: int | None = None,
    dim: int = DEFAULT_DIM,
    tables: str | Sequence[int] | None = None,
    rows: str | int | Sequence[int] | None = None,
) -> ConvertResult:
    """Convert a ``dlrm_datasets`` ``.pt``/``.pt.gz`` file to a ``.trc``.

    ``batch_size`` defaults to the file's B (one ``.trc`` batch per file, as the file is one batch);
    a smaller value splits the samples into consecutive batches. ``tables`` is a subset/order of the
    file's tables (names ``t<number in the file>``). ``rows`` is one count for every table or one per
    selected table; by default each table's rows are its max index + 1 (1 if it has no lookups).
    """
    _check_sizes(batch_size, dim)
    path = check_input(input)
    indices, offsets, lengths, meta = load_pt_tuple(path)
    sha = meta.pop("sha256")
    T, B = lengths.shape
    sel = (
        list(range(T))
        if tables is None
        else (_parse_int_list(tables, "--tables") if isinstance(tables, str) else list(tables))
    )
    bad = [t for t in sel if not 0 <= t < T]
    if bad:
        raise ConvertError(
            f"table {bad[0]} does not exist (the file has tables 0..{T - 1})",
            path=path,
            where="option --tables",
            fix=f"pick table numbers between 0 and {T - 1}",
        )
    if len(set(sel)) != len(sel):
        raise ConvertError(
            "a table is named twice", where="option --tables", fix="name each table once"
        )
    starts = offsets[[t * B for t in sel]]
    ends = offsets[[(t + 1) * B for t in sel]]
    maxes = [int(indices[a:b].max()) if b > a else -1 for a, b in zip(starts, ends, strict=True)]
    if rows is None:
        row_counts = [max(1, m + 1) for m in maxes]
    else:
        given = (
            _parse_int_list(rows, "--rows")
            if isinstance(rows, str)
            else ([int(rows)] if isinstance(rows, int) else [int(r) for r in rows])
        )
        if len(given) == 1:
            given = given * len(sel)
        if len(given) != len(sel):
            raise ConvertError(
                f"{len(given)} row counts for {len(sel)} tables",
                where="option --rows",
                fix="give one count for all tables or one per (selected) table",
            )
        for t, m, r in zip(sel, maxes, given, strict=True):
            if r <= 0 or m >= r:
                raise ConvertError(
                    f"table {t} has index {m} but --rows gives it {r} rows",
                    path=path,
                    where=f"table {t}",
                    fix="raise --rows for this table or leave --rows out to infer max+1",
                )
        row_counts = given
    bs = batch_size or B
    specs = [TableSpec(name=f"t{t}", rows=r, dim=dim) for t, r in zip(sel, row_counts, strict=True)]
    hdr = TraceHeader(
        tables=specs,
        batch_size=bs,
        index_dtype=TraceHeader.pick_index_dtype(row_counts),
        provenance={
            "source": path.name,
            "source_sha256": sha,
            "converter": "dlrm-datasets",
            "seed": None,
            "params": {
                "batch_size": bs,
                "dim": dim,
                "tables": None if tables is None else sel,
                "rows": None if rows is None else row_counts,
                "file_tables": T,
                "file_batch_size": B,
                "torch_dtypes": meta,
            },
        },
    )
    n_batches = 0
    with TraceWriter(output, hdr) as w:
        for a in range(0, B, bs):
            b = min(B, a + bs)
            lens = lengths[sel, a:b]
            off = offsets_from_lengths(lens)
            idx = np.concatenate([indices[offsets[t * B + a] : offsets[t * B + b]] for t in sel])
            w.write_batch(off, idx)
            n_batches += 1
    return ConvertResult(
        path=Path(output),
        num_samples=B,
        num_batches=n_batches,
        num_lookups=int(sum(int(e - s) for s, e in zip(starts, ends, strict=True))),
        tables=specs,
    )


def export_dlrm_datasets(
    input: str | os.PathLike[str], output: str | os.PathLike[str]
) -> ConvertResult:
    """Write the ``.trc`` at ``input`` as a ``dlrm_datasets`` tuple (gzipped if ``output`` ends .gz).

    All batches are joined into one batch of N samples (the file layout has no batch boundaries):
    ``lengths`` [T, N], table-major ``offsets`` of length T*N+1, ``indices``. Tensor dtypes are those
    recorded by the importer when the trace came from a ``.pt`` file, int64 otherwise. Dense
    features, labels and per-lookup weights have no place in the tuple and are left out (listed in
    the result's notes).
    """
    torch = _torch()
    r = TraceReader(input)
    h = r.header
    T = h.num_tables
    prov = h.provenance or {}
    dts = {}
    if prov.get("converter") == "dlrm-datasets":
        dts = dict((prov.get("params") or {}).get("torch_dtypes") or {})
    per_table: list[list[np.ndarray]] = [[] for _ in range(T)]
    lens: list[np.ndarray] = []
    for batch in r:
        lens.append(np.asarray(batch.lengths()))
        for t in range(T):
            per_table[t].append(np.asarray(batch.table_indices(t)))
    r.close()
    lengths = np.concatenate(lens, axis=1).astype(np.int64)
    indices = np.concatenate([a for parts in per_table for a in parts]).astype(np.int64)
    offsets = offsets_from_lengths(lengths)

    def tensor(a: np.ndarray, name: str) -> Any:
        dt = dts.get(name, "int64")
        if dt not in _INT_DTYPES:
            dt = "int64"
        out = a.astype(dt)
        if not np.array_equal(out.astype(np.int64), a):
            raise ConvertError(
                f"{name} does not fit the recorded dtype {dt}",
                path=input,
                where="header provenance torch_dtypes",
                fix="the trace was edited after import; re-import the .pt file",
            )
        return torch.from_numpy(np.ascontiguousarray(out))

    tup = (tensor(indices, "indices"), tensor(offsets, "offsets"), tensor(lengths, "lengths"))
    buf = io.BytesIO()
    torch.save(tup, buf)
    data = buf.getvalue()
    out = Path(output)
    with atomic_output(out) as tmp:
        if out.name.endswith(".gz"):
            with (
                open(tmp, "wb") as f,
                gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz,
            ):
                gz.write(data)
        else:
            tmp.write_bytes(data)
    notes = []
    if h.has_weights:
        notes.append("per-lookup weights were left out (the tuple has no place for them)")
    if h.num_dense or h.has_labels:
        notes.append("dense features and labels were left out (the tuple holds only lookups)")
    return ConvertResult(
        path=out,
        num_samples=lengths.shape[1],
        num_batches=1,
        num_lookups=len(indices),
        tables=list(h.tables),
        notes=notes,
    )
