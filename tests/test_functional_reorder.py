"""Index reordering raises TT prefix reuse (Rec-AD / EL-Rec, papers.md §B.2)."""

from __future__ import annotations

import numpy as np
import pytest

from simrec.functional.reorder import cooccurrence_graph, reorder_rows, reuse_report
from simrec.functional.tt import TTCores
from simrec.shard import Band, DevicePlan, Plan, RowOrder, TablePlan
from simrec.trace.format import TableSpec, TraceHeader, TraceWriter, read_trace


@pytest.fixture(scope="module")
def zipf_trace(tmp_path_factory):
    """Zipf accesses whose hot rows are scattered over the id space by a random relabelling."""
    rng = np.random.default_rng(0)
    rows, b, L = 20_000, 256, 4
    hdr = TraceHeader(tables=[TableSpec(name="t", rows=rows, dim=16)], batch_size=b)
    relabel = rng.permutation(rows)
    path = tmp_path_factory.mktemp("r") / "z.trc"
    with TraceWriter(path, hdr) as w:
        for _ in range(12):
            z = np.minimum(rng.zipf(1.1, b * L), rows) - 1
            w.write_batch(np.arange(0, b * L + 1, L), relabel[z])
    return read_trace(path)


@pytest.mark.parametrize("method", ["degree", "rcm", "frequency"])
def test_reordering_raises_prefix_reuse(zipf_trace, method):
    perm = reorder_rows(zipf_trace, 0, method)
    assert np.array_equal(np.sort(perm), np.arange(20_000))  # a bijection
    rep = reuse_report(zipf_trace, 0, perm, p_last=40, method=method)
    # scattered ids: nearly one prefix per row before; grouped: several rows per prefix after
    assert rep.ratio_before < 1.5
    assert rep.ratio_after > 2 * rep.ratio_before


def test_graph_edges(tmp_path):
    hdr = TraceHeader(tables=[TableSpec(name="t", rows=10, dim=4)], batch_size=2)
    p = tmp_path / "g.trc"
    with TraceWriter(p, hdr) as w:
        w.write_batch([0, 2, 3], [1, 5, 7])  # bag {1,5}, bag {7}: path 1-5-7
        w.write_batch([0, 1, 2], [5, 1])  # path 5-1
    g = cooccurrence_graph(read_trace(p), 0)
    assert sorted(g.nodes) == [1, 5, 7]
    assert g[1][5]["weight"] == 2 and g[5][7]["weight"] == 1 and not g.has_edge(1, 7)
    perm = reorder_rows(read_trace(p), 0, "degree")
    assert perm[:3].tolist() == [5, 1, 7]  # weighted degree 3, 2, 1; untouched rows follow
    assert perm[3:].tolist() == [0, 2, 3, 4, 6, 8, 9]


def test_reordered_tt_band_gives_same_rows_with_more_reuse(zipf_trace):
    # a plan with the reordering as its row order: rank = TT index; values follow the row
    perm = reorder_rows(zipf_trace, 0, "degree")
    plan = Plan(
        devices=[DevicePlan(name="d")],
        tables=[
            TablePlan(
                name="t",
                rows=20_000,
                dim=16,
                codec={"kind": "tt", "ranks": [4, 4], "prefix_reuse": True},
                order=RowOrder(kind="hotness", permutation=perm.tolist()),
                bands=[Band(device="d", tier="sram", rows=(0, 20_000))],
            )
        ],
    ).check()
    assert plan.tables[0].codec.p_shapes == [25, 25, 32]  # 20,000 = 2^5 5^4, entropy-balanced
    from simrec.functional.verify import verify_functional

    assert verify_functional(zipf_trace, plan).passed
    c = TTCores.random(20_000, [25, 25, 32], [2, 2, 4], [4, 4], seed=0)
    ids = zipf_trace.batch(0).table_indices(0).astype(np.int64)
    np.testing.assert_array_equal(
        c.reconstruct(ids, prefix_reuse=True), c.reconstruct(ids, prefix_reuse=False)
    )
