"""Local isolation: how much farther a point's neighbours are than theirs, with a bootstrap
interval, and the largest such ratio chance produces.

The isolation ratio of a point is its kNN distance score (e.g. the mean distance to its k
nearest neighbours) divided by the median score of those neighbours: 1 means as dense as
its surroundings. How large the largest ratio gets by chance depends on the number of
points and the intrinsic dimension, so :func:`null_isolation_max` simulates it: Gaussian
samples, and elliptical samples with the data's own radial profile
(:func:`radial_profile`), so that a dense core in a sparse halo counts as one population.
"""
from __future__ import annotations

import numpy as np

from ._neighbors import knn
from ._validation import validate_float, validate_int, validate_matrix

__all__ = ["isolation_ratio", "bootstrap_ratio_ci", "radial_profile", "null_isolation_max"]

_BOOT_VALUES = 1 << 24    # resampled neighbour values held at once by the bootstrap


def _check_graph(scores, neighbours) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    neighbours = np.asarray(neighbours)
    if scores.dtype.kind not in "fiu":
        raise ValueError(f"scores must be numeric, got dtype {scores.dtype}")
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
    if neighbours.ndim != 2 or neighbours.shape[1] < 1:
        raise ValueError(f"neighbours must be 2-D (n, k), got shape {neighbours.shape}")
    if neighbours.size and (neighbours.min() < 0 or neighbours.max() >= scores.size):
        raise ValueError("neighbours must index into scores")
    return scores, neighbours


def _ratio(scores: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    local = np.median(scores[neighbours], axis=1)
    return scores / np.maximum(local, 1e-12)


def isolation_ratio(scores, neighbours) -> np.ndarray:
    """Each point's kNN distance score over the median score of its neighbours.

    Parameters
    ----------
    scores : array-like of shape (n,)
        kNN distance score of every point (:func:`~audit.metrics.knn_distance_score`).
    neighbours : array-like of int, shape (n_rows, k)
        Neighbours of each scored row (rows ``0 .. n_rows - 1`` of ``scores``).

    Returns
    -------
    ratio : ndarray of shape (n_rows,)
        1 is as dense as the surroundings; larger is more isolated.

    Examples
    --------
    >>> isolation_ratio(np.array([1.0, 1.0, 4.0]), np.array([[1, 2], [0, 2], [0, 1]]))
    array([0.4, 0.4, 4. ])
    """
    scores, neighbours = _check_graph(scores, neighbours)
    return _ratio(scores, neighbours)


def bootstrap_ratio_ci(scores, neighbours, rows, *, random_state=None, n_boot: int = 500,
                       confidence: float = 0.99) -> np.ndarray:
    """Percentile bootstrap interval of the isolation ratio of each of ``rows``,
    resampling its neighbours with replacement.

    Parameters
    ----------
    scores : array-like of shape (n,)
        kNN distance score of every point.
    neighbours : array-like of int, shape (n, k)
        Neighbours of every point.
    rows : array-like of int, shape (m,)
        Points to bound.
    random_state : int, numpy Generator or None, default=None
        Source of the resamples (a Generator is used as is).
    n_boot : int, default=500
        Resamples, ``>= 1``.
    confidence : float, default=0.99
        Two-sided level of the interval, in (0, 1).

    Returns
    -------
    ci : ndarray of shape (m, 2)
        Lower and upper end for each of ``rows``.

    Examples
    --------
    >>> ci = bootstrap_ratio_ci(np.array([1.0, 1.0, 1.0, 4.0]),
    ...                         np.array([[1, 2], [0, 2], [0, 1], [0, 1]]), np.array([3]),
    ...                         random_state=0)
    >>> ci.tolist()
    [[4.0, 4.0]]
    """
    scores, neighbours = _check_graph(scores, neighbours)
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= len(neighbours))):
        raise ValueError("rows must be 1-D indices into neighbours")
    n_boot = validate_int(n_boot, "n_boot", low=1)
    confidence = validate_float(confidence, "confidence", low=0, high=1, low_open=True,
                                high_open=True)
    return _bootstrap(scores, neighbours, rows, np.random.default_rng(random_state),
                      n_boot, confidence)


