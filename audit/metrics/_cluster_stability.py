"""Whether a density clustering is real structure or ripples at its resolution limit.

HDBSCAN on a single blob finds a few small clusters at the smallest allowed cluster size:
density ripples. They vanish when that size doubles, while separate groups survive
(:func:`survives_coarser`).
"""
from __future__ import annotations

import numpy as np

from ._validation import validate_int, validate_matrix

__all__ = ["survives_coarser"]


def survives_coarser(x, min_cluster_size: int, min_samples: int, *, random_state=None,
                     max_size: int = 5000) -> bool:
    """Whether HDBSCAN still finds a cluster at twice ``min_cluster_size``.

    Parameters
    ----------
    x : array-like of shape (n, d)
        The points clustered (the clustering's own space).
    min_cluster_size : int
        The clustering's smallest cluster size, ``>= 1``; doubled here (at least 5).
    min_samples : int
        The clustering's ``min_samples``, ``>= 1`` (capped at the doubled size).
    random_state : int, numpy Generator or None, default=None
        Source of the sample when ``n > max_size`` (a Generator is used as is).
    max_size : int, default=5000
        Above this many rows a seeded sample is clustered, ``min_cluster_size`` scaled
        with it.

    Returns
    -------
    survives : bool
        False also when the (sampled) set is too small for one doubled cluster.

    References
    ----------
    .. [1] R. J. G. B. Campello, D. Moulavi and J. Sander, "Density-Based Clustering Based
       on Hierarchical Density Estimates", PAKDD 2013.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> two = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(20, 1, (200, 2))])
    >>> survives_coarser(two, 15, 10, random_state=0)
    True
    """
    import hdbscan
    x = validate_matrix(x, "x", dtype=None)
    min_cluster_size = validate_int(min_cluster_size, "min_cluster_size", low=1)
    min_samples = validate_int(min_samples, "min_samples", low=1)
    max_size = validate_int(max_size, "max_size", low=1)
    rng = np.random.default_rng(random_state)
    n = len(x)
    m = int(min(n, max_size))
    idx = np.sort(rng.choice(n, m, replace=False)) if m < n else np.arange(n)
    mcs = max(5, int(round(2 * min_cluster_size * m / n)))
    if m <= mcs:
        return False
    labels = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=min(min_samples, mcs),
                             core_dist_n_jobs=1).fit(x[idx]).labels_
    return bool((labels >= 0).any())
