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
top ``top`` points by ratio are listed as ``info`` findings for review.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from ..context import Context
from ..findings import CheckResult, Finding
from ..metrics import knn, knn_distance_score
from .base import Check, CheckSettings, register


_BOOT_VALUES = 1 << 24    # resampled neighbour values held at once by the bootstrap


def isolation_ratio(scores: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Each point's kNN distance over the median kNN distance of its neighbours."""
    local = np.median(scores[neighbours], axis=1)
    return scores / np.maximum(local, 1e-12)


def bootstrap_ratio_ci(scores: np.ndarray, neighbours: np.ndarray, rows: np.ndarray, *,
                       rng: np.random.Generator, n_boot: int = 500,
                       confidence: float = 0.99) -> np.ndarray:
    """Percentile interval of the isolation ratio, resampling each row's neighbours."""
    if rows.size == 0:
        return np.empty((0, 2))
    chunk = max(1, _BOOT_VALUES // (n_boot * neighbours.shape[1]))
    if rows.size > chunk:        # bounded memory: many candidates go in row chunks
        return np.concatenate([bootstrap_ratio_ci(scores, neighbours, rows[s:s + chunk],
                                                  rng=rng, n_boot=n_boot,
                                                  confidence=confidence)
                               for s in range(0, rows.size, chunk)])
    k = neighbours.shape[1]
    nb = scores[neighbours[rows]]                              # (r, k)
    pick = rng.integers(0, k, size=(n_boot, rows.size, k))
    boot_local = np.median(np.take_along_axis(nb[None].repeat(n_boot, 0), pick, 2), axis=2)
    ratios = scores[rows][None, :] / np.maximum(boot_local, 1e-12)
    a = (1 - confidence) / 2
    return np.stack([np.quantile(ratios, a, axis=0), np.quantile(ratios, 1 - a, axis=0)], 1)


def radial_profile(x: np.ndarray, *, trim: float = 0.01) -> np.ndarray:
    """Distances from the centre after whitening, the top ``trim`` share left out.

    The radial profile of an elliptical null: a dense core in a sparse halo keeps its
    shape, while a handful of far points (the outliers under test, at most ``trim`` of
    the set) cannot widen it."""
    c = x - np.median(x, axis=0)
    sd = c.std(axis=0)
    r = np.linalg.norm(c[:, sd > 0] / sd[sd > 0], axis=1)
    return np.sort(r)[:max(2, int(np.floor(len(r) * (1 - trim))))]


def null_isolation_max(n: int, dim: float, k: int, *, rng: np.random.Generator,
                       reps: int = 2, max_n: int = 20000,
                       radii: np.ndarray | None = None) -> float:
    """Largest isolation ratio in null samples of ``n`` points in ``dim`` dimensions.

    The null is a Gaussian and, when ``radii`` is given (see :func:`radial_profile`), also
    an elliptical sample with those radii (random directions): a heavy-tailed blob is not
    a set of outliers. The larger of the two maxima is returned. Samples above ``max_n``
    points are simulated at ``max_n`` (the maximum grows slowly with n; the margin covers
    the difference)."""
    m = int(np.clip(round(dim) if np.isfinite(dim) else 2, 1, 64))
    size = int(min(n, max_n))
    best = 0.0
    for rep in range(reps * (2 if radii is not None and radii.size > 1 else 1)):
        z = rng.standard_normal((size, m)).astype(np.float32)
        if rep >= reps:      # elliptical null: Gaussian directions, the data's radii
            z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
            z *= rng.choice(radii, size)[:, None].astype(np.float32)
        d, nb = knn(z, k=min(k, size - 1))
        best = max(best, float(isolation_ratio(d.mean(1), nb).max()))
    return best


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
        null_max = null_isolation_max(ctx.n, ctx.intrinsic_dim, dist.shape[1], rng=ctx.rng("outliers.null"),
                                      radii=radial_profile(ctx.space))
        threshold = max(self.settings.min_threshold, self.settings.null_margin * null_max)
        candidates = np.flatnonzero(ratio > threshold)
        ci = bootstrap_ratio_ci(scores, nb, candidates, rng=ctx.rng("outliers.bootstrap"),
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
