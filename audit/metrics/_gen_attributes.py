"""What a generator over- or under-produces: a probe trained on real latents reads the
generations, and the level shares it reads are compared with the shares it reads on the real
data (out of fold), so that the probe's own errors enter both sides alike.

If the probe's confusion matrix ``C[i, j] = P(read j | true i)`` is the same on real and
generated latents, the shares it reads are ``Cᵀ π`` on both sides: equal true shares give
equal read shares, so a test of the read shares is a valid test of the true ones (its
effect is attenuated by probe errors, never created by them).
"""
from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import numpy as np
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ._probes import (_MAX_ITER, _SINGLE_THREAD_MAX_VALUES, _balanced_accuracy, _codes,
                      _percentile_ci, _standardizer, out_of_fold)
from ._validation import (is_missing, validate_float, validate_int, validate_labels,
                          validate_matrix)

__all__ = ["newcombe_interval", "probe_read_levels", "share_comparison"]

_CONSTRAINTS = {
    "cv": partial(validate_int, name="cv", low=2),
    "n_bootstrap": partial(validate_int, name="n_bootstrap", low=0),
    "confidence": partial(validate_float, name="confidence", low=0, high=1, low_open=True,
                          high_open=True),
    "n_levels": partial(validate_int, name="n_levels", low=2),
}


