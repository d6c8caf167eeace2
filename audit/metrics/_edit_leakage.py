"""Edit leakage between attributes with bootstrap intervals, from moments or from shifts.

Attributes follow the conventions of ``_probes``; directions, probes and leakage are those
of ``_directions``.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ._directions import _analyse, _design, _moments
from ._probes import (_CONSTRAINTS, _SINGLE_THREAD_MAX_VALUES, _check_attributes,
                      _percentile_ci)
from ._validation import validate_int, validate_matrix

__all__ = ["entanglement_analysis", "shift_leakage"]

def _robust_se(samples: np.ndarray) -> np.ndarray:
    """Half the central 68.3% range of the bootstrap distribution (the SD if normal)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(samples, [0.15865, 0.84135], axis=0)
    return (q[1] - q[0]) / 2.0


def entanglement_analysis(X, attributes, *, categorical=None, ridge: float = 1e-3,
                          threshold: float = 0.25, n_bootstrap: int = 200,
                          confidence: float = 0.95, random_state=None) -> dict[str, Any]:
    """Joint directions, their cosines, edit leakage and data association, with intervals.

    All quantities of :func:`joint_directions`, :func:`partial_probes`,
    :func:`direction_cosines`, :func:`leakage_matrix` and :func:`attribute_association`
    on the same rows, each with a percentile bootstrap interval (rows resampled with
    replacement and everything refitted), and a one-sided test of ``L[a, b] > threshold``
    per ordered pair: ``z = (L - threshold) / se`` with ``se`` the bootstrap standard error
    (half the central 68.3% range, robust to the heavy tails of a ratio), ``p = 1 - Φ(z)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Latent vectors, finite.
    attributes : sequence of array-like of shape (n_samples,), or 2-D array
        At least one attribute, without missing values.
    categorical : sequence of bool, bool or None, default=None
        Which attributes are categorical (None: all numeric).
    ridge : float, default=1e-3
        Ridge penalty of the partial probes, relative to the mean residual variance, >= 0.
    threshold : float, default=0.25
        Leakage tested against, >= 0.
    n_bootstrap : int, default=200
        Bootstrap resamples, >= 0 (0: intervals and p-values are ``nan``).
    confidence : float, default=0.95
        Level of the intervals, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seeds the bootstrap.

    Returns
    -------
    result : dict
        ``directions``, ``probes`` (n_attributes, n_features); ``cosine``, ``leakage``,
        ``marginal_leakage`` (the same ratio with marginal probes that do not control for
        the other attributes: what a naive analysis would report), ``association``
        (n_attributes, n_attributes); ``cosine_ci``, ``leakage_ci``, ``association_ci``:
        pairs of such matrices (low, high); ``leakage_se`` and ``leakage_p`` (one-sided
        p-values of ``L > threshold``, ``nan`` on the diagonal); ``direction_norm``
        (n_attributes,): the length of each direction, in the units of ``X`` per standard
        deviation; ``n`` and ``n_bootstrap``.

    See Also
    --------
    shift_leakage : the same leakage measured through a decoder and an encoder.

    Examples
    --------
    ``a`` and ``b`` are correlated in the data but encoded on separate axes; ``c`` and ``e``
    are independent but share a direction:

    >>> rng = np.random.default_rng(0)
    >>> n = 1500
    >>> a = rng.normal(size=n); b = 0.8 * a + 0.6 * rng.normal(size=n)
    >>> c = rng.normal(size=n); e = rng.normal(size=n)
    >>> X = np.column_stack([a, b, c + e, e]) + 0.3 * rng.normal(size=(n, 4))
    >>> res = entanglement_analysis(X, [a, b, c, e], n_bootstrap=50, random_state=0)
    >>> round(float(res["association"][0, 1]), 1), round(abs(float(res["cosine"][0, 1])), 1)
    (0.8, 0.0)
    >>> bool(res["leakage"][2, 3] > 0.5), bool(res["leakage"][0, 1] < 0.1)
    (True, True)
    """
    X = validate_matrix(X, "X", min_rows=3)
    attrs, cats = _check_attributes(attributes, categorical, X.shape[0])
    ridge = _CONSTRAINTS["ridge"](ridge)
    threshold = _CONSTRAINTS["threshold"](threshold)
    n_bootstrap = _CONSTRAINTS["n_bootstrap"](n_bootstrap)
    confidence = _CONSTRAINTS["confidence"](confidence)
    rng = check_random_state(random_state)
    n, d = X.shape
    D, blocks = _design(attrs, cats)
    Z = np.hstack([X, D])
    est = _analyse(_moments(Z), d, blocks, cats, ridge, marginal=True)
    m = len(attrs)
    out: dict[str, Any] = {
        "directions": est["directions"], "probes": est["probes"],
        "direction_norm": np.linalg.norm(est["directions"], axis=1),
        "cosine": est["cosine"], "leakage": est["leakage"],
        "marginal_leakage": est["marginal_leakage"], "association": est["association"],
        "n": int(n), "n_bootstrap": int(n_bootstrap), "threshold": threshold,
    }
    nan = np.full((m, m), np.nan)
    if n_bootstrap == 0:
        out.update(cosine_ci=(nan, nan), leakage_ci=(nan, nan), association_ci=(nan, nan),
                   leakage_se=nan.copy(), leakage_p=nan.copy())
        return out
    boots = {k: np.empty((n_bootstrap, m, m)) for k in ("cosine", "leakage", "association")}
    limit = 1 if Z.size <= _SINGLE_THREAD_MAX_VALUES else None
    with threadpool_limits(limits=limit):
        for i in range(n_bootstrap):
            rows = rng.randint(0, n, n)
            Zb = Z[rows]
            # a resample can lose a rare level: its column is then constant (pinv copes)
            r = _analyse(_moments(Zb), d, blocks, cats, ridge)
            for k in boots:
                boots[k][i] = r[k]
    for k in boots:
        out[f"{k}_ci"] = _percentile_ci(boots[k], confidence)
    se = _robust_se(boots["leakage"])
    L = est["leakage"]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (L - threshold) / se
    p = stats.norm.sf(z)
    p = np.where(se > 0, p, np.where(L > threshold, 0.0, 1.0))
    p = np.where(np.isfinite(L), p, np.nan)
    np.fill_diagonal(p, np.nan)
    out["leakage_se"] = se
    out["leakage_p"] = p
    return out


