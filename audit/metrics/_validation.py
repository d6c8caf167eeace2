"""Declared-constraint validation for the public metric functions.

Each public metric declares what its arguments must satisfy; ``validate`` checks
them once at the boundary so private helpers can trust their inputs.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["validate_matrix", "validate_int", "validate_float", "validate_labels", "is_missing",
           "MISSING_GROUP"]

#: the group of missing (None/NaN) labels, in every metric, table and chart
MISSING_GROUP = "<missing>"


def validate_matrix(x: Any, name: str, *, min_rows: int = 1, finite: bool = True,
                    dtype: type = np.float64) -> np.ndarray:
    """Return ``x`` as a 2-D float array, or raise ``ValueError`` naming ``name``."""
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric 2-D array ({exc})") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has no columns")
    if finite and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{name} contains NaN or Inf in {bad} rows")
    return arr


def validate_int(x: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``x`` as ``int`` within [low, high], or raise ``ValueError``."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {x!r}")
    x = int(x)
    if low is not None and x < low:
        raise ValueError(f"{name} must be >= {low}, got {x}")
    if high is not None and x > high:
        raise ValueError(f"{name} must be <= {high}, got {x}")
    return x


def validate_float(x: Any, name: str, *, low: float | None = None, high: float | None = None,
                   low_open: bool = False, high_open: bool = False) -> float:
    """Return ``x`` as ``float`` within its interval, or raise ``ValueError``."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not np.isfinite(x):
        raise ValueError(f"{name} must be a finite real number, got {x!r}")
    x = float(x)
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {x}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {x}")
    return x


def validate_labels(y: Any, name: str, n: int | None = None) -> np.ndarray:
    """Return ``y`` as a 1-D array of length ``n``, or raise ``ValueError``."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries, expected {n}")
    return arr


def is_missing(value: Any) -> bool:
    """Whether one label or metadata value is missing: None, NaN (float or numpy), pd.NA or
    NaT. The one definition: ``audit.columns`` re-exports it.

    >>> [is_missing(v) for v in (None, float("nan"), np.float32("nan"), pd.NA, pd.NaT, 0, "")]
    [True, True, True, True, True, False, False]
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value))
    return isinstance(value, np.datetime64) and bool(np.isnat(value))
