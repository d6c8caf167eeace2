"""``generator_fidelity``: how real the generations look and how much of the real data they
reach: precision, recall, density and coverage (Naeem et al., 2020; equal to ``prdc`` on
the same arrays) and the realism score of each generation (Kynkäänniemi et al., 2019).

Everything is measured in the audit's analysis space, the generations placed in it with
the data's own scaling and projection (``ctx.to_space``). Each number gets an interval
given the other set (:func:`audit.metrics.prdc_intervals`, Bonferroni over precision,
recall and coverage) and is compared with what a generator that samples the real
distribution itself would get: for precision (and recall), the leave-one-out estimate
from the real points' k-NN graph (:func:`audit.metrics.null_precision`); for coverage,
the exact chance rate (:func:`audit.metrics.chance_uncovered_rate`). Precision or coverage
whose whole interval lies more than the setting's gap below that level is flagged; low
recall is an info finding (it also falls when generations are merely tighter than the
data, e.g. decodes without the data's noise). See docs/checks/generator.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ...context import Context
from ...findings import CheckResult, Finding
from ...metrics import (chance_uncovered_rate, knn, null_precision, prdc_indicators,
                        prdc_intervals, realism_score)
from ..base import Check, CheckSettings, register

__all__ = ["FidelityCheck", "GeneratorSpaces", "generator_spaces", "distinct_count"]

NAME = "generator_fidelity"
_MIN_POINTS = 20
_LOWEST = 8            # least realistic generations shown
_EVIDENCE = 200        # ids kept per finding
_REALISM_TABLE = 100_000   # up to this many generations, every realism score is in tables


@dataclass(frozen=True, eq=False)
class GeneratorSpaces:
    """The real data, the generations and the reference in one space (float64).

    ``shared``: the real set is the audited data (``embed: encoder``), so the context's
    graphs, clusters and 2-D map describe it; otherwise (an ``embed`` encoder of its own)
    the raw embeddings are used and nothing from the context applies.
    """

    real: np.ndarray
    fake: np.ndarray
    reference: np.ndarray | None
    shared: bool
    note: str | None = None


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if a is b:
        return True
    return (a.latents.shape == b.latents.shape
            and np.array_equal(a.latents, b.latents))


def generator_spaces(ctx: Context) -> GeneratorSpaces:
    """The sets a generator check measures, in the audit's analysis space when the real
    set is the audited data (the usual ``embed: encoder``)."""
    gen = ctx.generated
    if _same(gen.real, ctx.data):
        ref = None
        if gen.reference is not None:
            ref = (ctx.reference_space if _same(gen.reference, ctx.reference)
                   else ctx.to_space(gen.reference.latents))
        return GeneratorSpaces(
            real=np.asarray(ctx.space, dtype=np.float64),
            fake=np.asarray(ctx.to_space(gen.latents), dtype=np.float64),
            reference=None if ref is None else np.asarray(ref, dtype=np.float64),
            shared=True)
    note = ("The generations and the real data are embedded with an encoder of their own "
            "(generator.embed), so they are measured in that embedding's raw coordinates, "
            "not on the audit's map"
            + ("; the reference, encoded by the audit's encoder, is not compared"
               if gen.reference is not None else "") + ".")
    return GeneratorSpaces(real=np.asarray(gen.real.latents, dtype=np.float64),
                           fake=np.asarray(gen.latents, dtype=np.float64), reference=None,
                           shared=False, note=note)


def distinct_count(x: np.ndarray) -> int:
    """Distinct rows of ``x``."""
    return int(np.unique(np.asarray(x), axis=0).shape[0]) if len(x) else 0


def generator_applies(ctx: Context, k: int) -> str | None:
    """Why a generator check cannot run on ``ctx`` (None when it can)."""
    gen = getattr(ctx, "generated", None)
    if gen is None:
        return "no generator: in the config"
    need = max(_MIN_POINTS, k + 1)
    if gen.n < need:
        return f"needs at least {need} generations (has {gen.n})"
    if gen.real.n < need:
        return f"needs at least {need} real points (has {gen.real.n})"
    return None


def _rounded(x: np.ndarray, digits: int = 4) -> list:
    """Finite values rounded (to JSON), infinities as None."""
    out = np.round(np.asarray(x, dtype=np.float64), digits).astype(object)
    out[~np.isfinite(np.asarray(x, dtype=np.float64))] = None
    return out.tolist()


@register
class FidelityCheck(Check):
    """Generator fidelity: precision, recall, density, coverage and realism of generations."""

    name = NAME
    family = "generator"
    produces: ClassVar[tuple[str, ...]] = (
        "generator.precision", "generator.recall", "generator.density",
        "generator.coverage", "generator.precision_null", "generator.coverage_null",
        "generator.realism_median", "generator.unrealistic_fraction",
        "generator.reference.precision", "generator.reference.recall",
        "generator.reference.density", "generator.reference.coverage",
    )

    class Settings(CheckSettings):
        k: int = Field(5, ge=1, le=100, description=(
            "k of the k-NN balls (Naeem et al. use 5) and of the realism score's radii"))
        alpha: float = Field(0.05, gt=0, lt=1, description=(
            "error rate of the intervals: each is at 1 - alpha/3 (Bonferroni over "
            "precision, recall and coverage)"))
        max_precision_gap: float = Field(0.03, ge=0, le=1, description=(
            "a warning when precision's interval lies wholly this far below the precision "
            "a sample of the real distribution gets (more generations outside the real "
            "data's support than chance leaves)"))
        critical_precision_gap: float = Field(0.2, ge=0, le=1, description=(
            "critical when precision's interval lies wholly this far below that level"))
        max_recall_gap: float = Field(0.4, ge=0, le=1, description=(
            "an info finding when recall's interval lies wholly this far below the level "
            "a sample of the real distribution gets (recall is not flagged: it also drops "
            "when generations are tighter than the data, e.g. noise-free decodes, without "
            "missing any region; coverage and generator_modes test that)"))
        max_coverage_gap: float = Field(0.1, ge=0, le=1, description=(
            "a warning when coverage's interval lies wholly this far below its chance "
            "level (the share of real balls a sample of the real distribution fills)"))
        sample: int = Field(10_000, ge=100, description=(
            "precision, recall, density and coverage (every real-generation distance) use "
            "a seeded sample of at most this many real points and as many generations; "
            "the realism score is computed for every generation against that real sample"))
        plot_generations: int = Field(5000, ge=100, le=100_000, description=(
            "generations drawn on the map (a seeded sample beyond it)"))
        grid: int = Field(12, ge=0, le=200, description=(
            "random generations shown with their realism score (0: none)"))

    def applies(self, ctx: Context) -> str | None:
        return generator_applies(ctx, self.settings.k)

    # ------------------------------------------------------------------ run
    def run(self, ctx: Context) -> CheckResult:
        s, gen = self.settings, ctx.generated
        sp = generator_spaces(ctx)
        real, fake = sp.real, sp.fake
        n, g = len(real), len(fake)
        rr = ctx.sample_rows(n, s.sample, "generator_fidelity.real_rows")
        fr = ctx.sample_rows(g, s.sample, "generator_fidelity.generated_rows")
        sampled = len(rr) < n or len(fr) < g
        k = int(min(s.k, len(rr) - 1, len(fr) - 1))
        ind = prdc_indicators(real[rr], fake[fr], k=k)
        conf = 1.0 - s.alpha / 3
        ci = prdc_intervals(ind, confidence=conf)
        realism = realism_score(real[rr], fake, k=k, radii=ind["real_radii"])
        # the levels a sample of the real distribution reaches, from the real points used
        graph = self._real_graph(ctx, sp, rr, k)
        p_null = null_precision(graph, k)
        kept = ind["real_radii"] <= np.median(ind["real_radii"])
        realism_null = null_precision(graph, k, balls=kept)
        c_null = 1.0 - chance_uncovered_rate(len(rr), len(fr), k)

        metrics = {f"generator.{m}": float(ind[m])
                   for m in ("precision", "recall", "density", "coverage")}
        metrics.update({
            "generator.precision_null": p_null, "generator.coverage_null": c_null,
            "generator.realism_median": float(np.median(realism)),
            "generator.unrealistic_fraction": float((realism < 1).mean())})
        tables: dict[str, Any] = {
            "k": k, "n_real": n, "n_generated": g, "kind": gen.kind,
            "sample": {"real": int(len(rr)), "generated": int(len(fr)),
                       "sampled": bool(sampled), "cap": s.sample},
            "confidence": conf, "intervals": {m: list(v) for m, v in ci.items()},
            "precision_null": p_null, "coverage_null": c_null,
            "unrealistic_null": 1.0 - realism_null,
            "space_note": sp.note,
            "realism_quantiles": dict(zip(
                ("q05", "q25", "q50", "q75", "q95"),
                _rounded(np.quantile(realism, [0.05, 0.25, 0.5, 0.75, 0.95])))),
        }
        if g <= _REALISM_TABLE:        # every generation's score (report only)
            tables["realism"] = _rounded(realism)
        findings: list[Finding] = []
        distinct = distinct_count(fake[fr])
        if distinct < max(_MIN_POINTS, 2 * k + 2) or distinct_count(real[rr]) <= 2 * k:
            findings.append(self._degenerate(distinct, len(fr), k, tables))
        else:
            findings += self._findings(ctx, s, ind, ci, k, p_null, c_null, rr, fr,
                                       realism, sp)
        if sampled:
            findings.append(Finding(
                id=f"{NAME}-sample", check=NAME, severity="info",
                title=f"Fidelity measured on a sample of {len(fr):,} generations and "
                      f"{len(rr):,} real points",
                summary=(f"Precision, recall, density and coverage need every "
                         f"real-generation distance, so they use a seeded sample of at most "
                         f"{s.sample:,} points of each set (setting sample); the realism "
                         f"score of all {g:,} generations is measured against the same "
                         "real sample."),
                metric="generator.precision", value=float(ind["precision"]),
                subjects={"real": int(len(rr)), "generated": int(len(fr)),
                          "n_real": n, "n_generated": g}))
        if sp.reference is not None:
            self._reference(ctx, s, sp, fake[fr], k, conf, metrics, tables, findings)
        display: list[dict[str, Any]] = []
        if sp.shared:
            tables["map"] = self._map(ctx, s, gen, g, realism)
            display.append({"kind": "generator_fidelity_map", "wide": True})
        images = self._examples(ctx, s, gen, realism, tables)
        return CheckResult(check=NAME, status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables,
                           display=tuple(display), images=images)

    # ------------------------------------------------------------------ statistics
    @staticmethod
    def _real_graph(ctx: Context, sp: GeneratorSpaces, rows: np.ndarray, k: int
                    ) -> np.ndarray:
        """A self-excluding k-NN graph (k columns) of the real points used."""
        if sp.shared and len(rows) == ctx.n and k <= ctx.k:
            return ctx.knn[1][:, :k]
        return knn(sp.real[rows], k=k)[1]

    def _degenerate(self, distinct: int, g: int, k: int, tables: dict) -> Finding:
        few = max(_MIN_POINTS, 2 * k + 2)
        what = (f"the {g:,} generations measured hold only {distinct} distinct point(s)"
                if distinct < few else "the real points hold too few distinct points")
        note = (f"Not tested: {what}, so the k-NN balls are empty or collapsed and "
                "precision, recall and coverage describe that rather than the generator's "
                "quality."
                + (" A generator whose samples are (nearly) all the same has collapsed: "
                   "check the decoder and the prior." if distinct < few else ""))
        tables["degenerate"] = note
        return Finding(id=f"{NAME}-degenerate", check=NAME, severity="info",
                       title=(f"Only {distinct} distinct generation(s): fidelity not tested"
                              if distinct < few else
                              "Too few distinct real points: fidelity not tested"),
                       summary=note, metric="generator.precision", value=None,
                       threshold=float(few), subjects={"distinct": distinct, "generated": g})

    def _findings(self, ctx: Context, s: Any, ind: dict, ci: dict, k: int, p_null: float,
                  c_null: float, rr: np.ndarray, fr: np.ndarray, realism: np.ndarray,
                  sp: GeneratorSpaces) -> list[Finding]:
        out = []
        gen_ids = ctx.generated.ids
        real_ids = ctx.generated.real.ids
        conf = f"{100 * (1 - s.alpha / 3):.1f}%"
        # precision: generations outside every real ball, least realistic first
        hi = ci["precision"][1]
        gap = p_null - hi
        if gap > s.max_precision_gap:
            outside = fr[~ind["precise"]]
            outside = outside[np.argsort(realism[outside], kind="stable")]
            critical = gap > s.critical_precision_gap
            out.append(Finding(
                id=f"{NAME}-precision", check=NAME,
                severity="critical" if critical else "warning",
                title=f"Precision {ind['precision']:.1%}: {1 - ind['precision']:.1%} of "
                      "generations fall outside the real data",
                summary=(f"{int((~ind['precise']).sum()):,} of {len(fr):,} generations lie "
                         f"in no real point's {k}-NN ball ({conf} interval of precision "
                         f"{ci['precision'][0]:.3f}–{hi:.3f}). A sample of the real "
                         f"distribution itself would reach about {p_null:.3f} (leave-one-out "
                         f"on the real points), so at least {gap:.1%} of generations are "
                         "off the data beyond chance. The evidence lists them, least "
                         "realistic first; generator_holes says where in the prior they "
                         "come from."),
                metric="generator.precision", value=float(ind["precision"]),
                threshold=p_null - (s.critical_precision_gap if critical
                                    else s.max_precision_gap),
                ci=tuple(ci["precision"]),
                subjects={"null": p_null, "gap": gap, "k": k, "outside": int(outside.size),
                          "generated": int(len(fr))},
                evidence_ids=tuple(str(i) for i in gen_ids[outside[:_EVIDENCE]])))
        # recall: real points no generation's ball reaches. Reported, not flagged: it also
        # falls when generations are tighter than the data at the scale of their own balls
        # (decodes without the data's noise), more so the more generations are drawn,
        # without any region being missed; coverage (below) and generator_modes test that.
        hi = ci["recall"][1]
        if p_null - hi > s.max_recall_gap:
            missed = rr[~ind["recalled"]]
            out.append(Finding(
                id=f"{NAME}-recall", check=NAME, severity="info",
                title=f"Recall {ind['recall']:.1%}: much of the real data lies outside "
                      "every generation's ball",
                summary=(f"{int(missed.size):,} of {len(rr):,} real points lie in no "
                         f"generation's {k}-NN ball ({conf} interval of recall "
                         f"{ci['recall'][0]:.3f}–{hi:.3f}, against about {p_null:.3f} for a "
                         "sample of the real distribution). The generations are less "
                         "varied than the data at the scale of their own balls: either "
                         "regions are missing (then coverage is low too, and "
                         "generator_modes shows where) or every generation is tighter than "
                         "the data around it (e.g. decodes without the data's noise or "
                         "detail), which lowers recall more the more generations are "
                         "drawn. Not flagged for that reason."),
                metric="generator.recall", value=float(ind["recall"]),
                threshold=p_null - s.max_recall_gap, ci=tuple(ci["recall"]),
                subjects={"null": p_null, "gap": p_null - hi, "k": k,
                          "missed": int(missed.size)},
                evidence_ids=tuple(str(i) for i in real_ids[missed[:_EVIDENCE]])))
        # coverage: real balls no generation enters, against the chance rate
        hi = ci["coverage"][1]
        if c_null - hi > s.max_coverage_gap:
            empty = rr[~ind["covered"]]
            out.append(Finding(
                id=f"{NAME}-coverage", check=NAME, severity="warning",
                title=f"Coverage {ind['coverage']:.1%}: {1 - ind['coverage']:.1%} of the "
                      "real data gets no generation nearby",
                summary=(f"{int(empty.size):,} of {len(rr):,} real points have no "
                         f"generation inside their {k}-NN ball ({conf} interval of coverage "
                         f"{ci['coverage'][0]:.3f}–{hi:.3f}); chance alone leaves "
                         f"{1 - c_null:.1%} of them empty with {len(fr):,} generations. "
                         "generator_modes groups them into regions."),
                metric="generator.coverage", value=float(ind["coverage"]),
                threshold=c_null - s.max_coverage_gap, ci=tuple(ci["coverage"]),
                subjects={"null": c_null, "gap": c_null - hi, "k": k,
                          "uncovered": int(empty.size)},
                evidence_ids=tuple(str(i) for i in real_ids[empty[:_EVIDENCE]])))
        return out

    def _reference(self, ctx: Context, s: Any, sp: GeneratorSpaces, fake: np.ndarray,
                   k: int, conf: float, metrics: dict, tables: dict,
                   findings: list[Finding]) -> None:
        """The four numbers against the reference (reported, not tested)."""
        ref = sp.reference
        rows = ctx.sample_rows(len(ref), s.sample, "generator_fidelity.reference_rows")
        kr = int(min(k, len(rows) - 1))
        if kr < 1:
            return
        ind = prdc_indicators(ref[rows], fake, k=kr)
        ci = prdc_intervals(ind, confidence=conf)
        for m in ("precision", "recall", "density", "coverage"):
            metrics[f"generator.reference.{m}"] = float(ind[m])
        tables["reference"] = {"k": kr, "n": int(len(ref)), "sample": int(len(rows)),
                               "intervals": {m: list(v) for m, v in ci.items()},
                               **{m: float(ind[m]) for m in
                                  ("precision", "recall", "density", "coverage")}}
        findings.append(Finding(
            id=f"{NAME}-reference", check=NAME, severity="info",
            title=f"Against the reference: precision {ind['precision']:.1%}, coverage "
                  f"{ind['coverage']:.1%}",
            summary=(f"The generations measured against the reference ({len(rows):,} "
                     f"points) instead of the data: precision {ind['precision']:.3f}, "
                     f"recall {ind['recall']:.3f}, density {ind['density']:.3f}, coverage "
                     f"{ind['coverage']:.3f}. generator_modes lists the reference regions "
                     "the generations never reach."),
            metric="generator.reference.coverage", value=float(ind["coverage"]),
            ci=tuple(ci["coverage"]), subjects={"k": kr}))

    # ------------------------------------------------------------------ report
    def _map(self, ctx: Context, s: Any, gen: Any, g: int, realism: np.ndarray
             ) -> dict[str, Any]:
        rows = ctx.sample_rows(g, s.plot_generations, "generator_fidelity.plot_rows")
        xy = ctx.place_on_map(gen.latents[rows])
        return {"rows": rows.tolist(), "x": _rounded(xy[:, 0]), "y": _rounded(xy[:, 1]),
                "realism": _rounded(realism[rows]),
                "sampled": bool(len(rows) < g), "shown": int(len(rows)), "n": g}

    def _examples(self, ctx: Context, s: Any, gen: Any, realism: np.ndarray,
                  tables: dict) -> dict[str, np.ndarray]:
        """A grid of random generations and the least realistic ones, with realism."""
        g = gen.n
        grid = (np.sort(ctx.rng("generator_fidelity.grid_rows").choice(
            g, min(s.grid, g), replace=False)) if s.grid else np.zeros(0, dtype=int))
        order = np.argsort(realism, kind="stable")
        lowest = order[:min(_LOWEST, g)]
        images: dict[str, np.ndarray] = {}
        ids = gen.ids
        entries = {}
        for name, idx in (("grid", grid), ("lowest", lowest)):
            items = []
            for i in idx:
                item = {"id": str(ids[i]), "realism": _rounded([realism[i]])[0]}
                if gen.kind == "image":
                    key = f"{NAME}-{ids[i]}"
                    images[key] = np.asarray(gen.images[i])
                    item["image"] = key
                else:
                    item["row"] = _rounded(np.asarray(gen.rows[i])[:12])
                items.append(item)
            entries[name] = items
        tables["grid"] = entries["grid"]
        tables["lowest"] = entries["lowest"]
        if gen.kind != "image" and gen.rows is not None:
            tables["row_columns"] = [f"x{j}" for j in range(min(12, gen.rows.shape[1]))]
            tables["row_width"] = int(gen.rows.shape[1])
        return images
