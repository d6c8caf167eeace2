"""Tests for audit.metrics._coverage: prdc agreement, ties, blocking, planted gaps, errors."""
from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
from prdc import compute_prdc
from prdc.prdc import compute_nearest_neighbour_distances
from scipy.spatial.distance import cdist

from audit.metrics._coverage import (MISSING_GROUP, coverage, coverage_by_group, knn_radii,
                                     uncovered_mask)
from audit.metrics._stats import wilson_interval

KEYS = ("precision", "recall", "density", "coverage")


def _prdc(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the sizes
        out = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    return {key: float(out[key]) for key in KEYS}


def _exact_reference(real, fake, k):
    """prdc's formulas on distances computed pair by pair (scipy cdist): exact ties."""
    r_real = np.sort(cdist(real, real), axis=1)[:, k]
    r_fake = np.sort(cdist(fake, fake), axis=1)[:, k]
    dist = cdist(real, fake)
    inside = dist < r_real[:, None]
    return {
        "precision": float(inside.any(axis=0).mean()),
        "recall": float((dist < r_fake[None, :]).any(axis=1).mean()),
        "density": float((1.0 / k) * inside.sum(axis=0).mean()),
        "coverage": float(inside.any(axis=1).mean()),
    }


def _with_duplicates(rng, real, fake, *, frac=0.2, shared=0.1):
    """Repeat ``frac`` of the rows within each set and copy ``shared`` of fake from real."""
    real, fake = real.copy(), fake.copy()
    n, m = len(real), len(fake)
    real[rng.choice(n, int(frac * n), replace=False)] = real[rng.choice(n, int(frac * n))]
    fake[rng.choice(m, int(frac * m), replace=False)] = fake[rng.choice(m, int(frac * m))]
    fake[rng.choice(m, int(shared * m), replace=False)] = real[rng.choice(n, int(shared * m))]
    return real, fake


def _n_duplicate_rows(x):
    return len(x) - len(np.unique(x, axis=0))


def _assert_same_scores(ours, ref, tol=1e-12):
    assert set(ours) == set(KEYS)
    for key in KEYS:
        assert isinstance(ours[key], float)
        assert ours[key] == pytest.approx(ref[key], abs=tol), key


# --------------------------------------------------------------------------- prdc agreement

@pytest.mark.parametrize("seed, n_real, n_fake, dim", [(0, 120, 90, 8), (1, 80, 150, 2),
                                                       (2, 100, 101, 32)])
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_matches_prdc_on_gaussian_data(seed, n_real, n_fake, dim, k):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, dim))
    fake = rng.normal(size=(n_fake, dim)) * 1.2 + 0.3
    ours = coverage(real, fake, k=k)
    ref = _prdc(real, fake, k)
    _assert_same_scores(ours, ref)
    assert 0.0 < ours["precision"] < 1.0  # a non-degenerate case


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_matches_prdc_with_duplicated_points(seed, k):
    rng = np.random.default_rng(seed)
    real, fake = _with_duplicates(rng, rng.normal(size=(150, 8)),
                                  rng.normal(size=(120, 8)) * 1.1 + 0.2)
    assert _n_duplicate_rows(real) >= 15 and _n_duplicate_rows(fake) >= 10
    assert len(np.unique(np.vstack([real, fake]), axis=0)) < (
        len(np.unique(real, axis=0)) + len(np.unique(fake, axis=0)))  # shared rows exist
    _assert_same_scores(coverage(real, fake, k=k), _prdc(real, fake, k))


@pytest.mark.parametrize("seed, dim", [(0, 3), (1, 4), (2, 6)])
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_matches_prdc_on_integer_data_with_ties(seed, dim, k):
    rng = np.random.default_rng(seed)
    real = rng.integers(0, 3, size=(150, dim)).astype(float)
    fake = rng.integers(0, 4, size=(110, dim)).astype(float)
    ours = coverage(real, fake, k=k)
    _assert_same_scores(ours, _prdc(real, fake, k))
    _assert_same_scores(ours, _exact_reference(real, fake, k))
    # The data really is tie-heavy: some fake points sit exactly on a real radius, so
    # `<` and `<=` disagree and the strict convention is what is being checked.
    dist = cdist(real, fake)
    r_real = knn_radii(real, k=k)
    assert (dist == r_real[:, None]).any()


