"""The linear probe of one attribute, and the attribute checks its sibling modules share.

Conventions shared with ``_directions``, ``_edit_leakage`` and ``_direction_consistency``:

* ``attributes`` is a sequence of 1-D arrays of length ``n_samples``, one per attribute,
  with ``categorical`` saying which are categorical. Numeric attributes are z-scored, so a
  "step of one" is one standard deviation; categorical ones are one-hot coded (the most
  frequent level is the reference) and centred. Missing values are not accepted: drop or
  fill them first (the ``entanglement`` check drops rows and counts them).
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ._validation import (is_missing, validate_float, validate_int, validate_labels,
                          validate_matrix)

__all__ = ["probe_score", "logistic_probe", "out_of_fold"]

_CONSTRAINTS = {
    "cv": partial(validate_int, name="cv", low=2),
    "n_bootstrap": partial(validate_int, name="n_bootstrap", low=0),
    "n_permutations": partial(validate_int, name="n_permutations", low=0),
    "min_group_size": partial(validate_int, name="min_group_size", low=2),
    "confidence": partial(validate_float, name="confidence", low=0, high=1, low_open=True,
                          high_open=True),
    "ridge": partial(validate_float, name="ridge", low=0),
    "threshold": partial(validate_float, name="threshold", low=0),
}
_RIDGE_ALPHAS = np.logspace(-3, 4, 15)
# lbfgs iterations of every logistic probe (here and in _probe_leakage); a limit only matters
# for a fit that has not converged by then
_MAX_ITER = 500
# One BLAS thread for the many small fits: threads only add overhead there.
_SINGLE_THREAD_MAX_VALUES = 1 << 22


# ---- validation --------------------------------------------------------------------------

def _check_attributes(attributes: Any, categorical: Any, n: int
                      ) -> tuple[list[np.ndarray], list[bool]]:
    if isinstance(attributes, np.ndarray) and attributes.ndim == 2:
        attributes = [attributes[:, j] for j in range(attributes.shape[1])]
    if isinstance(attributes, np.ndarray) and attributes.ndim == 1:
        attributes = [attributes]
    attributes = list(attributes)
    if not attributes:
        raise ValueError("attributes is empty: give at least one attribute")
    if categorical is None:
        categorical = [False] * len(attributes)
    elif isinstance(categorical, (bool, np.bool_)):
        categorical = [bool(categorical)] * len(attributes)
    categorical = [bool(c) for c in categorical]
    if len(categorical) != len(attributes):
        raise ValueError(f"categorical has {len(categorical)} entries but there are "
                         f"{len(attributes)} attributes")
    out = []
    for j, (a, cat) in enumerate(zip(attributes, categorical)):
        arr = validate_labels(a, f"attributes[{j}]", n)
        if cat:
            arr = arr.astype(object) if arr.dtype.kind not in "iub" else arr
            if arr.dtype == object and any(is_missing(v) for v in arr.tolist()):
                raise ValueError(f"attributes[{j}] has missing values; drop those rows first")
            if np.unique(arr.astype(str) if arr.dtype == object else arr).size < 2:
                raise ValueError(f"attributes[{j}] takes a single value: it has no direction")
        else:
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"attributes[{j}] is not numeric; pass categorical=True for "
                                 "it") from None
            if not np.isfinite(arr).all():
                raise ValueError(f"attributes[{j}] has NaN or Inf values; drop those rows "
                                 "first")
            if np.ptp(arr) == 0:
                raise ValueError(f"attributes[{j}] takes a single value: it has no direction")
        out.append(arr)
    return out, categorical


# ---- private stages (trust their inputs) ----------------------------------------------------

def _codes(values: np.ndarray) -> tuple[np.ndarray, list]:
    """Integer codes of categorical labels (sorted levels) and the levels."""
    keyed = values.astype(str) if values.dtype == object else values
    levels, inv = np.unique(keyed, return_inverse=True)
    return inv.astype(np.intp), levels.tolist()


def _percentile_ci(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = 1.0 - confidence
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanquantile(samples, alpha / 2, axis=0)
        hi = np.nanquantile(samples, 1 - alpha / 2, axis=0)
    return lo, hi


def logistic_probe() -> LogisticRegression:
    """The linear probe of a categorical target: lbfgs, L2 with ``C=1``,
    ``class_weight="balanced"``, at most ``_MAX_ITER`` iterations."""
    return LogisticRegression(class_weight="balanced", max_iter=_MAX_ITER)


def _standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each column; a constant column keeps scale 1."""
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd <= 1e-12 * (1.0 + np.abs(mu))] = 1.0
    return mu, sd


