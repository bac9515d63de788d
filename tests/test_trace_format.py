"""The .trc container: round trips, streaming reads, and every kind of bad input."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simrec.cli import cli
from simrec.errors import TraceFormatError
from simrec.trace.format import (
    FORMAT_VERSION,
    Batch,
    TableSpec,
    TraceHeader,
    TraceReader,
    TraceWriter,
    offsets_from_lengths,
    read_trace,
    write_trace,
)


def header(T=3, rows=(10, 20, 30), B=4, **kw) -> TraceHeader:
    tables = [TableSpec(name=f"t{i}", rows=rows[i], dim=8) for i in range(T)]
    return TraceHeader(tables=tables, batch_size=B, **kw)


def csr(lengths: np.ndarray, rng: np.random.Generator, rows: np.ndarray):
    """Table-major CSR (offsets, indices) for bag sizes ``lengths`` [T, B] with in-range indices."""
    T, B = lengths.shape
    off = np.concatenate([[0], np.cumsum(lengths.ravel())]).astype(np.int64)
    idx = np.empty(off[-1], dtype=np.int64)
    for t in range(T):
        s, e = off[t * B], off[(t + 1) * B]
        idx[s:e] = rng.integers(0, rows[t], size=e - s)
    return off, idx


def test_round_trip_all_fields(tmp_path: Path) -> None:
    h = header(has_weights=True, num_dense=2, has_labels=True, index_dtype="int32")
    rng = np.random.default_rng(1)
    batches = []
    for k in range(3):
        b = 4 if k < 2 else 3  # last batch partial
        lengths = rng.integers(0, 4, size=(3, b))
        off, idx = csr(lengths, rng, h.rows)
        batches.append(
            dict(
                offsets=off,
                indices=idx,
                weights=rng.random(len(idx)),
                dense=rng.random((b, 2)),
                labels=rng.integers(0, 2, b),
                arrival_s=0.5 * k,
            )
        )
    p = write_trace(tmp_path / "a.trc", h, batches)
    r = read_trace(p)
    assert r.header == h
    assert len(r) == 3
    assert r.num_samples == 11
    assert r.total_lookups == sum(len(b["indices"]) for b in batches)
    for k, (want, got) in enumerate(zip(batches, r, strict=True)):
        np.testing.assert_array_equal(got.offsets, want["offsets"])
        np.testing.assert_array_equal(got.indices, want["indices"])
        assert got.indices.dtype == np.dtype("<i4")
        np.testing.assert_array_equal(got.weights, want["weights"].astype(np.float32))
        np.testing.assert_array_equal(got.dense, want["dense"].astype(np.float32))
        np.testing.assert_array_equal(got.labels, want["labels"].astype(np.float32))
        assert got.arrival_s == 0.5 * k
        lengths = got.lengths()
        assert lengths.shape == (3, got.batch_size)
        for t in range(3):
            want_t = want["indices"][
                want["offsets"][t * got.batch_size] : want["offsets"][(t + 1) * got.batch_size]
            ]
            np.testing.assert_array_equal(got.table_indices(t), want_t)
            assert got.table_offsets(t)[0] == 0
            assert got.table_offsets(t)[-1] == len(want_t)
        np.testing.assert_array_equal(got.lookups_per_table(), lengths.sum(axis=1))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    T=st.integers(1, 5),
    B=st.integers(1, 6),
    nb=st.integers(1, 4),
    maxlen=st.integers(0, 5),
    seed=st.integers(0, 2**31 - 1),
    weights=st.booleans(),
    dtype=st.sampled_from(["int32", "int64"]),
)
def test_round_trip_property(tmp_path_factory, T, B, nb, maxlen, seed, weights, dtype) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.integers(1, 10**6, size=T)
    h = TraceHeader(
        tables=[TableSpec(name=f"f{i}", rows=int(rows[i]), dim=4) for i in range(T)],
        batch_size=B,
        index_dtype=dtype,
        has_weights=weights,
    )
    batches = []
    for _ in range(nb):
        off, idx = csr(rng.integers(0, maxlen + 1, size=(T, B)), rng, rows)
        d = dict(offsets=off, indices=idx)
        if weights:
            d["weights"] = rng.standard_normal(len(idx)).astype(np.float32)
        batches.append(d)
    p = tmp_path_factory.mktemp("rt") / "x.trc"
    write_trace(p, h, batches)
    r = read_trace(p)
    assert r.header == h
    for want, got in zip(batches, r, strict=True):
        np.testing.assert_array_equal(got.offsets, want["offsets"])
        np.testing.assert_array_equal(got.indices.astype(np.int64), want["indices"])
        if weights:
            np.testing.assert_array_equal(got.weights, want["weights"])
    # Deterministic bytes: writing the same batches again gives an identical file.
    p2 = p.with_name("y.trc")
    write_trace(p2, h, batches)
    assert p.read_bytes() == p2.read_bytes()


def test_random_access_reads_only_that_batch(tmp_path: Path) -> None:
    """batch(i) works without touching the others: corrupt batch 0, batch 1 still reads."""
    h = header()
    rng = np.random.default_rng(0)
    batches = [
        dict(zip(("offsets", "indices"), csr(rng.integers(1, 3, (3, 4)), rng, h.rows), strict=True))
        for _ in range(2)
    ]
    p = write_trace(tmp_path / "a.trc", h, batches)
    r = read_trace(p)
    pos0 = int(r.index["pos"][0])
    data = bytearray(p.read_bytes())
    data[pos0 + 8 * 13 + 1] ^= 0xFF  # inside batch 0's indices
    p.write_bytes(bytes(data))
    r = read_trace(p)
    np.testing.assert_array_equal(r.batch(1).indices, batches[1]["indices"])
    with pytest.raises(TraceFormatError, match="batch 0.*checksum"):
        r.batch(0)


def test_offsets_from_lengths_inverts_batch_lengths() -> None:
    lengths = np.array([[2, 0, 1], [3, 1, 0]], dtype=np.int32)
    off = offsets_from_lengths(lengths)
    assert off.dtype == np.int64
    np.testing.assert_array_equal(off, [0, 2, 2, 3, 6, 7, 7])  # by hand: running sums
    b = Batch(offsets=off, indices=np.zeros(7, dtype=np.int64), num_tables=2)
    np.testing.assert_array_equal(b.lengths(), lengths)
    np.testing.assert_array_equal(offsets_from_lengths(np.zeros((0, 4), np.int64)), [0])


def test_release_keeps_batches_readable(tmp_path: Path) -> None:
    """release(i) is only a paging hint: earlier views and later reads see the same data."""
    h = header()
    rng = np.random.default_rng(1)
    batches = [
        dict(zip(("offsets", "indices"), csr(rng.integers(1, 4, (3, 4)), rng, h.rows), strict=True))
        for _ in range(5)
    ]
    p = write_trace(tmp_path / "r.trc", h, batches)
    r = read_trace(p)
    views = [r.batch(i) for i in range(len(r))]
    for through in (-1, 0, 2, len(r) - 1, len(r) + 3):  # no-ops at the ends must not raise
        r.release(through)
    for i, b in enumerate(batches):
        np.testing.assert_array_equal(views[i].indices, b["indices"])
        np.testing.assert_array_equal(r.batch(i).offsets, b["offsets"])
    r.close()
    r.release(0)  # after close: nothing to release, no error
    np.testing.assert_array_equal(views[3].indices, batches[3]["indices"])


# --- writer-side validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "offsets,indices,match",
    [
        ([0, 1, 2], [0, 1], "not T\\*b\\+1"),
        ([0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 9], "batch_size"),  # b = 2 samples > batch_size 1
        ([0, 2, 1, 3], [0, 1, 2], "decrease"),
        ([1, 2, 3, 4], [0, 1, 2], "start at 0"),
        ([0, 1, 2, 3], [0, -1, 2], "negative index"),
        ([0, 1, 2, 3], [0, 1, 25], "index 25 >= rows 20"),
    ],
)
def test_writer_rejects_bad_batches(tmp_path: Path, offsets, indices, match) -> None:
    h = header(T=3, rows=(10, 10, 20), B=1)
    out = tmp_path / "bad.trc"
    with pytest.raises(TraceFormatError, match=match) as ei, TraceWriter(out, h) as w:
        w.write_batch(offsets, indices)
    assert str(out) in str(ei.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either


def test_index_error_names_table(tmp_path: Path) -> None:
    h = header(T=3, rows=(10, 10, 20), B=1)
    with pytest.raises(TraceFormatError) as ei, TraceWriter(tmp_path / "x.trc", h) as w:
        w.write_batch([0, 1, 2, 3], [0, 10, 2])
    msg = str(ei.value)
    assert "table 't1'" in msg and "batch 0" in msg and "Fix:" in msg


def test_empty_trace_is_an_error(tmp_path: Path) -> None:
    with (
        pytest.raises(TraceFormatError, match="no batches"),
        TraceWriter(tmp_path / "e.trc", header()),
    ):
        pass
    assert not (tmp_path / "e.trc").exists()


def test_header_validation() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        TraceHeader(tables=[TableSpec(name="a", rows=1, dim=1)] * 2, batch_size=1)
    with pytest.raises(ValueError):
        TableSpec(name="a", rows=0, dim=1)
    with pytest.raises(ValueError, match="int32"):
        TraceHeader(
            tables=[TableSpec(name="a", rows=2**32, dim=1)], batch_size=1, index_dtype="int32"
        )


# --- reader-side: damaged files -----------------------------------------------------------------


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    h = header()
    rng = np.random.default_rng(3)
    batches = [
        dict(zip(("offsets", "indices"), csr(rng.integers(0, 3, (3, 4)), rng, h.rows), strict=True))
        for _ in range(3)
    ]
    return write_trace(tmp_path / "good.trc", h, batches)


def _expect_error(path: Path, match: str) -> TraceFormatError:
    with pytest.raises(TraceFormatError, match=match) as ei:
        TraceReader(path).validate()
    assert str(path) in str(ei.value)
    assert "Fix:" in str(ei.value)
    return ei.value


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.trc"
    p.write_bytes(b"")
    _expect_error(p, "empty")


def test_wrong_magic(tmp_path: Path) -> None:
    p = tmp_path / "x.trc"
    p.write_bytes(b"label,I1,I2\n0,1,2\n" * 10)
    _expect_error(p, "wrong magic")


def test_wrong_version(good: Path) -> None:
    data = bytearray(good.read_bytes())
    struct.pack_into("<H", data, 8, FORMAT_VERSION[0] + 1)
    good.write_bytes(bytes(data))
    _expect_error(good, "version 2")


@pytest.mark.parametrize("cut", [10, 100, 300, -1, -33])
def test_truncated(good: Path, cut: int) -> None:
    data = good.read_bytes()
    good.write_bytes(data[:cut])
    _expect_error(good, "truncated|inconsistent")


def test_corrupted_header_json(good: Path) -> None:
    data = bytearray(good.read_bytes())
    data[30] = ord("}")
    good.write_bytes(bytes(data))
    _expect_error(good, "header")


def test_bit_flip_in_offsets(good: Path) -> None:
    r = TraceReader(good)
    pos = int(r.index["pos"][2])
    data = bytearray(good.read_bytes())
    data[pos + 8] ^= 0x40
    good.write_bytes(bytes(data))
    e = _expect_error(good, "checksum")
    assert e.where == "batch 2"


def test_unverified_read_still_reports_csr_errors_on_validate(tmp_path: Path) -> None:
    """A file whose CRC matches but whose data is wrong (a buggy writer) is still caught."""
    h = header(T=1, rows=(5,), B=2)
    p = tmp_path / "x.trc"
    with TraceWriter(p, h) as w:
        w.write_batch([0, 1, 2], [1, 2])
    # Re-write the index value and fix up the CRC, as a buggy third-party writer would.
    import zlib

    r = TraceReader(p)
    pos = int(r.index["pos"][0])
    data = bytearray(p.read_bytes())
    struct.pack_into("<q", data, pos + 64, 7)  # int64 indices start at the next 64-byte boundary
    end = pos + 64 + 16
    crc = zlib.crc32(bytes(data[pos:end]))
    idx_pos = struct.unpack_from("<Q", data, len(data) - 32)[0]
    struct.pack_into("<I", data, idx_pos + 32, crc)
    p.write_bytes(bytes(data))
    _expect_error(p, "index 7 >= rows 5")


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_info_and_validate(good: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["trace", "info", str(good)])
    assert res.exit_code == 0, res.output
    assert "tables       3" in res.output and "t2" in res.output
    res = runner.invoke(cli, ["trace", "info", "--json", str(good)])
    import json

    info = json.loads(res.output)
    assert info["num_batches"] == 3 and [t["rows"] for t in info["tables"]] == [10, 20, 30]
    res = runner.invoke(cli, ["trace", "validate", str(good)])
    assert res.exit_code == 0 and "ok" in res.output


def test_cli_bad_file_exit_2_no_traceback(tmp_path: Path) -> None:
    p = tmp_path / "bad.trc"
    p.write_bytes(b"garbage" * 20)
    res = CliRunner().invoke(cli, ["trace", "info", str(p)])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert "bad.trc" in res.output and "Fix:" in res.output
