"""Probes, joint directions, leakage, association and consistency: against scikit-learn and
hand calculations, on planted and null data, plus the declared constraints and doctests."""
from __future__ import annotations

import doctest

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import balanced_accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audit.metrics import _direction_consistency, _directions, _edit_leakage, _probes
from audit.metrics._direction_consistency import direction_consistency
from audit.metrics._directions import (attribute_association, direction_cosines,
                                       joint_directions, leakage_matrix, partial_probes)
from audit.metrics._edit_leakage import entanglement_analysis, shift_leakage
from audit.metrics._probes import probe_score


def planted(seed, n=1500, noise=0.3):
    """a, b correlated at 0.8 but on separate axes; c, e independent but sharing axes."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 0.8 * a + 0.6 * rng.normal(size=n)
    c, e = rng.normal(size=n), rng.normal(size=n)
    X = np.column_stack([a, b, c + 0.8 * e, 0.2 * c + 0.6 * e, rng.normal(size=(n, 2))])
    return X + noise * rng.normal(size=X.shape), [a, b, c, e]


def test_doctests_pass():
    res = [doctest.testmod(m, optionflags=doctest.NORMALIZE_WHITESPACE)
           for m in (_probes, _directions, _edit_leakage, _direction_consistency)]
    assert sum(r.failed for r in res) == 0 and sum(r.attempted for r in res) > 30


# ---- probe_score ----------------------------------------------------------------------------

def _folds_seed(random_state):
    return np.random.RandomState(random_state).randint(np.iinfo(np.int32).max)


def test_categorical_probe_equals_sklearn_pipeline():
    rng = np.random.default_rng(0)
    y = rng.choice(["p", "q", "r"], size=300, p=[0.5, 0.3, 0.2])
    X = rng.normal(size=(300, 5)) + 0.8 * (y == "q")[:, None] * np.eye(5)[0]
    res = probe_score(X, y, categorical=True, n_bootstrap=0, random_state=3)
    codes = np.unique(y, return_inverse=True)[1]
    pred = np.empty(300, dtype=int)
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=_folds_seed(3)).split(X, codes):
        pipe = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced",
                                                                 max_iter=500))
        pred[te] = pipe.fit(X[tr], codes[tr]).predict(X[te])
    assert res["score"] == pytest.approx(balanced_accuracy_score(codes, pred), abs=1e-12)
    assert res["chance"] == pytest.approx(1 / 3) and res["levels"] == ["p", "q", "r"]
    assert np.isnan(res["p_value"]) and np.isnan(res["ci"][0])


def test_numeric_probe_equals_sklearn_pipeline():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(250, 6))
    y = X @ rng.normal(size=6) + rng.normal(size=250)
    res = probe_score(X, y, categorical=False, n_bootstrap=0, random_state=5)
    pred = np.empty(250)
    for tr, te in KFold(5, shuffle=True, random_state=_folds_seed(5)).split(X):
        pipe = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15)))
        pred[te] = pipe.fit(X[tr], y[tr]).predict(X[te])
    assert res["score"] == pytest.approx(r2_score(y, pred), abs=1e-10)
    assert res["metric"] == "r2" and res["chance"] == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_probe_interval_and_null(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 6))
    strong = probe_score(X, X[:, 2] + 0.3 * rng.normal(size=400), categorical=False,
                         n_bootstrap=100, random_state=seed)
    assert strong["ci"][0] < strong["score"] < strong["ci"][1] and strong["ci"][0] > 0.8
    assert strong["p_value"] == pytest.approx(1 / 101)
    assert abs(strong["direction"][2]) > 0.95
    null = probe_score(X, rng.choice(list("ab"), 400), categorical=True, n_bootstrap=100,
                       random_state=seed)
    assert null["ci"][0] < 0.5 + 0.02 and null["p_value"] > 0.01


def test_probe_refuses_too_small_levels_and_missing_values():
    X = np.random.default_rng(0).normal(size=(50, 3))
    y = np.array(["a"] * 47 + ["b"] * 3)
    with pytest.raises(ValueError, match="fewer than cv=5"):
        probe_score(X, y, categorical=True)
    with pytest.raises(ValueError, match="missing"):
        probe_score(X, np.array(["a", None] * 25, dtype=object), categorical=True)
    with pytest.raises(ValueError, match="NaN"):
        probe_score(X, np.r_[np.nan, np.arange(49.0)], categorical=False)
    with pytest.raises(ValueError, match="single value"):
        probe_score(X, np.ones(50), categorical=False)


# ---- joint directions, probes, leakage -----------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_correlated_data_on_orthogonal_axes_gives_orthogonal_directions(seed):
    X, attrs = planted(seed)
    dirs = joint_directions(X, attrs)
    cos = direction_cosines(dirs)
    assert abs(cos[0, 1]) < 0.05                     # a, b: correlated data, separate axes
    assert cos[2, 3] > 0.8                           # c, e: independent data, shared axes
    assert np.corrcoef(attrs[0], attrs[1])[0, 1] > 0.75
    # each direction is the latent change per SD of the attribute (others fixed)
    assert dirs[0][:2] == pytest.approx([attrs[0].std(), 0], abs=0.05)


def test_marginal_probes_would_mistake_data_correlation_for_leakage():
    X, attrs = planted(0, noise=1.0)
    res = entanglement_analysis(X, attrs, n_bootstrap=0)
    assert res["leakage"][0, 1] < 0.1 and res["leakage"][1, 0] < 0.1
    assert res["marginal_leakage"][0, 1] > 0.3      # the trap the partial probes avoid


def test_partial_probes_are_frisch_waugh_regressions():
    X, attrs = planted(1)
    W = partial_probes(X, attrs, ridge=0.0)
    A = np.column_stack([(a - a.mean()) / a.std() for a in attrs])
    Xc = X - X.mean(axis=0)
    for b in range(4):
        others = np.delete(A, b, axis=1)
        res_x = Xc - others @ np.linalg.lstsq(others, Xc, rcond=None)[0]
        res_y = A[:, b] - others @ np.linalg.lstsq(others, A[:, b], rcond=None)[0]
        w = np.linalg.lstsq(res_x, res_y, rcond=None)[0]
        assert W[b] == pytest.approx(w, abs=1e-8)


def test_leakage_and_cosines_by_hand():
    dirs = np.array([[2.0, 0.0], [1.0, 1.0]])
    probes = np.array([[0.5, 0.0], [0.0, 1.0]])
    L = leakage_matrix(dirs, probes)
    # row 0: moving along (2, 0) moves probe 0 by 1, probe 1 by 0
    # row 1: moving along (1, 1) moves probe 0 by 0.5, probe 1 by 1
    assert L.tolist() == [[1.0, 0.0], [0.5, 1.0]]
    assert direction_cosines(dirs)[0, 1] == pytest.approx(1 / np.sqrt(2))
    assert direction_cosines([[1.0, 0], [-1.0, 0]], categorical=[True, False])[0, 1] == 1.0
    with pytest.warns(RuntimeWarning, match="do not move their own read-out"):
        assert np.isnan(leakage_matrix([[0.0, 0.0], [1.0, 0.0]], probes)[0]).all()
    with pytest.warns(RuntimeWarning, match="leakage is nan"):
        shift_leakage(np.zeros((3, 2)), probes, source=0, n_bootstrap=0)


def test_categorical_direction_follows_the_level_means():
    rng = np.random.default_rng(0)
    g = rng.choice(["lo", "mid", "hi"], 3000)
    pos = np.select([g == "lo", g == "mid"], [-1.0, 0.0], 1.0)
    axis = np.array([0.6, 0.8, 0.0])
    X = pos[:, None] * axis + 0.2 * rng.normal(size=(3000, 3))
    (d,) = joint_directions(X, [g], categorical=[True])
    assert abs(d @ axis) / np.linalg.norm(d) > 0.99
    assert np.linalg.norm(d) == pytest.approx(pos.std(), rel=0.05)    # one SD of the effect


def test_association_matches_pearson_eta_and_phi():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = 0.5 * x + rng.normal(size=500)
    g = np.where(x + rng.normal(size=500) > 0, "u", "v")
    h = np.where(rng.random(500) < np.where(g == "u", 0.7, 0.3), "s", "t")
    A = attribute_association([x, y, g, h], categorical=[False, False, True, True])
    assert A[0, 1] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    means = {k: x[g == k].mean() for k in "uv"}
    eta = np.sqrt(sum((g == k).sum() * (means[k] - x.mean()) ** 2 for k in "uv")
                  / ((x - x.mean()) ** 2).sum())
    assert A[0, 2] == pytest.approx(eta, abs=1e-12)
    phi = abs(np.corrcoef(g == "u", h == "s")[0, 1])
    assert A[2, 3] == pytest.approx(phi, abs=1e-12)


@pytest.mark.parametrize("seed", range(2))
def test_analysis_flags_shared_axes_not_correlated_data(seed):
    X, attrs = planted(seed)
    res = entanglement_analysis(X, attrs, n_bootstrap=100, random_state=seed)
    lo, hi = res["leakage_ci"]
    assert lo[2, 3] > 0.5 and lo[3, 2] > 0.5
    assert res["leakage_p"][2, 3] < 1e-6
    assert hi[0, 1] < 0.15 and res["leakage_p"][0, 1] > 0.5
    assert res["association_ci"][0][0, 1] > 0.7            # correlated in the data
    again = entanglement_analysis(X, attrs, n_bootstrap=100, random_state=seed)
    assert np.array_equal(again["leakage_ci"][0], lo, equal_nan=True)


def test_shift_leakage_matches_latent_leakage_for_an_exact_round_trip():
    X, attrs = planted(0)
    res = entanglement_analysis(X, attrs, n_bootstrap=0)
    for a in range(4):
        shifts = np.repeat(res["directions"][a][None], 20, axis=0)
        out = shift_leakage(shifts, res["probes"], source=a, n_bootstrap=10, random_state=0)
        assert out["leakage"] == pytest.approx(res["leakage"][a], abs=1e-10)


# ---- direction consistency -------------------------------------------------------------------

def test_consistency_finds_a_direction_that_changes_with_the_group():
    rng = np.random.default_rng(0)
    n = 1200
    g = rng.choice(["sq", "ci", "tr"], n)
    a = rng.normal(size=n)
    ang = np.select([g == "sq", g == "ci"], [0.0, 1.2], 2.4)
    X = np.column_stack([a * np.cos(ang), a * np.sin(ang), rng.normal(size=n)])
    X = X + 0.2 * rng.normal(size=X.shape)
    res = direction_consistency(X, a, g, n_permutations=40, random_state=0)
    assert res["mean_cosine"] < 0.2 and res["null_mean"] > 0.5
    assert res["p_value"] < 1e-4 and res["p_value_count"] == pytest.approx(1 / 41)
    assert res["groups"] == ["ci", "sq", "tr"] and sum(res["sizes"]) == n


def test_consistency_p_values_under_the_null_are_not_small():
    ps = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        n = 600
        g = rng.integers(0, 3, n)
        a, c = rng.normal(size=n), rng.normal(size=n)
        X = np.column_stack([a + 0.5 * g, c, rng.normal(size=n)]) + rng.normal(size=(n, 3))
        res = direction_consistency(X, a, g, covariates=[c], n_permutations=40,
                                    random_state=seed)
        assert res["mean_cosine"] > 0.9
        ps.append(res["p_value"])
    assert sum(p < 0.05 for p in ps) <= 2 and np.median(ps) > 0.1


def test_consistency_drops_small_groups_and_needs_two():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    g = np.array(["big"] * 95 + ["tiny"] * 5)
    res = direction_consistency(X, X[:, 0], g, min_group_size=10, n_permutations=5)
    assert res["dropped_groups"] == ["tiny"] and np.isnan(res["mean_cosine"])


# ---- declared constraints ----------------------------------------------------------------------

X0 = np.random.default_rng(0).normal(size=(60, 3))
Y0 = X0[:, 0]


@pytest.mark.parametrize("call, match", [
    (lambda: probe_score(X0, Y0, categorical=False, cv=1), "cv must be >= 2"),
    (lambda: probe_score(X0, Y0, categorical=False, n_bootstrap=-1), "n_bootstrap"),
    (lambda: probe_score(X0, Y0, categorical=False, confidence=1.0), "confidence"),
    (lambda: probe_score(X0[:, :, None], Y0, categorical=False), "2-D"),
    (lambda: probe_score(X0, Y0[:10], categorical=False), "entries, expected 60"),
    (lambda: probe_score(np.full((60, 3), np.nan), Y0, categorical=False), "NaN"),
    (lambda: joint_directions(X0, []), "empty"),
    (lambda: joint_directions(X0, [Y0], categorical=[True, False]), "categorical has 2"),
    (lambda: joint_directions(X0, [np.array(["x"] * 60)]), "not numeric"),
    (lambda: partial_probes(X0, [Y0], ridge=-1.0), "ridge"),
    (lambda: entanglement_analysis(X0, [Y0], threshold=-0.1), "threshold"),
    (lambda: entanglement_analysis(X0, [Y0], n_bootstrap=1.5), "n_bootstrap"),
    (lambda: leakage_matrix(np.ones((2, 3)), np.ones((3, 3))), "shape"),
    (lambda: direction_cosines(np.ones((2, 3)), categorical=[True]), "categorical has 1"),
    (lambda: shift_leakage(np.ones((4, 3)), np.ones((2, 3)), source=2), "source"),
    (lambda: shift_leakage(np.ones((4, 2)), np.ones((2, 3)), source=0), "features"),
    (lambda: direction_consistency(X0, Y0, np.zeros(60), min_group_size=1), "min_group_size"),
    (lambda: direction_consistency(X0, Y0, np.zeros(60), n_permutations=-1), "n_permutations"),
    (lambda: direction_consistency(X0, Y0, np.zeros(60), covariates=[Y0],
                                   covariates_categorical=[]), "covariates_categorical"),
])
def test_declared_constraints_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
