"""Tests of simrec.errors: the error message shape and atomic_output."""

from __future__ import annotations

from pathlib import Path

import pytest

from simrec.errors import SimrecError, atomic_output


def test_message_names_place_and_fix() -> None:
    e = SimrecError("bad value.", path="a.yaml", where="field x", fix="use 3.")
    assert str(e) == "a.yaml: field x: bad value. Fix: use 3."


def test_atomic_output_renames_on_success(tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    with atomic_output(out) as tmp:
        tmp.write_text("{}")
        assert not out.exists()
    assert out.read_text() == "{}"
    assert list(tmp_path.iterdir()) == [out]


def test_atomic_output_leaves_nothing_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(out) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert out.read_text() == "old"
    assert list(tmp_path.iterdir()) == [out]


def test_atomic_output_commit_discard_and_distinct_temps(tmp_path: Path) -> None:
    a, b = atomic_output(tmp_path / "x"), atomic_output(tmp_path / "x")
    assert a.tmp != b.tmp  # two writers of one path never share a temporary file
    a.tmp.write_text("a")
    b.tmp.write_text("b")
    b.discard()
    b.discard()  # idempotent
    assert a.commit() == tmp_path / "x"
    assert (tmp_path / "x").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_atomic_output_missing_folder(tmp_path: Path) -> None:
    out = atomic_output(tmp_path / "nope" / "o.json")
    with pytest.raises(SimrecError, match="output folder does not exist.*Fix: create"):
        out.__enter__()
