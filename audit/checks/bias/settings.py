"""The settings of the bias check: the WEAT selections and tests, and one model per question
(leakage, representation, disparity, outcome slices). Config keys live under
``checks.bias``; see docs/checks/bias.md."""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from ...columns import level_name
from ..base import CheckSettings

__all__ = ["Scalar", "Selection", "WeatTest", "LeakageSettings", "RepresentationSettings",
           "DisparitySettings", "OutcomeSettings", "matches"]

Scalar = Union[bool, int, float, str, None]
_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_\-]*$"


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
            out &= np.logical_or.reduce([matches(meta[col], v) for v in vals])
        return out


def matches(ser: pd.Series, v: Scalar) -> np.ndarray:
    """Rows of ``ser`` equal to ``v``: ``None`` selects missing values; a number is compared
    as a number in a numeric column, anything else as the level is written
    (:func:`audit.columns.level_name`)."""
    if v is None:
        return ser.isna().to_numpy()
    if pd.api.types.is_bool_dtype(ser) and isinstance(v, bool):
        return (ser == v).to_numpy(dtype=bool, na_value=False)
    if (pd.api.types.is_numeric_dtype(ser) and not pd.api.types.is_bool_dtype(ser)
            and isinstance(v, (int, float)) and not isinstance(v, bool)):
        return (ser == v).to_numpy(dtype=bool, na_value=False)
    return (ser.notna() & (ser.astype(object).map(level_name) == level_name(v))).to_numpy()


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


