"""Converters for tabular click-through text data: Criteo, Avazu and MovieLens (DeepCTR layout).

Each line is one sample; each categorical column becomes one embedding table and the sample's value
in it one lookup (a bag of one row), except MovieLens ``genres``, whose ``|``-separated genres form
a multi-hot bag. Labels (and, for Criteo, the 13 dense features) are kept in the trace for the
functional model.

Categorical mapping:

* default: a dense row id per distinct value string, in order of first appearance in the file
  (``rows`` = number of distinct values). This is what dlrm's ``convertDicts`` does (dlrm
  ``data_utils.py``, ``getCriteoAdData``/``processCriteoAdData``), except that dlrm keys its
  dictionaries by ``int(value, 16)`` (so ``"0A"`` and ``"0a"`` would merge); Criteo hashes are
  fixed-width lowercase, so on real data the two agree.
* Criteo only, ``max_ind_range=N``: ``row = int(value, 16) mod N`` as dlrm's
  ``--max-ind-range`` does (``data_utils.py``, ``process_one_file``); ``rows = N``.

Missing values (an empty field):

* ``missing="row"`` (default): the missing value is a value like any other. With dense ids it gets
  its own row when first seen (so a column's rows = distinct values counting "missing" as one, as
  in ``reference/data.md`` §3); with ``max_ind_range`` it maps to row 0, because dlrm replaces an
  empty field with ``"0"`` before hashing (``int("0", 16) mod N = 0``; it shares row 0 with any hash
  that is 0 mod N, exactly as in dlrm).
* ``missing="empty-bag"``: the sample gets a 0-length bag in that table, so coverage < 1 shows up in
  the trace statistics; no row is spent on "missing".
* Missing dense features are 0 (dlrm sets empty fields to ``"0"``), negative dense values are
  clamped to 0 (``X_int[X_int < 0] = 0`` in ``processCriteoAdData``), then ``log(x + 1)`` in
  float32 (``transformCriteoAdData``: ``np.log(X_int.astype(np.float32) + 1)``); dlrm commit
  16bb7a4 of ``data_utils.py``.

Not covered: dlrm's ``--data-sub-sample-rate`` (random negative down-sampling) and its day splits
and shuffles; the trace keeps the file's sample order. Quoted fields spanning several lines are not
supported (no Criteo/Avazu/MovieLens file has them).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path
from typing import Any, Literal

import numpy as np

from simrec.errors import ConvertError, atomic_output
from simrec.trace.conv_common import (
    ChunkTable,
    ConvertResult,
    HashingReader,
    Spool,
    assemble_batches,
    check_input,
    iter_line_blocks,
)

__all__ = [
    "AVAZU_DROP",
    "CRITEO_NUM_CAT",
    "CRITEO_NUM_DENSE",
    "MOVIELENS_TABLES",
    "convert_avazu",
    "convert_criteo",
    "convert_movielens",
    "criteo_dense_transform",
]

MissingPolicy = Literal["row", "empty-bag"]
MISSING_POLICIES: tuple[str, ...] = ("row", "empty-bag")
CRITEO_NUM_DENSE = 13
CRITEO_NUM_CAT = 26
AVAZU_DROP = ("id", "click")  # every other Avazu column is a table
MOVIELENS_TABLES = ("user_id", "movie_id", "genres", "gender", "age", "occupation", "zip")
MOVIELENS_MULTI = {"genres": "|"}
DEFAULT_BATCH_SIZE = 128
DEFAULT_DIM = 16  # dlrm's Criteo Kaggle embedding dim (reference/data.md §1.1)
_HEX = re.compile(r"[0-9A-Fa-f]+")
_CHUNK_SAMPLES = 1 << 14


def criteo_dense_transform(values: np.ndarray) -> np.ndarray:
    """dlrm's dense-feature transform: negatives -> 0, then ``log(x + 1)`` in float32."""
    x = np.asarray(values, dtype=np.float32).copy()
    x[x < 0] = 0
    return np.log(x + np.float32(1))


