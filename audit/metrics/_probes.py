"""Linear probes, joint attribute directions and edit leakage between attributes.

The questions: how much of each attribute a linear read-out recovers from the latents
(:func:`probe_score`), along which direction of latent space each attribute is encoded
once the others are held fixed (:func:`joint_directions`), and whether editing one
attribute moves the read-out of another (:func:`leakage_matrix`,
:func:`entanglement_analysis`, :func:`shift_leakage`), or whether one attribute's direction
changes between the groups of another (:func:`direction_consistency`).

Conventions shared by every function here:

* ``attributes`` is a sequence of 1-D arrays of length ``n_samples``, one per attribute,
  with ``categorical`` saying which are categorical. Numeric attributes are z-scored, so a
  "step of one" is one standard deviation; categorical ones are one-hot coded (the most
  frequent level is the reference) and centred. Missing values are not accepted: drop or
  fill them first (the ``entanglement`` check drops rows and counts them).
* The **joint direction** of an attribute comes from one multi-output least-squares
  regression of the centred latents on every attribute at once, so it is the change of
  the mean latent per standard deviation of the attribute *with the other attributes held
  fixed*: two attributes that are correlated in the data but encoded along separate axes
  get separate (orthogonal) directions. A categorical attribute with K levels has K - 1
  level effects; its direction is the leading principal axis of those effects, scaled to
  the standard deviation of the effect along it, and its **score** (used as the probe
  target) is each level's position on that axis, which has unit variance.
* The **partial probe** of an attribute is a ridge regression of its (z-scored) score on
  the latents, both residualised on every *other* attribute: the read-out of that
  attribute that a correlated attribute cannot stand in for. A marginal probe would lean on
  a correlated attribute's axis and make data correlation look like entanglement.
* Everything is computed from the centred second-moment matrix of ``[latents, design]``,
  so a bootstrap resample costs one ``(d + p)²`` product per row.
"""
from __future__ import annotations

import math
import warnings
from functools import partial
from typing import Any, Sequence

import numpy as np
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ._validation import validate_float, validate_int, validate_labels, validate_matrix

__all__ = ["probe_score", "joint_directions", "partial_probes", "direction_cosines",
           "leakage_matrix", "attribute_association", "entanglement_analysis",
           "shift_leakage", "direction_consistency"]

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
_MAX_ITER = 500
# One BLAS thread for the many small fits: threads only add overhead there.
_SINGLE_THREAD_MAX_VALUES = 1 << 22


# ---- validation --------------------------------------------------------------------------

def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v)            # NaN, pd.NA raises -> not missing in the usual sense
    except (TypeError, ValueError):
        return True


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
            if arr.dtype == object and any(_is_missing(v) for v in arr.tolist()):
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


def _design(attributes: list[np.ndarray], categorical: list[bool]
            ) -> tuple[np.ndarray, list[slice]]:
    """Centred design matrix ``(n, p)`` and each attribute's column block.

    Numeric attributes: one z-scored column. Categorical: one-hot columns of every level
    but the most frequent (the reference), centred.
    """
    cols, blocks, start = [], [], 0
    for a, cat in zip(attributes, categorical):
        if cat:
            codes, _ = _codes(a)
            counts = np.bincount(codes)
            ref = int(np.argmax(counts))
            keep = [k for k in range(counts.size) if k != ref]
            block = (codes[:, None] == np.array(keep)[None, :]).astype(np.float64)
        else:
            block = ((a - a.mean()) / a.std())[:, None]
        cols.append(block - block.mean(axis=0))
        blocks.append(slice(start, start + block.shape[1]))
        start += block.shape[1]
    return np.hstack(cols), blocks


