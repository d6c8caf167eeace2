"""The 2-D map: t-SNE, UMAP or PCA, fitted on a seeded sample; other points placed beside
their nearest fitted neighbours."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..metrics import knn
from .space import sample_rows

__all__ = ["Map2D", "map_method", "pca_map", "fit_map", "place_on_map"]


@dataclass(frozen=True)
class Map2D:
    coords: np.ndarray            # (n, 2)
    method: str
    fit_size: int


def map_method(setting: str) -> str:
    """The map method for ``geometry.map``: ``auto`` is UMAP when installed, else t-SNE."""
    if setting == "auto":
        try:
            import umap  # noqa: F401
            return "umap"
        except ImportError:
            return "tsne"
    return setting


def place_on_map(points: np.ndarray, among: np.ndarray, coords: np.ndarray,
                 k: int = 5) -> np.ndarray:
    """Map positions of ``points``: the inverse-distance-weighted mean of the positions
    ``coords`` of their ``k`` nearest rows of ``among`` (same space as ``points``)."""
    d, nb = knn(points, y=among, k=int(min(k, len(among))))
    w = 1.0 / np.maximum(d, 1e-12)
    return (coords[nb] * w[..., None]).sum(1) / w.sum(1, keepdims=True)


def pca_map(pca2d: np.ndarray) -> Map2D:
    """The map of the first two principal components (zeros where there are fewer)."""
    coords = np.zeros((len(pca2d), 2))
    coords[:, : min(2, pca2d.shape[1])] = pca2d[:, :2]
    return Map2D(coords=coords, method="pca", fit_size=len(pca2d))


def fit_map(x: np.ndarray, *, method: str, rng: np.random.Generator, sample: int,
            random_state: int) -> Map2D:
    """The 2-D map of the rows of ``x``: ``method`` (``tsne`` or ``umap``) fitted on at
    most ``sample`` rows drawn from ``rng``, the rest placed with ``place_on_map``."""
    n = len(x)
    idx = sample_rows(n, sample, rng)
    if method == "umap":
        try:
            import umap
        except ImportError as exc:
            raise ImportError("map: umap needs the 'umap' extra: "
                              "pip install 'latent-audit[umap]'") from exc
        fitted = umap.UMAP(random_state=random_state, n_jobs=1).fit_transform(x[idx])
    else:
        from sklearn.manifold import TSNE
        perplexity = float(min(30, max(5, (len(idx) - 1) / 3)))
        fitted = TSNE(n_components=2, init="pca", perplexity=perplexity, max_iter=500,
                      random_state=random_state, n_jobs=1).fit_transform(x[idx])
    coords = np.empty((n, 2))
    coords[idx] = fitted
    if len(idx) < n:
        rest = np.setdiff1d(np.arange(n), idx)
        coords[rest] = place_on_map(x[rest], x[idx], fitted)
    return Map2D(coords=coords, method=method, fit_size=len(idx))