def threads() -> int:
    """Worker threads for independent fits: the cores this process may use, at most 8.
    The fits (BLAS, sklearn's Cython loops) release the GIL; every fit is the same as a
    serial one, so results do not depend on this number."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:                      # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def thread_map(fn, items: list, workers: int) -> list:
    """``[fn(x) for x in items]``, in threads when ``workers > 1`` (results in order)."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def out_of_fold(X: np.ndarray, target: np.ndarray, folds, model, *,
                output: str = "predict", design: np.ndarray | None = None,
                workers: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """The cross-validated probe: out-of-fold outputs and each fold's coefficients.

    For each ``(train, test)`` of ``folds`` a fresh ``model()`` is fitted on the training
    rows and applied to the test rows by its method ``output`` (``"predict"``,
    ``"decision_function"`` or ``"predict_proba"``). With ``design``, ``X`` is first
    residualised on it with least-squares coefficients of the training fold only;
    features are then standardised with the training fold's mean and standard deviation.
    The folds are independent fits: ``workers > 1`` runs them in that many threads, with
    the same results. Shared by :func:`probe_score` and
    :func:`~audit.metrics.probe_leakage`; private, trusts its inputs.
    """
    def fit(fold: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        train, test = fold
        x_train, x_test = X[train], X[test]
        if design is not None:
            beta = np.linalg.lstsq(design[train], x_train, rcond=None)[0]
            x_train = x_train - design[train] @ beta
            x_test = x_test - design[test] @ beta
        mu, sd = _standardizer(x_train)
        clf = model()
        clf.fit((x_train - mu) / sd, target[train])
        return getattr(clf, output)((x_test - mu) / sd), clf.coef_

    folds = list(folds)
    out: np.ndarray | None = None
    coefs = []
    for (_, test), (values, coef) in zip(folds, thread_map(fit, folds, workers)):
        if out is None:
            out = np.empty((X.shape[0],) + values.shape[1:], dtype=values.dtype)
        out[test] = values
        coefs.append(coef)
    return out, coefs


def _balanced_accuracy(pred: np.ndarray, y: np.ndarray, k: int) -> float:
    per_class = []
    for c in range(k):
        members = y == c
        if members.any():
            per_class.append(np.mean(pred[members] == c))
    return float(np.mean(per_class))


def _r2(pred: np.ndarray, y: np.ndarray) -> float:
    sst = np.sum((y - y.mean()) ** 2)
    return float(1.0 - np.sum((y - pred) ** 2) / sst) if sst > 0 else float("nan")


# ---- public functions -------------------------------------------------------------------------

def probe_score(X, y, *, categorical: bool, cv: int = 5, n_bootstrap: int = 200,
                confidence: float = 0.95, random_state=None) -> dict[str, Any]:
    """How much of one attribute a cross-validated linear probe reads from the latents.

    Categorical attributes: multinomial logistic regression (lbfgs, L2 with ``C=1``,
    ``class_weight="balanced"``), scored by balanced accuracy over shuffled stratified
    folds. Numeric attributes: ridge regression with its penalty chosen by efficient
    leave-one-out inside each training fold (``RidgeCV``), scored by the out-of-fold R².
    Features are z-scored with each training fold's mean and standard deviation.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Latent vectors, finite.
    y : array-like of shape (n_samples,)
        The attribute, without missing values. Categorical: at least two levels, each with
        at least ``cv`` members. Numeric: finite and not constant.
    categorical : bool
        Which probe to fit (keyword-only, no default: the caller decides).
    cv : int, default=5
        Number of folds, >= 2.
    n_bootstrap : int, default=200
        Resamples of the out-of-fold predictions for ``ci`` and ``p_value``, >= 0 (0 gives
        ``nan``).
    confidence : float, default=0.95
        Level of ``ci``, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seeds the folds and the bootstrap.

    Returns
    -------
    result : dict
        ``score`` : float
            Balanced accuracy (categorical) or out-of-fold R² (numeric); higher is better.
        ``chance`` : float
            The score of a probe that reads nothing: ``1 / n_levels`` for balanced accuracy,
            0 for R² (which can dip slightly below 0 out of fold).
        ``ci`` : tuple of float
            Percentile bootstrap interval of the score, resampling evaluation rows (the
            probe is not refitted, so it covers the sampling of test points only).
        ``p_value`` : float
            Bootstrap test of "no better than chance": ``(count + 1) / (n_bootstrap + 1)``
            with ``count`` the resampled scores at or below ``chance``.
        ``metric`` : str
            ``"balanced_accuracy"`` or ``"r2"``.
        ``direction`` : ndarray of shape (n_features,)
            Unit vector of the probe fitted on all rows, in the units of ``X`` (the
            leading right singular vector of the centred coefficients for more than two
            levels, its sign making the largest component positive).
        ``levels`` : list
            The levels, in the order of the classes (categorical), else ``[]``.
        ``n`` : int

    See Also
    --------
    entanglement_analysis : directions controlled for the other attributes.

    References
    ----------
    .. [1] Alain, G., Bengio, Y. (2017). Understanding intermediate layers using linear
       classifier probes. ICLR workshop.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 4))
    >>> y = X[:, 0] + 0.5 * rng.normal(size=400)
    >>> res = probe_score(X, y, categorical=False, random_state=0)
    >>> round(res["score"], 2), res["chance"], res["metric"]
    (0.76, 0.0, 'r2')
    >>> res["ci"][0] < res["score"] < res["ci"][1], res["p_value"] < 0.01
    (True, True)
    >>> abs(np.round(res["direction"], 1)).tolist()
    [1.0, 0.1, 0.0, 0.0]
    >>> labels = np.where(X[:, 1] > 0, "up", "down")
    >>> res = probe_score(X, labels, categorical=True, random_state=0)
    >>> res["score"] > 0.9, res["chance"], res["levels"]
    (True, 0.5, ['down', 'up'])
    """
    X = validate_matrix(X, "X", min_rows=2)
    n = X.shape[0]
    (y,), (cat,) = _check_attributes([y], [categorical], n)
    cv = _CONSTRAINTS["cv"](cv)
    n_bootstrap = _CONSTRAINTS["n_bootstrap"](n_bootstrap)
    confidence = _CONSTRAINTS["confidence"](confidence)
    rng = check_random_state(random_state)
    seed = rng.randint(np.iinfo(np.int32).max)
    if cat:
        codes, levels = _codes(y)
        counts = np.bincount(codes)
        if counts.min() < cv:
            small = [levels[k] for k in np.flatnonzero(counts < cv)]
            raise ValueError(f"level(s) {small} have fewer than cv={cv} members; merge or "
                             "drop them first")
        k = len(levels)
        folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed).split(X, codes)
        target = codes
    else:
        if n < cv:
            raise ValueError(f"needs at least cv={cv} rows, got {n}")
        levels, k = [], 0
        folds = KFold(n_splits=cv, shuffle=True, random_state=seed).split(X)
        target = y
    model = logistic_probe if cat else partial(RidgeCV, alphas=_RIDGE_ALPHAS)
    limit = 1 if X.size <= _SINGLE_THREAD_MAX_VALUES else None
    with threadpool_limits(limits=limit), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pred, _ = out_of_fold(X, target, folds, model, output="predict",
                              workers=threads() if limit == 1 else 1)
        mu, sd = _standardizer(X)
        full = model().fit((X - mu) / sd, target)
    coef = np.atleast_2d(full.coef_) / sd                   # back to the units of X
    if coef.shape[0] > 1:
        coef = np.linalg.svd(coef - coef.mean(axis=0), full_matrices=False)[2][:1]
        if coef[0, np.argmax(np.abs(coef[0]))] < 0:
            coef = -coef
    norm = np.linalg.norm(coef[0])
    direction = coef[0] / norm if norm > 0 else coef[0]
    if cat:
        score = _balanced_accuracy(pred, codes, k)
        chance = 1.0 / k
    else:
        score = _r2(pred, y)
        chance = 0.0
    ci = (float("nan"), float("nan"))
    p_value = float("nan")
    if n_bootstrap > 0:
        boot = np.empty(n_bootstrap)
        for i in range(n_bootstrap):
            idx = rng.randint(0, n, n)
            boot[i] = (_balanced_accuracy(pred[idx], codes[idx], k) if cat
                       else _r2(pred[idx], y[idx]))
        lo, hi = _percentile_ci(boot[:, None], confidence)
        ci = (float(lo[0]), float(hi[0]))
        p_value = float((np.sum(~(boot > chance)) + 1) / (n_bootstrap + 1))
    return {"score": float(score), "chance": float(chance), "ci": ci, "p_value": p_value,
            "metric": "balanced_accuracy" if cat else "r2", "direction": direction,
            "levels": [v.item() if isinstance(v, np.generic) else v for v in levels],
            "n": int(n)}


for _fn in (probe_score,):
    _fn.higher_is_better = True
del _fn
