"""Group representation in clusters, and the rate of an adverse flag in each group.

Conventions shared by every function here and in ``_probe_leakage``:

* Group labels may be strings or numbers. ``None`` and NaN (also ``pd.NA``) are gathered
  into one group named ``"<missing>"`` (:data:`MISSING_GROUP`), which is listed last;
  other labels are sorted when they can be compared, otherwise kept in order of first
  appearance, and are returned as Python scalars. Nothing is dropped silently.
* Results are plain Python structures (dicts, lists, floats, ints, bools) that serialise
  to JSON except for ``nan`` values.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import stats

from ._stats import wilson_interval
from ._validation import MISSING_GROUP  # one shared name for None/NaN labels
from ._validation import is_missing, validate_float, validate_int, validate_labels

__all__ = ["representation_test", "rate_disparity", "top_fraction", "MISSING_GROUP"]

# --------------------------------------------------------------------------- labels

def _encode_plain(arr: np.ndarray, name: str) -> tuple[np.ndarray, list] | None:
    """``_encode`` of labels that cannot be missing and compare as Python values do
    (integers, booleans, strings, or an object array of ``str`` only): ``np.unique``
    gives the same sorted labels and codes without a Python loop. ``None`` otherwise."""
    if arr.dtype.kind not in "iubU":
        if arr.dtype != object or not all(type(v) is str for v in arr.tolist()):
            return None
    if arr.size == 0:
        return None
    labels, codes = np.unique(arr, return_inverse=True)
    labels = labels.tolist()
    if arr.dtype.kind in "UO" and MISSING_GROUP in labels:
        raise ValueError(f"{name} uses the label {MISSING_GROUP!r}, which is reserved "
                         "for missing (None/NaN) labels")
    return codes.ravel().astype(np.intp), labels


def _encode(values: Any, name: str, n: int | None = None) -> tuple[np.ndarray, list]:
    """Integer codes ``(n,)`` into the returned list of labels (see the module notes)."""
    arr = validate_labels(values, name, n)
    fast = _encode_plain(arr, name)
    if fast is not None:
        return fast
    raw = arr.tolist()
    index: dict[Any, int] = {}
    first: list[Any] = []
    codes = np.empty(len(raw), dtype=np.intp)
    has_missing = False
    for i, label in enumerate(raw):
        if isinstance(label, np.generic):  # object arrays keep numpy scalars
            label = label.item()
        if is_missing(label):
            has_missing = True
            label = None
        elif isinstance(label, str) and label == MISSING_GROUP:
            raise ValueError(f"{name} uses the label {MISSING_GROUP!r}, which is reserved "
                             "for missing (None/NaN) labels")
        code = index.get(label)
        if code is None:
            code = index[label] = len(first)
            first.append(label)
        codes[i] = code
    present = [g for g in first if g is not None]
    try:
        present = sorted(present)
    except TypeError:
        pass
    labels = present + ([None] if has_missing else [])
    remap = np.empty(len(first), dtype=np.intp)
    for new, label in enumerate(labels):
        remap[index[label]] = new
    out = [MISSING_GROUP if g is None else g for g in labels]
    return remap[codes] if len(raw) else codes, out


def _check_flags(flags: Any, name: str) -> np.ndarray:
    mask = np.asarray(flags)
    if mask.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {mask.shape}")
    if mask.dtype != bool:
        if mask.dtype.kind not in "iuf" or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1)")
        mask = mask.astype(bool)
    return mask


# --------------------------------------------------------------------------- representation

def representation_test(clusters, groups, *, min_expected: float = 5.0) -> dict[str, Any]:
    """Are the groups represented in each cluster as in the whole data?

    Builds the cluster x group contingency table and runs Pearson's chi-square test of
    independence (no continuity correction), with Cramér's V. Each cell also gets an
    exact two-sided binomial test of its count given the cluster's size and the group's
    overall share, and Haberman's adjusted residual.

    Parameters
    ----------
    clusters : array-like of shape (n_samples,)
        Cluster label of each sample. Every label is a cluster, the noise label ``-1``
        included; drop it first if it should not count.
    groups : array-like of shape (n_samples,)
        Group of each sample; ``None``/NaN form the group ``"<missing>"``.
    min_expected : float, default=5.0
        The chi-square approximation is flagged unreliable (``chi2_reliable=False``) when
        some expected count is below this, >= 0. The per-cell binomial tests are exact
        and do not depend on it.

    Returns
    -------
    result : dict
        ``n`` (int), ``clusters`` and ``groups`` (lists of labels, the row and column
        order of ``table``), ``table`` (list of lists of int), ``chi2``, ``dof``,
        ``p_value``, ``cramers_v`` (plain, ``sqrt(chi2 / (n (min(r, c) - 1)))``),
        ``cramers_v_corrected`` (Bergsma's bias-corrected V), ``min_expected`` (the
        smallest expected count), ``chi2_reliable`` (bool) and ``cells``: one dict per
        cell, row by row, with ``cluster``, ``group``, ``observed`` (int), ``expected``,
        ``ratio`` (observed / expected; > 1 means over-represented), ``adjusted_residual``
        (approximately standard normal under independence) and ``p_value`` (exact
        binomial, two-sided; not corrected for the number of cells, see
        :func:`~audit.metrics.benjamini_hochberg`). With fewer than two clusters or
        groups the overall test is undefined: ``chi2``, ``p_value`` and both V are nan,
        with a ``RuntimeWarning``.

    See Also
    --------
    benjamini_hochberg : correct the per-cell p-values.

    References
    ----------
    .. [1] S. J. Haberman, "The analysis of residuals in cross-classified tables",
       Biometrics 29(1), 1973.
    .. [2] W. Bergsma, "A bias-correction for Cramér's V and Tschuprow's T",
       J. Korean Stat. Soc. 42(3), 2013.

    Examples
    --------
    >>> clusters = [0] * 20 + [1] * 20
    >>> groups = ["a"] * 18 + ["b"] * 2 + ["a"] * 4 + ["b"] * 16
    >>> res = representation_test(clusters, groups)
    >>> res["table"], round(res["cramers_v"], 3), res["p_value"] < 0.001
    ([[18, 2], [4, 16]], 0.704, True)
    >>> cell = res["cells"][0]
    >>> cell["cluster"], cell["group"], cell["expected"], round(cell["ratio"], 3)
    (0, 'a', 11.0, 1.636)
    """
    c_codes, c_labels = _encode(clusters, "clusters")
    g_codes, g_labels = _encode(groups, "groups", c_codes.shape[0])
    min_expected = validate_float(min_expected, "min_expected", low=0)
    n = int(c_codes.shape[0])
    if n == 0:
        raise ValueError("clusters is empty")
    r, k = len(c_labels), len(g_labels)
    table = np.zeros((r, k), dtype=np.int64)
    np.add.at(table, (c_codes, g_codes), 1)
    row = table.sum(axis=1)
    col = table.sum(axis=0)
    expected = np.outer(row, col) / n

    if r >= 2 and k >= 2:
        chi2 = float(((table - expected) ** 2 / expected).sum())
        dof = (r - 1) * (k - 1)
        p_value = float(stats.chi2.sf(chi2, dof))
        v = math.sqrt(chi2 / (n * (min(r, k) - 1)))
        if n > 1:
            phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
            r_c = r - (r - 1) ** 2 / (n - 1)
            k_c = k - (k - 1) ** 2 / (n - 1)
            denom = min(k_c - 1, r_c - 1)
            v_corr = math.sqrt(phi2 / denom) if denom > 0 else float("nan")
        else:
            v_corr = float("nan")
    else:
        warnings.warn(f"representation test is undefined with {r} cluster(s) and {k} "
                      "group(s); returning nan", RuntimeWarning, stacklevel=2)
        chi2 = p_value = v = v_corr = float("nan")
        dof = 0

    with np.errstate(divide="ignore", invalid="ignore"):
        adj = (table - expected) / np.sqrt(expected * np.outer(1 - row / n, 1 - col / n))
    share = col / n
    cells = []
    for i in range(r):
        for j in range(k):
            obs = int(table[i, j])
            cells.append({
                "cluster": c_labels[i], "group": g_labels[j], "observed": obs,
                "expected": float(expected[i, j]),
                "ratio": float(obs / expected[i, j]),
                "adjusted_residual": float(adj[i, j]),
                "p_value": float(stats.binomtest(obs, int(row[i]), float(share[j])).pvalue),
            })
    return {"n": n, "clusters": c_labels, "groups": g_labels, "table": table.tolist(),
            "chi2": chi2, "dof": int(dof), "p_value": p_value, "cramers_v": float(v),
            "cramers_v_corrected": float(v_corr), "min_expected": float(expected.min()),
            "chi2_reliable": bool(expected.min() >= min_expected), "cells": cells}


# --------------------------------------------------------------------------- rates

def top_fraction(scores, fraction: float, *, random_state=None) -> np.ndarray:
    """Mask of the ``fraction`` highest scores, ties broken at random: an adverse flag
    ("among the 10% least dense points") whose rate :func:`rate_disparity` compares.

    Exactly ``round(fraction * n)`` samples are flagged, so tied scores at the cut never
    make the flagged share depend on the order of the samples.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        Higher is more adverse (e.g. mean kNN distance, an outlier score).
    fraction : float
        Share of samples to flag, in [0, 1].
    random_state : int, numpy Generator or None, default=None
        Breaks ties (one uniform draw per sample, ``np.random.default_rng``).

    Returns
    -------
    mask : ndarray of bool, shape (n_samples,)

    Examples
    --------
    >>> top_fraction([0.1, 0.9, 0.5, 0.7], 0.5, random_state=0).tolist()
    [False, True, False, True]
    """
    x = np.asarray(scores, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {x.shape}")
    fraction = validate_float(fraction, "fraction", low=0, high=1)
    rng = np.random.default_rng(random_state)
    n = x.shape[0]
    k = int(round(fraction * n))
    out = np.zeros(n, dtype=bool)
    if k <= 0:
        return out
    order = np.lexsort((rng.random(n), -x))
    out[order[:k]] = True
    return out


def rate_disparity(flags, groups, *, confidence: float = 0.95,
                   min_group_size: int = 30) -> dict[str, Any]:
    """Rate of an adverse flag in each group, the disparity ratio, and a test of independence.

    Parameters
    ----------
    flags : array-like of bool, shape (n_samples,)
        The adverse event per sample (e.g. "lies in a low-density region"); 0/1 accepted.
    groups : array-like of shape (n_samples,)
        Group of each sample; ``None``/NaN form the group ``"<missing>"``.
    confidence : float, default=0.95
        Confidence level of the Wilson intervals, in (0, 1).
    min_group_size : int, default=30
        Groups with fewer samples are reported (rate, interval) but marked untested: they
        are left out of the ratio and the test, and listed in ``untested``. >= 1.

    Returns
    -------
    result : dict
        ``groups`` : dict
            Label -> ``{"n": int, "flagged": int, "rate": float, "ci": (lo, hi),
            "tested": bool}``; ``ci`` is :func:`~audit.metrics.wilson_interval`.
        ``untested`` : dict
            Label -> size, for the groups below ``min_group_size``.
        ``ratio`` : float
            Lowest rate / highest rate among the tested groups: 1 is parity, and below
            0.8 fails the four-fifths rule. nan, with a ``RuntimeWarning``, when fewer
            than two groups are tested or no tested group has a flagged sample (0 / 0).
        ``lowest``, ``highest`` : label or None
            The tested groups with the lowest and the highest rate (first in order on ties).
        ``p_value`` : float
            Test of independence of flag and group over the tested groups: Fisher's exact
            test (two-sided) for two groups, Pearson's chi-square (no continuity
            correction) for more. 1.0 when every tested sample has the same flag (the
            data agree with independence); nan, with a warning, for fewer than 2 groups.
        ``test`` : str
            ``"fisher"``, ``"chi2"`` or ``"none"``.

    See Also
    --------
    wilson_interval : the per-group interval.

    References
    ----------
    .. [1] U.S. EEOC, "Uniform Guidelines on Employee Selection Procedures", 29 CFR
       1607.4(D), 1978 (the four-fifths rule).
    .. [2] E. B. Wilson, "Probable inference, the law of succession, and statistical
       inference", JASA 22(158), 1927.

    Examples
    --------
    >>> flags = [True] * 10 + [False] * 40 + [True] * 5 + [False] * 45 + [True, False]
    >>> groups = ["a"] * 50 + ["b"] * 50 + ["c", None]
    >>> res = rate_disparity(flags, groups)
    >>> res["groups"]["a"]["rate"], res["groups"]["b"]["rate"], res["ratio"]
    (0.2, 0.1, 0.5)
    >>> res["untested"], res["test"], round(res["p_value"], 3)
    ({'c': 1, '<missing>': 1}, 'fisher', 0.262)
    """
    mask = _check_flags(flags, "flags")
    codes, labels = _encode(groups, "groups", mask.shape[0])
    confidence = validate_float(confidence, "confidence", low=0, high=1, low_open=True,
                                high_open=True)
    min_group_size = validate_int(min_group_size, "min_group_size", low=1)
    n_by = np.bincount(codes, minlength=len(labels))
    flagged_by = np.bincount(codes, weights=mask.astype(float), minlength=len(labels))
    flagged_by = flagged_by.astype(np.int64)

    per_group: dict[Any, dict[str, Any]] = {}
    untested: dict[Any, int] = {}
    tested = []
    for i, label in enumerate(labels):
        n, f = int(n_by[i]), int(flagged_by[i])
        ok = n >= min_group_size
        per_group[label] = {"n": n, "flagged": f, "rate": f / n,
                            "ci": wilson_interval(f, n, confidence=confidence),
                            "tested": ok}
        if ok:
            tested.append(i)
        else:
            untested[label] = n

    ratio = p_value = float("nan")
    lowest = highest = None
    test = "none"
    if len(tested) < 2:
        warnings.warn(f"rate disparity is undefined: {len(tested)} group(s) have at least "
                      f"min_group_size={min_group_size} samples; returning nan",
                      RuntimeWarning, stacklevel=2)
    else:
        rates = flagged_by[tested] / n_by[tested]
        lowest = labels[tested[int(np.argmin(rates))]]
        highest = labels[tested[int(np.argmax(rates))]]
        if rates.max() > 0:
            ratio = float(rates.min() / rates.max())
        else:
            warnings.warn("rate disparity ratio is undefined: no tested group has a flagged "
                          "sample (0 / 0); returning nan", RuntimeWarning, stacklevel=2)
        table = np.column_stack([flagged_by[tested], n_by[tested] - flagged_by[tested]])
        test = "fisher" if len(tested) == 2 else "chi2"
        if (table.sum(axis=0) == 0).any():
            p_value = 1.0
        elif test == "fisher":
            p_value = float(stats.fisher_exact(table).pvalue)
        else:
            p_value = float(stats.chi2_contingency(table, correction=False).pvalue)
    return {"groups": per_group, "untested": untested, "ratio": ratio, "lowest": lowest,
            "highest": highest, "p_value": float(p_value), "test": test}


rate_disparity.higher_is_better = True  # the ratio; 1 is parity
