"""Comparing two latent spaces of the same points (a baseline and a candidate model).

The core of ``latent-audit compare``, as plain functions over arrays: matching points by id
(:mod:`.match`), similarity metrics and deltas of two audits' metrics (:mod:`.metrics`),
where neighbourhoods changed (:mod:`.neighbourhoods`), how clusters map across
(:mod:`.clusters`), what the model encodes now (:mod:`.probes`) and which findings appeared,
were resolved or persisted (:mod:`.findings_diff`), how coverage of a shared reference changed
(:mod:`.coverage`). Each returns plain results and ``Finding``s with ``check="compare"``;
randomness comes only through a ``numpy.random.Generator`` argument (a named stream).
"""
from ._space import analysis_space, cluster_space, exact_neighbours
from .clusters import ClusterMapping, cluster_labels, cluster_mapping
from .coverage import CoverageChange, coverage_change
from .findings_diff import FindingsDiff, diff_findings, diff_summary
from .match import Matched, match_ids
from .metrics import delta_metrics, similarity_metrics
from .probes import ProbeChange, probe_changes, probe_findings, probe_metrics
from .neighbourhoods import (
                    NeighbourhoodChange,
                    neighbourhood_change,
                    neighbourhood_regions,
                    neighbourhood_scores,
)
from .run import COMPARISON_SCHEMA, Comparison, Side, compare, load_side

__all__ = ["COMPARISON_SCHEMA", "Comparison", "Side", "compare", "load_side",
           "ClusterMapping", "CoverageChange", "FindingsDiff", "Matched",
           "NeighbourhoodChange", "ProbeChange",
           "analysis_space", "diff_findings", "diff_summary", "probe_changes",
           "probe_findings", "probe_metrics",
           "cluster_labels", "cluster_mapping", "cluster_space", "coverage_change",
           "delta_metrics",
           "exact_neighbours", "match_ids", "neighbourhood_change", "neighbourhood_regions",
           "neighbourhood_scores", "similarity_metrics"]