def test_integer_ties_use_the_strict_rule():
    # 1-D grid, k=1: every radius is 1 and the fake point 2.0 lies exactly on the radius
    # of the real points 1.0 and 3.0 while being a copy of the real point 2.0.
    real = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    fake = np.array([[2.0], [10.0], [11.0]])
    assert knn_radii(real, k=1).tolist() == [1.0] * 5
    out = coverage(real, fake, k=1)
    assert out["coverage"] == 0.2  # only the ball of 2.0 contains a fake point
    assert out["density"] == pytest.approx(1 / 3)  # fake 2.0 is in one ball, not three
    assert uncovered_mask(real, fake, k=1).tolist() == [True, True, False, True, True]
    _assert_same_scores(out, _prdc(real, fake, 1))


@pytest.mark.parametrize("k", [1, 2, 5])
def test_high_dimensional_duplicates_follow_exact_distances(k):
    # In high dimension the matrix-product expansion gives exact duplicates a distance of
    # ~1e-7 instead of 0, so prdc's answer can depend on rounding; ours must equal the
    # pair-by-pair (exact-tie) reference.
    rng = np.random.default_rng(2)
    real, fake = _with_duplicates(rng, rng.normal(size=(120, 300)),
                                  rng.normal(size=(100, 300)), frac=0.3, shared=0.3)
    assert _n_duplicate_rows(real) > 0
    _assert_same_scores(coverage(real, fake, k=k), _exact_reference(real, fake, k), tol=0.0)


@pytest.mark.parametrize("k", [1, 4, 10])
def test_knn_radii_match_prdc(k):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(90, 5))
    radii = knn_radii(x, k=k)
    assert radii.shape == (90,) and radii.dtype == np.float64
    np.testing.assert_allclose(radii, compute_nearest_neighbour_distances(x, k), rtol=1e-12)


def test_knn_radii_count_the_point_itself_and_duplicates():
    x = [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [3.0, 4.0]]
    assert knn_radii(x, k=1).tolist() == [0.0, 0.0, 0.0, 5.0]
    assert knn_radii(x, k=2).tolist() == [0.0, 0.0, 0.0, 5.0]
    assert knn_radii(x, k=3).tolist() == [5.0, 5.0, 5.0, 5.0]


def test_far_from_origin_data_keeps_exact_ties():
    # A large common offset makes ||a||^2 - 2ab + ||b||^2 cancel badly; ties must survive.
    rng = np.random.default_rng(4)
    real = rng.integers(0, 3, size=(60, 3)).astype(float) + 1e6
    fake = rng.integers(0, 3, size=(50, 3)).astype(float) + 1e6
    for k in (1, 3):
        _assert_same_scores(coverage(real, fake, k=k),
                            _exact_reference(real - 1e6, fake - 1e6, k), tol=0.0)


# --------------------------------------------------------------------------- blocking

def test_block_size_does_not_change_results():
    rng = np.random.default_rng(5)
    real, fake = _with_duplicates(rng, rng.normal(size=(103, 6)), rng.normal(size=(97, 6)))
    for k in (1, 5):
        assert coverage(real, fake, k=k, block_size=7) == coverage(real, fake, k=k,
                                                                   block_size=4096)
        assert coverage(real, fake, k=k, block_size=1) == coverage(real, fake, k=k)
        np.testing.assert_array_equal(uncovered_mask(real, fake, k=k, block_size=7),
                                      uncovered_mask(real, fake, k=k, block_size=4096))
        np.testing.assert_array_equal(knn_radii(real, k=k, block_size=7),
                                      knn_radii(real, k=k, block_size=4096))


# --------------------------------------------------------------------------- uncovered mask

