"""Tests of the synthetic trace generators (simrec.trace.generate, ``simrec trace gen``).

Golden values: Criteo cardinalities and MLPerf multi-hot sizes from reference/data.md §1.1/§1.2,
MELS histograms from shared/data/mels20{21,22}_locality_stats.txt (data.md §2.1), dlrm stack-distance
distributions from shared/data/dlrm_dist_emb_0.log (anchors.md §3.2). Zipf shares and stack
distances are recomputed here independently (direct sums, an O(N·U) list-based LRU stack).
"""

from __future__ import annotations

import filecmp
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from simrec.errors import SimrecError
from simrec.trace.format import TraceReader
from simrec.trace.gen_sampling import FeistelPermutation, Pooling, TruncatedZipf
from simrec.trace.generate import (
    gen_criteo_kaggle,
    gen_dlrm_lru,
    gen_mels,
    gen_mlperf_dlrmv2,
    gen_uniform,
    gen_zipf,
    regenerate,
)
from simrec.trace.locality import (
    histogram_distance,
    locality_from_counts,
    parse_locality_stats,
)

# data.md §1.1 (Criteo Kaggle, as used by DLRM)
KAGGLE = [1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27,
          14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572]  # fmt: skip
# data.md §1.2 (MLPerf cap 40M) and the MLPerf DLRMv2 multi-hot sizes
MLPERF = [40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956, 405282, 10,
          2209, 11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152, 12973, 108, 36]  # fmt: skip
MULTI_HOT = [3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27, 10, 3, 1, 1]


def _counts_per_table_row(r: TraceReader, i: int) -> np.ndarray:
    """Per-(table,row) access counts of batch i, from the file."""
    b = r.batch(i)
    out = []
    for t in range(r.header.num_tables):
        _, c = np.unique(np.asarray(b.table_indices(t)), return_counts=True)
        out.append(c)
    return np.concatenate(out)


# -- determinism and provenance --------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    kw = dict(tables=3, rows="1000,20000,300000", alpha=1.2, reuse=0.2, batches=4,
              batch_size=64, pooling_dist="lognormal", pooling_mean=6, pooling_std=4,
              weighted=True, arrival_rate=50.0)  # fmt: skip
    gen_zipf(tmp_path / "a.trc", seed=7, **kw)
    gen_zipf(tmp_path / "b.trc", seed=7, **kw)
    gen_zipf(tmp_path / "c.trc", seed=8, **kw)
    assert filecmp.cmp(tmp_path / "a.trc", tmp_path / "b.trc", shallow=False)
    assert not filecmp.cmp(tmp_path / "a.trc", tmp_path / "c.trc", shallow=False)


@pytest.mark.parametrize(
    "fn,kw",
    [
        (gen_uniform, dict(tables=2, rows=500, pooling=3, batches=2, batch_size=16)),
        (gen_zipf, dict(rows="100,2000", batches=2, batch_size=16, pooling=2)),
        (gen_criteo_kaggle, dict(batches=2, batch_size=32)),
        (gen_mlperf_dlrmv2, dict(batches=2, batch_size=8, multi_hot="independent")),
        (gen_mels, dict(tables=16, batch_size=256, batches=2)),
    ],
)
def test_regenerate_from_provenance(tmp_path: Path, fn, kw) -> None:
    res = fn(tmp_path / "a.trc", seed=3, **kw)
    prov = TraceReader(tmp_path / "a.trc").header.provenance
    assert prov["source"] == "generated"
    assert prov["seed"] == 3
    assert prov["generator"] == fn.__name__.removeprefix("gen_").replace("_", "-")
    assert prov == res.provenance
    regenerate(prov, tmp_path / "b.trc")
    assert filecmp.cmp(tmp_path / "a.trc", tmp_path / "b.trc", shallow=False)


