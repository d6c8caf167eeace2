"""Whether the data surrounds a probe: half-space depth, largest piece, tangent alignment.

Stage 4 of the scan described in ``_holes``.
"""
from __future__ import annotations

import numpy as np

from ._hole_probes import _block
from ._neighbors import knn
from ._validation import validate_int, validate_matrix

__all__ = ["halfspace_depth", "tangent_alignment", "largest_piece_mask"]

def largest_piece_mask(points, *, min_link=None, link: float = 3.0) -> np.ndarray:
    """For each set of points, which of them form its largest single-linkage piece.

    Two points are linked when they are closer than ``max(min_link, link * median
    nearest-neighbour distance within the set)``. The neighbours of a probe that sits
    between two separate clusters fall into two pieces; the rim of a hole stays one.

    Parameters
    ----------
    points : array-like of shape (n_sets, k, p)
    min_link : array-like of shape (n_sets,), default=None
        Per-set lower bound of the linking distance (e.g. half the probe's distance to
        its nearest point, so gaps smaller than the hole it sits in do not split a rim).
    link : float, default=3.0

    Returns
    -------
    mask : ndarray of bool, shape (n_sets, k)

    Examples
    --------
    >>> pts = np.array([[[0.0], [0.1], [0.2], [5.0], [5.1]]])
    >>> largest_piece_mask(pts).tolist()
    [[True, True, True, False, False]]
    >>> largest_piece_mask(pts, min_link=[6.0]).tolist()
    [[True, True, True, True, True]]
    """
    pts = np.asarray(points, dtype=float)
    n_s, k, _ = pts.shape
    sq = np.einsum("bkp,bkp->bk", pts, pts)
    d2 = np.maximum(sq[:, :, None] + sq[:, None, :] - 2 * np.einsum("bkp,bjp->bkj", pts, pts),
                    0.0)
    idx = np.arange(k)
    d2[:, idx, idx] = np.inf
    eps = link * np.median(np.sqrt(d2.min(axis=2)), axis=1)
    if min_link is not None:
        eps = np.maximum(eps, np.asarray(min_link, dtype=float))
    adj = d2 < (eps ** 2)[:, None, None]
    # connected components of every set at once: each point takes the smallest label among
    # itself and its neighbours, then follows its label's label (pointer jumping)
    lab = np.broadcast_to(np.arange(k), (n_s, k)).copy()
    while True:
        new = np.minimum(lab, np.where(adj, lab[:, None, :], k).min(axis=2))
        new = np.take_along_axis(new, new, axis=1)
        new = np.take_along_axis(new, new, axis=1)
        if np.array_equal(new, lab):
            break
        lab = new
    counts = (lab[:, :, None] == idx[None, None, :]).sum(axis=1)      # (n_s, k)
    return lab == counts.argmax(axis=1)[:, None]


