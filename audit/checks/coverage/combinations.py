"""Attribute combinations the data lacks: for every pair of the configured attributes and
protected columns, each cell's count against the count expected from the data's own totals
per value and an association taken from the reference (or none).

The columns are binned once (:func:`audit.columns.group_column`, the data's edges applied
to the reference); the expected table and the one-sided Poisson test of each cell live in
:mod:`audit.metrics._contingency`.
"""
from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from ...columns import MISSING, group_column, range_labels, sorted_levels
from ...context import Context
from ...findings import Finding
from ...metrics import benjamini_hochberg
from ...metrics._contingency import cell_deficit_pvalues, expected_counts
from .settings import Settings

__all__ = ["bin_columns", "combination_tests", "combination_part"]

NAME = "coverage"
MAX_TABLE_VALUES = 30     # columns with more distinct values are left out of the cross-table
_BY_VALUE = np.empty(0)   # as edges: group a column by its values, never into bins

Labels = dict[str, tuple[pd.Series, "pd.Series | None", list[str]]]


def bin_columns(data: pd.DataFrame, reference: pd.DataFrame | None, columns: list[str],
                bins: int) -> Labels:
    """Each column as string labels for data and reference, with its values in order.

    Numeric columns (:func:`audit.columns.is_numeric`) become ``bins`` quantile bins of
    the data, labelled as ranges and applied to the reference with the same edges (every
    bin listed, in order); other columns are grouped by value
    (:func:`audit.columns.level_name`), the levels of both sets in
    :func:`audit.columns.sorted_levels` order. Missing values are ``"<missing>"``.
    """
    out = {}
    for col in columns:
        d = data[col].reset_index(drop=True)
        r = reference[col].reset_index(drop=True) if (reference is not None and
                                                       col in reference.columns) else None
        dg = group_column(d, bins=bins)
        dl = pd.Series(dg.names(), dtype=object)
        if dg.numeric:
            rl = (pd.Series(group_column(r, edges=dg.edges).names(), dtype=object)
                  if r is not None and pd.api.types.is_numeric_dtype(r) else None)
            out[col] = (dl, rl, range_labels(dg.edges))
            continue
        rl = (pd.Series(group_column(r, edges=_BY_VALUE).names(), dtype=object)
              if r is not None else None)
        order = sorted_levels(list(dl) + (list(rl) if rl is not None else []))
        out[col] = (dl, rl, order)
    return out


def combination_tests(labels: Labels, *, mode: str, max_ratio: float,
                      min_reference: int = 5) -> list[dict[str, Any]]:
    """Observed vs expected counts of every cell of every pair of columns, with p-values.

    The expected table has the data's own row and column totals; its association comes
    from the reference (``mode="reference"``: the reference's cross-table fitted to the
    data's totals) or is none (``mode="independence"``); see
    :func:`audit.metrics._contingency.expected_counts`. A value the data lacks altogether
    is therefore no combination finding (it is a group finding, with a reference). Each
    cell is tested with a one-sided Poisson test of the observed count against
    ``max_ratio`` × expected. Cells involving ``"<missing>"``, and in reference mode cells
    the reference holds fewer than ``min_reference`` points of, are not tested (p = NaN).
    """
    out = []
    for a, b in combinations(list(labels), 2):
        da, ra, va = labels[a]
        db, rb, vb = labels[b]
        obs = pd.crosstab(da, db).reindex(index=va, columns=vb, fill_value=0).to_numpy()
        ref = None
        if mode == "reference":
            ref = pd.crosstab(ra, rb).reindex(index=va, columns=vb, fill_value=0).to_numpy()
            expected = expected_counts(obs, reference=ref)
            testable = ref >= min_reference
        else:
            expected = expected_counts(obs)
            testable = None
        pv = cell_deficit_pvalues(obs, expected, max_ratio=max_ratio, testable=testable)
        missing = np.array([[x == MISSING or y == MISSING for y in vb] for x in va])
        pv = np.where(missing, np.nan, pv)
        out.append({"a": a, "b": b, "rows": va, "cols": vb, "observed": obs,
                    "expected": expected, "reference": ref, "p": pv})
    return out


