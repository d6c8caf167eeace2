"""Two-way count tables: the counts to expect in each cell, and cells rarer than expected.

The expected table keeps the observed row and column totals. Its association comes from a
reference table (:func:`fit_margins`, iterative proportional fitting, which keeps the
reference's odds ratios) or is none (independence). A cell is rare when its count is
significantly below a share of what is expected (one-sided Poisson test).
"""
from __future__ import annotations

import numpy as np

from ._stats import poisson_deficit_pvalue
from ._validation import validate_float, validate_int

__all__ = ["fit_margins", "expected_counts", "cell_deficit_pvalues"]


def _table(x, name: str) -> np.ndarray:
    t = np.asarray(x, dtype=float)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D table, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"{name} must hold finite counts >= 0")
    return t


def fit_margins(table, rows, cols, *, iterations: int = 100) -> np.ndarray:
    """``table`` rescaled to the row totals ``rows`` and column totals ``cols``.

    Iterative proportional fitting: rows and columns are rescaled in turn until the row
    totals match (relative and absolute tolerance 1e-9) or ``iterations`` rounds have
    run. The odds ratios of ``table`` (its association) are kept. Rows or columns that
    ``table`` lacks stay 0.

    Parameters
    ----------
    table : array-like of shape (r, c)
        Counts (or weights) >= 0 whose association is kept.
    rows : array-like of shape (r,)
        Target row totals.
    cols : array-like of shape (c,)
        Target column totals.
    iterations : int, default=100
        Most rounds of fitting, ``>= 1``.

    Returns
    -------
    fitted : ndarray of shape (r, c)

    References
    ----------
    .. [1] W. E. Deming and F. F. Stephan, "On a least squares adjustment of a sampled
       frequency table when the expected marginal totals are known", Ann. Math. Statist.
       11(4), 1940.

    Examples
    --------
    >>> fit_margins(np.ones((2, 2)), np.array([3.0, 1.0]), np.array([2.0, 2.0])).tolist()
    [[1.5, 1.5], [0.5, 0.5]]
    """
    t = _table(table, "table").copy()
    rows = np.asarray(rows, dtype=float)
    cols = np.asarray(cols, dtype=float)
    if rows.shape != (t.shape[0],) or cols.shape != (t.shape[1],):
        raise ValueError(f"rows and cols must have {t.shape[0]} and {t.shape[1]} totals, "
                         f"got shapes {rows.shape} and {cols.shape}")
    iterations = validate_int(iterations, "iterations", low=1)
    for _ in range(iterations):
        rs = t.sum(axis=1)
        t *= np.divide(rows, rs, out=np.zeros_like(rs), where=rs > 0)[:, None]
        cs = t.sum(axis=0)
        t *= np.divide(cols, cs, out=np.zeros_like(cs), where=cs > 0)[None, :]
        rs = t.sum(axis=1)
        if np.allclose(rs[rs > 0], rows[rs > 0], rtol=1e-9, atol=1e-9):
            break
    return t


def expected_counts(observed, reference=None) -> np.ndarray:
    """The counts to expect in each cell of ``observed``, with its own row and column
    totals: the association of ``reference`` (:func:`fit_margins`), or none (row total
    × column total / N) without one.

    Parameters
    ----------
    observed : array-like of shape (r, c)
        Observed counts.
    reference : array-like of shape (r, c), default=None
        Counts whose association is expected.

    Returns
    -------
    expected : ndarray of shape (r, c)

    Examples
    --------
    >>> expected_counts([[4, 0], [0, 4]]).tolist()
    [[2.0, 2.0], [2.0, 2.0]]
    >>> expected_counts([[4, 0], [0, 4]], reference=[[9, 1], [1, 9]]).round(2).tolist()
    [[3.6, 0.4], [0.4, 3.6]]
    """
    obs = _table(observed, "observed")
    rsum, csum = obs.sum(axis=1), obs.sum(axis=0)
    if reference is None:
        return np.outer(rsum, csum) / max(obs.sum(), 1)
    ref = _table(reference, "reference")
    if ref.shape != obs.shape:
        raise ValueError(f"reference has shape {ref.shape}, observed {obs.shape}")
    return fit_margins(ref, rsum, csum)


def cell_deficit_pvalues(observed, expected, *, max_ratio: float,
                         testable=None) -> np.ndarray:
    """P-value of each cell's count being below ``max_ratio`` × its expected count.

    One-sided Poisson test: ``P(X <= observed)`` for ``X ~ Poisson(max_ratio *
    expected)``. Cells with nothing expected, or outside ``testable``, are not tested
    (``nan``).

    Parameters
    ----------
    observed, expected : array-like of shape (r, c)
        Observed and expected counts (:func:`expected_counts`).
    max_ratio : float
        Share of the expected count tested against, in (0, 1].
    testable : array-like of bool, shape (r, c), default=None
        Cells to test (all by default).

    Returns
    -------
    p : ndarray of shape (r, c)

    Examples
    --------
    >>> cell_deficit_pvalues([[0, 10]], [[10.0, 0.0]], max_ratio=0.5).round(4).tolist()
    [[0.0067, nan]]
    """
    obs = _table(observed, "observed")
    exp = _table(expected, "expected")
    if exp.shape != obs.shape:
        raise ValueError(f"expected has shape {exp.shape}, observed {obs.shape}")
    max_ratio = validate_float(max_ratio, "max_ratio", low=0, high=1, low_open=True)
    ok = exp > 0
    if testable is not None:
        ok = ok & np.asarray(testable, dtype=bool)
    return np.where(ok, poisson_deficit_pvalue(obs, max_ratio * exp), np.nan)
