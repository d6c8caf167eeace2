"""Disentanglement metrics against disentanglement_lib 1.5, plus sanity and edge cases.

The reference's arrays are (num_codes, N) and (num_factors, N): every call to it below
passes transposes. Its metric modules do ``import gin.tf``, which would pull in TensorFlow;
they only use ``gin.configurable``/``gin.REQUIRED``, which the plain ``gin`` package has,
so ``gin.tf`` is aliased to ``gin`` while they are imported.
"""
from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

from audit.metrics import _sap_dci
from audit.metrics._disentanglement import (discretize, factor_entropy, mig_score,
                                            modularity_score, mutual_info_matrix)
from audit.metrics._sap_dci import dci_scores, sap_score

SEEDS = [0, 1, 2]
TOL = 1e-9


# ---- the reference -------------------------------------------------------------------

@pytest.fixture(scope="module")
def ref():
    """disentanglement_lib's metric modules, with gin.tf aliased to gin during import."""
    pytest.importorskip("disentanglement_lib")
    gin = pytest.importorskip("gin")
    pytest.importorskip("absl")
    pytest.importorskip("six")
    had = "gin.tf" in sys.modules
    previous = sys.modules.get("gin.tf")
    sys.modules["gin.tf"] = gin
    try:
        mods = {name: importlib.import_module(f"disentanglement_lib.evaluation.metrics.{name}")
                for name in ("utils", "mig", "modularity_explicitness", "sap_score", "dci")}
    finally:
        if had:
            sys.modules["gin.tf"] = previous
        else:
            del sys.modules["gin.tf"]
    return mods


@pytest.fixture
def ref_mig(ref):
    """The reference MIG, with its gin-configured discretiser bound to ``num_bins``."""
    import gin

    def compute(codes, factors, num_bins=20):
        gin.bind_parameter("discretizer.discretizer_fn", ref["utils"]._histogram_discretize)
        gin.bind_parameter("discretizer.num_bins", num_bins)
        try:
            return ref["mig"]._compute_mig(codes.T, factors.T)["discrete_mig"]
        finally:
            gin.clear_config()
    return compute


# ---- data ----------------------------------------------------------------------------

def random_data(seed, n=600, n_codes=5, n_factors=3, classes=(2, 6)):
    """Codes and factors independent; each factor has ``classes`` [low, high) values."""
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(n, n_codes))
    factors = np.column_stack([rng.integers(0, k, size=n)
                               for k in rng.integers(*classes, size=n_factors)]).astype(float)
    return codes, factors


def structured_data(seed, n=600, n_codes=5, n_factors=3, noise=0.3, classes=(3, 7)):
    """Codes are noisy linear mixes of discrete factors (mostly one factor per code)."""
    rng = np.random.default_rng(seed)
    factors = np.column_stack([rng.integers(0, k, size=n)
                               for k in rng.integers(*classes, size=n_factors)]).astype(float)
    mix = 0.2 * rng.normal(size=(n_factors, n_codes))
    mix[np.arange(n_factors), rng.permutation(n_codes)[:n_factors]] += 2.0
    codes = factors @ mix + noise * rng.normal(size=(n, n_codes))
    return codes, factors


DATA = [pytest.param(make, seed, id=f"{make.__name__}-{seed}")
        for make in (random_data, structured_data) for seed in SEEDS]


def split(codes, factors, n_train):
    return codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:]


# ---- equality with disentanglement_lib -------------------------------------------------

@pytest.mark.parametrize("make,seed", DATA)
@pytest.mark.parametrize("num_bins", [20, 7])
def test_discretize_and_mi_match_reference(ref, make, seed, num_bins):
    codes, factors = make(seed)
    utils = ref["utils"]
    expected = utils._histogram_discretize(codes.T, num_bins).T
    got = discretize(codes, num_bins=num_bins)
    np.testing.assert_array_equal(got, expected)
    assert got.min() >= 1 and got.max() <= num_bins
    np.testing.assert_allclose(mutual_info_matrix(codes, factors, num_bins=num_bins),
                               utils.discrete_mutual_info(expected.T, factors.T),
                               rtol=0, atol=TOL)
    np.testing.assert_allclose(factor_entropy(factors), utils.discrete_entropy(factors.T),
                               rtol=0, atol=TOL)


