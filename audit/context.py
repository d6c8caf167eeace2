"""The shared geometry every check reads, computed once and lazily.

Standardisation, PCA, the analysis space, one kNN graph, the 2-D map and the HDBSCAN
clusters live here so no check builds its own. Large inputs are fitted on a seeded
sample and extended to every point; ``describe()`` says when that happened.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from .config import AuditConfig, GeometryConfig
from .latents import LatentSet
from .errors import ConfigError
from .streams import stream as named_stream
from .metrics import hnsw_index, knn, knn_approximate, knn_recall, twonn_dimension
from .metrics._hdbscan_predict import approximate_predict_all

log = logging.getLogger("audit")

__all__ = ["Context", "Clusters", "Map2D"]


_PLACE_AMONG = 10_000
_EF_MAX = 512            # widest HNSW search knn_min_recall may ask for


@dataclass(frozen=True)
class Clusters:
    labels: np.ndarray            # (n,) int, -1 = noise
    probabilities: np.ndarray     # (n,) membership strength in [0, 1]
    outlier_scores: np.ndarray    # (n,) GLOSH in [0, 1], higher = more outlying
    exemplars: dict[int, np.ndarray]   # cluster -> indices of its most central members
    fit_size: int
    min_cluster_size: int
    min_samples: int

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max() + 1) if self.labels.size else 0


@dataclass(frozen=True)
class Map2D:
    coords: np.ndarray            # (n, 2)
    method: str
    fit_size: int


def _have_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class Context:
    """Lazily computed, read-only geometry of the data (and the reference, if any)."""

    def __init__(self, data: LatentSet, *, reference: LatentSet | None = None,
                 config: AuditConfig | None = None,
                 geometry: GeometryConfig | None = None, seed: int | None = None) -> None:
        self.data = data
        self.reference = reference
        self.config = config
        self.settings = geometry or (config.geometry if config else GeometryConfig())
        self.seed = seed if seed is not None else (config.seed if config else 0)
        self.attributes = list(config.attributes) if config else []
        self.protected = list(config.protected) if config else []
        self.outcome = config.outcome if config else None
        self.timings: dict[str, float] = {}
        self.knn_info: dict[str, dict[str, Any]] = {}
        if self.settings.knn == "approximate" and not _have_faiss():
            raise ConfigError("knn: approximate needs faiss: pip install 'latent-audit[fast]'",
                              key="geometry.knn",
                              source=config.config_path if config is not None else None)
        if reference is not None and reference.dim != data.dim:
            raise ValueError(f"reference has {reference.dim} dimensions, data has {data.dim}")

    # -- helpers -------------------------------------------------------------------
    def _timed(self, name: str, fn):
        t0 = time.perf_counter()
        log.info("geometry: %s ...", name)
        out = fn()
        self.timings[f"geometry.{name}"] = round(time.perf_counter() - t0, 3)
        return out

    def rng(self, stream: str) -> np.random.Generator:
        """The random stream named ``stream`` (e.g. ``"outliers.null"``), seeded from the
        run seed: reproducible, and never shared by two uses with different names."""
        return named_stream(self.seed, stream)

    def _sample(self, n: int, cap: int, stream: str) -> np.ndarray:
        if n <= cap:
            return np.arange(n)
        return np.sort(self.rng(stream).choice(n, cap, replace=False))

    @property
    def n(self) -> int:
        return self.data.n

    # -- scaling and PCA -----------------------------------------------------------
    @cached_property
    def _scaler(self) -> tuple[np.ndarray, np.ndarray]:
        x = self.data.latents
        mean = x.mean(axis=0, dtype=np.float64)
        std = x.std(axis=0, dtype=np.float64)
        return mean, np.where(std > 1e-12 * max(std.max(), 1e-30), std, 1.0)

    def scale(self, x: np.ndarray) -> np.ndarray:
        """Map latents (data or reference) into the chosen distance space, before PCA."""
        mean, std = self._scaler
        mode = self.settings.scale
        if mode == "l2":
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        out = x - mean
        if mode == "standard":
            out = out / std
        return out.astype(np.float32)

    @cached_property
    def standardized(self) -> np.ndarray:
        """Z-scored data latents (each dimension mean 0, variance 1), for linear probes."""
        mean, std = self._scaler
        return ((self.data.latents - mean) / std).astype(np.float32)

    @cached_property
    def pca(self) -> PCA:
        """PCA of the scaled data, fitted once (on a sample of at most 100,000 rows)."""
        def fit():
            x = self.scale(self.data.latents)
            idx = self._sample(len(x), 100_000, "geometry.pca.fit_rows")
            n_comp = int(min(x.shape[1], len(idx), 100))
            return PCA(n_components=n_comp, random_state=self.seed).fit(x[idx])
        return self._timed("pca", fit)

    @cached_property
    def space_dims(self) -> int:
        """Dimensions of the analysis space (all of them unless d > max_dims_exact)."""
        d = self.data.dim
        if d <= self.settings.max_dims_exact:
            return d
        cum = np.cumsum(self.pca.explained_variance_ratio_)
        return int(min(len(cum), np.searchsorted(cum, self.settings.pca_variance) + 1))

    def to_space(self, x: np.ndarray) -> np.ndarray:
        """Project latents into the analysis space where every distance is measured."""
        s = self.scale(x)
        if self.space_dims == self.data.dim:
            return s
        return self.pca.transform(s)[:, :self.space_dims].astype(np.float32)

    @cached_property
    def space(self) -> np.ndarray:
        return self.to_space(self.data.latents)

    @cached_property
    def reference_space(self) -> np.ndarray | None:
        return None if self.reference is None else self.to_space(self.reference.latents)

    # -- neighbours ----------------------------------------------------------------
    @property
    def k(self) -> int:
        return int(min(self.settings.k, self.n - 1))

    def _knn_method(self, n_points: int) -> str:
        """``exact`` or ``approximate`` for a search over ``n_points`` (geometry.knn)."""
        mode = self.settings.knn
        if mode != "auto":
            return mode
        if n_points <= self.settings.knn_exact_max:
            return "exact"
        if not _have_faiss():
            if not getattr(self, "_faiss_hint_logged", False):
                log.info("geometry: exact kNN over %d points; pip install 'latent-audit[fast]' "
                         "(faiss) would be faster", n_points)
                self._faiss_hint_logged = True
            return "exact"
        return "approximate"

    def _graph(self, name: str, x: np.ndarray, k: int, y: np.ndarray | None = None,
               y_name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The kNN graph of ``x`` (in ``y``, or itself), exact or approximate; an
        approximate graph's recall@k is measured against exact search on a seeded sample
        of at most 1,000 queries and recorded in ``knn_info``."""
        ref = x if y is None else y
        method = self._knn_method(max(len(x), len(ref)))
        if method == "exact":
            self.knn_info[name] = {"method": "exact"}
            return knn(x, k=k, y=y)
        params = {"m": 32, "ef_construction": 80, "ef_search": max(64, 2 * (k + 8))}
        # one index per searched set, reused: the reference's serves its own graph and
        # the data's neighbours among it (the single-threaded build is the costly part)
        key = y_name or name
        indexes = self.__dict__.setdefault("_hnsw", {})
        if key not in indexes:
            indexes[key] = hnsw_index(ref, m=params["m"],
                                      ef_construction=params["ef_construction"],
                                      random_state=self.seed)
        rows = self._sample(len(x), 1000, "geometry.knn.recall_queries")

        def sample_graph(search, **kw) -> np.ndarray:
            """Neighbours of the sample rows; a self search asks for one more and drops
            each row's own index."""
            if y is not None:
                return search(x[rows], y=y, k=k, **kw)[1]
            _, nb = search(x[rows], y=x, k=k + 1, **kw)
            return np.array([r[r != i][:k] for r, i in zip(nb, rows)])

        truth = sample_graph(knn)

        def sample_recall(ef: int) -> float:
            return knn_recall(sample_graph(knn_approximate, ef_search=ef,
                                           index=indexes[key]), truth)

        # widen the search until the sample reaches knn_min_recall (or ef hits its cap):
        # high intrinsic dimensions need it; the seeded sample keeps the choice reproducible
        target = self.settings.knn_min_recall
        while (target > 0 and params["ef_search"] < _EF_MAX
               and sample_recall(params["ef_search"]) < target):
            params["ef_search"] = min(2 * params["ef_search"], _EF_MAX)
        out = knn_approximate(x, k=k, y=y, ef_search=params["ef_search"],
                              index=indexes[key])
        recall = round(knn_recall(out[1][rows], truth), 5)
        self.knn_info[name] = {"method": "approximate", "index": "faiss.IndexHNSWFlat",
                               **params, "recall_at_k": recall,
                               "recall_queries": int(len(rows))}
        if recall < 0.9:
            log.warning("geometry: the approximate %s graph finds %.0f%% of the exact "
                        "neighbours (ef_search %d); set geometry.knn: exact, or lower "
                        "geometry.max_dims_exact to search fewer PCA dimensions",
                        name.replace("_", " "), 100 * recall, params["ef_search"])
        return out

    @cached_property
    def knn(self) -> tuple[np.ndarray, np.ndarray]:
        """The kNN graph of the data in the analysis space: (distances, indices), n×k."""
        if self.n < 3:
            raise ValueError("need at least 3 points for a neighbour graph")
        return self._timed("knn", lambda: self._graph("knn", self.space, self.k))

    @cached_property
    def reference_knn(self) -> tuple[np.ndarray, np.ndarray] | None:
        """kNN graph within the reference (same k), in the same space."""
        if self.reference is None:
            return None
        k = int(min(self.settings.k, self.reference.n - 1))
        return self._timed("reference_knn",
                           lambda: self._graph("reference_knn", self.reference_space, k,
                                               y_name="reference"))

    @cached_property
    def cross_knn(self) -> tuple[np.ndarray, np.ndarray] | None:
        """For every data point, its nearest reference points: (distances, indices), n×k."""
        if self.reference is None:
            return None
        k = int(min(self.settings.k, self.reference.n))
        return self._timed("cross_knn", lambda: self._graph("cross_knn", self.space, k,
                                                            y=self.reference_space,
                                                            y_name="reference"))

    @cached_property
    def intrinsic_dim(self) -> float:
        """TwoNN estimate of the intrinsic dimension of the data."""
        return twonn_dimension(self.knn[0])

    # -- clusters ------------------------------------------------------------------
    @cached_property
    def cluster_space(self) -> np.ndarray:
        dims = int(min(self.settings.cluster_dims, self.pca.n_components_))
        return self.pca.transform(self.scale(self.data.latents))[:, :dims].astype(np.float64)

    @cached_property
    def clusters(self) -> Clusters:
        """HDBSCAN on the leading PCA dimensions, fitted on a sample and extended."""
        return self._timed("clusters", self._fit_clusters)

    def _hdbscan_fit_predict(self, x: np.ndarray, stream: str
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, int]:
        """HDBSCAN fitted on a seeded sample of at most ``cluster_sample`` rows of ``x`` and
        extended to the rest with ``approximate_predict`` (vectorised:
        :func:`~audit.metrics._hdbscan_predict.approximate_predict_all`).

        Returns labels (-1 = noise), membership probabilities, GLOSH outlier scores (NaN
        as 0), the fitted sample size, min_cluster_size and min_samples. When the sample
        is too small for one cluster, every point is noise.
        """
        import hdbscan
        n = len(x)
        idx = self._sample(n, self.settings.cluster_sample, stream)
        mcs = self.settings.min_cluster_size or max(15, len(idx) // 100)
        ms = self.settings.min_samples or min(mcs, 10)
        labels = np.full(n, -1, dtype=np.int64)
        probs = np.zeros(n)
        glosh = np.zeros(n)
        if len(idx) <= mcs:
            return labels, probs, glosh, len(idx), mcs, ms
        clusterer = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=ms,
                                    prediction_data=len(idx) < n, core_dist_n_jobs=1)
        clusterer.fit(x[idx])
        labels[idx] = clusterer.labels_
        probs[idx] = clusterer.probabilities_
        glosh[idx] = np.nan_to_num(clusterer.outlier_scores_, nan=0.0)
        if len(idx) < n:
            rest = np.setdiff1d(np.arange(n), idx)
            # hdbscan's approximate_predict(_scores), vectorised (same answers, checked)
            lab, prob, score = approximate_predict_all(clusterer, x[rest],
                                                       n_jobs=os.cpu_count() or 1)
            labels[rest], probs[rest] = lab, prob
            glosh[rest] = np.nan_to_num(score, nan=0.0)
        return labels, probs, glosh, len(idx), mcs, ms

    def _fit_clusters(self) -> Clusters:
        labels, probs, glosh, fit_size, mcs, ms = self._hdbscan_fit_predict(
            self.cluster_space, "geometry.clusters.fit_rows")
        exemplars = {}
        for c in range(int(labels.max()) + 1):
            members = np.flatnonzero(labels == c)
            order = np.lexsort((glosh[members], -probs[members]))
            exemplars[c] = members[order[:5]]
        return Clusters(labels=labels, probabilities=probs, outlier_scores=np.clip(glosh, 0, 1),
                        exemplars=exemplars, fit_size=fit_size, min_cluster_size=mcs,
                        min_samples=ms)

    # -- 2-D map -------------------------------------------------------------------
    @cached_property
    def pca2d(self) -> np.ndarray:
        return self.pca.transform(self.scale(self.data.latents))[:, :2]

    def _map_method(self) -> str:
        m = self.settings.map
        if m == "auto":
            try:
                import umap  # noqa: F401
                return "umap"
            except ImportError:
                return "tsne"
        return m

    @cached_property
    def map2d(self) -> Map2D:
        """The 2-D map: fitted on at most ``map_sample`` points, the rest placed beside
        their nearest fitted neighbours."""
        return self._timed("map", self._fit_map)

    def _fit_map(self) -> Map2D:
        method = self._map_method()
        n = self.n
        if method == "pca" or self.data.dim < 2 or n < 10:
            coords = np.zeros((n, 2))
            coords[:, : min(2, self.pca2d.shape[1])] = self.pca2d[:, :2]
            return Map2D(coords=coords, method="pca", fit_size=n)
        x = self.space if self.space.shape[1] <= 50 else \
            self.pca.transform(self.scale(self.data.latents))[:, :50]
        idx = self._sample(n, self.settings.map_sample, "geometry.map.fit_rows")
        if method == "umap":
            try:
                import umap
            except ImportError as exc:
                raise ImportError("map: umap needs the 'umap' extra: "
                                  "pip install 'latent-audit[umap]'") from exc
            reducer = umap.UMAP(random_state=self.seed, n_jobs=1)
            fitted = reducer.fit_transform(x[idx])
        else:
            from sklearn.manifold import TSNE
            perplexity = float(min(30, max(5, (len(idx) - 1) / 3)))
            fitted = TSNE(n_components=2, init="pca", perplexity=perplexity, max_iter=500,
                          random_state=self.seed, n_jobs=1).fit_transform(x[idx])
        coords = np.empty((n, 2))
        coords[idx] = fitted
        if len(idx) < n:
            rest = np.setdiff1d(np.arange(n), idx)
            kk = int(min(5, len(idx)))
            d, nb = knn(x[rest], y=x[idx], k=kk)
            w = 1.0 / np.maximum(d, 1e-12)
            coords[rest] = (fitted[nb] * w[..., None]).sum(1) / w.sum(1, keepdims=True)
        return Map2D(coords=coords, method=method, fit_size=len(idx))

    def place_on_map(self, latents: np.ndarray) -> np.ndarray:
        """2-D map positions for new latents (e.g. reference points, hole centres): the
        PCA map's own projection, or, for t-SNE/UMAP, beside their 5 nearest data points
        (inverse-distance weights), as the map places points beyond its fitted sample.
        Above ``_PLACE_AMONG`` data points the neighbours are looked up among a seeded
        sample of that many, so placing M points costs O(M), not O(M·N)."""
        m = self.map2d
        latents = np.asarray(latents, dtype=np.float32)
        if m.method == "pca":
            out = np.zeros((len(latents), 2))
            proj = self.pca.transform(self.scale(latents))[:, :2]
            out[:, :proj.shape[1]] = proj
            return out
        among = self._sample(self.n, _PLACE_AMONG, "geometry.map.place_among")
        if self.space.shape[1] <= 50:
            x, y = self.space[among], self.to_space(latents)
        else:
            x = self.pca.transform(self.scale(self.data.latents[among]))[:, :50]
            y = self.pca.transform(self.scale(latents))[:, :50]
        d, nb = knn(y, y=x, k=int(min(5, len(among))))
        w = 1.0 / np.maximum(d, 1e-12)
        return (m.coords[among][nb] * w[..., None]).sum(1) / w.sum(1, keepdims=True)

    @cached_property
    def reference_map2d(self) -> np.ndarray | None:
        """The reference placed on the data's 2-D map (see ``place_on_map``)."""
        if self.reference is None:
            return None
        return self._timed("reference_map", lambda: self.place_on_map(self.reference.latents))

    @cached_property
    def reference_clusters(self) -> np.ndarray | None:
        """HDBSCAN labels of the reference (-1 noise), fitted like ``clusters`` (same PCA
        dimensions and settings, on a sample of at most ``cluster_sample`` points)."""
        if self.reference is None:
            return None

        def fit() -> np.ndarray:
            dims = int(min(self.settings.cluster_dims, self.pca.n_components_))
            x = self.pca.transform(self.scale(self.reference.latents))[:, :dims]
            return self._hdbscan_fit_predict(x.astype(np.float64), "geometry.reference_clusters.fit_rows")[0]
        return self._timed("reference_clusters", fit)

    def prepare(self) -> None:
        """Compute the geometry every run needs up front, so each stage is timed on its own
        (checks then only read it)."""
        self.knn
        self.intrinsic_dim
        self.clusters
        self.map2d
        if self.reference is not None:
            self.reference_knn
            self.cross_knn
        # the graphs are built: free the indexes, but the data's (coverage searches it
        # for the nearest data point of reference points its graphs leave unmarked)
        indexes = self.__dict__.get("_hnsw", {})
        for key in [k for k in indexes if k != "knn"]:
            del indexes[key]

    def nearest_data(self, points: np.ndarray) -> np.ndarray:
        """Distance from each of ``points`` (in the analysis space) to its nearest data
        point: through the data's approximate index when its graph is approximate, by
        exact search otherwise."""
        index = self.__dict__.get("_hnsw", {}).get("knn")
        if index is None:
            return knn(points, y=self.space, k=1)[0][:, 0]
        params = self.knn_info["knn"]
        return knn_approximate(points, k=1, y=self.space, ef_search=params["ef_search"],
                               index=index)[0][:, 0]

    # -- description ---------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What the geometry did, for the run record and the report."""
        out: dict[str, Any] = {
            "scale": self.settings.scale, "k": self.k,
            "space_dims": self.space_dims, "latent_dims": self.data.dim,
        }
        if "pca" in self.__dict__:
            ev = self.pca.explained_variance_ratio_
            out["pca_explained_variance"] = [round(float(v), 5) for v in ev[:20]]
            if self.space_dims < self.data.dim:
                out["space_variance_kept"] = round(float(ev[:self.space_dims].sum()), 5)
        if "clusters" in self.__dict__:
            c = self.clusters
            out["clusters"] = {"fit_size": c.fit_size, "n": self.n,
                               "min_cluster_size": c.min_cluster_size,
                               "min_samples": c.min_samples,
                               "dims": int(self.cluster_space.shape[1])}
        if "map2d" in self.__dict__:
            out["map"] = {"method": self.map2d.method, "fit_size": self.map2d.fit_size,
                          "n": self.n}
        metrics = {}
        if self.knn_info:
            out["knn"] = dict(self.knn_info)
        if "knn" in self.__dict__:
            metrics["geometry.intrinsic_dim"] = self.intrinsic_dim
            if self.knn_info.get("knn", {}).get("method") == "approximate":
                metrics["geometry.knn_recall"] = self.knn_info["knn"]["recall_at_k"]
        out["metrics"] = metrics
        return out
