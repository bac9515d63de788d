"""The shipped synthetic trace is exactly what its recorded provenance regenerates today."""

from __future__ import annotations

from pathlib import Path

from simrec.trace.format import read_trace
from simrec.trace.generate import regenerate

REPO = Path(__file__).resolve().parents[1]


def test_synthetic_criteo_trace_regenerates_byte_identical(tmp_path: Path) -> None:
    shipped = REPO / "traces" / "criteo_kaggle_synth.trc"
    r = read_trace(shipped)
    r.validate()
    assert r.header.num_tables == 26 and r.header.num_dense == 13 and r.header.has_labels
    # Kaggle cardinalities, reference/data.md §1.1
    assert [t.rows for t in r.header.tables][:3] == [1460, 583, 10131227]
    out = tmp_path / "again.trc"
    regenerate(r.header.provenance, out)
    assert out.read_bytes() == shipped.read_bytes()
