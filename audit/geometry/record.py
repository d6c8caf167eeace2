"""What the geometry did, in plain data, for the run record (``run.geometry``)."""
from __future__ import annotations

from typing import Any

from .clusters import Clusters
from .map2d import Map2D

__all__ = ["describe_geometry"]


def describe_geometry(*, scale: str, k: int, space_dims: int, latent_dims: int, n: int,
                      pca=None, clusters: Clusters | None = None, cluster_dims: int = 0,
                      map2d: Map2D | None = None, knn_info: dict[str, Any] | None = None,
                      intrinsic_dim: float | None = None) -> dict[str, Any]:
    """The settings, the PCA variance kept, the samples the clusters and the map were
    fitted on, the graphs' methods and recall, and the geometry's metrics (what was not
    computed is left out)."""
    out: dict[str, Any] = {"scale": scale, "k": k, "space_dims": space_dims,
                           "latent_dims": latent_dims}
    if pca is not None:
        ev = pca.explained_variance_ratio_
        out["pca_explained_variance"] = [round(float(v), 5) for v in ev[:20]]
        if space_dims < latent_dims:
            out["space_variance_kept"] = round(float(ev[:space_dims].sum()), 5)
    if clusters is not None:
        out["clusters"] = {"fit_size": clusters.fit_size, "n": n,
                           "min_cluster_size": clusters.min_cluster_size,
                           "min_samples": clusters.min_samples, "dims": cluster_dims}
    if map2d is not None:
        out["map"] = {"method": map2d.method, "fit_size": map2d.fit_size, "n": n}
    if knn_info:
        out["knn"] = dict(knn_info)
    metrics = {}
    if intrinsic_dim is not None:
        metrics["geometry.intrinsic_dim"] = intrinsic_dim
        if (knn_info or {}).get("knn", {}).get("method") == "approximate":
            metrics["geometry.knn_recall"] = knn_info["knn"]["recall_at_k"]
    out["metrics"] = metrics
    return out