def _wilson(k: np.ndarray, n: int, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval of ``k / n`` (``n > 0``)."""
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return np.maximum(0.0, centre - half), np.minimum(1.0, centre + half)


def newcombe_interval(k1, n1, k2, n2, *, confidence: float = 0.95
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval of the difference ``k1/n1 - k2/n2`` of two
    independent proportions (his method 10: from the two Wilson intervals).

    Parameters
    ----------
    k1, k2 : array-like of int
        Successes in each sample (broadcast together).
    n1, n2 : int
        Sample sizes, >= 1.
    confidence : float, default=0.95
        Level, in (0, 1).

    Returns
    -------
    low, high : ndarray of float

    References
    ----------
    .. [1] R. G. Newcombe, "Interval estimation for the difference between independent
       proportions: comparison of eleven methods", Statistics in Medicine 17, 1998.

    Examples
    --------
    Newcombe's example (a), 56/70 - 48/80 = 0.1833:

    >>> lo, hi = newcombe_interval(56, 70, 48, 80)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.0524, 0.3339)
    """
    n1 = validate_int(n1, "n1", low=1)
    n2 = validate_int(n2, "n2", low=1)
    confidence = _CONSTRAINTS["confidence"](confidence)
    k1 = np.asarray(k1, dtype=float)
    k2 = np.asarray(k2, dtype=float)
    if np.any((k1 < 0) | (k1 > n1)) or np.any((k2 < 0) | (k2 > n2)):
        raise ValueError("successes must lie in [0, n]")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = _wilson(k1, n1, z)
    l2, u2 = _wilson(k2, n2, z)
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def probe_read_levels(real, labels, generated, *, cv: int = 5, n_bootstrap: int = 200,
                      confidence: float = 0.95, balanced: bool = False,
                      random_state=None) -> dict[str, Any]:
    """Train a linear probe of a categorical column on real latents; read the real rows
    out of fold and every generation with the probe fitted on all real rows.

    The probe is a multinomial logistic regression (lbfgs, L2 with ``C=1``) on features
    z-scored with the training rows' mean and standard deviation, as
    :func:`~audit.metrics.probe_score`; folds are shuffled and stratified. It reads each
    sample as its most probable level. By default the classes are not reweighted:
    ``class_weight="balanced"`` (``balanced=True``, the codebase's probe for *how well* a
    column is encoded) moves the boundary into the larger levels, so both sides' read
    shares of a small level come out inflated; unweighted, the read shares stay close to
    the true ones wherever the probe reads well (a weak probe shrinks small levels instead:
    the comparison stays valid, its gaps only smaller).

    Parameters
    ----------
    real : array-like of shape (n_real, n_features)
        Real latents, finite.
    labels : array-like of shape (n_real,)
        The column's level for each real row, no missing values; at least two levels,
        each with at least ``cv`` rows.
    generated : array-like of shape (n_generated, n_features) or None
        Latents of the generations, finite, in the same space as ``real`` (None: only the
        cross-validated read-out of the real rows).
    cv : int, default=5
        Folds, >= 2.
    n_bootstrap : int, default=200
        Resamples of the out-of-fold predictions for the interval of the balanced
        accuracy, >= 0 (0: ``nan``).
    confidence : float, default=0.95
        Level of that interval, in (0, 1).
    balanced : bool, default=False
        Fit with ``class_weight="balanced"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds and the bootstrap.

    Returns
    -------
    result : dict
        ``levels`` (list, sorted; the codes below index it), ``labels`` (int codes of the
        real rows), ``real_read`` (out-of-fold codes read on the real rows), ``generated_read``
        (codes read on the generations), ``generated_proba`` (n_generated, n_levels),
        ``balanced_accuracy`` (out of fold) with ``ci``, ``chance`` (``1 / n_levels``),
        ``confusion`` (n_levels, n_levels): ``P(read j | labelled i)`` out of fold, and
        ``n_real``, ``n_generated``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 3)); y = np.where(X[:, 0] > 0.5, "B", "A")
    >>> G = rng.normal(size=(900, 3)); G[:, 0] = np.abs(G[:, 0]) * -1
    >>> res = probe_read_levels(X, y, G, random_state=0)
    >>> res["levels"], res["balanced_accuracy"] > 0.95
    (['A', 'B'], True)
    >>> float(np.mean(res["generated_read"] == 1))    # no generation is B
    0.0
    """
    X = validate_matrix(real, "real", min_rows=2)
    G = (validate_matrix(generated, "generated", min_rows=1) if generated is not None
         else np.empty((0, X.shape[1])))
    if G.shape[1] != X.shape[1]:
        raise ValueError(f"generated has {G.shape[1]} features but real has {X.shape[1]}")
    y = validate_labels(labels, "labels", X.shape[0])
    if y.dtype == object and any(is_missing(v) for v in y.tolist()):
        raise ValueError("labels has missing values; drop those rows first")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError("labels has missing values; drop those rows first")
    cv = _CONSTRAINTS["cv"](cv)
    n_bootstrap = _CONSTRAINTS["n_bootstrap"](n_bootstrap)
    confidence = _CONSTRAINTS["confidence"](confidence)
    rng = check_random_state(random_state)
    seed = rng.randint(np.iinfo(np.int32).max)
    codes, levels = _codes(y.astype(object) if y.dtype.kind not in "iub" else y)
    k = len(levels)
    if k < 2:
        raise ValueError("labels takes a single value: there is nothing to read")
    counts = np.bincount(codes, minlength=k)
    if counts.min() < cv:
        small = [levels[j] for j in np.flatnonzero(counts < cv)]
        raise ValueError(f"level(s) {small} have fewer than cv={cv} rows; merge or drop them "
                         "first")
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed).split(X, codes)

    def model() -> LogisticRegression:
        return LogisticRegression(class_weight="balanced" if balanced else None,
                                  max_iter=_MAX_ITER)
    limit = 1 if X.size + G.size <= _SINGLE_THREAD_MAX_VALUES else None
    with threadpool_limits(limits=limit), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        real_read, _ = out_of_fold(X, codes, folds, model, output="predict")
        mu, sd = _standardizer(X)
        clf = model().fit((X - mu) / sd, codes)
        proba = (clf.predict_proba((G - mu) / sd) if len(G)
                 else np.empty((0, len(clf.classes_))))
    gen_read = np.asarray(clf.classes_)[np.argmax(proba, axis=1)].astype(np.intp)
    full = np.zeros((G.shape[0], k))
    full[:, np.asarray(clf.classes_, dtype=np.intp)] = proba
    ba = _balanced_accuracy(real_read, codes, k)
    ci = (float("nan"), float("nan"))
    if n_bootstrap > 0:
        n = X.shape[0]
        boot = np.empty(n_bootstrap)
        for i in range(n_bootstrap):
            idx = rng.randint(0, n, n)
            boot[i] = _balanced_accuracy(real_read[idx], codes[idx], k)
        lo, hi = _percentile_ci(boot[:, None], confidence)
        ci = (float(lo[0]), float(hi[0]))
    confusion = np.zeros((k, k))
    np.add.at(confusion, (codes, real_read), 1.0)
    confusion /= confusion.sum(axis=1, keepdims=True)
    return {"levels": [v.item() if isinstance(v, np.generic) else v for v in levels],
            "labels": codes, "real_read": np.asarray(real_read, dtype=np.intp),
            "generated_read": gen_read, "generated_proba": full,
            "balanced_accuracy": float(ba), "ci": ci, "chance": 1.0 / k,
            "confusion": confusion, "n_real": int(X.shape[0]), "n_generated": int(G.shape[0])}


