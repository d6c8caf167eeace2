"""Prior holes of a generator: which generations fall outside the real data's support, which
regions of the prior they come from, and whether a region decodes unrealistically more often
than the rest of the prior.

* :func:`neighbour_realism`: the realism score of Kynkäänniemi et al. (2019) over a set of
  candidate real points: ``max_j radius_j / distance_j``. A generation is inside the real
  support when its score is above 1 (it lies strictly inside some real point's k-NN ball,
  the rule of ``prdc``'s precision).
* :func:`prior_regions`: unrealistic generations that are neighbours in the prior form one
  region (connected components of the prior's k-NN graph restricted to them).
* :func:`assign_regions`: which region a new prior point falls in (a k-NN vote among the
  labelled prior points).
* :func:`rate_excess_test`: is the unrealistic rate inside a region above the rate outside
  it (Fisher's exact test, one-sided).
* :func:`prior_plane`: a 2-D view of the prior for the report's map.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from ._neighbors import knn
from ._regions import gap_regions
from ._validation import validate_int, validate_labels, validate_matrix

_TREE_MAX_DIM = 8       # prior searches in at most this many dimensions use a k-d tree


def _prior_knn(x: np.ndarray, k: int, y: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` nearest points of ``y`` (``None``: of ``x`` itself, each point
    excluded) for every row of ``x``, exact: a k-d tree in low dimensions (a prior is often
    2–8-D, where it is far faster than blocked products), else :func:`knn`."""
    if x.shape[1] > _TREE_MAX_DIM:
        return knn(x, k=k, y=y)[1]
    from scipy.spatial import cKDTree
    tree = cKDTree(x if y is None else y)
    if y is not None:
        return tree.query(x, k=k)[1].reshape(len(x), k)
    idx = tree.query(x, k=k + 1)[1].reshape(len(x), k + 1)
    own = idx == np.arange(len(x))[:, None]
    # drop each point itself (or, among exact duplicates, the last candidate)
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(len(x)), drop] = False
    return idx[keep].reshape(len(x), k)


__all__ = [
    "assign_regions",
    "neighbour_realism",
    "prior_plane",
    "prior_regions",
    "rate_excess_test",
]