def test_dlrm_lru_regenerates(tmp_path: Path, shared_data: Path) -> None:
    dist = shared_data / "dlrm_dist_emb_0.log"
    gen_dlrm_lru(tmp_path / "a.trc", dist_file=dist, tables=2, batches=3, batch_size=32, seed=5)
    prov = TraceReader(tmp_path / "a.trc").header.provenance
    regenerate(prov, tmp_path / "b.trc")
    assert filecmp.cmp(tmp_path / "a.trc", tmp_path / "b.trc", shallow=False)
    assert prov["dist"]["sd_values"] == [0, 1, 3, 4, 5]  # line 2 of dist_emb_0.log


def test_header_and_provenance_contents(tmp_path: Path) -> None:
    gen_zipf(tmp_path / "z.trc", tables=2, rows="10,3000000000", dim=32, alpha=1.3, reuse=0.1,
             batches=2, batch_size=8, pooling=4, weighted=True, seed=11)  # fmt: skip
    r = TraceReader(tmp_path / "z.trc")
    h = r.header
    assert [t.name for t in h.tables] == ["t0", "t1"]
    assert [t.rows for t in h.tables] == [10, 3_000_000_000]
    assert {t.dim for t in h.tables} == {32}
    assert h.index_dtype == "int64"  # 3e9 rows do not fit int32
    assert h.has_weights and not h.has_labels and h.num_dense == 0
    p = h.provenance["params"]
    assert p["alpha"] == 1.3 and p["reuse"] == 0.1 and p["pooling"] == 4
    assert p["rows"] == [10, 3_000_000_000] and p["weighted"] is True
    assert len(r) == 2 and r.total_lookups == 2 * 2 * 8 * 4
    r.validate()


# -- Criteo shapes -----------------------------------------------------------------------------


def test_criteo_kaggle_shapes(tmp_path: Path) -> None:
    gen_criteo_kaggle(tmp_path / "k.trc", batches=2, batch_size=100, seed=0)
    r = TraceReader(tmp_path / "k.trc")
    h = r.header
    assert [t.name for t in h.tables] == [f"C{i}" for i in range(1, 27)]
    assert [t.rows for t in h.tables] == KAGGLE
    assert sum(t.rows for t in h.tables) == 33_762_577  # data.md §1.1
    assert {t.dim for t in h.tables} == {16}
    b = r.batch(0)
    assert b.num_lookups / b.batch_size == 26
    assert (b.lengths() == 1).all()
    assert b.dense.shape == (100, 13) and np.isfinite(b.dense).all() and (b.dense >= 0).all()
    assert set(np.unique(b.labels)) <= {0.0, 1.0}
    r.validate()


def test_criteo_labels_follow_ctr(tmp_path: Path) -> None:
    gen_criteo_kaggle(tmp_path / "k.trc", batches=4, batch_size=5000, ctr=0.3, alpha=0.0)
    labels = np.concatenate([np.asarray(b.labels) for b in TraceReader(tmp_path / "k.trc")])
    assert abs(labels.mean() - 0.3) < 4 * math.sqrt(0.3 * 0.7 / len(labels))


def test_mlperf_dlrmv2_shapes_and_bags(tmp_path: Path) -> None:
    gen_mlperf_dlrmv2(tmp_path / "m.trc", batches=2, batch_size=64, alpha=1.05, seed=2)
    r = TraceReader(tmp_path / "m.trc")
    h = r.header
    assert [t.rows for t in h.tables] == MLPERF
    assert sum(t.rows for t in h.tables) == 204_184_588  # data.md §1.3
    assert [t.name for t in h.tables] == [f"cat_{i}" for i in range(26)]
    assert {t.dim for t in h.tables} == {128}
    b = r.batch(0)
    assert b.num_lookups / b.batch_size == 214  # data.md §1.2
    assert (b.lengths() == np.array(MULTI_HOT)[:, None]).all()
    r.validate()
    # MLPerf materialisation: a bag is a fixed function of its first id
    t = MULTI_HOT.index(100)
    bags: dict[int, tuple[int, ...]] = {}
    for batch in r:
        idx = np.asarray(batch.table_indices(t)).reshape(-1, 100)
        for bag in idx:
            assert bags.setdefault(int(bag[0]), tuple(bag)) == tuple(bag)
    assert max(len(set(v)) for v in bags.values()) > 90  # extras spread over 40M rows


