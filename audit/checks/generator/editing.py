"""``generator_editing``: editing through the generator, and how every other attribute moves.

For every configured attribute and protected column that a linear probe can read from the
real latents (prepared as in ``generator_attributes``), a read-out is fitted on the real
latents (:func:`audit.metrics.readout_probe`: the logit of the most frequent level against
the rest for a categorical column, a ridge prediction for a numeric one; in standard
deviations over the real rows) and read on every generation. Its direction in the *prior*
is the least-squares fit of that read-out on the generations' prior coordinates (in units
of the prior's spread; :func:`audit.metrics.prior_direction`). A seeded sample of the
generations' prior points is moved by ``±step`` along each direction, decoded and
re-embedded (``ctx.generated.render``), and every attribute is read again:
``M[a, b]`` is the mean change of ``b``'s read-out (half the difference between ``+step``
and ``-step``) when editing ``a``, ``R[a, b] = |M[a, b]| / |M[a, a]|`` the relative leakage
(:func:`audit.metrics.edit_effects`: bootstrap intervals over the points, t-tests).
An attribute is *editable* when its own change is significantly positive; an off-diagonal
pair of an editable row is flagged when the change is significant (Benjamini–Hochberg over
those pairs, its interval excludes 0) and material (``R >= max_leakage`` and ``|M| >=
min_shift``). The report draws the matrix and, per attribute, a slider of decoded outputs of
a few prior points moved along its direction.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ...context import Context
from ...findings import CheckResult, Finding
from ...formatting import format_p
from ...metrics import (benjamini_hochberg, edit_effects, prior_direction, probe_read_levels,
                        probe_score, readout_probe)
from ..base import Check, CheckSettings, register
from .attributes import NO_GENERATOR, ProbeColumn, example_rows, prepare_columns, readable

__all__ = ["GeneratorEditingCheck"]


def _f(v: Any) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def _mat(m: np.ndarray) -> list[list[float | None]]:
    return [[_f(v) for v in row] for row in np.asarray(m)]


def _corr(scores: np.ndarray) -> np.ndarray:
    """Pearson correlation between the columns (0 where one is constant)."""
    x = scores - scores.mean(axis=0)
    sd = np.sqrt((x ** 2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (x.T @ x) / np.outer(sd, sd)
    r = np.where(np.isfinite(r), r, 0.0)
    np.fill_diagonal(r, 1.0)
    return r


@register
class GeneratorEditingCheck(Check):
    """Generator editing: move prior points along each attribute's direction, decode,
    re-embed, and measure how every attribute moved (the edit matrix, with intervals)."""

    name = "generator_editing"
    family = "generator"
    produces: ClassVar[tuple[str, ...]] = (
        "generator.edit.max_leakage",
        "generator.edit.attributes",
    )

    class Settings(CheckSettings):
        step: float = Field(0.5, gt=0, le=5, description=(
            "each edit moves a prior point by ± this many of the prior's standard "
            "deviations along the attribute's direction"))
        points: int = Field(256, ge=20, le=20_000, description=(
            "prior points (a seeded sample of the generations) edited per attribute"))
        max_leakage: float = Field(0.25, gt=0, description=(
            "a pair is flagged when the other attribute moves by at least this share of "
            "the edited attribute's own change ..."))
        min_shift: float = Field(0.05, ge=0, description=(
            "... and by at least this many of its standard deviations per step"))
        critical_leakage: float = Field(0.75, gt=0, description=(
            "severity critical when the relative leakage's interval lies above this"))
        alpha: float = Field(0.05, gt=0, lt=1, description=(
            "false-discovery rate (Benjamini–Hochberg) over the tested pairs"))
        confidence: float = Field(0.95, gt=0, lt=1, description="level of every interval")
        n_bootstrap: int = Field(500, ge=50, le=10_000, description=(
            "bootstrap resamples of the edited points"))
        numeric_bins: int = Field(4, ge=2, le=20, description=(
            "numeric columns are binned (as in generator_attributes) only to decide which "
            "rows take part; their read-out is fitted on the values"))
        min_level_size: int = Field(20, ge=5, description=(
            "levels with fewer real rows are not probed"))
        max_levels: int = Field(20, ge=2, description="a column with more levels is skipped")
        cv: int = Field(5, ge=2, le=20, description="folds of the readability probes")
        probe_bootstrap: int = Field(200, ge=20, le=5000, description=(
            "bootstrap resamples of the readability probes' scores"))
        min_probe_lift: float = Field(0.1, ge=0, lt=1, description=(
            "an attribute is edited only when its probe's cross-validated score (balanced "
            "accuracy, or R² for a numeric one) is at least this far above chance"))
        max_rows: int = Field(20_000, ge=100, description=(
            "the probes are trained on a seeded sample of at most this many real rows"))
        slider_points: int = Field(3, ge=1, le=12, description=(
            "prior points shown in each attribute's slider"))
        slider_steps: int = Field(5, ge=3, le=21, description=(
            "steps of each slider (odd counts include the starting point)"))
        slider_range: float = Field(2.0, gt=0, le=10, description=(
            "each slider walks ± this many prior standard deviations"))

    def applies(self, ctx: Context) -> str | None:
        if ctx.generated is None:
            return NO_GENERATOR
        if not ctx.attributes and not ctx.protected:
            return ("no attributes or protected columns configured: list the metadata "
                    "columns to edit under `attributes:` or `protected:`")
        return None

    # ---- the attributes' read-outs ----------------------------------------------------------

    def _readouts(self, ctx: Context, findings: list[Finding]) -> list[dict[str, Any]]:
        """Every readable column with its read-out (weights, bias) and probe score."""
        s = self.settings
        real = ctx.generated.real
        cols = prepare_columns(real.metadata, ctx.attributes, ctx.protected,
                               bins=s.numeric_bins, min_level_size=s.min_level_size,
                               max_levels=s.max_levels)
        sample = ctx.sample_rows(real.n, s.max_rows, "generator_editing.rows")
        seeds = ctx.rng("generator_editing.probe")
        out = []
        for col in cols:
            seed = int(seeds.integers(np.iinfo(np.int32).max))
            reason = col.skipped
            if reason is None:
                entry, reason = self._probe(col, real.latents, sample, seed)
                if entry is not None:
                    out.append(entry)
                    continue
            findings.append(Finding(
                id=f"generator_editing-{col.key}-skipped", check=self.name, severity="info",
                title=f"{col.name}: not edited", summary=f"{reason[0].upper()}{reason[1:]}.",
                metric="generator.edit.attributes", value=None,
                subjects={"column": col.name, "role": col.role, "kind": "skipped"}))
        return out

    def _probe(self, col: ProbeColumn, X: np.ndarray, sample: np.ndarray, seed: int
               ) -> tuple[dict[str, Any] | None, str | None]:
        s = self.settings
        rows = np.intersect1d(col.rows, sample)
        if col.numeric:
            rows = rows[np.isfinite(col.values[rows])]
            target = col.values[rows]
            if rows.size < max(4 * s.cv, 20) or np.ptp(target) == 0:
                return None, f"too few real rows with a value in the sample ({rows.size})"
            res = probe_score(X[rows], target, categorical=False, cv=s.cv,
                              n_bootstrap=s.probe_bootstrap, confidence=s.confidence,
                              random_state=seed)
            score, ci, chance, metric = res["score"], res["ci"], 0.0, "r2"
        else:
            codes = col.codes(rows)
            if np.bincount(codes, minlength=len(col.levels)).min() < s.cv:
                return None, f"a level has fewer than cv={s.cv} rows in the sample"
            res = probe_read_levels(X[rows], codes, None, cv=s.cv,
                                    n_bootstrap=s.probe_bootstrap, confidence=s.confidence,
                                    random_state=seed)
            score, ci, chance = res["balanced_accuracy"], res["ci"], res["chance"]
            metric = "balanced_accuracy"
            target = col.labels[rows].astype(str)
        label = "R²" if metric == "r2" else "balanced accuracy"
        if not readable(score, ci[0], chance, s.min_probe_lift):
            return None, (f"the probe cannot read it (cross-validated {label} {score:.3f}, "
                          f"{s.confidence:.0%} interval {ci[0]:.3f}–{ci[1]:.3f}, chance "
                          f"{chance:.3f}): its direction and read-outs would be noise")
        ro = readout_probe(X[rows], target, categorical=not col.numeric)
        return {"column": col, "name": col.name, "key": col.key, "role": col.role,
                "kind": "numeric" if col.numeric else "categorical",
                "target_level": ro["target_level"], "weights": ro["weights"],
                "bias": ro["bias"],
                "probe": {"metric": metric, "score": score, "ci": [ci[0], ci[1]],
                          "chance": chance, "n": int(rows.size)}}, None

    # ---- the check ----------------------------------------------------------------------------

    def run(self, ctx: Context) -> CheckResult:
        s = self.settings
        gen = ctx.generated
        findings: list[Finding] = []
        attrs = self._readouts(ctx, findings)
        tables: dict[str, Any] = {"settings": s.model_dump(), "kind": gen.kind,
                                  "n_generated": gen.n, "prior": gen.prior.kind,
                                  "attributes": [], "notes": []}
        metrics: dict[str, float] = {"generator.edit.attributes": 0.0}
        if not attrs:
            tables["notes"].append("No attribute could be read from the real latents: "
                                   "nothing to edit.")
            return CheckResult(check=self.name, status="ok", metrics=metrics,
                               findings=tuple(findings), tables=tables)
        W = np.stack([a["weights"] for a in attrs])               # (m, d)
        b = np.array([a["bias"] for a in attrs])
        m = len(attrs)
        scale = np.asarray(gen.prior.scale(), dtype=float)
        scores = gen.latents.astype(np.float64) @ W.T + b         # (G, m)
        # how the read-outs go together in the real data and in the generations: an edit
        # of one moves the other as much as the generator ties them, and a generator that
        # matches the data ties what the data ties
        assoc_real = _corr(gen.real.latents.astype(np.float64) @ W.T + b)
        assoc_gen = _corr(scores)
        dirs = np.zeros((m, gen.prior.dim))
        for k, a in enumerate(attrs):
            fit = prior_direction(gen.z, scores[:, k], scale=scale)
            dirs[k] = fit["direction"]
            a["direction"], a["slope"], a["r2"] = fit["direction"], fit["slope"], fit["r2"]

        # the edits: every sampled point at +step and -step along every direction, one render
        pick = ctx.sample_rows(gen.n, s.points, "generator_editing.points")
        z0 = gen.z[pick].astype(np.float64)
        n = len(pick)
        moves = s.step * dirs * scale[None, :]                    # (m, k)
        live = [k for k in range(m) if np.any(moves[k] != 0)]
        changes = np.zeros((m, n, m))
        if live:
            batch = np.concatenate([z0 + sign * moves[k] for k in live for sign in (1, -1)])
            _, lat = gen.render(batch.astype(np.float32))
            read = (lat.astype(np.float64) @ W.T + b).reshape(len(live), 2, n, m)
            for j, k in enumerate(live):
                changes[k] = (read[j, 0] - read[j, 1]) / 2
        seed = int(ctx.rng("generator_editing.bootstrap").integers(np.iinfo(np.int32).max))
        eff = edit_effects(changes, n_bootstrap=s.n_bootstrap, confidence=s.confidence,
                           random_state=seed)
        M, R, P = eff["matrix"], eff["relative"], eff["p_value"]
        Mlo, Mhi = eff["matrix_ci"]
        Rlo, Rhi = eff["relative_ci"]
        diag = np.diag(M)
        editable = np.array([k in live and diag[k] > 0 and np.diag(Mlo)[k] > 0
                             for k in range(m)])
        # tests: off-diagonal pairs of editable rows
        pairs = [(i, j) for i in range(m) if editable[i] for j in range(m) if j != i]
        q = np.full((m, m), np.nan)
        if pairs:
            qs = benjamini_hochberg([P[i, j] for i, j in pairs], alpha=s.alpha)[1]
            for (i, j), v in zip(pairs, qs):
                q[i, j] = v
        flagged = np.zeros((m, m), dtype=bool)
        for i, j in pairs:
            excludes0 = Mlo[i, j] > 0 or Mhi[i, j] < 0
            flagged[i, j] = bool(q[i, j] <= s.alpha and excludes0
                                 and R[i, j] >= s.max_leakage
                                 and abs(M[i, j]) >= s.min_shift)
        names = [a["name"] for a in attrs]
        for k, a in enumerate(attrs):
            if not editable[k]:
                why = ("its read-out of the generations does not change along any direction "
                       "of the prior" if k not in live else
                       f"moving along its direction changes its own read-out by "
                       f"{M[k, k]:+.3f} SD per step ({s.confidence:.0%} CI "
                       f"{Mlo[k, k]:+.3f} to {Mhi[k, k]:+.3f}): not significantly")
                findings.append(Finding(
                    id=f"generator_editing-{a['key']}-not-editable", check=self.name,
                    severity="info", title=f"{a['name']}: cannot be edited through the prior",
                    summary=(f"{a['name']} is read from the real latents, but {why}; no "
                             "leakage is measured for edits of it."),
                    metric="generator.edit.attributes", value=_f(M[k, k]),
                    subjects={"attribute": a["name"], "kind": "not_editable"}))
        for i, j in zip(*np.nonzero(flagged)):
            findings.append(self._finding(attrs, i, j, eff, q, gen.ids[pick],
                                          changes[i, :, j], assoc_real[i, j]))
        off = [R[i, j] for i, j in pairs if np.isfinite(R[i, j])]
        metrics["generator.edit.attributes"] = float(editable.sum())
        if off:
            metrics["generator.edit.max_leakage"] = float(max(off))
        images: dict[str, np.ndarray] = {}
        sliders = self._sliders(ctx, attrs, W, b, moves / s.step, images, editable)
        tables["attributes"] = [{
            "name": a["name"], "key": a["key"], "role": a["role"], "kind": a["kind"],
            "target_level": a["target_level"], "probe": a["probe"],
            "direction": [float(v) for v in a["direction"][:16]],
            "prior_dim": int(gen.prior.dim), "slope": _f(a["slope"]), "r2": _f(a["r2"]),
            "editable": bool(editable[k]), "effect": _f(M[k, k]),
            "effect_ci": [_f(Mlo[k, k]), _f(Mhi[k, k])]} for k, a in enumerate(attrs)]
        tables["matrix"] = {
            "attributes": names, "raw": _mat(M), "raw_ci": [_mat(Mlo), _mat(Mhi)],
            "relative": _mat(R), "relative_ci": [_mat(Rlo), _mat(Rhi)], "p_value": _mat(P),
            "q_value": _mat(q), "flagged": flagged.tolist(), "editable": editable.tolist(),
            "association_real": _mat(assoc_real), "association_generated": _mat(assoc_gen),
            "n_points": n, "n_bootstrap": s.n_bootstrap}
        tables["sliders"] = sliders
        display: list[dict[str, Any]] = [{"kind": "generator_editing_matrix",
                                          "wide": m > 4}]
        display += [{"kind": "generator_editing_slider", "index": t, "wide": True}
                    for t in range(len(sliders))]
        if m < 2:
            tables["notes"].append("Only one attribute could be read: there is no other "
                                   "attribute for its edits to move.")
        order = {"critical": 0, "warning": 1, "info": 2}
        findings.sort(key=lambda f: order[f.severity])
        return CheckResult(check=self.name, status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables, display=tuple(display),
                           images=images)

    def _finding(self, attrs: list[dict], i: int, j: int, eff: dict, q: np.ndarray,
                 ids: np.ndarray, moved: np.ndarray, assoc: float) -> Finding:
        s = self.settings
        M, R = eff["matrix"], eff["relative"]
        (Mlo, Mhi), (Rlo, Rhi) = eff["matrix_ci"], eff["relative_ci"]
        a, b = attrs[i], attrs[j]
        conf = f"{s.confidence:.0%}"

        def what(x: dict) -> str:
            return (f"{x['name']} (its read-out of {x['target_level']!s} against the rest)"
                    if x["kind"] == "categorical" else x["name"])
        order = np.argsort(-moved * np.sign(M[i, j]))     # most moved the way the mean did
        severe = Rlo[i, j] >= s.critical_leakage
        return Finding(
            id=f"generator_editing-{a['key']}-{b['key']}", check=self.name,
            severity="critical" if severe else "warning",
            title=(f"Editing {a['name']} through the generator moves {b['name']} "
                   f"({R[i, j]:.2f} of the intended change)"),
            summary=(f"Moving prior points along the direction of {what(a)} by "
                     f"{s.step:g} prior standard deviations changes {what(b)} by "
                     f"{M[i, j]:+.3f} standard deviations ({conf} CI {Mlo[i, j]:+.3f} to "
                     f"{Mhi[i, j]:+.3f}) while {a['name']} itself changes by {M[i, i]:+.3f}: "
                     f"relative leakage {R[i, j]:.2f} ({conf} CI {Rlo[i, j]:.2f}–"
                     f"{Rhi[i, j]:.2f}), t-test {format_p(q[i, j], name='BH-adjusted p')}, "
                     f"{eff['n_points']} prior points decoded and re-embedded. "
                     + (f"The two read-outs go together in the real data (correlation "
                        f"{assoc:+.2f}): a generator that reproduces the data ties them "
                        "too, so this edit cannot keep them apart. " if abs(assoc) >= 0.3
                        else f"The two read-outs are nearly unrelated in the real data "
                             f"(correlation {assoc:+.2f}): the generator ties them. ")
                     + f"Evidence: the generations whose {b['name']} moved most."),
            metric="generator.edit.max_leakage", value=float(R[i, j]),
            threshold=s.max_leakage, p_value=float(q[i, j]),
            ci=(float(Rlo[i, j]), float(Rhi[i, j])),
            subjects={"edited": a["name"], "moved": b["name"], "raw": float(M[i, j]),
                      "raw_ci": [float(Mlo[i, j]), float(Mhi[i, j])],
                      "intended": float(M[i, i]), "association_real": _f(assoc)},
            evidence_ids=tuple(str(x) for x in ids[order[:20]]))

    def _sliders(self, ctx: Context, attrs: list[dict], W: np.ndarray, b: np.ndarray,
                 unit: np.ndarray, images: dict[str, np.ndarray], editable: np.ndarray
                 ) -> list[dict[str, Any]]:
        """For each editable attribute, a few prior points walked along its direction:
        the decoded outputs (image keys or rows) and every attribute's read-out."""
        s = self.settings
        gen = ctx.generated
        idx = [k for k in range(len(attrs)) if editable[k]]
        if not idx:
            return []
        pts = ctx.sample_rows(gen.n, s.slider_points, "generator_editing.slider")
        steps = np.linspace(-s.slider_range, s.slider_range, s.slider_steps)
        z = gen.z[pts].astype(np.float64)
        P, T = len(pts), len(steps)
        batch = np.concatenate([z[p] + t * unit[k] for k in idx for p in range(P)
                                for t in steps]).reshape(-1, gen.prior.dim)
        out, lat = gen.render(batch.astype(np.float32))
        read = lat.astype(np.float64) @ W.T + b
        sliders = []
        for n_k, k in enumerate(idx):
            entry: dict[str, Any] = {
                "attribute": attrs[k]["name"], "index": k,
                "steps": [float(t) for t in steps],
                "points": [str(i) for i in gen.ids[pts]],
                "readouts": [], "images": [], "rows": [], "columns": []}
            for p in range(P):
                base = (n_k * P + p) * T
                entry["readouts"].append([[_f(v) for v in read[base + t]] for t in range(T)])
                if gen.kind == "image":
                    keys = []
                    for t in range(T):
                        key = f"slider:{k}:{p}:{t}"
                        images[key] = np.asarray(out[base + t], dtype=np.uint8)
                        keys.append(key)
                    entry["images"].append(keys)
                else:
                    entry["columns"], rows = example_rows(out[base:base + T])
                    entry["rows"].append(rows)
            sliders.append(entry)
        return sliders
