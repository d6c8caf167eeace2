"""The tiled exact kNN against brute force; the approximate (faiss HNSW) graph, its
recall and how the shared geometry chooses between them."""
from __future__ import annotations

import builtins
import logging

import numpy as np
import pandas as pd
import pytest

from audit.config import GeometryConfig
from audit.context import Context
from audit.geometry import sample_rows
from audit.errors import ConfigError
from audit.latents import LatentSet
from audit.metrics import hnsw_index, knn, knn_approximate, knn_recall
from test_neighbors import brute      # the brute-force reference of the exact search


def blobs(n, d, seed=0, centres=8):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d)) * 4
    return (c[rng.integers(0, centres, n)] + rng.standard_normal((n, d))).astype(np.float32)


def grid(n, seed=0):
    """Integer points in 3-D: many exact ties, and exact duplicates."""
    x = np.random.default_rng(seed).integers(0, 4, size=(n, 3)).astype(np.float32)
    x[50] = x[10]
    return x


# sizes where the reference is split into tiles (n_ref > 2 * tile), with block and tile
# sizes that do not divide N and a tile that is not a multiple of the screening groups
TILED = [(37, 100), (64, 256), (1000, 333), (1, 50)]


@pytest.mark.parametrize("block,tile", TILED)
@pytest.mark.parametrize("k", [1, 6, 15])
def test_tiled_self_search_matches_brute_force(block, tile, k):
    x = blobs(1501, 9, seed=k)
    d, i = knn(x, k=k, block_size=block, tile_size=tile)
    bd, bi = brute(x, k)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block,tile", TILED)
def test_tiled_ties_and_duplicates_break_by_index(block, tile):
    x = grid(1203)
    d, i = knn(x, k=12, block_size=block, tile_size=tile)
    bd, bi = brute(x, 12)
    np.testing.assert_array_equal(d, bd)
    np.testing.assert_array_equal(i, bi)
    assert not (i == np.arange(len(x))[:, None]).any()       # never itself ...
    assert d[10, 0] == 0 and 50 in i[10] and 10 in i[50]      # ... but its copy, at 0


@pytest.mark.parametrize("block,tile", TILED)
def test_tiled_cross_search_matches_brute_force(block, tile):
    x, y = grid(700, seed=1), grid(901, seed=2)
    d, i = knn(x, k=9, y=y, block_size=block, tile_size=tile)
    bd, bi = brute(x, 9, y)
    np.testing.assert_array_equal(d, bd)
    np.testing.assert_array_equal(i, bi)
    x, y = blobs(500, 7, seed=3), blobs(1100, 7, seed=4)
    d, i = knn(x, k=20, y=y, block_size=block, tile_size=tile)
    bd, bi = brute(x, 20, y)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-12, atol=1e-12)


def test_tiled_search_of_sorted_data_and_far_from_origin():
    # clusters stored one after another (the first tiles are unrepresentative), and points
    # far from the origin, where float32 |q|^2 + |y|^2 - 2 q.y loses the small distances
    x = blobs(1600, 5, seed=5, centres=4)
    x = x[np.argsort(x[:, 0])] + np.float32(300)
    d, i = knn(x, k=7, block_size=100, tile_size=128)
    bd, bi = brute(x, 7)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-12, atol=1e-12)


def test_tiled_search_with_k_close_to_n():
    x = blobs(300, 4, seed=6)
    d, i = knn(x, k=299, tile_size=64, block_size=50)
    bd, bi = brute(x, 299)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-12, atol=1e-12)


def test_knn_size_arguments_are_validated():
    x = blobs(50, 3)
    with pytest.raises(ValueError, match="tile_size"):
        knn(x, k=2, tile_size=8)
    with pytest.raises(ValueError, match="block_size"):
        knn(x, k=2, block_size=0)


def test_knn_recall_counts_shared_neighbours():
    assert knn_recall([[1, 2, 3], [4, 5, 6]], [[3, 2, 1], [4, 0, 9]]) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="same"):
        knn_recall([[1, 2]], [[1, 2, 3]])


# -- approximate -----------------------------------------------------------------------

def test_approximate_graph_recall_ordering_and_seed():
    pytest.importorskip("faiss")
    x = blobs(4000, 16, seed=7)
    d, i = knn_approximate(x, k=10, random_state=3)
    _, exact = knn(x, k=10)
    assert knn_recall(i, exact) >= 0.9
    assert not (i == np.arange(len(x))[:, None]).any()
    # distances are exact float64 for the returned points, ascending, ties by index
    ref = np.linalg.norm(x[:, None, :].astype(np.float64) - x[i].astype(np.float64), axis=2)
    np.testing.assert_allclose(d, ref, rtol=1e-12)
    assert (np.diff(d, axis=1) >= 0).all()
    tie = np.diff(d, axis=1) == 0
    assert (np.diff(i, axis=1)[tie] > 0).all()
    d2, i2 = knn_approximate(x, k=10, random_state=3)
    np.testing.assert_array_equal(i, i2)
    np.testing.assert_array_equal(d, d2)


