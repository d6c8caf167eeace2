"""generator_editing: edit along each attribute's prior direction, decode, re-embed, read.

In tests/generator_world.py's smooth world ``side`` is z0 > 0 and ``group`` is z1 > 0.5, so
editing side (moving along z0) must not move group. The planted decoder here also moves the
group-defining coordinate when z0 moves: the leakage is found, on the right pair. Plus
degenerate input, images, the metrics against their definitions, and the report."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from generator_world import SmoothDecoder, context, smooth, world
from scipy import stats
from sklearn.linear_model import LogisticRegression, RidgeCV
from test_gen_attributes import image_context
from torch import nn

from audit.checks.generator.editing import GeneratorEditingCheck
from audit.latents import LatentSet
from audit.metrics import edit_effects, prior_direction, readout_probe
from audit.preflight import metric_declared

SECTIONS = Path(__file__).resolve().parents[1] / "audit/report/assets/sections"


class EntangledDecoder(nn.Module):
    """Moving z0 also moves the coordinate that defines group (z1 + 0.8 z0 is decoded where
    the data has z1)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return smooth(torch.stack([z[:, 0], z[:, 1] + 0.8 * z[:, 0]], dim=1))


class ConstantDecoder(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return smooth(torch.zeros_like(z) + 0.3)


def _run(ctx, **settings):
    return GeneratorEditingCheck(**settings).run(ctx)


def _flagged(r):
    return [f for f in r.findings if f.severity != "info"]


def _attr(r, name):
    return next(a for a in r.tables["attributes"] if a["name"] == name)


# ---------------------------------------------------------------------- planted truth
@pytest.fixture(scope="module")
def entangled():
    ctx = context(EntangledDecoder(), n=2000, samples=3000, seed=0)
    return ctx, _run(ctx)


def test_entangled_decoder_leaks_side_into_group(entangled):
    _, r = entangled
    flagged = {(f.subjects["edited"], f.subjects["moved"]): f for f in _flagged(r)}
    assert set(flagged) == {("side", "group"), ("group", "side")}
    f = flagged[("side", "group")]
    X = r.tables["matrix"]
    assert X["attributes"] == ["side", "group"]
    assert 0.5 < f.value < 1.0 and f.ci[0] > 0.4 and f.ci[0] <= f.value <= f.ci[1]
    assert f.value == pytest.approx(X["relative"][0][1])
    assert f.subjects["raw"] == pytest.approx(X["raw"][0][1])
    assert X["raw_ci"][0][0][1] > 0 or X["raw_ci"][1][0][1] < 0     # excludes 0
    assert f.p_value < 1e-10 and f.threshold == 0.25
    assert all(e.startswith("gen-") for e in f.evidence_ids) and len(f.evidence_ids) == 20
    assert "0.5 prior standard deviations" in f.summary
    # the data does not tie side to group: the generator does
    assert abs(f.subjects["association_real"]) < 0.3 and "the generator ties them" in f.summary
    # side is still edited along z0 (its direction in the prior does not change)
    assert abs(_attr(r, "side")["direction"][0]) > 0.99
    assert r.metrics["generator.edit.max_leakage"] == pytest.approx(
        max(X["relative"][0][1], X["relative"][1][0]))
    assert r.metrics["generator.edit.attributes"] == 2.0
    assert all(metric_declared(m, GeneratorEditingCheck.produces) for m in r.metrics)


def test_sliders_walk_the_prior_and_show_rows(entangled):
    ctx, r = entangled
    sl = r.tables["sliders"]
    assert [s["attribute"] for s in sl] == ["side", "group"]
    s = sl[0]
    assert s["steps"] == [-2.0, -1.0, 0.0, 1.0, 2.0] and len(s["points"]) == 3
    assert len(s["rows"]) == 3 and len(s["rows"][0]) == 5 and s["columns"][0] == "x0"
    # the middle step is the generation itself
    p = int(s["points"][0][4:])
    assert s["rows"][0][2][0] == pytest.approx(float(ctx.generated.rows[p, 0]), rel=1e-3)
    # side's own read-out moves monotonically along its slider
    own = [s["readouts"][0][t][0] for t in range(5)]
    assert np.all(np.diff(own) > 0)
    assert r.display[0]["kind"] == "generator_editing_matrix"
    assert [d["index"] for d in r.display[1:]] == [0, 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smooth_world_edits_do_not_leak(seed):
    r = _run(context(SmoothDecoder(), n=2000, samples=3000, seed=seed))
    assert not _flagged(r)
    X = r.tables["matrix"]
    assert X["editable"] == [True, True]
    assert X["relative"][0][1] < 0.1 and X["relative"][1][0] < 0.1
    assert abs(_attr(r, "side")["direction"][0]) > 0.99
    assert abs(_attr(r, "group")["direction"][1]) > 0.99
    assert r.metrics["generator.edit.max_leakage"] < 0.1


def test_numeric_attribute_gets_a_ridge_read_out():
    r = _run(context(SmoothDecoder(), n=1500, samples=2000, seed=0, attributes=("z0",),
                     protected=()))
    a = _attr(r, "z0")
    assert a["kind"] == "numeric" and a["target_level"] is None and a["probe"]["metric"] == "r2"
    assert a["editable"] and abs(a["direction"][0]) > 0.99
    assert not _flagged(r) and "generator.edit.max_leakage" not in r.metrics
    assert any("Only one attribute" in n for n in r.tables["notes"])


def test_same_seed_same_findings():
    a = _run(context(EntangledDecoder(), n=600, samples=800, seed=4), points=64)
    b = _run(context(EntangledDecoder(), n=600, samples=800, seed=4), points=64)
    assert [f.to_json() for f in a.findings] == [f.to_json() for f in b.findings]
    assert a.tables["matrix"] == b.tables["matrix"]


# ---------------------------------------------------------------------- degenerate input
def test_a_decoder_that_ignores_the_prior_edits_nothing():
    r = _run(context(ConstantDecoder(), n=1000, samples=800, seed=0))
    assert not _flagged(r) and r.metrics["generator.edit.attributes"] == 0.0
    assert "generator.edit.max_leakage" not in r.metrics and r.tables["sliders"] == []
    kinds = [f.subjects.get("kind") for f in r.findings]
    assert kinds.count("not_editable") == 2


def test_unreadable_or_tiny_data_edits_nothing():
    real = world(600, 0)
    real = LatentSet(latents=np.zeros_like(real.latents), metadata=real.metadata,
                     ids=real.ids, source="<const>")
    r = _run(context(EntangledDecoder(), samples=500, real=real))
    assert not _flagged(r) and r.metrics == {"generator.edit.attributes": 0.0}
    assert "nothing to edit" in r.tables["notes"][0]
    assert all("cannot read" in f.summary for f in r.findings)
    r = _run(context(EntangledDecoder(), n=30, samples=300, seed=0))
    assert not _flagged(r) and r.metrics == {"generator.edit.attributes": 0.0}


def test_applies():
    from audit.context import Context
    assert "no generator" in GeneratorEditingCheck().applies(Context(world(50)))
    bare = context(SmoothDecoder(), n=100, samples=100, attributes=(), protected=())
    assert "no attributes" in GeneratorEditingCheck().applies(bare)


# ---------------------------------------------------------------------- images
def test_image_sliders_and_section():
    from jinja2 import DictLoader, Environment, select_autoescape

    from audit.report.html import _fmt, _pval
    r = _run(image_context(under=False, attributes=("side",)), points=128)
    assert not _flagged(r) and r.tables["matrix"]["editable"] == [True, True]
    sl = r.tables["sliders"]
    keys = {k for s in sl for row in s["images"] for k in row}
    assert keys == set(r.images) and len(keys) == 2 * 3 * 5
    assert all(img.dtype == np.uint8 and img.shape == (8, 8, 1) for img in r.images.values())
    # the blob moves right along side's slider (its direction is z0, towards "left" or not)
    s = sl[0]
    cols = [np.argmax(r.images[k][..., 0].sum(axis=0)) for k in s["images"][0]]
    assert cols[0] != cols[-1] and (np.all(np.diff(cols) >= 0) or np.all(np.diff(cols) <= 0))
    src = (SECTIONS / "generator_editing.html.j2").read_text(encoding="utf-8")
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True, loader=DictLoader({"s": src}))
    env.filters["fmt"], env.filters["pval"] = _fmt, _pval
    html = env.get_template("s").render(c=r, geometry={}, metrics=r.metrics)
    assert "Sliders" in html and "(images)" in html and "log-odds of" in html


# ---------------------------------------------------------------------- the metrics
def test_edit_effects_against_numpy_and_scipy():
    rng = np.random.default_rng(0)
    C = np.stack([np.column_stack([1 + 0.3 * rng.normal(size=100), 0.2 + rng.normal(size=100),
                                   rng.normal(size=100)]),
                  np.column_stack([0.5 * rng.normal(size=100), -2 + 0.3 * rng.normal(size=100),
                                   np.full(100, 0.7)])])
    res = edit_effects(C, n_bootstrap=300, random_state=0)
    np.testing.assert_allclose(res["matrix"], C.mean(axis=1), rtol=1e-12)
    for a in range(2):
        for b in range(3):
            p = stats.ttest_1samp(C[a, :, b], 0.0).pvalue if np.ptp(C[a, :, b]) > 0 else 0.0
            assert res["p_value"][a, b] == pytest.approx(p, rel=1e-9)
    M = C.mean(axis=1)
    np.testing.assert_allclose(res["relative"][0], np.abs(M[0]) / abs(M[0, 0]))
    np.testing.assert_allclose(res["relative"][1], np.abs(M[1]) / abs(M[1, 1]))
    lo, hi = res["matrix_ci"]
    assert np.all(lo <= M) and np.all(M <= hi)
    assert lo[1, 2] == hi[1, 2] == pytest.approx(0.7)          # constant changes
    # a row whose own change is 0 has no relative leakage
    res = edit_effects(np.zeros((1, 5, 2)), n_bootstrap=10, random_state=0)
    assert np.isnan(res["relative"]).all() and (res["p_value"] == 1.0).all()


def test_edit_effects_interval_coverage():
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(200):
        C = 0.4 + rng.normal(size=(1, 60, 1))
        lo, hi = edit_effects(C, n_bootstrap=200, random_state=rng.integers(1 << 30))[
            "matrix_ci"]
        hits += bool(lo[0, 0] <= 0.4 <= hi[0, 0])
    assert 0.88 <= hits / 200 <= 0.99


def test_readout_probe_equals_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)) * [1, 5, 0.2] + [0, 3, -1]
    y = np.where(X[:, 0] + 0.2 * X[:, 1] > 0.5, "a", "b")
    p = readout_probe(X, y, categorical=True)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    clf = LogisticRegression(class_weight="balanced", max_iter=500).fit((X - mu) / sd,
                                                                        (y == "b").astype(int))
    raw = clf.decision_function((X - mu) / sd)
    want = (raw - raw.mean()) / raw.std()
    np.testing.assert_allclose(X @ p["weights"] + p["bias"], want, atol=1e-8)
    assert p["target_level"] == "b" and p["scale"] == pytest.approx(raw.std())
    v = X[:, 2] * 3 + rng.normal(size=400)
    p = readout_probe(X, v, categorical=False)
    reg = RidgeCV(alphas=np.logspace(-3, 4, 15)).fit((X - mu) / sd, v)
    raw = reg.predict((X - mu) / sd)
    np.testing.assert_allclose(X @ p["weights"] + p["bias"], (raw - raw.mean()) / raw.std(),
                               atol=1e-8)
    assert readout_probe(X, y, categorical=True, target_level="a")["target_level"] == "a"


