"""The address remapper: (table, row) -> (device, tier, local row), vectorised with numpy.

Implements the plan's contract (:mod:`simrec.shard.plan`): a row's *rank* under the table's order
(index, hotness permutation or hot set) selects the band whose ``[start, stop)`` holds it; the band
sits on one (device, tier), and bands of one table on the same (device, tier) are packed in rank
order, so ``local = rank - band.start + (rows of earlier bands of that table on that tier)``.

Per table it keeps an inverse permutation (row -> rank; none for index order), the band starts and
the per-band (device, tier, local base). A lookup costs one gather from the inverse permutation,
one ``searchsorted`` over the bands and a few gathers: no Python loop over lookups. Devices and
tiers come back as small integer codes into :attr:`Remapper.devices` / :attr:`Remapper.tiers`.

What it leaves out: caching of hot rows that change at run time (the order is static per plan).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from simrec.errors import ConfigError
from simrec.shard.plan import Plan, TablePlan

__all__ = ["Remapper", "TableMap", "order_permutation"]


def order_permutation(t: TablePlan, perm: np.ndarray | None = None) -> np.ndarray | None:
    """Row ids in rank order for table ``t`` (None for index order).

    ``perm`` supplies a hotness permutation that the plan leaves to run time.
    """
    o = t.order
    if o.kind == "index":
        return None
    if o.kind == "hotness":
        p = perm if perm is not None else o.permutation
        if p is None:
            raise ConfigError(
                "the plan ranks this table by hotness but gives no permutation",
                where=f"table {t.name!r}, field 'order.permutation'",
                fix="pass the hotness permutation (e.g. from trace statistics) to the remapper",
            )
        p = np.asarray(p, dtype=np.int64)
        if (
            p.shape != (t.rows,)
            or (p.size and (p.min() < 0 or p.max() >= t.rows))
            or np.bincount(p, minlength=t.rows).max(initial=0) != 1
        ):
            raise ConfigError(
                f"the hotness permutation is not a permutation of 0..{t.rows - 1}",
                where=f"table {t.name!r}, field 'order.permutation'",
                fix="give every row id exactly once",
            )
        return p
    hot = np.asarray(o.hot_rows or [], dtype=np.int64)
    rest = np.ones(t.rows, dtype=bool)
    rest[hot] = False
    return np.concatenate([hot, np.flatnonzero(rest)])


@dataclass
class TableMap:
    """Remap state of one table."""

    name: str
    rows: int
    inv: np.ndarray | None  # row -> rank (None: identity)
    starts: np.ndarray  # sorted band starts (int64)
    device: np.ndarray  # per band, device code (int16)
    tier: np.ndarray  # per band, tier code (int16)
    base: np.ndarray  # per band, local row of its first rank (int64)
    space: dict[tuple[int, int], int]  # (device code, tier code) -> local space size


class Remapper:
    """Vectorised (table, row) -> (device, tier, local row) translation for one plan."""

    def __init__(self, plan: Plan, perms: Mapping[str, np.ndarray] | None = None):
        self.plan = plan
        self.devices: list[str] = plan.device_names
        self.tiers: list[str] = plan.tiers()
        dcode = {n: i for i, n in enumerate(self.devices)}
        tcode = {n: i for i, n in enumerate(self.tiers)}
        perms = perms or {}
        self.tables: list[TableMap] = []
        self._index = {t.name: i for i, t in enumerate(plan.tables)}
        for t in plan.tables:
            p = order_permutation(t, perms.get(t.name))
            inv = None
            if p is not None:
                inv = np.empty(t.rows, dtype=np.int64)
                inv[p] = np.arange(t.rows, dtype=np.int64)
            bands = t.sorted_bands()
            used: dict[tuple[int, int], int] = {}
            base = np.empty(len(bands), dtype=np.int64)
            for k, b in enumerate(bands):
                key = (dcode[b.device], tcode[b.tier])
                base[k] = used.get(key, 0)
                used[key] = int(base[k]) + b.length
            self.tables.append(
                TableMap(
                    name=t.name,
                    rows=t.rows,
                    inv=inv,
                    starts=np.array([b.start for b in bands], dtype=np.int64),
                    device=np.array([dcode[b.device] for b in bands], dtype=np.int16),
                    tier=np.array([tcode[b.tier] for b in bands], dtype=np.int16),
                    base=base,
                    space=used,
                )
            )

    def table_index(self, table: int | str) -> int:
        if isinstance(table, str):
            if table not in self._index:
                raise ConfigError(
                    f"table {table!r} is not in the plan",
                    where="remap",
                    fix="use a table the plan places",
                )
            return self._index[table]
        return int(table)

    def remap(
        self, table: int | str, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(device code int16, tier code int16, local row int64) for ``rows`` of one table."""
        m = self.tables[self.table_index(table)]
        r = np.asarray(rows, dtype=np.int64)
        if r.size and (r.min() < 0 or r.max() >= m.rows):
            raise ConfigError(
                f"row index out of range 0..{m.rows - 1}",
                where=f"table {m.name!r}",
                fix="check that the trace matches the plan",
            )
        rank = r if m.inv is None else m.inv[r]
        k = np.searchsorted(m.starts, rank, side="right") - 1
        local = rank - m.starts[k] + m.base[k]
        return m.device[k], m.tier[k], local

    def remap_batch(
        self, table_ids: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Remap lookups of several tables at once (one pass per table present, not per lookup)."""
        t = np.asarray(table_ids, dtype=np.int64)
        r = np.asarray(rows, dtype=np.int64)
        dev = np.empty(r.size, dtype=np.int16)
        tier = np.empty(r.size, dtype=np.int16)
        local = np.empty(r.size, dtype=np.int64)
        order = np.argsort(t, kind="stable")
        ts = t[order]
        cuts = np.flatnonzero(np.diff(ts)) + 1
        for seg in np.split(order, cuts):
            if seg.size == 0:
                continue
            d, ti, lo = self.remap(int(t[seg[0]]), r[seg])
            dev[seg], tier[seg], local[seg] = d, ti, lo
        return dev, tier, local

    def space_sizes(self, table: int | str) -> dict[tuple[str, str], int]:
        """Planned local space size per (device, tier) for one table."""
        m = self.tables[self.table_index(table)]
        return {(self.devices[d], self.tiers[t]): n for (d, t), n in m.space.items()}

    def check_bijection(self, table: int | str) -> None:
        """Raise ConfigError unless the table's rows map one-to-one onto its planned local spaces."""
        i = self.table_index(table)
        m = self.tables[i]
        dev, tier, local = self.remap(i, np.arange(m.rows, dtype=np.int64))
        for (d, t), n in m.space.items():
            sel = (dev == d) & (tier == t)
            loc = local[sel]
            ok = loc.size == n and (
                n == 0 or (loc.min() >= 0 and loc.max() < n and np.unique(loc).size == n)
            )
            if not ok:
                raise ConfigError(
                    f"rows do not map one-to-one onto local rows 0..{n - 1} of "
                    f"({self.devices[d]}, {self.tiers[t]})",
                    where=f"table {m.name!r}",
                    fix="this is a remapper bug; report it with the plan",
                )
        mapped = sum(int(((dev == d) & (tier == t)).sum()) for (d, t) in m.space)
        if mapped != m.rows:
            raise ConfigError(
                "some rows map to a (device, tier) outside the plan",
                where=f"table {m.name!r}",
                fix="this is a remapper bug; report it with the plan",
            )