def test_approximate_cross_search_and_exact_duplicates():
    pytest.importorskip("faiss")
    x = grid(800)
    d, i = knn_approximate(x, k=5)
    assert d[10, 0] == 0 and 50 in i[10]
    y = blobs(900, 3, seed=8)
    _, ia = knn_approximate(x, k=5, y=y)
    assert knn_recall(ia, knn(x, k=5, y=y)[1]) >= 0.9


def test_a_reused_index_gives_the_same_graph_as_a_fresh_one():
    pytest.importorskip("faiss")
    y = blobs(1500, 6, seed=3)
    x = blobs(700, 6, seed=4)
    idx = hnsw_index(y, random_state=7)
    for q, yy in ((None, y), (x, y)):
        fresh = knn_approximate(y if q is None else q, k=6, y=None if q is None else yy,
                                random_state=7)
        reused = knn_approximate(y if q is None else q, k=6, y=None if q is None else yy,
                                 index=idx)
        np.testing.assert_array_equal(fresh[1], reused[1])
        np.testing.assert_array_equal(fresh[0], reused[0])
    with pytest.raises(ValueError, match="index holds"):
        knn_approximate(x, k=6, index=idx)


def test_context_builds_one_index_per_searched_set(monkeypatch):
    pytest.importorskip("faiss")
    import audit.geometry.neighbors as context_mod
    built = []
    real = context_mod.hnsw_index

    def counting(y, **kw):
        built.append(len(y))
        return real(y, **kw)
    monkeypatch.setattr(context_mod, "hnsw_index", counting)
    data, ref = blobs(1200, 8, seed=1), blobs(900, 8, seed=2)
    ctx = Context(lset(data), reference=lset(ref),
                  geometry=GeometryConfig(map="pca", knn="approximate", k=5), seed=3)
    ctx.knn, ctx.reference_knn, ctx.cross_knn
    assert sorted(built) == [900, 1200]          # the reference index serves both graphs
    assert knn_recall(ctx.cross_knn[1], knn(ctx.space, k=5, y=ctx.reference_space)[1]) >= 0.9


def lset(x):
    return LatentSet(x, pd.DataFrame(index=range(len(x))), np.arange(len(x)), "t")


def test_context_approximate_records_recall_equal_to_a_recomputation():
    pytest.importorskip("faiss")
    x = blobs(3000, 12, seed=9)
    ctx = Context(lset(x), geometry=GeometryConfig(map="pca", knn="approximate", k=10),
                  seed=5)
    _, nb = ctx.knn
    info = ctx.describe()
    rec = info["knn"]["knn"]
    assert rec["method"] == "approximate" and rec["index"] == "faiss.IndexHNSWFlat"
    assert rec["recall_queries"] == 1000
    # recompute: the same seeded query sample, searched exactly
    rows = sample_rows(len(x), 1000, ctx.rng("geometry.knn.recall_queries"))
    _, exact = knn(ctx.space, k=10)
    assert rec["recall_at_k"] == pytest.approx(knn_recall(nb[rows], exact[rows]), abs=1e-5)
    assert rec["recall_at_k"] >= 0.9
    assert info["metrics"]["geometry.knn_recall"] == rec["recall_at_k"]
    # same seed, same graph
    again = Context(lset(x), geometry=GeometryConfig(map="pca", knn="approximate", k=10),
                    seed=5)
    np.testing.assert_array_equal(again.knn[1], nb)


def test_context_exact_reports_method_and_no_recall():
    ctx = Context(lset(blobs(400, 4)), geometry=GeometryConfig(map="pca"))
    ctx.knn
    info = ctx.describe()
    assert info["knn"] == {"knn": {"method": "exact"}}
    assert "geometry.knn_recall" not in info["metrics"]


def _hide_faiss(monkeypatch):
    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "faiss" or name.startswith("faiss."):
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", fake)


def test_auto_without_faiss_stays_exact_and_says_so(monkeypatch, caplog):
    _hide_faiss(monkeypatch)
    x = blobs(1500, 4)
    ctx = Context(lset(x), geometry=GeometryConfig(map="pca", knn_exact_max=1000))
    with caplog.at_level(logging.INFO, logger="audit"):
        d, i = ctx.knn
    assert ctx.knn_info["knn"]["method"] == "exact"
    np.testing.assert_array_equal(i, knn(ctx.space, k=ctx.k)[1])
    hints = [r for r in caplog.records if "latent-audit[fast]" in r.getMessage()]
    assert len(hints) == 1 and hints[0].levelno == logging.INFO


