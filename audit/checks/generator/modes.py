"""``generator_modes``: regions of the real data (and of the reference) that generations
never reach, with the real points as evidence.

A real point is *uncovered* when no generation lies strictly inside its k-NN ball (the
per-point indicator behind coverage, :func:`audit.metrics.uncovered_from_graph`, on the
shared neighbour graph). Uncovered points come in small scattered patches by chance
(one generation covers several balls), so single points or patches are not evidence.
What chance does not produce is *depth*: when the generations are samples of the real
distribution, the chance that the ``D`` nearest of a real point's other neighbours (real
points and generations pooled) are all real is ``C(N-1, D) / C(N-1+G, D)``
(:func:`audit.metrics.depth_pvalue`, exact by exchangeability). A point deep inside a
region no generation reaches has a large ``D``. Uncovered points connected in the real
k-NN graph form one region (:func:`audit.metrics.gap_regions`); a region is a dropped
mode when one of its points is deeper than chance allows (Bonferroni over all real
points, which also bounds the chance of reporting any region falsely) and it holds at
least ``min_size`` real points. Exact copies among the real points count once (a point
mass is not a mode a continuous generator can hit). See docs/checks/generator.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ...context import Context
from ...findings import CheckResult, Finding
from ...formatting import format_p
from ...metrics import (chance_uncovered_rate, depth_pvalue, gap_regions, knn,
                        uncovered_depth, uncovered_from_graph, wilson_interval)
from .._composition import composition
from ..base import Check, CheckSettings, register
from .fidelity import _MIN_POINTS, distinct_count, generator_applies, generator_spaces

__all__ = ["ModesCheck", "DroppedRegions", "dropped_regions"]

NAME = "generator_modes"
_GRAPH_K = 15          # neighbours that connect uncovered points into one region
_DEPTH_CHUNK = 2000    # uncovered points whose depth is measured at once
_EVIDENCE = 500


@dataclass(frozen=True, eq=False)
class DroppedRegions:
    """Uncovered points and dropped regions of one real set (rows of the full set).

    ``uncovered`` (n,) bool; ``depth`` (n,) int (0 where covered); ``q`` (n,) Bonferroni-
    adjusted depth p-values (1 where covered); ``region`` (n,) the dropped region of each
    point (0, 1, ... largest first; -1 elsewhere); ``regions`` one dict per dropped region
    (``rows``, ``size``, ``share``, ``depth``, ``p_value``, ``raw_p``, ``deepest``);
    ``scattered`` connected groups of uncovered points that are not dropped regions;
    ``chance`` the share of points chance leaves uncovered; ``distinct`` distinct points.
    """

    uncovered: np.ndarray
    depth: np.ndarray
    q: np.ndarray
    region: np.ndarray
    regions: list[dict[str, Any]]
    scattered: int
    chance: float
    distinct: int
    k: int


def dropped_regions(real: np.ndarray, fake: np.ndarray, *, k: int, alpha: float,
                    min_size: int, max_depth: int,
                    graph: tuple[np.ndarray, np.ndarray] | None = None,
                    cross: tuple[np.ndarray, np.ndarray] | None = None) -> DroppedRegions:
    """Regions of ``real`` that ``fake`` never reaches (see the module docstring).

    ``graph``: a self-excluding k-NN graph of ``real`` (distances, indices; at least ``k``
    columns) when one is at hand; ``cross``: (distances, indices) of each fake point's
    nearest real points. Both are used only when ``real`` has no exact copies, and are
    computed exactly otherwise.
    """
    n, g = len(real), len(fake)
    _, first, inverse = np.unique(real, axis=0, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    distinct = None
    if len(first) < n:                    # work on the distinct points, then map back
        distinct = np.sort(first)
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first)] = np.arange(len(first))
        pos = rank[inverse]
        x = real[distinct]
        graph = cross = None
    else:
        pos = np.arange(n)
        x = real
    m = len(x)
    k = int(min(k, m - 1))
    if graph is None or graph[1].shape[1] < k:
        graph = knn(x, k=int(min(max(k, _GRAPH_K), m - 1)))
    kg = int(min(graph[1].shape[1], _GRAPH_K))
    radii = np.asarray(graph[0][:, k - 1], dtype=np.float64)   # the k-th other point
    if cross is None:
        cross = knn(fake, y=x, k=int(min(max(k, 10), m)))
    unc, near = uncovered_from_graph(x, fake, radii, cross[0], cross[1])
    rows = np.flatnonzero(unc)
    depth = np.zeros(m, dtype=np.int64)
    for s in range(0, rows.size, _DEPTH_CHUNK):
        part = rows[s:s + _DEPTH_CHUNK]
        depth[part] = uncovered_depth(x, fake, part, max_depth=max_depth,
                                      nearest=near[part])
    p = np.ones(m)
    p[rows] = depth_pvalue(depth[rows], m, g)
    q = np.minimum(p * m, 1.0)                       # Bonferroni over the points
    labels = gap_regions(unc, graph[1][:, :kg])
    full_labels = labels[pos]                        # copies belong with their location
    regions, scattered = [], 0
    for lab in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == lab)
        best = members[np.argmin(q[members])]
        rows_full = np.flatnonzero(full_labels == lab)
        if q[best] <= alpha and rows_full.size >= min_size:
            regions.append({"rows": rows_full, "size": int(rows_full.size),
                            "share": rows_full.size / n, "depth": int(depth[best]),
                            "p_value": float(q[best]), "raw_p": float(p[best]),
                            "deepest": int(best if distinct is None else distinct[best])})
        else:
            scattered += 1
    regions.sort(key=lambda r: (-r["size"], r["deepest"]))
    region = np.full(n, -1, dtype=np.int64)
    for i, r in enumerate(regions):
        region[r["rows"]] = i
    return DroppedRegions(uncovered=unc[pos], depth=depth[pos], q=q[pos], region=region,
                          regions=regions, scattered=scattered,
                          chance=chance_uncovered_rate(m, g, k), distinct=m, k=k)


@register
class ModesCheck(Check):
    """Generator modes: regions of the real data (and reference) that generations never reach."""

    name = NAME
    family = "generator"
    produces: ClassVar[tuple[str, ...]] = (
        "generator.dropped_modes", "generator.dropped_mass",
        "generator.reference.dropped_modes", "generator.reference.dropped_mass",
    )

    class Settings(CheckSettings):
        k: int = Field(5, ge=1, le=100, description=(
            "k of the real points' k-NN balls a generation must enter to cover them"))
        alpha: float = Field(0.01, gt=0, lt=1, description=(
            "family-wise error rate of the depth test (Bonferroni over the real points)"))
        min_size: int = Field(10, ge=1, description=(
            "fewest real points in a reported region"))
        critical_share: float = Field(0.05, gt=0, le=1, description=(
            "a region holding at least this share of the real data is critical"))
        max_depth: int = Field(1000, ge=10, le=100_000, description=(
            "real neighbours counted for the depth test of an uncovered point"))
        max_findings: int = Field(20, ge=1, le=1000, description=(
            "regions reported as findings (per real set)"))
        examples: int = Field(6, ge=0, le=50, description=(
            "example real points shown per region (their images when the data has them)"))
        plot_generations: int = Field(3000, ge=100, le=100_000, description=(
            "generations drawn on the map (a seeded sample beyond it)"))
        max_generations: int = Field(5000, ge=100, le=10_000_000, description=(
            "the test reads a seeded sample of at most this many generations: with many "
            "more, it resolves the real data's own noise, which a noise-free decoder never "
            "reproduces, as dropped regions (11 false regions at 50,000 clean generations "
            "in the benchmark's table world, none at 5,000)"))

    def applies(self, ctx: Context) -> str | None:
        return generator_applies(ctx, self.settings.k)

    def run(self, ctx: Context) -> CheckResult:
        s, gen = self.settings, ctx.generated
        sp = generator_spaces(ctx)
        metrics: dict[str, float] = {}
        findings: list[Finding] = []
        tables: dict[str, Any] = {"k": s.k, "alpha": s.alpha, "min_size": s.min_size,
                                  "n_generated": gen.n, "space_note": sp.note,
                                  "shared": sp.shared}
        fake = sp.fake
        if len(fake) > s.max_generations:
            fake = fake[ctx.sample_rows(len(fake), s.max_generations,
                                        "generator_modes.test_rows")]
        tables["n_tested"] = int(len(fake))
        distinct = distinct_count(fake)
        need = max(_MIN_POINTS, 2 * s.k + 2)
        real_distinct = distinct_count(sp.real)
        if distinct < need or real_distinct < need:
            note = (f"The {gen.n:,} generations hold only {distinct} distinct point(s), so "
                    "which regions they reach says nothing about modes: nothing was tested. "
                    "A generator whose samples are (nearly) all the same has collapsed."
                    if distinct < need else
                    f"The real data holds only {real_distinct} distinct point(s): too few "
                    "for regions, so nothing was tested.")
            nan = float("nan")
            metrics.update({"generator.dropped_modes": nan, "generator.dropped_mass": nan})
            tables["degenerate"] = note
            return CheckResult(check=NAME, status="ok", metrics=metrics, tables=tables,
                               findings=(Finding(
                                   id=f"{NAME}-degenerate", check=NAME, severity="info",
                                   title=(f"Only {distinct} distinct generation(s): modes "
                                          "not tested" if distinct < need else
                                          f"Only {real_distinct} distinct real point(s): "
                                          "modes not tested"), summary=note,
                                   metric="generator.dropped_modes", value=None,
                                   threshold=float(need),
                                   subjects={"distinct": distinct, "generated": gen.n}),))
        images: dict[str, np.ndarray] = {}
        per_sample: dict[str, np.ndarray] = {}
        # the real data
        graph = ctx.knn if sp.shared and s.k <= ctx.k else None
        cross = (ctx.nearest(fake, k=int(min(max(s.k, 10), ctx.n)))
                 if sp.shared else None)
        res = dropped_regions(sp.real, fake, k=s.k, alpha=s.alpha, min_size=s.min_size,
                              max_depth=s.max_depth, graph=graph, cross=cross)
        real = gen.real
        tables["real"] = self._part(ctx, s, res, real, "real", findings, images,
                                    ctx.map2d.coords if sp.shared else None)
        metrics["generator.dropped_modes"] = float(len(res.regions))
        metrics["generator.dropped_mass"] = float((res.region >= 0).mean())
        if len(res.uncovered) == ctx.n and np.array_equal(np.asarray(real.ids, dtype=str),
                                                          np.asarray(ctx.data.ids, dtype=str)):
            per_sample = {"uncovered": res.uncovered,
                          "is_generator_modes_issue": res.region >= 0}
        # the reference
        if sp.reference is not None and distinct_count(sp.reference) >= need:
            ref = gen.reference
            same = ref is ctx.reference
            rgraph = (ctx.reference_knn if same and s.k <= ctx.reference_knn[1].shape[1]
                      else None)
            rres = dropped_regions(sp.reference, fake, k=s.k, alpha=s.alpha,
                                   min_size=s.min_size, max_depth=s.max_depth, graph=rgraph)
            coords = ctx.reference_map2d if (same and sp.shared) else (
                ctx.place_on_map(ref.latents) if sp.shared else None)
            tables["reference"] = self._part(ctx, s, rres, ref, "reference", findings,
                                             images, coords)
            metrics["generator.reference.dropped_modes"] = float(len(rres.regions))
            metrics["generator.reference.dropped_mass"] = float((rres.region >= 0).mean())
        display: list[dict[str, Any]] = []
        if sp.shared:
            rows = ctx.sample_rows(gen.n, s.plot_generations, "generator_modes.plot_rows")
            xy = ctx.place_on_map(gen.latents[rows])
            tables["generations"] = {"x": np.round(xy[:, 0], 4).tolist(),
                                     "y": np.round(xy[:, 1], 4).tolist(),
                                     "sampled": bool(len(rows) < gen.n),
                                     "shown": int(len(rows))}
            display.append({"kind": "generator_modes_map", "wide": True})
        return CheckResult(check=NAME, status="ok", metrics=metrics,
                           findings=tuple(findings), per_sample=per_sample, tables=tables,
                           display=tuple(display), images=images)

    # ------------------------------------------------------------------ one real set
    def _part(self, ctx: Context, s: Any, res: DroppedRegions, real: Any, which: str,
              findings: list[Finding], images: dict, coords: np.ndarray | None
              ) -> dict[str, Any]:
        n = len(res.uncovered)
        ids = np.asarray(real.ids).astype(str)
        meta = real.metadata
        cols = [c for c in dict.fromkeys(ctx.attributes + ctx.protected)
                if meta is not None and c in meta.columns]
        comp = {c: composition(meta[c].reset_index(drop=True), res.region) for c in cols}
        prefix = "generator" if which == "real" else "generator.reference"
        label = "real data" if which == "real" else "reference"
        listed = []
        for r, reg in enumerate(res.regions):
            rows = reg["rows"]
            rid = f"{NAME}-{'' if which == 'real' else 'reference-'}{r + 1}"
            severity = "critical" if reg["share"] >= s.critical_share else "warning"
            desc = self._describe(comp, cols, r)
            order = rows[np.argsort(-res.depth[rows], kind="stable")]
            examples = [str(i) for i in ids[order[:s.examples]]]
            keys = []
            if real.images is not None:
                for j, i in enumerate(order[:s.examples]):
                    key = f"{NAME}-{which}-{r + 1}-{j + 1}"
                    images[key] = np.asarray(real.images[i])
                    keys.append(key)
            centre = ([float(v) for v in coords[rows].mean(axis=0)]
                      if coords is not None else None)
            text = ", ".join(f"{sh:.0%} {c}={v} (overall {ov:.0%})"
                             for _, sh, c, v, ov in desc[:3])
            if r < s.max_findings:
                findings.append(Finding(
                    id=rid, check=NAME, severity=severity,
                    title=(f"{'Dropped' if which == 'real' else 'Reference dropped'} "
                           f"mode {r + 1}: {reg['size']:,} {label} points "
                           f"({reg['share']:.1%}) no generation reaches"),
                    summary=((f"Its points are mostly: {text}. " if text else "")
                             + f"No generation lies inside the {res.k}-NN ball of any of "
                             f"them; at the deepest point, {reg['depth']} {label} points "
                             "come before the nearest generation, which chance (generations "
                             f"drawn like the {label}) allows with "
                             f"{format_p(reg['raw_p'])} ({format_p(reg['p_value'], name='Bonferroni-adjusted p')} "
                             f"over {res.distinct:,} points). The evidence is its points."),
                    metric=f"{prefix}.dropped_mass", value=float(reg["share"]),
                    threshold=s.critical_share, p_value=float(reg["p_value"]),
                    ci=wilson_interval(reg["size"], n),
                    subjects={"set": which, "size": reg["size"], "share": reg["share"],
                              "max_depth": reg["depth"], "raw_p_value": reg["raw_p"],
                              "k": res.k, "examples": examples, "images": keys,
                              "composition": [{"column": c, "value": v, "share": sh,
                                               "overall_share": ov}
                                              for _, sh, c, v, ov in desc],
                              **({"map": centre} if centre is not None else {})},
                    evidence_ids=tuple(str(i) for i in ids[rows[:_EVIDENCE]])))
            listed.append({"id": rid, "size": reg["size"], "share": reg["share"],
                           "depth": reg["depth"], "p_value": reg["p_value"],
                           "severity": severity, "examples": examples, "images": keys,
                           "map": centre, "composition": text})
        out: dict[str, Any] = {
            "n": n, "distinct": res.distinct, "k": res.k,
            "uncovered": int(res.uncovered.sum()), "chance_uncovered": res.chance,
            "scattered": res.scattered, "regions": listed,
            "not_listed": max(0, len(res.regions) - s.max_findings)}
        if coords is not None:
            show = np.flatnonzero(res.region >= 0)
            cap = 20_000
            if show.size > cap:
                show = np.sort(ctx.rng(f"generator_modes.plot_{which}_rows").choice(
                    show, cap, replace=False))
            pts: dict[str, Any] = {
                "ids": ids[show].tolist(), "x": np.round(coords[show, 0], 4).tolist(),
                "y": np.round(coords[show, 1], 4).tolist(),
                "region": res.region[show].tolist()}
            if which == "reference":      # the reference is not on the map: draw a sample
                rest = np.flatnonzero(res.region < 0)
                rest = ctx.sample_rows(rest, 5000, "generator_modes.plot_reference_rest")
                pts["rest_x"] = np.round(coords[rest, 0], 4).tolist()
                pts["rest_y"] = np.round(coords[rest, 1], 4).tolist()
            out["points"] = pts
        return out

    @staticmethod
    def _describe(comp: dict, cols: list[str], r: int) -> list[tuple]:
        """(lift, share, column, value, overall share) of each column's most common value
        in region ``r`` that is at least 1.5 times as common as overall."""
        desc = []
        for c in cols:
            row = next((x for x in comp[c]["clusters"] if x["cluster"] == r), None)
            t = row["top"][0] if row and row["top"] else None
            if t is not None and t["share"] >= 1.5 * max(t["overall_share"], 1e-12):
                desc.append((t["share"] / max(t["overall_share"], 1e-12), t["share"], c,
                             t["value"], t["overall_share"]))
        desc.sort(key=lambda x: -x[0])
        return desc
