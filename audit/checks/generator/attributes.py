"""``generator_attributes``: what the generator over- or under-produces.

For every configured attribute and protected column (numeric ones in quantile bins, by
:func:`audit.columns.group_column`), a linear probe (logistic regression) is trained on the
real latents (``ctx.generated.real``) and reads every generation. The share of each level
among the generations is compared with its share among the real rows *as the same probe
reads them* (out of fold), so the probe's own errors enter both sides alike
(:mod:`audit.metrics._gen_attributes`): Wilson intervals on both shares, Newcombe's
interval on the gap, a two-proportion z-test per level (Benjamini–Hochberg over every level
of every column) and a chi-square test of homogeneity per column. A level is flagged when
its gap is significant *and* material: ``|gap| >= min_gap`` and the ratio of shares outside
``[1 / max_ratio, max_ratio]``. A column the probe cannot read (cross-validated balanced
accuracy not clearly above chance) is skipped with an info finding: what it would say about
the generations could not be trusted.

The column preparation (:func:`prepare_columns`) is shared with ``generator_editing``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from ...columns import group_column, nested_rows, slug
from ...context import Context
from ...findings import CheckResult, Finding
from ...formatting import format_p
from ...metrics import benjamini_hochberg, probe_read_levels, share_comparison
from ..base import Check, CheckSettings, register

__all__ = ["NO_GENERATOR", "GeneratorAttributesCheck", "ProbeColumn", "example_rows",
           "prepare_columns", "readable"]

NO_GENERATOR = "no generator: in the config"
#: decoded table rows show at most this many columns in the report
_ROW_COLUMNS = 12


@dataclass
class ProbeColumn:
    """One configured column as the generator checks probe it (or why they do not)."""
    name: str
    key: str                                   # safe in metric names and finding ids
    role: str                                  # "attribute", "protected" or both
    numeric: bool = False                      # binned numeric column
    labels: np.ndarray | None = None           # level per real row; None: not probed
    levels: list[str] = field(default_factory=list)
    values: np.ndarray | None = None           # the raw numbers of a numeric column
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def rows(self) -> np.ndarray:
        """Real rows with a probed level."""
        return np.flatnonzero(np.array([v is not None for v in self.labels.tolist()]))

    def codes(self, rows: np.ndarray) -> np.ndarray:
        """Integer codes (index into ``levels``) of ``rows``."""
        pos = {v: j for j, v in enumerate(self.levels)}
        return np.array([pos[v] for v in self.labels[rows].tolist()], dtype=np.intp)


def prepare_columns(metadata: pd.DataFrame, attributes: list[str], protected: list[str], *,
                    bins: int, min_level_size: int, max_levels: int) -> list[ProbeColumn]:
    """Every configured column once (attributes first), grouped by ``group_column``: rows
    without a value and levels with fewer than ``min_level_size`` rows are left out (noted);
    a column left with fewer than two levels, or more than ``max_levels``, is skipped."""
    meta = metadata.reset_index(drop=True)
    roles: dict[str, list[str]] = {}
    for name in attributes:
        roles.setdefault(name, []).append("attribute")
    for name in protected:
        roles.setdefault(name, []).append("protected")
    taken: set[str] = set()
    out = []
    for name, role in roles.items():
        key = slug(name)
        while key in taken:
            key += "_"
        taken.add(key)
        col = ProbeColumn(name=name, key=key, role=" and ".join(dict.fromkeys(role)))
        out.append(col)
        if name not in meta.columns:
            col.skipped = f"column '{name}' is not in the real data's metadata"
            continue
        series = meta[name]
        if nested_rows(series).any():
            col.skipped = f"column '{name}' holds lists or mappings, not one value per row"
            continue
        groups = group_column(series, bins=bins)
        col.numeric = groups.numeric
        labels = groups.labels.copy()
        n_missing = int(sum(v is None for v in labels.tolist()))
        if n_missing:
            col.notes.append(f"{n_missing} of {len(labels)} real rows have no value and are "
                             "not probed")
        seen = {v for v in labels.tolist() if v is not None}
        present = [g for g in groups.order if g in seen]
        sizes = pd.Series([v for v in labels.tolist() if v is not None],
                          dtype=object).value_counts()
        small = [g for g in present if sizes.get(g, 0) < min_level_size]
        if small:
            drop = np.isin(labels.astype(object), np.array(small, dtype=object))
            labels[drop] = None
            shown = ", ".join(small[:5]) + (" …" if len(small) > 5 else "")
            col.notes.append(f"{len(small)} level(s) with fewer than {min_level_size} real "
                             f"rows are not probed ({shown}; {int(drop.sum())} rows)")
        levels = [g for g in present if g not in small]
        if len(levels) < 2:
            col.skipped = (f"column '{name}' has {len(levels)} level(s) with at least "
                           f"{min_level_size} real rows: nothing to compare")
            continue
        if len(levels) > max_levels:
            col.skipped = (f"column '{name}' has {len(levels)} levels, more than "
                           f"max_levels={max_levels}; bin it or leave it out")
            continue
        col.labels, col.levels = labels, levels
        if groups.numeric:
            col.values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    return out


def readable(score: float, ci_low: float, chance: float, lift: float) -> bool:
    """Whether a probe reads its column: the score at least ``lift`` above chance and the
    interval's lower end above chance."""
    return bool(np.isfinite(score) and score - chance >= lift and ci_low > chance)


