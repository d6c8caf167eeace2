"""The entanglement check: planted entanglement vs data correlation, null data, awkward
attributes, dead dimensions, arithmetic consistency, decoders, and the demo's VAE."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audit.checks import build_checks, run_check
from audit.config import GeometryConfig
from audit.context import Context
from audit.latents import LatentSet
from conftest import console_errors, open_report

FAST = {"disentanglement": False, "n_bootstrap": 100, "n_permutations": 40, "grid_pairs": 1}


def lset(x, meta, **kw):
    n = len(x)
    return LatentSet(np.asarray(x, np.float32), meta, np.array([f"p{i}" for i in range(n)]),
                     "test", **kw)


def run_ent(x, meta, attributes, *, seed=0, data_kw=None, **settings):
    ctx = Context(lset(x, meta, **(data_kw or {})), geometry=GeometryConfig(map="pca"),
                  seed=seed)
    ctx.attributes = list(attributes)
    (check,) = build_checks({"entanglement": {**FAST, **settings}})
    res = run_check(check, ctx, debug=True)
    assert res.status == "ok", res.error
    json.dumps(res.tables, allow_nan=True)                  # plain data only
    return res


def flagged(res, prefix="entanglement-"):
    return [f for f in res.findings if f.severity != "info" and f.id.startswith(prefix)]


def pairs(res):
    return {frozenset(f.subjects["attributes"]) for f in flagged(res, "entanglement-pair")}


def planted(seed, n=1500):
    """a, b correlated at 0.8 in the data but encoded on separate axes; c, e independent
    but encoded along shared directions; k (categorical) on its own axis."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 0.8 * a + 0.6 * rng.normal(size=n)
    c, e = rng.normal(size=n), rng.normal(size=n)
    k = rng.choice(["r", "s", "t"], n)
    kpos = np.select([k == "r", k == "s"], [-1.0, 0.0], 1.0)
    X = np.column_stack([a, b, c + 0.8 * e, 0.2 * c + 0.6 * e, 1.5 * kpos,
                         rng.normal(size=(n, 3))])
    X = X + 0.3 * rng.normal(size=X.shape)
    meta = pd.DataFrame({"a": a, "b": b, "c": c, "e": e, "k": k})
    return X, meta


# ---- planted and null ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(2))
def test_flags_shared_directions_not_correlated_data(seed):
    X, meta = planted(seed)
    res = run_ent(X, meta, ["a", "b", "c", "e", "k"], seed=seed)
    assert pairs(res) == {frozenset({"c", "e"})}
    (f,) = flagged(res, "entanglement-pair")
    assert f.check == "entanglement" and f.metric == "entanglement.leakage"
    assert f.subjects["from"] in ("c", "e") and set(f.subjects["attributes"]) == {"c", "e"}
    assert f.value > f.ci[0] > f.threshold == 0.25 and f.p_value < 1e-6
    assert len(f.evidence_ids) >= 1
    # a and b appear as data correlation, and the summary says the model keeps them apart
    data = {frozenset(x.subjects["attributes"]): x for x in res.findings
            if x.id.startswith("entanglement-data-")}
    ab = data[frozenset({"a", "b"})]
    assert ab.severity == "info" and ab.value > 0.75 and ab.ci[0] > 0.7
    assert "not entanglement" in ab.summary
    J = res.tables["joint"]
    ia, ib = J["attributes"].index("a"), J["attributes"].index("b")
    assert abs(J["cosine"][ia][ib]) < 0.1 and J["leakage"][ia][ib] < 0.15
    assert J["marginal_leakage"][ia][ib] > J["leakage"][ia][ib]
    m = res.metrics
    for name in "abcek":
        assert m[f"entanglement.{name}.probe_score"] > 0.5
    assert m["entanglement.flagged_pairs"] == 1
    assert m["entanglement.max_leakage"] == pytest.approx(f.value)
    assert 0 < m["entanglement.mean_abs_cosine"] < 1
    assert res.tables["attributes"][4]["kind"] == "categorical"


NULL_SEEDS = range(3)


