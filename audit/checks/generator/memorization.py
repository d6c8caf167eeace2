"""``generator_memorization``: generations that are near-copies of a real sample, much closer
to it than real samples are to each other.

For every generation, its nearest real point (``ctx.generated.real``, in the analysis
space: the audit's shared search when the real set is the audited data) and the distance
``d_g`` to it. The statistic is ``d_g`` divided by that real point's own nearest-neighbour
distance (``scale: local``, the default) or ``d_g`` itself (``scale: global``). Its null is
the same statistic for every real point measured against the other real points
(leave-one-out, from the shared kNN graph: :func:`audit.metrics.loo_nearest_null`). A
generation is a near-copy when its statistic is at most ``shrink`` times the null's
``quantile`` ("much closer than real samples are to each other"); the share of near-copies
is compared with the share of real points below the same threshold by Fisher's exact test,
one-sided (:func:`audit.metrics.copy_test`). The finding is a warning when ``p <= alpha``,
the share is at least ``min_ratio`` times the expected one and exceeds it by
``min_excess``; an info finding when only the test is significant; none otherwise.

Why ``shrink`` and the local scale: a generator with no memorisation at all whose outputs
are cleaner than the noisy real data lands closer to real points than real points lie to
each other. On the test worlds, the share of clean generations below the null's 1%
quantile itself is 2.2–3.8% (6-D rows, absolute distance), 1.3–2.1% (local ratio) and
53–59% (8×8 noisy images, absolute distance: in high dimensions the noise makes even the
smallest real-to-real distances larger than a clean output's); at half that quantile it is
at most 0.17% in every case, while exact and near-exact copies stay far below it. The
local ratio also discounts generators that favour the dense parts of the data.

Evidence: the pairs (generation, real point) with their distances, closest first; the
report shows them side by side (decoded image and real image, or both rows).
Metrics: ``generator.memorized_fraction`` (share of generations that are near-copies) and
``generator.memorized_expected`` (the share expected by chance: real points below the
threshold).
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ...context import Context
from ...findings import CheckResult, Finding
from ...formatting import format_p
from ...metrics import copy_ratios, copy_test, loo_nearest_null
from ..base import Check, CheckSettings, register
from .holes import generator_applies, real_geometry

__all__ = ["GeneratorMemorizationCheck"]

_MAX_COLUMNS = 12
_HIST_BINS = 40


def _round(x, digits: int = 4) -> list:
    return [float(f"{v:.{digits}g}") for v in np.asarray(x, dtype=float).ravel()]


@register
class GeneratorMemorizationCheck(Check):
    """Memorisation: generations that are near-copies of a real sample."""

    name = "generator_memorization"
    family = "generator"
    produces: ClassVar[tuple[str, ...]] = ("generator.memorized_fraction",
                                           "generator.memorized_expected")

    class Settings(CheckSettings):
        quantile: float = Field(0.01, gt=0, le=0.2, description=(
            "quantile of the real points' leave-one-out statistic that sets the threshold"))
        shrink: float = Field(0.5, gt=0, le=1, description=(
            "a generation is a near-copy when its statistic is at most this times that "
            "quantile (1: the quantile itself)"))
        scale: Literal["local", "global"] = Field("local", description=(
            "local: distance to the nearest real point over that point's own nearest-"
            "neighbour distance; global: the distance itself"))
        alpha: float = Field(0.05, gt=0, lt=1, description="significance level of the test")
        min_ratio: float = Field(3.0, ge=1, description=(
            "flag only when the near-copy share is at least this many times the expected"))
        min_excess: float = Field(0.01, ge=0, le=1, description=(
            "flag only when the near-copy share exceeds the expected one by this much "
            "(a share of all generations)"))
        max_pairs: int = Field(16, ge=1, le=500, description=(
            "near-copy pairs listed in the report (closest first)"))

    def applies(self, ctx: Context) -> str | None:
        return generator_applies(ctx)

    def run(self, ctx: Context) -> CheckResult:
        s, gen = self.settings, ctx.generated
        real = gen.real
        geo = real_geometry(ctx, 2)
        kd, ki = geo.graph
        d, i = geo.nearest(geo.generated, 1)
        d, nearest = d[:, 0].astype(np.float64), i[:, 0]
        local = s.scale == "local" and kd.shape[1] >= 2
        null = loo_nearest_null(kd[:, :2], ki[:, :2], local=local)
        stat = copy_ratios(d, kd[nearest, 0].astype(np.float64)) if local else d
        # exact duplicates among the real points score 0 and would set a threshold of 0
        # (only exact copies caught): they count once, through the positive scores
        positive = null[null > 0]
        t = copy_test(stat, positive if positive.size >= 20 else null, quantile=s.quantile,
                      shrink=s.shrink)
        copies = np.flatnonzero(t["copies"])
        order = copies[np.lexsort((copies, d[copies], stat[copies]))]
        metrics = {"generator.memorized_fraction": float(t["fraction"]),
                   "generator.memorized_expected": float(t["expected"])}
        excess = t["fraction"] - t["expected"]
        flagged = (t["p_value"] <= s.alpha and t["ratio"] >= s.min_ratio
                   and excess >= s.min_excess)
        images: dict[str, Any] = {}
        pairs = self._pairs(ctx, order[: s.max_pairs], nearest, d, stat, images)
        distinct = int(np.unique(nearest[copies]).size)
        tables = {
            "scale": "local" if local else "global", "quantile": s.quantile, "shrink": s.shrink,
            "threshold": t["threshold"], "space": geo.space, "n": gen.n, "n_real": real.n,
            "copies": t["observed"], "distinct_real": distinct,
            "fraction": t["fraction"], "fraction_ci": list(t["fraction_ci"]),
            "expected": t["expected"], "ratio": t["ratio"], "ratio_ci": list(t["ratio_ci"]),
            "p_value": t["p_value"], "alpha": s.alpha, "min_ratio": s.min_ratio,
            "min_excess": s.min_excess, "flagged": bool(flagged), "kind": gen.kind,
            "pairs": pairs, "not_listed": max(0, int(copies.size) - len(pairs)),
            "real_duplicates": float((null == 0).mean()),
            "histogram": _histogram(stat, null, t["threshold"])}
        findings = []
        if flagged or (copies.size and t["p_value"] <= s.alpha):     # else: chance, say nothing
            ev: list[str] = []
            for g in order[:50]:
                ev += [str(gen.ids[g]), str(real.ids[nearest[g]])]
            subjects = {
                "pairs": [{"generated": p["generated"], "real": p["real"],
                           "distance": p["distance"]} for p in pairs],
                "expected": t["expected"], "ratio": t["ratio"],
                "ratio_ci": list(t["ratio_ci"]), "threshold": t["threshold"],
                "scale": tables["scale"], "copies": t["observed"],
                "distinct_real": distinct}
            what = ("closer to a real sample, relative to the spacing of the real data "
                    "there," if local else "closer to a real sample")
            findings.append(Finding(
                id="generator_memorization-1", check=self.name,
                severity="warning" if flagged else "info",
                title=(f"{t['fraction']:.1%} of generations are near-copies of real samples"
                       + ("" if flagged else " (more than chance, below the thresholds)")),
                summary=(f"{t['observed']} of {gen.n} generations ({t['fraction']:.2%}, 95% CI "
                         f"{t['fraction_ci'][0]:.2%}–{t['fraction_ci'][1]:.2%}) lie {what} "
                         f"than {s.shrink:g}× the distance within which only "
                         f"{s.quantile:.0%} of real samples have their nearest neighbour; "
                         f"{t['expected']:.2%} of real samples are that close to another "
                         f"({t['ratio']:.1f}×; Fisher's exact test, {format_p(t['p_value'])})."
                         f" They copy {distinct} distinct real samples. The evidence lists "
                         "each generation with the real sample it copies, closest first."),
                metric="generator.memorized_fraction", value=float(t["fraction"]),
                threshold=float(max(t["expected"] * s.min_ratio,
                                    t["expected"] + s.min_excess)),
                p_value=float(t["p_value"]),
                ci=tuple(t["fraction_ci"]), subjects=subjects, evidence_ids=tuple(ev)))
        return CheckResult(check=self.name, status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables,
                           display=({"kind": "copy_distances"},), images=images)

    def _pairs(self, ctx: Context, idx: np.ndarray, nearest: np.ndarray, d: np.ndarray,
               stat: np.ndarray, images: dict[str, Any]) -> list[dict[str, Any]]:
        """Each near-copy with its real sample: ids, distance, and both outputs (images
        into ``images``, rows inline)."""
        gen = ctx.generated
        real = gen.real
        data = ctx.data            # an embedding of its own keeps the data's rows and ids
        same_rows = real is data or (real.n == data.n and np.array_equal(real.ids, data.ids))
        real_images = real.images if real.images is not None else (
            data.images if same_rows else None)
        identity = (gen.kind == "table" and gen.rows is not None
                    and gen.rows.shape == gen.latents.shape
                    and np.allclose(gen.rows[:256], gen.latents[:256]))
        out = []
        if not idx.size:
            return out
        outputs = gen.outputs(idx)
        for n, (g, o) in enumerate(zip(idx, outputs)):
            r = int(nearest[g])
            p = {"generated": str(gen.ids[g]), "real": str(real.ids[r]),
                 "distance": float(d[g]), "statistic": float(min(stat[g], 1e300))}
            if gen.kind == "image":
                images[f"pair-{n + 1}-generated"] = np.asarray(o)
                p["generated_image"] = f"pair-{n + 1}-generated"
                if real_images is not None:
                    images[f"pair-{n + 1}-real"] = np.asarray(real_images[r])
                    p["real_image"] = f"pair-{n + 1}-real"
            else:
                p["generated_row"] = _round(np.asarray(o)[:_MAX_COLUMNS])
                if identity:       # generations embed as themselves: the real latents are rows
                    p["real_row"] = _round(real.latents[r][:_MAX_COLUMNS])
            out.append(p)
        return out


def _histogram(stat: np.ndarray, null: np.ndarray, threshold: float) -> dict[str, Any]:
    """Both statistics on one log10 grid (densities), zeros and infinities counted apart."""
    def finite_pos(x):
        return x[np.isfinite(x) & (x > 0)]
    both = np.concatenate([finite_pos(stat), finite_pos(null)])
    if both.size == 0:
        edges = np.array([-1.0, 0.0])
    else:
        lo, hi = np.log10(both.min()), np.log10(both.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1, _HIST_BINS + 1)

    def hist(x):
        h = np.histogram(np.log10(finite_pos(x)), bins=edges)[0] if finite_pos(x).size \
            else np.zeros(len(edges) - 1)
        return _round(h / max(len(x), 1))
    return {"log10_edges": _round(edges), "generated": hist(stat), "real": hist(null),
            "zeros": {"generated": float((stat == 0).mean()), "real": float((null == 0).mean())},
            "log10_threshold": float(np.log10(threshold)) if threshold > 0 else None}
