"""Attributes: how a metadata column is prepared for probing, the probe of each, and the
findings about single attributes.

A configured column becomes an :class:`Attribute`: numeric, categorical (rare levels
merged into ``<other>``), or refused with the reason (missing, one value, dates, too many
levels, too few rows). Each usable attribute gets a cross-validated linear probe; it is
*encoded* when the interval's lower end is above chance.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ...columns import level_name
from ...findings import Finding
from ...metrics._probes import probe_score
from ._format import num, opt_float
from .settings import Settings

__all__ = [
    "OTHER",
    "Attribute",
    "attribute_findings",
    "prepare_attribute",
    "prepare_attributes",
    "probe_attributes",
    "probe_row",
    "safe_key",
]

OTHER = "<other>"
# Not ``columns.slug``: that collapses runs and strips ``_`` ("a / b" -> "a_b", here
# "a___b"), and metric names and finding ids must stay as they are.
_KEY_RE = re.compile(r"[^A-Za-z0-9_\-]")


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


def safe_key(name: str, taken: set[str]) -> str:
    """A key for metric names and finding ids, unique among ``taken`` (each character
    outside letters, digits, ``_`` and ``-`` becomes ``_``; see the note on ``slug``)."""
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
            labels = np.array([level_name(v) if ok else "" for v, ok in zip(vals, present)],
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


def prepare_attributes(metadata: pd.DataFrame, names: list[str], s: Settings
                       ) -> list[Attribute]:
    """Every configured column (duplicates once), in the order given."""
    taken: set[str] = set()
    return [prepare_attribute(
        a, metadata[a] if a in metadata.columns else None, key=safe_key(a, taken), cv=s.cv,
        max_levels=s.max_levels, min_level_size=s.min_level_size,
        few_values=s.few_values, min_rows=max(4 * s.cv, 20))
        for a in dict.fromkeys(names)]


def probe_attributes(X: np.ndarray, usable: list[Attribute], sample: np.ndarray,
                     s: Settings, *, random_state: int) -> dict[str, dict[str, Any]]:
    """The cross-validated probe of each usable attribute on the sampled rows that have a
    value, keyed by name; ``encoded`` when the interval's lower end is above chance."""
    probes: dict[str, dict[str, Any]] = {}
    for a in usable:
        rows = sample[a.valid[sample]]
        res = probe_score(X[rows], a.values[rows], categorical=a.categorical, cv=s.cv,
                          n_bootstrap=s.n_bootstrap, confidence=s.confidence,
                          random_state=random_state)
        res["encoded"] = bool(res["ci"][0] > res["chance"])
        res["n"] = int(rows.size)
        probes[a.name] = res
    return probes


def probe_row(res: dict | None) -> dict[str, Any] | None:
    """One attribute's probe as a table row."""
    if res is None:
        return None
    return {"metric": res["metric"], "score": opt_float(res["score"]),
            "ci": [opt_float(res["ci"][0]), opt_float(res["ci"][1])],
            "chance": opt_float(res["chance"]), "p_value": opt_float(res["p_value"]),
            "encoded": res["encoded"], "n": res["n"]}


def attribute_findings(a: Attribute, res: dict | None, *, check: str,
                       confidence: float) -> list[Finding]:
    """How an attribute was handled (when specially), and what its probe reads."""
    out = []
    if a.notes:
        refused = a.status == "refused"
        out.append(Finding(
            id=f"entanglement-attribute-{a.key}", check=check, severity="info",
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
            id=f"entanglement-probe-{a.key}", check=check, severity="info",
            title=f"{a.name}: {verdict}, {label} {num(res['score'])}",
            summary=(f"A cross-validated linear probe reads {a.name} from the latents "
                     f"with {label} {num(res['score'], 3)} ({confidence:.0%}"
                     f" interval [{num(lo, 3)}, {num(hi, 3)}]; chance "
                     f"{num(res['chance'], 3)}; {res['n']:,} rows)."),
            metric=f"entanglement.{a.key}.probe_score", value=opt_float(res["score"]),
            threshold=opt_float(res["chance"]), p_value=opt_float(res["p_value"]),
            ci=(opt_float(lo), opt_float(hi)), subjects={"attributes": [a.name]}))
    return out
