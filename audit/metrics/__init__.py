"""Pure metric functions: arrays in, numbers out. No I/O, no config, no global state.

Anyone may import these without the rest of latent-audit.
"""
from ._neighbors import knn, knn_distance_score, twonn_dimension
from ._stats import (benjamini_hochberg, poisson_deficit_pvalue, poisson_excess_pvalue,
                     wilson_interval)

__all__ = [
    "benjamini_hochberg",
    "knn",
    "knn_distance_score",
    "twonn_dimension",
    "poisson_deficit_pvalue",
    "poisson_excess_pvalue",
    "wilson_interval",
]
