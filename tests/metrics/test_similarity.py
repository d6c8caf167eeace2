"""Tests for audit.metrics._similarity: CKA against ckatorch and a direct n x n
implementation, invariants, Procrustes against scipy, kNN overlap against sets, the
out-of-sample linear map, undefined values and declared constraints."""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.spatial import procrustes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

import audit.metrics
from audit.metrics import _similarity
from audit.metrics._neighbors import knn
from audit.metrics._similarity import (cka_linear, knn_overlap, linear_map_residual,
                                       mean_knn_overlap, procrustes_residual)

PUBLIC = ("cka_linear", "knn_overlap", "mean_knn_overlap", "procrustes_residual",
          "linear_map_residual")


def _orthonormal(rng, p, q):
    """A (p, q) matrix with orthonormal rows (p <= q): an isometry from R^p into R^q."""
    return np.linalg.qr(rng.normal(size=(q, q)))[0][:p]


def _pair(seed, n=120, p=8, q=5, shared=3, noise=1.0):
    """Two representations of the same points that share a few directions."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, shared))
    x = z @ rng.normal(size=(shared, p)) + noise * rng.normal(size=(n, p)) + 2.0
    y = z @ rng.normal(size=(shared, q)) + noise * rng.normal(size=(n, q)) - 1.0
    return x, y


# ---- reference: ckatorch (PyPI) -------------------------------------------------------

@pytest.fixture(scope="module")
def ckatorch_core():
    """``ckatorch.core`` (ckatorch 1.0.3, requirements-test-nodeps.txt).

    The package's ``__init__`` also imports its plotting module, which needs matplotlib
    and seaborn (not installed: --no-deps); ``core`` needs only torch, so it is loaded
    from the package's folder without running ``__init__``.
    """
    torch = pytest.importorskip("torch")
    spec = importlib.util.find_spec("ckatorch")
    if spec is None:
        pytest.skip("ckatorch is not installed (requirements-test-nodeps.txt)")
    try:
        core = importlib.import_module("ckatorch.core")  # where matplotlib+seaborn exist
    except ImportError:
        for name in [m for m in sys.modules if m.split(".")[0] == "ckatorch"]:
            del sys.modules[name]  # the half-imported package
        stub = types.ModuleType("ckatorch")
        stub.__path__ = list(spec.submodule_search_locations)
        sys.modules["ckatorch"] = stub
        try:
            core = importlib.import_module("ckatorch.core")
        finally:
            del sys.modules["ckatorch"]  # leave no stub for anyone importing ckatorch

    def reference(x, y, debiased):
        return float(core.cka_base(torch.tensor(np.asarray(x, dtype=np.float64)),
                                   torch.tensor(np.asarray(y, dtype=np.float64)),
                                   kernel="linear", unbiased=debiased))
    return reference


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("seed,n,p,q,noise", [(0, 120, 8, 5, 1.0), (1, 60, 3, 12, 0.3),
                                              (2, 300, 16, 16, 3.0), (3, 10, 4, 2, 1.0)])
def test_cka_equals_ckatorch(ckatorch_core, seed, n, p, q, noise, debiased):
    x, y = _pair(seed, n=n, p=p, q=q, noise=noise)
    ours = cka_linear(x, y, debiased=debiased)
    assert ours == pytest.approx(ckatorch_core(x, y, debiased), abs=1e-6)
    assert 0.0 < abs(ours) < 1.0


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_equals_ckatorch_on_independent_data(ckatorch_core, debiased):
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(200, 6)), rng.normal(size=(200, 9))
    assert cka_linear(x, y, debiased=debiased) == pytest.approx(
        ckatorch_core(x, y, debiased), abs=1e-6)


# ---- reference: the n x n definitions, written out ------------------------------------

def _hsic_biased(k, l):
    """Gretton et al. (2005): tr(K H L H) / (n - 1)^2."""
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h) / (n - 1) ** 2


def _hsic_unbiased(k, l):
    """Song et al. (2012), eq. 5, term by term on n x n matrices."""
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l, 0.0)
    one = np.ones(n)
    return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (one @ k @ l @ one)) / (n * (n - 3))


def _cka_direct(x, y, debiased):
    k, l = x @ x.T, y @ y.T  # uncentred kernels: HSIC does the centring
    hsic = _hsic_unbiased if debiased else _hsic_biased
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cka_equals_the_n_by_n_definition(seed, debiased):
    x, y = _pair(seed, n=80, p=6, q=11, noise=0.7)
    assert cka_linear(x, y, debiased=debiased) == pytest.approx(
        _cka_direct(x, y, debiased), abs=1e-10)


def test_cka_blocks_and_float32_do_not_change_the_value(monkeypatch):
    x, y = _pair(4, n=1000, p=10, q=7)
    whole = {d: cka_linear(x, y, debiased=d) for d in (False, True)}
    monkeypatch.setattr(_similarity, "_BLOCK_ROWS", 37)
    for d in (False, True):
        assert cka_linear(x, y, debiased=d) == pytest.approx(whole[d], abs=1e-12)
        assert cka_linear(x.astype(np.float32), y.astype(np.float32), debiased=d) == \
            pytest.approx(whole[d], abs=1e-5)
    assert procrustes_residual(x, y) == pytest.approx(procrustes(x, np.hstack(
        [y, np.zeros((1000, 3))]))[2], abs=1e-12)


# ---- invariants -------------------------------------------------------------------------

@pytest.mark.parametrize("p,q", [(6, 6), (6, 10)])
def test_rotated_rescaled_copy_is_identical(p, q):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(300, p)) * np.linspace(0.5, 3.0, p)
    y = 4.5 * x @ _orthonormal(rng, p, q) + rng.normal(size=q)  # rotate, rescale, shift
    assert cka_linear(x, y) == pytest.approx(1.0, abs=1e-12)
    assert cka_linear(x, y, debiased=True) == pytest.approx(1.0, abs=1e-12)
    for scale in (True, False):
        assert procrustes_residual(x, y, scale=scale) == pytest.approx(0.0, abs=1e-12)
        assert procrustes_residual(y, x, scale=scale) == pytest.approx(0.0, abs=1e-12)
    assert linear_map_residual(x, y, random_state=0) == pytest.approx(0.0, abs=1e-12)
    ia, ib = knn(x, k=10)[1], knn(y, k=10)[1]
    np.testing.assert_array_equal(knn_overlap(ia, ib), np.ones(300))
    assert mean_knn_overlap(ia, ib) == 1.0


def test_independent_data_scores_low():
    rng = np.random.default_rng(5)
    n, p, q = 4000, 10, 12
    x, y = rng.normal(size=(n, p)), rng.normal(size=(n, q))
    biased = cka_linear(x, y)
    assert 0.0 < biased < 3.0 * np.sqrt(p * q) / n  # about sqrt(p q) / n
    assert abs(cka_linear(x, y, debiased=True)) < 0.002
    assert procrustes_residual(x, y) > 0.9
    assert linear_map_residual(x, y, random_state=0) > 0.98
    ia, ib = knn(x, k=10)[1], knn(y, k=10)[1]
    assert mean_knn_overlap(ia, ib) < 0.01


def test_cka_is_symmetric_and_decreases_with_noise():
    x, y = _pair(6, n=500, p=6, q=6, noise=0.1)
    assert cka_linear(x, y) == pytest.approx(cka_linear(y, x), abs=1e-14)
    rng = np.random.default_rng(0)
    values = [cka_linear(x, x + s * rng.normal(size=x.shape)) for s in (0.1, 1.0, 10.0)]
    assert values[0] > values[1] > values[2]


# ---- Procrustes against scipy -------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_procrustes_residual_is_scipy_disparity(seed):
    """scale=True: 1 - nu^2 == scipy's disparity; scale=False: 1 - nu == 1 - sqrt(1 -
    disparity), half the residual of the best rotation without scale."""
    x, y = _pair(seed, n=150, p=5, q=5, noise=0.8)
    _, _, disparity = procrustes(x, y)
    assert procrustes_residual(x, y) == pytest.approx(disparity, abs=1e-12)
    assert procrustes_residual(y, x) == pytest.approx(disparity, abs=1e-12)
    unscaled = procrustes_residual(x, y, scale=False)
    assert unscaled == pytest.approx(1.0 - np.sqrt(1.0 - disparity), abs=1e-12)
    xn, yn = x - x.mean(0), y - y.mean(0)
    xn, yn = xn / np.linalg.norm(xn), yn / np.linalg.norm(yn)
    r = orthogonal_procrustes(yn, xn)[0]
    assert unscaled == pytest.approx(0.5 * np.sum((xn - yn @ r) ** 2), abs=1e-12)
    assert 0.0 < disparity < 1.0


def test_procrustes_pads_the_narrower_side_with_zero_columns():
    x, y = _pair(3, n=150, p=9, q=4, noise=0.8)
    padded = np.hstack([y, np.zeros((150, 5))])
    disparity = procrustes(x, padded)[2]
    assert procrustes_residual(x, y) == pytest.approx(disparity, abs=1e-12)
    assert procrustes_residual(y, x) == pytest.approx(disparity, abs=1e-12)  # q > p


def test_procrustes_residual_counts_extra_dimensions_that_no_rotation_explains():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 4))
    extra = 0.5 * rng.normal(size=(400, 2))
    y = np.hstack([x, extra])
    assert procrustes_residual(x, y) == pytest.approx(
        procrustes(np.hstack([x, np.zeros((400, 2))]), y)[2], abs=1e-12)
    # nu = |X| / |Y| when extra is orthogonal to X, so 1 - nu^2 = the extra's share
    assert procrustes_residual(x, y) == pytest.approx(0.5 / 4.5, abs=0.01)


# ---- kNN overlap against sets ------------------------------------------------------------

def _jaccard_sets(a, b):
    return np.array([len(set(r) & set(s)) / len(set(r) | set(s)) for r, s in zip(a, b)])


@pytest.mark.parametrize("ka,kb", [(5, 5), (4, 9), (12, 3)])
def test_knn_overlap_equals_brute_force_sets(ka, kb):
    rng = np.random.default_rng(ka * 10 + kb)
    a = rng.integers(0, 15, size=(500, ka))  # small range: overlaps and repeats
    b = rng.integers(0, 15, size=(500, kb))
    got = knn_overlap(a, b)
    np.testing.assert_allclose(got, _jaccard_sets(a.tolist(), b.tolist()), rtol=0, atol=0)
    assert mean_knn_overlap(a, b) == pytest.approx(got.mean(), abs=1e-15)
    assert 0.0 <= got.min() < got.max() <= 1.0


def test_knn_overlap_on_real_graphs_equals_sets():
    x, y = _pair(8, n=300, p=5, q=7, noise=0.5)
    ia, ib = knn(x, k=8)[1], knn(y, k=12)[1]
    np.testing.assert_array_equal(knn_overlap(ia, ib), _jaccard_sets(ia, ib))
    np.testing.assert_array_equal(knn_overlap(ia, ia[:, ::-1]), np.ones(300))


def test_knn_overlap_values():
    assert knn_overlap([[1, 2, 3]], [[4, 5, 6]]).tolist() == [0.0]
    assert knn_overlap([[1, 1, 2]], [[2, 1]]).tolist() == [1.0]          # repeats count once
    assert knn_overlap(np.array([[1.0, 2.0]]), [[2, 3]]).tolist() == [1 / 3]


# ---- linear map ----------------------------------------------------------------------------

def test_linear_map_residual_zero_for_invertible_map_and_grows_with_noise():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(1000, 6))
    a = rng.normal(size=(6, 6))
    assert abs(np.linalg.det(a)) > 1e-3
    x = y @ a
    assert linear_map_residual(x, y, random_state=0) == pytest.approx(0.0, abs=1e-12)
    assert linear_map_residual(y, x, random_state=0) == pytest.approx(0.0, abs=1e-12)
    residuals = [linear_map_residual(x + s * rng.normal(size=x.shape), y, random_state=0)
                 for s in (0.1, 1.0, 5.0)]
    assert 0.0 < residuals[0] < residuals[1] < residuals[2] < 1.0


def test_linear_map_residual_equals_sklearn_on_the_same_split():
    x, y = _pair(9, n=301, p=7, q=4, noise=1.0)
    order = np.random.RandomState(3).permutation(301)
    fit, test = order[:150], order[150:]
    model = LinearRegression().fit(y[fit], x[fit])
    expected = 1.0 - r2_score(x[test], model.predict(y[test]),
                              multioutput="variance_weighted")
    assert linear_map_residual(x, y, random_state=3) == pytest.approx(expected, abs=1e-10)


def test_linear_map_residual_seeded():
    x, y = _pair(10, n=200, p=5, q=5, noise=1.0)
    first = linear_map_residual(x, y, random_state=4)
    assert linear_map_residual(x, y, random_state=4) == first
    assert linear_map_residual(x, y, random_state=np.random.RandomState(4)) == first
    assert linear_map_residual(x, y, random_state=5) != first


# ---- undefined values: nan with a warning ----------------------------------------------

@pytest.mark.parametrize("call", [
    lambda x, c: cka_linear(x, c),
    lambda x, c: cka_linear(c, x),
    lambda x, c: cka_linear(x, c, debiased=True),
    lambda x, c: procrustes_residual(x, c),
    lambda x, c: procrustes_residual(c, x, scale=False),
    lambda x, c: linear_map_residual(c, x, random_state=0),
], ids=["cka-Y", "cka-X", "cka-debiased", "procrustes", "procrustes-noscale", "linmap"])
def test_zero_variance_is_nan_with_a_warning(call):
    x = np.random.default_rng(0).normal(size=(50, 3))
    constant = np.full((50, 2), 0.1)  # 0.1 is not exact in binary: the mean has rounding
    with pytest.warns(RuntimeWarning, match="undefined"):
        assert np.isnan(call(x, constant))


def test_debiased_cka_nan_when_unbiased_self_hsic_is_not_positive():
    x = np.array([[0.0], [0.0], [0.0], [1.0]])  # 4 points: HSIC_1(K, K) = 0 here
    y = np.array([[1.0], [2.0], [4.0], [3.0]])
    with pytest.warns(RuntimeWarning, match="self-HSIC"):
        assert np.isnan(cka_linear(x, y, debiased=True))


# ---- declared constraints -----------------------------------------------------------------

_X, _Y = _pair(0, n=20, p=3, q=2)
_NAN = _X.copy()
_NAN[3, 1] = np.nan
_INF = _Y.copy()
_INF[0, 0] = np.inf
_NB = np.arange(20 * 3).reshape(20, 3) % 20
BAD = [
    (cka_linear, (_NAN, _Y), {}, "X"),
    (cka_linear, (_X, _INF), {}, "Y"),
    (cka_linear, (_X[:, 0], _Y), {}, "X"),
    (cka_linear, (_X, _Y[None]), {}, "Y"),
    (cka_linear, (_X, _Y[:-1]), {}, "Y"),
    (cka_linear, (_X, [["a", "b"]] * 20), {}, "Y"),
    (cka_linear, (_X[:1], _Y[:1]), {}, "rows"),
    (cka_linear, (_X[:3], _Y[:3]), {"debiased": True}, "rows"),
    (cka_linear, (_X, _Y), {"debiased": "yes"}, "debiased"),
    (cka_linear, (_X, np.zeros((20, 0))), {}, "Y"),
    (procrustes_residual, (_NAN, _Y), {}, "X"),
    (procrustes_residual, (_X, _Y[:-2]), {}, "Y"),
    (procrustes_residual, (_X, _Y.ravel()), {}, "Y"),
    (procrustes_residual, (_X, _Y), {"scale": 1}, "scale"),
    (linear_map_residual, (_X, _INF), {}, "Y"),
    (linear_map_residual, (_X[:5], _Y), {}, "Y"),
    (linear_map_residual, (_X[:3], _Y[:3]), {}, "rows"),
    (linear_map_residual, (_X, _Y), {"random_state": "seed"}, "random_state"),
    (knn_overlap, (_NB, _NB[:-1]), {}, "neighbours_b"),
    (knn_overlap, (_NB[:, 0], _NB), {}, "neighbours_a"),
    (knn_overlap, (_NB - 1, _NB), {}, "neighbours_a"),
    (knn_overlap, (_NB, _NB + 0.5), {}, "neighbours_b"),
    (knn_overlap, (_NB, np.where(_NB == 3, np.nan, _NB)), {}, "neighbours_b"),
    (knn_overlap, (_NB, np.zeros((20, 0), dtype=int)), {}, "neighbours_b"),
    (mean_knn_overlap, (_NB.astype(str), _NB), {}, "neighbours_a"),
]


@pytest.mark.parametrize("metric,args,kwargs,names", BAD,
                         ids=[f"{m.__name__}-{i}" for i, (m, _, _, _) in enumerate(BAD)])
def test_declared_constraints_raise(metric, args, kwargs, names):
    with pytest.raises(ValueError, match=names):
        metric(*args, **kwargs)


def test_higher_is_better_is_recorded():
    assert cka_linear.higher_is_better and knn_overlap.higher_is_better
    assert mean_knn_overlap.higher_is_better
    assert procrustes_residual.higher_is_better is False
    assert linear_map_residual.higher_is_better is False


def test_public_names_are_exported():
    for name in PUBLIC:
        assert name in audit.metrics.__all__
        assert getattr(audit.metrics, name) is getattr(_similarity, name)
