"""LRU stack-distance stream generator (the model of dlrm's ``trace_generate_lru``), our own code.

A distribution file (dlrm's ``input/dist_emb_*.log``) has three comma-separated lines: the unique
accesses of the profiled trace, the stack-distance values ``sd`` and their cumulative probabilities.
Each step draws ``sd`` by inverse CDF and then (anchors.md §3.2):

* ``sd == 0``: a *new* line is referenced and pushed on top of the LRU stack;
* ``sd  > 0``: the line at stack depth ``sd`` (1 = the most recently used) is referenced and moved
  to the top.

Differences from dlrm, on purpose: dlrm starts with a stack made of the file's unique accesses and
``sd == 0`` recycles the *least recently used* line of that fixed stack. Here ``sd == 0`` creates a
genuinely new line (row ids in order of first use), until a ``rows_limit`` is reached; from then on
``sd == 0`` takes the bottom of the stack, i.e. dlrm's behaviour with a stack of ``rows_limit``
lines. While the stack is shallower than the largest ``sd`` of the file, the distribution is
restricted to the values that fit (dlrm does the same with its count of new references).

The stack is an order-statistic structure: every line carries the time of its last use; a Fenwick
tree over time slots marks the live ones, so "the line at depth ``d``" is the ``(U-d+1)``-th marked
slot, found in O(log C). Slots are renumbered (compacted) when they run out; capacity doubles when
the stack grows. Memory is O(distinct lines), time O(log C) per access (numba-compiled).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from simrec.errors import SimrecError

__all__ = ["LruDistribution", "LruStream", "count_new_lines", "read_lru_distribution"]

NO_LIMIT = np.iinfo(np.int64).max
_MIN_CAPACITY = 1024


@dataclass(frozen=True)
class LruDistribution:
    """A parsed dlrm distribution file."""

    unique_accesses: np.ndarray  # int64, line 1
    sd_values: np.ndarray  # int64, strictly increasing, >= 0 (line 2)
    sd_cdf: np.ndarray  # float64, non-decreasing, last == 1 (line 3)
    path: str = ""

    @property
    def pmf(self) -> np.ndarray:
        """Probability of each value of ``sd_values``."""
        return np.diff(np.concatenate([[0.0], self.sd_cdf]))


def _parse_line(text: str, kind: type, path: Path, lineno: int, what: str) -> np.ndarray:
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise SimrecError(
            f"line {lineno} ({what}) is empty",
            path=path,
            where=f"line {lineno}",
            fix="a dlrm distribution file has 3 lines: unique accesses, stack distances, "
            "cumulative probabilities (comma-separated)",
        )
    try:
        vals = [kind(p) for p in parts]
    except ValueError:
        bad = next(p for p in parts if not _parses(p, kind))
        raise SimrecError(
            f"line {lineno} ({what}) has a value {bad!r} that is not {'an integer' if kind is int else 'a number'}",
            path=path,
            where=f"line {lineno}",
            fix="write comma-separated numbers, like dlrm's input/dist_emb_0.log",
        ) from None
    return np.array(vals, dtype=np.int64 if kind is int else np.float64)


def _parses(p: str, kind: type) -> bool:
    try:
        kind(p)
    except ValueError:
        return False
    return True


def read_lru_distribution(path: str | os.PathLike[str]) -> LruDistribution:
    """Parse and check a dlrm stack-distance distribution file (SimrecError on any defect)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SimrecError(
            f"cannot read the distribution file ({e.strerror})",
            path=p,
            where="option --dist-file",
            fix="pass dlrm's input/dist_emb_<n>.log or a file in the same 3-line format",
        ) from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) != 3:
        raise SimrecError(
            f"expected 3 non-empty lines, found {len(lines)}",
            path=p,
            where="option --dist-file",
            fix="line 1: unique accesses, line 2: stack-distance values, line 3: their "
            "cumulative probabilities (comma-separated, e.g. 0, 1, 3 / 0.55, 0.64, 1.0)",
        )
    uniq = _parse_line(lines[0], int, p, 1, "unique accesses")
    sd = _parse_line(lines[1], int, p, 2, "stack distances")
    cdf = _parse_line(lines[2], float, p, 3, "cumulative probabilities")
    if len(sd) != len(cdf):
        raise SimrecError(
            f"line 2 has {len(sd)} stack distances but line 3 has {len(cdf)} probabilities",
            path=p,
            where="lines 2-3",
            fix="give one cumulative probability per stack-distance value",
        )
    if sd.min() < 0 or np.any(np.diff(sd) <= 0):
        raise SimrecError(
            "stack distances must be >= 0 and strictly increasing",
            path=p,
            where="line 2",
            fix="list each stack distance once, in increasing order (0 = a new line)",
        )
    if (
        not np.all(np.isfinite(cdf))
        or cdf.min() < 0
        or np.any(np.diff(cdf) < 0)
        or abs(cdf[-1] - 1.0) > 1e-6
    ):
        raise SimrecError(
            "cumulative probabilities must be non-decreasing, within [0, 1] and end at 1.0",
            path=p,
            where="line 3",
            fix="write the CDF of the stack distances of line 2, ending with 1.0",
        )
    cdf = cdf / cdf[-1]
    if sd[0] != 0:
        raise SimrecError(
            "the stack distances do not include 0 (a new line), so no line could ever be created",
            path=p,
            where="line 2",
            fix="start line 2 with 0 and give its probability first on line 3",
        )
    return LruDistribution(uniq, sd, cdf, str(p))


# -- numba kernels -------------------------------------------------------------------------------