@pytest.mark.parametrize("seed", NULL_SEEDS)
def test_null_data_flags_nothing(seed):
    rng = np.random.default_rng(100 + seed)
    n = 1000
    u = rng.normal(size=n)
    meta = pd.DataFrame({"u": u, "v": 0.7 * u + 0.7 * rng.normal(size=n),
                         "w": rng.uniform(size=n), "g": rng.choice(list("xyz"), n)})
    X = rng.normal(size=(n, 8))
    res = run_ent(X, meta, ["u", "v", "w", "g"], seed=seed)
    assert flagged(res) == []
    assert res.metrics["entanglement.flagged_pairs"] == 0
    assert res.metrics["entanglement.dead_dimensions"] == 0
    # the data correlation of u and v is still reported, as context
    assert any(f.id == "entanglement-data-u-v" for f in res.findings)


def test_same_seed_same_findings():
    X, meta = planted(0, n=800)
    one = run_ent(X, meta, ["a", "b", "c", "e"], seed=3)
    two = run_ent(X, meta, ["a", "b", "c", "e"], seed=3)
    assert [f.to_json() for f in one.findings] == [f.to_json() for f in two.findings]
    assert one.metrics == two.metrics


def test_skipped_without_attributes():
    X, meta = planted(0, n=200)
    ctx = Context(lset(X, meta), geometry=GeometryConfig(map="pca"))
    (check,) = build_checks({"entanglement": {}})
    res = run_check(check, ctx)
    assert res.status == "skipped" and "attributes" in res.error


# ---- awkward attributes ------------------------------------------------------------------------

def test_awkward_attributes_are_each_handled_and_reported():
    rng = np.random.default_rng(0)
    n = 600
    good = rng.normal(size=n)
    X = np.column_stack([good, rng.normal(size=(n, 4))])
    with_missing = np.where(rng.random(n) < 0.2, np.nan, good + 0.1 * rng.normal(size=n))
    with_missing[:3] = np.inf
    meta = pd.DataFrame({
        "good": good,
        "constant": np.full(n, 3.0),
        "missing": with_missing,
        "id_like": [f"id{i}" for i in range(n)],
        "many_levels": rng.integers(0, 40, n).astype(str),
        "few_values": rng.integers(1, 4, n).astype(float),
        "rare": np.where(np.arange(n) < 3, "odd", np.where(good > 0, "hi", "lo")),
        "all_missing": np.full(n, np.nan),
        "flag": good > 0,
        "when": pd.date_range("2024-01-01", periods=n, freq="h"),
        "text_missing": np.where(rng.random(n) < 0.1, None, np.where(good > 0, "p", "q")),
        "nullable_int": pd.array(np.where(rng.random(n) < 0.1, None,
                                          np.round(10 * good).astype(int)), dtype="Int64"),
        "nullable_bool": pd.array(np.where(rng.random(n) < 0.1, None, good > 0),
                                  dtype="boolean"),
    })
    cols = list(meta.columns) + ["not_a_column"]
    res = run_ent(X, meta, cols)
    rows = {a["name"]: a for a in res.tables["attributes"]}
    assert set(rows) == set(cols)
    status = {k: v["status"] for k, v in rows.items()}
    assert {k for k, v in status.items() if v == "refused"} == {
        "constant", "id_like", "many_levels", "all_missing", "when", "not_a_column"}
    assert rows["constant"]["notes"][0].startswith("column 'constant' takes a single value")
    assert "more than max_levels=20" in " ".join(rows["many_levels"]["notes"])
    assert "600 distinct values" in rows["id_like"]["notes"][0]
    assert "identifier" in rows["id_like"]["notes"][0]
    assert "dates" in rows["when"]["notes"][0]
    assert rows["missing"]["status"] == "ok" and rows["missing"]["n_missing"] > 100
    assert "3 of them ±Inf" in rows["missing"]["notes"][0]
    assert rows["few_values"]["kind"] == "categorical"
    assert "treated as categorical" in rows["few_values"]["notes"][0]
    assert "merged into '<other>'" in " ".join(rows["rare"]["notes"])
    assert "dropped" in " ".join(rows["rare"]["notes"])          # 3 rows < cv folds
    assert rows["flag"]["kind"] == "categorical" and rows["flag"]["status"] == "ok"
    assert rows["text_missing"]["n_missing"] > 0
    assert rows["nullable_int"]["kind"] == "numeric" and rows["nullable_int"]["n_missing"] > 0
    assert rows["nullable_bool"]["kind"] == "categorical"
    assert rows["nullable_bool"]["levels"] == ["False", "True"]
    # every configured column is said in the report, as an info finding
    said = {f.subjects["attributes"][0] for f in res.findings
            if f.id.startswith("entanglement-attribute-")}
    assert {k for k, v in rows.items() if v["notes"]} <= said
    assert "not_a_column" in said and "good" not in said
    assert res.metrics["entanglement.attributes_refused"] == 6
    assert res.metrics["entanglement.attributes_probed"] == len(cols) - 6
    assert res.metrics["entanglement.missing.probe_score"] > 0.8
    assert "entanglement.constant.probe_score" not in res.metrics


