"""Disentanglement against known generative factors: MIG, modularity, SAP and DCI.

Each metric follows disentanglement_lib 1.5 (Locatello et al., 2019), the implementation
most papers report, and matches it to floating-point precision given the same arrays (DCI
also needs the same seed). One difference in layout: arrays here are ``(n_samples,
n_codes)`` and ``(n_samples, n_factors)``, the transpose of disentanglement_lib's.

Factors are discrete labels (integer or float codes), one column per factor, except in
``sap_score(..., continuous_factors=True)``. A factor that takes a single value carries no
information: every metric drops it with a ``RuntimeWarning`` (disentanglement_lib divides
by its zero entropy or fails to fit a classifier), and returns ``nan`` with a warning when
no factor is left. A constant code is fine: it scores zero mutual information.
"""
from __future__ import annotations

import math
import os
import warnings
from functools import partial
from typing import Any

import numpy as np
from scipy import stats
from sklearn import ensemble, svm
from sklearn.metrics import mutual_info_score
from sklearn.utils import check_random_state

from ._validation import validate_float, validate_int, validate_matrix

__all__ = ["discretize", "factor_entropy", "mutual_info_matrix", "mig_score",
           "modularity_score", "sap_score", "dci_scores"]

# Declared constraints on the options, checked once at the public boundary.
_CONSTRAINTS = {
    "num_bins": partial(validate_int, name="num_bins", low=2),
    "train_fraction": partial(validate_float, name="train_fraction", low=0, high=1,
                              low_open=True, high_open=True),
}


# ---- validation ----------------------------------------------------------------------