def _moments(Z: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Centred second moments ``Zᵀ Z / n`` of the (resampled) rows of ``Z``."""
    z = Z if rows is None else Z[rows]
    z = z - z.mean(axis=0)
    return (z.T @ z) / z.shape[0]


def _pinv(a: np.ndarray) -> np.ndarray:
    return np.linalg.pinv(a, rcond=1e-10, hermitian=True)


def _analyse(M: np.ndarray, d: int, blocks: list[slice], categorical: list[bool],
             ridge: float, *, marginal: bool = False) -> dict[str, np.ndarray]:
    """Directions, scores, partial probes, cosines, leakage and association from moments."""
    Mxx, Mxd, Mdd = M[:d, :d], M[:d, d:], M[d:, d:]
    B = _pinv(Mdd) @ Mxd.T                                   # (p, d) joint effects
    m = len(blocks)
    dirs = np.zeros((m, d))
    score_coef = []                                          # t_a = D_a @ c_a
    for a, (s, cat) in enumerate(zip(blocks, categorical)):
        Ba = B[s]
        if not cat:
            c = np.array([1.0 / math.sqrt(max(Mdd[s, s][0, 0], 1e-300))])
            dirs[a] = Ba[0] / c[0]                           # per SD of the attribute
        else:
            C = Mdd[s, s]
            w, V = np.linalg.eigh(C)
            root = (V * np.sqrt(np.clip(w, 0, None))) @ V.T  # C^(1/2)
            _, sv, vt = np.linalg.svd(root @ Ba, full_matrices=False)
            v1 = vt[0]
            if v1[np.argmax(np.abs(v1))] < 0:
                v1 = -v1
            s1 = sv[0]
            dirs[a] = s1 * v1
            c = Ba @ v1 / s1 if s1 > 0 else np.zeros(Ba.shape[0])
        score_coef.append(c)
    probes = np.zeros((m, d))
    marginal_probes = np.zeros((m, d)) if marginal else None
    eye = np.eye(d)
    p = Mdd.shape[0]
    for b, s in enumerate(blocks):
        other = np.ones(p, dtype=bool)
        other[s] = False
        Mxb = Mxd[:, s] @ score_coef[b]
        if other.any():
            Moo_inv = _pinv(Mdd[np.ix_(other, other)])
            Mxo = Mxd[:, other]
            R = Mxx - Mxo @ Moo_inv @ Mxo.T
            r = Mxb - Mxo @ Moo_inv @ (Mdd[other][:, s] @ score_coef[b])
        else:
            R, r = Mxx, Mxb
        lam = ridge * max(np.trace(R) / d, 1e-12)
        probes[b] = np.linalg.solve(R + lam * eye, r)
        if marginal:
            lam_m = ridge * max(np.trace(Mxx) / d, 1e-12)
            marginal_probes[b] = np.linalg.solve(Mxx + lam_m * eye, Mxb)
    out = {"directions": dirs, "probes": probes, "score_coef": score_coef,
           "cosine": _cosines(dirs, categorical),
           "leakage": _leakage(dirs, probes),
           "association": _association(Mdd, blocks, categorical)}
    if marginal:
        out["marginal_probes"] = marginal_probes
        out["marginal_leakage"] = _leakage(dirs, marginal_probes)
    return out


def _cosines(dirs: np.ndarray, categorical: list[bool]) -> np.ndarray:
    norms = np.linalg.norm(dirs, axis=1)
    safe = np.where(norms > 0, norms, np.nan)
    cos = (dirs @ dirs.T) / safe[:, None] / safe[None, :]
    cat = np.asarray(categorical, dtype=bool)
    unsigned = cat[:, None] | cat[None, :]                  # a categorical axis has no sign
    cos = np.where(unsigned, np.abs(cos), cos)
    np.fill_diagonal(cos, np.where(norms > 0, 1.0, np.nan))
    return np.clip(cos, -1.0, 1.0)


def _leakage(dirs: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """``L[a, b] = |w_b · δ_a| / |w_a · δ_a|``: B's read-out per unit of A's own."""
    resp = dirs @ probes.T                                   # resp[a, b] = w_b · δ_a
    own = np.abs(np.diag(resp))
    with np.errstate(divide="ignore", invalid="ignore"):
        L = np.abs(resp) / own[:, None]
    L[own <= 0] = np.nan
    return L


def _association(Mdd: np.ndarray, blocks: list[slice], categorical: list[bool]) -> np.ndarray:
    """First canonical correlation between every two attributes' design blocks (signed
    Pearson r for two numeric attributes)."""
    m = len(blocks)
    roots = []
    for s in blocks:
        w, V = np.linalg.eigh(Mdd[s, s])
        inv = np.where(w > 1e-12 * max(w.max(), 1e-300), 1.0 / np.sqrt(np.clip(w, 1e-300, None)),
                       0.0)
        roots.append((V * inv) @ V.T)                        # C^(-1/2)
    A = np.eye(m)
    for a in range(m):
        for b in range(a + 1, m):
            K = roots[a] @ Mdd[blocks[a], blocks[b]] @ roots[b]
            if not categorical[a] and not categorical[b]:
                r = float(K[0, 0])
            else:
                r = float(np.linalg.svd(K, compute_uv=False)[0]) if K.size else 0.0
            A[a, b] = A[b, a] = float(np.clip(r, -1.0, 1.0))
    return A


def _percentile_ci(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = 1.0 - confidence
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanquantile(samples, alpha / 2, axis=0)
        hi = np.nanquantile(samples, 1 - alpha / 2, axis=0)
    return lo, hi


def _robust_se(samples: np.ndarray) -> np.ndarray:
    """Half the central 68.3% range of the bootstrap distribution (the SD if normal)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(samples, [0.15865, 0.84135], axis=0)
    return (q[1] - q[0]) / 2.0


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
    pred = np.empty(n, dtype=np.intp if cat else np.float64)
    limit = 1 if X.size <= _SINGLE_THREAD_MAX_VALUES else None
    with threadpool_limits(limits=limit), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in folds:
            mu = X[train].mean(axis=0)
            sd = X[train].std(axis=0)
            sd[sd <= 1e-12 * (1.0 + np.abs(mu))] = 1.0
            model = (LogisticRegression(class_weight="balanced", max_iter=_MAX_ITER) if cat
                     else RidgeCV(alphas=_RIDGE_ALPHAS))
            model.fit((X[train] - mu) / sd, target[train])
            pred[test] = model.predict((X[test] - mu) / sd)
        mu, sd = X.mean(axis=0), X.std(axis=0)
        sd[sd <= 1e-12 * (1.0 + np.abs(mu))] = 1.0
        full = (LogisticRegression(class_weight="balanced", max_iter=_MAX_ITER) if cat
                else RidgeCV(alphas=_RIDGE_ALPHAS)).fit((X - mu) / sd, target)
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


