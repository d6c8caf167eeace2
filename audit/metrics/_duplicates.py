"""Near-duplicates: points whose nearest neighbour is much closer than the local spacing,
and how often that happens by chance.

The local spacing of a point is the median nearest-neighbour distance among its k
neighbours (:func:`local_spacing`). A point is a near-duplicate when its nearest neighbour
is at distance 0 or closer than ``rel_threshold`` times that spacing
(:func:`near_duplicate_mask`). Under a smooth density of intrinsic dimension ``m`` the
nearest-neighbour distance is locally that of a Poisson process, so this happens by
chance with probability ``1 - 2^(-c^m)`` per point (:func:`near_duplicate_chance_rate`).
"""
from __future__ import annotations

import math

import numpy as np

from ._validation import validate_float

__all__ = ["local_spacing", "near_duplicate_mask", "near_duplicate_chance_rate"]


def local_spacing(nn_distances, neighbours) -> np.ndarray:
    """Median nearest-neighbour distance among each row's neighbours.

    Parameters
    ----------
    nn_distances : array-like of shape (n,)
        Distance of every point of a set to its nearest neighbour in that set.
    neighbours : array-like of int, shape (m, k)
        For each of ``m`` rows (of the same set, or of another set searched in it),
        indices of its neighbours in the set.

    Returns
    -------
    spacing : ndarray of shape (m,)

    Examples
    --------
    >>> local_spacing(np.array([1.0, 2.0, 3.0]), np.array([[1, 2], [0, 2], [0, 1]]))
    array([2.5, 2. , 1.5])
    """
    nn = np.asarray(nn_distances)
    nb = np.asarray(neighbours)
    if nn.ndim != 1 or nb.ndim != 2 or nb.shape[1] < 1:
        raise ValueError(f"nn_distances must be 1-D and neighbours 2-D (m, k), got shapes "
                         f"{nn.shape} and {nb.shape}")
    if nb.size and (nb.min() < 0 or nb.max() >= nn.size):
        raise ValueError("neighbours must index into nn_distances")
    return np.median(nn[nb], axis=1)


def near_duplicate_mask(nn_distances, spacing, rel_threshold: float) -> np.ndarray:
    """True where the nearest-neighbour distance is 0 or below ``rel_threshold`` × the
    local spacing.

    Parameters
    ----------
    nn_distances : array-like of shape (n,)
        Distance of each point to its nearest neighbour.
    spacing : array-like of shape (n,)
        Local spacing of each point (:func:`local_spacing`).
    rel_threshold : float
        Share of the local spacing, in (0, 1).

    Returns
    -------
    mask : ndarray of bool, shape (n,)

    Examples
    --------
    >>> near_duplicate_mask(np.array([0.0, 0.01, 0.5]), np.ones(3), 0.02).tolist()
    [True, True, False]
    """
    nn = np.asarray(nn_distances)
    spacing = np.asarray(spacing)
    if nn.shape != spacing.shape:
        raise ValueError(f"nn_distances and spacing differ in shape: {nn.shape} and "
                         f"{spacing.shape}")
    rel_threshold = validate_float(rel_threshold, "rel_threshold", low=0, high=1,
                                   low_open=True, high_open=True)
    return (nn <= 0) | (nn < rel_threshold * spacing)


def near_duplicate_chance_rate(rel_threshold: float, intrinsic_dim: float) -> float:
    """Probability that a point is a near-duplicate by chance: that its nearest neighbour
    falls within ``rel_threshold`` of the median nearest-neighbour distance, for locally
    Poisson points in ``m`` dimensions: ``1 - 2^(-rel_threshold^m)``.

    Parameters
    ----------
    rel_threshold : float
        Share of the local spacing, in (0, 1).
    intrinsic_dim : float
        Intrinsic dimension ``m``; values below 1, and non-finite ones, count as 1.

    Returns
    -------
    rate : float

    Examples
    --------
    >>> round(near_duplicate_chance_rate(0.02, 1.0), 5)      # about 0.02 * ln 2
    0.01377
    """
    rel_threshold = validate_float(rel_threshold, "rel_threshold", low=0, high=1,
                                   low_open=True, high_open=True)
    dim = float(intrinsic_dim)
    m = max(dim if math.isfinite(dim) else 1.0, 1.0)
    return float(-np.expm1(-math.log(2) * rel_threshold ** m))
