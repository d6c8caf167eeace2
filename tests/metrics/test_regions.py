"""Tests for audit.metrics._regions: the chance rate, the depth test, depths and regions
against brute-force references and simulation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from audit.metrics._regions import (chance_uncovered_rate, depth_pvalue, gap_regions,
                                    uncovered_depth)


def test_chance_rate_is_the_beta_integral():
    # E[(1 - U)^N], U ~ Beta(k, M - k), by quadrature
    from scipy import integrate, stats
    m, n, k = 60, 40, 3
    val, _ = integrate.quad(lambda u: (1 - u) ** n * stats.beta.pdf(u, k, m - k), 0, 1)
    assert chance_uncovered_rate(m, n, k) == pytest.approx(val, rel=1e-9)
    assert chance_uncovered_rate(m, 0, k) == 1.0
    assert math.isnan(chance_uncovered_rate(3, 10, 3))


def test_chance_rate_matches_simulation_of_the_ball():
    # the k-th neighbour's ball among M reference points holds none of N others
    rng = np.random.default_rng(0)
    m, n, k, hits, reps = 30, 20, 2, 0, 4000
    for _ in range(reps):
        pts = rng.random(m + n)
        d = np.abs(pts - pts[0])
        radius = np.sort(d[:m])[k]
        hits += not (d[m:] < radius).any()
    assert hits / reps == pytest.approx(chance_uncovered_rate(m, n, k), abs=0.02)


def test_depth_pvalue_is_the_hypergeometric_ratio():
    for m, n, d in [(10, 5, 3), (50, 80, 4), (7, 1, 6)]:
        assert depth_pvalue([d], m, n)[0] == pytest.approx(
            math.comb(m - 1, d) / math.comb(m - 1 + n, d), rel=1e-9)
    assert depth_pvalue([0, 10], 5, 5).tolist() == [1.0, 0.0]


def test_uncovered_depth_matches_brute_force():
    rng = np.random.default_rng(2)
    ref, data = rng.standard_normal((80, 3)), rng.standard_normal((50, 3)) + 1.5
    rows = np.arange(0, 80, 7)
    dn = cdist(ref[rows], data).min(1)
    dr = cdist(ref[rows], ref)
    want = [int(((dr[i] < dn[i]).sum() - 1)) for i in range(len(rows))]
    assert uncovered_depth(ref, data, rows, max_depth=100).tolist() == want
    # a known nearest distance skips the search; the cap bounds the count
    assert uncovered_depth(ref, None, rows, max_depth=100, nearest=dn).tolist() == want
    assert max(uncovered_depth(ref, data, rows, max_depth=5).tolist()) <= 5


def _components(unc, graph):
    """Reference: union-find over the uncovered points' edges."""
    parent = list(range(len(unc)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i
    for i in np.flatnonzero(unc):
        for j in graph[i]:
            if unc[j]:
                parent[find(i)] = find(j)
    return [find(i) if unc[i] else -1 for i in range(len(unc))]


def test_gap_regions_are_the_connected_components():
    rng = np.random.default_rng(3)
    graph = rng.integers(0, 200, (200, 2))
    unc = rng.random(200) < 0.4
    got = gap_regions(unc, graph)
    want = _components(unc, graph)
    assert (got == -1).tolist() == [w == -1 for w in want]
    pairs = [(a, b) for a in range(200) for b in range(a + 1, 200) if unc[a] and unc[b]]
    assert all((got[a] == got[b]) == (want[a] == want[b]) for a, b in pairs)
    assert gap_regions(np.zeros(3, bool), np.zeros((3, 1), int)).tolist() == [-1, -1, -1]


@pytest.mark.parametrize("call", [
    lambda: chance_uncovered_rate(0, 10, 1),
    lambda: chance_uncovered_rate(10, -1, 1),
    lambda: chance_uncovered_rate(10, 10, 0),
    lambda: depth_pvalue([-1], 5, 5),
    lambda: depth_pvalue([np.nan], 5, 5),
    lambda: uncovered_depth(np.zeros((4, 2)), np.zeros((2, 2)), np.array([4]), max_depth=3),
    lambda: uncovered_depth(np.zeros((4, 2)), None, np.array([0]), max_depth=3,
                            nearest=[1.0, 2.0]),
    lambda: uncovered_depth(np.zeros((4, 2)), np.zeros((2, 2)), np.array([0]), max_depth=0),
    lambda: gap_regions(np.ones(3, bool), np.zeros((2, 1), int)),
])
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()
