"""Embedding-bag in numpy: gather rows and pool them per bag (sum / mean / max).

The pooling loop is a fused gather + reduce compiled with numba (one pass, no intermediate
``[n, dim]`` copy, GIL released); ``threads=N`` spreads the bags over N threads like torch's CPU
kernel. Each bag's rows are summed in order by one thread, so results do not depend on the thread
count.

The input is one table's CSR slice of a ``.trc`` batch: ``indices`` and ``offsets`` of length
``b + 1`` (bag s is ``indices[offsets[s]:offsets[s+1]]``), as ``Batch.table_indices(t)`` and
``Batch.table_offsets(t)`` return them. Semantics follow ``torch.nn.functional.embedding_bag``
with ``include_last_offset=True``:

* ``sum``: sum of the bag's rows, each scaled by its per-sample weight when weights are given;
* ``mean``: sum / bag size; ``max``: element-wise maximum;
* empty bags give zero rows; per-sample weights are only defined for ``sum`` (as in torch).

float32 and float16 tables are supported; rows are accumulated in float32 and the result has the
table's dtype. Rows are summed in bag order, so two calls on the same row values give the same
bits (the end-to-end check relies on that).

What it leaves out: ``padding_idx``, ``max_norm`` and gradients.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numba
import numpy as np

from simrec.errors import SimrecError

__all__ = ["embedding_bag", "pool_rows", "pooled_batch"]

Mode = Literal["sum", "mean", "max"]


def _check(offsets: np.ndarray, n: int, mode: str, weights: np.ndarray | None) -> None:
    if mode not in ("sum", "mean", "max"):
        raise SimrecError(
            f"unknown pooling mode {mode!r}", where="embedding_bag", fix="use sum, mean or max"
        )
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != n:
        raise SimrecError(
            f"offsets must be a 1-D array from 0 to len(indices)={n}",
            where="embedding_bag",
            fix="pass CSR offsets of length batch+1 (Batch.table_offsets(t))",
        )
    if weights is not None:
        if mode != "sum":
            raise SimrecError(
                f"per-sample weights are only defined for mode 'sum', not {mode!r}",
                where="embedding_bag",
                fix="use mode='sum' or drop the weights",
            )
        if weights.shape != (n,):
            raise SimrecError(
                f"weights have shape {weights.shape}, expected ({n},)",
                where="embedding_bag",
                fix="give one weight per index",
            )


@numba.njit(cache=True, nogil=True)
def _bag_sum(
    table: np.ndarray, idx: np.ndarray, offsets: np.ndarray, mean: bool, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Unweighted sum (or mean) pooling; the rows of a bag are summed in order."""
    d = table.shape[1]
    for s in range(offsets.size - 1):
        lo = offsets[s]
        hi = offsets[s + 1]
        for k in range(lo, hi):
            r = idx[k]
            for j in range(d):
                out[s, j] += table[r, j]
        if mean and hi > lo:
            inv = np.float32(hi - lo)
            for j in range(d):
                out[s, j] /= inv


