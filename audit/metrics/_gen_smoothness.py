"""Smoothness of a generator along interpolations in its prior: paths, step sizes, the
robust screen for large steps, the refinement test that tells a jump from a steep stretch,
and jump regions with a held-out test.

A *step* is one segment of an interpolation path between two prior points; its *stretch*
is how far the decoded output moves in the embedding per unit of prior distance
(``||e_{t+1} - e_t|| / ||z_{t+1} - z_t||``), so paths of different lengths compare. A
smooth decoder's stretch varies slowly over the prior; a discontinuity makes one step's
stretch far larger than the typical one, and keeps the jump whole however small the step
is made (a steep but smooth stretch shrinks with the step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._validation import validate_float, validate_matrix

__all__ = ["JumpRegionTest", "PlaneCrossingTest", "fit_jump_plane", "interpolate_prior",
           "jump_concentration", "jump_direction_groups", "jump_region_test", "jump_regions",
           "path_step_lengths", "plane_crossing_test", "step_jump_threshold"]

#: ridge of the location covariance in :func:`fit_jump_plane`, as a share of its mean variance
_PLANE_RIDGE = 0.05
#: ``sin(theta)`` below which slerp falls back to a straight line (parallel or opposite ends)
_SLERP_MIN_SIN = 1e-6


def interpolate_prior(a, b, t, *, method: str = "linear") -> np.ndarray:
    """Points on the paths from ``a[i]`` to ``b[i]`` at fractions ``t``.

    Parameters
    ----------
    a, b : array-like of shape (n_paths, k)
        Start and end of each path (prior coordinates).
    t : array-like of shape (m,) or (n_paths, m)
        Fractions along each path, in [0, 1] (0 is ``a``, 1 is ``b``).
    method : {"linear", "slerp"}, default="linear"
        ``linear``: ``(1 - t) a + t b``. ``slerp``: spherical interpolation (Shoemake
        1985; White 2016 for generative models): the direction turns along the great
        circle from ``a/|a|`` to ``b/|b|`` at a constant rate,
        ``(sin((1 - t) θ) â + sin(t θ) b̂) / sin θ``, and the norm moves linearly from
        ``|a|`` to ``|b|``, so the path stays at the norms a Gaussian prior puts its mass
        on. (Applying the slerp formula to ``a`` and ``b`` themselves, as White does,
        makes nearly opposite ends of unequal norms bulge out to norms of order
        ``1/sin θ``; turning the unit directions does not.) Ends that are exactly
        (anti)parallel or zero fall back to a line.

    Returns
    -------
    points : ndarray of shape (n_paths, m, k), float64

    References
    ----------
    .. [1] T. White, "Sampling Generative Networks", arXiv:1609.04468, 2016.

    Examples
    --------
    >>> a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    >>> interpolate_prior(a, b, [0, 0.5, 1], method="slerp").round(4).tolist()
    [[[1.0, 0.0], [0.7071, 0.7071], [0.0, 1.0]]]
    >>> interpolate_prior(a, b, [0.5]).tolist()
    [[[0.5, 0.5]]]
    """
    a = validate_matrix(a, "a", min_rows=0)
    b = validate_matrix(b, "b", min_rows=0)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if method not in ("linear", "slerp"):
        raise ValueError(f"method must be 'linear' or 'slerp', not {method!r}")
    t = np.asarray(t, dtype=np.float64)
    if t.ndim == 1:
        t = np.broadcast_to(t, (len(a), t.size))
    if t.ndim != 2 or t.shape[0] != len(a):
        raise ValueError(f"t must have shape (m,) or ({len(a)}, m), got {t.shape}")
    if not np.isfinite(t).all() or (t < 0).any() or (t > 1).any():
        raise ValueError("t must lie in [0, 1]")
    line = (1.0 - t)[..., None] * a[:, None, :] + t[..., None] * b[:, None, :]
    if method == "linear":
        return line
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = (na > 0) & (nb > 0)
    ua = a / np.where(ok, na, 1.0)[:, None]
    ub = b / np.where(ok, nb, 1.0)[:, None]
    theta = np.arccos(np.clip(np.einsum("ij,ij->i", ua, ub), -1.0, 1.0))
    sin = np.sin(theta)
    ok &= sin > _SLERP_MIN_SIN
    th, s = theta[:, None], np.where(ok, sin, 1.0)[:, None]
    direction = ((np.sin((1.0 - t) * th) / s)[..., None] * ua[:, None, :]
                 + (np.sin(t * th) / s)[..., None] * ub[:, None, :])
    direction /= np.maximum(np.linalg.norm(direction, axis=2, keepdims=True), 1e-300)
    radius = (1.0 - t) * na[:, None] + t * nb[:, None]
    return np.where(ok[:, None, None], radius[..., None] * direction, line)


def path_step_lengths(points, *, scale=None) -> np.ndarray:
    """Length of every step along paths: ``||p[:, t + 1] - p[:, t]||``.

    Parameters
    ----------
    points : array-like of shape (n_paths, m, d)
        Consecutive points of each path (prior or embedding coordinates).
    scale : array-like of shape (d,), optional
        Per-coordinate spread to divide the steps by (e.g. the prior's standard
        deviations, so steps are in prior units), ``> 0``.

    Returns
    -------
    lengths : ndarray of shape (n_paths, m - 1), float64

    Examples
    --------
    >>> path_step_lengths([[[0, 0], [3, 4], [3, 4]]]).tolist()
    [[5.0, 0.0]]
    >>> path_step_lengths([[[0, 0], [2, 0]]], scale=[2, 1]).tolist()
    [[1.0]]
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 3 or p.shape[1] < 2 or p.shape[2] < 1:
        raise ValueError(f"points must have shape (n_paths, m >= 2, d >= 1), got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("points contain NaN or Inf")
    diff = np.diff(p, axis=1)
    if scale is not None:
        s = np.asarray(scale, dtype=np.float64).ravel()
        if s.shape != (p.shape[2],) or not np.isfinite(s).all() or (s <= 0).any():
            raise ValueError(f"scale must be {p.shape[2]} positive finite numbers")
        diff = diff / s
    return np.linalg.norm(diff, axis=2)


def step_jump_threshold(stretch, *, alpha: float = 0.05, min_ratio: float = 3.0,
                        atol: float = 0.0) -> tuple[float, float, float]:
    """The typical step and the ratio above which a step is "much larger" than it.

    The typical step is the median stretch ``m``; the spread is the robust standard
    deviation of the log ratios ``log(s / m)`` (1.4826 × their median absolute
    deviation), which the few steps that cross a discontinuity do not move. A step is
    screened as large when its ratio ``s / m`` exceeds ``exp(z σ)``, ``z`` the normal
    quantile at ``alpha / n`` (Bonferroni over the ``n`` steps: under a log-normal model
    of the smooth steps, no step of a smooth decoder passes with probability about
    ``1 - alpha``), and at least ``min_ratio`` (so an almost constant stretch does not make
    a tiny excess count).

    Parameters
    ----------
    stretch : array-like
        Stretch of every step (embedding distance per prior unit), ``>= 0``; NaN entries
        are ignored.
    alpha : float, default=0.05
        Family-wise level of the screen, in (0, 1).
    min_ratio : float, default=3.0
        Smallest ratio to the median that can count as large, ``>= 1``.
    atol : float, default=0.0
        Stretches at or below this are treated as zero (no movement).

    Returns
    -------
    median : float
        The median stretch (0 when more than half the steps do not move).
    sigma : float
        Robust standard deviation of the log ratios of the moving steps (``nan`` when
        fewer than 2 steps move).
    threshold : float
        The ratio to the median above which a step is large (``nan`` when ``median`` is
        0: then every moving step is infinitely larger than the typical one).

    Examples
    --------
    >>> s = np.exp(np.random.default_rng(0).normal(0, 0.1, 1000))
    >>> med, sigma, thr = step_jump_threshold(s)
    >>> round(med, 1), round(sigma, 2), thr     # exp(3.9 σ) = 1.5: min_ratio decides
    (1.0, 0.1, 3.0)
    """
    s = np.asarray(stretch, dtype=np.float64).ravel()
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise ValueError("stretch holds no value")
    if (s < 0).any() or np.isinf(s).any():
        raise ValueError("stretch must be finite and >= 0")
    alpha = validate_float(alpha, "alpha", low=0, high=1, low_open=True, high_open=True)
    min_ratio = validate_float(min_ratio, "min_ratio", low=1)
    atol = validate_float(atol, "atol", low=0)
    s = np.where(s <= atol, 0.0, s)
    med = float(np.median(s))
    moving = s[s > 0]
    sigma = float("nan")
    if moving.size >= 2:
        ref = med if med > 0 else float(np.median(moving))
        logr = np.log(moving / ref)
        sigma = float(1.4826 * np.median(np.abs(logr - np.median(logr))))
    if med <= 0:
        return 0.0, sigma, float("nan")
    z = float(stats.norm.isf(alpha / s.size))
    spread = sigma if math.isfinite(sigma) else 0.0
    return med, sigma, float(max(min_ratio, math.exp(z * spread)))


def jump_concentration(sub_lengths) -> tuple[np.ndarray, np.ndarray]:
    """How much of a step's movement one of its sub-steps carries.

    A step cut into ``K`` equal sub-steps: for a smooth decoder each carries about
    ``1/K`` of the movement; across a discontinuity one sub-step carries the jump, close
    to all of it. This share is what tells a jump from a steep smooth stretch.

    Parameters
    ----------
    sub_lengths : array-like of shape (n_steps, K)
        Embedding length of each sub-step, ``>= 0``.

    Returns
    -------
    share : ndarray of shape (n_steps,)
        ``max_j l_j / sum_j l_j`` in [1/K, 1] (``nan`` where the step does not move).
    where : ndarray of shape (n_steps,), int
        Index of the largest sub-step.

    Examples
    --------
    >>> share, where = jump_concentration([[1, 1, 1, 1], [0, 9, 1, 0], [0, 0, 0, 0]])
    >>> share.tolist(), where.tolist()
    ([0.25, 0.9, nan], [0, 1, 0])
    """
    d = validate_matrix(sub_lengths, "sub_lengths", min_rows=0)
    if (d < 0).any():
        raise ValueError("sub_lengths must be >= 0")
    total = d.sum(axis=1)
    share = np.full(len(d), np.nan)
    ok = total > 0
    share[ok] = d[ok].max(axis=1) / total[ok]
    return share, d.argmax(axis=1) if d.size else np.zeros(0, dtype=int)


def jump_regions(locations, *, radius: float) -> np.ndarray:
    """Group jump locations into regions: single linkage at ``radius`` (two jumps closer
    than ``radius`` are in one region, and so on by chains, which follows a discontinuity
    along its surface).

    Parameters
    ----------
    locations : array-like of shape (n, k)
        Where each jump happens (prior coordinates, already in prior units).
    radius : float
        Linkage distance, ``> 0``.

    Returns
    -------
    labels : ndarray of shape (n,), int
        Region of each jump, ``0 .. n_regions - 1``, largest region first (ties: first
        jump first).

    Examples
    --------
    >>> jump_regions([[0, 0], [0, 0.4], [0, 0.8], [5, 5]], radius=0.5).tolist()
    [0, 0, 0, 1]
    """
    x = validate_matrix(locations, "locations", min_rows=0)
    radius = validate_float(radius, "radius", low=0, low_open=True)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int)
    if n == 1:
        return np.zeros(1, dtype=int)
    from scipy.cluster.hierarchy import fcluster, linkage
    raw = fcluster(linkage(x, method="single"), t=radius, criterion="distance")
    uniq, first, counts = np.unique(raw, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-counts[i], first[i]))
    remap = {int(uniq[i]): r for r, i in enumerate(order)}
    return np.array([remap[int(v)] for v in raw], dtype=int)


