"""``generator_smoothness``: along interpolations between prior samples, how far the
decoded output moves per step, and the regions of the prior where a small move makes a
large jump.

**Paths.** ``n_paths`` random pairs of distinct generations (``ctx.generated.z``, so each
path's ends are generations with ids) are joined by ``steps`` equal steps in the prior.
A Gaussian prior is interpolated spherically (slerp, White 2016): its mass lies on a
shell of radius about √k, and a straight line between two draws dips to norm √(k/2) at
its middle, a place the decoder was never trained on, so linear paths would report the
decoder leaving its training distribution as "jumps"; slerp keeps the norm between the
two ends' norms. A uniform box and a fitted mixture (``latents``) are interpolated on
straight lines (the box is convex; a mixture has no centre to turn around), as is any
1-D prior. ``interpolation`` overrides it.

**Step sizes.** Every point of every path is decoded and re-embedded in one call
(``ctx.generated.render``), in the audit's analysis space when the generations are
embedded with the audit's encoder. A step's *stretch* is its embedding distance divided by
its prior length (prior units: each coordinate divided by the prior's spread), so paths
of different lengths compare; ``generator.smoothness.median_step`` is the median stretch.

**Jumps.** A step is a jump when two things hold:

1. *Much larger than the typical step* (the screen): its ratio to the median stretch
   exceeds ``exp(z σ)``, σ the robust standard deviation of the log ratios (1.4826 × MAD,
   which the few steps across a discontinuity do not move) and ``z`` the normal quantile at
   ``screen_alpha / n_steps`` (Bonferroni over every step), and at least ``min_ratio``.
2. *It stays whole when the step is made smaller* (the refinement): the step is cut into
   ``refine`` sub-steps, decoded and re-embedded; a discontinuity puts its jump into one
   sub-step (which carries at least ``min_share`` of the step's movement), while a steep
   but smooth stretch spreads over all of them (about ``1/refine`` each). This is what
   "a small move in the prior makes a large jump" means, and it keeps smooth but steep
   decoders from being flagged.

``generator.smoothness.jump_fraction`` is the share of all steps that are jumps;
``generator.smoothness.max_step_ratio`` the largest ratio of a step to the median.

**Regions, found on one half of the paths and tested on the other.** The paths are split
in two halves at random; the jumps of each half propose candidates, which are tested on
the other half's paths only (so no test grades its own selection), and every candidate's
p-value enters one Benjamini–Hochberg correction. Two kinds of candidate:

- *local regions*: jumps (located at the prior midpoint of the sub-step that holds the
  jump) closer than ``region_radius × √k`` prior units, linked by single linkage. Tested
  on the held-out paths: do the paths that pass within that reach of the region jump
  there more often than the paths that pass near no region jump at all (one-sided
  Fisher exact test on paths; conservative, as a background path has more steps to
  jump on)?
- *surfaces*: jumps that change the output in the same direction (``|cos| >= min_cos``
  between their embedding jump vectors, single linkage) wherever they happen: one
  discontinuity changes the output the same way all along its surface, so this finds
  it in any prior dimension, where local regions are too sparse to confirm. The surface
  is fitted as a hyperplane of the prior (its normal is the mean crossing direction,
  each crossing oriented by the sign of its output change). Tested on the held-out
  paths: do paths that cross the plane have a matching jump more often than paths that
  do not (one-sided Fisher exact test on paths)? A strongly curved surface fits no plane
  and is left to the local regions.

A candidate is flagged when its corrected p-value is below ``alpha`` and at least
``min_paths`` held-out paths jump in it; flagged candidates that share jumps (the same
discontinuity found both ways, or from both halves) are one finding (``warning``), with
the smallest corrected p-value among them. Its value is the share of the held-out paths
crossing it that jump there, with a Wilson interval; its centre (``subjects.prior_center``)
is the mean location of its jumps in prior coordinates; a surface also gives its plane
(``subjects.surface``). The evidence ids are the generations at the ends of its paths.
"""
from __future__ import annotations

import logging
import math
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ...context import Context
from ...findings import CheckResult, Finding
from ...metrics import (
    benjamini_hochberg,
    fit_jump_plane,
    interpolate_prior,
    jump_concentration,
    jump_direction_groups,
    jump_region_test,
    jump_regions,
    path_step_lengths,
    plane_crossing_test,
    step_jump_threshold,
    wilson_interval,
)
from ..base import Check, CheckSettings, register

