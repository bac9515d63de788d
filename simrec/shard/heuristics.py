"""Heuristic sharding baselines, all on the planner's one cost model (:mod:`simrec.shard.problem`).

Every heuristic decides only *which device* owns each table; then, on each device, the same
"hottest rows by CDF" fill (:func:`fill_device`) decides the row bands per tier, and the best core
template of the device is kept (:func:`finalize`). So they differ in the table-to-device rule:

* ``size_greedy``, ``lookup_greedy``, ``dim_greedy``, ``size_lookup_greedy``, ``random`` — the
  AutoShard/DreamShard baselines (anchors.md §1.3): sort tables by size (bytes), look-ups per
  batch, dim, or size x look-ups, and give each to the device with the least accumulated amount of
  that key that still has room; ``random`` picks a device with room at random (seeded).
* ``torchrec_greedy`` — TorchRec's ``GreedyPerfPartitioner`` idea (anchors.md §1.1): estimate each
  table's cost with a uniform cache ratio (fast-tier share = pooled fast capacity / model bytes, as
  UVM caching's clf), sort by cost, place the costliest first on the device with the lowest
  accumulated cost that has room.
* ``pooled_lpt`` — the probe's start heuristic (mip-probe.md finding 4): fill one pooled tier of
  J x capacity per tier by access benefit per byte (this fixes each table's bands), assign tables
  longest-processing-time-first on those post-caching costs subject to each device's room, then
  re-fill each device.

None of them uses TT storage (they are the raw-format baselines the MIP is compared with).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

import numpy as np

from simrec.shard.problem import (
    Assignment,
    ClassOptions,
    Evaluation,
    OptionSet,
    device_time,
    evaluate,
    table_breaks,
)

__all__ = ["HEURISTICS", "fill_device", "finalize", "run_heuristic", "run_heuristics"]


def _segments_fill(
    tables: Sequence[int],
    breaks: dict[int, tuple[np.ndarray, np.ndarray]],
    row_bytes: dict[int, int],
    ell: dict[int, float],
    lookup_s: dict[int, np.ndarray],
    caps: np.ndarray,
    table_caps: np.ndarray | None = None,
) -> dict[int, list[int]] | None:
    """Greedy multi-tier fill by access benefit per byte; returns breakpoint cut indices per table.

    Tier i (fastest first) takes the densest next segment of any table while it fits; a table whose
    next segment does not fit stops growing in that tier (``table_caps`` also bounds one table's
    bytes per tier, e.g. one device's tier when the capacity is pooled over devices). Returns None
    if the last tier overflows.
    """
    n = caps.size
    cur = {t: 0 for t in tables}
    cuts: dict[int, list[int]] = {t: [] for t in tables}
    for i in range(n - 1):
        room = float(caps[i])
        start = dict(cur)
        heap: list[tuple[float, int, int]] = []

        def push(t: int, i: int = i, heap: list[tuple[float, int, int]] = heap) -> None:
            rk, ck = breaks[t]
            k = cur[t]
            if k + 1 >= rk.size:
                return
            dr = rk[k + 1] - rk[k]
            dc = ck[k + 1] - ck[k]
            gain = ell[t] * dc * (lookup_s[t][n - 1] - lookup_s[t][i])
            if gain <= 0:
                return
            heapq.heappush(heap, (-gain / (dr * row_bytes[t]), t, k))

        for t in tables:
            push(t)
        while heap:
            _, t, k = heapq.heappop(heap)
            rk, _ = breaks[t]
            b = float(rk[k + 1] - rk[k]) * row_bytes[t]
            own = float(rk[k + 1] - rk[start[t]]) * row_bytes[t]
            if b <= room + 1e-6 and (table_caps is None or own <= table_caps[i] + 1e-6):
                room -= b
                cur[t] = k + 1
                push(t)
        for t in tables:
            cuts[t].append(cur[t])
    last = sum(float(breaks[t][0][-1] - breaks[t][0][cur[t]]) * row_bytes[t] for t in tables)
    if last > caps[-1] + 1e-6:
        return None
    return cuts


def fill_device(
    opts: OptionSet, j: int, tables: Sequence[int], m: int
) -> tuple[np.ndarray, float] | None:
    """Row bands for ``tables`` on device ``j`` with template ``m``: options and device seconds.

    Returns None when the tables do not fit the device's tiers this way.
    """
    co = opts.for_device(j)
    tabs = opts.problem.tables
    caps = co.capacity - co.reserved[m]
    if np.any(caps < -1e-6):
        return None
    breaks = {t: table_breaks(tabs[t]) for t in tables}
    rb = {t: tabs[t].row_bytes for t in tables}
    ell = {t: tabs[t].lookups_per_batch for t in tables}
    ls = {t: _lookup_s(co, tabs[t].row_bytes, m) for t in tables}
    cuts = _segments_fill(list(tables), breaks, rb, ell, ls, caps)
    if cuts is None:
        return None
    options = np.empty(len(tables), dtype=np.int64)
    for n, t in enumerate(tables):
        rk = breaks[t][0]
        key = tuple(int(rk[k]) for k in cuts[t])
        o = co.cut_index[t].get(key)
        if o is None:
            return None
        options[n] = o
    s, e = device_time(co, list(tables), list(options), m)
    return options, s + opts.problem.energy_weight * e


def _lookup_s(co: ClassOptions, row_bytes: int, m: int) -> np.ndarray:
    out = []
    for tier in co.device.tiers:
        r = co.rates[m, co.resources.index(tier.channel_name)]
        out.append(tier.lookup_s(row_bytes) / max(r, 1e-300))
    return np.array(out)


def finalize(opts: OptionSet, device_of: np.ndarray) -> Assignment | None:
    """Fill every device and keep its best template; None if some device cannot hold its tables."""
    p = opts.problem
    J = p.num_devices
    option = np.zeros(p.num_tables, dtype=np.int64)
    template = np.zeros(J, dtype=np.int64)
    for j in range(J):
        ts = np.flatnonzero(device_of == j)
        best: tuple[float, int, np.ndarray] | None = None
        for m in range(len(opts.for_device(j).templates)):
            r = fill_device(opts, j, ts, m)
            if r is None:
                continue
            if best is None or r[1] < best[0] - 1e-15:
                best = (r[1], m, r[0])
        if best is None:
            return None
        template[j] = best[1]
        option[ts] = best[2]
    return Assignment(device_of.astype(np.int64).copy(), option, template)


def _room(opts: OptionSet) -> np.ndarray:
    """Total bytes each device can hold (all tiers, smallest template reservation)."""
    return np.array(
        [
            float(opts.for_device(j).capacity.sum() - opts.for_device(j).reserved.min(0).sum())
            for j in range(opts.problem.num_devices)
        ]
    )


def _greedy_by(opts: OptionSet, key: np.ndarray, load: np.ndarray) -> np.ndarray | None:
    """Sort by ``key`` (desc, stable); each table to the device with least accumulated ``load``."""
    p = opts.problem
    size = np.array([t.table_bytes for t in p.tables], dtype=np.float64)
    room = _room(opts)
    acc = np.zeros(p.num_devices)
    dev = np.full(p.num_tables, -1, dtype=np.int64)
    for t in np.argsort(-key, kind="stable"):
        ok = np.flatnonzero(room >= size[t] - 1e-6)
        if ok.size == 0:
            return None
        j = int(ok[np.argmin(acc[ok])])
        dev[t] = j
        acc[j] += load[t]
        room[j] -= size[t]
    return dev


def _size(opts: OptionSet) -> np.ndarray:
    return np.array([t.table_bytes for t in opts.problem.tables], dtype=np.float64)


def _lookups(opts: OptionSet) -> np.ndarray:
    return np.array([t.lookups_per_batch for t in opts.problem.tables], dtype=np.float64)


def _dims(opts: OptionSet) -> np.ndarray:
    return np.array([t.dim for t in opts.problem.tables], dtype=np.float64)


def size_greedy(opts: OptionSet, seed: int = 0) -> np.ndarray | None:
    s = _size(opts)
    return _greedy_by(opts, s, s)


def lookup_greedy(opts: OptionSet, seed: int = 0) -> np.ndarray | None:
    s = _lookups(opts)
    return _greedy_by(opts, s, s)


def dim_greedy(opts: OptionSet, seed: int = 0) -> np.ndarray | None:
    s = _dims(opts)
    return _greedy_by(opts, s, s)


def size_lookup_greedy(opts: OptionSet, seed: int = 0) -> np.ndarray | None:
    s = _size(opts) * _lookups(opts)
    return _greedy_by(opts, s, s)


def random_assign(opts: OptionSet, seed: int = 0) -> np.ndarray | None:
    p = opts.problem
    rng = np.random.default_rng(seed)
    size = _size(opts)
    room = _room(opts)
    dev = np.full(p.num_tables, -1, dtype=np.int64)
    for t in rng.permutation(p.num_tables):
        ok = np.flatnonzero(room >= size[t] - 1e-6)
        if ok.size == 0:
            return None
        j = int(rng.choice(ok))
        dev[t] = j
        room[j] -= size[t]
    return dev


def _pooled_bands(opts: OptionSet, m: int) -> np.ndarray | None:
    """Per-table option on device class 0 from one pooled fill of J x each tier's capacity."""
    p = opts.problem
    co = opts.for_device(0)
    J = p.num_devices
    caps = (co.capacity - co.reserved[m]) * J
    tables = list(range(p.num_tables))
    breaks = {t: table_breaks(p.tables[t]) for t in tables}
    rb = {t: p.tables[t].row_bytes for t in tables}
    ell = {t: p.tables[t].lookups_per_batch for t in tables}
    ls = {t: _lookup_s(co, p.tables[t].row_bytes, m) for t in tables}
    cuts = _segments_fill(tables, breaks, rb, ell, ls, caps, co.capacity - co.reserved[m])
    if cuts is None:
        return None
    out = np.empty(p.num_tables, dtype=np.int64)
    for t in tables:
        key = tuple(int(breaks[t][0][k]) for k in cuts[t])
        o = co.cut_index[t].get(key)
        if o is None:
            return None
        out[t] = o
    return out


def pooled_lpt(opts: OptionSet, seed: int = 0) -> np.ndarray | None:
    """Pooled fill, then LPT on post-caching per-resource work subject to per-tier room."""
    p = opts.problem
    best_dev: np.ndarray | None = None
    best_val = np.inf
    for m in range(len(opts.for_device(0).templates)):
        opt0 = _pooled_bands(opts, m)
        if opt0 is None:
            continue
        co0 = opts.for_device(0)
        rate = np.maximum(co0.rates[m], 1e-300)
        J = p.num_devices
        work = np.array([co0.work[t][opt0[t]] for t in range(p.num_tables)]) / rate
        byts = np.array([co0.bytes[t][opt0[t]] for t in range(p.num_tables)])
        size_s = work.sum(axis=1) + co0.output_s
        load = np.zeros((J, work.shape[1]))
        out = np.zeros(J)
        room = np.array(
            [opts.for_device(j).capacity - opts.for_device(j).reserved[m] for j in range(J)]
        )
        total_room = room.sum(axis=1)
        dev = np.full(p.num_tables, -1, dtype=np.int64)
        for t in np.argsort(-size_s, kind="stable"):
            fits = np.all(room >= byts[t] - 1e-6, axis=1)
            if fits.any():
                cand = np.flatnonzero(fits)
                after = np.max(load[cand] + work[t], axis=1) + out[cand] + co0.output_s[t]
                j = int(cand[np.argmin(after)])
                room[j] -= byts[t]
            else:
                j = int(np.argmax(total_room))
            dev[t] = j
            load[j] += work[t]
            out[j] += co0.output_s[t]
            total_room[j] -= p.tables[t].table_bytes
        val = float(np.max(load.max(axis=1) + out))
        if val < best_val:
            best_val, best_dev = val, dev
    return best_dev


def torchrec_greedy(opts: OptionSet, seed: int = 0) -> np.ndarray | None:
    """Uniform cache ratio cost, costliest first, onto the device with least accumulated cost."""
    p = opts.problem
    co = opts.for_device(0)
    total = float(_size(opts).sum())
    caps = np.cumsum(co.capacity - co.reserved.min(0)) * p.num_devices
    frac = np.minimum(caps / max(total, 1.0), 1.0)  # cumulative row fraction per tier
    cost = np.zeros(p.num_tables)
    for t, tab in enumerate(p.tables):
        x = np.asarray(tab.cdf_x)
        c = np.asarray(tab.cdf_c)
        cum = np.interp(frac, x, c)
        cum[-1] = 1.0
        share = np.diff(np.r_[0.0, cum])
        per = _lookup_s(co, tab.row_bytes, 0)
        cost[t] = tab.lookups_per_batch * float(np.dot(share, per)) + co.output_s[t]
    return _greedy_by(opts, cost, cost)


HEURISTICS: dict[str, Callable[[OptionSet, int], np.ndarray | None]] = {
    "size_greedy": size_greedy,
    "lookup_greedy": lookup_greedy,
    "size_lookup_greedy": size_lookup_greedy,
    "dim_greedy": dim_greedy,
    "random": random_assign,
    "torchrec_greedy": torchrec_greedy,
    "pooled_lpt": pooled_lpt,
}


def run_heuristic(
    opts: OptionSet, name: str, seed: int = 0
) -> tuple[Assignment, Evaluation] | None:
    """Run one heuristic by name; None when it finds no capacity-feasible plan."""
    from simrec.errors import ConfigError

    if name not in HEURISTICS:
        raise ConfigError(
            f"unknown heuristic '{name}'",
            where="--heuristic",
            fix=f"use one of {', '.join(HEURISTICS)} or 'all'",
        )
    dev = HEURISTICS[name](opts, seed)
    if dev is None:
        return None
    a = finalize(opts, dev)
    if a is None:
        return None
    ev = evaluate(opts, a)
    if not ev.feasible:
        return None
    return a, ev


def run_heuristics(
    opts: OptionSet, names: Sequence[str] | None = None, seed: int = 0
) -> dict[str, tuple[Assignment, Evaluation] | None]:
    """Run several heuristics (all by default), in a fixed order."""
    return {n: run_heuristic(opts, n, seed) for n in (names or list(HEURISTICS))}
