"""Editing through a generator: each attribute's direction in the prior, and how every
attribute's read-out moves when prior points are moved along it (decode, re-embed, read).

Three stages, each a pure function:

* :func:`readout_probe`: a linear read-out of one attribute on real latents, in standard
  deviations of its score over the real rows (a one-vs-rest logit for a categorical
  attribute, a ridge prediction for a numeric one);
* :func:`prior_direction`: the least-squares direction in prior coordinates (in units of
  the prior's spread) along which that read-out of the generations grows;
* :func:`edit_effects`: from per-point read-out changes, the matrix ``M[a, b]`` (mean change
  of ``b`` when editing ``a``), its relative form ``|M[a, b]| / |M[a, a]|``, bootstrap
  intervals and t-tests.
"""
from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import numpy as np
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ._probes import (_RIDGE_ALPHAS, _SINGLE_THREAD_MAX_VALUES, _percentile_ci,
                      _standardizer, logistic_probe)
from ._validation import (is_missing, validate_float, validate_int, validate_labels,
                          validate_matrix)

__all__ = ["edit_effects", "prior_direction", "readout_probe"]

_CONSTRAINTS = {
    "n_bootstrap": partial(validate_int, name="n_bootstrap", low=0),
    "confidence": partial(validate_float, name="confidence", low=0, high=1, low_open=True,
                          high_open=True),
}


def readout_probe(real, target, *, categorical: bool, target_level=None) -> dict[str, Any]:
    """A linear read-out of one attribute, fitted on real latents: ``X @ weights + bias``
    is the attribute's score in standard deviations over the real rows (0 at their mean).

    Categorical: the logit of ``target == target_level`` from
    :func:`~audit.metrics.logistic_probe` (one level against the rest; by default the most
    frequent level, ties broken by sorted order). Numeric: ``RidgeCV`` on the value (its
    penalty chosen by leave-one-out), as :func:`~audit.metrics.probe_score`. Features are
    z-scored with the real rows' mean and standard deviation first; the returned weights
    fold that in, so they apply to latents as they are.

    Parameters
    ----------
    real : array-like of shape (n_real, n_features)
        Real latents, finite.
    target : array-like of shape (n_real,)
        The attribute, no missing values; categorical: at least two levels; numeric: not
        constant.
    categorical : bool
        Which probe to fit.
    target_level : optional
        The level read (categorical only); default the most frequent one.

    Returns
    -------
    result : dict
        ``weights`` (n_features,), ``bias`` (float), ``target_level`` (the level, or None
        for a numeric attribute), ``scale`` (the standard deviation of the raw score over
        the real rows that the weights were divided by).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> p = readout_probe(X, 2 * X[:, 1] + 0.1 * rng.normal(size=500), categorical=False)
    >>> s = X @ p["weights"] + p["bias"]
    >>> bool(abs(s.mean()) < 1e-9), round(float(s.std()), 6)
    (True, 1.0)
    >>> p = readout_probe(X, np.where(X[:, 0] > 1, "rare", "common"), categorical=True)
    >>> p["target_level"], bool(p["weights"][0] < 0)    # "common" falls as x0 grows
    ('common', True)
    """
    X = validate_matrix(real, "real", min_rows=3)
    y = validate_labels(target, "target", X.shape[0])
    mu, sd = _standardizer(X)
    Xs = (X - mu) / sd
    limit = 1 if X.size <= _SINGLE_THREAD_MAX_VALUES else None
    if categorical:
        keyed = y.astype(str) if y.dtype == object else y
        if y.dtype == object and any(is_missing(v) for v in y.tolist()):
            raise ValueError("target has missing values; drop those rows first")
        levels, counts = np.unique(keyed, return_counts=True)
        if levels.size < 2:
            raise ValueError("target takes a single value: it has no direction")
        if target_level is None:
            level = levels[np.argmax(counts)]
        else:
            level = str(target_level) if y.dtype == object else target_level
            if level not in set(levels.tolist()):
                raise ValueError(f"target_level {target_level!r} is not a level of target")
        yy = (keyed == level).astype(int)
        with threadpool_limits(limits=limit), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = logistic_probe().fit(Xs, yy)
        w, b = clf.coef_[0], float(clf.intercept_[0])
        level = level.item() if isinstance(level, np.generic) else level
    else:
        try:
            yy = y.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError("target is not numeric; pass categorical=True") from None
        if not np.isfinite(yy).all():
            raise ValueError("target has NaN or Inf values; drop those rows first")
        if np.ptp(yy) == 0:
            raise ValueError("target takes a single value: it has no direction")
        with threadpool_limits(limits=limit):
            reg = RidgeCV(alphas=_RIDGE_ALPHAS).fit(Xs, yy)
        w, b = np.asarray(reg.coef_, dtype=float), float(reg.intercept_)
        level = None
    raw = Xs @ w + b
    scale = float(raw.std())
    if not scale > 0:
        raise ValueError("the probe's score is constant over the real rows")
    weights = w / sd / scale
    bias = float((b - raw.mean() - (mu / sd) @ w) / scale)
    return {"weights": weights, "bias": bias, "target_level": level, "scale": scale}


