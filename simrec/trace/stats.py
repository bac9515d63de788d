"""Trace statistics: the per-table profile that the sharding planner consumes (``simrec trace stats``).

:func:`profile_trace` streams a ``.trc`` file one batch at a time and returns a :class:`TraceProfile`
holding one :class:`TableProfile` per table. Definitions (all computed from the trace, never typed
in; ``docs/trace-stats.md`` has the full list):

* ``lookups`` — indices of the table in the processed batches; ``unique`` — distinct rows among them.
* Bag size (pooling factor) of a sample = number of indices of that sample in the table.
  ``pooling_mean`` = lookups / samples (empty bags included: TorchRec's "mean of lengths");
  ``pooling_mean_nonempty`` = lookups / non-empty bags; ``pooling_p50``/``pooling_p99`` are
  inverted-CDF percentiles (the smallest bag size ``L`` with at least ``p`` of the bags ``<= L``);
  ``pooling_max`` the largest bag.
* ``coverage`` — share of samples whose bag is non-empty. Lookups per batch of ``B`` samples are
  ``B * pooling_mean = B * pooling_mean_nonempty * coverage``.
* Access CDF — ``cdf(x)`` is the share of the table's accesses that go to its hottest ``x * rows``
  rows (``rows`` from the header, not only touched rows). Between whole rows it is interpolated
  linearly (a fractional row counts for that fraction of its accesses), so the curve is continuous,
  concave, ``cdf(0) = 0`` and ``cdf(1) = 1``: what a piecewise-linear MIP wants.
  ``top1pct_share = cdf(0.01)``, ``top10pct_share = cdf(0.10)``. NaN for a table without lookups.
  The same curve is also kept at the finer ladder ``FINE_CDF_BREAKPOINTS`` (0 and ``2^(-k/4)``,
  ``k = 60 … 0``) as ``fine_cdf``: the planner (simrec.shard) gives those breakpoints to the
  tables whose row bands need them.
* Reuse histogram — the ``dlrm_datasets`` ``locality_stats.txt`` histograms
  (:mod:`simrec.trace.locality`), computed per batch over (table, row) pairs and averaged over the
  batches that have lookups (each batch weighs the same).
* Stack distances — LRU stack-distance histogram and miss-ratio curve (:mod:`simrec.trace.stackdist`)
  per table (the table's references in trace order) and overall (keys are (table, row) pairs, the
  stream is the trace order: batch by batch, table-major inside a batch, i.e. the CSR order).

Memory: per table one ``int32`` count per row (``int64`` once the table has 2^31 lookups;
allocated zeroed, so only touched pages cost RAM), the bag-size histogram, and for stack distances
two ``int32`` per row (latest position, dense overall id) plus ``O(unique rows)``; nothing grows
with the number of lookups. Counting uses ``np.bincount`` when the counted lookups are at least a
quarter of the key space and a sort otherwise, table by table for large batches and over all tables
at once for small ones; no Python loop touches individual lookups.

Not covered: per-sample weights (ignored), dense features and labels, inter-batch arrival times, and
any notion of time other than the order of lookups in the file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from simrec.errors import SimrecError, atomic_output
from simrec.trace.format import Batch, TraceReader
from simrec.trace.locality import NUM_BINS, LocalityHistogram, reuse_bin
from simrec.trace.stackdist import DEFAULT_EXACT_LIMIT, StackDistanceCounter, StackDistanceHistogram

__all__ = [
    "DEFAULT_CDF_BREAKPOINTS",
    "FINE_CDF_BREAKPOINTS",
    "MRC_CSV_CAPACITIES",
    "TableProfile",
    "TraceProfile",
    "access_cdf",
    "profile_trace",
    "stats_command",
]

#: Row fractions at which the access CDF is reported by default (16 points, 0 and 1 included).
DEFAULT_CDF_BREAKPOINTS: tuple[float, ...] = (
    0.0, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.02, 0.05,
    0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0,
)  # fmt: skip
#: Finer row fractions for ``fine_cdf``: 0 and 2^(-k/4) for k = 60 … 0 (62 points, ratio 2^(1/4)
#: from 2^-15 to 1), the ladder the sharding planner uses for the tables it refines.
FINE_CDF_BREAKPOINTS: tuple[float, ...] = (0.0, *(2.0 ** (-k / 4) for k in range(60, -1, -1)))
#: LRU capacities (rows) whose miss ratios appear as columns of the per-table DataFrame/CSV.
MRC_CSV_CAPACITIES: tuple[int, ...] = (1, 16, 256, 4096, 65536, 1048576)
PROFILER = "simrec.trace.stats.profile_trace"
#: A table's batch is counted with np.bincount when lookups >= rows / _DENSE_RATIO, else by sorting.
_DENSE_RATIO = 4
#: Batches with at least this many lookups per table (on average) are counted table by table.
_PER_TABLE_MIN = 2048
#: Per-row counts are int32 while a table has at most this many lookups, then int64.
_INT32_LOOKUPS = 2**31 - 1


def access_cdf(sorted_counts: np.ndarray, rows: int, x: Sequence[float] | np.ndarray) -> np.ndarray:
    """Share of accesses covered by the hottest ``x * rows`` rows (linear between whole rows).

    ``sorted_counts`` are the non-zero per-row access counts in descending order. Returns NaN
    everywhere when there are no accesses.
    """
    s = np.asarray(sorted_counts, dtype=np.int64)
    xs = np.asarray(x, dtype=np.float64)
    total = int(s.sum())
    if total == 0:
        return np.full(xs.shape, np.nan)
    cum = np.concatenate([[0], np.cumsum(s)]).astype(np.float64)
    t = np.clip(xs, 0.0, 1.0) * rows
    k = np.floor(t).astype(np.int64)
    frac = t - k
    u = len(s)
    inside = k < u
    kk = np.minimum(k, u - 1)
    val = np.where(inside, cum[np.minimum(k, u)] + frac * s[kk], float(total))
    return np.minimum(val / total, 1.0)


def _percentile_from_hist(hist: np.ndarray, p: float) -> float:
    """Inverted-CDF percentile of the values ``0..len(hist)-1`` with multiplicities ``hist``."""
    n = int(hist.sum())
    if n == 0:
        return float("nan")
    rank = max(1, int(np.ceil(p * n - 1e-9)))
    return float(np.searchsorted(np.cumsum(hist), rank, side="left"))


@dataclass
class TableProfile:
    """Statistics of one table over the profiled batches (definitions in the module docstring)."""

    name: str
    rows: int
    dim: int
    dtype: str
    bytes_per_row: float
    batch_size: int
    samples: int
    lookups: int
    unique: int
    nonempty_bags: int
    pooling_max: int
    pooling_p50: float
    pooling_p99: float
    cdf_breakpoints: np.ndarray
    cdf: np.ndarray
    top1pct_share: float
    top10pct_share: float
    bag_size_hist: np.ndarray
    stack_distance: StackDistanceHistogram | None = None
    counts: np.ndarray | None = None
    sorted_counts: np.ndarray | None = None
    fine_cdf_breakpoints: np.ndarray | None = None
    fine_cdf: np.ndarray | None = None

    @property
    def pooling_mean(self) -> float:
        """Lookups per sample (empty bags count as 0)."""
        return self.lookups / self.samples if self.samples else float("nan")

    @property
    def pooling_mean_nonempty(self) -> float:
        """Lookups per non-empty bag."""
        return self.lookups / self.nonempty_bags if self.nonempty_bags else float("nan")

    @property
    def lookups_per_batch(self) -> float:
        """Lookups in a full batch of the trace's nominal batch size: ``batch_size * pooling_mean``."""
        return self.batch_size * self.pooling_mean

    @property
    def coverage(self) -> float:
        """Share of samples whose bag in this table is non-empty."""
        return self.nonempty_bags / self.samples if self.samples else float("nan")

    @property
    def table_bytes(self) -> float:
        """Bytes of the whole table (rows × bytes per row)."""
        return self.rows * self.bytes_per_row

    def cdf_at(self, x: Sequence[float] | np.ndarray | float) -> np.ndarray:
        """The access CDF at any row fraction(s); needs ``full_cdf=True`` or ``keep_counts=True``."""
        if self.sorted_counts is None:
            raise ValueError(
                f"table {self.name!r}: profile with full_cdf=True or keep_counts=True to evaluate "
                "the CDF at arbitrary points"
            )
        return access_cdf(self.sorted_counts, self.rows, np.atleast_1d(np.asarray(x, float)))

    def cdf_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The full curve at every whole number of rows ``k = 0..unique`` (then flat at 1).

        Returns ``(row_fraction, share)``; needs ``full_cdf=True`` or ``keep_counts=True``.
        """
        if self.sorted_counts is None:
            raise ValueError(f"table {self.name!r}: profile with full_cdf=True for the full curve")
        s = self.sorted_counts
        tot = s.sum()
        cum = np.concatenate([[0], np.cumsum(s)])
        frac = np.arange(len(s) + 1, dtype=np.float64) / self.rows
        return frac, (cum / tot if tot else np.full(len(cum), np.nan))

    def scalars(self) -> dict[str, Any]:
        """The scalar statistics (the JSON/CSV contract's per-table keys)."""
        return {
            "name": self.name,
            "rows": self.rows,
            "dim": self.dim,
            "dtype": self.dtype,
            "table_bytes": self.table_bytes,
            "samples": self.samples,
            "lookups": self.lookups,
            "unique": self.unique,
            "lookups_per_batch": self.lookups_per_batch,
            "pooling_mean": self.pooling_mean,
            "pooling_mean_nonempty": self.pooling_mean_nonempty,
            "pooling_p50": self.pooling_p50,
            "pooling_p99": self.pooling_p99,
            "pooling_max": self.pooling_max,
            "coverage": self.coverage,
            "top1pct_share": self.top1pct_share,
            "top10pct_share": self.top10pct_share,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: scalars, the CDF at the breakpoints, bag sizes and stack distances."""
        d = self.scalars()
        d["cdf_breakpoints"] = [float(x) for x in self.cdf_breakpoints]
        d["cdf"] = [float(x) for x in self.cdf]
        # at the profile's ``fine_cdf_breakpoints`` (top level); null when not computed
        d["fine_cdf"] = None if self.fine_cdf is None else [float(x) for x in self.fine_cdf]
        nz = np.flatnonzero(self.bag_size_hist)
        d["bag_sizes"] = {
            "size": nz.tolist(),
            "count": self.bag_size_hist[nz].tolist(),
        }
        d["stack_distance"] = None if self.stack_distance is None else self.stack_distance.to_dict()
        return d


@dataclass
class TraceProfile:
    """The profile of a trace: totals, one :class:`TableProfile` per table, reuse and LRU curves."""

    path: str
    batches: int
    batches_in_file: int
    samples: int
    lookups: int
    batch_size: int
    tables: list[TableProfile]
    cdf_breakpoints: np.ndarray
    locality: LocalityHistogram
    stack_distance: StackDistanceHistogram | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    fine_cdf_breakpoints: np.ndarray | None = None

    @property
    def unique(self) -> int:
        """Distinct (table, row) pairs."""
        return sum(t.unique for t in self.tables)

    def table(self, name: str) -> TableProfile:
        """The profile of the table called ``name``."""
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the keys ``samples``, ``lookups`` and ``tables`` are a stable contract."""
        return {
            "profiler": PROFILER,
            "path": self.path,
            "batches": self.batches,
            "batches_in_file": self.batches_in_file,
            "batch_size": self.batch_size,
            "samples": self.samples,
            "lookups": self.lookups,
            "unique": self.unique,
            "cdf_breakpoints": [float(x) for x in self.cdf_breakpoints],
            "fine_cdf_breakpoints": None
            if self.fine_cdf_breakpoints is None
            else [float(x) for x in self.fine_cdf_breakpoints],
            "tables": [t.to_dict() for t in self.tables],
            "locality": self.locality.to_dict(),
            "stack_distance": None
            if self.stack_distance is None
            else self.stack_distance.to_dict(),
            "provenance": self.provenance,
        }

    def to_dataframe(self) -> Any:
        """A pandas DataFrame with one row per table: scalars, ``cdf@x`` and ``mr@C`` columns."""
        import pandas as pd

        recs = []
        for t in self.tables:
            r = t.scalars()
            for x, c in zip(self.cdf_breakpoints, t.cdf, strict=True):
                r[f"cdf@{x:g}"] = float(c)
            if t.stack_distance is not None:
                r["sd_cold"] = t.stack_distance.cold
                for c in MRC_CSV_CAPACITIES:
                    r[f"mr@{c}"] = t.stack_distance.miss_ratio(c)
            recs.append(r)
        return pd.DataFrame.from_records(recs)


def _count(idx: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``idx`` (in ``0..space-1``), sorted, and how often each occurs."""
    n = len(idx)
    if n * _DENSE_RATIO >= space:
        cb = np.bincount(idx, minlength=space)
        u = np.flatnonzero(cb)
        return u, cb[u]
    srt = np.sort(idx)
    starts = np.flatnonzero(np.concatenate([[True], srt[1:] != srt[:-1]]))
    return srt[starts].astype(np.int64), np.diff(np.append(starts, n))


class _Accumulator:
    """Running state of a profile while streaming, vectorised over the tables of a batch.

    Rows of all tables share one key space: the key of row ``r`` of table ``t`` is
    ``base[t] + r``. Per key: the access count (int32 until some table has 2^31 lookups, then
    int64) and, with stack distances, a dense overall id (0 = not seen yet).
    """

    def __init__(self, header: Any, stack_distance: bool, exact_limit: int):
        rows = header.rows
        self.T = header.num_tables
        self.rows = rows
        self.base = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)
        self.total_rows = int(rows.sum())
        self.counts = np.zeros(self.total_rows, dtype=np.int32)
        self.bag_hist = np.zeros((self.T, 1), dtype=np.int64)
        self.nonempty = np.zeros(self.T, dtype=np.int64)
        self.lookups = np.zeros(self.T, dtype=np.int64)
        self.samples = 0
        self.sd: list[StackDistanceCounter] = []
        self.overall: StackDistanceCounter | None = None
        self.gid = np.zeros(0, dtype=np.int32)
        self.next_id = 0
        if stack_distance:
            self.sd = [StackDistanceCounter(int(r), exact_limit=exact_limit) for r in rows]
            # The overall stream is keyed by dense ids given to (table, row) pairs as they are
            # first seen, so its state grows with the distinct pairs, not with the total rows.
            self.overall = StackDistanceCounter(1 << 16, exact_limit=exact_limit, growable=True)
            id_dtype = np.int32 if self.total_rows < 2**31 - 1 else np.int64
            self.gid = np.zeros(self.total_rows, dtype=id_dtype)

    def add_bags(self, lengths: np.ndarray) -> None:
        """Bag-size histograms of a batch's ``[T, b]`` lengths, one bincount for all tables."""
        T, b = lengths.shape
        self.samples += b
        if b == 0:
            return
        w = int(lengths.max()) + 1
        key = (np.arange(T, dtype=np.int64)[:, None] * w + lengths).ravel()
        h = np.bincount(key, minlength=T * w).reshape(T, w)
        if w > self.bag_hist.shape[1]:
            grown = np.zeros((T, w), dtype=np.int64)
            grown[:, : self.bag_hist.shape[1]] = self.bag_hist
            self.bag_hist = grown
        self.bag_hist[:, :w] += h
        self.nonempty += b - h[:, 0]

    def add_indices(self, batch: Batch, per_table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Count a batch's lookups; return its distinct keys (sorted) and their counts.

        Large batches are counted table by table (``np.bincount`` for a table whose lookups are at
        least ``rows / 4``, a sort otherwise); small ones in one go over the shared key space, so
        the per-table Python overhead does not dominate batches of a few thousand lookups.
        """
        self.lookups += per_table
        if int(self.lookups.max()) > _INT32_LOOKUPS and self.counts.dtype != np.int64:
            self.counts = self.counts.astype(np.int64)
        n = batch.num_lookups
        if n >= _PER_TABLE_MIN * self.T:
            us, cs = [], []
            for t in np.flatnonzero(per_table):
                u_t, c_t = _count(batch.table_indices(int(t)), int(self.rows[t]))
                u_t = u_t + self.base[t]
                self.counts[u_t] += c_t
                us.append(u_t)
                cs.append(c_t)
            return np.concatenate(us), np.concatenate(cs)
        u, c = _count(self.keys(batch.indices, per_table), self.total_rows)
        self.counts[u] += c
        return u, c

    def keys(self, indices: np.ndarray, per_table: np.ndarray) -> np.ndarray:
        """Shared-key-space keys of a batch's lookups."""
        k = indices.astype(np.int64)
        k += np.repeat(self.base, per_table)
        return k

    def overall_refs(self, keys: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The batch's overall stream as dense ids (new pairs get the next ids, in key order)."""
        new = u[self.gid[u] == 0]
        if len(new):
            self.gid[new] = np.arange(self.next_id + 1, self.next_id + 1 + len(new))
            self.next_id += len(new)
        g = self.gid[keys]
        np.subtract(g, 1, out=g)
        return g

    def table_counts(self, t: int) -> np.ndarray:
        lo = int(self.base[t])
        return self.counts[lo : lo + int(self.rows[t])]


def _run_sd_jobs(jobs: list[tuple[StackDistanceCounter, np.ndarray]], check: bool) -> None:
    for counter, refs in jobs:
        counter.update(refs, check=check)


def _check_breakpoints(bp: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(bp, dtype=np.float64).reshape(-1)
    if (
        a.size == 0
        or np.any(~np.isfinite(a))
        or a.min() < 0
        or a.max() > 1
        or np.any(np.diff(a) <= 0)
    ):
        raise SimrecError(
            f"invalid CDF breakpoints {a.tolist()}",
            where="cdf_breakpoints",
            fix="give strictly increasing row fractions between 0 and 1, e.g. 0,0.01,0.1,0.5,1",
        )
    return a


def profile_trace(
    trace: str | os.PathLike[str] | TraceReader,
    *,
    stack_distance: bool = True,
    cdf_breakpoints: Sequence[float] | np.ndarray = DEFAULT_CDF_BREAKPOINTS,
    fine_cdf_breakpoints: Sequence[float] | np.ndarray | None = FINE_CDF_BREAKPOINTS,
    max_batches: int | None = None,
    full_cdf: bool = False,
    keep_counts: bool = False,
    exact_limit: int = DEFAULT_EXACT_LIMIT,
    progress: Callable[[int, int], None] | None = None,
) -> TraceProfile:
    """Profile a trace (a path or an open :class:`TraceReader`) in one streaming pass.

    Args:
        stack_distance: also compute LRU stack-distance histograms per table and overall.
        cdf_breakpoints: row fractions (strictly increasing, in [0, 1]) for the access CDF.
        fine_cdf_breakpoints: finer row fractions (same rules) for ``fine_cdf``, the curve the
            sharding planner refines tables with; None skips it.
        max_batches: profile only the first N batches.
        full_cdf: keep each table's sorted non-zero counts (``TableProfile.cdf_at``/``cdf_curve``).
        keep_counts: keep each table's per-row access counts (``rows`` entries per table).
        exact_limit: stack distances below this (a power of two) are histogrammed exactly.
        progress: called as ``progress(batches_done, batches_total)`` after every batch.
    """
    bp = _check_breakpoints(cdf_breakpoints)
    fbp = None if fine_cdf_breakpoints is None else _check_breakpoints(fine_cdf_breakpoints)
    if max_batches is not None and max_batches < 1:
        raise SimrecError(
            f"max_batches must be >= 1, got {max_batches}", where="max_batches", fix="pass N >= 1"
        )
    reader = trace if isinstance(trace, TraceReader) else TraceReader(trace)
    h = reader.header
    T = h.num_tables
    nb = len(reader) if max_batches is None else min(max_batches, len(reader))
    try:
        acc = _Accumulator(h, stack_distance, exact_limit)
    except MemoryError:
        big = int(np.argmax(h.rows))
        raise SimrecError(
            f"cannot allocate the per-row arrays for {int(h.rows.sum()):,} rows in all "
            f"(largest table {h.tables[big].name!r} with {int(h.rows[big]):,} rows)",
            path=reader.path,
            where=f"table {h.tables[big].name!r} (table {big})",
            fix=(
                "profile with --no-stack-distance (a third of the memory), or convert the trace "
                "with fewer rows (e.g. `simrec trace convert --max-ind-range N`)"
            ),
        ) from None
    # The reader checks every index against its table's rows unless it was opened with
    # verify=False; only then must the stack-distance counters check them again.
    check = not reader.verify

    loc_n: list[int] = []
    loc_u: list[int] = []
    loc_ushare = np.zeros(NUM_BINS)
    loc_ashare = np.zeros(NUM_BINS)
    loc_batches = 0
    # Stack distances run on two worker threads (the numba kernel releases the GIL): one for the
    # per-table streams, one for the overall stream, while this thread counts the next batch.
    # Each stream is updated by one task at a time, in batch order, so the result does not depend
    # on the timing.
    pool = ThreadPoolExecutor(max_workers=2) if stack_distance else None
    pending: list[Future[None]] = []
    try:
        for bi in range(nb):
            batch = reader.batch(bi)
            acc.add_bags(batch.lengths())
            per_table = batch.lookups_per_table()
            n_b = u_b = 0
            if batch.num_lookups:
                u, c = acc.add_indices(batch, per_table)
                k = reuse_bin(c)
                uh = np.bincount(k, minlength=NUM_BINS)
                ah = np.bincount(k, weights=c.astype(np.float64), minlength=NUM_BINS)
                n_b, u_b = int(c.sum()), len(c)
                loc_ushare += uh / u_b
                loc_ashare += ah / n_b
                loc_batches += 1
                if pool is not None:
                    jobs = [(acc.sd[t], batch.table_indices(t)) for t in range(T) if per_table[t]]
                    refs = acc.overall_refs(acc.keys(batch.indices, per_table), u)
                    for fut in pending:
                        fut.result()
                    reader.release(bi - 1)  # the workers are done with earlier batches
                    assert acc.overall is not None
                    pending = [
                        pool.submit(_run_sd_jobs, jobs, check),
                        pool.submit(acc.overall.update, refs, None, check),
                    ]
            if pool is None:
                reader.release(bi)
            loc_n.append(n_b)
            loc_u.append(u_b)
            if progress is not None:
                progress(bi + 1, nb)
        for fut in pending:
            fut.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    locality = LocalityHistogram(
        name=Path(str(reader.path)).name,
        num_batches=nb,
        batch_size=h.batch_size,
        avg_indices=float(np.mean(loc_n)) if loc_n else 0.0,
        avg_unique=float(np.mean(loc_u)) if loc_u else 0.0,
        unique_share=loc_ushare / loc_batches if loc_batches else loc_ushare,
        access_share=loc_ashare / loc_batches if loc_batches else loc_ashare,
    )

    tables = []
    for t, spec in enumerate(h.tables):
        counts = acc.table_counts(t)
        nzc = counts[counts > 0].astype(np.int64)
        sc = -np.sort(-nzc)
        cdf = access_cdf(sc, spec.rows, bp)
        top1, top10 = access_cdf(sc, spec.rows, [0.01, 0.10])
        bag_hist = np.trim_zeros(acc.bag_hist[t], "b").copy()
        tp = TableProfile(
            name=spec.name,
            rows=spec.rows,
            dim=spec.dim,
            dtype=spec.dtype,
            bytes_per_row=spec.bytes_per_row,
            batch_size=h.batch_size,
            samples=acc.samples,
            lookups=int(acc.lookups[t]),
            unique=len(nzc),
            nonempty_bags=int(acc.nonempty[t]),
            pooling_max=len(bag_hist) - 1 if len(bag_hist) else 0,
            pooling_p50=_percentile_from_hist(bag_hist, 0.50),
            pooling_p99=_percentile_from_hist(bag_hist, 0.99),
            cdf_breakpoints=bp,
            cdf=cdf,
            top1pct_share=float(top1),
            top10pct_share=float(top10),
            bag_size_hist=bag_hist,
            stack_distance=acc.sd[t].histogram() if acc.sd else None,
            counts=counts.astype(np.int64) if keep_counts else None,
            sorted_counts=sc if (full_cdf or keep_counts) else None,
            fine_cdf_breakpoints=fbp,
            fine_cdf=None if fbp is None else access_cdf(sc, spec.rows, fbp),
        )
        tables.append(tp)
    return TraceProfile(
        path=str(reader.path),
        batches=nb,
        batches_in_file=len(reader),
        samples=int(reader.index["b"][:nb].sum()),
        lookups=int(sum(t.lookups for t in tables)),
        batch_size=h.batch_size,
        tables=tables,
        cdf_breakpoints=bp,
        locality=locality,
        stack_distance=acc.overall.histogram() if acc.overall is not None else None,
        provenance=dict(h.provenance),
        fine_cdf_breakpoints=fbp,
    )


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def _fmt(x: float, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def _print_table(p: TraceProfile) -> None:
    click.echo(
        f"{p.path}: {p.batches} of {p.batches_in_file} batches, {p.samples:,} samples, "
        f"{p.lookups:,} lookups, {p.unique:,} unique (table, row) pairs"
    )
    head = (
        f"{'table':<16} {'rows':>12} {'dim':>5} {'lookups':>13} {'unique':>11} {'pool':>7} "
        f"{'p50':>5} {'p99':>5} {'max':>5} {'cover':>6} {'top1%':>6} {'top10%':>6}"
    )
    if p.stack_distance is not None:
        head += f" {'MR@10%':>6}"
    click.echo(head)
    for t in p.tables:
        line = (
            f"{t.name[:16]:<16} {t.rows:>12,} {t.dim:>5} {t.lookups:>13,} {t.unique:>11,} "
            f"{_fmt(t.pooling_mean, '7.2f')} {_fmt(t.pooling_p50, '5.0f')} "
            f"{_fmt(t.pooling_p99, '5.0f')} {t.pooling_max:>5} {_fmt(t.coverage, '6.3f')} "
            f"{_fmt(t.top1pct_share, '6.3f')} {_fmt(t.top10pct_share, '6.3f')}"
        )
        if t.stack_distance is not None:
            line += " " + _fmt(t.stack_distance.miss_ratio(0.1 * t.rows), "6.3f")
        click.echo(line)
    tot_rows = sum(t.rows for t in p.tables)
    pool = p.lookups / p.samples if p.samples else float("nan")
    click.echo(
        f"{'total':<16} {tot_rows:>12,} {'':>5} {p.lookups:>13,} {p.unique:>11,} "
        f"{_fmt(pool, '7.2f')}  (pool = lookups per sample over all tables)"
    )
    if p.stack_distance is not None:
        sd = p.stack_distance
        caps, mr = sd.mrc()
        pts = [(int(c), m) for c, m in zip(caps, mr, strict=True)][:: max(1, len(caps) // 8)]
        click.echo(
            "overall LRU miss ratio (capacity in rows: ratio): "
            + ", ".join(f"{c:,}: {m:.3f}" for c, m in pts)
            + f"; cold share {sd.cold / sd.references if sd.references else float('nan'):.3f}"
        )
    if "MR@10%" in head:
        click.echo("MR@10% = miss ratio of a per-table LRU cache holding 10% of the table's rows")


def _write_out(p: TraceProfile, out: str) -> None:
    import json

    from simrec.util import jsonable

    path = Path(out)
    ext = path.suffix.lower()
    if ext not in (".json", ".csv", ".parquet"):
        raise SimrecError(
            f"unknown output extension {ext or '(none)'!r}",
            path=path,
            fix="name the output file *.json, *.csv or *.parquet",
        )
    with atomic_output(path) as tmp:
        if ext == ".json":
            tmp.write_text(json.dumps(jsonable(p.to_dict()), indent=2, allow_nan=False) + "\n")
        elif ext == ".csv":
            p.to_dataframe().to_csv(tmp, index=False)
        else:
            p.to_dataframe().to_parquet(tmp, index=False)


class _Progress:
    """A progress bar on stderr (only used when stderr is a terminal)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(length=total, label="profiling", file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def _parse_breakpoints(text: str | None) -> Sequence[float]:
    if text is None:
        return DEFAULT_CDF_BREAKPOINTS
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SimrecError(
            f"cannot read CDF breakpoints {text!r}",
            where="--breakpoints",
            fix="give comma-separated row fractions, e.g. 0,0.01,0.1,1",
        ) from None


@click.command("stats")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the profile as one JSON object.")
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=str), default=None,
    help="Also write the profile to FILE.json, FILE.csv or FILE.parquet (one row per table).",
)  # fmt: skip
@click.option(
    "--no-stack-distance", is_flag=True, help="Skip LRU stack distances (faster, less memory)."
)
@click.option(
    "--max-batches",
    type=click.IntRange(min=1),
    default=None,
    help="Profile only the first N batches.",
)
@click.option(
    "--locality", is_flag=True, help="Also print the reuse histogram (locality_stats.txt layout)."
)
@click.option(
    "--breakpoints", default=None, metavar="X,X,...",
    help="Row fractions for the access CDF (default: 16 points from 0 to 1).",
)  # fmt: skip
def stats_command(
    path: str,
    as_json: bool,
    out: str | None,
    no_stack_distance: bool,
    max_batches: int | None,
    locality: bool,
    breakpoints: str | None,
) -> None:
    """Profile the trace at PATH: per-table lookups, unique rows, pooling, coverage, hot-row CDF,
    reuse histogram and LRU miss-ratio curves."""
    if out is not None:
        ext = Path(out).suffix.lower()
        if ext not in (".json", ".csv", ".parquet"):
            raise SimrecError(
                f"unknown output extension {ext or '(none)'!r}",
                path=out,
                fix="name the output file *.json, *.csv or *.parquet",
            )
    bar = _Progress() if sys.stderr.isatty() else None
    try:
        p = profile_trace(
            path,
            stack_distance=not no_stack_distance,
            cdf_breakpoints=_parse_breakpoints(breakpoints),
            max_batches=max_batches,
            progress=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    if out is not None:
        _write_out(p, out)
    if as_json:
        from simrec.cli import echo_json

        echo_json(p.to_dict())
        return
    _print_table(p)
    if locality:
        click.echo("")
        click.echo(p.locality.to_text(), nl=False)
    if out is not None:
        click.echo(f"wrote {out}")
