"""Holes: empty regions *inside* a point cloud, where a smooth density model expects points.

The stages, each a plain function on arrays:

1. :func:`smooth_probes`: candidate locations drawn from smooth models of the data (a
   Gaussian KDE with Scott's bandwidth, one Gaussian fitted to all of it, and points on
   straight lines between random pairs of points). A caller may add its own (e.g. draws
   from a VAE's prior).
2. :func:`ascend_probes`: each probe climbs the distance to the data, within the local
   tangent space, towards the centre of the empty space it sits in.
3. :func:`probe_deficits`: for each probe, its ``k`` nearest points define a broad k-NN
   density estimate: the smooth model takes the density as constant over the ball
   ``B(q, R)`` that holds them. The points are flattened into the local tangent space
   (local PCA, ``dim`` dimensions) and the probe is projected onto it. Under the smooth
   model the ``k - 1`` points strictly inside ``B(q, R)`` are uniform, so the inner ball
   of radius ``R * inner_share ** (1 / dim)`` expects ``(k - 1) * inner_share`` of them;
   a hole leaves it (nearly) empty. The deficit is tested with a one-sided Poisson test
   against ``max_ratio`` times the expected count (conservative against the exact
   binomial, and tolerant of a smooth model that is off by up to ``1 / max_ratio``).
4. Enclosure: a probe counts only when the data surrounds it: its Tukey (half-space)
   depth (:func:`halfspace_depth`) among the largest single-linkage piece of its
   neighbours (:func:`largest_piece_mask`) is at least ``min_depth``, so neither the
   outside of the data's edge nor the empty space between separate clusters is a hole;
   and, on a curved manifold, the direction from its neighbours to it lies along the
   data (:func:`tangent_alignment`), so the inside of a curled sheet is not a hole either.
5. :func:`merge_regions`: enclosed probes with a significant deficit (Benjamini–Hochberg
   over all probes) whose empty inner balls overlap form one hole region.
6. :func:`segment_hits` / :func:`interpolation_risk`: the share of straight paths between
   random pairs of points that pass through a hole.

:func:`find_holes` runs stages 2–5 on given probes. Everything is in the coordinates
passed in (a check passes the PCA subspace that holds the data).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from ._neighbors import knn
from ._stats import benjamini_hochberg, poisson_deficit_pvalue
from ._validation import validate_float, validate_int, validate_matrix

__all__ = ["smooth_probes", "ascend_probes", "probe_deficits", "halfspace_depth",
           "tangent_alignment", "largest_piece_mask", "merge_regions", "segment_hits",
           "interpolation_risk", "find_holes", "affine_weights", "HoleScan", "HoleRegion"]

_BLOCK_VALUES = 1 << 22      # float64 values per temporary array in the blocked loops


def _block(k: int, width: int) -> int:
    """Probes per block so that a (block, k, width) array holds at most _BLOCK_VALUES."""
    return int(max(1, min(1024, _BLOCK_VALUES // max(1, k * width))))


# --------------------------------------------------------------------------- probes

def smooth_probes(x, n_probes: int, *, bandwidth: float = 1.0,
                  shares: tuple[float, float, float] = (0.6, 0.15, 0.25),
                  random_state: int | np.random.Generator | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Candidate hole locations drawn from smooth models of ``x``.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
        The data.
    n_probes : int
        Number of probes, ``>= 1``.
    bandwidth : float, default=1.0
        Multiplier (``> 0``) of Scott's factor ``n ** (-1 / (d + 4))`` for the Gaussian
        KDE, whose kernel covariance is ``(bandwidth * factor) ** 2`` times the data's.
    shares : tuple of 3 floats, default=(0.6, 0.15, 0.25)
        Shares of probes drawn from the KDE, from one Gaussian fitted to ``x``, and on
        straight lines between random pairs of points (at ``t ~ U(0.25, 0.75)``).
    random_state : int, Generator or None, default=None

    Returns
    -------
    probes : ndarray of shape (n_probes, n_features)
    kind : ndarray of str, shape (n_probes,)
        ``"kde"``, ``"gaussian"`` or ``"interpolation"``.

    Examples
    --------
    >>> p, kind = smooth_probes(np.random.default_rng(0).random((50, 2)), 10, random_state=0)
    >>> p.shape, sorted(set(kind.tolist()))
    ((10, 2), ['gaussian', 'interpolation', 'kde'])
    """
    x = validate_matrix(x, "x", min_rows=2)
    n_probes = validate_int(n_probes, "n_probes", low=1)
    bandwidth = validate_float(bandwidth, "bandwidth", low=0, low_open=True)
    w = np.asarray(shares, dtype=float)
    if w.shape != (3,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("shares must be three non-negative numbers with a positive sum")
    rng = np.random.default_rng(random_state)
    n, d = x.shape
    counts = np.floor(w / w.sum() * n_probes).astype(int)
    counts[int(np.argmax(w))] += n_probes - counts.sum()
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    # a tiny ridge keeps the Cholesky factor defined for rank-deficient data
    chol = np.linalg.cholesky(cov + np.eye(d) * 1e-12 * max(np.trace(cov), 1e-300))
    factor = bandwidth * n ** (-1.0 / (d + 4))
    kde = x[rng.integers(0, n, counts[0])] + factor * rng.standard_normal((counts[0], d)) @ chol.T
    gauss = x.mean(0) + rng.standard_normal((counts[1], d)) @ chol.T
    i = rng.integers(0, n, counts[2])
    j = (i + rng.integers(1, n, counts[2])) % n
    t = rng.uniform(0.25, 0.75, (counts[2], 1))
    interp = x[i] + t * (x[j] - x[i])
    kind = np.repeat(np.array(["kde", "gaussian", "interpolation"]), counts)
    return np.concatenate([kde, gauss, interp]), kind


# --------------------------------------------------------------------------- local frames

def _local_frames(x: np.ndarray, probes: np.ndarray, indices: np.ndarray, dim: int):
    """Neighbours and probe in each probe's local tangent coordinates.

    Returns ``(Y, q, proj, basis)``: ``Y`` (b, k, dim) neighbour coordinates, ``q``
    (b, dim) the probe's coordinates, ``proj`` (b, p) the probe projected onto the local
    affine plane (in the coordinates of ``x``) and ``basis`` (b, p, dim), the plane's
    orthonormal directions (None when ``dim == p``: the frame is the identity).
    """
    nb = x[indices]                                   # (b, k, p)
    p = x.shape[1]
    if dim >= p:
        return nb, probes, probes.copy(), None
    mu = nb.mean(axis=1)                              # (b, p)
    c = nb - mu[:, None, :]
    cov = np.einsum("bkp,bkq->bpq", c, c)
    _, vecs = np.linalg.eigh(cov)                     # ascending eigenvalues
    basis = vecs[:, :, ::-1][:, :, :dim]              # (b, p, dim)
    y = np.einsum("bkp,bpm->bkm", c, basis)
    q = np.einsum("bp,bpm->bm", probes - mu, basis)
    proj = mu + np.einsum("bm,bpm->bp", q, basis)
    return y, q, proj, basis


def ascend_probes(x, probes, *, dim: int | None = None, steps: int = 8, step: float = 0.5,
                  k: int | None = None) -> np.ndarray:
    """Move each probe uphill on the distance to the data, towards the centre of the empty
    space it sits in (the largest empty ball nearby).

    Each step projects a probe onto its local tangent space (local PCA of its ``k``
    nearest points, ``dim`` dimensions) and moves it, within that space, away from its
    nearest points (weighted by ``d ** -(dim + 2)``), by up to ``step`` times its distance
    to the nearest point times the net push, halving the step until the distance to the
    nearest point grows (else it stays). A probe in a hole ends near the hole's centre;
    a probe in dense data barely moves; a probe beyond the data's edge moves outwards
    (and fails the enclosure test later).

    Parameters
    ----------
    x : array-like of shape (n_samples, p)
    probes : array-like of shape (n_probes, p)
    dim : int, default=None
        Local dimension (None: ``p``).
    steps : int, default=8
    step : float, default=0.5
        Step size as a share of the distance to the nearest point, in (0, 1].
    k : int, default=None
        Neighbours per step (None: ``max(2 * dim + 2, 10)``, at most ``n_samples``).

    Returns
    -------
    moved : ndarray of shape (n_probes, p)

    Examples
    --------
    >>> a = np.arange(100) * np.pi / 50
    >>> ring = np.stack([np.cos(a), np.sin(a)], 1)
    >>> moved = ascend_probes(ring, [[0.5, -0.3]], steps=40)
    >>> bool(np.linalg.norm(moved) < 0.1)
    True
    """
    x = validate_matrix(x, "x", min_rows=2)
    q = validate_matrix(probes, "probes").copy()
    p = x.shape[1]
    dim = p if dim is None else min(validate_int(dim, "dim", low=1), p)
    steps = validate_int(steps, "steps", low=0)
    step = validate_float(step, "step", low=0, high=1, low_open=True)
    k = int(min(x.shape[0], k if k is not None else max(2 * dim + 2, 10)))
    for _ in range(steps):
        _, idx = knn(q, y=x, k=k)
        blk = _block(k, x.shape[1])
        for s in range(0, len(q), blk):
            sl = slice(s, min(len(q), s + blk))
            nb = x[idx[sl]]
            _, _, proj, basis = _local_frames(x, q[sl], idx[sl], dim)
            u = proj[:, None, :] - nb
            dist = np.maximum(np.linalg.norm(u, axis=2), 1e-300)
            near, far = dist.min(axis=1), dist.max(axis=1)
            w = (dist / near[:, None]) ** -(dim + 2.0)
            push = (w[..., None] * u / dist[..., None]).sum(1) / w.sum(1)[:, None]
            if basis is not None:
                push = np.einsum("bpm,bm->bp", basis, np.einsum("bpm,bp->bm", basis, push))
            # the largest of step, step/2, step/4, step/8 (times the nearest distance) that
            # moves the probe further from every point; rows beyond its k nearest are at
            # least ``far`` away, so steps up to ``far - near`` cannot bring them closer
            best = proj.copy()
            done = np.zeros(len(proj), dtype=bool)
            for scale in (1.0, 0.5, 0.25, 0.125):
                t = np.minimum(step * scale * near, far - near)[:, None]
                cand = proj + t * push
                new_near = np.linalg.norm(cand[:, None, :] - nb, axis=2).min(axis=1)
                ok = ~done & (new_near > near)
                best[ok] = cand[ok]
                done |= ok
            q[sl] = best
    return q


def probe_deficits(x, probes, indices, *, dim: int, inner_share: float = 0.5) -> dict:
    """Observed vs expected counts in each probe's inner ball (see the module notes).

    Parameters
    ----------
    x : array-like of shape (n_samples, p)
    probes : array-like of shape (n_probes, p)
    indices : array-like of int, shape (n_probes, k)
        Each probe's ``k >= 2`` nearest rows of ``x``.
    dim : int
        Local (intrinsic) dimension, ``1 <= dim``; capped at ``p``.
    inner_share : float, default=0.5
        Volume share of the inner ball in the outer one, in (0, 1).

    Returns
    -------
    dict with arrays of shape (n_probes,): ``observed`` (int), ``expected``,
    ``inner_radius``, ``outer_radius``, ``nearest`` (distance from the projected probe to
    its nearest neighbour, in the local frame), and ``projected`` (n_probes, p).

    Examples
    --------
    >>> g = np.stack(np.meshgrid(np.arange(21.0), np.arange(21.0)), -1).reshape(-1, 2)
    >>> x = g[np.hypot(g[:, 0] - 10, g[:, 1] - 10) > 4]      # a grid with a hole
    >>> q = np.array([[10.0, 10.0], [3.0, 3.0]])
    >>> _, idx = knn(q, y=x, k=60)
    >>> out = probe_deficits(x, q, idx, dim=2)
    >>> out["observed"].tolist(), out["expected"].tolist()
    ([0, 37], [29.5, 29.5])
    """
    x = validate_matrix(x, "x", min_rows=2)
    probes = validate_matrix(probes, "probes")
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 2 or indices.shape[0] != probes.shape[0] or indices.shape[1] < 2:
        raise ValueError("indices must have shape (n_probes, k) with k >= 2")
    dim = min(validate_int(dim, "dim", low=1), x.shape[1])
    inner_share = validate_float(inner_share, "inner_share", low=0, high=1, low_open=True,
                                 high_open=True)
    n_p, k = indices.shape
    out = {"observed": np.empty(n_p, dtype=np.int64), "inner_radius": np.empty(n_p),
           "outer_radius": np.empty(n_p), "nearest": np.empty(n_p),
           "projected": np.empty_like(probes)}
    scale = inner_share ** (1.0 / dim)
    blk = _block(k, x.shape[1])
    for s in range(0, n_p, blk):
        sl = slice(s, min(n_p, s + blk))
        y, q, proj, _ = _local_frames(x, probes[sl], indices[sl], dim)
        dist = np.linalg.norm(y - q[:, None, :], axis=2)
        outer = dist.max(axis=1)
        inner = outer * scale
        out["observed"][sl] = (dist < inner[:, None]).sum(axis=1)
        out["inner_radius"][sl] = inner
        out["outer_radius"][sl] = outer
        out["nearest"][sl] = dist.min(axis=1)
        out["projected"][sl] = proj
    out["expected"] = np.full(n_p, (k - 1) * inner_share)
    return out


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


# --------------------------------------------------------------------------- regions

def merge_regions(centres, radii) -> np.ndarray:
    """Connected components of balls that overlap (``|c_a - c_b| < r_a + r_b``).

    Examples
    --------
    >>> merge_regions([[0.0], [1.5], [10.0]], [1.0, 1.0, 1.0]).tolist()
    [0, 0, 1]
    """
    c = np.asarray(centres, dtype=float)
    r = np.asarray(radii, dtype=float)
    if len(c) == 0:
        return np.empty(0, dtype=np.int64)
    sq = (c * c).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * c @ c.T, 0.0)
    adj = d2 < (r[:, None] + r[None, :]) ** 2
    _, lab = connected_components(sparse.csr_matrix(adj), directed=False)
    # number components by first appearance so labels are stable
    _, first = np.unique(lab, return_index=True)
    rank = np.empty_like(first)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[lab].astype(np.int64)