# --------------------------------------------------------------------------------------------
# categorical column mappers
# --------------------------------------------------------------------------------------------
class _FirstSeenIds:
    """Dense row ids per distinct value string, in order of first appearance."""

    def __init__(self, name: str, missing: MissingPolicy, hex_only: bool, sep: str | None):
        self.name = name
        self.missing = missing
        self.hex_only = hex_only
        self.sep = sep
        self.ids: dict[str, int] = {}

    @property
    def rows(self) -> int:
        return len(self.ids)

    @property
    def missing_row(self) -> int | None:
        return self.ids.get("") if self.missing == "row" else None

    def map(self, col: Sequence[str], lines: np.ndarray, path: Path) -> ChunkTable:
        tokens, lengths, owner = _tokens(col, self.missing, self.sep)
        d = self.ids
        ids = np.fromiter(map(d.get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
        new = np.flatnonzero(ids < 0)
        if len(new):
            # values not seen before, in order of appearance: each gets the next free row
            for k in new.tolist():
                v = tokens[k]
                i = d.get(v)
                if i is None:
                    if self.hex_only and v and not _HEX.fullmatch(v):
                        own = lines[owner] if owner is not None else lines
                        raise _bad_hex(v, self.name, own, k, path)
                    i = d[v] = len(d)
                ids[k] = i
        return ChunkTable(lengths=lengths, ids=ids)


class _HexModIds:
    """dlrm's ``--max-ind-range``: ``row = int(value, 16) mod N`` (missing -> ``"0"`` -> row 0)."""

    def __init__(self, name: str, missing: MissingPolicy, modulus: int):
        self.name = name
        self.missing = missing
        self.modulus = modulus

    @property
    def rows(self) -> int:
        return self.modulus

    @property
    def missing_row(self) -> int | None:
        return 0 if self.missing == "row" else None

    def map(self, col: Sequence[str], lines: np.ndarray, path: Path) -> ChunkTable:
        tokens, lengths, owner = _tokens(col, self.missing, None)
        if "" in tokens:  # only with missing="row": dlrm reads an empty field as "0"
            tokens = [v or "0" for v in tokens]
        # int(.., 16) alone would also accept "0x..", "_" and spaces, so match first
        if not _HEX.fullmatch("".join(tokens)) and tokens:
            k = next(k for k, v in enumerate(tokens) if not _HEX.fullmatch(v))
            own = lines[owner] if owner is not None else lines
            raise _bad_hex(tokens[k], self.name, own, k, path)
        n = self.modulus
        try:
            vals = np.fromiter(map(int, tokens, repeat(16)), dtype=np.uint64, count=len(tokens))
            ids = (vals % np.uint64(n)).astype(np.int64)
        except OverflowError:  # hashes wider than 64 bits: exact Python arithmetic
            ids = np.array([int(v, 16) % n for v in tokens], dtype=np.int64)
        return ChunkTable(lengths=lengths, ids=ids)


def _tokens(
    col: Sequence[str], missing: MissingPolicy, sep: str | None
) -> tuple[Sequence[str], np.ndarray, np.ndarray | None]:
    """Flatten a column into bag tokens; returns (tokens, bag lengths, sample of each token).

    The sample of each token is None when token k belongs to sample k.
    """
    n = len(col)
    if sep is None:
        if missing == "row" or "" not in col:
            return col, np.ones(n, dtype=np.int64), None
        present = np.fromiter(map(bool, col), dtype=bool, count=n)
        tokens = [v for v in col if v]
        return tokens, present.astype(np.int64), np.flatnonzero(present)
    bags = [v.split(sep) if v else ([""] if missing == "row" else []) for v in col]
    lengths = np.fromiter(map(len, bags), dtype=np.int64, count=n)
    tokens = [t for b in bags for t in b]
    return tokens, lengths, np.repeat(np.arange(n), lengths)


def _bad_hex(value: str, table: str, lines: np.ndarray, k: int, path: Path) -> ConvertError:
    return ConvertError(
        f"categorical value {value!r} in column {table!r} is not a hexadecimal hash",
        path=path,
        where=f"line {int(lines[k])}, field {table}",
        fix=(
            "Criteo categoricals are hex strings (e.g. 05db9164); check the column order and "
            "delimiter, or use --from avazu/movielens for data with other value types"
        ),
    )


# --------------------------------------------------------------------------------------------
# the shared text engine
# --------------------------------------------------------------------------------------------
@dataclass
class _Layout:
    """Where things are in a line of a text format (column indices)."""

    num_fields: int
    tables: list[tuple[str, int]]  # (table name, column index)
    label_col: int | None
    dense_cols: list[int]
    delimiter: str
    quoted: bool
    format_hint: str  # what a correct line looks like, for error messages


def _columns(texts: list[str], nums: np.ndarray, lay: _Layout, path: Path) -> list[Sequence[str]]:
    """Split lines into fields and return the columns; every line must have the layout's count."""
    nf = lay.num_fields
    d = lay.delimiter
    if lay.quoted:
        rows = list(csv.reader(texts, delimiter=d))
        counts = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    else:
        counts = np.fromiter(map(str.count, texts, repeat(d)), dtype=np.int64, count=len(texts))
        counts += 1
    bad = np.flatnonzero(counts != nf)
    if len(bad):
        k = int(bad[0])
        raise ConvertError(
            f"the line has {int(counts[k])} fields, expected {nf}",
            path=path,
            where=f"line {int(nums[k])}",
            fix=f"every line must hold {lay.format_hint}; check the delimiter "
            f"({_delim_name(d)} was used; --delimiter sets it) and the line itself",
        )
    if lay.quoted:
        return list(zip(*rows, strict=True))
    fields = d.join(texts).split(d)
    return [fields[c::nf] for c in range(nf)]


def _delim_name(d: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", " ": "space"}.get(d, repr(d))


def _floats(
    col: Sequence[str], lines: np.ndarray, name: str, path: Path, missing_zero: bool
) -> np.ndarray:
    vals = [v or "0" for v in col] if (missing_zero and "" in col) else col
    try:
        arr = np.fromiter(map(float, vals), dtype=np.float64, count=len(vals))
        ok = bool(np.isfinite(arr).all())
    except ValueError:
        ok = False
    if not ok:
        for k, v in enumerate(vals):
            try:
                f = float(v)
            except ValueError:
                f = math.nan
            if not math.isfinite(f):
                raise ConvertError(
                    f"{name} value {v!r} is not a finite number",
                    path=path,
                    where=f"line {int(lines[k])}, field {name}",
                    fix="numeric fields must be plain numbers"
                    + (" (empty means missing = 0)" if missing_zero else ""),
                )
    return arr


def _sample_chunks(
    blocks: Iterator[tuple[int, list[str]]], chunk: int
) -> Iterator[tuple[np.ndarray, list[str]]]:
    """Regroup blocks of lines into chunks of ``chunk`` non-blank lines with their numbers."""
    texts: list[str] = []
    nums: list[np.ndarray] = []
    held = 0
    for start, lines in blocks:
        ln = np.arange(start, start + len(lines), dtype=np.int64)
        if "" in lines:
            keep = np.fromiter(map(bool, lines), dtype=bool, count=len(lines))
            lines = [t for t in lines if t]
            ln = ln[keep]
        texts.extend(lines)
        nums.append(ln)
        held += len(lines)
        while held >= chunk:
            allnums = np.concatenate(nums)
            yield allnums[:chunk], texts[:chunk]
            texts = texts[chunk:]
            nums = [allnums[chunk:]]
            held -= chunk
    if held:
        yield np.concatenate(nums), texts


def _run(
    path: Path,
    output: str | os.PathLike[str],
    reader: HashingReader,
    blocks: Iterator[tuple[int, list[str]]],
    lay: _Layout,
    mappers: list[Any],
    batch_size: int,
    dim: int,
    label_fn: Callable[[np.ndarray], np.ndarray] | None,
    dense_fn: Callable[[np.ndarray], np.ndarray] | None,
    converter: str,
    params: dict[str, Any],
    vocab_out: str | os.PathLike[str] | None = None,
) -> ConvertResult:
    if batch_size <= 0:
        raise ConvertError(
            f"batch size {batch_size} is not positive",
            where="option --batch-size",
            fix="pass a batch size >= 1",
        )
    if dim <= 0:
        raise ConvertError(
            f"embedding dim {dim} is not positive", where="option --dim", fix="pass --dim >= 1"
        )
    chunk = max(1, _CHUNK_SAMPLES // batch_size) * batch_size
    names = [n for n, _ in lay.tables]
    num_dense = len(lay.dense_cols)
    has_labels = lay.label_col is not None
    with Spool(output, names, batch_size, num_dense=num_dense, has_labels=has_labels) as spool:
        for nums, texts in _sample_chunks(blocks, chunk):
            cols = _columns(texts, nums, lay, path)
            tables = [
                m.map(cols[c], nums, path) for m, (_, c) in zip(mappers, lay.tables, strict=True)
            ]
            labels = dense = None
            if lay.label_col is not None:
                raw = _floats(cols[lay.label_col], nums, "label", path, missing_zero=False)
                labels = (label_fn(raw) if label_fn else raw).astype(np.float32)
            if num_dense:
                raw = np.stack(
                    [
                        _floats(cols[c], nums, f"I{j + 1}", path, missing_zero=True)
                        for j, c in enumerate(lay.dense_cols)
                    ],
                    axis=1,
                )
                dense = dense_fn(raw) if dense_fn else raw.astype(np.float32)
            for kw in assemble_batches(tables, len(texts), batch_size, dense=dense, labels=labels):
                spool.write_batch(**kw)
        digest = reader.hexdigest
        params = dict(params)
        params["missing_rows"] = [m.missing_row for m in mappers]
        provenance = {
            "source": path.name,
            "source_sha256": digest,
            "converter": converter,
            "seed": None,
            "params": params,
        }
        res = spool.finish(
            [m.rows for m in mappers],
            dim,
            provenance,
            empty_fix="the file holds only a header line; pass a file with data lines",
            source=path,
        )
    if vocab_out is not None:
        _write_vocab(vocab_out, mappers, provenance)
        res.notes.append(f"wrote the value of every row to {vocab_out}")
    return res


def _check_vocab_out(vocab_out: str | os.PathLike[str] | None, max_ind_range: int | None) -> None:
    if vocab_out is None:
        return
    if max_ind_range:
        raise ConvertError(
            "--vocab-out needs dense ids; with --max-ind-range a row is int(value, 16) mod N "
            "and holds many values",
            where="option --vocab-out",
            fix="leave out --vocab-out or --max-ind-range",
        )
    parent = Path(vocab_out).parent
    if not parent.exists():
        raise ConvertError(
            "the output folder does not exist",
            path=vocab_out,
            where="option --vocab-out",
            fix=f"create {parent} first or choose another path",
        )


def _write_vocab(
    vocab_out: str | os.PathLike[str], mappers: list[Any], provenance: dict[str, Any]
) -> None:
    """Write ``{"tables": [{"name", "values"}]}``: ``values[r]`` is the raw value of row ``r``.

    With ``missing="row"`` the missing value appears as ``""``.
    """
    doc = {
        "source": provenance["source"],
        "source_sha256": provenance["source_sha256"],
        "converter": provenance["converter"],
        "tables": [{"name": m.name, "values": list(m.ids)} for m in mappers],
    }
    with atomic_output(vocab_out) as tmp:
        tmp.write_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")


def _first_line(
    path: Path,
) -> tuple[HashingReader, Iterator[tuple[int, list[str]]], tuple[int, str]]:
    """Open ``path``; return the reader, the remaining line blocks and the first non-blank line."""
    reader = HashingReader(path)
    blocks = iter_line_blocks(reader)
    for start, lines in blocks:
        for k, text in enumerate(lines):
            if text:
                rest = (start + k + 1, lines[k + 1 :])
                return reader, chain([rest], blocks), (start + k, text)
    reader.close()
    raise ConvertError(
        "the input file holds no text lines",
        path=path,
        fix="pass a file with a header line and at least one data line",
    )


def _pick_delimiter(line: str, delimiter: str | None, path: Path, lineno: int) -> str:
    if delimiter is not None:
        return {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " "}.get(
            delimiter, delimiter
        )
    if "\t" in line:
        return "\t"
    if "," in line:
        return ","
    raise ConvertError(
        "cannot tell the delimiter: the first line has neither tabs nor commas",
        path=path,
        where=f"line {lineno}",
        fix="pass --delimiter tab or --delimiter ',' (or check that this is the right file)",
    )


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Criteo
# --------------------------------------------------------------------------------------------
def convert_criteo(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dim: int = DEFAULT_DIM,
    delimiter: str | None = None,
    missing: MissingPolicy = "row",
    max_ind_range: int | None = None,
    vocab_out: str | os.PathLike[str] | None = None,
) -> ConvertResult:
    """Convert raw Criteo Kaggle/Terabyte text (``label, I1..I13, C1..C26``) to a ``.trc``.

    Tab-separated (the real data) or comma-separated with a header line (the DeepCTR sample); the
    delimiter is detected from the first line unless given. A line of 39 fields (no label, like
    Kaggle's ``test.txt``) is accepted when every line has 39; the trace then has no labels. The 26
    categorical columns become tables ``C1..C26`` (or the header's names), the 13 dense features are
    kept (dlrm's transform, see the module docstring), and the label is kept as float32.
    ``vocab_out`` (dense ids only) names a JSON file to receive the raw value of every row.
    """
    path = check_input(input)
    _check_missing(missing)
    _check_vocab_out(vocab_out, max_ind_range)
    if max_ind_range is not None and max_ind_range <= 0:
        raise ConvertError(
            f"--max-ind-range {max_ind_range} is not positive",
            where="option --max-ind-range",
            fix="pass a positive modulus (dlrm uses e.g. 10000000 or 40000000)",
        )
    reader, blocks, (ln0, text0) = _first_line(path)
    try:
        d = _pick_delimiter(text0, delimiter, path, ln0)
        fields = text0.split(d)
        nf = len(fields)
        if nf not in (CRITEO_NUM_DENSE + CRITEO_NUM_CAT + 1, CRITEO_NUM_DENSE + CRITEO_NUM_CAT):
            raise ConvertError(
                f"the line has {nf} fields, expected 40 (label, I1..I13, C1..C26) or 39 (no label)",
                path=path,
                where=f"line {ln0}",
                fix=f"check the delimiter ({_delim_name(d)} was used; --delimiter sets it) "
                "and that this is raw Criteo text",
            )
        with_label = nf == 40
        header = bool(fields[0]) and not _is_number(fields[0])
        base = 1 if with_label else 0
        cat_cols = list(range(base + CRITEO_NUM_DENSE, nf))
        if header:
            names = [fields[c].strip() for c in cat_cols]
            if len(set(names)) != len(names) or not all(names):
                names = [f"C{j + 1}" for j in range(CRITEO_NUM_CAT)]
        else:
            names = [f"C{j + 1}" for j in range(CRITEO_NUM_CAT)]
        lay = _Layout(
            num_fields=nf,
            tables=list(zip(names, cat_cols, strict=True)),
            label_col=0 if with_label else None,
            dense_cols=list(range(base, base + CRITEO_NUM_DENSE)),
            delimiter=d,
            quoted=False,
            format_hint=(
                "label, 13 dense and 26 categorical fields"
                if with_label
                else "13 dense and 26 categorical fields"
            ),
        )
        mappers: list[Any] = [
            _HexModIds(n, missing, max_ind_range)
            if max_ind_range
            else _FirstSeenIds(n, missing, hex_only=True, sep=None)
            for n in names
        ]
        params = {
            "batch_size": batch_size,
            "dim": dim,
            "delimiter": d,
            "header": header,
            "missing": missing,
            "max_ind_range": max_ind_range,
            "dense_transform": "log(max(x,0)+1) float32, missing=0 (dlrm)",
        }
        return _run(
            path,
            output,
            reader,
            blocks if header else chain([(ln0, [text0])], blocks),
            lay,
            mappers,
            batch_size,
            dim,
            None,
            criteo_dense_transform,
            "criteo",
            params,
            vocab_out,
        )
    finally:
        reader.close()


def _check_missing(missing: str) -> None:
    if missing not in MISSING_POLICIES:
        raise ConvertError(
            f"unknown missing-value policy {missing!r}",
            where="option --missing",
            fix="use --missing row or --missing empty-bag",
        )


# --------------------------------------------------------------------------------------------
# Avazu
# --------------------------------------------------------------------------------------------
def convert_avazu(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dim: int = DEFAULT_DIM,
    missing: MissingPolicy = "row",
    vocab_out: str | os.PathLike[str] | None = None,
) -> ConvertResult:
    """Convert Avazu CTR CSV (header ``id,click,hour,C1,…,C21``) to a ``.trc``.

    The label is ``click`` (absent in Avazu's ``test`` file: the trace then has no labels). ``id`` is
    a per-sample identifier and is dropped; every other column (``hour, C1, banner_pos, site_id,
    site_domain, site_category, app_id, app_domain, app_category, device_id, device_ip,
    device_model, device_type, device_conn_type, C14..C21``: 22 in the training file) is a table,
    with dense ids per distinct value string in order of first appearance. No dense features.
    ``vocab_out`` names a JSON file to receive the raw value of every row.
    """
    path = check_input(input)
    _check_missing(missing)
    _check_vocab_out(vocab_out, None)
    reader, blocks, (ln0, text0) = _first_line(path)
    try:
        fields = [f.strip() for f in text0.split(",")]
        if fields[0] != "id" or len(fields) < 3:
            raise ConvertError(
                "the first line is not the Avazu header (id,click,hour,C1,…,C21)",
                path=path,
                where=f"line {ln0}",
                fix="pass the Avazu CSV with its header line",
            )
        if len(set(fields)) != len(fields):
            raise ConvertError(
                "the header names a column twice",
                path=path,
                where=f"line {ln0}",
                fix="each column name must be unique",
            )
        label_col = fields.index("click") if "click" in fields else None
        tables = [(f, i) for i, f in enumerate(fields) if f not in AVAZU_DROP]
        lay = _Layout(
            num_fields=len(fields),
            tables=tables,
            label_col=label_col,
            dense_cols=[],
            delimiter=",",
            quoted=False,
            format_hint=f"the {len(fields)} comma-separated fields named in the header",
        )
        mappers: list[Any] = [
            _FirstSeenIds(n, missing, hex_only=False, sep=None) for n, _ in tables
        ]
        params = {"batch_size": batch_size, "dim": dim, "missing": missing}
        return _run(
            path,
            output,
            reader,
            blocks,
            lay,
            mappers,
            batch_size,
            dim,
            None,
            None,
            "avazu",
            params,
            vocab_out,
        )
    finally:
        reader.close()


# --------------------------------------------------------------------------------------------
# MovieLens (DeepCTR sample layout)
# --------------------------------------------------------------------------------------------
def convert_movielens(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dim: int = DEFAULT_DIM,
    missing: MissingPolicy = "row",
    binary_label: bool = False,
    vocab_out: str | os.PathLike[str] | None = None,
) -> ConvertResult:
    """Convert MovieLens ratings joined with user/movie features (DeepCTR layout) to a ``.trc``.

    Header ``user_id,movie_id,rating,timestamp,title,genres,gender,age,occupation,zip``. Tables, in
    this order when present: ``user_id, movie_id, genres, gender, age, occupation, zip``. ``genres``
    is multi-hot: one bag holding every ``|``-separated genre of the sample, in the order written.
    ``title`` is dropped (one title per ``movie_id``, so it adds no lookups pattern of its own) and so
    is ``timestamp``. The label is ``rating`` (1..5) or, with ``binary_label``, ``rating >= 4``.
    ``vocab_out`` names a JSON file to receive the raw value of every row.
    """
    path = check_input(input)
    _check_missing(missing)
    _check_vocab_out(vocab_out, None)
    reader, blocks, (ln0, text0) = _first_line(path)
    try:
        fields = [f.strip() for f in next(csv.reader([text0]))]
        required = ("user_id", "movie_id", "rating")
        if not all(r in fields for r in required):
            raise ConvertError(
                "the first line is not a MovieLens header with user_id, movie_id and rating",
                path=path,
                where=f"line {ln0}",
                fix="pass the DeepCTR-layout CSV "
                "(user_id,movie_id,rating,timestamp,title,genres,gender,age,occupation,zip)",
            )
        tables = [(n, fields.index(n)) for n in MOVIELENS_TABLES if n in fields]
        lay = _Layout(
            num_fields=len(fields),
            tables=tables,
            label_col=fields.index("rating"),
            dense_cols=[],
            delimiter=",",
            quoted=True,
            format_hint=f"the {len(fields)} comma-separated fields named in the header",
        )
        mappers: list[Any] = [
            _FirstSeenIds(n, missing, hex_only=False, sep=MOVIELENS_MULTI.get(n)) for n, _ in tables
        ]
        params = {
            "batch_size": batch_size,
            "dim": dim,
            "missing": missing,
            "binary_label": binary_label,
        }

        def label_fn(r: np.ndarray) -> np.ndarray:
            return (r >= 4).astype(np.float32) if binary_label else r

        return _run(
            path,
            output,
            reader,
            blocks,
            lay,
            mappers,
            batch_size,
            dim,
            label_fn,
            None,
            "movielens",
            params,
            vocab_out,
        )
    finally:
        reader.close()
