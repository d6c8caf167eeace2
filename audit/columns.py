"""Metadata columns: one rule for what is numeric, one way to bin it, one label format.

Every chart and table that groups a metadata column goes through here, so an attribute
gets the same bins and the same labels everywhere: a numeric column (numeric dtype, not
bool, more than :data:`NUMERIC_MIN_LEVELS` distinct values) is cut at quantiles of the
audited data into right-closed bins (the first includes its low edge; values beyond the
ends go to the end bins), labelled as people write ranges (``0–0.25``, ``18–33``,
``-1.5 to 0``). Any other column is categorical: its values as strings.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["NUMERIC_MIN_LEVELS", "nested_rows", "is_numeric", "quantile_edges",
           "range_labels",
           "bin_values"]

NUMERIC_MIN_LEVELS = 10      # more distinct values than this: numeric, binned


def nested_rows(values: pd.Series) -> np.ndarray:
    """Rows holding a list, array, dict or set (parquet list/struct columns): such a
    column has no scalar per row and cannot be typed, binned or coloured by."""
    if values.dtype != object:
        return np.zeros(len(values), dtype=bool)
    return values.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray))) \
        .to_numpy(dtype=bool)


def is_numeric(values: pd.Series) -> bool:
    """Whether a column is binned: numeric (not bool) with > NUMERIC_MIN_LEVELS levels."""
    return (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
            and values.nunique(dropna=True) > NUMERIC_MIN_LEVELS)


def quantile_edges(values, bins: int) -> np.ndarray:
    """Distinct quantile edges of the finite values (``bins + 1`` at most)."""
    x = np.asarray(pd.Series(values).to_numpy(dtype=float, na_value=np.nan), dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.array([])
    return np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))


def _fmt(v: float, decimals: int) -> str:
    if decimals < 0:                          # large numbers: round to tens, hundreds ...
        v = round(v, decimals)
        decimals = 0
    s = f"{v:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def range_labels(edges: np.ndarray) -> list[str]:
    """``lo–hi`` for each bin, rounded to the fewest digits that keep edges apart.

    >>> range_labels(np.array([3.09e-05, 0.247, 0.5, 0.751, 1.0]))
    ['0–0.25', '0.25–0.5', '0.5–0.75', '0.75–1']
    >>> range_labels(np.array([18.0, 33.0, 49.5, 64.0, 79.0]))
    ['18–33', '33–50', '50–64', '64–79']
    >>> range_labels(np.array([-1.52, 0.0, 1.5]))
    ['-1.5 to 0', '0 to 1.5']
    """
    edges = np.asarray(edges, dtype=float)
    if edges.size < 2:
        return []
    width = float(np.min(np.diff(edges)))
    span = float(edges[-1] - edges[0])
    scale = width if width > 0 else (span if span > 0 else max(abs(edges[0]), 1.0))
    # two significant digits of the narrowest bin, never fewer than the edges need
    decimals = int(1 - math.floor(math.log10(scale)))
    while True:
        text = [_fmt(v, decimals) for v in edges]
        if len(set(text)) == len(text) or decimals > 12:
            break
        decimals += 1
    sep = " to " if edges[0] < 0 else "–"
    return [f"{text[i]}{sep}{text[i + 1]}" for i in range(len(edges) - 1)]


def bin_values(values: pd.Series, edges: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Bin label of each value (``None`` where missing) and the labels in order."""
    names = range_labels(edges)
    x = pd.Series(values).reset_index(drop=True).to_numpy(dtype=float, na_value=np.nan)
    missing = np.isnan(x)
    idx = np.searchsorted(edges[1:-1], np.nan_to_num(x), side="left")
    labels = np.array([names[i] for i in idx], dtype=object)
    labels[missing] = None
    return labels, names
