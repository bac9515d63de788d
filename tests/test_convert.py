"""Tests of the trace converters (``simrec trace convert`` / ``simrec trace export``).

Expected values come from reading the raw files independently with the ``csv`` module (never
through the converters) and from ``reference/data.md`` §3 (the DeepCTR Criteo sample's golden
counts and SHA-256) and ``anchors.md`` §3.2 (dlrm's ``trace.log``).
"""

from __future__ import annotations

import csv
import datetime
import gzip
import hashlib
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simrec.cli import cli
from simrec.errors import ConvertError, SimrecError
from simrec.trace.convert import convert, export, export_command
from simrec.trace.format import TraceReader

REPO = Path(__file__).resolve().parents[1]
CRITEO_TXT = REPO / "traces" / "criteo_sample.txt"
CRITEO_TRC = REPO / "traces" / "criteo_sample.trc"

# reference/data.md §3: the DeepCTR Criteo sample
CRITEO_SHA256 = "08b84f12a22438fb534e989a5e4fa245726b2bda001983556bc2aea2f094f724"
CRITEO_DISTINCT = [27, 92, 172, 157, 12, 7, 183, 19, 2, 142, 173, 170, 166, 14, 170, 168, 9, 127,
                   44, 4, 169, 6, 10, 125, 20, 90]  # fmt: skip
CRITEO_MISSING = [0, 0, 9, 9, 0, 32, 0, 0, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 82, 82, 9, 159, 0, 9, 82,
                  82]  # fmt: skip
CRITEO_POSITIVES = 49


