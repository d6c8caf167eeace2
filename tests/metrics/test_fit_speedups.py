"""The speed-ups of the entanglement and bias fits give the same numbers as the plain code
(issue 17: faster, not different): threaded permutation probes and folds,
the bincount mutual information, the np.unique label encoding."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from audit.metrics import _disentanglement, _fairness, _probe_leakage


@pytest.mark.parametrize("stop_after, covariates", [(5, False), (0, True), (2, False)])
def test_probe_leakage_threads_same(monkeypatch, stop_after, covariates):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 6))
    groups = rng.choice(["a", "b", "c"], 300)
    cov = rng.standard_normal(300) if covariates else None
    out = []
    for workers in (1, 3):
        monkeypatch.setattr(_probe_leakage, "threads", lambda w=workers: w)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(_probe_leakage.probe_leakage(
                X, groups, covariates=cov, cv=3, n_permutations=19, stop_after=stop_after,
                n_bootstrap=50, random_state=8))
    assert repr(out[0]) == repr(out[1])         # null scores, p-value, and the bootstrap CI


def test_mutual_info_matches_sklearn_bit_for_bit():
    rng = np.random.default_rng(4)
    for n in (7, 300, 5000):
        z = rng.standard_normal((n, 9))
        z[:, 2] = 0.0                                            # a constant code
        factors = np.column_stack([rng.integers(0, 6, n), rng.integers(0, 3, n) * 2 - 7,
                                   rng.integers(-10**9, 10**9, n)])
        codes = _disentanglement._discretize(z, 20)
        ref = np.array([[mutual_info_score(factors[:, j], codes[:, i])
                         for j in range(factors.shape[1])] for i in range(codes.shape[1])])
        assert np.array_equal(_disentanglement._mutual_info(codes, factors), ref)


@pytest.mark.parametrize("values", [
    np.array(["b", "a", "é", "Z", "a"]), np.array(["b", "a", "c"], dtype=object),
    np.array([3, -1, 3, 0]), np.array([True, False, True]),
    np.array(["x", 1], dtype=object), np.array(["x", None], dtype=object),
    np.array([3, 1.0, True], dtype=object), np.array([2.5, np.nan, 2.5]),
])
def test_encode_plain_same_as_loop(monkeypatch, values):
    fast = _fairness._encode(values, "g")
    monkeypatch.setattr(_fairness, "_encode_plain", lambda arr, name: None)
    slow = _fairness._encode(values, "g")
    assert np.array_equal(fast[0], slow[0]) and fast[0].dtype == slow[0].dtype
    assert fast[1] == slow[1] and [type(v) for v in fast[1]] == [type(v) for v in slow[1]]


def test_encode_plain_reserved_label():
    with pytest.raises(ValueError, match="reserved"):
        _fairness._encode(np.array(["<missing>", "a"]), "g")
