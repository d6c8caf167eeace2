"""The symmetric exact self-search (issue 17, item 1): each distance block serves both
of its row blocks, and the lists are identical to brute force and to the one-sided
search, ties and duplicates included, whichever library multiplies."""
from __future__ import annotations

import numpy as np
import pytest

from audit.metrics import _neighbors, knn

from test_knn_gemm import brute, planted


@pytest.mark.parametrize("nb", [1, 2, 3, 4, 5, 8, 13])
def test_round_robin_covers_every_pair_once_in_disjoint_rounds(nb):
    rounds = _neighbors._round_robin(nb)
    pairs = [p for r in rounds for p in r]
    assert sorted(pairs) == [(i, j) for i in range(nb) for j in range(i, nb)]
    for r in rounds:
        blocks = [b for p in r for b in set(p)]
        assert len(blocks) == len(set(blocks))          # no block twice in a round
    assert len(rounds) <= nb + 1


@pytest.mark.parametrize("lib", ["numpy", "torch"])
@pytest.mark.parametrize("n, dim, k, tile, block, grid", [
    (900, 6, 5, 64, 32, False),       # many blocks, full row groups
    (1111, 3, 7, 128, 50, False),     # partial last block, block not a multiple of 16
    (700, 4, 10, 64, 64, True),       # integer grid: ties everywhere
    (2048, 16, 15, 256, 256, False),  # the default block size
])
def test_symmetric_self_search_equals_brute_force(monkeypatch, lib, n, dim, k, tile,
                                                  block, grid):
    monkeypatch.setenv("LATENT_AUDIT_GEMM", lib)
    x = planted(n, dim, seed=n + dim, grid=grid)
    assert n > 2 * tile                                  # the symmetric path runs
    d, i = knn(x, k=k, tile_size=tile, block_size=block)
    bd, bi = brute(x, k)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=0, atol=0)


def test_symmetric_and_one_sided_searches_agree(monkeypatch):
    x = planted(1500, 8, seed=3)
    d1, i1 = knn(x, k=9, tile_size=128)
    monkeypatch.setattr(_neighbors, "_SYMMETRIC", False)
    d0, i0 = knn(x, k=9, tile_size=128)
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_array_equal(d1, d0)


def test_symmetric_search_of_far_apart_scales():
    # rows of very different norms share blocks: the screen's norm shift must not drop
    # a true neighbour of a small-norm row whose block partner has huge norms
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal((600, 5)) * 1e-3,
                        rng.standard_normal((600, 5)) * 1e3 + 1e4]).astype(np.float32)
    x = x[rng.permutation(len(x))]
    d, i = knn(x, k=6, tile_size=64)
    bd, bi = brute(x, 6)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=0, atol=0)