def _bootstrap(scores: np.ndarray, neighbours: np.ndarray, rows: np.ndarray,
               rng: np.random.Generator, n_boot: int, confidence: float) -> np.ndarray:
    if rows.size == 0:
        return np.empty((0, 2))
    chunk = max(1, _BOOT_VALUES // (n_boot * neighbours.shape[1]))
    if rows.size > chunk:        # bounded memory: many candidates go in row chunks
        return np.concatenate([_bootstrap(scores, neighbours, rows[s:s + chunk], rng,
                                          n_boot, confidence)
                               for s in range(0, rows.size, chunk)])
    k = neighbours.shape[1]
    nb = scores[neighbours[rows]]                              # (r, k)
    pick = rng.integers(0, k, size=(n_boot, rows.size, k))
    boot_local = np.median(np.take_along_axis(nb[None].repeat(n_boot, 0), pick, 2), axis=2)
    ratios = scores[rows][None, :] / np.maximum(boot_local, 1e-12)
    a = (1 - confidence) / 2
    return np.stack([np.quantile(ratios, a, axis=0), np.quantile(ratios, 1 - a, axis=0)], 1)


def radial_profile(x, *, trim: float = 0.01) -> np.ndarray:
    """Sorted distances from the median centre after scaling each dimension to unit
    standard deviation, the farthest ``trim`` share left out.

    The radial profile of an elliptical null: a dense core in a sparse halo keeps its
    shape, while a handful of far points (the outliers under test, at most ``trim`` of
    the set) cannot widen it. Constant dimensions are ignored.

    Parameters
    ----------
    x : array-like of shape (n, d)
        Points, ``n >= 2``.
    trim : float, default=0.01
        Share of the farthest points left out, in [0, 1).

    Returns
    -------
    radii : ndarray of shape (max(2, floor(n * (1 - trim))),)

    Examples
    --------
    >>> radial_profile(np.array([[0.0], [1.0], [2.0], [3.0]]), trim=0.25).round(3).tolist()
    [0.447, 0.447, 1.342]
    """
    x = validate_matrix(x, "x", min_rows=2, dtype=None)
    trim = validate_float(trim, "trim", low=0, high=1, high_open=True)
    c = x - np.median(x, axis=0)
    sd = c.std(axis=0)
    r = np.linalg.norm(c[:, sd > 0] / sd[sd > 0], axis=1)
    return np.sort(r)[:max(2, int(np.floor(len(r) * (1 - trim))))]


def null_isolation_max(n: int, dim: float, k: int, *, random_state=None, reps: int = 2,
                       max_n: int = 20000, radii=None) -> float:
    """Largest isolation ratio in null samples of ``n`` points in ``dim`` dimensions.

    The null is a Gaussian and, when ``radii`` is given (:func:`radial_profile`), also an
    elliptical sample with those radii in random directions: a heavy-tailed blob is not a
    set of outliers. The larger of the two maxima is returned. Samples above ``max_n``
    points are simulated at ``max_n`` (the maximum grows slowly with ``n``).

    Parameters
    ----------
    n : int
        Points in the audited set, ``>= 2``.
    dim : float
        Intrinsic dimension, rounded and clipped to [1, 64]; not finite gives 2.
    k : int
        Neighbours of the kNN distance score (mean distance), ``>= 1``.
    random_state : int, numpy Generator or None, default=None
        Source of the null samples (a Generator is used as is).
    reps : int, default=2
        Samples of each null, ``>= 1``.
    max_n : int, default=20000
        Largest sample simulated, ``>= 2``.
    radii : array-like of shape (m,), default=None
        Radial profile of the elliptical null; ``None`` (or fewer than 2) leaves it out.

    Returns
    -------
    max_ratio : float

    Examples
    --------
    >>> 1.0 < null_isolation_max(500, 2.0, 10, random_state=0) < 10.0
    True
    """
    n = validate_int(n, "n", low=2)
    k = validate_int(k, "k", low=1)
    reps = validate_int(reps, "reps", low=1)
    max_n = validate_int(max_n, "max_n", low=2)
    dim = float(dim)
    radii = None if radii is None else np.asarray(radii).ravel()
    rng = np.random.default_rng(random_state)
    m = int(np.clip(round(dim) if np.isfinite(dim) else 2, 1, 64))
    size = int(min(n, max_n))
    best = 0.0
    for rep in range(reps * (2 if radii is not None and radii.size > 1 else 1)):
        z = rng.standard_normal((size, m)).astype(np.float32)
        if rep >= reps:      # elliptical null: Gaussian directions, the data's radii
            z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
            z *= rng.choice(radii, size)[:, None].astype(np.float32)
        d, nb = knn(z, k=min(k, size - 1))
        best = max(best, float(_ratio(d.mean(1), nb).max()))
    return best
