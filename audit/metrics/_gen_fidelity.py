"""Fidelity and diversity of generations against real data: the prdc indicators per point,
their intervals, the precision a perfect generator would get, and the realism score of
each generation.

* :func:`prdc_indicators`: precision, recall, density and coverage exactly as
  :func:`~audit.metrics.coverage` (and ``prdc.compute_prdc``) compute them, with the
  per-point indicators they average (which generation lies in a real ball, which real ball
  holds a generation, ...).
* :func:`prdc_intervals`: intervals of the four numbers, each given the other set.
* :func:`null_precision`: the precision of a generator that samples the real distribution
  itself, estimated leave-one-out from the real data's k-NN graph.
* :func:`realism_score`: Kynkäänniemi et al.'s realism of each generation.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._coverage import (_band_factor, _check_k, _check_pair, _cross_indicators, _direct_sq,
                        _expanded_sq, _knn_radii_sq, _sq_norms)
from ._neighbors import knn
from ._validation import validate_float, validate_int

__all__ = ["prdc_indicators", "prdc_intervals", "null_precision", "realism_score"]

#: temporary memory (bytes) one block of a distance matrix may take
_BLOCK_BYTES = 64 * 2**20
#: nearest kept real points whose ratios settle most generations' realism
_REALISM_NEIGHBOURS = 32


def _block_rows(n_cols: int, block_size: int | None) -> int:
    if block_size is not None:
        return validate_int(block_size, "block_size", low=1)
    return int(max(16, min(4096, _BLOCK_BYTES // (24 * max(1, n_cols)))))


def prdc_indicators(real, fake, *, k: int = 5, block_size: int | None = None
                    ) -> dict[str, Any]:
    """Precision, recall, density and coverage of ``fake`` against ``real``, with the
    per-point indicators behind them.

    The numbers are those of :func:`~audit.metrics.coverage` (``prdc.compute_prdc`` with
    ``nearest_k=k``): a ball reaches to its centre's k-th nearest neighbour in its own set
    (the centre being the 0th), and a point is inside only when strictly closer.

    Parameters
    ----------
    real : array-like of shape (n_real, n_features)
        Real points; finite values only.
    fake : array-like of shape (n_fake, n_features)
        Generated points.
    k : int, default=5
        Neighbour rank of the radii, in ``[1, min(n_real, n_fake) - 1]``.
    block_size : int, default=None
        Rows of a distance matrix held at once (``None``: about 64 MiB); the result does
        not depend on it.

    Returns
    -------
    out : dict
        ``precision``, ``recall``, ``density``, ``coverage`` (floats), ``k``, and arrays:
        ``real_radii`` (n_real,), ``fake_radii`` (n_fake,), ``precise`` (n_fake,) bool:
        the generation lies in some real ball; ``balls`` (n_fake,) int: in how many;
        ``recalled`` (n_real,) bool: the real point lies in some generation's ball;
        ``covered`` (n_real,) bool: the real point's ball holds a generation.

    Examples
    --------
    >>> out = prdc_indicators([[0.0], [1.0], [2.0], [3.0]], [[0.5], [10.0]], k=1)
    >>> out["precision"], out["coverage"], out["covered"].tolist()
    (0.5, 0.5, [True, True, False, False])
    """
    real, fake = _check_pair(real, fake)
    k = _check_k(k, {"real": real.shape[0], "fake": fake.shape[0]})
    block = _block_rows(max(real.shape[0], fake.shape[0]), block_size)
    r_real = np.sqrt(_knn_radii_sq(real, k, block))
    r_fake = np.sqrt(_knn_radii_sq(fake, k, block))
    covered, recalled, precise, balls = _cross_indicators(real, fake, r_real, r_fake, block)
    return {"precision": float(precise.mean()), "recall": float(recalled.mean()),
            "density": float(balls.mean() / k), "coverage": float(covered.mean()),
            "k": k, "real_radii": r_real, "fake_radii": r_fake, "precise": precise,
            "balls": balls, "recalled": recalled, "covered": covered}


def prdc_intervals(indicators: dict[str, Any], *, confidence: float = 0.95
                   ) -> dict[str, tuple[float, float]]:
    """Intervals of the four numbers, each given the other set.

    Given the real points (their balls fixed), the generations are independent draws, so
    precision (the share of generations in some real ball) gets a Wilson interval and
    density (the mean count of real balls per generation, over ``k``) a normal interval
    over the generations. Given the generations, the real points are independent draws:
    recall and coverage (shares of real points) get Wilson intervals. A bootstrap that
    resamples the set of balls is not used: dropping a third of the balls shrinks their
    union, so it biases precision and coverage downward.

    Parameters
    ----------
    indicators : dict
        :func:`prdc_indicators`'s output (``precise``, ``balls``, ``recalled``,
        ``covered``, and the radii, whose lengths give the set sizes).
    confidence : float, default=0.95

    Returns
    -------
    ci : dict
        ``{"precision": (lo, hi), "recall": ..., "density": ..., "coverage": ...}``.

    Examples
    --------
    >>> out = prdc_indicators([[0.0], [1.0], [2.0], [3.0]], [[0.5], [10.0]], k=1)
    >>> ci = prdc_intervals(out)
    >>> [round(v, 3) for v in ci["precision"]]
    [0.095, 0.905]
    """
    from scipy import stats

    from ._stats import wilson_interval
    confidence = validate_float(confidence, "confidence", low=0, high=1, low_open=True,
                                high_open=True)
    precise = np.asarray(indicators["precise"], dtype=bool)
    recalled = np.asarray(indicators["recalled"], dtype=bool)
    covered = np.asarray(indicators["covered"], dtype=bool)
    balls = np.asarray(indicators["balls"], dtype=np.float64)
    k = float(indicators["k"])
    g, n = precise.size, recalled.size
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    dens = balls / k
    half = z * float(dens.std(ddof=1)) / np.sqrt(g) if g > 1 else float("nan")
    return {"precision": wilson_interval(int(precise.sum()), g, confidence=confidence),
            "recall": wilson_interval(int(recalled.sum()), n, confidence=confidence),
            "density": (max(0.0, float(dens.mean()) - half), float(dens.mean()) + half),
            "coverage": wilson_interval(int(covered.sum()), n, confidence=confidence)}


def null_precision(indices, k: int, *, balls=None) -> float:
    """The precision a generator that samples the real distribution itself would get,
    estimated leave-one-out from the real points' k-NN graph.

    Take one real point out and treat it as a generation: it lies strictly inside the
    ball of another real point ``i`` (whose radius, without it, reaches to ``i``'s
    (k+1)-th other point when it was among ``i``'s ``k`` nearest) exactly when it is
    among ``i``'s ``k`` nearest other points (barring ties). So the leave-one-out
    precision is the share of points that appear in some other point's first ``k``
    neighbours (in-degree at least 1). It is below 1 where points have no "incoming"
    neighbours (isolated points, and the anti-hubs of high-dimensional data). The same
    count gives density 1, its known value for identical distributions.

    Parameters
    ----------
    indices : array-like of int, shape (n, m)
        A self-excluding k-NN graph (row ``i`` lists ``i``'s nearest other points, nearest
        first), ``m >= k``.
    k : int
        Neighbour rank of the precision's balls, ``1 <= k <= m``.
    balls : array-like of bool, shape (n,), default=None
        Only these points' balls count (e.g. the realism score's kept half: then ``1 -``
        the result is the share of a real sample with realism below 1); ``None``: all.

    Returns
    -------
    precision : float

    Examples
    --------
    >>> g = np.array([[1, 2], [0, 2], [1, 0], [2, 1]])     # nobody lists point 3
    >>> null_precision(g, 1), null_precision(g, 2)
    (0.75, 0.75)
    >>> null_precision(g, 1, balls=[True, False, False, False])    # only 0's ball: 1
    0.25
    """
    g = np.asarray(indices)
    if g.ndim != 2 or g.shape[0] < 2 or g.dtype.kind not in "iu":
        raise ValueError(f"indices must be an integer (n, m) graph, got shape {g.shape}")
    k = validate_int(k, "k", low=1, high=g.shape[1])
    if balls is not None:
        balls = np.asarray(balls)
        if balls.shape != (g.shape[0],) or balls.dtype != bool:
            raise ValueError(f"balls must be a boolean mask of the {g.shape[0]} points")
        g = g[balls]
    cols = g[:, :k].ravel()
    if cols.size and (cols.min() < 0 or cols.max() >= len(indices)):
        raise ValueError("indices must index the graph's own rows")
    return float((np.bincount(cols, minlength=len(indices)) > 0).mean())


def realism_score(real, fake, *, k: int = 5, radii=None,
                  block_size: int | None = None) -> np.ndarray:
    """Realism of each generation (Kynkäänniemi et al., 2019, eq. 3):

    ``R(g) = max_i r_i / ||g - x_i||`` over the real points ``x_i`` whose k-NN radius
    ``r_i`` is at most the median radius (the half of the balls with the largest radii is
    discarded, so that outliers' wide balls do not make everything look real).
    ``R(g) >= 1`` exactly when ``g`` lies in (or on) one of the kept balls; it grows as
    ``g`` nears a real point with a wide ball and falls towards 0 far from the data.

    Distances are Euclidean, as in the paper's formula (the authors' code compares
    squared distances and so reports ``R**2``; ``R < 1`` selects the same generations).
    A generation at a kept real point gets ``inf``; a kept ball of radius 0 (a point with
    ``k`` or more exact copies) contributes 0.

    Parameters
    ----------
    real : array-like of shape (n_real, n_features)
    fake : array-like of shape (n_fake, n_features)
    k : int, default=5
        Neighbour rank of the radii (the point itself is the 0th), ``1 <= k < n_real``.
    radii : array-like of shape (n_real,), default=None
        The real points' k-NN radii when already computed (e.g.
        ``prdc_indicators(...)["real_radii"]``); ``None`` computes them.
    block_size : int, default=None
        Generations per block (``None``: about 64 MiB of temporaries).

    Returns
    -------
    realism : ndarray of float64, shape (n_fake,)

    References
    ----------
    .. [1] T. Kynkäänniemi, T. Karras, S. Laine, J. Lehtinen and T. Aila, "Improved
       Precision and Recall Metric for Assessing Generative Models", NeurIPS 2019.

    Examples
    --------
    >>> real = [[0.0], [1.0], [2.0], [10.0]]
    >>> realism_score(real, [[0.5], [4.0]], k=1).tolist()    # kept balls: r = 1 at 0, 1, 2
    [2.0, 0.5]
    """
    real, fake = _check_pair(real, fake)
    k = _check_k(k, {"real": real.shape[0]})
    if radii is None:
        radii = np.sqrt(_knn_radii_sq(real, k, _block_rows(real.shape[0], None)))
    else:
        radii = np.asarray(radii, dtype=np.float64)
        if radii.shape != (real.shape[0],) or not np.all(np.isfinite(radii)) \
                or np.any(radii < 0):
            raise ValueError(f"radii must be {real.shape[0]} finite values >= 0")
    keep = radii <= np.median(radii)
    x, r = real[keep], radii[keep]
    out = np.zeros(fake.shape[0])
    if r.max() == 0:                # every kept ball is empty: nothing is realistic
        return out
    # Most generations find their best ratio among their nearest kept points: a point
    # beyond the K-th nearest (at distance >= d_K) has a ratio of at most r_max / d_K. The
    # K nearest are found by the tiled search and their distances recomputed in float64;
    # the rows the bound does not settle are searched exhaustively.
    kk = int(min(_REALISM_NEIGHBOURS, len(x)))
    centre = x.mean(axis=0)
    xc, fc = x - centre, fake - centre
    _, idx = knn(fc, y=xc, k=kk)
    diff = fake[:, None, :] - x[idx]
    dist = np.sqrt(np.einsum("gkd,gkd->gk", diff, diff))
    del diff
    # the search ranks float32 coordinates: an unlisted point may be nearer than the K-th
    # listed one by at most twice the rounding of a distance (generously bounded)
    slack = 16.0 * 2.0 ** -24 * max(np.abs(xc).max(), np.abs(fc).max()) * np.sqrt(x.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(r[idx] == 0, 0.0, r[idx] / dist)
        best = ratio.max(axis=1)
        settled = (best >= r.max() / np.maximum(dist[:, -1] - slack, 0.0)) | (kk == len(x))
    out[:] = best
    rest = np.flatnonzero(~settled)
    if rest.size:
        out[rest] = _realism_exhaustive(x, r, fake[rest], real.shape[1], block_size)
    return out


def _realism_exhaustive(x: np.ndarray, r: np.ndarray, fake: np.ndarray, n_features: int,
                        block_size: int | None) -> np.ndarray:
    """``max_i r_i / ||g - x_i||`` over every kept point ``x_i``, exactly: the blocked
    expansion bounds every ratio, and the pairs that can be a row's maximum are
    recomputed from the differences."""
    centre = x.mean(axis=0)
    xc, fc = x - centre, fake - centre
    x_sq, f_sq = _sq_norms(xc), _sq_norms(fc)
    factor = _band_factor(n_features)
    block = _block_rows(2 * x.shape[0], block_size)     # four matrices of a block
    out = np.zeros(fake.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, fake.shape[0], block):
            stop = min(fake.shape[0], start + block)
            d2 = _expanded_sq(fc[start:stop], f_sq[start:stop], xc, x_sq)
            band = factor * (f_sq[start:stop, None] + x_sq[None, :])
            # bounds of each ratio from the expansion's error; the pairs whose upper bound
            # reaches the row's best lower bound are recomputed exactly (and only they)
            upper = r[None, :] / np.sqrt(np.maximum(d2 - band, 0.0))
            lower = r[None, :] / np.sqrt(d2 + band)
            best = lower.max(axis=1)
            ci, cj = np.nonzero(upper >= best[:, None])
            exact = r[cj] / np.sqrt(_direct_sq(fake, x, start + ci, cj))
            exact[r[cj] == 0] = 0.0                     # an empty ball, even on the point
            res = np.zeros(stop - start)
            np.maximum.at(res, ci, exact)
            out[start:stop] = res
    return out