@pytest.mark.parametrize("make,seed", DATA)
@pytest.mark.parametrize("num_bins", [20, 7])
def test_mig_and_modularity_match_reference(ref, ref_mig, make, seed, num_bins):
    codes, factors = make(seed)
    assert mig_score(codes, factors, num_bins=num_bins) == pytest.approx(
        ref_mig(codes, factors, num_bins), abs=TOL)
    utils = ref["utils"]
    mi = utils.discrete_mutual_info(utils._histogram_discretize(codes.T, num_bins), factors.T)
    assert modularity_score(codes, factors, num_bins=num_bins) == pytest.approx(
        ref["modularity_explicitness"].modularity(mi), abs=TOL)


@pytest.mark.parametrize("make,seed", DATA)
@pytest.mark.parametrize("continuous", [False, True])
def test_sap_matches_reference_on_same_split(ref, make, seed, continuous):
    codes, factors = make(seed, n=400)
    if continuous:  # real-valued factors: the structured mix, or noise for random data
        factors = factors + np.random.default_rng(seed).normal(size=factors.shape)
    x_tr, y_tr, x_te, y_te = split(codes, factors, 240)
    expected = ref["sap_score"]._compute_sap(x_tr.T, y_tr.T, x_te.T, y_te.T,
                                             continuous)["SAP_score"]
    got = sap_score(x_tr, y_tr, codes_test=x_te, factors_test=y_te,
                    continuous_factors=continuous, random_state=seed)
    assert got == pytest.approx(expected, abs=TOL)


def test_sap_continuous_without_split_uses_every_row(ref):
    codes, factors = structured_data(0)
    expected = ref["sap_score"]._compute_sap(codes.T, factors.T, None, None,
                                             True)["SAP_score"]
    assert sap_score(codes, factors, continuous_factors=True) == pytest.approx(expected,
                                                                               abs=TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_dci_from_importance_matches_reference(ref, seed):
    rng = np.random.default_rng(seed)
    importance = rng.random((6, 4)) ** 3
    importance[2] = 0.0  # an unused code
    dci = ref["dci"]
    for matrix in (importance, np.zeros((3, 2))):
        dis, com = _sap_dci._dci_from_importance(matrix)
        assert dis == pytest.approx(dci.disentanglement(matrix), abs=TOL)
        assert com == pytest.approx(dci.completeness(matrix), abs=TOL)


@pytest.mark.parametrize("make,seed", [pytest.param(random_data, 0, id="random-0"),
                                       pytest.param(structured_data, 0, id="structured-0"),
                                       pytest.param(structured_data, 1, id="structured-1"),
                                       pytest.param(structured_data, 2, id="structured-2")])
def test_dci_matches_reference_with_same_seed(ref, make, seed):
    """The reference's trees draw from numpy's global RNG; ours from one seeded generator
    shared in factor order, so seeding the global RNG identically gives the same trees."""
    # noise=1.0 keeps the structured scores mid-range, where the trees' seed matters
    extra = {"noise": 1.0} if make is structured_data else {}
    codes, factors = make(seed, n=200, n_codes=4, n_factors=2, classes=(2, 4), **extra)
    x_tr, y_tr, x_te, y_te = split(codes, factors, 140)
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        expected = ref["dci"]._compute_dci(x_tr.T, y_tr.T, x_te.T, y_te.T)
    finally:
        np.random.set_state(state)
    got = dci_scores(x_tr, y_tr, codes_test=x_te, factors_test=y_te, random_state=seed)
    assert got["disentanglement"] == pytest.approx(expected["disentanglement"], abs=TOL)
    assert got["completeness"] == pytest.approx(expected["completeness"], abs=TOL)
    assert got["informativeness"] == pytest.approx(expected["informativeness_test"], abs=TOL)


# ---- sanity --------------------------------------------------------------------------

def disentangled(seed, n=800, n_factors=4, classes=5):
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, classes, size=(n, n_factors)).astype(float)
    codes = factors[:, rng.permutation(n_factors)] + 1e-3 * rng.normal(size=(n, n_factors))
    return codes, factors


def entangled(seed, n=800, n_factors=4):
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, 5, size=(n, n_factors)).astype(float)
    total = factors.sum(axis=1, keepdims=True)
    codes = total + 0.1 * rng.normal(size=(n, n_factors))
    return codes, factors


