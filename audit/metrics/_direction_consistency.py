"""Whether an attribute's joint direction is the same in every group of another.

Attributes follow the conventions of ``_probes``; directions are those of ``_directions``.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import stats
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ._directions import _design, _moments, _pinv
from ._probes import _CONSTRAINTS, _SINGLE_THREAD_MAX_VALUES, _check_attributes, _codes
from ._validation import validate_labels, validate_matrix

__all__ = ["direction_consistency"]

def _directions_only(C: np.ndarray, d: int, blocks: list[slice],
                     categorical: list[bool]) -> np.ndarray:
    """The first attribute's joint direction from the cross moments ``C = [Mxd; Mdd]``."""
    Mxd, Mdd = C[:d], C[d:]
    B = _pinv(Mdd) @ Mxd.T
    s = blocks[0]
    Ba = B[s]
    if not categorical[0]:
        return Ba[0] * math.sqrt(max(Mdd[s, s][0, 0], 0.0))
    w, V = np.linalg.eigh(Mdd[s, s])
    root = (V * np.sqrt(np.clip(w, 0, None))) @ V.T
    _, sv, vt = np.linalg.svd(root @ Ba, full_matrices=False)
    return sv[0] * vt[0]


# Up to this many values, per-row outer products are kept so that each relabelling costs
# one matrix product instead of a pass per group.
_OUTER_MAX_VALUES = 1 << 22


class _GroupMoments:
    """Centred cross moments ``[X D]ᵀ D / n_g`` per group, for many relabellings."""

    def __init__(self, Z: np.ndarray, d: int) -> None:
        self.Z, self.D = Z, Z[:, d:]
        n, q = Z.shape
        p = self.D.shape[1]
        self.outer = ((Z[:, :, None] * self.D[:, None, :]).reshape(n, q * p)
                      if n * q * p <= _OUTER_MAX_VALUES else None)

    def __call__(self, labels: np.ndarray, k: int) -> list[np.ndarray]:
        Z, D = self.Z, self.D
        q, p = Z.shape[1], D.shape[1]
        if self.outer is None:
            out = []
            for g in range(k):
                zg = Z[labels == g]
                zg = zg - zg.mean(axis=0)
                out.append(zg.T @ zg[:, q - p:] / zg.shape[0])
            return out
        H = np.zeros((k, Z.shape[0]))
        H[labels, np.arange(Z.shape[0])] = 1.0
        size = H.sum(axis=1)
        mean = (H @ Z) / size[:, None]                       # (k, q)
        raw = (H @ self.outer).reshape(k, q, p) / size[:, None, None]
        return list(raw - mean[:, :, None] * mean[:, None, q - p:])


