"""``bias``: how the latents treat the groups of each protected column.

Five questions, each answered with an effect size, a p-value or an interval, and evidence:

1. **Leakage**: can a cross-validated linear probe read the group from the latents (AUC,
   permutation p-value), also once the configured ``attributes`` are regressed out?
2. **Representation**: is every group spread over the HDBSCAN clusters as its overall
   share predicts (chi-square and Cramér's V per column, exact binomial test per cell)?
3. **Density and coverage disparity**: do a group's members sit more often in low-density
   regions, in HDBSCAN noise, among the GLOSH outliers or (with a reference) in reference
   regions the data leaves uncovered (per-group rates, Wilson intervals, disparity ratio)?
4. **Outcome slices**: with ``outcome:`` set, clusters, groups and group x cluster cells
   where the outcome is worse than in the rest of the data.
5. **WEAT** on metadata selections: target sets X, Y and attribute sets A, B chosen by
   metadata values, compared by cosine in the analysis space.

Missing values of a protected column form their own group (``<missing>``); groups with
fewer than ``min_group_size`` members are listed as untested (an ``info`` finding each)
and take part in no test. Every p-value of the check goes into one Benjamini–Hochberg
correction; a finding is flagged only when its adjusted p-value is at most ``alpha`` AND
its effect size passes the minimum of its kind, so on data where the groups are
independent of everything the chance of any flagged bias finding is at most ``alpha``.
See docs/checks/bias.md.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Optional, Union

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from ..context import Context
from ..columns import bin_values, is_numeric, quantile_edges
from ..formatting import format_p
from ..findings import CheckResult, Finding
from ..metrics import (MISSING_GROUP, benjamini_hochberg, probe_leakage, rate_disparity,
                       representation_test, weat, wilson_interval)
from ..metrics._slices import (chi2_permutation_pvalue, permutation_pvalue,
                               rate_ratio_interval, slice_outcome_tests, weat_normal_pvalue)
from .base import Check, CheckSettings, register
from .coverage import reference_uncovered

__all__ = ["BiasCheck", "Selection", "WeatTest", "group_labels"]

Scalar = Union[bool, int, float, str, None]
_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_\-]*$"


# ---------------------------------------------------------------------------- settings

class Selection(CheckSettings):
    """A set for a WEAT test: samples chosen by metadata, or texts the model encodes.

    ``where``: every entry must match; ``{column: value}`` or ``{column: [value, ...]}``
    (any of the values); ``null`` selects missing values. The short form ``{shape: heart}``
    means ``{where: {shape: heart}}``; use the long form (with an optional ``name``) when a
    column is itself called ``where``, ``words`` or ``name``.

    ``words``: a list of words or sentences encoded with the audit's own text encoder
    (``encoder.sentence_transformers``), as in SEAT (May et al. 2019).
    """
    name: Optional[str] = Field(None, description="label shown in the report")
    where: Optional[dict[str, Union[Scalar, list[Scalar]]]] = Field(
        None, min_length=1, description="column -> value or list of values; all must match")
    words: Optional[list[str]] = Field(None, min_length=2, description=(
        "words or sentences encoded with the text encoder (SEAT); instead of `where`"))

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, dict) and "where" not in v and "words" not in v:
            return {"where": v}
        return v

    @model_validator(mode="after")
    def _one_form(self) -> "Selection":
        if (self.where is None) == (self.words is None):
            raise ValueError("give either `where:` (a metadata selection) or `words:` (texts "
                             "to encode), not both")
        if self.words is not None:
            empty = [w for w in self.words if not w.strip()]
            if empty:
                raise ValueError("`words:` holds an empty string")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.words is not None:
            head = ", ".join(self.words[:3])
            return f"{head}{', …' if len(self.words) > 3 else ''} ({len(self.words)} words)"
        parts = []
        for col, val in self.where.items():
            parts.append(f"{col} in {val}" if isinstance(val, list) else f"{col}={val}")
        return ", ".join(parts)

    def mask(self, meta: pd.DataFrame, where: str) -> np.ndarray:
        """Rows of ``meta`` that match; an unknown column raises ``ValueError``."""
        out = np.ones(len(meta), dtype=bool)
        if self.where is None:
            raise ValueError(f"{where}: a `words:` set selects no rows")
        for col, val in self.where.items():
            if col not in meta.columns:
                raise ValueError(f"{where}: column {col!r} is not in the metadata "
                                 f"(columns: {list(meta.columns)[:20]})")
            vals = val if isinstance(val, list) else [val]
            out &= np.logical_or.reduce([_matches(meta[col], v) for v in vals])
        return out


def _matches(ser: pd.Series, v: Scalar) -> np.ndarray:
    if v is None:
        return ser.isna().to_numpy()
    if pd.api.types.is_bool_dtype(ser) and isinstance(v, bool):
        return (ser == v).to_numpy(dtype=bool, na_value=False)
    if (pd.api.types.is_numeric_dtype(ser) and not pd.api.types.is_bool_dtype(ser)
            and isinstance(v, (int, float)) and not isinstance(v, bool)):
        return (ser == v).to_numpy(dtype=bool, na_value=False)
    return (ser.notna() & (ser.astype(object).map(_label_str) == _label_str(v))).to_numpy()


class WeatTest(CheckSettings):
    """One WEAT: targets X, Y and attributes A, B, each a metadata selection or a list of
    words encoded with the audit's text encoder (SEAT)."""
    name: str = Field(pattern=_NAME_RE, description="names the metrics bias.weat.<name>.*")
    targets: tuple[Selection, Selection] = Field(description="X and Y")
    attributes: tuple[Selection, Selection] = Field(description="A and B")
    alternative: Literal["two-sided", "greater", "less"] = Field(
        "two-sided", description="'greater': X is more associated with A than Y is")
    n_permutations: int = Field(1000, ge=99, le=1_000_000, description=(
        "random partitions drawn when there are more than 100,000"))
    max_set_size: int = Field(500, ge=2, description="larger sets are subsampled (seeded)")
    min_effect: float = Field(0.2, ge=0, description="flag only when |effect size| >= this")
    strong_effect: float = Field(0.8, ge=0, description="critical from this |effect size|")
    templates: Optional[list[str]] = Field(None, min_length=1, description=(
        "SEAT templates such as 'This is {}.': every word is put into each template and "
        "each sentence is one vector of its set; none = the words themselves"))
    space: Literal["auto", "latents", "analysis"] = Field("auto", description=(
        "where cosines are taken: the encoder's own output ('latents'), or the audit's "
        "analysis space (scaled, PCA above max_dims_exact); auto = latents when a set is "
        "words, else analysis"))

    @model_validator(mode="after")
    def _templates(self) -> "WeatTest":
        for t in self.templates or []:
            if t.count("{}") != 1:
                raise ValueError(f"template {t!r} must hold exactly one {{}} for the word")
        if self.templates and not any(sel.words for sel in (*self.targets, *self.attributes)):
            raise ValueError("`templates` apply to `words:` sets, and no set has words")
        return self


