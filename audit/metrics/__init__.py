"""Pure metric functions: arrays in, numbers out. No I/O, no config, no global state.

Anyone may import these without the rest of latent-audit.
"""
from ._association import weat
from ._coverage import MISSING_GROUP, coverage, coverage_by_group, knn_radii, uncovered_mask
from ._disentanglement import (dci_scores, discretize, factor_entropy, mig_score,
                               modularity_score, mutual_info_matrix, sap_score)
from ._fairness import probe_leakage, rate_disparity, representation_test, residualize
from ._holes import find_holes, halfspace_depth, interpolation_risk
from ._neighbors import (hnsw_index, knn, knn_approximate, knn_distance_score, knn_recall,
                         twonn_dimension)
from ._probes import (attribute_association, direction_consistency, direction_cosines,
                      entanglement_analysis, joint_directions, leakage_matrix, partial_probes,
                      probe_score, shift_leakage)
from ._stats import (benjamini_hochberg, poisson_deficit_pvalue, poisson_excess_pvalue,
                     wilson_interval)

__all__ = [
    "MISSING_GROUP",
    "coverage",
    "coverage_by_group",
    "knn_radii",
    "uncovered_mask",
    "dci_scores",
    "discretize",
    "factor_entropy",
    "mig_score",
    "modularity_score",
    "mutual_info_matrix",
    "sap_score",
    "probe_leakage",
    "rate_disparity",
    "representation_test",
    "residualize",
    "weat",
    "attribute_association",
    "find_holes",
    "halfspace_depth",
    "interpolation_risk",
    "direction_consistency",
    "direction_cosines",
    "entanglement_analysis",
    "joint_directions",
    "leakage_matrix",
    "partial_probes",
    "probe_score",
    "shift_leakage",
    "benjamini_hochberg",
    "knn",
    "knn_approximate",
    "hnsw_index",
    "knn_recall",
    "knn_distance_score",
    "twonn_dimension",
    "poisson_deficit_pvalue",
    "poisson_excess_pvalue",
    "wilson_interval",
]
