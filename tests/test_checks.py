"""Checks on planted truth and on null data where nothing may be flagged."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.checks import build_checks, run_check
from audit.config import GeometryConfig
from audit.context import Context
from audit.latents import LatentSet
from audit.metrics._duplicates import near_duplicate_chance_rate
from audit.metrics._outliers import isolation_ratio


def lset(x, meta=None, prefix="p"):
    n = len(x)
    return LatentSet(np.asarray(x, np.float32),
                     meta if meta is not None else pd.DataFrame(index=range(n)),
                     np.array([f"{prefix}{i}" for i in range(n)]), "test")


def run_one(name, x, *, reference=None, seed=0, **settings):
    ctx = Context(lset(x), reference=None if reference is None else lset(reference, prefix="r"),
                  geometry=GeometryConfig(map="pca"), seed=seed)
    (check,) = build_checks({name: settings})
    res = run_check(check, ctx, debug=True)
    assert res.status == "ok"
    return res, ctx


def flagged(res):
    return [f for f in res.findings if f.severity != "info"]


NULLS = {
    "gauss8": lambda r: r.standard_normal((3000, 8)),
    "gauss2": lambda r: r.standard_normal((3000, 2)),
    "gauss32": lambda r: r.standard_normal((2000, 32)),
    "mixture": lambda r: np.concatenate([r.standard_normal((1500, 6)),
                                         r.standard_normal((1500, 6)) * 0.4 + 5]),
    "uniform": lambda r: r.random((3000, 4)),
    "manifold": lambda r: np.concatenate([r.standard_normal((3000, 3)), np.zeros((3000, 13))],
                                         1) @ np.linalg.qr(r.standard_normal((16, 16)))[0],
}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("null", sorted(NULLS))
@pytest.mark.parametrize("check", ["outliers", "duplicates"])
def test_null_data_flags_nothing(check, null, seed):
    x = NULLS[null](np.random.default_rng(seed))
    res, _ = run_one(check, x, reference=NULLS[null](np.random.default_rng(seed + 100)))
    assert flagged(res) == []


@pytest.mark.parametrize("seed", range(3))
def test_planted_isolated_points_are_flagged(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2000, 8))
    far = np.array([[12, 0, 0, 0, 0, 0, 0, 0], [0, -12, 0, 0, 0, 0, 0, 0],
                    [0, 0, 0, 15, 15, 0, 0, 0]], dtype=float)
    x = np.concatenate([x, far])
    res, _ = run_one("outliers", x, seed=seed)
    hits = flagged(res)
    assert sorted(f.evidence_ids[0] for f in hits) == ["p2000", "p2001", "p2002"]
    for f in hits:
        assert f.ci[0] > f.threshold and f.value > f.ci[0]
        assert f.threshold == res.metrics["outliers.threshold"] >= 3
    assert res.metrics["outliers.count"] == 3
    assert res.per_sample["is_outliers_issue"].sum() == 3
    info = [f for f in res.findings if f.severity == "info"]
    assert len(info) == 10 and all(f.value < res.metrics["outliers.threshold"] for f in info)


def test_isolation_ratio_values():
    scores = np.array([1.0, 2.0, 4.0, 10.0])
    nb = np.array([[1, 2], [0, 2], [0, 1], [0, 1]])
    assert isolation_ratio(scores, nb).tolist() == [1 / 3, 2 / 2.5, 4 / 1.5, 10 / 1.5]


@pytest.mark.parametrize("seed", range(3))
def test_planted_duplicates_within_and_across(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1500, 6))
    ref = rng.standard_normal((800, 6))
    x[100:110] = x[200:210]                                  # 10 exact copies
    x[300:305] = x[400:405] + 1e-6                           # 5 near copies
    x[500:520] = ref[:20] + 1e-7                             # 20 leaked from the reference
    res, _ = run_one("duplicates", x, reference=ref, seed=seed)
    by_id = {f.id: f for f in flagged(res)}
    assert set(by_id) == {"duplicates-within", "duplicates-cross"}
    within = by_id["duplicates-within"]
    want = {f"p{i}" for i in [*range(100, 110), *range(200, 210), *range(300, 305),
                              *range(400, 405)]}
    assert set(within.evidence_ids) == want
    assert res.metrics["duplicates.within_pairs"] == 15
    assert res.metrics["duplicates.exact_fraction"] == pytest.approx(20 / 1500)
    assert within.p_value < 1e-10 and within.ci[0] < 30 / 1500 < within.ci[1]
    cross = by_id["duplicates-cross"]
    assert {e for e in cross.evidence_ids if e.startswith("p")} == \
        {f"p{i}" for i in range(500, 520)}
    assert {e for e in cross.evidence_ids if e.startswith("r")} == {f"r{i}" for i in range(20)}
    assert res.metrics["duplicates.cross_fraction"] == pytest.approx(20 / 1500)


def test_chance_rate_matches_poisson_void_probability():
    # In 1-D Poisson points, P(NN < c·median NN) = 1 - 2^(-c)
    assert near_duplicate_chance_rate(0.5, 1.0) == pytest.approx(1 - 2 ** -0.5)
    # simulation: 2-D uniform, fraction of points with NN closer than 0.2 × local median
    rng = np.random.default_rng(0)
    from audit.metrics import knn
    x = rng.random((20000, 2))
    d, nb = knn(x, k=15)
    local = np.median(d[:, 0][nb], axis=1)
    frac = (d[:, 0] < 0.2 * local).mean()
    assert frac == pytest.approx(near_duplicate_chance_rate(0.2, 2.0), rel=0.2)


def test_clusters_recover_planted_blobs_and_composition():
    from sklearn.metrics import adjusted_rand_score
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, 6)) * 8
    lab = rng.integers(0, 4, 1200)
    x = centers[lab] + rng.standard_normal((1200, 6))
    meta = pd.DataFrame({"kind": np.array(["w", "x", "y", "z"])[lab]})
    ctx = Context(lset(x, meta), geometry=GeometryConfig(map="pca"))
    ctx.attributes = ["kind"]
    (check,) = build_checks({"clusters": {}})
    res = run_check(check, ctx, debug=True)
    assert res.metrics["clusters.count"] == 4
    ok = ctx.clusters.labels >= 0
    assert adjusted_rand_score(lab[ok], ctx.clusters.labels[ok]) > 0.99
    assert res.tables["composition"]["kind"]["values"] == ["w", "x", "y", "z"] or \
        sorted(res.tables["composition"]["kind"]["values"]) == ["w", "x", "y", "z"]
    for row in res.tables["composition"]["kind"]["clusters"]:
        if row["cluster"] >= 0:
            assert row["top"][0]["share"] == 1.0
    assert flagged(res) == []
    # every cluster's exemplars are members of that cluster
    for c, ex in ctx.clusters.exemplars.items():
        assert (ctx.clusters.labels[ex] == c).all()


def test_composition_bins_numeric_columns_in_order():
    from audit.checks.clusters import composition
    vals = pd.Series(np.linspace(0, 1, 400))
    comp = composition(vals, np.repeat([0, 1], 200), bins=4)
    assert comp["values"] == ["0–0.25", "0.25–0.5", "0.5–0.75", "0.75–1"]
    first = {t["value"]: t["share"] for t in comp["clusters"][0]["top"]}
    assert first == {"0–0.25": 0.5, "0.25–0.5": 0.5}


def test_composition_labels_as_every_chart_and_keeps_the_datas_bins():
    from audit.checks.clusters import composition
    # integer-valued floats are written without ".0" (audit.columns.level_name)
    comp = composition(pd.Series([1.0, 2.0, 2.0, None]), np.zeros(4, dtype=int))
    assert comp["values"] == ["2", "1", "<missing>"]             # most common first
    # a reference grouped with the data's edges lists every bin, empty ones too
    comp = composition(pd.Series([0.1, 0.2, np.nan]), np.zeros(3, dtype=int),
                       edges=np.array([0.0, 0.5, 1.0]))
    assert comp["values"] == ["0–0.5", "0.5–1", "<missing>"]


def test_clusters_blob_is_not_flagged_background_is():
    # uniform in a cube: one group, whatever HDBSCAN's noise share -> info, never flagged
    x = np.random.default_rng(0).random((1500, 10))
    ctx = Context(lset(x), geometry=GeometryConfig(map="pca", min_cluster_size=200))
    (check,) = build_checks({"clusters": {"noise_warning": 0.3}})
    res = run_check(check, ctx, debug=True)
    assert flagged(res) == []
    # three tight groups (20%) in a diffuse uniform background (80%): a real warning
    rng = np.random.default_rng(1)
    centres = rng.uniform(-8, 8, (3, 6))
    tight = centres[rng.integers(0, 3, 300)] + 0.2 * rng.standard_normal((300, 6))
    x = np.vstack([tight, rng.uniform(-10, 10, (1200, 6))])
    ctx = Context(lset(x), geometry=GeometryConfig(map="pca"))
    (check,) = build_checks({"clusters": {}})
    res = run_check(check, ctx, debug=True)
    assert res.metrics["clusters.count"] >= 2
    assert [f.id for f in flagged(res)] == ["clusters-noise"]


def test_registry_rejects_duplicate_names():
    from audit.checks import Check, register

    class Again(Check):
        name = "outliers"
    with pytest.raises(ValueError, match="already registered"):
        register(Again)
