"""The hole scan (:func:`find_holes`), its regions and the paths through them.

Holes: empty regions *inside* a point cloud, where a smooth density model expects points.

The stages, each a plain function on arrays (1-3 in ``_hole_probes``, 4 in
``_enclosure``):

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

from ._enclosure import halfspace_depth, largest_piece_mask, tangent_alignment
from ._hole_probes import _block, _local_frames, ascend_probes, probe_deficits
from ._neighbors import knn
from ._stats import benjamini_hochberg, poisson_deficit_pvalue
from ._validation import validate_float, validate_int, validate_matrix

__all__ = ["merge_regions", "segment_hits", "interpolation_risk", "find_holes",
           "affine_weights", "HoleScan", "HoleRegion"]

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
