"""The shared geometry of one audit: a lazy cache over :mod:`audit.geometry`.

Each product (scaler, PCA, analysis space, kNN graphs, clusters, 2-D map) is computed on
first use, once, and timed into ``timings``; checks read the public members (listed in
docs/developing-checks.md) and never build their own.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import geometry as geo
from .config import AuditConfig, GeometryConfig
from .errors import ConfigError
from .geometry import Clusters, Map2D
from .latents import LatentSet
from .lazy import cached, timed_product
from .metrics import twonn_dimension
from .streams import stream as named_stream

__all__ = ["Context", "Clusters", "Map2D"]

_PLACE_AMONG = 10_000    # place_on_map looks among a seeded sample of this many points
_MAP_DIMS = 50           # the map is fitted on at most this many PCA components
class Context:
    """Lazily computed geometry of the data (and of the reference, if any); read-only."""

    def __init__(self, data: LatentSet, *, reference: LatentSet | None = None,
                 config: AuditConfig | None = None,
                 geometry: GeometryConfig | None = None, seed: int | None = None,
                 generated: Any = None) -> None:
        self.data, self.reference, self.config = data, reference, config
        #: a ``generator.GeneratedSet`` when the config has ``generator:`` (else None)
        self.generated = generated
        self.settings = geometry or (config.geometry if config else GeometryConfig())
        self.seed = seed if seed is not None else (config.seed if config else 0)
        self.attributes = list(config.attributes) if config else []
        self.protected = list(config.protected) if config else []
        self.outcome = config.outcome if config else None
        self.n, self.k = data.n, int(min(self.settings.k, data.n - 1))
        self.timings: dict[str, float] = {}
        self.knn_info: dict[str, dict[str, Any]] = {}
        self._indexes: dict[str, Any] = {}      # HNSW indexes kept, by the set they search
        self._projections: dict[int, np.ndarray] = {}
        if self.settings.knn == "approximate" and not geo.have_faiss():
            raise ConfigError("knn: approximate needs faiss: pip install 'latent-audit[fast]'",
                              key="geometry.knn", source=getattr(config, "config_path", None))
        if reference is not None and reference.dim != data.dim:
            raise ValueError(f"reference has {reference.dim} dimensions, data has {data.dim}")

    def rng(self, stream: str) -> np.random.Generator:
        """The random stream named ``stream`` (``"outliers.null"``), seeded from the run seed."""
        return named_stream(self.seed, stream)

    def sample_rows(self, rows: int | np.ndarray, cap: int, stream: str) -> np.ndarray:
        """At most ``cap`` of ``rows`` (a count or row indices) from stream ``stream``, sorted."""
        pool = np.arange(rows) if np.isscalar(rows) else np.asarray(rows)
        if len(pool) <= cap:
            return pool
        return np.sort(pool[geo.sample_rows(len(pool), cap, self.rng(stream))])

    def warm(self, *products: str) -> None:
        """Compute these products now (``"knn"``, ``"map2d"``, ...), each timed on its own."""
        for name in products:
            getattr(self, name)

    # -- the analysis space -------------------------------------------------------------
    @cached
    def _scaler(self) -> geo.Scaler:
        return geo.fit_scaler(self.data.latents, self.settings.scale)

    def scale(self, x: np.ndarray) -> np.ndarray:
        """Latents in the chosen distance space (``geometry.scale``), before PCA."""
        return geo.scale(x, self._scaler)

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """Latents z-scored with the data's mean and standard deviation."""
        return geo.standardize(x, self._scaler)

    def unstandardize(self, z: np.ndarray) -> np.ndarray:
        """The inverse of ``standardize``: z-scores back to latents (float64)."""
        return geo.unstandardize(z, self._scaler)

    @cached
    def standardized(self) -> np.ndarray:
        """The data latents z-scored (each dimension mean 0, variance 1), for probes."""
        return self.standardize(self.data.latents)

    @timed_product("pca")
    def pca(self):
        """sklearn PCA of the scaled data (fitted on at most 100,000 rows)."""
        return geo.fit_pca(self.scale(self.data.latents), random_state=self.seed,
                           rng=self.rng("geometry.pca.fit_rows"))

    @cached
    def space_dims(self) -> int:
        """Dimensions of the analysis space (all of them unless d > max_dims_exact)."""
        if self.data.dim <= self.settings.max_dims_exact:
            return self.data.dim
        return geo.analysis_dims(self.pca.explained_variance_ratio_, self.settings.pca_variance)

    def project(self, x: np.ndarray, dims: int | None = None) -> np.ndarray:
        """Latents onto the data's PCA, first ``dims`` components (None: analysis space)."""
        if dims is None and self.space_dims == self.data.dim:
            return geo.project(x, self._scaler, None, self.space_dims)     # no rotation
        return geo.project(x, self._scaler, self.pca, dims or self.space_dims)

    to_space = project           # latents in the analysis space

    def projected(self, dims: int | None) -> np.ndarray:
        """The data in its first ``dims`` PCA components (``None``: ``space``), cached."""
        if dims is None:
            return self.space
        if dims not in self._projections:
            self._projections[dims] = self.project(self.data.latents, dims)
        return self._projections[dims]

    @cached
    def space(self) -> np.ndarray:
        return self.project(self.data.latents)

    @cached
    def reference_space(self) -> np.ndarray | None:
        return None if self.reference is None else self.project(self.reference.latents)

    # -- neighbours ----------------------------------------------------------------------
    def _graph(self, name: str, x: np.ndarray, k: int, y: np.ndarray | None = None,
               searched: str = "data") -> tuple[np.ndarray, np.ndarray]:
        """A graph per ``geometry.knn``, keeping the HNSW index of the set it searched."""
        s = self.settings
        g = geo.neighbour_graph(name, x, k, y=y, mode=s.knn, exact_max=s.knn_exact_max,
                                min_recall=s.knn_min_recall, index=self._indexes.get(searched),
                                random_state=self.seed, hint=not self.knn_info,
                                recall_rng=self.rng("geometry.knn.recall_queries"))
        self.knn_info[name] = g.info
        if g.index is not None:
            self._indexes[searched] = g.index
        if {"reference_knn", "cross_knn"} <= set(self.knn_info):
            self._indexes.pop("reference", None)
        return g.distances, g.indices

    @timed_product("knn")
    def knn(self) -> tuple[np.ndarray, np.ndarray]:
        """The kNN graph of the data in the analysis space: (distances, indices), n×k."""
        if self.n < 3:
            raise ValueError("need at least 3 points for a neighbour graph")
        return self._graph("knn", self.space, self.k)

    @timed_product("reference_knn")
    def reference_knn(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The kNN graph within the reference (same k), in the same space."""
        if self.reference is None:
            return None
        k = int(min(self.settings.k, self.reference.n - 1))
        return self._graph("reference_knn", self.reference_space, k, searched="reference")

    @timed_product("cross_knn")
    def cross_knn(self) -> tuple[np.ndarray, np.ndarray] | None:
        """For every data point, its nearest reference points: (distances, indices), n×k."""
        return None if self.reference is None else self._graph(
            "cross_knn", self.space, int(min(self.settings.k, self.reference.n)),
            y=self.reference_space, searched="reference")

    def reference_radii(self, k: int) -> np.ndarray:
        """Each reference point's distance to its ``k``-th nearest reference point."""
        d = self.reference_knn[0]
        if k > d.shape[1]:
            d = self._graph(f"reference_knn_k{k}", self.reference_space, k,
                            searched="reference")[0]
        return d[:, k - 1]

    @cached
    def intrinsic_dim(self) -> float:
        """TwoNN estimate of the intrinsic dimension of the data."""
        return twonn_dimension(self.knn[0])

    def nearest(self, points: np.ndarray | None, k: int = 1, dims: int | None = None,
                among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest data points of ``points`` (in ``projected(dims)``):
        (distances, rows); see docs/developing-checks.md for ``among`` and ``None``."""
        index = self._indexes.get("data") if dims is None and among is None else None
        return geo.nearest(points, self.projected(dims), k, among=among, index=index,
                           ef_search=self.knn_info.get("knn", {}).get("ef_search"))

    def nearest_data(self, points: np.ndarray) -> np.ndarray:
        """Distance from each of ``points`` (analysis space) to its nearest data point."""
        return self.nearest(points, 1)[0][:, 0]

    # -- clusters and the 2-D map ----------------------------------------------------------
    @property
    def _cluster_dims(self) -> int:
        return int(min(self.settings.cluster_dims, self.pca.n_components_))

    @cached
    def cluster_space(self) -> np.ndarray:
        """The data in the leading ``cluster_dims`` PCA components, where HDBSCAN runs."""
        return self.project(self.data.latents, self._cluster_dims).astype(np.float64)

    def _clusters(self, x: np.ndarray, stream: str) -> Clusters:
        s = self.settings
        return geo.fit_clusters(x, rng=self.rng(stream), sample=s.cluster_sample,
                                min_cluster_size=s.min_cluster_size, min_samples=s.min_samples)

    @timed_product("clusters")
    def clusters(self) -> Clusters:
        """HDBSCAN on the leading PCA dimensions, fitted on a sample and extended."""
        return self._clusters(self.cluster_space, "geometry.clusters.fit_rows")

    @timed_product("reference_clusters")
    def reference_clusters(self) -> np.ndarray | None:
        """HDBSCAN labels of the reference (-1 noise), fitted like ``clusters``."""
        if self.reference is None:
            return None
        x = self.project(self.reference.latents, self._cluster_dims).astype(np.float64)
        return self._clusters(x, "geometry.reference_clusters.fit_rows").labels

    @timed_product("map")
    def map2d(self) -> Map2D:
        """The 2-D map: fitted on at most ``map_sample`` points, the rest placed."""
        method = geo.map_method(self.settings.map)
        if method == "pca" or self.data.dim < 2 or self.n < 10:
            return geo.pca_map(self.project(self.data.latents, 2))
        return geo.fit_map(self.projected(self._map_dims), method=method,
                           rng=self.rng("geometry.map.fit_rows"),
                           sample=self.settings.map_sample, random_state=self.seed)

    @property
    def _map_dims(self) -> int | None:
        return None if self.space_dims <= _MAP_DIMS else _MAP_DIMS

    def place_on_map(self, latents: np.ndarray) -> np.ndarray:
        """2-D map positions for other latents (beside their nearest data points)."""
        m, latents = self.map2d, np.asarray(latents, dtype=np.float32)
        if m.method == "pca":
            return geo.pca_map(self.project(latents, 2)).coords
        among = self.sample_rows(self.n, _PLACE_AMONG, "geometry.map.place_among")
        return geo.place_on_map(self.project(latents, self._map_dims),
                                self.projected(self._map_dims)[among], m.coords[among])

    @timed_product("reference_map")
    def reference_map2d(self) -> np.ndarray | None:
        """The reference placed on the data's 2-D map (see ``place_on_map``)."""
        return None if self.reference is None else self.place_on_map(self.reference.latents)

    def describe(self) -> dict[str, Any]:
        """What the geometry did, for the run record and the report."""
        done = self.__dict__
        return geo.describe_geometry(
            scale=self.settings.scale, k=self.k, space_dims=self.space_dims,
            latent_dims=self.data.dim, n=self.n, pca=done.get("pca"),
            clusters=done.get("clusters"), map2d=done.get("map2d"), knn_info=self.knn_info,
            cluster_dims=int(self.cluster_space.shape[1]) if "clusters" in done else 0,
            intrinsic_dim=self.intrinsic_dim if "knn" in done else None)