# -- Zipf ------------------------------------------------------------------------------------------


def _zipf_share(n: int, alpha: float, k: int) -> float:
    w = np.arange(1, n + 1, dtype=np.float64) ** -alpha
    return float(w[:k].sum() / w.sum())


@pytest.mark.parametrize("n,alpha", [(10**6, 1.2), (200_000, 1.05), (3_000_000, 2.0)])
def test_truncated_zipf_top_shares(n: int, alpha: float) -> None:
    z = TruncatedZipf(n, alpha)
    s = z.sample(np.random.default_rng(0), 2_000_000)
    assert s.min() >= 0 and s.max() < n
    for k in (1, 10, 1000, 100_000):
        exact = _zipf_share(n, alpha, k)
        assert z.share(k) == pytest.approx(exact, rel=1e-9)
        emp = float((s < k).mean())
        sd = math.sqrt(exact * (1 - exact) / len(s))
        assert abs(emp - exact) < 5 * sd + 1e-12, (k, emp, exact)


def test_truncated_zipf_tail_inversion() -> None:
    """With a tiny exact head, the closed-form tail inversion carries the ranks beyond it."""

    class SmallHead(TruncatedZipf):
        HEAD = 8

    n, alpha = 10_000, 1.2
    z = SmallHead(n, alpha)
    s = z.sample(np.random.default_rng(1), 2_000_000)
    for k in (9, 10, 12, 20, 50, 500):
        exact = _zipf_share(n, alpha, k)
        sd = math.sqrt(exact * (1 - exact) / len(s))
        assert abs(float((s < k).mean()) - exact) < 5 * sd + 2e-4, k


def test_zipf_trace_rank_frequency_slope(tmp_path: Path) -> None:
    alpha = 1.2
    gen_zipf(tmp_path / "z.trc", tables=1, rows=100_000, alpha=alpha, batches=4,
             batch_size=4096, pooling=50, seed=1)  # fmt: skip
    r = TraceReader(tmp_path / "z.trc")
    idx = np.concatenate([np.asarray(b.indices) for b in r])
    counts = np.bincount(idx, minlength=100_000)
    top = np.sort(counts)[::-1]
    ranks = np.arange(1, 101)
    slope = np.polyfit(np.log(ranks), np.log(top[:100]), 1)[0]
    assert slope == pytest.approx(-alpha, abs=0.06)
    share10 = top[:10].sum() / len(idx)
    exact = _zipf_share(100_000, alpha, 10)
    assert share10 == pytest.approx(exact, abs=0.005)
    # hot rows are scattered by the permutation, not rows 0..9
    hot = np.argsort(counts)[::-1][:10]
    assert not set(hot.tolist()) <= set(range(100))


def test_zipf_alpha_at_most_one_is_uniform(tmp_path: Path) -> None:
    gen_zipf(tmp_path / "u.trc", tables=1, rows=50, alpha=1.0, batches=1, batch_size=5000,
             pooling=10)  # fmt: skip
    idx = np.asarray(TraceReader(tmp_path / "u.trc").batch(0).indices)
    c = np.bincount(idx, minlength=50)
    chi2 = float(((c - 1000.0) ** 2 / 1000.0).sum())
    assert chi2 < 100  # chi-square, 49 degrees of freedom: P(chi2 > 100) < 1e-4


