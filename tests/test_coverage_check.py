"""The coverage check: prdc metrics, planted gaps found, nothing flagged when data and
reference come from one distribution, attribute combinations with and without a reference."""
from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pandas as pd
import pytest
from prdc import compute_prdc

from audit.checks import build_checks, run_check
from audit.checks.coverage import bin_columns, combination_tests
from audit.config import GeometryConfig
from audit.context import Context
from audit.errors import ConfigError
from audit.latents import LatentSet
from audit.metrics import uncovered_mask
from audit.metrics._contingency import fit_margins
from audit.metrics._regions import (chance_uncovered_rate, depth_pvalue, gap_regions,
                                    uncovered_depth)
from conftest import load_findings

ANGLES = np.arange(5) * 2 * np.pi / 5
CENTRES = np.stack([np.cos(ANGLES), np.sin(ANGLES)], 1) * 8


def lset(x, meta=None, prefix="p"):
    n = len(x)
    return LatentSet(np.asarray(x, np.float32),
                     meta if meta is not None else pd.DataFrame(index=range(n)),
                     np.array([f"{prefix}{i}" for i in range(n)]), "test")


def mixture(rng, n, *, drop=False, dim=2):
    """Five blobs on a circle; ``drop`` removes blob 4 and the right half of blob 3."""
    lab = rng.integers(0, 5, 2 * n)
    x = np.zeros((2 * n, dim))
    x[:, :2] = CENTRES[lab]
    x += rng.standard_normal(x.shape)
    keep = np.ones(2 * n, dtype=bool)
    if drop:
        keep &= (lab != 4) & ~((lab == 3) & (x[:, 0] > CENTRES[3, 0]))
    x, lab = x[keep][:n], lab[keep][:n]
    meta = pd.DataFrame({"blob": lab.astype(str), "size": rng.random(n),
                         "group": rng.choice(["A", "B"], n)})
    return x, lab, meta


def run_cov(x, meta=None, ref=None, ref_meta=None, *, attributes=(), protected=(), seed=0,
            **settings):
    ctx = Context(lset(x, meta), reference=None if ref is None else lset(ref, ref_meta, "r"),
                  geometry=GeometryConfig(map="pca"), seed=seed)
    ctx.attributes, ctx.protected = list(attributes), list(protected)
    (check,) = build_checks({"coverage": settings})
    res = run_check(check, ctx, debug=True)
    return res, ctx


def flagged(res):
    return [f for f in res.findings if f.severity != "info"]


# ---------------------------------------------------------------------------- planted

@pytest.mark.parametrize("seed", [0, 1])
def test_planted_gaps_are_found_with_high_recall_and_precision(seed):
    rng = np.random.default_rng(seed)
    x, _, meta = mixture(rng, 3000, drop=True)
    ref, lab, ref_meta = mixture(rng, 1500)
    res, _ = run_cov(x, meta, ref, ref_meta, attributes=["blob", "size"], protected=["group"],
                     seed=seed)
    gaps = [f for f in res.findings if f.id.startswith("coverage-gap")]
    assert len(gaps) == 2 and res.metrics["coverage.gap_regions"] == 2
    truth = (lab == 4) | ((lab == 3) & (ref[:, 0] > CENTRES[3, 0]))
    found = np.isin([f"r{i}" for i in range(len(ref))],
                    [e for f in gaps for e in f.evidence_ids])
    assert (found & truth).sum() / found.sum() > 0.98                 # precision
    assert (found & truth).sum() / truth.sum() > 0.9                  # recall
    whole = gaps[0]                                                   # the bigger region
    assert whole.severity == "critical" and whole.p_value < 1e-10
    assert whole.subjects["composition"][0] == {
        "column": "blob", "value": "4", "share": 1.0,
        "reference_share": pytest.approx((lab == 4).mean())}
    assert "100% blob=4" in whole.summary
    assert whole.value == pytest.approx(whole.subjects["size"] / len(ref))
    assert whole.ci[0] < whole.value < whole.ci[1]
    # the groups: blob 4 is not covered at all
    groups = {(g["column"], g["value"]): g for g in res.tables["groups"]}
    assert groups[("blob", "4")]["coverage"] < 0.05
    assert any(f.subjects.get("value") == "4" for f in res.findings
               if f.id.startswith("coverage-group"))
    assert res.metrics["coverage.coverage"] < res.metrics["coverage.coverage_null"]