@pytest.mark.parametrize("k", [1, 5])
def test_uncovered_mask_is_the_complement_of_coverage(k):
    rng = np.random.default_rng(6)
    real = rng.normal(size=(140, 4))
    fake = rng.normal(size=(60, 4)) + np.array([1.5, 0, 0, 0])
    mask = uncovered_mask(real, fake, k=k)
    assert mask.shape == (140,) and mask.dtype == bool
    assert 0 < mask.sum() < 140
    assert 1.0 - mask.mean() == pytest.approx(coverage(real, fake, k=k)["coverage"], abs=1e-15)
    # and point by point: uncovered <=> nearest fake point not strictly inside the ball
    expected = cdist(real, fake).min(axis=1) >= np.sort(cdist(real, real), axis=1)[:, k]
    np.testing.assert_array_equal(mask, expected)


def test_uncovered_mask_needs_no_fake_radii():
    # A single fake point is enough: only real radii are used.
    real = [[0.0], [1.0], [2.0], [3.0]]
    assert uncovered_mask(real, [[0.5]], k=1).tolist() == [False, False, True, True]


def _elongated_blobs(rng, n_per, dim=8, sep=10.0, thin=0.05):
    """Four Gaussian blobs 10 apart; spread 1 along the last axis and ``thin`` elsewhere."""
    centres = np.zeros((4, dim))
    centres[np.arange(4), np.arange(4)] = sep
    scale = np.full(dim, thin)
    scale[-1] = 1.0
    comp = np.repeat(np.arange(4), n_per)
    return centres[comp] + rng.normal(size=(4 * n_per, dim)) * scale, comp


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_gap_is_found(seed):
    # Coverage can only place a gap's edge to within about one k-NN radius, so the blobs
    # are elongated along the cut axis: the radius (~0.1) is small next to the removed
    # half (spread 1). With isotropic blobs in 8-D the radius is ~2 and most of a removed
    # half stays "covered" from across the cut.
    rng = np.random.default_rng(seed)
    reference, comp = _elongated_blobs(rng, 100)
    data, dcomp = _elongated_blobs(rng, 200)
    removed_half = (dcomp == 1) & (data[:, -1] > 0)
    data = data[(dcomp != 0) & ~removed_half]
    truth = (comp == 0) | ((comp == 1) & (reference[:, -1] > 0))

    found = uncovered_mask(reference, data, k=5)
    hits = int((found & truth).sum())
    assert hits / truth.sum() >= 0.9  # recall of the planted gap
    assert hits / found.sum() >= 0.9  # precision of the flagged points

    null_data, _ = _elongated_blobs(rng, 200)
    assert coverage(reference, null_data, k=5)["coverage"] > 0.9


def test_null_coverage_isotropic():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(300, 8))
    fake = rng.normal(size=(300, 8))
    out = coverage(real, fake, k=5)
    assert out["coverage"] > 0.9
    assert 0.7 < out["density"] < 1.3


# --------------------------------------------------------------------------- by group

def test_coverage_by_group_counts_and_intervals():
    uncovered = np.array([False, True, False, False, True, True, False, True])
    groups = np.array(["b", "a", "b", "a", None, "b", float("nan"), "a"], dtype=object)
    res = coverage_by_group(uncovered, groups)
    assert list(res) == ["a", "b", MISSING_GROUP]
    assert res["a"] == {"n": 3, "covered": 1, "coverage": 1 / 3, "ci": wilson_interval(1, 3)}
    assert res["b"]["n"] == 3 and res["b"]["covered"] == 2
    assert res[MISSING_GROUP]["n"] == 2 and res[MISSING_GROUP]["covered"] == 1
    assert sum(g["n"] for g in res.values()) == len(uncovered)
    lo, hi = res["b"]["ci"]
    assert lo < res["b"]["coverage"] < hi


def test_coverage_by_group_integer_and_float_labels():
    res = coverage_by_group([0, 1, 0, 0], np.array([2, 10, 2, 10]))
    assert list(res) == [2, 10]
    assert all(type(key) is int for key in res)
    assert res[10]["coverage"] == 0.5 and res[2]["coverage"] == 1.0
    res = coverage_by_group([True, False, False], [1.0, math.nan, 1.0])
    assert list(res) == [1.0, MISSING_GROUP]
    assert res[1.0]["covered"] == 1 and res[MISSING_GROUP]["covered"] == 1