def test_metric_names_are_safe_for_odd_column_names():
    rng = np.random.default_rng(0)
    n = 300
    v = rng.normal(size=n)
    meta = pd.DataFrame({"size (px)": v, "size [px]": -v + rng.normal(size=n)})
    res = run_ent(np.column_stack([v, rng.normal(size=(n, 3))]), meta, list(meta.columns))
    assert "entanglement.size__px_.probe_score" in res.metrics
    assert "entanglement.size__px__2.probe_score" in res.metrics


def test_only_one_usable_attribute_still_runs():
    rng = np.random.default_rng(0)
    n = 300
    v = rng.normal(size=n)
    meta = pd.DataFrame({"v": v, "c": np.zeros(n)})
    res = run_ent(np.column_stack([v, rng.normal(size=(n, 3))]), meta, ["v", "c"])
    assert res.metrics["entanglement.v.probe_score"] > 0.8
    assert np.isnan(res.metrics["entanglement.max_leakage"])
    assert flagged(res) == []


# ---- dead dimensions, consistency, disentanglement scores ----------------------------------------

def test_dead_dimension_is_flagged():
    rng = np.random.default_rng(0)
    n = 1000
    s, t = rng.normal(size=n), rng.normal(size=n)
    X = np.column_stack([s, t, rng.normal(size=(n, 3)), 1e-3 * rng.normal(size=n)])
    X = X + 0.1 * rng.normal(size=X.shape) * np.r_[np.ones(5), 0.0]
    res = run_ent(X, pd.DataFrame({"s": s, "t": t}), ["s", "t"])
    dead = flagged(res, "entanglement-dead")
    assert [f.subjects["dimension"] for f in dead] == [5]
    assert dead[0].ci[1] < 0.01 and dead[0].p_value < 0.05
    assert res.metrics["entanglement.dead_dimensions"] == 1
    assert res.tables["factors"]["dead"] == [False] * 5 + [True]


def test_direction_that_depends_on_a_group_is_flagged():
    rng = np.random.default_rng(0)
    n = 1500
    g = rng.choice(["sq", "ci", "tr"], n)
    a = rng.normal(size=n)
    ang = np.select([g == "sq", g == "ci"], [0.0, 1.3], 2.6)
    gpos = np.select([g == "sq", g == "ci"], [0.0, 1.0], 2.0)
    X = np.column_stack([a * np.cos(ang), a * np.sin(ang), 2 * gpos, rng.normal(size=(n, 2))])
    X = X + 0.2 * rng.normal(size=X.shape)
    res = run_ent(X, pd.DataFrame({"a": a, "g": g}), ["a", "g"])
    cons = {(f.subjects["attribute"], f.subjects["by"]): f
            for f in flagged(res, "entanglement-consistency")}
    # an interaction has two faces: a's direction depends on g, and g's effect on a
    assert set(cons) <= {("a", "g"), ("g", "a")} and ("a", "g") in cons
    assert cons["a", "g"].value < 0.5 and cons["a", "g"].p_value < 0.01
    assert res.metrics["entanglement.min_direction_consistency"] < 0.5


