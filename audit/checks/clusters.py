"""``clusters``: HDBSCAN cluster sizes, noise share, and what each cluster is made of."""
from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from ..context import Context
from ..findings import CheckResult, Finding
from ..metrics import wilson_interval
from .base import Check, CheckSettings, register


def _binned(ser: pd.Series, bins: int) -> tuple[pd.Series, list[str] | None]:
    """Numeric columns with many values become quantile bins labelled 'low–high', in order."""
    if not (pd.api.types.is_numeric_dtype(ser) and ser.nunique(dropna=True) > 10):
        return ser, None
    cut = pd.qcut(ser, q=bins, duplicates="drop")
    lo = float(ser.min())          # qcut widens the first edge by 0.1%; show the real minimum
    labels = [f"{max(iv.left, lo) if k == 0 else iv.left:.3g}–{iv.right:.3g}"
              for k, iv in enumerate(cut.cat.categories)]
    return cut.cat.rename_categories(labels).astype(object), labels


def composition(values: pd.Series, labels: np.ndarray, *, top: int = 10,
                bins: int = 4) -> dict:
    """Per cluster, the most common values of one column (numeric columns binned by quantile).

    Returns ``{"values": [...], "clusters": [{"cluster", "n", "top": [{"value", "share",
    "overall_share"}]}]}`` where ``values`` lists the column's values in display order.
    """
    ser, order = _binned(values.reset_index(drop=True), bins)
    ser = ser.astype(object).where(ser.notna(), "<missing>").astype(str)
    overall = ser.value_counts(normalize=True)
    rows = []
    for c in sorted(set(labels.tolist())):
        sub = ser[labels == c]
        shares = sub.value_counts(normalize=True).head(top)
        rows.append({"cluster": int(c), "n": int(len(sub)),
                     "top": [{"value": str(v), "share": float(s),
                              "overall_share": float(overall.get(v, 0.0))}
                             for v, s in shares.items()]})
    values_order = (order + (["<missing>"] if "<missing>" in overall.index else [])
                    if order else [str(v) for v in overall.index])
    return {"values": values_order, "clusters": rows}


@register
class ClustersCheck(Check):
    """Cluster structure of the latents (HDBSCAN on the shared cluster space)."""

    name = "clusters"

    class Settings(CheckSettings):
        noise_warning: float = Field(0.5, gt=0, le=1, description=(
            "warn when the noise share's lower 95% bound exceeds this: the latents have "
            "little cluster structure at the chosen scale"))

    def run(self, ctx: Context) -> CheckResult:
        cl = ctx.clusters
        labels = cl.labels
        n = len(labels)
        n_noise = int((labels == -1).sum())
        sizes = np.bincount(labels[labels >= 0], minlength=cl.n_clusters)
        metrics = {
            "clusters.count": float(cl.n_clusters),
            "clusters.noise_fraction": n_noise / n,
            "clusters.largest_fraction": float(sizes.max() / n) if sizes.size else 0.0,
        }
        cols = [c for c in ctx.attributes + ctx.protected if c in ctx.data.metadata.columns]
        comp = {c: composition(ctx.data.metadata[c], labels) for c in cols}
        ids = ctx.data.ids
        findings = []
        for c in np.argsort(-sizes)[:20]:
            members = np.flatnonzero(labels == c)
            desc = []
            for col in cols:
                row = next(r for r in comp[col]["clusters"] if r["cluster"] == c)
                if row["top"]:
                    t = row["top"][0]
                    desc.append(f"{t['share']:.0%} {col}={t['value']}")
            findings.append(Finding(
                id=f"clusters-{int(c)}", check="clusters", severity="info",
                title=f"Cluster {int(c)}: {len(members)} points ({len(members) / n:.1%})",
                summary=("Most common: " + ", ".join(desc)) if desc else
                        "Exemplars are the members with the highest membership strength.",
                metric="clusters.size_fraction", value=len(members) / n,
                ci=wilson_interval(len(members), n),
                subjects={"cluster": int(c)},
                evidence_ids=tuple(ids[cl.exemplars.get(int(c), members[:5])])))
        lo, hi = wilson_interval(n_noise, n)
        if lo > self.settings.noise_warning:
            findings.append(Finding(
                id="clusters-noise", check="clusters", severity="warning",
                title=f"{n_noise / n:.0%} of points belong to no cluster",
                summary=("HDBSCAN leaves most points as noise: the latents show little "
                         "density-separated structure at this scale."),
                metric="clusters.noise_fraction", value=n_noise / n,
                threshold=self.settings.noise_warning, ci=(lo, hi),
                evidence_ids=tuple(ids[labels == -1][:50])))
        score = np.where(labels >= 0, cl.probabilities, 0.0)
        return CheckResult(
            check=self.name, status="ok", metrics=metrics, findings=tuple(findings),
            per_sample={"cluster": labels, "clusters_score": score},
            display=({"kind": "cluster_sizes"},
                     *({"kind": "composition", "column": c} for c in comp)),
            tables={"sizes": [{"cluster": int(c), "n": int(s)} for c, s in enumerate(sizes)]
                    + [{"cluster": -1, "n": n_noise}],
                    "composition": comp,
                    "exemplars": {int(c): [str(i) for i in ids[e]]
                                  for c, e in cl.exemplars.items()}})
