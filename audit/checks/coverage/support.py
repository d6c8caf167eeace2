"""Coverage of the reference by the data: the four prdc numbers, gap regions (reference
points the data leaves uncovered, deeper than chance) and coverage per reference group.

The statistics live in :mod:`audit.metrics` (``coverage``, ``uncovered_from_graph``,
``coverage_by_group``) and :mod:`audit.metrics._regions` (chance rate, depth test, gap
regions); this module turns them into metrics, findings and tables.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from ...columns import MISSING, group_column
from ...context import Context
from ...findings import Finding
from ...formatting import format_p
from ...metrics import benjamini_hochberg, coverage, coverage_by_group, wilson_interval
from ...metrics._coverage import uncovered_from_graph
from ...metrics._regions import (chance_uncovered_rate, depth_pvalue, gap_regions,
                                 uncovered_depth)
from .._composition import composition
from .settings import Settings

__all__ = ["reference_uncovered", "reference_part"]

NAME = "coverage"
MAX_GROUP_VALUES = 30     # a column with more values: only its worst-covered ones are tested
_MEMORY = 256 * 2**20     # temporary memory budget of the coverage metrics


def reference_uncovered(ctx: Context, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Uncovered reference points (no data point strictly inside their k-NN ball) and
    each searched point's distance to its nearest data point, from the shared graphs:
    the radii from ``ctx.reference_knn``, the cross graph ``ctx.cross_knn`` certifying
    covered points, and a search for the rest (see ``uncovered_from_graph``; through
    the data's index when the run's graphs are approximate)."""
    reference, data = ctx.reference_space, ctx.space
    radii = ctx.reference_radii(k)
    cross_d, cross_i = ctx.cross_knn
    return uncovered_from_graph(reference, data, radii, cross_d, cross_i,
                                nearest_fn=lambda points: ctx.nearest(points, 1)[0][:, 0])


def reference_part(ctx: Context, s: Settings, metrics: dict[str, float],
                   findings: list[Finding], tables: dict[str, Any],
                   display: list[dict[str, Any]]) -> None:
    """The reference half of the check: fills ``metrics``, ``findings``, ``tables`` and
    ``display`` in place."""
    reference, data = ctx.reference_space, ctx.space
    m_ref, n = len(reference), len(data)
    k = int(min(s.k, m_ref - 1, n - 1))
    if k < 1:
        raise ValueError(f"coverage needs at least 2 points in the data and in the "
                         f"reference (have {n} and {m_ref})")
    # coverage, per reference point, on every point: one pass over the shared graphs
    unc, nearest = reference_uncovered(ctx, k)
    chance = chance_uncovered_rate(m_ref, n, k)
    _prdc(ctx, s, k, unc, chance, metrics, findings, tables)

    # depth test of every uncovered point; covered points get p = 1
    rows = np.flatnonzero(unc)
    depth = np.zeros(m_ref, dtype=np.int64)
    exact = ctx.knn_info.get("reference_knn", {}).get("method") == "exact"
    depth[rows] = uncovered_depth(reference, data, rows, max_depth=s.max_depth,
                                  nearest=nearest[rows],
                                  graph=ctx.reference_knn if exact else None)
    pvals = np.ones(m_ref)
    pvals[rows] = depth_pvalue(depth[rows], m_ref, n)
    qvals = np.minimum(pvals * m_ref, 1.0)          # Bonferroni over the reference
    labels = gap_regions(unc, ctx.reference_knn[1])
    sig_regions = sorted({int(g) for g in labels[qvals <= s.alpha]},
                         key=lambda g: -int((labels == g).sum()))
    ref_meta = ctx.reference.metadata
    cols = [c for c in dict.fromkeys(ctx.attributes + ctx.protected) if c in ref_meta.columns]
    region_of = np.full(m_ref, -1, dtype=np.int64)
    for r, g in enumerate(sig_regions):
        region_of[labels == g] = r
    gap_rows = _gap_findings(ctx, s, k, chance, cols, labels, sig_regions, region_of,
                             depth, pvals, qvals, findings)
    metrics["coverage.gap_regions"] = float(len(sig_regions))
    metrics["coverage.gap_fraction"] = float((region_of >= 0).mean())
    groups = _group_findings(ctx, s, k, cols, unc, findings)
    tables.update({
        "k": k, "chance_uncovered": chance, "n_reference": m_ref, "n_data": n,
        "uncovered": int(unc.sum()), "gaps": gap_rows, "groups": groups,
        "reference_points": _map_points(ctx, unc, rows, region_of)})
    display.append({"kind": "coverage_map", "wide": True})
    display.append({"kind": "coverage_groups"})


