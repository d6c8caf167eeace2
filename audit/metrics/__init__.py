"""Pure metric functions: arrays in, numbers out. No I/O, no config, no global state.

Anyone may import these without the rest of latent-audit. Each name is imported from its
module on first use, so ``audit.metrics._validation`` (or one metric) does not pull in torch
and scikit-learn with it.
"""
from __future__ import annotations

import importlib
from typing import Any

#: module -> the public names it holds
_MODULES: dict[str, tuple[str, ...]] = {
    "_association": ("weat", "weat_normal_pvalue", "weat_test",),
    "_cluster_stability": ("survives_coarser",),
    "_contingency": ("fit_margins", "expected_counts", "cell_deficit_pvalues",),
    "_coverage": ("coverage", "coverage_by_group", "knn_radii", "uncovered_mask",
                  "uncovered_from_graph",),
    "_dimensions": ("column_variance", "dead_dimension_test",),
    "_direction_consistency": ("direction_consistency",),
    "_directions": ("attribute_association", "direction_cosines", "joint_directions",
                    "leakage_matrix", "partial_probes",),
    "_disentanglement": ("discretize", "factor_entropy", "mig_score", "modularity_score",
                         "mutual_info_matrix",),
    "_duplicates": ("local_spacing", "near_duplicate_mask", "near_duplicate_chance_rate",),
    "_edit_leakage": ("entanglement_analysis", "shift_leakage",),
    "_enclosure": ("halfspace_depth",),
    "_gen_fidelity": ("null_precision", "prdc_indicators", "prdc_intervals", "realism_score",),
    "_fairness": ("rate_disparity", "representation_test", "top_fraction",),
    "_gen_attributes": ("probe_read_levels", "share_comparison", "newcombe_interval",),
    "_gen_editing": ("readout_probe", "prior_direction", "edit_effects",),
    "_gen_holes": ("neighbour_realism", "prior_regions", "assign_regions", "rate_excess_test",
                   "prior_plane",),
    "_gen_memorization": ("copy_ratios", "loo_nearest_null", "copy_test",),
    "_gen_smoothness": ("interpolate_prior", "path_step_lengths", "step_jump_threshold",
                        "jump_concentration", "jump_regions", "jump_region_test",
                        "JumpRegionTest", "jump_direction_groups", "fit_jump_plane",
                        "plane_crossing_test", "PlaneCrossingTest",),
    "_holes": ("find_holes", "interpolation_risk",),
    "_neighbors": ("hnsw_index", "knn", "knn_approximate", "knn_distance_score", "knn_recall",
                   "twonn_dimension",),
    "_outliers": ("isolation_ratio", "bootstrap_ratio_ci", "radial_profile",
                  "null_isolation_max",),
    "_probe_leakage": ("probe_leakage", "residualize",),
    "_probes": ("probe_score", "logistic_probe", "out_of_fold",),
    "_regions": ("chance_uncovered_rate", "depth_pvalue", "uncovered_depth", "gap_regions",),
    "_sap_dci": ("dci_scores", "sap_score",),
    "_similarity": ("cka_linear", "knn_overlap", "linear_map_residual", "mean_knn_overlap",
                    "procrustes_residual",),
    "_stats": ("benjamini_hochberg", "poisson_critical_count", "poisson_deficit_pvalue",
               "poisson_excess_pvalue", "wilson_interval",),
    "_validation": ("MISSING_GROUP", "is_missing",),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
