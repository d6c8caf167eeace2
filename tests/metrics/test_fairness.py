"""Fairness statistics: against scikit-learn/SciPy, hand calculations, planted and null data."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audit.metrics import _probe_leakage
from audit.metrics._fairness import (MISSING_GROUP, rate_disparity, representation_test,
                                     top_fraction)
from audit.metrics._probe_leakage import _auc_rows, _score, probe_leakage, residualize


def _planted(seed, n=400, d=8, shift=0.8, n_groups=2):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_groups, n)
    X = rng.normal(size=(n, d))
    X[:, 0] += shift * g
    return X, g


# ---- AUC helpers ---------------------------------------------------------------------

def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(size=300) + 0.5 * y, 1)  # many ties
    assert _score(s, y, 2) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    order = np.argsort(y, kind="stable")
    assert _auc_rows(s[order][None], int((y == 0).sum()))[0] == pytest.approx(
        roc_auc_score(y, s), abs=1e-12)


def test_macro_ovr_auc_matches_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ref = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert _score(proba, y, 4) == pytest.approx(ref, abs=1e-12)


# ---- probe_leakage -------------------------------------------------------------------

def test_probe_equals_sklearn_pipeline():
    X, g = _planted(2, n=200)
    res = probe_leakage(X, g, n_permutations=0, n_bootstrap=0, random_state=0)
    # The folds are seeded by the first draw of the RandomState behind random_state=0.
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    pipe = make_pipeline(StandardScaler(),
                         LogisticRegression(class_weight="balanced", max_iter=500))
    oof = cross_val_predict(pipe, X, g, cv=folds, method="decision_function")
    assert res["score"] == pytest.approx(roc_auc_score(g, oof), abs=1e-9)
    coefs = [pipe.fit(X[tr], g[tr])[-1].coef_[0] for tr, _ in folds.split(X, g)]
    np.testing.assert_allclose(res["coef"], np.mean(coefs, axis=0), rtol=1e-6, atol=1e-8)


def test_planted_leakage_is_found():
    X, g = _planted(3)
    res = probe_leakage(X, g, cv=3, n_permutations=100, n_bootstrap=500, random_state=0)
    assert res["score"] > 0.6 and res["chance"] == 0.5
    assert res["p_value"] < 0.01
    assert len(res["null_scores"]) == 100 and max(res["null_scores"]) < res["score"]
    lo, hi = res["ci"]
    assert lo < res["score"] < hi and hi - lo < 0.2
    assert res["ci_method"] == "bootstrap-percentile-oof"
    assert res["classes"] == [0, 1]
    assert len(res["coef"]) == 8
    assert int(np.argmax(np.abs(res["coef"]))) == 0 and res["coef"][0] > 0


def test_planted_multiclass_with_missing_labels():
    X, g = _planted(4, n=300, shift=1.2, n_groups=3)
    labels = np.array(["x", "y", None], dtype=object)[g]
    res = probe_leakage(X, labels, n_permutations=9, n_bootstrap=200, random_state=0)
    assert res["classes"] == ["x", "y", MISSING_GROUP]
    assert np.shape(res["coef"]) == (3, 8)
    assert res["score"] > 0.65 and res["p_value"] == pytest.approx(0.1)
    assert res["ci"][0] < res["score"] < res["ci"][1]


def test_null_leakage_p_values_are_not_small():
    p = []
    for seed in range(10):
        rng = np.random.default_rng(50 + seed)
        X = rng.normal(size=(150, 8))
        g = rng.integers(0, 2, 150)
        res = probe_leakage(X, g, cv=3, n_permutations=49, n_bootstrap=0, random_state=seed)
        p.append(res["p_value"])
    assert sum(v < 0.05 for v in p) <= 2


def test_probe_is_reproducible_and_optional_parts_off():
    X, g = _planted(5, n=100)
    a = probe_leakage(X, g, n_permutations=5, n_bootstrap=50, random_state=7)
    b = probe_leakage(X, g, n_permutations=5, n_bootstrap=50, random_state=7)
    assert a == b
    off = probe_leakage(X, g, n_permutations=0, n_bootstrap=0, random_state=7)
    assert math.isnan(off["p_value"]) and off["null_scores"] == []
    assert all(math.isnan(v) for v in off["ci"])
    assert off["score"] == a["score"]


# ---- residualize ---------------------------------------------------------------------

def test_residualize_numeric_matches_linear_regression():
    rng = np.random.default_rng(6)
    Z = rng.normal(size=(120, 2))
    X = rng.normal(size=(120, 5)) + Z @ rng.normal(size=(2, 5)) + 3.0
    res = residualize(X, Z)
    expected = X - LinearRegression().fit(Z, X).predict(Z)
    np.testing.assert_allclose(res, expected, atol=1e-10)
    np.testing.assert_allclose(res.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(Z.T @ res, 0, atol=1e-9)
    np.testing.assert_allclose(residualize(X, np.empty((120, 0))), X - X.mean(axis=0),
                               atol=1e-10)


def test_residualize_mixed_frame_matches_dummies():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"age": rng.normal(size=90),
                          "site": rng.choice(["u", "v", None], size=90),
                          "kind": pd.Categorical(rng.choice([1, 2, 3], size=90))})
    X = rng.normal(size=(90, 3))
    dummies = pd.get_dummies(frame[["site", "kind"]].astype(object), dummy_na=True,
                             drop_first=False).to_numpy(dtype=float)
    design = np.column_stack([frame["age"], dummies])
    expected = X - LinearRegression().fit(design, X).predict(design)
    np.testing.assert_allclose(residualize(X, frame), expected, atol=1e-10)


def _site_data(seed, n=400):
    """A group that is a function of a categorical covariate which shifts X."""
    rng = np.random.default_rng(seed)
    site = rng.choice(["s0", "s1", "s2"], size=n)
    level = pd.Series(site).map({"s0": 0.0, "s1": 1.0, "s2": 2.0}).to_numpy()
    X = rng.normal(size=(n, 8))
    X[:, :3] += 1.5 * level[:, None]
    return X, (site != "s0").astype(int), pd.DataFrame({"site": site})


def test_residualize_removes_leakage_explained_by_a_covariate():
    X, group, cov = _site_data(8)
    raw = probe_leakage(X, group, n_permutations=0, n_bootstrap=0, random_state=0)
    assert raw["score"] > 0.85
    # Fold-wise residualisation: nothing linear is left to read.
    fold = probe_leakage(X, group, covariates=cov, n_permutations=19, n_bootstrap=0,
                         random_state=0)
    assert abs(fold["score"] - 0.5) < 0.05 and fold["p_value"] > 0.1
    # Whole-sample residualisation: the group is gone from the residuals too, but the
    # cross-validated score is biased below chance (Snoek et al., 2019); it is never a
    # false alarm.
    whole = probe_leakage(residualize(X, cov), group, n_permutations=19, n_bootstrap=0,
                          random_state=0)
    assert whole["score"] < 0.5 and whole["p_value"] > 0.5


def test_covariates_keep_leakage_they_do_not_explain():
    X, g = _planted(12, n=300, shift=1.0)
    cov = np.random.default_rng(12).normal(size=(300, 2))
    X = X + cov @ np.ones((2, 8))
    res = probe_leakage(X, g, covariates=cov, n_permutations=19, n_bootstrap=0,
                        random_state=0)
    assert res["score"] > 0.7 and res["p_value"] == pytest.approx(0.05)
    assert int(np.argmax(np.abs(res["coef"]))) == 0


def test_residualize_warns_when_covariates_explain_everything():
    X = np.arange(6.0).reshape(3, 2)
    with pytest.warns(RuntimeWarning, match="span every sample"):
        res = residualize(X, pd.DataFrame({"id": ["a", "b", "c"]}))
    np.testing.assert_allclose(res, 0, atol=1e-12)


# ---- representation_test -------------------------------------------------------------

def test_representation_matches_scipy_and_hand_formulas():
    rng = np.random.default_rng(9)
    clusters = rng.choice([-1, 0, 1, 2], size=500, p=[0.1, 0.3, 0.3, 0.3])
    groups = rng.choice(["a", "b", "c"], size=500)
    res = representation_test(clusters, groups)
    table = pd.crosstab(clusters, groups).to_numpy()
    chi2, p, dof, expected = stats.chi2_contingency(table, correction=False)
    assert res["clusters"] == [-1, 0, 1, 2] and res["groups"] == ["a", "b", "c"]
    assert res["table"] == table.tolist() and res["n"] == 500
    assert res["chi2"] == pytest.approx(chi2, rel=1e-12)
    assert res["p_value"] == pytest.approx(p, rel=1e-9)
    assert res["dof"] == dof == 6
    assert res["cramers_v"] == pytest.approx(
        stats.contingency.association(table, method="cramer"), rel=1e-12)
    # Bergsma's correction, written out.
    n, r, k = 500, 4, 3
    phi2 = max(0.0, chi2 / n - (r - 1) * (k - 1) / (n - 1))
    rc, kc = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    assert res["cramers_v_corrected"] == pytest.approx(math.sqrt(phi2 / min(rc - 1, kc - 1)))
    row, col = table.sum(axis=1), table.sum(axis=0)
    for cell in res["cells"]:
        i = res["clusters"].index(cell["cluster"])
        j = res["groups"].index(cell["group"])
        e = expected[i, j]
        assert cell["observed"] == table[i, j]
        assert cell["expected"] == pytest.approx(e, rel=1e-12)
        assert cell["ratio"] == pytest.approx(table[i, j] / e, rel=1e-12)
        adj = (table[i, j] - e) / math.sqrt(e * (1 - row[i] / n) * (1 - col[j] / n))
        assert cell["adjusted_residual"] == pytest.approx(adj, rel=1e-9)
        assert cell["p_value"] == pytest.approx(
            stats.binomtest(int(table[i, j]), int(row[i]), col[j] / n).pvalue, rel=1e-12)
    assert len(res["cells"]) == 12
    assert res["chi2_reliable"] and res["min_expected"] == pytest.approx(expected.min())


def test_representation_finds_a_skewed_cluster():
    rng = np.random.default_rng(10)
    groups = rng.choice(["a", "b"], size=600)
    clusters = rng.integers(0, 3, size=600)
    skewed = rng.random(600) < 0.8
    clusters[(groups == "a") & skewed] = 2  # cluster 2 is mostly group a
    res = representation_test(clusters, groups)
    assert res["p_value"] < 1e-10 and res["cramers_v"] > 0.3
    cell = next(c for c in res["cells"] if c["cluster"] == 2 and c["group"] == "a")
    assert cell["ratio"] > 1.3 and cell["p_value"] < 1e-10 and cell["adjusted_residual"] > 5


def test_representation_independent_is_not_significant():
    rng = np.random.default_rng(11)
    res = representation_test(rng.integers(0, 4, 800), rng.choice(["a", "b", "c"], 800))
    assert res["p_value"] > 0.05
    assert res["cramers_v_corrected"] <= res["cramers_v"] < 0.1


def test_representation_undefined_and_sparse_cases():
    with pytest.warns(RuntimeWarning, match="undefined"):
        res = representation_test([0, 0, 0, 0], ["a", "b", None, "a"])
    assert math.isnan(res["p_value"]) and math.isnan(res["cramers_v"])
    assert res["groups"] == ["a", "b", MISSING_GROUP]
    assert [c["observed"] for c in res["cells"]] == [2, 1, 1]
    assert all(c["p_value"] == 1.0 for c in res["cells"])
    sparse = representation_test([0, 0, 1, 1, 1, 2], ["a", "b", "a", "a", "b", "b"])
    assert not sparse["chi2_reliable"]
    assert representation_test([0, 0, 1, 1, 1, 2], ["a", "b", "a", "a", "b", "b"],
                               min_expected=0)["chi2_reliable"]


# ---- rate_disparity ------------------------------------------------------------------

def _wilson(k, n, z=stats.norm.ppf(0.975)):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def test_rate_disparity_by_hand():
    flags = [1] * 12 + [0] * 28 + [1] * 6 + [0] * 34 + [1] * 3 + [0] * 2 + [1, 0, 0]
    groups = ["a"] * 40 + ["b"] * 40 + ["c"] * 5 + [None, float("nan"), None]
    res = rate_disparity(flags, groups)
    assert list(res["groups"]) == ["a", "b", "c", MISSING_GROUP]
    a, b = res["groups"]["a"], res["groups"]["b"]
    assert (a["n"], a["flagged"], a["rate"], a["tested"]) == (40, 12, 0.3, True)
    assert (b["n"], b["flagged"], b["rate"]) == (40, 6, 0.15)
    assert a["ci"] == pytest.approx(_wilson(12, 40), abs=1e-12)
    assert b["ci"] == pytest.approx(_wilson(6, 40), abs=1e-12)
    assert res["untested"] == {"c": 5, MISSING_GROUP: 3}
    assert res["groups"]["c"]["tested"] is False
    assert res["groups"]["c"]["rate"] == 0.6  # reported, just not tested
    assert res["groups"][MISSING_GROUP]["flagged"] == 1
    assert res["ratio"] == pytest.approx(0.5) and (res["lowest"], res["highest"]) == ("b", "a")
    assert res["test"] == "fisher"
    assert res["p_value"] == pytest.approx(
        stats.fisher_exact([[12, 28], [6, 34]]).pvalue, rel=1e-12)


def test_rate_disparity_three_groups_uses_chi2():
    flags = np.r_[np.ones(10), np.zeros(40), np.ones(20), np.zeros(30), np.ones(5),
                  np.zeros(45)].astype(bool)
    groups = np.repeat([3, 1, 2], 50)
    res = rate_disparity(flags, groups, min_group_size=10, confidence=0.9)
    assert list(res["groups"]) == [1, 2, 3]
    assert res["ratio"] == pytest.approx(0.1 / 0.4)
    assert (res["lowest"], res["highest"]) == (2, 1)
    assert res["test"] == "chi2"
    table = [[20, 30], [5, 45], [10, 40]]
    assert res["p_value"] == pytest.approx(
        stats.chi2_contingency(table, correction=False).pvalue, rel=1e-12)
    assert res["groups"][3]["ci"] == pytest.approx(_wilson(10, 50, stats.norm.ppf(0.95)))


def test_rate_disparity_undefined_cases():
    with pytest.warns(RuntimeWarning, match="0 / 0"):
        res = rate_disparity([False] * 60, ["a"] * 30 + ["b"] * 30)
    assert math.isnan(res["ratio"]) and res["p_value"] == 1.0
    with pytest.warns(RuntimeWarning, match="1 group"):
        res = rate_disparity([True] * 40 + [False] * 5, ["a"] * 40 + ["b"] * 5)
    assert math.isnan(res["ratio"]) and math.isnan(res["p_value"]) and res["test"] == "none"
    assert res["untested"] == {"b": 5}


# ---- validation ----------------------------------------------------------------------

_X, _G = _planted(0, n=40, d=3)


@pytest.mark.parametrize("func,args,kwargs,match", [
    (probe_leakage, (np.ones(40), _G), {}, "2-D"),
    (probe_leakage, (np.full((40, 3), np.nan), _G), {}, "NaN"),
    (probe_leakage, (_X, _G[:-1]), {}, "expected 40"),
    (probe_leakage, (_X, np.zeros(40)), {}, "at least 2 distinct"),
    (probe_leakage, (_X, np.r_[np.zeros(37), np.ones(3)]), {}, "at least cv=5"),
    (probe_leakage, (_X, _G), {"cv": 1}, "cv"),
    (probe_leakage, (_X, _G), {"n_permutations": -1}, "n_permutations"),
    (probe_leakage, (_X, _G), {"n_bootstrap": 1.5}, "n_bootstrap"),
    (probe_leakage, (_X, _G), {"confidence": 1.0}, "confidence"),
    (probe_leakage, (_X, np.array(["a", MISSING_GROUP] * 20)), {}, "reserved"),
    (probe_leakage, (_X, _G), {"covariates": np.ones(39)}, "expected 40"),
    (probe_leakage, (_X, _G), {"covariates": np.full(40, np.inf)}, "NaN or Inf"),
    (residualize, (_X, np.ones(39)), {}, "expected 40"),
    (residualize, (_X, np.full(40, np.nan)), {}, "NaN"),
    (residualize, (_X, np.ones((40, 2, 2))), {}, "1-D or 2-D"),
    (residualize, (np.ones((2, 2, 2)), np.ones(2)), {}, "2-D"),
    (representation_test, ([0, 1], ["a"]), {}, "expected 2"),
    (representation_test, ([[0, 1]], ["a", "b"]), {}, "1-D"),
    (representation_test, ([], []), {}, "empty"),
    (representation_test, ([0, 1], ["a", "b"]), {"min_expected": -1}, "min_expected"),
    (rate_disparity, ([0, 2], ["a", "b"]), {}, "boolean"),
    (rate_disparity, ([0.5, 1.0], ["a", "b"]), {}, "boolean"),
    (rate_disparity, ([True], ["a", "b"]), {}, "expected 1"),
    (rate_disparity, ([True, False], ["a", "b"]), {"min_group_size": 0}, "min_group_size"),
    (rate_disparity, ([True, False], ["a", "b"]), {"confidence": 0}, "confidence"),
])
def test_invalid_arguments_raise(func, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        func(*args, **kwargs)


def test_sequential_leakage_test_stops_early_on_null_and_never_on_signal():
    """Besag-Clifford: on null data the test stops once ``stop_after`` permuted AUCs reach
    the observed one, with p = (count + 1) / (m + 1) over the m drawn; a real leak draws
    every permutation and gets the same p as the full test."""
    rng = np.random.default_rng(3)
    groups = np.repeat(["a", "b"], 150)
    null_x = rng.normal(size=(300, 5))
    full = probe_leakage(null_x, groups, n_permutations=60, n_bootstrap=0, random_state=1)
    seq = probe_leakage(null_x, groups, n_permutations=60, stop_after=4, n_bootstrap=0,
                        random_state=1)
    m = len(seq["null_scores"])
    count = sum(v >= seq["score"] for v in seq["null_scores"])
    assert count == 4 and m < 60 and seq["null_scores"][-1] >= seq["score"]
    assert seq["null_scores"] == full["null_scores"][:m]        # the same shuffles, in order
    assert seq["p_value"] == pytest.approx(5 / (m + 1))
    assert seq["p_value"] > 0.05 and full["p_value"] > 0.05
    leak_x = null_x.copy()
    leak_x[groups == "b", 0] += 1.0
    a = probe_leakage(leak_x, groups, n_permutations=30, stop_after=4, n_bootstrap=0,
                      random_state=2)
    b = probe_leakage(leak_x, groups, n_permutations=30, n_bootstrap=0, random_state=2)
    assert len(a["null_scores"]) == 30 and a["p_value"] == b["p_value"] == 1 / 31


# ---- one probe, top fraction ----------------------------------------------------------

def test_leakage_probe_is_the_shared_cross_validated_probe(monkeypatch):
    """probe_leakage fits through _probes.out_of_fold (the one logistic probe), with the
    covariates residualised on each training fold only."""
    from audit.metrics import _probes
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return _probes.out_of_fold(*args, **kwargs)
    monkeypatch.setattr(_probe_leakage, "out_of_fold", spy)
    X, g = _planted(4, n=150)
    site = np.random.default_rng(4).choice(["u", "v"], 150)
    probe_leakage(X, g, covariates=pd.DataFrame({"site": site}), cv=3, n_permutations=2,
                  n_bootstrap=0, random_state=0)
    assert len(calls) == 3 and all(c["output"] == "decision_function" for c in calls)
    assert all(c["design"] is not None for c in calls)
    # fold-wise residualisation by hand
    design = np.column_stack([np.ones(150), (site == "v").astype(float)])
    folds = list(StratifiedKFold(n_splits=3, shuffle=True, random_state=1).split(X, g))
    out, _ = _probes.out_of_fold(X, g, folds, _probes.logistic_probe,
                                 output="decision_function", design=design)
    for train, test in folds:
        beta = np.linalg.lstsq(design[train], X[train], rcond=None)[0]
        r_train, r_test = X[train] - design[train] @ beta, X[test] - design[test] @ beta
        pipe = make_pipeline(StandardScaler(),
                             LogisticRegression(class_weight="balanced", max_iter=500))
        pipe.fit(r_train, g[train])
        np.testing.assert_allclose(out[test], pipe.decision_function(r_test), rtol=1e-6,
                                   atol=1e-8)


def test_top_fraction_flags_exactly_the_share_and_breaks_ties_at_random():
    scores = np.array([5.0, 1.0, 3.0, 3.0, 3.0, 0.0, 3.0, 2.0])
    masks = [top_fraction(scores, 0.5, random_state=s) for s in range(20)]
    assert all(m.sum() == 4 and m[0] and not m[1] and not m[5] for m in masks)
    assert len({tuple(m) for m in masks}) > 1                 # which tied 3.0 is left out
    np.testing.assert_array_equal(top_fraction(scores, 0.5, random_state=3), masks[3])
    gen_a, gen_b = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(top_fraction(scores, 0.25, random_state=gen_a),
                                  top_fraction(scores, 0.25, random_state=gen_b))
    assert not top_fraction(scores, 0.0).any() and top_fraction(scores, 1.0).all()
    with pytest.raises(ValueError, match="fraction"):
        top_fraction(scores, 1.5)
    with pytest.raises(ValueError, match="1-D"):
        top_fraction(scores[None, :], 0.5)