def test_disentanglement_scores_on_a_disentangled_code():
    rng = np.random.default_rng(0)
    n = 600
    f1, f2 = rng.integers(0, 4, n), rng.uniform(size=n)
    X = np.column_stack([f1 + 0.05 * rng.normal(size=n), f2, rng.normal(size=n) * 0.01 + 5])
    meta = pd.DataFrame({"f1": np.array(list("abcd"))[f1], "f2": f2})
    res = run_ent(X, meta, ["f1", "f2"], disentanglement=True, dci_max_rows=300)
    m = res.metrics
    names = ["mig", "dci.disentanglement", "dci.completeness", "dci.informativeness", "sap",
             "modularity"]
    for k in names:
        assert 0 <= m[f"disentanglement.{k}"] <= 1, k
    assert m["disentanglement.mig"] > 0.5 and m["disentanglement.dci.informativeness"] > 0.8
    notes = res.tables["factors"]["score_notes"]
    assert any("300 of 600" in s for s in notes)
    assert res.tables["factors"]["how"] == ["f1: its 4 levels", "f2: 5 quantile bins"]
    assert [row["metric"] for row in res.tables["factors"]["scores"]][0] == "disentanglement.mig"


# ---- decoder, images, sliders, grids ----------------------------------------------------------------

class LinearCodec:
    """A decoder to 4×4 single-channel uint8 images and its (near-exact) inverse."""

    def __init__(self, d: int, seed: int = 0) -> None:
        q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(16, 16)))
        self.A = q[:, :d]                                  # orthonormal columns

    def decode(self, z):
        px = 128 + 12 * (np.asarray(z, float) @ self.A.T)
        return np.clip(np.round(px), 0, 255).astype(np.uint8).reshape(-1, 4, 4, 1)

    def encode(self, imgs):
        px = np.asarray(imgs, float).reshape(len(imgs), 16)
        return ((px - 128) / 12) @ self.A


def test_decoder_gives_slider_images_and_reencoded_leakage():
    X, meta = planted(0, n=900)
    X = X[:, :6]
    codec = LinearCodec(6)
    res = run_ent(X, meta, ["a", "b", "c", "e"], slider_steps=5, grid_pairs=2, grid_steps=4,
                  data_kw={"decoder": codec.decode, "encoder": codec.encode})
    keys = set(res.images)
    assert {f"slider:{a}:{k}" for a in "abce" for k in range(5)} <= keys
    assert {f"grid:{p}:{k}" for p in range(2) for k in range(4)} <= keys
    assert all(im.dtype == np.uint8 and im.shape == (4, 4, 1) for im in res.images.values())
    s0 = res.tables["sliders"][0]
    assert s0["image_source"] == "decoded" and s0["readouts_source"] == "re-encoded"
    assert s0["images"][0] == "slider:a:0" and len(s0["nearest_ids"]) == 5
    re = res.tables["joint"]["reencoded"]
    J = res.tables["joint"]
    ic, ie = J["attributes"].index("c"), J["attributes"].index("e")
    assert re["leakage"][ic][ie] == pytest.approx(J["leakage"][ic][ie], abs=0.1)
    assert res.metrics["entanglement.max_leakage_reencoded"] == pytest.approx(
        res.metrics["entanglement.max_leakage"], abs=0.1)
    (f,) = flagged(res, "entanglement-pair")
    assert "decode → re-encode" in f.summary


def test_nearest_samples_without_decoder_and_a_broken_decoder():
    X, meta = planted(1, n=500)
    imgs = np.random.default_rng(0).integers(0, 255, (500, 8, 8, 3), dtype=np.uint8)
    res = run_ent(X, meta, ["a", "c"], data_kw={"images": imgs}, slider_steps=3)
    s0 = res.tables["sliders"][0]
    assert s0["image_source"] == "nearest"
    pos = {f"p{i}": i for i in range(500)}
    for key, nid in zip(s0["images"], s0["nearest_ids"]):
        assert np.array_equal(res.images[key], imgs[pos[nid]])
    bare = run_ent(X, meta, ["a", "c"], slider_steps=3)
    assert bare.images == {} and bare.tables["sliders"][0]["image_source"] is None
    assert "a=" in bare.tables["sliders"][0]["nearest"][0]

    def broken(z):
        raise RuntimeError("no GPU")
    res = run_ent(X, meta, ["a", "c"], data_kw={"decoder": broken, "images": imgs})
    assert any("decoder failed (RuntimeError: no GPU)" in n for n in res.tables["notes"])
    assert res.tables["sliders"][0]["image_source"] == "nearest"


# ---- the demo ---------------------------------------------------------------------------------------

