"""``clusters``: HDBSCAN cluster sizes, noise share, and what each cluster is made of.

The clusters come from the shared geometry (``ctx.clusters``); what each is made of from
:func:`audit.checks._composition.composition`; whether a noisy clustering is real
structure from :func:`audit.metrics._cluster_stability.survives_coarser`.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from ..context import Context
from ..findings import CheckResult, Finding
from ..metrics import wilson_interval
from ..metrics._cluster_stability import survives_coarser
from ._composition import composition
from .base import Check, CheckSettings, register

__all__ = ["ClustersCheck", "composition", "survives_coarser"]


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
                                             cl.min_samples,
                                             random_state=ctx.rng("clusters.stability"))
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
