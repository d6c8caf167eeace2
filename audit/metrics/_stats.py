"""Statistics shared by every check: multiple-testing correction, intervals, count tests."""
from __future__ import annotations

import numpy as np
from scipy import stats

from ._validation import validate_float

__all__ = ["benjamini_hochberg", "wilson_interval", "poisson_excess_pvalue",
           "poisson_deficit_pvalue", "poisson_critical_count"]


def benjamini_hochberg(p_values, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg step-up procedure.

    Parameters
    ----------
    p_values : array-like of shape (m,)
        Raw p-values in [0, 1]; NaN entries are never rejected and do not count in ``m``.
    alpha : float, default=0.05
        False-discovery rate to control, in (0, 1).

    Returns
    -------
    rejected : ndarray of bool, shape (m,)
    q_values : ndarray of float, shape (m,)
        BH-adjusted p-values (monotone, capped at 1; NaN where the input was NaN).

    Examples
    --------
    >>> rej, q = benjamini_hochberg([0.001, 0.02, 0.04, 0.5])
    >>> rej.tolist()
    [True, True, False, False]
    >>> [round(float(v), 4) for v in q]
    [0.004, 0.04, 0.0533, 0.5]
    """
    alpha = validate_float(alpha, "alpha", low=0, high=1, low_open=True, high_open=True)
    p = np.asarray(p_values, dtype=float).ravel()
    if np.any((p[~np.isnan(p)] < 0) | (p[~np.isnan(p)] > 1)):
        raise ValueError("p_values must lie in [0, 1]")
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return np.zeros(p.shape, dtype=bool), q
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    qv = np.empty(m)
    qv[order] = np.minimum(ranked, 1.0)
    q[ok] = qv
    rejected = np.zeros(p.shape, dtype=bool)
    rejected[ok] = qv <= alpha
    return rejected, q


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; ``(nan, nan)`` when ``n == 0``.

    Examples
    --------
    >>> lo, hi = wilson_interval(5, 100)
    >>> round(lo, 4), round(hi, 4)
    (0.0215, 0.1118)
    """
    confidence = validate_float(confidence, "confidence", low=0, high=1, low_open=True,
                                high_open=True)
    if n <= 0:
        return (float("nan"), float("nan"))
    z = stats.norm.ppf(0.5 + confidence / 2)
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def poisson_excess_pvalue(observed, expected) -> np.ndarray:
    """P(X >= observed) for X ~ Poisson(expected): evidence of *more* events than chance."""
    observed = np.asarray(observed, dtype=float)
    expected = np.asarray(expected, dtype=float)
    return stats.poisson.sf(observed - 1, expected)


def poisson_deficit_pvalue(observed, expected) -> np.ndarray:
    """P(X <= observed) for X ~ Poisson(expected): evidence of *fewer* events than chance."""
    observed = np.asarray(observed, dtype=float)
    expected = np.asarray(expected, dtype=float)
    return stats.poisson.cdf(observed, expected)


def poisson_critical_count(expected: float, level: float) -> int:
    """Smallest count whose excess p-value (:func:`poisson_excess_pvalue`) over
    ``expected`` is at most ``level``: the decision threshold of that test, as a count.

    Parameters
    ----------
    expected : float
        Expected count, ``>= 0``.
    level : float
        Significance level, in (0, 1).

    Returns
    -------
    count : int
        At least 1.

    Examples
    --------
    >>> poisson_critical_count(2.0, 0.05)       # P(X >= 6) = 0.017, P(X >= 5) = 0.053
    6
    """
    expected = validate_float(expected, "expected", low=0)
    level = validate_float(level, "level", low=0, high=1, low_open=True, high_open=True)
    o = max(1, int(stats.poisson.isf(level, expected)) + 1)
    while float(poisson_excess_pvalue(o, expected)) > level:       # guard the rounding
        o += 1
    while o > 1 and float(poisson_excess_pvalue(o - 1, expected)) <= level:
        o -= 1
    return o
