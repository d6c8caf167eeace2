"""Uncovered regions of a reference: how many reference points chance leaves uncovered, how
deep one uncovered point lies, and which uncovered points make up one region.

A reference point is *uncovered* when no data point lies strictly inside its k-NN ball
(:func:`~audit.metrics.uncovered_mask`). When data and reference come from one continuous
distribution a share of them is uncovered anyway (:func:`chance_uncovered_rate`); a point
is *deeply* uncovered when many reference points come before the nearest data point
(:func:`uncovered_depth`), which is rare by chance (:func:`depth_pvalue`, exact by
exchangeability). Uncovered points next to each other in the reference's k-NN graph form
one region (:func:`gap_regions`).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.special import betaln, gammaln

from ._neighbors import knn
from ._validation import validate_int, validate_matrix

__all__ = ["chance_uncovered_rate", "depth_pvalue", "uncovered_depth", "gap_regions"]


def chance_uncovered_rate(n_ref: int, n_data: int, k: int) -> float:
    """Probability that a reference point is uncovered by chance.

    When data and reference are i.i.d. from one continuous distribution, the k-NN ball of
    a reference point (radius to its k-th neighbour among the reference, itself the 0th)
    holds no data point with probability ``E[(1 - U)^N]``, ``U ~ Beta(k, M - k)``.

    Parameters
    ----------
    n_ref : int
        Reference points ``M``, ``>= 1``.
    n_data : int
        Data points ``N``, ``>= 0``.
    k : int
        Neighbour rank of the radius, ``>= 1``.

    Returns
    -------
    rate : float
        In [0, 1]; ``nan`` when ``k >= n_ref`` (no k-th neighbour).

    See Also
    --------
    uncovered_mask : the uncovered reference points themselves.

    References
    ----------
    .. [1] M. F. Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative
       Models", ICML 2020 (coverage of identical distributions, section 3.3).

    Examples
    --------
    >>> round(chance_uncovered_rate(1000, 1000, 5), 3)      # about 2 ** -5
    0.031
    """
    m = validate_int(n_ref, "n_ref", low=1)
    n = validate_int(n_data, "n_data", low=0)
    k = validate_int(k, "k", low=1)
    if k >= m:
        return float("nan")
    return float(math.exp(betaln(k, m - k + n) - betaln(k, m - k)))


def depth_pvalue(depth, n_ref: int, n_data: int) -> np.ndarray:
    """P(the ``depth`` nearest of the other points around a reference point are all
    reference points) when data and reference are exchangeable.

    Among the ``M - 1 + N`` other points, the chance that the ``D`` nearest are all among
    the ``M - 1`` other reference points is ``C(M - 1, D) / C(M - 1 + N, D)``.

    Parameters
    ----------
    depth : array-like of shape (n,)
        Depth ``D`` of each point (:func:`uncovered_depth`), ``>= 0``.
    n_ref, n_data : int
        Reference points ``M`` (``>= 1``) and data points ``N`` (``>= 0``).

    Returns
    -------
    p : ndarray of shape (n,)
        1 at depth 0, 0 beyond ``M - 1`` (there are not that many other reference points).

    Examples
    --------
    >>> np.round(depth_pvalue([0, 1, 3], 3, 1), 4).tolist()    # 1, 2/3, 0 (only 2 others)
    [1.0, 0.6667, 0.0]
    """
    m = float(validate_int(n_ref, "n_ref", low=1))
    n = float(validate_int(n_data, "n_data", low=0))
    d = np.asarray(depth, dtype=float)
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError("depth must be finite and >= 0")
    with np.errstate(invalid="ignore"):
        logp = gammaln(m) - gammaln(np.maximum(m - d, 1e-300)) + gammaln(m + n - d) \
            - gammaln(m + n)
    out = np.exp(logp)
    return np.where(d > m - 1, 0.0, np.where(d <= 0, 1.0, out))


def uncovered_depth(reference, data, rows, *, max_depth: int,
                    nearest=None, graph=None) -> np.ndarray:
    """How many other reference points lie strictly closer to each of ``rows`` than its
    nearest data point (at most ``max_depth``).

    Parameters
    ----------
    reference : array-like of shape (n_ref, n_features)
        Reference points.
    data : array-like of shape (n_data, n_features)
        Data points (searched only when ``nearest`` is not given).
    rows : array-like of int, shape (n,)
        Reference rows to measure.
    max_depth : int
        Reference neighbours counted, ``>= 1``.
    nearest : array-like of shape (n,), default=None
        Distance of each of ``rows`` to its nearest data point, when already known;
        ``None`` searches exactly.
    graph : tuple of two arrays of shape (n_ref, g), default=None
        ``(distances, indices)`` of an *exact* k-NN graph of ``reference`` (each point's
        ``g`` nearest other points, ascending, as :func:`~audit.metrics.knn` gives). A row
        whose nearest data point is no farther than its ``g``-th graph neighbour is
        answered from the graph (every closer reference point is in it); only the others
        are searched. The answer is the same as without it.

    Returns
    -------
    depth : ndarray of int64, shape (n,)

    See Also
    --------
    depth_pvalue : how likely such a depth is by chance.

    Examples
    --------
    >>> ref = np.array([[0.0], [1.0], [2.0], [10.0]])
    >>> uncovered_depth(ref, np.array([[10.5]]), np.array([0, 3]), max_depth=10).tolist()
    [3, 0]
    """
    reference = validate_matrix(reference, "reference", dtype=None)
    max_depth = validate_int(max_depth, "max_depth", low=1)
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= len(reference))):
        raise ValueError(f"rows must be 1-D indices into the {len(reference)} reference "
                         "points")
    if rows.size == 0:
        return np.zeros(0, dtype=np.int64)
    if nearest is None:
        data = validate_matrix(data, "data", dtype=None)
        dn, _ = knn(reference[rows], y=data, k=1)
    else:
        dn = np.asarray(nearest, dtype=np.float64).reshape(-1, 1)
        if dn.shape[0] != rows.size:
            raise ValueError(f"nearest has {dn.shape[0]} entries, expected {rows.size}")
    kk = int(min(max_depth + 1, len(reference)))
    depth = np.empty(rows.size, dtype=np.int64)
    search = np.arange(rows.size)
    if graph is not None:
        gd = np.asarray(graph[0], dtype=np.float64)[rows]
        if gd.shape[1]:
            # the point itself (distance 0) and its graph neighbours closer than dn; a
            # point outside the graph is at least the last graph distance away
            inside = gd[:, -1] >= dn[:, 0]
            count = (dn > 0)[:, 0] + (gd < dn).sum(axis=1)
            depth[inside] = np.maximum(np.minimum(count[inside], kk) - 1, 0)
            search = np.flatnonzero(~inside)
    if search.size:
        dr, _ = knn(reference[rows[search]], y=reference, k=kk)   # includes the point itself
        depth[search] = np.maximum((dr < dn[search]).sum(axis=1) - 1, 0)
    return depth


def gap_regions(uncovered, graph) -> np.ndarray:
    """Connected components of the uncovered points in a k-NN graph; -1 for covered points.

    Two uncovered points are in one region when one lists the other among its neighbours
    (weakly connected components of the directed graph restricted to uncovered points).

    Parameters
    ----------
    uncovered : array-like of bool, shape (n,)
        Which points are uncovered.
    graph : array-like of int, shape (n, n_neighbors)
        ``graph[i]`` lists the neighbours of point ``i``.

    Returns
    -------
    labels : ndarray of int64, shape (n,)
        Region of each uncovered point (0, 1, ...), -1 for covered points.

    Examples
    --------
    >>> g = np.array([[1], [0], [3], [2]])
    >>> gap_regions(np.array([True, True, False, True]), g).tolist()
    [0, 0, -1, 1]
    """
    unc = np.asarray(uncovered, dtype=bool)
    graph = np.asarray(graph)
    if unc.ndim != 1 or graph.ndim != 2 or graph.shape[0] != unc.shape[0]:
        raise ValueError(f"graph must have one row per point: shapes {unc.shape} and "
                         f"{graph.shape}")
    out = np.full(len(unc), -1, dtype=np.int64)
    rows = np.flatnonzero(unc)
    if rows.size == 0:
        return out
    pos = np.full(len(unc), -1)
    pos[rows] = np.arange(rows.size)
    nb = pos[graph[rows]]                                     # (r, g)
    a = np.repeat(np.arange(rows.size), nb.shape[1])
    b = nb.ravel()
    keep = b >= 0
    adj = sparse.coo_matrix((np.ones(keep.sum()), (a[keep], b[keep])),
                            shape=(rows.size, rows.size))
    _, lab = connected_components(adj, directed=True, connection="weak")
    out[rows] = lab
    return out
