"""Tests for audit.metrics._contingency: expected tables against scipy, iterative
proportional fitting keeps margins and odds ratios, the cell test is Poisson's."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.stats.contingency import expected_freq

from audit.metrics._contingency import cell_deficit_pvalues, expected_counts, fit_margins


def test_independence_is_scipys_expected_frequencies():
    obs = np.array([[10, 3, 7], [2, 8, 20]])
    assert expected_counts(obs) == pytest.approx(expected_freq(obs))


def test_fit_margins_keeps_margins_and_odds_ratios():
    ref = np.array([[30.0, 10.0, 5.0], [5.0, 20.0, 30.0]])
    rows, cols = np.array([50.0, 150.0]), np.array([60.0, 70.0, 70.0])
    fit = fit_margins(ref, rows, cols)
    assert fit.sum(1) == pytest.approx(rows) and fit.sum(0) == pytest.approx(cols)

    def odds(t):
        return t[0, 0] * t[1, 1] / (t[0, 1] * t[1, 0]), t[0, 1] * t[1, 2] / (t[0, 2] * t[1, 1])
    assert odds(fit) == pytest.approx(odds(ref))
    # a reference association, fitted to observed totals
    obs = np.array([[40, 10], [5, 45]])
    assert expected_counts(obs, reference=ref[:, :2]).sum(1) == pytest.approx(obs.sum(1))


def test_cell_deficit_is_the_poisson_cdf():
    obs, exp = np.array([[1, 5], [0, 9]]), np.array([[8.0, 5.0], [0.0, 10.0]])
    p = cell_deficit_pvalues(obs, exp, max_ratio=0.5)
    assert p[0, 0] == pytest.approx(stats.poisson.cdf(1, 4.0))
    assert p[1, 1] == pytest.approx(stats.poisson.cdf(9, 5.0))
    assert np.isnan(p[1, 0])                       # nothing expected: not tested
    p = cell_deficit_pvalues(obs, exp, max_ratio=0.5, testable=[[False, True], [True, True]])
    assert np.isnan(p[0, 0]) and np.isfinite(p[0, 1])


@pytest.mark.parametrize("call", [
    lambda: fit_margins(np.ones(3), np.ones(3), np.ones(1)),
    lambda: fit_margins(np.ones((2, 2)), np.ones(3), np.ones(2)),
    lambda: fit_margins(-np.ones((2, 2)), np.ones(2), np.ones(2)),
    lambda: fit_margins(np.ones((2, 2)), np.ones(2), np.ones(2), iterations=0),
    lambda: expected_counts(np.ones((2, 2)), reference=np.ones((2, 3))),
    lambda: cell_deficit_pvalues(np.ones((2, 2)), np.ones((2, 2)), max_ratio=0),
    lambda: cell_deficit_pvalues(np.ones((2, 2)), np.ones((2, 2)), max_ratio=1.5),
    lambda: cell_deficit_pvalues(np.ones((2, 2)), np.ones((1, 2)), max_ratio=0.5),
])
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()