def test_metrics_equal_prdc_on_the_analysis_space():
    rng = np.random.default_rng(3)
    x, _, _ = mixture(rng, 700, drop=True, dim=3)
    ref, _, _ = mixture(rng, 500, dim=3)
    x[:40] = x[40:80]                                             # duplicated points
    for k in (3, 5):
        res, ctx = run_cov(x, ref=ref, k=k)
        with contextlib.redirect_stdout(io.StringIO()):
            want = compute_prdc(real_features=ctx.reference_space.astype(np.float64),
                                fake_features=ctx.space.astype(np.float64), nearest_k=k)
        for key in ("precision", "recall", "density", "coverage"):
            assert res.metrics[f"coverage.{key}"] == pytest.approx(float(want[key]),
                                                                  abs=1 / 500)


# ---------------------------------------------------------------------------- null data

@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dim", [2, 8])
def test_same_distribution_flags_nothing(seed, dim):
    rng = np.random.default_rng(100 + seed)
    x, _, meta = mixture(rng, 2000, dim=dim)
    ref, _, ref_meta = mixture(rng, 1000, dim=dim)
    res, _ = run_cov(x, meta, ref, ref_meta, attributes=["blob", "size"],
                     protected=["group"], seed=seed)
    assert flagged(res) == []
    assert res.metrics["coverage.gap_regions"] == 0
    assert res.metrics["coverage.combinations_missing"] == 0
    assert abs(res.metrics["coverage.coverage"] - res.metrics["coverage.coverage_null"]) < 0.03