def combination_part(ctx: Context, s: Settings, cols: list[str], metrics: dict[str, float],
                     findings: list[Finding], tables: dict[str, Any],
                     display: list[dict[str, Any]]) -> None:
    """The combination table of the columns ``cols``: fills ``metrics``, ``findings``,
    ``tables`` and ``display`` in place."""
    ref = ctx.reference
    mode = s.combinations
    if mode == "auto":
        mode = "reference" if ref is not None and all(
            c in ref.metadata.columns for c in cols) else "independence"
    if mode == "reference" and ref is None:
        raise ValueError("combinations: 'reference' needs a reference (reference: in "
                         "the config), or use 'independence'")
    if mode == "reference":
        cols = [c for c in cols if c in ref.metadata.columns]
    labels = bin_columns(ctx.data.metadata, ref.metadata if mode == "reference" else None,
                         cols, s.bins)
    skipped = [c for c, (_, _, v) in labels.items() if len(v) > MAX_TABLE_VALUES]
    labels = {c: v for c, v in labels.items() if c not in skipped}
    if len(labels) < 2:
        tables["combinations"] = {"mode": mode, "pairs": [], "skipped": skipped}
        return
    m_ref = ref.n if mode == "reference" else None
    pairs = combination_tests(labels, mode=mode, max_ratio=s.max_ratio)
    allp = np.concatenate([pr["p"].ravel() for pr in pairs])
    _, q = benjamini_hochberg(allp, alpha=s.alpha)
    pos = 0
    cells = []
    for j, pr in enumerate(pairs):
        size = pr["p"].size
        pr["q"] = q[pos:pos + size].reshape(pr["p"].shape)
        pos += size
        for (r, c) in zip(*np.nonzero(pr["q"] <= s.alpha)):
            cells.append((float(pr["q"][r, c]), j, int(r), int(c)))
    cells.sort()
    ids = ctx.data.ids
    for rank, (qv, j, r, c) in enumerate(cells[: s.max_findings]):
        pr = pairs[j]
        a, b, va, vb = pr["a"], pr["b"], pr["rows"][r], pr["cols"][c]
        o, e = int(pr["observed"][r, c]), float(pr["expected"][r, c])
        da, db = labels[a][0], labels[b][0]
        if o > 0:
            ev = ids[((da == va) & (db == vb)).to_numpy()][:50]
        elif mode == "reference":
            ra, rb = labels[a][1], labels[b][1]
            ev = ref.ids[((ra == va) & (rb == vb)).to_numpy()][:50]
        else:
            ev = np.array([], dtype=str)
        why = (f"given how often the data has {a}={va} and {b}={vb} separately, the "
               f"reference's mix of the two ({int(pr['reference'][r, c])} of its {m_ref} "
               f"points are in this cell) predicts {e:.0f}" if mode == "reference" else
               f"independence of {a} and {b} predicts {e:.0f} from how often each "
               "value occurs on its own")
        title = (f"No samples with {a}={va} and {b}={vb}" if o == 0 else
                 f"{a}={va} with {b}={vb} is rare: {o} samples, {e:.0f} expected")
        severity = ("critical" if mode == "reference" and o == 0
                    and e >= s.critical_expected else "warning")
        findings.append(Finding(
            id=f"coverage-combination-{rank + 1}", check=NAME, severity=severity,
            title=title,
            summary=(f"The data has {o} samples with {a}={va} and {b}={vb}; {why}. "
                     f"Flagged when significantly below {s.max_ratio:g}× that "
                     "(one-sided Poisson test, BH over every cell of every pair)."),
            metric="coverage.combination_ratio", value=o / e if e > 0 else None,
            threshold=s.max_ratio, p_value=qv,
            subjects={"columns": [a, b], "values": [va, vb], "observed": o,
                      "expected": e, "mode": mode},
            evidence_ids=tuple(str(i) for i in ev)))
    tested = int(np.isfinite(allp).sum())
    metrics["coverage.combinations_tested"] = float(tested)
    metrics["coverage.combinations_missing"] = float(len(cells))
    order = sorted(range(len(pairs)), key=lambda j: (
        -int((pairs[j]["q"] <= s.alpha).sum()), float(np.nanmin(pairs[j]["q"]))
        if np.isfinite(pairs[j]["q"]).any() else 1.0))
    tables["combinations"] = {
        "mode": mode, "max_ratio": s.max_ratio, "skipped": skipped,
        "pairs": [{"a": pairs[j]["a"], "b": pairs[j]["b"], "rows": pairs[j]["rows"],
                   "cols": pairs[j]["cols"],
                   "observed": pairs[j]["observed"].tolist(),
                   "expected": np.round(pairs[j]["expected"], 3).tolist(),
                   "q": [[None if not np.isfinite(v) else float(v) for v in row]
                         for row in pairs[j]["q"]],
                   "flagged": (pairs[j]["q"] <= s.alpha).tolist()} for j in order]}
    display.append({"kind": "coverage_combinations", "wide": True})
