"""Coverage of a shared reference: how it changed, and where the candidate stopped covering.

When both audits had a reference (the same points, matched by id), each side's coverage is
measured as its audit measures it, in its own analysis space (the space fitted on that
side's data, applied to its reference): a reference point is *covered* when some data point
lies strictly inside its ball to its k-th nearest reference neighbour (the prdc coverage
rule, :func:`audit.metrics.uncovered_mask`). The change is paired over reference points:

* coverage per side = share covered; ``delta`` = candidate - baseline, with a paired
  bootstrap interval over reference points and McNemar's exact test (a binomial test on the
  discordant pairs) as its p-value;
* reference points covered by the baseline but not the candidate (*lost*) are joined into
  connected components of the baseline reference kNN graph (:func:`audit.metrics.gap_regions`);
  each region of at least ``min_region`` points is tested by a one-sided exact binomial
  over the *data* points inside the coverage balls of the region and its reference
  neighbours (the area): how many of them are the baseline's, against the share
  ``n_base / (n_base + n_cand)`` expected when both sides draw from one distribution;
  Benjamini-Hochberg-adjusted over the regions. Data points, not reference points, are the
  unit: one data point covers several reference points, so lost reference points come in
  patches even when nothing changed, and a binomial over them (lost against gained) flags
  such patches (it flagged regions in 30 of 30 seeds of a sparse null in testing).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .. import geometry as geo
from ..findings import Finding
from ..metrics import benjamini_hochberg, gap_regions, knn_radii, uncovered_mask
from ..metrics._coverage import _cross_indicators
from ._space import _pca, exact_neighbours

__all__ = ["COVERAGE_METRICS", "CoverageChange", "coverage_change"]

CHECK = "compare"
METRIC = "compare.coverage.lost"
#: the metrics :meth:`CoverageChange.metrics` returns
COVERAGE_METRICS = ("compare.coverage.base", "compare.coverage.cand",
                    "compare.coverage.delta", "compare.coverage.delta_low",
                    "compare.coverage.delta_high", "compare.coverage.lost",
                    "compare.coverage.gained")


@dataclass(frozen=True, eq=False)
class CoverageChange:
    """Coverage of the shared reference on each side, and what changed.

    ``base``/``cand`` the share of reference points covered; ``delta`` cand - base with its
    paired bootstrap interval ``ci`` and McNemar's exact ``p_value``; ``lost``/``gained``
    counts of reference points covered by one side only; ``n`` reference points;
    ``base_covered``/``cand_covered`` (n,) bool; ``regions`` (n,) region of each lost point
    (-1 elsewhere); ``findings`` one per region of at least ``min_region`` points.
    """

    base: float
    cand: float
    delta: float
    ci: tuple[float, float]
    p_value: float
    lost: int
    gained: int
    n: int
    k: int
    ids: np.ndarray
    base_covered: np.ndarray
    cand_covered: np.ndarray
    regions: np.ndarray
    findings: tuple[Finding, ...]

    def metrics(self) -> dict[str, float]:
        """The flat ``compare.coverage.*`` metrics."""
        return {"compare.coverage.base": self.base, "compare.coverage.cand": self.cand,
                "compare.coverage.delta": self.delta,
                "compare.coverage.delta_low": self.ci[0],
                "compare.coverage.delta_high": self.ci[1],
                "compare.coverage.lost": float(self.lost),
                "compare.coverage.gained": float(self.gained)}

    def to_json(self) -> dict:
        """``comparison.json``'s ``coverage``."""
        return {"base": self.base, "cand": self.cand, "delta": self.delta,
                "ci": [self.ci[0], self.ci[1]], "p_value": self.p_value,
                "lost": int(self.lost), "gained": int(self.gained), "n": int(self.n)}


