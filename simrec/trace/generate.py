"""Synthetic trace generators: the Python API and the ``simrec trace gen <kind>`` commands.

Every generator streams batches into a :class:`~simrec.trace.format.TraceWriter` (memory is bounded
by one batch, plus the LRU stack for ``dlrm-lru``), records ``generator``, ``seed`` and all its
parameters in the header's provenance, and is deterministic: the same seed and parameters give a
byte-identical file. :func:`regenerate` rebuilds a trace from its provenance.

Kinds (``docs/trace-generators.md`` has the details and examples):

* ``uniform`` — indices uniform over each table's rows; fixed or distributed pooling.
* ``zipf`` — FBGEMM ``generate_requests`` knobs (anchors.md §3.3): ``alpha`` (<= 1 uniform, > 1 Zipf
  over ranks, ranks scattered over rows by a fixed per-table permutation), ``reuse`` (fraction of a
  batch's indices copied from the previous batch of the same table), pooling, weights, arrivals.
* ``dlrm-lru`` — dlrm's LRU stack-distance model driven by a distribution file (anchors.md §3.2).
* ``mels`` — fitted to the published dlrm_datasets reuse histograms (data.md §2.1).
* ``criteo-kaggle`` — 26 one-hot tables with the Kaggle cardinalities (data.md §1.1), 13 dense
  features and labels.
* ``mlperf-dlrmv2`` — 26 multi-hot tables with the MLPerf 40M-capped cardinalities and multi-hot
  sizes (data.md §1.2, anchors.md §3.4), 13 dense features and labels.

Random streams: indices, pooling, weights, arrival times, dense features, labels and the row
permutations each use their own seeded generator (``gen_sampling.stream_rng``), so e.g. adding
``--weighted`` leaves the indices unchanged.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from simrec.errors import SimrecError
from simrec.trace.format import TableSpec, TraceHeader, TraceWriter, offsets_from_lengths
from simrec.trace.gen_sampling import (
    STREAM_ARRIVAL,
    STREAM_DENSE,
    STREAM_INDICES,
    STREAM_LABELS,
    STREAM_PERM,
    STREAM_POOLING,
    STREAM_REUSE,
    STREAM_TABLES,
    STREAM_WEIGHTS,
    FeistelPermutation,
    Pooling,
    TruncatedZipf,
    make_pooling,
    mix64,
    stream_key,
    stream_rng,
)

__all__ = [
    "CRITEO_KAGGLE_ROWS",
    "GENERATORS",
    "MLPERF_DLRMV2_MULTI_HOT",
    "MLPERF_DLRMV2_ROWS",
    "GenResult",
    "gen_command",
    "gen_criteo_kaggle",
    "gen_dlrm_lru",
    "gen_mels",
    "gen_mlperf_dlrmv2",
    "gen_uniform",
    "gen_zipf",
    "regenerate",
]

GENERATOR_VERSION = 1

#: Criteo Kaggle per-feature cardinalities C1..C26 (data.md §1.1; sum 33,762,577).
CRITEO_KAGGLE_ROWS = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194,
    27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)  # fmt: skip
#: MLPerf DLRMv2 rows, Criteo 1TB capped at 40M (data.md §1.2, anchors.md §3.4; sum 204,184,588).
MLPERF_DLRMV2_ROWS = (
    40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956, 405282, 10,
    2209, 11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152, 12973, 108, 36,
)  # fmt: skip
#: MLPerf DLRMv2 multi-hot sizes per table (data.md §1.2: 214 lookups per sample).
MLPERF_DLRMV2_MULTI_HOT = (
    3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27, 10, 3, 1, 1,
)  # fmt: skip
#: Criteo dense (integer) features per sample (data.md §1.2, torchrec INT_FEATURE_COUNT).
CRITEO_NUM_DENSE = 13
#: Default click rate: 49 positives in the 200-row Criteo sample (shared/data/README.md).
CRITEO_SAMPLE_CTR = 49 / 200


@dataclass
class GenResult:
    """What a generator wrote."""

    path: Path
    num_batches: int
    num_lookups: int
    provenance: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


# -- validation ----------------------------------------------------------------------------------


def _bad(option: str, message: str, fix: str) -> SimrecError:
    return SimrecError(message, where=f"option --{option}", fix=fix)


def _check_int(name: str, value: Any, lo: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _bad(name, f"--{name} must be an integer, got {value!r}", fix)
    if value < lo:
        raise _bad(name, f"--{name} must be >= {lo}, got {value}", fix)
    return int(value)


def _check_common(batches: int, batch_size: int, dim: int, seed: int) -> None:
    _check_int("batches", batches, 1, "give the number of batches to write, e.g. --batches 10")
    _check_int("batch-size", batch_size, 1, "give the samples per batch, e.g. --batch-size 512")
    _check_int("dim", dim, 1, "give the embedding dimension, e.g. --dim 64")
    _check_int("seed", seed, 0, "give a non-negative integer seed")


def _check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha >= 0):
        raise _bad(
            "alpha",
            f"--alpha must be a finite number >= 0, got {alpha}",
            "use alpha <= 1 for uniform indices or alpha > 1 for Zipf skew (e.g. --alpha 1.1)",
        )
    return float(alpha)


def _parse_rows(rows: int | str | Sequence[int], tables: int | None) -> list[int]:
    """Rows per table from one value, a comma list or a sequence; checks the count against tables."""
    fix = "give one row count (--rows 1000000) or one per table (--rows 1000,2000,...)"
    if isinstance(rows, str):
        try:
            vals = [int(x) for x in rows.replace(" ", "").split(",") if x]
        except ValueError:
            raise _bad("rows", f"--rows {rows!r} is not an integer or a comma list", fix) from None
    elif isinstance(rows, int | np.integer):
        vals = [int(rows)]
    else:
        vals = [int(x) for x in rows]
    if not vals:
        raise _bad("rows", "--rows is empty", fix)
    for v in vals:
        if v < 1:
            raise _bad("rows", f"--rows must be >= 1, got {v}", "tables need at least one row")
    if tables is None:
        tables = len(vals)
    tables = _check_int("tables", tables, 1, "give the number of tables, e.g. --tables 8")
    if len(vals) == 1:
        vals = vals * tables
    if len(vals) != tables:
        raise _bad(
            "rows",
            f"--rows lists {len(vals)} values but there are {tables} tables",
            "give one value, or exactly one per table",
        )
    return vals


def _rows_param(rows: list[int]) -> int | list[int]:
    return rows[0] if all(r == rows[0] for r in rows) else list(rows)


def _check_arrival(arrival_rate: float | None, arrival_process: str) -> None:
    if arrival_rate is not None and not (math.isfinite(arrival_rate) and arrival_rate > 0):
        raise _bad(
            "arrival-rate",
            f"--arrival-rate must be > 0 batches per second, got {arrival_rate}",
            "give the mean batch arrival rate in batches/s, or leave it out",
        )
    if arrival_process not in ("poisson", "fixed"):
        raise _bad(
            "arrival-process",
            f"unknown arrival process {arrival_process!r}",
            "use poisson or fixed",
        )


# -- writing -------------------------------------------------------------------------------------


@dataclass
class _Extras:
    """Per-batch extras: per-lookup weights, dense features, labels, arrival times."""

    seed: int
    weighted: bool = False
    num_dense: int = 0
    labels: bool = False
    ctr: float = CRITEO_SAMPLE_CTR
    arrival_rate: float | None = None
    arrival_process: str = "poisson"

    def __post_init__(self) -> None:
        self._w = stream_rng(self.seed, STREAM_WEIGHTS)
        self._d = stream_rng(self.seed, STREAM_DENSE)
        self._l = stream_rng(self.seed, STREAM_LABELS)
        self._a = stream_rng(self.seed, STREAM_ARRIVAL)
        self._t = 0.0
        self._k = 0

    def make(self, b: int, n: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.weighted:
            out["weights"] = self._w.random(n, dtype=np.float32)
        if self.num_dense:
            # Criteo-like integer counts c ~ floor(LogNormal(1, 1.5)), stored as log(1 + c) the
            # way dlrm preprocesses Criteo's dense features.
            c = np.floor(self._d.lognormal(1.0, 1.5, size=(b, self.num_dense)))
            out["dense"] = np.log1p(c).astype(np.float32)
        if self.labels:
            out["labels"] = (self._l.random(b) < self.ctr).astype(np.float32)
        if self.arrival_rate is not None:
            if self.arrival_process == "poisson":
                self._t += float(self._a.exponential(1.0 / self.arrival_rate))
            else:
                self._t = self._k / self.arrival_rate
            out["arrival_s"] = self._t
        self._k += 1
        return out


def _write(
    output: str | os.PathLike[str],
    header: TraceHeader,
    batches: Iterator[tuple[np.ndarray, np.ndarray]],
    extras: _Extras,
) -> tuple[int, int]:
    nb = nl = 0
    with TraceWriter(output, header) as w:
        for offsets, indices in batches:
            b = (len(offsets) - 1) // header.num_tables
            w.write_batch(offsets, indices, **extras.make(b, len(indices)))
            nb += 1
            nl += len(indices)
    return nb, nl


def _header(
    names: Sequence[str],
    rows: Sequence[int],
    dim: int,
    batch_size: int,
    extras: _Extras,
    provenance: dict[str, Any],
) -> TraceHeader:
    return TraceHeader(
        tables=tuple(
            TableSpec(name=n, rows=int(r), dim=int(dim)) for n, r in zip(names, rows, strict=True)
        ),
        batch_size=int(batch_size),
        index_dtype=TraceHeader.pick_index_dtype(rows),
        has_weights=extras.weighted,
        num_dense=extras.num_dense,
        has_labels=extras.labels,
        provenance=provenance,
    )


def _provenance(generator: str, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": "generated",
        "generator": generator,
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "params": params,
    }


class _IndexSampler:
    """Per-table index sampler: uniform (alpha <= 1) or Zipf ranks scattered by a permutation."""

    def __init__(self, rows: list[int], alpha: float, seed: int):
        self.rows = rows
        self.alpha = alpha
        self._zipf: dict[int, TruncatedZipf] = {}
        self._perm: list[FeistelPermutation | None] = [None] * len(rows)
        if alpha > 1:
            for t, r in enumerate(rows):
                if r not in self._zipf:
                    self._zipf[r] = TruncatedZipf(r, alpha)
                self._perm[t] = FeistelPermutation(r, stream_key(seed, STREAM_PERM, t))

    def ranks(self, t: int, rng: np.random.Generator, n: int) -> np.ndarray:
        """Popularity ranks (0 = hottest) for alpha > 1, else uniform rows."""
        if self.alpha > 1:
            return self._zipf[self.rows[t]].sample(rng, n)
        return rng.integers(0, self.rows[t], size=n, dtype=np.int64)

    def to_rows(self, t: int, ranks: np.ndarray) -> np.ndarray:
        perm = self._perm[t]
        return ranks if perm is None else perm(ranks)

    def sample(self, t: int, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.to_rows(t, self.ranks(t, rng, n))


def _synthetic_batches(
    rows: list[int],
    pooling: Pooling,
    alpha: float,
    reuse: float,
    batches: int,
    batch_size: int,
    seed: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    T = len(rows)
    sampler = _IndexSampler(rows, alpha, seed)
    rng_idx = stream_rng(seed, STREAM_INDICES)
    rng_pool = stream_rng(seed, STREAM_POOLING)
    rng_reuse = stream_rng(seed, STREAM_REUSE)
    prev: list[np.ndarray | None] = [None] * T
    for _ in range(batches):
        lengths = pooling.sample(rng_pool, (T, batch_size))
        offsets = offsets_from_lengths(lengths)
        per_table = lengths.sum(axis=1)
        idx = np.empty(int(offsets[-1]), dtype=np.int64)
        pos = 0
        for t in range(T):
            n = int(per_table[t])
            vals = sampler.sample(t, rng_idx, n)
            if reuse > 0:
                p = prev[t]
                if p is not None and len(p) and n:
                    hit = np.flatnonzero(rng_reuse.random(n) < reuse)
                    src = hit.copy()
                    far = hit >= len(p)
                    src[far] = rng_reuse.integers(0, len(p), size=int(far.sum()))
                    vals[hit] = p[src]
                prev[t] = vals
            idx[pos : pos + n] = vals
            pos += n
        yield offsets, idx


# -- public generators ---------------------------------------------------------------------------


def gen_uniform(
    output: str | os.PathLike[str],
    *,
    tables: int | None = None,
    rows: int | str | Sequence[int] = 1_000_000,
    dim: int = 64,
    batches: int = 10,
    batch_size: int = 512,
    pooling: int | None = None,
    pooling_dist: str | None = None,
    pooling_mean: float | None = None,
    pooling_std: float | None = None,
    max_pooling: int | None = None,
    weighted: bool = False,
    arrival_rate: float | None = None,
    arrival_process: str = "poisson",
    seed: int = 0,
) -> GenResult:
    """Indices uniform over each table's rows; bags of fixed size (default 1) or distributed.

    ``tables`` defaults to 8, or to the length of a ``rows`` list.
    """
    return _gen_synthetic(
        "uniform", output, tables, rows, dim, batches, batch_size, pooling, pooling_dist,
        pooling_mean, pooling_std, max_pooling, weighted, arrival_rate, arrival_process, seed,
        alpha=0.0, reuse=0.0,
    )  # fmt: skip


def gen_zipf(
    output: str | os.PathLike[str],
    *,
    tables: int | None = None,
    rows: int | str | Sequence[int] = 1_000_000,
    dim: int = 64,
    alpha: float = 1.1,
    reuse: float = 0.0,
    batches: int = 10,
    batch_size: int = 512,
    pooling: int | None = None,
    pooling_dist: str | None = None,
    pooling_mean: float | None = None,
    pooling_std: float | None = None,
    max_pooling: int | None = None,
    weighted: bool = False,
    arrival_rate: float | None = None,
    arrival_process: str = "poisson",
    seed: int = 0,
) -> GenResult:
    """FBGEMM-style synthetic requests: Zipf(alpha) over ranks, inter-batch ``reuse``, pooling.

    ``alpha <= 1`` gives uniform indices (as in FBGEMM); ``alpha > 1`` draws rank ``k`` with
    probability ``∝ k^-alpha`` over ``1..rows`` and maps ranks to rows through a fixed per-table
    permutation. ``reuse`` is the probability that an index is copied from the previous batch of the
    same table (same position when it exists, else a random position of that batch).
    """
    return _gen_synthetic(
        "zipf", output, tables, rows, dim, batches, batch_size, pooling, pooling_dist,
        pooling_mean, pooling_std, max_pooling, weighted, arrival_rate, arrival_process, seed,
        alpha=alpha, reuse=reuse,
    )  # fmt: skip


def _gen_synthetic(
    kind: str,
    output: str | os.PathLike[str],
    tables: int | None,
    rows: int | str | Sequence[int],
    dim: int,
    batches: int,
    batch_size: int,
    pooling: int | None,
    pooling_dist: str | None,
    pooling_mean: float | None,
    pooling_std: float | None,
    max_pooling: int | None,
    weighted: bool,
    arrival_rate: float | None,
    arrival_process: str,
    seed: int,
    alpha: float,
    reuse: float,
) -> GenResult:
    t0 = time.perf_counter()
    _check_common(batches, batch_size, dim, seed)
    alpha = _check_alpha(alpha)
    if not (isinstance(reuse, int | float) and 0.0 <= reuse <= 1.0):
        raise _bad(
            "reuse",
            f"--reuse must lie in [0, 1], got {reuse}",
            "give the fraction of indices copied from the previous batch, e.g. --reuse 0.2",
        )
    if tables is None:
        n = len(_parse_rows(rows, None))
        tables = n if n > 1 else 8
    row_list = _parse_rows(rows, tables)
    pool = make_pooling(pooling, pooling_dist, pooling_mean, pooling_std, max_pooling)
    _check_arrival(arrival_rate, arrival_process)
    params: dict[str, Any] = {
        "tables": len(row_list),
        "rows": _rows_param(row_list),
        "dim": dim,
        "batches": batches,
        "batch_size": batch_size,
        "pooling": int(pool.mean) if pool.kind == "fixed" else None,
        "pooling_dist": None if pool.kind == "fixed" else pool.kind,
        "pooling_mean": None if pool.kind == "fixed" else pool.mean,
        "pooling_std": None if pool.kind == "fixed" else pool.std,
        "max_pooling": max_pooling,
        "weighted": bool(weighted),
        "arrival_rate": arrival_rate,
        "arrival_process": arrival_process,
    }
    if kind == "zipf":
        params["alpha"] = alpha
        params["reuse"] = float(reuse)
    extras = _Extras(seed, weighted=weighted, arrival_rate=arrival_rate,
                     arrival_process=arrival_process)  # fmt: skip
    names = [f"t{t}" for t in range(len(row_list))]
    header = _header(names, row_list, dim, batch_size, extras, _provenance(kind, seed, params))
    it = _synthetic_batches(row_list, pool, alpha, float(reuse), batches, batch_size, seed)
    nb, nl = _write(output, header, it, extras)
    return GenResult(Path(output), nb, nl, header.provenance, seconds=time.perf_counter() - t0)


def _criteo_like(
    kind: str,
    output: str | os.PathLike[str],
    names: list[str],
    rows: list[int],
    hot: list[int],
    dim: int,
    alpha: float,
    batches: int,
    batch_size: int,
    ctr: float,
    dense: bool,
    multi_hot: str,
    weighted: bool,
    arrival_rate: float | None,
    arrival_process: str,
    seed: int,
    extra_params: dict[str, Any],
) -> GenResult:
    t0 = time.perf_counter()
    _check_common(batches, batch_size, dim, seed)
    alpha = _check_alpha(alpha)
    _check_arrival(arrival_rate, arrival_process)
    if not (isinstance(ctr, int | float) and 0.0 <= ctr <= 1.0):
        raise _bad("ctr", f"--ctr must lie in [0, 1], got {ctr}", "give the click rate, e.g. 0.25")
    if multi_hot not in ("mlperf", "independent"):
        raise _bad(
            "multi-hot",
            f"unknown multi-hot mode {multi_hot!r}",
            "use mlperf (extra ids are a fixed function of the first id) or independent",
        )
    params: dict[str, Any] = {
        "dim": dim,
        "alpha": alpha,
        "batches": batches,
        "batch_size": batch_size,
        "ctr": float(ctr),
        "dense": bool(dense),
        "weighted": bool(weighted),
        "arrival_rate": arrival_rate,
        "arrival_process": arrival_process,
        **extra_params,
    }
    extras = _Extras(
        seed,
        weighted=weighted,
        num_dense=CRITEO_NUM_DENSE if dense else 0,
        labels=dense,
        ctr=ctr,
        arrival_rate=arrival_rate,
        arrival_process=arrival_process,
    )
    header = _header(names, rows, dim, batch_size, extras, _provenance(kind, seed, params))
    sampler = _IndexSampler(rows, alpha, seed)
    keys = [np.uint64(stream_key(seed, STREAM_TABLES, t)) for t in range(len(rows))]

    def batches_it() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = stream_rng(seed, STREAM_INDICES)
        T, B = len(rows), batch_size
        lengths = np.repeat(np.asarray(hot, dtype=np.int64)[:, None], B, axis=1)
        offsets = offsets_from_lengths(lengths)
        for _ in range(batches):
            idx = np.empty(int(offsets[-1]), dtype=np.int64)
            pos = 0
            for t in range(T):
                L = hot[t]
                if multi_hot == "independent" or L == 1:
                    vals = sampler.sample(t, rng, B * L)
                else:
                    # MLPerf synthesis (anchors.md §3.4): the bag is the sample's id followed by
                    # L-1 ids that are a fixed function of it, uniform over the table.
                    first = sampler.sample(t, rng, B)
                    j = np.arange(1, L, dtype=np.uint64)
                    h = mix64((first.astype(np.uint64)[:, None] * np.uint64(128) + j) ^ keys[t])
                    extra = (h % np.uint64(rows[t])).astype(np.int64)
                    vals = np.concatenate([first[:, None], extra], axis=1).ravel()
                idx[pos : pos + B * L] = vals
                pos += B * L
            yield offsets, idx

    nb, nl = _write(output, header, batches_it(), extras)
    return GenResult(Path(output), nb, nl, header.provenance, seconds=time.perf_counter() - t0)


def gen_criteo_kaggle(
    output: str | os.PathLike[str],
    *,
    dim: int = 16,
    alpha: float = 1.1,
    batches: int = 10,
    batch_size: int = 2048,
    ctr: float = CRITEO_SAMPLE_CTR,
    dense: bool = True,
    weighted: bool = False,
    arrival_rate: float | None = None,
    arrival_process: str = "poisson",
    seed: int = 0,
) -> GenResult:
    """Criteo-Kaggle-shaped trace: 26 one-hot tables C1..C26 with the Kaggle cardinalities.

    Index skew is Zipf(``alpha``) per table (uniform for ``alpha <= 1``); the real per-feature skew
    is not published. With ``dense`` (default), each sample gets 13 dense features
    ``log(1 + floor(LogNormal(1, 1.5)))`` and a label ``Bernoulli(ctr)`` (independent of the features;
    default ctr 0.245 = 49/200 positives of the shared Criteo sample).
    """
    names = [f"C{i + 1}" for i in range(26)]
    return _criteo_like(
        "criteo-kaggle", output, names, list(CRITEO_KAGGLE_ROWS), [1] * 26, dim, alpha, batches,
        batch_size, ctr, dense, "independent", weighted, arrival_rate, arrival_process, seed, {},
    )  # fmt: skip


def gen_mlperf_dlrmv2(
    output: str | os.PathLike[str],
    *,
    dim: int = 128,
    alpha: float = 1.1,
    multi_hot: str = "mlperf",
    batches: int = 10,
    batch_size: int = 2048,
    ctr: float = CRITEO_SAMPLE_CTR,
    dense: bool = True,
    weighted: bool = False,
    arrival_rate: float | None = None,
    arrival_process: str = "poisson",
    seed: int = 0,
) -> GenResult:
    """MLPerf DLRMv2-shaped trace: 26 multi-hot tables (40M-capped rows, 214 lookups per sample).

    Tables are named cat_0..cat_25 (torchrec's DEFAULT_CAT_NAMES). The first id of each bag is
    Zipf(``alpha``) over the table; ``multi_hot="mlperf"`` makes the other ``size-1`` ids a fixed
    uniform hash of the first id (the MLPerf materialisation, anchors.md §3.4), ``"independent"``
    draws them all from the Zipf law. Dense features and labels as for :func:`gen_criteo_kaggle`.
    """
    names = [f"cat_{i}" for i in range(26)]
    return _criteo_like(
        "mlperf-dlrmv2", output, names, list(MLPERF_DLRMV2_ROWS), list(MLPERF_DLRMV2_MULTI_HOT),
        dim, alpha, batches, batch_size, ctr, dense, multi_hot, weighted, arrival_rate,
        arrival_process, seed, {"multi_hot": multi_hot},
    )  # fmt: skip


def gen_dlrm_lru(
    output: str | os.PathLike[str],
    *,
    dist_file: str | os.PathLike[str],
    tables: int = 1,
    rows: int | str | Sequence[int] | None = None,
    dim: int = 64,
    batches: int = 10,
    batch_size: int = 512,
    pooling: int | None = None,
    pooling_dist: str | None = None,
    pooling_mean: float | None = None,
    pooling_std: float | None = None,
    max_pooling: int | None = None,
    weighted: bool = False,
    arrival_rate: float | None = None,
    arrival_process: str = "poisson",
    seed: int = 0,
) -> GenResult:
    """dlrm's LRU stack-distance model (see :mod:`simrec.trace.gen_lru`), one stream per table.

    Each table's stream is consumed in order: bag after bag, batch after batch. Without ``rows``
    a table's rows are the distinct lines its stream creates (row ``i`` = the ``i``-th new line; a
    first pass counts them). With ``rows``, new lines take unused rows in a fixed random order and,
    once all rows are used, ``sd = 0`` re-references the least recently used row (dlrm's behaviour).
    """
    from simrec.trace.gen_lru import LruStream, count_new_lines, read_lru_distribution

    t0 = time.perf_counter()
    _check_common(batches, batch_size, dim, seed)
    _check_int("tables", tables, 1, "give the number of tables, e.g. --tables 4")
    dist = read_lru_distribution(dist_file)
    pool = make_pooling(pooling, pooling_dist, pooling_mean, pooling_std, max_pooling)
    _check_arrival(arrival_rate, arrival_process)
    row_list = None if rows is None else _parse_rows(rows, tables)
    T, B = int(tables), int(batch_size)

    def lengths_iter() -> Iterator[np.ndarray]:
        rng_pool = stream_rng(seed, STREAM_POOLING)
        for _ in range(batches):
            yield pool.sample(rng_pool, (T, B))

    if row_list is None:  # pass 1: count the distinct lines of every table
        rngs = [stream_rng(seed, STREAM_INDICES, t) for t in range(T)]
        lines = [0] * T
        for lengths in lengths_iter():
            for t in range(T):
                u = rngs[t].random(int(lengths[t].sum()))
                lines[t] = count_new_lines(dist, u, lines[t], None)
        table_rows = [max(1, n) for n in lines]
    else:
        table_rows = row_list
    params: dict[str, Any] = {
        "dist_file": str(dist_file),
        "tables": T,
        "rows": None if row_list is None else _rows_param(row_list),
        "dim": dim,
        "batches": batches,
        "batch_size": B,
        "pooling": int(pool.mean) if pool.kind == "fixed" else None,
        "pooling_dist": None if pool.kind == "fixed" else pool.kind,
        "pooling_mean": None if pool.kind == "fixed" else pool.mean,
        "pooling_std": None if pool.kind == "fixed" else pool.std,
        "max_pooling": max_pooling,
        "weighted": bool(weighted),
        "arrival_rate": arrival_rate,
        "arrival_process": arrival_process,
    }
    prov = _provenance("dlrm-lru", seed, params)
    prov["dist"] = {
        "unique_accesses": dist.unique_accesses.tolist(),
        "sd_values": dist.sd_values.tolist(),
        "sd_cdf": dist.sd_cdf.tolist(),
    }
    extras = _Extras(seed, weighted=weighted, arrival_rate=arrival_rate,
                     arrival_process=arrival_process)  # fmt: skip
    header = _header([f"t{t}" for t in range(T)], table_rows, dim, B, extras, prov)

    def batches_it() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rngs = [stream_rng(seed, STREAM_INDICES, t) for t in range(T)]
        streams = [LruStream(dist, None if row_list is None else row_list[t]) for t in range(T)]
        perms = (
            None
            if row_list is None
            else [FeistelPermutation(r, stream_key(seed, STREAM_PERM, t)) for t, r in
                  enumerate(row_list)]
        )  # fmt: skip
        for lengths in lengths_iter():
            offsets = offsets_from_lengths(lengths)
            parts = []
            for t in range(T):
                line = streams[t].next(rngs[t].random(int(lengths[t].sum())))
                parts.append(line if perms is None else perms[t](line))
            yield offsets, np.concatenate(parts) if parts else np.zeros(0, np.int64)

    nb, nl = _write(output, header, batches_it(), extras)
    return GenResult(Path(output), nb, nl, header.provenance, seconds=time.perf_counter() - t0)


def gen_mels(
    output: str | os.PathLike[str],
    *,
    profile: str = "2021",
    profile_entry: str | None = None,
    tables: int | None = None,
    batch_size: int = 2048,
    pooling_mean: float | None = None,
    rows: int | str | Sequence[int] | None = None,
    rows_factor: float = 4.0,
    table_sigma: float = 1.0,
    dim: int = 64,
    batches: int = 10,
    weighted: bool = False,
    arrival_rate: float | None = None,
    arrival_process: str = "poisson",
    seed: int = 0,
) -> GenResult:
    """MELS-like batches fitted to the published reuse histograms (see :mod:`simrec.trace.gen_mels`).

    ``profile`` is ``"2021"``, ``"2022"`` or a locality_stats.txt path; ``profile_entry`` names a
    block (default the first). ``tables`` defaults to the profile's (856 / 788), ``pooling_mean`` to
    the published avg indices / (T·B) (15.8 for the 2021 single file). Each batch has
    ``round(tables · batch_size · pooling_mean)`` lookups (within rounding). The histogram distance of
    batch 0 to the profile is in ``provenance["fit"]``.
    """
    from simrec.trace.gen_mels import MelsBatcher, MelsModel, load_profile

    t0 = time.perf_counter()
    _check_common(batches, batch_size, dim, seed)
    prof = load_profile(profile, profile_entry)
    if tables is None:
        if prof.tables is None:
            raise _bad(
                "tables",
                f"the profile entry {prof.hist.name!r} does not say how many tables it has",
                "give --tables",
            )
        tables = prof.tables
    tables = _check_int("tables", tables, 1, "give the number of tables, e.g. --tables 64")
    if pooling_mean is None:  # published avg indices / (T·B) of the profile's own T and B
        pooling_mean = prof.mean_pooling or prof.hist.avg_indices / (tables * prof.batch_size)
    if not (math.isfinite(pooling_mean) and pooling_mean > 0):
        raise _bad("pooling-mean", f"--pooling-mean must be > 0, got {pooling_mean}",
                   "give the mean lookups per sample and table, e.g. 15.8")  # fmt: skip
    if not (math.isfinite(rows_factor) and rows_factor >= 1):
        raise _bad("rows-factor", f"--rows-factor must be >= 1, got {rows_factor}",
                   "give the ratio of table rows to distinct rows per batch, e.g. 4")  # fmt: skip
    if not (math.isfinite(table_sigma) and table_sigma >= 0):
        raise _bad("table-sigma", f"--table-sigma must be >= 0, got {table_sigma}",
                   "give the log-std of the table traffic weights, e.g. 1.0 (0 = equal)")  # fmt: skip
    _check_arrival(arrival_rate, arrival_process)
    row_list = None if rows is None else _parse_rows(rows, tables)
    lookups = round(tables * batch_size * pooling_mean)
    if lookups < 1:
        raise _bad("pooling-mean", "the batch would have no lookups",
                   "raise --batch-size, --tables or --pooling-mean")  # fmt: skip
    model = MelsModel.fit(prof, lookups)
    batcher = MelsBatcher(model, tables, batch_size, seed, row_list, rows_factor, table_sigma,
                          stream_rng(seed, STREAM_TABLES))  # fmt: skip
    rng = stream_rng(seed, STREAM_INDICES)
    first = batcher.batch(model.draw_counts(rng), rng, 0)
    # distance of batch 0, computed from the indices actually written
    offsets0, idx0 = first[0], first[1]
    edges0 = offsets0[::batch_size]
    counts0 = []
    for t in range(tables):
        bc = np.bincount(idx0[edges0[t] : edges0[t + 1]], minlength=0)
        counts0.append(bc[bc > 0])
    dist = model.distance(np.concatenate(counts0))
    params: dict[str, Any] = {
        "profile": str(profile),
        "profile_entry": profile_entry,
        "tables": tables,
        "batch_size": batch_size,
        "pooling_mean": float(pooling_mean),
        "rows": None if row_list is None else _rows_param(row_list),
        "rows_factor": float(rows_factor),
        "table_sigma": float(table_sigma),
        "dim": dim,
        "batches": batches,
        "weighted": bool(weighted),
        "arrival_rate": arrival_rate,
        "arrival_process": arrival_process,
    }
    prov = _provenance("mels", seed, params)
    prov["fit"] = {
        "profile_file": prof.path.name,
        "profile_entry": prof.hist.name,
        "lookups_per_batch": int(lookups),
        "tail_reached": model.tail_reached,
        "batch0_distance": {k: round(v, 6) for k, v in dist.items()},
        "warnings": list(model.warnings),
    }
    extras = _Extras(seed, weighted=weighted, arrival_rate=arrival_rate,
                     arrival_process=arrival_process)  # fmt: skip
    header = _header([f"t{t}" for t in range(tables)], batcher.rows, dim, batch_size, extras, prov)

    pending = [(offsets0, idx0)]
    del first, offsets0, idx0, counts0  # batch 0 lives only until it is written

    def batches_it() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield pending.pop()
        for k in range(1, batches):
            off, idx, _, _ = batcher.batch(model.draw_counts(rng), rng, k)
            yield off, idx

    nb, nl = _write(output, header, batches_it(), extras)
    return GenResult(
        Path(output), nb, nl, header.provenance, list(model.warnings), time.perf_counter() - t0
    )


GENERATORS: dict[str, Callable[..., GenResult]] = {
    "uniform": gen_uniform,
    "zipf": gen_zipf,
    "dlrm-lru": gen_dlrm_lru,
    "mels": gen_mels,
    "criteo-kaggle": gen_criteo_kaggle,
    "mlperf-dlrmv2": gen_mlperf_dlrmv2,
}


def regenerate(provenance: dict[str, Any], output: str | os.PathLike[str]) -> GenResult:
    """Re-run the generator recorded in a trace's provenance (same bytes as the original)."""
    name = provenance.get("generator")
    if name not in GENERATORS:
        raise SimrecError(
            f"the provenance names no known generator ({name!r})",
            where="provenance.generator",
            fix="only traces made by `simrec trace gen` can be regenerated",
        )
    return GENERATORS[name](output, seed=provenance["seed"], **provenance["params"])


# -- command line --------------------------------------------------------------------------------


def _common_options(batches: int, batch_size: int, dim: int) -> Callable[[Callable], Callable]:
    opts = [
        click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
                     help="Output .trc file (written atomically: no file is left on error)."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Random seed; the same seed and options give a byte-identical file."),
        click.option("--batches", type=int, default=batches, show_default=True,
                     help="Number of batches."),
        click.option("--batch-size", type=int, default=batch_size, show_default=True,
                     help="Samples per batch."),
        click.option("--dim", type=int, default=dim, show_default=True,
                     help="Embedding dimension recorded for every table."),
        click.option("--weighted", is_flag=True,
                     help="Add a per-lookup weight, uniform in [0, 1) (float32)."),
        click.option("--arrival-rate", type=float, default=None,
                     help="Give batches arrival times: mean rate in batches per second."),
        click.option("--arrival-process", type=click.Choice(["poisson", "fixed"]),
                     default="poisson", show_default=True,
                     help="Poisson (exponential gaps) or fixed gaps of 1/rate."),
    ]  # fmt: skip

    def deco(f: Callable) -> Callable:
        for o in reversed(opts):
            f = o(f)
        return f

    return deco


def _pooling_options(f: Callable) -> Callable:
    opts = [
        click.option("--pooling", type=int, default=None,
                     help="Fixed bag size L: lookups per sample and table (default 1)."),
        click.option("--pooling-dist", type=click.Choice(["fixed", "uniform", "normal", "lognormal"]),
                     default=None, help="Distributed bag sizes (rounded, clipped at 0; 0 means the "
                     "sample lacks the feature, so coverage < 1)."),
        click.option("--pooling-mean", type=float, default=None,
                     help="Mean bag size for --pooling-dist."),
        click.option("--pooling-std", type=float, default=None,
                     help="Standard deviation of the bag size for --pooling-dist."),
        click.option("--max-pooling", type=int, default=None, help="Cap on the bag size."),
    ]  # fmt: skip
    for o in reversed(opts):
        f = o(f)
    return f


def _report(res: GenResult) -> None:
    rate = res.num_lookups / res.seconds if res.seconds > 0 else float("nan")
    click.echo(
        f"wrote {res.path}: {res.num_batches} batches, {res.num_lookups:,} lookups "
        f"({res.seconds:.2f} s, {rate / 1e6:.2f} M lookups/s)"
    )
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def gen_command() -> None:
    """Generate a synthetic .trc trace; one subcommand per kind.

    \b
    Every kind takes -o FILE (required), --seed (default 0), --batches, --batch-size and --dim,
    records its name, seed and all options in the trace's provenance, and writes the same bytes
    for the same seed. See docs/trace-generators.md.
    """


@gen_command.command("uniform")
@_common_options(10, 512, 64)
@click.option("--tables", type=int, default=None, help="Number of tables [default: 8, or the "
              "length of a --rows list].")  # fmt: skip
@click.option("--rows", default="1000000", show_default=True,
              help="Rows per table: one value or a comma list (one per table).")  # fmt: skip
@_pooling_options
def _uniform_cmd(**kw: Any) -> None:
    """Indices uniform over each table's rows, fixed or distributed bag sizes.

    \b
    Example:
      simrec trace gen uniform --tables 4 --rows 100000 --pooling 8 -o u.trc
    """
    _report(gen_uniform(kw.pop("output"), **kw))


@gen_command.command("zipf")
@_common_options(10, 512, 64)
@click.option("--tables", type=int, default=None, help="Number of tables [default: 8, or the "
              "length of a --rows list].")  # fmt: skip
@click.option("--rows", default="1000000", show_default=True,
              help="Rows per table: one value or a comma list (one per table).")  # fmt: skip
@click.option(
    "--alpha",
    type=float,
    default=1.1,
    show_default=True,
    help="Zipf exponent over popularity ranks; <= 1 means uniform (FBGEMM convention).",
)
@click.option(
    "--reuse",
    type=float,
    default=0.0,
    show_default=True,
    help="Fraction of a batch's indices copied from the previous batch of the same table.",
)
@_pooling_options
def _zipf_cmd(**kw: Any) -> None:
    """FBGEMM-style Zipf requests: --alpha skew, --reuse between batches, pooling, weights.

    Ranks follow a Zipf law truncated to 1..rows (exact inverse CDF for the top 65,536 ranks, a
    closed-form integral beyond) and map to rows through a fixed per-table permutation, so the hot
    rows are scattered over the table.

    \b
    Example:
      simrec trace gen zipf --tables 8 --rows 1000000 --alpha 1.1 --reuse 0.2 \\
          --pooling-dist lognormal --pooling-mean 20 --pooling-std 10 -o z.trc
    """
    _report(gen_zipf(kw.pop("output"), **kw))


@gen_command.command("dlrm-lru")
@_common_options(10, 512, 64)
@click.option(
    "--dist-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="dlrm distribution file: unique accesses / stack distances / cumulative "
    "probabilities, one comma list per line (e.g. dlrm's input/dist_emb_0.log).",
)
@click.option(
    "--tables",
    type=int,
    default=1,
    show_default=True,
    help="Number of tables (one independent LRU stream each).",
)
@click.option(
    "--rows",
    default=None,
    help="Rows per table (one value or a comma list). Default: the number of distinct "
    "lines each stream creates.",
)
@_pooling_options
def _lru_cmd(**kw: Any) -> None:
    """dlrm's LRU stack-distance generator: sd = 0 is a new line, sd = d re-uses depth d.

    Stack distances are drawn by inverse CDF from --dist-file; each table's stream is cut into bags
    in sample order, batch after batch.

    \b
    Example:
      simrec trace gen dlrm-lru --dist-file dist_emb_0.log --tables 4 --pooling 10 -o l.trc
    """
    _report(gen_dlrm_lru(kw.pop("output"), **kw))


@gen_command.command("mels")
@_common_options(10, 2048, 64)
@click.option(
    "--profile",
    default="2021",
    show_default=True,
    help="Published profile: 2021, 2022, or a dlrm_datasets locality_stats.txt path.",
)
@click.option(
    "--profile-entry",
    default=None,
    help="Block of the profile file (its first line, e.g. fbgemm_t856_bs65536_3.pt); "
    "default the first.",
)
@click.option(
    "--tables",
    type=int,
    default=None,
    help="Tables [default: from the entry's name: 856 for 2021, 788 for 2022].",
)
@click.option(
    "--pooling-mean",
    type=float,
    default=None,
    help="Mean lookups per sample and table [default: published avg indices / (T*B), "
    "15.8 for the 2021 single file].",
)
@click.option(
    "--rows",
    default=None,
    help="Rows per table (one value or a comma list) [default: rows-factor x the "
    "table's expected distinct rows per batch, + 6 sigma + 64].",
)
@click.option(
    "--rows-factor",
    type=float,
    default=4.0,
    show_default=True,
    help="Table rows per expected distinct row per batch (when --rows is not given).",
)
@click.option(
    "--table-sigma",
    type=float,
    default=1.0,
    show_default=True,
    help="Log-std of the per-table traffic weights (0 = all tables alike).",
)
def _mels_cmd(**kw: Any) -> None:
    """MELS-like trace fitted to Meta's published reuse histograms (dlrm_datasets).

    Each batch's per-row reuse counts meet both published histograms (unique rows and accesses
    per reuse bin); hot rows stay hot across batches. Prints the histogram distance of batch 0 to
    the profile (total variation) and stores it in the provenance. The 32768+ bin needs at least
    32769 / share lookups per batch (1.73 M for 2021): a smaller batch gets a warning.

    \b
    Example:
      simrec trace gen mels --profile 2021 --tables 64 --batch-size 2048 -o m.trc
    """
    res = gen_mels(kw.pop("output"), **kw)
    _report(res)
    fit = res.provenance["fit"]
    d = fit["batch0_distance"]
    click.echo(
        f"fit to {fit['profile_file']} [{fit['profile_entry']}], batch 0: "
        f"unique TV {d['unique_tv']:.4f}, access TV {d['access_tv']:.4f}, "
        f"avg col size ratio {d['avg_col_size_ratio']:.3f}"
    )


@gen_command.command("criteo-kaggle")
@_common_options(10, 2048, 16)
@click.option(
    "--alpha",
    type=float,
    default=1.1,
    show_default=True,
    help="Zipf exponent per table (<= 1: uniform).",
)
@click.option(
    "--ctr",
    type=float,
    default=round(CRITEO_SAMPLE_CTR, 3),
    show_default=True,
    help="Label click rate (Bernoulli).",
)
@click.option(
    "--dense/--no-dense",
    default=True,
    show_default=True,
    help="Write 13 dense features and labels.",
)
def _kaggle_cmd(**kw: Any) -> None:
    """Criteo Kaggle shape: 26 one-hot tables C1..C26 with the Kaggle cardinalities.

    Dense features are log(1 + floor(LogNormal(1, 1.5))), labels Bernoulli(--ctr).

    \b
    Example:
      simrec trace gen criteo-kaggle --alpha 1.05 --batch-size 4096 -o k.trc
    """
    _report(gen_criteo_kaggle(kw.pop("output"), **kw))


@gen_command.command("mlperf-dlrmv2")
@_common_options(10, 2048, 128)
@click.option(
    "--alpha",
    type=float,
    default=1.1,
    show_default=True,
    help="Zipf exponent of each bag's first id (<= 1: uniform).",
)
@click.option(
    "--multi-hot",
    type=click.Choice(["mlperf", "independent"]),
    default="mlperf",
    show_default=True,
    help="mlperf: the other ids of a bag are a fixed uniform hash of "
    "its first id (MLPerf materialisation); independent: all ids drawn from the Zipf law.",
)
@click.option(
    "--ctr",
    type=float,
    default=round(CRITEO_SAMPLE_CTR, 3),
    show_default=True,
    help="Label click rate (Bernoulli).",
)
@click.option(
    "--dense/--no-dense",
    default=True,
    show_default=True,
    help="Write 13 dense features and labels.",
)
def _mlperf_cmd(**kw: Any) -> None:
    """MLPerf DLRMv2 shape: 26 multi-hot tables, rows capped at 40M, 214 lookups per sample.

    \b
    Example:
      simrec trace gen mlperf-dlrmv2 --batch-size 4096 --batches 4 -o mlperf.trc
    """
    _report(gen_mlperf_dlrmv2(kw.pop("output"), **kw))
