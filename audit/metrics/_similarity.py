"""Similarity of two representations of the same points: linear CKA, k-NN overlap,
Procrustes and linear-map residuals.

Both arguments describe the same ``n`` points row by row (row ``i`` of ``X`` and row ``i``
of ``Y`` are the same point), in spaces whose dimensions may differ (``X`` is
``(n, p)``, ``Y`` is ``(n, q)``).

Nothing here builds an ``n x n`` matrix. CKA and the Procrustes residual need only the
feature-space Gram matrices ``X^T X`` (p x p), ``Y^T Y`` (q x q) and ``X^T Y`` (p x q), the
row norms and the column sums; they are accumulated in float64 over blocks of rows, so
float32 inputs are never copied whole and 100k x 128 costs a few MiB beyond the inputs.
"""
from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from ._validation import validate_matrix

__all__ = ["cka_linear", "knn_overlap", "linear_map_residual", "mean_knn_overlap",
           "procrustes_residual"]

# Rows per block of the float64 accumulation: 8192 x 128 float64 is 8 MiB.
_BLOCK_ROWS = 8192


def _check_bool(x: Any, name: str) -> bool:
    if not isinstance(x, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {x!r}")
    return bool(x)


# Declared constraints on the options, checked once at the public boundary.
_CONSTRAINTS = {
    "debiased": partial(_check_bool, name="debiased"),
    "scale": partial(_check_bool, name="scale"),
}


# --------------------------------------------------------------------------- validation

def _check_matrix(x: Any, name: str, min_rows: int) -> np.ndarray:
    """A finite 2-D float array; float32 stays float32 (no float64 copy of the input)."""
    arr = np.asarray(x) if not isinstance(x, np.ndarray) else x
    dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
    return validate_matrix(arr, name, min_rows=min_rows, dtype=dtype)


def _check_pair(X: Any, Y: Any, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate two representations of the same points (same number of rows)."""
    x = _check_matrix(X, "X", 1)
    y = _check_matrix(Y, "Y", 1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"X has {x.shape[0]} rows but Y has {y.shape[0]}; they must "
                         f"describe the same points, row by row")
    if x.shape[0] < min_rows:
        raise ValueError(f"X and Y need at least {min_rows} rows (points), got {x.shape[0]}")
    return x, y


def _check_neighbours(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.isfinite(arr).all() \
                and (arr == np.round(arr)).all():
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must be an array of integer point indices, got dtype "
                             f"{arr.dtype}" + (" with NaN, Inf or fractional values"
                                               if arr.dtype.kind == "f" else ""))
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_points, k), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} needs at least one point and one neighbour, got shape "
                         f"{arr.shape}")
    if arr.dtype.kind == "i" and (arr < 0).any():
        raise ValueError(f"{name} contains negative indices (e.g. -1 for a missing "
                         f"neighbour); every entry must be a point index >= 0")
    return arr.astype(np.int64, copy=False)


def _constant(x: np.ndarray) -> bool:
    """Whether every row of ``x`` is the same point (zero variance, checked exactly: the
    centred Gram matrix of equal rows holds only rounding noise)."""
    return not bool(np.any(x.max(axis=0) > x.min(axis=0)))


def _undefined(metric: str, why: str) -> float:
    warnings.warn(f"{metric} is undefined: {why}; returning nan", RuntimeWarning,
                  stacklevel=3)
    return float("nan")


# --------------------------------------------------------------------------- private stages

def _column_means(x: np.ndarray) -> np.ndarray:
    total = np.zeros(x.shape[1])
    for s in range(0, x.shape[0], _BLOCK_ROWS):
        total += x[s:s + _BLOCK_ROWS].sum(axis=0, dtype=np.float64)
    return total / x.shape[0]


def _grams(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Feature-space statistics of the column-centred ``x`` and ``y``, in float64.

    ``xx = Xc^T Xc``, ``yy = Yc^T Yc``, ``xy = Xc^T Yc``; ``dx``/``dy`` the squared row
    norms of ``Xc``/``Yc`` (the diagonals of the linear kernels ``Xc Xc^T``, ``Yc Yc^T``);
    ``sx``/``sy`` the column sums of ``Xc``/``Yc`` (zero up to rounding; kept so that the
    unbiased HSIC below is exact for whatever was accumulated).
    """
    n, p = x.shape
    q = y.shape[1]
    mx, my = _column_means(x), _column_means(y)
    xx, yy, xy = np.zeros((p, p)), np.zeros((q, q)), np.zeros((p, q))
    dx, dy = np.empty(n), np.empty(n)
    sx, sy = np.zeros(p), np.zeros(q)
    for s in range(0, n, _BLOCK_ROWS):
        xb = x[s:s + _BLOCK_ROWS].astype(np.float64) - mx
        yb = y[s:s + _BLOCK_ROWS].astype(np.float64) - my
        xx += xb.T @ xb
        yy += yb.T @ yb
        xy += xb.T @ yb
        dx[s:s + len(xb)] = np.einsum("ij,ij->i", xb, xb)
        dy[s:s + len(yb)] = np.einsum("ij,ij->i", yb, yb)
        sx += xb.sum(axis=0)
        sy += yb.sum(axis=0)
    return {"xx": xx, "yy": yy, "xy": xy, "dx": dx, "dy": dy, "sx": sx, "sy": sy,
            "mx": mx, "my": my}


def _kernel_row_sums(x: np.ndarray, mean: np.ndarray, s: np.ndarray,
                     d: np.ndarray) -> np.ndarray:
    """Row sums of the linear kernel of ``Xc`` with its diagonal zeroed: ``Xc s - d``."""
    out = np.empty(x.shape[0])
    for b in range(0, x.shape[0], _BLOCK_ROWS):
        xb = x[b:b + _BLOCK_ROWS].astype(np.float64) - mean
        out[b:b + len(xb)] = xb @ s
    return out - d


def _hsic_unbiased(n: int, cross: float, da: np.ndarray, db: np.ndarray, sa: np.ndarray,
                   sb: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> float:
    """Unbiased HSIC (Song et al. 2012, eq. 5) of two linear kernels ``K = A A^T``,
    ``L = B B^T`` from feature-space quantities.

    With ``K~``, ``L~`` the kernels with zeroed diagonals:
    ``tr(K~ L~) = ||A^T B||_F^2 - da.db``; ``1^T K~ 1 = ||sa||^2 - sum(da)``;
    ``1^T K~ L~ 1 = (K~ 1).(L~ 1) = ra.rb`` with ``ra = A sa - da``. ``cross`` is
    ``||A^T B||_F^2``.
    """
    trace = cross - float(da @ db)
    sum_k = float(sa @ sa) - float(da.sum())
    sum_l = float(sb @ sb) - float(db.sum())
    return (trace + sum_k * sum_l / ((n - 1.0) * (n - 2.0))
            - 2.0 / (n - 2.0) * float(ra @ rb)) / (n * (n - 3.0))


def _nuclear_alignment(g: dict[str, Any]) -> float:
    """``||Xn^T Yn||_*`` for the centred, unit-Frobenius-norm ``Xn``, ``Yn`` (in [0, 1])."""
    norm = np.sqrt(np.trace(g["xx"]) * np.trace(g["yy"]))
    return float(np.linalg.svd(g["xy"], compute_uv=False).sum() / norm)


# --------------------------------------------------------------------------- public API

def cka_linear(X, Y, *, debiased: bool = False) -> float:
    """Linear centred kernel alignment (CKA) between two representations of the same points.

    With ``Xc``, ``Yc`` the column-centred matrices, linear CKA is (Kornblith et al.
    2019, eq. 2 with ``K = X X^T``, ``L = Y Y^T``)

    ``CKA = ||Xc^T Yc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)``,

    i.e. ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``. It is 1 for representations equal
    up to an orthogonal map and an overall scale (also when ``p != q``), invariant to
    translation, and not invariant to invertible linear maps in general.

    ``debiased=True`` replaces each HSIC with the unbiased estimator of Song et al. (2012),
    as in Nguyen, Raghu & Kornblith (2021): with ``K~``, ``L~`` the kernels with zeroed
    diagonals,
    ``HSIC_1 = [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))``.
    Every term is computed in feature space: ``tr(K~L~) = ||X^T Y||_F^2 - sum_i |x_i|^2
    |y_i|^2``, ``1'K~1 = |X^T 1|^2 - sum_i |x_i|^2`` and ``1'K~L~1 = (X X^T 1 - d_x) .
    (Y Y^T 1 - d_y)``. The debiased value is close to 0 for independent representations
    (the biased one is positive, about ``sqrt(p q) / n`` for independent noise) and can be
    slightly negative.

    Parameters
    ----------
    X : array-like of shape (n_points, p)
        First representation; finite values. float32 is accumulated in float64 block by
        block, without a float64 copy of the whole array.
    Y : array-like of shape (n_points, q)
        Second representation of the same points, row by row; ``q`` may differ from ``p``.
    debiased : bool, default=False
        Use the unbiased HSIC estimator. Needs ``n_points >= 4`` (2 otherwise).

    Returns
    -------
    cka : float
        In [0, 1] (debiased: at most 1, possibly slightly below 0). ``nan`` with a
        ``RuntimeWarning`` when a representation has zero variance (every point the same)
        or, debiased, when an unbiased self-HSIC is not positive.

    See Also
    --------
    procrustes_residual : distance up to rotation and scale, from the same Gram matrices.
    knn_overlap : agreement of local neighbourhoods rather than global geometry.

    References
    ----------
    .. [1] S. Kornblith, M. Norouzi, H. Lee and G. Hinton, "Similarity of Neural Network
       Representations Revisited", ICML 2019. arXiv:1905.00414.
    .. [2] L. Song, A. Smola, A. Gretton, J. Bedo and K. Borgwardt, "Feature Selection via
       Dependence Maximization", JMLR 13, 2012.
    .. [3] T. Nguyen, M. Raghu and S. Kornblith, "Do Wide and Deep Networks Learn the Same
       Things?", ICLR 2021. arXiv:2010.15327.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5))
    >>> Q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    >>> round(cka_linear(X, 3.0 * X @ Q + 1.0), 6)
    1.0
    >>> round(cka_linear(X, np.hstack([X, np.zeros((200, 2))])), 6)   # p != q
    1.0
    >>> Z = rng.normal(size=(200, 5))                                  # independent
    >>> round(cka_linear(X, Z), 2), round(cka_linear(X, Z, debiased=True), 2)
    (0.03, 0.01)
    """
    debiased = _CONSTRAINTS["debiased"](debiased)
    x, y = _check_pair(X, Y, min_rows=4 if debiased else 2)
    n = x.shape[0]
    for name, arr in (("X", x), ("Y", y)):
        if _constant(arr):
            return _undefined("cka_linear", f"{name} has zero variance (all points equal)")
    g = _grams(x, y)
    cross = float(np.sum(g["xy"] ** 2))
    self_x, self_y = float(np.sum(g["xx"] ** 2)), float(np.sum(g["yy"] ** 2))
    if self_x == 0.0 or self_y == 0.0:  # only through underflow: tiny but unequal rows
        return _undefined("cka_linear", "a representation's variance underflows to 0")
    if not debiased:
        return float(cross / np.sqrt(self_x * self_y))
    rx = _kernel_row_sums(x, g["mx"], g["sx"], g["dx"])
    ry = _kernel_row_sums(y, g["my"], g["sy"], g["dy"])
    h_xy = _hsic_unbiased(n, cross, g["dx"], g["dy"], g["sx"], g["sy"], rx, ry)
    h_xx = _hsic_unbiased(n, self_x, g["dx"], g["dx"], g["sx"], g["sx"], rx, rx)
    h_yy = _hsic_unbiased(n, self_y, g["dy"], g["dy"], g["sy"], g["sy"], ry, ry)
    if not (h_xx > 0.0 and h_yy > 0.0):
        return _undefined("cka_linear(debiased=True)",
                          f"the unbiased self-HSIC is not positive (X: {h_xx:.3g}, "
                          f"Y: {h_yy:.3g}); too few points or a degenerate representation")
    return float(h_xy / np.sqrt(h_xx * h_yy))


cka_linear.higher_is_better = True


def knn_overlap(neighbours_a, neighbours_b) -> np.ndarray:
    """Per point, the Jaccard index of its k-nearest-neighbour sets in two spaces.

    ``J_i = |A_i & B_i| / |A_i | B_i|`` with ``A_i``, ``B_i`` the sets of indices in row
    ``i`` (a repeated index counts once). Sorting each row of the concatenated sets is the
    only work: ``O(n (k_a + k_b) log(k_a + k_b))``, no distances.

    Parameters
    ----------
    neighbours_a : array-like of int, shape (n_points, k_a)
        Neighbour indices of each point in the first space (e.g. the indices returned by
        :func:`~audit.metrics.knn`); every entry ``>= 0``.
    neighbours_b : array-like of int, shape (n_points, k_b)
        The same points' neighbours in the second space; ``k_b`` may differ from ``k_a``.

    Returns
    -------
    overlap : ndarray of shape (n_points,), float64
        In [0, 1]; 1 where both sets are equal. With ``k_a != k_b`` the maximum is
        ``min(k_a, k_b) / max(k_a, k_b)`` (for rows without repeats).

    See Also
    --------
    mean_knn_overlap : the mean over points.
    cka_linear : agreement of global (linear) geometry.

    Examples
    --------
    >>> knn_overlap([[1, 2, 3], [0, 2, 3]], [[3, 2, 1], [2, 4, 5]])
    array([1. , 0.2])
    >>> knn_overlap([[1, 2]], [[1, 2, 3, 4]])                          # k may differ
    array([0.5])
    """
    a = _check_neighbours(neighbours_a, "neighbours_a")
    b = _check_neighbours(neighbours_b, "neighbours_b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"neighbours_a has {a.shape[0]} rows but neighbours_b has "
                         f"{b.shape[0]}; they must describe the same points")
    a, size_a = _unique_rows(a)
    b, size_b = _unique_rows(b)
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)
    # Within a row of ``a`` (and of ``b``) the indices are now distinct and repeats are
    # -1, so each equal adjacent pair of indices >= 0 is one index present in both sets.
    shared = ((both[:, 1:] == both[:, :-1]) & (both[:, 1:] >= 0)).sum(axis=1)
    return shared / (size_a + size_b - shared)


knn_overlap.higher_is_better = True


def _unique_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row sorted with repeated indices replaced by -1, and the number of distinct."""
    a = np.sort(a, axis=1)
    repeat = np.zeros(a.shape, dtype=bool)
    repeat[:, 1:] = a[:, 1:] == a[:, :-1]
    a[repeat] = -1
    return a, a.shape[1] - repeat.sum(axis=1)


def mean_knn_overlap(neighbours_a, neighbours_b) -> float:
    """Mean over points of :func:`knn_overlap`.

    Parameters
    ----------
    neighbours_a : array-like of int, shape (n_points, k_a)
        Neighbour indices in the first space.
    neighbours_b : array-like of int, shape (n_points, k_b)
        Neighbour indices of the same points in the second space.

    Returns
    -------
    overlap : float
        In [0, 1].

    See Also
    --------
    knn_overlap : the per-point values.

    Examples
    --------
    >>> mean_knn_overlap([[1, 2, 3], [0, 2, 3]], [[3, 2, 1], [2, 4, 5]])
    0.6
    """
    return float(knn_overlap(neighbours_a, neighbours_b).mean())


mean_knn_overlap.higher_is_better = True


def procrustes_residual(X, Y, *, scale: bool = True) -> float:
    """Residual of the best orthogonal map (and scale) of ``Y`` onto ``X``.

    Both are centred and scaled to unit Frobenius norm (``Xn``, ``Yn``); the narrower one
    is padded with zero columns to the wider one's dimension (``scipy.spatial.procrustes``
    needs equal shapes). The optimal orthogonal ``R`` gives ``tr(Xn^T Yn R) = nu``, the
    nuclear norm (sum of singular values) of ``Xn^T Yn`` (Schoenemann 1966), which padding
    does not change, so no padded matrix is built: ``nu`` comes from the p x q cross Gram.

    * ``scale=True``: ``min_{s,R} ||Xn - s Yn R||_F^2 = 1 - nu^2``, which is exactly the
      ``disparity`` of ``scipy.spatial.procrustes(X, Y_padded)``.
    * ``scale=False``: ``min_R ||Xn - Yn R||_F^2 / 2 = 1 - nu``, the residual as a share of
      ``||Xn||^2 + ||Yn||^2 = 2``, so that it too lies in [0, 1].

    ``nu`` is symmetric in ``X`` and ``Y``, so the value is too, and it is defined for
    any ``p`` and ``q``. With unequal dimensions, it measures what an orthogonal map
    cannot explain (e.g. ``Y = [X, noise]`` leaves the noise's share); for a flexible fit
    use :func:`linear_map_residual`.

    Parameters
    ----------
    X : array-like of shape (n_points, p)
        Target representation; finite values.
    Y : array-like of shape (n_points, q)
        Representation mapped onto ``X``, same points row by row; ``q`` may differ.
    scale : bool, default=True
        Fit an overall scale after the orthogonal map.

    Returns
    -------
    residual : float
        In [0, 1] (clipped at 0 against rounding); 0 when ``Y`` is ``X`` up to translation,
        rotation/reflection and scale. ``nan`` with a ``RuntimeWarning`` when a
        representation has zero variance.

    See Also
    --------
    linear_map_residual : residual of a general linear map, scored out of sample.
    cka_linear : similarity from the same Gram matrices.

    References
    ----------
    .. [1] P. H. Schoenemann, "A generalized solution of the orthogonal Procrustes
       problem", Psychometrika 31, 1966.
    .. [2] J. C. Gower, "Generalized Procrustes analysis", Psychometrika 40, 1975.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 3))
    >>> Q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    >>> round(procrustes_residual(X, 2.0 * X @ Q - 5.0), 10)
    0.0
    >>> from scipy.spatial import procrustes
    >>> Y = X + rng.normal(scale=0.5, size=X.shape)
    >>> bool(np.isclose(procrustes_residual(X, Y), procrustes(X, Y)[2]))
    True
    """
    scale = _CONSTRAINTS["scale"](scale)
    x, y = _check_pair(X, Y, min_rows=2)
    for name, arr in (("X", x), ("Y", y)):
        if _constant(arr):
            return _undefined("procrustes_residual",
                              f"{name} has zero variance (all points equal)")
    g = _grams(x, y)
    nu = min(_nuclear_alignment(g), 1.0)
    return float(max(0.0, 1.0 - nu * nu if scale else 1.0 - nu))


procrustes_residual.higher_is_better = False


def linear_map_residual(X, Y, *, random_state=None) -> float:
    """Share of the variance of ``X`` that a linear map from ``Y`` leaves unexplained,
    out of sample.

    The points are split at random into two halves (``floor(n / 2)`` to fit, the rest to
    score). On the fitting half, ordinary least squares with an intercept gives
    ``W, b = argmin ||X_fit - Y_fit W - b||_F^2`` (minimum-norm ``W`` when it is not
    unique). On the scoring half the residual is

    ``||X_test - Y_test W - b||_F^2 / ||X_test - mean(X_test)||_F^2 = 1 - R^2``,

    with ``R^2`` pooled over the columns of ``X`` (scikit-learn's ``r2_score`` with
    ``multioutput="variance_weighted"``). Unlike :func:`procrustes_residual` it needs no
    relation between ``p`` and ``q`` and allows any invertible linear change of basis;
    scoring on held-out points keeps a wide ``Y`` from fitting noise for free.

    Parameters
    ----------
    X : array-like of shape (n_points, p)
        Target representation; finite values.
    Y : array-like of shape (n_points, q)
        Predicting representation, same points row by row; ``q`` may differ.
    random_state : int, RandomState instance or None, default=None
        Seed of the split; the same seed gives the same value.

    Returns
    -------
    residual : float
        0 when ``X`` is an affine function of ``Y``; about 1 when ``Y`` carries no
        linear information on ``X``; above 1 when the map fitted on one half predicts
        the other worse than its mean. ``nan`` with a ``RuntimeWarning`` when ``X`` has
        zero variance on the scoring half. Needs ``n_points >= 4``.

    See Also
    --------
    procrustes_residual : the same question restricted to rotations and scale.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.normal(size=(400, 4))
    >>> X = Y @ rng.normal(size=(4, 6)) + 2.0                # 6-D target from 4-D Y
    >>> round(linear_map_residual(X, Y, random_state=0), 10)
    0.0
    >>> r = linear_map_residual(rng.normal(size=(400, 6)), Y, random_state=0)
    >>> bool(0.95 < r < 1.1)                                 # no relation: about 1
    True
    """
    x, y = _check_pair(X, Y, min_rows=4)
    try:
        rng = check_random_state(random_state)
    except ValueError:
        raise ValueError(f"random_state must be None, an int or a numpy RandomState, got "
                         f"{random_state!r}") from None
    n = x.shape[0]
    order = rng.permutation(n)
    fit, test = order[: n // 2], order[n // 2:]
    x_fit, y_fit = x[fit].astype(np.float64), y[fit].astype(np.float64)
    x_test, y_test = x[test].astype(np.float64), y[test].astype(np.float64)
    if _constant(x_test):
        return _undefined("linear_map_residual", "X has zero variance on the scoring half")
    mx, my = x_fit.mean(axis=0), y_fit.mean(axis=0)
    w = np.linalg.lstsq(y_fit - my, x_fit - mx, rcond=None)[0]
    resid = x_test - mx - (y_test - my) @ w
    total = x_test - x_test.mean(axis=0)
    return float(np.sum(resid * resid) / np.sum(total * total))


linear_map_residual.higher_is_better = False
