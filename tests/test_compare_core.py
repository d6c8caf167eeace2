"""The comparison core (audit/compare): matching, similarity metrics, neighbourhood change
and cluster mapping, on planted truth and null data (issue 14)."""
from __future__ import annotations

import numpy as np
import pytest

from audit.compare import (
    analysis_space,
    cluster_labels,
    cluster_mapping,
    delta_metrics,
    exact_neighbours,
    match_ids,
    neighbourhood_change,
    neighbourhood_regions,
    neighbourhood_scores,
    similarity_metrics,
)
from audit.errors import InputError
from audit.findings import Finding

N, D, BLOBS = 2400, 16, 6
PER = N // BLOBS


def _blobs(seed: int, sep: float = 7.0):
    """Six unit Gaussian blobs of 400 points in 16-D, centres N(0, sep^2)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=sep, size=(BLOBS, D))
    lab = np.repeat(np.arange(BLOBS), PER)
    x = centres[lab] + rng.normal(size=(N, D))
    ids = np.array([f"pt{i}" for i in range(N)])
    return x, lab, centres, ids, rng


def _copy(x, rng, *, q: int = 24, scale: float = 2.5, noise: float = 0.1):
    """``x`` embedded in ``q`` dimensions, lightly noised, rotated, rescaled and shifted."""
    xp = np.hstack([x, np.zeros((len(x), q - x.shape[1]))])
    rot = np.linalg.qr(rng.normal(size=(q, q)))[0]
    return scale * (xp + noise * rng.normal(size=xp.shape)) @ rot + 3.0


def _baseline_label(labels, members):
    """The baseline cluster most of ``members`` fall in."""
    return int(np.bincount(labels[members] + 1).argmax() - 1)


# --------------------------------------------------------------------------- match_ids

def test_match_ids_keeps_baseline_order_and_share():
    base = np.array([f"id{i}" for i in range(100)])
    cand = np.concatenate([base[::-1][:80], [f"new{i}" for i in range(20)]])
    m = match_ids(base, cand)
    assert m.n == 80 and m.n_base == 100 and m.n_cand == 100
    assert m.share == pytest.approx(0.8)
    assert m.ids.tolist() == base[20:].tolist()                 # baseline order
    assert (base[m.base_index] == cand[m.cand_index]).all()
    assert (m.base_index == np.arange(20, 100)).all()


def test_match_ids_compares_as_strings():
    m = match_ids([1, 2, 3, 4], ["4", "3", "2", "1"], min_count=4)
    assert m.cand_index.tolist() == [3, 2, 1, 0] and m.share == 1.0


@pytest.mark.parametrize("base, cand, kw, words", [
    ([f"a{i}" for i in range(100)], [f"a{i}" for i in range(30)] + [f"b{i}" for i in range(70)],
     {}, ["30", "baseline (100 points)", "candidate (100 points)", "50%"]),
    ([f"a{i}" for i in range(8)], [f"a{i}" for i in range(8)], {},
     ["8", "baseline (8 points)", "candidate (8 points)", "at least 10"]),
    (["x", "y"], ["z"], {"min_count": 0, "min_share": 0.1}, ["only 0", "(2 points)", "(1 points)"]),
])
def test_match_ids_refuses_too_few(base, cand, kw, words):
    with pytest.raises(InputError) as e:
        match_ids(base, cand, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_match_ids_refuses_repeated_ids():
    with pytest.raises(InputError, match="candidate ids are not unique"):
        match_ids([f"a{i}" for i in range(20)], [f"a{i}" for i in range(20)] + ["a3"])


# --------------------------------------------------------------------------- scores

def test_neighbourhood_score_equals_brute_force():
    x, _, _, _, rng = _blobs(0)
    x = x[::4]                                          # 600 points: a full distance matrix
    y = _copy(x, rng, noise=0.4)
    kb = exact_neighbours("b", analysis_space(x, rng=rng), 10)
    kc = exact_neighbours("c", analysis_space(y, rng=rng), 10)

    def brute(z):
        sq = (z * z).sum(1)
        d = sq[:, None] + sq[None, :] - 2 * z @ z.T
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1)[:, :10]
    bb, bc = brute(x), brute(y)
    want = np.array([len(set(bb[i]) & set(bc[i])) / 10 for i in range(len(x))])
    got = neighbourhood_scores(kb, kc)
    assert np.allclose(got, want)
    assert 0.2 < got.mean() < 0.95 and got.min() < got.max()


# --------------------------------------------------------------------------- metrics

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_null_copy_is_similar_and_raises_nothing(seed):
    x, _, _, ids, rng = _blobs(seed)
    y = _copy(x, rng)
    ch = neighbourhood_change(x, y, ids, rng=np.random.default_rng(100 + seed))
    assert ch.findings == ()
    assert ch.typical > 0.8
    m = similarity_metrics(x, y, ch.base_knn, ch.cand_knn, matched=1.0,
                           rng=np.random.default_rng(seed))
    assert m["compare.matched"] == 1.0
    assert m["compare.cka_linear"] == pytest.approx(1.0, abs=2e-3)
    assert m["compare.cka_linear_debiased"] == pytest.approx(1.0, abs=2e-3)
    assert m["compare.knn_overlap"] > 0.7
    assert 0 <= m["compare.procrustes_residual"] < 5e-3
    assert 0 <= m["compare.linear_map_residual"] < 5e-3
    lb = cluster_labels(x, rng=np.random.default_rng(200 + seed))
    lc = cluster_labels(y, rng=np.random.default_rng(300 + seed))
    mapping = cluster_mapping(lb, lc, ids)
    assert len(mapping.kinds) == BLOBS
    assert set(mapping.kinds.values()) == {"kept"}
    assert mapping.appeared == () and mapping.findings == ()


def test_rotated_rescaled_copy_is_identical():
    x, _, _, ids, rng = _blobs(3)
    y = _copy(x, rng, noise=0.0)
    ch = neighbourhood_change(x, y, ids, rng=np.random.default_rng(0))
    m = similarity_metrics(x, y, ch.base_knn, ch.cand_knn)
    assert m["compare.cka_linear"] == pytest.approx(1.0, abs=1e-9)
    assert m["compare.knn_overlap"] == pytest.approx(1.0)
    assert m["compare.procrustes_residual"] == pytest.approx(0.0, abs=1e-9)
    assert (ch.scores == 1.0).all() and ch.findings == ()


def test_unrelated_candidate_scores_low():
    x, _, _, ids, rng = _blobs(4)
    y = rng.normal(size=(N, 8))
    ch = neighbourhood_change(x, y, ids, rng=np.random.default_rng(0))
    m = similarity_metrics(x, y, ch.base_knn, ch.cand_knn, rng=np.random.default_rng(0))
    assert m["compare.cka_linear"] < 0.05
    assert abs(m["compare.cka_linear_debiased"]) < 0.02
    assert m["compare.knn_overlap"] < 0.02
    assert m["compare.linear_map_residual"] > 0.95
    assert ch.typical == pytest.approx(ch.chance, abs=0.05)


def test_delta_metrics():
    base = {"coverage.coverage": 0.9, "clusters.count": 4, "holes.count": float("nan"),
            "only.base": 1.0, "delta.old": 3.0, "flag": True}
    cand = {"coverage.coverage": 0.7, "clusters.count": 6, "holes.count": 2.0,
            "only.cand": 1.0, "delta.old": 5.0, "flag": False}
    d = delta_metrics(base, cand)
    assert list(d) == ["delta.clusters.count", "delta.coverage.coverage", "delta.flag"]
    assert d["delta.clusters.count"] == 2.0
    assert d["delta.coverage.coverage"] == pytest.approx(-0.2)
    assert d["delta.flag"] == -1.0
    assert delta_metrics({}, cand) == {}


# --------------------------------------------------------------------------- regions

def _scrambled(seed: int, how: str):
    x, lab, centres, ids, rng = _blobs(seed)
    y = _copy(x, rng)
    rows = np.flatnonzero(lab == 2)
    if how == "permuted":                     # the blob's points permuted among themselves
        y[rows] = y[rng.permutation(rows)]
    else:                                     # the blob replaced by a fresh sample
        fresh = centres[2] + rng.normal(size=(PER, D))
        y2 = _copy(np.vstack([x[lab != 2], fresh]), np.random.default_rng(seed + 50))
        y = np.empty_like(y2)
        y[lab != 2], y[rows] = y2[:N - PER], y2[N - PER:]
    return x, y, ids, set(ids[rows])


@pytest.mark.parametrize("seed, how", [(0, "permuted"), (1, "permuted"), (2, "fresh")])
def test_scrambled_blob_is_one_region(seed, how):
    x, y, ids, truth = _scrambled(seed, how)
    ch = neighbourhood_change(x, y, ids, rng=np.random.default_rng(seed))
    assert len(ch.findings) == 1
    f = ch.findings[0]
    assert isinstance(f, Finding) and f.check == "compare"
    assert f.id == "compare-neighbourhood-1"
    ev = set(f.evidence_ids)
    assert len(ev & truth) / len(ev) >= 0.8 and len(ev & truth) / len(truth) >= 0.8
    assert f.severity == "critical" and f.subjects["effect"] > 0.6
    assert f.value < 0.1 and f.p_value <= 1 / 201 + 1e-12
    assert f.ci[0] <= f.value <= f.ci[1]
    assert f.subjects["share_at_chance"] > 0.7
    assert f.subjects["size"] == len(ev)


def test_same_seed_same_findings():
    x, y, ids, _ = _scrambled(5, "permuted")
    a = neighbourhood_change(x, y, ids, rng=np.random.default_rng(7))
    b = neighbourhood_change(x, y, ids, rng=np.random.default_rng(7))
    assert [f.to_json() for f in a.findings] == [f.to_json() for f in b.findings]
    assert (a.regions == b.regions).all() and len(a.findings) == 1


def test_regions_on_a_planted_score_field():
    """Scattered low scores are no region; a connected patch of low scores is one."""
    rng = np.random.default_rng(0)
    n = 1000
    graph = np.array([[(i + d) % n for d in range(-5, 6) if d] for i in range(n)])  # a ring
    ids = np.arange(n).astype(str)
    scores = np.clip(rng.normal(0.8, 0.05, n), 0, 1)
    scattered = scores.copy()
    scattered[rng.choice(n, 40, replace=False)] = 0.1
    assert neighbourhood_regions(scattered, graph, ids, rng=rng).findings == ()
    patch = scores.copy()
    patch[300:360] = 0.05
    ch = neighbourhood_regions(patch, graph, ids, rng=rng)
    assert [f.evidence_ids for f in ch.findings] == [tuple(ids[300:360])]


# --------------------------------------------------------------------------- clusters

def test_merged_blobs_are_one_merge_with_their_ids():
    x, lab, centres, ids, rng = _blobs(0)
    lb = cluster_labels(x, rng=np.random.default_rng(1))
    x2 = x.copy()
    x2[lab == 1] += centres[0] - centres[1]          # blob 1 moved onto blob 0
    lc = cluster_labels(_copy(x2, rng), rng=np.random.default_rng(2))
    m = cluster_mapping(lb, lc, ids)
    b0, b1 = _baseline_label(lb, lab == 0), _baseline_label(lb, lab == 1)
    assert m.kinds[b0] == m.kinds[b1] == "merged"
    assert sorted(v for b, v in m.kinds.items() if b not in (b0, b1)) == ["kept"] * 4
    assert [f.id for f in m.findings] == ["compare-cluster-merged-1"]
    f = m.findings[0]
    assert sorted(f.subjects["baseline_clusters"]) == sorted([b0, b1])
    assert set(f.evidence_ids) == set(ids[(lab == 0) | (lab == 1)])
    assert f.subjects["counts"] == {str(b0): PER, str(b1): PER}
    assert f.value == pytest.approx(0.5) and f.ci[0] < 0.5 < f.ci[1]


def test_shattered_blob_vanishes():
    x, lab, centres, ids, rng = _blobs(1)
    lb = cluster_labels(x, rng=np.random.default_rng(1))
    x3 = x.copy()
    x3[lab == 3] = centres[3] + rng.normal(scale=12.0, size=(PER, D))
    lc = cluster_labels(_copy(x3, rng), rng=np.random.default_rng(2))
    m = cluster_mapping(lb, lc, ids)
    b3 = _baseline_label(lb, lab == 3)
    assert m.kinds[b3] == "vanished"
    assert [v for b, v in m.kinds.items() if b != b3] == ["kept"] * 5
    f = next(f for f in m.findings if f.id == "compare-cluster-vanished-1")
    assert f.severity == "critical" and f.subjects["baseline_cluster"] == b3
    assert f.value > 0.9 and f.ci[0] > 0.85
    assert set(f.evidence_ids) == set(ids[lab == 3])


def test_split_and_appeared_from_labels():
    ids = np.arange(600).astype(str)
    base = np.repeat([0, 1, -1], [300, 200, 100])
    cand = np.concatenate([np.repeat([0, 1], [150, 150]), np.repeat(2, 200),
                           np.repeat(3, 100)])
    m = cluster_mapping(base, cand, ids)
    assert m.kinds == {0: "split", 1: "kept"}
    assert m.targets[0] == (0, 1) and m.appeared == (3,)
    assert [f.id for f in m.findings] == ["compare-cluster-split-1",
                                          "compare-cluster-appeared-1"]
    split, appeared = m.findings
    assert split.value == pytest.approx(0.5) and set(split.evidence_ids) == set(ids[:300])
    assert appeared.value == 1.0 and set(appeared.evidence_ids) == set(ids[500:])
    assert m.table.tolist() == [[150, 150, 0, 0, 0], [0, 0, 200, 0, 0], [0, 0, 0, 100, 0]]


@pytest.mark.parametrize("name", ["match", "metrics", "neighbourhoods", "clusters"])
def test_docstring_examples(name):
    import doctest
    import importlib
    module = importlib.import_module(f"audit.compare.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0, name


def test_wide_sides_of_different_dims_use_pca_and_raise_nothing():
    """80-D and 100-D sides (each wider than max_dims_exact: its own PCA) of one 10-D
    structure: no region, every cluster kept."""
    rng = np.random.default_rng(11)
    z = 4 * rng.normal(size=(BLOBS, 10))[np.repeat(np.arange(BLOBS), PER)] \
        + rng.normal(size=(N, 10))
    xb = z @ rng.normal(size=(10, 80)) + 0.05 * rng.normal(size=(N, 80))
    xc = (z + 0.1 * rng.normal(size=z.shape)) @ rng.normal(size=(10, 100))
    ids = np.arange(N).astype(str)
    ch = neighbourhood_change(xb, xc, ids, rng=np.random.default_rng(0))
    assert ch.findings == () and ch.typical > 0.3
    assert analysis_space(xb, rng=np.random.default_rng(0)).shape[1] <= 12
    lb = cluster_labels(xb, rng=np.random.default_rng(1))
    lc = cluster_labels(xc, rng=np.random.default_rng(2))
    assert set(cluster_mapping(lb, lc, ids).kinds.values()) == {"kept"}


def test_cluster_mapping_without_clusters_on_one_side():
    ids = np.arange(100).astype(str)
    none = np.full(100, -1)
    two = np.repeat([0, 1], 50)
    m = cluster_mapping(none, two, ids)
    assert m.kinds == {} and m.appeared == (0, 1)
    assert [f.id for f in m.findings] == ["compare-cluster-appeared-1",
                                          "compare-cluster-appeared-2"]
    m = cluster_mapping(two, none, ids)
    assert m.kinds == {0: "vanished", 1: "vanished"} and m.appeared == ()


@pytest.mark.parametrize("kw", [{"z": -1.0}, {"alpha": 0.0}, {"n_permutations": 0},
                                {"min_drop": float("nan")}])
def test_neighbourhood_regions_refuses_bad_options(kw):
    graph = np.array([[1], [0]])
    with pytest.raises(ValueError):
        neighbourhood_regions([1.0, 0.5], graph, ["a", "b"], rng=np.random.default_rng(0),
                              **kw)


def test_merge_with_a_cluster_that_also_split():
    ids = np.arange(300).astype(str)
    base = np.repeat([0, 1], [200, 100])
    cand = np.concatenate([np.repeat([0, 1], [120, 80]), np.repeat(0, 100)])
    m = cluster_mapping(base, cand, ids)
    assert m.kinds == {0: "split", 1: "merged"}
    assert [f.id for f in m.findings] == ["compare-cluster-split-1", "compare-cluster-merged-1"]
    merged = m.findings[1]
    assert merged.subjects["baseline_clusters"] == [0, 1]
    assert merged.subjects["counts"] == {"0": 120, "1": 100}
    assert set(merged.evidence_ids) == set(ids[:120]) | set(ids[200:])


def test_cluster_swallowed_by_part_of_a_larger_one_is_a_merge():
    ids = np.arange(400).astype(str)
    base = np.repeat([0, 1], [100, 300])
    cand = np.concatenate([np.repeat(0, 100), np.repeat([0, 1], [135, 165])])
    m = cluster_mapping(base, cand, ids)
    assert m.kinds == {0: "merged", 1: "split"}
    merged = next(f for f in m.findings if f.id == "compare-cluster-merged-1")
    assert merged.subjects["baseline_clusters"] == [0, 1]
    assert merged.subjects["counts"] == {"0": 100, "1": 135}
