"""Group-fairness statistics on latents: probe leakage, residualisation, representation, rates.

Conventions shared by every function here:

* Group labels may be strings or numbers. ``None`` and NaN (also ``pd.NA``) are gathered
  into one group named ``"<missing>"`` (:data:`MISSING_GROUP`), which is listed last;
  other labels are sorted when they can be compared, otherwise kept in order of first
  appearance, and are returned as Python scalars. Nothing is dropped silently.
* Permutation p-values are ``(count + 1) / (n + 1)`` where ``count`` is the number of
  the ``n`` null statistics at least as large as the observed one (Phipson & Smyth, 2010).
* Results are plain Python structures (dicts, lists, floats, ints, bools) that serialise
  to JSON except for ``nan`` values.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ._coverage import MISSING_GROUP  # one shared name for None/NaN labels
from ._stats import wilson_interval
from ._validation import validate_float, validate_int, validate_labels, validate_matrix

__all__ = ["probe_leakage", "residualize", "representation_test", "rate_disparity",
           "MISSING_GROUP"]


# Upper bound on the number of float64 values in one bootstrap block.
_BOOT_CHUNK_VALUES = 1 << 21
_MAX_ITER = 300
# Up to this many values in X, the probe's many small fits run with one BLAS thread:
# threads only add overhead there, and on a busy machine they can make it 5x slower.
_SINGLE_THREAD_MAX_VALUES = 1 << 20


# --------------------------------------------------------------------------- labels

def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _encode(values: Any, name: str, n: int | None = None) -> tuple[np.ndarray, list]:
    """Integer codes ``(n,)`` into the returned list of labels (see the module notes)."""
    arr = validate_labels(values, name, n)
    raw = arr.tolist()
    index: dict[Any, int] = {}
    first: list[Any] = []
    codes = np.empty(len(raw), dtype=np.intp)
    has_missing = False
    for i, label in enumerate(raw):
        if isinstance(label, np.generic):  # object arrays keep numpy scalars
            label = label.item()
        if _is_missing(label):
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


# --------------------------------------------------------------------------- probe

def _auc_rows(scores: np.ndarray, n_neg: int) -> np.ndarray:
    """AUC per row of ``scores`` ``(b, n)`` whose last ``n - n_neg`` columns are positives.

    Mann-Whitney form with mid-ranks, i.e. ties count one half, as ``roc_auc_score``.
    """
    n_pos = scores.shape[1] - n_neg
    ranks = stats.rankdata(scores, axis=1)
    return (ranks[:, n_neg:].sum(axis=1) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _score(out: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """AUC (binary, ``out`` is a decision function) or macro one-vs-rest AUC (``out`` is
    ``(n, n_classes)`` probabilities)."""
    if n_classes == 2:
        order = np.argsort(y, kind="stable")
        return float(_auc_rows(out[order][None, :], int(np.sum(y == 0)))[0])
    aucs = []
    for c in range(n_classes):
        pos = y == c
        cols = np.concatenate([out[~pos, c], out[pos, c]])
        aucs.append(_auc_rows(cols[None, :], int(np.sum(~pos)))[0])
    return float(np.mean(aucs))


def _oof(X: np.ndarray, y: np.ndarray, n_classes: int, cv: int, seed: int,
         design: np.ndarray | None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Out-of-fold decision values (binary) or probabilities, and each fold's coefficients.

    When ``design`` is given, ``X`` is first residualised on it with coefficients fitted
    on the training fold only. Features are then standardised with the training fold's
    mean and standard deviation.
    """
    n = X.shape[0]
    out = np.empty(n) if n_classes == 2 else np.empty((n, n_classes))
    coefs = []
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    for train, test in folds.split(X, y):
        x_train, x_test = X[train], X[test]
        if design is not None:
            beta = np.linalg.lstsq(design[train], x_train, rcond=None)[0]
            x_train = x_train - design[train] @ beta
            x_test = x_test - design[test] @ beta
        mu = x_train.mean(axis=0)
        sd = x_train.std(axis=0)
        sd[sd <= 1e-12 * (1.0 + np.abs(mu))] = 1.0  # constant (or residualised-away) column
        clf = LogisticRegression(class_weight="balanced", max_iter=_MAX_ITER)
        clf.fit((x_train - mu) / sd, y[train])
        z = (x_test - mu) / sd
        out[test] = clf.decision_function(z) if n_classes == 2 else clf.predict_proba(z)
        coefs.append(clf.coef_)
    return out, coefs