def _spaces(data: np.ndarray, ref: np.ndarray, rng: np.random.Generator, *,
            scale: str = "none", max_dims_exact: int = 64,
            pca_variance: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
    """``data`` in its analysis space (as :func:`._space.analysis_space` builds it) and
    ``ref`` through the same scaler and projection."""
    scaler = geo.fit_scaler(data, scale)
    if data.shape[1] <= max_dims_exact:
        return geo.project(data, scaler, None, data.shape[1]), \
            geo.project(ref, scaler, None, data.shape[1])
    pca = _pca(geo.scale(data, scaler), rng)
    dims = geo.analysis_dims(pca.explained_variance_ratio_, pca_variance)
    return geo.project(data, scaler, pca, dims), geo.project(ref, scaler, pca, dims)


def _mcnemar(lost: int, gained: int) -> float:
    m = lost + gained
    return 1.0 if m == 0 else float(stats.binomtest(lost, m, 0.5).pvalue)


def coverage_change(base_data, base_ref, cand_data, cand_ref, *, k: int = 5,
                    rng: np.random.Generator, confidence: float = 0.95,
                    ids=None, n_bootstrap: int = 1000,
                    min_region: int | None = None, alpha: float = 0.05) -> CoverageChange:
    """How coverage of a shared reference changed from a baseline to a candidate.

    Parameters
    ----------
    base_data, cand_data : array-like of shape (n_data, d_side)
        Each side's data latents (the counts may differ).
    base_ref, cand_ref : array-like of shape (n_ref, d_side)
        The same reference points on each side, row ``j`` the same point (match the two
        reference stores by id first, :func:`audit.compare.match_ids`).
    k : int, default=5
        Neighbour rank of the coverage radii and of the reference graph.
    rng : numpy.random.Generator
        The PCA fits (when a side is wider than 64 dimensions) and the bootstrap.
    confidence : float, default=0.95
        Level of the bootstrap interval of ``delta``.
    ids : array-like of shape (n_ref,), optional
        Reference ids (the findings' evidence); default ``"0"``, ``"1"``, ...
    n_bootstrap : int, default=1000
        Paired bootstrap resamples.
    min_region : int, optional
        Fewest lost points in a reported region; default ``max(5, k)``.
    alpha : float, default=0.05
        Benjamini-Hochberg level of the regions.
    """
    xb, rb = np.asarray(base_data, dtype=np.float64), np.asarray(base_ref, dtype=np.float64)
    xc, rc = np.asarray(cand_data, dtype=np.float64), np.asarray(cand_ref, dtype=np.float64)
    if rb.ndim != 2 or rc.ndim != 2 or rb.shape[0] != rc.shape[0]:
        raise ValueError(f"the reference must hold the same points on both sides: shapes "
                         f"{rb.shape} and {rc.shape}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    n, k = int(rb.shape[0]), int(k)
    ids = np.asarray([str(i) for i in range(n)] if ids is None else ids).astype(str)
    min_region = max(5, k) if min_region is None else int(min_region)

    seeds = rng.integers(2**63 - 1, size=2)
    db, sb = _spaces(xb, rb, np.random.default_rng(int(seeds[0])))
    dc, sc = _spaces(xc, rc, np.random.default_rng(int(seeds[1])))
    base_cov = ~uncovered_mask(sb, db, k=k)
    cand_cov = ~uncovered_mask(sc, dc, k=k)

    lost_mask = base_cov & ~cand_cov
    gained_mask = cand_cov & ~base_cov
    lost, gained = int(lost_mask.sum()), int(gained_mask.sum())
    base, cand = float(base_cov.mean()), float(cand_cov.mean())
    delta = cand - base
    # paired bootstrap over reference points: each point's change is -1, 0 or +1, so a
    # resample is a multinomial draw of the three counts
    probs = np.array([gained, lost, n - gained - lost], dtype=np.float64) / n
    counts = rng.multinomial(n, probs, size=int(n_bootstrap))
    boot = (counts[:, 0] - counts[:, 1]) / n
    tail = (1.0 - float(confidence)) / 2
    ci = (float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail)))

    graph = exact_neighbours("coverage_reference", sb, min(k, n - 1))
    regions = gap_regions(lost_mask, graph)
    findings = _region_findings(regions, graph, lost_mask, gained_mask, ids, n=n, k=k,
                                min_region=min_region, alpha=alpha,
                                base=(sb, db, knn_radii(sb, k=k)),
                                cand=(sc, dc, knn_radii(sc, k=k)))
    return CoverageChange(base=base, cand=cand, delta=delta, ci=ci,
                          p_value=_mcnemar(lost, gained), lost=lost, gained=gained, n=n,
                          k=k, ids=ids, base_covered=base_cov, cand_covered=cand_cov,
                          regions=regions, findings=tuple(findings))


def _in_balls(side, area: np.ndarray) -> int:
    """Data points strictly inside the coverage ball of some reference point of ``area``."""
    ref, data, radii = side
    return int(_cross_indicators(np.asarray(ref[area], dtype=np.float64),
                                 np.asarray(data, dtype=np.float64),
                                 np.asarray(radii[area], dtype=np.float64), None,
                                 4096)[2].sum())


def _region_findings(regions, graph, lost_mask, gained_mask, ids, *, n: int, k: int,
                     min_region: int, alpha: float, base, cand) -> list[Finding]:
    labels, sizes = np.unique(regions[regions >= 0], return_counts=True)
    keep = labels[sizes >= min_region]
    if keep.size == 0:
        return []
    # largest first, so finding ids are stable and the biggest region is -1
    keep = sorted(keep.tolist(), key=lambda r: (-int((regions == r).sum()), r))
    share_base = len(base[1]) / (len(base[1]) + len(cand[1]))
    rows, p_raw = [], []
    for r in keep:
        members = np.flatnonzero(regions == r)
        area = np.union1d(members, graph[members].ravel())
        lo, ga = int(lost_mask[area].sum()), int(gained_mask[area].sum())
        mb, mc = _in_balls(base, area), _in_balls(cand, area)
        p = (1.0 if mb + mc == 0 else
             float(stats.binomtest(mb, mb + mc, share_base, alternative="greater").pvalue))
        rows.append((members, area, lo, ga, mb, mc))
        p_raw.append(p)
    rejected, q = benjamini_hochberg(p_raw, alpha=alpha)
    out = []
    for i, ((members, area, lo, ga, mb, mc), p, qv, rej) in enumerate(
            zip(rows, p_raw, q, rejected), start=1):
        size = int(members.size)
        share = size / n
        severity = ("critical" if share > 0.05 else "warning") if rej else "info"
        out.append(Finding(
            id=f"compare-coverage-lost-{i}", check=CHECK, severity=severity,
            title=f"{size} reference points the candidate stopped covering",
            summary=(f"These {size} reference points ({share:.1%} of the reference) are "
                     f"covered by the baseline's data but by none of the candidate's; "
                     f"around them {lo} reference points were lost and {ga} gained, and "
                     f"{mb} baseline against {mc} candidate data points fall in their "
                     f"coverage balls (one-sided exact binomial p = {p:.2g}, "
                     f"BH-adjusted {float(qv):.2g})."),
            metric=METRIC, value=float(size), threshold=float(min_region),
            p_value=float(qv),
            subjects={"size": size, "share": share, "lost_around": lo, "gained_around": ga,
                      "area": int(area.size), "base_points": mb, "cand_points": mc,
                      "k": int(k), "raw_p_value": p},
            evidence_ids=tuple(str(x) for x in ids[members])))
    return out
