"""The settings of the ``coverage`` check: one pydantic model, shared by its two halves."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import CheckSettings

__all__ = ["Settings"]


class Settings(CheckSettings):
    """The settings of the ``coverage`` check (``checks: coverage:`` in the config)."""

    k: int = Field(5, ge=1, le=100, description=(
        "k of the k-NN balls of the four metrics (Naeem et al. use 5)"))
    alpha: float = Field(0.01, gt=0, lt=1, description=(
        "error rate of each family of tests: Bonferroni over the reference points (gap "
        "regions), Benjamini–Hochberg over groups and over attribute combinations"))
    critical_share: float = Field(0.05, gt=0, le=1, description=(
        "a gap region holding at least this share of the reference is critical"))
    max_depth: int = Field(1000, ge=10, le=100_000, description=(
        "reference neighbours counted for the depth test of an uncovered point"))
    min_group_gap: float = Field(0.1, ge=0, le=1, description=(
        "a group is flagged only when its coverage is this much below the rest's"))
    max_ratio: float = Field(0.5, gt=0, lt=1, description=(
        "an attribute combination is flagged when significantly rarer than this share "
        "of its expected count"))
    critical_expected: float = Field(20.0, gt=0, description=(
        "with a reference, a combination the data lacks entirely is critical when at "
        "least this many samples were expected"))
    bins: int = Field(4, ge=2, le=20, description="quantile bins of numeric columns")
    combinations: Literal["auto", "independence", "reference"] = Field("auto", description=(
        "what predicts a combination's count: the reference (auto, with a reference) "
        "or the independence of the two columns (auto, without one)"))
    max_columns: int = Field(12, ge=2, le=50, description=(
        "attribute / protected columns in the cross-table (the first ones listed)"))
    max_findings: int = Field(30, ge=1, le=1000, description=(
        "findings listed per kind (gap regions, groups, combinations)"))
    prdc_sample: int = Field(10_000, ge=100, description=(
        "precision, recall and density (which need every data-reference distance) use "
        "a seeded sample of at most this many points of the larger set, and the same "
        "share of the other; coverage, the gap regions and the groups use every point"))