@pytest.mark.parametrize("seed", range(3))
def test_independent_attributes_without_reference_flag_nothing(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    meta = pd.DataFrame({"shape": rng.choice(list("abcd"), n), "colour": rng.choice(list("xyz"), n),
                         "size": rng.random(n)})
    res, _ = run_cov(rng.standard_normal((n, 4)), meta, attributes=["shape", "colour", "size"])
    assert res.status == "ok" and flagged(res) == []
    assert "coverage.coverage" not in res.metrics
    assert res.metrics["coverage.combinations_tested"] == 4 * 3 + 4 * 4 + 3 * 4


# ---------------------------------------------------------------------------- combinations

def test_a_missing_combination_is_found_without_a_reference():
    rng = np.random.default_rng(0)
    n = 4000
    meta = pd.DataFrame({"shape": rng.choice(["square", "circle", "heart"], n),
                         "colour": rng.choice(["red", "green", "blue"], n),
                         "x": rng.random(n)})
    drop = ((meta["shape"] == "heart") & (meta["colour"] == "red")) | \
           ((meta["shape"] == "circle") & (meta["x"] > 0.5))
    meta = meta[~drop].reset_index(drop=True)
    res, _ = run_cov(rng.standard_normal((len(meta), 3)), meta,
                     attributes=["shape", "colour", "x"])
    titles = [f.title for f in flagged(res)]
    assert "No samples with shape=heart and colour=red" in titles
    cells = {tuple(f.subjects["values"]) for f in flagged(res)}
    assert ("heart", "red") in cells
    assert any(v[0] == "circle" and v[1].endswith("–1") for v in cells)
    assert all(f.subjects["mode"] == "independence" and f.p_value <= 0.01
               for f in flagged(res))
    assert res.metrics["coverage.combinations_missing"] == len(cells) == 2
    assert res.display == ({"kind": "coverage_combinations", "wide": True},)


def test_with_a_reference_a_combination_the_data_lacks_is_critical():
    rng = np.random.default_rng(1)
    n, m = 3000, 1500
    ref_meta = pd.DataFrame({"shape": rng.choice(["square", "heart"], m),
                             "x": rng.random(m)})
    meta = pd.DataFrame({"shape": rng.choice(["square", "heart"], n), "x": rng.random(n)})
    meta = meta[~((meta["shape"] == "heart") & (meta["x"] > 0.6))].reset_index(drop=True)
    res, _ = run_cov(rng.standard_normal((len(meta), 2)), meta,
                     rng.standard_normal((m, 2)), ref_meta, attributes=["shape", "x"])
    combo = [f for f in flagged(res) if f.id.startswith("coverage-combination")]
    assert combo and combo[0].severity == "critical"
    assert combo[0].subjects["values"][0] == "heart" and combo[0].subjects["observed"] == 0
    assert combo[0].subjects["mode"] == "reference"
    # the evidence of a missing cell is the reference points in it
    assert all(e.startswith("r") for e in combo[0].evidence_ids)


def test_fit_margins_keeps_the_association():
    ref = np.array([[10.0, 0.0], [5.0, 5.0]])
    fit = fit_margins(ref, np.array([30.0, 70.0]), np.array([60.0, 40.0]))
    assert fit.sum(1) == pytest.approx([30, 70]) and fit.sum(0) == pytest.approx([60, 40])
    assert fit[0, 1] == 0
    indep = fit_margins(np.ones((2, 3)), np.array([1.0, 3.0]), np.array([2.0, 1.0, 1.0]))
    assert indep == pytest.approx(np.outer([1, 3], [2, 1, 1]) / 4)


def test_bin_columns_share_edges_with_the_reference():
    d = pd.DataFrame({"v": np.linspace(0, 1, 101), "c": ["a", "b"] * 50 + [None]})
    r = pd.DataFrame({"v": [-5.0, 0.3, 2.0], "c": ["b", "z", None]})
    lab = bin_columns(d, r, ["v", "c"], 4)
    dv, rv, order = lab["v"]
    assert order == ["0–0.25", "0.25–0.5", "0.5–0.75", "0.75–1"]
    assert rv.tolist() == ["0–0.25", "0.25–0.5", "0.75–1"]
    assert lab["c"][2] == ["a", "b", "z", "<missing>"]
    pairs = combination_tests({"v": lab["v"], "c": lab["c"]}, mode="independence",
                              max_ratio=0.5)
    assert np.isnan(pairs[0]["p"][:, 3]).all()            # "<missing>" is not tested


def test_bin_columns_names_levels_as_every_chart_does():
    # integer-valued floats without ".0", sorted as numbers even beside missing values
    d = pd.DataFrame({"f": [1.0, 2.0, 10.0, np.nan] * 5})
    dl, _, order = bin_columns(d, None, ["f"], 4)["f"]
    assert order == ["1", "2", "10", "<missing>"]
    assert dl.tolist()[:4] == ["1", "2", "10", "<missing>"]


def test_missing_reference_metadata_is_a_group_not_an_error():
    # a missing value in the reference's metadata used to reach coverage_by_group as the
    # reserved label "<missing>" and stop the check
    rng = np.random.default_rng(4)
    x, _, meta = mixture(rng, 600, drop=True)
    ref, _, ref_meta = mixture(rng, 400)
    ref_meta.loc[:9, "group"] = None
    res, _ = run_cov(x, meta, ref, ref_meta, attributes=["blob"], protected=["group"])
    assert res.status == "ok"
    rows = [g for g in res.tables["groups"] if g["column"] == "group"]
    assert [g["value"] for g in rows] == ["A", "B", "<missing>"] and rows[-1]["n"] == 10
    assert rows[-1]["p"] != rows[-1]["p"]                   # NaN: not tested


# ---------------------------------------------------------------------------- statistics

def test_chance_rate_matches_simulation():
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(20):
        ref, fake = rng.standard_normal((400, 2)), rng.standard_normal((600, 2))
        rates.append(uncovered_mask(ref, fake, k=3).mean())
    assert np.mean(rates) == pytest.approx(chance_uncovered_rate(400, 600, 3), rel=0.15)


def test_depth_pvalue_is_exact_under_exchangeability():
    # M = 4 reference, N = 2 data: P(the 2 nearest of the other 5 are both reference)
    assert depth_pvalue([2], 4, 2)[0] == pytest.approx(math.comb(3, 2) / math.comb(5, 2))
    rng = np.random.default_rng(1)
    m, n, hits = 50, 80, 0
    for _ in range(2000):
        labels = rng.permutation(np.r_[np.ones(m - 1), np.zeros(n)])
        hits += labels[:4].all()
    assert hits / 2000 == pytest.approx(depth_pvalue([4], m, n)[0], abs=0.01)


def test_doctests_pass():
    import doctest

    import audit.metrics._contingency as contingency
    import audit.metrics._regions as regions
    for mod in (regions, contingency):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.attempted >= 3 and res.failed == 0


def test_uncovered_depth_and_regions():
    real = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    fake = np.array([[10.5], [-0.2]])
    assert uncovered_depth(real, fake, np.array([2, 3]), max_depth=10).tolist() == [2, 0]
    graph = np.array([[1], [2], [1], [4], [3]])
    assert gap_regions(np.array([False, True, True, False, True]), graph).tolist() == \
        [-1, 0, 0, -1, 1]


# ---------------------------------------------------------------------------- plumbing

def test_no_reference_and_no_attributes_is_skipped():
    ctx = Context(lset(np.random.default_rng(0).random((200, 3))),
                  geometry=GeometryConfig(map="pca"))
    (check,) = build_checks({"coverage": {}})
    res = run_check(check, ctx)
    assert res.status == "skipped" and "no reference" in res.error


@pytest.mark.parametrize("bad", [{"k": 0}, {"alpha": 1.5}, {"combinations": "magic"},
                                 {"bins": 1}, {"nearest_k": 5}])
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError, match="checks.coverage"):
        build_checks({"coverage": bad})