def test_coverage_by_group_unsortable_labels_keep_first_appearance():
    res = coverage_by_group([False, False, True], np.array(["x", 3, "x"], dtype=object))
    assert list(res) == ["x", 3]
    assert res["x"]["n"] == 2


def test_coverage_by_group_confidence_widens_interval():
    narrow = coverage_by_group([False] * 6 + [True] * 4, ["g"] * 10, confidence=0.5)["g"]["ci"]
    wide = coverage_by_group([False] * 6 + [True] * 4, ["g"] * 10, confidence=0.99)["g"]["ci"]
    assert wide[0] < narrow[0] and narrow[1] < wide[1]


@pytest.mark.parametrize("uncovered, groups, match", [
    ([[True, False]], ["a", "b"], "uncovered must be 1-D"),
    ([0.5, 1.0], ["a", "b"], "boolean"),
    (["yes", "no"], ["a", "b"], "boolean"),
    ([True, False], ["a"], "groups has 1 entries, expected 2"),
    ([True, False], [["a", "b"]], "groups must be 1-D"),
    ([True, False], np.array(["<missing>", None], dtype=object), "reserved"),
])
def test_coverage_by_group_rejects_bad_input(uncovered, groups, match):
    with pytest.raises(ValueError, match=match):
        coverage_by_group(uncovered, groups)


# --------------------------------------------------------------------------- errors

_RNG = np.random.default_rng(8)
_REAL = _RNG.normal(size=(6, 3))
_FAKE = _RNG.normal(size=(4, 3))
_NAN = _REAL.copy()
_NAN[2, 1] = np.nan
_INF = _FAKE.copy()
_INF[0, 0] = np.inf


@pytest.mark.parametrize("call, match", [
    # k out of range: must be >= 1 and < the size of every set whose radii are needed
    (lambda: coverage(_REAL, _FAKE, k=0), "k must be >= 1, got 0"),
    (lambda: coverage(_REAL, _FAKE, k=-2), "k must be >= 1"),
    (lambda: coverage(_REAL, _FAKE, k=6), r"k=6 .*real has 6"),
    (lambda: coverage(_REAL, _FAKE, k=4), r"k=4 .*fake has 4"),
    (lambda: coverage(_REAL, _FAKE, k=2.0), "k must be an integer"),
    (lambda: coverage(_REAL, _FAKE, k=True), "k must be an integer"),
    (lambda: uncovered_mask(_REAL, _FAKE, k=6), r"k=6 .*real has 6"),
    (lambda: knn_radii(_REAL, k=6), r"k=6 .*x has 6"),
    (lambda: knn_radii(_REAL, k=0), "k must be >= 1"),
    # block_size
    (lambda: coverage(_REAL, _FAKE, k=1, block_size=0), "block_size must be >= 1"),
    (lambda: uncovered_mask(_REAL, _FAKE, block_size=2.5), "block_size must be an integer"),
    (lambda: knn_radii(_REAL, k=1, block_size=-1), "block_size must be >= 1"),
    # non-finite values
    (lambda: coverage(_NAN, _FAKE, k=1), "real contains NaN or Inf in 1 rows"),
    (lambda: coverage(_REAL, _INF, k=1), "fake contains NaN or Inf in 1 rows"),
    (lambda: uncovered_mask(_REAL, _INF, k=1), "fake contains NaN or Inf"),
    (lambda: knn_radii(_NAN, k=1), "x contains NaN or Inf"),
    # shapes
    (lambda: coverage(_REAL, _FAKE[:, :2], k=1), "same number of features, got 3 .* and 2"),
    (lambda: uncovered_mask(_REAL, _FAKE[:, :2], k=1), "same number of features"),
    (lambda: coverage(_REAL[:, 0], _FAKE, k=1), "real must be 2-D"),
    (lambda: knn_radii(np.zeros((0, 3)), k=1), "x needs at least 1 rows"),
    (lambda: uncovered_mask(_REAL, np.zeros((0, 3)), k=1), "fake needs at least 1 rows"),
    (lambda: coverage([["a", "b"]], _FAKE, k=1), "real must be a numeric 2-D array"),
])
def test_invalid_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