@numba.njit(cache=True, nogil=True)
def _bag_wsum(
    table: np.ndarray, idx: np.ndarray, offsets: np.ndarray, w: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Per-sample-weighted sum pooling."""
    d = table.shape[1]
    for s in range(offsets.size - 1):
        for k in range(offsets[s], offsets[s + 1]):
            r = idx[k]
            wk = w[k]
            for j in range(d):
                out[s, j] += table[r, j] * wk


@numba.njit(cache=True, nogil=True)
def _bag_max(
    table: np.ndarray, idx: np.ndarray, offsets: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Element-wise max pooling (empty bags stay 0)."""
    d = table.shape[1]
    for s in range(offsets.size - 1):
        lo = offsets[s]
        hi = offsets[s + 1]
        if hi == lo:
            continue
        r = idx[lo]
        for j in range(d):
            out[s, j] = table[r, j]
        for k in range(lo + 1, hi):
            r = idx[k]
            for j in range(d):
                v = table[r, j]
                if v > out[s, j]:
                    out[s, j] = v


_EXECUTOR: tuple[ThreadPoolExecutor, int] | None = None
_EXECUTOR_LOCK = threading.Lock()


def _executor(threads: int) -> ThreadPoolExecutor:
    """A shared pool with at least ``threads`` workers (grown on demand)."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None or _EXECUTOR[1] < threads:
            pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="simrec-bag")
            _EXECUTOR = (pool, threads)
        return _EXECUTOR[0]


def _pool_range(
    table: np.ndarray,
    idx: np.ndarray,
    offsets: np.ndarray,
    mode: str,
    weights: np.ndarray | None,
    out: np.ndarray,
) -> None:
    if mode == "max":
        _bag_max(table, idx, offsets, out)
    elif weights is not None:
        _bag_wsum(table, idx, offsets, weights, out)
    else:
        _bag_sum(table, idx, offsets, mode == "mean", out)


def _pool(
    table: np.ndarray,
    idx: np.ndarray,
    offsets: np.ndarray,
    mode: str,
    weights: np.ndarray | None,
    threads: int = 1,
) -> np.ndarray:
    b = offsets.size - 1
    out = np.zeros((b, table.shape[1]), dtype=np.float32)
    w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float32)
    if threads <= 1 or b < 2 * threads:
        _pool_range(table, idx, offsets, mode, w, out)
        return out
    # split the bags into contiguous ranges, one per thread (the kernels release the GIL); each
    # bag is still pooled by one thread in order, so the bits do not depend on ``threads``
    cuts = np.linspace(0, b, threads + 1).astype(np.int64)
    jobs = [
        _executor(threads).submit(
            _pool_range, table, idx, offsets[lo : hi + 1], mode, w, out[lo:hi]
        )
        for lo, hi in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True)
        if hi > lo
    ]
    for j in jobs:
        j.result()
    return out


def pool_rows(
    rows: np.ndarray,
    offsets: np.ndarray,
    mode: Mode = "sum",
    weights: np.ndarray | None = None,
    out_dtype: np.dtype | type | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Pool already-gathered ``rows`` [n, d] into bags given by ``offsets`` [b+1] -> [b, d].

    Gives the same bits as :func:`embedding_bag` on a table holding the same row values.
    """
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    n = rows.shape[0]
    _check(offsets, n, mode, weights)
    out_dtype = np.dtype(out_dtype or rows.dtype)
    r = np.ascontiguousarray(rows, dtype=np.float32)
    out = _pool(r, np.arange(n, dtype=np.int64), offsets, mode, weights, threads)
    return out.astype(out_dtype, copy=False)


def embedding_bag(
    table: np.ndarray,
    indices: np.ndarray,
    offsets: np.ndarray,
    mode: Mode = "sum",
    per_sample_weights: np.ndarray | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Pooled embeddings [b, dim] of the bags ``offsets`` over ``indices`` into ``table``.

    ``threads`` > 1 splits the bags over that many threads (same result bit for bit). The default,
    one thread, is safe to call from several Python threads at once (the kernel releases the GIL).
    """
    if table.ndim != 2:
        raise SimrecError(
            f"the table has shape {table.shape}, not [rows, dim]", where="embedding_bag", fix="2-D"
        )
    if table.dtype not in (np.float32, np.float16):
        raise SimrecError(
            f"table dtype {table.dtype} is not float32 or float16",
            where="embedding_bag",
            fix="cast the table, or use a quantised codec for integer storage",
        )
    idx = np.asarray(indices)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise SimrecError(
            f"indices have dtype {idx.dtype}", where="embedding_bag", fix="pass integer row ids"
        )
    if idx.size and (idx.min() < 0 or idx.max() >= table.shape[0]):
        raise SimrecError(
            f"index out of range 0..{table.shape[0] - 1}",
            where="embedding_bag",
            fix="hash or clip indices into the table's rows",
        )
    offs = np.ascontiguousarray(offsets, dtype=np.int64)
    w = None if per_sample_weights is None else np.asarray(per_sample_weights)
    _check(offs, idx.size, mode, w)
    if table.dtype == np.float16:  # accumulate in float32: widen the gathered rows first
        rows = np.take(table, idx, axis=0).astype(np.float32)
        out = _pool(rows, np.arange(idx.size, dtype=np.int64), offs, mode, w, threads)
    else:
        out = _pool(table, np.ascontiguousarray(idx, dtype=np.int64), offs, mode, w, threads)
    return out.astype(table.dtype, copy=False)


def pooled_batch(
    tables: list[np.ndarray],
    batch: object,
    mode: Mode = "sum",
) -> list[np.ndarray]:
    """Pooled embeddings of every table of a ``.trc`` batch: a list of [b, dim_t] arrays."""
    out = []
    weights = getattr(batch, "weights", None)
    for t, tab in enumerate(tables):
        sl = batch.table_slice(t)  # type: ignore[attr-defined]
        w = None if weights is None else weights[sl]
        out.append(
            embedding_bag(
                tab,
                batch.table_indices(t),  # type: ignore[attr-defined]
                batch.table_offsets(t),  # type: ignore[attr-defined]
                mode,
                w,
            )
        )
    return out