@dataclass(frozen=True)
class JumpRegionTest:
    """Held-out counts of regions (see :func:`jump_region_test`); arrays hold one entry
    per region."""

    paths_crossing: np.ndarray  # paths with a step within reach of the region
    paths_jumping: np.ndarray   # of them, with a jump within reach
    steps_in: np.ndarray        # steps within reach of the region
    jumps_in: np.ndarray        # jumps among them
    paths_out: int              # paths within reach of no region (the background)
    jumping_out: int            # of them, with a jump anywhere
    odds_ratio: np.ndarray      # sample odds ratio, region vs background
    p_value: np.ndarray         # one-sided Fisher exact test, region > background


def jump_region_test(region_points, step_location, step_jump, step_path, *,
                     radius: float) -> JumpRegionTest:
    """Test regions found on some paths against *other* paths: do the paths that pass
    through a region jump there more often than paths that pass near no region jump at
    all?

    Each step goes to the nearest region with one of its points within ``radius`` of the
    step's location (or to none). A path *crosses* a region when one of its steps goes
    to it, and *jumps there* when one of those steps is a jump; the *background* is the
    paths none of whose steps goes to any region. For each region, a one-sided Fisher
    exact test on the 2×2 table of paths (crossing it, background) × (jump, none). The
    unit is the path, not the step, so the steps of one path (a glitch makes two jump
    steps, into it and out of it) are never counted as independent. Under the null that
    the region is like the rest of the prior, a path that crosses it jumps within its
    reach no more often than a background path jumps on its whole length (which has
    more steps to jump on), so the test is exact or conservative. The regions must come
    from other paths than the steps tested (sample splitting), else the test would grade
    its own selection.

    Parameters
    ----------
    region_points : list of array-like of shape (n_r, k)
        The jump locations that make up each region (prior units).
    step_location : array-like of shape (n_steps, k)
        Location of every tested step (its jump's location for a jump, else its
        midpoint; prior units).
    step_jump : array-like of shape (n_steps,), bool
        Whether the step is a jump.
    step_path : array-like of shape (n_steps,), int
        The path each step belongs to.
    radius : float
        Reach of a region, ``> 0``.

    Returns
    -------
    JumpRegionTest

    Examples
    --------
    Four paths of two steps; paths 0 and 1 pass the region at 0 and path 0 jumps there;
    paths 2 and 3 stay away, and neither jumps:

    >>> loc = np.array([[0.0], [1.0], [0.1], [1.0], [3.0], [4.0], [5.0], [6.0]])
    >>> jump = np.array([1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    >>> r = jump_region_test([np.array([[0.05]])], loc, jump, [0, 0, 1, 1, 2, 2, 3, 3],
    ...                      radius=0.5)
    >>> r.paths_jumping.tolist(), r.paths_crossing.tolist(), r.jumping_out, r.paths_out
    ([1], [2], 0, 2)
    >>> round(float(r.p_value[0]), 4)                   # C(2,1) / C(4,1)
    0.5
    """
    loc = validate_matrix(step_location, "step_location", min_rows=0)
    jump = np.asarray(step_jump, dtype=bool).ravel()
    path = np.asarray(step_path).ravel()
    if jump.shape != (len(loc),) or path.shape != (len(loc),):
        raise ValueError("step_location, step_jump and step_path must have one entry per step")
    radius = validate_float(radius, "radius", low=0, low_open=True)
    regions = [validate_matrix(r, f"region_points[{i}]") for i, r in enumerate(region_points)]
    if any(r.shape[1] != loc.shape[1] for r in regions):
        raise ValueError("region points and step locations must have the same dimension")
    g = len(regions)
    assign = np.full(len(loc), -1)
    if g and len(loc):
        dist = np.stack([np.sqrt(((loc[:, None, :] - r[None]) ** 2).sum(-1)).min(axis=1)
                         for r in regions], axis=1)
        near = dist.argmin(axis=1)
        assign = np.where(dist[np.arange(len(loc)), near] <= radius, near, -1)
    paths = np.unique(path)
    touched = np.unique(path[assign >= 0])
    background = np.setdiff1d(paths, touched)
    paths_out = int(background.size)
    jumping_out = int(np.intersect1d(background, path[jump]).size)
    steps_in, jumps_in = np.zeros(g, dtype=int), np.zeros(g, dtype=int)
    crossing, jumping = np.zeros(g, dtype=int), np.zeros(g, dtype=int)
    odds, p = np.full(g, np.nan), np.ones(g)
    for r in range(g):
        inside = assign == r
        steps_in[r], jumps_in[r] = int(inside.sum()), int((jump & inside).sum())
        crossing[r] = np.unique(path[inside]).size
        jumping[r] = np.unique(path[inside & jump]).size
        if jumping[r]:
            table = [[jumping[r], crossing[r] - jumping[r]],
                     [jumping_out, paths_out - jumping_out]]
            res = stats.fisher_exact(table, alternative="greater")
            odds[r], p[r] = float(res.statistic), float(res.pvalue)
    return JumpRegionTest(paths_crossing=crossing, paths_jumping=jumping, steps_in=steps_in,
                          jumps_in=jumps_in, paths_out=paths_out, jumping_out=jumping_out,
                          odds_ratio=odds, p_value=p)


