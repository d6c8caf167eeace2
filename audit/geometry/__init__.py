"""The shared geometry of an audit, as plain functions (arrays and explicit parameters in,
arrays out; no config, no I/O, no global state).

``space``: the scaler, PCA and one ``project``; ``neighbors``: kNN graphs, exact or
approximate with measured recall; ``clusters``: HDBSCAN fitted on a sample and extended;
``map2d``: the 2-D map fitted on a sample, other points placed on it; ``record``: what
was done, for the run record. ``audit.context`` caches their products for one audit.
"""
from .clusters import Clusters, fit_clusters, fit_hdbscan
from .map2d import Map2D, fit_map, map_method, pca_map, place_on_map
from .neighbors import (
                    KnnGraph,
                    have_faiss,
                    knn_graph,
                    knn_method,
                    nearest,
                    neighbour_graph,
)
from .record import describe_geometry
from .space import (
                    Scaler,
                    analysis_dims,
                    fit_pca,
                    fit_scaler,
                    project,
                    sample_rows,
                    scale,
                    standardize,
                    unstandardize,
)

__all__ = ["Clusters", "KnnGraph", "Map2D", "Scaler", "analysis_dims", "describe_geometry",
           "fit_clusters", "fit_hdbscan", "fit_map", "fit_pca", "fit_scaler", "have_faiss",
           "knn_graph", "knn_method", "map_method", "nearest", "neighbour_graph", "pca_map",
           "place_on_map", "project", "sample_rows", "scale", "standardize",
           "unstandardize"]
