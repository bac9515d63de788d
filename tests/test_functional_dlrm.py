"""DLRM forward: structure, parameter count and an independent loop computation."""

from __future__ import annotations

import numpy as np
import pytest

from simrec.errors import SimrecError
from simrec.functional.dlrm import DLRM, DLRMConfig, dot_interaction


def test_kaggle_config():
    c = DLRMConfig.criteo_kaggle()
    # data.md §1.1: bottom 13-512-256-64-16, top 367-512-256-1; §1.3: MLP = 475,985 params
    assert c.top_layers == (367, 512, 256, 1)
    assert c.num_params == 475_985


def test_dot_interaction_against_loops():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    pooled = [rng.standard_normal((3, 4)) for _ in range(3)]
    got = dot_interaction(x, pooled)
    feats = [x, *pooled]
    for s in range(3):
        want = list(x[s])
        for i in range(4):
            for j in range(i):
                want.append(float(feats[i][s] @ feats[j][s]))
        np.testing.assert_allclose(got[s], want)


def test_forward_against_plain_loop():
    cfg = DLRMConfig(bottom=(5, 8, 4), top=(6, 1), num_tables=2)
    m = DLRM(cfg, seed=3)
    rng = np.random.default_rng(1)
    dense = rng.random((4, 5)).astype(np.float32)
    pooled = [rng.standard_normal((4, 4)).astype(np.float32) for _ in range(2)]
    got = m.forward(dense, pooled)
    for s in range(4):
        h = dense[s].astype(np.float64)
        for w, b in m.bottom:
            h = np.maximum(h @ w + b, 0)
        f = [h, pooled[0][s], pooled[1][s]]
        z = list(h) + [f[1] @ f[0], f[2] @ f[0], f[2] @ f[1]]
        z = np.array(z)
        w, b = m.top[0]
        z = np.maximum(z @ w + b, 0)
        w, b = m.top[1]
        p = 1 / (1 + np.exp(-(z @ w + b)[0]))
        assert got[s] == pytest.approx(p, rel=1e-5)
    assert got.dtype == np.float32 and ((got > 0) & (got < 1)).all()


def test_seeded_and_deterministic():
    cfg = DLRMConfig(bottom=(5, 8, 4), top=(6, 1), num_tables=2)
    a, b, c = DLRM(cfg, 1), DLRM(cfg, 1), DLRM(cfg, 2)
    assert np.array_equal(a.top[0][0], b.top[0][0])
    assert not np.array_equal(a.top[0][0], c.top[0][0])


def test_bad_shapes():
    m = DLRM(DLRMConfig(bottom=(5, 4), top=(1,), num_tables=1), 0)
    with pytest.raises(SimrecError, match="dense"):
        m.forward(np.zeros((2, 4)), [np.zeros((2, 4))])
    with pytest.raises(SimrecError, match="tables"):
        m.forward(np.zeros((2, 5)), [])
    with pytest.raises(SimrecError, match="dim"):
        m.forward(np.zeros((2, 5)), [np.zeros((2, 3))])
