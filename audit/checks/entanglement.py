"""``entanglement``: which attributes the latents encode, and whether editing one moves another.

For the metadata columns named in ``attributes:``:

1. **Probes.** A cross-validated linear probe per attribute (logistic for categorical,
   ridge for numeric) on the z-scored latents: balanced accuracy or R², a bootstrap
   interval and the chance level. An attribute is *encoded* when the interval's lower end
   is above chance.
2. **Joint directions.** One regression of the latents on every attribute at once gives
   each attribute's direction with the others held fixed, so attributes that are merely
   correlated in the data get separate directions. The data-level association of every
   pair is reported beside the representation-level entanglement.
3. **Entanglement matrix.** Cosine between joint directions, and edit leakage: moving a
   latent along A's direction by one standard deviation of A moves B's partial probe (a
   read-out of B that a correlated attribute cannot stand in for) by L(A→B) standard
   deviations of B per standard deviation of A's own read-out. With a decoder and an
   encoder, leakage is also measured through decode → re-encode. A pair is flagged when a
   one-sided test of L > ``leakage_threshold`` (bootstrap standard error) survives
   Benjamini–Hochberg over all tested ordered pairs.
4. **Disentanglement scores** (MIG, DCI, SAP, modularity; disentanglement_lib definitions)
   on the attributes as factors, numeric ones cut into ``factor_bins`` quantile bins; DCI
   and SAP on a seeded subsample of ``dci_max_rows`` rows.
5. **Per-dimension map**: normalised mutual information, latent dimension × attribute, and
   dead dimensions (near-zero variance relative to the others and no attribute).
6. **Sliders and interpolation grids**: decoded images (or the nearest real samples) along
   each attribute's direction and between pairs of data points.
7. **Latent arithmetic consistency**: cosine between an attribute's directions fitted inside
   each group of another attribute, with a permutation test.
8. **Awkward attributes** (one value, missing values, too many levels, numeric with few
   values) are handled explicitly and reported.

See docs/checks/entanglement.md.
"""
from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import stats

from ..context import Context
from ..formatting import format_p
from ..findings import CheckResult, Finding
from ..metrics import (benjamini_hochberg, dci_scores, factor_entropy, knn, mig_score,
                       modularity_score, mutual_info_matrix, sap_score)
from ..metrics._probes import (direction_consistency, entanglement_analysis, probe_score,
                               shift_leakage)
from .base import Check, CheckSettings, register

log = logging.getLogger("audit")

__all__ = ["EntanglementCheck", "prepare_attribute"]

OTHER = "<other>"
_KEY_RE = re.compile(r"[^A-Za-z0-9_\-]")
# Salts of ctx.rng: one per random stage, so adding a stage never changes another's draws.
_SCORE_NOTES = {
    "disentanglement.mig": "Mutual information gap: per attribute, the MI of the best latent "
                           "dimension minus the second best, over the attribute's entropy "
                           "(1 = each attribute lives in one dimension).",
    "disentanglement.dci.disentanglement": "DCI disentanglement: how much each dimension's "
                                           "importance concentrates on one attribute "
                                           "(gradient-boosted trees).",
    "disentanglement.dci.completeness": "DCI completeness: how much each attribute's "
                                        "importance concentrates on one dimension.",
    "disentanglement.dci.informativeness": "DCI informativeness: test accuracy of the trees "
                                           "predicting each attribute from all dimensions.",
    "disentanglement.sap": "Separated attribute predictability: per attribute, the gap in "
                           "accuracy between the best and second-best single dimension.",
    "disentanglement.modularity": "Modularity: how much each dimension's MI is about a "
                                  "single attribute (1 = every dimension serves one).",
}


# ---- attributes ---------------------------------------------------------------------------

@dataclass
class Attribute:
    """One configured column, as the check will use it (or why it will not)."""
    name: str
    key: str                                  # safe for metric names and finding ids
    kind: str = "numeric"                     # "numeric" | "categorical"
    status: str = "ok"                        # "ok" | "refused"
    values: np.ndarray | None = None          # float (numeric) or str (categorical)
    valid: np.ndarray | None = None           # rows with a usable value
    notes: list[str] = field(default_factory=list)
    n_missing: int = 0
    n_dropped: int = 0                        # rows left out for other reasons
    levels: list[str] = field(default_factory=list)

    @property
    def categorical(self) -> bool:
        return self.kind == "categorical"

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "kind": self.kind, "status": self.status,
                "n_missing": self.n_missing, "n_dropped": self.n_dropped,
                "n_used": int(self.valid.sum()) if self.valid is not None else 0,
                "levels": self.levels[:50], "n_levels": len(self.levels),
                "notes": list(self.notes)}


def _safe_key(name: str, taken: set[str]) -> str:
    key = _KEY_RE.sub("_", str(name)) or "attr"
    base, k = key, 2
    while key in taken:
        key = f"{base}_{k}"
        k += 1
    taken.add(key)
    return key


