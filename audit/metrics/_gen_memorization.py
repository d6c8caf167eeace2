"""Memorisation by a generator: generations that are near-copies of a real sample, much
closer to it than real samples are to each other.

Each generation's distance to its nearest real point is compared with a null made of the
real points' own leave-one-out nearest-neighbour distances (:func:`loo_nearest_null`): a
generation is a near-copy when its statistic is at or below a fraction (``shrink``) of a low
quantile of that null (:func:`copy_test`), and the count of near-copies is tested against
the share of real points below the same threshold. The statistic is the distance itself (``global``) or,
by default, the distance divided by the local spacing of the real data at the nearest real
point (``local``, :func:`copy_ratios`), which a generator that favours the dense parts of
the data, or makes slightly cleaner outputs than the noisy real data, moves far less.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ._stats import wilson_interval
from ._validation import validate_float, validate_labels, validate_matrix

__all__ = ["copy_ratios", "copy_test", "loo_nearest_null"]


def copy_ratios(distances, spacing) -> np.ndarray:
    """``distances / spacing``: how close a point is to its nearest real point, in units of
    that real point's own nearest-neighbour distance. ``0/0`` is 0 (an exact copy of a
    duplicated point) and ``d/0`` with ``d > 0`` is ``inf``.

    Examples
    --------
    >>> copy_ratios([0.5, 0.0, 0.0, 1.0], [1.0, 2.0, 0.0, 0.0]).tolist()
    [0.5, 0.0, 0.0, inf]
    """
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(spacing, dtype=np.float64)
    if d.shape != s.shape or d.ndim != 1:
        raise ValueError(f"distances {d.shape} and spacing {s.shape} must be one 1-D shape")
    if not (np.isfinite(d).all() and np.isfinite(s).all()) or (d < 0).any() or (s < 0).any():
        raise ValueError("distances and spacing must be finite and >= 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > 0, d / np.where(s > 0, s, 1.0), np.where(d > 0, np.inf, 0.0))


def loo_nearest_null(knn_distances, knn_indices, *, local: bool = True) -> np.ndarray:
    """The null of the copy statistic: each real point measured as if it were a generation,
    against the other real points.

    ``global``: its distance to its nearest other real point ``j``. ``local``: that
    distance over ``j``'s own nearest-neighbour distance among the real points other than
    itself and the point measured (a generation is not among the real points, so ``j``'s
    spacing is measured without it), the same ratio :func:`copy_ratios` gives a generation.

    Parameters
    ----------
    knn_distances, knn_indices : array-like of shape (n, k)
        The real points' k-NN graph, self excluded, ascending; ``k >= 2`` for ``local``.
    local : bool, default=True

    Returns
    -------
    null : ndarray of shape (n,), float64

    Examples
    --------
    >>> d = np.array([[1.0, 3.0], [1.0, 2.0], [2.0, 3.0]])
    >>> i = np.array([[1, 2], [0, 2], [1, 0]])
    >>> loo_nearest_null(d, i, local=False).tolist()
    [1.0, 1.0, 2.0]
    >>> loo_nearest_null(d, i).tolist()       # 0's nearest is 1, whose spacing without 0 is 2
    [0.5, 0.3333333333333333, 2.0]
    """
    d = validate_matrix(knn_distances, "knn_distances")
    i = np.asarray(knn_indices)
    if i.shape != d.shape:
        raise ValueError(f"knn_indices {i.shape} must match knn_distances {d.shape}")
    if not local:
        return d[:, 0].copy()
    if d.shape[1] < 2:
        raise ValueError("the local null needs at least 2 neighbours per point")
    if (i < 0).any() or (i >= len(d)).any():
        raise ValueError("knn_indices must index the points themselves")
    j = i[:, 0]
    spacing = np.where(i[j, 0] == np.arange(len(d)), d[j, 1], d[j, 0])
    return copy_ratios(d[:, 0], spacing)


def copy_test(generated, null, *, quantile: float = 0.01, shrink: float = 1.0) -> dict:
    """Near-copies among generations: statistics at or below ``shrink`` times the
    ``quantile`` of the null.

    The threshold ``t`` is ``shrink`` times the null's ``quantile`` (the smallest null value
    with at least that share of the null at or below it): ``shrink < 1`` asks for "much
    closer than real samples are to each other", which a generator whose outputs are merely
    less noisy than the real data does not reach (in high dimensions the real points'
    noise makes every real-to-real distance, even the 1% quantile, larger than a clean
    output's distance to the data). ``m`` of ``N`` null values are ``<= t`` (the expected
    rate ``m / N``) and ``x`` of ``G`` generations. Fisher's exact test, one-sided, compares
    ``x / G`` with ``m / N`` (it accounts for the threshold being estimated from the null);
    the effect is their ratio, with a Katz log interval (both with half a count added to
    ``x`` and ``m`` when either is 0, so that they stay finite).

    Parameters
    ----------
    generated : array-like of shape (G,)
        The statistic of each generation (distance or ratio), ``>= 0``.
    null : array-like of shape (N,)
        The same statistic for the real points (:func:`loo_nearest_null`).
    quantile : float, default=0.01
        In (0, 0.5].
    shrink : float, default=1.0
        In (0, 1].

    Returns
    -------
    dict
        ``threshold``, ``copies`` (bool, shape (G,)), ``observed`` (x), ``n`` (G),
        ``fraction`` (x / G), ``fraction_ci`` (Wilson, 95%), ``null_below`` (m), ``n_null``
        (N), ``expected`` (m / N), ``ratio``, ``ratio_ci`` and ``p_value``.

    Examples
    --------
    >>> null = np.linspace(0.1, 1.0, 100)
    >>> gen = np.concatenate([np.zeros(20), np.linspace(0.1, 1.0, 80)])
    >>> r = copy_test(gen, null, quantile=0.05)
    >>> r["threshold"], r["observed"], r["expected"], round(r["ratio"], 1), r["p_value"] < 1e-3
    (0.1363..., 24, 0.05, 4.8, True)
    >>> r = copy_test(gen, null, quantile=0.05, shrink=0.5)     # only the exact copies
    >>> r["observed"], r["null_below"], round(r["ratio"], 1), r["p_value"] < 1e-3
    (20, 0, 41.0, True)
    """
    g = validate_labels(generated, "generated").astype(np.float64)
    nl = validate_labels(null, "null").astype(np.float64)
    q = validate_float(quantile, "quantile", low=0, high=0.5, low_open=True)
    c = validate_float(shrink, "shrink", low=0, high=1, low_open=True)
    if g.size == 0 or nl.size == 0:
        raise ValueError("generated and null need at least one value each")
    if np.isnan(g).any() or np.isnan(nl).any() or (g < 0).any() or (nl < 0).any():
        raise ValueError("statistics must be >= 0 (inf allowed, NaN not)")
    t = c * float(np.quantile(nl, q, method="inverted_cdf"))
    copies = g <= t
    x, n_g = int(copies.sum()), int(g.size)
    m, n_n = int((nl <= t).sum()), int(nl.size)
    p = float(stats.fisher_exact([[x, n_g - x], [m, n_n - m]], alternative="greater")[1])
    expected = m / n_n
    xa, ma = (x, m) if x and m else (x + 0.5, m + 0.5)
    ratio = (xa / n_g) / (ma / n_n)
    se = math.sqrt(1 / xa - 1 / n_g + 1 / ma - 1 / n_n)
    ratio_ci = (ratio * math.exp(-1.959964 * se), ratio * math.exp(1.959964 * se))
    return {"threshold": t, "copies": copies, "observed": x, "n": n_g, "fraction": x / n_g,
            "fraction_ci": wilson_interval(x, n_g), "null_below": m, "n_null": n_n,
            "expected": expected, "ratio": ratio, "ratio_ci": ratio_ci,
            "p_value": min(p, 1.0)}
