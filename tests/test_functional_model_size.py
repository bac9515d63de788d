"""Whole-model size accounting vs published numbers (data.md §1.3, §4, §6; papers.md §C)."""

from __future__ import annotations

import pytest

from simrec.errors import ConfigError
from simrec.functional.model_size import (
    CRITEO_KAGGLE_ROWS,
    CRITEO_TB_HASH10M_ROWS,
    CRITEO_TB_MLPERF40M_ROWS,
    mlp_params,
    model_size,
    tt_largest,
)
from simrec.functional.spec import QuantSpec, TTSpec

K, T, M = CRITEO_KAGGLE_ROWS, CRITEO_TB_HASH10M_ROWS, CRITEO_TB_MLPERF40M_ROWS


def test_row_sums():
    assert sum(K) == 33_762_577 and max(K) == 10_131_227  # data.md §1.1
    assert sum(T) == 49_126_297  # data.md §1.3
    assert sum(M) == 204_184_588


def test_fp32_sizes():
    # data.md §6.1: 2.1608e9 B, 12.5763e9 B, 104.54e9 B = 97.36 GiB
    assert model_size(K, 16).embedding_bytes / 1e9 == pytest.approx(2.1608, abs=5e-5)
    assert model_size(T, 64).embedding_bytes / 1e9 == pytest.approx(12.5763, abs=5e-5)
    mlperf = model_size(M, 128).embedding_bytes
    assert mlperf / 1e9 == pytest.approx(104.54, abs=5e-3)
    assert mlperf / 2**30 == pytest.approx(97.36, abs=5e-3)


def test_quantised_sizes():
    # DQRM INT4 without scale overhead = fp32 / 8: 0.27 / 1.57 GB (papers.md §C.2, data.md §6.2)
    for rows, dim, fp32 in ((K, 16, 2.1608e9), (T, 64, 12.5763e9)):
        tab = model_size(rows, dim, QuantSpec(bits=4, granularity="table"))
        assert tab.embedding_payload_bytes == pytest.approx(fp32 / 8, rel=1e-4)
        assert tab.embedding_bytes - tab.embedding_payload_bytes == 26 * 4  # one fp32 scale/table
    # FBGEMM row-wise INT4 (fp16 scale + bias): 0.4052 / 1.7685 GB; INT8 (fp32): 0.8103 / 3.5371
    i4 = QuantSpec(bits=4, scale_dtype="float16")
    i8 = QuantSpec(bits=8, scale_dtype="float32")
    assert model_size(K, 16, i4).embedding_bytes / 1e9 == pytest.approx(0.4052, abs=5e-5)
    assert model_size(T, 64, i4).embedding_bytes / 1e9 == pytest.approx(1.7685, abs=5e-5)
    assert model_size(K, 16, i8).embedding_bytes / 1e9 == pytest.approx(0.8103, abs=5e-5)
    assert model_size(T, 64, i8).embedding_bytes / 1e9 == pytest.approx(3.5371, abs=5e-5)


@pytest.mark.parametrize(
    ("rows", "dim", "k", "r", "want"),
    [
        # data.md §4 whole-model compression table
        (K, 16, 7, 8, 221.9),
        (K, 16, 7, 32, 117.4),
        (K, 16, 7, 16, 187.0),
        (K, 16, 3, 8, 4.1),
        (K, 16, 5, 8, 58.3),
        (K, 16, 7, 64, 48.0),
        (T, 64, 7, 8, 112.5),
        (T, 64, 5, 32, 21.8),
        (T, 64, 3, 8, 2.6),
    ],
)
def test_tt_rec_compression(rows, dim, k, r, want):
    assert round(model_size(rows, dim, tt_largest(rows, k, [r, r])).compression, 1) == want


def test_mlp_params_and_compression_with_mlp():
    # data.md §1.1/§1.3: Kaggle bottom 13-512-256-64-16, top 367-512-256-1 = 475,985 params
    mp = mlp_params([13, 512, 256, 64, 16]) + mlp_params([367, 512, 256, 1])
    assert mp == 475_985
    # data.md §4: with the MLP, 7 tables at r = 8 gives 185.8x
    assert round(model_size(K, 16, tt_largest(K, 7, [8, 8]), mlp=mp).compression, 1) == 185.8


def test_mapping_codecs_and_frame():
    ms = model_size([100, 200], 8, {"b": QuantSpec(bits=8, scale_dtype="float32")}, ["a", "b"])
    assert [t.bytes for t in ms.tables] == [100 * 8 * 4, 200 * (8 + 8)]
    df = ms.to_frame()
    assert list(df["codec"]) == ["raw", "quant"]


def test_bad_inputs():
    with pytest.raises(ConfigError, match="dims"):
        model_size([1, 2], [4])
    with pytest.raises(ConfigError, match="codecs"):
        model_size([1, 2], 4, [QuantSpec()])
    with pytest.raises(ConfigError, match="not the embedding dim"):
        model_size([1000], 16, TTSpec(ranks=[2, 2], q_shapes=[2, 2, 2]))


def test_cli_model_size(repo_dir):
    import json

    import click
    from click.testing import CliRunner

    from simrec.cli import SimrecGroup
    from simrec.functional.cli import size_command

    @click.group(cls=SimrecGroup)
    def g() -> None:
        pass

    g.add_command(size_command)
    run = CliRunner().invoke
    r = run(g, ["model-size", "--dataset", "kaggle", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["embedding_bytes"] == 2_160_804_928  # 33,762,577 x 16 x 4
    r = run(g, ["model-size", "--dataset", "kaggle", "--codec", "int4-table", "--json"])
    assert round(json.loads(r.output)["embedding_payload_bytes"] / 1e9, 2) == 0.27  # DQRM
    r = run(g, ["model-size", "--dataset", "kaggle", "--tt-largest", "7", "--json"])
    assert round(json.loads(r.output)["compression_vs_fp32"], 1) == 221.9  # data.md §4
    r = run(g, ["model-size", "--dataset", "tb-hash10m", "--codec", "int8"])
    assert r.exit_code == 0 and "3.5371 GB" in r.output  # FBGEMM INT8 row-wise, data.md §6
    r = run(g, ["model-size", "--rows", "100,200", "--dim", "8", "--codec", "tt:4"])
    assert r.exit_code == 0 and "tt" in r.output
    r = run(g, ["model-size", "--dataset", "kaggle", "--codec", "zip"])
    assert r.exit_code == 2 and "not a codec" in r.output
    r = run(g, ["model-size"])
    assert r.exit_code == 2 and "exactly one" in r.output
    r = run(g, ["model-size", "--rows", "100", "--dim", "17", "--codec", "tt:4"])
    assert r.exit_code == 2 and "does not factor" in r.output
    trc = repo_dir / "traces" / "criteo_sample.trc"
    if trc.exists():
        r = run(g, ["model-size", "--trace", str(trc), "--json"])
        assert json.loads(r.output)["tables"][0]["name"] == "C1"