# --------------------------------------------------------------------------------------------
# helpers: independent readers
# --------------------------------------------------------------------------------------------
def raw_rows(path: Path, delimiter: str = ",", header: bool = True) -> list[list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    return rows[1:] if header else rows


def first_seen_ids(values: list[str]) -> list[int]:
    d: dict[str, int] = {}
    return [d.setdefault(v, len(d)) for v in values]


def trace_columns(path: Path) -> tuple[list[list[list[int]]], np.ndarray | None, np.ndarray | None]:
    """Per table, the list of bags (each a list of ints) over all samples; plus dense and labels."""
    r = TraceReader(path)
    T = r.header.num_tables
    bags: list[list[list[int]]] = [[] for _ in range(T)]
    dense, labels = [], []
    for b in r:
        for t in range(T):
            off = b.table_offsets(t)
            idx = b.table_indices(t)
            bags[t].extend(idx[off[s] : off[s + 1]].tolist() for s in range(b.batch_size))
        if b.dense is not None:
            dense.append(np.array(b.dense))
        if b.labels is not None:
            labels.append(np.array(b.labels))
    return (
        bags,
        np.concatenate(dense) if dense else None,
        np.concatenate(labels) if labels else None,
    )


def no_leftovers(folder: Path, allowed: set[str]) -> None:
    left = {p.name for p in folder.iterdir()} - allowed
    assert not left, f"partial or temporary files left behind: {sorted(left)}"


@pytest.fixture(scope="module")
def criteo_raw() -> list[list[str]]:
    return raw_rows(CRITEO_TXT)


@pytest.fixture(scope="module")
def criteo_trc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("criteo") / "c.trc"
    convert("criteo", CRITEO_TXT, out)
    return out


# --------------------------------------------------------------------------------------------
# the shipped Criteo sample
# --------------------------------------------------------------------------------------------
def test_shipped_raw_file_is_the_deepctr_sample(shared_data: Path) -> None:
    data = CRITEO_TXT.read_bytes()
    assert hashlib.sha256(data).hexdigest() == CRITEO_SHA256  # data.md §3
    assert data == (shared_data / "criteo_sample.txt").read_bytes()


def test_raw_sample_golden_counts(criteo_raw: list[list[str]]) -> None:
    """The independent reader itself agrees with data.md §3 (guards the helpers below)."""
    assert len(criteo_raw) == 200
    cats = list(zip(*[r[14:] for r in criteo_raw], strict=True))
    assert [len(set(c)) for c in cats] == CRITEO_DISTINCT
    assert [sum(v == "" for v in c) for c in cats] == CRITEO_MISSING
    assert sum(int(r[0]) for r in criteo_raw) == CRITEO_POSITIVES


def test_criteo_header_and_counts(criteo_trc: Path) -> None:
    r = TraceReader(criteo_trc)
    h = r.header
    assert r.num_samples == 200
    assert h.num_tables == 26
    assert h.table_names == [f"C{j}" for j in range(1, 27)]
    assert [t.rows for t in h.tables] == CRITEO_DISTINCT  # data.md §3, empty counted as a value
    assert sum(t.rows for t in h.tables) == 2278  # data.md §3: Σ 2,278
    assert h.num_dense == 13 and h.has_labels
    assert h.batch_size == 128 and len(r) == 2  # 128 + 72
    assert r.total_lookups == 200 * 26
    assert h.provenance["source"] == "criteo_sample.txt"
    assert h.provenance["source_sha256"] == CRITEO_SHA256
    assert h.provenance["converter"] == "criteo"


def test_criteo_ids_map_back_to_raw_hex(criteo_trc: Path, criteo_raw: list[list[str]]) -> None:
    bags, _, _ = trace_columns(criteo_trc)
    for t in range(26):
        raw = [r[14 + t] for r in criteo_raw]
        expected = first_seen_ids(raw)  # dense ids in order of first appearance
        got = [b[0] for b in bags[t]]
        assert all(len(b) == 1 for b in bags[t])
        assert got == expected, f"table C{t + 1}"
        # and therefore each id names exactly one raw value
        back: dict[int, str] = {}
        for i, v in zip(got, raw, strict=True):
            assert back.setdefault(i, v) == v


def test_criteo_labels_and_dense(criteo_trc: Path, criteo_raw: list[list[str]]) -> None:
    _, dense, labels = trace_columns(criteo_trc)
    assert labels is not None and dense is not None
    assert labels.tolist() == [float(r[0]) for r in criteo_raw]
    assert int(labels.sum()) == CRITEO_POSITIVES
    # dlrm: missing -> 0, negative -> 0, then log(x + 1)
    expected = np.array(
        [[math.log(max(float(v), 0.0) + 1.0) if v else 0.0 for v in r[1:14]] for r in criteo_raw]
    )
    assert dense.shape == (200, 13)
    np.testing.assert_allclose(dense, expected, rtol=1e-6, atol=0)
    # the sample has a -1 in I2 (line 3): clamped to 0
    assert criteo_raw[1][2] == "-1" and dense[1, 1] == 0.0


def test_criteo_vocab_out_maps_rows_to_raw_values(
    tmp_path: Path, criteo_raw: list[list[str]]
) -> None:
    out, voc = tmp_path / "v.trc", tmp_path / "v.json"
    code, text = _run_cli(
        ["trace", "convert", "--from", "criteo", str(CRITEO_TXT), "-o", str(out),
         "--vocab-out", str(voc)]
    )  # fmt: skip
    assert code == 0, text
    doc = json.loads(voc.read_text())
    assert doc["source_sha256"] == CRITEO_SHA256
    assert [len(t["values"]) for t in doc["tables"]] == CRITEO_DISTINCT
    bags, _, _ = trace_columns(out)
    for t, tab in enumerate(doc["tables"]):
        assert [tab["values"][b[0]] for b in bags[t]] == [r[14 + t] for r in criteo_raw]
    assert out.read_bytes() == CRITEO_TRC.read_bytes()  # the option does not change the trace


def test_shipped_trace_is_current(tmp_path: Path) -> None:
    """traces/criteo_sample.trc is byte for byte what the converter produces today."""
    out = tmp_path / "criteo_sample.trc"
    res = CliRunner().invoke(
        cli, ["trace", "convert", "--from", "criteo", str(CRITEO_TXT), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == CRITEO_TRC.read_bytes(), (
        "traces/criteo_sample.trc is stale: regenerate it with the command in traces/README.md"
    )


def test_criteo_empty_bag_policy(tmp_path: Path, criteo_raw: list[list[str]]) -> None:
    out = tmp_path / "e.trc"
    res = convert("criteo", CRITEO_TXT, out, missing="empty-bag")
    assert res.num_lookups == 200 * 26 - sum(CRITEO_MISSING)
    bags, _, _ = trace_columns(out)
    h = TraceReader(out).header
    for t in range(26):
        raw = [r[14 + t] for r in criteo_raw]
        assert sum(len(b) == 0 for b in bags[t]) == CRITEO_MISSING[t]
        present = [v for v in raw if v]
        assert h.tables[t].rows == max(1, len(set(present)))
        assert [b[0] for b in bags[t] if b] == first_seen_ids(present)
    assert h.provenance["params"]["missing_rows"] == [None] * 26


def test_criteo_max_ind_range(tmp_path: Path, criteo_raw: list[list[str]]) -> None:
    out = tmp_path / "h.trc"
    n = 97
    convert("criteo", CRITEO_TXT, out, max_ind_range=n)
    h = TraceReader(out).header
    assert [t.rows for t in h.tables] == [n] * 26
    bags, _, _ = trace_columns(out)
    for t in range(26):
        # dlrm data_utils.py: empty -> "0", then int(x, 16) % max_ind_range
        expected = [int(r[14 + t] or "0", 16) % n for r in criteo_raw]
        assert [b[0] for b in bags[t]] == expected


def test_criteo_tab_separated_gz_without_header(tmp_path: Path, criteo_trc: Path) -> None:
    """The real data's layout (tabs, no header, gzipped) gives the same samples as the sample."""
    rows = raw_rows(CRITEO_TXT)
    text = "\n".join("\t".join(r) for r in rows) + "\n"
    src = tmp_path / "day_0.gz"
    src.write_bytes(gzip.compress(text.encode()))
    out = tmp_path / "tab.trc"
    convert("criteo", src, out)
    a, b = TraceReader(criteo_trc), TraceReader(out)
    assert b.header.provenance["params"]["delimiter"] == "\t"
    assert b.header.provenance["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert [t.rows for t in a.header.tables] == [t.rows for t in b.header.tables]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.offsets, y.offsets)
        np.testing.assert_array_equal(x.indices, y.indices)
        np.testing.assert_array_equal(x.dense, y.dense)
        np.testing.assert_array_equal(x.labels, y.labels)


def test_criteo_batch_size_and_dim(tmp_path: Path, criteo_trc: Path) -> None:
    out = tmp_path / "b.trc"
    convert("criteo", CRITEO_TXT, out, batch_size=7, dim=64)
    r = TraceReader(out)
    assert len(r) == math.ceil(200 / 7) and r.batch(-1).batch_size == 200 % 7
    assert {t.dim for t in r.header.tables} == {64}
    assert trace_columns(out)[0] == trace_columns(criteo_trc)[0]


# --------------------------------------------------------------------------------------------
# Avazu and MovieLens
# --------------------------------------------------------------------------------------------
def test_avazu(tmp_path: Path, shared_data: Path) -> None:
    src = shared_data / "avazu_sample.txt"
    out = tmp_path / "a.trc"
    convert("avazu", src, out)
    with open(src, newline="") as f:
        rows = list(csv.reader(f))
    head, rows = rows[0], rows[1:]
    assert len(rows) == 100
    names = [c for c in head if c not in ("id", "click")]
    assert len(names) == 22
    h = TraceReader(out).header
    assert h.table_names == names and h.has_labels and h.num_dense == 0
    bags, _, labels = trace_columns(out)
    assert labels is not None
    assert labels.tolist() == [float(r[head.index("click")]) for r in rows]
    for t, name in enumerate(names):
        col = [r[head.index(name)] for r in rows]
        assert h.tables[t].rows == len(set(col))
        assert [b[0] for b in bags[t]] == first_seen_ids(col)


@pytest.mark.parametrize("binary_label", [False, True])
def test_movielens(tmp_path: Path, shared_data: Path, binary_label: bool) -> None:
    src = shared_data / "movielens_sample.txt"
    out = tmp_path / "m.trc"
    convert("movielens", src, out, binary_label=binary_label)
    with open(src, newline="") as f:
        recs = list(csv.DictReader(f))
    assert len(recs) == 200
    h = TraceReader(out).header
    names = ["user_id", "movie_id", "genres", "gender", "age", "occupation", "zip"]
    assert h.table_names == names
    bags, _, labels = trace_columns(out)
    assert labels is not None
    ratings = [float(r["rating"]) for r in recs]
    assert labels.tolist() == ([float(x >= 4) for x in ratings] if binary_label else ratings)
    g = names.index("genres")
    genre_lists = [r["genres"].split("|") for r in recs]
    assert [len(b) for b in bags[g]] == [len(x) for x in genre_lists]
    flat = [x for gl in genre_lists for x in gl]
    assert [i for b in bags[g] for i in b] == first_seen_ids(flat)
    assert h.tables[g].rows == len(set(flat))
    for t, name in enumerate(names):
        if name != "genres":
            assert [b[0] for b in bags[t]] == first_seen_ids([r[name] for r in recs])


# --------------------------------------------------------------------------------------------
# dlrm trace.log
# --------------------------------------------------------------------------------------------
def test_dlrm_trace_text_and_binary(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "t.trc"
    convert("dlrm-trace", shared_data / "dlrm_trace.log", out, batch_size=4)
    expected = [1, 2, 3, 4, 5, 3, 4, 1, 1, 6, 3]  # anchors.md §3.2: input/trace.log
    r = TraceReader(out)
    assert r.header.table_names == ["trace"] and r.header.tables[0].rows == 7
    assert np.concatenate([b.indices for b in r]).tolist() == expected
    assert all((b.lengths() == 1).all() for b in r) and len(r) == 3
    binf = tmp_path / "trace.bin"
    np.array(expected, dtype="<u8").tofile(binf)
    out2 = tmp_path / "t2.trc"
    convert("dlrm-trace", binf, out2, binary=True, batch_size=4)
    r2 = TraceReader(out2)
    assert np.concatenate([b.indices for b in r2]).tolist() == expected
    assert r2.header.tables[0].rows == 7


def test_dlrm_trace_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.log"
    bad.write_text("1, 2, 3,\n4, x5, 6\n")
    with pytest.raises(ConvertError) as e:
        convert("dlrm-trace", bad, tmp_path / "o.trc")
    assert e.value.where == "line 2" and "x5" in str(e.value)
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"\x01" * 12)
    with pytest.raises(ConvertError, match="multiple of 8"):
        convert("dlrm-trace", odd, tmp_path / "o.trc", binary=True)
    blank = tmp_path / "blank.log"
    blank.write_text(" \n")
    with pytest.raises(ConvertError, match="no data samples"):
        convert("dlrm-trace", blank, tmp_path / "o.trc")
    no_leftovers(tmp_path, {"bad.log", "odd.bin", "blank.log"})


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
def _run_cli(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(cli, args)
    return res.exit_code, res.output + (res.stderr if res.stderr_bytes else "")


def _criteo_lines() -> list[str]:
    return CRITEO_TXT.read_text().splitlines()


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda ls: ls[:5] + [ls[5] + ",extra"] + ls[6:], "line 6: the line has 41 fields"),
        (lambda ls: ls[:3] + [ls[3].rsplit(",", 2)[0]] + ls[4:], "line 4: the line has 38 fields"),
        (lambda ls: ls[:8] + [ls[8].replace("05db9164", "05zz9164")] + ls[9:], "line 9, field C1"),
        (lambda ls: ls[:2] + [ls[2].replace(",-1,", ",abc,", 1)] + ls[3:], "line 3, field I2"),
        (lambda ls: ls[:1], "holds no data samples"),
        (lambda ls: [""], "is empty"),
    ],
    ids=["too-many-fields", "too-few-fields", "non-hex", "bad-dense", "header-only", "empty"],
)
def test_criteo_bad_input_cli(tmp_path: Path, edit, needle: str) -> None:
    src = tmp_path / "in.txt"
    lines = edit(_criteo_lines())
    src.write_text("\n".join(lines) + ("\n" if lines != [""] else ""))
    out = tmp_path / "out.trc"
    code, text = _run_cli(["trace", "convert", "--from", "criteo", str(src), "-o", str(out)])
    assert code == 2, text
    assert needle in text and "Fix:" in text and str(src) in text
    assert "Traceback" not in text
    assert not out.exists()
    no_leftovers(tmp_path, {"in.txt"})


@pytest.mark.parametrize("missing", ["row", "empty-bag"])
@pytest.mark.parametrize("max_ind_range", [None, 1000])
def test_criteo_non_hex_line_number_after_missing(
    tmp_path: Path, missing: str, max_ind_range: int | None
) -> None:
    """The reported line is right even when empty bags shift the token positions."""
    ls = _criteo_lines()
    rows = [ln.split(",") for ln in ls]
    c3 = 14 + 2  # column of C3, which has missing values (data.md §3)
    first_missing = next(i for i in range(1, len(rows)) if rows[i][c3] == "")
    k = next(i for i in range(first_missing + 1, len(rows)) if rows[i][c3] != "")
    rows[k][c3] = "zz" + rows[k][c3][2:]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(",".join(r) for r in rows) + "\n")
    with pytest.raises(ConvertError) as e:
        convert("criteo", src, tmp_path / "o.trc", missing=missing, max_ind_range=max_ind_range)
    assert e.value.where == f"line {k + 1}, field C3"
    no_leftovers(tmp_path, {"in.txt"})


@pytest.mark.parametrize(
    ("kind", "src_name", "edit", "needle"),
    [
        ("avazu", "avazu_sample.txt", lambda ls: ls[:4] + [ls[4] + ",1"] + ls[5:],
         "line 5: the line has 25 fields, expected 24"),
        ("avazu", "avazu_sample.txt", lambda ls: ls[1:], "line 1: the first line is not the Avazu"),
        ("movielens", "movielens_sample.txt", lambda ls: ls[:3] + [ls[3] + ",x"] + ls[4:],
         "line 4: the line has 11 fields, expected 10"),
        ("movielens", "movielens_sample.txt",
         lambda ls: ls[:2] + [ls[2].replace(",3,", ",three,", 1)] + ls[3:],
         "line 3, field label"),
    ],
    ids=["avazu-fields", "avazu-header", "movielens-fields", "movielens-rating"],
)  # fmt: skip
def test_avazu_movielens_bad_input(
    tmp_path: Path, shared_data: Path, kind: str, src_name: str, edit, needle: str
) -> None:
    src = tmp_path / "in.txt"
    src.write_text("\n".join(edit((shared_data / src_name).read_text().splitlines())) + "\n")
    code, text = _run_cli(["trace", "convert", "--from", kind, str(src), "-o", str(tmp_path / "o")])
    assert code == 2 and needle in text and "Fix:" in text, text
    no_leftovers(tmp_path, {"in.txt"})


def test_unknown_kind_lists_valid_ones(tmp_path: Path) -> None:
    code, text = _run_cli(
        ["trace", "convert", "--from", "parquet", str(CRITEO_TXT), "-o", str(tmp_path / "o.trc")]
    )
    assert code == 2
    for k in ("criteo", "avazu", "movielens", "dlrm-trace", "dlrm-datasets"):
        assert k in text
    assert "--from" in text
    code, text = _run_cli(
        ["trace", "convert", "--from", "dlrm-trace", str(CRITEO_TXT), "-o",
         str(tmp_path / "x.trc"), "--tables", "1"]
    )  # fmt: skip
    assert code == 2 and "--tables does not apply" in text


def test_missing_input_and_output_folder(tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="not found"):
        convert("criteo", tmp_path / "nope.txt", tmp_path / "o.trc")
    with pytest.raises(SimrecError, match="output folder does not exist"):
        convert("criteo", CRITEO_TXT, tmp_path / "no" / "o.trc")


def test_criteo_bad_label_and_nonfinite_dense(tmp_path: Path) -> None:
    ls = _criteo_lines()
    src = tmp_path / "in.txt"
    src.write_text("\n".join([ls[0], ls[1][1:]]) + "\n")  # empty label
    with pytest.raises(ConvertError) as e:
        convert("criteo", src, tmp_path / "o.trc")
    assert e.value.where == "line 2, field label"
    src.write_text("\n".join([ls[0], ls[1].replace(",260.0,", ",inf,")]) + "\n")
    with pytest.raises(ConvertError) as e:
        convert("criteo", src, tmp_path / "o.trc")
    assert e.value.where == "line 2, field I3"


# --------------------------------------------------------------------------------------------
# property test: random Criteo-like text round-trips values and counts
# --------------------------------------------------------------------------------------------
_hex = st.text(alphabet="0123456789abcdef", min_size=1, max_size=8)
_cat = st.one_of(st.just(""), _hex, st.sampled_from(["00000001", "deadbeef", "a"]))
_dense = st.one_of(st.just(""), st.integers(-5, 10**6).map(str))
_row = st.tuples(st.integers(0, 1), st.lists(_dense, min_size=13, max_size=13),
                 st.lists(_cat, min_size=26, max_size=26))  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(_row, min_size=1, max_size=30),
    tab=st.booleans(),
    missing=st.sampled_from(["row", "empty-bag"]),
    batch_size=st.integers(1, 9),
)
def test_property_criteo_roundtrip(tmp_path: Path, rows, tab: bool, missing: str, batch_size: int):
    d = "\t" if tab else ","
    lines = [d.join([str(lab), *dense, *cats]) for lab, dense, cats in rows]
    src = tmp_path / "rand.txt"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "rand.trc"
    convert("criteo", src, out, missing=missing, batch_size=batch_size)
    r = TraceReader(out)
    assert r.num_samples == len(rows) and len(r) == math.ceil(len(rows) / batch_size)
    bags, dense, labels = trace_columns(out)
    assert labels is not None and dense is not None
    assert labels.tolist() == [float(lab) for lab, _, _ in rows]
    exp_dense = [[math.log(max(int(v), 0) + 1) if v else 0.0 for v in dn] for _, dn, _ in rows]
    np.testing.assert_allclose(dense, np.array(exp_dense).reshape(-1, 13), rtol=1e-6)
    for t in range(26):
        col = [cats[t] for _, _, cats in rows]
        if missing == "row":
            assert [b[0] for b in bags[t]] == first_seen_ids(col)
            assert r.header.tables[t].rows == len(set(col))
        else:
            assert [len(b) for b in bags[t]] == [int(v != "") for v in col]
            present = [v for v in col if v]
            assert [b[0] for b in bags[t] if b] == first_seen_ids(present)
            assert r.header.tables[t].rows == max(1, len(set(present)))
    os.remove(out)