def example_rows(rows: np.ndarray) -> tuple[list[str], list[list[float]]]:
    """Decoded table rows for the report: column names and rounded values (at most
    ``_ROW_COLUMNS`` columns)."""
    rows = np.asarray(rows, dtype=float)
    k = min(rows.shape[1], _ROW_COLUMNS)
    names = [f"x{j}" for j in range(k)]
    return names, [[float(f"{v:.4g}") for v in r[:k]] for r in rows]


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%" if v >= 0.095 or v == 0 else f"{100 * v:.1f}%"


def _pct_range(lo: float, hi: float) -> str:
    """``11–13%``; one decimal when the low end is under 9.5%."""
    if lo >= 0.095 or lo == 0:
        return f"{100 * lo:.0f}–{100 * hi:.0f}%"
    return f"{100 * lo:.1f}–{100 * hi:.1f}%"


@register
class GeneratorAttributesCheck(Check):
    """Generator attributes: which attribute levels and groups the generator over- or
    under-produces (probes trained on the real latents read the generations)."""

    name = "generator_attributes"
    family = "generator"
    produces: ClassVar[tuple[str, ...]] = (
        "generator.*.max_share_gap",
        "generator.attributes_tested",
    )

    class Settings(CheckSettings):
        min_gap: float = Field(0.05, gt=0, lt=1, description=(
            "a level is flagged only when its share among the generations differs from its "
            "share in the data by at least this much (absolute) ..."))
        max_ratio: float = Field(1.5, gt=1, description=(
            "... and the ratio of the shares is above this or below its inverse"))
        critical_ratio: float = Field(3.0, gt=1, description=(
            "severity critical when the ratio is above this or below its inverse"))
        alpha: float = Field(0.05, gt=0, lt=1, description=(
            "false-discovery rate (Benjamini–Hochberg) over every level of every column"))
        confidence: float = Field(0.95, gt=0, lt=1, description="level of every interval")
        numeric_bins: int = Field(4, ge=2, le=20, description=(
            "numeric columns are cut into this many quantile bins of the real data"))
        min_level_size: int = Field(20, ge=5, description=(
            "levels with fewer real rows are not probed"))
        max_levels: int = Field(20, ge=2, description=(
            "a column with more levels is skipped"))
        cv: int = Field(5, ge=2, le=20, description="folds of the probes")
        n_bootstrap: int = Field(200, ge=20, le=5000, description=(
            "bootstrap resamples of the probes' balanced accuracy"))
        min_probe_lift: float = Field(0.1, ge=0, lt=1, description=(
            "a column is tested only when its probe's cross-validated balanced accuracy is "
            "at least this far above chance (and its interval above chance)"))
        max_rows: int = Field(20_000, ge=100, description=(
            "the probes are trained on a seeded sample of at most this many real rows"))
        examples: int = Field(6, ge=0, le=50, description=(
            "generations shown for each flagged level"))

    def applies(self, ctx: Context) -> str | None:
        if ctx.generated is None:
            return NO_GENERATOR
        if not ctx.attributes and not ctx.protected:
            return ("no attributes or protected columns configured: list the metadata "
                    "columns to read under `attributes:` or `protected:`")
        return None

    def run(self, ctx: Context) -> CheckResult:
        s = self.settings
        gen = ctx.generated
        real = gen.real
        cols = prepare_columns(real.metadata, ctx.attributes, ctx.protected,
                               bins=s.numeric_bins, min_level_size=s.min_level_size,
                               max_levels=s.max_levels)
        sample = ctx.sample_rows(real.n, s.max_rows, "generator_attributes.rows")
        seeds = ctx.rng("generator_attributes.probe")
        notes: list[str] = []
        if sample.size < real.n:
            notes.append(f"Probes are trained on a seeded sample of {sample.size:,} of "
                         f"{real.n:,} real rows.")
        findings: list[Finding] = []
        metrics: dict[str, float] = {}
        entries: list[dict[str, Any]] = []
        tested: list[tuple[ProbeColumn, dict, dict, dict]] = []
        for col in cols:
            seed = int(seeds.integers(np.iinfo(np.int32).max))
            entry: dict[str, Any] = {"name": col.name, "key": col.key, "role": col.role,
                                     "binned": col.numeric, "notes": list(col.notes),
                                     "status": "skipped", "reason": col.skipped}
            entries.append(entry)
            if col.skipped is None:
                rows = np.intersect1d(col.rows, sample)
                codes = col.codes(rows)
                counts = np.bincount(codes, minlength=len(col.levels))
                if counts.min() < s.cv:
                    col.skipped = (f"a level has fewer than cv={s.cv} rows in the sample")
                else:
                    res = probe_read_levels(real.latents[rows], codes, gen.latents, cv=s.cv,
                                            n_bootstrap=s.n_bootstrap,
                                            confidence=s.confidence, random_state=seed)
                    entry["probe"] = {"balanced_accuracy": res["balanced_accuracy"],
                                      "ci": list(res["ci"]), "chance": res["chance"],
                                      "n": int(rows.size)}
                    if readable(res["balanced_accuracy"], res["ci"][0], res["chance"],
                                s.min_probe_lift):
                        cmp = share_comparison(res["real_read"], res["generated_read"],
                                               n_levels=len(col.levels),
                                               confidence=s.confidence)
                        tested.append((col, entry, res, {"cmp": cmp, "rows": rows}))
                        continue
                    col.skipped = (
                        f"the probe cannot read it: cross-validated balanced accuracy "
                        f"{res['balanced_accuracy']:.3f} ({s.confidence:.0%} interval "
                        f"{res['ci'][0]:.3f}–{res['ci'][1]:.3f}) against chance "
                        f"{res['chance']:.3f}; what it reads on the generations would not "
                        "be trustworthy")
                entry["reason"] = col.skipped
            findings.append(Finding(
                id=f"generator_attributes-{col.key}-skipped", check=self.name,
                severity="info", title=f"{col.name}: not tested",
                summary=f"{col.skipped[0].upper()}{col.skipped[1:]}.",
                metric="generator.attributes_tested", value=None,
                subjects={"column": col.name, "role": col.role, "kind": "skipped"}))

        # every level of every tested column: one family for Benjamini–Hochberg
        pvals = np.concatenate([t[3]["cmp"]["p_value"] for t in tested]) if tested \
            else np.array([])
        qvals = benjamini_hochberg(pvals, alpha=s.alpha)[1] if pvals.size else pvals
        offset = 0
        images: dict[str, np.ndarray] = {}
        display: list[dict[str, Any]] = []
        for col, entry, res, extra in tested:
            cmp, rows = extra["cmp"], extra["rows"]
            k = len(col.levels)
            q = qvals[offset:offset + k]
            offset += k
            labelled = np.bincount(col.codes(rows), minlength=k) / rows.size
            entry["status"] = "tested"
            entry["chi2"] = {"chi2": cmp["chi2"], "dof": cmp["dof"],
                             "p_value": cmp["chi2_p_value"], "cramers_v": cmp["cramers_v"]}
            entry["n_real"], entry["n_generated"] = cmp["n_real"], cmp["n_generated"]
            entry["levels"] = []
            metrics[f"generator.{col.key}.max_share_gap"] = float(np.max(np.abs(cmp["gap"])))
            for j, level in enumerate(col.levels):
                ratio = float(cmp["ratio"][j])
                gap = float(cmp["gap"][j])
                material = abs(gap) >= s.min_gap and (ratio >= s.max_ratio
                                                      or ratio <= 1 / s.max_ratio)
                flagged = bool(q[j] <= s.alpha and material)
                lv = {"level": level, "labelled_share": float(labelled[j]),
                      "real_share": float(cmp["real_share"][j]),
                      "real_ci": [float(cmp["real_ci"][0][j]), float(cmp["real_ci"][1][j])],
                      "generated_share": float(cmp["generated_share"][j]),
                      "generated_ci": [float(cmp["generated_ci"][0][j]),
                                       float(cmp["generated_ci"][1][j])],
                      "gap": gap, "gap_ci": [float(cmp["gap_ci"][0][j]),
                                             float(cmp["gap_ci"][1][j])],
                      "ratio": ratio if np.isfinite(ratio) else None,
                      "real_count": int(cmp["real_count"][j]),
                      "generated_count": int(cmp["generated_count"][j]),
                      "p_value": float(cmp["p_value"][j]), "q_value": float(q[j]),
                      "flagged": flagged, "direction": "under" if gap < 0 else "over"}
                entry["levels"].append(lv)
                if flagged:
                    read_as = np.flatnonzero(res["generated_read"] == j)
                    lv["examples"] = self._examples(ctx, read_as, len(entries) - 1, j,
                                                    images)
                    real_ids = real.ids[rows[col.codes(rows) == j]]
                    findings.append(self._finding(col, res, lv, real_ids, read_as, s))
            display.append({"kind": "generator_attributes_shares",
                            "index": entries.index(entry), "wide": k > 6})
            chi = entry["chi2"]
            findings.append(Finding(
                id=f"generator_attributes-{col.key}-distribution", check=self.name,
                severity="info",
                title=(f"{col.name}: generations vs data, largest share gap "
                       f"{metrics[f'generator.{col.key}.max_share_gap']:.3f} (chi-square "
                       f"{format_p(chi['p_value'])})"),
                summary=(f"As the probe reads them (cross-validated balanced accuracy "
                         f"{res['balanced_accuracy']:.3f}, chance {res['chance']:.3f}), the "
                         f"{k} levels of {col.name} over {cmp['n_generated']:,} generations "
                         f"against {cmp['n_real']:,} real rows: chi-square test of "
                         f"homogeneity {chi['chi2']:.1f} on {chi['dof']} degrees of freedom, "
                         f"{format_p(chi['p_value'])}, Cramér's V {chi['cramers_v']:.3f}; "
                         f"largest share gap {metrics[f'generator.{col.key}.max_share_gap']:.3f}"
                         "."),
                metric=f"generator.{col.key}.max_share_gap",
                value=metrics[f"generator.{col.key}.max_share_gap"],
                p_value=chi["p_value"],
                subjects={"column": col.name, "role": col.role, "kind": "distribution"}))
        metrics["generator.attributes_tested"] = float(len(tested))
        tables = {"settings": s.model_dump(), "n_real": int(real.n),
                  "n_sample": int(sample.size), "n_generated": int(gen.n),
                  "kind": gen.kind, "columns": entries, "notes": notes,
                  "tests": int(pvals.size)}
        order = {"critical": 0, "warning": 1, "info": 2}
        findings.sort(key=lambda f: order[f.severity])
        return CheckResult(check=self.name, status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables, display=tuple(display),
                           images=images)

    def _examples(self, ctx: Context, read_as: np.ndarray, c: int, j: int,
                  images: dict[str, np.ndarray]) -> dict[str, Any]:
        """A few generations the probe reads as level ``j`` of column ``c``."""
        gen = ctx.generated
        pick = read_as[:self.settings.examples]
        out: dict[str, Any] = {"ids": [str(i) for i in gen.ids[pick]]}
        if not pick.size:
            return out
        outputs = gen.outputs(pick)
        if gen.kind == "image":
            out["images"] = []
            for t, img in enumerate(outputs):
                key = f"examples:{c}:{j}:{t}"
                images[key] = np.asarray(img, dtype=np.uint8)
                out["images"].append(key)
        else:
            out["columns"], out["rows"] = example_rows(outputs)
        return out

    def _finding(self, col: ProbeColumn, res: dict, lv: dict, real_ids: np.ndarray,
                 read_as: np.ndarray, s: Any) -> Finding:
        under = lv["gap"] < 0
        ratio = lv["ratio"]
        severe = ratio is None or ratio >= s.critical_ratio or ratio <= 1 / s.critical_ratio
        level, name = lv["level"], col.name
        lo, hi = lv["generated_ci"]
        conf = f"{s.confidence:.0%}"
        what = f"{name} = {level}" if col.numeric else f"{name} {level}"
        ratio_text = "∞" if ratio is None else f"{ratio:.2f}"
        return Finding(
            id=f"generator_attributes-{col.key}-{slug(level)}-{col.levels.index(level)}",
            check=self.name,
            severity="critical" if severe else "warning",
            title=(f"{what} is {'under' if under else 'over'}-produced: "
                   f"{_pct(lv['real_share'])} of the data, {_pct(lv['generated_share'])} of "
                   "generations"),
            summary=(f"{what} is {_pct(lv['real_share'])} of the data and "
                     f"{_pct(lv['generated_share'])} of generations ({conf} CI "
                     f"{_pct_range(lo, hi)}), a gap of {lv['gap']:+.3f} ({conf} CI "
                     f"{lv['gap_ci'][0]:+.3f} to {lv['gap_ci'][1]:+.3f}; ratio "
                     f"{ratio_text}; two-proportion z-test, "
                     f"{format_p(lv['q_value'], name='BH-adjusted p')}). Both shares are "
                     f"as a linear probe trained on the real latents reads them (the data's "
                     f"out of fold, {conf} CI {_pct_range(*lv['real_ci'])}; labelled share {_pct(lv['labelled_share'])};"
                     f" probe balanced accuracy {res['balanced_accuracy']:.3f}). Evidence: "
                     f"real rows labelled {level} and generations read as {level}."),
            metric=f"generator.{col.key}.max_share_gap", value=lv["gap"],
            threshold=s.min_gap, p_value=lv["q_value"],
            ci=(lv["gap_ci"][0], lv["gap_ci"][1]),
            subjects={"column": col.name, "level": level, "role": col.role,
                      "direction": "under" if under else "over",
                      "data_share": lv["real_share"], "generated_share": lv["generated_share"],
                      "generated_ci": [lo, hi], "ratio": ratio,
                      "generated_ids": [f"gen-{i}" for i in read_as[:50]]},
            evidence_ids=tuple(str(i) for i in real_ids[:50])
            + tuple(f"gen-{i}" for i in read_as[:50]))