def test_demo_reports_data_correlation_and_the_vaes_entanglement(demo_out):
    _, out = demo_out
    doc = json.loads((out / "findings.json").read_text())
    assert doc["run"]["checks"]["entanglement"]["status"] == "ok"
    m = doc["metrics"]
    for a in ("shape", "colour", "size", "x", "y"):
        assert m[f"entanglement.{a}.probe_score"] is not None
    for k in ("entanglement.max_leakage", "entanglement.mean_abs_cosine",
              "disentanglement.mig", "disentanglement.dci.disentanglement",
              "disentanglement.dci.completeness", "disentanglement.dci.informativeness",
              "disentanglement.sap", "disentanglement.modularity"):
        assert m[k] is not None and np.isfinite(m[k]), k
    ent = [f for f in doc["findings"] if f["check"] == "entanglement"]
    corr = {f["id"]: f for f in ent if f["id"].startswith("entanglement-data-")}
    sy = corr["entanglement-data-size-y"]
    assert sy["value"] > 0.7 and sy["ci"][0] > 0.65 and sorted(sy["subjects"]["attributes"]) == [
        "size", "y"]
    for f in ent:                    # whatever the VAE's entanglement is, it has intervals
        if f["severity"] != "info":
            assert f["p_value"] is not None and 0 <= f["p_value"] <= 1
            if f["id"].startswith("entanglement-pair-"):
                assert f["ci"][0] <= f["value"] <= f["ci"][1]
                assert len(f["subjects"]["attributes"]) == 2


def test_demo_joint_directions_match_interventions_on_the_generator(demo_out):
    """Render shapes, nudge one factor with the others fixed, encode with the demo's VAE:
    the average latent change is the true direction; the check's regression must find it."""
    torch = pytest.importorskip("torch")
    from audit.data.shapes import render_shapes
    from audit.encoders.vae import VAE, TrainedVAE
    from audit.metrics._directions import joint_directions
    _, out = demo_out
    saved = torch.load(out / "model" / "demo_vae.pt", weights_only=True)
    model = VAE(32 * 32 * 3, saved["latent_dim"], saved["hidden"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    vae = TrainedVAE(model, tuple(saved["image_shape"]), [])
    meta = pd.read_parquet(out / "store" / "metadata.parquet")
    z = np.concatenate([np.load(p) for p in sorted((out / "store" / "latents").glob("*.npy"))])
    mu, sd = z.mean(0), z.std(0)
    X = (z - mu) / sd
    names = ["shape", "colour", "size", "x", "y"]
    dirs = joint_directions(X, [meta[c].to_numpy() for c in names],
                            categorical=[True, True, False, False, False])
    base = meta[names].iloc[:400].reset_index(drop=True)
    z0 = (vae.encode(render_shapes(base)) - mu) / sd
    for k, f in enumerate(names[2:], start=2):
        moved = base.copy()
        moved[f] = np.clip(moved[f] + 0.05, 0, 1)
        true = ((vae.encode(render_shapes(moved)) - mu) / sd - z0).mean(0)
        cos = true @ dirs[k] / np.linalg.norm(true) / np.linalg.norm(dirs[k])
        assert cos > 0.8, (f, cos)


@pytest.mark.browser
def test_demo_section_renders_without_console_errors(demo_out, browser):
    _, out = demo_out
    page, events = open_report(browser, out / "report.html")
    sec = page.locator("#check-entanglement")
    n_fig = sec.locator("div.figure").count()
    assert n_fig >= 5 and sec.locator(".js-plotly-plot").count() == n_fig
    assert sec.locator(".slider-container").count() >= 1
    assert "Probes" in sec.inner_text() and "disentanglement.mig" in sec.inner_text()
    # move the first slider to its first step: its image changes
    src = page.evaluate("""() => {
        const gd = document.querySelector('#check-entanglement .slider-container')
                           .closest('.js-plotly-plot');
        const before = gd.layout.images[0].source;
        const step = gd.layout.sliders[0].steps[0];
        return Plotly.update(gd, step.args[0], step.args[1])
                     .then(() => [before, gd.layout.images[0].source]);
    }""")
    assert src[0].startswith("data:image/png") and src[0] != src[1]
    assert console_errors(events) == []
    page.close()
