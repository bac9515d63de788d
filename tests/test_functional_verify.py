"""End-to-end functional verification (simrec validate --functional) and its planted-bug tests."""

from __future__ import annotations

import json

import click
import numpy as np
import pytest
from click.testing import CliRunner

from simrec.cli import SimrecGroup
from simrec.errors import ConfigError
from simrec.functional.cli import validate_command
from simrec.functional.verify import FunctionalSystem, verify_functional
from simrec.shard import Remapper, plan_from_dict
from simrec.trace.format import TableSpec, TraceHeader, TraceWriter

ROWS = [300, 50, 1000, 64, 500, 200]


def _write_trace(path, seed=0, batches=3, b=32, weights=False):
    rng = np.random.default_rng(seed)
    tables = [TableSpec(name=f"t{i}", rows=r, dim=16) for i, r in enumerate(ROWS)]
    hdr = TraceHeader(
        tables=tables, batch_size=b, num_dense=13, has_labels=True, has_weights=weights
    )
    with TraceWriter(path, hdr) as w:
        for _ in range(batches):
            lengths = rng.integers(0, 5, len(ROWS) * b)
            off = np.concatenate([[0], np.cumsum(lengths)])
            idx = np.concatenate(
                [
                    np.minimum(rng.zipf(1.2, lengths[t * b : (t + 1) * b].sum()), r) - 1
                    for t, r in enumerate(ROWS)
                ]
            )
            w.write_batch(
                off,
                idx,
                weights=rng.random(idx.size).astype(np.float32) if weights else None,
                dense=np.log1p(rng.integers(0, 100, (b, 13))).astype(np.float32),
                labels=rng.integers(0, 2, b).astype(np.float32),
            )
    return hdr


def _plan(hot_perm=None):
    return {
        "devices": [
            {"name": "csd0", "cores": {"memory_centric": 2, "compute_centric": 1}},
            {"name": "csd1", "cores": {"memory_centric": 1, "compute_centric": 2}},
        ],
        "tables": [
            {  # raw, hot set in dram, cold rows split over two devices' NAND
                "name": "t0",
                "rows": 300,
                "dim": 16,
                "order": {"kind": "hot_set", "hot_rows": [0, 1, 2, 3, 4, 5, 6, 7]},
                "bands": [
                    {"device": "csd0", "tier": "dram", "rows": [0, 8]},
                    {"device": "csd0", "tier": "nand", "rows": [8, 150]},
                    {"device": "csd1", "tier": "nand", "rows": [150, 300]},
                ],
            },
            {  # raw fp32, hotness order given inline, two bands on one tier (packed)
                "name": "t1",
                "rows": 50,
                "dim": 16,
                "order": {"kind": "hotness", "permutation": list(range(49, -1, -1))},
                "bands": [
                    {"device": "csd1", "tier": "dram", "rows": [0, 10]},
                    {"device": "csd1", "tier": "nand", "rows": [10, 30]},
                    {"device": "csd1", "tier": "dram", "rows": [30, 50]},
                ],
            },
            {  # TT in SRAM with prefix reuse
                "name": "t2",
                "rows": 1000,
                "dim": 16,
                "codec": {"kind": "tt", "ranks": [4, 6], "prefix_reuse": True},
                "bands": [{"device": "csd0", "tier": "sram", "rows": [0, 1000]}],
            },
            {  # INT4 row-wise hot rows in DRAM, raw fp32 cold rows in NAND
                "name": "t3",
                "rows": 64,
                "dim": 16,
                "codec": {"kind": "quant", "bits": 4},
                "bands": [
                    {"device": "csd1", "tier": "dram", "rows": [0, 16]},
                    {"device": "csd1", "tier": "nand", "rows": [16, 64], "codec": {"kind": "raw"}},
                ],
            },
            {  # hashing trick
                "name": "t4",
                "rows": 500,
                "dim": 16,
                "codec": {"kind": "hash", "buckets": 61},
                "bands": [{"device": "csd0", "tier": "dram", "rows": [0, 500]}],
            },
            {  # runtime hotness permutation, raw
                "name": "t5",
                "rows": 200,
                "dim": 16,
                "order": {"kind": "hotness", "permutation": hot_perm},
                "bands": [
                    {"device": "csd0", "tier": "dram", "rows": [0, 20]},
                    {"device": "csd1", "tier": "nand", "rows": [20, 200]},
                ],
            },
        ],
    }


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    p = tmp_path_factory.mktemp("v") / "t.trc"
    _write_trace(p)
    return p


def _perm():
    return np.random.default_rng(9).permutation(200).tolist()


def test_default_plan_is_bit_exact(trace):
    rep = verify_functional(trace)
    assert rep.passed and rep.batches == 3
    assert all(t.exact and t.max_abs_err == 0 for t in rep.tables)
    assert rep.dlrm["checked"] == "bit-exact" and rep.dlrm["bit_exact"]
    assert rep.dlrm["samples"] == 96


