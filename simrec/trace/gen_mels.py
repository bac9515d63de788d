"""MELS-like batches fitted to Meta's published ``dlrm_datasets`` reuse histograms.

The published ``locality_stats.txt`` (data.md §2.1) gives, per batch file, two histograms over the
reuse bins ``(0,1], (1,2], (2,4], … (16384,32768], 32768+`` of the distinct (table, row) pairs a batch
touches: the share of *unique rows* per bin (``u_k``) and the share of *accesses* per bin (``a_k``),
plus the indices and unique rows per batch. Both histograms are absolute: a row with 40,000 accesses
lands in the last bin whatever the batch size, so the lookup volume of a batch matters.

Model (per batch of ``N`` lookups):

1. **Access budget per bin**: ``A_k = a_k · N``. The mean reuse inside bin ``k`` follows from the two
   histograms, ``m_k = (a_k / u_k) · (indices / unique)`` of the profile, clipped into the bin. Bins whose
   published unique share rounds to 0.000 while ``a_k > 0`` (the tail: few rows, many accesses) get
   ``m_k = lo_k·√2`` (the geometric middle of ``(lo, 2·lo]``); in the last, unbounded bin the budget is
   split evenly over ``round(A / (32768·√2))`` rows, each above 32,768. A bin whose budget cannot fill even
   one row of its smallest count (``A_k < lo_k + 1``) is folded into the bin below, with a warning: the
   smallest batch that reaches the 32768+ bin has ``32769 / a_16`` lookups (1.72 M for the 2021 file).
2. **Rows per bin** ``n_k = A_k / m_k`` (stochastic rounding); their counts are drawn from the maximum-
   entropy (exponentially tilted) distribution on the integers of the bin with mean ``m_k``, then nudged
   within the bin so that they add up to ``A_k`` exactly.
3. **Tables**: counts are sorted (hottest first); the column of global rank ``r`` belongs to table
   ``t(r)``, a fixed seeded hash of ``r`` weighted by per-table traffic weights ``w_t ~ LogNormal(0,
   table_sigma)`` drawn once. So table sizes and pooling differ (MELS tables do) and hot columns stay
   in the same table across batches.
4. **Rows**: inside table ``t`` the ``j``-th hottest column with a count ≥ 2 goes to row ``π_t(j)``
   (``π_t`` a fixed seeded permutation of the table's rows): hot rows stay hot across batches. Columns
   accessed once go to rows drawn without replacement from the remaining rows, fresh each batch.
5. **Bags**: a table's lookups (each row repeated by its count) are shuffled and cut into ``B`` bags at
   ``B−1`` uniform random cut points (geometric bag sizes with the table's mean pooling; empty bags, i.e.
   coverage < 1, appear for tables with small pooling). Rows may repeat inside a bag.

Rows per table (the published files carry none, dlrm_datasets issue #14): by default
``ceil(rows_factor · E_t + 6·√E_t) + 64`` where ``E_t`` is the table's expected distinct rows per batch,
i.e. proportional to the table's traffic weight. Left out: any temporal structure between batches
(the published samples are shuffled, anchors.md §3.1), correlation between tables of one sample, and
per-table histograms (only the all-table histogram is published).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simrec.errors import SimrecError
from simrec.trace.format import offsets_from_lengths
from simrec.trace.gen_sampling import FeistelPermutation, mix64, stream_key
from simrec.trace.locality import (
    BIN_EDGES,
    NUM_BINS,
    LocalityHistogram,
    histogram_distance,
    locality_from_counts,
    parse_locality_stats,
)

__all__ = [
    "MelsBatcher",
    "MelsModel",
    "MelsProfile",
    "load_profile",
    "resolve_profile",
]

_SQRT2 = math.sqrt(2.0)
_PROFILE_FILES = {"2021": "mels2021_locality_stats.txt", "2022": "mels2022_locality_stats.txt"}


def _profile_search_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    dirs = [here.parents[1] / "data"]  # simrec/data (files shipped with the package)
    env = os.environ.get("SIMREC_SHARED")
    if env:
        dirs.append(Path(env) / "data")
    dirs.append(here.parents[2].parent / "shared" / "data")  # ../shared/data beside the checkout
    return dirs


def resolve_profile(profile: str | os.PathLike[str]) -> Path:
    """The locality_stats file for ``"2021"``, ``"2022"`` or a path (SimrecError if missing)."""
    key = str(profile)
    if key in _PROFILE_FILES:
        for d in _profile_search_dirs():
            p = d / _PROFILE_FILES[key]
            if p.is_file():
                return p
        raise SimrecError(
            f"the published {key} locality profile ({_PROFILE_FILES[key]}) was not found in "
            + ", ".join(str(d) for d in _profile_search_dirs()),
            where="option --profile",
            fix="set SIMREC_SHARED to the shared folder, or pass the file with --profile PATH",
        )
    p = Path(key)
    if not p.is_file():
        raise SimrecError(
            "the profile file does not exist",
            path=p,
            where="option --profile",
            fix="pass 2021, 2022 or the path of a dlrm_datasets locality_stats.txt",
        )
    return p


@dataclass(frozen=True)
class MelsProfile:
    """One block of a locality_stats file, with the table count and batch size from its file name."""

    hist: LocalityHistogram
    path: Path
    tables: int | None
    batch_size: int

    @property
    def mean_pooling(self) -> float | None:
        """Published lookups per (table, sample): avg indices / (T·B)."""
        if not self.tables:
            return None
        return self.hist.avg_indices / (self.tables * self.batch_size)


def load_profile(profile: str | os.PathLike[str], entry: str | None = None) -> MelsProfile:
    """Parse the profile and pick the block named ``entry`` (default: the first block)."""
    path = resolve_profile(profile)
    blocks = parse_locality_stats(path)
    if entry is None:
        h = blocks[0]
    else:
        found = [b for b in blocks if b.name == entry or b.name.removesuffix(".pt") == entry]
        if not found:
            raise SimrecError(
                f"no block named {entry!r}",
                path=path,
                where="option --profile-entry",
                fix="use one of: " + ", ".join(b.name for b in blocks),
            )
        h = found[0]
    m = re.search(r"_t(\d+)_bs(\d+)", h.name)
    tables = int(m.group(1)) if m else None
    return MelsProfile(hist=h, path=path, tables=tables, batch_size=h.batch_size)


def _tilted_cdf(lo1: int, hi: int, mean: float) -> np.ndarray:
    """CDF on the integers lo1..hi of the max-entropy law p(c) ∝ exp(θ·c) with the given mean."""
    n = hi - lo1 + 1
    if n == 1:
        return np.ones(1)
    x = np.arange(n, dtype=np.float64) / (n - 1)
    target = (mean - lo1) / (n - 1)
    if target <= 1e-12:
        p = np.zeros(n)
        p[0] = 1
        return np.cumsum(p)
    if target >= 1 - 1e-12:
        p = np.zeros(n)
        p[-1] = 1
        return np.cumsum(p)
    lo_t, hi_t = -2000.0, 2000.0
    for _ in range(200):
        th = (lo_t + hi_t) / 2
        w = np.exp(th * x - max(th, 0.0))
        mu = float((w * x).sum() / w.sum())
        if mu < target:
            lo_t = th
        else:
            hi_t = th
    th = (lo_t + hi_t) / 2
    w = np.exp(th * x - max(th, 0.0))
    c = np.cumsum(w / w.sum())
    c[-1] = 1.0
    return c


@dataclass
class _Bin:
    k: int
    lo1: int  # smallest count in the bin
    hi: int  # largest count (huge for the last bin)
    access: float  # A_k, accesses in this bin per batch
    mean: float  # m_k
    cdf: np.ndarray | None = None


@dataclass
class MelsModel:
    """The fitted per-bin plan for batches of ``lookups`` lookups (see the module docstring)."""

    profile: MelsProfile
    lookups: int
    bins: list[_Bin] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, profile: MelsProfile, lookups: int) -> MelsModel:
        h = profile.hist
        a = np.clip(np.asarray(h.access_share, dtype=np.float64), 0, None)
        u = np.clip(np.asarray(h.unique_share, dtype=np.float64), 0, None)
        if a.sum() <= 0 or u.sum() <= 0 or h.avg_unique <= 0:
            raise SimrecError(
                "the profile's histograms are empty",
                path=profile.path,
                where=f"block {h.name!r}",
                fix="pass a locality_stats.txt with non-zero histograms",
            )
        a = a / a.sum()
        u = u / u.sum()
        ratio = h.avg_indices / h.avg_unique
        model = cls(profile=profile, lookups=int(lookups))
        access = a * lookups
        lo1 = np.array([int(BIN_EDGES[k]) + 1 for k in range(NUM_BINS)], dtype=np.int64)
        hi = np.array(
            [int(BIN_EDGES[k + 1]) for k in range(NUM_BINS - 1)] + [2**62], dtype=np.int64
        )
        # fold unreachable budgets downwards (top first)
        for k in range(NUM_BINS - 1, 0, -1):
            if 0 < access[k] < lo1[k]:
                if a[k] >= 0.0005:
                    need = math.ceil(lo1[k] / a[k])
                    model.warnings.append(
                        f"bin {_label(k)} holds {a[k]:.3f} of the published accesses, but a batch of "
                        f"{lookups:,} lookups cannot contain a row with more than {lo1[k] - 1:,} "
                        f"accesses there; its accesses were moved to the bin below. The fit needs at "
                        f"least {need:,} lookups per batch (tables x batch size x pooling)"
                    )
                access[k - 1] += access[k]
                access[k] = 0.0
        for k in range(NUM_BINS):
            if access[k] <= 0:
                continue
            if k == NUM_BINS - 1:
                mean = max(float(lo1[k]), access[k] / max(1, round(access[k] / (32768 * _SQRT2))))
            elif u[k] > 0:
                mean = float(np.clip(a[k] / u[k] * ratio, lo1[k], hi[k]))
            else:
                mean = float(np.clip(BIN_EDGES[k] * _SQRT2, lo1[k], hi[k]))
            b = _Bin(k, int(lo1[k]), int(hi[k]), float(access[k]), mean)
            if k < NUM_BINS - 1:
                b.cdf = _tilted_cdf(b.lo1, b.hi, mean)
            model.bins.append(b)
        return model

    @property
    def expected_unique(self) -> float:
        """Expected distinct (table, row) pairs per batch."""
        return float(sum(b.access / b.mean for b in self.bins))

    @property
    def tail_reached(self) -> bool:
        return any(b.k == NUM_BINS - 1 for b in self.bins)

    def draw_counts(self, rng: np.random.Generator) -> np.ndarray:
        """One batch's multiset of per-(table,row) access counts (int64, unsorted)."""
        parts = []
        for b in self.bins:
            target = round(b.access)
            if b.k == NUM_BINS - 1:
                n = max(1, min(round(target / (32768 * _SQRT2)), target // b.lo1))
                c = np.full(n, target // n, dtype=np.int64)
                c[: target % n] += 1
                parts.append(c)
                continue
            exp_n = target / b.mean
            n = int(math.floor(exp_n + rng.random()))
            n = min(max(n, math.ceil(target / b.hi)), target // b.lo1)
            if n <= 0:
                continue
            assert b.cdf is not None
            c = b.lo1 + np.searchsorted(b.cdf, rng.random(n), side="right").astype(np.int64)
            np.minimum(c, b.hi, out=c)
            _fix_sum(c, target, b.lo1, b.hi, rng)
            parts.append(c)
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(parts)

    def distance(self, counts: np.ndarray) -> dict[str, float]:
        """Histogram distance (simrec.trace.locality) of one batch's counts to the published profile."""
        gen = locality_from_counts(counts, name="generated")
        return histogram_distance(gen, self.profile.hist)


def _label(k: int) -> str:
    return "32768+" if k == NUM_BINS - 1 else f"({int(BIN_EDGES[k])}, {int(BIN_EDGES[k + 1])}]"


def _fix_sum(c: np.ndarray, target: int, lo1: int, hi: int, rng: np.random.Generator) -> None:
    """Nudge the counts ``c`` (in place, staying inside [lo1, hi]) until they add up to ``target``."""
    for _ in range(64):
        diff = target - int(c.sum())
        if diff == 0:
            return
        room = (hi - c) if diff > 0 else (c - lo1)
        total = int(room.sum())
        if total == 0:
            return
        step = np.floor(room * (min(abs(diff), total) / total)).astype(np.int64)
        if step.sum() == 0:
            cand = np.flatnonzero(room > 0)
            pick = rng.choice(cand, size=min(abs(diff), len(cand)), replace=False)
            step[pick] = 1
        c += step if diff > 0 else -step


class MelsBatcher:
    """Turns count multisets into table-major CSR batches (steps 3–5 of the module docstring)."""

    def __init__(
        self,
        model: MelsModel,
        tables: int,
        batch_size: int,
        seed: int,
        rows: list[int] | None,
        rows_factor: float,
        table_sigma: float,
        weights_rng: np.random.Generator,
    ):
        self.model = model
        self.T = int(tables)
        self.B = int(batch_size)
        self.seed = int(seed)
        w = weights_rng.lognormal(0.0, table_sigma, size=self.T) if table_sigma > 0 else None
        w = np.ones(self.T) if w is None else w
        self.table_weight = w / w.sum()
        self.cum_weight = np.cumsum(self.table_weight)
        self.cum_weight[-1] = 1.0
        self.assign_key = np.uint64(stream_key(seed, 0x7AB1E))
        if rows is None:
            e = model.expected_unique * self.table_weight
            rows = [int(math.ceil(rows_factor * x + 6 * math.sqrt(x))) + 64 for x in e]
        self.rows = [int(r) for r in rows]
        self.perm = [
            FeistelPermutation(r, stream_key(seed, 0x9E11, t)) for t, r in enumerate(self.rows)
        ]

    def table_of_rank(self, n: int) -> np.ndarray:
        """Fixed table of each global hotness rank 0..n-1."""
        h = mix64(np.arange(n, dtype=np.uint64) ^ self.assign_key)
        x = (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)
        return np.searchsorted(self.cum_weight, x, side="right").clip(0, self.T - 1)

    def batch(
        self, counts: np.ndarray, rng: np.random.Generator, number: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(offsets, indices, table of each column, row of each column) for one batch."""
        T, B = self.T, self.B
        cs = np.sort(counts)[::-1]
        tab = self.table_of_rank(len(cs))
        small = np.int16 if T < 2**15 else np.int64
        order = np.argsort(tab.astype(small), kind="stable")  # radix sort for int16
        tab = tab[order]
        cs = cs[order]
        ncols = np.bincount(tab, minlength=T)
        starts = np.concatenate([[0], np.cumsum(ncols)])
        rows_col = np.empty(len(cs), dtype=np.int64)
        for t in range(T):
            s, e = int(starts[t]), int(starts[t + 1])
            if s == e:
                continue
            if e - s > self.rows[t]:
                raise SimrecError(
                    f"table t{t} needs {e - s:,} distinct rows in batch {number} but has "
                    f"{self.rows[t]:,}",
                    where="option --rows",
                    fix="raise --rows (or leave it out to size tables from the profile)",
                )
            c = cs[s:e]
            hot = int(np.searchsorted(-c, -2, side="right"))  # counts >= 2 come first
            rows_col[s : s + hot] = self.perm[t](np.arange(hot))
            cold = e - s - hot
            if cold:
                free = self.rows[t] - hot
                pick = FeistelPermutation(free, stream_key(self.seed, 0xC01D, number, t))
                start = int(rng.integers(0, free))
                local = (start + np.arange(cold)) % free
                rows_col[s + hot : e] = self.perm[t](hot + pick(local))
        lookups = np.repeat(rows_col, cs)
        n_t = np.bincount(tab, weights=cs, minlength=T).astype(np.int64)
        lstart = np.concatenate([[0], np.cumsum(n_t)])
        for t in range(T):
            if n_t[t] > 1:
                rng.shuffle(lookups[lstart[t] : lstart[t + 1]])
        cuts = rng.integers(0, n_t[:, None] + 1, size=(T, max(B - 1, 0)))
        cuts.sort(axis=1)
        edges = np.concatenate([np.zeros((T, 1), np.int64), cuts, n_t[:, None]], axis=1)
        lengths = np.diff(edges, axis=1)
        offsets = offsets_from_lengths(lengths)
        return offsets, lookups, tab, rows_col
