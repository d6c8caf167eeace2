"""The exact kNN gives identical results whichever library multiplies (issue 17, item 1).

``LATENT_AUDIT_GEMM`` forces numpy (OpenBLAS, norms folded into the product) or torch
(addmm); the float32 scores differ in their last bits between the two, but only screen
candidates: the exact float64 re-ranking decides, ties by the lower index.
"""
from __future__ import annotations

import numpy as np
import pytest

from audit.metrics import _neighbors, knn


def brute(x, k, y=None):
    """Every pair's float64 distance (the same sum as the search's re-ranking), sorted by
    (distance, index)."""
    self_search = y is None
    y = x if self_search else y
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    d = np.empty((len(x), len(y)))
    for r in range(len(x)):
        diff = x64[r] - y64
        d[r] = np.sqrt(np.einsum("md,md->m", diff, diff))
    if self_search:
        np.fill_diagonal(d, np.inf)
    idx = np.lexsort((np.broadcast_to(np.arange(d.shape[1]), d.shape), d), axis=1)[:, :k]
    return np.take_along_axis(d, idx, 1), idx


def planted(n, dim, seed, *, grid=False):
    """Random points with exact duplicates and exact ties planted: copies of some rows,
    and points mirrored about others (equal distances to the centre)."""
    rng = np.random.default_rng(seed)
    if grid:                                   # integer grid: ties everywhere
        x = rng.integers(0, 4, size=(n, dim)).astype(np.float32)
    else:
        x = (rng.standard_normal((n, dim)) * rng.choice([0.5, 3.0], size=(n, 1))).astype(
            np.float32)
    src = rng.choice(n, n // 10, replace=False)
    dst = rng.choice(n, n // 10, replace=False)
    x[dst] = x[src]                            # exact duplicates
    c = rng.choice(n, 5, replace=False)
    for j, ci in enumerate(c):                 # pairs mirrored about a centre: exact ties
        off = rng.integers(-3, 4, size=dim).astype(np.float32) / 4
        lo = (j * 2 + 11) % n
        x[lo] = x[ci] + off
        x[(lo + n // 2) % n] = x[ci] - off
    return x


CASES = [  # n, dim, k, tile_size, block_size, grid
    (300, 5, 6, None, None, False),            # one piece (direct)
    (700, 9, 15, None, 64, True),              # one piece, ties everywhere
    (1500, 7, 10, 256, 100, False),            # tiled, odd d
    (2000, 3, 6, 128, 37, True),               # tiled, crowded rows redone
    (1200, 64, 5, 128, None, False),           # tiled, the benchmark's d
]


def _run(monkeypatch, lib, *args, **kw):
    monkeypatch.setenv("LATENT_AUDIT_GEMM", lib)
    assert _neighbors.gemm_library() == lib
    return knn(*args, **kw)


@pytest.mark.parametrize("n,dim,k,tile,block,grid", CASES)
def test_knn_self_search_identical_both_libraries(monkeypatch, n, dim, k, tile, block, grid):
    x = planted(n, dim, seed=n + dim, grid=grid)
    kw = {"k": k, "tile_size": tile, "block_size": block}
    dt, it = _run(monkeypatch, "torch", x, **kw)
    dn, in_ = _run(monkeypatch, "numpy", x, **kw)
    np.testing.assert_array_equal(in_, it)
    np.testing.assert_array_equal(dn, dt)
    bd, bi = brute(x, k)
    np.testing.assert_array_equal(in_, bi)
    np.testing.assert_array_equal(dn, bd)
    assert not (in_ == np.arange(n)[:, None]).any()


@pytest.mark.parametrize("n,dim,k,tile,block,grid", CASES)
def test_knn_cross_search_identical_both_libraries(monkeypatch, n, dim, k, tile, block, grid):
    y = planted(n, dim, seed=3 * n + dim, grid=grid)
    rng = np.random.default_rng(n)
    x = planted(n // 3, dim, seed=n, grid=grid)
    x[:20] = y[rng.choice(n, 20, replace=False)]      # queries that are reference points
    kw = {"y": y, "k": k, "tile_size": tile, "block_size": block}
    dt, it = _run(monkeypatch, "torch", x, **kw)
    dn, in_ = _run(monkeypatch, "numpy", x, **kw)
    np.testing.assert_array_equal(in_, it)
    np.testing.assert_array_equal(dn, dt)
    bd, bi = brute(x, k, y)
    np.testing.assert_array_equal(in_, bi)
    np.testing.assert_array_equal(dn, bd)
    assert (dn[:20, 0] == 0).all()


def test_numpy_scores_are_within_the_screen_bound():
    """The folded numpy product and torch's addmm agree to within the float32 error the
    search allows for (the margin that makes the screen exact)."""
    rng = np.random.default_rng(0)
    dim = 33
    q = (rng.standard_normal((50, dim)) * 10).astype(np.float32)
    y = (rng.standard_normal((400, dim)) * 10).astype(np.float32)
    import torch
    y_sq = torch.from_numpy((y.astype(np.float64) ** 2).sum(1).astype(np.float32))
    exact = (y.astype(np.float64) ** 2).sum(1)[None, :] - 2 * q.astype(np.float64) @ y.T
    tol = ((2 * dim + 8) * 2.0 ** -24
           * (np.linalg.norm(q.astype(np.float64), axis=1)[:, None]
              + np.linalg.norm(y.astype(np.float64), axis=1).max()) ** 2)
    for lib in ("numpy", "torch"):
        g = _neighbors._Gemm(lib, y, y_sq)
        s = g.scores(g.prepare(q), 0, len(y)).numpy().astype(np.float64)
        assert (np.abs(s - exact) <= tol).all()


def test_calibration_names_a_library(monkeypatch):
    name = _neighbors.calibrate_gemm(rows=64, cols=512, products=1, repeats=1)
    assert name in ("numpy", "torch")
    assert set(_neighbors._GEMM_RATES) == {"numpy", "torch"}
    assert all(r > 0 for r in _neighbors._GEMM_RATES.values())
    monkeypatch.delenv("LATENT_AUDIT_GEMM", raising=False)
    assert _neighbors.gemm_library() in ("numpy", "torch")
    assert _neighbors.gemm_library() == _neighbors.gemm_library()   # cached
    monkeypatch.setenv("LATENT_AUDIT_GEMM", "auto")
    assert _neighbors.gemm_library() in ("numpy", "torch")
    monkeypatch.setenv("LATENT_AUDIT_GEMM", "cuda")
    with pytest.raises(ValueError, match="LATENT_AUDIT_GEMM"):
        _neighbors.gemm_library()


def test_numpy_path_restores_blas_threads(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info()
              if i["user_api"] == "blas"]
    x = planted(1500, 8, seed=1)
    _run(monkeypatch, "numpy", x, k=5, tile_size=256)
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info()
             if i["user_api"] == "blas"]
    assert after == before
