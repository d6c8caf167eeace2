"""``clusters``: HDBSCAN cluster sizes, noise share, and what each cluster is made of."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from ..columns import bin_values, is_numeric, quantile_edges
from ..context import Context
from ..findings import CheckResult, Finding
from ..metrics import wilson_interval
from .base import Check, CheckSettings, register


def _binned(ser: pd.Series, bins: int, edges: np.ndarray | None = None
            ) -> tuple[pd.Series, list[str] | None]:
    """Numeric columns (see :mod:`audit.columns`) become quantile bins 'low–high', in order."""
    if edges is None:
        if not is_numeric(ser):
            return ser, None
        edges = quantile_edges(ser, bins)
    if len(edges) < 2 or not pd.api.types.is_numeric_dtype(ser):
        return ser, None
    labels, names = bin_values(ser, edges)
    return pd.Series(labels, index=ser.index, dtype=object), names


def composition(values: pd.Series, labels: np.ndarray, *, top: int = 10,
                bins: int = 4, edges: np.ndarray | None = None) -> dict:
    """Per cluster, the most common values of one column (numeric columns binned by quantile).

    Returns ``{"values": [...], "clusters": [{"cluster", "n", "top": [{"value", "share",
    "overall_share"}]}]}`` where ``values`` lists the column's values in display order.
    """
    ser, order = _binned(values.reset_index(drop=True), bins, edges)
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


def survives_coarser(x: np.ndarray, min_cluster_size: int, min_samples: int, *,
                     rng: np.random.Generator, max_size: int = 5000) -> bool:
    """Whether HDBSCAN still finds a cluster at twice ``min_cluster_size``.

    Clusters that vanish when the smallest allowed cluster doubles are density ripples at
    the resolution limit (a single blob shows a few); separate groups survive. Above
    ``max_size`` rows a seeded sample is clustered, ``min_cluster_size`` scaled with it.
    """
    import hdbscan
    n = len(x)
    m = int(min(n, max_size))
    idx = np.sort(rng.choice(n, m, replace=False)) if m < n else np.arange(n)
    mcs = max(5, int(round(2 * min_cluster_size * m / n)))
    if m <= mcs:
        return False
    labels = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=min(min_samples, mcs),
                             core_dist_n_jobs=1).fit(x[idx]).labels_
    return bool((labels >= 0).any())


@register
class ClustersCheck(Check):
    """Cluster structure of the latents (HDBSCAN on the shared cluster space)."""

    name = "clusters"
    produces: ClassVar[tuple[str, ...]] = (
        "clusters.count",
        "clusters.noise_fraction",
        "clusters.largest_fraction",
    )

    class Settings(CheckSettings):
        noise_warning: float = Field(0.5, gt=0, le=1, description=(
            "warn when the noise share's lower 95% bound exceeds this beside clusters that "
            "hold at twice min_cluster_size (no cluster at all, or only clusters that "
            "vanish there, is one blob: reported as info)"))

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
        if cl.n_clusters == 0:
            # HDBSCAN found no density split at all: the latents are one blob (or spread
            # evenly). That describes the geometry; it is not evidence of a defect.
            findings.append(Finding(
                id="clusters-none", check="clusters", severity="info",
                title="No cluster structure: the latents form one group",
                summary=("HDBSCAN finds no density-separated groups at this scale "
                         f"(min_cluster_size {cl.min_cluster_size}): the points form a "
                         "single blob, as a VAE's latents often do. Not a finding against "
                         "the model; the per-cluster views below are empty."),
                metric="clusters.noise_fraction", value=n_noise / n, ci=(lo, hi)))
        elif lo > self.settings.noise_warning:
            # Warn only when the clusters are real groups: ripples in one blob vanish
            # when the smallest allowed cluster doubles.
            blob_like = not survives_coarser(ctx.cluster_space, cl.min_cluster_size,
                                             cl.min_samples, rng=ctx.rng("clusters.stability"))
            findings.append(Finding(
                id="clusters-noise", check="clusters",
                severity="info" if blob_like else "warning",
                title=f"{n_noise / n:.0%} of points belong to no cluster",
                summary=(("HDBSCAN leaves most points as noise and its few clusters vanish "
                          "at twice min_cluster_size: they are density ripples in one "
                          "group, not separate groups. A description, not a defect.")
                         if blob_like else
                         ("HDBSCAN leaves most points as noise beside clusters that hold at "
                          "twice min_cluster_size: most points lie in a diffuse background "
                          "between density-separated groups.")),
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
