"""Probe leakage of a protected group from the latents, and residualisation.

Group labels follow the conventions of ``_fairness``. Further:

* Permutation p-values are ``(count + 1) / (n + 1)`` where ``count`` is the number of
  the ``n`` null statistics at least as large as the observed one (Phipson & Smyth, 2010).
"""
from __future__ import annotations

import copy
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ._fairness import _encode
from ._probes import logistic_probe, out_of_fold, threads
from ._validation import validate_float, validate_int, validate_matrix

__all__ = ["probe_leakage", "residualize"]

# Upper bound on the number of float64 values in one bootstrap block.
_BOOT_CHUNK_VALUES = 1 << 21
# Up to this many values in X, the probe's many small fits run with one BLAS thread:
# threads only add overhead there, and on a busy machine they can make it 5x slower.
_SINGLE_THREAD_MAX_VALUES = 1 << 20
_INT32_MAX = np.iinfo(np.int32).max


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
         design: np.ndarray | None, workers: int = 1
         ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Out-of-fold decision values (binary) or probabilities, and each fold's coefficients:
    the shared cross-validated logistic probe (:func:`._probes.out_of_fold`) over shuffled
    stratified folds, residualised fold by fold on ``design`` when given."""
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed).split(X, y)
    output = "decision_function" if n_classes == 2 else "predict_proba"
    return out_of_fold(X, y, folds, logistic_probe, output=output, design=design,
                       workers=workers)


def _null_scores(X: np.ndarray, codes: np.ndarray, n_classes: int, cv: int,
                 design: np.ndarray | None, score: float, n_permutations: int,
                 stop_after: int, rng: np.random.RandomState, workers: int
                 ) -> tuple[list[float], int]:
    """The permutation scores and how many reached ``score``: the serial loop's
    (permutation, fold seed) draws, up to ``workers`` of them fitted at once.

    The draws come from a copy of ``rng``, so later permutations can start before the
    sequential stop (``stop_after``) is decided; results are taken in order and the loop
    stops where the serial one would. ``rng`` then replays exactly the draws used, and
    leaves here in the serial loop's state (the bootstrap draws from it next). At most
    ``workers - 1`` fits past the stop are wasted.
    """
    ahead = copy.deepcopy(rng)

    def job(y_perm: np.ndarray, seed: int) -> float:
        return _score(_oof(X, y_perm, n_classes, cv, seed, design)[0], y_perm, n_classes)

    null: list[float] = []
    reached = 0
    pending: deque = deque()
    drawn = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while len(null) < n_permutations:
            while drawn < n_permutations and len(pending) < max(1, workers):
                y_perm = ahead.permutation(codes)
                pending.append(pool.submit(job, y_perm, ahead.randint(_INT32_MAX)))
                drawn += 1
            null.append(pending.popleft().result())
            reached += null[-1] >= score
            if stop_after and reached >= stop_after:
                break
        for f in pending:
            f.cancel()
    for _ in null:
        rng.permutation(codes)
        rng.randint(_INT32_MAX)
    return null, reached


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
        # many BLAS threads would run under each of ours: then one fit at a time
        workers = threads() if limits == 1 else 1
        out, coefs = _oof(X, codes, n_classes, cv, rng.randint(_INT32_MAX), design,
                          workers)
        score = _score(out, codes, n_classes)
        with warnings.catch_warnings():
            # Probes of shuffled labels are noise fits; their convergence is not the result.
            warnings.simplefilter("ignore", ConvergenceWarning)
            null, reached = _null_scores(X, codes, n_classes, cv, design, score,
                                         n_permutations, stop_after, rng, workers)
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