def test_sharded_mixed_codecs(trace):
    plan = plan_from_dict(_plan(_perm()))
    rep = verify_functional(trace, plan)
    by = {t.name: t for t in rep.tables}
    assert rep.passed, [t.failure for t in rep.tables]
    assert by["t0"].exact and by["t0"].max_abs_err == 0  # raw across devices/tiers: bit-exact
    assert by["t1"].exact and by["t1"].max_abs_err == 0
    assert not by["t2"].exact and by["t2"].max_abs_err < 1e-6  # TT: float rounding only
    # INT4 hot band: lossy, within tolerance, with an error well above float rounding
    assert not by["t3"].exact and by["t3"].max_abs_err > 1e-4 and by["t3"].worst_ratio <= 1
    assert by["t3"].codec == "quant+raw"
    assert rep.dlrm["checked"] == "reported" and rep.dlrm["max_abs_diff"] > 0


def test_weighted_and_mean_max_pooling(tmp_path):
    p = tmp_path / "w.trc"
    _write_trace(p, seed=4, batches=2, weights=True)
    plan = plan_from_dict(_plan(_perm()))
    assert verify_functional(p, plan).passed
    # max and mean pooling are defined without weights
    q = tmp_path / "nw.trc"
    _write_trace(q, seed=5, batches=2)
    for mode in ("mean", "max"):
        rep = verify_functional(q, plan, mode=mode)
        assert rep.passed, (mode, [t.failure for t in rep.tables])


class _OneRowWrong(Remapper):
    """A planted bug: the remapper sends one row to the wrong local address."""

    def __init__(self, plan, table, row, shift=1, **kw):
        super().__init__(plan, **kw)
        self.bad_table, self.bad_row, self.shift = table, row, shift

    def remap(self, table, rows):
        dev, tier, local = super().remap(table, rows)
        if self.tables[self.table_index(table)].name == self.bad_table:
            r = np.asarray(rows)
            local = local.copy()
            local[r == self.bad_row] += self.shift
        return dev, tier, local


def _hot_row(trace, t):
    from simrec.trace.format import read_trace

    idx = read_trace(trace).batch(0).table_indices(t)
    vals, counts = np.unique(idx, return_counts=True)
    return int(vals[np.argmax(counts)])


@pytest.mark.parametrize("table", ["t0", "t1", "t2", "t3", "t5"])
def test_planted_wrong_remap_of_one_row_is_caught(trace, table):
    plan = plan_from_dict(_plan(_perm()))
    t = int(table[1])
    row = _hot_row(trace, t)
    bug = _OneRowWrong(plan, table, row)
    rep = verify_functional(trace, plan, remapper=bug)
    assert not rep.passed
    by = {x.name: x for x in rep.tables}
    assert not by[table].passed and by[table].failure
    assert all(x.passed for x in rep.tables if x.name != table)
    # the right remapper passes the same plan
    assert verify_functional(trace, plan).passed


def test_planted_swap_that_stays_a_bijection_is_caught(trace):
    # swap two rows' local addresses in the same band: every row still has a unique address, so
    # only the values can reveal it
    plan = plan_from_dict(_plan(_perm()))
    row = _hot_row(trace, 0)
    other = 299 if row != 299 else 298

    class Swap(Remapper):
        def remap(self, table, rows):
            dev, tier, local = super().remap(table, rows)
            if self.table_index(table) == 0:
                r = np.asarray(rows)
                _, _, la = super().remap(table, np.array([row, other]))
                local = local.copy()
                local[r == row], local[r == other] = la[1], la[0]
            return dev, tier, local

    sw = Swap(plan)
    rep = verify_functional(trace, plan, remapper=sw)
    assert not rep.passed and not rep.tables[0].passed


def test_remap_out_of_store_is_reported_not_raised(trace):
    plan = plan_from_dict(_plan(_perm()))
    bug = _OneRowWrong(plan, "t4", _hot_row(trace, 4), shift=10_000)
    rep = verify_functional(trace, plan, remapper=bug)
    assert not rep.passed and "out of range" in rep.tables[4].failure


def test_runtime_permutation_required(trace):
    plan = plan_from_dict(_plan(None))
    with pytest.raises(ConfigError, match="no permutation"):
        FunctionalSystem(
            __import__("simrec.trace.format").trace.format.read_trace(trace).header, plan
        )
    rep = verify_functional(trace, plan, perms={"t5": np.asarray(_perm())})
    assert rep.passed


def test_criteo_sample_trace(repo_dir):
    path = repo_dir / "traces" / "criteo_sample.trc"
    if not path.exists():
        pytest.skip("traces/criteo_sample.trc is not built yet")
    rep = verify_functional(path)
    assert rep.passed and rep.dlrm["config"]["params"] == 475_985  # Kaggle MLPs, data.md §1.1
    assert sum(t.lookups for t in rep.tables) == 200 * 26