log = logging.getLogger("audit")

__all__ = ["GeneratorSmoothnessCheck"]

_NAME = "generator_smoothness"
_METRICS = ("generator.smoothness.jump_fraction", "generator.smoothness.max_step_ratio",
            "generator.smoothness.median_step")
#: fewest paths worth measuring (a path needs two distinct generations)
_MIN_PATHS = 4
#: fewest paths for the held-out region test (8 per half)
_MIN_TEST_PATHS = 16
#: decoded table columns shown per row in the report
_ROW_COLUMNS = 8
#: paths drawn in the prior-coordinates figure
_MAP_PATHS = 128


def _pairs(n: int, want: int, rng: np.random.Generator) -> np.ndarray:
    """``min(want, n(n-1)/2)`` distinct unordered pairs of distinct indices, random order."""
    total = n * (n - 1) // 2
    if total <= 4 * want:
        i, j = np.triu_indices(n, k=1)
        pick = rng.permutation(total)[:want]
        return np.stack([i[pick], j[pick]], axis=1)
    out: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    while len(out) < want:
        i = rng.integers(0, n, 2 * want)
        j = (i + rng.integers(1, n, 2 * want)) % n
        for a, b in zip(i.tolist(), j.tolist()):
            key = (min(a, b), max(a, b))
            if key not in seen:
                seen.add(key)
                out.append((a, b))
                if len(out) == want:
                    break
    return np.array(out, dtype=int)


def _rows(x: np.ndarray) -> list[list[float]]:
    """Decoded table rows for the report: the first columns, 4 significant digits."""
    return [[float(f"{v:.4g}") for v in row[:_ROW_COLUMNS]] for row in np.asarray(x, float)]