def _prdc(ctx: Context, s: Settings, k: int, unc: np.ndarray, chance: float,
          metrics: dict[str, float], findings: list[Finding], tables: dict[str, Any]) -> None:
    """Precision, recall, density: exact prdc on a seeded sample (the same share of each
    set, so the k-NN radii keep their scale), or on everything when small enough; coverage
    from every point."""
    reference, data = ctx.reference_space, ctx.space
    m_ref, n = len(reference), len(data)
    share = min(1.0, s.prdc_sample / max(m_ref, n))
    rs = ctx.sample_rows(m_ref, max(k + 1, int(round(share * m_ref))),
                      "coverage.prdc.reference_rows")
    fs = ctx.sample_rows(n, max(k + 1, int(round(share * n))), "coverage.prdc.data_rows")
    sr, sf = reference[rs], data[fs]
    block = int(max(16, min(4096, _MEMORY // (24 * max(len(sr), len(sf))))))
    four = coverage(sr, sf, k=k, block_size=block)
    four["coverage"] = float(1.0 - unc.mean())
    metrics.update({f"coverage.{key}": float(v) for key, v in four.items()})
    metrics["coverage.coverage_null"] = 1.0 - chance
    sampled = len(rs) < m_ref or len(fs) < n
    tables["prdc_sample"] = {"reference": int(len(rs)), "data": int(len(fs)),
                             "sampled": bool(sampled)}
    if sampled:
        note = (f"Precision, recall and density are computed on a seeded sample of "
                f"{len(fs):,} of {n:,} data points and {len(rs):,} of {m_ref:,} "
                f"reference points (the same share of each; setting prdc_sample = "
                f"{s.prdc_sample:,}): they need every data-reference distance. Coverage, "
                "the gap regions and the groups use every point.")
        tables["prdc_note"] = note
        findings.append(Finding(
            id="coverage-prdc-sample", check=NAME, severity="info",
            title=f"Precision, recall and density on a sample of {len(fs):,} data and "
                  f"{len(rs):,} reference points",
            summary=note, metric="coverage.precision", value=float(four["precision"]),
            subjects={"sample_data": int(len(fs)), "sample_reference": int(len(rs)),
                      "n_data": int(n), "n_reference": int(m_ref)}))


def _gap_findings(ctx: Context, s: Settings, k: int, chance: float,
                  cols: list[str], labels: np.ndarray, sig_regions: list[int],
                  region_of: np.ndarray, depth: np.ndarray, pvals: np.ndarray,
                  qvals: np.ndarray, findings: list[Finding]) -> list[dict[str, Any]]:
    """One finding per significant gap region (what its points mostly are); its table row."""
    m_ref = len(labels)
    ref_ids = ctx.reference.ids
    ref_meta = ctx.reference.metadata
    # the data's bins (as in every other chart), applied to the reference
    data_meta = ctx.data.metadata
    comp = {c: composition(ref_meta[c], region_of, bins=s.bins,
                           edges=(group_column(data_meta[c], bins=s.bins).edges
                                  if c in data_meta.columns else None)) for c in cols}
    ref_xy = ctx.reference_map2d
    gap_rows = []
    for r, g in enumerate(sig_regions):
        members = np.flatnonzero(labels == g)
        share = members.size / m_ref
        best = members[np.argmin(qvals[members])]
        desc = []
        for c in cols:
            row = next(x for x in comp[c]["clusters"] if x["cluster"] == r)
            t = row["top"][0] if row["top"] else None
            if t is not None:
                desc.append((t["share"] / max(t["overall_share"], 1e-12), t["share"], c,
                             t["value"], t["overall_share"]))
        desc.sort(key=lambda x: -x[0])
        text = ", ".join(f"{sh:.0%} {c}={v} (reference: {ov:.0%})"
                         for ratio, sh, c, v, ov in desc[:3] if ratio >= 1.5)
        gid = f"coverage-gap-{r + 1}"
        severity = "critical" if share >= s.critical_share else "warning"
        if r < s.max_findings:
            findings.append(Finding(
                id=gid, check=NAME, severity=severity,
                title=f"Gap {r + 1}: {members.size} reference points ({share:.1%} of the "
                      "reference) the data does not cover",
                summary=((f"Its points are mostly: {text}. " if text else
                          "No attribute value stands out among its points. ")
                         + f"No data point lies inside their {k}-NN balls; at the deepest "
                         f"one, {int(depth[best])} reference points come before the "
                         f"nearest data point (chance: {format_p(pvals[best])}, "
                         "Bonferroni-adjusted below). Chance alone leaves "
                         f"{chance:.1%} of the reference uncovered, scattered."),
                metric="coverage.gap_share", value=share, threshold=s.critical_share,
                p_value=float(qvals[best]), ci=wilson_interval(int(members.size), m_ref),
                subjects={"size": int(members.size), "share": share,
                          "max_depth": int(depth[best]),
                          "composition": [{"column": c, "value": v, "share": sh,
                                           "reference_share": ov}
                                          for _, sh, c, v, ov in desc],
                          "map": [float(v) for v in ref_xy[members].mean(0)]},
                evidence_ids=tuple(str(i) for i in ref_ids[members[:500]])))
        gap_rows.append({"id": gid, "size": int(members.size), "share": share,
                         "p_value": float(qvals[best]), "severity": severity})
    return gap_rows


def _group_findings(ctx: Context, s: Settings, k: int, cols: list[str],
                    unc: np.ndarray, findings: list[Finding]) -> list[dict[str, Any]]:
    """Coverage per reference cluster and per value of each column, each group tested
    against the rest of the reference (Fisher, BH); the groups' table rows."""
    m_ref = len(unc)
    ref_ids = ctx.reference.ids
    ref_meta = ctx.reference.metadata
    rc = ctx.reference_clusters
    # each column as (labels with None where missing, for coverage_by_group; names)
    cluster_names = np.where(rc >= 0, "c" + rc.astype(str), "noise").astype(object)
    group_cols = [("reference cluster", cluster_names, cluster_names)]
    for c in cols:
        g = group_column(ref_meta[c], bins=s.bins)
        group_cols.append((c, g.labels, g.names()))
    groups: list[dict[str, Any]] = []
    tests = []
    for col, lab, _ in group_cols:
        cov = coverage_by_group(unc, lab)
        vals = list(cov)
        if len(vals) > MAX_GROUP_VALUES:
            vals = sorted(vals, key=lambda v: cov[v]["coverage"])[:MAX_GROUP_VALUES]
        for v in vals:
            g = cov[v]
            rest_n = m_ref - g["n"]
            rest_cov = int((~unc).sum()) - g["covered"]
            p = float("nan")
            if rest_n > 0 and v != MISSING:
                p = float(stats.fisher_exact([[g["covered"], g["n"] - g["covered"]],
                                              [rest_cov, rest_n - rest_cov]],
                                             alternative="less")[1])
            row = {"column": col, "value": str(v), "n": g["n"], "covered": g["covered"],
                   "coverage": g["coverage"], "ci": list(g["ci"]),
                   "rest": rest_cov / rest_n if rest_n else None, "p": p}
            groups.append(row)
            tests.append(p)
    if not groups:
        return groups
    _, gq = benjamini_hochberg(np.array(tests, dtype=float), alpha=s.alpha)
    flagged = []
    for row, q in zip(groups, gq):
        row["q"] = None if np.isnan(q) else float(q)
        if (not np.isnan(q) and q <= s.alpha and row["rest"] is not None
                and row["rest"] - row["coverage"] >= s.min_group_gap):
            flagged.append(row)
    names = {col: nm for col, _, nm in group_cols}
    for j, row in enumerate(sorted(flagged, key=lambda r: r["q"])[: s.max_findings]):
        col, v = row["column"], row["value"]
        ev = ref_ids[(names[col] == v) & unc][:200]
        findings.append(Finding(
            id=f"coverage-group-{j + 1}", check=NAME, severity="warning",
            title=f"Reference {col}={v} is covered worse: {row['coverage']:.0%} vs "
                  f"{row['rest']:.0%} for the rest",
            summary=(f"{row['n'] - row['covered']} of its {row['n']} reference points "
                     f"have no data point in their {k}-NN ball. Fisher's exact test "
                     "against the rest of the reference, BH-adjusted."),
            metric="coverage.group_coverage", value=row["coverage"],
            threshold=s.min_group_gap, p_value=row["q"], ci=tuple(row["ci"]),
            subjects={"column": col, "value": v, "n": row["n"],
                      "rest_coverage": row["rest"]},
            evidence_ids=tuple(str(i) for i in ev)))
    return groups


def _map_points(ctx: Context, unc: np.ndarray, rows: np.ndarray,
                region_of: np.ndarray) -> dict[str, Any]:
    """The joint map's reference points: uncovered ones first, covered ones up to the cap
    (at most 50,000 reference points: the figure embeds them as plain lists)."""
    m_ref = len(unc)
    ref_ids = ctx.reference.ids
    ref_xy = ctx.reference_map2d
    cap = int(min(ctx.settings.plot_points, 50_000))
    show = np.arange(m_ref)
    if m_ref > cap:
        if rows.size > cap:
            rows = np.sort(ctx.rng("coverage.plot.uncovered_rows").choice(rows, cap,
                                                                          replace=False))
        cov_rows = np.flatnonzero(~unc)
        keep = ctx.rng("coverage.plot.covered_rows").choice(
            cov_rows, max(0, min(cov_rows.size, cap - rows.size)), replace=False)
        show = np.sort(np.concatenate([rows, keep]))
    return {"ids": [str(i) for i in ref_ids[show]],
            "x": np.round(ref_xy[show, 0], 4).tolist(),
            "y": np.round(ref_xy[show, 1], 4).tolist(),
            "uncovered": unc[show].astype(int).tolist(),
            "gap": region_of[show].tolist(),
            "sampled": bool(len(show) < m_ref)}