def test_same_seed_same_findings():
    rng = np.random.default_rng(5)
    x, _, meta = mixture(rng, 1500, drop=True)
    ref, _, ref_meta = mixture(rng, 800)
    a, _ = run_cov(x, meta, ref, ref_meta, attributes=["blob"], protected=["group"], seed=2)
    b, _ = run_cov(x, meta, ref, ref_meta, attributes=["blob"], protected=["group"], seed=2)
    assert [f.to_json() for f in a.findings] == [f.to_json() for f in b.findings]


def test_run_with_a_reference_writes_metrics_gaps_and_report(tmp_path, write_case, run_cli):
    rng = np.random.default_rng(0)
    x, _, meta = mixture(rng, 1200, drop=True)
    ref, _, _ = mixture(rng, 600)
    meta.insert(0, "id", [f"p{i}" for i in range(len(x))])
    cfg = write_case(x.astype(np.float32), meta, {"attributes": ["blob", "size"],
                                                  "protected": ["group"],
                                                  "checks": {"coverage": {}, "holes": {}}},
                     reference=ref.astype(np.float32))
    out = tmp_path / "out"
    code, _, err = run_cli("run", cfg, "--out", out, "-q")
    assert code == 0, err
    doc = load_findings(out)
    for key in ("precision", "recall", "density", "coverage", "gap_regions"):
        assert f"coverage.{key}" in doc["metrics"]
    for key in ("count", "volume_fraction", "interpolation_risk"):
        assert f"holes.{key}" in doc["metrics"]
    gaps = [f for f in doc["findings"] if f["id"].startswith("coverage-gap")]
    assert gaps and gaps[0]["check"] == "coverage" and gaps[0]["evidence_ids"]
    html = (out / "report.html").read_text()
    assert 'id="check-coverage"' in html and "coverage_map" in html
