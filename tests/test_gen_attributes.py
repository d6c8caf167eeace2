"""generator_attributes: what a generator over- or under-produces.

Planted truth (tests/generator_world.py's UnderDecoder: group B is 30.9% of the data and
0.4 × 30.9% = 12.3% of the generations), null decoders over several seeds, degenerate
input, the metrics against their definitions and scipy, and the report section."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audit.checks.generator.attributes import GeneratorAttributesCheck
from audit.context import Context
from audit.generator import Decoder, GeneratedSet, fit_prior
from audit.generator.decoder import decode
from audit.latents import LatentSet
from audit.metrics import (newcombe_interval, probe_read_levels, share_comparison,
                           wilson_interval)
from audit.preflight import metric_declared
from audit.streams import stream
from generator_world import SmoothDecoder, UnderDecoder, context, world

SECTIONS = Path(__file__).resolve().parents[1] / "audit/report/assets/sections"
P_B = stats.norm.sf(0.5)                 # group B's share of the data (z1 > 0.5)
P_B_GEN = 0.4 * P_B                      # UnderDecoder folds 60% of it away


def _run(ctx, **settings):
    return GeneratorAttributesCheck(**settings).run(ctx)


def _flagged(r):
    return [f for f in r.findings if f.severity != "info"]


def _section_env():
    """The report's Jinja2 environment with this check's section as template ``s``."""
    from jinja2 import DictLoader, Environment, select_autoescape

    from audit.report.html import _fmt, _pval
    src = (SECTIONS / "generator_attributes.html.j2").read_text(encoding="utf-8")
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True, loader=DictLoader({"s": src}))
    env.filters["fmt"], env.filters["pval"] = _fmt, _pval
    return env


def _level(r, column, level):
    col = next(c for c in r.tables["columns"] if c["name"] == column)
    return next(lv for lv in col["levels"] if lv["level"] == level)


# ---------------------------------------------------------------------- planted truth
@pytest.fixture(scope="module")
def under():
    ctx = context(UnderDecoder(), n=2000, samples=3000, seed=2)
    return ctx, _run(ctx)


def test_under_produced_group_is_found_with_intervals(under):
    ctx, r = under
    flagged = _flagged(r)
    assert len(flagged) == 1
    f = flagged[0]
    assert f.subjects["column"] == "group" and f.subjects["level"] == "B"
    assert f.subjects["direction"] == "under" and f.severity == "warning"
    lv = _level(r, "group", "B")
    assert lv["flagged"] and lv["real_share"] == pytest.approx(0.31, abs=0.02)
    assert lv["generated_share"] == pytest.approx(0.12, abs=0.015)
    # the intervals cover the truth: the prior mass of each
    assert lv["real_ci"][0] <= P_B <= lv["real_ci"][1]
    assert lv["generated_ci"][0] <= P_B_GEN <= lv["generated_ci"][1]
    assert lv["gap_ci"][0] <= P_B_GEN - P_B <= lv["gap_ci"][1]
    assert f.value == pytest.approx(lv["gap"]) and f.ci == tuple(lv["gap_ci"])
    assert f.p_value < 1e-20 and f.p_value == lv["q_value"]
    assert "of the data and 12% of generations (95% CI 11–14%)" in f.summary
    # evidence: real rows labelled B, then generations read as B
    real_b = set(ctx.generated.real.ids[ctx.generated.real.metadata["group"] == "B"])
    real_ev = [e for e in f.evidence_ids if not e.startswith("gen-")]
    gen_ev = [e for e in f.evidence_ids if e.startswith("gen-")]
    assert real_ev and set(real_ev) <= real_b and len(gen_ev) == 50
    b_rows = ctx.generated.rows[[int(e[4:]) for e in gen_ev]]
    assert np.mean(b_rows[:, 1] > 0.5) > 0.95         # read as B: they are B
    # the over-produced side (A: 69% -> 88%, ratio 1.27) is not material
    assert not _level(r, "group", "A")["flagged"]
    assert r.metrics["generator.group.max_share_gap"] == pytest.approx(abs(lv["gap"]))
    assert r.metrics["generator.attributes_tested"] == 2.0
    assert all(metric_declared(m, GeneratorAttributesCheck.produces) for m in r.metrics)


def test_table_rows_are_shown_for_the_flagged_level(under):
    ctx, r = under
    ex = _level(r, "group", "B")["examples"]
    assert len(ex["ids"]) == 6 and len(ex["rows"]) == 6 and ex["columns"][0] == "x0"
    first = int(ex["ids"][0][4:])
    assert ex["rows"][0][1] == pytest.approx(float(ctx.generated.rows[first, 1]), rel=1e-3)
    assert r.display == ({"kind": "generator_attributes_shares", "index": 0, "wide": False},
                         {"kind": "generator_attributes_shares", "index": 1, "wide": False})


def test_binned_numeric_column_finds_the_emptied_bin():
    ctx = context(UnderDecoder(), n=2000, samples=3000, seed=1, attributes=("z1",),
                  protected=())
    r = _run(ctx)
    col = r.tables["columns"][0]
    assert col["binned"] and len(col["levels"]) == 4
    under = [f for f in _flagged(r) if f.subjects["direction"] == "under"]
    assert [f.subjects["level"] for f in under] == [col["levels"][-1]["level"]]   # top bin
    assert "z1 = " in under[0].title


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_null_decoder_flags_nothing(seed):
    ctx = context(SmoothDecoder(), n=2000, samples=3000, seed=seed,
                  attributes=("side", "z0"))
    r = _run(ctx)
    assert not _flagged(r)
    assert r.metrics["generator.attributes_tested"] == 3.0
    assert all(r.metrics[f"generator.{c}.max_share_gap"] < 0.05 for c in ("side", "z0",
                                                                           "group"))


def test_same_seed_same_findings():
    a = _run(context(UnderDecoder(), n=800, samples=1000, seed=3))
    b = _run(context(UnderDecoder(), n=800, samples=1000, seed=3))
    assert [f.to_json() for f in a.findings] == [f.to_json() for f in b.findings]
    assert a.metrics == b.metrics


# ---------------------------------------------------------------------- degenerate input
def test_unreadable_column_is_skipped_as_info():
    real = world(1000, 0)
    real = LatentSet(latents=np.zeros_like(real.latents), metadata=real.metadata,
                     ids=real.ids, source="<const>")
    ctx = context(UnderDecoder(), samples=1000, real=real)
    r = _run(ctx)
    assert not _flagged(r) and r.metrics["generator.attributes_tested"] == 0.0
    skipped = [f for f in r.findings if f.subjects.get("kind") == "skipped"]
    assert len(skipped) == 2 and all("cannot read" in f.summary for f in skipped)


def test_tiny_data_and_missing_columns_give_no_confident_finding():
    ctx = context(UnderDecoder(), n=30, samples=500, seed=0,
                  attributes=("side", "nope"))
    r = _run(ctx)
    assert not _flagged(r) and r.metrics["generator.attributes_tested"] == 0.0
    reasons = {c["name"]: c["reason"] for c in r.tables["columns"]}
    assert "not in the real data" in reasons["nope"]
    assert "at least 20 real rows" in reasons["group"]


def test_applies():
    ctx = context(SmoothDecoder(), n=100, samples=100)
    assert GeneratorAttributesCheck().applies(ctx) is None
    assert "no generator" in GeneratorAttributesCheck().applies(Context(world(50)))
    bare = context(SmoothDecoder(), n=100, samples=100, attributes=(), protected=())
    assert "no attributes" in GeneratorAttributesCheck().applies(bare)


# ---------------------------------------------------------------------- images
def _blob_images(z: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:8, 0:8].astype(np.float32)
    cy = 3.5 + 1.2 * np.clip(z[:, 1], -2.5, 2.5)
    cx = 3.5 + 1.2 * np.clip(z[:, 0], -2.5, 2.5)
    img = np.exp(-((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2)
                 / 4.0)
    return np.round(255 * img).astype(np.uint8)[..., None]


def image_context(*, under: bool, n: int = 1200, samples: int = 1500, seed: int = 0,
                  attributes=()):
    """8×8 blob images whose position follows a 2-D prior point; group B: z1 > 0.5, side
    right: z0 > 0; with ``under`` the decoder folds 60% of B's prior region onto
    z1 < -0.5 (as tests/generator_world.py's UnderDecoder)."""
    def embed(kind, x):
        return (x.reshape(len(x), -1) / 255.0).astype(np.float32)

    def fn(z):
        z = np.array(z, dtype=np.float32)
        if under:
            fold = (z[:, 1] > 0.5) & (np.modf(np.abs(z[:, 0]) * 1e3)[0] < 0.6)
            z[fold, 1] = -z[fold, 1]
        return _blob_images(z)
    rng = np.random.default_rng(seed)
    zr = rng.standard_normal((n, 2)).astype(np.float32)
    imgs = _blob_images(zr)
    meta = pd.DataFrame({"id": [f"img{i}" for i in range(n)],
                         "group": np.where(zr[:, 1] > 0.5, "B", "A"),
                         "side": np.where(zr[:, 0] > 0, "right", "left")})
    real = LatentSet(latents=embed("image", imgs), metadata=meta, ids=meta["id"].to_numpy(),
                     images=imgs, source="<images>")
    dec = Decoder(fn=fn, dim=2, kind="factory", info={"kind": "test"})
    prior = fit_prior("gaussian", 2)
    z = prior.sample(samples, stream(seed, "generator.prior"))
    kind, out = decode(dec, z)
    gen = GeneratedSet(prior=prior, z=z, latents=embed(kind, out), kind=kind, real=real,
                       decoder=dec, embed=embed, images=out)
    from audit.config import config_from_dict
    cfg = config_from_dict({"name": "img", "seed": seed, "data": {"latents": "x.npy"},
                            "attributes": list(attributes), "protected": ["group"],
                            "geometry": {"map": "pca"}},
                           source="<images>")
    return Context(real, config=cfg, generated=gen)


def test_image_generator_examples_and_section():
    r = _run(image_context(under=True))
    (f,) = _flagged(r)
    assert f.subjects["level"] == "B" and f.subjects["direction"] == "under"
    ex = _level(r, "group", "B")["examples"]
    assert len(ex["images"]) == 6 and set(ex["images"]) == set(r.images)
    assert all(img.dtype == np.uint8 and img.shape == (8, 8, 1) for img in r.images.values())
    assert not _flagged(_run(image_context(under=False)))
    env = _section_env()
    html = env.get_template("s").render(c=r, geometry={}, metrics=r.metrics)
    assert "<code>B</code> (under)" in html and "chi-square" in html


def test_section_escapes_user_strings():
    real = world(1500, 0)
    real.metadata["group"] = np.where(real.metadata["group"] == "B", "<b>x</b>", "A")
    ctx = context(UnderDecoder(), samples=2000, real=real)
    r = _run(ctx)
    assert _flagged(r)[0].subjects["level"] == "<b>x</b>"
    env = _section_env()
    html = env.get_template("s").render(c=r, geometry={}, metrics=r.metrics)
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


# ---------------------------------------------------------------------- the metrics
def test_share_comparison_against_scipy_and_wilson():
    rng = np.random.default_rng(0)
    real = rng.choice(3, 700, p=[0.5, 0.3, 0.2])
    gen = rng.choice(3, 900, p=[0.6, 0.3, 0.1])
    res = share_comparison(real, gen, n_levels=3)
    table = np.vstack([np.bincount(real, minlength=3), np.bincount(gen, minlength=3)])
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    assert res["chi2"] == pytest.approx(chi2) and res["chi2_p_value"] == pytest.approx(p)
    assert res["dof"] == dof == 2
    assert res["cramers_v"] == pytest.approx(np.sqrt(chi2 / 1600))
    for j in range(3):
        two = np.array([[table[0, j], 700 - table[0, j]], [table[1, j], 900 - table[1, j]]])
        pj = stats.chi2_contingency(two, correction=False)[1]
        assert res["p_value"][j] == pytest.approx(pj, rel=1e-9)
        lo, hi = wilson_interval(int(table[1, j]), 900)
        assert res["generated_ci"][0][j] == pytest.approx(lo)
        assert res["generated_ci"][1][j] == pytest.approx(hi)
        assert res["ratio"][j] == pytest.approx((table[1, j] / 900) / (table[0, j] / 700))
    # a level nobody has, one only the generations have
    res = share_comparison([0, 0, 1, 1], [0, 2, 2, 2], n_levels=4)
    assert np.isnan(res["ratio"][3]) and np.isinf(res["ratio"][2])
    assert res["p_value"][3] == 1.0 and res["dof"] == 2


def test_newcombe_interval_covers_at_its_level():
    """Newcombe's example (in the doctest) and coverage over simulated pairs."""
    rng = np.random.default_rng(1)
    k1 = rng.binomial(400, 0.3, 4000)
    k2 = rng.binomial(600, 0.12, 4000)
    lo, hi = newcombe_interval(k1, 400, k2, 600)
    cover = np.mean((lo <= 0.18) & (0.18 <= hi))
    assert 0.93 < cover < 0.97


def test_probe_reads_like_the_sklearn_pipeline():
    rng = np.random.default_rng(0)
    y = rng.choice(["p", "q", "r"], 300, p=[0.5, 0.3, 0.2])
    X = rng.normal(size=(300, 4)) + 1.5 * (y == "q")[:, None] * np.eye(4)[0] \
        + 1.5 * (y == "r")[:, None] * np.eye(4)[1]
    G = rng.normal(size=(50, 4))
    res = probe_read_levels(X, y, G, n_bootstrap=0, random_state=3)
    codes = np.unique(y, return_inverse=True)[1]
    seed = np.random.RandomState(3).randint(np.iinfo(np.int32).max)
    pred = np.empty(300, dtype=int)
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(X, codes):
        pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        pred[te] = pipe.fit(X[tr], codes[tr]).predict(X[te])
    assert np.array_equal(res["real_read"], pred)
    full = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, codes)
    assert np.array_equal(res["generated_read"], full.predict(G))
    np.testing.assert_allclose(res["generated_proba"], full.predict_proba(G), atol=1e-6)
    assert res["levels"] == ["p", "q", "r"] and np.isnan(res["ci"][0])
    cm = res["confusion"]
    assert cm[1, 1] == pytest.approx(np.mean(pred[codes == 1] == 1))
    np.testing.assert_allclose(cm.sum(axis=1), 1.0)