def test_prior_direction_equals_least_squares():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(500, 3)) * [1, 2, 0.5]
    s = 2 * z[:, 0] - z[:, 1] + 0.1 * rng.normal(size=500)
    scale = np.array([1, 2, 0.5])
    res = prior_direction(z, s, scale=scale)
    A = np.column_stack([np.ones(500), z / scale])
    w = np.linalg.lstsq(A, s, rcond=None)[0][1:]
    np.testing.assert_allclose(res["direction"], w / np.linalg.norm(w))
    assert res["slope"] == pytest.approx(np.linalg.norm(w)) and res["r2"] > 0.99
    flat = prior_direction(z, np.ones(500))
    assert not flat["direction"].any() and flat["slope"] == 0 and np.isnan(flat["r2"])


X0 = np.random.default_rng(0).normal(size=(40, 3))


@pytest.mark.parametrize("call, match", [
    (lambda: readout_probe(X0, np.array(["a"] * 40), categorical=True), "single value"),
    (lambda: readout_probe(X0, np.ones(40), categorical=False), "single value"),
    (lambda: readout_probe(X0, np.array(["a", "b"] * 20), categorical=True, target_level="c"),
     "not a level"),
    (lambda: readout_probe(X0, np.array(["a", "b"] * 20), categorical=False), "not numeric"),
    (lambda: readout_probe(X0, X0[:10, 0], categorical=False), "entries, expected 40"),
    (lambda: prior_direction(X0, X0[:, 0], scale=[1, 0, 1]), "positive"),
    (lambda: prior_direction(X0, np.full(40, np.nan)), "NaN"),
    (lambda: edit_effects(np.zeros((2, 5))), "3-D"),
    (lambda: edit_effects(np.zeros((3, 5, 2))), "3 edits for 2 attributes"),
    (lambda: edit_effects(np.zeros((1, 1, 2))), "at least 2 points"),
    (lambda: edit_effects(np.zeros((1, 5, 2)), n_bootstrap=-1), "n_bootstrap"),
    (lambda: edit_effects(np.zeros((1, 5, 2)), confidence=0.0), "confidence"),
])
def test_declared_constraints_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------- the report, drawn
def _report(ctx, path: Path) -> Path:
    from audit.checks.base import run_check
    from audit.checks.generator.attributes import GeneratorAttributesCheck
    from audit.findings import AuditResult
    from audit.report import render_html
    from audit.report.prepare import prepare_report
    results = [run_check(c, ctx, debug=True)
               for c in (GeneratorAttributesCheck(), GeneratorEditingCheck(points=96))]
    points, thumbs, _ = prepare_report(ctx, results, ctx.config)
    run = {"name": "generator <b>sections</b>", "n": ctx.n, "dim": ctx.data.dim, "seed": 0,
           "created": "now", "versions": {}, "config": {}, "data": {}, "reference": None,
           "attributes": ctx.attributes, "protected": ctx.protected}
    res = AuditResult(run=run, checks=results, gates=[], points=points,
                      geometry=ctx.describe(), timings={"total": 1.0}, thumbnails=thumbs,
                      ids=ctx.data.ids)
    return render_html(res, path)


