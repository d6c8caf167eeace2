"""The bias check: planted leakage, skew, disparity and slices are found with the right
evidence; null data stays quiet; small groups and missing values are handled; WEAT on
metadata selections runs end to end; the statistics helpers match SciPy."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audit.checks import build_checks, run_check
from audit.checks.bias import BiasCheck
from audit.columns import group_column
from audit.config import GeometryConfig
from audit.context import Context
from audit.errors import ConfigError
from audit.latents import LatentSet
from audit.metrics import MISSING_GROUP
from audit.metrics import weat
from audit.metrics._association import weat_normal_pvalue
from audit.metrics._slices import (chi2_permutation_pvalue, permutation_pvalue,
                                   rate_ratio_interval, slice_outcome_tests)
from conftest import console_errors, load_findings, open_report

FAST = {"leakage": {"cv": 3, "n_permutations": 19, "n_bootstrap": 0}}
NOMINAL = 0.05      # the documented false-alarm level: settings.alpha


def lset(x, meta, prefix="p"):
    n = len(x)
    return LatentSet(np.asarray(x, np.float32), meta.reset_index(drop=True),
                     np.array([f"{prefix}{i}" for i in range(n)]), "test")


def run_bias(x, meta, *, protected=("group",), attributes=(), outcome_col=None,
             reference=None,
             seed=0, **settings):
    ctx = Context(lset(x, meta), geometry=GeometryConfig(map="pca"), seed=seed,
                  reference=None if reference is None else lset(*reference, prefix="r"))
    ctx.protected, ctx.attributes, ctx.outcome = list(protected), list(attributes), outcome_col
    (check,) = build_checks({"bias": settings})
    res = run_check(check, ctx, debug=True)
    assert res.status == "ok"
    for f in res.findings:                     # every bias finding names its column
        assert f.check == "bias" and f.subjects.get("attribute"), f
    json.dumps(res.tables, allow_nan=True)     # plain data only
    return res, ctx


def flagged(res):
    return {f.id: f for f in res.findings if f.severity != "info"}


def blob_data(seed, n=600, d=6, centers=3, spread=6.0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d)) * spread
    lab = rng.integers(0, centers, n)
    return rng, c[lab] + rng.standard_normal((n, d)), lab


def cluster_of(ctx, mask):
    """The HDBSCAN cluster holding most of the points in ``mask``."""
    labels = ctx.clusters.labels[mask]
    return int(np.bincount(labels[labels >= 0]).argmax())


# ---------------------------------------------------------------------------- leakage

def test_planted_leakage_is_found_with_p_below_001():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((600, 6))
    g = rng.choice(np.array(["A", "B"], dtype=object), len(x), p=[0.6, 0.4])
    x[g == "B", 2] += 0.5                       # a small shift along one direction (d = 0.5)
    meta = pd.DataFrame({"group": g, "kind": rng.choice(list("xyz"), len(x))})
    res, _ = run_bias(x, meta, attributes=["kind"])
    hit = flagged(res)["bias-group-leakage"]
    assert hit.p_value < 0.01 and res.metrics["bias.group.leakage_p"] < 0.01
    assert hit.value == res.metrics["bias.group.leakage_auc"] > 0.6
    assert hit.subjects["attribute"] == "group" and hit.subjects["top_dims"][0]["dim"] == 2
    assert hit.ci[0] < hit.value < hit.ci[1]
    # not explained by the attribute: still readable once `kind` is regressed out
    assert "bias-group-leakage-adjusted" in flagged(res)
    assert res.metrics["bias.group.leakage_p_adjusted"] < 0.01
    table = res.tables["columns"]["group"]["leakage"]
    assert len(table["raw"]["null"]) == 40 and table["attributes"] == ["kind"]


def test_leakage_explained_by_attributes_is_not_flagged_after_adjustment():
    rng, x, lab = blob_data(2)
    # the group follows the cluster (a legitimate factor), nothing more
    g = np.where(rng.random(len(x)) < np.where(lab == 0, 0.9, 0.4), "A", "B")
    meta = pd.DataFrame({"group": g, "kind": lab.astype(str)})
    res, _ = run_bias(x, meta, attributes=["kind"], **FAST)
    assert "bias-group-leakage" in flagged(res)
    assert "bias-group-leakage-adjusted" not in flagged(res)
    assert res.metrics["bias.group.leakage_auc_adjusted"] < 0.56


# ---------------------------------------------------------------------------- representation

def test_planted_representation_skew_has_its_cluster_as_evidence():
    rng, x, lab = blob_data(3)
    g = rng.choice(np.array(["A", "B"], dtype=object), len(x), p=[0.7, 0.3])
    in0 = lab == 0
    g[in0] = np.where(rng.random(in0.sum()) < 0.97, "A", "B")     # cluster 0: almost all A
    res, ctx = run_bias(x, pd.DataFrame({"group": g}), **FAST)
    c = cluster_of(ctx, in0)
    hits = flagged(res)
    cell = hits[f"bias-group-cluster{c}-B"]                        # B under-represented there
    members = set(ctx.data.ids[ctx.clusters.labels == c])
    assert set(cell.evidence_ids) == members
    assert cell.subjects == {**cell.subjects, "attribute": "group", "group": "B", "cluster": c}
    assert cell.value < 0.5 and cell.p_value < 1e-6 and cell.severity == "critical"
    assert cell.ci[1] < 0.3                                         # B's share of the cluster
    # A's over-representation is at most 1 / 0.7 times expected: the skew shows on B
    over = hits.get(f"bias-group-cluster{c}-A")
    assert over is None or (over.value >= 1.25 and set(over.evidence_ids) == members)
    assert "bias-group-representation" in hits
    heat = res.tables["columns"]["group"]["representation"]
    assert any(r["flagged"] and r["cluster"] == c for r in heat["cells"])


# ---------------------------------------------------------------------------- disparity

def test_planted_low_density_disparity_with_wilson_intervals():
    rng, x, lab = blob_data(4)
    g = rng.choice(np.array(["A", "B"], dtype=object), len(x), p=[0.7, 0.3])
    x[g == "B"] += rng.standard_normal(((g == "B").sum(), x.shape[1])) * 1.2   # spread out
    res, ctx = run_bias(x, pd.DataFrame({"group": g}), **FAST)
    hit = flagged(res)["bias-group-low_density"]
    assert hit.subjects["group"] == "B" and hit.subjects["reference_group"] == "A"
    assert hit.value == res.metrics["bias.group.low_density_ratio"] < 0.5
    assert hit.ci[0] < hit.value < hit.ci[1]
    assert all(e in set(ctx.data.ids[g == "B"]) for e in hit.evidence_ids)
    rows = {r["group"]: r for r in res.tables["columns"]["group"]["disparity"]["low_density"]
            ["groups"]}
    for r in rows.values():
        lo, hi = r["ci"]
        assert lo <= r["rate"] <= hi
    assert rows["B"]["rate"] > 3 * rows["A"]["rate"]


def test_reference_regions_left_uncovered_per_group():
    rng, x, lab = blob_data(5, n=500)
    g = rng.choice(np.array(["A", "B"], dtype=object), len(x))
    rx = np.concatenate([x[:250] + rng.standard_normal((250, x.shape[1])) * 0.1,
                         rng.standard_normal((60, x.shape[1])) + 30])    # a region the data lacks
    rg = np.array(list(rng.choice(["A", "B"], 250)) + ["B"] * 60, dtype=object)
    res, ctx = run_bias(x, pd.DataFrame({"group": g}),
                        reference=(rx, pd.DataFrame({"group": rg})), **FAST)
    hit = flagged(res)["bias-group-uncovered"]
    assert hit.subjects["group"] == "B" and hit.value < 0.5
    assert set(hit.evidence_ids) >= {f"r{i}" for i in range(250, 310)}
    assert res.tables["columns"]["group"]["disparity"]["uncovered"]["unit"] == "reference points"


# ---------------------------------------------------------------------------- small and missing

def test_small_groups_are_listed_untested_and_never_flagged():
    rng, x, lab = blob_data(6)
    g = rng.choice(np.array(["A", "B"], dtype=object), len(x))
    small = np.flatnonzero(lab == 0)[:12]
    g[small] = "C"                              # 12 members, all in one cluster: extreme
    x[small] += 0.8                             # ...and shifted
    res, _ = run_bias(x, pd.DataFrame({"group": g}), min_group_size=30, **FAST)
    info = {f.id: f for f in res.findings}["bias-group-untested-C"]
    assert info.severity == "info" and info.subjects["n"] == 12 and info.value == 12
    assert set(info.evidence_ids) == {f"p{i}" for i in small}
    assert res.metrics["bias.group.groups_untested"] == 1
    assert all(f.subjects.get("group") != "C" for f in flagged(res).values())
    col = res.tables["columns"]["group"]
    assert col["untested"] == [{"group": "C", "n": 12}]
    assert "C" not in col["representation"]["groups"]
    assert not next(r for r in col["disparity"]["low_density"]["groups"]
                    if r["group"] == "C")["tested"]


def test_missing_values_are_their_own_group():
    rng, x, lab = blob_data(7)
    g = rng.choice(np.array(["A", "B"], dtype=object), len(x))
    in1 = lab == 1
    g[in1 & (rng.random(len(x)) < 0.6)] = None  # missing values pile up in one cluster
    g[~in1 & (rng.random(len(x)) < 0.03)] = np.nan
    res, ctx = run_bias(x, pd.DataFrame({"group": g}), **FAST)
    col = res.tables["columns"]["group"]
    assert [r["group"] for r in col["groups"]] == ["A", "B", MISSING_GROUP]
    assert col["groups"][-1]["missing"] and col["groups"][-1]["tested"]
    assert res.metrics["bias.group.missing_fraction"] == pytest.approx(
        pd.isna(pd.Series(g)).mean())
    c = cluster_of(ctx, in1)
    hit = flagged(res)[f"bias-group-cluster{c}-missing"]
    assert hit.subjects["group"] == MISSING_GROUP and hit.value > 1.25


def test_numeric_protected_columns_are_binned():
    """The check groups a column with audit.columns.group_column, as every chart does."""
    groups = group_column(pd.Series(np.r_[np.linspace(18, 80, 100), np.nan]), bins=4)
    labels, order, edges = groups.labels, groups.order, groups.edges
    assert len(order) == 5 and order[-1] == MISSING_GROUP and labels[-1] is None
    assert len(edges) == 5 and labels[0] == order[0] and labels[-2] == order[3]
    ref = group_column(pd.Series([10.0, 50.0, 99.0]), edges=edges).labels
    assert ref[0] == order[0] and ref[2] == order[3]       # beyond the edges: the end bins
    assert group_column(pd.Series([1.0, 2.0, None, 1.0])).order == ["1", "2", MISSING_GROUP]
    # levels that read as numbers are in numeric order (the check once sorted them as text)
    assert group_column(pd.Series([10, 2, 9, 2])).order == ["2", "9", "10"]


def test_protected_levels_appear_in_numeric_order():
    rng, x, lab = blob_data(21, n=600)
    g = rng.choice(np.array([2, 9, 10]), len(x))
    res, _ = run_bias(x, pd.DataFrame({"group": g}), **FAST)
    groups = [r["group"] for r in res.tables["columns"]["group"]["groups"]]
    assert groups == ["2", "9", "10"]


# ---------------------------------------------------------------------------- outcome slices

def test_outcome_slice_where_errors_pile_up_is_found():
    rng, x, lab = blob_data(8, n=900)
    g = rng.choice(np.array(["A", "B"], dtype=object), len(x), p=[0.6, 0.4])
    err = rng.random(len(x)) < 0.08
    bad = (g == "B") & (lab == 2)
    err[bad] = rng.random(bad.sum()) < 0.45
    meta = pd.DataFrame({"group": g, "err": err})
    res, ctx = run_bias(x, meta, outcome_col="err", **FAST)
    c = cluster_of(ctx, lab == 2)
    hits = flagged(res)
    key = f"bias-outcome-group_B_in_cluster_{c}"
    hit = hits[key]
    members = (g == "B") & (ctx.clusters.labels == c)
    assert set(hit.evidence_ids) == set(ctx.data.ids[members])
    assert hit.subjects["attribute"] == "group" and hit.subjects["cluster"] == c
    assert hit.subjects["n"] == members.sum() and hit.ci[0] > err.mean()
    assert hit.threshold == pytest.approx(err.mean())
    assert res.metrics["bias.outcome.overall"] == pytest.approx(err.mean())
    assert res.metrics["bias.group.outcome_gap"] > 0.05
    # a text outcome needs the value that counts as bad
    meta2 = meta.assign(err=np.where(err, "wrong", "right"))
    res2, _ = run_bias(x, meta2, outcome_col="err", outcome={"bad_value": "wrong"}, **FAST)
    assert key in flagged(res2)
    res3, _ = run_bias(x, meta2, outcome_col="err", **FAST)
    assert any(f.id == "bias-outcome-not-run" for f in res3.findings)


def test_numeric_outcome_lower_is_worse():
    rng, x, lab = blob_data(9)
    g = rng.choice(np.array(["A", "B"], dtype=object), len(x))
    acc = rng.normal(0.9, 0.05, len(x))
    acc[lab == 1] -= 0.06                       # accuracy drops in one cluster
    res, ctx = run_bias(x, pd.DataFrame({"group": g, "acc": acc}), outcome_col="acc",
                        outcome={"worse": "lower"}, **FAST)
    c = cluster_of(ctx, lab == 1)
    hit = flagged(res)[f"bias-outcome-cluster_{c}"]
    assert hit.value < hit.threshold and hit.subjects["attribute"] == "acc"
    assert hit.subjects["effect"] > 0.8


# ---------------------------------------------------------------------------- null data

def null_case(seed, n=400):
    """Blobs; the group (with a small group and missing values), the outcome and the
    attributes of interest independent of everything; a reference from the same law."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((3, 6)) * 6

    def draw(m):
        lab = rng.integers(0, 3, m)
        g = rng.choice(np.array(["A", "B"], dtype=object), m, p=[0.7, 0.3])
        g[rng.random(m) < 0.06] = None
        g[:12] = "C"
        meta = pd.DataFrame({"kind": np.array(list("xyz"))[lab], "size": rng.random(m),
                             "group": g, "err": (rng.random(m) < 0.15).astype(int)})
        return c[lab] + rng.standard_normal((m, 6)), meta
    return draw(n), draw(n // 2)


def test_null_data_false_alarm_rate_at_most_nominal():
    weat = [{"name": "ab", "targets": [{"group": "A"}, {"group": "B"}],
             "attributes": [{"kind": "x"}, {"kind": "y"}], "n_permutations": 199}]
    runs, tests = [], []
    for seed in range(20):
        (x, meta), ref = null_case(seed)
        res, _ = run_bias(x, meta, attributes=["kind", "size"], outcome_col="err",
                          reference=ref, seed=seed, weat=weat, **FAST)
        runs.append(bool(flagged(res)))
        tests.append(res.metrics["bias.tests"])
        assert not any(f.subjects.get("group") == "C" for f in res.findings
                       if f.severity != "info")
    assert min(tests) >= 15                     # leakage x2, representation, rates, slices, WEAT
    assert np.mean(runs) <= NOMINAL, runs


# ---------------------------------------------------------------------------- settings

def test_settings_schema():
    s = BiasCheck.Settings(weat=[{"name": "t", "targets": [{"group": "A"}, {"group": ["B", "C"]}],
                                  "attributes": [{"where": {"kind": "x"}, "name": "xs"},
                                                 {"kind": "y", "size": None}]}])
    t = s.weat[0]
    assert t.targets[1].where == {"group": ["B", "C"]} and t.attributes[0].label == "xs"
    assert t.attributes[1].label == "kind=y, size=None" and t.alternative == "two-sided"
    assert s.alpha == 0.05 and s.min_group_size == 30 and s.leakage.n_permutations == 40
    with pytest.raises(ConfigError) as e:
        build_checks({"bias": {"leakage": {"n_permutation": 5}}})
    assert e.value.key == "checks.bias.leakage.n_permutation"
    with pytest.raises(ConfigError, match="unique"):
        build_checks({"bias": {"weat": [t.model_dump(), t.model_dump()]}})
    with pytest.raises(ConfigError):
        build_checks({"bias": {"weat": [{"name": "t", "targets": [{"g": 1}],
                                         "attributes": [{"k": 1}, {"k": 2}]}]}})


def test_weat_selection_of_an_unknown_column_names_its_key():
    rng, x, lab = blob_data(11, n=200)
    meta = pd.DataFrame({"group": rng.choice(["A", "B"], len(x))})
    ctx = Context(lset(x, meta), geometry=GeometryConfig(map="pca"))
    (check,) = build_checks({"bias": {"weat": [
        {"name": "t", "targets": [{"group": "A"}, {"group": "B"}],
         "attributes": [{"kind": "x"}, {"kind": "y"}]}]}})
    res = run_check(check, ctx)
    assert res.status == "error" and "checks.bias.weat[0].attributes[0]" in res.error
    assert "'kind'" in res.error


def test_skipped_without_protected_outcome_or_weat():
    x = np.random.default_rng(0).standard_normal((100, 3))
    ctx = Context(lset(x, pd.DataFrame(index=range(100))), geometry=GeometryConfig(map="pca"))
    (check,) = build_checks({"bias": {}})
    assert run_check(check, ctx).status == "skipped"


# ---------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def weat_run(tmp_path_factory):
    """The CLI on latents where group A leans towards the `x` blob and B towards `y`."""
    import yaml

    from audit.cli import main
    tmp = tmp_path_factory.mktemp("weat")
    rng = np.random.default_rng(10)
    c = rng.standard_normal((3, 6)) * 5
    lab = rng.integers(0, 3, 600)
    g = rng.choice(["A", "B"], 600)
    x = c[lab] + rng.standard_normal((600, 6))
    x[g == "A"] += 0.6 * c[0]
    x[g == "B"] += 0.6 * c[1]
    np.save(tmp / "latents.npy", x.astype(np.float32))
    pd.DataFrame({"id": [f"s{i}" for i in range(600)], "kind": np.array(list("xyz"))[lab],
                  "group": g, "site": rng.choice(["u", "v"], 600),
                  "err": (rng.random(600) < 0.2).astype(int)}) \
        .to_csv(tmp / "meta.csv", index=False)
    cfg = {"name": "weat", "data": {"latents": "latents.npy", "metadata": "meta.csv"},
           "attributes": ["kind"], "protected": ["group"], "outcome": "err",
           "geometry": {"map": "pca"},
           "checks": {"clusters": {}, "bias": {**FAST, "weat": [
               {"name": "group_kind", "targets": [{"group": "A"}, {"group": "B"}],
                "attributes": [{"kind": "x"}, {"kind": "y"}], "n_permutations": 999},
               {"name": "site_kind", "targets": [{"site": "u"}, {"site": "v"}],
                "attributes": [{"kind": "x"}, {"kind": "y"}], "n_permutations": 999}]}},
           "gates": ["bias.weat.group_kind.effect_size >= 0"]}
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp / "out"
    code = main(["run", str(tmp / "cfg.yaml"), "--out", str(out), "-q"])
    return code, out


def test_weat_on_metadata_selections_end_to_end(weat_run):
    code, out = weat_run
    assert code == 0
    doc = load_findings(out)
    by_id = {f["id"]: f for f in doc["findings"] if f["check"] == "bias"}
    hit = by_id["bias-weat-group_kind"]
    assert hit["severity"] in ("warning", "critical") and hit["p_value"] < 0.01
    assert hit["value"] == doc["metrics"]["bias.weat.group_kind.effect_size"] > 0.5
    assert hit["subjects"]["attribute"] == "group" and hit["subjects"]["sizes"]["X"] > 50
    assert hit["evidence_ids"] and all(e.startswith("s") for e in hit["evidence_ids"])
    null = by_id["bias-weat-site_kind"]
    assert null["severity"] == "info" and abs(null["value"]) < 0.3
    assert doc["metrics"]["bias.weat.site_kind.p"] > 0.05
    assert doc["run"]["checks"]["bias"]["status"] == "ok"
    html = (out / "report.html").read_text()
    assert 'id="check-bias"' in html and "bias_weat" in html and "bias_leakage" in html
    assert "bias_slices" in html and doc["metrics"]["bias.outcome.slices_tested"] >= 3


@pytest.mark.browser
def test_bias_section_renders_in_chromium(weat_run, browser):
    _, out = weat_run
    page, events = open_report(browser, out / "report.html")
    figs = page.locator("#check-bias div.figure")
    assert figs.count() >= 5                # leakage, heatmap, disparity, slices, WEAT
    assert page.locator("#check-bias .js-plotly-plot").count() == figs.count()
    assert console_errors(events) == []
    page.close()


# ---------------------------------------------------------------------------- statistics

def test_slice_outcome_tests_match_scipy():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.2).astype(float)
    m = np.arange(300) < 80
    (t,) = slice_outcome_tests(y, [m])
    a, b = int(y[m].sum()), int(y[~m].sum())
    ref = stats.fisher_exact([[a, 80 - a], [b, 220 - b]], alternative="greater").pvalue
    assert t["p_value"] == pytest.approx(ref) and t["n"] == 80
    h = 2 * math.asin(math.sqrt(a / 80)) - 2 * math.asin(math.sqrt(b / 220))
    assert t["effect"] == pytest.approx(h)
    loss = rng.exponential(1.0, 300)
    (u,) = slice_outcome_tests(loss, [m], kind="mean", worse="lower")
    ref = stats.ttest_ind(loss[m], loss[~m], equal_var=False, alternative="less").pvalue
    assert u["p_value"] == pytest.approx(ref)
    assert u["ci"][0] < loss[m].mean() < u["ci"][1]
    y[5] = np.nan                                # missing outcomes are left out
    assert slice_outcome_tests(y, [m])[0]["n"] == 79


