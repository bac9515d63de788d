"""Index reordering (Rec-AD / EL-Rec, papers.md §B.2): renumber rows so co-accessed rows share TT
prefixes, raising the first-stage reuse of TT reconstruction.

EL-Rec builds an "index bijection" offline from the dataset's access pattern with a community-based
graph ordering (Rabbit Order). This module builds the co-occurrence graph of one table from a trace
with networkx and orders its nodes by

* ``degree`` — weighted degree, highest first (the cheap proxy papers.md suggests);
* ``rcm`` — reverse Cuthill–McKee on the graph (bandwidth-reducing: neighbours get nearby ids);
* ``frequency`` — plain access count, highest first (no graph).

**The graph.** Nodes are the rows the trace touches. Two rows are linked when they are accessed in
the same batch (the unit inside which TT prefixes are shared), weighted by how many batches do so.
A full clique per batch is quadratic, so each batch contributes a path through its distinct rows
in first-access order (plus consecutive pairs inside each multi-hot bag): the same row pairs that
matter for locality, at O(unique rows) edges per batch. Rows the trace never touches are placed
last, in index order.

The result is a permutation ``perm`` (rank -> row id) — exactly a plan's ``hotness`` row order, so a
TT band indexed by rank uses the reordered ids. :func:`reuse_report` measures the first-stage reuse
(unique rows / unique prefixes per batch, summed over batches) before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import networkx as nx
import numpy as np

from simrec.errors import SimrecError

__all__ = ["ReuseReport", "cooccurrence_graph", "reorder_rows", "reuse_report"]

Method = Literal["degree", "rcm", "frequency"]


def _table_batches(reader: Any, t: int, max_batches: int | None) -> list[tuple[np.ndarray, Any]]:
    n = len(reader) if max_batches is None else min(max_batches, len(reader))
    out = []
    for i in range(n):
        b = reader.batch(i)
        out.append((np.asarray(b.table_indices(t), dtype=np.int64), b.table_offsets(t)))
    return out


def cooccurrence_graph(reader: Any, table: int, max_batches: int | None = None) -> nx.Graph:
    """Weighted co-occurrence graph of one table's rows (see the module docstring)."""
    codes: list[np.ndarray] = []
    nodes: list[np.ndarray] = []
    rows = int(reader.header.tables[table].rows)
    for idx, off in _table_batches(reader, table, max_batches):
        if idx.size == 0:
            continue
        u, first = np.unique(idx, return_index=True)
        seq = u[np.argsort(first, kind="stable")]
        nodes.append(seq)
        pairs = [np.stack([seq[:-1], seq[1:]])]
        inner = np.ones(idx.size - 1, dtype=bool)
        starts = np.asarray(off[1:-1], dtype=np.int64)
        inner[starts[(starts > 0) & (starts < idx.size)] - 1] = False  # no pairs across bags
        pairs.append(np.stack([idx[:-1][inner], idx[1:][inner]]))
        p = np.concatenate(pairs, axis=1)
        p = p[:, p[0] != p[1]]
        lo, hi = np.minimum(p[0], p[1]), np.maximum(p[0], p[1])
        codes.append(np.unique(lo * rows + hi))  # one count per batch per pair
    g = nx.Graph()
    if nodes:
        g.add_nodes_from(np.unique(np.concatenate(nodes)).tolist())
    if codes:
        c, w = np.unique(np.concatenate(codes), return_counts=True)
        a, b = np.divmod(c, rows)
        g.add_weighted_edges_from(zip(a.tolist(), b.tolist(), w.tolist(), strict=True))
    return g


def reorder_rows(
    reader: Any, table: int, method: Method = "degree", max_batches: int | None = None
) -> np.ndarray:
    """A permutation of the table's rows (rank -> row id) that groups co-accessed rows."""
    rows = int(reader.header.tables[table].rows)
    if method == "frequency":
        counts = np.zeros(rows, dtype=np.int64)
        for idx, _ in _table_batches(reader, table, max_batches):
            counts += np.bincount(idx, minlength=rows)
        seen = np.flatnonzero(counts > 0)
        head = seen[np.lexsort((seen, -counts[seen]))]
    else:
        g = cooccurrence_graph(reader, table, max_batches)
        if method == "degree":
            deg = dict(g.degree(weight="weight"))
            head = np.array(sorted(deg, key=lambda n: (-deg[n], n)), dtype=np.int64)
        elif method == "rcm":
            order: list[int] = []
            # components largest first, each ordered by RCM (networkx picks a low-degree start)
            comps = sorted(nx.connected_components(g), key=lambda c: (-len(c), min(c)))
            for comp in comps:
                order.extend(nx.utils.reverse_cuthill_mckee_ordering(g.subgraph(comp)))
            head = np.array(order, dtype=np.int64)
        else:
            raise SimrecError(
                f"unknown reordering method {method!r}",
                where="reorder_rows",
                fix="use degree, rcm or frequency",
            )
    rest = np.ones(rows, dtype=bool)
    rest[head] = False
    return np.concatenate([head, np.flatnonzero(rest)]).astype(np.int64)


@dataclass(frozen=True)
class ReuseReport:
    """First-stage TT reuse summed over batches: unique rows / unique prefixes."""

    method: str
    unique_rows: int
    prefixes_before: int
    prefixes_after: int

    @property
    def ratio_before(self) -> float:
        return self.unique_rows / max(self.prefixes_before, 1)

    @property
    def ratio_after(self) -> float:
        return self.unique_rows / max(self.prefixes_after, 1)


def reuse_report(
    reader: Any,
    table: int,
    perm: np.ndarray,
    p_last: int,
    method: str = "",
    max_batches: int | None = None,
) -> ReuseReport:
    """Reuse before/after renumbering row r to rank inv(perm)[r]; prefixes are id // ``p_last``.

    ``p_last`` is the last TT p-shape (rows sharing id // p_last share the first d-1 core indices).
    """
    inv = np.empty(perm.size, dtype=np.int64)
    inv[perm] = np.arange(perm.size, dtype=np.int64)
    uniq = before = after = 0
    for idx, _ in _table_batches(reader, table, max_batches):
        u = np.unique(idx)
        uniq += u.size
        before += np.unique(u // p_last).size
        after += np.unique(inv[u] // p_last).size
    return ReuseReport(method, uniq, before, after)
