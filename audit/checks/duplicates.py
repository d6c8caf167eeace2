"""``duplicates``: near-duplicate points within the data and across data and reference.

A point is a near-duplicate when its nearest neighbour is closer than ``rel_threshold``
times the typical nearest-neighbour distance around it (the median over its k
neighbours), or at distance 0. Under a smooth density of intrinsic dimension m, that
happens by chance with probability 1 - 2^(-c^m) per point; the check reports the observed
count against that expectation (Poisson test), so continuous data without copies flags
nothing while copied rows (or leakage between splits) are found. The statistics live in
:mod:`audit.metrics._duplicates`.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from ..context import Context
from ..findings import CheckResult, Finding
from ..formatting import format_p
from ..metrics import benjamini_hochberg, poisson_excess_pvalue, wilson_interval
from ..metrics._duplicates import (local_spacing, near_duplicate_chance_rate,
                                   near_duplicate_mask)
from ..metrics._stats import poisson_critical_count
from .base import Check, CheckSettings, register


def _count_text(count: int, n: int) -> str:
    return f"{count} of {n} points ({count / n:.2%})"


@register
class DuplicatesCheck(Check):
    """Near-duplicates within the data, and data points that (nearly) copy reference points."""

    name = "duplicates"
    produces: ClassVar[tuple[str, ...]] = (
        "duplicates.within_fraction",
        "duplicates.within_pairs",
        "duplicates.exact_fraction",
        "duplicates.expected_by_chance",
        "duplicates.cross_fraction",
    )

    class Settings(CheckSettings):
        rel_threshold: float = Field(0.02, gt=0, lt=1, description=(
            "near-duplicate when closer than this share of the local nearest-neighbour "
            "distance"))
        alpha: float = Field(0.01, gt=0, lt=1, description="significance after BH over the "
                                                            "within and cross tests")
        max_evidence: int = Field(200, ge=1, description="pairs listed as evidence per "
                                                          "finding")

    def run(self, ctx: Context) -> CheckResult:
        s = self.settings
        dist, nb = ctx.knn
        ids = ctx.data.ids
        n = ctx.n
        m = ctx.intrinsic_dim
        rate = near_duplicate_chance_rate(s.rel_threshold, m)
        local = local_spacing(dist[:, 0], nb)
        within = near_duplicate_mask(dist[:, 0], local, s.rel_threshold)
        exact = dist[:, 0] <= 0
        pairs = sorted({tuple(sorted((int(i), int(nb[i, 0])))) for i in np.flatnonzero(within)})
        tests = [("within", int(within.sum()), n * rate)]
        cross = None
        if ctx.reference is not None:
            cdist, cidx = ctx.cross_knn
            rdist, _ = ctx.reference_knn
            rlocal = local_spacing(rdist[:, 0], cidx)
            cross = near_duplicate_mask(cdist[:, 0], rlocal, s.rel_threshold)
            tests.append(("cross", int(cross.sum()), n * rate))
        pvals = [float(poisson_excess_pvalue(o, e)) if o > 0 else 1.0 for _, o, e in tests]
        rejected, qvals = benjamini_hochberg(pvals, alpha=s.alpha)
        metrics = {"duplicates.within_fraction": within.mean(),
                   "duplicates.within_pairs": float(len(pairs)),
                   "duplicates.exact_fraction": exact.mean(),
                   "duplicates.expected_by_chance": n * rate}
        # the decision threshold, as a count: significant on its own at alpha / tests
        # (then BH rejects it whatever the other test gives)
        crit = poisson_critical_count(n * rate, s.alpha / len(tests))
        findings = []
        if rejected[0]:
            ev = [str(ids[i]) for p in pairs[: s.max_evidence // 2] for i in p]
            findings.append(Finding(
                id="duplicates-within", check="duplicates", severity="warning",
                title=f"{int(within.sum())} near-duplicate points in the data "
                      f"({len(pairs)} pairs)",
                summary=(f"{_count_text(int(within.sum()), n)} have a neighbour closer than "
                         f"{s.rel_threshold:g}× the local spacing ({int(exact.sum())} exact "
                         f"copies); chance predicts {n * rate:.2g} points "
                         f"({100 * rate:.2g}%), and {crit} or more is flagged "
                         f"({format_p(float(qvals[0]), name='BH-adjusted p')}). Duplicates "
                         "inflate cluster sizes and leak between splits."),
                metric="duplicates.within_fraction", value=float(within.mean()),
                threshold=crit / n, p_value=float(qvals[0]),
                ci=wilson_interval(int(within.sum()), n),
                subjects={"pairs": [[str(ids[a]), str(ids[b])] for a, b in pairs[:20]],
                          "distance_factor": s.rel_threshold, "expected_count": n * rate,
                          "critical_count": crit},
                evidence_ids=tuple(ev)))
        per_sample = {"is_duplicates_issue": within,
                      "duplicates_score": np.clip(dist[:, 0] / np.maximum(local, 1e-12), 0, 1)}
        tables = {"rel_threshold": s.rel_threshold, "pairs": [[str(ids[a]), str(ids[b]), float(dist[a, 0] if nb[a, 0] == b
                                                              else dist[b, 0])]
                            for a, b in pairs[:500]]}
        if cross is not None:
            cdist, cidx = ctx.cross_knn
            ref_ids = ctx.reference.ids
            metrics["duplicates.cross_fraction"] = cross.mean()
            per_sample["is_duplicates_issue"] = within | cross
            rows = np.flatnonzero(cross)
            tables["cross_pairs"] = [[str(ids[i]), str(ref_ids[cidx[i, 0]]),
                                      float(cdist[i, 0])] for i in rows[:500]]
            if rejected[1]:
                ev = [x for i in rows[: s.max_evidence // 2]
                      for x in (str(ids[i]), str(ref_ids[cidx[i, 0]]))]
                findings.append(Finding(
                    id="duplicates-cross", check="duplicates", severity="warning",
                    title=f"{rows.size} data points (nearly) copy reference points",
                    summary=(f"{_count_text(rows.size, n)} of the data sit within "
                             f"{s.rel_threshold:g}× the local spacing of a reference point "
                             f"({int((cdist[:, 0] <= 0).sum())} exact); chance predicts "
                             f"{n * rate:.2g} points ({100 * rate:.2g}%), and {crit} or more is "
                             f"flagged ({format_p(float(qvals[1]), name='BH-adjusted p')}). "
                             "If the reference is a held-out split, this is leakage between "
                             "splits."),
                    metric="duplicates.cross_fraction", value=float(cross.mean()),
                    threshold=crit / n, p_value=float(qvals[1]),
                    ci=wilson_interval(rows.size, n),
                    subjects={"pairs": tables["cross_pairs"][:20],
                              "distance_factor": s.rel_threshold,
                              "expected_count": n * rate, "critical_count": crit},
                    evidence_ids=tuple(ev)))
        return CheckResult(check=self.name, status="ok", metrics=metrics,
                           findings=tuple(findings), per_sample=per_sample, tables=tables)
