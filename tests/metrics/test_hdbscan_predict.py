"""The vectorised extension of an HDBSCAN fit against hdbscan's own per-point functions
(``approximate_predict`` and ``approximate_predict_scores``), point for point."""
from __future__ import annotations

import warnings

import hdbscan
import numpy as np
import pytest

from audit.metrics._hdbscan_predict import approximate_predict_all


def blobs(n, d, seed, centres=5, spread=1.0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d)) * 5
    lab = rng.integers(0, centres, n)
    return c[lab] + spread * rng.standard_normal((n, d)), lab


def reference(cl, q):
    lab, prob = hdbscan.approximate_predict(cl, q)
    return lab, prob, hdbscan.prediction.approximate_predict_scores(cl, q)


@pytest.mark.parametrize("seed,d,mcs,ms", [(0, 2, 30, 5), (1, 5, 20, None), (2, 10, 50, 10),
                                           (3, 3, 15, 1)])
def test_equals_hdbscan_point_for_point(seed, d, mcs, ms):
    x, _ = blobs(3000, d, seed)
    rng = np.random.default_rng(seed + 10)
    fit = rng.choice(3000, 1500, replace=False)
    cl = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=ms, prediction_data=True).fit(x[fit])
    q = np.vstack([x[np.setdiff1d(np.arange(3000), fit)],
                   x[fit[:40]],                                 # exact duplicates of fitted
                   rng.uniform(x.min(), x.max(), size=(60, d))])  # far-off noise
    want = reference(cl, q)
    got = approximate_predict_all(cl, q, n_jobs=2)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[2], want[2], rtol=0, atol=1e-12)
    assert len(set(got[0].tolist()) - {-1}) >= 2          # real clusters were placed
    assert (got[0][-60:] == -1).mean() > 0.5              # most far-off points are noise


def test_planted_blobs_get_their_cluster_and_threads_do_not_matter():
    x, truth = blobs(6000, 4, 5, centres=4, spread=0.5)
    fit = np.arange(0, 6000, 3)
    cl = hdbscan.HDBSCAN(min_cluster_size=40, prediction_data=True).fit(x[fit])
    rest = np.setdiff1d(np.arange(6000), fit)
    one = approximate_predict_all(cl, x[rest], n_jobs=1)
    two = approximate_predict_all(cl, x[rest], n_jobs=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    lab = one[0]
    # every planted blob maps to one predicted cluster, nearly every point placed
    for t in range(4):
        vals, counts = np.unique(lab[truth[rest] == t], return_counts=True)
        assert counts.max() / counts.sum() > 0.97 and vals[counts.argmax()] >= 0
    assert (one[1][lab >= 0] > 0).all() and (one[1][lab >= 0] <= 1).all()


def test_no_clusters_and_bad_input():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cl = hdbscan.HDBSCAN(min_cluster_size=39, prediction_data=True).fit(x)
    assert cl.prediction_data_.cluster_tree.shape[0] == 0        # one root, no clusters
    lab, prob, score = approximate_predict_all(cl, x[:5])
    assert (lab == -1).all() and (prob == 0).all() and (score == 1).all()
    with pytest.raises(ValueError, match="points must be"):
        approximate_predict_all(cl, x[:, :1])
    plain = hdbscan.HDBSCAN(min_cluster_size=5).fit(x)
    with pytest.raises(ValueError, match="prediction data"):
        approximate_predict_all(plain, x)