def segment_hits(a, b, centres, radii, *, block: int = 2048) -> np.ndarray:
    """Which straight segments ``a[i] -> b[i]`` pass within ``radii[j]`` of ``centres[j]``.

    Returns
    -------
    hits : ndarray of bool, shape (n_segments, n_centres)

    Examples
    --------
    >>> segment_hits([[-1.0, 0.0], [-1.0, 2.0]], [[1.0, 0.0], [1.0, 2.0]], [[0.0, 0.0]],
    ...              [0.5]).ravel().tolist()
    [True, False]
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    c = np.asarray(centres, dtype=float)
    r = np.asarray(radii, dtype=float)
    out = np.zeros((len(a), len(c)), dtype=bool)
    if len(c) == 0:
        return out
    csq = (c * c).sum(1)
    for s in range(0, len(a), block):
        aa, bb = a[s:s + block], b[s:s + block]
        v = bb - aa
        vv = np.maximum((v * v).sum(1), 1e-300)
        # |a + t v - c|^2 = |a - c|^2 + 2 t (a - c).v + t^2 |v|^2, t clipped to [0, 1]
        ac = (aa * aa).sum(1)[:, None] - 2 * aa @ c.T + csq[None, :]
        acv = (aa * v).sum(1)[:, None] - v @ c.T
        t = np.clip(-acv / vv[:, None], 0.0, 1.0)
        d2 = ac + 2 * t * acv + t * t * vv[:, None]
        out[s:s + block] = d2 < (r * r)[None, :]
    return out


def interpolation_risk(x, centres, radii, *, n_paths: int = 1000,
                       random_state: int | np.random.Generator | None = None) -> float:
    """Share of straight paths between random pairs of distinct rows of ``x`` that pass
    through at least one ball ``(centres[j], radii[j])``; 0.0 without balls.

    Examples
    --------
    >>> x = np.array([[-1.0, 0.0], [1.0, 0.0]])
    >>> interpolation_risk(x, [[0.0, 0.0]], [0.1], n_paths=10, random_state=0)
    1.0
    """
    x = validate_matrix(x, "x", min_rows=2)
    n_paths = validate_int(n_paths, "n_paths", low=1)
    if len(np.asarray(centres)) == 0:
        return 0.0
    rng = np.random.default_rng(random_state)
    n = len(x)
    i = rng.integers(0, n, n_paths)
    j = (i + rng.integers(1, n, n_paths)) % n
    return float(segment_hits(x[i], x[j], centres, radii).any(axis=1).mean())


# --------------------------------------------------------------------------- the scan

@dataclass(frozen=True)
class HoleRegion:
    """One hole: probes whose empty inner balls overlap."""
    probes: np.ndarray           # indices into the scan's probes
    center: np.ndarray           # (p,) deepest point of the region (in the given coordinates)
    radius: float                # median distance from the centre to its rim points
    rim: np.ndarray              # indices of the nearest data points to the centre
    p_value: float               # smallest BH-adjusted p-value among its probes
    observed: int                # counts at that probe
    expected: float
    inner_radius: float


@dataclass(frozen=True)
class HoleScan:
    """Per-probe statistics and the merged regions of :func:`find_holes`."""
    start: np.ndarray            # (n_probes, p) where each probe started
    in_hole: np.ndarray          # the start lies within a region's radius of its centre
    projected: np.ndarray        # (n_probes, p) where it was tested
    observed: np.ndarray
    expected: np.ndarray
    inner_radius: np.ndarray
    p_values: np.ndarray         # raw one-sided Poisson p-values
    q_values: np.ndarray         # Benjamini–Hochberg adjusted
    significant: np.ndarray      # q <= alpha
    depth: np.ndarray            # half-space depth (NaN where not computed)
    alignment: np.ndarray        # median tangent alignment (NaN where not computed)
    flagged: np.ndarray          # significant and enclosed
    region: np.ndarray           # region label per probe, -1 where not flagged
    regions: tuple[HoleRegion, ...]
    dim: int
    k: int


def find_holes(x, probes, *, k: int = 100, dim: int | None = None,
               inner_share: float = 0.5, max_ratio: float = 0.5, alpha: float = 0.01,
               min_depth: float = 0.05, min_alignment: float = 0.5, link: float = 3.0,
               ascend_steps: int = 8, rim_points: int = 12,
               random_state: int | np.random.Generator | None = None) -> HoleScan:
    """Move the probes to the centres of nearby empty space, test each for a deficit, keep
    the enclosed ones, and merge them into holes.

    Parameters
    ----------
    x : array-like of shape (n_samples, p)
        The data (e.g. in the PCA subspace that holds it).
    probes : array-like of shape (n_probes, p)
        Candidate locations (e.g. from :func:`smooth_probes`).
    k : int, default=100
        Neighbours of the k-NN density estimate, in ``[2, n_samples]``: the smallest hole
        found has to empty about ``k * inner_share * (1 - max_ratio)`` points' worth of
        space.
    dim : int, default=None
        Local (intrinsic) dimension; None uses ``p``.
    inner_share : float, default=0.5
        Volume share of the inner ball, in (0, 1).
    max_ratio : float, default=0.5
        Tolerance of the smooth model, in (0, 1): a deficit counts only when the
        observed count is significantly below ``max_ratio`` times the expected one.
    alpha : float, default=0.01
        False-discovery rate of the Benjamini–Hochberg correction over the probes.
    min_depth : float, default=0.05
        Half-space depth, in [0, 0.5], a probe needs to count as enclosed.
    min_alignment : float, default=0.5
        When ``dim < p``: the median :func:`tangent_alignment` of a probe's neighbours
        must reach this (in [0, 1]), so the inside of a curled sheet is not a hole.
    link : float, default=3.0
        Single-linkage factor of :func:`largest_piece_mask`: only the largest piece of a
        probe's neighbours counts in the enclosure test.
    ascend_steps : int, default=8
        Steps of :func:`ascend_probes` before testing (0: test the probes where they are).
    rim_points : int, default=12
        Data points nearest to a hole's centre reported as its rim.
    random_state : int, Generator or None, default=None

    Returns
    -------
    HoleScan

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((3000, 2))
    >>> x = x[np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) > 0.15]          # a hole
    >>> probes = [[0.45, 0.55], [0.2, 0.2], [1.3, 0.5]]    # in it, in the data, outside
    >>> scan = find_holes(x, probes, random_state=0)
    >>> scan.flagged.tolist(), len(scan.regions)
    ([True, False, False], 1)
    >>> np.round(scan.regions[0].center, 1).tolist()
    [0.5, 0.5]
    """
    x = validate_matrix(x, "x", min_rows=3)
    probes = validate_matrix(probes, "probes")
    if probes.shape[1] != x.shape[1]:
        raise ValueError(f"probes have {probes.shape[1]} features but x has {x.shape[1]}")
    n, p = x.shape
    k = validate_int(k, "k", low=2, high=n)
    dim = p if dim is None else min(validate_int(dim, "dim", low=1), p)
    max_ratio = validate_float(max_ratio, "max_ratio", low=0, high=1, low_open=True,
                               high_open=True)
    alpha = validate_float(alpha, "alpha", low=0, high=1, low_open=True, high_open=True)
    min_depth = validate_float(min_depth, "min_depth", low=0, high=0.5)
    min_alignment = validate_float(min_alignment, "min_alignment", low=0, high=1)
    rim_points = validate_int(rim_points, "rim_points", low=1)
    ascend_steps = validate_int(ascend_steps, "ascend_steps", low=0)
    rng = np.random.default_rng(random_state)

    start = probes
    if ascend_steps:
        probes = ascend_probes(x, probes, dim=dim, steps=ascend_steps)
    _, idx = knn(probes, y=x, k=k)
    stats = probe_deficits(x, probes, idx, dim=dim, inner_share=inner_share)
    pvals = np.asarray(poisson_deficit_pvalue(stats["observed"], max_ratio * stats["expected"]),
                       dtype=float)
    _, qvals = benjamini_hochberg(pvals, alpha=alpha)
    significant = qvals <= alpha
    depth = np.full(len(probes), np.nan)
    alignment = np.full(len(probes), np.nan)
    cand = np.flatnonzero(significant)
    if cand.size:
        blk = _block(k, max(k, p))
        for s in range(0, cand.size, blk):
            rows = cand[s:s + blk]
            y, q, _, _ = _local_frames(x, probes[rows], idx[rows], dim)
            mask = largest_piece_mask(x[idx[rows]], link=link,
                                      min_link=0.5 * stats["nearest"][rows])
            depth[rows] = halfspace_depth(y, q, mask=mask, random_state=rng)
            if dim < p:
                align = tangent_alignment(x, stats["projected"][rows], idx[rows], dim=dim)
                align = np.where(mask, align, np.nan)
                alignment[rows] = np.nanmedian(align, axis=1)
    enclosed = np.nan_to_num(depth, nan=-1.0) >= min_depth
    if dim < p:
        enclosed &= np.nan_to_num(alignment, nan=0.0) >= min_alignment
    flagged = significant & enclosed

    fl = np.flatnonzero(flagged)
    region = np.full(len(probes), -1, dtype=np.int64)
    regions: list[HoleRegion] = []
    if fl.size:
        proj = stats["projected"]
        lab = merge_regions(proj[fl], stats["inner_radius"][fl])
        region[fl] = lab
        centres = []
        for g in range(int(lab.max()) + 1):
            members = fl[lab == g]
            near = stats["nearest"][members]
            deep = members[near >= 0.8 * near.max()]
            centres.append(proj[deep].mean(axis=0))
        centres = np.asarray(centres)
        rim_k = int(min(rim_points, n))
        rd, ri = knn(centres, y=x, k=rim_k)
        for g in range(len(centres)):
            members = fl[lab == g]
            best = members[np.argmin(qvals[members])]
            regions.append(HoleRegion(
                probes=members, center=centres[g], radius=float(np.median(rd[g])),
                rim=ri[g], p_value=float(qvals[best]), observed=int(stats["observed"][best]),
                expected=float(stats["expected"][best]),
                inner_radius=float(stats["inner_radius"][best])))
        order = sorted(range(len(regions)), key=lambda g: (regions[g].p_value,
                                                           -len(regions[g].probes)))
        relabel = np.empty(len(order), dtype=np.int64)
        relabel[order] = np.arange(len(order))
        region[fl] = relabel[region[fl]]
        regions = [regions[g] for g in order]
    in_hole = np.zeros(len(probes), dtype=bool)
    if regions:
        c = np.array([r.center for r in regions])
        rad = np.array([r.radius for r in regions])
        d2 = ((start[:, None, :] - c[None]) ** 2).sum(axis=2)
        in_hole = (d2 < rad[None, :] ** 2).any(axis=1)
    return HoleScan(start=start, in_hole=in_hole, projected=stats["projected"],
                    observed=stats["observed"], expected=stats["expected"],
                    inner_radius=stats["inner_radius"], p_values=pvals, q_values=qvals,
                    significant=significant, depth=depth, alignment=alignment,
                    flagged=flagged, region=region, regions=tuple(regions), dim=dim, k=k)


def affine_weights(points, target) -> np.ndarray:
    """Minimum-norm weights ``w`` (summing to 1) with ``w @ points == target``.

    An affine map commutes with such a combination, so ``w @ originals`` is a preimage of
    ``target`` under any affine map (scaling, PCA) that sent ``originals`` to ``points``.

    Examples
    --------
    >>> w = affine_weights([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]], [0.5, 0.5])
    >>> np.round(w, 3).tolist()
    [0.5, 0.25, 0.25]
    """
    pts = np.asarray(points, dtype=float)
    a = np.vstack([pts.T, np.ones(len(pts))])
    b = np.append(np.asarray(target, dtype=float), 1.0)
    return np.linalg.lstsq(a, b, rcond=None)[0]