def _check_bool(x: Any, name: str) -> bool:
    if not isinstance(x, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {x!r}")
    return bool(x)


def _check_pair(codes: Any, factors: Any, *, min_codes: int = 1, min_factors: int = 1,
                min_rows: int = 1, suffix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Validate a (codes, factors) pair with one row per sample."""
    c_name, f_name = f"codes{suffix}", f"factors{suffix}"
    codes = validate_matrix(codes, c_name, min_rows=min_rows)
    factors = validate_matrix(factors, f_name, min_rows=min_rows)
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(f"{c_name} has {codes.shape[0]} rows but {f_name} has "
                         f"{factors.shape[0]}; they must describe the same samples")
    if codes.shape[1] < min_codes:
        raise ValueError(f"{c_name} needs at least {min_codes} columns, got {codes.shape[1]}")
    if factors.shape[1] < min_factors:
        raise ValueError(f"{f_name} needs at least {min_factors} columns, "
                         f"got {factors.shape[1]}")
    return codes, factors


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


def _informative_factors(factors: np.ndarray, metric: str, where: str = "",
                         min_left: int = 1) -> np.ndarray:
    """Boolean mask of the factors that take more than one value; warn about the rest.

    No warning when fewer than ``min_left`` are left: the caller then warns that the
    metric is undefined, which says it all.
    """
    keep = np.array([np.unique(factors[:, j]).size > 1 for j in range(factors.shape[1])])
    if not keep.all() and keep.sum() >= min_left:
        dropped = np.flatnonzero(~keep).tolist()
        warnings.warn(f"{metric}: factor column(s) {dropped} take a single value{where}, so "
                      f"they carry no information; they are left out", RuntimeWarning,
                      stacklevel=3)
    return keep


def _undefined(metric: str, why: str) -> float:
    warnings.warn(f"{metric} is undefined: {why}; returning nan", RuntimeWarning,
                  stacklevel=3)
    return float("nan")


# ---- private stages (trust their inputs) -----------------------------------------------

def _discretize(codes: np.ndarray, num_bins: int) -> np.ndarray:
    out = np.empty(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        column = codes[:, i]
        edges = np.histogram(column, num_bins)[1]
        out[:, i] = np.digitize(column, edges[:-1])
    return out


def _mutual_info(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    m = np.zeros((discrete_codes.shape[1], factors.shape[1]))
    for i in range(discrete_codes.shape[1]):
        for j in range(factors.shape[1]):
            m[i, j] = mutual_info_score(factors[:, j], discrete_codes[:, i])
    return m


def _entropy(factors: np.ndarray) -> np.ndarray:
    return np.array([mutual_info_score(factors[:, j], factors[:, j])
                     for j in range(factors.shape[1])])


def _modularity(mi: np.ndarray) -> float:
    """Ridgeway & Mozer modularity of an (n_codes, n_factors >= 2) MI matrix."""
    squared = np.square(mi)
    top = np.max(squared, axis=1)
    numerator = np.sum(squared, axis=1) - top
    denominator = top * (squared.shape[1] - 1.0)
    delta = np.divide(numerator, denominator, out=np.zeros_like(numerator),
                      where=denominator > 0)
    per_code = 1.0 - delta
    per_code[top == 0.0] = 0.0  # a code informative about no factor scores 0
    return float(np.mean(per_code))


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

def discretize(codes, *, num_bins: int = 20) -> np.ndarray:
    """Bin each code column into ``num_bins`` equal-width bins.

    The histogram discretiser of disentanglement_lib (``_histogram_discretize``):
    ``np.histogram`` edges of the column, then ``np.digitize`` against all but the last
    edge, so labels run from 1 to ``num_bins``.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codes)
        Continuous latent codes, finite.
    num_bins : int, default=20
        Number of equal-width bins per column, >= 2.

    Returns
    -------
    ndarray of int64, shape (n_samples, n_codes)
        Bin labels in ``[1, num_bins]``. A constant column gets one label.

    See Also
    --------
    mutual_info_matrix : MI between these labels and the factors.

    References
    ----------
    .. [1] Locatello, F. et al. (2019). Challenging common assumptions in the
       unsupervised learning of disentangled representations. ICML.
       disentanglement_lib, ``evaluation/metrics/utils.py``.

    Examples
    --------
    >>> discretize([[0.0], [0.5], [1.0], [0.9]], num_bins=2).ravel().tolist()
    [1, 2, 2, 2]
    """
    codes = validate_matrix(codes, "codes")
    num_bins = _CONSTRAINTS["num_bins"](num_bins)
    return _discretize(codes, num_bins)


def factor_entropy(factors) -> np.ndarray:
    """Entropy of each discrete factor, in nats.

    Parameters
    ----------
    factors : array-like of shape (n_samples, n_factors)
        Discrete factor labels.

    Returns
    -------
    ndarray of shape (n_factors,)
        ``H(factor)`` in nats; 0 for a factor that takes a single value.

    See Also
    --------
    mig_score : divides each factor's MI gap by this entropy.

    References
    ----------
    .. [1] Locatello, F. et al. (2019). ICML. disentanglement_lib ``discrete_entropy``.

    Examples
    --------
    >>> np.round(factor_entropy([[0, 1], [1, 1], [0, 1], [1, 1]]), 4).tolist()
    [0.6931, 0.0]
    """
    factors = validate_matrix(factors, "factors")
    return _entropy(factors)


def mutual_info_matrix(codes, factors, *, num_bins: int = 20) -> np.ndarray:
    """Mutual information between each discretised code and each discrete factor.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codes)
        Continuous latent codes; binned with :func:`discretize` first.
    factors : array-like of shape (n_samples, n_factors)
        Discrete factor labels.
    num_bins : int, default=20
        Bins per code column, >= 2.

    Returns
    -------
    ndarray of shape (n_codes, n_factors)
        ``I(code_i; factor_j)`` in nats (``sklearn.metrics.mutual_info_score``), >= 0.

    See Also
    --------
    mig_score, modularity_score : summaries of this matrix.

    References
    ----------
    .. [1] Locatello, F. et al. (2019). ICML. disentanglement_lib ``discrete_mutual_info``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 2, size=(1000, 2))
    >>> codes = factors[:, ::-1] + 0.1 * rng.normal(size=(1000, 2))
    >>> np.round(mutual_info_matrix(codes, factors, num_bins=10), 2)
    array([[0.  , 0.69],
           [0.69, 0.  ]])
    """
    codes, factors = _check_pair(codes, factors)
    num_bins = _CONSTRAINTS["num_bins"](num_bins)
    return _mutual_info(_discretize(codes, num_bins), factors)


def mig_score(codes, factors, *, num_bins: int = 20) -> float:
    """Mutual information gap (MIG).

    For each factor, the MI of the most informative code minus that of the second, divided
    by the factor's entropy; averaged over factors. 1 when each factor is captured by one
    code alone, 0 when its top two codes carry equal information.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codes)
        Continuous latent codes, at least 2 columns; binned with :func:`discretize`.
    factors : array-like of shape (n_samples, n_factors)
        Discrete factor labels.
    num_bins : int, default=20
        Bins per code column, >= 2.

    Returns
    -------
    float
        MIG in [0, 1], higher is better. Factors that take a single value have no entropy
        to normalise by and are left out with a warning; ``nan`` with a warning if none is
        left.

    See Also
    --------
    mutual_info_matrix, factor_entropy

    References
    ----------
    .. [1] Chen, R. T. Q., Li, X., Grosse, R., Duvenaud, D. (2018). Isolating sources of
       disentanglement in variational autoencoders. NeurIPS.
    .. [2] Locatello, F. et al. (2019). ICML. disentanglement_lib ``mig._compute_mig``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 4, size=(1000, 2))
    >>> codes = np.column_stack([factors[:, 1], rng.normal(size=1000), factors[:, 0]])
    >>> round(mig_score(codes + 0.01 * rng.normal(size=(1000, 3)), factors), 3)
    0.979
    >>> round(mig_score(np.column_stack([factors.sum(1), factors.sum(1)]), factors), 3)
    0.0
    """
    codes, factors = _check_pair(codes, factors, min_codes=2)
    num_bins = _CONSTRAINTS["num_bins"](num_bins)
    keep = _informative_factors(factors, "mig_score")
    if not keep.any():
        return _undefined("mig_score", "every factor takes a single value")
    factors = factors[:, keep]
    mi = _mutual_info(_discretize(codes, num_bins), factors)
    top = np.sort(mi, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / _entropy(factors)))


def modularity_score(codes, factors, *, num_bins: int = 20) -> float:
    """Modularity: how much each code is about a single factor.

    For each code, one minus the squared MI it shares with factors other than its best
    one, relative to ``(n_factors - 1)`` times the best squared MI; averaged over codes.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codes)
        Continuous latent codes; binned with :func:`discretize`.
    factors : array-like of shape (n_samples, n_factors)
        Discrete factor labels, at least 2 columns.
    num_bins : int, default=20
        Bins per code column, >= 2.

    Returns
    -------
    float
        Modularity in [0, 1], higher is better. As in disentanglement_lib, a code with zero
        MI to every factor (e.g. a constant one) scores 0 and still counts in the mean.
        Single-valued factors are left out with a warning; ``nan`` with a warning if fewer
        than two factors are left.

    See Also
    --------
    mutual_info_matrix, mig_score

    References
    ----------
    .. [1] Ridgeway, K., Mozer, M. C. (2018). Learning deep disentangled embeddings with
       the F-statistic loss. NeurIPS.
    .. [2] Locatello, F. et al. (2019). ICML. disentanglement_lib
       ``modularity_explicitness.modularity``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 4, size=(1000, 2))
    >>> codes = factors[:, ::-1] + 0.01 * rng.normal(size=(1000, 2))
    >>> round(modularity_score(codes, factors), 3)
    1.0
    """
    codes, factors = _check_pair(codes, factors, min_factors=2)
    num_bins = _CONSTRAINTS["num_bins"](num_bins)
    keep = _informative_factors(factors, "modularity_score", min_left=2)
    if keep.sum() < 2:
        return _undefined("modularity_score", "fewer than two factors take more than one "
                                              "value")
    return _modularity(_mutual_info(_discretize(codes, num_bins), factors[:, keep]))


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


for _metric in (mig_score, modularity_score, sap_score, dci_scores):
    _metric.higher_is_better = True
del _metric