X0 = np.random.default_rng(0).normal(size=(40, 3))
Y0 = np.array(["a", "b"] * 20)


@pytest.mark.parametrize("call, match", [
    (lambda: probe_read_levels(X0, Y0, X0, cv=1), "cv must be >= 2"),
    (lambda: probe_read_levels(X0, Y0, X0[:, :2]), "features"),
    (lambda: probe_read_levels(X0, np.array(["a"] * 40), X0), "single value"),
    (lambda: probe_read_levels(X0, np.array(["a"] * 38 + ["b"] * 2), X0), "fewer than cv"),
    (lambda: probe_read_levels(X0, np.array([None, "a"] * 20, dtype=object), X0),
     "missing"),
    (lambda: probe_read_levels(X0, Y0, X0, confidence=1.0), "confidence"),
    (lambda: share_comparison([0, 1], [0, 3], n_levels=3), r"codes in \[0, 3\)"),
    (lambda: share_comparison([], [0], n_levels=2), "empty"),
    (lambda: share_comparison([0], [0], n_levels=1), "n_levels must be >= 2"),
    (lambda: newcombe_interval(5, 4, 1, 2), r"\[0, n\]"),
    (lambda: newcombe_interval(1, 0, 1, 2), "n1 must be >= 1"),
])
def test_declared_constraints_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_section_renders_skipped_columns():
    r = _run(context(UnderDecoder(), n=30, samples=300, seed=0))
    env = _section_env()
    html = env.get_template("s").render(c=r, geometry={}, metrics=r.metrics,
                                        r=SimpleNamespace(thumbnails={}))
    assert "not tested" in html
