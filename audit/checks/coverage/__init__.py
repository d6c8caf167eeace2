"""``coverage``: what the data fails to cover: of the reference, and of attribute combinations.

With a reference (``reference:`` in the config):

* the four k-NN manifold metrics of Naeem et al. (2020) (their "real" is the reference,
  their "fake" the data), computed in the analysis space with
  :func:`audit.metrics.coverage` (equal to ``prdc.compute_prdc``; a point is inside a
  ball only when strictly closer than its radius);
* gap regions: reference points whose k-NN ball holds no data point, grouped by the
  connected components of the reference's k-NN graph among them. A region is flagged
  when one of its points is *deeply* uncovered: ``D`` reference points lie closer to it
  than the nearest data point, and when data and reference come from one distribution
  that happens with probability ``C(M-1, D) / C(M-1+N, D)`` (exact, by exchangeability;
  Bonferroni over all reference points, so on data and reference from one distribution
  the chance of any gap finding is at most ``alpha``);
* coverage per reference cluster (HDBSCAN on the reference) and per value of each
  attribute / protected column in the reference's metadata, with Wilson intervals; a
  group is flagged when its coverage is significantly (Fisher, BH) and materially
  (``min_group_gap``) below the rest.

With or without a reference: the attribute-combination table. For every pair of the
configured attributes and protected columns (numeric ones in quantile bins), each cell's
count is compared with an expected table that keeps the data's own totals per value and
takes the association of the two columns from the reference (with a reference) or
assumes none (without); cells significantly below ``max_ratio`` times that are flagged
(one-sided Poisson test, BH over all cells).

The two questions live in their own modules: ``support`` (the reference half) and
``combinations`` (the attribute combinations); the statistics in ``audit.metrics``
(``_coverage``, ``_regions``, ``_contingency``). See docs/checks/coverage.md.
"""
from __future__ import annotations

from typing import Any, ClassVar

from ...context import Context
from ...findings import CheckResult, Finding
from ..base import Check, register
from .combinations import bin_columns, combination_part, combination_tests
from .settings import Settings
from .support import reference_part, reference_uncovered

__all__ = ["CoverageCheck", "reference_uncovered", "bin_columns", "combination_tests"]


@register
class CoverageCheck(Check):
    """Coverage of the reference by the data (precision, recall, density, coverage; gap
    regions; groups) and attribute combinations the data lacks."""

    name = "coverage"
    produces: ClassVar[tuple[str, ...]] = (
        "coverage.precision",
        "coverage.recall",
        "coverage.density",
        "coverage.coverage",
        "coverage.coverage_null",
        "coverage.gap_regions",
        "coverage.gap_fraction",
        "coverage.combinations_tested",
        "coverage.combinations_missing",
    )

    Settings = Settings

    def combination_columns(self, ctx: Context) -> list[str]:
        """The attribute and protected columns of the combination table (the first
        ``max_columns`` the data has)."""
        meta = ctx.data.metadata
        return [c for c in dict.fromkeys(ctx.attributes + ctx.protected)
                if c in meta.columns][: self.settings.max_columns]

    def applies(self, ctx: Context) -> str | None:
        if ctx.reference is not None or len(self.combination_columns(ctx)) >= 2:
            return None
        return "no reference given, and fewer than two attributes for the combination table"

    def run(self, ctx: Context) -> CheckResult:
        metrics: dict[str, float] = {}
        findings: list[Finding] = []
        tables: dict[str, Any] = {"has_reference": ctx.reference is not None}
        display: list[dict[str, Any]] = []
        if ctx.reference is not None:
            reference_part(ctx, self.settings, metrics, findings, tables, display)
        combination_part(ctx, self.settings, self.combination_columns(ctx), metrics,
                         findings, tables, display)
        return CheckResult(check=self.name, status="ok", metrics=metrics,
                           findings=tuple(findings), tables=tables, display=tuple(display))