def test_feistel_is_a_permutation() -> None:
    for n in (1, 2, 3, 7, 1000, 65537, 1_000_003):
        y = FeistelPermutation(n, key=n * 31)(np.arange(n))
        assert np.array_equal(np.sort(y), np.arange(n))
    a = FeistelPermutation(10**6, 1)(np.arange(100))
    b = FeistelPermutation(10**6, 2)(np.arange(100))
    assert not np.array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5000), key=st.integers(0, 2**64 - 1))
def test_feistel_bijection_property(n: int, key: int) -> None:
    y = FeistelPermutation(n, key)(np.arange(n))
    assert y.min() >= 0 and y.max() < n and len(np.unique(y)) == n


# -- reuse, pooling, weights, arrivals ---------------------------------------------------------


@pytest.mark.parametrize("reuse", [0.0, 0.3, 0.75])
def test_reuse_fraction(tmp_path: Path, reuse: float) -> None:
    # rows = 10^12 and uniform indices: chance collisions between batches are ~1e-8
    gen_zipf(tmp_path / "r.trc", tables=4, rows=10**12, alpha=0.0, reuse=reuse, batches=5,
             batch_size=1000, pooling_dist="normal", pooling_mean=5, pooling_std=2)  # fmt: skip
    r = TraceReader(tmp_path / "r.trc")
    fr = []
    for i in range(1, len(r)):
        prev, cur = r.batch(i - 1), r.batch(i)
        for t in range(4):
            fr.append(np.isin(cur.table_indices(t), prev.table_indices(t)).mean())
    assert float(np.mean(fr)) == pytest.approx(reuse, abs=0.01)


def test_pooling_distributions_and_coverage() -> None:
    rng = np.random.default_rng(0)
    x = Pooling("lognormal", 20.0, 15.0).sample(rng, (400_000,))
    assert x.mean() == pytest.approx(20.0, rel=0.01)
    assert x.std() == pytest.approx(15.0, rel=0.03)
    y = Pooling("normal", 1.0, 2.0).sample(rng, (100_000,))
    assert y.min() == 0 and (y == 0).mean() > 0.2  # clipped at 0: features absent (coverage < 1)
    u = Pooling("uniform", 10.0, 2.0).sample(rng, (100_000,))
    assert u.min() >= 10 - round(2 * math.sqrt(3)) and u.max() <= 10 + round(2 * math.sqrt(3))
    assert u.mean() == pytest.approx(10.0, abs=0.05)
    assert (Pooling("fixed", 7.0).sample(rng, (5,)) == 7).all()
    assert Pooling("lognormal", 50.0, 100.0, max=60).sample(rng, (1000,)).max() == 60


def test_weights_and_arrivals(tmp_path: Path) -> None:
    gen_uniform(tmp_path / "w.trc", tables=2, rows=100, batches=6, batch_size=10, pooling=2,
                weighted=True, arrival_rate=200.0, arrival_process="fixed")  # fmt: skip
    r = TraceReader(tmp_path / "w.trc")
    arr = [b.arrival_s for b in r]
    assert arr == pytest.approx([k / 200.0 for k in range(6)])
    w = np.asarray(r.batch(0).weights)
    assert w.shape == (40,) and (w >= 0).all() and (w < 1).all()
    gen_uniform(tmp_path / "p.trc", tables=1, rows=100, batches=200, batch_size=1,
                arrival_rate=100.0)  # fmt: skip
    a = np.array([b.arrival_s for b in TraceReader(tmp_path / "p.trc")])
    gaps = np.diff(np.concatenate([[0.0], a]))
    assert (gaps > 0).all() and gaps.mean() == pytest.approx(0.01, rel=0.25)


def test_weights_do_not_change_indices(tmp_path: Path) -> None:
    gen_zipf(tmp_path / "a.trc", tables=2, rows=1000, batches=2, batch_size=20, pooling=3)
    gen_zipf(tmp_path / "b.trc", tables=2, rows=1000, batches=2, batch_size=20, pooling=3,
             weighted=True)  # fmt: skip
    ia = np.asarray(TraceReader(tmp_path / "a.trc").batch(1).indices)
    ib = np.asarray(TraceReader(tmp_path / "b.trc").batch(1).indices)
    assert np.array_equal(ia, ib)


