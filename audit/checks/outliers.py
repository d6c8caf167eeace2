"""``outliers``: points far from their neighbours (kNN distance) and from any cluster (GLOSH).

Every point gets a local isolation ratio: its mean distance to its k nearest neighbours
divided by the median of the same quantity among those neighbours (1 = as dense as its
surroundings). How large the ratio gets by chance depends on the number of points and the
intrinsic dimension, so the threshold is calibrated on the fly: the largest ratio seen in
Gaussian samples of the same size and intrinsic dimension, and in elliptical samples with
the data's own radial profile (a dense core in a sparse halo is one population, not a set
of outliers; the farthest 1% is left out of that profile), times ``null_margin``
(and never below ``min_threshold``). A point is flagged only when the lower end of a 99%
bootstrap interval for its ratio (resampling its neighbours) clears that threshold. The
top ``top`` points by ratio are listed as ``info`` findings for review. The statistics
live in :mod:`audit.metrics._outliers`.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from ..context import Context
from ..findings import CheckResult, Finding
from ..metrics import knn_distance_score
from ..metrics._outliers import (bootstrap_ratio_ci, isolation_ratio, null_isolation_max,
                                 radial_profile)
from .base import Check, CheckSettings, register


@register
class OutliersCheck(Check):
    """Isolated points: kNN-distance isolation ratio with a bootstrap interval, plus GLOSH."""

    name = "outliers"
    produces: ClassVar[tuple[str, ...]] = (
        "outliers.count",
        "outliers.fraction",
        "outliers.max_isolation_ratio",
        "outliers.glosh_p99",
        "outliers.threshold",
    )

    class Settings(CheckSettings):
        null_margin: float = Field(1.5, ge=1, description=(
            "threshold = this × the largest ratio in same-size Gaussian null samples"))
        min_threshold: float = Field(3.0, gt=1, description="the threshold never goes lower")
        top: int = Field(10, ge=0, le=1000, description="points listed for review")
        n_boot: int = Field(500, ge=50, le=10000, description=(
            "bootstrap resamples of each point's neighbours for the interval of its ratio"))

    def run(self, ctx: Context) -> CheckResult:
        dist, nb = ctx.knn
        scores = knn_distance_score(dist)
        ratio = isolation_ratio(scores, nb)
        glosh = ctx.clusters.outlier_scores
        null_max = null_isolation_max(ctx.n, ctx.intrinsic_dim, dist.shape[1],
                                      random_state=ctx.rng("outliers.null"),
                                      radii=radial_profile(ctx.space))
        threshold = max(self.settings.min_threshold, self.settings.null_margin * null_max)
        candidates = np.flatnonzero(ratio > threshold)
        ci = bootstrap_ratio_ci(scores, nb, candidates, random_state=ctx.rng("outliers.bootstrap"),
                                n_boot=self.settings.n_boot)
        flagged = candidates[ci[:, 0] > threshold] if candidates.size \
            else candidates
        ci_of = {int(r): (float(lo), float(hi)) for r, (lo, hi) in zip(candidates, ci)}
        ids = ctx.data.ids
        n = ctx.n
        findings = []
        for rank, i in enumerate(flagged[np.argsort(-ratio[flagged])][:100]):
            findings.append(Finding(
                id=f"outliers-{rank + 1}", check="outliers", severity="warning",
                title=f"Isolated point {ids[i]}",
                summary=(f"Its neighbours are {ratio[i]:.1f}× farther away than theirs are "
                         f"(99% interval {ci_of[int(i)][0]:.1f}–{ci_of[int(i)][1]:.1f}); "
                         f"GLOSH {glosh[i]:.2f}. Check the input for corruption or an "
                         "encoding failure."),
                metric="outliers.isolation_ratio", value=float(ratio[i]),
                threshold=threshold, ci=ci_of[int(i)],
                subjects={"index": int(i)}, evidence_ids=(str(ids[i]),)))
        flagged_set = set(flagged.tolist())
        review = [i for i in np.argsort(-ratio) if int(i) not in flagged_set][:self.settings.top]
        for rank, i in enumerate(review):
            findings.append(Finding(
                id=f"outliers-top-{rank + 1}", check="outliers", severity="info",
                title=f"Most isolated #{rank + 1}: {ids[i]}",
                summary=(f"Isolation ratio {ratio[i]:.2f}, GLOSH {glosh[i]:.2f}, mean kNN "
                         f"distance {scores[i]:.3g}: listed for review, not flagged."),
                metric="outliers.isolation_ratio", value=float(ratio[i]),
                threshold=threshold,
                subjects={"index": int(i)}, evidence_ids=(str(ids[i]),)))
        is_issue = np.zeros(n, dtype=bool)
        is_issue[flagged] = True
        metrics = {
            "outliers.count": float(flagged.size),
            "outliers.fraction": flagged.size / n,
            "outliers.max_isolation_ratio": float(ratio.max()),
            "outliers.glosh_p99": float(np.quantile(glosh, 0.99)),
            "outliers.threshold": threshold,
        }
        return CheckResult(
            check=self.name, status="ok", metrics=metrics, findings=tuple(findings),
            per_sample={"outliers_score": 1.0 / ratio.clip(min=1.0),
                        "is_outliers_issue": is_issue, "knn_distance": scores,
                        "isolation_ratio": ratio, "glosh": glosh},
            display=({"kind": "outlier_hist"},),
            tables={"null_max_ratio": null_max, "threshold": threshold,
                    "ratio_quantiles": {str(q): float(np.quantile(ratio, q))
                                        for q in (0.5, 0.9, 0.99, 0.999, 1.0)}})