def joint_directions(X, attributes, *, categorical=None) -> np.ndarray:
    """Each attribute's direction in latent space with the other attributes held fixed.

    One least-squares regression of the centred latents on every attribute at once (see the
    module notes): a numeric attribute's direction is its coefficient row, the change of the
    mean latent per standard deviation of the attribute; a categorical attribute's is the
    leading principal axis of its level effects, scaled to the standard deviation of the
    effect along that axis (its sign making the largest component positive).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Latent vectors, finite (e.g. z-scored).
    attributes : sequence of array-like of shape (n_samples,), or 2-D array
        One array per attribute, without missing values, each taking at least two values.
    categorical : sequence of bool, bool or None, default=None
        Which attributes are categorical (None: all numeric).

    Returns
    -------
    ndarray of shape (n_attributes, n_features)
        The directions, in the units of ``X``. Attributes that are exact linear functions
        of each other share their effect (pseudo-inverse).

    See Also
    --------
    direction_cosines, entanglement_analysis

    Examples
    --------
    Two attributes correlated at 0.8 in the data, but each encoded on its own axis:

    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=2000)
    >>> b = 0.8 * a + 0.6 * rng.normal(size=2000)
    >>> X = np.column_stack([a, b, rng.normal(size=2000)]) + 0.1 * rng.normal(size=(2000, 3))
    >>> np.abs(joint_directions(X, [a, b])).round(1).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    X = validate_matrix(X, "X", min_rows=3)
    attrs, cats = _check_attributes(attributes, categorical, X.shape[0])
    D, blocks = _design(attrs, cats)
    M = _moments(np.hstack([X, D]))
    return _analyse(M, X.shape[1], blocks, cats, 1e-6)["directions"]


def partial_probes(X, attributes, *, categorical=None, ridge: float = 1e-3) -> np.ndarray:
    """Each attribute's linear read-out with the other attributes partialled out.

    For attribute b: a ridge regression of its score (z-scored value, or for a categorical
    attribute its level positions on its joint direction) on the latents, both residualised
    on every other attribute (Frisch–Waugh–Lovell), fitted on all rows.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Latent vectors, finite.
    attributes : sequence of array-like of shape (n_samples,), or 2-D array
        One array per attribute, without missing values.
    categorical : sequence of bool, bool or None, default=None
        Which attributes are categorical (None: all numeric).
    ridge : float, default=1e-3
        Ridge penalty relative to the mean residual variance of the features, >= 0.

    Returns
    -------
    ndarray of shape (n_attributes, n_features)
        Probe weights: ``w_b · x`` predicts attribute b in its standard deviations.

    See Also
    --------
    leakage_matrix

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=2000)
    >>> b = 0.8 * a + 0.6 * rng.normal(size=2000)
    >>> X = np.column_stack([a, b]) + rng.normal(size=(2000, 2))
    >>> np.abs(partial_probes(X, [a, b])).round(2).tolist()
    [[0.27, 0.01], [0.0, 0.27]]

    Each read-out is ``0.36 / (1 + 0.36)``: the variance of the attribute left once the
    other is known, shrunk by the unit noise; neither leans on the other's axis.
    """
    X = validate_matrix(X, "X", min_rows=3)
    attrs, cats = _check_attributes(attributes, categorical, X.shape[0])
    ridge = _CONSTRAINTS["ridge"](ridge)
    D, blocks = _design(attrs, cats)
    M = _moments(np.hstack([X, D]))
    return _analyse(M, X.shape[1], blocks, cats, ridge)["probes"]


def direction_cosines(directions, *, categorical=None) -> np.ndarray:
    """Cosine between every two attribute directions.

    Parameters
    ----------
    directions : array-like of shape (n_attributes, n_features)
        E.g. from :func:`joint_directions`.
    categorical : sequence of bool, bool or None, default=None
        Attributes whose direction has no sign (categorical ones): cosines involving them
        are absolute values.

    Returns
    -------
    ndarray of shape (n_attributes, n_attributes)
        Cosines in [-1, 1] (in [0, 1] where a categorical attribute is involved); 1 on the
        diagonal, ``nan`` for a zero direction.

    Examples
    --------
    >>> direction_cosines([[1.0, 0.0], [1.0, 1.0], [0.0, -2.0]]).round(3).tolist()
    [[1.0, 0.707, 0.0], [0.707, 1.0, -0.707], [0.0, -0.707, 1.0]]
    """
    dirs = validate_matrix(directions, "directions")
    cats = ([False] * dirs.shape[0] if categorical is None else
            [bool(categorical)] * dirs.shape[0] if isinstance(categorical, (bool, np.bool_))
            else [bool(c) for c in categorical])
    if len(cats) != dirs.shape[0]:
        raise ValueError(f"categorical has {len(cats)} entries for {dirs.shape[0]} directions")
    return _cosines(dirs, cats)


def leakage_matrix(directions, probes) -> np.ndarray:
    """Edit leakage: how far B's read-out moves when the latent moves along A's direction.

    ``L[a, b] = |w_b · δ_a| / |w_a · δ_a|``: moving a latent by ``δ_a`` (one standard
    deviation of attribute a, other attributes held fixed) changes the probe prediction of
    b by ``w_b · δ_a`` of b's standard deviations; the ratio puts it relative to a's own
    change. 0 means editing a leaves b's read-out alone; 1 means b moves as much as a.

    Parameters
    ----------
    directions : array-like of shape (n_attributes, n_features)
        ``δ_a``, e.g. from :func:`joint_directions`.
    probes : array-like of shape (n_attributes, n_features)
        ``w_b``, e.g. from :func:`partial_probes`.

    Returns
    -------
    ndarray of shape (n_attributes, n_attributes)
        Row a, column b; 1 on the diagonal; ``nan`` in row a when a's own read-out does not
        move (``w_a · δ_a = 0``).

    Examples
    --------
    Moving along the second direction moves the first read-out half as much as its own:

    >>> leakage_matrix([[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.0, 2.0]]).tolist()
    [[1.0, 0.0], [0.5, 1.0]]

    An attribute whose direction its own probe ignores has no defined leakage:

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     row = leakage_matrix([[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]])[0]
    >>> row.tolist(), "w_a" in str(w[0].message)
    ([nan, nan], True)
    """
    dirs = validate_matrix(directions, "directions")
    w = validate_matrix(probes, "probes")
    if w.shape != dirs.shape:
        raise ValueError(f"probes has shape {w.shape} but directions has {dirs.shape}")
    L = _leakage(dirs, w)
    dead = np.flatnonzero(np.isnan(np.diag(L)))
    if dead.size:
        warnings.warn(f"leakage_matrix: attribute(s) {dead.tolist()} do not move their own "
                      "read-out (w_a · δ_a = 0); their rows are nan", RuntimeWarning,
                      stacklevel=2)
    return L


def attribute_association(attributes, *, categorical=None) -> np.ndarray:
    """How strongly every two attributes are associated in the data.

    Pearson r for two numeric attributes (signed); otherwise the first canonical correlation
    between their codings, which is the correlation ratio η for a numeric and a categorical
    attribute (in [0, 1]).

    Parameters
    ----------
    attributes : sequence of array-like of shape (n_samples,), or 2-D array
        One array per attribute, without missing values.
    categorical : sequence of bool, bool or None, default=None
        Which attributes are categorical (None: all numeric).

    Returns
    -------
    ndarray of shape (n_attributes, n_attributes)
        1 on the diagonal.

    Examples
    --------
    >>> a = np.array([0.0, 1, 2, 3, 4, 5])
    >>> attribute_association([a, -a, np.array(list("xxxyyy"))],
    ...                       categorical=[False, False, True]).round(3).tolist()
    [[1.0, -1.0, 0.878], [-1.0, 1.0, 0.878], [0.878, 0.878, 1.0]]
    """
    first = attributes[0] if len(attributes) else []
    n = len(first)
    attrs, cats = _check_attributes(attributes, categorical, n)
    D, blocks = _design(attrs, cats)
    return _association(_moments(D), blocks, cats)


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


def _directions_only(C: np.ndarray, d: int, blocks: list[slice],
                     categorical: list[bool]) -> np.ndarray:
    """The first attribute's joint direction from the cross moments ``C = [Mxd; Mdd]``."""
    Mxd, Mdd = C[:d], C[d:]
    B = _pinv(Mdd) @ Mxd.T
    s = blocks[0]
    Ba = B[s]
    if not categorical[0]:
        return Ba[0] * math.sqrt(max(Mdd[s, s][0, 0], 0.0))
    w, V = np.linalg.eigh(Mdd[s, s])
    root = (V * np.sqrt(np.clip(w, 0, None))) @ V.T
    _, sv, vt = np.linalg.svd(root @ Ba, full_matrices=False)
    return sv[0] * vt[0]


