"""Tests for audit.metrics._outliers: the isolation ratio against a direct computation,
the bootstrap interval against a loop over resamples, the null maximum's behaviour."""
from __future__ import annotations

import numpy as np
import pytest

from audit.metrics import knn, knn_distance_score
from audit.metrics._outliers import (bootstrap_ratio_ci, isolation_ratio, null_isolation_max,
                                     radial_profile)


def test_isolation_ratio_is_score_over_neighbours_median():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    d, nb = knn(x, k=8)
    s = knn_distance_score(d)
    want = [s[i] / np.median([s[j] for j in nb[i]]) for i in range(len(x))]
    assert isolation_ratio(s, nb) == pytest.approx(want)


def test_bootstrap_matches_a_loop_over_resamples():
    rng = np.random.default_rng(1)
    scores = rng.random(50) + 0.5
    nb = np.array([rng.choice(np.delete(np.arange(50), i), 6, replace=False)
                   for i in range(50)])
    rows = np.array([3, 17, 40])
    got = bootstrap_ratio_ci(scores, nb, rows, random_state=7, n_boot=300, confidence=0.9)
    pick = np.random.default_rng(7).integers(0, 6, size=(300, 3, 6))
    want = []
    for j, r in enumerate(rows):
        ratios = [scores[r] / np.median(scores[nb[r]][pick[b, j]]) for b in range(300)]
        want.append([np.quantile(ratios, 0.05), np.quantile(ratios, 0.95)])
    assert got == pytest.approx(np.array(want))
    # a Generator is used as is (the check's named stream), so equal seeds draw alike
    again = bootstrap_ratio_ci(scores, nb, rows, random_state=np.random.default_rng(7),
                               n_boot=300, confidence=0.9)
    assert again == pytest.approx(got)
    assert bootstrap_ratio_ci(scores, nb, np.array([], int)).shape == (0, 2)


def test_radial_profile_trims_the_far_tail_and_ignores_scale():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1000, 3))
    x[:5] *= 100                                           # five far points
    r = radial_profile(x)
    assert len(r) == 990 and np.all(np.diff(r) >= 0) and r[-1] < 10
    assert radial_profile(x * [1, 10, 100]) == pytest.approx(r, rel=1e-9)


def test_null_maximum_is_the_largest_ratio_of_gaussian_samples():
    a = null_isolation_max(400, 2.4, 10, random_state=3)
    assert a == null_isolation_max(400, 2.4, 10, random_state=3)
    rng, want = np.random.default_rng(3), 0.0
    for _ in range(2):                                    # reps=2 samples, 2 dimensions
        d, nb = knn(rng.standard_normal((400, 2)).astype(np.float32), k=10)
        want = max(want, float(isolation_ratio(d.mean(1), nb).max()))
    assert a == want and 1.0 < a < 10.0
    # a heavy-tailed radial profile raises the null maximum
    rng = np.random.default_rng(4)
    heavy = radial_profile(rng.standard_t(2, size=(2000, 2)))
    assert null_isolation_max(2000, 2.0, 10, random_state=5, radii=heavy) >= \
        null_isolation_max(2000, 2.0, 10, random_state=5)


@pytest.mark.parametrize("call", [
    lambda: isolation_ratio(np.ones((3, 1)), np.zeros((3, 1), int)),
    lambda: isolation_ratio(np.ones(3), np.full((3, 1), 3)),
    lambda: isolation_ratio(np.array(["a", "b"]), np.zeros((2, 1), int)),
    lambda: bootstrap_ratio_ci(np.ones(3), np.zeros((3, 1), int), np.array([5])),
    lambda: bootstrap_ratio_ci(np.ones(3), np.zeros((3, 1), int), np.array([0]), n_boot=0),
    lambda: bootstrap_ratio_ci(np.ones(3), np.zeros((3, 1), int), np.array([0]),
                               confidence=1.0),
    lambda: radial_profile(np.ones((1, 2))),
    lambda: radial_profile(np.ones((5, 2)), trim=1.0),
    lambda: null_isolation_max(1, 2.0, 5),
    lambda: null_isolation_max(100, 2.0, 0),
])
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()