# --------------------------------------------------------------------------------------------
# dlrm_datasets .pt round trip (needs torch)
# --------------------------------------------------------------------------------------------
def _save_pt(path: Path, tup: tuple, gz: bool) -> None:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save(tup, buf)
    path.write_bytes(gzip.compress(buf.getvalue()) if gz else buf.getvalue())


def _load_pt(path: Path) -> tuple:
    torch = pytest.importorskip("torch")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return torch.load(io.BytesIO(data), weights_only=True)


def _mels_tuple(lengths: np.ndarray, rng: np.random.Generator, dtype: str = "int64") -> tuple:
    torch = pytest.importorskip("torch")
    offsets = np.concatenate([[0], np.cumsum(lengths.ravel())])
    indices = rng.integers(0, 1000, size=int(offsets[-1]))
    return (
        torch.from_numpy(indices.astype(dtype)),
        torch.from_numpy(offsets.astype(np.int64)),
        torch.from_numpy(lengths.astype(np.int64)),
    )


def _assert_same_tuple(a: tuple, b: tuple) -> None:
    torch = pytest.importorskip("torch")
    assert len(a) == len(b) == 3
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)


@pytest.mark.torch
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("batch_size", [None, 3])
def test_pt_roundtrip(tmp_path: Path, gz: bool, batch_size: int | None) -> None:
    rng = np.random.default_rng(7)
    lengths = rng.integers(0, 5, size=(4, 10))
    lengths[2] = 0  # a table with no lookups at all
    tup = _mels_tuple(lengths, rng, dtype="int32")
    src = tmp_path / ("in.pt.gz" if gz else "in.pt")
    _save_pt(src, tup, gz)
    trc = tmp_path / "m.trc"
    res = convert("dlrm-datasets", src, trc, batch_size=batch_size)
    r = TraceReader(trc)
    assert r.num_samples == 10 and res.num_lookups == int(lengths.sum())
    assert len(r) == (1 if batch_size is None else 4)
    assert r.header.table_names == ["t0", "t1", "t2", "t3"]
    idx = tup[0].numpy().astype(np.int64)
    off = tup[1].numpy()
    for t in range(4):  # rows = max index + 1 per table (1 for an empty table)
        seg = idx[off[t * 10] : off[(t + 1) * 10]]
        assert r.header.tables[t].rows == (int(seg.max()) + 1 if len(seg) else 1)
    back = tmp_path / ("out.pt.gz" if gz else "out.pt")
    # `simrec trace export` once cli.py registers it; the command object itself until then
    res = CliRunner().invoke(export_command, ["--to", "dlrm-datasets", str(trc), "-o", str(back)])
    assert res.exit_code == 0, res.output
    assert (back.read_bytes()[:2] == b"\x1f\x8b") == gz
    _assert_same_tuple(_load_pt(back), tup)