def test_auto_goes_approximate_above_the_threshold():
    pytest.importorskip("faiss")
    ctx = Context(lset(blobs(1500, 4)), geometry=GeometryConfig(map="pca",
                                                                knn_exact_max=1000))
    ctx.knn
    assert ctx.knn_info["knn"]["method"] == "approximate"
    small = Context(lset(blobs(900, 4)), geometry=GeometryConfig(map="pca",
                                                                 knn_exact_max=1000))
    small.knn
    assert small.knn_info["knn"]["method"] == "exact"


def test_explicit_approximate_without_faiss_is_a_config_error(monkeypatch):
    _hide_faiss(monkeypatch)
    with pytest.raises(ConfigError) as err:
        Context(lset(blobs(100, 3)), geometry=GeometryConfig(knn="approximate"))
    assert err.value.key == "geometry.knn" and "latent-audit[fast]" in str(err.value)
    with pytest.raises(ImportError, match=r"latent-audit\[fast\]"):
        knn_approximate(blobs(100, 3), k=2)


def test_geometry_config_knn_keys_are_strict():
    assert GeometryConfig().knn == "auto" and GeometryConfig().knn_exact_max == 200_000
    with pytest.raises(Exception):
        GeometryConfig(knn="fast")
    with pytest.raises(Exception):
        GeometryConfig(knn_exact_max=10)


def test_coverage_searches_the_data_index_when_graphs_are_approximate(monkeypatch):
    """Reference points the cross graph leaves unmarked are searched through the data's
    kept index: the same uncovered set as an exact run on a planted gap (blob 7 of the
    reference has no data), and no exact search of the data is made for them."""
    pytest.importorskip("faiss")
    from audit.checks import coverage
    import audit.metrics._coverage as cov_mod
    rng = np.random.default_rng(4)
    c = rng.standard_normal((8, 6)) * 6
    data = (c[rng.integers(0, 7, 2500)] + rng.standard_normal((2500, 6))).astype(np.float32)
    ref = (c[rng.integers(0, 8, 1600)] + rng.standard_normal((1600, 6))).astype(np.float32)
    gap = np.linalg.norm(ref[:, None] - c[None], axis=2).argmin(1) == 7

    def run(mode):
        ctx = Context(lset(data), reference=lset(ref),
                      geometry=GeometryConfig(map="pca", knn=mode, k=5), seed=2)
        ctx.warm("knn", "reference_knn", "cross_knn")     # as the pipeline does
        return ctx, coverage.reference_uncovered(ctx, k=5)

    exact_ctx, (unc_exact, _) = run("exact")
    calls = []
    real_knn = cov_mod.__dict__.get("knn")
    import audit.metrics._neighbors as nb_mod
    orig = nb_mod.knn

    def spy(x, **kw):
        if kw.get("y") is not None and len(kw["y"]) == len(data):
            calls.append(len(x))
        return orig(x, **kw)
    monkeypatch.setattr(nb_mod, "knn", spy)
    approx_ctx, (unc_approx, near) = run("approximate")
    assert real_knn is None                     # _coverage imports knn lazily: spy is seen
    assert list(approx_ctx._indexes) == ["data"]    # only the data index is kept
    assert not [n for n in calls if n not in (1000,)]       # recall samples only
    assert (unc_approx == unc_exact).mean() >= 0.99
    assert unc_approx[gap].mean() >= 0.9 and unc_approx[~gap].mean() <= 0.05
    assert unc_exact[gap].mean() == pytest.approx(unc_approx[gap].mean(), abs=0.02)
    assert np.isfinite(near[unc_approx]).all()      # each was searched in the index


def test_context_widens_the_search_until_the_sample_reaches_min_recall():
    """High intrinsic dimension (one isotropic 64-d blob): asking for recall 0.999 doubles
    ef_search from its base; the recorded recall is the final graph's, higher than the
    base search's, and the choice is the same on a second run (seeded sample)."""
    pytest.importorskip("faiss")
    x = blobs(6000, 64, seed=12, centres=1)

    def graph(min_recall):
        ctx = Context(lset(x), geometry=GeometryConfig(map="pca", knn="approximate", k=10,
                                                       knn_min_recall=min_recall), seed=4)
        return ctx.knn, ctx.describe()["knn"]["knn"]

    (_, base_nb), base = graph(0)
    (_, wide_nb), wide = graph(0.999)
    assert base["ef_search"] == 64 and wide["ef_search"] in (128, 256, 512)
    assert wide["recall_at_k"] > base["recall_at_k"]
    assert wide["recall_at_k"] >= 0.999 or wide["ef_search"] == 512
    (_, again_nb), again = graph(0.999)
    assert again == wide
    np.testing.assert_array_equal(again_nb, wide_nb)