def tangent_alignment(x, probes, indices, *, dim: int, k: int | None = None) -> np.ndarray:
    """How well the direction from each neighbour to its probe lies in the data's own
    tangent space at that neighbour (cos² of the angle, in [0, 1]).

    Inside a hole of a curved manifold the probe lies *along* the manifold from the rim
    points (about 1); at the centre of curvature of a curled sheet it lies across it
    (about 0), though the curl surrounds it.

    Parameters
    ----------
    x : array-like of shape (n_samples, p)
    probes : array-like of shape (n_probes, p)
    indices : array-like of int, shape (n_probes, m)
        The neighbours to check for each probe.
    dim : int
        Dimension of the tangent spaces (local PCA of each neighbour's ``k`` nearest rows).
    k : int, default=None
        None: ``max(3 * dim, 10)``, at most ``n_samples``.

    Returns
    -------
    alignment : ndarray of shape (n_probes, m)

    Examples
    --------
    >>> t = np.linspace(0, 1, 50)
    >>> line = np.stack([t, np.zeros(50)], 1)                    # data along the x axis
    >>> tangent_alignment(line, [[2.0, 0.0], [0.5, 1.0]], [[49], [25]], dim=1).round(2).tolist()
    [[1.0], [0.0]]
    """
    x = validate_matrix(x, "x", min_rows=2)
    probes = validate_matrix(probes, "probes")
    indices = np.asarray(indices, dtype=np.int64)
    p = x.shape[1]
    dim = min(validate_int(dim, "dim", low=1), p)
    if dim >= p:
        return np.ones(indices.shape)
    k = int(min(x.shape[0] - 1, k if k is not None else max(3 * dim, 10)))
    rows, inverse = np.unique(indices, return_inverse=True)
    inverse = inverse.reshape(indices.shape)
    _, nb = knn(x[rows], y=x, k=k + 1)              # includes the point itself
    bases = np.empty((rows.size, p, dim))
    blk = _block(k + 1, p * p)
    for s in range(0, rows.size, blk):
        pts = x[nb[s:s + blk]]
        c = pts - pts.mean(axis=1, keepdims=True)
        _, vecs = np.linalg.eigh(np.einsum("bkp,bkq->bpq", c, c))
        bases[s:s + blk] = vecs[:, :, ::-1][:, :, :dim]
    u = probes[:, None, :] - x[indices]                            # (n_probes, m, p)
    u /= np.maximum(np.linalg.norm(u, axis=2, keepdims=True), 1e-300)
    b = bases[inverse]                                             # (n_probes, m, p, dim)
    return np.clip((np.einsum("npd,npdk->npk", u, b) ** 2).sum(axis=2), 0.0, 1.0)


def halfspace_depth(neighbours, probe, *, mask=None, n_directions: int = 64,
                    random_state: int | np.random.Generator | None = None) -> np.ndarray:
    """Approximate Tukey (half-space) depth of each probe among its neighbours.

    The depth is the smallest share of the (masked) neighbours in a closed half-space
    whose boundary passes through the probe; it is minimised over random directions,
    the coordinate axes and the direction away from the neighbours' mean direction
    (so the approximation errs towards a larger depth only for ``dim > 2``). 0 means the
    probe lies outside its neighbours (at the data's edge); about 0.5 means they
    surround it evenly.

    Parameters
    ----------
    neighbours : array-like of shape (n_probes, k, dim)
    probe : array-like of shape (n_probes, dim)
    mask : array-like of bool, shape (n_probes, k), default=None
        Neighbours to count (None: all).
    n_directions : int, default=64
    random_state : int, Generator or None, default=None

    Returns
    -------
    depth : ndarray of shape (n_probes,), in [0, 1]

    Examples
    --------
    >>> ring = np.stack([np.cos(np.arange(12) * np.pi / 6), np.sin(np.arange(12) * np.pi / 6)], 1)
    >>> halfspace_depth(ring[None], np.array([[0.0, 0.0]])).round(2).tolist()
    [0.5]
    >>> halfspace_depth(ring[None], np.array([[2.0, 0.0]])).tolist()
    [0.0]
    """
    y = np.asarray(neighbours, dtype=float)
    q = np.asarray(probe, dtype=float)
    n_p, k, m = y.shape
    mask = np.ones((n_p, k), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    rng = np.random.default_rng(random_state)
    u = y - q[:, None, :]
    norms = np.linalg.norm(u, axis=2, keepdims=True)
    u = u / np.where(norms > 0, norms, 1.0)
    dirs = rng.standard_normal((n_directions, m))
    dirs = np.concatenate([dirs / np.linalg.norm(dirs, axis=1, keepdims=True), np.eye(m)])
    dirs = np.concatenate([dirs, -dirs])                          # (D, m)
    res = (u * mask[..., None]).sum(axis=1)                      # away from the mean direction
    rn = np.linalg.norm(res, axis=1, keepdims=True)
    away = -res / np.where(rn > 0, rn, 1.0)
    total = np.maximum(mask.sum(axis=1), 1)
    dots = np.einsum("bkm,dm->bkd", u, dirs) >= -1e-12
    depth = ((dots & mask[..., None]).sum(axis=1) / total[:, None]).min(axis=1)
    own = (np.einsum("bkm,bm->bk", u, away) >= -1e-12) & mask
    return np.minimum(depth, own.sum(axis=1) / total)
