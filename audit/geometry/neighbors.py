"""Neighbour graphs in the analysis space: exact, or approximate (HNSW, faiss) with the
search widened until a seeded sample of queries reaches a recall target."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics import hnsw_index, knn, knn_approximate, knn_recall
from .space import sample_rows

log = logging.getLogger("audit")

__all__ = ["KnnGraph", "have_faiss", "knn_method", "knn_graph", "neighbour_graph",
           "nearest"]

RECALL_QUERIES = 1000   # queries whose exact neighbours measure an approximate graph

EF_MAX = 512            # the widest HNSW search a recall target may ask for


def have_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def knn_method(mode: str, n_points: int, *, exact_max: int, faiss: bool) -> str:
    """``exact`` or ``approximate`` for a search over ``n_points``: ``mode`` unless it is
    ``auto``, which goes approximate above ``exact_max`` points when faiss is there."""
    if mode != "auto":
        return mode
    return "approximate" if n_points > exact_max and faiss else "exact"


@dataclass(frozen=True)
class KnnGraph:
    """A kNN graph, how it was searched (``info``: method, HNSW parameters, recall) and
    the HNSW index it searched (None when exact), for reuse."""
    distances: np.ndarray
    indices: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    index: Any = None


def knn_graph(x: np.ndarray, k: int, *, y: np.ndarray | None = None, method: str = "exact",
              index: Any = None, random_state: int = 0, recall_rows: np.ndarray | None = None,
              min_recall: float = 0.0) -> KnnGraph:
    """The kNN graph of ``x`` (in ``y``, or itself, each point excluding itself).

    Approximate: an HNSW index of ``y`` (built from ``random_state`` unless ``index`` is
    given) is searched; its recall@k is measured against exact search on ``recall_rows``
    (a seeded sample of the queries), and ``ef_search`` doubles from its base until that
    sample reaches ``min_recall`` (or ``EF_MAX``).
    """
    if method == "exact":
        d, i = knn(x, k=k, y=y)
        return KnnGraph(d, i, {"method": "exact"})
    ref = x if y is None else y
    params = {"m": 32, "ef_construction": 80, "ef_search": max(64, 2 * (k + 8))}
    if index is None:
        index = hnsw_index(ref, m=params["m"], ef_construction=params["ef_construction"],
                           random_state=random_state)
    rows = np.arange(len(x)) if recall_rows is None else recall_rows

    def sample_graph(search, **kw) -> np.ndarray:
        """Neighbours of the sample rows; a self search asks for one more and drops each
        row's own index."""
        if y is not None:
            return search(x[rows], y=y, k=k, **kw)[1]
        _, nb = search(x[rows], y=x, k=k + 1, **kw)
        return np.array([r[r != i][:k] for r, i in zip(nb, rows)])

    truth = sample_graph(knn)
    while (min_recall > 0 and params["ef_search"] < EF_MAX
           and knn_recall(sample_graph(knn_approximate, ef_search=params["ef_search"],
                                       index=index), truth) < min_recall):
        params["ef_search"] = min(2 * params["ef_search"], EF_MAX)
    d, i = knn_approximate(x, k=k, y=y, ef_search=params["ef_search"], index=index)
    recall = round(knn_recall(i[rows], truth), 5)
    info = {"method": "approximate", "index": "faiss.IndexHNSWFlat", **params,
            "recall_at_k": recall, "recall_queries": int(len(rows))}
    return KnnGraph(d, i, info, index)


def neighbour_graph(name: str, x: np.ndarray, k: int, *, y: np.ndarray | None = None,
                    mode: str = "auto", exact_max: int = 200_000, min_recall: float = 0.0,
                    index: Any = None, random_state: int = 0,
                    recall_rng: np.random.Generator | None = None,
                    hint: bool = True) -> KnnGraph:
    """The kNN graph ``name`` as ``geometry.knn`` asks (``mode``: auto, exact,
    approximate; auto goes approximate above ``exact_max`` points when faiss is there),
    its recall measured on ``RECALL_QUERIES`` queries drawn from ``recall_rng``. Logs a
    hint when faiss would help (``hint``) and a warning when the recall stays below 0.9."""
    n_points = max(len(x), len(x if y is None else y))
    faiss = have_faiss()
    method = knn_method(mode, n_points, exact_max=exact_max, faiss=faiss)
    if hint and mode == "auto" and n_points > exact_max and not faiss:
        log.info("geometry: exact kNN over %d points; pip install 'latent-audit[fast]' "
                 "(faiss) would be faster", n_points)
    rows = None if method == "exact" else \
        sample_rows(len(x), RECALL_QUERIES, recall_rng or np.random.default_rng(random_state))
    g = knn_graph(x, k, y=y, method=method, index=index, random_state=random_state,
                  recall_rows=rows, min_recall=min_recall)
    if g.info.get("recall_at_k", 1.0) < 0.9:
        log.warning("geometry: the approximate %s graph finds %.0f%% of the exact "
                    "neighbours (ef_search %d); set geometry.knn: exact, or lower "
                    "geometry.max_dims_exact to search fewer PCA dimensions",
                    name.replace("_", " "), 100 * g.info["recall_at_k"], g.info["ef_search"])
    return g


def nearest(points: np.ndarray | None, y: np.ndarray, k: int = 1, *,
            among: np.ndarray | None = None, index: Any = None,
            ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``y`` to each of ``points``: (distances, row indices of
    ``y``). ``among``: only these rows are searched; ``points=None``: the searched rows
    themselves, each excluding itself. ``index`` (an HNSW index of all of ``y``, with its
    ``ef_search``) is searched when given, else the search is exact."""
    if among is not None:
        d, nb = nearest(points, y[among], k)
        return d, among[nb]
    if points is None:
        return knn(y, k=k)
    points = np.asarray(points, dtype=np.float32)
    if index is None:
        return knn(points, y=y, k=k)
    return knn_approximate(points, k=k, y=y, ef_search=ef_search, index=index)
