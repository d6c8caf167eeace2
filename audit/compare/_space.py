"""Each side of a comparison in its own analysis space, measured as an audit would.

These wrap ``audit.geometry`` (scaler, PCA, projection, exact kNN) with the audit's
defaults (``geometry.scale``, ``max_dims_exact``, ``pca_variance``, ``cluster_dims``), so
a comparison and an audit of the same latents measure in the same space.
"""
from __future__ import annotations

import numpy as np

from .. import geometry as geo

__all__ = ["analysis_space", "cluster_space", "exact_neighbours"]


def _pca(scaled: np.ndarray, rng: np.random.Generator):
    return geo.fit_pca(scaled, rng=rng, random_state=int(rng.integers(2**31 - 1)))


def analysis_space(x: np.ndarray, *, rng: np.random.Generator, scale: str = "none",
                   max_dims_exact: int = 64, pca_variance: float = 0.99) -> np.ndarray:
    """``x`` scaled with its own scaler (``geometry.scale``) and, when it has more than
    ``max_dims_exact`` dimensions, projected on its leading PCA components explaining
    ``pca_variance`` of the variance (float32), as ``Context.space`` does. ``rng`` draws
    the PCA's fitting rows and seed (nothing is drawn when no PCA is needed)."""
    x = np.asarray(x)
    scaler = geo.fit_scaler(x, scale)
    if x.shape[1] <= max_dims_exact:
        return geo.project(x, scaler, None, x.shape[1])
    pca = _pca(geo.scale(x, scaler), rng)
    dims = geo.analysis_dims(pca.explained_variance_ratio_, pca_variance)
    return geo.project(x, scaler, pca, dims)


def cluster_space(x: np.ndarray, *, rng: np.random.Generator, scale: str = "none",
                  cluster_dims: int = 10) -> np.ndarray:
    """``x`` scaled and projected on its leading ``cluster_dims`` PCA components
    (float64), where the audit fits HDBSCAN (``Context.cluster_space``)."""
    x = np.asarray(x)
    scaler = geo.fit_scaler(x, scale)
    pca = _pca(geo.scale(x, scaler), rng)
    dims = int(min(cluster_dims, pca.n_components_))
    return geo.project(x, scaler, pca, dims).astype(np.float64)


def exact_neighbours(name: str, space: np.ndarray, k: int) -> np.ndarray:
    """Indices (n x k) of each point's ``k`` nearest other points in ``space``, by exact
    search through the shared graph code (``geometry.neighbour_graph``)."""
    return geo.neighbour_graph(name, space, k, mode="exact", hint=False).indices
