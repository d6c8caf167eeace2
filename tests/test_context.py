"""The shared geometry: computed once, sample-fitted where large, disclosed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.config import GeometryConfig
from audit.context import Context
from audit.geometry import sample_rows
from audit.latents import LatentSet


def lset(x):
    return LatentSet(x, pd.DataFrame(index=range(len(x))), np.arange(len(x)), "t")


def blobs(n, d, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((3, d)) * 10
    lab = rng.integers(0, 3, n)
    return (c[lab] + rng.standard_normal((n, d))).astype(np.float32), lab


def test_knn_is_computed_once(monkeypatch):
    import audit.geometry.neighbors as mod
    calls = []
    real = mod.knn
    monkeypatch.setattr(mod, "knn", lambda *a, **k: calls.append(1) or real(*a, **k))
    ctx = Context(lset(blobs(300, 5)[0]), geometry=GeometryConfig(map="pca"))
    for _ in range(3):
        ctx.knn
        ctx.intrinsic_dim
    assert len(calls) == 1


def test_high_dimensional_latents_use_a_pca_subspace():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((800, 6))
    x = (z @ rng.standard_normal((6, 128)) + 0.01 * rng.standard_normal((800, 128)))
    ctx = Context(lset(x.astype(np.float32)), geometry=GeometryConfig(map="pca"))
    assert ctx.space.shape == (800, ctx.space_dims)
    assert 6 <= ctx.space_dims <= 10
    desc = ctx.describe()
    assert desc["space_variance_kept"] >= 0.99 and desc["latent_dims"] == 128


def test_clusters_fitted_on_a_sample_extend_to_all_points():
    from sklearn.metrics import adjusted_rand_score
    x, lab = blobs(3000, 4, seed=1)
    ctx = Context(lset(x), geometry=GeometryConfig(map="pca", cluster_sample=600))
    cl = ctx.clusters
    assert cl.fit_size == 600 and len(cl.labels) == 3000
    assert cl.n_clusters == 3
    ok = cl.labels >= 0
    assert ok.mean() > 0.9
    assert adjusted_rand_score(lab[ok], cl.labels[ok]) > 0.99
    assert ctx.describe()["clusters"]["fit_size"] == 600


def planted_blobs(n, d, k, seed):
    """k well-separated Gaussian blobs of unequal sizes (shares 1 : 2 : ... : k)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 8
    share = np.arange(1, k + 1) / np.arange(1, k + 1).sum()
    lab = rng.choice(k, n, p=share)
    return (centres[lab] + rng.standard_normal((n, d))).astype(np.float32), lab


def test_sample_fit_clusters_recover_blobs_and_agree_with_a_full_fit():
    from sklearn.metrics import adjusted_rand_score
    x, lab = planted_blobs(6000, 8, 5, seed=11)
    sampled = Context(lset(x), geometry=GeometryConfig(map="pca", cluster_sample=2000)).clusters
    full = Context(lset(x), geometry=GeometryConfig(map="pca", cluster_sample=6000)).clusters
    assert sampled.fit_size == 2000 and full.fit_size == 6000
    assert sampled.n_clusters == full.n_clusters == 5
    # every point, noise (-1) included as its own label
    assert adjusted_rand_score(lab, sampled.labels) >= 0.9
    assert adjusted_rand_score(lab, full.labels) >= 0.9
    assert adjusted_rand_score(full.labels, sampled.labels) >= 0.9
    # the extended points (not in the fitted sample) are labelled as well as the sample
    ctx = Context(lset(x), geometry=GeometryConfig(cluster_sample=2000))
    fitted = sample_rows(6000, 2000, ctx.rng("geometry.clusters.fit_rows"))
    rest = np.setdiff1d(np.arange(6000), fitted)
    assert adjusted_rand_score(lab[rest], sampled.labels[rest]) >= 0.9


def test_reference_clusters_use_the_same_sample_fit():
    from sklearn.metrics import adjusted_rand_score
    x, _ = planted_blobs(1000, 6, 3, seed=12)
    ref, ref_lab = planted_blobs(3000, 6, 3, seed=12)
    ctx = Context(lset(x), reference=lset(ref),
                  geometry=GeometryConfig(map="pca", cluster_sample=1000))
    labels = ctx.reference_clusters
    assert labels.shape == (3000,) and labels.max() == 2
    assert adjusted_rand_score(ref_lab, labels) >= 0.9


