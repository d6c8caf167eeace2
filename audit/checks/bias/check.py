"""The registered ``bias`` check: its settings, and one run as the orchestration of the five
questions (leakage, representation, disparity, outcome slices, WEAT) over one
Benjamini–Hochberg family. See the package docstring and docs/checks/bias.md."""
from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from ...columns import MISSING, group_column, slug
from ...context import Context
from ...findings import CheckResult, Finding
from ..base import Check, CheckSettings, register
from .disparity import check_disparity
from .leakage import check_leakage
from .representation import check_representation
from .settings import (DisparitySettings, LeakageSettings, OutcomeSettings,
                       RepresentationSettings, WeatTest)
from .slices import check_slices
from .state import BiasRun, Grouping
from .weat import check_weat

__all__ = ["BiasCheck"]


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
        settings = self.settings
        run = BiasRun(settings, ctx)
        metrics: dict[str, float] = {}
        tables: dict[str, Any] = {"columns": {}, "alpha": settings.alpha,
                                  "min_group_size": settings.min_group_size}
        display: list[dict[str, Any]] = []
        keys: set[str] = set()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for index, col in enumerate(ctx.protected):
                key = slug(col)
                while key in keys:
                    key += "_"
                keys.add(key)
                tab = _column(run, index, col, key, metrics)
                tables["columns"][col] = tab
                if tab.get("leakage"):
                    display.append({"kind": "bias_leakage", "column": col})
                if tab.get("representation"):
                    display.append({"kind": "bias_representation", "column": col,
                                    "wide": True})
                if tab.get("disparity"):
                    display.append({"kind": "bias_disparity", "column": col, "wide": True})
            if ctx.outcome:
                tables["slices"] = check_slices(run, metrics)
                if tables["slices"].get("rows"):
                    display.append({"kind": "bias_slices", "wide": True})
            if settings.weat:
                tables["weat"] = [check_weat(run, k, test, metrics)
                                  for k, test in enumerate(settings.weat)]
                display.append({"kind": "bias_weat"})

        findings = run.resolve(metrics)
        tables["tests"] = len(run.tests)
        return CheckResult(check="bias", status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables, display=tuple(display))


def _column(run: BiasRun, index: int, col: str, key: str, metrics: dict[str, float]
            ) -> dict[str, Any]:
    """One protected column: its groups (small ones untested, each an info finding), then
    leakage, representation and disparity when two groups are large enough."""
    settings = run.settings
    ids = run.ctx.data.ids
    groups = group_column(run.ctx.data.metadata[col], bins=settings.numeric_bins)
    names = groups.names()
    sizes = {g: int(np.sum(names == g)) for g in groups.order}
    tested = [g for g in groups.order if sizes[g] >= settings.min_group_size]
    untested = [g for g in groups.order if sizes[g] < settings.min_group_size]
    grouping = Grouping(index=index, column=col, key=key, groups=groups, names=names,
                        sizes=sizes, tested=tested, untested=untested)
    run.groupings[col] = grouping
    tab: dict[str, Any] = {
        "key": key, "binned": groups.numeric,
        "groups": [{"group": g, "n": sizes[g], "tested": g in tested,
                    "missing": g == MISSING} for g in groups.order],
        "untested": [{"group": g, "n": sizes[g]} for g in untested],
    }
    metrics[f"bias.{key}.groups_tested"] = float(len(tested))
    metrics[f"bias.{key}.groups_untested"] = float(len(untested))
    metrics[f"bias.{key}.missing_fraction"] = grouping.missing_fraction
    for g in untested:
        members = np.flatnonzero(names == g)
        run.note(Finding(
            id=run.ids(col, "untested", g), check="bias", severity="info",
            title=f"{col}: group {g} is too small to test ({sizes[g]} members)",
            summary=(f"Groups with fewer than {settings.min_group_size} members take part "
                     "in no test of this check (too few to tell a difference from noise); "
                     "collect more data for this group to audit it."
                     + (" This group holds the rows where the column is missing."
                        if g == MISSING else "")),
            metric=f"bias.{key}.groups_untested", value=float(sizes[g]),
            threshold=float(settings.min_group_size),
            subjects={"attribute": col, "group": g, "n": sizes[g], "kind": "untested"},
            evidence_ids=tuple(ids[members])))
    if len(tested) < 2:
        run.note(Finding(
            id=run.ids(col, "not-tested"), check="bias", severity="info",
            title=f"{col}: fewer than two groups large enough to compare",
            summary=(f"{len(tested)} group(s) have at least {settings.min_group_size} "
                     "members; leakage, representation and disparity need two."),
            metric=f"bias.{key}.groups_tested", value=float(len(tested)),
            threshold=2.0, subjects={"attribute": col, "kind": "untested"}))
        return tab
    tab["leakage"] = check_leakage(run, grouping, metrics)
    tab["representation"] = check_representation(run, grouping, metrics)
    tab["disparity"] = check_disparity(run, grouping, metrics)
    return tab