def test_memory_is_bounded_by_one_batch(tmp_path: Path) -> None:
    def peak(batches: int) -> int:
        tracemalloc.start()
        gen_zipf(tmp_path / f"m{batches}.trc", tables=4, rows=10**6, batches=batches,
                 batch_size=2048, pooling=16)  # fmt: skip
        _, p = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return p

    small, big = peak(2), peak(20)
    assert big < 1.5 * small


# -- dlrm LRU --------------------------------------------------------------------------------------


def _reference_stack_distances(stream: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """O(N·U) stack distances (0 = first use) and the stack depth before each access."""
    stack: list[int] = []  # index 0 = most recent
    seen: set[int] = set()
    sd, depth = [], []
    for x in stream:
        depth.append(len(stack))
        if x in seen:
            i = stack.index(x)
            sd.append(i + 1)
            del stack[i]
        else:
            sd.append(0)
            seen.add(x)
        stack.insert(0, x)
    return np.array(sd), np.array(depth)


def _lru_table_stream(path: Path, t: int) -> list[int]:
    r = TraceReader(path)
    return np.concatenate([np.asarray(b.table_indices(t)) for b in r]).tolist()


def test_dlrm_lru_matches_dist_file(tmp_path: Path, shared_data: Path) -> None:
    dist = shared_data / "dlrm_dist_emb_0.log"
    gen_dlrm_lru(tmp_path / "l.trc", dist_file=dist, tables=2, batches=10, batch_size=500,
                 pooling=4, seed=0)  # fmt: skip
    r = TraceReader(tmp_path / "l.trc")
    for t in range(2):
        s = _lru_table_stream(tmp_path / "l.trc", t)
        assert len(s) == 20_000
        sd, depth = _reference_stack_distances(s)
        ok = depth >= 5
        vals = np.array([0, 1, 3, 4, 5])  # dlrm_dist_emb_0.log line 2
        pmf = np.diff([0, 0.55, 0.64, 0.82, 0.91, 1.0])  # line 3, as a pmf
        got = np.array([(sd[ok] == v).mean() for v in vals])
        assert got.sum() == pytest.approx(1.0)
        assert np.abs(got - pmf).max() < 0.012  # 4.5 sigma at n = 20,000
        # rows = distinct lines created, all used
        assert r.header.tables[t].rows == len(set(s)) == max(s) + 1


def test_dlrm_lru_large_stack_distances(tmp_path: Path) -> None:
    # exercises the order-statistic tree, its compaction and growth
    f = tmp_path / "dist.log"
    f.write_text("1, 2, 3\n0, 1, 10, 100, 1000, 3000\n0.3, 0.4, 0.6, 0.8, 0.9, 1.0\n")
    gen_dlrm_lru(tmp_path / "l.trc", dist_file=f, tables=1, batches=6, batch_size=1000,
                 pooling=5, seed=4)  # fmt: skip
    s = _lru_table_stream(tmp_path / "l.trc", 0)
    sd, depth = _reference_stack_distances(s)
    ok = depth >= 3000
    assert ok.sum() > 15_000
    vals = np.array([0, 1, 10, 100, 1000, 3000])
    pmf = np.array([0.3, 0.1, 0.2, 0.2, 0.1, 0.1])
    got = np.array([(sd[ok] == v).mean() for v in vals])
    assert got.sum() == pytest.approx(1.0)
    assert np.abs(got - pmf).max() < 0.02


def test_dlrm_lru_with_rows_limit(tmp_path: Path, shared_data: Path) -> None:
    gen_dlrm_lru(tmp_path / "l.trc", dist_file=shared_data / "dlrm_dist_emb_1.log", tables=1,
                 rows=300, batches=4, batch_size=500, pooling=2, seed=1)  # fmt: skip
    r = TraceReader(tmp_path / "l.trc")
    s = _lru_table_stream(tmp_path / "l.trc", 0)
    assert r.header.tables[0].rows == 300
    assert len(set(s)) == 300 and max(s) < 300
    first_new = list(dict.fromkeys(s))[:5]
    assert first_new != [0, 1, 2, 3, 4]  # new lines take unused rows in a random order
    sd, depth = _reference_stack_distances(s)
    full = depth == 300
    assert full.sum() > 2000
    # once all 300 rows exist, sd = 0 (p = 0.55, dist_emb_1.log line 3) re-references the LRU
    # row, at depth 300: dlrm's recycling
    assert (sd[full] == 300).mean() == pytest.approx(0.55, abs=0.035)


# -- MELS --------------------------------------------------------------------------------------


@pytest.mark.parametrize("year", ["2021", "2022"])
def test_mels_histogram_distance(tmp_path: Path, shared_data: Path, year: str) -> None:
    # T=64, B=2048 gives ~2.07M (2021) / ~1.78M (2022) lookups per batch: above the 32769/a_16
    # lookups the 32768+ bin needs (1.73M / 0.43M). Threshold 0.05: the published shares are
    # rounded to 3 decimals (<= 0.0005 per bin, <= 0.0043 TV over 17 bins); the rest is sampling.
    res = gen_mels(tmp_path / "m.trc", profile=year, tables=64, batch_size=2048, batches=2,
                   seed=0)  # fmt: skip
    assert not res.warnings
    pub = parse_locality_stats(shared_data / f"mels{year}_locality_stats.txt")[0]
    r = TraceReader(tmp_path / "m.trc")
    for i in range(len(r)):
        gen = locality_from_counts(_counts_per_table_row(r, i))
        d = histogram_distance(gen, pub)
        assert d["unique_tv"] <= 0.05 and d["access_tv"] <= 0.05, d
        assert gen.access_share[-1] > 0  # rows with > 32768 accesses exist
        assert d["avg_col_size_ratio"] == pytest.approx(1.0, abs=0.05)
    fit = r.header.provenance["fit"]
    assert fit["tail_reached"] is True
    assert fit["batch0_distance"]["access_tv"] <= 0.05
    # default pooling = published avg indices / (T·B): 15.8 (2021), 13.6 (2022), data.md §2.1
    pool = {"2021": 15.8, "2022": 13.6}[year]
    assert r.total_lookups / (2 * 64 * 2048) == pytest.approx(pool, rel=0.01)
    r.validate()


def test_mels_hot_rows_stay_hot(tmp_path: Path) -> None:
    gen_mels(tmp_path / "m.trc", tables=16, batch_size=512, batches=3, seed=2)
    r = TraceReader(tmp_path / "m.trc")
    hottest = []
    for b in r:
        best = (0, -1, -1)
        for t in range(16):
            idx = np.asarray(b.table_indices(t))
            if len(idx):
                c = np.bincount(idx)
                best = max(best, (int(c.max()), t, int(c.argmax())))
        hottest.append(best[1:])
    assert hottest[0] == hottest[1] == hottest[2]


def test_mels_small_batch_warns_about_tail(tmp_path: Path) -> None:
    res = gen_mels(tmp_path / "m.trc", tables=32, batch_size=1024, batches=1)
    assert any("32768+" in w and "1,726,409" in w for w in res.warnings), res.warnings
    assert res.provenance["fit"]["tail_reached"] is False


def test_mels_rows_too_small_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SimrecError) as e:
        gen_mels(tmp_path / "m.trc", tables=16, batch_size=256, rows=10, batches=2)
    assert "--rows" in str(e.value)
    assert not list(tmp_path.iterdir())


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw,option",
    [
        (dict(alpha=-1.0), "--alpha"),
        (dict(reuse=1.5), "--reuse"),
        (dict(rows=-5), "--rows"),
        (dict(rows="10,x"), "--rows"),
        (dict(rows="10,20", tables=3), "--rows"),
        (dict(batches=0), "--batches"),
        (dict(pooling=-2), "--pooling"),
        (dict(pooling_dist="normal", pooling_mean=-1.0), "--pooling-mean"),
    ],
)
def test_api_errors_name_the_option(tmp_path: Path, kw, option: str) -> None:
    with pytest.raises(SimrecError) as e:
        gen_zipf(tmp_path / "x.trc", **kw)
    assert option in str(e.value) and "Fix:" in str(e.value)
    assert not list(tmp_path.iterdir())


