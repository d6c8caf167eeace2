"""Hole probes: drawn from smooth models, moved into empty space, tested for a deficit.

Stages 1-3 of the scan described in ``_holes``.
"""
from __future__ import annotations

import numpy as np

from ._neighbors import knn
from ._validation import validate_float, validate_int, validate_matrix

__all__ = ["smooth_probes", "ascend_probes", "probe_deficits"]

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
    """Observed vs expected counts in each probe's inner ball (see the notes of ``_holes``).

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