def prepare_attribute(name: str, column: pd.Series | None, *, key: str, cv: int,
                      max_levels: int, min_level_size: int, few_values: int,
                      min_rows: int) -> Attribute:
    """Decide how one metadata column is probed: numeric, categorical, or refused.

    * missing values (None, NaN, and ±Inf in numeric columns) are left out and counted;
    * a column with a single value (among the present ones) is refused;
    * a numeric column with at most ``few_values`` distinct values is treated as
      categorical (its values are levels);
    * categorical levels with fewer than ``min_level_size`` rows are merged into
      ``<other>``; if ``<other>`` has fewer than ``cv`` rows they are dropped (counted);
      more than ``max_levels`` levels left is refused;
    * dates, and columns with fewer than ``min_rows`` usable rows, are refused.
    """
    att = Attribute(name=name, key=key)
    if column is None:
        att.status = "refused"
        att.notes.append(f"column '{name}' is not in the metadata")
        return att
    col = column.reset_index(drop=True)
    n = len(col)
    if pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
        att.status = "refused"
        att.notes.append(f"column '{name}' holds dates or durations: convert it to a number "
                         "or a category to probe it")
        return att
    numeric = (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col))
    if numeric:
        vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64,
                                                            na_value=np.nan)
        n_inf = int(np.isinf(vals).sum())
        present = np.isfinite(vals)
    else:
        vals = col.astype(object).to_numpy()
        present = ~col.isna().to_numpy()
        n_inf = 0
    att.n_missing = int(n - present.sum())
    if att.n_missing:
        extra = f" ({n_inf} of them ±Inf)" if n_inf else ""
        att.notes.append(f"{att.n_missing} of {n} rows have no value{extra}; they are left "
                         "out of this attribute's probe and of the joint analysis")
    distinct = pd.unique(vals[present]) if present.any() else np.array([])
    if distinct.size == 0:
        att.status = "refused"
        att.notes.append(f"column '{name}' has no values: nothing to probe")
        return att
    if distinct.size == 1:
        att.status = "refused"
        att.notes.append(f"column '{name}' takes a single value ({distinct[0]!r}) in every "
                         "row that has one: it cannot be probed")
        return att
    if numeric and distinct.size > few_values:
        att.kind = "numeric"
        att.values = np.where(present, vals, np.nan)
        att.valid = present
    else:
        att.kind = "categorical"
        if numeric:
            att.notes.append(f"numeric with only {distinct.size} distinct values: treated as "
                             "categorical (each value a level)")
            labels = np.array([_fmt_level(v) if ok else "" for v, ok in zip(vals, present)],
                              dtype=object)
        else:
            labels = np.array([str(v) if ok else "" for v, ok in zip(vals, present)],
                              dtype=object)
        counts = pd.Series(labels[present]).value_counts()
        rare = counts[counts < min_level_size]
        if len(counts) - len(rare) > max_levels:
            att.status = "refused"
            att.notes.append(f"column '{name}' has {len(counts) - len(rare)} levels with at "
                             f"least {min_level_size} rows each, more than "
                             f"max_levels={max_levels}: a probe cannot learn that many "
                             "classes reliably; bin it or leave it out")
            return att
        if len(counts) - len(rare) == 0 or (len(counts) - len(rare) == 1
                                            and rare.sum() < min_level_size):
            att.status = "refused"
            att.notes.append(f"column '{name}' has {len(counts)} distinct values but "
                             f"{len(counts) - len(rare)} with at least {min_level_size} rows: "
                             "too sparse to probe (an identifier?)")
            return att
        if len(rare) and len(counts) > 1:
            merged = labels.copy()
            merged[present & np.isin(labels, rare.index.to_numpy())] = OTHER
            n_other = int(rare.sum())
            att.notes.append(f"{len(rare)} level(s) with fewer than {min_level_size} rows "
                             f"merged into '{OTHER}' ({n_other} rows)")
            labels = merged
            if n_other < cv:
                drop = present & (labels == OTHER)
                present = present & ~drop
                att.n_dropped += int(drop.sum())
                att.notes.append(f"'{OTHER}' has fewer than {cv} rows (one per fold): those "
                                 f"{int(drop.sum())} rows are dropped")
            counts = pd.Series(labels[present]).value_counts()
        if len(counts) > max_levels:
            att.status = "refused"
            att.notes.append(f"column '{name}' has {len(counts)} levels (counting "
                             f"'{OTHER}'), more than max_levels={max_levels}: a probe cannot "
                             "learn that many classes reliably; bin it or leave it out")
            return att
        if len(counts) < 2:
            att.status = "refused"
            att.notes.append(f"column '{name}' has only one level with enough rows: it "
                             "cannot be probed")
            return att
        att.values = labels
        att.valid = present
        att.levels = [str(v) for v in sorted(counts.index, key=str)]
    if int(att.valid.sum()) < min_rows:
        att.status = "refused"
        att.notes.append(f"column '{name}' has only {int(att.valid.sum())} usable rows "
                         f"(need {min_rows})")
    return att


