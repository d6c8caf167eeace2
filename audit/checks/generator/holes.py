"""``generator_holes``: regions of the prior whose decodes are unrealistic, answered with a map.

1. Realism of every generation against the real data (``ctx.generated.real``) in the
   analysis space: the realism score of Kynkäänniemi et al. (2019) over the ``candidates``
   nearest real points (:func:`audit.metrics.neighbour_realism`). A generation is
   *unrealistic* when it lies inside no real point's k-NN ball (realism <= 1: it fails
   ``prdc``'s precision rule). The balls are not pruned: the paper's pruning of the widest
   half marks the prior's tails unrealistic even for a perfect generator.
2. The generations are split at random (stream ``generator_holes.split``) into a discovery
   half and a test half. On the discovery half, unrealistic generations that are neighbours
   in the prior (``graph_k`` nearest, prior coordinates divided by the prior's per-dimension
   spread) form candidate regions (:func:`audit.metrics.prior_regions`); regions of at least
   ``min_region`` generations are kept.
3. Each test generation falls in the region its ``vote_k`` nearest discovery generations
   vote for (:func:`audit.metrics.assign_regions`); per region, the unrealistic rate inside
   is compared with the rate outside by Fisher's exact test, one-sided
   (:func:`audit.metrics.rate_excess_test`), Benjamini–Hochberg over the regions. A region
   is a prior hole when its adjusted p-value is at most ``alpha``, its unrealistic rate is
   at least ``min_rate`` and at least ``min_ratio`` times the rate outside, and it holds at
   least ``min_mass`` of the prior's mass (below that, the prior's far tails: a finite real
   sample has no points where they decode, so small unrealistic patches there are expected
   of a perfect generator; on the test world with 300 real points and 4,000–8,000
   generations they hold 0.1–0.6% of the mass, with realism 0.3–1 against about 0.05 for
   an off-manifold hole). With fewer than ``min_real`` real points a hole is an info
   finding, not flagged.
4. Each hole: its centre in prior coordinates (the coordinate-wise median of its
   unrealistic generations, ``subjects.prior_center``), its share of the prior's mass
   (``mass_draws`` fresh prior draws assigned the same way, with a Wilson interval), its
   unrealistic generations as evidence, and a grid of decoded generations from inside it.

Metrics: ``generator.prior_holes`` (holes found), ``generator.prior_hole_mass`` (share of
the prior's mass inside any hole, the same Monte Carlo draws).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ...context import Context
from ...findings import CheckResult, Finding
from ...formatting import format_p
from ...metrics import (
    assign_regions,
    benjamini_hochberg,
    knn,
    neighbour_realism,
    prior_regions,
    rate_excess_test,
    wilson_interval,
)
from ...metrics._gen_holes import prior_plane
from ..base import Check, CheckSettings, register

__all__ = ["GeneratorHolesCheck", "RealGeometry", "generator_applies", "real_geometry"]

_MIN_REAL = 20
_MIN_GENERATED = 40
_NO_GENERATOR = "no generator: in the config"
_MAX_COLUMNS = 12        # table rows: columns shown per decoded example


def generator_applies(ctx: Context) -> str | None:
    """Why a generator check cannot run on ``ctx`` (None when it can)."""
    gen = ctx.generated
    if gen is None:
        return _NO_GENERATOR
    if gen.real.n < _MIN_REAL:
        return f"needs at least {_MIN_REAL} real points (has {gen.real.n})"
    if gen.n < _MIN_GENERATED:
        return f"needs at least {_MIN_GENERATED} generations (has {gen.n})"
    return None


@dataclass
class RealGeometry:
    """The generations and the real data in one distance space, with the real k-NN graph.

    ``graph``: (distances, indices) of each real point's nearest other real points;
    ``nearest(points, k)``: the ``k`` nearest real points of ``points`` (in this space).
    ``shared``: True when it is the audit's own analysis space (``ctx.space``, graph and
    index); False when the generations are embedded by an encoder of their own.
    """

    generated: np.ndarray
    graph: tuple[np.ndarray, np.ndarray]
    nearest: Any
    shared: bool
    space: str


def real_geometry(ctx: Context, k: int) -> RealGeometry:
    """The real data (``ctx.generated.real``) and the generations in one space, with at
    least ``k`` real neighbours per real point where the data has them.

    When the real set is the audited data (``embed: encoder``) this is the audit's analysis
    space and its shared kNN graph and search (nothing is recomputed); else (an embedding
    of its own) the real latents z-scored, searched exactly."""
    gen = ctx.generated
    if gen.real is ctx.data:
        space = ctx.to_space(gen.latents)
        d, i = ctx.knn
        if d.shape[1] < min(k, ctx.n - 1):           # a graph wider than the shared one
            d, i = ctx.nearest(None, k=min(k, ctx.n - 1), among=np.arange(ctx.n))
        return RealGeometry(generated=space, graph=(d, i),
                            nearest=lambda p, kk: ctx.nearest(p, kk), shared=True,
                            space="the audit's analysis space")
    x = gen.real.latents.astype(np.float64)
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    real = ((x - mu) / sd).astype(np.float32)
    space = ((gen.latents - mu) / sd).astype(np.float32)
    graph = knn(real, k=int(min(max(k, 2), len(real) - 1)))
    return RealGeometry(generated=space, graph=graph,
                        nearest=lambda p, kk: knn(p, y=real, k=int(min(kk, len(real)))),
                        shared=False, space="the generator's own embedding, z-scored")


def _round(x, digits: int = 4) -> list:
    return [float(f"{v:.{digits}g}") for v in np.asarray(x, dtype=float).ravel()]


@register
class GeneratorHolesCheck(Check):
    """Prior holes: regions of the generator's prior whose decodes are unrealistic."""

    name = "generator_holes"
    family = "generator"
    produces: ClassVar[tuple[str, ...]] = ("generator.prior_holes", "generator.prior_hole_mass")

    class Settings(CheckSettings):
        k: int = Field(5, ge=1, le=100, description=(
            "neighbour rank of the real k-NN balls (prdc's nearest_k): a generation is "
            "realistic when it lies strictly inside one"))
        candidates: int = Field(20, ge=1, le=1000, description=(
            "nearest real points each generation's realism is measured against"))
        graph_k: int = Field(10, ge=1, le=100, description=(
            "prior neighbours that link unrealistic generations into one region"))
        vote_k: int = Field(5, ge=1, le=101, description=(
            "discovery generations whose vote places a prior point in a region"))
        holdout: float = Field(0.5, gt=0.1, lt=0.9, description=(
            "share of generations held out to test the regions found on the rest"))
        min_region: int = Field(8, ge=2, le=10_000, description=(
            "unrealistic discovery generations a region needs to be tested"))
        min_rate: float = Field(0.5, gt=0, le=1, description=(
            "unrealistic rate a hole must reach inside it"))
        min_ratio: float = Field(3.0, ge=1, description=(
            "a hole's unrealistic rate must be at least this many times the rate outside"))
        min_real: int = Field(200, ge=_MIN_REAL, description=(
            "real points needed for a hole to be flagged; with fewer, holes are reported "
            "as info (the k-NN balls of a small real sample are a crude estimate of the "
            "data's support)"))
        min_mass: float = Field(0.01, ge=0, lt=1, description=(
            "share of the prior's mass a hole must hold (the prior's far tails decode where "
            "a finite real sample has no points: tiny unrealistic patches there are "
            "expected)"))
        alpha: float = Field(0.05, gt=0, lt=1, description=(
            "false-discovery rate of the Benjamini–Hochberg correction over the regions"))
        mass_draws: int = Field(20_000, ge=1000, le=1_000_000, description=(
            "fresh prior draws that measure each hole's share of the prior's mass"))
        examples: int = Field(12, ge=1, le=64, description=(
            "decoded generations shown per hole"))
        max_holes: int = Field(10, ge=1, le=100, description="holes reported as findings")
        map_points: int = Field(4000, ge=100, le=50_000, description=(
            "generations drawn on the report's prior map"))

    def applies(self, ctx: Context) -> str | None:
        return generator_applies(ctx)

    # ------------------------------------------------------------------ run
    def run(self, ctx: Context) -> CheckResult:
        s, gen = self.settings, ctx.generated
        geo = real_geometry(ctx, s.k)
        kd, _ = geo.graph
        k = int(min(s.k, kd.shape[1]))
        radii = kd[:, k - 1].astype(np.float64)
        d, i = geo.nearest(geo.generated, int(min(s.candidates, gen.real.n)))
        realism = neighbour_realism(d, radii[i])
        bad = ~(realism > 1.0)
        overall = float(bad.mean())
        tables: dict[str, Any] = {
            "k": k, "candidates": int(d.shape[1]), "space": geo.space, "n": gen.n,
            "n_real": gen.real.n, "unrealistic": int(bad.sum()), "unrealistic_rate": overall,
            "prior": gen.prior.describe(), "kind": gen.kind, "min_rate": s.min_rate,
            "min_ratio": s.min_ratio, "alpha": s.alpha, "holes": []}
        if np.median(radii) <= 0:
            return self._not_searched(
                ctx, tables, realism, bad,
                "Most real points have k or more exact copies (their k-NN balls have "
                "radius 0), so no generation can be inside the real support: realism is "
                "undefined and holes were not searched.")

        scale = np.asarray(gen.prior.scale(), dtype=np.float64)
        zs = gen.z.astype(np.float64) / scale
        rng = ctx.rng("generator_holes.split")
        test = np.zeros(gen.n, dtype=bool)
        test[rng.permutation(gen.n)[: round(s.holdout * gen.n)]] = True
        fit = np.flatnonzero(~test)
        held = np.flatnonzero(test)
        gk = int(min(s.graph_k, len(fit) - 1))
        lab_fit = prior_regions(zs[fit], bad[fit], k=gk)
        sizes = np.bincount(lab_fit[lab_fit >= 0]) if (lab_fit >= 0).any() else np.zeros(0, int)
        cand = np.flatnonzero(sizes >= s.min_region)            # already by decreasing size
        lab_fit = np.where(np.isin(lab_fit, cand), lab_fit, -1)
        vk = int(min(s.vote_k, len(fit)))
        lab_test = assign_regions(zs[held], zs[fit], lab_fit, k=vk)
        tests = [rate_excess_test(lab_test == r, bad[held]) for r in cand]
        _, q = benjamini_hochberg([t["p_value"] for t in tests], alpha=s.alpha) \
            if tests else (None, np.zeros(0))
        # every generation's region (discovery: found; held out: voted), fresh draws' mass
        region = np.full(gen.n, -1, dtype=np.int64)
        region[fit], region[held] = lab_fit, lab_test
        draws = gen.prior.sample(s.mass_draws, ctx.rng("generator_holes.mass"))
        lab_draws = assign_regions(draws.astype(np.float64) / scale, zs[fit], lab_fit, k=vk)
        masses = [float((lab_draws == r).mean()) for r in cand]
        holes = [j for j, t in enumerate(tests)
                 if q[j] <= s.alpha and t["rate_in"] >= s.min_rate
                 and t["ratio"] >= s.min_ratio and masses[j] >= s.min_mass]
        tables.update({"tested_regions": len(cand), "discovery": len(fit),
                       "held_out": len(held), "graph_k": gk, "vote_k": vk,
                       "min_region": s.min_region, "min_mass": s.min_mass,
                       "min_real": s.min_real})
        hole_regions = [int(cand[j]) for j in holes]
        in_any = np.isin(lab_draws, hole_regions)
        metrics = {"generator.prior_holes": float(len(holes)),
                   "generator.prior_hole_mass": float(in_any.mean())}
        tables["mass_draws"] = s.mass_draws
        tables["hole_mass_ci"] = list(wilson_interval(int(in_any.sum()), s.mass_draws))

        findings, listed, images = [], [], {}
        severity = "warning" if gen.real.n >= s.min_real else "info"
        caveat = ("" if severity == "warning" else
                  f" Not flagged: the real data has only {gen.real.n} points (fewer than "
                  f"min_real = {s.min_real}), too few to tell where its support ends.")
        ex_rng = ctx.rng("generator_holes.examples")
        centres = []
        for h, j in enumerate(holes[: s.max_holes]):
            r, t = int(cand[j]), tests[j]
            members = np.flatnonzero(region == r)
            unreal = members[bad[members]]
            centre = np.median(gen.z[unreal if unreal.size else members], axis=0)
            centres.append(centre)
            n_mass = int((lab_draws == r).sum())
            mass = n_mass / s.mass_draws
            mass_ci = wilson_interval(n_mass, s.mass_draws)
            rate_ci = wilson_interval(t["flagged_in"], t["n_in"])
            pick = np.sort(ex_rng.choice(members, min(s.examples, members.size),
                                         replace=False))
            hid = f"generator_holes-{h + 1}"
            examples = self._examples(gen, pick, realism, f"hole-{h + 1}", images)
            subjects = {
                "prior_center": _round(centre, 6), "prior_mass": mass,
                "prior_mass_ci": list(mass_ci), "unrealistic_rate": t["rate_in"],
                "unrealistic_rate_ci": list(rate_ci), "rate_outside": t["rate_out"],
                "ratio": t["ratio"], "held_out_in": t["n_in"],
                "held_out_unrealistic": t["flagged_in"], "discovery_members": int(sizes[r]),
                "generations": int(members.size), "examples": [e["id"] for e in examples],
                "images": [e["image"] for e in examples if e.get("image")]}
            findings.append(Finding(
                id=hid, check=self.name, severity=severity,
                title=(f"Prior hole {h + 1}: {t['rate_in']:.0%} of generations from "
                       f"{mass:.1%} of the prior are unrealistic"),
                summary=(f"Around prior point ({', '.join(f'{v:.2f}' for v in centre[:6])}"
                         f"{', …' if len(centre) > 6 else ''}) {t['flagged_in']} of "
                         f"{t['n_in']} held-out generations lie outside the real data's "
                         f"support (rate {t['rate_in']:.2f}, 95% CI {rate_ci[0]:.2f}–"
                         f"{rate_ci[1]:.2f}), against {t['rate_out']:.3f} in the rest of the "
                         f"prior ({t['ratio']:.1f}×; Fisher's exact test, "
                         f"{format_p(q[j], name='BH-adjusted p')}). The region holds "
                         f"{mass:.1%} of the prior's mass ({mass_ci[0]:.1%}–{mass_ci[1]:.1%}, "
                         f"{s.mass_draws:,} prior draws). Its centre in prior coordinates is "
                         "subjects.prior_center; the evidence is its unrealistic "
                         "generations, and the report shows decoded examples." + caveat),
                metric="generator_holes.unrealistic_rate", value=float(t["rate_in"]),
                threshold=s.min_rate, p_value=float(q[j]), ci=rate_ci, subjects=subjects,
                evidence_ids=tuple(str(v) for v in gen.ids[unreal[:100]])))
            listed.append({"id": hid, "region": r, **{kk: subjects[kk] for kk in (
                "prior_center", "prior_mass", "prior_mass_ci", "unrealistic_rate",
                "unrealistic_rate_ci", "rate_outside", "ratio", "held_out_in",
                "held_out_unrealistic", "generations")}, "p_value": float(q[j]),
                "examples": examples})
        if len(holes) > s.max_holes:
            tables["not_listed"] = len(holes) - s.max_holes
        tables["holes"] = listed
        tables["regions"] = [{"region": int(cand[j]), "members": int(sizes[cand[j]]),
                              "held_out_in": t["n_in"], "rate_in": t["rate_in"],
                              "rate_out": t["rate_out"], "ratio": t["ratio"],
                              "prior_mass": masses[j], "p_value": float(q[j]),
                              "hole": j in holes}
                             for j, t in enumerate(tests)][:50]
        tables["map"] = self._map(ctx, gen, realism, bad, region,
                                  {int(cand[j]): h + 1 for h, j in
                                   enumerate(holes[: s.max_holes])}, centres)
        return CheckResult(check=self.name, status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables,
                           display=({"kind": "prior_map"},), images=images)

    # ------------------------------------------------------------------ helpers
    def _not_searched(self, ctx: Context, tables: dict[str, Any], realism: np.ndarray,
                      bad: np.ndarray, note: str) -> CheckResult:
        nan = float("nan")
        gen = ctx.generated
        tables.update({"searched": False, "note": note,
                       "map": self._map(ctx, gen, realism, bad,
                                        np.full(gen.n, -1), {}, [])})
        return CheckResult(
            check=self.name, status="ok",
            metrics={"generator.prior_holes": nan, "generator.prior_hole_mass": nan},
            findings=(Finding(id="generator_holes-not-searched", check=self.name,
                              severity="info", title="Prior holes not searched",
                              summary=note, metric="generator.prior_holes", value=None),),
            tables=tables, display=({"kind": "prior_map"},))

    def _examples(self, gen, idx: np.ndarray, realism: np.ndarray, key: str,
                  images: dict[str, Any]) -> list[dict[str, Any]]:
        """Decoded generations ``idx``: images go to ``images`` (keys ``<key>-<n>``),
        table rows into the returned entries."""
        out = []
        outputs = gen.outputs(idx)
        for n, (g, o) in enumerate(zip(idx, outputs)):
            e = {"id": str(gen.ids[g]), "realism": float(min(realism[g], 1e6)),
                 "prior": _round(gen.z[g][:6])}
            if gen.kind == "image":
                images[f"{key}-{n + 1}"] = np.asarray(o)
                e["image"] = f"{key}-{n + 1}"
            else:
                e["row"] = _round(np.asarray(o)[:_MAX_COLUMNS])
            out.append(e)
        return out

    def _map(self, ctx: Context, gen, realism: np.ndarray, bad: np.ndarray,
             region: np.ndarray, hole_of: dict[int, int], centres: list) -> dict[str, Any]:
        """The prior map: a sample of generations in a 2-D plane of the prior (its first
        two dimensions, or a plane through the hole centres and the prior's widest
        directions), coloured by realism, hole members marked."""
        rows = ctx.sample_rows(gen.n, self.settings.map_points, "generator_holes.map_rows")
        # every hole member drawn is kept visible: add up to 200 members per hole
        extra = [np.flatnonzero(region == r)[:200] for r in hole_of]
        rows = np.unique(np.concatenate([rows, *extra])) if extra else rows
        c = np.array(centres, dtype=np.float64).reshape(len(centres), gen.z.shape[1])
        mean, basis, axes = prior_plane(gen.z, c)
        xy = (gen.z[rows] - mean) @ basis.T
        cxy = (c - mean) @ basis.T
        log_r = np.log10(np.clip(realism[rows], 1e-2, 1e2))
        return {"ids": [str(v) for v in gen.ids[rows]], "x": _round(xy[:, 0]),
                "y": _round(xy[:, 1]), "log_realism": _round(log_r, 3),
                "unrealistic": bad[rows].astype(int).tolist(),
                "hole": [hole_of.get(int(r), 0) for r in region[rows]],
                "centres": [_round(c) for c in cxy], "axes": axes, "n": int(gen.n),
                "shown": len(rows)}