@pytest.mark.torch
def test_pt_tables_subset_and_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 4, size=(5, 6))
    tup = _mels_tuple(lengths, rng)
    src = tmp_path / "in.pt"
    _save_pt(src, tup, gz=False)
    trc = tmp_path / "s.trc"
    convert("dlrm-datasets", src, trc, tables="4,1", rows="1000")
    r = TraceReader(trc)
    assert r.header.table_names == ["t4", "t1"]
    assert [t.rows for t in r.header.tables] == [1000, 1000]
    b = r.batch(0)
    idx, off = tup[0].numpy(), tup[1].numpy()
    for k, t in enumerate([4, 1]):  # FBGEMM's slicing: offsets[B*t : B*(t+1)+1]
        np.testing.assert_array_equal(b.table_indices(k), idx[off[6 * t] : off[6 * (t + 1)]])
        np.testing.assert_array_equal(b.lengths()[k], lengths[t])
    with pytest.raises(ConvertError, match="table 7 does not exist"):
        convert("dlrm-datasets", src, tmp_path / "x.trc", tables="7")
    with pytest.raises(ConvertError, match="--rows gives it 5 rows"):
        convert("dlrm-datasets", src, tmp_path / "x.trc", rows="5")
    no_leftovers(tmp_path, {"in.pt", "s.trc"})


