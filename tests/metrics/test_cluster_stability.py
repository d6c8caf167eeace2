"""Tests for audit.metrics._cluster_stability: separate groups survive a doubled minimum
cluster size, a set too small for one doubled cluster does not, sampling is seeded."""
from __future__ import annotations

import numpy as np
import pytest

from audit.metrics._cluster_stability import survives_coarser


def test_separate_groups_survive_and_tiny_sets_do_not():
    rng = np.random.default_rng(0)
    two = np.concatenate([rng.normal(0, 1, (300, 2)), rng.normal(30, 1, (300, 2))])
    assert survives_coarser(two, 20, 10, random_state=0)
    assert not survives_coarser(two[:8], 5, 5, random_state=0)      # 8 <= 2 * 5
    # above max_size a seeded sample is clustered: the same seed gives the same answer
    a = survives_coarser(two, 20, 10, random_state=1, max_size=200)
    assert a == survives_coarser(two, 20, 10, random_state=1, max_size=200)


@pytest.mark.parametrize("kw", [{"min_cluster_size": 0}, {"min_samples": 0},
                                {"max_size": 0}])
def test_bad_input_raises(kw):
    args = {"min_cluster_size": 5, "min_samples": 5, **kw}
    with pytest.raises(ValueError):
        survives_coarser(np.zeros((20, 2)), **args)