class LeakageSettings(CheckSettings):
    cv: int = Field(3, ge=2, le=10, description="folds of the probe's cross-validation")
    n_permutations: int = Field(40, ge=19, le=10000, description=(
        "label permutations of the probe's test (each costs cv fits); beyond the largest "
        "permuted AUC the p-value uses the null's normal tail"))
    stop_after: int = Field(5, ge=0, le=10000, description=(
        "sequential test (Besag & Clifford): stop permuting once this many permuted AUCs "
        "reach the observed one (the answer is then 'not significant', still valid); 0 "
        "runs every permutation"))
    n_bootstrap: int = Field(200, ge=0, le=10000, description="resamples for the AUC interval")
    max_points: int = Field(5000, ge=100, description=(
        "the probe runs on a stratified sample of at most this many points"))
    adjust_for_attributes: bool = Field(True, description=(
        "also probe after regressing out the configured attributes (fold by fold)"))
    min_auc: float = Field(0.56, gt=0.5, lt=1, description=(
        "flag only from this AUC (0.56 = Cohen's d of 0.2 between two normal groups)"))
    strong_auc: float = Field(0.71, gt=0.5, le=1, description="critical from this AUC (d = 0.8)")


class RepresentationSettings(CheckSettings):
    min_ratio: float = Field(1.25, gt=1, description=(
        "a cell is flagged only when observed / expected >= this or <= 1 / this"))
    strong_ratio: float = Field(2.0, gt=1, description="critical from this ratio (or 1 / it)")
    min_cramers_v: float = Field(0.1, ge=0, le=1, description=(
        "the column-level association is flagged only from this (bias-corrected) V"))
    strong_cramers_v: float = Field(0.3, ge=0, le=1, description="critical from this V")
    n_permutations: int = Field(999, ge=99, le=100000, description=(
        "Monte Carlo chi-square when some expected count is below 5"))


class DisparitySettings(CheckSettings):
    four_fifths: float = Field(0.8, gt=0, lt=1, description=(
        "flag only when lowest / highest rate is below this (the four-fifths rule)"))
    strong_ratio: float = Field(0.5, gt=0, lt=1, description="critical below this ratio")
    low_density_quantile: float = Field(0.9, gt=0.5, lt=1, description=(
        "low density = mean kNN distance above this quantile (0.9 = the top decile)"))
    outlier_quantile: float = Field(0.95, gt=0.5, lt=1, description=(
        "outlier = GLOSH score above this quantile"))
    coverage_k: int = Field(5, ge=1, le=100, description=(
        "k of the reference's neighbour balls for coverage (Naeem et al. use 5)"))
    max_evidence: int = Field(500, ge=1, description="points listed as evidence per finding")


class OutcomeSettings(CheckSettings):
    worse: Literal["higher", "lower"] = Field("higher", description=(
        "which direction of a numeric or 0/1 outcome is worse (loss, error flag: higher; "
        "accuracy, correct flag: lower)"))
    bad_value: Optional[Scalar] = Field(None, description=(
        "for a text outcome column: the value that is the adverse event, e.g. 'incorrect'"))
    min_slice_size: int = Field(30, ge=5, description="smaller slices are not tested")
    group_clusters: bool = Field(True, description="also test group x cluster slices")
    min_effect: float = Field(0.2, ge=0, description=(
        "flag only from this effect size (Cohen's h for rates, d for means)"))
    strong_effect: float = Field(0.8, ge=0, description="critical from this effect size")


# ---------------------------------------------------------------------------- helpers

def _label_str(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, np.generic):
        v = v.item()
    s = str(v)
    return f"'{s}'" if s == MISSING_GROUP else s


def group_labels(values: pd.Series, *, bins: int = 4, edges: np.ndarray | None = None
                 ) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Group label of every row: ``(labels, order, edges)``.

    ``labels`` is an object array of strings with ``None`` for missing values (the
    metrics call that group ``<missing>``). Numeric columns with more than
    ``audit.columns.NUMERIC_MIN_LEVELS`` distinct values are cut into ``bins`` quantile
    bins labelled ``low–high`` (``edges`` returned, and reused to label a reference the same way);
    other values become their string form. ``order`` lists the groups, missing last.
    """
    ser = values.reset_index(drop=True)
    numeric = (pd.api.types.is_numeric_dtype(ser) and not pd.api.types.is_bool_dtype(ser))
    if edges is None and numeric and is_numeric(ser):
        edges = quantile_edges(ser, bins)
    missing = ser.isna().to_numpy()
    if edges is not None and len(edges) >= 2 and numeric:
        # one rule and one label format for every chart (audit.columns)
        labels, names = bin_values(ser, edges)
        present = [nm for nm in names if np.any(labels == nm)]
    else:
        labels = np.array([None if m else _label_str(v) for v, m in
                           zip(ser.astype(object).tolist(), missing)], dtype=object)
        present = sorted({v for v in labels.tolist() if v is not None})
        edges = None
    order = present + ([MISSING_GROUP] if missing.any() else [])
    return labels, order, edges


def _names(labels: np.ndarray) -> np.ndarray:
    return np.array([MISSING_GROUP if v is None else v for v in labels.tolist()], dtype=object)


def _slug(s: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]+", "_", str(s)).strip("_") or "x"


def _pct(v: float) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def _num(v: float, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}g}"


def _top_rank(scores: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the ``share`` highest scores (ties broken at random)."""
    n = scores.shape[0]
    k = int(round(share * n))
    out = np.zeros(n, dtype=bool)
    if k <= 0:
        return out
    order = np.lexsort((rng.random(n), -scores))
    out[order[:k]] = True
    return out


_FLAG_SHORT = {"low_density": "in low-density regions", "noise": "in HDBSCAN noise",
               "outlier": "among the outliers", "uncovered": "among uncovered reference points"}


@dataclass
class _Test:
    """One p-value of the BH family and how to turn it into a finding."""
    p: float
    passes: bool                     # the effect size passes the minimum
    strong: bool                     # ... and the "critical" threshold
    make: Callable[[str, float], Finding]
    always: bool                     # give an info finding even when not flagged
    row: dict[str, Any] = field(default_factory=dict)   # table row to annotate with q


class _Ids:
    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, *parts: Any) -> str:
        base = "bias-" + "-".join(_slug(p) for p in parts)
        out, k = base, 2
        while out in self.seen:
            out, k = f"{base}-{k}", k + 1
        self.seen.add(out)
        return out


# ---------------------------------------------------------------------------- the check