def test_report_sections_draw_and_the_slider_switches_steps(browser, tmp_path):
    from conftest import console_errors, open_report
    path = _report(image_context(under=True, attributes=("side",)), tmp_path / "img.html")
    page, events = open_report(browser, path)
    assert not console_errors(events)
    assert all(u.startswith(("file:", "data:", "blob:")) for u in events["requests"])
    shares = page.query_selector_all("#check-generator_attributes .js-plotly-plot")
    assert len(shares) == 2                                   # side and group
    strip = page.query_selector_all("#check-generator_attributes img")
    assert len(strip) == 6                                    # generations read as B
    slider = page.query_selector("#fig-generator_editing-1 input[type=range]")
    img = "#fig-generator_editing-1 tbody img"
    last = page.eval_on_selector(img, "e => e.src")
    slider.fill("0")
    first = page.eval_on_selector(img, "e => e.src")
    assert first.startswith("data:image/png") and first != last
    label = page.eval_on_selector("#fig-generator_editing-1 span", "e => e.textContent")
    assert label.startswith("step -2.0 SD (1 of 5)")
    heat = page.query_selector_all("#fig-generator_editing-0 .heatmaplayer")
    assert heat
    # a table generator: rows in the slider
    path = _report(context(EntangledDecoder(), n=800, samples=1000, seed=0),
                   tmp_path / "rows.html")
    page, events = open_report(browser, path)
    assert not console_errors(events)
    row = "#fig-generator_editing-1 tbody code"
    before = page.eval_on_selector(row, "e => e.textContent")
    page.query_selector("#fig-generator_editing-1 input[type=range]").fill("2")
    after = page.eval_on_selector(row, "e => e.textContent")
    assert before.startswith("x0=") and after.startswith("x0=") and before != after
