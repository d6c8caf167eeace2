"""Slice discovery and the small tests the bias check needs, on plain arrays.

* :func:`slice_outcome_tests`: is the outcome worse inside each slice (a subset of the
  samples, e.g. a cluster or a group x cluster cell) than in the rest?
* :func:`chi2_permutation_pvalue`: Monte Carlo p-value of Pearson's chi-square test of
  independence, for tables whose expected counts are too small for the chi-square law.
* :func:`permutation_pvalue`: a permutation p-value with a Gaussian tail estimate when the
  observed statistic lies beyond every permuted one (so a modest number of permutations
  can still pass a multiple-testing correction over many tests).

These are private to latent-audit (import them from ``audit.metrics._slices``); like the
rest of ``audit.metrics`` they do no I/O and keep no state.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Sequence

import numpy as np
from scipy import stats
from sklearn.utils import check_random_state

from ._stats import wilson_interval
from ._validation import validate_float, validate_int

__all__ = ["slice_outcome_tests", "chi2_permutation_pvalue", "permutation_pvalue",
           "rate_ratio_interval"]


# --------------------------------------------------------------------------- p-values

def permutation_pvalue(observed: float, null: Sequence[float], *,
                       tail: bool = True) -> dict[str, Any]:
    """One-sided permutation p-value ``P(null >= observed)``, with a Gaussian tail estimate.

    The plain permutation p-value is ``(count + 1) / (B + 1)`` (Phipson & Smyth, 2010),
    where ``count`` is the number of the ``B`` null statistics at least as large as the
    observed one; it can never go below ``1 / (B + 1)``. When ``count`` is 0 and ``tail``
    is true, the p-value is the smaller of that bound and the upper tail of a normal
    distribution fitted to the null statistics (mean and sample standard deviation): the
    extrapolation Knijnenburg et al. (2009) recommend when the observed statistic lies
    beyond every permuted one. Under the null this happens with probability
    ``1 / (B + 1)``, so the p-value stays valid at every level ``>= 1 / (B + 1)``; below
    that it relies on the normal tail.

    Parameters
    ----------
    observed : float
        The statistic on the real data; larger means stronger evidence.
    null : sequence of float, length B >= 1
        The statistic on permuted data.
    tail : bool, default=True
        Use the Gaussian tail estimate when no null statistic reaches ``observed``.

    Returns
    -------
    result : dict
        ``p_value`` (float), ``p_permutation`` (the plain ``(count + 1) / (B + 1)``),
        ``count`` (int), ``n_permutations`` (int) and ``method`` (``"permutation"`` or
        ``"normal-tail"``).

    References
    ----------
    .. [1] B. Phipson and G. K. Smyth, "Permutation p-values should never be zero",
       Stat. Appl. Genet. Mol. Biol. 9(1), 2010.
    .. [2] T. A. Knijnenburg, L. F. A. Wessels, M. J. T. Reinders and I. Shmulevich,
       "Fewer permutations, more accurate P-values", Bioinformatics 25(12), 2009.

    Examples
    --------
    >>> res = permutation_pvalue(0.52, [0.49, 0.5, 0.53, 0.51])
    >>> res["p_value"], res["method"]
    (0.4, 'permutation')
    >>> res = permutation_pvalue(0.9, [0.49, 0.5, 0.51, 0.5, 0.52, 0.48])
    >>> res["p_value"] < 1e-10, res["p_permutation"], res["method"]
    (True, 0.14285714285714285, 'normal-tail')
    """
    null_arr = np.asarray(null, dtype=float).ravel()
    if null_arr.size < 1 or not np.isfinite(null_arr).all():
        raise ValueError("null must hold at least one finite value")
    observed = validate_float(observed, "observed")
    b = int(null_arr.size)
    count = int(np.count_nonzero(null_arr >= observed))
    p_perm = (count + 1) / (b + 1)
    p, method = p_perm, "permutation"
    if tail and count == 0 and b >= 2:
        sd = float(null_arr.std(ddof=1))
        if sd > 0:
            p_norm = float(stats.norm.sf((observed - null_arr.mean()) / sd))
            if p_norm < p_perm:
                p, method = p_norm, "normal-tail"
    return {"p_value": float(p), "p_permutation": float(p_perm), "count": count,
            "n_permutations": b, "method": method}


def _chi2(table: np.ndarray) -> float:
    row = table.sum(axis=1, keepdims=True)
    col = table.sum(axis=0, keepdims=True)
    expected = row * col / table.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)
    return float(terms.sum())


def chi2_permutation_pvalue(rows, cols, *, n_permutations: int = 1000,
                            random_state=None) -> dict[str, Any]:
    """Monte Carlo p-value of Pearson's chi-square test of independence of two labelings.

    The column labels are permuted ``n_permutations`` times (the margins stay fixed) and the
    p-value is ``(count + 1) / (n_permutations + 1)`` (Phipson & Smyth, 2010). Unlike the
    chi-square law it stays valid when expected counts are small.

    Parameters
    ----------
    rows, cols : array-like of shape (n_samples,)
        Integer codes (e.g. cluster and group of each sample), each >= 0.
    n_permutations : int, default=1000
        Number of permutations, >= 1.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    result : dict
        ``chi2`` (float, observed statistic), ``p_value`` (float) and ``n_permutations``.

    Examples
    --------
    >>> rows = [0] * 10 + [1] * 10
    >>> cols = [0] * 9 + [1] + [1] * 9 + [0]
    >>> res = chi2_permutation_pvalue(rows, cols, n_permutations=199, random_state=0)
    >>> round(res["chi2"], 2), res["p_value"] < 0.01
    (12.8, True)
    """
    r = np.asarray(rows, dtype=np.intp).ravel()
    c = np.asarray(cols, dtype=np.intp).ravel()
    if r.shape != c.shape or r.size == 0:
        raise ValueError("rows and cols must be non-empty and of the same length")
    if r.min() < 0 or c.min() < 0:
        raise ValueError("rows and cols must be non-negative integer codes")
    n_permutations = validate_int(n_permutations, "n_permutations", low=1)
    n_r, n_c = int(r.max()) + 1, int(c.max()) + 1
    table = np.zeros((n_r, n_c))
    np.add.at(table, (r, c), 1)
    observed = _chi2(table)
    rng = check_random_state(random_state)
    tol = 1e-9 * max(1.0, observed)
    count = 0
    for _ in range(n_permutations):
        perm = np.bincount(r * n_c + rng.permutation(c), minlength=n_r * n_c)
        count += _chi2(perm.reshape(n_r, n_c).astype(float)) >= observed - tol
    return {"chi2": observed, "p_value": (count + 1) / (n_permutations + 1),
            "n_permutations": n_permutations}


def rate_ratio_interval(a: int, n_a: int, b: int, n_b: int, *,
                        confidence: float = 0.95) -> tuple[float, float]:
    """Katz log interval of the ratio of two rates ``(a / n_a) / (b / n_b)``.

    ``exp(log(ratio) +/- z * sqrt(1/a - 1/n_a + 1/b - 1/n_b))``; ``(nan, nan)`` when a
    count is 0 (the log interval is undefined there).

    References
    ----------
    .. [1] D. Katz, J. Baptista, S. P. Azen and M. C. Pike, "Obtaining confidence intervals
       for the risk ratio in cohort studies", Biometrics 34(3), 1978.

    Examples
    --------
    >>> lo, hi = rate_ratio_interval(10, 100, 20, 100)
    >>> round(lo, 3), round(hi, 3)
    (0.247, 1.014)
    """
    confidence = validate_float(confidence, "confidence", low=0, high=1, low_open=True,
                                high_open=True)
    if min(a, b) <= 0 or min(n_a, n_b) <= 0:
        return (float("nan"), float("nan"))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    log_ratio = math.log((a / n_a) / (b / n_b))
    se = math.sqrt(max(0.0, 1 / a - 1 / n_a + 1 / b - 1 / n_b))
    return (math.exp(log_ratio - z * se), math.exp(log_ratio + z * se))


# --------------------------------------------------------------------------- slices

def _cohen_h(p1: float, p2: float) -> float:
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


def slice_outcome_tests(outcome, slices, *, kind: Literal["rate", "mean"] = "rate",
                        worse: Literal["higher", "lower"] = "higher",
                        confidence: float = 0.95) -> list[dict[str, Any]]:
    """Is the outcome worse inside each slice than in the rest of the samples?

    For a binary outcome (``kind="rate"``; 1 = the adverse event, e.g. a wrong
    prediction) each slice's rate is compared with the rate among the other samples by
    Fisher's exact test, one-sided; the effect size is Cohen's ``h`` (difference of
    arcsine-transformed rates) and the interval is Wilson's. For a numeric outcome
    (``kind="mean"``, e.g. a loss) the means are compared by Welch's t-test, one-sided;
    the effect size is Cohen's ``d`` (difference of means over the pooled standard
    deviation) and the interval is the t interval of the slice mean. Effect sizes are
    signed so that positive means "worse inside the slice".

    Parameters
    ----------
    outcome : array-like of shape (n_samples,)
        Outcome per sample: 0/1 (or bool) for ``kind="rate"``, real for ``"mean"``. NaN
        samples are left out of every slice and of every "rest".
    slices : sequence of array-like of bool, each of shape (n_samples,)
        Membership masks; slices may overlap.
    kind : {"rate", "mean"}, default="rate"
    worse : {"higher", "lower"}, default="higher"
        Which direction of the outcome is worse (``"higher"`` for a loss or an error
        flag, ``"lower"`` for an accuracy). With ``kind="rate"`` the rate of 1s is
        compared, and ``worse="lower"`` means a lower rate is worse.
    confidence : float, default=0.95
        Level of the intervals, in (0, 1).

    Returns
    -------
    tests : list of dict, one per slice, in order
        ``n`` (int, samples in the slice with an outcome), ``value`` (rate or mean in the
        slice), ``ci`` ((lo, hi)), ``rest`` (rate or mean outside), ``overall``,
        ``effect`` (signed ``h`` or ``d``; positive = worse inside), ``p_value``
        (one-sided, "worse inside"; nan when the slice or the rest is empty, or for a
        mean with fewer than 2 samples on either side).

    References
    ----------
    .. [1] J. Cohen, "Statistical Power Analysis for the Behavioral Sciences", 2nd ed.,
       1988 (``h`` and ``d``).
    .. [2] S. Eyuboglu et al., "Domino: Discovering systematic errors with cross-modal
       embeddings", ICLR 2022 (slice discovery).

    Examples
    --------
    >>> errors = np.array([1] * 30 + [0] * 20 + [1] * 10 + [0] * 140)
    >>> in_slice = np.arange(200) < 50
    >>> (t,) = slice_outcome_tests(errors, [in_slice])
    >>> t["n"], t["value"], round(t["rest"], 3), t["p_value"] < 1e-10
    (50, 0.6, 0.067, True)
    """
    y = np.asarray(outcome, dtype=float).ravel()
    if kind not in ("rate", "mean"):
        raise ValueError(f"kind must be 'rate' or 'mean', got {kind!r}")
    if worse not in ("higher", "lower"):
        raise ValueError(f"worse must be 'higher' or 'lower', got {worse!r}")
    confidence = validate_float(confidence, "confidence", low=0, high=1, low_open=True,
                                high_open=True)
    ok = ~np.isnan(y)
    if kind == "rate" and not np.isin(y[ok], (0.0, 1.0)).all():
        raise ValueError("a 'rate' outcome must be 0/1 (or bool)")
    sign = 1.0 if worse == "higher" else -1.0
    overall = float(y[ok].mean()) if ok.any() else float("nan")
    out = []
    for mask in slices:
        m = np.asarray(mask, dtype=bool).ravel()
        if m.shape != y.shape:
            raise ValueError(f"every slice mask must have shape {y.shape}, got {m.shape}")
        inside, rest = y[m & ok], y[~m & ok]
        n_in, n_out = int(inside.size), int(rest.size)
        res: dict[str, Any] = {"n": n_in, "overall": overall,
                               "value": float(inside.mean()) if n_in else float("nan"),
                               "rest": float(rest.mean()) if n_out else float("nan"),
                               "ci": (float("nan"), float("nan")),
                               "effect": float("nan"), "p_value": float("nan")}
        if kind == "rate":
            if n_in:
                res["ci"] = wilson_interval(int(inside.sum()), n_in, confidence=confidence)
            if n_in and n_out:
                a, b = int(inside.sum()), int(rest.sum())
                table = [[a, n_in - a], [b, n_out - b]]
                alt = "greater" if worse == "higher" else "less"
                res["p_value"] = float(stats.fisher_exact(table, alternative=alt).pvalue)
                res["effect"] = sign * _cohen_h(res["value"], res["rest"])
        else:
            if n_in >= 2:
                sem = float(inside.std(ddof=1)) / math.sqrt(n_in)
                half = float(stats.t.ppf(0.5 + confidence / 2, n_in - 1)) * sem
                res["ci"] = (res["value"] - half, res["value"] + half)
            if n_in >= 2 and n_out >= 2:
                pooled = math.sqrt(((n_in - 1) * inside.var(ddof=1)
                                    + (n_out - 1) * rest.var(ddof=1)) / (n_in + n_out - 2))
                if pooled > 0:
                    res["effect"] = sign * (res["value"] - res["rest"]) / pooled
                    alt = "greater" if worse == "higher" else "less"
                    res["p_value"] = float(stats.ttest_ind(inside, rest, equal_var=False,
                                                           alternative=alt).pvalue)
                else:
                    res["effect"] = 0.0
                    res["p_value"] = 1.0
        out.append(res)
    return out