@pytest.mark.torch
@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda t: [t[0], t[1]], "list of 2 elements"),
        (lambda t: {"indices": t[0]}, "holds a dict"),
        (lambda t: (t[0], t[1][:-1], t[2]), "offsets has length"),
        (lambda t: (t[0], t[1], t[2] + 1), "lengths[0, 0]"),
        (lambda t: (t[0].float(), t[1], t[2]), "not an integer type"),
        (lambda t: (t[0], t[1], t[2].flatten()), "expected 2-D"),
        (lambda t: (-t[0] - 1, t[1], t[2]), "negative index"),
    ],
    ids=["short", "dict", "offsets", "lengths", "float", "flat-lengths", "negative"],
)
def test_pt_bad_tuple(tmp_path: Path, make, needle: str) -> None:
    rng = np.random.default_rng(1)
    tup = _mels_tuple(rng.integers(1, 3, size=(2, 3)), rng)
    src = tmp_path / "bad.pt"
    _save_pt(src, make(tup), gz=False)
    out = tmp_path / "o.trc"
    code, text = _run_cli(["trace", "convert", "--from", "dlrm-datasets", str(src), "-o", str(out)])
    assert code == 2 and needle in text and "Fix:" in text and str(src) in text, text
    no_leftovers(tmp_path, {"bad.pt"})