def shift_leakage(shifts, probes, *, source: int, n_bootstrap: int = 200,
                  confidence: float = 0.95, random_state=None) -> dict[str, Any]:
    """Leakage measured from observed latent shifts, e.g. after decode → re-encode.

    Each row of ``shifts`` is how one latent moved (for instance ``enc(dec(z + δ_a)) -
    enc(dec(z))``); every probe reads the mean shift, and the result is each attribute's
    read-out change relative to the ``source`` attribute's own.

    Parameters
    ----------
    shifts : array-like of shape (n_points, n_features)
        Observed latent changes, in the units the probes read.
    probes : array-like of shape (n_attributes, n_features)
        Probe weights, e.g. from :func:`partial_probes`.
    source : int
        Index of the attribute whose direction was followed.
    n_bootstrap : int, default=200
        Resamples of the points for ``ci``, >= 0.
    confidence : float, default=0.95
        Level of ``ci``, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seeds the bootstrap.

    Returns
    -------
    result : dict
        ``leakage`` : ndarray (n_attributes,), ``|mean w_b · s| / |mean w_source · s|``
        (1 at ``source``); ``response`` : ndarray (n_attributes,), the mean read-out change
        in standard deviations (signed); ``ci`` : (low, high) arrays of ``leakage``.

    Examples
    --------
    >>> shifts = np.array([[1.0, 0.2], [1.0, 0.4]])
    >>> res = shift_leakage(shifts, [[1.0, 0.0], [0.0, 1.0]], source=0, n_bootstrap=0)
    >>> res["leakage"].round(3).tolist(), res["response"].round(3).tolist()
    ([1.0, 0.3], [1.0, 0.3])
    """
    S = validate_matrix(shifts, "shifts")
    W = validate_matrix(probes, "probes")
    if W.shape[1] != S.shape[1]:
        raise ValueError(f"probes have {W.shape[1]} features but shifts have {S.shape[1]}")
    source = validate_int(source, "source", low=0, high=W.shape[0] - 1)
    n_bootstrap = _CONSTRAINTS["n_bootstrap"](n_bootstrap)
    confidence = _CONSTRAINTS["confidence"](confidence)
    rng = check_random_state(random_state)
    resp = S @ W.T                                           # (k, m)

    def ratio(r: np.ndarray) -> np.ndarray:
        mean = r.mean(axis=0)
        own = abs(mean[source])
        return np.abs(mean) / own if own > 0 else np.full(mean.shape, np.nan)
    lk = ratio(resp)
    if np.isnan(lk[source]):
        warnings.warn("shift_leakage: the shifts do not move the source attribute's read-out; "
                      "leakage is nan", RuntimeWarning, stacklevel=2)
    ci = (np.full(lk.shape, np.nan), np.full(lk.shape, np.nan))
    if n_bootstrap > 0:
        k = resp.shape[0]
        boot = np.stack([ratio(resp[rng.randint(0, k, k)]) for _ in range(n_bootstrap)])
        ci = _percentile_ci(boot, confidence)
    return {"leakage": lk, "response": resp.mean(axis=0), "ci": ci}