# -- CLI ------------------------------------------------------------------------------------------
@click.group(cls=SimrecGroup)
def _cli() -> None:
    pass


_cli.add_command(validate_command)


def test_cli(trace, tmp_path):
    r = CliRunner().invoke(_cli, ["validate", "--functional", "--trace", str(trace)])
    assert r.exit_code == 0 and "PASSED" in r.output and "bit-exact" in r.output
    pj = tmp_path / "plan.json"
    pj.write_text(json.dumps(_plan(_perm())))
    r = CliRunner().invoke(
        _cli, ["validate", "--functional", "--trace", str(trace), "--plan", str(pj), "--json"]
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["passed"] and d["device_source"] == "plan" and len(d["tables"]) == 6
    assert d["tables"][3]["codec"] == "quant+raw"


def test_cli_errors(trace, tmp_path):
    r = CliRunner().invoke(_cli, ["validate"])
    assert r.exit_code == 2 and "--functional" in r.output
    r = CliRunner().invoke(_cli, ["validate", "--functional"])
    assert r.exit_code == 2 and "--trace" in r.output
    bad = _plan(_perm())
    bad["tables"][0]["bands"][1]["rows"] = [9, 150]
    pj = tmp_path / "bad.json"
    pj.write_text(json.dumps(bad))
    r = CliRunner().invoke(
        _cli, ["validate", "--functional", "--trace", str(trace), "--plan", str(pj)]
    )
    assert r.exit_code == 2 and "bad.json" in r.output and "'t0'" in r.output
    assert "Traceback" not in r.output
    r = CliRunner().invoke(
        _cli, ["validate", "--functional", "--trace", str(tmp_path / "none.trc")]
    )
    assert r.exit_code == 2 and "not found" in r.output


def test_cli_hw_device_list(trace, tmp_path, repo_dir):
    hw = repo_dir / "hwconfigs" / "multi_gpu.yaml"
    pytest.importorskip("simrec.hw")
    if not hw.exists():
        pytest.skip("hwconfigs/multi_gpu.yaml is not there yet")
    d = _plan(_perm())
    d["devices"] = [{"name": "gpu0"}, {"name": "gpu1"}]
    for t in d["tables"]:
        for b in t["bands"]:
            b["device"] = {"csd0": "gpu0", "csd1": "gpu1"}[b["device"]]
    pj = tmp_path / "gpu.json"
    pj.write_text(json.dumps(d))
    args = ["validate", "--functional", "--trace", str(trace), "--plan", str(pj), "--json"]
    r = CliRunner().invoke(_cli, [*args, "--hw", str(hw)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["device_source"] == f"hw:{hw}"
    d["devices"][1]["name"] = "gpu9"
    for t in d["tables"]:
        for b in t["bands"]:
            b["device"] = "gpu0"
    pj.write_text(json.dumps(d))
    r = CliRunner().invoke(_cli, [*args, "--hw", str(hw)])
    assert r.exit_code == 2 and "'gpu9' is not in the hardware config" in r.output


def test_deterministic_outputs(trace, tmp_path):
    pj = tmp_path / "plan.json"
    pj.write_text(json.dumps(_plan(_perm())))
    args = ["validate", "--functional", "--trace", str(trace), "--plan", str(pj), "--json"]
    outs = [CliRunner().invoke(_cli, args).output for _ in range(2)]
    assert outs[0] == outs[1]
    p = plan_from_dict(_plan(_perm()))
    a, b = p.save(tmp_path / "a.json"), p.save(tmp_path / "b.json")
    assert a.read_bytes() == b.read_bytes()
    seed1 = CliRunner().invoke(_cli, [*args, "--seed", "1"]).output
    assert (
        json.loads(seed1)["tables"][3]["max_abs_err"]
        != json.loads(outs[0])["tables"][3]["max_abs_err"]
    )


def test_cli_runtime_hotness_from_trace_counts(trace, tmp_path):
    # a plan that ranks t5 by hotness but leaves the permutation to run time (as the MIP's plans
    # do): the CLI derives it from the trace's access counts
    pj = tmp_path / "rt.json"
    pj.write_text(json.dumps(_plan(None)))
    r = CliRunner().invoke(
        _cli, ["validate", "--functional", "--trace", str(trace), "--plan", str(pj)]
    )
    assert r.exit_code == 0, r.output
    assert "hotness order from the trace's access counts for 1 table(s): t5" in r.output
    from simrec.functional.verify import hotness_permutations
    from simrec.trace.format import read_trace

    rd = read_trace(trace)
    perm = hotness_permutations(rd, plan_from_dict(_plan(None)))["t5"]
    counts = sum(np.bincount(b.table_indices(5), minlength=200) for b in rd)
    assert (np.diff(counts[perm]) <= 0).all()  # hottest first
    assert sorted(perm.tolist()) == list(range(200))