# Up to this many values, per-row outer products are kept so that each relabelling costs
# one matrix product instead of a pass per group.
_OUTER_MAX_VALUES = 1 << 22


class _GroupMoments:
    """Centred cross moments ``[X D]ᵀ D / n_g`` per group, for many relabellings."""

    def __init__(self, Z: np.ndarray, d: int) -> None:
        self.Z, self.D = Z, Z[:, d:]
        n, q = Z.shape
        p = self.D.shape[1]
        self.outer = ((Z[:, :, None] * self.D[:, None, :]).reshape(n, q * p)
                      if n * q * p <= _OUTER_MAX_VALUES else None)

    def __call__(self, labels: np.ndarray, k: int) -> list[np.ndarray]:
        Z, D = self.Z, self.D
        q, p = Z.shape[1], D.shape[1]
        if self.outer is None:
            out = []
            for g in range(k):
                zg = Z[labels == g]
                zg = zg - zg.mean(axis=0)
                out.append(zg.T @ zg[:, q - p:] / zg.shape[0])
            return out
        H = np.zeros((k, Z.shape[0]))
        H[labels, np.arange(Z.shape[0])] = 1.0
        size = H.sum(axis=1)
        mean = (H @ Z) / size[:, None]                       # (k, q)
        raw = (H @ self.outer).reshape(k, q, p) / size[:, None, None]
        return list(raw - mean[:, :, None] * mean[:, None, q - p:])


