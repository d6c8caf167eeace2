"""generator_fidelity: prdc numbers equal to the ``prdc`` package, the realism score equal to
its definition, the null precision equal to its leave-one-out definition; a clean generator
is never flagged, the planted hole lowers precision by its share of the prior, a collapsed
generator gives no confident finding; the report draws the section in a real browser."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

import generator_world as W
from audit.checks.generator.fidelity import FidelityCheck
from audit.context import Context
from audit.metrics import null_precision, prdc_indicators, prdc_intervals, realism_score

prdc = pytest.importorskip("prdc")

FLAGGED = ("warning", "critical")


def _flagged(res):
    return [f for f in res.findings if f.severity in FLAGGED]


def _dist(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def _radii(x, k):
    """prdc's k-NN radius by brute force: the k-th smallest distance, the point itself 0th."""
    return np.sort(_dist(x, x), axis=1)[:, k]


# ------------------------------------------------------------------ metric functions
@pytest.mark.parametrize("seed", [0, 1])
def test_indicators_equal_prdc(seed):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(400, 5))
    fake = np.concatenate([rng.normal(size=(250, 5)) * 1.3 + 0.4, real[:30]])   # copies too
    for k in (1, 3, 5):
        ours = prdc_indicators(real, fake, k=k)
        ref = prdc.compute_prdc(real, fake, k)
        for m in ("precision", "recall", "density", "coverage"):
            assert abs(ours[m] - float(ref[m])) <= 1.0 / len(real), (m, k)
        # the indicators are what the numbers average
        assert ours["precise"].mean() == ours["precision"]
        assert ours["covered"].mean() == ours["coverage"]
        assert np.allclose(ours["real_radii"], _radii(real, k))


def test_intervals_hold_the_estimates():
    rng = np.random.default_rng(3)
    ind = prdc_indicators(rng.normal(size=(300, 3)), rng.normal(size=(200, 3)) + 0.5, k=5)
    ci = prdc_intervals(ind, confidence=0.95)
    for m in ("precision", "recall", "density", "coverage"):
        lo, hi = ci[m]
        assert lo <= ind[m] <= hi and hi - lo < 0.3, m


def test_realism_equals_its_definition():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(120, 4))
    fake = np.concatenate([rng.normal(size=(60, 4)) * 1.5, real[:3] + 1e-3, [[9.0] * 4]])
    for k in (1, 3, 5):
        r = _radii(real, k)
        keep = r <= np.median(r)                      # drop the half with the largest radii
        direct = (r[keep][None, :] / _dist(fake, real[keep])).max(axis=1)
        ours = realism_score(real, fake, k=k)
        np.testing.assert_allclose(ours, direct, rtol=1e-10)
        # the prdc radii can be passed in
        np.testing.assert_allclose(realism_score(real, fake, k=k, radii=r), direct, rtol=1e-10)
    # few kept points (all searched), and data far from the origin (float32 search)
    for x, f in ((real[:40], fake), (real + 1e3, fake + 1e3)):
        r = _radii(x, 3)
        keep = r <= np.median(r)
        direct = (r[keep][None, :] / _dist(f, x[keep])).max(axis=1)
        np.testing.assert_allclose(realism_score(x, f, k=3), direct, rtol=1e-10)
    # realism >= 1 exactly inside (or on) a kept ball; a copy of a kept point is infinite
    kept = np.flatnonzero(keep)[0]
    assert realism_score(real, real[[kept]], k=5)[0] == np.inf
    assert realism_score(real, [[50.0] * 4], k=5)[0] < 0.1


def test_null_precision_is_leave_one_out_precision():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(80, 3))
    d = _dist(x, x)
    np.fill_diagonal(d, np.inf)
    graph = np.argsort(d, axis=1, kind="stable")[:, :6]
    for k in (1, 3, 5):
        loo = []
        for j in range(len(x)):
            rest = np.delete(x, j, axis=0)
            inside = _dist(x[[j]], rest)[0] < _radii(rest, k)
            loo.append(inside.any())
        assert null_precision(graph, k) == pytest.approx(np.mean(loo))


# ------------------------------------------------------------------ the check
def _run(ctx, **settings):
    return FidelityCheck(**settings).run(ctx)


