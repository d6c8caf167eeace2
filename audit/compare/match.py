"""Matching the points of two audits by id."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["Matched", "match_ids"]


@dataclass(frozen=True, eq=False)
class Matched:
    """The points present on both sides, in the baseline's order.

    ``base_index[j]`` and ``cand_index[j]`` are the rows of matched point ``j`` (id
    ``ids[j]``) in the baseline and the candidate; ``share`` is the number matched over the
    larger side's count.
    """

    base_index: np.ndarray
    cand_index: np.ndarray
    ids: np.ndarray
    n_base: int
    n_cand: int

    @property
    def n(self) -> int:
        """Points matched."""
        return int(self.ids.size)

    @property
    def share(self) -> float:
        """Matched points over ``max(n_base, n_cand)`` (0 when both sides are empty)."""
        larger = max(self.n_base, self.n_cand)
        return self.n / larger if larger else 0.0


def _ids(ids, side: str) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise InputError(f"{side} ids must be one-dimensional, got shape {arr.shape}")
    arr = arr.astype(str)
    uniq, counts = np.unique(arr, return_counts=True)
    if uniq.size != arr.size:
        dup = uniq[counts > 1]
        raise InputError(f"{side} ids are not unique: {dup.size} repeated "
                         f"(e.g. {', '.join(repr(str(d)) for d in dup[:3])})")
    return arr


def match_ids(base_ids, cand_ids, *, min_share: float = 0.5, min_count: int = 10) -> Matched:
    """Match the points of a baseline and a candidate by id.

    Parameters
    ----------
    base_ids : array-like of shape (n_base,)
        The baseline's point ids (compared as strings; must be unique).
    cand_ids : array-like of shape (n_cand,)
        The candidate's point ids (compared as strings; must be unique).
    min_share : float, default=0.5
        Fewest matched points, as a share of the larger side, in [0, 1].
    min_count : int, default=10
        Fewest matched points.

    Returns
    -------
    Matched
        Row indices into each side of the ids present in both, in the baseline's order.

    Raises
    ------
    InputError
        When ids repeat on one side, or fewer than ``min_count`` points or less than
        ``min_share`` of the larger side match (a one-line message with both counts).

    Examples
    --------
    >>> m = match_ids(["a", "b", "c", "d"], ["d", "x", "b", "a"], min_count=2)
    >>> m.ids.tolist(), m.base_index.tolist(), m.cand_index.tolist(), m.share
    (['a', 'b', 'd'], [0, 1, 3], [3, 2, 0], 0.75)
    """
    if not 0.0 <= float(min_share) <= 1.0:
        raise ValueError(f"min_share must lie in [0, 1], got {min_share!r}")
    if int(min_count) < 0:
        raise ValueError(f"min_count must be >= 0, got {min_count!r}")
    base, cand = _ids(base_ids, "baseline"), _ids(cand_ids, "candidate")
    _, ib, ic = np.intersect1d(base, cand, assume_unique=True, return_indices=True)
    order = np.argsort(ib, kind="stable")
    ib, ic = ib[order].astype(np.int64), ic[order].astype(np.int64)
    m = Matched(base_index=ib, cand_index=ic, ids=base[ib], n_base=int(base.size),
                n_cand=int(cand.size))
    if m.n < int(min_count) or m.share < float(min_share):
        raise InputError(
            f"only {m.n} point ids match between the baseline ({m.n_base} points) and the "
            f"candidate ({m.n_cand} points): {m.share:.1%} of the larger side; need at "
            f"least {int(min_count)} points and {float(min_share):.0%}")
    return m
