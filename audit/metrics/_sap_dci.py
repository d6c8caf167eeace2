"""Disentanglement from trained predictors: SAP (one linear classifier per code and
factor) and DCI (gradient-boosted trees over all codes).

As in ``_disentanglement`` (MIG, modularity): disentanglement_lib 1.5 definitions
(Locatello et al., 2019), arrays ``(n_samples, n_codes)`` and ``(n_samples, n_factors)``,
factors that take a single value dropped with a ``RuntimeWarning``, ``nan`` with a warning
when no factor is left.
"""
from __future__ import annotations

import math
import os
from functools import partial
from typing import Any

import numpy as np
from scipy import stats
from sklearn import ensemble, svm
from sklearn.utils import check_random_state

from ._factor_checks import _check_bool, _check_pair, _informative_factors, _undefined
from ._validation import validate_float

__all__ = ["sap_score", "dci_scores"]

# Declared constraints on the options, checked once at the public boundary.
_CONSTRAINTS = {
    "train_fraction": partial(validate_float, name="train_fraction", low=0, high=1,
                              low_open=True, high_open=True),
}


def _check_split(codes: np.ndarray, factors: np.ndarray, codes_test: Any, factors_test: Any,
                 train_fraction: float, rng: np.random.RandomState
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (codes_train, factors_train, codes_test, factors_test).

    With an explicit test set, ``codes``/``factors`` are the training set as given.
    Otherwise the rows are shuffled with ``rng`` and the first ``ceil(n * train_fraction)``
    train (disentanglement_lib's ``split_train_test`` rounding, after a shuffle).
    """
    if (codes_test is None) != (factors_test is None):
        raise ValueError("pass both codes_test and factors_test, or neither")
    if codes_test is not None:
        codes_test, factors_test = _check_pair(codes_test, factors_test, suffix="_test")
        if codes_test.shape[1] != codes.shape[1]:
            raise ValueError(f"codes_test has {codes_test.shape[1]} columns, codes has "
                             f"{codes.shape[1]}")
        if factors_test.shape[1] != factors.shape[1]:
            raise ValueError(f"factors_test has {factors_test.shape[1]} columns, factors has "
                             f"{factors.shape[1]}")
        return codes, factors, codes_test, factors_test
    n = codes.shape[0]
    n_train = int(math.ceil(n * train_fraction))
    if n_train >= n:
        raise ValueError(f"train_fraction={train_fraction} leaves no test samples out of {n}")
    order = rng.permutation(n)
    train, test = order[:n_train], order[n_train:]
    return codes[train], factors[train], codes[test], factors[test]



# ---- private stages (trust their inputs) -----------------------------------------------

def _sap_matrix(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray | None,
                factors_test: np.ndarray | None, continuous: bool,
                rng: np.random.RandomState) -> np.ndarray:
    """(n_codes, n_factors) predictability of each factor from each single code."""
    n_codes, n_factors = codes.shape[1], factors.shape[1]
    if continuous:
        # Squared correlation from the ddof=1 covariance; near-constant codes score 0.
        cc = codes - codes.mean(axis=0)
        fc = factors - factors.mean(axis=0)
        dof = codes.shape[0] - 1
        cov = cc.T @ fc / dof
        var_c = np.sum(cc * cc, axis=0) / dof
        var_f = np.sum(fc * fc, axis=0) / dof
        scores = np.zeros((n_codes, n_factors))
        ok = var_c > 1e-12
        scores[ok] = cov[ok] ** 2 / (var_c[ok, None] * var_f[None, :])
        return scores
    scores = np.zeros((n_codes, n_factors))
    for i in range(n_codes):
        for j in range(n_factors):
            clf = svm.LinearSVC(C=0.01, class_weight="balanced", random_state=rng)
            clf.fit(codes[:, [i]], factors[:, j])
            scores[i, j] = np.mean(clf.predict(codes_test[:, [i]]) == factors_test[:, j])
    return scores


def _gbt_importance(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray,
                    factors_test: np.ndarray, rng: np.random.RandomState,
                    n_jobs: int | None = None) -> tuple[np.ndarray, float, float]:
    """Importance matrix (n_codes, n_factors), mean train and mean test accuracy."""
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    train_acc = np.zeros(factors.shape[1])
    test_acc = np.zeros(factors.shape[1])

    def fit(j: int, state) -> None:
        # Same defaults as disentanglement_lib 1.5 (100 trees of depth 3, lr 0.1), seeded.
        model = ensemble.GradientBoostingClassifier(random_state=state)
        model.fit(codes, factors[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        train_acc[j] = np.mean(model.predict(codes) == factors[:, j])
        test_acc[j] = np.mean(model.predict(codes_test) == factors_test[:, j])

    if n_jobs is None:
        for j in range(factors.shape[1]):
            fit(j, rng)
    else:
        from concurrent.futures import ThreadPoolExecutor
        seeds = rng.randint(np.iinfo(np.int32).max, size=factors.shape[1])
        workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
        with ThreadPoolExecutor(max_workers=max(1, min(workers, factors.shape[1]))) as pool:
            list(pool.map(fit, range(factors.shape[1]), seeds.tolist()))
    return importance, float(np.mean(train_acc)), float(np.mean(test_acc))


def _dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """Disentanglement and completeness of an (n_codes >= 2, n_factors >= 2) importance matrix."""
    weights = importance if importance.sum() != 0.0 else np.ones_like(importance)
    per_code = 1.0 - stats.entropy(importance.T + 1e-11, base=importance.shape[1])
    code_share = weights.sum(axis=1) / weights.sum()
    per_factor = 1.0 - stats.entropy(importance + 1e-11, base=importance.shape[0])
    factor_share = weights.sum(axis=0) / weights.sum()
    return float(np.sum(per_code * code_share)), float(np.sum(per_factor * factor_share))


# ---- public metrics --------------------------------------------------------------------

def sap_score(codes, factors, *, continuous_factors: bool = False,
              train_fraction: float = 0.5, codes_test=None, factors_test=None,
              random_state=None) -> float:
    """Separated attribute predictability (SAP).

    Scores how well each single code predicts each factor, then averages over factors the
    gap between the best and the second-best code.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codes)
        Latent codes, at least 2 columns. The training set when ``codes_test`` is given.
    factors : array-like of shape (n_samples, n_factors)
        Factor values: discrete labels, or real values if ``continuous_factors``.
    continuous_factors : bool, default=False
        If True, the score of (code, factor) is their squared Pearson correlation on
        ``codes``/``factors`` (no test set is used). If False, it is the test accuracy of
        ``LinearSVC(C=0.01, class_weight="balanced")`` fitted on that one code.
    train_fraction : float, default=0.5
        Share of rows, in (0, 1), used to train the classifiers when no explicit test set
        is given; rows are shuffled with ``random_state`` first. Ignored when
        ``continuous_factors`` is True or ``codes_test`` is given.
    codes_test, factors_test : array-like of shape (n_test, n_codes), (n_test, n_factors)
        Optional explicit test set; give both or neither.
    random_state : int, RandomState instance or None, default=None
        Seeds the train/test shuffle (and the classifiers' solver).

    Returns
    -------
    float
        SAP in [0, 1], higher is better. Factors with a single value in the training set
        are left out with a warning; ``nan`` with a warning if none is left.

    See Also
    --------
    dci_scores, mig_score

    References
    ----------
    .. [1] Kumar, A., Sattigeri, P., Balakrishnan, A. (2018). Variational inference of
       disentangled latent concepts from unlabeled observations. ICLR.
    .. [2] Locatello, F. et al. (2019). ICML. disentanglement_lib ``sap_score``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.normal(size=(500, 2))
    >>> codes = np.column_stack([factors[:, 1], factors[:, 0], rng.normal(size=500)])
    >>> round(sap_score(codes, factors, continuous_factors=True), 2)
    1.0

    With discrete factors the score is a gap in accuracy, so a wrong code that guesses
    half of a binary factor caps it near 0.5:

    >>> labels = rng.integers(0, 2, size=(300, 2))
    >>> codes = labels[:, ::-1] + 0.1 * rng.normal(size=(300, 2))
    >>> round(sap_score(codes, labels, random_state=0), 2)
    0.5
    """
    codes, factors = _check_pair(codes, factors, min_codes=2, min_rows=2)
    continuous_factors = _check_bool(continuous_factors, "continuous_factors")
    train_fraction = _CONSTRAINTS["train_fraction"](train_fraction)
    rng = check_random_state(random_state)
    if continuous_factors and codes_test is None and factors_test is None:
        x_train, y_train, x_test, y_test = codes, factors, None, None
    else:
        x_train, y_train, x_test, y_test = _check_split(codes, factors, codes_test,
                                                        factors_test, train_fraction, rng)
    keep = _informative_factors(y_train, "sap_score", " in the training set")
    if not keep.any():
        return _undefined("sap_score", "every factor takes a single value in the training "
                                       "set")
    y_train = y_train[:, keep]
    y_test = None if y_test is None else y_test[:, keep]
    scores = _sap_matrix(x_train, y_train, x_test, y_test, continuous_factors, rng)
    ranked = np.sort(scores, axis=0)
    return float(np.mean(ranked[-1] - ranked[-2]))


def dci_scores(codes, factors, *, train_fraction: float = 0.8, codes_test=None,
               factors_test=None, random_state=None, n_jobs: int | None = None
               ) -> dict[str, float]:
    """Disentanglement, completeness and informativeness (DCI) from gradient-boosted trees.

    One ``GradientBoostingClassifier`` per factor (scikit-learn defaults, as in
    disentanglement_lib 1.5) predicts the factor from all codes; its feature importances
    form an (n_codes, n_factors) importance matrix.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codes)
        Latent codes, at least 2 columns. The training set when ``codes_test`` is given.
    factors : array-like of shape (n_samples, n_factors)
        Discrete factor labels, at least 2 columns.
    train_fraction : float, default=0.8
        Share of rows, in (0, 1), used for training when no explicit test set is given;
        rows are shuffled with ``random_state`` first. Ignored when ``codes_test`` is given.
    codes_test, factors_test : array-like of shape (n_test, n_codes), (n_test, n_factors)
        Optional explicit test set; give both or neither.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffle, then the trees (one generator shared in factor order, so
        ``random_state=s`` with an explicit test set reproduces disentanglement_lib run
        after ``np.random.seed(s)``). Pass an int for reproducible scores.
    n_jobs : int or None, default=None
        ``None`` fits the factors' trees one after another from the shared generator
        (the reference's behaviour). An int fits them in that many threads (-1: one per
        core), each factor from its own seed drawn from ``random_state``: scores differ
        from the serial ones by the trees' randomness only, and are the same for every
        ``n_jobs``.

    Returns
    -------
    dict[str, float]
        ``disentanglement``: importance-weighted mean over codes of one minus the entropy
        (base n_factors) of the code's importance across factors. ``completeness``: the
        same per factor across codes (base n_codes). ``informativeness``: mean test
        accuracy of the classifiers (disentanglement_lib's ``informativeness_test``; its
        ``informativeness_train`` is not reported). All in [0, 1], higher is better.
        Factors with a single value in the training set are left out with a warning; with
        none left every value is ``nan``, and with one left ``disentanglement`` is ``nan``
        (entropy over one factor is undefined), each with a warning.

    See Also
    --------
    sap_score, mig_score

    References
    ----------
    .. [1] Eastwood, C., Williams, C. K. I. (2018). A framework for the quantitative
       evaluation of disentangled representations. ICLR.
    .. [2] Locatello, F. et al. (2019). ICML. disentanglement_lib ``dci``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 2, size=(200, 2))
    >>> codes = np.column_stack([factors[:, 1], factors[:, 0]]) + 0.05 * rng.normal(size=(200, 2))
    >>> {k: round(v, 2) for k, v in dci_scores(codes, factors, random_state=0).items()}
    {'disentanglement': 1.0, 'completeness': 1.0, 'informativeness': 1.0}
    """
    codes, factors = _check_pair(codes, factors, min_codes=2, min_factors=2, min_rows=2)
    train_fraction = _CONSTRAINTS["train_fraction"](train_fraction)
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int)
                               or (n_jobs < 1 and n_jobs != -1)):
        raise ValueError(f"n_jobs must be None, -1 or an int >= 1, got {n_jobs!r}")
    rng = check_random_state(random_state)
    x_train, y_train, x_test, y_test = _check_split(codes, factors, codes_test,
                                                    factors_test, train_fraction, rng)
    keep = _informative_factors(y_train, "dci_scores", " in the training set")
    if not keep.any():
        nan = _undefined("dci_scores", "every factor takes a single value in the training "
                                       "set")
        return {"disentanglement": nan, "completeness": nan, "informativeness": nan}
    importance, _, test_acc = _gbt_importance(x_train, y_train[:, keep], x_test,
                                              y_test[:, keep], rng, n_jobs)
    if importance.shape[1] < 2:
        completeness = float(1.0 - stats.entropy(importance[:, 0] + 1e-11,
                                                 base=importance.shape[0]))
        disentanglement = _undefined("dci_scores['disentanglement']",
                                     "only one factor takes more than one value")
    else:
        disentanglement, completeness = _dci_from_importance(importance)
    return {"disentanglement": disentanglement, "completeness": completeness,
            "informativeness": test_acc}


for _metric in (sap_score, dci_scores):
    _metric.higher_is_better = True
del _metric