def jump_direction_groups(vectors, *, min_cos: float = 0.8) -> np.ndarray:
    """Group jumps by the direction of the output change they make: single linkage on
    ``1 - |cos|`` between jump vectors (the sign does not matter: a path crosses a
    discontinuity either way). One discontinuity changes the output the same way all
    along its surface, so its jumps fall in one group wherever on the surface they are,
    in any prior dimension.

    Parameters
    ----------
    vectors : array-like of shape (n, d)
        Embedding change across each jump (after minus before).
    min_cos : float, default=0.8
        Jumps whose vectors have ``|cos| >= min_cos`` are linked, in (0, 1].

    Returns
    -------
    labels : ndarray of shape (n,), int
        Group of each jump, largest first (ties: first jump first).

    Examples
    --------
    >>> jump_direction_groups([[1, 0], [-2, 0.1], [0, 1], [0.05, -3]]).tolist()
    [0, 0, 1, 1]
    """
    v = validate_matrix(vectors, "vectors", min_rows=0)
    min_cos = validate_float(min_cos, "min_cos", low=0, high=1, low_open=True)
    n = len(v)
    if n <= 1:
        return np.zeros(n, dtype=int)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    u = v / np.where(norm > 0, norm, 1.0)
    dist = np.clip(1.0 - np.abs(u @ u.T), 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    raw = fcluster(linkage(squareform(dist, checks=False), method="single"),
                   t=1.0 - min_cos, criterion="distance")
    uniq, first, counts = np.unique(raw, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-counts[i], first[i]))
    remap = {int(uniq[i]): r for r, i in enumerate(order)}
    return np.array([remap[int(x)] for x in raw], dtype=int)