def _mean_pairwise_cosine(dirs: np.ndarray, unsigned: bool) -> tuple[float, np.ndarray]:
    norms = np.linalg.norm(dirs, axis=1)
    norms = np.where(norms > 0, norms, np.nan)
    cos = (dirs @ dirs.T) / norms[:, None] / norms[None, :]
    if unsigned:
        cos = np.abs(cos)
    iu = np.triu_indices(dirs.shape[0], 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (float(np.nanmean(cos[iu])) if iu[0].size else float("nan")), cos


def _fisher(x: np.ndarray | float) -> np.ndarray:
    return np.arctanh(np.clip(x, -1 + 1e-9, 1 - 1e-9))


def direction_consistency(X, attribute, groups, *, categorical: bool = False,
                          covariates=None, covariates_categorical=None,
                          min_group_size: int = 30, n_permutations: int = 100,
                          random_state=None) -> dict[str, Any]:
    """Is an attribute's direction the same inside every group of another attribute?

    The latents, the attribute and the covariates are first centred within each group
    (removing the grouping attribute's own effect); then inside each group the attribute's
    joint direction is estimated (controlling for the covariates, as in
    :func:`joint_directions`), and the statistic is the mean cosine between the group-wise
    directions over all pairs of groups (absolute cosines for a categorical attribute,
    whose axis has no sign). Low means the model's notion of the attribute depends on the
    group ("latent arithmetic" would not transfer).

    The test of "same direction in every group" shuffles the group labels (after the
    centring) and recomputes the statistic. A count-based p-value cannot go below
    ``1 / (n_permutations + 1)``, too coarse for a Benjamini–Hochberg correction over many
    pairs, so ``p_value`` is the lower tail of a normal fitted to the shuffled statistics on
    the Fisher scale (``atanh``, where a mean of cosines near 1 is close to symmetric);
    the count-based ``p_value_count`` is returned beside it.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Latent vectors, finite.
    attribute : array-like of shape (n_samples,)
        The attribute whose direction is compared, without missing values.
    groups : array-like of shape (n_samples,)
        Group labels (e.g. another categorical attribute, or bins of a numeric one).
    categorical : bool, default=False
        Whether ``attribute`` is categorical.
    covariates : sequence of array-like of shape (n_samples,) or None, default=None
        Further attributes to hold fixed.
    covariates_categorical : sequence of bool or None, default=None
        Which covariates are categorical (None: all numeric).
    min_group_size : int, default=30
        Groups with fewer rows are left out (listed in ``dropped_groups``), >= 2.
    n_permutations : int, default=100
        Shuffles for the p-values, >= 0 (0: ``nan``).
    random_state : int, RandomState instance or None, default=None
        Seeds the permutations.

    Returns
    -------
    result : dict
        ``mean_cosine`` : float, the statistic (``nan`` with fewer than two groups);
        ``cosine`` : ndarray (n_groups, n_groups); ``to_pooled`` : ndarray (n_groups,),
        each group's direction against the one fitted on all rows; ``groups`` and ``sizes``
        of the groups kept; ``dropped_groups``; ``p_value`` (normal approximation, see
        above); ``p_value_count``; ``null_mean``: the mean shuffled statistic (what
        sampling noise alone gives).

    See Also
    --------
    joint_directions

    Examples
    --------
    Group 0 encodes ``a`` on the first axis, group 1 on the second:

    >>> rng = np.random.default_rng(0)
    >>> g = rng.integers(0, 2, 600)
    >>> a = rng.normal(size=600)
    >>> X = np.column_stack([np.where(g == 0, a, 0), np.where(g == 1, a, 0)])
    >>> X = X + 0.1 * rng.normal(size=(600, 2))
    >>> res = direction_consistency(X, a, g, n_permutations=50, random_state=0)
    >>> round(res["mean_cosine"], 2), round(res["null_mean"], 2), res["p_value"] < 0.01
    (0.0, 0.99, True)
    >>> res["groups"], res["sizes"]
    ([0, 1], [278, 322])
    """
    X = validate_matrix(X, "X", min_rows=3)
    n, d = X.shape
    covariates = [] if covariates is None else list(covariates)
    cov_cat = ([False] * len(covariates) if covariates_categorical is None
               else [bool(c) for c in covariates_categorical])
    if len(cov_cat) != len(covariates):
        raise ValueError(f"covariates_categorical has {len(cov_cat)} entries for "
                         f"{len(covariates)} covariates")
    groups = validate_labels(groups, "groups", n)
    min_group_size = _CONSTRAINTS["min_group_size"](min_group_size)
    n_permutations = _CONSTRAINTS["n_permutations"](n_permutations)
    rng = check_random_state(random_state)
    gcodes, glevels = _codes(groups.astype(object) if groups.dtype.kind not in "iub"
                             else groups)
    sizes = np.bincount(gcodes, minlength=len(glevels))
    kept = np.flatnonzero(sizes >= min_group_size)
    dropped = [glevels[k] for k in np.flatnonzero(sizes < min_group_size)]
    rows = np.isin(gcodes, kept)
    attrs, cats = _check_attributes([np.asarray(attribute)[rows],
                                     *[np.asarray(c)[rows] for c in covariates]],
                                    [categorical, *cov_cat], int(rows.sum()))
    remap = np.full(len(glevels), -1)
    remap[kept] = np.arange(kept.size)
    labels = remap[gcodes[rows]]
    D, blocks = _design(attrs, cats)
    Z = np.hstack([X[rows], D])
    p = D.shape[1]
    pooled = _directions_only(_moments(Z)[:, d:], d, blocks, cats)
    K = kept.size
    py = lambda v: v.item() if isinstance(v, np.generic) else v  # noqa: E731
    result: dict[str, Any] = {
        "groups": [py(glevels[k]) for k in kept], "sizes": sizes[kept].tolist(),
        "dropped_groups": [py(v) for v in dropped],
        "mean_cosine": float("nan"), "cosine": np.full((K, K), np.nan),
        "to_pooled": np.full(K, np.nan), "p_value": float("nan"),
        "p_value_count": float("nan"), "null_mean": float("nan")}
    if K < 2:
        return result
    for g in range(K):                                       # remove the groups' own effect
        sel = labels == g
        Z[sel] -= Z[sel].mean(axis=0)
    moments = _GroupMoments(Z, d)

    def statistic(lab: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        dirs = np.stack([_directions_only(C, d, blocks, cats) for C in moments(lab, K)])
        stat, cos = _mean_pairwise_cosine(dirs, cats[0])
        return stat, cos, dirs
    limit = 1 if Z.size * max(p, 1) <= _SINGLE_THREAD_MAX_VALUES else None
    with threadpool_limits(limits=limit):
        stat, cos, dirs = statistic(labels)
        norms = np.linalg.norm(dirs, axis=1) * np.linalg.norm(pooled)
        with np.errstate(divide="ignore", invalid="ignore"):
            to_pooled = (dirs @ pooled) / np.where(norms > 0, norms, np.nan)
        if cats[0]:
            to_pooled = np.abs(to_pooled)
        result.update(mean_cosine=stat, cosine=cos, to_pooled=to_pooled)
        if n_permutations > 0 and math.isfinite(stat):
            null = np.array([statistic(rng.permutation(labels))[0]
                             for _ in range(n_permutations)])
            null = null[np.isfinite(null)]
            if null.size:
                result["p_value_count"] = float((np.sum(null <= stat) + 1) / (null.size + 1))
                result["null_mean"] = float(null.mean())
                zn = _fisher(null)
                sd = zn.std(ddof=1) if null.size > 1 else 0.0
                if sd > 0:
                    result["p_value"] = float(stats.norm.cdf((_fisher(stat) - zn.mean()) / sd))
                else:
                    result["p_value"] = result["p_value_count"]
    return result