@register
class BiasCheck(Check):
    """Bias over the protected columns: leakage, representation, disparity, slices, WEAT."""

    name = "bias"
    produces: ClassVar[tuple[str, ...]] = (
        "bias.tests",
        "bias.flagged",
        "bias.*.groups_tested",
        "bias.*.groups_untested",
        "bias.*.missing_fraction",
        "bias.*.leakage_auc",
        "bias.*.leakage_p",
        "bias.*.leakage_auc_adjusted",
        "bias.*.leakage_p_adjusted",
        "bias.*.cramers_v",
        "bias.*.representation_p",
        "bias.*.*_ratio",
        "bias.outcome.overall",
        "bias.outcome.slices_tested",
        "bias.outcome.worst_effect",
        "bias.*.outcome_gap",
        "bias.weat.*.effect_size",
        "bias.weat.*.p",
    )

    class Settings(CheckSettings):
        alpha: float = Field(0.05, gt=0, lt=1, description=(
            "false-discovery rate of the Benjamini–Hochberg correction over every test of "
            "the check; also the nominal chance of any flagged finding on null data"))
        min_group_size: int = Field(30, ge=10, description=(
            "groups with fewer members are listed as untested and enter no test"))
        numeric_bins: int = Field(4, ge=2, le=20, description=(
            "numeric protected columns with many values are cut into this many quantile "
            "bins"))
        # explicit (frozen) default instances, so `latent-audit checks` can print them
        leakage: LeakageSettings = Field(LeakageSettings(), description=(
            "the probe that reads the group from the latents"))
        representation: RepresentationSettings = Field(RepresentationSettings(), description=(
            "groups over the HDBSCAN clusters"))
        disparity: DisparitySettings = Field(DisparitySettings(), description=(
            "per-group rates of low density, noise, outliers, uncovered reference"))
        outcome: OutcomeSettings = Field(OutcomeSettings(), description=(
            "slices where the `outcome:` column is worse"))
        weat: list[WeatTest] = Field([], description=(
            "WEAT tests on metadata selections: [{name, targets: [X, Y], attributes: "
            "[A, B]}], each set a {column: value} selection"))

        @model_validator(mode="after")
        def _unique_weat(self) -> "BiasCheck.Settings":
            names = [t.name for t in self.weat]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"WEAT test names must be unique: {dup}")
            return self

    def applies(self, ctx: Context) -> str | None:
        if ctx.protected or ctx.outcome or self.settings.weat:
            return None
        return "no protected columns, outcome or WEAT tests configured"

    def run(self, ctx: Context) -> CheckResult:
        return _BiasRun(self.settings, ctx).run()