def fit_jump_plane(before, after, vectors) -> tuple[np.ndarray, float]:
    """A flat discontinuity surface from jumps across it: unit normal ``n`` and offset
    ``b`` of the hyperplane ``n · z = b`` in the prior.

    Each jump is oriented by the sign of its output change along the group's main
    direction (the top right singular vector of ``vectors``), so every oriented crossing
    ``after - before`` goes from the same side of the surface to the other; their mean
    unit direction ``m`` points along the normal (the components along the surface
    average out). The jump locations lie on the surface, so the directions they spread
    in are along it: the normal is taken as ``(C + λI)^-1 m`` (``C`` the covariance of the
    locations, ``λ`` 5% of its mean variance), which damps those directions and sharpens
    the estimate when there are few crossings for the prior's dimension. The offset is
    the median of ``n · midpoint``.

    Parameters
    ----------
    before, after : array-like of shape (n, k)
        Prior points just before and after each jump (prior units).
    vectors : array-like of shape (n, d)
        Embedding change across each jump.

    Returns
    -------
    normal : ndarray of shape (k,)
        Unit normal (a zero vector when the crossings cancel out).
    offset : float

    Examples
    --------
    >>> before = np.array([[-0.1, 0.0], [0.1, 1.0], [-0.1, -2.0]])
    >>> after = np.array([[0.1, 0.1], [-0.1, 1.1], [0.1, -2.0]])
    >>> n, b = fit_jump_plane(before, after, [[6.0], [-6.0], [6.0]])   # the line z0 = 0
    >>> [abs(round(float(v), 6)) for v in n], abs(round(b, 6))
    ([1.0, 0.0], 0.0)
    """
    z0 = validate_matrix(before, "before")
    z1 = validate_matrix(after, "after")
    v = validate_matrix(vectors, "vectors")
    if z0.shape != z1.shape or len(v) != len(z0):
        raise ValueError("before, after and vectors need one row per jump (before and "
                         "after of one shape)")
    main = np.linalg.svd(v, full_matrices=False)[2][0]
    sign = np.sign(v @ main)
    sign[sign == 0] = 1.0
    d = z1 - z0
    length = np.linalg.norm(d, axis=1, keepdims=True)
    mean = (sign[:, None] * d / np.where(length > 0, length, 1.0)).mean(axis=0)
    mid = 0.5 * (z0 + z1)
    if len(mid) > 1:          # the jumps lie on the surface: damp the directions they span
        dev = mid - mid.mean(axis=0)
        cov = dev.T @ dev / len(mid)
        ridge = _PLANE_RIDGE * float(np.trace(cov)) / cov.shape[0] + 1e-12
        mean = np.linalg.solve(cov + ridge * np.eye(len(cov)), mean)
    size = float(np.linalg.norm(mean))
    if size <= 1e-12:
        return np.zeros(z0.shape[1]), 0.0
    normal = mean / size
    return normal, float(np.median(mid @ normal))