def share_comparison(real_read, generated_read, *, n_levels: int,
                     confidence: float = 0.95) -> dict[str, Any]:
    """Level shares of two samples of codes (the real data and the generations, both as one
    probe reads them), compared level by level and as a whole.

    Per level: both shares with Wilson intervals, the gap ``generated - real`` with
    Newcombe's hybrid score interval (:func:`newcombe_interval`), the ratio
    ``generated / real``, and a two-sided two-proportion z-test (pooled variance; equal to
    Pearson's chi-square on the level-vs-rest 2×2 table). As a whole: Pearson's chi-square
    test of homogeneity of the 2 × n_levels table (the generations' distribution against
    the data's, the data's own sampling error counted: a goodness-of-fit test that took the
    data's shares as exact would reject too often), with Cramér's V.

    Parameters
    ----------
    real_read, generated_read : array-like of int
        Codes in ``[0, n_levels)``; at least one of each.
    n_levels : int
        Number of levels, >= 2.
    confidence : float, default=0.95
        Level of the intervals, in (0, 1).

    Returns
    -------
    result : dict
        Arrays of shape (n_levels,): ``real_count``, ``generated_count``, ``real_share``,
        ``generated_share``, ``real_ci`` and ``generated_ci`` (pairs of arrays), ``gap``
        with ``gap_ci``, ``ratio`` (``inf`` when the data has none of a level the
        generations have, ``nan`` when neither has it), ``p_value`` (1 where both shares
        are 0 or both 1); scalars ``n_real``, ``n_generated``, ``chi2``, ``dof``,
        ``chi2_p_value``, ``cramers_v`` (nan with fewer than two levels present).

    See Also
    --------
    benjamini_hochberg : correct the per-level p-values.

    Examples
    --------
    >>> real = np.array([0] * 690 + [1] * 310)
    >>> gen = np.array([0] * 1760 + [1] * 240)
    >>> res = share_comparison(real, gen, n_levels=2)
    >>> res["real_share"].round(2).tolist(), res["generated_share"].round(2).tolist()
    ([0.69, 0.31], [0.88, 0.12])
    >>> [round(float(v), 3) for v in (res["generated_ci"][0][1], res["generated_ci"][1][1])]
    [0.106, 0.135]
    >>> round(float(res["ratio"][1]), 3), bool(res["p_value"][1] < 1e-30)
    (0.387, True)
    >>> res["dof"], round(res["chi2"], 1)
    (1, 160.7)
    """
    n_levels = _CONSTRAINTS["n_levels"](n_levels)
    confidence = _CONSTRAINTS["confidence"](confidence)
    r = np.asarray(validate_labels(real_read, "real_read"))
    g = np.asarray(validate_labels(generated_read, "generated_read"))
    for arr, name in ((r, "real_read"), (g, "generated_read")):
        if arr.size == 0:
            raise ValueError(f"{name} is empty")
        if arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= n_levels:
            raise ValueError(f"{name} must hold integer codes in [0, {n_levels})")
    rc = np.bincount(r, minlength=n_levels).astype(float)
    gc = np.bincount(g, minlength=n_levels).astype(float)
    nr, ng = int(r.size), int(g.size)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    rs, gs = rc / nr, gc / ng
    real_ci = _wilson(rc, nr, z)
    gen_ci = _wilson(gc, ng, z)
    gap_ci = newcombe_interval(gc, ng, rc, nr, confidence=confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rs > 0, gs / np.where(rs > 0, rs, 1.0),
                         np.where(gs > 0, np.inf, np.nan))
        pooled = (rc + gc) / (nr + ng)
        se = np.sqrt(pooled * (1 - pooled) * (1 / nr + 1 / ng))
        zstat = np.where(se > 0, (gs - rs) / np.where(se > 0, se, 1.0), 0.0)
    p = 2 * stats.norm.sf(np.abs(zstat))
    present = (rc + gc) > 0
    chi2, dof, chi_p, v = float("nan"), 0, float("nan"), float("nan")
    if present.sum() >= 2:
        table = np.vstack([rc[present], gc[present]])
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) \
            / table.sum()
        chi2 = float(np.sum((table - expected) ** 2 / expected))
        dof = int(present.sum() - 1)
        chi_p = float(stats.chi2.sf(chi2, dof))
        v = float(np.sqrt(chi2 / (nr + ng)))          # min(rows, cols) - 1 = 1
    return {"real_count": rc.astype(int), "generated_count": gc.astype(int),
            "real_share": rs, "generated_share": gs, "real_ci": real_ci,
            "generated_ci": gen_ci, "gap": gs - rs, "gap_ci": gap_ci, "ratio": ratio,
            "p_value": p, "n_real": nr, "n_generated": ng, "chi2": chi2, "dof": dof,
            "chi2_p_value": chi_p, "cramers_v": v}