def neighbour_realism(distances, radii) -> np.ndarray:
    """Realism of each generation from its candidate real points.

    ``realism_i = max_j radii[i, j] / distances[i, j]``: how far inside the widest real
    k-NN ball around it a generation lies (Kynkäänniemi et al. 2019, without their pruning
    of the widest balls). A score above 1 means the generation lies strictly inside some
    real point's ball (``distance < radius``, the rule of ``prdc``'s precision), so with
    every real point as a candidate, ``realism > 1`` is exactly the per-generation precision
    indicator. At distance 0 the score is ``inf`` when the radius is positive and 0 when it
    is 0 (an exact copy of a real point whose ball is empty is not inside it).

    Parameters
    ----------
    distances : array-like of shape (n, m)
        Distance from each generation to ``m`` candidate real points (e.g. its ``m``
        nearest), ``>= 0``.
    radii : array-like of shape (n, m)
        Those real points' k-NN radii (distance to their k-th nearest other real point).

    Returns
    -------
    realism : ndarray of shape (n,), float64, in [0, inf]

    References
    ----------
    .. [1] T. Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing
       Generative Models", NeurIPS 2019 (realism score, section 5).

    Examples
    --------
    >>> neighbour_realism([[0.5, 2.0], [3.0, 4.0], [0.0, 1.0]],
    ...                   [[1.0, 1.0], [1.0, 2.0], [1.0, 1.0]]).tolist()
    [2.0, 0.5, inf]
    """
    d = validate_matrix(distances, "distances")
    r = validate_matrix(radii, "radii")
    if d.shape != r.shape:
        raise ValueError(f"distances {d.shape} and radii {r.shape} must have one shape")
    if (d < 0).any() or (r < 0).any():
        raise ValueError("distances and radii must be >= 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(d > 0, r / np.where(d > 0, d, 1.0), np.where(r > 0, np.inf, 0.0))
    return ratio.max(axis=1)


def prior_regions(z, flags, *, k: int = 10, graph=None) -> np.ndarray:
    """Regions of flagged points in the prior: two flagged points are in one region when
    one is among the other's ``k`` nearest prior points (all points, flagged or not).

    A flagged point whose neighbours are all unflagged is a region of its own, so
    scattered flags make many one-point regions and a region is a connected patch of the
    prior where flags cluster.

    Parameters
    ----------
    z : array-like of shape (n, d)
        Prior coordinates (scaled so that the dimensions are comparable).
    flags : array-like of bool, shape (n,)
        Which points are flagged (e.g. unrealistic).
    k : int, default=10
        Neighbours per point in the prior's graph, ``1 <= k < n``.
    graph : array-like of int, shape (n, >= k), default=None
        The prior's k-NN indices when already computed (self excluded); ``None``
        searches exactly (a k-d tree up to 8 dimensions).

    Returns
    -------
    labels : ndarray of int64, shape (n,)
        Region of each flagged point (0, 1, ... by decreasing size, ties by first point),
        -1 for unflagged points.

    Examples
    --------
    >>> z = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [9.0]])
    >>> prior_regions(z, [True, True, False, True, False, True], k=1).tolist()
    [0, 0, -1, 1, -1, 2]
    """
    z = validate_matrix(z, "z")
    f = validate_labels(flags, "flags", len(z)).astype(bool)
    k = validate_int(k, "k", low=1, high=max(1, len(z) - 1))
    if graph is None:
        if len(z) < 2:
            return np.where(f, 0, -1).astype(np.int64)
        graph = _prior_knn(z, k)
    graph = np.asarray(graph)[:, :k]
    lab = gap_regions(f, graph)
    return _by_size(lab)


def _by_size(lab: np.ndarray) -> np.ndarray:
    """Relabel regions 0, 1, ... by decreasing size (ties: the earlier first point)."""
    out = np.full(len(lab), -1, dtype=np.int64)
    ids, first, size = np.unique(lab[lab >= 0], return_index=True, return_counts=True)
    if ids.size == 0:
        return out
    order = np.lexsort((first, -size))
    new = np.empty(ids.size, dtype=np.int64)
    new[order] = np.arange(ids.size)
    out[lab >= 0] = new[np.searchsorted(ids, lab[lab >= 0])]
    return out


def assign_regions(points, z, labels, *, k: int = 5) -> np.ndarray:
    """The region each of ``points`` falls in: the most common label among its ``k``
    nearest labelled prior points ``z`` (-1, "no region", is a label too; ties go to -1,
    then to the lower region).

    Parameters
    ----------
    points : array-like of shape (m, d)
        New prior points (scaled like ``z``).
    z : array-like of shape (n, d)
        Labelled prior points.
    labels : array-like of int, shape (n,)
        Their regions, -1 for none.
    k : int, default=5
        Voters per point, ``1 <= k <= n`` (odd avoids most ties).

    Returns
    -------
    labels : ndarray of int64, shape (m,)

    Examples
    --------
    >>> z = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> assign_regions([[0.05], [5.05], [2.0]], z, [-1, -1, -1, 0, 0, 0], k=3).tolist()
    [-1, 0, -1]
    """
    points = validate_matrix(points, "points")
    z = validate_matrix(z, "z")
    lab = validate_labels(labels, "labels", len(z)).astype(np.int64)
    if points.shape[1] != z.shape[1]:
        raise ValueError(f"points have {points.shape[1]} dimensions, z has {z.shape[1]}")
    k = validate_int(k, "k", low=1, high=len(z))
    if (lab >= 0).sum() == 0 or len(points) == 0:
        return np.full(len(points), -1, dtype=np.int64)
    idx = _prior_knn(points, k, y=z)
    votes = lab[idx] + 1                                   # 0 = no region
    counts = np.zeros((len(points), int(lab.max()) + 2), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(len(points)), k), votes.ravel()), 1)
    return counts.argmax(axis=1).astype(np.int64) - 1     # argmax: first of the ties


