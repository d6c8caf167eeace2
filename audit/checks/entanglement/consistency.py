"""Latent arithmetic consistency: whether an attribute's direction depends on a group.

Editing an attribute with one vector only acts alike everywhere when the directions fitted
inside each group of another attribute agree. The statistics are
``metrics._direction_consistency`` (cosines and a permutation test); here the
groups are formed and the results become findings and the ``consistency`` table.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...columns import quantile_codes, range_labels
from ...context import Context
from ...findings import Finding
from ...formatting import format_p
from ...metrics import benjamini_hochberg
from ...metrics._direction_consistency import direction_consistency
from ._format import matrix, opt_float
from ._sampling import _seed
from .settings import Settings

__all__ = ["consistency_results", "consistency_tests"]


def consistency_tests(ctx: Context, joint: dict, notes: list[str], s: Settings
                      ) -> dict[str, Any]:
    """For every encoded attribute A and every other attribute B of the joint analysis:
    A's directions fitted inside each group of B (its levels, or ``consistency_bins``
    quantile bins with ``columns.quantile_codes``, as the factor bins), the other attributes held fixed,
    compared by cosine against shuffled groups. Pairs without two groups of
    ``min_group_size`` rows are noted as not tested."""
    attrs, rows = joint["attrs"], joint["rows"]
    X = ctx.standardized[rows]
    seed = _seed(ctx, "consistency")
    tests, skipped = [], []
    for i, a in enumerate(attrs):
        if not joint["encoded"][i]:
            skipped.append(f"{a.name}: not encoded, so it has no direction to compare")
            continue
        for j, b in enumerate(attrs):
            if i == j:
                continue
            if b.categorical:
                groups = b.values[rows]
                how = "levels"
                name_of = str
            else:
                groups, edges = quantile_codes(b.values[rows], s.consistency_bins)
                how = f"{len(edges) - 1} quantile bins"
                name_of = (lambda c, labels=range_labels(edges): labels[int(c)])
            others = [k for k in range(len(attrs)) if k not in (i, j)]
            res = direction_consistency(
                X, a.values[rows], groups, categorical=a.categorical,
                covariates=[attrs[k].values[rows] for k in others],
                covariates_categorical=[attrs[k].categorical for k in others],
                min_group_size=s.min_group_size, n_permutations=s.n_permutations,
                random_state=seed)
            if not math.isfinite(res["mean_cosine"]):
                skipped.append(f"{a.name} by {b.name}: fewer than two groups with "
                               f"{s.min_group_size} rows")
                continue
            tests.append({"attribute": a.name, "by": b.name, "groups_from": how,
                          "a": a, "b": b, "res": res,
                          "labels": [name_of(g) for g in res["groups"]]})
    if skipped:
        notes.append("Consistency not tested for: " + "; ".join(skipped) + ".")
    return {"tests": tests}


def consistency_results(cons: dict, s: Settings, *, check: str
                        ) -> tuple[list[Finding], dict[str, float], dict[str, Any]]:
    """Benjamini–Hochberg over the tests; a direction is flagged when its test survives
    and the mean cosine is at most ``consistency_threshold``."""
    tests = cons["tests"]
    findings: list[Finding] = []
    if not tests:
        return findings, {}, {"tests": []}
    pv = [t["res"]["p_value"] for t in tests]
    rej, q = benjamini_hochberg(pv, alpha=s.alpha)
    rows = []
    for t, r, qq in zip(tests, rej, q):
        res = t["res"]
        flag = bool(r and res["mean_cosine"] <= s.consistency_threshold)
        rows.append({"attribute": t["attribute"], "by": t["by"],
                     "groups_from": t["groups_from"], "groups": t["labels"],
                     "sizes": res["sizes"], "mean_cosine": opt_float(res["mean_cosine"]),
                     "null_mean": opt_float(res["null_mean"]), "p_value": opt_float(res["p_value"]),
                     "p_value_count": opt_float(res["p_value_count"]), "q_value": opt_float(qq),
                     "to_pooled": [opt_float(v) for v in res["to_pooled"]],
                     "cosine": matrix(res["cosine"]), "flagged": flag,
                     "dropped_groups": [str(g) for g in res["dropped_groups"]]})
        if not flag:
            continue
        worst = int(np.nanargmin(res["to_pooled"]))
        findings.append(Finding(
            id=f"entanglement-consistency-{t['a'].key}-by-{t['b'].key}",
            check=check, severity="warning",
            title=f"The direction of {t['attribute']} depends on {t['by']} "
                  f"(mean cosine {res['mean_cosine']:.2f})",
            summary=(f"Fitted inside each group of {t['by']} ({t['groups_from']}), the "
                     f"directions of {t['attribute']} agree only at mean cosine "
                     f"{res['mean_cosine']:.2f}, where shuffled groups give "
                     f"{res['null_mean']:.2f} (permutation test, "
                     f"{format_p(qq, name='BH-adjusted p')}). "
                     f"Least like the overall direction: {t['by']} = "
                     f"{t['labels'][worst]} (cosine {res['to_pooled'][worst]:.2f}). "
                     f"Editing {t['attribute']} with one vector will not act alike "
                     f"across {t['by']}."),
            metric="entanglement.direction_consistency", value=opt_float(res["mean_cosine"]),
            threshold=s.consistency_threshold, p_value=opt_float(qq),
            subjects={"attributes": [t["attribute"], t["by"]],
                      "attribute": t["attribute"], "by": t["by"]}))
    metrics = {"entanglement.min_direction_consistency":
               float(min(t["res"]["mean_cosine"] for t in tests))}
    return findings, metrics, {"tests": rows}