def _fmt_level(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


# ---- helpers -------------------------------------------------------------------------------

def _scaler(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation behind ``ctx.standardized`` (same rule for constants)."""
    mean = latents.mean(axis=0, dtype=np.float64)
    std = latents.std(axis=0, dtype=np.float64)
    return mean, np.where(std > 1e-12 * max(std.max(), 1e-30), std, 1.0)


def _column_variance(x: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """``x.var(axis=0)`` in float64, two passes over row chunks (no N×d float64 copy)."""
    n = x.shape[0]
    mean = np.zeros(x.shape[1])
    for start in range(0, n, chunk):
        mean += x[start:start + chunk].sum(axis=0, dtype=np.float64)
    mean /= n
    ss = np.zeros(x.shape[1])
    for start in range(0, n, chunk):
        c = x[start:start + chunk].astype(np.float64) - mean
        ss += np.einsum("ij,ij->j", c, c)
    return ss / n


def _seed(ctx: Context, stage: str) -> int:
    return int(ctx.rng(f"entanglement.{stage}.seed").integers(np.iinfo(np.int32).max))


def _subsample(ctx: Context, rows: np.ndarray, cap: int, stage: str) -> np.ndarray:
    if rows.size <= cap:
        return rows
    return np.sort(ctx.rng(f"entanglement.{stage}.rows").choice(rows, cap, replace=False))


def _shrink(img: np.ndarray, side: int = 64) -> np.ndarray:
    """Block-average an image down to at most ``side`` pixels on its longer side."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    f = int(math.ceil(max(img.shape[:2]) / side))
    if f <= 1:
        return img.astype(np.uint8)
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    x = img[:h, :w].astype(np.float32).reshape(h // f, f, w // f, f, img.shape[2])
    return np.clip(np.round(x.mean(axis=(1, 3))), 0, 255).astype(np.uint8)


def _as_images(out: Any, n: int) -> np.ndarray:
    arr = np.asarray(out)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[0] != n or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"the decoder returned shape {arr.shape}; expected ({n}, H, W, C) "
                         "with C in 1, 3, 4")
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    return arr


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _rmat(a: np.ndarray, digits: int = 4) -> list[list[float | None]]:
    return [[_f(round(float(v), digits)) if np.isfinite(v) else None for v in row]
            for row in np.asarray(a, dtype=float)]


def _num(v: float, digits: int = 2) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


# ---- the check ------------------------------------------------------------------------------

@register
class EntanglementCheck(Check):
    """Which attributes the latents encode, and whether editing one moves another."""

    name = "entanglement"
    produces: ClassVar[tuple[str, ...]] = (
        "entanglement.attributes_probed",
        "entanglement.attributes_refused",
        "entanglement.*.probe_score",
        "entanglement.max_leakage",
        "entanglement.mean_abs_cosine",
        "entanglement.flagged_pairs",
        "entanglement.max_leakage_reencoded",
        "entanglement.dead_dimensions",
        "entanglement.min_direction_consistency",
        "disentanglement.mig",
        "disentanglement.sap",
        "disentanglement.modularity",
        "disentanglement.dci.*",
    )

    class Settings(CheckSettings):
        leakage_threshold: float = Field(0.25, gt=0, description=(
            "a pair is flagged when edit leakage (standard deviations of B's read-out per "
            "standard deviation of A's own) is significantly above this"))
        critical_leakage: float = Field(0.75, gt=0, description=(
            "severity critical when the interval's lower end is above this"))
        alpha: float = Field(0.05, gt=0, lt=1, description=(
            "false-discovery rate (Benjamini–Hochberg) of every family of tests"))
        confidence: float = Field(0.95, gt=0, lt=1, description="level of every interval")
        cv: int = Field(5, ge=2, le=20, description="folds of the probes")
        n_bootstrap: int = Field(200, ge=20, le=5000, description="bootstrap resamples")
        max_rows: int = Field(10_000, ge=100, description=(
            "probes and the joint analysis use a seeded sample of at most this many rows"))
        max_levels: int = Field(20, ge=2, description=(
            "a categorical attribute with more levels (after merging rare ones) is refused"))
        min_level_size: int = Field(10, ge=2, description=(
            "levels with fewer rows are merged into '<other>'"))
        few_values: int = Field(5, ge=2, description=(
            "a numeric attribute with at most this many distinct values is treated as "
            "categorical"))
        disentanglement: bool = Field(True, description=(
            "compute the disentanglement scores (DCI fits gradient-boosted trees: the "
            "slowest part)"))
        factor_bins: int = Field(5, ge=2, le=50, description=(
            "numeric attributes are cut into this many quantile bins to act as discrete "
            "factors (disentanglement scores, MI map)"))
        mi_bins: int = Field(20, ge=2, le=200, description=(
            "equal-width bins per latent dimension for mutual information (as "
            "disentanglement_lib)"))
        dci_max_rows: int = Field(1000, ge=50, description=(
            "DCI and SAP use a seeded sample of at most this many rows (DCI fits one "
            "100-tree gradient-boosted classifier per attribute level: its cost grows "
            "with this, not with N)"))
        factor_max_rows: int = Field(50_000, ge=100, description=(
            "the MI map, MIG and modularity use a seeded sample of at most this many rows "
            "(dead dimensions use every row)"))
        dead_variance_ratio: float = Field(0.01, gt=0, lt=1, description=(
            "a dimension is dead when its variance is significantly below this share of "
            "the median dimension's variance ..."))
        dead_mi: float = Field(0.05, gt=0, lt=1, description=(
            "... and it shares less than this normalised MI with every attribute"))
        consistency: bool = Field(True, description="run the latent arithmetic consistency "
                                                    "tests")
        consistency_threshold: float = Field(0.5, gt=-1, lt=1, description=(
            "flag when the mean cosine between group-wise directions is significantly "
            "low and at most this"))
        consistency_bins: int = Field(3, ge=2, le=10, description=(
            "numeric grouping attributes are cut into this many quantile bins"))
        min_group_size: int = Field(30, ge=5, description=(
            "groups smaller than this take no part in the consistency tests"))
        n_permutations: int = Field(100, ge=10, le=10_000, description=(
            "label shuffles per consistency test"))
        correlation_note: float = Field(0.2, ge=0, le=1, description=(
            "attribute pairs associated at least this much in the data get an info finding"))
        slider_steps: int = Field(9, ge=3, le=41, description="steps of each slider")
        slider_range: float = Field(2.0, gt=0, le=10, description=(
            "each slider walks ± this many standard deviations of the attribute"))
        grid_pairs: int = Field(3, ge=0, le=20, description="interpolation grids")
        grid_steps: int = Field(7, ge=3, le=21, description="steps of each grid")
        reencode_points: int = Field(256, ge=10, le=10_000, description=(
            "points used to measure leakage through decode → re-encode"))

    def applies(self, ctx: Context) -> str | None:
        if not ctx.attributes:
            return ("no attributes configured: list the metadata columns to probe under "
                    "`attributes:`")
        if ctx.n < 20:
            return f"only {ctx.n} points; the probes need at least 20"
        return None

    # -- run --------------------------------------------------------------------------------
    def run(self, ctx: Context) -> CheckResult:
        s = self.settings
        meta = ctx.data.metadata
        ids = ctx.data.ids
        taken: set[str] = set()
        attrs = [prepare_attribute(
            a, meta[a] if a in meta.columns else None, key=_safe_key(a, taken), cv=s.cv,
            max_levels=s.max_levels, min_level_size=s.min_level_size,
            few_values=s.few_values, min_rows=max(4 * s.cv, 20))
            for a in dict.fromkeys(ctx.attributes)]
        usable = [a for a in attrs if a.status == "ok"]
        X = ctx.standardized
        sample = _subsample(ctx, np.arange(ctx.n), s.max_rows, "rows")
        findings: list[Finding] = []
        metrics: dict[str, float] = {}
        tables: dict[str, Any] = {"settings": s.model_dump(), "n": ctx.n,
                                  "sample_rows": int(sample.size), "notes": []}
        notes = tables["notes"]
        if sample.size < ctx.n:
            notes.append(f"Probes and the joint analysis use a seeded sample of "
                         f"{sample.size:,} of {ctx.n:,} rows.")

        # 1. probes ------------------------------------------------------------------------
        probes: dict[str, dict[str, Any]] = {}
        probe_seed = _seed(ctx, "probe")
        for a in usable:
            rows = sample[a.valid[sample]]
            res = probe_score(X[rows], a.values[rows], categorical=a.categorical, cv=s.cv,
                              n_bootstrap=s.n_bootstrap, confidence=s.confidence,
                              random_state=probe_seed)
            res["encoded"] = bool(res["ci"][0] > res["chance"])
            res["n"] = int(rows.size)
            probes[a.name] = res
            metrics[f"entanglement.{a.key}.probe_score"] = res["score"]
        # 2-3. joint analysis ----------------------------------------------------------------
        joint = self._joint(ctx, usable, sample, probes, notes)
        # 4-5. factor metrics ----------------------------------------------------------------
        factor = self._factors(ctx, usable, notes)
        # 7. consistency ---------------------------------------------------------------------
        consistency = (self._consistency(ctx, joint, probes, notes)
                       if s.consistency and joint is not None else None)
        # 6. sliders, grids, re-encoded leakage ---------------------------------------------
        images: dict[str, np.ndarray] = {}
        visuals = self._visuals(ctx, joint, probes, images, notes)

        # ---- findings and metrics ---------------------------------------------------------
        for a in attrs:
            findings.extend(self._attribute_findings(a, probes.get(a.name)))
        tables["attributes"] = [
            {**a.summary(), "probe": self._probe_row(probes.get(a.name))} for a in attrs]
        metrics["entanglement.attributes_probed"] = float(len(usable))
        metrics["entanglement.attributes_refused"] = float(len(attrs) - len(usable))
        if joint is not None:
            f, m, t = self._pair_results(ctx, joint, probes, visuals)
            findings.extend(f)
            metrics.update(m)
            tables["joint"] = t
        else:
            metrics.update({"entanglement.max_leakage": float("nan"),
                            "entanglement.mean_abs_cosine": float("nan"),
                            "entanglement.flagged_pairs": 0.0})
        if factor is not None:
            f, m, t = self._factor_results(ctx, factor)
            findings.extend(f)
            metrics.update(m)
            tables["factors"] = t
        if consistency is not None:
            f, m, t = self._consistency_results(consistency)
            findings.extend(f)
            metrics.update(m)
            tables["consistency"] = t
        tables.update(visuals["tables"])

        display: list[dict[str, Any]] = []
        if probes:
            display.append({"kind": "entanglement_probes"})
        if joint is not None and len(joint["names"]) >= 2:
            display.append({"kind": "entanglement_matrices", "wide": True})
        if factor is not None:
            display.append({"kind": "entanglement_mi"})
        if consistency is not None and consistency["tests"]:
            display.append({"kind": "entanglement_consistency"})
        for k, _ in enumerate(tables.get("sliders", [])):
            display.append({"kind": "entanglement_slider", "index": k})
        if tables.get("grids"):
            display.append({"kind": "entanglement_grid", "wide": True})
        return CheckResult(check=self.name, status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables, display=tuple(display),
                           images=images)

    # -- 2-3: joint directions, cosines, leakage -----------------------------------------------
    def _joint(self, ctx: Context, usable: list[Attribute], sample: np.ndarray,
               probes: dict[str, dict], notes: list[str]) -> dict[str, Any] | None:
        s = self.settings
        if not usable:
            return None
        members = list(usable)
        while members:
            ok = np.ones(sample.size, dtype=bool)
            for a in members:
                ok &= a.valid[sample]
            rows = sample[ok]
            p = sum(max(len(a.levels) - 1, 1) for a in members)
            if rows.size < max(30, 5 * (p + 1)):
                worst = max(members, key=lambda a: int((~a.valid).sum()))
                why = "with it, too few rows have every attribute"
            else:
                single = [a for a in members
                          if pd.unique(a.values[rows]).size < 2]
                if not single:
                    break
                worst = single[0]
                why = "it takes a single value in the rows where every attribute is present"
            members.remove(worst)
            worst.notes.append(f"left out of the joint analysis: {why}")
            notes.append(f"'{worst.name}' is left out of the joint analysis ({why}).")
        if not members:
            return None
        dropped = int(sample.size - rows.size)
        if dropped:
            notes.append(f"The joint analysis uses the {rows.size:,} sampled rows where every "
                         f"attribute in it has a value ({dropped:,} left out).")
        res = entanglement_analysis(
            ctx.standardized[rows], [a.values[rows] for a in members],
            categorical=[a.categorical for a in members], threshold=s.leakage_threshold,
            n_bootstrap=s.n_bootstrap, confidence=s.confidence,
            random_state=_seed(ctx, "joint"))
        res["names"] = [a.name for a in members]
        res["attrs"] = members
        res["rows"] = rows
        res["encoded"] = np.array([probes[a.name]["encoded"] for a in members])
        return res

    def _pair_results(self, ctx: Context, joint: dict, probes: dict, visuals: dict
                      ) -> tuple[list[Finding], dict[str, float], dict[str, Any]]:
        s = self.settings
        names, attrs = joint["names"], joint["attrs"]
        m = len(names)
        enc = joint["encoded"]
        L, Llo, Lhi = joint["leakage"], *joint["leakage_ci"]
        C, Clo, Chi = joint["cosine"], *joint["cosine_ci"]
        A, Alo, Ahi = joint["association"], *joint["association_ci"]
        P = joint["leakage_p"]
        tested = [(a, b) for a in range(m) for b in range(m)
                  if a != b and enc[a] and enc[b] and np.isfinite(P[a, b])]
        q = np.full((m, m), np.nan)
        rejected = np.zeros((m, m), dtype=bool)
        if tested:
            rej, qv = benjamini_hochberg([P[a, b] for a, b in tested], alpha=s.alpha)
            for (a, b), r, qq in zip(tested, rej, qv):
                q[a, b], rejected[a, b] = qq, r
        reenc = visuals.get("reencoded")
        findings: list[Finding] = []
        flagged_pairs = set()
        for a in range(m):
            for b in range(a + 1, m):
                cand = [(x, y) for x, y in ((a, b), (b, a)) if rejected[x, y]]
                if not cand:
                    continue
                x, y = max(cand, key=lambda t: L[t])
                flagged_pairs.add((a, b))
                na, nb = names[x], names[y]
                back = L[y, x]
                re_txt = ""
                if reenc is not None and np.isfinite(reenc["leakage"][x][y]):
                    lo_r, hi_r = reenc["ci_low"][x][y], reenc["ci_high"][x][y]
                    re_txt = (f" Through decode → re-encode: {_num(reenc['leakage'][x][y])}"
                              f" [{_num(lo_r)}, {_num(hi_r)}].")
                data_txt = (f"In the data, {na} and {nb} are associated at "
                            f"{_num(A[x, y])} [{_num(Alo[x, y])}, {_num(Ahi[x, y])}]")
                data_txt += (": part of what a naive probe would show is the data's, but "
                             "this leakage holds the other attributes fixed." if
                             abs(A[x, y]) >= s.correlation_note else
                             ", so the tie is the model's, not the data's.")
                sev = "critical" if Llo[x, y] >= s.critical_leakage else "warning"
                findings.append(Finding(
                    id=f"entanglement-pair-{attrs[a].key}-{attrs[b].key}",
                    check=self.name, severity=sev,
                    title=f"Editing {na} moves {nb}: leakage {_num(L[x, y])}",
                    summary=(f"Moving a latent along {na}'s direction by one standard "
                             f"deviation of {na} moves the read-out of {nb} by "
                             f"{_num(L[x, y])} standard deviations per standard deviation "
                             f"of {na}'s own ({s.confidence:.0%} interval "
                             f"[{_num(Llo[x, y])}, {_num(Lhi[x, y])}]; the other way, "
                             f"{nb} → {na}: {_num(back)}). Their joint directions have "
                             f"cosine {_num(C[x, y])} [{_num(Clo[x, y])}, {_num(Chi[x, y])}]."
                             f"{re_txt} {data_txt}"),
                    metric="entanglement.leakage", value=_f(L[x, y]),
                    threshold=s.leakage_threshold, p_value=_f(q[x, y]),
                    ci=(_f(Llo[x, y]), _f(Lhi[x, y])),
                    subjects={"attributes": [na, nb], "from": na, "to": nb},
                    evidence_ids=tuple(visuals["evidence"].get(na, ()))))
        for a in range(m):
            for b in range(a + 1, m):
                if not np.isfinite(A[a, b]) or abs(A[a, b]) < s.correlation_note:
                    continue
                na, nb = names[a], names[b]
                pair = [v for v in (L[a, b], L[b, a]) if np.isfinite(v)]
                lk = max(pair) if enc[a] and enc[b] and pair else float("nan")
                if (a, b) in flagged_pairs:
                    verdict = ("The model also ties them together: see the flagged "
                               "entanglement finding for this pair.")
                elif enc[a] and enc[b]:
                    verdict = (f"The representation keeps them apart: joint directions at "
                               f"cosine {_num(C[a, b])}, edit leakage at most {_num(lk)} "
                               f"(not significantly above {s.leakage_threshold:g}). This is a "
                               "property of the data, not entanglement by the model.")
                else:
                    verdict = ("Not both are encoded by the latents, so their entanglement "
                               "is not tested.")
                kind = ("Pearson r" if not (attrs[a].categorical or attrs[b].categorical)
                        else "canonical correlation")
                findings.append(Finding(
                    id=f"entanglement-data-{attrs[a].key}-{attrs[b].key}", check=self.name,
                    severity="info",
                    title=f"{na} and {nb} are correlated in the data ({kind} "
                          f"{_num(A[a, b])})",
                    summary=(f"In the audited rows, {na} and {nb} are associated at "
                             f"{_num(A[a, b])} ({kind}, {s.confidence:.0%} interval "
                             f"[{_num(Alo[a, b])}, {_num(Ahi[a, b])}]). {verdict}"),
                    metric="entanglement.data_association", value=_f(A[a, b]),
                    threshold=s.correlation_note, ci=(_f(Alo[a, b]), _f(Ahi[a, b])),
                    subjects={"attributes": [na, nb]}))
        iu = [(a, b) for a in range(m) for b in range(a + 1, m) if enc[a] and enc[b]]
        metrics = {
            "entanglement.max_leakage": (float(np.nanmax([L[a, b] for a, b in tested]))
                                         if tested else float("nan")),
            "entanglement.mean_abs_cosine": (float(np.nanmean([abs(C[a, b]) for a, b in iu]))
                                             if iu else float("nan")),
            "entanglement.flagged_pairs": float(len(flagged_pairs)),
        }
        if reenc is not None:
            R = np.array(reenc["leakage"], dtype=float)
            vals = [R[a, b] for a, b in tested if np.isfinite(R[a, b])]
            metrics["entanglement.max_leakage_reencoded"] = (float(max(vals)) if vals
                                                             else float("nan"))
        table = {
            "attributes": names, "encoded": enc.tolist(),
            "categorical": [a.categorical for a in attrs], "n_rows": int(joint["n"]),
            "n_bootstrap": int(joint["n_bootstrap"]),
            "association": _rmat(A), "association_ci": [_rmat(Alo), _rmat(Ahi)],
            "cosine": _rmat(C), "cosine_ci": [_rmat(Clo), _rmat(Chi)],
            "leakage": _rmat(L), "leakage_ci": [_rmat(Llo), _rmat(Lhi)],
            "leakage_q": _rmat(q), "flagged": rejected.tolist(),
            "marginal_leakage": _rmat(joint["marginal_leakage"]),
            "direction_norm": [_f(v) for v in joint["direction_norm"]],
            "probe_vs_joint_cosine": [
                _f(abs(np.dot(probes[n]["direction"], joint["directions"][k]))
                   / max(np.linalg.norm(joint["directions"][k]), 1e-300))
                for k, n in enumerate(names)],
        }
        if reenc is not None:
            table["reencoded"] = reenc
        return findings, metrics, table

    # -- 4-5: MI map, dead dimensions, disentanglement scores ----------------------------------
    def _factors(self, ctx: Context, usable: list[Attribute], notes: list[str]
                 ) -> dict[str, Any] | None:
        s = self.settings
        if not usable:
            return None
        ok = np.ones(ctx.n, dtype=bool)
        for a in usable:
            ok &= a.valid
        rows = np.flatnonzero(ok)
        if rows.size < 20:
            notes.append("Too few rows have every attribute for the factor-based scores.")
            return None
        if rows.size > s.factor_max_rows:
            notes.append(f"The MI map and the disentanglement scores use a seeded sample of "
                         f"{s.factor_max_rows:,} of the {rows.size:,} rows with every "
                         f"attribute (setting factor_max_rows).")
            rows = _subsample(ctx, rows, s.factor_max_rows, "factor_rows")
        cols, kept, how = [], [], []
        for a in usable:
            v = a.values[rows]
            if a.categorical:
                codes = pd.factorize(v, sort=True)[0]
                how.append(f"{a.name}: its {len(a.levels)} levels")
            else:
                binned = pd.qcut(v, s.factor_bins, labels=False, duplicates="drop")
                codes = np.asarray(binned, dtype=np.int64)
                how.append(f"{a.name}: {int(codes.max()) + 1} quantile bins")
            if np.unique(codes).size < 2:
                notes.append(f"'{a.name}' takes a single value in the rows used for the "
                             "factor-based scores and is left out of them.")
                continue
            cols.append(codes)
            kept.append(a)
        if not kept:
            return None
        factors = np.column_stack(cols)
        z = ctx.data.latents[rows].astype(np.float64)
        mi = mutual_info_matrix(z, factors, num_bins=s.mi_bins)
        ent = factor_entropy(factors)
        nmi = mi / np.where(ent > 0, ent, np.nan)
        out: dict[str, Any] = {"attrs": kept, "rows": rows, "nmi": nmi, "how": how,
                               "scores": {}, "score_notes": []}
        # dead dimensions: variance relative to the median dimension, bootstrap on log scale
        lat = ctx.data.latents
        var = _column_variance(lat)
        ref = np.median(var[var > 0]) if np.any(var > 0) else 0.0
        out["variance_ratio"] = var / ref if ref > 0 else np.full(var.shape, np.nan)
        if ref > 0:
            rng = ctx.rng("entanglement.dead_boot")
            brow = _subsample(ctx, np.arange(ctx.n), 5000, "dead")
            sub = lat[brow].astype(np.float64)
            logs = np.empty((s.n_bootstrap, lat.shape[1]))
            with np.errstate(divide="ignore"):
                for i in range(s.n_bootstrap):
                    v = sub[rng.integers(0, sub.shape[0], sub.shape[0])].var(axis=0)
                    r = np.median(v[v > 0]) if np.any(v > 0) else np.nan
                    logs[i] = np.log(v / r)
                finite = np.where(np.isfinite(logs), logs, np.nan)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    q = np.nanquantile(finite, [0.15865, 0.84135,
                                                (1 - s.confidence) / 2,
                                                1 - (1 - s.confidence) / 2], axis=0)
                se = (q[1] - q[0]) / 2
                est = np.log(out["variance_ratio"])
                zstat = (math.log(s.dead_variance_ratio) - est) / np.where(se > 0, se, np.nan)
            p = np.where(np.isfinite(zstat), stats.norm.sf(zstat),
                         np.where(est < math.log(s.dead_variance_ratio), 0.0, 1.0))
            out["dead_p"] = p
            out["variance_ratio_ci"] = (np.exp(q[2]), np.exp(q[3]))
        # disentanglement scores
        if s.disentanglement:
            out["scores"] = self._scores(ctx, z, factors, out["score_notes"])
        return out

    def _scores(self, ctx: Context, z: np.ndarray, factors: np.ndarray,
                score_notes: list[str]) -> dict[str, float]:
        s = self.settings
        nan = float("nan")
        scores = dict.fromkeys(_SCORE_NOTES, nan)
        if z.shape[1] < 2:
            score_notes.append("The scores need at least two latent dimensions.")
            return scores
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            scores["disentanglement.mig"] = mig_score(z, factors, num_bins=s.mi_bins)
            if factors.shape[1] >= 2:
                scores["disentanglement.modularity"] = modularity_score(
                    z, factors, num_bins=s.mi_bins)
            else:
                score_notes.append("Modularity and DCI need at least two attributes.")
            sub = np.arange(z.shape[0])
            if sub.size > s.dci_max_rows:
                sub = np.sort(ctx.rng("entanglement.dci_rows").choice(sub, s.dci_max_rows, replace=False))
                score_notes.append(f"DCI and SAP use a seeded sample of {sub.size:,} of "
                                   f"{z.shape[0]:,} rows (gradient-boosted trees are slow).")
            seed = _seed(ctx, "dci")
            scores["disentanglement.sap"] = sap_score(z[sub], factors[sub], random_state=seed)
            if factors.shape[1] >= 2:
                # one thread per attribute, each from its own seed: the same scores on
                # any number of cores
                dci = dci_scores(z[sub], factors[sub], random_state=seed, n_jobs=-1)
                for k, v in dci.items():
                    scores[f"disentanglement.dci.{k}"] = v
        for w in caught:
            score_notes.append(str(w.message))
        return {k: float(v) for k, v in scores.items()}

    def _factor_results(self, ctx: Context, factor: dict
                        ) -> tuple[list[Finding], dict[str, float], dict[str, Any]]:
        s = self.settings
        nmi, ratio = factor["nmi"], factor["variance_ratio"]
        d = nmi.shape[0]
        max_mi = np.nanmax(nmi, axis=1) if nmi.size else np.zeros(d)
        findings: list[Finding] = []
        dead = np.zeros(d, dtype=bool)
        q = np.full(d, np.nan)
        if "dead_p" in factor:
            rej, q = benjamini_hochberg(factor["dead_p"], alpha=s.alpha)
            dead = rej & (max_mi < s.dead_mi)
            lo, hi = factor["variance_ratio_ci"]
            for j in np.flatnonzero(dead):
                findings.append(Finding(
                    id=f"entanglement-dead-z{j}", check=self.name, severity="warning",
                    title=f"Latent dimension {j} is dead (variance {ratio[j]:.2g}× the median "
                          "dimension's)",
                    summary=(f"Dimension {j} barely varies across the data (variance "
                             f"{ratio[j]:.2g}× the median dimension's, {s.confidence:.0%} "
                             f"interval [{lo[j]:.2g}, {hi[j]:.2g}]) and shares at most "
                             f"{max_mi[j]:.3f} normalised mutual information with any "
                             "attribute. In a VAE this is posterior collapse: the dimension "
                             "carries nothing, and the latent space is effectively smaller."),
                    metric="entanglement.variance_ratio", value=_f(ratio[j]),
                    threshold=s.dead_variance_ratio, p_value=_f(q[j]),
                    ci=(_f(lo[j]), _f(hi[j])), subjects={"dimension": int(j)}))
        metrics = {"entanglement.dead_dimensions": float(dead.sum())}
        scores = factor["scores"]
        metrics.update(scores)
        table = {
            "attributes": [a.name for a in factor["attrs"]],
            "n_rows": int(factor["rows"].size), "how": factor["how"],
            "nmi": _rmat(nmi), "variance_ratio": [_f(v) for v in ratio],
            "dead": dead.tolist(), "dead_q": [_f(v) for v in q],
            "max_nmi": [_f(v) for v in max_mi],
            "scores": [{"metric": k, "value": _f(v), "note": _SCORE_NOTES[k]}
                       for k, v in scores.items()],
            "score_notes": list(dict.fromkeys(factor["score_notes"])),
        }
        return findings, metrics, table

    # -- 7: latent arithmetic consistency ------------------------------------------------------
    def _consistency(self, ctx: Context, joint: dict, probes: dict, notes: list[str]
                     ) -> dict[str, Any]:
        s = self.settings
        attrs, rows = joint["attrs"], joint["rows"]
        X = ctx.standardized[rows]
        seed = _seed(ctx, "consistency")
        tests, skipped = [], []
        for i, a in enumerate(attrs):
            if not joint["encoded"][i]:
                skipped.append(f"{a.name}: not encoded, so it has no direction to compare")
                continue
            for j, b in enumerate(attrs):
                if i == j:
                    continue
                if b.categorical:
                    groups = b.values[rows]
                    how = "levels"
                    name_of = str
                else:
                    groups, edges = pd.qcut(b.values[rows], s.consistency_bins, labels=False,
                                            retbins=True, duplicates="drop")
                    groups = np.asarray(groups, dtype=np.int64)
                    how = f"{len(edges) - 1} quantile bins"
                    name_of = (lambda c, e=edges: f"{e[int(c)]:.3g}–{e[int(c) + 1]:.3g}")
                others = [k for k in range(len(attrs)) if k not in (i, j)]
                res = direction_consistency(
                    X, a.values[rows], groups, categorical=a.categorical,
                    covariates=[attrs[k].values[rows] for k in others],
                    covariates_categorical=[attrs[k].categorical for k in others],
                    min_group_size=s.min_group_size, n_permutations=s.n_permutations,
                    random_state=seed)
                if not math.isfinite(res["mean_cosine"]):
                    skipped.append(f"{a.name} by {b.name}: fewer than two groups with "
                                   f"{s.min_group_size} rows")
                    continue
                tests.append({"attribute": a.name, "by": b.name, "groups_from": how,
                              "a": a, "b": b, "res": res,
                              "labels": [name_of(g) for g in res["groups"]]})
        if skipped:
            notes.append("Consistency not tested for: " + "; ".join(skipped) + ".")
        return {"tests": tests}

    def _consistency_results(self, cons: dict
                             ) -> tuple[list[Finding], dict[str, float], dict[str, Any]]:
        s = self.settings
        tests = cons["tests"]
        findings: list[Finding] = []
        if not tests:
            return findings, {}, {"tests": []}
        pv = [t["res"]["p_value"] for t in tests]
        rej, q = benjamini_hochberg(pv, alpha=s.alpha)
        rows = []
        for t, r, qq in zip(tests, rej, q):
            res = t["res"]
            flag = bool(r and res["mean_cosine"] <= s.consistency_threshold)
            rows.append({"attribute": t["attribute"], "by": t["by"],
                         "groups_from": t["groups_from"], "groups": t["labels"],
                         "sizes": res["sizes"], "mean_cosine": _f(res["mean_cosine"]),
                         "null_mean": _f(res["null_mean"]), "p_value": _f(res["p_value"]),
                         "p_value_count": _f(res["p_value_count"]), "q_value": _f(qq),
                         "to_pooled": [_f(v) for v in res["to_pooled"]],
                         "cosine": _rmat(res["cosine"]), "flagged": flag,
                         "dropped_groups": [str(g) for g in res["dropped_groups"]]})
            if not flag:
                continue
            worst = int(np.nanargmin(res["to_pooled"]))
            findings.append(Finding(
                id=f"entanglement-consistency-{t['a'].key}-by-{t['b'].key}",
                check=self.name, severity="warning",
                title=f"The direction of {t['attribute']} depends on {t['by']} "
                      f"(mean cosine {res['mean_cosine']:.2f})",
                summary=(f"Fitted inside each group of {t['by']} ({t['groups_from']}), the "
                         f"directions of {t['attribute']} agree only at mean cosine "
                         f"{res['mean_cosine']:.2f}, where shuffled groups give "
                         f"{res['null_mean']:.2f} (permutation test, "
                         f"{format_p(qq, name='BH-adjusted p')}). "
                         f"Least like the overall direction: {t['by']} = "
                         f"{t['labels'][worst]} (cosine {res['to_pooled'][worst]:.2f}). "
                         f"Editing {t['attribute']} with one vector will not act alike "
                         f"across {t['by']}."),
                metric="entanglement.direction_consistency", value=_f(res["mean_cosine"]),
                threshold=s.consistency_threshold, p_value=_f(qq),
                subjects={"attributes": [t["attribute"], t["by"]],
                          "attribute": t["attribute"], "by": t["by"]}))
        metrics = {"entanglement.min_direction_consistency":
                   float(min(t["res"]["mean_cosine"] for t in tests))}
        return findings, metrics, {"tests": rows}

    # -- 6: sliders, grids, decode -> re-encode ------------------------------------------------
    def _visuals(self, ctx: Context, joint: dict | None, probes: dict,
                 images: dict[str, np.ndarray], notes: list[str]) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {"tables": {}, "evidence": {}, "reencoded": None}
        if joint is None:
            return out
        data = ctx.data
        mean, std = ctx._scaler          # the cached scaler behind ctx.standardized
        attrs, rows = joint["attrs"], joint["rows"]
        names = joint["names"]
        W, dirs = joint["probes"], joint["directions"]
        decoder = data.decoder
        encoder = data.encoder
        X = ctx.standardized

        def decode(z_std: np.ndarray) -> np.ndarray | None:
            nonlocal decoder
            if decoder is None:
                return None
            try:
                return _as_images(decoder((mean + z_std * std).astype(np.float32)),
                                  len(z_std))
            except Exception as exc:   # a broken decoder costs the pictures, not the check
                notes.append(f"The decoder failed ({exc.__class__.__name__}: {exc}); "
                             "nearest real samples are shown instead.")
                log.warning("entanglement: decoder failed: %s", exc)
                decoder = None
                return None

        def reencode(imgs: np.ndarray) -> np.ndarray | None:
            nonlocal encoder
            if encoder is None:
                return None
            try:
                z = np.asarray(encoder(imgs), dtype=np.float64)
                if z.shape != (len(imgs), data.dim):
                    raise ValueError(f"returned shape {z.shape}, expected "
                                     f"({len(imgs)}, {data.dim})")
                return (z - mean) / std
            except Exception as exc:
                notes.append(f"The encoder failed on decoded images ({exc.__class__.__name__}"
                             f": {exc}); leakage is measured in latent space only.")
                log.warning("entanglement: encoder failed: %s", exc)
                encoder = None
                return None

        def nearest(z_std: np.ndarray) -> np.ndarray:
            q = ctx.to_space((mean + z_std * std).astype(np.float32))
            return knn(q, y=ctx.space, k=1)[1][:, 0]

        def describe(i: int) -> str:
            parts = [f"{a.name}={a.values[i] if a.categorical else _num(a.values[i])}"
                     for a in attrs if a.valid[i]]
            return ", ".join(parts)

        # base point of the sliders: the joint row closest to the mean latent
        base = int(rows[np.argmin(np.linalg.norm(X[rows], axis=1))])
        steps = np.linspace(-s.slider_range, s.slider_range, s.slider_steps | 1)  # odd: 0 in
        resp = dirs @ W.T                                     # resp[a, b] = w_b · δ_a
        sliders = []
        for k, a in enumerate(attrs):
            if not joint["encoded"][k]:
                continue
            z = X[base][None, :] + steps[:, None] * dirs[k][None, :]
            nn = nearest(z)
            imgs = decode(z)
            entry: dict[str, Any] = {
                "attribute": a.name, "steps": [float(t) for t in steps],
                "base_id": str(data.ids[base]), "base": describe(base),
                "readouts": {n: [_f(t * resp[k, b]) for t in steps]
                             for b, n in enumerate(names)},
                "readouts_source": "latent",
                "nearest_ids": [str(data.ids[i]) for i in nn],
                "nearest": [describe(int(i)) for i in nn],
                "images": [], "image_source": None}
            if imgs is not None:
                entry["image_source"] = "decoded"
                for t, img in enumerate(imgs):
                    images[f"slider:{a.name}:{t}"] = _shrink(img)
                    entry["images"].append(f"slider:{a.name}:{t}")
                back = reencode(imgs)
                if back is not None:
                    r = (back - back[len(steps) // 2]) @ W.T
                    entry["readouts"] = {n: [_f(v) for v in r[:, b]]
                                         for b, n in enumerate(names)}
                    entry["readouts_source"] = "re-encoded"
            elif data.images is not None:
                entry["image_source"] = "nearest"
                for t, i in enumerate(nn):
                    images[f"slider:{a.name}:{t}"] = _shrink(data.images[i])
                    entry["images"].append(f"slider:{a.name}:{t}")
            out["evidence"][a.name] = list(dict.fromkeys(entry["nearest_ids"]))[:12]
            sliders.append(entry)
        out["tables"]["sliders"] = sliders
        # interpolation grids between seeded pairs of data points
        grids = []
        if s.grid_pairs and rows.size >= 2:
            rng = ctx.rng("entanglement.grid")
            lam = np.linspace(0.0, 1.0, s.grid_steps)
            for g in range(s.grid_pairs):
                i, j = (int(v) for v in rng.choice(rows, 2, replace=False))
                z = (1 - lam)[:, None] * X[i][None, :] + lam[:, None] * X[j][None, :]
                nn = nearest(z)
                imgs = decode(z)
                entry = {"from_id": str(data.ids[i]), "to_id": str(data.ids[j]),
                         "from": describe(i), "to": describe(j),
                         "nearest_ids": [str(data.ids[t]) for t in nn],
                         "nearest": [describe(int(t)) for t in nn], "images": [],
                         "image_source": None}
                if imgs is not None:
                    entry["image_source"] = "decoded"
                    src = imgs
                elif data.images is not None:
                    entry["image_source"] = "nearest"
                    src = data.images[nn]
                else:
                    src = None
                if src is not None:
                    for t, img in enumerate(src):
                        images[f"grid:{g}:{t}"] = _shrink(img)
                        entry["images"].append(f"grid:{g}:{t}")
                grids.append(entry)
        out["tables"]["grids"] = grids
        # leakage through decode -> re-encode
        if decoder is not None and encoder is not None:
            pick = _subsample(ctx, rows, s.reencode_points, "reencode")
            z0 = X[pick]
            imgs0 = decode(z0)
            r0 = reencode(imgs0) if imgs0 is not None else None
            m = len(attrs)
            R = np.full((m, m), np.nan)
            lo, hi = np.full((m, m), np.nan), np.full((m, m), np.nan)
            seed = _seed(ctx, "reencode")
            if r0 is not None:
                for k in range(m):
                    if not joint["encoded"][k]:
                        continue
                    imgs1 = decode(z0 + dirs[k][None, :])
                    r1 = reencode(imgs1) if imgs1 is not None else None
                    if r1 is None:
                        break
                    with warnings.catch_warnings():    # nan (source did not move) is kept
                        warnings.simplefilter("ignore", RuntimeWarning)
                        res = shift_leakage(r1 - r0, W, source=k, n_bootstrap=s.n_bootstrap,
                                            confidence=s.confidence, random_state=seed)
                    R[k], lo[k], hi[k] = res["leakage"], res["ci"][0], res["ci"][1]
                if np.isfinite(R).any():
                    out["reencoded"] = {"leakage": _rmat(R), "ci_low": _rmat(lo),
                                        "ci_high": _rmat(hi), "n_points": int(pick.size)}
        return out

    # -- findings about single attributes ------------------------------------------------------
    @staticmethod
    def _probe_row(res: dict | None) -> dict[str, Any] | None:
        if res is None:
            return None
        return {"metric": res["metric"], "score": _f(res["score"]),
                "ci": [_f(res["ci"][0]), _f(res["ci"][1])], "chance": _f(res["chance"]),
                "p_value": _f(res["p_value"]), "encoded": res["encoded"], "n": res["n"]}

    def _attribute_findings(self, a: Attribute, res: dict | None) -> list[Finding]:
        out = []
        if a.notes:
            refused = a.status == "refused"
            out.append(Finding(
                id=f"entanglement-attribute-{a.key}", check=self.name, severity="info",
                title=(f"Attribute {a.name} is not probed" if refused else
                       f"Attribute {a.name}: handled specially"),
                summary="; ".join(a.notes) + ".",
                metric="entanglement.attribute_rows_used",
                value=float(a.valid.sum()) if a.valid is not None else 0.0,
                subjects={"attributes": [a.name], "status": a.status}))
        if res is not None:
            label = "balanced accuracy" if res["metric"] == "balanced_accuracy" else "R²"
            lo, hi = res["ci"]
            verdict = ("encoded" if res["encoded"] else
                       "not linearly readable (the interval reaches chance)")
            out.append(Finding(
                id=f"entanglement-probe-{a.key}", check=self.name, severity="info",
                title=f"{a.name}: {verdict}, {label} {_num(res['score'])}",
                summary=(f"A cross-validated linear probe reads {a.name} from the latents "
                         f"with {label} {_num(res['score'], 3)} ({self.settings.confidence:.0%}"
                         f" interval [{_num(lo, 3)}, {_num(hi, 3)}]; chance "
                         f"{_num(res['chance'], 3)}; {res['n']:,} rows)."),
                metric=f"entanglement.{a.key}.probe_score", value=_f(res["score"]),
                threshold=_f(res["chance"]), p_value=_f(res["p_value"]),
                ci=(_f(lo), _f(hi)), subjects={"attributes": [a.name]}))
        return out