def _mean_pairwise_cosine(dirs: np.ndarray, unsigned: bool) -> tuple[float, np.ndarray]:
    norms = np.linalg.norm(dirs, axis=1)
    norms = np.where(norms > 0, norms, np.nan)
    cos = (dirs @ dirs.T) / norms[:, None] / norms[None, :]
    if unsigned:
        cos = np.abs(cos)
    iu = np.triu_indices(dirs.shape[0], 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (float(np.nanmean(cos[iu])) if iu[0].size else float("nan")), cos


def _fisher(x: np.ndarray | float) -> np.ndarray:
    return np.arctanh(np.clip(x, -1 + 1e-9, 1 - 1e-9))


def direction_consistency(X, attribute, groups, *, categorical: bool = False,
                          covariates=None, covariates_categorical=None,
                          min_group_size: int = 30, n_permutations: int = 100,
                          random_state=None) -> dict[str, Any]:
    """Is an attribute's direction the same inside every group of another attribute?

    The latents, the attribute and the covariates are first centred within each group
    (removing the grouping attribute's own effect); then inside each group the attribute's
    joint direction is estimated (controlling for the covariates, as in
    :func:`joint_directions`), and the statistic is the mean cosine between the group-wise
    directions over all pairs of groups (absolute cosines for a categorical attribute,
    whose axis has no sign). Low means the model's notion of the attribute depends on the
    group ("latent arithmetic" would not transfer).

    The test of "same direction in every group" shuffles the group labels (after the
    centring) and recomputes the statistic. A count-based p-value cannot go below
    ``1 / (n_permutations + 1)``, too coarse for a Benjamini–Hochberg correction over many
    pairs, so ``p_value`` is the lower tail of a normal fitted to the shuffled statistics on
    the Fisher scale (``atanh``, where a mean of cosines near 1 is close to symmetric);
    the count-based ``p_value_count`` is returned beside it.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Latent vectors, finite.
    attribute : array-like of shape (n_samples,)
        The attribute whose direction is compared, without missing values.
    groups : array-like of shape (n_samples,)
        Group labels (e.g. another categorical attribute, or bins of a numeric one).
    categorical : bool, default=False
        Whether ``attribute`` is categorical.
    covariates : sequence of array-like of shape (n_samples,) or None, default=None
        Further attributes to hold fixed.
    covariates_categorical : sequence of bool or None, default=None
        Which covariates are categorical (None: all numeric).
    min_group_size : int, default=30
        Groups with fewer rows are left out (listed in ``dropped_groups``), >= 2.
    n_permutations : int, default=100
        Shuffles for the p-values, >= 0 (0: ``nan``).
    random_state : int, RandomState instance or None, default=None
        Seeds the permutations.

    Returns
    -------
    result : dict
        ``mean_cosine`` : float, the statistic (``nan`` with fewer than two groups);
        ``cosine`` : ndarray (n_groups, n_groups); ``to_pooled`` : ndarray (n_groups,),
        each group's direction against the one fitted on all rows; ``groups`` and ``sizes``
        of the groups kept; ``dropped_groups``; ``p_value`` (normal approximation, see
        above); ``p_value_count``; ``null_mean``: the mean shuffled statistic (what
        sampling noise alone gives).

    See Also
    --------
    joint_directions

    Examples
    --------
    Group 0 encodes ``a`` on the first axis, group 1 on the second:

    >>> rng = np.random.default_rng(0)
    >>> g = rng.integers(0, 2, 600)
    >>> a = rng.normal(size=600)
    >>> X = np.column_stack([np.where(g == 0, a, 0), np.where(g == 1, a, 0)])
    >>> X = X + 0.1 * rng.normal(size=(600, 2))
    >>> res = direction_consistency(X, a, g, n_permutations=50, random_state=0)
    >>> round(res["mean_cosine"], 2), round(res["null_mean"], 2), res["p_value"] < 0.01
    (0.0, 0.99, True)
    >>> res["groups"], res["sizes"]
    ([0, 1], [278, 322])
    """
    X = validate_matrix(X, "X", min_rows=3)
    n, d = X.shape
    covariates = [] if covariates is None else list(covariates)
    cov_cat = ([False] * len(covariates) if covariates_categorical is None
               else [bool(c) for c in covariates_categorical])
    if len(cov_cat) != len(covariates):
        raise ValueError(f"covariates_categorical has {len(cov_cat)} entries for "
                         f"{len(covariates)} covariates")
    groups = validate_labels(groups, "groups", n)
    min_group_size = _CONSTRAINTS["min_group_size"](min_group_size)
    n_permutations = _CONSTRAINTS["n_permutations"](n_permutations)
    rng = check_random_state(random_state)
    gcodes, glevels = _codes(groups.astype(object) if groups.dtype.kind not in "iub"
                             else groups)
    sizes = np.bincount(gcodes, minlength=len(glevels))
    kept = np.flatnonzero(sizes >= min_group_size)
    dropped = [glevels[k] for k in np.flatnonzero(sizes < min_group_size)]
    rows = np.isin(gcodes, kept)
    attrs, cats = _check_attributes([np.asarray(attribute)[rows],
                                     *[np.asarray(c)[rows] for c in covariates]],
                                    [categorical, *cov_cat], int(rows.sum()))
    remap = np.full(len(glevels), -1)
    remap[kept] = np.arange(kept.size)
    labels = remap[gcodes[rows]]
    D, blocks = _design(attrs, cats)
    Z = np.hstack([X[rows], D])
    p = D.shape[1]
    pooled = _directions_only(_moments(Z)[:, d:], d, blocks, cats)
    K = kept.size
    py = lambda v: v.item() if isinstance(v, np.generic) else v  # noqa: E731
    result: dict[str, Any] = {
        "groups": [py(glevels[k]) for k in kept], "sizes": sizes[kept].tolist(),
        "dropped_groups": [py(v) for v in dropped],
        "mean_cosine": float("nan"), "cosine": np.full((K, K), np.nan),
        "to_pooled": np.full(K, np.nan), "p_value": float("nan"),
        "p_value_count": float("nan"), "null_mean": float("nan")}
    if K < 2:
        return result
    for g in range(K):                                       # remove the groups' own effect
        sel = labels == g
        Z[sel] -= Z[sel].mean(axis=0)
    moments = _GroupMoments(Z, d)

    def statistic(lab: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        dirs = np.stack([_directions_only(C, d, blocks, cats) for C in moments(lab, K)])
        stat, cos = _mean_pairwise_cosine(dirs, cats[0])
        return stat, cos, dirs
    limit = 1 if Z.size * max(p, 1) <= _SINGLE_THREAD_MAX_VALUES else None
    with threadpool_limits(limits=limit):
        stat, cos, dirs = statistic(labels)
        norms = np.linalg.norm(dirs, axis=1) * np.linalg.norm(pooled)
        with np.errstate(divide="ignore", invalid="ignore"):
            to_pooled = (dirs @ pooled) / np.where(norms > 0, norms, np.nan)
        if cats[0]:
            to_pooled = np.abs(to_pooled)
        result.update(mean_cosine=stat, cosine=cos, to_pooled=to_pooled)
        if n_permutations > 0 and math.isfinite(stat):
            null = np.array([statistic(rng.permutation(labels))[0]
                             for _ in range(n_permutations)])
            null = null[np.isfinite(null)]
            if null.size:
                result["p_value_count"] = float((np.sum(null <= stat) + 1) / (null.size + 1))
                result["null_mean"] = float(null.mean())
                zn = _fisher(null)
                sd = zn.std(ddof=1) if null.size > 1 else 0.0
                if sd > 0:
                    result["p_value"] = float(stats.norm.cdf((_fisher(stat) - zn.mean()) / sd))
                else:
                    result["p_value"] = result["p_value_count"]
    return result


for _fn in (probe_score,):
    _fn.higher_is_better = True
del _fn