def test_disentangled_codes_score_near_one():
    codes, factors = disentangled(0)
    assert mig_score(codes, factors) > 0.95
    assert modularity_score(codes, factors) > 0.95
    codes, factors = disentangled(0, n=300, n_factors=3, classes=3)
    half = len(codes) // 2
    dci = dci_scores(codes[:half], factors[:half], codes_test=codes[half:],
                     factors_test=factors[half:], random_state=0)
    assert dci["disentanglement"] > 0.9
    assert dci["completeness"] > 0.9
    assert dci["informativeness"] > 0.95


def test_entangled_codes_score_low():
    codes, factors = entangled(0)
    assert mig_score(codes, factors) < 0.1
    assert sap_score(codes, factors, random_state=0) < 0.1
    # and clearly below the disentangled codes
    assert mig_score(codes, factors) < mig_score(*disentangled(0)) - 0.8


def test_constant_code_has_zero_information(ref, ref_mig):
    codes, factors = structured_data(0)
    codes[:, 1] = 3.0
    mi = mutual_info_matrix(codes, factors)
    np.testing.assert_array_equal(mi[1], 0.0)
    assert mig_score(codes, factors) == pytest.approx(ref_mig(codes, factors), abs=TOL)
    # the constant code scores 0 and counts in the mean, as in the reference
    with np.errstate(invalid="ignore"):  # the reference divides 0 by 0 for that code
        expected = ref["modularity_explicitness"].modularity(mi)
    assert modularity_score(codes, factors) == pytest.approx(expected, abs=TOL)
    assert modularity_score(codes, factors) < 0.8


def test_seeded_scores_are_reproducible():
    codes, factors = structured_data(1, n=150, n_codes=3, n_factors=2, classes=(2, 4))
    assert dci_scores(codes, factors, random_state=3) == dci_scores(codes, factors,
                                                                    random_state=3)
    assert sap_score(codes, factors, random_state=3) == sap_score(codes, factors,
                                                                  random_state=3)


def test_higher_is_better_is_recorded():
    for metric in (mig_score, modularity_score, sap_score, dci_scores):
        assert metric.higher_is_better is True


# ---- single-valued factors -----------------------------------------------------------

def with_constant_factor(seed=0, **kwargs):
    codes, factors = structured_data(seed, **kwargs)
    return codes, np.column_stack([factors, np.full(len(factors), 2.0)]), factors


def test_mig_drops_single_valued_factor_with_warning(ref_mig):
    codes, factors, informative = with_constant_factor()
    with pytest.warns(RuntimeWarning, match=r"factor column\(s\) \[3\] take a single value"):
        got = mig_score(codes, factors)
    assert got != 0.0 and np.isfinite(got)
    assert got == pytest.approx(ref_mig(codes, informative), abs=TOL)


def test_modularity_drops_single_valued_factor_with_warning():
    codes, factors, informative = with_constant_factor()
    with pytest.warns(RuntimeWarning, match="single value"):
        got = modularity_score(codes, factors)
    assert got == pytest.approx(modularity_score(codes, informative), abs=TOL)


def test_sap_and_dci_drop_single_valued_factor_with_warning():
    codes, factors, informative = with_constant_factor(n=200, n_factors=2, classes=(2, 4))
    with pytest.warns(RuntimeWarning, match="single value in the training set"):
        got = sap_score(codes, factors, random_state=0)
    assert got == pytest.approx(sap_score(codes, informative, random_state=0), abs=TOL)
    with pytest.warns(RuntimeWarning, match="single value in the training set"):
        got = dci_scores(codes, factors, random_state=0)
    assert got == pytest.approx(dci_scores(codes, informative, random_state=0), abs=TOL)


def test_all_factors_single_valued_give_nan_not_zero():
    codes = np.random.default_rng(0).normal(size=(50, 3))
    factors = np.ones((50, 2))
    for metric in (mig_score, modularity_score):
        with pytest.warns(RuntimeWarning, match="undefined"):
            assert np.isnan(metric(codes, factors))
    with pytest.warns(RuntimeWarning, match="undefined"):
        assert np.isnan(sap_score(codes, factors, random_state=0))
    with pytest.warns(RuntimeWarning, match="undefined"):
        assert all(np.isnan(v) for v in dci_scores(codes, factors, random_state=0).values())


