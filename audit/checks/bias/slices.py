"""Question 4, outcome slices: with ``outcome:`` set, the clusters, groups and group x
cluster cells where the outcome is worse than in the rest of the data (Fisher's exact test
and Cohen's h for a rate, Welch's t and Cohen's d for a mean)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ...findings import Finding
from ...formatting import format_p
from ...metrics._slices import slice_outcome_tests
from .settings import OutcomeSettings, matches
from .state import BiasRun, Test, num, pct

__all__ = ["outcome_values", "check_slices"]


def outcome_values(ser: pd.Series, settings: OutcomeSettings
                   ) -> tuple[np.ndarray | None, str, str, str]:
    """The outcome as numbers: ``(values, kind, worse, description)``, ``kind`` "rate" (a
    0/1 event) or "mean"; ``(None, "", "", reason)`` when the column cannot be read."""
    if settings.bad_value is not None:
        y = np.where(ser.isna(), np.nan, matches(ser, settings.bad_value).astype(float))
        return y, "rate", "higher", f"share of {ser.name} = {settings.bad_value}"
    if pd.api.types.is_bool_dtype(ser) or (
            pd.api.types.is_numeric_dtype(ser)
            and set(pd.unique(ser.dropna())) <= {0, 1, True, False}):
        y = ser.to_numpy(dtype=float, na_value=np.nan)
        return y, "rate", settings.worse, f"share of {ser.name} = 1"
    if pd.api.types.is_numeric_dtype(ser):
        return ser.to_numpy(dtype=float, na_value=np.nan), "mean", settings.worse, \
            f"mean {ser.name}"
    return None, "", "", (f"outcome column {ser.name!r} is not numeric: set "
                          "checks.bias.outcome.bad_value to the value that counts as "
                          "the adverse event")


def _slice_specs(run: BiasRun, outcome_column: str) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """Every candidate slice: clusters (noise too), tested groups and, optionally, group x
    cluster cells; each as (mask, description)."""
    cl = run.ctx.clusters.labels
    specs: list[tuple[np.ndarray, dict[str, Any]]] = []
    for c in sorted(set(cl.tolist())):
        specs.append((cl == c, {"slice": "noise" if c < 0 else f"cluster {c}",
                                "kind": "cluster", "attribute": outcome_column,
                                "cluster": int(c)}))
    for col, grouping in run.groupings.items():
        for g in grouping.tested:
            gm = grouping.names == g
            specs.append((gm, {"slice": f"{col}={g}", "kind": "group", "attribute": col,
                               "group": g}))
            if run.settings.outcome.group_clusters:
                for c in sorted(set(cl[gm].tolist())):
                    specs.append((gm & (cl == c), {
                        "slice": f"{col}={g} in {'noise' if c < 0 else f'cluster {c}'}",
                        "kind": "group×cluster", "attribute": col, "group": g,
                        "cluster": int(c)}))
    return specs


def check_slices(run: BiasRun, metrics: dict[str, float]) -> dict[str, Any]:
    """One one-sided test per slice of at least ``min_slice_size`` points with an outcome."""
    outcome = run.settings.outcome
    ctx = run.ctx
    col_o = ctx.outcome
    y, kind, worse, desc = outcome_values(ctx.data.metadata[col_o], outcome)
    ids = ctx.data.ids
    if y is None:
        run.note(Finding(
            id=run.ids("outcome", "not-run"), check="bias", severity="info",
            title="Outcome slices not run", summary=desc, metric="bias.outcome.overall",
            value=None, subjects={"attribute": col_o, "kind": "outcome"}))
        return {"error": desc}
    has = ~np.isnan(y)
    specs = [(m, info) for m, info in _slice_specs(run, col_o)
             if outcome.min_slice_size <= int(np.sum(m & has)) < int(has.sum())]
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
            fmt = pct if kind == "rate" else num
            subj = {k: v for k, v in info.items() if k not in ("slice",)}
            subj.update({"kind": "outcome", "outcome": col_o, "slice": info["slice"],
                         "n": r["n"], "effect": r["effect"]})
            return Finding(
                id=run.ids("outcome", info["slice"]), check="bias", severity=sev,
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
        run.add(Test(p=r["p_value"], passes=math.isfinite(eff) and eff >= outcome.min_effect,
                     strong=math.isfinite(eff) and eff >= outcome.strong_effect, make=make,
                     always=False, row=row))
    effects = [r["effect"] for r in results if math.isfinite(r["effect"])]
    metrics["bias.outcome.worst_effect"] = float(max(effects)) if effects else float("nan")
    for col, grouping in run.groupings.items():
        vals = [r["value"] for r in rows if r["kind"] == "group" and r["attribute"] == col]
        if len(vals) >= 2:
            metrics[f"bias.{grouping.key}.outcome_gap"] = float(max(vals) - min(vals))
    return {"outcome": col_o, "kind": kind, "worse": worse, "description": desc,
            "overall": overall, "missing": int((~has).sum()), "rows": rows,
            "min_slice_size": outcome.min_slice_size}