@numba.njit(cache=True)
def _fen_add(tree: np.ndarray, pos: int, delta: int) -> None:
    i = pos + 1
    n = tree.shape[0] - 1
    while i <= n:
        tree[i] += delta
        i += i & (-i)


@numba.njit(cache=True)
def _fen_kth(tree: np.ndarray, k: int) -> int:
    """0-based slot of the k-th (1-based) marked slot."""
    n = tree.shape[0] - 1
    pos = 0
    step = 1
    while step * 2 <= n:
        step *= 2
    while step > 0:
        nxt = pos + step
        if nxt <= n and tree[nxt] < k:
            pos = nxt
            k -= tree[nxt]
        step //= 2
    return pos


@numba.njit(cache=True)
def _draw_sd(u: float, vals: np.ndarray, cdf: np.ndarray, depth: int) -> int:
    """Inverse-CDF stack distance, restricted to the values that fit a stack of ``depth`` lines."""
    if depth == 0:
        return 0
    jmax = 0
    for j in range(vals.shape[0]):
        if vals[j] <= depth:
            jmax = j
        else:
            break
    x = u * cdf[jmax]
    for j in range(jmax + 1):
        if x < cdf[j]:
            return vals[j]
    return vals[jmax]


@numba.njit(cache=True)
def _count_new_kernel(
    u: np.ndarray, vals: np.ndarray, cdf: np.ndarray, n_lines: int, limit: int
) -> int:
    """Distinct lines after the stream ``u`` (no LRU bookkeeping: the sd draw needs only depth)."""
    for i in range(u.shape[0]):
        sd = _draw_sd(u[i], vals, cdf, n_lines)
        if sd == 0 and n_lines < limit:
            n_lines += 1
    return n_lines


@numba.njit(cache=True)
def _lru_kernel(
    u: np.ndarray,
    vals: np.ndarray,
    cdf: np.ndarray,
    tree: np.ndarray,
    slot_line: np.ndarray,
    state: np.ndarray,
    limit: int,
    out: np.ndarray,
) -> None:
    """Run the LRU model over ``u``; writes line ids into ``out``. ``state`` = [now, live, lines]."""
    now = state[0]
    live = state[1]
    lines = state[2]
    for i in range(u.shape[0]):
        sd = _draw_sd(u[i], vals, cdf, live)
        if sd == 0 and lines < limit:
            line = lines
            lines += 1
            live += 1
        else:
            depth = live if sd == 0 else sd
            slot = _fen_kth(tree, live - depth + 1)
            line = slot_line[slot]
            slot_line[slot] = -1
            _fen_add(tree, slot, -1)
        slot_line[now] = line
        _fen_add(tree, now, 1)
        now += 1
        out[i] = line
    state[0] = now
    state[1] = live
    state[2] = lines


@numba.njit(cache=True)
def _compact_kernel(
    slot_line: np.ndarray, now: int, new_cap: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Renumber the live slots 0..live-1 (keeping order) into arrays of capacity ``new_cap``."""
    new_sl = np.full(new_cap, -1, dtype=np.int64)
    tree = np.zeros(new_cap + 1, dtype=np.int64)
    j = 0
    for p in range(now):
        if slot_line[p] >= 0:
            new_sl[j] = slot_line[p]
            j += 1
    # linear-time Fenwick build over the first j slots
    for i in range(1, new_cap + 1):
        if i <= j:
            tree[i] += 1
        parent = i + (i & (-i))
        if parent <= new_cap:
            tree[parent] += tree[i]
    return new_sl, tree, j


class LruStream:
    """One table's LRU stream; :meth:`next` returns the next ``n`` line ids (0, 1, … by first use)."""

    def __init__(self, dist: LruDistribution, rows_limit: int | None = None):
        self.vals = np.ascontiguousarray(dist.sd_values, dtype=np.int64)
        self.cdf = np.ascontiguousarray(dist.sd_cdf, dtype=np.float64)
        self.limit = NO_LIMIT if rows_limit is None else int(rows_limit)
        self.cap = _MIN_CAPACITY
        self.slot_line = np.full(self.cap, -1, dtype=np.int64)
        self.tree = np.zeros(self.cap + 1, dtype=np.int64)
        self.state = np.zeros(3, dtype=np.int64)  # now, live, lines

    @property
    def distinct_lines(self) -> int:
        return int(self.state[2])

    def next(self, u: np.ndarray) -> np.ndarray:
        """Line ids for the uniforms ``u`` (one access per uniform)."""
        n = len(u)
        now, live = int(self.state[0]), int(self.state[1])
        if now + n > self.cap:
            new_cap = self.cap
            while live + n > new_cap // 2:
                new_cap *= 2
            self.slot_line, self.tree, j = _compact_kernel(self.slot_line, now, new_cap)
            self.cap = new_cap
            self.state[0] = j
        out = np.empty(n, dtype=np.int64)
        _lru_kernel(
            np.ascontiguousarray(u, dtype=np.float64),
            self.vals,
            self.cdf,
            self.tree,
            self.slot_line,
            self.state,
            self.limit,
            out,
        )
        return out


def count_new_lines(dist: LruDistribution, u: np.ndarray, n_lines: int, limit: int | None) -> int:
    """How many distinct lines exist after running ``u`` from a stack of ``n_lines`` lines."""
    return int(
        _count_new_kernel(
            np.ascontiguousarray(u, dtype=np.float64),
            np.ascontiguousarray(dist.sd_values, dtype=np.int64),
            np.ascontiguousarray(dist.sd_cdf, dtype=np.float64),
            n_lines,
            NO_LIMIT if limit is None else int(limit),
        )
    )
