"""Joint attribute directions, partial probes, cosines, edit leakage and association.

Attributes follow the conventions of ``_probes``. Further:

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

import numpy as np

from ._probes import _CONSTRAINTS, _check_attributes, _codes
from ._validation import validate_matrix

__all__ = ["joint_directions", "partial_probes", "direction_cosines", "leakage_matrix",
           "attribute_association"]

# ---- private stages (trust their inputs) ----------------------------------------------------

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


# ---- public functions -------------------------------------------------------------------------

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
