"""Tests for audit.metrics._duplicates (the chance rate against simulated Poisson points)
and audit.metrics._stats.poisson_critical_count (against a scan of the Poisson tail)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from audit.metrics import knn
from audit.metrics._duplicates import (local_spacing, near_duplicate_chance_rate,
                                       near_duplicate_mask)
from audit.metrics._stats import poisson_critical_count


@pytest.mark.parametrize("dim,c", [(1, 0.3), (2, 0.5), (3, 0.7)])
def test_chance_rate_matches_simulated_poisson_points(dim, c):
    # P(nearest-neighbour distance < c * the median nearest-neighbour distance)
    rng = np.random.default_rng(dim)
    x = rng.random((20000, dim))
    d, nb = knn(x, k=10)
    inner = np.all((x > 0.1) & (x < 0.9), axis=1)           # away from the edges
    frac = near_duplicate_mask(d[:, 0], local_spacing(d[:, 0], nb), c)[inner].mean()
    assert frac == pytest.approx(near_duplicate_chance_rate(c, dim), rel=0.15)


def test_local_spacing_and_mask_by_hand():
    nn = np.array([0.0, 1.0, 2.0, 4.0])
    nb = np.array([[1, 2], [2, 3], [0, 3], [1, 2]])
    assert local_spacing(nn, nb).tolist() == [1.5, 3.0, 2.0, 1.5]
    assert near_duplicate_mask(nn, np.array([1.0, 100.0, 1.0, 1.0]), 0.5).tolist() == \
        [True, True, False, False]
    assert near_duplicate_chance_rate(0.5, float("nan")) == near_duplicate_chance_rate(0.5, 1)


@pytest.mark.parametrize("expected,level", [(0.5, 0.01), (3.0, 0.05), (40.0, 0.001),
                                            (1e-4, 0.005)])
def test_critical_count_is_the_first_significant_count(expected, level):
    scan = next(o for o in range(1, 10_000) if stats.poisson.sf(o - 1, expected) <= level)
    assert poisson_critical_count(expected, level) == scan


@pytest.mark.parametrize("call", [
    lambda: local_spacing(np.ones(3), np.full((3, 1), 3)),
    lambda: local_spacing(np.ones((3, 1)), np.zeros((3, 1), int)),
    lambda: near_duplicate_mask(np.ones(3), np.ones(2), 0.1),
    lambda: near_duplicate_mask(np.ones(3), np.ones(3), 1.0),
    lambda: near_duplicate_chance_rate(0.0, 2.0),
    lambda: poisson_critical_count(-1.0, 0.01),
    lambda: poisson_critical_count(1.0, 0.0),
])
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()
