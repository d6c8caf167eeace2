"""``coverage``: what the data fails to cover: of the reference, and of attribute combinations.

With a reference (``reference:`` in the config):

* the four k-NN manifold metrics of Naeem et al. (2020), reference = "real", data =
  "fake", computed in the analysis space with :func:`audit.metrics.coverage` (equal to
  ``prdc.compute_prdc``; a point is inside a ball only when strictly closer than its
  radius);
* gap regions: reference points whose k-NN ball holds no data point, grouped by the
  connected components of the reference's k-NN graph among them. A region is flagged
  when one of its points is *deeply* uncovered: ``D`` reference points lie closer to it
  than the nearest data point, and when data and reference come from one distribution
  that happens with probability ``C(M-1, D) / C(M-1+N, D)`` (exact, by exchangeability;
  Bonferroni over all reference points, so on data and reference from one distribution
  the chance of any gap finding is at most ``alpha``);
* coverage per reference cluster (HDBSCAN on the reference) and per value of each
  attribute / protected column in the reference's metadata, with Wilson intervals; a
  group is flagged when its coverage is significantly (Fisher, BH) and materially
  (``min_group_gap``) below the rest.

With or without a reference: the attribute-combination table. For every pair of the
configured attributes and protected columns (numeric ones in quantile bins), each cell's
count is compared with an expected table that keeps the data's own totals per value and
takes the association of the two columns from the reference (with a reference) or
assumes none (without); cells significantly below ``max_ratio`` times that are flagged
(one-sided Poisson test, BH over all cells).

See docs/checks/coverage.md.
"""
from __future__ import annotations

import math
from itertools import combinations
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import sparse, stats
from scipy.sparse.csgraph import connected_components
from scipy.special import betaln, gammaln

from ..context import Context
from ..columns import bin_values, is_numeric, quantile_edges, range_labels
from ..formatting import format_p
from ..findings import CheckResult, Finding
from ..metrics import (MISSING_GROUP, benjamini_hochberg, coverage, coverage_by_group, knn,
                       poisson_deficit_pvalue, wilson_interval)
from ..metrics._coverage import uncovered_from_graph
from .base import Check, CheckSettings, register
from .clusters import composition

__all__ = ["CoverageCheck", "depth_pvalue", "uncovered_depth", "chance_uncovered_rate",
           "gap_regions", "combination_tests", "bin_columns", "fit_margins"]

_MAX_VALUES = 30          # columns with more distinct values are left out of the cross-table
_MEMORY = 256 * 2**20     # temporary memory budget of the coverage metrics


def _seeded_rows(ctx: Context, n: int, cap: int, stream: str) -> np.ndarray:
    """All of ``range(n)``, or a sorted seeded sample of ``cap`` of them."""
    if n <= cap:
        return np.arange(n)
    return np.sort(ctx.rng(stream).choice(n, cap, replace=False))