def _cli(args: list[str]):
    from simrec.cli import cli

    return CliRunner().invoke(cli, ["trace", "gen", *args])


@pytest.mark.parametrize(
    "args,needle",
    [
        (["zipf", "--alpha", "-1"], "--alpha"),
        (["zipf", "--reuse", "1.5"], "--reuse"),
        (["zipf", "--rows", "-5"], "--rows"),
        (["uniform", "--rows", "1,2,3", "--tables", "2"], "--rows"),
        (["mels", "--tables", "8", "--profile", "{bad_profile}"], "bad_profile.txt"),
        (["mels", "--profile", "{missing}"], "--profile"),
        (["dlrm-lru", "--dist-file", "{bad_dist}"], "bad_dist.log"),
        (["dlrm-lru", "--dist-file", "{bad_dist2}"], "line 3"),
        (["criteo-kaggle", "--ctr", "2"], "--ctr"),
        (["mlperf-dlrmv2", "--alpha", "-0.5"], "--alpha"),
    ],
)
def test_cli_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "bad_profile.txt").write_text("this is not a locality_stats file\n")
    (tmp_path / "bad_dist.log").write_text("1, 2, 3\n0, 1, 2\n")
    (tmp_path / "bad_dist2.log").write_text("1, 2\n0, 1, 2\n0.5, 0.9, 0.8\n")
    subs = {
        "{bad_profile}": str(tmp_path / "bad_profile.txt"),
        "{missing}": str(tmp_path / "nope.txt"),
        "{bad_dist}": str(tmp_path / "bad_dist.log"),
        "{bad_dist2}": str(tmp_path / "bad_dist2.log"),
    }
    out = tmp_path / "out.trc"
    res = _cli([subs.get(a, a) for a in args] + ["-o", str(out)])
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert "Traceback" not in res.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.trc")]