def test_one_informative_factor_left():
    codes, factors = structured_data(0, n=150, n_factors=2, classes=(2, 4))
    factors[:, 1] = 0.0
    with pytest.warns(RuntimeWarning, match="undefined"):
        assert np.isnan(modularity_score(codes, factors))
    with pytest.warns(RuntimeWarning):
        dci = dci_scores(codes, factors, random_state=0)
    assert np.isnan(dci["disentanglement"])
    assert 0.0 <= dci["completeness"] <= 1.0 and 0.0 <= dci["informativeness"] <= 1.0


# ---- declared constraints ------------------------------------------------------------

_C, _F = structured_data(0, n=40, n_codes=3, n_factors=2)
BAD = [
    (discretize, (_C,), {"num_bins": 1}),
    (discretize, (_C,), {"num_bins": 2.5}),
    (discretize, (_C[:, 0],), {}),
    (factor_entropy, (np.where(_F == 0, np.nan, _F),), {}),
    (mutual_info_matrix, (_C, _F[:-1]), {}),
    (mutual_info_matrix, (_C, _F), {"num_bins": True}),
    (mig_score, (_C[:, :1], _F), {}),
    (mig_score, (_C, _F), {"num_bins": 0}),
    (modularity_score, (_C, _F[:, :1]), {}),
    (modularity_score, (np.where(_C > 1, np.inf, _C), _F), {}),
    (sap_score, (_C[:, :1], _F), {}),
    (sap_score, (_C, _F), {"train_fraction": 1.0}),
    (sap_score, (_C, _F), {"train_fraction": 0.0}),
    (sap_score, (_C, _F), {"train_fraction": 0.999}),
    (sap_score, (_C, _F), {"continuous_factors": "yes"}),
    (sap_score, (_C, _F), {"codes_test": _C}),
    (sap_score, (_C, _F), {"codes_test": _C[:, :2], "factors_test": _F}),
    (sap_score, (_C, _F), {"random_state": "seed"}),
    (dci_scores, (_C, _F[:, :1]), {}),
    (dci_scores, (_C[:, :1], _F), {}),
    (dci_scores, (_C, _F), {"train_fraction": -0.2}),
    (dci_scores, (_C, _F), {"factors_test": _F}),
    (dci_scores, (_C, _F), {"codes_test": _C, "factors_test": _F[:, :1]}),
    (dci_scores, (_C, _F), {"random_state": 1.5}),
]


@pytest.mark.parametrize("metric,args,kwargs", BAD,
                         ids=[f"{m.__name__}-{i}" for i, (m, _, _) in enumerate(BAD)])
def test_declared_constraints_raise(metric, args, kwargs):
    with pytest.raises(ValueError):
        metric(*args, **kwargs)


def test_dci_in_threads_is_the_same_for_any_number_of_jobs_and_still_measures():
    """n_jobs gives each factor its own seed: 1, 2 and -1 agree exactly, and the scores
    still separate a disentangled code from a mixed one."""
    codes, factors = structured_data(3, n=300, n_codes=4, n_factors=3, classes=(2, 5),
                                     noise=1.0)
    runs = [dci_scores(codes, factors, random_state=5, n_jobs=j) for j in (1, 2, -1)]
    assert runs[0] == runs[1] == runs[2]
    serial = dci_scores(codes, factors, random_state=5)
    for k in serial:                       # same model, other trees' seeds: close, not equal
        assert runs[0][k] == pytest.approx(serial[k], abs=0.1)
    f = np.random.default_rng(0).integers(0, 4, size=(600, 2))
    clean = f + 0.05 * np.random.default_rng(1).normal(size=(600, 2))
    mixed = np.column_stack([f.sum(1), f[:, 0] - f[:, 1]]) + 0.05 * \
        np.random.default_rng(1).normal(size=(600, 2))
    good = dci_scores(clean, f, random_state=0, n_jobs=2)
    bad = dci_scores(mixed, f, random_state=0, n_jobs=2)
    assert good["disentanglement"] > 0.9 and bad["disentanglement"] < 0.6
    with pytest.raises(ValueError, match="n_jobs"):
        dci_scores(codes, factors, n_jobs=0)
