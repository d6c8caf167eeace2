"""k-NN precision, recall, density and coverage (Naeem et al., 2020), computed in row blocks.

The four numbers follow the reference implementation ``prdc.compute_prdc``: each point
gets the radius of its k-NN ball in its own set, counting the point itself as its 0th
neighbour, and a point is inside a ball only when its distance to the centre is
*strictly* smaller than the radius.

Nothing here builds an ``n x n`` matrix. Distances are computed one block of rows at a
time with the expansion ``||a||^2 - 2 a.b + ||b||^2`` in float64. The expansion has
rounding error, so every distance whose comparison (with a radius, or for the k-th
order statistic) falls inside a conservative error bound is recomputed directly as
``sqrt(sum((a - b)**2))``. As a result:

* identical points are exactly 0 apart, and a pair of points is the same distance
  apart wherever it appears, so ties are settled the same way in every block;
* the result does not depend on ``block_size``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ._stats import wilson_interval
from ._validation import MISSING_GROUP, validate_int, validate_labels, validate_matrix

__all__ = ["coverage", "knn_radii", "uncovered_mask", "uncovered_from_graph",
           "coverage_by_group", "MISSING_GROUP"]


_EPS = float(np.finfo(np.float64).eps)
# Upper bound on the number of float64 values in one temporary array of pair differences.
_PAIR_CHUNK_VALUES = 1 << 21


# --------------------------------------------------------------------------- validation

def _check_k(k: Any, sizes: dict[str, int]) -> int:
    """``k`` as int in [1, min(sizes) - 1]; ``sizes`` names each set whose radii are needed."""
    k = validate_int(k, "k", low=1)
    for name, n in sizes.items():
        if k >= n:
            raise ValueError(
                f"k={k} must be smaller than the number of points in {name} ({name} has "
                f"{n}): the k-NN radius counts the point itself as its 0th neighbour, "
                f"so it needs at least k + 1 = {k + 1} points")
    return k


def _check_pair(real: Any, fake: Any) -> tuple[np.ndarray, np.ndarray]:
    real = validate_matrix(real, "real")
    fake = validate_matrix(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must have the same number of features, got "
                         f"{real.shape[1]} (real) and {fake.shape[1]} (fake)")
    return real, fake


# --------------------------------------------------------------------------- private stages

def _band_factor(n_features: int) -> float:
    """Relative bound on the error of a squared distance from the blocked expansion.

    The error of ``||a||^2 - 2 a.b + ||b||^2`` (after centring) is at most about
    ``(n_features + 2) * eps * (||a||^2 + ||b||^2)``; the factor 8 leaves room for the
    centring and for the rounding of the direct recomputation.
    """
    return 8.0 * (n_features + 4) * _EPS


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _expanded_sq(a: np.ndarray, a_sq: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Approximate squared distances ``(len(a), len(b))``, clipped at 0."""
    d2 = a @ b.T
    d2 *= -2.0
    d2 += a_sq[:, None]
    d2 += b_sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def _direct_sq(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Squared distances ``||a[ia[t]] - b[ib[t]]||^2`` computed from the differences.

    The result for a pair depends only on the two rows, so equal pairs give equal values
    and identical rows give exactly 0.
    """
    out = np.empty(ia.shape[0])
    step = max(1, _PAIR_CHUNK_VALUES // a.shape[1])
    for s in range(0, ia.shape[0], step):
        diff = a[ia[s:s + step]] - b[ib[s:s + step]]
        diff *= diff
        out[s:s + step] = diff.sum(axis=1)
    return out


def _knn_radii_sq(x: np.ndarray, k: int, block_size: int) -> np.ndarray:
    """Squared distance of each row of ``x`` to its k-th neighbour (itself being the 0th)."""
    n, n_features = x.shape
    xc = x - x.mean(axis=0)
    sq = _sq_norms(xc)
    band = _band_factor(n_features) * (sq + sq.max())  # per-row error bound
    radii_sq = np.empty(n)
    for start in range(0, n, block_size):
        stop = min(n, start + block_size)
        rows = np.arange(stop - start)
        d2 = _expanded_sq(xc[start:stop], sq[start:stop], xc, sq)
        d2[rows, start + rows] = 0.0
        kth = np.partition(d2, k, axis=1)[:, k]
        # Every entry whose exact value could be <= the exact k-th value is a candidate:
        # at least k + 1 entries are <= kth, so the exact k-th value is <= kth + band.
        limit = kth + 2.0 * band[start:stop]
        ci, cj = np.nonzero(d2 <= limit[:, None])  # ci is sorted (row-major order)
        vals = _direct_sq(x, x, start + ci, cj)
        order = np.lexsort((vals, ci))
        counts = np.bincount(ci, minlength=stop - start)
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        radii_sq[start:stop] = vals[order][first + k]
    return radii_sq


def _cross_indicators(reference: np.ndarray, data: np.ndarray, r_ref: np.ndarray,
                      r_data: np.ndarray | None, block_size: int):
    """Accumulate the prdc indicators over row blocks of the reference-data distances
    (prdc's real = the reference, fake = the data).

    Returns ``(covered, recalled, in_any_ball, n_balls)``:
    ``covered[i]``: some data point is strictly inside reference ball i (coverage);
    ``recalled[i]``: reference point i is strictly inside some data ball (recall; ``None``
    without ``r_data``); ``in_any_ball[j]`` / ``n_balls[j]``: whether / in how many
    reference balls data point j lies strictly (precision / density).
    """
    n_ref, n_features = reference.shape
    centre = reference.mean(axis=0)
    rc, fc = reference - centre, data - centre
    r_sq, f_sq = _sq_norms(rc), _sq_norms(fc)
    factor = _band_factor(n_features)
    rr_sq = r_ref * r_ref
    rd_sq = None if r_data is None else r_data * r_data

    covered = np.empty(n_ref, dtype=bool)
    recalled = None if r_data is None else np.empty(n_ref, dtype=bool)
    in_any_ball = np.zeros(data.shape[0], dtype=bool)
    n_balls = np.zeros(data.shape[0], dtype=np.int64)
    f_sq_max = f_sq.max()
    for start in range(0, n_ref, block_size):
        stop = min(n_ref, start + block_size)
        d2 = _expanded_sq(rc[start:stop], r_sq[start:stop], fc, f_sq)
        # Entries within the error bound factor * (r_sq[i] + f_sq[j]) of a radius are
        # recomputed directly; per-row / per-column upper bounds avoid another matrix.
        gap = np.subtract(d2, rr_sq[start:stop, None])
        np.abs(gap, out=gap)
        near = gap <= factor * (r_sq[start:stop] + f_sq_max)[:, None]
        if rd_sq is not None:
            np.subtract(d2, rd_sq[None, :], out=gap)
            np.abs(gap, out=gap)
            near |= gap <= factor * (r_sq[start:stop].max() + f_sq)[None, :]
        del gap
        dist = np.sqrt(d2, out=d2)
        ci, cj = np.nonzero(near)
        if ci.size:
            dist[ci, cj] = np.sqrt(_direct_sq(reference, data, start + ci, cj))
        inside = dist < r_ref[start:stop, None]
        covered[start:stop] = inside.any(axis=1)
        in_any_ball |= inside.any(axis=0)
        n_balls += inside.sum(axis=0)
        if r_data is not None:
            recalled[start:stop] = (dist < r_data[None, :]).any(axis=1)
    return covered, recalled, in_any_ball, n_balls


# --------------------------------------------------------------------------- public API

def knn_radii(x, *, k: int = 5, block_size: int = 4096) -> np.ndarray:
    """Distance from each point to its k-th nearest neighbour in the same set.

    The point itself counts as its own 0th neighbour (distance 0), as in ``prdc``, so
    ``k=1`` gives the distance to the nearest *other* point, and a point with ``k`` or
    more exact duplicates has radius 0.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
        Points; finite values only.
    k : int, default=5
        Neighbour rank, in ``[1, n_samples - 1]``.
    block_size : int, default=4096
        Rows of the distance matrix held in memory at once, ``>= 1``. Temporary
        memory is a few float64 arrays of shape ``(block_size, n_samples)`` (about
        ``24 * block_size * n_samples`` bytes); the result does not depend on it.

    Returns
    -------
    radii : ndarray of shape (n_samples,)
        Euclidean k-NN radius of each point, in float64.

    See Also
    --------
    coverage : the prdc metrics built on these radii.

    References
    ----------
    .. [1] M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi and J. Yoo, "Reliable Fidelity and
       Diversity Metrics for Generative Models", ICML 2020. arXiv:2002.09797.

    Examples
    --------
    >>> knn_radii([[0.0], [1.0], [3.0]], k=1)
    array([1., 1., 2.])
    >>> knn_radii([[0.0], [1.0], [3.0]], k=2)
    array([3., 2., 3.])
    """
    x = validate_matrix(x, "x")
    block_size = validate_int(block_size, "block_size", low=1)
    k = _check_k(k, {"x": x.shape[0]})
    return np.sqrt(_knn_radii_sq(x, k, block_size))


def coverage(real, fake, *, k: int = 5, block_size: int = 4096) -> dict[str, float]:
    """k-NN precision, recall, density and coverage of ``fake`` against ``real``.

    With ``B(x, r)`` the open ball of radius ``r`` around ``x`` and ``NND_k(x)`` the
    k-NN radius of ``x`` in its own set (:func:`knn_radii`):

    * precision: fraction of fake points inside at least one real ball
      ``B(real_i, NND_k(real_i))``;
    * recall: fraction of real points inside at least one fake ball
      ``B(fake_j, NND_k(fake_j))``;
    * density: number of (real ball, fake point) containments divided by
      ``k * n_fake``; about 1 when both sets come from one distribution, can exceed 1;
    * coverage: fraction of real balls that contain at least one fake point.

    Ties: a point is inside a ball only when its distance is *strictly* smaller than
    the radius, as in ``prdc``. A point at exactly the radius is outside, and a ball of
    radius 0 (a point with ``k`` or more exact duplicates) contains nothing.

    Parameters
    ----------
    real : array-like of shape (n_real, n_features)
        Reference points; finite values only.
    fake : array-like of shape (n_fake, n_features)
        Points to evaluate (generated samples, or the data under audit).
    k : int, default=5
        Neighbour rank for the radii, in ``[1, min(n_real, n_fake) - 1]``.
    block_size : int, default=4096
        Rows of a distance matrix held in memory at once, ``>= 1``. Temporary
        memory is a few float64 arrays of shape ``(block_size, max(n_real, n_fake))``
        (about ``24 * block_size * max(n_real, n_fake)`` bytes); the result does not
        depend on it.

    Returns
    -------
    scores : dict of str to float
        ``{"precision", "recall", "density", "coverage"}``, each a Python float; all
        four are better higher. Precision, recall and coverage lie in [0, 1].

    See Also
    --------
    knn_radii : the k-NN radii.
    uncovered_mask : which real points make up ``1 - coverage``.

    Notes
    -----
    Matches ``prdc.compute_prdc(real, fake, nearest_k=k)`` (prdc 0.2), which builds
    the full ``n x n`` distance matrices, on float64 input. prdc takes distances from
    the same ``||a||^2 - 2 a.b + ||b||^2`` expansion without refinement, so exact
    duplicates can come out ~1e-7 apart instead of 0 when there are many features;
    where such a distance decides a comparison (``k`` at most the number of copies
    of a point), prdc's answer depends on rounding and this function follows the
    exact distances instead. Inputs are converted to float64; prdc keeps float32
    input in float32, so on float32 data the two can also differ at near-ties.

    References
    ----------
    .. [1] M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi and J. Yoo, "Reliable Fidelity and
       Diversity Metrics for Generative Models", ICML 2020. arXiv:2002.09797.
    .. [2] https://github.com/clovaai/generative-evaluation-prdc

    Examples
    --------
    >>> real = [[0.0], [1.0], [2.0], [3.0]]
    >>> fake = [[0.5], [10.0]]
    >>> coverage(real, fake, k=1)
    {'precision': 0.5, 'recall': 1.0, 'density': 1.0, 'coverage': 0.5}
    """
    reference, data = _check_pair(real, fake)
    block_size = validate_int(block_size, "block_size", low=1)
    k = _check_k(k, {"real": reference.shape[0], "fake": data.shape[0]})
    r_ref = np.sqrt(_knn_radii_sq(reference, k, block_size))
    r_data = np.sqrt(_knn_radii_sq(data, k, block_size))
    covered, recalled, in_any_ball, n_balls = _cross_indicators(reference, data, r_ref,
                                                                r_data, block_size)
    return {
        "precision": float(in_any_ball.mean()),
        "recall": float(recalled.mean()),
        "density": float((1.0 / k) * n_balls.mean()),
        "coverage": float(covered.mean()),
    }


coverage.higher_is_better = True


def uncovered_mask(real, fake, *, k: int = 5, block_size: int = 4096) -> np.ndarray:
    """Real points whose k-NN ball contains no fake point.

    This is the complement of the per-point indicator that :func:`coverage` averages:
    ``1 - uncovered_mask(real, fake).mean() == coverage(real, fake)["coverage"]``.
    Uncovered points mark regions of the reference that ``fake`` misses. Ties follow
    :func:`coverage`: a fake point at exactly the radius is outside the ball.

    Parameters
    ----------
    real : array-like of shape (n_real, n_features)
        Reference points; finite values only.
    fake : array-like of shape (n_fake, n_features)
        Points to evaluate, at least one.
    k : int, default=5
        Neighbour rank for the radii of the real points, in ``[1, n_real - 1]``.
    block_size : int, default=4096
        Rows of a distance matrix held in memory at once, ``>= 1``; the result does
        not depend on it.

    Returns
    -------
    uncovered : ndarray of bool, shape (n_real,)
        True where no fake point lies strictly inside ``B(real_i, NND_k(real_i))``.

    See Also
    --------
    coverage : the mean of ``~uncovered`` is its ``"coverage"``.
    coverage_by_group : coverage per group of real points, with intervals.

    References
    ----------
    .. [1] M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi and J. Yoo, "Reliable Fidelity and
       Diversity Metrics for Generative Models", ICML 2020. arXiv:2002.09797.

    Examples
    --------
    >>> uncovered_mask([[0.0], [1.0], [2.0], [3.0]], [[0.5], [10.0]], k=1)
    array([False, False,  True,  True])
    """
    reference, data = _check_pair(real, fake)
    block_size = validate_int(block_size, "block_size", low=1)
    k = _check_k(k, {"real": reference.shape[0]})
    r_ref = np.sqrt(_knn_radii_sq(reference, k, block_size))
    covered = _cross_indicators(reference, data, r_ref, None, block_size)[0]
    return ~covered


def uncovered_from_graph(real, fake, radii, cross_distances, cross_indices, *,
                         nearest_fn: Callable[[np.ndarray], np.ndarray] | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`uncovered_mask` from neighbour graphs that are already computed, in one pass.

    A real point ``i`` is covered when some fake point lies strictly inside
    ``B(real_i, radii[i])``. Every (fake point, real neighbour) pair of the cross graph
    that is closer than the real point's radius certifies a covered point at the cost
    of a comparison. Only the real points left uncertified are searched exactly: their
    nearest fake point is found with :func:`~audit.metrics.knn` (blocked, exact). The
    cost is ``O(n_fake * k_cross)`` plus ``O(n_uncertified * n_fake * n_features)``
    instead of ``O(n_real * (n_real + n_fake) * n_features)``, and the answer is exact:
    a pair the graph lacks can only add covered points, and those are found by the
    search.

    Parameters
    ----------
    real : array-like of shape (n_real, n_features)
        Reference points.
    fake : array-like of shape (n_fake, n_features)
        Points to evaluate.
    radii : array-like of shape (n_real,)
        k-NN radius of every real point in its own set (the ``k - 1``-th column of a
        self-excluding kNN graph of ``real`` is ``prdc``'s radius for ``k``).
    cross_distances, cross_indices : array-like of shape (n_fake, k_cross)
        For every fake point, distances to and indices of some of its nearest real
        points (any number; more certify more points).
    nearest_fn : callable, default=None
        Distance from each of some real points (an array of rows of ``real``) to its
        nearest fake point; ``None`` searches exactly. A run whose graphs are approximate
        passes its index here, so the answer is then as exact as that index.

    Returns
    -------
    uncovered : ndarray of bool, shape (n_real,)
        As :func:`uncovered_mask` with these radii.
    nearest : ndarray of shape (n_real,)
        Distance from each real point to its nearest fake point where it was searched
        (every uncovered point, and the uncertified covered ones); ``nan`` elsewhere.

    Examples
    --------
    >>> real = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> fake = np.array([[0.5], [10.0]])
    >>> r = knn_radii(real, k=1)
    >>> d, i = np.array([[0.5], [7.0]]), np.array([[0], [3]])
    >>> unc, near = uncovered_from_graph(real, fake, r, d, i)
    >>> unc.tolist(), near.tolist()
    ([False, False, True, True], [nan, 0.5, 1.5, 2.5])
    """
    from ._neighbors import knn
    reference, data = _check_pair(real, fake)
    radii = np.asarray(radii, dtype=np.float64)
    cd = np.asarray(cross_distances, dtype=np.float64)
    ci = np.asarray(cross_indices, dtype=np.int64)
    if radii.shape != (reference.shape[0],):
        raise ValueError(f"radii has shape {radii.shape}, expected ({reference.shape[0]},)")
    if cd.shape != ci.shape or cd.ndim != 2 or cd.shape[0] != data.shape[0]:
        raise ValueError(f"cross graph shapes {cd.shape} / {ci.shape} do not match "
                         f"{data.shape[0]} fake points")
    covered = np.zeros(reference.shape[0], dtype=bool)
    inside = cd < radii[ci]
    covered[ci[inside]] = True
    nearest = np.full(reference.shape[0], np.nan)
    rows = np.flatnonzero(~covered)
    if rows.size:
        nearest[rows] = (knn(reference[rows], y=data, k=1)[0][:, 0] if nearest_fn is None
                         else np.asarray(nearest_fn(reference[rows]), dtype=np.float64))
        covered[rows] = nearest[rows] < radii[rows]
    return ~covered, nearest


def coverage_by_group(uncovered, groups, *, confidence: float = 0.95) -> dict:
    """Coverage of the real points in each group, with a Wilson interval.

    Parameters
    ----------
    uncovered : array-like of bool, shape (n_real,)
        Output of :func:`uncovered_mask` (0/1 integers are accepted too).
    groups : array-like of shape (n_real,)
        Group label of each real point (strings or numbers). ``None`` and NaN are
        gathered into one group named ``"<missing>"`` (:data:`MISSING_GROUP`).
    confidence : float, default=0.95
        Confidence level of the intervals, in (0, 1).

    Returns
    -------
    by_group : dict
        Label -> ``{"n": int, "covered": int, "coverage": float, "ci": (lo, hi)}``.
        Labels are Python scalars (numpy scalars are converted), sorted when they can
        be compared (otherwise in order of first appearance), with ``"<missing>"``
        last. ``ci`` is :func:`~audit.metrics.wilson_interval` for ``covered / n``.

    See Also
    --------
    uncovered_mask : the per-point input.

    References
    ----------
    .. [1] E. B. Wilson, "Probable inference, the law of succession, and statistical
       inference", JASA 22(158), 1927.

    Examples
    --------
    >>> res = coverage_by_group([False, True, False, True, False], ["a", "a", "b", None, "b"])
    >>> list(res)
    ['a', 'b', '<missing>']
    >>> res["a"]["n"], res["a"]["covered"], res["a"]["coverage"]
    (2, 1, 0.5)
    >>> res["<missing>"]["coverage"]
    0.0
    >>> lo, hi = res["b"]["ci"]
    >>> round(lo, 3), hi
    (0.342, 1.0)
    """
    mask = np.asarray(uncovered)
    if mask.ndim != 1:
        raise ValueError(f"uncovered must be 1-D, got shape {mask.shape}")
    if mask.dtype != bool:
        if mask.dtype.kind not in "iuf" or not np.isin(mask, (0, 1)).all():
            raise ValueError("uncovered must be boolean (or 0/1), as returned by uncovered_mask")
        mask = mask.astype(bool)
    labels = validate_labels(groups, "groups", n=mask.shape[0])

    flat = labels.astype(object) if labels.dtype.kind not in "OUSb" else labels
    missing = pd.isna(pd.Series(flat, dtype=object)).to_numpy()
    has_missing = bool(missing.any())
    codes, uniques = pd.factorize(pd.Series(flat[~missing], dtype=object), sort=False)
    uniques = [u.item() if isinstance(u, np.generic) else u for u in uniques]
    if any(isinstance(u, str) and u == MISSING_GROUP for u in uniques):
        raise ValueError(f"groups uses the label {MISSING_GROUP!r}, which is reserved "
                         "for missing (None/NaN) labels")
    n_code = np.bincount(codes, minlength=len(uniques))
    cov_code = np.bincount(codes, weights=~mask[~missing], minlength=len(uniques))
    n_by: dict[Any, int] = {u: int(c) for u, c in zip(uniques, n_code)}
    covered_by: dict[Any, int] = {u: int(round(c)) for u, c in zip(uniques, cov_code)}
    if has_missing:
        n_by[None] = int(missing.sum())
        covered_by[None] = int((~mask[missing]).sum())
    present = list(uniques)
    try:
        present = sorted(present)
    except TypeError:
        pass
    result = {}
    for label in present + ([None] if has_missing else []):
        n, cov = n_by[label], covered_by[label]
        result[MISSING_GROUP if label is None else label] = {
            "n": n,
            "covered": cov,
            "coverage": cov / n,
            "ci": wilson_interval(cov, n, confidence=confidence),
        }
    return result
