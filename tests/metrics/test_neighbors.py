"""Blocked kNN against brute force (ties, duplicates), TwoNN, and the shared statistics."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

from audit.metrics import (benjamini_hochberg, knn, knn_distance_score, poisson_deficit_pvalue,
                           poisson_excess_pvalue, twonn_dimension, wilson_interval)


def brute(x, k, y=None):
    self_search = y is None
    y = x if self_search else y
    d = cdist(x.astype(np.float64), y.astype(np.float64))
    if self_search:
        np.fill_diagonal(d, np.inf)
    idx = np.lexsort((np.broadcast_to(np.arange(d.shape[1]), d.shape), d), axis=1)[:, :k]
    return np.take_along_axis(d, idx, 1), idx


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 5, 15])
def test_knn_matches_brute_force(seed, k):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((700, 9)).astype(np.float32)
    d, i = knn(x, k=k, block_size=64)
    bd, bi = brute(x, k)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-6, atol=1e-6)


def test_knn_ties_and_duplicates_break_by_index():
    # integer grid: many exact ties; plus exact duplicates of some rows
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(400, 3)).astype(np.float32)
    x[50] = x[10]
    d, i = knn(x, k=6, block_size=37)
    bd, bi = brute(x, 6)
    np.testing.assert_array_equal(d, bd)
    np.testing.assert_array_equal(i, bi)
    # a point is never its own neighbour, but its exact copy is, at distance 0
    assert not (i == np.arange(len(x))[:, None]).any()
    assert d[10, 0] == 0 and 50 in i[10]


def test_knn_cross_search_and_errors():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((100, 4)).astype(np.float32)
    y = rng.standard_normal((80, 4)).astype(np.float32)
    d, i = knn(x, k=80, y=y)
    bd, bi = brute(x, 80, y)
    np.testing.assert_allclose(d, bd, rtol=1e-12)
    # indices agree except where two distances differ only by float64 rounding
    diff = i != bi
    assert diff.sum() <= 4
    assert np.all(np.abs(np.diff(bd, axis=1))[diff[:, 1:] | diff[:, :-1]] < 1e-12)
    with pytest.raises(ValueError, match="k must be <= 99"):
        knn(x, k=100)
    with pytest.raises(ValueError, match="4 features but y has 3"):
        knn(x, k=1, y=y[:, :3])
    with pytest.raises(ValueError, match="NaN or Inf"):
        knn(np.full((5, 2), np.nan), k=1)


@pytest.mark.parametrize("dim", [2, 5, 8])
def test_twonn_recovers_dimension_of_embedded_manifold(dim):
    rng = np.random.default_rng(dim)
    z = rng.random((3000, dim))
    q = np.linalg.qr(rng.standard_normal((20, 20)))[0][:, :dim]
    d, _ = knn(z @ q.T, k=2)
    assert twonn_dimension(d) == pytest.approx(dim, rel=0.15)


def test_twonn_undefined_is_nan_with_warning():
    with pytest.warns(RuntimeWarning):
        assert np.isnan(twonn_dimension(np.zeros((10, 2))))


def test_knn_distance_score():
    np.testing.assert_allclose(knn_distance_score([[1, 2, 3], [0, 0, 3]]), [2.0, 1.0])


@pytest.mark.parametrize("seed", range(5))
def test_bh_matches_scipy(seed):
    p = np.random.default_rng(seed).random(200) ** 3
    rej, q = benjamini_hochberg(p, alpha=0.05)
    np.testing.assert_allclose(q, stats.false_discovery_control(p, method="bh"))
    assert (rej == (q <= 0.05)).all()


def test_bh_nan_and_validation():
    rej, q = benjamini_hochberg([0.01, np.nan, 0.02])
    assert rej.tolist() == [True, False, True] and np.isnan(q[1])
    assert q[0] == pytest.approx(0.02)
    with pytest.raises(ValueError):
        benjamini_hochberg([1.5])
    with pytest.raises(ValueError):
        benjamini_hochberg([0.1], alpha=0)


def _wilson_reference(x, n, z=1.959963984540054):
    """Wilson (1927) written out from the score-test inversion: solve
    (p̂ - p)^2 = z^2 p (1 - p) / n for p."""
    ph = x / n
    a = 1 + z * z / n
    b = -(2 * ph + z * z / n)
    c = ph * ph
    disc = np.sqrt(b * b - 4 * a * c)
    return ((-b - disc) / (2 * a), (-b + disc) / (2 * a))


@pytest.mark.parametrize("x,n", [(0, 10), (10, 10), (37, 120), (1, 1000), (500, 1000)])
def test_wilson_matches_score_test_inversion(x, n):
    lo, hi = wilson_interval(x, n)
    rlo, rhi = _wilson_reference(x, n)
    assert lo == pytest.approx(max(rlo, 0.0), abs=1e-12)
    assert hi == pytest.approx(min(rhi, 1.0), abs=1e-12)


def test_wilson_edge_cases():
    assert wilson_interval(0, 10)[1] == pytest.approx(3.8414588 / 13.8414588, abs=1e-7)
    assert all(np.isnan(wilson_interval(0, 0)))


def test_poisson_tail_pvalues():
    assert float(poisson_excess_pvalue(5, 2.0)) == pytest.approx(stats.poisson.sf(4, 2.0))
    assert float(poisson_deficit_pvalue(0, 10.0)) == pytest.approx(np.exp(-10))


def test_knn_leaves_torch_threads_alone(monkeypatch):
    """No global state: the search never sets torch's thread count (issue 13, item 8)."""
    import torch
    before = torch.get_num_threads()
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    x = np.random.default_rng(0).standard_normal((3000, 8)).astype(np.float32)
    d, i = knn(x, k=5, tile_size=256)            # the tiled path, several blocks
    assert not calls and torch.get_num_threads() == before
    bd, bi = brute(x, 5)
    np.testing.assert_array_equal(i, bi)
