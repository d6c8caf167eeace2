"""Argument checks shared by the disentanglement metrics (``_disentanglement`` and
``_sap_dci``): a (codes, factors) pair, flags, factors that carry no information, and the
``nan``-with-a-warning of an undefined score."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._validation import validate_matrix

__all__: list[str] = []


def _check_bool(x: Any, name: str) -> bool:
    if not isinstance(x, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {x!r}")
    return bool(x)



def _check_pair(codes: Any, factors: Any, *, min_codes: int = 1, min_factors: int = 1,
                min_rows: int = 1, suffix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Validate a (codes, factors) pair with one row per sample."""
    c_name, f_name = f"codes{suffix}", f"factors{suffix}"
    codes = validate_matrix(codes, c_name, min_rows=min_rows)
    factors = validate_matrix(factors, f_name, min_rows=min_rows)
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(f"{c_name} has {codes.shape[0]} rows but {f_name} has "
                         f"{factors.shape[0]}; they must describe the same samples")
    if codes.shape[1] < min_codes:
        raise ValueError(f"{c_name} needs at least {min_codes} columns, got {codes.shape[1]}")
    if factors.shape[1] < min_factors:
        raise ValueError(f"{f_name} needs at least {min_factors} columns, "
                         f"got {factors.shape[1]}")
    return codes, factors



def _informative_factors(factors: np.ndarray, metric: str, where: str = "",
                         min_left: int = 1) -> np.ndarray:
    """Boolean mask of the factors that take more than one value; warn about the rest.

    No warning when fewer than ``min_left`` are left: the caller then warns that the
    metric is undefined, which says it all.
    """
    keep = np.array([np.unique(factors[:, j]).size > 1 for j in range(factors.shape[1])])
    if not keep.all() and keep.sum() >= min_left:
        dropped = np.flatnonzero(~keep).tolist()
        warnings.warn(f"{metric}: factor column(s) {dropped} take a single value{where}, so "
                      f"they carry no information; they are left out", RuntimeWarning,
                      stacklevel=3)
    return keep



def _undefined(metric: str, why: str) -> float:
    warnings.warn(f"{metric} is undefined: {why}; returning nan", RuntimeWarning,
                  stacklevel=3)
    return float("nan")