def prior_direction(z, scores, *, scale=None) -> dict[str, Any]:
    """The direction in the prior along which a read-out of the generations grows: the
    least-squares fit ``scores ≈ c + (z / scale) · w``, normalised.

    Parameters
    ----------
    z : array-like of shape (n_samples, n_prior)
        Prior coordinates of the generations.
    scores : array-like of shape (n_samples,)
        An attribute's read-out of each generation (e.g. from :func:`readout_probe`).
    scale : array-like of shape (n_prior,), default=None
        The prior's spread per coordinate (``Prior.scale()``); the direction is in these
        units, so a step of ``t`` moves a point by ``t * scale * direction``. None: 1.

    Returns
    -------
    result : dict
        ``direction`` (n_prior,), unit norm (zeros when the scores do not vary with
        ``z``); ``slope``: the read-out's change per unit step along it (``|w|``);
        ``r2``: the share of the read-out's variance the linear fit explains.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3))
    >>> res = prior_direction(z, np.tanh(z[:, 0] + z[:, 1]))
    >>> np.round(res["direction"], 1).tolist(), res["r2"] > 0.8
    ([0.7, 0.7, 0.0], True)
    """
    Z = validate_matrix(z, "z", min_rows=3)
    s = np.asarray(validate_labels(scores, "scores", Z.shape[0]), dtype=float)
    if not np.isfinite(s).all():
        raise ValueError("scores has NaN or Inf values")
    if scale is None:
        sc = np.ones(Z.shape[1])
    else:
        sc = np.asarray(scale, dtype=float).ravel()
        if sc.shape != (Z.shape[1],) or not np.all(np.isfinite(sc) & (sc > 0)):
            raise ValueError(f"scale must hold {Z.shape[1]} positive finite values")
    U = Z / sc
    A = np.column_stack([np.ones(len(U)), U - U.mean(axis=0)])
    coef, *_ = np.linalg.lstsq(A, s, rcond=None)
    w = coef[1:]
    slope = float(np.linalg.norm(w))
    if np.ptp(s) == 0:                       # a constant read-out has no direction
        w, slope = np.zeros_like(w), 0.0
    sst = float(np.sum((s - s.mean()) ** 2))
    r2 = float(1 - np.sum((s - A @ coef) ** 2) / sst) if sst > 0 else float("nan")
    direction = w / slope if slope > 0 else np.zeros_like(w)
    return {"direction": direction, "slope": slope, "r2": r2}


