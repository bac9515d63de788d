"""Shared machinery of the trace converters: streamed input, spooled output, batch assembly.

Converters that learn table sizes only at the end of the input (dense ids "in order of first
appearance", ``rows = max + 1``) cannot write the ``.trc`` header first. They write their batches to
a *spool* (a temporary ``.trc`` beside the output, with placeholder row counts), then copy the spool
batch by batch into the real output once the rows are known. The spool costs one extra sequential
write and read of the binary trace, which is much cheaper than parsing the text input twice, and the
only state that grows with the input is the converters' value dictionaries.

No partial output is ever left behind: the spool is deleted in every case and the final file is
written by :class:`~simrec.trace.format.TraceWriter` (temporary name, renamed on success).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simrec.errors import ConvertError
from simrec.trace.format import (
    TableSpec,
    TraceHeader,
    TraceReader,
    TraceWriter,
    offsets_from_lengths,
)

__all__ = [
    "ChunkTable",
    "ConvertResult",
    "HashingReader",
    "Spool",
    "assemble_batches",
    "check_input",
    "iter_line_blocks",
]

# Placeholder row count of spooled tables (every real index is below it; the final header has the
# true counts). 2**62 keeps the header valid and needs int64 indices.
_SPOOL_ROWS = 2**62
_BLOCK = 1 << 22  # bytes read from the input per step (4 MiB)


@dataclass
class ConvertResult:
    """What a conversion produced: the output path and counts for the CLI summary."""

    path: Path
    num_samples: int
    num_batches: int
    num_lookups: int
    tables: list[TableSpec]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dict of the result."""
        return {
            "path": str(self.path),
            "num_samples": self.num_samples,
            "num_batches": self.num_batches,
            "num_lookups": self.num_lookups,
            "tables": [t.model_dump(mode="json") for t in self.tables],
            "notes": list(self.notes),
        }


