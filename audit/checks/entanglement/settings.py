"""The settings of the ``entanglement`` check (its config keys under ``checks.entanglement``).

Kept apart from the check so that each part of the analysis can take them without
importing the check.
"""
from __future__ import annotations

from pydantic import Field

from ..base import CheckSettings

__all__ = ["Settings"]


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
