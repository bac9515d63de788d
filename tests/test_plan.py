"""The plan format (simrec.shard.plan) and the address remapper (simrec.shard.remap)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simrec.errors import ConfigError
from simrec.shard import Remapper, load_plan, plan_from_dict, single_device_plan
from simrec.trace.format import TableSpec, TraceHeader


def _plan_dict() -> dict:
    return {
        "format": "simrec-plan",
        "version": 1,
        "devices": [
            {"name": "csd0", "kind": "csd", "cores": {"memory_centric": 2, "compute_centric": 1}},
            {"name": "csd1", "cores": {"mlp": 1, "other": {"dma": 2}}},
        ],
        "tables": [
            {
                "name": "A",
                "rows": 100,
                "dim": 16,
                "order": {"kind": "hot_set", "hot_rows": [5, 7, 9]},
                "bands": [
                    {"device": "csd0", "tier": "dram", "rows": [0, 3]},
                    {"device": "csd0", "tier": "nand", "rows": [3, 50]},
                    {"device": "csd1", "tier": "nand", "rows": [50, 100]},
                ],
            },
            {
                "name": "B",
                "rows": 1000,
                "dim": 16,
                "codec": {"kind": "tt", "ranks": [4, 4]},
                "bands": [{"device": "csd1", "tier": "sram", "rows": [0, 1000]}],
            },
            {
                "name": "C",
                "rows": 40,
                "dim": 8,
                "codec": {"kind": "quant", "bits": 4},
                "order": {"kind": "hotness", "permutation": list(range(39, -1, -1))},
                "bands": [
                    {"device": "csd0", "tier": "dram", "rows": [0, 10]},
                    {"device": "csd0", "tier": "nand", "rows": [10, 20]},
                    {"device": "csd0", "tier": "dram", "rows": [20, 40]},
                ],
            },
        ],
        "solver": {"solver": "highs", "status": "optimal", "objective": 1.5, "gap": 0.0},
    }


def test_roundtrip_and_tt_shapes_filled(tmp_path):
    p = plan_from_dict(_plan_dict())
    # suggested shapes for 1000 rows / dim 16 (data.md §4: 16 -> 2·2·4)
    assert p.table("B").codec.p_shapes == [10, 10, 10]
    assert p.table("B").codec.q_shapes == [2, 2, 4]
    path = p.save(tmp_path / "plan.json")
    q = load_plan(path)
    assert q == p
    assert json.loads(path.read_text())["version"] == 1


def test_remap_semantics():
    r = Remapper(plan_from_dict(_plan_dict()))
    dev, tier, local = r.remap("A", np.array([5, 7, 9, 0, 1, 2, 3, 4, 6, 99]))
    names = [(r.devices[d], r.tiers[t]) for d, t in zip(dev, tier, strict=True)]
    # hot set first: 5, 7, 9 are ranks 0..2 -> csd0 dram local 0..2; then 0,1,2,3,4,6 -> ranks 3..8
    assert names[:3] == [("csd0", "dram")] * 3
    assert local[:3].tolist() == [0, 1, 2]
    assert names[3:9] == [("csd0", "nand")] * 6
    assert local[3:9].tolist() == [0, 1, 2, 3, 4, 5]
    # row 99 has rank 99 -> band [50, 100) on csd1 nand, local 49
    assert names[9] == ("csd1", "nand") and local[9] == 49
    # table C: reversed permutation; ranks 0..9 and 20..39 share csd0 dram, packed in rank order
    dev, tier, local = r.remap("C", np.array([39, 30, 29, 20, 19, 0]))
    assert [r.tiers[t] for t in tier] == ["dram", "dram", "nand", "nand", "dram", "dram"]
    assert local.tolist() == [0, 9, 0, 9, 10, 29]
    assert r.space_sizes("C") == {("csd0", "dram"): 30, ("csd0", "nand"): 10}


def test_remap_is_bijection_per_table():
    p = plan_from_dict(_plan_dict())
    r = Remapper(p)
    for t in p.tables:
        r.check_bijection(t.name)
        dev, tier, local = r.remap(t.name, np.arange(t.rows))
        keys = set(zip(dev.tolist(), tier.tolist(), local.tolist(), strict=True))
        assert len(keys) == t.rows
        expect = {
            (r.devices.index(d), r.tiers.index(ti), k)
            for (d, ti), n in r.space_sizes(t.name).items()
            for k in range(n)
        }
        assert keys == expect


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 300),
    cuts=st.lists(st.integers(1, 299), max_size=6),
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["index", "hotness"]),
)
def test_remap_bijection_property(rows, cuts, seed, kind):
    rng = np.random.default_rng(seed)
    edges = sorted({0, rows, *[c for c in cuts if c < rows]})
    spots = [("d0", "dram"), ("d0", "nand"), ("d1", "hbm")]
    bands = [
        dict(zip(("device", "tier"), spots[rng.integers(3)], strict=True), rows=[a, b])
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    order = {"kind": kind}
    if kind == "hotness":
        order["permutation"] = rng.permutation(rows).tolist()
    d = {
        "devices": [{"name": "d0"}, {"name": "d1"}],
        "tables": [{"name": "t", "rows": rows, "dim": 4, "order": order, "bands": bands}],
    }
    r = Remapper(plan_from_dict(d))
    r.check_bijection("t")
    dev, tier, local = r.remap("t", np.arange(rows))
    assert len(set(zip(dev.tolist(), tier.tolist(), local.tolist(), strict=True))) == rows


def test_planted_remap_bug_is_caught_by_bijection_check():
    p = plan_from_dict(_plan_dict())
    r = Remapper(p)
    # plant a bug: row 7's rank now points at row 9's local address
    m = r.tables[0]
    m.inv = m.inv.copy()
    m.inv[7] = m.inv[9]
    with pytest.raises(ConfigError, match="one-to-one"):
        r.check_bijection("A")


def test_runtime_hotness_permutation():
    d = _plan_dict()
    del d["tables"][2]["order"]["permutation"]
    p = plan_from_dict(d)
    with pytest.raises(ConfigError, match="no permutation"):
        Remapper(p)
    r = Remapper(p, perms={"C": np.arange(40)[::-1]})
    assert r.remap("C", np.array([39]))[2].tolist() == [0]
    with pytest.raises(ConfigError, match="not a permutation"):
        Remapper(p, perms={"C": np.zeros(40, dtype=np.int64)})
    with pytest.raises(ConfigError, match="not a permutation"):
        Remapper(p, perms={"C": np.arange(40) - 1})
    with pytest.raises(ConfigError, match="not a permutation"):
        Remapper(p, perms={"C": np.arange(41)})


def test_remap_batch_matches_per_table():
    p = plan_from_dict(_plan_dict())
    r = Remapper(p)
    rng = np.random.default_rng(3)
    t = rng.integers(0, 3, 500)
    rows = np.array([rng.integers(0, p.tables[k].rows) for k in t])
    dev, tier, local = r.remap_batch(t, rows)
    for k in range(3):
        sel = t == k
        d2, t2, l2 = r.remap(k, rows[sel])
        assert (dev[sel] == d2).all() and (tier[sel] == t2).all() and (local[sel] == l2).all()


@pytest.mark.parametrize(
    ("mutate", "match", "where"),
    [
        (lambda d: d["tables"][0]["bands"][0].update(tierr="x"), "did you mean 'tier'", "'A'"),
        (lambda d: d["tables"][1]["codec"].update(rankz=1), "did you mean 'ranks'", "'B'"),
        (lambda d: d.update(devicez=[]), "did you mean 'devices'", "devicez"),
        (lambda d: d["devices"][0]["cores"].update(mlpp=1), "did you mean 'mlp'", "cores"),
        (lambda d: d["tables"][0]["bands"][1].update(rows=[2, 50]), "overlap", "'A'"),
        (lambda d: d["tables"][0]["bands"][1].update(rows=[4, 50]), r"rows \[3, 4\)", "'A'"),
        (lambda d: d["tables"][0]["bands"][2].update(rows=[50, 99]), r"\[99, 100\)", "'A'"),
        (lambda d: d["tables"][0]["bands"][2].update(device="csd3"), "csd3", "device"),
        (lambda d: d["tables"][1]["codec"].update(ranks=[0, 4]), "ranks must be >= 1", "'B'"),
        (lambda d: d["tables"][1]["codec"].update(q_shapes=[3, 2, 2]), "not the embedding", "'B'"),
        (lambda d: d["tables"][1]["codec"].update(p_shapes=[9, 10, 10]), "fewer than", "'B'"),
        (lambda d: d["tables"][1]["codec"].update(kind="zip"), "codec kind", "'B'"),
        (lambda d: d["tables"][2]["order"].update(permutation=[0] * 40), "permutation", "'C'"),
        (lambda d: d["tables"][0]["order"].update(hot_rows=[5, 5]), "repeat", "'A'"),
        (lambda d: d["devices"].append({"name": "csd0"}), "twice", "devices"),
        (lambda d: d.update(version=7), "version 7", "version"),
        (
            lambda d: d["tables"][2]["bands"][2].update(codec={"kind": "raw"}),
            "same codec",
            "'C'",
        ),
    ],
)
def test_bad_plans(tmp_path, mutate, match, where):
    d = copy.deepcopy(_plan_dict())
    mutate(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match=match) as e:
        load_plan(path)
    text = str(e.value)
    assert str(path) in text and where in text and "Fix:" in text


def test_hw_devices_and_trace_checks(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_plan_dict()))
    load_plan(path, hw_device_names=["csd0", "csd1", "csd2"])
    with pytest.raises(ConfigError, match="not in the hardware config") as e:
        load_plan(path, hw_device_names=["csd0", "ssd1"])
    assert "did you mean" in str(e.value)
    hdr = TraceHeader(
        tables=[
            TableSpec(name="A", rows=100, dim=16),
            TableSpec(name="B", rows=1000, dim=16),
            TableSpec(name="C", rows=40, dim=8),
        ],
        batch_size=4,
    )
    load_plan(path, trace_header=hdr)
    hdr2 = hdr.model_copy(update={"tables": hdr.tables[:2] + (TableSpec(name="D", rows=4, dim=8),)})
    with pytest.raises(ConfigError, match="'C' is not in the trace"):
        load_plan(path, trace_header=hdr2)
    hdr3 = hdr.model_copy(update={"tables": hdr.tables + (TableSpec(name="E", rows=4, dim=8),)})
    with pytest.raises(ConfigError, match="'E' has no entry"):
        load_plan(path, trace_header=hdr3)
    hdr4 = hdr.model_copy(
        update={"tables": (TableSpec(name="A", rows=101, dim=16),) + hdr.tables[1:]}
    )
    with pytest.raises(ConfigError, match="101"):
        load_plan(path, trace_header=hdr4)


def test_not_json_and_missing(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_plan(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{oops")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_plan(tmp_path / "x.json")


def test_sharding_plan_view():
    v = plan_from_dict(_plan_dict()).sharding_plan_view()
    assert v["A"]["sharding_type"] == "row_wise" and v["A"]["ranks"] == [0, 1]
    assert v["A"]["compute_kernel"] == "key_value"
    assert v["B"] == {
        "sharding_type": "table_wise",
        "compute_kernel": "custom:tt",
        "ranks": [1],
        "shards": [{"rank": 1, "tier": "sram", "offset": 0, "size": 1000}],
    }
    assert v["C"]["compute_kernel"] == "quant"


def test_nbytes_per_tier_and_single_device_plan():
    p = plan_from_dict(_plan_dict())
    nb = p.nbytes()
    # B: TT 10·10·10 x 2·2·4 at ranks (4, 4): 1·10·2·4 + 4·10·2·4 + 4·10·4·1 = 560 params -> 2240 B
    assert nb[("csd1", "sram")] == 2240
    # A: 3 rows on csd0 dram (fp32 d16 = 64 B) + C: 30 rows INT4 d8 (4 B + 4 B fp16 scale/bias)
    assert nb[("csd0", "dram")] == 3 * 64 + 30 * 8
    hdr = TraceHeader(tables=[TableSpec(name="x", rows=10, dim=4)], batch_size=2)
    sp = single_device_plan(hdr)
    assert sp.devices[0].name == "dev0" and sp.tables[0].bands[0].rows == (0, 10)


def test_single_device_plan_follows_header_dtypes():
    hdr = TraceHeader(
        tables=[
            TableSpec(name="a", rows=10, dim=4),
            TableSpec(name="b", rows=10, dim=4, dtype="float16"),
            TableSpec(name="c", rows=10, dim=4, dtype="int8"),
            TableSpec(name="d", rows=10, dim=4, dtype="int4"),
        ],
        batch_size=2,
    )
    p = single_device_plan(hdr)
    kinds = [
        (t.codec.kind, getattr(t.codec, "dtype", None), getattr(t.codec, "bits", None))
        for t in p.tables
    ]
    assert kinds == [
        ("raw", "float32", None),
        ("raw", "float16", None),
        ("quant", None, 8),
        ("quant", None, 4),
    ]
    assert p.tables[2].codec.scale_dtype == "float32" and p.tables[3].codec.scale_dtype == "float16"