def reference_uncovered(ctx: Context, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Uncovered reference points (no data point strictly inside their k-NN ball) and
    each searched point's distance to its nearest data point, from the shared graphs:
    the radii from ``ctx.reference_knn``, the cross graph ``ctx.cross_knn`` certifying
    covered points, and a search for the rest (see ``uncovered_from_graph``; through
    the data's index when the run's graphs are approximate)."""
    real, fake = ctx.reference_space, ctx.space
    ref_d, _ = ctx.reference_knn
    radii = ref_d[:, k - 1] if k <= ref_d.shape[1] else knn(real, k=k)[0][:, k - 1]
    cross_d, cross_i = ctx.cross_knn
    return uncovered_from_graph(real, fake, radii, cross_d, cross_i,
                                nearest_fn=ctx.nearest_data)


# --------------------------------------------------------------------------- statistics

def chance_uncovered_rate(n_ref: int, n_data: int, k: int) -> float:
    """Probability that a reference point's k-NN ball (radius to its k-th neighbour among
    the reference, itself the 0th) holds no data point, when data and reference are
    i.i.d. from one continuous distribution: ``E[(1 - U)^N]``, ``U ~ Beta(k, M - k)``.

    Examples
    --------
    >>> round(chance_uncovered_rate(1000, 1000, 5), 3)      # about 2 ** -5
    0.031
    """
    m, n = int(n_ref), int(n_data)
    if k >= m:
        return float("nan")
    return float(math.exp(betaln(k, m - k + n) - betaln(k, m - k)))


def depth_pvalue(depth, n_ref: int, n_data: int) -> np.ndarray:
    """P(the ``depth`` nearest of the other points around a reference point are all
    reference points) when data and reference are exchangeable:
    ``C(M - 1, D) / C(M - 1 + N, D)``.

    Examples
    --------
    >>> np.round(depth_pvalue([0, 1, 3], 3, 1), 4).tolist()    # 1, 2/3, 0 (only 2 others)
    [1.0, 0.6667, 0.0]
    """
    d = np.asarray(depth, dtype=float)
    m, n = float(n_ref), float(n_data)
    with np.errstate(invalid="ignore"):
        logp = gammaln(m) - gammaln(np.maximum(m - d, 1e-300)) + gammaln(m + n - d) \
            - gammaln(m + n)
    out = np.exp(logp)
    return np.where(d > m - 1, 0.0, np.where(d <= 0, 1.0, out))


def uncovered_depth(real: np.ndarray, fake: np.ndarray, rows: np.ndarray, *,
                    max_depth: int, nearest: np.ndarray | None = None) -> np.ndarray:
    """For each reference point in ``rows``: how many other reference points are strictly
    closer to it than its nearest data point (at most ``max_depth``). ``nearest`` (the
    distance of each of ``rows`` to its nearest data point) skips that search."""
    if rows.size == 0:
        return np.zeros(0, dtype=np.int64)
    if nearest is None:
        dn, _ = knn(real[rows], y=fake, k=1)
    else:
        dn = np.asarray(nearest, dtype=np.float64).reshape(-1, 1)
    kk = int(min(max_depth + 1, len(real)))
    dr, _ = knn(real[rows], y=real, k=kk)                 # includes the point itself
    return np.maximum((dr < dn).sum(axis=1) - 1, 0).astype(np.int64)


def gap_regions(uncovered: np.ndarray, graph: np.ndarray) -> np.ndarray:
    """Connected components of the uncovered points in a k-NN graph (``graph[i]`` lists
    the neighbours of point ``i``); -1 for covered points.

    Examples
    --------
    >>> g = np.array([[1], [0], [3], [2]])
    >>> gap_regions(np.array([True, True, False, True]), g).tolist()
    [0, 0, -1, 1]
    """
    unc = np.asarray(uncovered, dtype=bool)
    out = np.full(len(unc), -1, dtype=np.int64)
    rows = np.flatnonzero(unc)
    if rows.size == 0:
        return out
    pos = np.full(len(unc), -1)
    pos[rows] = np.arange(rows.size)
    nb = pos[np.asarray(graph)[rows]]                       # (r, g)
    a = np.repeat(np.arange(rows.size), nb.shape[1])
    b = nb.ravel()
    keep = b >= 0
    adj = sparse.coo_matrix((np.ones(keep.sum()), (a[keep], b[keep])),
                            shape=(rows.size, rows.size))
    _, lab = connected_components(adj, directed=True, connection="weak")
    out[rows] = lab
    return out


# --------------------------------------------------------------------------- attributes

def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def bin_columns(data: pd.DataFrame, reference: pd.DataFrame | None, columns: list[str],
                bins: int) -> dict[str, tuple[pd.Series, pd.Series | None, list[str]]]:
    """Each column as string labels for data and reference, with its values in order.

    Numeric columns with more than 10 distinct values become ``bins`` quantile bins of
    the data, labelled ``low–high`` and applied to the reference with the same edges;
    missing values become ``"<missing>"``.
    """
    out = {}
    for col in columns:
        d = data[col].reset_index(drop=True)
        r = reference[col].reset_index(drop=True) if (reference is not None and
                                                       col in reference.columns) else None
        if is_numeric(d) and len(quantile_edges(d, bins)) >= 2:
            qs = quantile_edges(d, bins)          # one rule and label format (audit.columns)
            labels = range_labels(qs)

            def cut(s: pd.Series) -> pd.Series:
                lab, _ = bin_values(s, qs)
                return pd.Series(lab, index=s.index, dtype=object).where(
                    pd.notna(lab), MISSING_GROUP).astype(str)
            out[col] = (cut(d), cut(r) if r is not None and
                        pd.api.types.is_numeric_dtype(r) else None, labels)
            continue

        def lab(s: pd.Series) -> pd.Series:
            # one str() per distinct value, not per row
            codes, uniq = pd.factorize(s.astype(object), use_na_sentinel=True)
            names = np.array([str(v) for v in uniq] + [MISSING_GROUP], dtype=object)
            miss = np.array([_is_missing(v) for v in uniq] + [True], dtype=bool)
            names[miss] = MISSING_GROUP
            return pd.Series(names[codes], index=s.index, dtype=object)
        dl = lab(d)
        rl = lab(r) if r is not None else None
        order = list(pd.unique(pd.concat([dl, rl]) if rl is not None else dl))
        try:
            order = sorted(order, key=lambda v: (v == MISSING_GROUP, float(v)))
        except ValueError:
            order = sorted(order, key=lambda v: (v == MISSING_GROUP, v))
        out[col] = (dl, rl, order)
    return out


def fit_margins(table: np.ndarray, rows: np.ndarray, cols: np.ndarray, *,
                iterations: int = 100) -> np.ndarray:
    """Iterative proportional fitting: ``table`` rescaled to the row and column totals
    ``rows`` and ``cols`` (its odds ratios, i.e. the association, are kept). Rows or
    columns that ``table`` lacks stay 0.

    Examples
    --------
    >>> fit_margins(np.ones((2, 2)), np.array([3.0, 1.0]), np.array([2.0, 2.0])).tolist()
    [[1.5, 1.5], [0.5, 0.5]]
    """
    t = np.asarray(table, dtype=float).copy()
    for _ in range(iterations):
        rs = t.sum(axis=1)
        t *= np.divide(rows, rs, out=np.zeros_like(rs), where=rs > 0)[:, None]
        cs = t.sum(axis=0)
        t *= np.divide(cols, cs, out=np.zeros_like(cs), where=cs > 0)[None, :]
        rs = t.sum(axis=1)
        if np.allclose(rs[rs > 0], rows[rs > 0], rtol=1e-9, atol=1e-9):
            break
    return t


def combination_tests(labels: dict[str, tuple[pd.Series, pd.Series | None, list[str]]], *,
                      mode: str, max_ratio: float, min_reference: int = 5
                      ) -> list[dict[str, Any]]:
    """Observed vs expected counts of every cell of every pair of columns, with p-values.

    The expected table has the data's own row and column totals; its association comes
    from the reference (``mode="reference"``: the reference's cross-table fitted to the
    data's totals by :func:`fit_margins`) or is none (``mode="independence"``: row total
    × column total / N). A value the data lacks altogether is therefore no combination
    finding (it is a group finding, with a reference). Each cell is tested with a
    one-sided Poisson test of the observed count against ``max_ratio`` × expected.
    Cells involving ``"<missing>"``, and in reference mode cells the reference holds
    fewer than ``min_reference`` points of, are not tested (p = NaN).
    """
    out = []
    for a, b in combinations(list(labels), 2):
        da, ra, va = labels[a]
        db, rb, vb = labels[b]
        obs = pd.crosstab(da, db).reindex(index=va, columns=vb, fill_value=0).to_numpy()
        rsum, csum = obs.sum(axis=1).astype(float), obs.sum(axis=0).astype(float)
        ref = None
        if mode == "reference":
            ref = pd.crosstab(ra, rb).reindex(index=va, columns=vb, fill_value=0).to_numpy()
            expected = fit_margins(ref, rsum, csum)
            testable = ref >= min_reference
        else:
            expected = np.outer(rsum, csum) / max(obs.sum(), 1)
            testable = expected > 0
        pv = np.where(testable & (expected > 0),
                      poisson_deficit_pvalue(obs, max_ratio * expected), np.nan)
        missing = np.array([[x == MISSING_GROUP or y == MISSING_GROUP for y in vb] for x in va])
        pv = np.where(missing, np.nan, pv)
        out.append({"a": a, "b": b, "rows": va, "cols": vb, "observed": obs,
                    "expected": expected, "reference": ref, "p": pv})
    return out


def _group_labels(ser: pd.Series, bins: int) -> pd.Series:
    lab = bin_columns(ser.to_frame("v"), None, ["v"], bins)["v"][0]
    return lab


# --------------------------------------------------------------------------- the check

@register
class CoverageCheck(Check):
    """Coverage of the reference by the data (precision, recall, density, coverage; gap
    regions; groups) and attribute combinations the data lacks."""

    name = "coverage"
    produces: ClassVar[tuple[str, ...]] = (
        "coverage.precision",
        "coverage.recall",
        "coverage.density",
        "coverage.coverage",
        "coverage.coverage_null",
        "coverage.gap_regions",
        "coverage.gap_fraction",
        "coverage.combinations_tested",
        "coverage.combinations_missing",
    )

    class Settings(CheckSettings):
        k: int = Field(5, ge=1, le=100, description=(
            "k of the k-NN balls of the four metrics (Naeem et al. use 5)"))
        alpha: float = Field(0.01, gt=0, lt=1, description=(
            "error rate of each family of tests: Bonferroni over the reference points (gap "
            "regions), Benjamini–Hochberg over groups and over attribute combinations"))
        critical_share: float = Field(0.05, gt=0, le=1, description=(
            "a gap region holding at least this share of the reference is critical"))
        max_depth: int = Field(1000, ge=10, le=100_000, description=(
            "reference neighbours counted for the depth test of an uncovered point"))
        min_group_gap: float = Field(0.1, ge=0, le=1, description=(
            "a group is flagged only when its coverage is this much below the rest's"))
        max_ratio: float = Field(0.5, gt=0, lt=1, description=(
            "an attribute combination is flagged when significantly rarer than this share "
            "of its expected count"))
        critical_expected: float = Field(20.0, gt=0, description=(
            "with a reference, a combination the data lacks entirely is critical when at "
            "least this many samples were expected"))
        bins: int = Field(4, ge=2, le=20, description="quantile bins of numeric columns")
        combinations: Literal["auto", "independence", "reference"] = Field("auto", description=(
            "what predicts a combination's count: the reference (auto, with a reference) "
            "or the independence of the two columns (auto, without one)"))
        max_columns: int = Field(12, ge=2, le=50, description=(
            "attribute / protected columns in the cross-table (the first ones listed)"))
        max_findings: int = Field(30, ge=1, le=1000, description=(
            "findings listed per kind (gap regions, groups, combinations)"))
        prdc_sample: int = Field(10_000, ge=100, description=(
            "precision, recall and density (which need every data-reference distance) use "
            "a seeded sample of at most this many points of the larger set, and the same "
            "share of the other; coverage, the gap regions and the groups use every point"))

    def _columns(self, ctx: Context) -> list[str]:
        meta = ctx.data.metadata
        return [c for c in dict.fromkeys(ctx.attributes + ctx.protected)
                if c in meta.columns][: self.settings.max_columns]

    def applies(self, ctx: Context) -> str | None:
        if ctx.reference is not None or len(self._columns(ctx)) >= 2:
            return None
        return "no reference given, and fewer than two attributes for the combination table"

    def run(self, ctx: Context) -> CheckResult:
        metrics: dict[str, float] = {}
        findings: list[Finding] = []
        tables: dict[str, Any] = {"has_reference": ctx.reference is not None}
        display: list[dict[str, Any]] = []
        if ctx.reference is not None:
            self._reference_part(ctx, metrics, findings, tables, display)
        self._combination_part(ctx, metrics, findings, tables, display)
        return CheckResult(check=self.name, status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables, display=tuple(display))

    # ------------------------------------------------------------------ reference
    def _reference_part(self, ctx: Context, metrics, findings, tables, display) -> None:
        s = self.settings
        real, fake = ctx.reference_space, ctx.space
        m_ref, n = len(real), len(fake)
        k = int(min(s.k, m_ref - 1, n - 1))
        if k < 1:
            raise ValueError(f"coverage needs at least 2 points in the data and in the "
                             f"reference (have {n} and {m_ref})")
        # coverage, per reference point, on every point: one pass over the shared graphs
        unc, nearest = reference_uncovered(ctx, k)
        chance = chance_uncovered_rate(m_ref, n, k)
        # precision, recall, density: exact prdc on a seeded sample (the same share of each
        # set, so the k-NN radii keep their scale), or on everything when small enough
        share = min(1.0, s.prdc_sample / max(m_ref, n))
        rs = _seeded_rows(ctx, m_ref, max(k + 1, int(round(share * m_ref))), "coverage.prdc.reference_rows")
        fs = _seeded_rows(ctx, n, max(k + 1, int(round(share * n))), "coverage.prdc.data_rows")
        sr, sf = real[rs], fake[fs]
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
                id="coverage-prdc-sample", check=self.name, severity="info",
                title=f"Precision, recall and density on a sample of {len(fs):,} data and "
                      f"{len(rs):,} reference points",
                summary=note, metric="coverage.precision", value=float(four["precision"]),
                subjects={"sample_data": int(len(fs)), "sample_reference": int(len(rs)),
                          "n_data": int(n), "n_reference": int(m_ref)}))

        # depth test of every uncovered point; covered points get p = 1
        rows = np.flatnonzero(unc)
        depth = np.zeros(m_ref, dtype=np.int64)
        depth[rows] = uncovered_depth(real, fake, rows, max_depth=s.max_depth,
                                      nearest=nearest[rows])
        pvals = np.ones(m_ref)
        pvals[rows] = depth_pvalue(depth[rows], m_ref, n)
        qvals = np.minimum(pvals * m_ref, 1.0)          # Bonferroni over the reference
        labels = gap_regions(unc, ctx.reference_knn[1])
        sig_regions = sorted({int(g) for g in labels[qvals <= s.alpha]},
                             key=lambda g: -int((labels == g).sum()))
        ref_ids = ctx.reference.ids
        ref_meta = ctx.reference.metadata
        cols = [c for c in dict.fromkeys(ctx.attributes + ctx.protected) if c in ref_meta.columns]
        region_of = np.full(m_ref, -1, dtype=np.int64)
        for r, g in enumerate(sig_regions):
            region_of[labels == g] = r
        # the data's bins (as in every other chart), applied to the reference
        data_meta = ctx.data.metadata
        comp = {c: composition(ref_meta[c], region_of, bins=s.bins,
                               edges=(quantile_edges(data_meta[c], s.bins)
                                      if c in data_meta.columns and is_numeric(data_meta[c])
                                      else None)) for c in cols}
        ref_xy = ctx.reference_map2d
        gap_rows = []
        in_gap = region_of >= 0
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
                    id=gid, check=self.name, severity=severity,
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
        metrics["coverage.gap_regions"] = float(len(sig_regions))
        metrics["coverage.gap_fraction"] = float(in_gap.mean())

        # per group
        groups: list[dict[str, Any]] = []
        rc = ctx.reference_clusters
        group_cols = [("reference cluster", pd.Series(np.where(rc >= 0, "c" + rc.astype(str),
                                                                "noise")))]
        group_cols += [(c, _group_labels(ref_meta[c], s.bins)) for c in cols]
        tests = []
        for col, lab in group_cols:
            lab = lab.to_numpy()
            cov = coverage_by_group(unc, lab)
            vals = list(cov)
            if len(vals) > _MAX_VALUES:
                vals = sorted(vals, key=lambda v: cov[v]["coverage"])[:_MAX_VALUES]
            for v in vals:
                g = cov[v]
                rest_n = m_ref - g["n"]
                rest_cov = int((~unc).sum()) - g["covered"]
                p = float("nan")
                if rest_n > 0 and v != MISSING_GROUP:
                    p = float(stats.fisher_exact([[g["covered"], g["n"] - g["covered"]],
                                                  [rest_cov, rest_n - rest_cov]],
                                                 alternative="less")[1])
                row = {"column": col, "value": str(v), "n": g["n"], "covered": g["covered"],
                       "coverage": g["coverage"], "ci": list(g["ci"]),
                       "rest": rest_cov / rest_n if rest_n else None, "p": p}
                groups.append(row)
                tests.append(p)
        if groups:
            _, gq = benjamini_hochberg(np.array(tests, dtype=float), alpha=s.alpha)
            flagged = []
            for row, q in zip(groups, gq):
                row["q"] = None if np.isnan(q) else float(q)
                if (not np.isnan(q) and q <= s.alpha and row["rest"] is not None
                        and row["rest"] - row["coverage"] >= s.min_group_gap):
                    flagged.append(row)
            for j, row in enumerate(sorted(flagged, key=lambda r: r["q"])[: s.max_findings]):
                col, v = row["column"], row["value"]
                lab = dict(group_cols)[col].to_numpy()
                ev = ref_ids[(lab == v) & unc][:200]
                findings.append(Finding(
                    id=f"coverage-group-{j + 1}", check=self.name, severity="warning",
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

        # the joint map: uncovered reference points first, covered ones up to the cap
        # (at most 50,000 reference points: this figure embeds them as plain lists)
        cap = int(min(ctx.settings.plot_points, 50_000))
        show = np.arange(m_ref)
        if m_ref > cap:
            if rows.size > cap:
                rows = np.sort(ctx.rng("coverage.plot.uncovered_rows").choice(rows, cap, replace=False))
            cov_rows = np.flatnonzero(~unc)
            keep = ctx.rng("coverage.plot.covered_rows").choice(cov_rows, max(0, min(cov_rows.size, cap - rows.size)),
                                      replace=False)
            show = np.sort(np.concatenate([rows, keep]))
        tables.update({
            "k": k, "chance_uncovered": chance, "n_reference": m_ref, "n_data": n,
            "uncovered": int(unc.sum()), "gaps": gap_rows, "groups": groups,
            "reference_points": {"ids": [str(i) for i in ref_ids[show]],
                                 "x": np.round(ref_xy[show, 0], 4).tolist(),
                                 "y": np.round(ref_xy[show, 1], 4).tolist(),
                                 "uncovered": unc[show].astype(int).tolist(),
                                 "gap": region_of[show].tolist(),
                                 "sampled": bool(len(show) < m_ref)}})
        display.append({"kind": "coverage_map", "wide": True})
        display.append({"kind": "coverage_groups"})

    # ------------------------------------------------------------------ combinations
    def _combination_part(self, ctx: Context, metrics, findings, tables, display) -> None:
        s = self.settings
        cols = self._columns(ctx)
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
        skipped = [c for c, (_, _, v) in labels.items() if len(v) > _MAX_VALUES]
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
                id=f"coverage-combination-{rank + 1}", check=self.name, severity=severity,
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