@register
class GeneratorSmoothnessCheck(Check):
    """Generator smoothness: step sizes along prior interpolations, and regions where a
    small prior move makes the output jump."""

    name = _NAME
    family = "generator"
    produces: ClassVar[tuple[str, ...]] = _METRICS

    class Settings(CheckSettings):
        n_paths: int = Field(128, ge=_MIN_PATHS, le=20_000, description=(
            "interpolation paths between random pairs of generations (half find jump "
            "regions, the other half test them)"))
        steps: int = Field(16, ge=4, le=512, description="equal prior steps per path")
        interpolation: Literal["auto", "slerp", "linear"] = Field("auto", description=(
            "auto: spherical (slerp) for a Gaussian prior of 2+ dimensions, straight "
            "lines otherwise"))
        screen_alpha: float = Field(0.05, gt=0, lt=1, description=(
            "family-wise level of the screen for steps much larger than the median "
            "(Bonferroni over all steps, robust log-normal scale)"))
        min_ratio: float = Field(3.0, ge=1, description=(
            "a step counts as large only above this ratio to the median step"))
        refine: int = Field(8, ge=2, le=64, description=(
            "sub-steps each large step is cut into to tell a jump from a steep stretch"))
        min_share: float = Field(0.5, gt=0, lt=1, description=(
            "share of a large step's movement one sub-step must carry for a jump"))
        max_refine: int = Field(512, ge=1, le=100_000, description=(
            "most large steps refined (the largest first)"))
        region_radius: float = Field(0.4, gt=0, le=10, description=(
            "jumps closer than region_radius × √(prior dim) prior units form one region "
            "(and a step that close to a region is in its reach)"))
        min_cos: float = Field(0.8, gt=0, le=1, description=(
            "jumps whose output changes have |cos| at least this are one surface"))
        alpha: float = Field(0.05, gt=0, lt=1, description=(
            "false-discovery rate of the Benjamini–Hochberg correction over regions"))
        min_paths: int = Field(2, ge=1, le=1000, description=(
            "held-out paths that must jump in a region to flag it"))
        max_regions: int = Field(20, ge=1, le=500, description="regions reported as findings")
        strips: int = Field(6, ge=0, le=50, description=(
            "interpolation strips shown in the report (largest jumps first)"))
        grid: int = Field(0, ge=0, le=400, description=(
            "first generations shown as a grid here too (0: none; generator_fidelity "
            "shows the grid of random generations)"))

    def applies(self, ctx: Context) -> str | None:
        gen = getattr(ctx, "generated", None)
        if gen is None:
            return "no generator: in the config"
        if gen.n < 3:
            return f"needs at least 3 generations (has {gen.n})"
        return None

    # ------------------------------------------------------------------ helpers
    def _method(self, prior: Any) -> str:
        if self.settings.interpolation != "auto":
            return self.settings.interpolation
        return "slerp" if prior.kind == "gaussian" and prior.dim >= 2 else "linear"

    @staticmethod
    def _embedder(ctx: Context, gen: Any):
        """Generations' latents into the space distances are measured in, its name, and
        the real data's spread there (for the no-movement tolerance)."""
        if gen.real is ctx.data:
            space = np.asarray(ctx.space, dtype=np.float64)
            return (lambda x: np.asarray(ctx.to_space(x), dtype=np.float64)), "analysis", \
                float(np.sqrt(space.var(axis=0).sum()))
        real = np.asarray(gen.real.latents, dtype=np.float64)
        return (lambda x: np.asarray(x, dtype=np.float64)), "embedding", \
            float(np.sqrt(real.var(axis=0).sum()))

    def _not_measured(self, why: str, tables: dict[str, Any], grid: dict[str, Any],
                      images: dict[str, Any], metrics: dict[str, float] | None = None
                      ) -> CheckResult:
        nan = float("nan")
        metrics = metrics or {m: nan for m in _METRICS}
        return CheckResult(
            check=self.name, status="ok", metrics=metrics,
            findings=(Finding(id=f"{self.name}-not-measured", check=self.name,
                              severity="info", title=f"Smoothness not measured: {why}",
                              summary=why, metric="generator.smoothness.jump_fraction",
                              value=metrics["generator.smoothness.jump_fraction"]),),
            tables={**tables, **grid, "measured": False, "note": why}, images=images)

    def _grid(self, gen: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The grid of random generations: the first ``grid`` of them."""
        m = min(self.settings.grid, gen.n)
        if m == 0:
            return {"grid": None}, {}
        idx = np.arange(m)
        out = gen.outputs(idx)
        ids = [str(i) for i in gen.ids[idx]]
        if gen.kind == "image":
            keys = [f"grid-{i:03d}" for i in range(m)]
            return ({"grid": {"kind": "image", "ids": ids, "images": keys}},
                    {k: np.asarray(out[i]) for i, k in enumerate(keys)})
        return {"grid": {"kind": "table", "ids": ids, "rows": _rows(out),
                         "columns": int(out.shape[1])}}, {}

    # ------------------------------------------------------------------ run
    def run(self, ctx: Context) -> CheckResult:
        s = self.settings
        gen = ctx.generated
        prior = gen.prior
        k = int(gen.z.shape[1])
        method = self._method(prior)
        scale = np.asarray(prior.scale(), dtype=np.float64)
        radius = float(s.region_radius * math.sqrt(k))
        to_space, space_name, spread = self._embedder(ctx, gen)
        atol = 1e-6 * max(spread, 1e-12)
        grid, images = self._grid(gen)
        tables: dict[str, Any] = {
            "interpolation": method, "prior": prior.kind, "prior_dim": k,
            "space": space_name, "steps": s.steps, "refine": s.refine,
            "min_share": s.min_share, "min_ratio": s.min_ratio,
            "screen_alpha": s.screen_alpha, "alpha": s.alpha, "radius": radius,
            "min_paths": s.min_paths, "kind": gen.kind}

        pairs = _pairs(gen.n, s.n_paths, ctx.rng("generator_smoothness.pairs"))
        n_paths = len(pairs)
        tables["n_paths"] = n_paths
        if n_paths < _MIN_PATHS:
            return self._not_measured(
                f"only {n_paths} pairs of generations to interpolate between (needs "
                f"{_MIN_PATHS})", tables, grid, images)
        z0 = np.asarray(gen.z, dtype=np.float64)
        a, b = z0[pairs[:, 0]], z0[pairs[:, 1]]
        S = s.steps
        frac = np.linspace(0.0, 1.0, S + 1)
        z = interpolate_prior(a, b, frac, method=method)                   # (P, S+1, k)
        outputs, lat = gen.render(z.reshape(-1, k).astype(np.float32))
        emb = to_space(lat).reshape(n_paths, S + 1, -1)
        prior_len = path_step_lengths(z, scale=scale)                       # (P, S)
        emb_len = path_step_lengths(emb)
        emb_len[emb_len <= atol] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            stretch = np.where(prior_len > 0, emb_len / prior_len, np.nan)
        finite = np.isfinite(stretch)
        if not finite.any():
            return self._not_measured("every interpolation path has length 0 (the pairs "
                                      "of generations share their prior point)",
                                      tables, grid, images)
        med, sigma, thr = step_jump_threshold(stretch[finite], alpha=s.screen_alpha,
                                              min_ratio=s.min_ratio)
        n_steps = int(finite.sum())
        moving = finite & (stretch > 0)
        tables.update({"median_step": med, "sigma_log": sigma, "ratio_threshold": thr,
                       "n_steps": n_steps, "moving_steps": int(moving.sum())})
        if not moving.any():
            metrics = {"generator.smoothness.jump_fraction": 0.0,
                       "generator.smoothness.max_step_ratio": float("nan"),
                       "generator.smoothness.median_step": 0.0}
            return self._not_measured(
                f"the decoded outputs do not move along any of the {n_paths} "
                "interpolations (a constant decoder), so there is nothing to call a jump",
                tables, grid, images, metrics)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (stretch / med if med > 0
                     else np.where(stretch > 0, np.inf, np.where(finite, 0.0, np.nan)))
        screened = finite & (ratio > thr if med > 0 else stretch > 0)
        cand = np.argwhere(screened)                                        # (n, 2): p, t
        if len(cand) > s.max_refine:
            order = np.argsort(-ratio[screened], kind="stable")[: s.max_refine]
            cand = cand[np.sort(order)]

        # -- refinement: cut each large step into `refine` sub-steps, in one render
        K = s.refine
        jump = np.zeros((n_paths, S), dtype=bool)
        J: dict[str, np.ndarray] = {}
        if len(cand):
            p_i, t_i = cand[:, 0], cand[:, 1]
            sub_t = np.clip((t_i[:, None] + np.arange(1, K)[None] / K) / S, 0, 1)
            sub_z = interpolate_prior(a[p_i], b[p_i], sub_t, method=method)
            _, sub_lat = gen.render(sub_z.reshape(-1, k).astype(np.float32))
            sub_emb = to_space(sub_lat).reshape(len(cand), K - 1, -1)
            chain = np.concatenate([emb[p_i, t_i][:, None], sub_emb,
                                    emb[p_i, t_i + 1][:, None]], axis=1)
            sub_len = path_step_lengths(chain)
            sub_len[sub_len <= atol] = 0.0
            share, where = jump_concentration(sub_len)
            keep = np.nan_to_num(share, nan=0.0) >= s.min_share
            jump[p_i[keep], t_i[keep]] = True
            p_i, t_i, where, sub_len, chain = (p_i[keep], t_i[keep], where[keep],
                                               sub_len[keep], chain[keep])
            r = np.arange(len(p_i))
            ends = np.stack([(t_i + where / K) / S, (t_i + (where + 1) / K) / S,
                             (t_i + (where + 0.5) / K) / S], axis=1)
            zz = interpolate_prior(a[p_i], b[p_i], np.clip(ends, 0, 1), method=method)
            J = {"path": p_i, "step": t_i, "before": zz[:, 0], "after": zz[:, 1],
                 "loc": zz[:, 2], "vector": chain[r, where + 1] - chain[r, where],
                 "size": sub_len[r, where], "ratio": ratio[p_i, t_i],
                 "refined": (sub_len[r, where] / (prior_len[p_i, t_i] / K) / med
                             if med > 0 else np.full(len(p_i), np.nan))}
        n_jumps = int(jump.sum())
        metrics = {"generator.smoothness.jump_fraction": n_jumps / n_steps,
                   "generator.smoothness.max_step_ratio":
                       float(np.nanmax(ratio)) if med > 0 else float("nan"),
                   "generator.smoothness.median_step": med}
        tables.update({"screened": int(screened.sum()), "refined": len(cand),
                       "jumps": n_jumps,
                       "jump_fraction_ci": list(wilson_interval(n_jumps, n_steps))})

        # -- regions: proposed by one half of the paths, tested on the other
        testable = n_paths >= _MIN_TEST_PATHS
        half = np.arange(n_paths) % 2          # pairs are in random order: a random split
        mids = interpolate_prior(a, b, (np.arange(S) + 0.5) / S, method=method) / scale
        cands = (self._candidates(J, z / scale, mids, finite, half, scale, radius)
                 if testable and n_jumps else [])
        rejected, q = (benjamini_hochberg([c["p"] for c in cands], alpha=s.alpha)
                       if cands else (np.zeros(0, bool), np.zeros(0)))
        for c, rej, qv in zip(cands, rejected, q):
            c["q"] = float(qv)
            c["flagged"] = bool(rej) and c["paths_jumping"] >= s.min_paths
        groups = self._merge([c for c in cands if c["flagged"]])
        groups = sorted(groups, key=lambda g: (min(c["q"] for c in g),
                                               -len(set().union(*(c["jumps"] for c in g)))))
        covered = set().union(*(c["jumps"] for g in groups for c in g))
        unconfirmed = sorted((c for c in cands if not c["flagged"] and not c["jumps"] & covered),
                             key=lambda c: c["p"])
        ids = gen.ids
        strip_paths = self._strip_order(ratio, jump, s.strips)
        strip_rank = {int(p): r for r, p in enumerate(strip_paths)}
        findings, listed = [], []
        region_of = np.full(n_jumps, -1)
        for group in groups[: s.max_regions] + [[c] for c in unconfirmed]:
            if len(listed) >= s.max_regions and not group[0]["flagged"]:
                break
            entry, members = self._describe(group, J, pairs, ids, ratio, jump, strip_rank,
                                            scale, S)
            listed.append(entry)
            if not entry["flagged"]:
                continue
            g = len(findings)
            region_of[members[region_of[members] < 0]] = g
            entry["id"] = fid = f"{self.name}-{g + 1}"
            findings.append(self._finding(fid, g, entry, k, K, n_paths))
        if n_jumps and not findings:
            why = (f"{n_jumps} of {n_steps} steps jumped, giving {len(cands)} candidate "
                   "region(s) on the two halves of the paths; none was confirmed on the "
                   f"other half (BH at {s.alpha:g}, at least {s.min_paths} jumping paths)."
                   if testable else
                   f"{n_jumps} of {n_steps} steps jumped, but {n_paths} paths are too few "
                   "to find regions on half of them and test them on the other half "
                   f"(needs {_MIN_TEST_PATHS}; more generations give more pairs).")
            findings.append(Finding(
                id=f"{self.name}-unconfirmed", check=self.name, severity="info",
                title=f"{n_jumps} jump step(s), in no region confirmed on held-out paths",
                summary=why, metric="generator.smoothness.jump_fraction",
                value=metrics["generator.smoothness.jump_fraction"]))
        tables.update({"regions": listed, "candidate_regions": len(cands),
                       "tested": testable})
        tables["paths"] = [{"from": str(ids[pairs[p, 0]]), "to": str(ids[pairs[p, 1]]),
                            "ratio": [float(v) for v in ratio[p]],
                            "jumps": np.flatnonzero(jump[p]).tolist(),
                            "half": "first" if half[p] == 0 else "second"}
                           for p in range(n_paths)]
        tables["prior_paths"] = self._prior_figure(z, J, region_of, listed)
        strips, strip_images = self._strips(gen, outputs, pairs, ratio, jump, strip_paths)
        images.update(strip_images)
        tables["strips"] = strips
        tables["measured"] = True
        tables.update(grid)
        display = ({"kind": "smoothness_steps"}, {"kind": "smoothness_prior"})
        return CheckResult(check=self.name, status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables, display=display,
                           images=images)

    # ------------------------------------------------------------------ regions
    def _candidates(self, J: dict[str, np.ndarray], zs: np.ndarray, mids: np.ndarray,
                    finite: np.ndarray, half: np.ndarray, scale: np.ndarray,
                    radius: float) -> list[dict[str, Any]]:
        """Candidates proposed by each half's jumps, each tested on the other half.

        ``zs`` the path points and ``mids`` the step midpoints, in prior units. Every
        candidate records the jumps it explains (its own and the held-out ones it
        predicts: ``jumps``, indices into ``J``) and its held-out 2×2 counts."""
        n_paths = finite.shape[0]
        loc = J["loc"] / scale
        vec = J["vector"]
        norm = np.linalg.norm(vec, axis=1, keepdims=True)
        unit = vec / np.where(norm > 0, norm, 1.0)
        jump_at = {(int(p), int(t)): i for i, (p, t) in enumerate(zip(J["path"], J["step"]))}
        out: list[dict[str, Any]] = []
        for fold in (0, 1):
            own = np.flatnonzero(half[J["path"]] == fold)
            other = np.flatnonzero(half[J["path"]] != fold)
            if not own.size:
                continue
            test_paths = np.flatnonzero(half != fold)
            # local regions: jump locations linked at `radius`, tested on held-out steps
            labels = jump_regions(loc[own], radius=radius)
            regions = [loc[own[labels == g]] for g in range(int(labels.max()) + 1)]
            rows = finite & (half[:, None] != fold)
            steps = np.argwhere(rows)
            step_loc = mids[steps[:, 0], steps[:, 1]].copy()
            is_jump = np.zeros(len(steps), dtype=bool)
            for i, (p, t) in enumerate(steps.tolist()):
                j = jump_at.get((p, t))
                if j is not None:
                    step_loc[i], is_jump[i] = loc[j], True
            test = jump_region_test(regions, step_loc, is_jump, steps[:, 0], radius=radius)
            held = loc[other]
            for g, pts in enumerate(regions):
                near = (np.sqrt(((held[:, None] - pts[None]) ** 2).sum(-1)).min(axis=1)
                        <= radius) if other.size else np.zeros(0, bool)
                out.append({
                    "kind": "region", "fold": fold, "p": float(test.p_value[g]),
                    "jumps": set(own[labels == g].tolist()) | set(other[near].tolist()),
                    "paths_crossing": int(test.paths_crossing[g]),
                    "paths_jumping": int(test.paths_jumping[g]),
                    "in": [int(test.paths_jumping[g]), int(test.paths_crossing[g])],
                    "out": [int(test.jumping_out), int(test.paths_out)],
                    "steps": [int(test.jumps_in[g]), int(test.steps_in[g])],
                    "odds_ratio": float(test.odds_ratio[g])})
            # surfaces: jumps that change the output alike, a plane tested on held-out paths
            labels = jump_direction_groups(vec[own], min_cos=self.settings.min_cos)
            for g in range(int(labels.max()) + 1):
                mine = own[labels == g]
                if mine.size < 2:
                    continue
                normal, offset = fit_jump_plane(J["before"][mine] / scale,
                                                J["after"][mine] / scale, vec[mine])
                if not normal.any():
                    continue
                alike = (np.abs(unit[other] @ unit[mine].T).max(axis=1)
                         >= self.settings.min_cos) if other.size else np.zeros(0, bool)
                matched = np.zeros(n_paths, dtype=bool)
                matched[J["path"][other[alike]]] = True
                test = plane_crossing_test(zs[test_paths], matched[test_paths], normal, offset)
                side = np.sign(zs @ normal - offset)
                crosses = (np.diff(side, axis=1) != 0).any(axis=1)
                explained = other[alike & crosses[J["path"][other]]]
                out.append({
                    "kind": "surface", "fold": fold, "p": test.p_value,
                    "jumps": set(mine.tolist()) | set(explained.tolist()),
                    "paths_crossing": test.paths_crossing,
                    "paths_jumping": test.paths_jumping,
                    "in": [test.paths_jumping, test.paths_crossing],
                    "out": [test.jumps_other, test.paths_other],
                    "odds_ratio": test.odds_ratio, "normal": normal, "offset": offset})
        return out

    @staticmethod
    def _merge(flagged: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Flagged candidates that share a jump, joined (union-find)."""
        parent = list(range(len(flagged)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i
        owner: dict[int, int] = {}
        for i, c in enumerate(flagged):
            for j in c["jumps"]:
                if j in owner:
                    parent[root(i)] = root(owner[j])
                else:
                    owner[j] = i
        groups: dict[int, list[dict[str, Any]]] = {}
        for i, c in enumerate(flagged):
            groups.setdefault(root(i), []).append(c)
        return list(groups.values())

    @staticmethod
    def _describe(group: list[dict[str, Any]], J: dict[str, np.ndarray], pairs: np.ndarray,
                  ids: np.ndarray, ratio: np.ndarray, jump: np.ndarray,
                  strip_rank: dict[int, int], scale: np.ndarray, S: int
                  ) -> tuple[dict[str, Any], np.ndarray]:
        """The report's entry for one finding (or unconfirmed candidate), and its jumps."""
        b = min(group, key=lambda c: (c.get("q", 1.0), c["p"]))
        members = np.array(sorted(set().union(*(c["jumps"] for c in group))), dtype=int)
        centre = J["loc"][members].mean(axis=0)
        spread = float(np.sqrt((((J["loc"][members] - centre) / scale) ** 2).sum(1)).max())
        paths = sorted(set(J["path"][members].tolist()),
                       key=lambda p: (-float(np.nanmax(ratio[p])), p))
        lo, hi = wilson_interval(b["paths_jumping"], b["paths_crossing"])
        share = (b["paths_jumping"] / b["paths_crossing"] if b["paths_crossing"]
                 else float("nan"))
        refined = J["refined"][members]
        entry: dict[str, Any] = {
            "id": None, "flagged": bool(b.get("flagged", False)), "kind": b["kind"],
            "kinds": sorted({c["kind"] for c in group}), "candidates": len(group),
            "prior_center": [float(v) for v in centre], "prior_spread": spread,
            "jumps": int(members.size), "paths_jumping": len(paths),
            "heldout_half": "second" if b["fold"] == 0 else "first",
            "heldout_paths_crossing": b["paths_crossing"],
            "heldout_paths_jumping": b["paths_jumping"],
            "heldout_in": b["in"], "heldout_out": b["out"],
            "odds_ratio": b["odds_ratio"], "p_raw": b["p"], "p_value": b.get("q", 1.0),
            "share": float(share), "ci": [lo, hi],
            "jump_size": float(np.median(J["size"][members])),
            "step_ratio": float(np.nanmedian(J["ratio"][members])),
            "refined_ratio": (float(np.nanmedian(refined)) if np.isfinite(refined).any()
                              else None),
            "paths": [{"path": int(p), "from": str(ids[pairs[p, 0]]),
                       "to": str(ids[pairs[p, 1]]),
                       "at": [float((t + 0.5) / S) for t in np.flatnonzero(jump[p])],
                       "max_ratio": float(np.nanmax(ratio[p])),
                       "strip": strip_rank.get(int(p))} for p in paths[:20]]}
        surf = next((c for c in sorted(group, key=lambda c: c.get("q", 1.0))
                     if c["kind"] == "surface"), None)
        if surf is not None:               # n · (z / scale) = b, in prior coordinates
            w = surf["normal"] / scale
            size = float(np.linalg.norm(w)) * (1.0 if w[np.argmax(np.abs(w))] > 0 else -1.0)
            entry["surface"] = {"normal": [float(v) for v in w / size],
                                "offset": float(surf["offset"] / size)}
        return entry, members

    def _finding(self, fid: str, g: int, e: dict[str, Any], k: int, K: int,
                 n_paths: int) -> Finding:
        c = e["prior_center"]
        where = ", ".join(f"{v:.2f}" for v in c[:4]) + (", …" if k > 4 else "")
        if e["kind"] == "surface":
            n = e["surface"]["normal"]
            plane = " + ".join(f"{v:.2f}·z{i}" for i, v in enumerate(n) if abs(v) >= 0.1)
            test = (f"{e['heldout_paths_jumping']} of {e['heldout_paths_crossing']} held-out "
                    f"paths that cross the surface {plane} ≈ {e['surface']['offset']:.2f} "
                    f"jump like it ({e['share']:.0%}, 95% CI {e['ci'][0]:.0%}–"
                    f"{e['ci'][1]:.0%}), against {e['heldout_out'][0]} of "
                    f"{e['heldout_out'][1]} paths that do not cross it")
        else:
            test = (f"{e['heldout_paths_jumping']} of {e['heldout_paths_crossing']} held-out "
                    f"paths that pass through it jump there ({e['share']:.0%}, 95% CI "
                    f"{e['ci'][0]:.0%}–{e['ci'][1]:.0%}), against {e['heldout_out'][0]} of "
                    f"{e['heldout_out'][1]} paths that pass near no region jumping anywhere")
        return Finding(
            id=fid, check=self.name, severity="warning",
            title=(f"Jump region {g + 1}: near prior point ({where}) a small move makes "
                   "the output jump"),
            summary=(f"{test} (Fisher exact, BH-corrected p = {e['p_value']:.2g}). A jump "
                     f"step moves the output {e['step_ratio']:.1f}× as far as the median "
                     f"step, and cut into {K} pieces one piece still carries the jump. "
                     f"{e['paths_jumping']} of the {n_paths} paths jump here. Centre in "
                     "prior coordinates: subjects.prior_center; the evidence is the pairs "
                     "of generations whose interpolation jumps here."),
            metric="generator.smoothness.region_jump_share", value=e["share"],
            threshold=None, p_value=e["p_value"], ci=tuple(e["ci"]), subjects=e,
            evidence_ids=tuple(dict.fromkeys(p[end] for p in e["paths"]
                                             for end in ("from", "to"))))

    # ------------------------------------------------------------------ report data
    @staticmethod
    def _strip_order(ratio: np.ndarray, jump: np.ndarray, m: int) -> list[int]:
        """Paths for the strips: jumping paths first, then by largest step ratio (NaN
        steps, of zero prior length, last; an infinite ratio, past a zero median, first)."""
        peak = np.nan_to_num(ratio, nan=-1.0, posinf=np.finfo(float).max).max(axis=1)
        order = sorted(range(len(ratio)), key=lambda p: (not jump[p].any(), -peak[p], p))
        return order[:m]

    def _strips(self, gen: Any, outputs: np.ndarray, pairs: np.ndarray, ratio: np.ndarray,
                jump: np.ndarray, paths: list[int]) -> tuple[list[dict], dict[str, Any]]:
        S = self.settings.steps
        out = np.asarray(outputs).reshape(len(pairs), S + 1, *np.asarray(outputs).shape[1:])
        ids = gen.ids
        strips, images = [], {}
        for r, p in enumerate(paths):
            entry = {"path": int(p), "from": str(ids[pairs[p, 0]]),
                     "to": str(ids[pairs[p, 1]]),
                     "ratio": [float(v) for v in ratio[p]],
                     "jumps": np.flatnonzero(jump[p]).tolist(),
                     "max_ratio": float(np.nanmax(np.where(np.isinf(ratio[p]), np.nan,
                                                           ratio[p])))
                     if np.isfinite(ratio[p]).any() else None}
            if gen.kind == "image":
                keys = [f"strip-{r + 1}-{t:03d}" for t in range(S + 1)]
                images.update({key: out[p, t] for t, key in enumerate(keys)})
                entry["images"] = keys
            else:
                entry["rows"] = _rows(out[p])
            strips.append(entry)
        return strips, images

    @staticmethod
    def _prior_figure(z: np.ndarray, J: dict[str, np.ndarray], region_of: np.ndarray,
                      listed: list[dict]) -> dict[str, Any]:
        """The paths, jumps and region centres in the first two prior coordinates."""
        two = z.shape[2] >= 2
        xy = [[[round(float(v), 4) for v in pt[:2]] if two else [round(float(pt[0]), 4), 0.0]
               for pt in path] for path in z[:_MAP_PATHS]]
        jumps = ([{"x": float(l[0]), "y": float(l[1]) if two else 0.0,
                   "region": int(g) if g >= 0 else None, "path": int(p)}
                  for l, g, p in zip(J["loc"], region_of, J["path"])] if J else [])
        return {"paths": xy, "jumps": jumps, "dims": int(z.shape[2]),
                "centres": [{"x": e["prior_center"][0],
                             "y": e["prior_center"][1] if two else 0.0,
                             "id": e["id"], "flagged": e["flagged"]} for e in listed]}
