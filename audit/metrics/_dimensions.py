"""Per-dimension statistics of a latent code: variance, and a test for dead dimensions.

A dimension is *dead* (in a VAE: posterior collapse) when it barely varies compared with
the others. :func:`dead_dimension_test` measures each dimension's variance relative to
the median dimension's and tests, on the log scale with a bootstrap standard error,
whether that ratio is below a threshold.
"""
from __future__ import annotations

import math
import warnings
from functools import partial

import numpy as np
from scipy import stats

from ._validation import validate_float, validate_int

__all__ = ["column_variance", "dead_dimension_test"]

_CONSTRAINTS = {
    "threshold": partial(validate_float, name="threshold", low=0, high=1, low_open=True,
                         high_open=True),
    "n_bootstrap": partial(validate_int, name="n_bootstrap", low=2),
    "confidence": partial(validate_float, name="confidence", low=0, high=1, low_open=True,
                          high_open=True),
    "chunk": partial(validate_int, name="chunk", low=1),
}


def _check_2d(x, name: str, *, min_rows: int = 1) -> np.ndarray:
    """A 2-D numeric array as it is (no float64 copy of a large N×d array)."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {arr.shape[0]}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr


def column_variance(x, *, chunk: int = 65_536) -> np.ndarray:
    """Variance of each column in float64 (``x.var(axis=0)``), in two passes over row
    chunks so a large float32 array is never copied whole to float64.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
    chunk : int, default=65536
        Rows per pass (>= 1); the result does not depend on it beyond rounding.

    Returns
    -------
    ndarray of shape (n_features,)

    Examples
    --------
    >>> column_variance(np.array([[0.0, 1.0], [2.0, 1.0]], dtype=np.float32)).tolist()
    [1.0, 0.0]
    """
    x = _check_2d(x, "x")
    chunk = _CONSTRAINTS["chunk"](chunk)
    return _column_variance(x, chunk)


def _column_variance(x: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    n = x.shape[0]
    mean = np.zeros(x.shape[1])
    for start in range(0, n, chunk):
        mean += x[start:start + chunk].sum(axis=0, dtype=np.float64)
    mean /= n
    ss = np.zeros(x.shape[1])
    for start in range(0, n, chunk):
        c = x[start:start + chunk].astype(np.float64) - mean
        ss += np.einsum("ij,ij->j", c, c)
    return ss / n


def dead_dimension_test(latents, sample, *, threshold: float = 0.01,
                        n_bootstrap: int = 200, confidence: float = 0.95,
                        random_state=None) -> dict:
    """Whether each latent dimension's variance is significantly below ``threshold``
    times the median dimension's.

    The ratio ``var_j / median_k var_k`` (median over dimensions with positive variance)
    is computed on every row of ``latents``. Its uncertainty comes from a bootstrap of
    ``sample`` (rows resampled with replacement, the ratio recomputed): the standard error
    is half the central 68.27% range of the bootstrap log-ratios, and the one-sided
    p-value of ``log ratio < log threshold`` is normal. Where the standard error is zero
    or undefined, the p-value is 0 when the ratio is below the threshold and 1 otherwise.

    Parameters
    ----------
    latents : array-like of shape (n_samples, n_dims)
        Every row: the ratio itself.
    sample : array-like of shape (n_sample, n_dims)
        Rows to bootstrap (a random subset of ``latents`` keeps this cheap).
    threshold : float, default=0.01
        Ratio below which a dimension counts as dead, in (0, 1).
    n_bootstrap : int, default=200
        Bootstrap resamples (>= 2).
    confidence : float, default=0.95
        Level of the interval, in (0, 1).
    random_state : int, numpy Generator or None
        Seed or generator of the resampling.

    Returns
    -------
    dict
        ``variance_ratio`` (n_dims,); ``p_value`` (n_dims,) and ``ci`` (low, high arrays
        of the ratio) or ``None`` for both when no dimension varies at all.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 4)) * [1.0, 1.0, 1.0, 0.01]
    >>> res = dead_dimension_test(z, z, n_bootstrap=50, random_state=0)
    >>> np.round(res["variance_ratio"], 4).tolist()[3], bool(res["p_value"][3] < 0.01)
    (0.0001, True)
    >>> bool(res["p_value"][0] > 0.5)
    True
    """
    latents = _check_2d(latents, "latents")
    sample = _check_2d(sample, "sample", min_rows=2)
    if sample.shape[1] != latents.shape[1]:
        raise ValueError(f"sample has {sample.shape[1]} columns, latents "
                         f"{latents.shape[1]}")
    threshold = _CONSTRAINTS["threshold"](threshold)
    n_bootstrap = _CONSTRAINTS["n_bootstrap"](n_bootstrap)
    confidence = _CONSTRAINTS["confidence"](confidence)
    rng = np.random.default_rng(random_state)

    var = _column_variance(latents)
    ref = np.median(var[var > 0]) if np.any(var > 0) else 0.0
    ratio = var / ref if ref > 0 else np.full(var.shape, np.nan)
    if not ref > 0:
        return {"variance_ratio": ratio, "p_value": None, "ci": None}
    sub = sample.astype(np.float64)
    logs = np.empty((n_bootstrap, sub.shape[1]))
    with np.errstate(divide="ignore"):
        for i in range(n_bootstrap):
            v = sub[rng.integers(0, sub.shape[0], sub.shape[0])].var(axis=0)
            r = np.median(v[v > 0]) if np.any(v > 0) else np.nan
            logs[i] = np.log(v / r)
        finite = np.where(np.isfinite(logs), logs, np.nan)
        with warnings.catch_warnings():     # an all-nan column: nan, handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanquantile(finite, [0.15865, 0.84135, (1 - confidence) / 2,
                                        1 - (1 - confidence) / 2], axis=0)
        se = (q[1] - q[0]) / 2
        est = np.log(ratio)
        zstat = (math.log(threshold) - est) / np.where(se > 0, se, np.nan)
    p = np.where(np.isfinite(zstat), stats.norm.sf(zstat),
                 np.where(est < math.log(threshold), 0.0, 1.0))
    return {"variance_ratio": ratio, "p_value": p, "ci": (np.exp(q[2]), np.exp(q[3]))}
