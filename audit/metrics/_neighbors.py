"""Exact k-nearest neighbours by blocked matrix products, and what follows from them."""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ._validation import validate_int, validate_matrix

__all__ = ["knn", "twonn_dimension", "knn_distance_score"]

_MARGIN = 8          # extra candidates re-ranked in float64, so ties resolve by index


def _block_rows(n_ref: int, budget_bytes: int = 256 * 2**20) -> int:
    return int(max(64, min(8192, budget_bytes // (4 * max(n_ref, 1)))))


def knn(x, *, k: int, y=None, block_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean k nearest neighbours, computed block by block.

    Parameters
    ----------
    x : array-like of shape (n_queries, d)
        Query points.
    k : int
        Neighbours per query, ``1 <= k < n_ref`` (``<= n_ref`` when ``y`` is given).
    y : array-like of shape (n_ref, d), default=None
        Points to search. ``None`` searches ``x`` itself and excludes each point from its
        own list by index (an exact duplicate of it still counts, at distance 0).
    block_size : int, default=None
        Query rows per block; ``None`` keeps a block's distance matrix near 256 MiB.

    Returns
    -------
    distances : ndarray of shape (n_queries, k), float64, ascending
    indices : ndarray of shape (n_queries, k), int64; ties are broken by the lower index

    Examples
    --------
    >>> d, i = knn([[0.0], [1.0], [3.0]], k=1)
    >>> i.ravel().tolist(), d.ravel().tolist()
    ([1, 0, 1], [1.0, 1.0, 2.0])
    """
    x = validate_matrix(x, "x", dtype=np.float32)
    self_search = y is None
    y = x if self_search else validate_matrix(y, "y", dtype=np.float32)
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but y has {y.shape[1]}")
    n_ref = y.shape[0]
    k = validate_int(k, "k", low=1, high=n_ref - 1 if self_search else n_ref)
    block = block_size or _block_rows(n_ref)
    return _knn(x, y, k, self_search, block)


def _knn(x: np.ndarray, y: np.ndarray, k: int, self_search: bool,
         block: int) -> tuple[np.ndarray, np.ndarray]:
    n_q, n_ref = x.shape[0], y.shape[0]
    m = min(n_ref, k + _MARGIN + (1 if self_search else 0))
    yt = torch.from_numpy(y)
    y_sq = (yt.double() ** 2).sum(1).float()
    out_d = np.empty((n_q, k))
    out_i = np.empty((n_q, k), dtype=np.int64)
    y64 = y.astype(np.float64)
    for start in range(0, n_q, block):
        stop = min(start + block, n_q)
        q = torch.from_numpy(x[start:stop])
        d2 = torch.addmm(y_sq[None, :], q, yt.T, alpha=-2.0)
        d2 += (q.double() ** 2).sum(1).float()[:, None]
        if self_search:
            rows = torch.arange(stop - start)
            d2[rows, rows + start] = float("inf")
        top = torch.topk(d2, m, dim=1, largest=False, sorted=False)
        cand = top.indices.numpy()
        diff = x[start:stop, None, :].astype(np.float64) - y64[cand]
        exact = np.sqrt(np.einsum("qmd,qmd->qm", diff, diff))
        if self_search:
            exact[cand == np.arange(start, stop)[:, None]] = np.inf
        order = np.lexsort((cand, exact), axis=1)[:, :k]
        out_d[start:stop] = np.take_along_axis(exact, order, 1)
        out_i[start:stop] = np.take_along_axis(cand, order, 1)
        # Rows where more points than the candidates tie with the k-th distance (within
        # float32 rounding) are redone over every such point, so ties break by index.
        kth = torch.from_numpy(out_d[start:stop, k - 1] ** 2).float()
        bound = kth * (1 + 1e-4) + 1e-6
        # more than m points within the bound <=> the m-th smallest is within it (when every
        # candidate is within the bound, points beyond the candidates may tie too)
        maybe = torch.nonzero(top.values.max(1).values <= bound).ravel()
        crowded = (maybe[(d2[maybe] <= bound[maybe, None]).sum(1) > m].numpy()
                   if maybe.numel() and m < n_ref else np.empty(0, dtype=np.int64))
        for r in crowded:
            row = start + int(r)
            near = torch.nonzero(d2[r] <= bound[r]).ravel().numpy()
            diff = x[row].astype(np.float64) - y64[near]
            ex = np.sqrt(np.einsum("md,md->m", diff, diff))
            if self_search:
                ex[near == row] = np.inf
            o = np.lexsort((near, ex))[:k]
            out_d[row], out_i[row] = ex[o], near[o]
    return out_d, out_i


def twonn_dimension(distances) -> float:
    """Intrinsic dimension by the TwoNN maximum-likelihood estimate (Facco et al. 2017).

    Parameters
    ----------
    distances : array-like of shape (n_samples, k >= 2)
        Sorted distances to each point's nearest neighbours (e.g. from :func:`knn`).

    Returns
    -------
    float
        ``(n - 1) / sum(log(r2 / r1))`` over points whose first neighbour is not a
        duplicate; ``nan`` (with a warning) when fewer than 3 such points remain.

    References
    ----------
    E. Facco et al., "Estimating the intrinsic dimension of datasets by a minimal
    neighborhood information", Scientific Reports 7, 2017.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> from audit.metrics import knn
    >>> d, _ = knn(rng.random((2000, 3)), k=2)
    >>> 2.5 < twonn_dimension(d) < 3.5
    True
    """
    d = validate_matrix(distances, "distances", finite=False)
    if d.shape[1] < 2:
        raise ValueError("distances needs at least 2 neighbours per point")
    r1, r2 = d[:, 0], d[:, 1]
    ok = (r1 > 0) & np.isfinite(r2) & (r2 > r1)
    n = int(ok.sum())
    if n < 3:
        warnings.warn("too few distinct neighbour pairs to estimate the intrinsic dimension",
                      RuntimeWarning, stacklevel=2)
        return float("nan")
    return float((n - 1) / np.log(r2[ok] / r1[ok]).sum())


def knn_distance_score(distances) -> np.ndarray:
    """Mean distance to the k nearest neighbours, per point (higher = more isolated).

    Examples
    --------
    >>> knn_distance_score([[1.0, 3.0], [2.0, 2.0]]).tolist()
    [2.0, 2.0]
    """
    d = validate_matrix(distances, "distances")
    return d.mean(axis=1)