def test_check_metrics_equal_prdc_on_its_arrays():
    ctx = W.context(W.SmoothDecoder(), n=1500, samples=2000, seed=0)
    res = _run(ctx)
    real = np.asarray(ctx.space, dtype=np.float64)
    fake = np.asarray(ctx.to_space(ctx.generated.latents), dtype=np.float64)
    ref = prdc.compute_prdc(real, fake, 5)
    for m in ("precision", "recall", "density", "coverage"):
        assert abs(res.metrics[f"generator.{m}"] - float(ref[m])) <= 1 / len(real), m
    assert set(res.metrics) <= set(FidelityCheck.produces)
    # every generation has a realism score in the tables, the map draws them all
    assert len(res.tables["realism"]) == ctx.generated.n
    assert res.tables["map"]["shown"] == ctx.generated.n and not res.tables["map"]["sampled"]
    assert len(res.tables["grid"]) == 12 and "row" in res.tables["grid"][0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_generator_is_not_flagged(seed):
    res = _run(W.context(W.SmoothDecoder(), n=2000, samples=3000, seed=seed))
    assert _flagged(res) == []
    assert res.metrics["generator.precision"] > res.metrics["generator.precision_null"] - 0.03


def test_clean_generator_with_many_generations_is_not_flagged():
    """Noise-free decodes: recall falls as generations grow (info only), nothing flagged."""
    res = _run(W.context(W.SmoothDecoder(), n=2000, samples=12000, seed=4), sample=6000)
    assert _flagged(res) == []
    assert res.metrics["generator.recall"] < 0.6
    assert [f.severity for f in res.findings if f.id.endswith("-recall")] == ["info"]


def test_hole_lowers_precision_by_its_share():
    clean = W.context(W.SmoothDecoder(), n=2000, samples=3000, seed=0)
    hole = W.context(W.HoleDecoder(), n=2000, samples=3000, seed=0)
    off = hole.generated.z[:, 0] > 1.5                   # the same prior draws in both
    pc, ph = _run(clean), _run(hole)
    drop = pc.metrics["generator.precision"] - ph.metrics["generator.precision"]
    assert abs(drop - off.mean()) < 0.005, (drop, off.mean())     # 6.0% of these draws
    # flagged, with the off-manifold generations as the evidence
    (f,) = _flagged(ph)
    assert f.id == "generator_fidelity-precision" and f.severity == "warning"
    assert f.ci[1] < f.threshold
    ids = set(hole.generated.ids[off])
    assert len(ids) <= 200 and set(f.evidence_ids[:len(ids)]) == ids    # least realistic first
    # the off generations are the least realistic
    realism = np.array([np.inf if v is None else v for v in ph.tables["realism"]])
    assert realism[off].max() < 0.05 < np.median(realism[~off])


class _Collapsed(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return W.smooth(torch.zeros_like(z))


def test_collapsed_generator_gives_no_confident_finding():
    ctx = W.context(_Collapsed(), n=1000, samples=60, seed=0)
    res = _run(ctx)
    assert _flagged(res) == []
    assert [f.id for f in res.findings] == ["generator_fidelity-degenerate"]


def test_skips_without_a_generator():
    ctx = Context(W.world(200, 0))
    assert FidelityCheck().applies(ctx) == "no generator: in the config"


def test_reference_and_sampling():
    ref = W.world(1200, 9, mode=True)
    ctx = W.context(W.SmoothDecoder(), n=1500, samples=2000, seed=1, reference=ref)
    res = _run(ctx, sample=1000)
    assert res.tables["sample"] == {"real": 1000, "generated": 1000, "sampled": True,
                                    "cap": 1000}
    assert any(f.id == "generator_fidelity-sample" for f in res.findings)
    # the reference holds a mode the generator never makes: lower coverage than the data
    assert res.metrics["generator.reference.coverage"] < res.metrics["generator.coverage"] - 0.03
    assert set(res.metrics) == set(FidelityCheck.produces)
    # same seed, same numbers
    again = _run(ctx, sample=1000)
    assert again.metrics == res.metrics


# ------------------------------------------------------------------ the report
def _image_context(seed=0):
    """The world with images: every real point and generation gets a small picture."""
    ctx = W.context(W.SmoothDecoder(), n=600, samples=800, seed=seed)
    rng = np.random.default_rng(seed)
    real = dataclasses.replace(ctx.data, images=rng.integers(
        0, 255, (ctx.n, 8, 8, 3), dtype=np.uint8))
    gen = dataclasses.replace(ctx.generated, kind="image", rows=None, real=real,
                              images=rng.integers(0, 255, (ctx.generated.n, 8, 8, 3),
                                                  dtype=np.uint8))
    return Context(real, config=ctx.config, generated=gen)


def render(ctx, results, path):
    """report.html of ``results`` on ``ctx`` (what the pipeline writes)."""
    from audit.findings import AuditResult
    from audit.report import render_html
    from audit.report.prepare import prepare_report
    points, thumbs, plot = prepare_report(ctx, results, ctx.config)
    geometry = ctx.describe()
    geometry["plot"] = plot
    run = {"name": "world", "n": ctx.n, "dim": ctx.data.dim, "seed": ctx.seed,
           "created": "2025-01-01T00:00:00+00:00", "versions": {},
           "config": ctx.config.public_dict(), "config_file": None,
           "data": {"latents": "x.npy"}, "reference": None,
           "attributes": ctx.attributes, "protected": ctx.protected}
    result = AuditResult(run=run, checks=results, gates=[], points=points, geometry=geometry,
                         timings={"total": 0.0}, thumbnails=thumbs, ids=ctx.data.ids)
    return render_html(result, path)


def test_images_reach_the_report(tmp_path):
    ctx = _image_context()
    res = _run(ctx, grid=6)
    assert len(res.images) == 6 + 8          # the grid and the least realistic ones
    assert all(k.startswith("generator_fidelity-gen-") for k in res.images)
    html = render(ctx, [res], tmp_path / "report.html").read_text()
    assert 'id="check-generator_fidelity"' in html and "Random generations" in html
    assert html.count('alt="gen-') == 14


@pytest.mark.browser
def test_section_draws_in_a_browser(browser, tmp_path):
    from conftest import console_errors, open_report
    ctx = _image_context(1)
    path = render(ctx, [_run(ctx)], tmp_path / "report.html")
    page, ev = open_report(browser, path)
    assert page.locator("#check-generator_fidelity .js-plotly-plot").count() == 1
    assert console_errors(ev) == []
    n = page.evaluate("() => document.querySelector('#check-generator_fidelity "
                      ".js-plotly-plot').data[1].x.length")
    assert n == ctx.generated.n
    page.close()