class _BiasRun:
    """The state of one run of the check: the tests collected for the BH correction."""

    def __init__(self, settings: "BiasCheck.Settings", ctx: Context) -> None:
        self.settings = settings
        self.ctx = ctx
        self._ids = _Ids()
        self._tests: list[_Test] = []
        self._info: list[Finding] = []
        self._groupings: dict[str, tuple[np.ndarray, list[str], list[str]]] = {}
        self._keys: dict[str, str] = {}          # column -> its name in metric keys
        self._flag_cache: dict[str, tuple[str, np.ndarray]] | None = None
        self._unc_cache: np.ndarray | None | bool = False

    # ------------------------------------------------------------------ run
    def run(self) -> CheckResult:
        s = self.settings
        ctx = self.ctx
        metrics: dict[str, float] = {}
        tables: dict[str, Any] = {"columns": {}, "alpha": s.alpha,
                                  "min_group_size": s.min_group_size}
        display: list[dict[str, Any]] = []
        meta = ctx.data.metadata
        keys: set[str] = set()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for ci, col in enumerate(ctx.protected):
                key = _slug(col)
                while key in keys:
                    key += "_"
                keys.add(key)
                self._keys[col] = key
                tab = self._column(ctx, ci, col, key, metrics)
                tables["columns"][col] = tab
                if tab.get("leakage"):
                    display.append({"kind": "bias_leakage", "column": col})
                if tab.get("representation"):
                    display.append({"kind": "bias_representation", "column": col,
                                    "wide": True})
                if tab.get("disparity"):
                    display.append({"kind": "bias_disparity", "column": col, "wide": True})
            if ctx.outcome:
                tables["slices"] = self._slices(ctx, meta, metrics)
                if tables["slices"].get("rows"):
                    display.append({"kind": "bias_slices", "wide": True})
            if s.weat:
                tables["weat"] = [self._weat(ctx, k, t, metrics) for k, t in enumerate(s.weat)]
                display.append({"kind": "bias_weat"})

        findings = self._resolve(metrics)
        tables["tests"] = len(self._tests)
        return CheckResult(check="bias", status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables, display=tuple(display))

    # ------------------------------------------------------------------ BH over all tests
    def _resolve(self, metrics: dict[str, float]) -> list[Finding]:
        s = self.settings
        ps = np.array([t.p if t.p is not None and math.isfinite(t.p) else np.nan
                       for t in self._tests], dtype=float)
        if len(ps):
            rejected, q = benjamini_hochberg(ps, alpha=s.alpha)
        else:
            rejected, q = np.zeros(0, bool), np.zeros(0)
        out: list[Finding] = []
        n_flagged = 0
        for t, rej, qv in zip(self._tests, rejected, q):
            flagged = bool(rej) and t.passes
            qv = float(qv) if math.isfinite(qv) else None
            t.row["q"] = qv
            t.row["flagged"] = flagged
            if flagged:
                n_flagged += 1
                out.append(t.make("critical" if t.strong else "warning", qv))
            elif t.always:
                out.append(t.make("info", qv))
        metrics["bias.tests"] = float(len(self._tests))
        metrics["bias.flagged"] = float(n_flagged)
        return out + self._info

    # ------------------------------------------------------------------ one column
    def _column(self, ctx: Context, ci: int, col: str, key: str,
                metrics: dict[str, float]) -> dict[str, Any]:
        s = self.settings
        meta = ctx.data.metadata
        ids = ctx.data.ids
        labels, order, edges = group_labels(meta[col], bins=s.numeric_bins)
        names = _names(labels)
        sizes = {g: int(np.sum(names == g)) for g in order}
        tested = [g for g in order if sizes[g] >= s.min_group_size]
        untested = [g for g in order if sizes[g] < s.min_group_size]
        self._groupings[col] = (names, order, tested)
        tab: dict[str, Any] = {
            "key": key, "binned": edges is not None,
            "groups": [{"group": g, "n": sizes[g], "tested": g in tested,
                        "missing": g == MISSING_GROUP} for g in order],
            "untested": [{"group": g, "n": sizes[g]} for g in untested],
        }
        metrics[f"bias.{key}.groups_tested"] = float(len(tested))
        metrics[f"bias.{key}.groups_untested"] = float(len(untested))
        metrics[f"bias.{key}.missing_fraction"] = float(np.mean(names == MISSING_GROUP))
        for g in untested:
            members = np.flatnonzero(names == g)
            self._info.append(Finding(
                id=self._ids(col, "untested", g), check="bias", severity="info",
                title=f"{col}: group {g} is too small to test ({sizes[g]} members)",
                summary=(f"Groups with fewer than {s.min_group_size} members take part in "
                         "no test of this check (too few to tell a difference from noise); "
                         "collect more data for this group to audit it."
                         + (" This group holds the rows where the column is missing."
                            if g == MISSING_GROUP else "")),
                metric=f"bias.{key}.groups_untested", value=float(sizes[g]),
                threshold=float(s.min_group_size),
                subjects={"attribute": col, "group": g, "n": sizes[g], "kind": "untested"},
                evidence_ids=tuple(ids[members])))
        if len(tested) < 2:
            self._info.append(Finding(
                id=self._ids(col, "not-tested"), check="bias", severity="info",
                title=f"{col}: fewer than two groups large enough to compare",
                summary=(f"{len(tested)} group(s) have at least {s.min_group_size} members; "
                         "leakage, representation and disparity need two."),
                metric=f"bias.{key}.groups_tested", value=float(len(tested)),
                threshold=2.0, subjects={"attribute": col, "kind": "untested"}))
            return tab
        in_tested = np.isin(names, tested)
        tab["leakage"] = self._leakage(ctx, ci, col, key, labels, names, tested, in_tested,
                                       metrics)
        tab["representation"] = self._representation(ctx, col, key, labels, names, tested,
                                                     in_tested, metrics)
        tab["disparity"] = self._disparity(ctx, ci, col, key, labels, names, edges, metrics)
        return tab

    # ------------------------------------------------------------------ 1. leakage
    def _leakage(self, ctx, ci, col, key, labels, names, tested, in_tested, metrics):
        L = self.settings.leakage
        idx = np.flatnonzero(in_tested)
        if idx.size > L.max_points:
            rng = ctx.rng(f"bias.leakage.rows.{ci}")
            frac = L.max_points / idx.size
            keep = []
            for g in tested:
                m = idx[names[idx] == g]
                take = min(m.size, max(int(round(m.size * frac)), self.settings.min_group_size))
                keep.append(rng.choice(m, take, replace=False))
            idx = np.sort(np.concatenate(keep))
        x = ctx.standardized[idx]
        y = labels[idx]
        out: dict[str, Any] = {"n": int(idx.size), "cv": L.cv,
                               "n_permutations": L.n_permutations}
        seed = int(ctx.rng(f"bias.leakage.probe.{ci}").integers(2 ** 31 - 1))
        res = probe_leakage(x, y, cv=L.cv, n_permutations=L.n_permutations,
                            stop_after=L.stop_after, n_bootstrap=L.n_bootstrap,
                            random_state=seed)
        out["raw"] = self._leak_test(col, key, res, "", metrics, idx.size)
        covs, used, dropped = self._covariates(ctx, idx)
        out["attributes"] = used
        out["attributes_dropped"] = dropped
        if L.adjust_for_attributes and covs is not None:
            res2 = probe_leakage(x, y, covariates=covs, cv=L.cv,
                                 n_permutations=L.n_permutations, stop_after=L.stop_after,
                                 n_bootstrap=L.n_bootstrap, random_state=seed + 1)
            out["adjusted"] = self._leak_test(col, key, res2, "_adjusted", metrics, idx.size,
                                              used)
        return out

    def _covariates(self, ctx: Context, idx: np.ndarray):
        """The configured attributes as a covariate frame: numeric columns with a missing
        indicator, categorical ones (up to 50 levels) one-hot in residualize()."""
        meta = ctx.data.metadata
        frame: dict[str, Any] = {}
        used, dropped = [], []
        for a in ctx.attributes:
            if a not in meta.columns:
                continue
            ser = meta[a].iloc[idx].reset_index(drop=True)
            if pd.api.types.is_numeric_dtype(ser) and not pd.api.types.is_bool_dtype(ser):
                v = ser.to_numpy(dtype=float, na_value=np.nan)
                miss = ~np.isfinite(v)
                if miss.all():
                    dropped.append(a)
                    continue
                v = np.where(miss, np.nanmean(np.where(miss, np.nan, v)), v)
                frame[a] = v
                if miss.any():
                    frame[f"{a} (missing)"] = miss.astype(float)
            else:
                obj = ser.astype(object).where(ser.notna(), None)
                if obj.nunique(dropna=False) > 50:
                    dropped.append(a)
                    continue
                frame[a] = pd.Series([None if v is None else str(v) for v in obj],
                                     dtype=object)
            used.append(a)
        if not frame:
            return None, used, dropped
        return pd.DataFrame(frame), used, dropped

    def _leak_test(self, col, key, res, suffix, metrics, n, used=None):
        L = self.settings.leakage
        pv = permutation_pvalue(res["score"], res["null_scores"])
        auc = float(res["score"])
        metrics[f"bias.{key}.leakage_auc{suffix}"] = auc
        metrics[f"bias.{key}.leakage_p{suffix}"] = pv["p_value"]
        coef = np.asarray(res["coef"], dtype=float)
        weight = np.abs(coef) if coef.ndim == 1 else np.linalg.norm(coef, axis=0)
        top = np.argsort(-weight)[:5]
        dims = [{"dim": int(d), "weight": float(weight[d]),
                 "coef": float(coef[d]) if coef.ndim == 1 else None} for d in top]
        row = {"auc": auc, "ci": res["ci"], "p": pv["p_value"],
               "p_permutation": pv["p_permutation"], "p_method": pv["method"],
               "null": [round(v, 5) for v in res["null_scores"]], "classes": res["classes"],
               "top_dims": dims, "chance": 0.5}
        adjusted = bool(suffix)
        carried = ", ".join(f"z{d['dim']}" + (f" ({d['coef']:+.2f})" if d["coef"] is not None
                                               else "") for d in dims[:3])

        def make(sev: str, q: float | None) -> Finding:
            what = (f" once {', '.join(used)} {'is' if len(used) == 1 else 'are'} regressed "
                    "out" if adjusted else "")
            if sev == "info":
                title = f"{col}: no significant leakage{what} (AUC {auc:.2f})"
            else:
                title = f"{col} can be read from the latents{what} (AUC {auc:.2f})"
            summary = (f"A cross-validated linear probe ({L.cv} folds, {n} points) tells the "
                       f"groups apart with AUC {auc:.3f} (95% interval {_num(res['ci'][0])}–"
                       f"{_num(res['ci'][1])}; chance 0.5); permutation test over "
                       f"{len(res['null_scores'])} shuffles: {format_p(pv['p_value'])}"
                       + (" (normal tail of the null)" if pv["method"] == "normal-tail" else "")
                       + (f" (a sequential Besag–Clifford test: it stopped after "
                          f"{len(res['null_scores'])} of {L.n_permutations} shuffles because "
                          f"{L.stop_after} permuted AUCs already reached the observed one, "
                          "which settles 'not significant'; checks.bias.leakage.stop_after)"
                          if L.stop_after and len(res["null_scores"]) < L.n_permutations
                          else "")
                       + f", {format_p(q, name='BH-adjusted p')}. Carried mostly by {carried}.")
            if sev != "info" and not adjusted:
                summary += (" Downstream models can use the group even when it is not an "
                            "input; check the adjusted probe to see whether legitimate "
                            "factors explain it.")
            return Finding(
                id=self._ids(col, "leakage" + ("-adjusted" if adjusted else "")),
                check="bias", severity=sev, title=title, summary=summary,
                metric=f"bias.{key}.leakage_auc{suffix}", value=auc, threshold=L.min_auc,
                p_value=q, ci=tuple(res["ci"]),
                subjects={"attribute": col, "kind": "leakage", "adjusted_for": used or [],
                          "top_dims": dims[:3]})
        self._tests.append(_Test(p=pv["p_value"], passes=auc >= L.min_auc,
                                 strong=auc >= L.strong_auc, make=make, always=True, row=row))
        return row

    # ------------------------------------------------------------------ 2. representation
    def _representation(self, ctx, col, key, labels, names, tested, in_tested, metrics):
        R = self.settings.representation
        cl = ctx.clusters.labels
        sel = in_tested & (cl >= 0)
        if np.unique(cl[sel]).size < 2:
            return None
        ids = ctx.data.ids
        rep = representation_test(cl[sel], labels[sel])
        p = rep["p_value"]
        method = "chi2"
        if not rep["chi2_reliable"]:
            c_codes = np.searchsorted(np.asarray(rep["clusters"]), cl[sel])
            pos = {g: j for j, g in enumerate(rep["groups"])}
            g_codes = np.array([pos[g] for g in names[sel]])
            p = chi2_permutation_pvalue(c_codes, g_codes, n_permutations=R.n_permutations,
                                        random_state=int(ctx.rng("bias.representation.permutation").integers(2 ** 31 - 1))
                                        )["p_value"]
            method = "monte-carlo"
        v = rep["cramers_v_corrected"]
        v = 0.0 if not math.isfinite(v) else v
        metrics[f"bias.{key}.cramers_v"] = float(v)
        metrics[f"bias.{key}.representation_p"] = float(p)
        clusters, groups = [int(c) for c in rep["clusters"]], list(rep["groups"])
        table = np.asarray(rep["table"])
        sizes = table.sum(axis=1)
        shares = table.sum(axis=0) / table.sum()
        out = {"clusters": clusters, "groups": groups, "table": rep["table"],
               "cells": [], "chi2": rep["chi2"], "dof": rep["dof"], "p": p,
               "p_method": method, "cramers_v": rep["cramers_v"],
               "cramers_v_corrected": rep["cramers_v_corrected"],
               "n": rep["n"], "noise_excluded": int(np.sum(in_tested & (cl < 0)))}
        summary_row: dict[str, Any] = {}

        def make_overall(sev: str, q: float | None) -> Finding:
            verb = ("groups are spread unevenly over the clusters" if sev != "info"
                    else "no significant skew of the groups over the clusters")
            return Finding(
                id=self._ids(col, "representation"), check="bias", severity=sev,
                title=f"{col}: {verb} (Cramér's V {v:.2f})",
                summary=(f"Cluster × group table of {rep['n']} clustered points "
                         f"({len(clusters)} clusters, {len(groups)} groups; noise left out): "
                         f"chi-square {rep['chi2']:.1f} on {rep['dof']} df, "
                         f"{format_p(p)}" + (" (Monte Carlo: some expected counts are below 5)"
                                            if method != "chi2" else "")
                         + f", {format_p(q, name='BH-adjusted p')}; "
                         f"bias-corrected Cramér's V {v:.3f} "
                         f"(flagged from {R.min_cramers_v:g})."),
                metric=f"bias.{key}.cramers_v", value=float(v), threshold=R.min_cramers_v,
                p_value=q, subjects={"attribute": col, "kind": "representation"})
        self._tests.append(_Test(p=p, passes=v >= R.min_cramers_v,
                                 strong=v >= R.strong_cramers_v, make=make_overall,
                                 always=True, row=summary_row))
        out["overall"] = summary_row
        for cell in rep["cells"]:
            c, g = int(cell["cluster"]), cell["group"]
            i, j = clusters.index(c), groups.index(g)
            ratio = float(cell["ratio"])
            share_in = cell["observed"] / sizes[i]
            row = {"cluster": c, "group": g, "observed": cell["observed"],
                   "expected": cell["expected"], "ratio": ratio, "p": cell["p_value"],
                   "share": share_in, "overall_share": float(shares[j])}
            out["cells"].append(row)
            over = ratio >= 1

            def make(sev, q, c=c, g=g, ratio=ratio, share_in=share_in, j=j, i=i, cell=cell,
                     over=over):
                members = np.flatnonzero(cl == c)
                lo, hi = wilson_interval(int(cell["observed"]), int(sizes[i]))
                return Finding(
                    id=self._ids(col, f"cluster{c}", g), check="bias", severity=sev,
                    title=(f"{col}={g} is {'over' if over else 'under'}-represented in "
                           f"cluster {c}: {share_in:.0%} of it vs {shares[j]:.0%} overall"),
                    summary=(f"Cluster {c} has {int(sizes[i])} clustered members of tested "
                             f"groups; {cell['observed']} are {col}={g} where "
                             f"{cell['expected']:.1f} are expected from the group's overall "
                             f"share ({ratio:.2f}× expected; exact binomial test, "
                             f"{format_p(q, name='BH-adjusted p')}). The interval is the group's "
                             "share of the cluster (Wilson 95%). Evidence: every member of "
                             "the cluster."),
                    metric=f"bias.{key}.representation_ratio", value=ratio,
                    threshold=R.min_ratio if over else 1 / R.min_ratio, p_value=q,
                    ci=(lo, hi),
                    subjects={"attribute": col, "group": g, "cluster": c,
                              "kind": "representation", "observed": int(cell["observed"]),
                              "expected": float(cell["expected"])},
                    evidence_ids=tuple(ids[members]))
            passes = ratio >= R.min_ratio or ratio <= 1 / R.min_ratio
            strong = ratio >= R.strong_ratio or ratio <= 1 / R.strong_ratio
            self._tests.append(_Test(p=cell["p_value"], passes=passes, strong=strong,
                                     make=make, always=False, row=row))
        return out

    # ------------------------------------------------------------------ 3. disparity
    def _flags(self, ctx: Context) -> dict[str, tuple[str, np.ndarray]]:
        if self._flag_cache is not None:
            return self._flag_cache
        D = self.settings.disparity
        dist, _ = ctx.knn
        flags = {
            "low_density": (f"in low-density regions (top {1 - D.low_density_quantile:.0%} "
                            "of mean kNN distance)",
                            _top_rank(dist.mean(axis=1), 1 - D.low_density_quantile,
                                      ctx.rng("bias.disparity.low_density_ties"))),
            "noise": ("in no HDBSCAN cluster (noise)", ctx.clusters.labels < 0),
            "outlier": (f"among the outliers (top {1 - D.outlier_quantile:.0%} of GLOSH)",
                        _top_rank(ctx.clusters.outlier_scores, 1 - D.outlier_quantile,
                                  ctx.rng("bias.disparity.outlier_ties"))),
        }
        self._flag_cache = flags
        return flags

    def _uncovered(self, ctx: Context) -> np.ndarray | None:
        if self._unc_cache is False:
            ref = ctx.reference
            k = self.settings.disparity.coverage_k
            # one pass over the shared kNN graphs (exact; see coverage.reference_uncovered)
            self._unc_cache = (None if ref is None or ref.n < k + 2 else
                               reference_uncovered(ctx, k)[0])
        return self._unc_cache

    def _disparity(self, ctx, ci, col, key, labels, names, edges, metrics):
        D = self.settings.disparity
        s = self.settings
        out: dict[str, Any] = {}
        for flag, (desc, mask) in self._flags(ctx).items():
            if not mask.any() or mask.all():
                continue
            out[flag] = self._rate_test(col, key, flag, desc, mask, labels, ctx.data.ids,
                                        metrics, "points")
        ref = ctx.reference
        if ref is not None and col in ref.metadata.columns:
            unc = self._uncovered(ctx)
            if unc is not None and unc.any():
                rlabels, _, _ = group_labels(ref.metadata[col], bins=s.numeric_bins,
                                             edges=edges)
                out["uncovered"] = self._rate_test(
                    col, key, "uncovered",
                    f"left uncovered by the data (reference points whose {D.coverage_k}-NN "
                    "ball holds no data point)", unc, rlabels, ref.ids, metrics,
                    "reference points")
        return out or None

    def _rate_test(self, col, key, flag, desc, mask, labels, ids, metrics, unit):
        D = self.settings.disparity
        res = rate_disparity(mask, labels, min_group_size=self.settings.min_group_size)
        groups = [{"group": g, "n": r["n"], "flagged": r["flagged"], "rate": r["rate"],
                   "ci": r["ci"], "tested": r["tested"]} for g, r in res["groups"].items()]
        ratio = res["ratio"]
        row = {"label": desc, "unit": unit, "groups": groups, "ratio": ratio,
               "p": res["p_value"], "test": res["test"], "lowest": res["lowest"],
               "highest": res["highest"], "overall": float(mask.mean())}
        metrics[f"bias.{key}.{flag}_ratio"] = float(ratio)
        if not math.isfinite(res["p_value"]):
            return row
        hi_g, lo_g = res["highest"], res["lowest"]
        rh, rl = res["groups"][hi_g], res["groups"][lo_g]
        ci = rate_ratio_interval(rl["flagged"], rl["n"], rh["flagged"], rh["n"])
        row["ratio_ci"] = ci
        names = _names(np.asarray(labels, dtype=object))

        def make(sev: str, q: float | None) -> Finding:
            ev = np.flatnonzero(mask & (names == hi_g))[:D.max_evidence]
            where = _FLAG_SHORT.get(flag, flag)
            title = (f"{col}={hi_g}: {_pct(rh['rate'])} {where} vs {_pct(rl['rate'])} for "
                     f"{col}={lo_g}" if sev != "info" else
                     f"{col}: no significant disparity {where} (ratio {_num(ratio, 2)})")
            rates = "; ".join(f"{g['group']} {_pct(g['rate'])} [{_pct(g['ci'][0])}, "
                              f"{_pct(g['ci'][1])}] of {g['n']}" for g in groups
                              if g["tested"])
            return Finding(
                id=self._ids(col, flag), check="bias", severity=sev, title=title,
                summary=(f"Share of {unit} {desc}, per group (Wilson 95%): {rates}. "
                         f"Disparity ratio lowest / highest = {_num(ratio, 3)} "
                         f"(95% interval {_num(ci[0], 2)}–{_num(ci[1], 2)}; the four-fifths "
                         f"rule asks for >= {D.four_fifths:g}); "
                         f"{'Fisher' if res['test'] == 'fisher' else 'chi-square'} test "
                         f"{format_p(res['p_value'])}, {format_p(q, name='BH-adjusted p')}."
                         + (f" Evidence: flagged {unit} of {col}={hi_g}." if sev != "info"
                            else "")),
                metric=f"bias.{key}.{flag}_ratio", value=float(ratio),
                threshold=D.four_fifths, p_value=q,
                ci=ci if all(math.isfinite(v) for v in ci) else None,
                subjects={"attribute": col, "group": hi_g, "kind": "disparity",
                          "flag": flag, "reference_group": lo_g,
                          "rates": {g["group"]: g["rate"] for g in groups if g["tested"]}},
                evidence_ids=tuple(str(i) for i in np.asarray(ids)[ev]) if sev != "info"
                else ())
        passes = math.isfinite(ratio) and ratio < D.four_fifths
        strong = math.isfinite(ratio) and ratio < D.strong_ratio
        self._tests.append(_Test(p=res["p_value"], passes=passes, strong=strong, make=make,
                                 always=True, row=row))
        return row

    # ------------------------------------------------------------------ 4. outcome slices
    def _outcome(self, ser: pd.Series) -> tuple[np.ndarray | None, str, str, str]:
        """(values, kind, worse, description) or (None, ..., reason)."""
        O = self.settings.outcome
        if O.bad_value is not None:
            y = np.where(ser.isna(), np.nan, _matches(ser, O.bad_value).astype(float))
            return y, "rate", "higher", f"share of {ser.name} = {O.bad_value}"
        if pd.api.types.is_bool_dtype(ser) or (
                pd.api.types.is_numeric_dtype(ser)
                and set(pd.unique(ser.dropna())) <= {0, 1, True, False}):
            y = ser.to_numpy(dtype=float, na_value=np.nan)
            return y, "rate", O.worse, f"share of {ser.name} = 1"
        if pd.api.types.is_numeric_dtype(ser):
            return ser.to_numpy(dtype=float, na_value=np.nan), "mean", O.worse, \
                f"mean {ser.name}"
        return None, "", "", (f"outcome column {ser.name!r} is not numeric: set "
                              "checks.bias.outcome.bad_value to the value that counts as "
                              "the adverse event")

    def _slices(self, ctx: Context, meta: pd.DataFrame, metrics: dict[str, float]):
        O = self.settings.outcome
        col_o = ctx.outcome
        y, kind, worse, desc = self._outcome(meta[col_o])
        ids = ctx.data.ids
        if y is None:
            self._info.append(Finding(
                id=self._ids("outcome", "not-run"), check="bias", severity="info",
                title="Outcome slices not run", summary=desc, metric="bias.outcome.overall",
                value=None, subjects={"attribute": col_o, "kind": "outcome"}))
            return {"error": desc}
        has = ~np.isnan(y)
        cl = ctx.clusters.labels
        specs: list[tuple[np.ndarray, dict[str, Any]]] = []
        for c in sorted(set(cl.tolist())):
            specs.append((cl == c, {"slice": "noise" if c < 0 else f"cluster {c}",
                                    "kind": "cluster", "attribute": col_o,
                                    "cluster": int(c)}))
        for col, (names, order, tested) in self._groupings.items():
            for g in tested:
                gm = names == g
                specs.append((gm, {"slice": f"{col}={g}", "kind": "group", "attribute": col,
                                   "group": g}))
                if O.group_clusters:
                    for c in sorted(set(cl[gm].tolist())):
                        specs.append((gm & (cl == c), {
                            "slice": f"{col}={g} in {'noise' if c < 0 else f'cluster {c}'}",
                            "kind": "group×cluster", "attribute": col, "group": g,
                            "cluster": int(c)}))
        specs = [(m, info) for m, info in specs
                 if O.min_slice_size <= int(np.sum(m & has)) < int(has.sum())]
        results = slice_outcome_tests(y, [m for m, _ in specs], kind=kind, worse=worse)
        overall = float(np.nanmean(y)) if has.any() else float("nan")
        metrics["bias.outcome.overall"] = overall
        metrics["bias.outcome.slices_tested"] = float(len(specs))
        rows = []
        unit = "rate" if kind == "rate" else "mean"
        for (mask, info), r in zip(specs, results):
            row = {**info, "n": r["n"], "value": r["value"], "ci": r["ci"], "rest": r["rest"],
                   "effect": r["effect"], "p": r["p_value"]}
            rows.append(row)

            def make(sev, q, mask=mask, info=info, r=r):
                fmt = _pct if kind == "rate" else _num
                subj = {k: v for k, v in info.items() if k not in ("slice",)}
                subj.update({"kind": "outcome", "outcome": col_o, "slice": info["slice"],
                             "n": r["n"], "effect": r["effect"]})
                return Finding(
                    id=self._ids("outcome", info["slice"]), check="bias", severity=sev,
                    title=(f"Outcome worse in {info['slice']}: {desc} {fmt(r['value'])} vs "
                           f"{fmt(overall)} overall"),
                    summary=(f"{r['n']} points with an outcome in the slice; {desc} "
                             f"{fmt(r['value'])} (95% interval {fmt(r['ci'][0])}–"
                             f"{fmt(r['ci'][1])}) against {fmt(r['rest'])} in the rest; "
                             f"effect size {r['effect']:.2f} (Cohen's "
                             f"{'h' if kind == 'rate' else 'd'}); one-sided "
                             f"{'Fisher' if kind == 'rate' else 'Welch t'} test, "
                             f"{format_p(q, name='BH-adjusted p')}. "
                             "Evidence: the slice's members."),
                    metric="bias.outcome.slice_" + unit, value=float(r["value"]),
                    threshold=overall, p_value=q, ci=tuple(r["ci"]), subjects=subj,
                    evidence_ids=tuple(ids[mask]))
            eff = r["effect"]
            self._tests.append(_Test(
                p=r["p_value"], passes=math.isfinite(eff) and eff >= O.min_effect,
                strong=math.isfinite(eff) and eff >= O.strong_effect, make=make,
                always=False, row=row))
        effects = [r["effect"] for r in results if math.isfinite(r["effect"])]
        metrics["bias.outcome.worst_effect"] = float(max(effects)) if effects else float("nan")
        for col, (names, order, tested) in self._groupings.items():
            vals = [r["value"] for r in rows if r["kind"] == "group" and r["attribute"] == col]
            if len(vals) >= 2:
                gap = (max(vals) - min(vals))
                metrics[f"bias.{self._keys[col]}.outcome_gap"] = float(gap)
        return {"outcome": col_o, "kind": kind, "worse": worse, "description": desc,
                "overall": overall, "missing": int((~has).sum()), "rows": rows,
                "min_slice_size": O.min_slice_size}

    # ------------------------------------------------------------------ 5. WEAT
    def _weat_texts(self, ctx: Context, t: WeatTest, keys: tuple[str, ...]
                    ) -> list[np.ndarray | None]:
        """Encode the word sets of one test (in its templates) in one call to the model."""
        encode = ctx.data.text_encoder
        sels = (*t.targets, *t.attributes)
        if encode is None:
            key = next(k for sel, k in zip(sels, keys) if sel.words is not None)
            raise ValueError(f"{key}.words: word sets need the audit's text encoder "
                             "(encoder.sentence_transformers); these latents come from "
                             f"{ctx.data.provenance.get('kind', 'a file')}")
        texts: list[str] = []
        spans: list[tuple[int, int] | None] = []
        for sel in sels:
            if sel.words is None:
                spans.append(None)
                continue
            start = len(texts)
            texts += [tpl.format(w) for w in sel.words for tpl in (t.templates or ["{}"])]
            spans.append((start, len(texts)))
        z = np.asarray(encode(texts), dtype=np.float32)
        if z.shape != (len(texts), ctx.data.dim) or not np.isfinite(z).all():
            raise ValueError(f"the text encoder returned {z.shape} (finite: "
                             f"{bool(np.isfinite(z).all())}) for {len(texts)} texts; the "
                             f"latents have {ctx.data.dim} dimensions")
        return [None if sp is None else z[sp[0]:sp[1]] for sp in spans]

    def _weat(self, ctx: Context, k: int, t: WeatTest, metrics: dict[str, float]):
        meta = ctx.data.metadata
        ids = ctx.data.ids
        here = f"checks.bias.weat[{k}]"
        sels = (*t.targets, *t.attributes)
        keys = (f"{here}.targets[0]", f"{here}.targets[1]", f"{here}.attributes[0]",
                f"{here}.attributes[1]")
        uses_words = any(sel.words is not None for sel in sels)
        space_kind = t.space if t.space != "auto" else ("latents" if uses_words else "analysis")
        masks: list[np.ndarray | None] = [None if sel.words is not None else sel.mask(meta, key)
                                          for sel, key in zip(sels, keys)]
        excluded = {"targets": 0, "attributes": 0}
        for pair, (i, j) in (("targets", (0, 1)), ("attributes", (2, 3))):
            if masks[i] is not None and masks[j] is not None:
                both = masks[i] & masks[j]
                masks[i], masks[j] = masks[i] & ~both, masks[j] & ~both
                excluded[pair] = int(both.sum())
        rng = ctx.rng(f"bias.weat.{k}")
        tm = [m for m in masks[:2] if m is not None]
        am = [m for m in masks[2:] if m is not None]
        split = bool(tm and am and (np.logical_or.reduce(tm) & np.logical_or.reduce(am)).any())
        if split:
            # a vector may not be compared with itself: split the rows at random into a
            # target half and an attribute half
            pool = rng.random(len(meta)) < 0.5
            masks = [None if m is None else (m & pool if i < 2 else m & ~pool)
                     for i, m in enumerate(masks)]
        texts = self._weat_texts(ctx, t, keys) if uses_words else [None] * 4
        base = ctx.data.latents if space_kind == "latents" else ctx.space
        vectors: list[np.ndarray] = []
        rows_used: list[np.ndarray] = []
        for m, z in zip(masks, texts):
            if m is None:
                z = z if space_kind == "latents" else ctx.to_space(z)
                keep = np.flatnonzero(np.linalg.norm(z, axis=1) > 0)
                if keep.size > t.max_set_size:
                    keep = np.sort(rng.choice(keep, t.max_set_size, replace=False))
                vectors.append(np.asarray(z[keep], dtype=np.float64))
                rows_used.append(np.empty(0, dtype=np.int64))
                continue
            rows = np.flatnonzero(m)
            rows = rows[np.linalg.norm(base[rows], axis=1) > 0]
            if rows.size > t.max_set_size:
                rows = np.sort(rng.choice(rows, t.max_set_size, replace=False))
            vectors.append(np.asarray(base[rows], dtype=np.float64))
            rows_used.append(rows)
        cols = sorted({c for sel in t.targets if sel.where for c in sel.where})
        attribute = (cols[0] if len(cols) == 1 else ",".join(cols)) if cols else "text"
        labels = {"X": t.targets[0].label, "Y": t.targets[1].label,
                  "A": t.attributes[0].label, "B": t.attributes[1].label}
        sizes = dict(zip("XYAB", (int(len(v)) for v in vectors)))
        row: dict[str, Any] = {"name": t.name, "sets": labels, "sizes": sizes,
                               "overlap_split": split, "alternative": t.alternative,
                               "excluded_in_both": excluded, "space": space_kind,
                               "kinds": dict(zip("XYAB", ("words" if sel.words is not None
                                                           else "metadata" for sel in sels))),
                               "templates": list(t.templates or [])}
        if min(sizes.values()) < 2:
            self._info.append(Finding(
                id=self._ids("weat", t.name, "not-run"), check="bias", severity="info",
                title=f"WEAT {t.name}: not run (a set has fewer than 2 points)",
                summary=f"Set sizes after selection: {sizes}.",
                metric=f"bias.weat.{t.name}.effect_size", value=None,
                subjects={"attribute": attribute, "kind": "weat", "test": t.name,
                          "sets": labels, "sizes": sizes}))
            row["error"] = "a set has fewer than 2 points"
            return row
        X, Y, A, B = vectors
        seed = int(rng.integers(2 ** 31 - 1))
        g = weat(X, Y, A, B, n_permutations=t.n_permutations, random_state=seed)
        l_ = weat(Y, X, A, B, n_permutations=t.n_permutations, random_state=seed + 1)
        p_g, p_l = g["p_value"], l_["p_value"]
        floor = 1.0 / (t.n_permutations + 1)
        tail = False
        # a sampled test that found no partition as extreme: the permutation law's normal
        # approximation (exact mean and variance) estimates the tail beyond 1 / (B + 1)
        if not g["exact"] and p_g <= floor:
            p_g, tail = min(p_g, weat_normal_pvalue(X, Y, A, B)), True
        if not l_["exact"] and p_l <= floor:
            p_l, tail = min(p_l, weat_normal_pvalue(Y, X, A, B)), True
        if t.alternative == "greater":
            p = p_g
        elif t.alternative == "less":
            p = p_l
        else:
            p = min(1.0, 2 * min(p_g, p_l))
        d = g["effect_size"]
        metrics[f"bias.weat.{t.name}.effect_size"] = float(d)
        metrics[f"bias.weat.{t.name}.p"] = float(p)
        row.update({"effect_size": d, "statistic": g["statistic"], "p": p,
                    "exact": g["exact"], "n_partitions": g["n_partitions"],
                    "p_method": "exact" if g["exact"] else
                    ("normal-tail" if tail else "sampled")})
        signed = {"greater": d, "less": -d}.get(t.alternative, abs(d) if math.isfinite(d)
                                                 else float("nan"))
        ok = math.isfinite(signed)

        def make(sev: str, q: float | None) -> Finding:
            how = ("exact over all " if g["exact"] else "sampled, ") + \
                f"{g['n_partitions']:,} partitions" + \
                ("; beyond every sampled one, so the tail is the permutation law's normal "
                 "approximation" if tail else "")
            direction = ("X is closer to A than Y is" if d > 0 else "Y is closer to A than X is")
            ev = np.concatenate([rows_used[0], rows_used[1]])[:1000]
            where_cos = ("the encoder's own output" if space_kind == "latents"
                         else "the analysis space")
            seat = (f" Word sets are encoded with the audit's text encoder"
                    + (f" in {len(t.templates)} template(s) such as {t.templates[0]!r}"
                       if t.templates else "") + " (SEAT)." if uses_words else "")
            return Finding(
                id=self._ids("weat", t.name), check="bias", severity=sev,
                title=f"WEAT {t.name}: effect size {_num(d, 2)}"
                      + ("" if sev == "info" else f" ({direction})"),
                summary=(f"X = {labels['X']} ({sizes['X']}), Y = {labels['Y']} "
                         f"({sizes['Y']}), A = {labels['A']} ({sizes['A']}), B = "
                         f"{labels['B']} ({sizes['B']}); cosine in {where_cos}.{seat} "
                         f"Effect size {_num(d, 3)} (standard deviation with ddof=1), "
                         f"{t.alternative} permutation {format_p(p)} ({how}), "
                         f"{format_p(q, name='BH-adjusted p')}."
                         + (" Target and attribute selections overlapped, so the rows were "
                            "split at random into a target half and an attribute half."
                            if split else "")),
                metric=f"bias.weat.{t.name}.effect_size", value=float(d),
                threshold=t.min_effect, p_value=q,
                subjects={"attribute": attribute, "kind": "weat", "test": t.name,
                          "sets": labels, "sizes": sizes},
                evidence_ids=tuple(ids[ev]))
        self._tests.append(_Test(p=p, passes=ok and signed >= t.min_effect,
                                 strong=ok and signed >= t.strong_effect, make=make,
                                 always=True, row=row))
        return row
