"""Question 2, representation: is every group spread over the HDBSCAN clusters as its overall
share predicts (chi-square and bias-corrected Cramér's V per column, exact binomial test
per cluster x group cell)?"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...findings import Finding
from ...formatting import format_p
from ...metrics import representation_test, wilson_interval
from ...metrics._slices import chi2_permutation_pvalue
from .state import BiasRun, Grouping, Test

__all__ = ["check_representation"]


def check_representation(run: BiasRun, grouping: Grouping, metrics: dict[str, float]
                        ) -> dict[str, Any] | None:
    """One test of the whole table and one per cell; None with fewer than two clusters."""
    representation = run.settings.representation
    ctx = run.ctx
    col, key = grouping.column, grouping.key
    labels, names, in_tested = grouping.labels, grouping.names, grouping.in_tested
    cl = ctx.clusters.labels
    sel = in_tested & (cl >= 0)
    if np.unique(cl[sel]).size < 2:
        return None
    ids = ctx.data.ids
    rep = representation_test(cl[sel], labels[sel])
    p = rep["p_value"]
    method = "chi2"
    if not rep["chi2_reliable"]:
        c_codes = np.searchsorted(np.asarray(rep["clusters"]), cl[sel])
        pos = {g: j for j, g in enumerate(rep["groups"])}
        g_codes = np.array([pos[g] for g in names[sel]])
        seed = int(ctx.rng("bias.representation.permutation").integers(2 ** 31 - 1))
        p = chi2_permutation_pvalue(c_codes, g_codes,
                                    n_permutations=representation.n_permutations,
                                    random_state=seed)["p_value"]
        method = "monte-carlo"
    v = rep["cramers_v_corrected"]
    v = 0.0 if not math.isfinite(v) else v
    metrics[f"bias.{key}.cramers_v"] = float(v)
    metrics[f"bias.{key}.representation_p"] = float(p)
    clusters, groups = [int(c) for c in rep["clusters"]], list(rep["groups"])
    table = np.asarray(rep["table"])
    sizes = table.sum(axis=1)
    shares = table.sum(axis=0) / table.sum()
    out = {"clusters": clusters, "groups": groups, "table": rep["table"],
           "cells": [], "chi2": rep["chi2"], "dof": rep["dof"], "p": p,
           "p_method": method, "cramers_v": rep["cramers_v"],
           "cramers_v_corrected": rep["cramers_v_corrected"],
           "n": rep["n"], "noise_excluded": int(np.sum(in_tested & (cl < 0)))}
    summary_row: dict[str, Any] = {}

    def make_overall(sev: str, q: float | None) -> Finding:
        verb = ("groups are spread unevenly over the clusters" if sev != "info"
                else "no significant skew of the groups over the clusters")
        return Finding(
            id=run.ids(col, "representation"), check="bias", severity=sev,
            title=f"{col}: {verb} (Cramér's V {v:.2f})",
            summary=(f"Cluster × group table of {rep['n']} clustered points "
                     f"({len(clusters)} clusters, {len(groups)} groups; noise left out): "
                     f"chi-square {rep['chi2']:.1f} on {rep['dof']} df, "
                     f"{format_p(p)}" + (" (Monte Carlo: some expected counts are below 5)"
                                        if method != "chi2" else "")
                     + f", {format_p(q, name='BH-adjusted p')}; "
                     f"bias-corrected Cramér's V {v:.3f} "
                     f"(flagged from {representation.min_cramers_v:g})."),
            metric=f"bias.{key}.cramers_v", value=float(v),
            threshold=representation.min_cramers_v, p_value=q,
            subjects={"attribute": col, "kind": "representation"})
    run.add(Test(p=p, passes=v >= representation.min_cramers_v,
                 strong=v >= representation.strong_cramers_v, make=make_overall,
                 always=True, row=summary_row))
    out["overall"] = summary_row
    for cell in rep["cells"]:
        c, g = int(cell["cluster"]), cell["group"]
        i, j = clusters.index(c), groups.index(g)
        ratio = float(cell["ratio"])
        share_in = cell["observed"] / sizes[i]
        row = {"cluster": c, "group": g, "observed": cell["observed"],
               "expected": cell["expected"], "ratio": ratio, "p": cell["p_value"],
               "share": share_in, "overall_share": float(shares[j])}
        out["cells"].append(row)
        over = ratio >= 1

        def make(sev, q, c=c, g=g, ratio=ratio, share_in=share_in, j=j, i=i, cell=cell,
                 over=over):
            members = np.flatnonzero(cl == c)
            lo, hi = wilson_interval(int(cell["observed"]), int(sizes[i]))
            return Finding(
                id=run.ids(col, f"cluster{c}", g), check="bias", severity=sev,
                title=(f"{col}={g} is {'over' if over else 'under'}-represented in "
                       f"cluster {c}: {share_in:.0%} of it vs {shares[j]:.0%} overall"),
                summary=(f"Cluster {c} has {int(sizes[i])} clustered members of tested "
                         f"groups; {cell['observed']} are {col}={g} where "
                         f"{cell['expected']:.1f} are expected from the group's overall "
                         f"share ({ratio:.2f}× expected; exact binomial test, "
                         f"{format_p(q, name='BH-adjusted p')}). The interval is the "
                         "group's share of the cluster (Wilson 95%). Evidence: every member "
                         "of the cluster."),
                metric=f"bias.{key}.representation_ratio", value=ratio,
                threshold=(representation.min_ratio if over
                           else 1 / representation.min_ratio),
                p_value=q, ci=(lo, hi),
                subjects={"attribute": col, "group": g, "cluster": c,
                          "kind": "representation", "observed": int(cell["observed"]),
                          "expected": float(cell["expected"])},
                evidence_ids=tuple(ids[members]))
        passes = ratio >= representation.min_ratio or ratio <= 1 / representation.min_ratio
        strong = (ratio >= representation.strong_ratio
                  or ratio <= 1 / representation.strong_ratio)
        run.add(Test(p=cell["p_value"], passes=passes, strong=strong, make=make,
                     always=False, row=row))
    return out
