"""Trace statistics (``profile_trace`` and ``simrec trace stats``) against hand-made traces whose
statistics are worked out by hand or recomputed independently (Counter / numpy on raw arrays)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from simrec.cli import cli
from simrec.errors import SimrecError
from simrec.trace.format import TableSpec, TraceHeader, TraceReader, TraceWriter
from simrec.trace.locality import locality_from_counts
from simrec.trace.stackdist import naive_stack_distances
from simrec.trace.stats import DEFAULT_CDF_BREAKPOINTS, access_cdf, profile_trace

Bags = list[list[list[int]]]  # [table][sample] -> bag


def write_bags(
    path: Path, rows: list[int], batches: list[Bags], batch_size: int | None = None
) -> Path:
    """Write batches given as per-table lists of per-sample bags."""
    bs = batch_size or max(len(b[0]) for b in batches)
    hdr = TraceHeader(
        tables=[TableSpec(name=f"t{i}", rows=r, dim=4 * (i + 1)) for i, r in enumerate(rows)],
        batch_size=bs,
        index_dtype="int32",
    )
    with TraceWriter(path, hdr) as w:
        for bags in batches:
            lengths = [len(bag) for table in bags for bag in table]
            off = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            idx = [x for table in bags for bag in table for x in bag]
            w.write_batch(off, np.array(idx, dtype=np.int64))
    return path


# Hand-made trace: 2 tables (rows 10 and 100), 2 batches of 3 samples.
HAND = [
    [  # batch 0
        [[1, 2], [], [1]],  # t0: bags of samples 0, 1, 2
        [[5], [5, 6, 7], []],  # t1
    ],
    [  # batch 1
        [[1, 1, 1], [3], []],
        [[], [], [9]],
    ],
]


@pytest.fixture()
def hand_trace(tmp_path: Path) -> Path:
    return write_bags(tmp_path / "hand.trc", [10, 100], HAND)


def test_hand_trace_by_hand(hand_trace: Path):
    p = profile_trace(hand_trace, full_cdf=True)
    assert (p.samples, p.batches, p.lookups) == (6, 2, 12)
    t0, t1 = p.tables
    # t0: bags [2, 0, 1, 3, 1, 0] -> 7 lookups over 6 samples, rows {1: 5, 2: 1, 3: 1}
    assert (t0.lookups, t0.unique, t0.samples) == (7, 3, 6)
    assert t0.pooling_mean == pytest.approx(7 / 6)
    assert t0.pooling_mean_nonempty == pytest.approx(7 / 4)
    assert t0.coverage == pytest.approx(4 / 6)
    # sorted bag sizes 0 0 1 1 2 3: p50 -> 3rd value = 1, p99 -> 6th value = 3
    assert (t0.pooling_p50, t0.pooling_p99, t0.pooling_max) == (1, 3, 3)
    # hottest 10% of 10 rows = 1 row = row 1 with 5 of 7 accesses; 1% = 0.1 row -> 0.1 * 5 / 7
    assert t0.top10pct_share == pytest.approx(5 / 7)
    assert t0.top1pct_share == pytest.approx(0.5 / 7)
    assert t0.cdf_at(0.2)[0] == pytest.approx(6 / 7)
    assert t0.cdf_at(0.3)[0] == pytest.approx(1.0)
    # t1: bags [1, 3, 0, 0, 0, 1] -> 5 lookups, rows {5: 2, 6, 7, 9: 1}; 10% of 100 rows = 10 rows
    assert (t1.lookups, t1.unique, t1.pooling_max) == (5, 4, 3)
    assert t1.coverage == pytest.approx(3 / 6)
    assert (t1.pooling_p50, t1.pooling_p99) == (0, 3)
    assert t1.top1pct_share == pytest.approx(2 / 5)  # 1 row: row 5
    assert t1.top10pct_share == pytest.approx(1.0)
    # stack distances per table: t0 stream 1 2 1 1 1 1 3 -> cold, cold, 1, 0, 0, 0, cold
    h0 = t0.stack_distance
    assert h0.cold == 3 and h0.counts[0] == 3 and h0.counts[1] == 1
    # overall stream (table-major per batch): t0:1 2 1 | t1:5 5 6 7 | t0:1 1 1 3 | t1:9
    assert p.unique == 7
    ov = p.stack_distance
    assert ov.references == 12 and ov.cold == 7


def test_locality_single_and_mean(hand_trace: Path):
    p = profile_trace(hand_trace, stack_distance=False)
    # independent: per batch, Counter over (table, row) pairs, then the mean of the shares
    shares_u, shares_a, n, u = [], [], [], []
    for bags in HAND:
        c = Counter((t, x) for t, table in enumerate(bags) for bag in table for x in bag)
        loc = locality_from_counts(np.array(list(c.values())))
        shares_u.append(loc.unique_share)
        shares_a.append(loc.access_share)
        n.append(sum(c.values()))
        u.append(len(c))
    np.testing.assert_allclose(p.locality.unique_share, np.mean(shares_u, axis=0))
    np.testing.assert_allclose(p.locality.access_share, np.mean(shares_a, axis=0))
    assert p.locality.avg_indices == pytest.approx(np.mean(n))
    assert p.locality.avg_unique == pytest.approx(np.mean(u))
    assert p.locality.num_batches == 2
    assert "Locality stats after processing 2 batches of size 3" in p.locality.to_text()


def _random_trace(tmp_path: Path, seed: int, rows=(7, 300, 50_000), nb=3, b=64, maxlen=6):
    rng = np.random.default_rng(seed)
    batches: list[Bags] = []
    for _ in range(nb):
        batches.append(
            [
                [
                    (r * rng.random(int(rng.integers(0, maxlen + 1))) ** 2).astype(int).tolist()
                    for _ in range(b)
                ]
                for r in rows
            ]
        )
    return write_bags(tmp_path / f"r{seed}.trc", list(rows), batches), batches, list(rows)


@pytest.mark.parametrize(
    ("per_table_min", "dense_ratio"),
    [(2048, 4), (0, 4), (0, 0), (0, 10**9), (2048, 0), (2048, 10**9)],
    ids=["default", "per-table", "per-table-sort", "per-table-bincount", "sort", "bincount"],
)
def test_random_trace_against_numpy(tmp_path: Path, monkeypatch, per_table_min, dense_ratio):
    """Every counting strategy (whole batch or table by table; bincount or sort) agrees with
    Counter/numpy on the raw bags."""
    import simrec.trace.stats as stats

    monkeypatch.setattr(stats, "_PER_TABLE_MIN", per_table_min)
    monkeypatch.setattr(stats, "_DENSE_RATIO", dense_ratio)
    path, batches, rows = _random_trace(tmp_path, 3)
    p = profile_trace(path, keep_counts=True)
    for t, tp in enumerate(p.tables):
        bags = [bag for bt in batches for bag in bt[t]]
        lens = np.array([len(bag) for bag in bags])
        flat = [x for bag in bags for x in bag]
        cnt = Counter(flat)
        assert tp.lookups == len(flat) == lens.sum()
        assert tp.unique == len(cnt)
        assert tp.samples == len(bags)
        assert tp.pooling_mean == pytest.approx(lens.mean())
        assert tp.coverage == pytest.approx((lens > 0).mean())
        assert tp.pooling_p50 == np.percentile(lens, 50, method="inverted_cdf")
        assert tp.pooling_p99 == np.percentile(lens, 99, method="inverted_cdf")
        assert tp.pooling_max == lens.max()
        assert tp.counts is not None
        assert tp.counts.tolist() == [cnt.get(i, 0) for i in range(rows[t])]
        # CDF at whole-row breakpoints: plain sum of the k largest counts
        hot = sorted(cnt.values(), reverse=True)
        for x, c in zip(p.cdf_breakpoints, tp.cdf, strict=True):
            k = x * rows[t]
            if abs(k - round(k)) < 1e-9:
                assert c == pytest.approx(sum(hot[: round(k)]) / len(flat))
        # stack distances of the table's own stream
        want = naive_stack_distances(flat)
        h = tp.stack_distance
        assert h.cold == sum(1 for d in want if d < 0)
        assert h.references == len(flat)
        for cap in (1, 2, 4, 16):
            assert h.misses(cap) == sum(1 for d in want if d < 0 or d >= cap)
    # overall: keys (table, row), stream in CSR order (batch by batch, table-major)
    stream = [(t, x) for bt in batches for t, table in enumerate(bt) for bag in table for x in bag]
    keys = {k: i for i, k in enumerate(dict.fromkeys(stream))}
    want = naive_stack_distances([keys[k] for k in stream])
    ov = p.stack_distance
    assert ov.cold == len(keys) == p.unique
    for cap in (1, 8, 64, 512):
        assert ov.misses(cap) == sum(1 for d in want if d < 0 or d >= cap)


def test_top_share_definition(tmp_path: Path):
    # 1000 rows; row i is accessed i+1 times for i < 200 -> hottest 10 rows are 190..199
    rows = 1000
    bags = [[[i] for i in range(200) for _ in range(i + 1)]]
    path = write_bags(tmp_path / "top.trc", [rows], [bags])
    p = profile_trace(path, stack_distance=False)
    t = p.tables[0]
    total = sum(i + 1 for i in range(200))
    assert t.top1pct_share == pytest.approx(sum(range(191, 201)) / total)  # 10 hottest rows
    # 10% of the table's 1000 rows = 100 rows (of the 200 touched): counts 101..200
    assert t.top10pct_share == pytest.approx(sum(range(101, 201)) / total)
    c = t.cdf
    assert c[0] == 0.0 and c[-1] == pytest.approx(1.0)
    assert np.all(np.diff(c) >= -1e-15)


def test_top10_share_of_rows_not_of_touched(tmp_path: Path):
    # 100 rows, 20 touched with counts 20..1: top 10% of rows = 10 rows
    bags = [[[i] for i in range(20) for _ in range(20 - i)]]
    p = profile_trace(write_bags(tmp_path / "t.trc", [100], [bags]), stack_distance=False)
    total = sum(range(1, 21))
    assert p.tables[0].top10pct_share == pytest.approx(sum(range(11, 21)) / total)
    assert p.tables[0].top1pct_share == pytest.approx(20 / total)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30),
    extra_rows=st.integers(min_value=0, max_value=40),
)
def test_cdf_properties(counts, extra_rows):
    s = np.sort(np.array(counts))[::-1]
    rows = len(counts) + extra_rows
    x = np.linspace(0, 1, 57)
    c = access_cdf(s, rows, x)
    assert c[0] == 0.0 and c[-1] == pytest.approx(1.0)
    assert np.all(np.diff(c) >= -1e-12)  # monotone
    assert np.all(np.diff(c, 2) <= 1e-9)  # concave on a uniform grid
    # whole rows: the plain top-k sum
    for k in range(rows + 1):
        assert access_cdf(s, rows, [k / rows])[0] == pytest.approx(s[:k].sum() / s.sum())


def test_empty_table_and_zero_lookup_batches(tmp_path: Path):
    batches = [[[[], []], [[3], [4]]], [[[], []], [[], []]]]
    p = profile_trace(write_bags(tmp_path / "e.trc", [5, 5], batches))
    t0, t1 = p.tables
    assert t0.lookups == 0 and t0.unique == 0 and t0.coverage == 0.0
    assert np.isnan(t0.top1pct_share) and np.all(np.isnan(t0.cdf))
    assert t0.pooling_max == 0 and t0.pooling_p99 == 0
    assert t1.coverage == pytest.approx(2 / 4)
    # locality averages over the batch with lookups only
    assert p.locality.unique_share[0] == pytest.approx(1.0)
    d = p.to_dict()
    json.dumps(d, default=str)  # JSON-ready apart from NaN handling by echo_json


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    b1=st.integers(min_value=1, max_value=9),
    b2=st.integers(min_value=1, max_value=9),
)
def test_invariant_to_batching(tmp_path_factory, seed, b1, b2):
    """Same samples in the same order, cut into batches of different sizes: every per-table
    statistic, including per-table stack distances, is unchanged (the overall stream and the
    per-batch reuse histogram do depend on the batching, so they are not compared)."""
    rng = np.random.default_rng(seed)
    rows = [5, 40]
    n = 23
    samples = [
        [(r * rng.random(int(rng.integers(0, 4))) ** 2).astype(int).tolist() for r in rows]
        for _ in range(n)
    ]

    def batched(bs: int) -> list[Bags]:
        out = []
        for s0 in range(0, n, bs):
            chunk = samples[s0 : s0 + bs]
            out.append([[smp[t] for smp in chunk] for t in range(len(rows))])
        return out

    d = tmp_path_factory.mktemp("inv")
    p1 = profile_trace(write_bags(d / "a.trc", rows, batched(b1), batch_size=b1))
    p2 = profile_trace(write_bags(d / "b.trc", rows, batched(b2), batch_size=b2))
    assert p1.samples == p2.samples == n
    for a, b in zip(p1.tables, p2.tables, strict=True):
        sa, sb = a.scalars(), b.scalars()
        for k in sa:
            if k == "lookups_per_batch":  # depends on the batch size by definition
                assert sa[k] / b1 == pytest.approx(sb[k] / b2)
                continue
            if isinstance(sa[k], float) and np.isnan(sa[k]):
                assert np.isnan(sb[k])
            else:
                assert sa[k] == sb[k], k
        np.testing.assert_array_equal(a.cdf, b.cdf)
        np.testing.assert_array_equal(a.stack_distance.counts, b.stack_distance.counts)
        assert a.stack_distance.cold == b.stack_distance.cold


def test_max_batches(hand_trace: Path):
    p = profile_trace(hand_trace, max_batches=1)
    assert (p.batches, p.batches_in_file, p.samples, p.lookups) == (1, 2, 3, 7)
    with pytest.raises(SimrecError):
        profile_trace(hand_trace, max_batches=0)
    with pytest.raises(SimrecError, match="breakpoints"):
        profile_trace(hand_trace, cdf_breakpoints=[0.5, 0.1])


def test_dataframe(hand_trace: Path):
    df = profile_trace(hand_trace).to_dataframe()
    assert list(df["name"]) == ["t0", "t1"]
    assert list(df["lookups"]) == [7, 5]
    assert "cdf@0.01" in df.columns and "mr@16" in df.columns
    assert len([c for c in df.columns if c.startswith("cdf@")]) == len(DEFAULT_CDF_BREAKPOINTS)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
def run(*args: str):
    return CliRunner().invoke(cli, ["trace", "stats", *args])


def test_cli_json_contract(tmp_path: Path):
    path, batches, rows = _random_trace(tmp_path, 11)
    r = run(str(path), "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    total = sum(len(bag) for bt in batches for table in bt for bag in table)
    assert d["samples"] == sum(len(bt[0]) for bt in batches)
    assert d["lookups"] == total
    assert len(d["tables"]) == len(rows)
    for t, td in enumerate(d["tables"]):
        bags = [bag for bt in batches for bag in bt[t]]
        flat = [x for bag in bags for x in bag]
        hot = sorted(Counter(flat).values(), reverse=True)
        for key in ("name", "rows", "dim", "lookups", "unique", "pooling_mean", "coverage",
                    "top1pct_share", "top10pct_share"):  # fmt: skip
            assert key in td
        assert td["name"] == f"t{t}" and td["rows"] == rows[t] and td["dim"] == 4 * (t + 1)
        assert td["lookups"] == len(flat)
        assert td["unique"] == len(set(flat))
        assert td["pooling_mean"] == pytest.approx(len(flat) / len(bags))
        assert td["coverage"] == pytest.approx(sum(1 for b in bags if b) / len(bags))
        k10 = rows[t] * 0.1
        kf = int(np.floor(k10))
        want10 = (sum(hot[:kf]) + (k10 - kf) * (hot[kf] if kf < len(hot) else 0)) / len(flat)
        assert td["top10pct_share"] == pytest.approx(min(want10, 1.0))
        assert td["cdf"][-1] == pytest.approx(1.0)
        assert td["cdf_breakpoints"] == list(DEFAULT_CDF_BREAKPOINTS)
        assert td["lookups_per_batch"] == pytest.approx(64 * len(flat) / len(bags))
        assert td["stack_distance"]["references"] == len(flat)
    assert d["stack_distance"]["references"] == total
    assert len(d["locality"]["unique_share"]) == 17


def test_cli_table_and_locality(hand_trace: Path):
    r = run(str(hand_trace), "--locality")
    assert r.exit_code == 0, r.output
    assert "t0" in r.output and "top10%" in r.output
    assert "Ratio of index distribution at different column sizes:" in r.output
    assert "MR@10%" in r.output
    r = run(str(hand_trace), "--no-stack-distance", "--max-batches", "1")
    assert r.exit_code == 0 and "1 of 2 batches" in r.output and "MR@10%" not in r.output


@pytest.mark.parametrize("ext", [".json", ".csv", ".parquet"])
def test_cli_out(hand_trace: Path, tmp_path: Path, ext: str):
    out = tmp_path / f"p{ext}"
    r = run(str(hand_trace), "--out", str(out))
    assert r.exit_code == 0, r.output
    if ext == ".json":
        d = json.loads(out.read_text())
        assert d["lookups"] == 12
        r2 = run(str(hand_trace), "--out", str(tmp_path / "q.json"))
        assert r2.exit_code == 0
        assert (tmp_path / "q.json").read_bytes() == out.read_bytes()  # deterministic
    else:
        df = pd.read_csv(out) if ext == ".csv" else pd.read_parquet(out)
        assert list(df["lookups"]) == [7, 5] and list(df["unique"]) == [3, 4]


def test_cli_errors(tmp_path: Path, hand_trace: Path):
    missing = tmp_path / "missing.trc"
    r = run(str(missing))
    assert r.exit_code == 2 and "missing.trc" in r.output and "Traceback" not in r.output
    empty = tmp_path / "empty.trc"
    empty.write_bytes(b"")
    r = run(str(empty))
    assert r.exit_code == 2 and "empty.trc" in r.output and "empty" in r.output
    trunc = tmp_path / "trunc.trc"
    trunc.write_bytes(hand_trace.read_bytes()[:-50])
    r = run(str(trunc))
    assert r.exit_code == 2 and "trunc.trc" in r.output and "truncated" in r.output
    bad = tmp_path / "bad.trc"
    raw = bytearray(hand_trace.read_bytes())
    first_batch = TraceReader(hand_trace).index["pos"][0]
    raw[int(first_batch) + 8] ^= 0xFF  # damage batch 0's offsets
    bad.write_bytes(bytes(raw))
    r = run(str(bad), "--out", str(tmp_path / "bad.json"))
    assert r.exit_code == 2 and "bad.trc" in r.output and "batch 0" in r.output
    assert not (tmp_path / "bad.json").exists()
    r = run(str(hand_trace), "--out", str(tmp_path / "p.txt"))
    assert r.exit_code == 2 and "p.txt" in r.output and ".parquet" in r.output
    assert not (tmp_path / "p.txt").exists()
    r = run(str(hand_trace), "--out", str(tmp_path / "nodir" / "p.json"))
    assert r.exit_code == 2 and "does not exist" in r.output
    assert not (tmp_path / "nodir").exists()
    r = run(str(hand_trace), "--breakpoints", "0.5,x")
    assert r.exit_code == 2 and "--breakpoints" in r.output
    r = run(str(hand_trace), "--max-batches", "0")
    assert r.exit_code == 2


def test_table_too_large_is_a_clean_error(tmp_path: Path):
    # 2^50 rows x 8 bytes exceeds any address space: a SimrecError naming the table, not a crash
    hdr = TraceHeader(
        tables=[TableSpec(name="huge", rows=2**50, dim=4)], batch_size=2, index_dtype="int64"
    )
    path = tmp_path / "huge.trc"
    with TraceWriter(path, hdr) as w:
        w.write_batch(np.array([0, 1, 2]), np.array([5, 2**49]))
    r = run(str(path))
    assert r.exit_code == 2
    assert "huge.trc" in r.output and "'huge'" in r.output and "Fix:" in r.output


def test_progress_callback(hand_trace: Path):
    calls: list[tuple[int, int]] = []
    profile_trace(hand_trace, stack_distance=False, progress=lambda d, n: calls.append((d, n)))
    assert calls == [(1, 2), (2, 2)]


def test_counts_widen_to_int64(hand_trace: Path, monkeypatch):
    """Per-row counts start as int32 and widen before they could overflow; same results."""
    import simrec.trace.stats as stats

    want = profile_trace(hand_trace, keep_counts=True)
    monkeypatch.setattr(stats, "_INT32_LOOKUPS", 3)
    got = profile_trace(hand_trace, keep_counts=True)
    for a, b in zip(want.tables, got.tables, strict=True):
        assert a.scalars() == b.scalars()
        assert a.counts.tolist() == b.counts.tolist()


# ------------------------------------------------------------------------------------------------
# Finer CDF (fine_cdf at FINE_CDF_BREAKPOINTS) for the sharding planner
# ------------------------------------------------------------------------------------------------
def _zipf_like_trace(tmp_path: Path) -> tuple[Path, list[list[int]], list[int]]:
    """Two tables (5,000 and 300 rows); table 0 skewed (a few rows take most accesses)."""
    rng = np.random.default_rng(7)
    rows = [5000, 300]
    batches = []
    flat: list[list[int]] = [[], []]
    for _ in range(3):
        bt = []
        for t, r in enumerate(rows):
            idx = (rng.zipf(1.3, 400) - 1) % r if t == 0 else rng.integers(0, r, 400)
            bags = [[int(v) for v in idx[i : i + 4]] for i in range(0, 400, 4)]
            flat[t] += [int(v) for v in idx]
            bt.append(bags)
        batches.append(bt)
    return write_bags(tmp_path / "z.trc", rows, batches), flat, rows


def _cdf_by_sorting(values: list[int], rows: int, x: float) -> float:
    """The access-CDF definition, from the raw indices: hottest floor(x*rows) rows plus the
    fraction of the next one."""
    hot = sorted(Counter(values).values(), reverse=True)
    t = x * rows
    k = int(np.floor(t + 1e-12))
    whole = sum(hot[:k])
    part = (t - k) * hot[k] if k < len(hot) else 0.0
    return min((whole + part) / len(values), 1.0)


def test_fine_cdf_is_the_trace_curve_at_the_finer_ladder(tmp_path: Path):
    from simrec.trace.stats import FINE_CDF_BREAKPOINTS

    path, flat, rows = _zipf_like_trace(tmp_path)
    p = profile_trace(path, stack_distance=False)
    fx = np.asarray(FINE_CDF_BREAKPOINTS)
    assert fx[0] == 0.0 and fx[-1] == 1.0 and np.all(np.diff(fx) > 0) and len(fx) == 62
    assert np.allclose(fx[2:] / fx[1:-1], 2.0**0.25)  # ratio 2^(1/4)
    assert np.array_equal(p.fine_cdf_breakpoints, fx)
    for t, tp in enumerate(p.tables):
        assert tp.fine_cdf is not None and tp.fine_cdf.shape == fx.shape
        assert np.all(np.diff(tp.fine_cdf) >= -1e-15)  # monotone
        for x, c in zip(fx, tp.fine_cdf, strict=True):
            assert c == pytest.approx(_cdf_by_sorting(flat[t], rows[t], float(x)), abs=1e-12)
    # a table without look-ups gets NaN (null in JSON), like cdf
    e = profile_trace(write_bags(tmp_path / "e.trc", [5, 5], [[[[]], [[3]]]]))
    assert np.all(np.isnan(e.tables[0].fine_cdf)) and e.tables[1].fine_cdf[-1] == 1.0


def test_fine_cdf_only_adds_json_fields(tmp_path: Path):
    path, _, _ = _zipf_like_trace(tmp_path)
    new = profile_trace(path, stack_distance=False).to_dict()
    old = profile_trace(path, stack_distance=False, fine_cdf_breakpoints=None).to_dict()
    # the keys of docs/trace-stats.md before the finer CDF, plus exactly the two new ones
    old_top = {"profiler", "path", "batches", "batches_in_file", "batch_size", "samples",
               "lookups", "unique", "cdf_breakpoints", "tables", "locality", "stack_distance",
               "provenance"}  # fmt: skip
    old_table = {"name", "rows", "dim", "dtype", "table_bytes", "samples", "lookups", "unique",
                 "lookups_per_batch", "pooling_mean", "pooling_mean_nonempty", "pooling_p50",
                 "pooling_p99", "pooling_max", "coverage", "top1pct_share", "top10pct_share",
                 "cdf_breakpoints", "cdf", "bag_sizes", "stack_distance"}  # fmt: skip
    assert set(new) == old_top | {"fine_cdf_breakpoints"} == set(old)
    assert all(set(t) == old_table | {"fine_cdf"} for t in new["tables"])
    assert old["fine_cdf_breakpoints"] is None and new["fine_cdf_breakpoints"][-1] == 1.0
    for key in set(old) - {"fine_cdf_breakpoints", "tables"}:
        assert new[key] == old[key], key
    for tn, to in zip(new["tables"], old["tables"], strict=True):
        assert set(tn) == set(to)
        assert to["fine_cdf"] is None and len(tn["fine_cdf"]) == len(new["fine_cdf_breakpoints"])
        for key in set(to) - {"fine_cdf"}:
            assert tn[key] == to[key], key
        assert tn["cdf_breakpoints"] == list(DEFAULT_CDF_BREAKPOINTS)
    # the CLI JSON carries the finer curve, and the DataFrame/CSV columns are unchanged
    r = run(str(path), "--json", "--no-stack-distance")
    d = json.loads(r.output)
    assert d["fine_cdf_breakpoints"] == pytest.approx(new["fine_cdf_breakpoints"])
    assert d["tables"][0]["fine_cdf"] == pytest.approx(new["tables"][0]["fine_cdf"])
    df = profile_trace(path, stack_distance=False).to_dataframe()
    assert not any("fine" in c for c in df.columns)