@dataclass(frozen=True)
class PlaneCrossingTest:
    """Held-out counts of paths against one fitted surface (see :func:`plane_crossing_test`)."""

    paths_crossing: int         # paths that cross the surface
    paths_jumping: int          # of them, with a jump like the surface's
    paths_other: int            # paths that do not cross it
    jumps_other: int            # of them, with such a jump
    odds_ratio: float
    p_value: float              # one-sided Fisher exact test, crossing > not crossing


def plane_crossing_test(points, matched, normal, offset: float) -> PlaneCrossingTest:
    """Do the paths that cross a surface jump (like it) more often than those that do
    not? A one-sided Fisher exact test on the 2×2 table (crosses, does not) × (has a
    matching jump, has none); exact under the null that crossing the surface does not
    change the chance of such a jump. The surface must come from other paths.

    Parameters
    ----------
    points : array-like of shape (n_paths, m, k)
        Each path's points in the prior (prior units).
    matched : array-like of shape (n_paths,), bool
        Whether the path has a jump that matches the surface's jumps.
    normal : array-like of shape (k,)
        The surface's normal (:func:`fit_jump_plane`).
    offset : float
        Its offset.

    Returns
    -------
    PlaneCrossingTest

    Examples
    --------
    >>> t = np.linspace(-1, 1, 5)[:, None]
    >>> paths = np.stack([np.hstack([t, 0 * t]), np.hstack([t + 3, 0 * t]),
    ...                   np.hstack([-t, t]), np.hstack([t - 3, t])])
    >>> r = plane_crossing_test(paths, [True, False, True, False], [1.0, 0.0], 0.0)
    >>> r.paths_crossing, r.paths_jumping, r.paths_other, r.jumps_other
    (2, 2, 2, 0)
    >>> round(r.p_value, 4)                                # 1 / C(4, 2)
    0.1667
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 3 or p.shape[1] < 2:
        raise ValueError(f"points must have shape (n_paths, m >= 2, k), got {p.shape}")
    m = np.asarray(matched, dtype=bool).ravel()
    if m.shape != (len(p),):
        raise ValueError("matched needs one entry per path")
    n = np.asarray(normal, dtype=np.float64).ravel()
    if n.shape != (p.shape[2],) or not np.isfinite(n).all():
        raise ValueError(f"normal must be {p.shape[2]} finite numbers")
    offset = validate_float(offset, "offset")
    side = np.sign(p @ n - offset)
    cross = (np.diff(side, axis=1) != 0).any(axis=1) if np.any(n) else np.zeros(len(p), bool)
    a, b = int((cross & m).sum()), int((cross & ~m).sum())
    c, d = int((~cross & m).sum()), int((~cross & ~m).sum())
    odds, pv = float("nan"), 1.0
    if a:
        res = stats.fisher_exact([[a, b], [c, d]], alternative="greater")
        odds, pv = float(res.statistic), float(res.pvalue)
    return PlaneCrossingTest(paths_crossing=a + b, paths_jumping=a, paths_other=c + d,
                             jumps_other=c, odds_ratio=odds, p_value=pv)