def _bootstrap_ci(out: np.ndarray, y: np.ndarray, n_classes: int, n_boot: int,
                  confidence: float, rng: np.random.RandomState) -> tuple[float, float]:
    """Percentile interval of the score over class-stratified resamples of the OOF output."""
    members = [np.flatnonzero(y == c) for c in range(n_classes)]
    n = y.shape[0]
    rows = max(1, _BOOT_CHUNK_VALUES // n)
    scores = []
    done = 0
    while done < n_boot:
        b = min(rows, n_boot - done)
        # Column block c holds resampled members of class c, so class sizes stay fixed.
        idx = np.hstack([m[rng.randint(0, m.size, size=(b, m.size))] for m in members])
        if n_classes == 2:
            scores.append(_auc_rows(out[idx], members[0].size))
        else:
            per_class = []
            start = np.cumsum([0] + [m.size for m in members])
            for c in range(n_classes):
                vals = out[idx, c]
                lo, hi = start[c], start[c + 1]
                rest = np.hstack([vals[:, :lo], vals[:, hi:]])
                per_class.append(_auc_rows(np.hstack([rest, vals[:, lo:hi]]), n - (hi - lo)))
            scores.append(np.mean(per_class, axis=0))
        done += b
    alpha = 1.0 - confidence
    lo, hi = np.quantile(np.concatenate(scores), [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def probe_leakage(X, groups, *, covariates=None, cv: int = 5, n_permutations: int = 200,
                  stop_after: int = 0, n_bootstrap: int = 1000, confidence: float = 0.95,
                  random_state=None) -> dict[str, Any]:
    """How well a linear probe reads a protected attribute from the latents.

    A logistic regression (lbfgs, L2 with ``C=1``, ``class_weight="balanced"``, features
    standardised on each training fold) is cross-validated with shuffled stratified
    K-fold. Its out-of-fold outputs are pooled into one AUC. The p-value comes from
    refitting the whole procedure on permuted labels.

    With ``covariates``, the question becomes "is the group still readable once these
    factors are accounted for?": inside each fold, ``X`` is residualised on the
    covariates (as :func:`residualize` does) with coefficients fitted on the training
    fold and applied to both folds. Residualising the whole sample first and probing the
    result biases the score *below* chance when the group depends on the covariates
    (Snoek et al., 2019); the fold-wise version does not.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Latent vectors.
    groups : array-like of shape (n_samples,)
        Protected attribute. ``None``/NaN form the group ``"<missing>"``. Needs at least
        two groups, each with at least ``cv`` members.
    covariates : DataFrame, Series, array-like or None, default=None
        Legitimate factors to remove from ``X`` fold by fold, encoded as in
        :func:`residualize`.
    cv : int, default=5
        Number of folds, >= 2.
    n_permutations : int, default=200
        Number of label permutations for the p-value, >= 0. Each costs ``cv`` fits.
        With 0 no test is run and ``p_value`` is nan.
    stop_after : int, default=0
        Sequential Monte Carlo test (Besag & Clifford, 1991): stop drawing permutations
        once this many null scores have reached the observed one. The p-value
        ``(count + 1) / (m + 1)`` over the ``m`` drawn is then at least Besag and
        Clifford's valid ``count / m``, so the test stays valid; it only loses precision
        where the answer is clearly "not significant", and saves most of the fits there.
        0 draws all ``n_permutations``.
    n_bootstrap : int, default=1000
        Number of bootstrap resamples for ``ci``, >= 0 (0 gives ``(nan, nan)``).
    confidence : float, default=0.95
        Confidence level of ``ci``, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seeds the folds, the permutations and the bootstrap.

    Returns
    -------
    result : dict
        ``score`` : float
            AUC of the out-of-fold decision values for two groups (the second label is the
            positive class); unweighted mean of the one-vs-rest AUCs of the out-of-fold
            probabilities for more. Higher means more leakage.
        ``chance`` : float
            0.5, the score of a probe that reads nothing.
        ``p_value`` : float
            ``(count + 1) / (n_permutations + 1)``, ``count`` the null scores >= ``score``.
        ``null_scores`` : list of float
            The permutation distribution of the score (fewer than ``n_permutations``
            when ``stop_after`` ended the test early).
        ``ci`` : tuple of float
            Percentile bootstrap interval of the score, resampling the out-of-fold
            outputs within each group (the probes are not refitted, so it covers the
            sampling of evaluation points only).
        ``ci_method`` : str
            ``"bootstrap-percentile-oof"``.
        ``classes`` : list
            The group labels, in the order used by ``coef``.
        ``coef`` : list
            Coefficients on standardised (and, with ``covariates``, residualised)
            features, averaged over folds: a list of
            ``n_features`` floats for two groups (positive pushes toward ``classes[1]``),
            else one such list per class (multinomial model).

    See Also
    --------
    residualize : the residualisation, on the whole sample.

    References
    ----------
    .. [1] Y. Elazar and Y. Goldberg, "Adversarial removal of demographic attributes from
       text data", EMNLP 2018.
    .. [2] M. Ojala and G. C. Garriga, "Permutation tests for studying classifier
       performance", JMLR 11, 2010.
    .. [3] B. Phipson and G. K. Smyth, "Permutation p-values should never be zero",
       Stat. Appl. Genet. Mol. Biol. 9(1), 2010.
    .. [4] J. Besag and P. Clifford, "Sequential Monte Carlo p-values", Biometrika 78(2),
       1991.
    .. [5] L. Snoek, S. Miletić and H. S. Scholte, "How to control for confounds in
       decoding analyses of neuroimaging data", NeuroImage 184, 2019.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> groups = np.repeat(["a", "b"], 100)
    >>> X = rng.normal(size=(200, 4))
    >>> X[groups == "b", 0] += 1.5
    >>> res = probe_leakage(X, groups, n_permutations=19, random_state=0)
    >>> res["score"] > 0.8, res["p_value"], res["classes"]
    (True, 0.05, ['a', 'b'])
    >>> int(np.argmax(np.abs(res["coef"])))
    0
    """
    X = validate_matrix(X, "X", min_rows=2)
    codes, classes = _encode(groups, "groups", X.shape[0])
    cv = validate_int(cv, "cv", low=2)
    n_permutations = validate_int(n_permutations, "n_permutations", low=0)
    stop_after = validate_int(stop_after, "stop_after", low=0)
    n_bootstrap = validate_int(n_bootstrap, "n_bootstrap", low=0)
    confidence = validate_float(confidence, "confidence", low=0, high=1, low_open=True,
                                high_open=True)
    n_classes = len(classes)
    if n_classes < 2:
        raise ValueError(f"groups needs at least 2 distinct groups, got {classes}")
    sizes = np.bincount(codes, minlength=n_classes)
    if sizes.min() < cv:
        small = {classes[i]: int(sizes[i]) for i in np.flatnonzero(sizes < cv)}
        raise ValueError(f"every group needs at least cv={cv} members for stratified "
                         f"{cv}-fold cross-validation; too small: {small}")
    design = None if covariates is None else _design(covariates, X.shape[0])
    rng = check_random_state(random_state)

    limits = 1 if X.size <= _SINGLE_THREAD_MAX_VALUES else None
    with threadpool_limits(limits=limits, user_api="blas"):
        out, coefs = _oof(X, codes, n_classes, cv, rng.randint(np.iinfo(np.int32).max),
                          design)
        score = _score(out, codes, n_classes)
        null = []
        reached = 0
        with warnings.catch_warnings():
            # Probes of shuffled labels are noise fits; their convergence is not the result.
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(n_permutations):
                y_perm = rng.permutation(codes)
                out_perm, _ = _oof(X, y_perm, n_classes, cv,
                                   rng.randint(np.iinfo(np.int32).max), design)
                null.append(_score(out_perm, y_perm, n_classes))
                reached += null[-1] >= score
                if stop_after and reached >= stop_after:
                    break
    coef = np.mean(coefs, axis=0)
    coef_list = coef[0].tolist() if n_classes == 2 else coef.tolist()
    if n_permutations:
        p_value = (reached + 1) / (len(null) + 1)
    else:
        p_value = float("nan")

    if n_bootstrap:
        ci = _bootstrap_ci(out, codes, n_classes, n_bootstrap, confidence, rng)
    else:
        ci = (float("nan"), float("nan"))
    return {"score": score, "chance": 0.5, "p_value": float(p_value),
            "null_scores": [float(v) for v in null], "ci": ci,
            "ci_method": "bootstrap-percentile-oof", "classes": classes, "coef": coef_list}


probe_leakage.higher_is_better = False  # the score measures leakage


# --------------------------------------------------------------------------- residualize

def _design(covariates: Any, n: int) -> np.ndarray:
    """Intercept, numeric columns as they are, categorical columns one-hot (first level
    dropped; ``None``/NaN is a level of its own)."""
    if isinstance(covariates, pd.Series):
        covariates = covariates.to_frame()
    if isinstance(covariates, pd.DataFrame):
        frame = covariates
        numeric = {c: (pd.api.types.is_numeric_dtype(frame[c])
                       and not isinstance(frame[c].dtype, pd.CategoricalDtype))
                   for c in frame.columns}
    else:
        arr = np.asarray(covariates)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(f"covariates must be 1-D or 2-D, got shape {arr.shape}")
        frame = pd.DataFrame(arr)
        is_num = arr.dtype.kind in "biuf"
        numeric = {c: is_num for c in frame.columns}
    if frame.shape[0] != n:
        raise ValueError(f"covariates has {frame.shape[0]} rows, expected {n} (rows of X)")
    columns = [np.ones(n)]
    for c in frame.columns:
        if numeric[c]:
            col = frame[c].to_numpy(dtype=float, na_value=np.nan)
            if not np.isfinite(col).all():
                raise ValueError(f"numeric covariate {c!r} contains NaN or Inf; encode "
                                 "missing values explicitly")
            columns.append(col)
        else:
            codes, levels = _encode(frame[c].to_numpy(dtype=object), f"covariate {c!r}", n)
            for level in range(1, len(levels)):
                columns.append((codes == level).astype(float))
    return np.column_stack(columns)


def residualize(X, covariates) -> np.ndarray:
    """Remove from ``X`` the part linearly explained by the covariates.

    Each column of ``X`` is regressed by least squares on an intercept, the numeric
    covariates and one-hot indicators of the categorical ones, and replaced by its
    residual: what is left once these (legitimate) factors are accounted for.

    To *probe* the residuals for a group, pass the covariates to :func:`probe_leakage`
    instead of probing ``residualize(X, covariates)``: residualising the whole sample
    before cross-validation leaves each training fold's group difference anti-correlated
    with the test fold's, which pushes the probe's score below chance when the group
    depends on the covariates (Snoek et al., 2019). ``probe_leakage`` residualises fold
    by fold.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Latent vectors.
    covariates : DataFrame, Series or array-like of shape (n_samples,) or (n_samples, p)
        In a DataFrame, numeric columns (bool included) enter as they are and every other
        column (object, string, category) is one-hot encoded with its first level
        dropped, ``None``/NaN being a level of its own. A NumPy array is numeric as a
        whole when its dtype is bool/int/float, else each of its columns is categorical.
        Numeric values must be finite. ``p`` may be 0 (only the mean is removed).

    Returns
    -------
    residuals : ndarray of shape (n_samples, n_features)
        Orthogonal to the intercept and every covariate column, so each column has mean 0.
        A ``RuntimeWarning`` is raised when the covariates span all ``n_samples``
        dimensions (the residuals are then 0).

    See Also
    --------
    probe_leakage : probe for a group, optionally with fold-wise residualisation.

    References
    ----------
    .. [1] L. Snoek, S. Miletić and H. S. Scholte, "How to control for confounds in
       decoding analyses of neuroimaging data", NeuroImage 184, 2019.

    Examples
    --------
    >>> X = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 5.0], [4.0, 5.0]])
    >>> res = residualize(X, pd.DataFrame({"site": ["u", "u", "v", "v"]}))
    >>> (np.round(res, 9) + 0.0).tolist()
    [[-0.5, 0.0], [0.5, 0.0], [-0.5, 0.0], [0.5, 0.0]]
    """
    X = validate_matrix(X, "X")
    design = _design(covariates, X.shape[0])
    beta, _, rank, _ = np.linalg.lstsq(design, X, rcond=None)
    if rank >= X.shape[0]:
        warnings.warn("the covariates span every sample: X is explained exactly and the "
                      "residuals are 0", RuntimeWarning, stacklevel=2)
    return X - design @ beta


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