def test_map_fitted_on_a_sample_places_the_rest_near_their_neighbours():
    x, lab = blobs(1500, 6, seed=2)
    ctx = Context(lset(x), geometry=GeometryConfig(map="tsne", map_sample=300))
    m = ctx.map2d
    assert m.method == "tsne" and m.fit_size == 300 and m.coords.shape == (1500, 2)
    # points of one blob land together: each point's nearest map neighbour shares its blob
    from audit.metrics import knn
    _, nb = knn(m.coords, k=1)
    assert (lab[nb[:, 0]] == lab).mean() > 0.98
    assert ctx.describe()["map"] == {"method": "tsne", "fit_size": 300, "n": 1500}


def test_scales():
    x = np.array([[0, 0], [2, 200], [4, 400]], dtype=np.float32)
    ctx = Context(lset(x), geometry=GeometryConfig(scale="standard"))
    np.testing.assert_allclose(ctx.scale(x).std(0), [1, 1], rtol=1e-6)
    ctx = Context(lset(x), geometry=GeometryConfig(scale="l2"))
    np.testing.assert_allclose(np.linalg.norm(ctx.scale(x[1:]), axis=1), [1, 1], rtol=1e-6)


def test_same_seed_same_geometry():
    x, _ = blobs(1200, 5, seed=3)
    g = GeometryConfig(map="tsne", map_sample=400, cluster_sample=600)
    a, b = Context(lset(x), geometry=g, seed=4), Context(lset(x), geometry=g, seed=4)
    np.testing.assert_array_equal(a.map2d.coords, b.map2d.coords)
    np.testing.assert_array_equal(a.clusters.labels, b.clusters.labels)


def test_products_are_computed_on_first_use_once_and_timed():
    ctx = Context(lset(blobs(400, 6)[0]), geometry=GeometryConfig(map="pca"))
    assert ctx.timings == {} and "knn" not in ctx.describe().get("knn", {})
    ctx.warm("knn", "clusters")
    assert {"geometry.knn", "geometry.clusters", "geometry.pca"} <= set(ctx.timings)
    assert "map" not in ctx.describe() and "clusters" in ctx.describe()
    first = ctx.knn
    assert ctx.knn is first


def test_project_and_nearest_are_the_one_way_to_reach_the_space():
    """project = pca.transform(scale(x))[:, :dims]; nearest among rows / within rows
    = exact kNN over those rows, as data row indices."""
    from audit.metrics import knn
    x = blobs(600, 8, seed=3)[0]
    ctx = Context(lset(x), geometry=GeometryConfig(map="pca", scale="standard"))
    p = ctx.project(x[:50], 3)
    np.testing.assert_array_equal(p, ctx.pca.transform(ctx.scale(x[:50]))[:, :3])
    np.testing.assert_array_equal(ctx.project(x), ctx.space)
    np.testing.assert_array_equal(ctx.to_space(x), ctx.space)
    rows = np.arange(0, 600, 3)
    d, nb = ctx.nearest(p, k=4, dims=3, among=rows)
    d2, nb2 = knn(p, y=ctx.projected(3)[rows], k=4)
    np.testing.assert_array_equal(nb, rows[nb2])
    np.testing.assert_array_equal(d, d2)
    d, nb = ctx.nearest(None, k=2, dims=3, among=rows)
    d2, nb2 = knn(ctx.projected(3)[rows], k=2)
    np.testing.assert_array_equal(nb, rows[nb2])
    d, nb = ctx.nearest(ctx.space[:5], k=1)
    assert (nb[:, 0] == np.arange(5)).all() and (d == 0).all()
    np.testing.assert_array_equal(ctx.nearest_data(ctx.space[:5]), np.zeros(5))


def test_reference_index_is_freed_once_both_reference_graphs_exist():
    pytest.importorskip("faiss")
    x, ref = blobs(500, 4, seed=1)[0], blobs(400, 4, seed=2)[0]
    ctx = Context(lset(x), reference=lset(ref),
                  geometry=GeometryConfig(map="pca", knn="approximate", k=5))
    ctx.reference_knn
    assert set(ctx._indexes) == {"reference"}      # kept for the cross graph
    ctx.cross_knn
    assert set(ctx._indexes) == set()
    ctx.knn
    assert set(ctx._indexes) == {"data"}           # kept: nearest() searches it