def rate_excess_test(inside, flags) -> dict[str, float]:
    """Is the flagged rate among ``inside`` points above the rate among the others?

    Fisher's exact test on the 2×2 table (inside / outside × flagged / not), one-sided
    (``greater``): the exact comparison of two binomial rates, conditional on the margins.

    Parameters
    ----------
    inside : array-like of bool, shape (n,)
        Which points lie in the region.
    flags : array-like of bool, shape (n,)
        Which points are flagged (e.g. unrealistic).

    Returns
    -------
    dict
        ``n_in``, ``flagged_in``, ``rate_in``, ``n_out``, ``flagged_out``, ``rate_out``,
        ``ratio`` (``rate_in`` over the outside rate with half a count added to each side
        of it, finite even when nothing outside is flagged) and ``p_value`` (1 when the
        region is empty).

    Examples
    --------
    >>> r = rate_excess_test([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0, 0, 1])
    >>> r["rate_in"], round(r["rate_out"], 3), round(r["p_value"], 3)
    (0.75, 0.167, 0.119)
    """
    inside = validate_labels(inside, "inside").astype(bool)
    f = validate_labels(flags, "flags", len(inside)).astype(bool)
    a, n_in = int((inside & f).sum()), int(inside.sum())
    c, n_out = int((~inside & f).sum()), int((~inside).sum())
    rate_in = a / n_in if n_in else float("nan")
    rate_out = c / n_out if n_out else float("nan")
    smoothed = (c + 0.5) / (n_out + 1.0)
    p = 1.0 if n_in == 0 else float(stats.fisher_exact(
        [[a, n_in - a], [c, n_out - c]], alternative="greater")[1])
    return {"n_in": n_in, "flagged_in": a, "rate_in": rate_in, "n_out": n_out,
            "flagged_out": c, "rate_out": rate_out,
            "ratio": rate_in / smoothed if n_in else float("nan"), "p_value": min(p, 1.0)}


def prior_plane(z, centres=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A plane of the prior to draw it in: ``(origin, basis, axis names)``, a point ``p``
    drawn at ``(p - origin) @ basis.T``.

    In one or two dimensions the prior's own coordinates (``z0``, ``z1``). Above, a plane
    through the mean of ``z`` spanned by the directions towards the first two ``centres``
    (e.g. hole centres, so that they separate from the bulk), completed with the principal
    directions of ``z`` (orthonormal throughout).

    Parameters
    ----------
    z : array-like of shape (n, d)
        Prior points.
    centres : array-like of shape (m, d), default=None
        Points the plane should pass through, most important first.

    Returns
    -------
    origin : ndarray of shape (d,)
    basis : ndarray of shape (2, d)
        Rows orthonormal (the second row is 0 when ``d == 1``).
    axes : list of str

    Examples
    --------
    >>> o, b, a = prior_plane(np.zeros((4, 2)))
    >>> b.tolist(), a
    ([[1.0, 0.0], [0.0, 1.0]], ['z0', 'z1'])
    >>> rng = np.random.default_rng(0)
    >>> o, b, a = prior_plane(rng.standard_normal((500, 3)), [[0.0, 0.0, 3.0]])
    >>> np.round(np.abs(b[0]), 1).tolist(), a[0]
    ([0.0, 0.0, 1.0], 'towards hole 1')
    """
    z = validate_matrix(z, "z")
    d = z.shape[1]
    if d <= 2:
        basis = np.eye(2, d) if d == 2 else np.array([[1.0], [0.0]])
        return np.zeros(d), basis, ["z0", "z1" if d == 2 else ""]
    origin = z.mean(axis=0)
    dirs: list[np.ndarray] = []
    axes: list[str] = []

    def add(v: np.ndarray, name: str) -> None:
        for u in dirs:
            v = v - (v @ u) * u
        norm = float(np.linalg.norm(v))
        if norm > 1e-9 and len(dirs) < 2:
            dirs.append(v / norm)
            axes.append(name)
    if centres is not None:
        c = validate_matrix(centres, "centres", min_rows=0)
        if c.size and c.shape[1] != d:
            raise ValueError(f"centres have {c.shape[1]} dimensions, z has {d}")
        for h, row in enumerate(c[:2]):
            add(row - origin, f"towards hole {h + 1}")
    if len(dirs) < 2:
        _, _, vt = np.linalg.svd(z - origin, full_matrices=False)
        for j, v in enumerate(vt):
            add(v, f"principal direction {j + 1}")
    return origin, np.array(dirs), axes
