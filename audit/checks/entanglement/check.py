"""The registered ``entanglement`` check: the steps in order, and the result assembled."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ...context import Context
from ...findings import CheckResult, Finding
from ..base import Check, register
from ._sampling import _seed, _subsample
from .attributes import (
    attribute_findings,
    prepare_attributes,
    probe_attributes,
    probe_row,
)
from .consistency import consistency_results, consistency_tests
from .directions import joint_analysis, pair_results
from .factors import factor_analysis, factor_results
from .settings import Settings
from .visuals import visuals

__all__ = ["EntanglementCheck"]


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
    Settings = Settings

    def applies(self, ctx: Context) -> str | None:
        if not ctx.attributes:
            return ("no attributes configured: list the metadata columns to probe under "
                    "`attributes:`")
        if ctx.n < 20:
            return f"only {ctx.n} points; the probes need at least 20"
        return None

    def run(self, ctx: Context) -> CheckResult:
        s = self.settings
        attrs = prepare_attributes(ctx.data.metadata, ctx.attributes, s)
        usable = [a for a in attrs if a.status == "ok"]
        sample = _subsample(ctx, np.arange(ctx.n), s.max_rows, "rows")
        findings: list[Finding] = []
        metrics: dict[str, float] = {}
        tables: dict[str, Any] = {"settings": s.model_dump(), "n": ctx.n,
                                  "sample_rows": int(sample.size), "notes": []}
        notes = tables["notes"]
        if sample.size < ctx.n:
            notes.append(f"Probes and the joint analysis use a seeded sample of "
                         f"{sample.size:,} of {ctx.n:,} rows.")

        # 1. probes; 2-3. joint directions; 4-5. factors; 7. consistency; 6. pictures
        probes = probe_attributes(ctx.standardized, usable, sample, s,
                                  random_state=_seed(ctx, "probe"))
        for a in usable:
            metrics[f"entanglement.{a.key}.probe_score"] = probes[a.name]["score"]
        joint = joint_analysis(ctx, usable, sample, probes, notes, s)
        factor = factor_analysis(ctx, usable, notes, s)
        consistency = (consistency_tests(ctx, joint, notes, s)
                       if s.consistency and joint is not None else None)
        images: dict[str, np.ndarray] = {}
        views = visuals(ctx, joint, images, notes, s)

        # findings, metrics, tables
        for a in attrs:
            findings.extend(attribute_findings(a, probes.get(a.name), check=self.name,
                                               confidence=s.confidence))
        tables["attributes"] = [
            {**a.summary(), "probe": probe_row(probes.get(a.name))} for a in attrs]
        metrics["entanglement.attributes_probed"] = float(len(usable))
        metrics["entanglement.attributes_refused"] = float(len(attrs) - len(usable))
        if joint is not None:
            f, m, t = pair_results(joint, probes, views, s, check=self.name)
            findings.extend(f)
            metrics.update(m)
            tables["joint"] = t
        else:
            metrics.update({"entanglement.max_leakage": float("nan"),
                            "entanglement.mean_abs_cosine": float("nan"),
                            "entanglement.flagged_pairs": 0.0})
        if factor is not None:
            f, m, t = factor_results(factor, s, check=self.name)
            findings.extend(f)
            metrics.update(m)
            tables["factors"] = t
        if consistency is not None:
            f, m, t = consistency_results(consistency, s, check=self.name)
            findings.extend(f)
            metrics.update(m)
            tables["consistency"] = t
        tables.update(views["tables"])
        return CheckResult(check=self.name, status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables,
                           display=tuple(_display(probes, joint, factor, consistency,
                                                  tables)),
                           images=images)


def _display(probes: dict, joint: dict | None, factor: dict | None,
             consistency: dict | None, tables: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's figures for this result, in order."""
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
    return display