def test_chi2_permutation_pvalue_agrees_with_chi2_law_on_large_tables():
    rng = np.random.default_rng(1)
    r = rng.integers(0, 3, 2000)
    c = np.where(rng.random(2000) < 0.3 + 0.04 * r, 1, 0)
    table = np.zeros((3, 2))
    np.add.at(table, (r, c), 1)
    ref = stats.chi2_contingency(table, correction=False)
    res = chi2_permutation_pvalue(r, c, n_permutations=1999, random_state=0)
    assert res["chi2"] == pytest.approx(ref.statistic)
    assert res["p_value"] == pytest.approx(ref.pvalue, abs=0.02)


def test_permutation_pvalue_and_rate_ratio_interval():
    null = np.random.default_rng(2).normal(0.5, 0.02, 99)
    assert permutation_pvalue(0.5, null)["method"] == "permutation"
    far = permutation_pvalue(0.7, null)
    assert far["method"] == "normal-tail" and far["p_value"] < 1e-10
    assert far["p_permutation"] == 0.01
    assert permutation_pvalue(0.7, null, tail=False)["p_value"] == 0.01
    lo, hi = rate_ratio_interval(10, 100, 20, 100)
    se = math.sqrt(1 / 10 - 1 / 100 + 1 / 20 - 1 / 100)
    assert lo == pytest.approx(0.5 * math.exp(-1.959964 * se), rel=1e-5)
    assert hi == pytest.approx(0.5 * math.exp(1.959964 * se), rel=1e-5)
    assert all(math.isnan(v) for v in rate_ratio_interval(0, 10, 3, 10))


def test_weat_normal_tail_matches_exact_enumeration_on_moderate_sets():
    rng = np.random.default_rng(3)
    A, B = rng.normal(size=(8, 5)) + [2, 0, 0, 0, 0], rng.normal(size=(8, 5)) + [0, 2, 0, 0, 0]
    for shift in (0.0, 0.3, 0.6):
        X = rng.normal(size=(10, 5)) + [shift, 0, 0, 0, 0]
        Y = rng.normal(size=(10, 5))
        exact = weat(X, Y, A, B, exact_max=200_000)
        assert exact["exact"] and exact["n_partitions"] == 184756
        assert weat_normal_pvalue(X, Y, A, B) == pytest.approx(exact["p_value"], abs=0.02)
