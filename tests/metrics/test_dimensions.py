"""Per-dimension statistics (audit/metrics/_dimensions.py): chunked variance against numpy,
and the dead-dimension test on planted collapsed dimensions."""
from __future__ import annotations

import numpy as np
import pytest

from audit.metrics._dimensions import column_variance, dead_dimension_test


@pytest.mark.parametrize("chunk", [1, 7, 65_536])
def test_column_variance_matches_numpy(chunk):
    x = (np.random.default_rng(0).normal(size=(101, 5)) * [1, 10, 0.1, 0, 3] + 5) \
        .astype(np.float32)
    assert np.allclose(column_variance(x, chunk=chunk), x.astype(np.float64).var(axis=0),
                       rtol=1e-12, atol=1e-15)


def _code(seed=0, n=2000):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)) * [1.0, 2.0, 0.5, 1.0, 0.003, 0.0]


def test_planted_dead_dimensions_are_significant_and_live_ones_are_not():
    z = _code()
    res = dead_dimension_test(z, z[:500], threshold=0.01, n_bootstrap=100, random_state=0)
    ratio, p = res["variance_ratio"], res["p_value"]
    med = np.median(z.var(axis=0)[z.var(axis=0) > 0])
    assert np.allclose(ratio, z.var(axis=0) / med)
    assert p[4] < 1e-3 and p[5] == 0.0          # collapsed; constant (no spread: p by rule)
    assert np.all(p[:4] > 0.5)
    lo, hi = res["ci"]
    assert np.all(lo[:5] <= ratio[:5] * 1.5) and np.all(hi[:5] >= ratio[:5] / 1.5)


def test_a_generator_and_its_seed_give_the_same_draws():
    z = _code(1, n=300)
    a = dead_dimension_test(z, z, n_bootstrap=30, random_state=np.random.default_rng(5))
    b = dead_dimension_test(z, z, n_bootstrap=30, random_state=5)
    assert np.array_equal(a["p_value"], b["p_value"])


def test_no_variation_at_all_gives_no_test():
    z = np.ones((50, 3))
    res = dead_dimension_test(z, z, n_bootstrap=10, random_state=0)
    assert res["p_value"] is None and res["ci"] is None
    assert np.all(np.isnan(res["variance_ratio"]))


@pytest.mark.parametrize("kw,match", [
    ({"threshold": 0.0}, "threshold"), ({"threshold": 1.0}, "threshold"),
    ({"n_bootstrap": 1}, "n_bootstrap"), ({"confidence": 1.0}, "confidence"),
])
def test_invalid_options_are_rejected(kw, match):
    z = _code(n=50)
    with pytest.raises(ValueError, match=match):
        dead_dimension_test(z, z, **kw)


def test_invalid_arrays_are_rejected():
    z = _code(n=50)
    with pytest.raises(ValueError, match="2-D"):
        dead_dimension_test(z[:, 0], z)
    with pytest.raises(ValueError, match="columns"):
        dead_dimension_test(z, z[:, :3])
    with pytest.raises(ValueError, match="at least 2 rows"):
        dead_dimension_test(z, z[:1])
    with pytest.raises(ValueError, match="chunk"):
        column_variance(z, chunk=0)
