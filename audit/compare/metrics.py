"""The comparison's flat metrics (``compare.*``) and the deltas of two audits' metrics
(``delta.*``)."""
from __future__ import annotations

import math

import numpy as np

from ..metrics import (
    cka_linear,
    linear_map_residual,
    mean_knn_overlap,
    procrustes_residual,
)

__all__ = ["delta_metrics", "similarity_metrics"]


def similarity_metrics(xb, xc, kb, kc, *, matched: float | None = None,
                       rng: np.random.Generator | None = None) -> dict[str, float]:
    """How similar two representations of the matched points are, as public metrics.

    * ``compare.matched``: share of points matched by id (``matched``, when given);
    * ``compare.cka_linear``, ``compare.cka_linear_debiased``: linear CKA of ``xb`` and
      ``xc`` (:func:`audit.metrics.cka_linear`), biased and debiased; 1 for a rotated and
      rescaled copy;
    * ``compare.knn_overlap``: mean over points of the Jaccard index of the two kNN sets
      ``|A_i & B_i| / |A_i | B_i|`` (:func:`audit.metrics.mean_knn_overlap`);
    * ``compare.procrustes_residual``: ``1 - nu^2`` after the best rotation and scale, the
      narrower side zero-padded (:func:`audit.metrics.procrustes_residual`), defined for
      any two dimensions;
    * ``compare.linear_map_residual``: ``1 - R^2`` of a least-squares linear map from the
      candidate to the baseline, fitted on a random half and scored on the other
      (:func:`audit.metrics.linear_map_residual`; the split is drawn from ``rng``).

    Undefined values (e.g. a side with zero variance) are ``nan``, with the metric
    layer's warning.

    Parameters
    ----------
    xb : array-like of shape (n, p)
        Baseline latents of the matched points: the analysis space the graphs were built
        in (:func:`audit.compare.analysis_space`), or the raw latents (the same values
        with ``scale="none"``: every metric here ignores translation, rotation and
        overall scale).
    xc : array-like of shape (n, q)
        Candidate latents of the same points; ``q`` may differ from ``p``.
    kb, kc : array-like of int, shape (n, k)
        Each point's neighbours in the baseline and in the candidate.
    matched : float, optional
        The share matched (:attr:`Matched.share`).
    rng : numpy.random.Generator, optional
        Draws the split of the linear-map residual; ``None``: a fixed split (seed 0).

    Returns
    -------
    dict
        ``{metric name: float}``.

    Examples
    --------
    >>> r = np.random.default_rng(0)
    >>> x = r.normal(size=(300, 4))
    >>> q = np.linalg.qr(r.normal(size=(4, 4)))[0]
    >>> from audit.metrics import knn
    >>> m = similarity_metrics(x, 2 * x @ q, knn(x, k=5)[1], knn(2 * x @ q, k=5)[1])
    >>> {k: round(v, 6) for k, v in m.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'compare.cka_linear': 1.0, 'compare.cka_linear_debiased': 1.0,
     'compare.knn_overlap': 1.0, 'compare.procrustes_residual': 0.0,
     'compare.linear_map_residual': 0.0}
    """
    seed = 0 if rng is None else int(rng.integers(2**31 - 1))
    out: dict[str, float] = {}
    if matched is not None:
        out["compare.matched"] = float(matched)
    out["compare.cka_linear"] = cka_linear(xb, xc)
    out["compare.cka_linear_debiased"] = cka_linear(xb, xc, debiased=True)
    out["compare.knn_overlap"] = mean_knn_overlap(kb, kc)
    out["compare.procrustes_residual"] = procrustes_residual(xb, xc)
    out["compare.linear_map_residual"] = linear_map_residual(xb, xc, random_state=seed)
    return out


def _finite(v) -> float | None:
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def delta_metrics(base_metrics: dict, cand_metrics: dict) -> dict[str, float]:
    """``delta.<metric>`` = candidate - baseline, for every metric both audits report with
    a finite value (names already starting with ``delta.`` are skipped), sorted by name.

    Parameters
    ----------
    base_metrics : dict
        The baseline audit's flat metrics (``findings.json``'s ``metrics``).
    cand_metrics : dict
        The candidate's.

    Returns
    -------
    dict
        ``{"delta.<metric>": float}``.

    Examples
    --------
    >>> delta_metrics({"coverage.coverage": 0.75, "clusters.count": 4, "a.b": None},
    ...               {"coverage.coverage": 0.5, "clusters.count": 6, "a.b": 1.0,
    ...                "only.candidate": 2.0})
    {'delta.clusters.count': 2.0, 'delta.coverage.coverage': -0.25}
    """
    out = {}
    for name in sorted(set(base_metrics) & set(cand_metrics)):
        if str(name).startswith("delta."):
            continue
        b, c = _finite(base_metrics[name]), _finite(cand_metrics[name])
        if b is not None and c is not None:
            out[f"delta.{name}"] = c - b
    return out
