"""Question 1, leakage: can a cross-validated linear probe read the group from the latents
(AUC with a bootstrap interval, permutation p-value), also once the configured
``attributes`` are regressed out fold by fold?"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...columns import is_numeric
from ...context import Context
from ...findings import Finding
from ...formatting import format_p
from ...metrics import probe_leakage
from ...metrics._slices import permutation_pvalue
from .state import BiasRun, Grouping, Test, num

__all__ = ["check_leakage", "covariates"]


def _probe_rows(run: BiasRun, grouping: Grouping) -> np.ndarray:
    """Rows of the tested groups; above ``max_points``, a stratified seeded sample that
    keeps at least ``min_group_size`` of every group."""
    leakage = run.settings.leakage
    names = grouping.names
    idx = np.flatnonzero(grouping.in_tested)
    if idx.size <= leakage.max_points:
        return idx
    rng = run.ctx.rng(f"bias.leakage.rows.{grouping.index}")
    frac = leakage.max_points / idx.size
    keep = []
    for g in grouping.tested:
        m = idx[names[idx] == g]
        take = min(m.size, max(int(round(m.size * frac)), run.settings.min_group_size))
        keep.append(rng.choice(m, take, replace=False))
    return np.sort(np.concatenate(keep))


def check_leakage(run: BiasRun, grouping: Grouping, metrics: dict[str, float]
                 ) -> dict[str, Any]:
    """Probe the group raw and (with attributes) adjusted; one test each."""
    leakage = run.settings.leakage
    ctx = run.ctx
    idx = _probe_rows(run, grouping)
    x = ctx.standardized[idx]
    y = grouping.labels[idx]
    out: dict[str, Any] = {"n": int(idx.size), "cv": leakage.cv,
                           "n_permutations": leakage.n_permutations}
    seed = int(ctx.rng(f"bias.leakage.probe.{grouping.index}").integers(2 ** 31 - 1))
    res = probe_leakage(x, y, cv=leakage.cv, n_permutations=leakage.n_permutations,
                        stop_after=leakage.stop_after, n_bootstrap=leakage.n_bootstrap,
                        random_state=seed)
    out["raw"] = _leak_test(run, grouping, res, "", metrics, idx.size)
    covs, used, dropped = covariates(ctx, idx)
    out["attributes"] = used
    out["attributes_dropped"] = dropped
    if leakage.adjust_for_attributes and covs is not None:
        res2 = probe_leakage(x, y, covariates=covs, cv=leakage.cv,
                             n_permutations=leakage.n_permutations,
                             stop_after=leakage.stop_after, n_bootstrap=leakage.n_bootstrap,
                             random_state=seed + 1)
        out["adjusted"] = _leak_test(run, grouping, res2, "_adjusted", metrics, idx.size,
                                     used)
    return out


def covariates(ctx: Context, idx: np.ndarray
               ) -> tuple[pd.DataFrame | None, list[str], list[str]]:
    """The configured attributes on rows ``idx`` as a covariate frame: numeric columns
    (:func:`audit.columns.is_numeric`) with a missing indicator, categorical ones (up to 50
    levels) one-hot in ``residualize``; returns ``(frame, used, dropped)``."""
    meta = ctx.data.metadata
    frame: dict[str, Any] = {}
    used, dropped = [], []
    for a in ctx.attributes:
        if a not in meta.columns:
            continue
        column = meta[a]
        ser = column.iloc[idx].reset_index(drop=True)
        if is_numeric(column):
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
            frame[a] = pd.Series([None if v is None else str(v) for v in obj], dtype=object)
        used.append(a)
    if not frame:
        return None, used, dropped
    return pd.DataFrame(frame), used, dropped


def _leak_test(run: BiasRun, grouping: Grouping, res: dict[str, Any], suffix: str,
               metrics: dict[str, float], n: int, used: list[str] | None = None
               ) -> dict[str, Any]:
    leakage = run.settings.leakage
    col, key = grouping.column, grouping.key
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
        stopped = leakage.stop_after and len(res["null_scores"]) < leakage.n_permutations
        summary = (f"A cross-validated linear probe ({leakage.cv} folds, {n} points) tells "
                   f"the groups apart with AUC {auc:.3f} (95% interval {num(res['ci'][0])}–"
                   f"{num(res['ci'][1])}; chance 0.5); permutation test over "
                   f"{len(res['null_scores'])} shuffles: {format_p(pv['p_value'])}"
                   + (" (normal tail of the null)" if pv["method"] == "normal-tail" else "")
                   + (f" (a sequential Besag–Clifford test: it stopped after "
                      f"{len(res['null_scores'])} of {leakage.n_permutations} shuffles "
                      f"because {leakage.stop_after} permuted AUCs already reached the "
                      "observed one, which settles 'not significant'; "
                      "checks.bias.leakage.stop_after)" if stopped else "")
                   + f", {format_p(q, name='BH-adjusted p')}. Carried mostly by {carried}.")
        if sev != "info" and not adjusted:
            summary += (" Downstream models can use the group even when it is not an "
                        "input; check the adjusted probe to see whether legitimate "
                        "factors explain it.")
        return Finding(
            id=run.ids(col, "leakage" + ("-adjusted" if adjusted else "")),
            check="bias", severity=sev, title=title, summary=summary,
            metric=f"bias.{key}.leakage_auc{suffix}", value=auc, threshold=leakage.min_auc,
            p_value=q, ci=tuple(res["ci"]),
            subjects={"attribute": col, "kind": "leakage", "adjusted_for": used or [],
                      "top_dims": dims[:3]})
    run.add(Test(p=pv["p_value"], passes=auc >= leakage.min_auc,
                 strong=auc >= leakage.strong_auc, make=make, always=True, row=row))
    return row