def edit_effects(changes, *, n_bootstrap: int = 500, confidence: float = 0.95,
                 random_state=None) -> dict[str, Any]:
    """The edit matrix from per-point read-out changes, with intervals and tests.

    ``changes[a, i, b]`` is how far attribute ``b``'s read-out moved at point ``i`` when the
    point was edited along attribute ``a``'s direction. ``M[a, b]`` is its mean over the
    points; the relative leakage ``R[a, b] = |M[a, b]| / |M[a, a]|`` puts every attribute's
    move in units of the intended one (``R[a, a] = 1``). Intervals: percentile bootstrap
    over the points (one resample of the points per edit serves a whole row, so ``R`` is
    resampled as a ratio). Tests: a two-sided one-sample t-test of ``M[a, b] = 0`` per entry
    (points are independent prior draws; an entry whose changes are all equal gets 0 when
    they are not 0, else 1).

    Parameters
    ----------
    changes : array-like of shape (n_edits, n_points, n_attributes)
        Read-out changes, finite; ``n_edits <= n_attributes`` (edit ``a`` is attribute
        ``a``), ``n_points >= 2``.
    n_bootstrap : int, default=500
        Resamples, >= 0 (0: intervals are ``nan``).
    confidence : float, default=0.95
        Level of the intervals, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seeds the bootstrap.

    Returns
    -------
    result : dict
        ``matrix`` (n_edits, n_attributes) with ``matrix_ci`` (low, high), ``relative``
        with ``relative_ci`` (nan in a row whose diagonal is 0), ``p_value`` (t-tests),
        ``n_points``, ``n_bootstrap``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> edit_a = np.column_stack([1 + 0.1 * rng.normal(size=200), 0.1 * rng.normal(size=200)])
    >>> edit_b = np.column_stack([0.5 + 0.1 * rng.normal(size=200), np.ones(200)])
    >>> res = edit_effects(np.stack([edit_a, edit_b]), random_state=0)
    >>> np.round(res["matrix"], 1).tolist(), np.round(res["relative"], 1).tolist()
    ([[1.0, -0.0], [0.5, 1.0]], [[1.0, 0.0], [0.5, 1.0]])
    >>> bool(res["p_value"][0, 1] > 0.05), bool(res["p_value"][1, 0] < 1e-6)
    (True, True)
    """
    C = np.asarray(changes, dtype=float)
    if C.ndim != 3:
        raise ValueError(f"changes must be 3-D (n_edits, n_points, n_attributes), got shape "
                         f"{C.shape}")
    m_edit, n, m = C.shape
    if m_edit < 1 or m_edit > m:
        raise ValueError(f"changes has {m_edit} edits for {m} attributes")
    if n < 2:
        raise ValueError(f"changes needs at least 2 points, got {n}")
    if not np.isfinite(C).all():
        raise ValueError("changes contains NaN or Inf")
    n_bootstrap = _CONSTRAINTS["n_bootstrap"](n_bootstrap)
    confidence = _CONSTRAINTS["confidence"](confidence)
    rng = check_random_state(random_state)
    diag = np.arange(m_edit)

    def relative(M: np.ndarray) -> np.ndarray:
        own = np.abs(M[..., diag, diag])[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(own > 0, np.abs(M) / np.where(own > 0, own, 1.0), np.nan)

    M = C.mean(axis=1)
    equal = np.ptp(C, axis=1) == 0
    M = np.where(equal, C[:, 0, :], M)           # exact where every change is the same
    sd = np.where(equal, 1.0, C.std(axis=1, ddof=1))
    t = M / (sd / np.sqrt(n))
    p = np.where(equal, np.where(M != 0, 0.0, 1.0), 2 * stats.t.sf(np.abs(t), n - 1))
    R = relative(M)
    nan = np.full(M.shape, np.nan)
    out = {"matrix": M, "relative": R, "p_value": p, "n_points": int(n),
           "n_bootstrap": int(n_bootstrap), "matrix_ci": (nan, nan.copy()),
           "relative_ci": (nan.copy(), nan.copy())}
    if n_bootstrap == 0:
        return out
    boot = np.empty((n_bootstrap, m_edit, m))
    for a in range(m_edit):
        for start in range(0, n_bootstrap, 100):
            stop = min(n_bootstrap, start + 100)
            idx = rng.randint(0, n, (stop - start, n))
            boot[start:stop, a] = C[a][idx].mean(axis=1)
    out["matrix_ci"] = _percentile_ci(boot, confidence)
    out["relative_ci"] = _percentile_ci(relative(boot), confidence)
    return out
