"""Disentanglement against known generative factors: MIG and modularity (from mutual
information); SAP and DCI live in ``_sap_dci`` and are re-exported here.

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
from functools import partial

import numpy as np
from sklearn.metrics import mutual_info_score

from ._factor_checks import _check_pair, _informative_factors, _undefined
from ._sap_dci import dci_scores, sap_score
from ._validation import validate_int, validate_matrix

__all__ = ["discretize", "factor_entropy", "mutual_info_matrix", "mig_score",
           "modularity_score", "sap_score", "dci_scores"]

# Declared constraints on the options, checked once at the public boundary.
_CONSTRAINTS = {
    "num_bins": partial(validate_int, name="num_bins", low=2),
}


# ---- private stages (trust their inputs) -----------------------------------------------

def _discretize(codes: np.ndarray, num_bins: int) -> np.ndarray:
    out = np.empty(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        column = codes[:, i]
        edges = np.histogram(column, num_bins)[1]
        out[:, i] = np.digitize(column, edges[:-1])
    return out


def _mi_from_counts(counts: np.ndarray) -> float:
    """``sklearn.metrics.mutual_info_score`` from a (factor level, code bin) count table
    whose rows and columns are in sorted label order, empty ones allowed: the same
    operations on the same nonzero cells in the same (row-major) order, so the same float.
    """
    counts = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
    nzx, nzy = np.nonzero(counts)
    nz_val = counts[nzx, nzy]
    contingency_sum = counts.sum()
    pi = counts.sum(axis=1)
    pj = counts.sum(axis=0)
    if pi.size == 1 or pj.size == 1:
        return 0.0
    log_contingency_nm = np.log(nz_val)
    contingency_nm = nz_val / contingency_sum
    outer = pi.take(nzx).astype(np.int64, copy=False) * pj.take(nzy).astype(np.int64,
                                                                            copy=False)
    log_outer = -np.log(outer) + math.log(pi.sum()) + math.log(pj.sum())
    mi = (contingency_nm * (log_contingency_nm - math.log(contingency_sum))
          + contingency_nm * log_outer)
    mi = np.where(np.abs(mi) < np.finfo(mi.dtype).eps, 0.0, mi)
    return float(np.clip(mi.sum(), 0.0, None))


def _sorted_index(labels: np.ndarray) -> np.ndarray:
    """Each label's index in the sorted labels (unused values may leave gaps): for small
    integers the value minus the smallest, else ``np.unique``'s inverse."""
    if labels.dtype.kind in "iu":
        low = int(labels.min())
        if int(labels.max()) - low <= 4 * labels.size + 64:
            return (labels - low).astype(np.intp)
    return np.unique(labels, return_inverse=True)[1].ravel().astype(np.intp)


def _mutual_info(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(n_codes, n_factors) ``mutual_info_score(factor_j, code_i)``: one ``bincount`` per
    factor counts every code's table at once (instead of one sparse contingency matrix
    per pair), then :func:`_mi_from_counts` repeats sklearn's arithmetic on each."""
    n, n_codes = discrete_codes.shape
    m = np.zeros((n_codes, factors.shape[1]))
    if n == 0 or n_codes == 0:
        return m
    bins = np.empty(discrete_codes.shape, dtype=np.intp)
    n_bins = 1
    for i in range(n_codes):
        bins[:, i] = _sorted_index(discrete_codes[:, i])
        n_bins = max(n_bins, int(bins[:, i].max()) + 1)
    for j in range(factors.shape[1]):
        level = _sorted_index(factors[:, j])
        k = int(level.max()) + 1
        keys = bins + (level * n_bins)[:, None] + np.arange(n_codes) * (k * n_bins)
        counts = np.bincount(keys.ravel(), minlength=n_codes * k * n_bins)
        counts = counts.reshape(n_codes, k, n_bins)
        for i in range(n_codes):
            m[i, j] = _mi_from_counts(counts[i])
    return m


def _entropy(factors: np.ndarray) -> np.ndarray:
    return np.array([mutual_info_score(factors[:, j], factors[:, j])
                     for j in range(factors.shape[1])])


def _mig(mi: np.ndarray, entropy: np.ndarray) -> float:
    """MIG of an (n_codes >= 2, n_factors) MI matrix and the factors' (non-zero) entropies."""
    top = np.sort(mi, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / entropy))


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
    return _mig(_mutual_info(_discretize(codes, num_bins), factors), _entropy(factors))


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


for _metric in (mig_score, modularity_score):
    _metric.higher_is_better = True
del _metric