@pytest.mark.torch
def test_pt_not_a_torch_file(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    src = tmp_path / "x.pt.gz"
    src.write_bytes(gzip.compress(b"hello"))
    with pytest.raises(ConvertError, match="not a torch-saved file"):
        convert("dlrm-datasets", src, tmp_path / "o.trc")
    pickled = tmp_path / "obj.pt"
    torch.save((torch.tensor([1]), datetime.date(2020, 1, 1)), pickled)  # not weights-only
    with pytest.raises(ConvertError, match="other than tensors"):
        convert("dlrm-datasets", pickled, tmp_path / "o.trc")
    no_leftovers(tmp_path, {"x.pt.gz", "obj.pt"})


def test_torch_missing_gives_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(SimrecError) as e:
        export("dlrm-datasets", CRITEO_TRC, tmp_path / "o.pt")
    assert "pip install 'simrec[torch]'" in str(e.value)
    src = tmp_path / "in.pt"
    src.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SimrecError, match=r"simrec\[torch\]"):
        convert("dlrm-datasets", src, tmp_path / "o.trc")
    no_leftovers(tmp_path, {"in.pt"})


@pytest.mark.torch
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    T=st.integers(1, 4),
    B=st.integers(1, 6),
    data=st.data(),
    dtype=st.sampled_from(["int32", "int64"]),
    gz=st.booleans(),
)
def test_property_pt_roundtrip(tmp_path: Path, T: int, B: int, data, dtype: str, gz: bool) -> None:
    torch = pytest.importorskip("torch")
    lengths = np.array(
        data.draw(st.lists(st.integers(0, 4), min_size=T * B, max_size=T * B))
    ).reshape(T, B)
    n = int(lengths.sum())
    indices = np.array(data.draw(st.lists(st.integers(0, 2**31 - 1), min_size=n, max_size=n)))
    offsets = np.concatenate([[0], np.cumsum(lengths.ravel())])
    tup = (
        torch.from_numpy(indices.astype(dtype)),
        torch.from_numpy(offsets.astype(np.int64)),
        torch.from_numpy(lengths.astype(np.int64)),
    )
    src = tmp_path / ("p.pt.gz" if gz else "p.pt")
    _save_pt(src, tup, gz)
    trc = tmp_path / "p.trc"
    bs = data.draw(st.one_of(st.none(), st.integers(1, B)))
    convert("dlrm-datasets", src, trc, batch_size=bs)
    back = tmp_path / ("q.pt.gz" if gz else "q.pt")
    export("dlrm-datasets", trc, back)
    _assert_same_tuple(_load_pt(back), tup)


def test_export_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="use one of: dlrm-datasets"):
        export("parquet", CRITEO_TRC, tmp_path / "o.pq")
