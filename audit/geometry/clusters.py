"""Density clusters: HDBSCAN fitted on a seeded sample and extended to every point."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..metrics._hdbscan_predict import approximate_predict_all
from .space import sample_rows

__all__ = ["Clusters", "fit_hdbscan", "fit_clusters", "exemplars"]


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


def fit_hdbscan(x: np.ndarray, *, rng: np.random.Generator, sample: int,
                min_cluster_size: int | None = None, min_samples: int | None = None,
                n_jobs: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, int]:
    """HDBSCAN fitted on a sample of at most ``sample`` rows of ``x`` (drawn from ``rng``)
    and extended to the rest with ``approximate_predict`` (vectorised:
    :func:`~audit.metrics._hdbscan_predict.approximate_predict_all`).

    ``min_cluster_size`` defaults to max(15, 1% of the sample), ``min_samples`` to
    min(min_cluster_size, 10). Returns labels (-1 = noise), membership probabilities,
    GLOSH outlier scores (NaN as 0), the fitted sample size, min_cluster_size and
    min_samples. When the sample is too small for one cluster, every point is noise.
    """
    import hdbscan
    n = len(x)
    idx = sample_rows(n, sample, rng)
    mcs = min_cluster_size or max(15, len(idx) // 100)
    ms = min_samples or min(mcs, 10)
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
                                                   n_jobs=n_jobs or os.cpu_count() or 1)
        labels[rest], probs[rest] = lab, prob
        glosh[rest] = np.nan_to_num(score, nan=0.0)
    return labels, probs, glosh, len(idx), mcs, ms


def exemplars(labels: np.ndarray, probabilities: np.ndarray, glosh: np.ndarray,
              per_cluster: int = 5) -> dict[int, np.ndarray]:
    """Each cluster's most central members: highest membership, then lowest GLOSH."""
    out = {}
    for c in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == c)
        order = np.lexsort((glosh[members], -probabilities[members]))
        out[c] = members[order[:per_cluster]]
    return out


def fit_clusters(x: np.ndarray, *, rng: np.random.Generator, sample: int,
                 min_cluster_size: int | None = None,
                 min_samples: int | None = None) -> Clusters:
    """HDBSCAN clusters of every row of ``x`` (see ``fit_hdbscan``), with exemplars."""
    labels, probs, glosh, fit_size, mcs, ms = fit_hdbscan(
        x, rng=rng, sample=sample, min_cluster_size=min_cluster_size,
        min_samples=min_samples)
    return Clusters(labels=labels, probabilities=probs,
                    outlier_scores=np.clip(glosh, 0, 1),
                    exemplars=exemplars(labels, probs, glosh), fit_size=fit_size,
                    min_cluster_size=mcs, min_samples=ms)