def check_input(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a Path after checking it names a readable, non-empty file."""
    p = Path(path)
    if not p.exists():
        raise ConvertError("input file not found", path=p, fix="check the input path")
    if p.is_dir():
        raise ConvertError("is a folder, not a file", path=p, fix="name the data file itself")
    if p.stat().st_size == 0:
        raise ConvertError(
            "the input file is empty",
            path=p,
            fix="pass a file with a header line and at least one data line",
        )
    return p


class HashingReader:
    """Read a (possibly gzip-compressed) file in blocks while computing the SHA-256 of its bytes.

    The digest is of the bytes as stored on disk, so it matches ``sha256sum FILE``; it is final once
    the whole file has been read (see :attr:`hexdigest`).
    """

    def __init__(self, path: Path):
        self.path = path
        self._raw = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._sha = hashlib.sha256()
        magic = self._raw.read(2)
        self._raw.seek(0)
        self.compressed = magic == b"\x1f\x8b"
        self._stream: Any = gzip.GzipFile(fileobj=self, mode="rb") if self.compressed else None

    # file-like read() used by GzipFile: hash the compressed bytes as they pass
    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._sha.update(data)
        return data

    def blocks(self, size: int = _BLOCK) -> Iterator[bytes]:
        """The file's (decompressed) content in blocks."""
        while True:
            try:
                data = self._stream.read(size) if self.compressed else self.read(size)
            except (OSError, EOFError) as e:
                raise ConvertError(
                    f"the gzip stream is damaged ({e})",
                    path=self.path,
                    fix="re-download or re-compress the file",
                ) from None
            if not data:
                return
            yield data

    @property
    def hexdigest(self) -> str:
        # drain whatever GzipFile did not pull (trailer bytes) so the digest covers the file
        while self._raw.read(_BLOCK):
            pass
        return self._sha.hexdigest()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._raw.close()


def iter_line_blocks(reader: HashingReader) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(number of the first line, lines)`` for each block of whole lines of the file.

    Line numbers are 1-based; ``\\r\\n`` endings are tolerated. Lines are split on ``\\n`` at the
    byte level, so a multi-byte UTF-8 character is never cut. Blank lines are kept (callers skip
    them) so that numbering stays exact.
    """
    lineno = 1
    rest = b""
    for block in reader.blocks():
        data = rest + block
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            continue
        rest = data[cut + 1 :]
        lines = _decode_block(data[:cut], reader.path, lineno)
        yield lineno, lines
        lineno += len(lines)
    if rest:
        yield lineno, _decode_block(rest, reader.path, lineno)


def _decode_block(raw: bytes, path: Path, lineno: int) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        for k, line in enumerate(raw.split(b"\n")):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ConvertError(
                    f"the line is not valid UTF-8 text (byte {e.start})",
                    path=path,
                    where=f"line {lineno + k}",
                    fix="the file is binary or in another encoding; convert it to UTF-8 text",
                ) from None
        raise  # pragma: no cover - the block failed, so one of its lines must
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if text.endswith("\r"):
            text = text[:-1]
    return text.split("\n")


@dataclass
class ChunkTable:
    """One table's bags for a chunk of ``n`` samples: ``lengths`` [n] and concatenated ``ids``."""

    lengths: np.ndarray
    ids: np.ndarray


def assemble_batches(
    tables: Sequence[ChunkTable],
    n: int,
    batch_size: int,
    dense: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> Iterator[dict[str, Any]]:
    """Cut a chunk of ``n`` samples into table-major CSR batches of ``batch_size`` samples.

    Yields dicts of :meth:`TraceWriter.write_batch` arguments; the last batch may be smaller.
    """
    cums = [np.concatenate(([0], np.cumsum(t.lengths, dtype=np.int64))) for t in tables]
    for a in range(0, n, batch_size):
        b = min(n, a + batch_size)
        lens = np.stack([t.lengths[a:b] for t in tables]).astype(np.int64, copy=False)
        offsets = offsets_from_lengths(lens)
        parts = [t.ids[c[a] : c[b]] for t, c in zip(tables, cums, strict=True)]
        indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        out: dict[str, Any] = {"offsets": offsets, "indices": indices.astype(np.int64, copy=False)}
        if dense is not None:
            out["dense"] = dense[a:b]
        if labels is not None:
            out["labels"] = labels[a:b]
        yield out


class Spool:
    """Collect batches before the table sizes are known; :meth:`finish` writes the real trace.

    Use as a context manager; the spool file is removed on exit whatever happens.
    """

    def __init__(
        self,
        output: str | os.PathLike[str],
        names: Sequence[str],
        batch_size: int,
        num_dense: int = 0,
        has_labels: bool = False,
    ):
        self.output = Path(output)
        if not self.output.parent.exists():
            raise ConvertError(
                "the output folder does not exist",
                path=self.output,
                fix=f"create {self.output.parent} first or choose another output path",
            )
        self.names = list(names)
        self.batch_size = batch_size
        self.num_dense = num_dense
        self.has_labels = has_labels
        self.path = self.output.with_name(f".{self.output.name}.spool-{os.getpid()}-{id(self):x}")
        hdr = TraceHeader(
            tables=[TableSpec(name=n, rows=_SPOOL_ROWS, dim=1) for n in self.names],
            batch_size=batch_size,
            index_dtype="int64",
            num_dense=num_dense,
            has_labels=has_labels,
        )
        self._writer: TraceWriter | None = TraceWriter(self.path, hdr)
        self.num_samples = 0
        self.num_batches = 0
        self.num_lookups = 0

    def write_batch(self, **kw: Any) -> None:
        assert self._writer is not None
        self._writer.write_batch(**kw)
        self.num_batches += 1
        self.num_samples += (len(kw["offsets"]) - 1) // len(self.names)
        self.num_lookups += len(kw["indices"])

    def finish(
        self,
        rows: Sequence[int],
        dim: int,
        provenance: dict[str, Any],
        empty_fix: str = "pass a file with at least one data line",
        source: Path | None = None,
    ) -> ConvertResult:
        """Write the final ``.trc`` with ``rows`` per table; returns the result summary."""
        assert self._writer is not None
        if self.num_batches == 0:
            self._writer.abort()
            self._writer = None
            raise ConvertError(
                "the input holds no data samples",
                path=source,
                fix=empty_fix,
            )
        self._writer.close()
        self._writer = None
        tables = [
            TableSpec(name=n, rows=max(1, int(r)), dim=dim)
            for n, r in zip(self.names, rows, strict=True)
        ]
        hdr = TraceHeader(
            tables=tables,
            batch_size=self.batch_size,
            index_dtype=TraceHeader.pick_index_dtype(t.rows for t in tables),
            num_dense=self.num_dense,
            has_labels=self.has_labels,
            provenance=provenance,
        )
        spool = TraceReader(self.path, verify=False)
        try:
            with TraceWriter(self.output, hdr) as w:
                for i in range(len(spool)):
                    w.write(spool.batch(i, verify=False))
        finally:
            spool.close()
        return ConvertResult(
            path=self.output,
            num_samples=self.num_samples,
            num_batches=self.num_batches,
            num_lookups=self.num_lookups,
            tables=tables,
        )

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
