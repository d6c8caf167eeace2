"""Question 3, density and coverage disparity: do a group's members sit more often in
low-density regions, in HDBSCAN noise, among the GLOSH outliers or (with a reference) in
reference regions the data leaves uncovered (per-group rates with Wilson intervals, the
disparity ratio lowest / highest with a Katz interval, Fisher or chi-square test)?"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...columns import Groups, group_column
from ...findings import Finding
from ...formatting import format_p
from ...metrics import rate_disparity
from ...metrics._fairness import top_fraction
from ...metrics._slices import rate_ratio_interval
from ..coverage import reference_uncovered
from .state import BiasRun, Grouping, Test, num, pct

__all__ = ["check_disparity"]

_FLAG_SHORT = {"low_density": "in low-density regions", "noise": "in HDBSCAN noise",
               "outlier": "among the outliers", "uncovered": "among uncovered reference points"}


def _flags(run: BiasRun) -> dict[str, tuple[str, np.ndarray]]:
    """The adverse flags of the data points (computed once per run): name -> (what, mask)."""
    if "flags" in run.cache:
        return run.cache["flags"]
    disparity = run.settings.disparity
    ctx = run.ctx
    dist, _ = ctx.knn
    low_share, out_share = 1 - disparity.low_density_quantile, 1 - disparity.outlier_quantile
    flags = {
        "low_density": (f"in low-density regions (top {low_share:.0%} of mean kNN distance)",
                        top_fraction(dist.mean(axis=1), low_share,
                                     random_state=ctx.rng("bias.disparity.low_density_ties"))),
        "noise": ("in no HDBSCAN cluster (noise)", ctx.clusters.labels < 0),
        "outlier": (f"among the outliers (top {out_share:.0%} of GLOSH)",
                    top_fraction(ctx.clusters.outlier_scores, out_share,
                                 random_state=ctx.rng("bias.disparity.outlier_ties"))),
    }
    run.cache["flags"] = flags
    return flags


def _uncovered(run: BiasRun) -> np.ndarray | None:
    """Reference points whose k-NN ball holds no data point (computed once per run)."""
    if "uncovered" not in run.cache:
        ref = run.ctx.reference
        k = run.settings.disparity.coverage_k
        # one pass over the shared kNN graphs (exact; see coverage.reference_uncovered)
        run.cache["uncovered"] = (None if ref is None or ref.n < k + 2 else
                                  reference_uncovered(run.ctx, k)[0])
    return run.cache["uncovered"]


def check_disparity(run: BiasRun, grouping: Grouping, metrics: dict[str, float]
                   ) -> dict[str, Any] | None:
    """One rate test per flag that is neither empty nor universal; None when none is."""
    disparity = run.settings.disparity
    ctx = run.ctx
    col = grouping.column
    out: dict[str, Any] = {}
    for flag, (desc, mask) in _flags(run).items():
        if not mask.any() or mask.all():
            continue
        out[flag] = _rate_test(run, grouping, flag, desc, mask, grouping.groups,
                               ctx.data.ids, metrics, "points")
    ref = ctx.reference
    if ref is not None and col in ref.metadata.columns:
        unc = _uncovered(run)
        if unc is not None and unc.any():
            # the reference grouped with the data's bins, so a bin means the same range
            ref_groups = group_column(ref.metadata[col], bins=run.settings.numeric_bins,
                                      edges=grouping.groups.edges)
            out["uncovered"] = _rate_test(
                run, grouping, "uncovered",
                f"left uncovered by the data (reference points whose {disparity.coverage_k}-NN "
                "ball holds no data point)", unc, ref_groups, ref.ids, metrics,
                "reference points")
    return out or None


def _rate_test(run: BiasRun, grouping: Grouping, flag: str, desc: str, mask: np.ndarray,
               groups_of: Groups, ids: np.ndarray, metrics: dict[str, float], unit: str
               ) -> dict[str, Any]:
    """Rates of one flag per group (``groups_of``: the data's or the reference's groups)."""
    disparity = run.settings.disparity
    col, key = grouping.column, grouping.key
    res = rate_disparity(mask, groups_of.labels, min_group_size=run.settings.min_group_size)
    groups = [{"group": g, "n": r["n"], "flagged": r["flagged"], "rate": r["rate"],
               "ci": r["ci"], "tested": r["tested"]} for g, r in res["groups"].items()]
    ratio = res["ratio"]
    row = {"label": desc, "unit": unit, "groups": groups, "ratio": ratio,
           "p": res["p_value"], "test": res["test"], "lowest": res["lowest"],
           "highest": res["highest"], "overall": float(mask.mean())}
    metrics[f"bias.{key}.{flag}_ratio"] = float(ratio)
    if not math.isfinite(res["p_value"]):
        return row
    hi_g, lo_g = res["highest"], res["lowest"]
    rh, rl = res["groups"][hi_g], res["groups"][lo_g]
    ci = rate_ratio_interval(rl["flagged"], rl["n"], rh["flagged"], rh["n"])
    row["ratio_ci"] = ci
    names = groups_of.names()

    def make(sev: str, q: float | None) -> Finding:
        ev = np.flatnonzero(mask & (names == hi_g))[:disparity.max_evidence]
        where = _FLAG_SHORT.get(flag, flag)
        title = (f"{col}={hi_g}: {pct(rh['rate'])} {where} vs {pct(rl['rate'])} for "
                 f"{col}={lo_g}" if sev != "info" else
                 f"{col}: no significant disparity {where} (ratio {num(ratio, 2)})")
        rates = "; ".join(f"{g['group']} {pct(g['rate'])} [{pct(g['ci'][0])}, "
                          f"{pct(g['ci'][1])}] of {g['n']}" for g in groups if g["tested"])
        return Finding(
            id=run.ids(col, flag), check="bias", severity=sev, title=title,
            summary=(f"Share of {unit} {desc}, per group (Wilson 95%): {rates}. "
                     f"Disparity ratio lowest / highest = {num(ratio, 3)} "
                     f"(95% interval {num(ci[0], 2)}–{num(ci[1], 2)}; the four-fifths "
                     f"rule asks for >= {disparity.four_fifths:g}); "
                     f"{'Fisher' if res['test'] == 'fisher' else 'chi-square'} test "
                     f"{format_p(res['p_value'])}, {format_p(q, name='BH-adjusted p')}."
                     + (f" Evidence: flagged {unit} of {col}={hi_g}." if sev != "info"
                        else "")),
            metric=f"bias.{key}.{flag}_ratio", value=float(ratio),
            threshold=disparity.four_fifths, p_value=q,
            ci=ci if all(math.isfinite(v) for v in ci) else None,
            subjects={"attribute": col, "group": hi_g, "kind": "disparity",
                      "flag": flag, "reference_group": lo_g,
                      "rates": {g["group"]: g["rate"] for g in groups if g["tested"]}},
            evidence_ids=tuple(str(i) for i in np.asarray(ids)[ev]) if sev != "info"
            else ())
    passes = math.isfinite(ratio) and ratio < disparity.four_fifths
    strong = math.isfinite(ratio) and ratio < disparity.strong_ratio
    run.add(Test(p=res["p_value"], passes=passes, strong=strong, make=make, always=True,
                 row=row))
    return row
