"""Metadata columns: one rule for what is numeric, one way to bin it, one label format.

Every chart and table that groups a metadata column goes through here, so an attribute
gets the same bins and the same labels everywhere: a numeric column (numeric dtype, not
bool, more than :data:`NUMERIC_MIN_LEVELS` distinct values) is cut at quantiles of the
audited data into right-closed bins (the first includes its low edge; values beyond the
ends go to the end bins), labelled as people write ranges (``0–0.25``, ``18–33``,
``-1.5 to 0``). Any other column is categorical: its values as strings (:func:`level_name`), sorted
numerically when every level reads as a number. Missing values (:func:`is_missing`) form
their own group, :data:`MISSING`, listed last. :func:`group_column` does all of this for
one column; checks and charts call it rather than binning on their own.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd

# one definition, kept with the metrics (which import nothing of ours)
from .metrics._validation import MISSING_GROUP as MISSING
from .metrics._validation import is_missing

__all__ = ["NUMERIC_MIN_LEVELS", "MISSING", "Groups", "nested_rows", "is_numeric",
           "is_missing", "level_name", "sorted_levels", "slug", "quantile_edges",
           "range_labels", "bin_values", "group_column", "quantile_codes"]

NUMERIC_MIN_LEVELS = 10      # more distinct values than this: numeric, binned


def level_name(value: Any) -> str:
    """How one categorical level is written: integer-valued floats without ``.0``; a real
    value that reads like :data:`MISSING` is quoted so the two never merge.

    >>> [level_name(v) for v in (3.0, np.int64(2), 2.5, "a", "<missing>")]
    ['3', '2', '2.5', 'a', "'<missing>'"]
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    s = str(value)
    return f"'{s}'" if s == MISSING else s


def sorted_levels(levels: Iterable[str]) -> list[str]:
    """Levels in display order: numerically when all read as numbers, else as text;
    :data:`MISSING` last.

    >>> sorted_levels(["10", "9", MISSING, "2"]), sorted_levels(["b", MISSING, "a"])
    (['2', '9', '10', '<missing>'], ['a', 'b', '<missing>'])
    """
    levels = list(dict.fromkeys(levels))
    present = [v for v in levels if v != MISSING]
    try:
        present.sort(key=float)
    except (TypeError, ValueError):
        present.sort()
    return present + ([MISSING] if MISSING in levels else [])


def slug(text: Any) -> str:
    """A string safe in metric names, ids and file names (letters, digits, ``_``, ``-``).

    >>> slug("age group / 2024"), slug("%%")
    ('age_group_2024', 'x')
    """
    return re.sub(r"[^A-Za-z0-9_\-]+", "_", str(text)).strip("_") or "x"


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


@dataclass(frozen=True)
class Groups:
    """One metadata column as groups: a label per row (``None`` where missing), the groups
    in display order (:data:`MISSING` last when any is missing) and, for a binned numeric
    column, the quantile edges (reuse them to group a reference the same way)."""
    labels: np.ndarray
    order: list[str]
    edges: np.ndarray | None

    @property
    def numeric(self) -> bool:
        return self.edges is not None

    def names(self) -> np.ndarray:
        """Labels with missing rows named :data:`MISSING`."""
        return np.array([MISSING if v is None else v for v in self.labels.tolist()],
                        dtype=object)


def group_column(values: pd.Series, *, bins: int = 4,
                 edges: np.ndarray | None = None) -> Groups:
    """Group every row of one column: numeric columns (:func:`is_numeric`) into ``bins``
    quantile bins labelled as ranges (or into the given ``edges``), other columns by
    :func:`level_name`.

    >>> g = group_column(pd.Series([1.0, 2.0, None, 2.0]))
    >>> g.labels.tolist(), g.order, g.numeric
    (['1', '2', None, '2'], ['1', '2', '<missing>'], False)
    """
    ser = pd.Series(values).reset_index(drop=True)
    numeric_dtype = (pd.api.types.is_numeric_dtype(ser)
                     and not pd.api.types.is_bool_dtype(ser))
    if edges is None and numeric_dtype and is_numeric(ser):
        edges = quantile_edges(ser, bins)
    missing = np.array([is_missing(v) for v in ser.astype(object).tolist()], dtype=bool)
    if edges is not None and len(edges) >= 2 and numeric_dtype:
        labels, names = bin_values(ser, edges)
        present = [nm for nm in names if np.any(labels == nm)]
        edges = np.asarray(edges, dtype=float)
    else:
        # one str() per distinct value, not per row
        codes, uniq = pd.factorize(ser.astype(object), use_na_sentinel=True)
        text = np.array([None if is_missing(v) else level_name(v) for v in uniq] + [None],
                        dtype=object)
        labels = text[codes]
        present = sorted_levels(v for v in text.tolist() if v is not None)
        present = [v for v in present if np.any(labels == v)]
        edges = None
    order = present + ([MISSING] if missing.any() else [])
    return Groups(labels=labels, order=order, edges=edges)


def quantile_codes(values, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes ``0..b-1`` of ``bins`` equal-count bins of a numeric array, and their edges
    (``b <= bins`` when values repeat): the discretisation the disentanglement scores use.

    pandas' ``qcut`` computes these edges (its quantile probabilities differ from
    :func:`quantile_edges` by an ulp at some ``bins``, which would move a value lying on an
    edge); label the bins with ``range_labels(edges)``.

    >>> codes, edges = quantile_codes(np.arange(8.0), 4)
    >>> codes.tolist(), range_labels(edges)
    ([0, 0, 1, 1, 2, 2, 3, 3], ['0–1.8', '1.8–3.5', '3.5–5.2', '5.2–7'])
    """
    codes, edges = pd.qcut(np.asarray(values), bins, labels=False, retbins=True,
                           duplicates="drop")
    return np.asarray(codes, dtype=np.int64), np.asarray(edges, dtype=float)