def test_cli_unknown_kind_and_missing_output(tmp_path: Path) -> None:
    res = _cli(["pareto", "-o", str(tmp_path / "x.trc")])
    assert res.exit_code == 2 and "pareto" in res.output
    res = _cli(["zipf"])
    assert res.exit_code == 2 and "--output" in res.output


@pytest.mark.parametrize(
    "kind", ["uniform", "zipf", "dlrm-lru", "mels", "criteo-kaggle", "mlperf-dlrmv2"]
)
def test_cli_help(kind: str) -> None:
    res = _cli([kind, "--help"])
    assert res.exit_code == 0
    for opt in ("--output", "--seed", "--batches", "--batch-size"):
        assert opt in res.output


def test_cli_writes_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "z.trc"
    res = _cli(["zipf", "--tables", "3", "--rows", "5000", "--alpha", "1.2", "--reuse", "0.1",
                "--batches", "2", "--batch-size", "32", "--pooling", "4", "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "2 batches, 768 lookups" in res.output
    prov = TraceReader(out).header.provenance
    assert prov["generator"] == "zipf" and prov["seed"] == 0
    assert prov["params"]["rows"] == 5000 and prov["params"]["reuse"] == 0.1
    out2 = tmp_path / "m.trc"
    res = _cli(["mels", "--tables", "64", "--batch-size", "2048", "--batches", "1",
                "-o", str(out2)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "access TV" in res.output
