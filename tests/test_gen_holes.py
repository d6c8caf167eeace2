"""generator_holes: prior regions whose decodes are unrealistic (issue 16, item 2).

Metric functions against their definitions; the planted hole of ``HoleDecoder`` (z0 > 1.5,
6.68% of the prior) found with its centre and mass, on table rows and on images; clean and
under-producing decoders over several seeds flag nothing; degenerate input never yields a
confident finding; the section and its figure render.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from generator_image_world import image_context
from generator_world import HoleDecoder, SmoothDecoder, UnderDecoder, context, world
from scipy import stats

from audit.checks import run_check
from audit.checks.generator.holes import GeneratorHolesCheck
from audit.context import Context
from audit.latents import LatentSet
from audit.metrics import (
    assign_regions,
    coverage,
    neighbour_realism,
    prior_plane,
    prior_regions,
    rate_excess_test,
)

HOLE_MASS = 1 - stats.norm.cdf(1.5)            # 0.0668


def _run(ctx, **settings):
    return run_check(GeneratorHolesCheck(**settings), ctx, debug=True)


def _warnings(result):
    return [f for f in result.findings if f.severity != "info"]


# ------------------------------------------------------------------ metric functions
def test_neighbour_realism_is_the_definition_and_prdc_precision():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((300, 3))
    fake = np.concatenate([rng.standard_normal((150, 3)), 3 + rng.standard_normal((50, 3))])
    k = 5
    dr = np.linalg.norm(real[:, None] - real[None], axis=2)
    radii = np.sort(dr, axis=1)[:, k]               # k-th neighbour, self the 0th
    df = np.linalg.norm(fake[:, None] - real[None], axis=2)
    direct = (radii[None] / df).max(axis=1)
    full = neighbour_realism(df, np.broadcast_to(radii, df.shape))
    np.testing.assert_allclose(full, direct)
    # realism > 1 is prdc's precision indicator
    assert np.mean(full > 1) == pytest.approx(coverage(real, fake, k=k)["precision"])
    # over the 20 nearest real points it agrees with the full score on the inside test
    order = np.argsort(df, axis=1)[:, :20]
    near = neighbour_realism(np.take_along_axis(df, order, 1), radii[order])
    assert np.mean((near > 1) == (full > 1)) >= 0.98
    assert np.all(near <= full + 1e-12)


def test_neighbour_realism_conventions_and_validation():
    assert neighbour_realism([[0.0]], [[0.0]]).tolist() == [0.0]      # in no open ball
    assert neighbour_realism([[0.0]], [[1.0]]).tolist() == [math.inf]
    with pytest.raises(ValueError):
        neighbour_realism([[1.0, 2.0]], [[1.0]])
    with pytest.raises(ValueError):
        neighbour_realism([[-1.0]], [[1.0]])


def test_prior_regions_assign_and_rate_test():
    z = np.concatenate([np.linspace(0, 1, 50), np.linspace(5, 6, 50)])[:, None]
    flags = np.zeros(100, bool)
    flags[50:] = True
    flags[10] = True                                   # a lone flag: a region of its own
    lab = prior_regions(z, flags, k=3)
    assert lab[50:].min() == lab[50:].max() == 0 and lab[10] == 1 and (lab[~flags] == -1).all()
    got = assign_regions([[5.5], [0.5], [2.5]], z, np.where(lab == 0, 0, -1), k=5)
    assert got.tolist() == [0, -1, -1]
    inside = np.zeros(100, bool)
    inside[40:60] = True
    r = rate_excess_test(inside, flags)
    a, c = int((inside & flags).sum()), int((~inside & flags).sum())
    p = stats.fisher_exact([[a, 20 - a], [c, 80 - c]], alternative="greater")[1]
    assert r["p_value"] == pytest.approx(p) and r["rate_in"] == a / 20
    assert rate_excess_test(np.zeros(5, bool), np.ones(5, bool))["p_value"] == 1.0


@pytest.mark.parametrize("dim", [2, 10])          # a k-d tree, then blocked products
def test_prior_searches_are_exact(dim):
    from audit.metrics import knn
    from audit.metrics._gen_holes import _prior_knn
    rng = np.random.default_rng(dim)
    z, q = rng.standard_normal((500, dim)), rng.standard_normal((50, dim))
    np.testing.assert_array_equal(_prior_knn(z, 7), knn(z, k=7)[1])
    np.testing.assert_array_equal(_prior_knn(q, 5, y=z), knn(q, k=5, y=z)[1])
    flags = z[:, 0] > 1.0
    np.testing.assert_array_equal(prior_regions(z, flags, k=6),
                                  prior_regions(z, flags, k=6, graph=knn(z, k=6)[1]))


def test_prior_plane_keeps_two_dims_and_points_at_holes():
    o, b, axes = prior_plane(np.zeros((3, 1)))
    assert o.tolist() == [0.0]
    assert b.shape == (2, 1) and axes[0] == "z0"
    rng = np.random.default_rng(1)
    z = rng.standard_normal((400, 5))
    _o, b, axes = prior_plane(z, [[0, 0, 0, 4.0, 0], [0, 3.0, 0, 0, 0]])
    np.testing.assert_allclose(b @ b.T, np.eye(2), atol=1e-12)
    assert axes == ["towards hole 1", "towards hole 2"]
    assert abs(b[0, 3]) > 0.99 and abs(b[1, 1]) > 0.99


# ------------------------------------------------------------------ planted hole
@pytest.fixture(scope="module")
def hole_run():
    ctx = context(HoleDecoder(), n=2000, samples=3000, seed=0)
    return ctx, _run(ctx)


def test_hole_found_with_centre_mass_and_evidence(hole_run):
    ctx, r = hole_run
    assert r.status == "ok"
    warn = _warnings(r)
    assert len(warn) == 1
    f = warn[0]
    centre = f.subjects["prior_center"]
    assert centre[0] >= 1.4 and abs(centre[1]) < 0.6
    lo, hi = f.subjects["prior_mass_ci"]
    assert lo <= HOLE_MASS <= hi and abs(f.subjects["prior_mass"] - HOLE_MASS) < 0.01
    assert r.metrics["generator.prior_holes"] == 1
    assert r.metrics["generator.prior_hole_mass"] == pytest.approx(f.subjects["prior_mass"])
    assert f.p_value < 1e-10 and f.ci[0] > 0.9 and f.subjects["ratio"] >= 3
    # evidence: generations from the hole (z0 > 1.5), ids gen-N
    gen = ctx.generated
    idx = np.array([int(e.split("-")[1]) for e in f.evidence_ids])
    assert len(idx) >= 50 and np.mean(gen.z[idx, 0] > 1.5) == 1.0
    # examples: decoded rows from inside the hole (+25 on every column)
    ex = r.tables["holes"][0]["examples"]
    assert len(ex) == 12 and all(min(e["row"]) > 15 for e in ex)
    m = r.tables["map"]
    assert m["axes"] == ["z0", "z1"] and sum(h > 0 for h in m["hole"]) >= 50


def test_same_seed_same_findings(hole_run):
    _ctx, r = hole_run
    again = _run(context(HoleDecoder(), n=2000, samples=3000, seed=0))
    assert [f.to_json() for f in again.findings] == [f.to_json() for f in r.findings]
    assert again.metrics == r.metrics


def test_hole_found_in_an_embedding_of_its_own():
    """The real set is not the audited data (``embed:`` an encoder of its own): the check
    works in the real set's own z-scored space."""
    ctx = context(HoleDecoder(), n=1500, samples=2500, seed=3)
    gen = ctx.generated
    real = LatentSet(latents=gen.real.latents.copy(), metadata=gen.real.metadata,
                     ids=gen.real.ids, source="<own>")
    ctx.generated = dataclasses.replace(gen, real=real)
    r = _run(ctx)
    assert r.tables["space"].startswith("the generator's own") and len(_warnings(r)) == 1
    assert _warnings(r)[0].subjects["prior_center"][0] >= 1.4


def test_hole_found_on_images():
    ctx = image_context("hole", n=1500, samples=2500, seed=0)
    r = _run(ctx)
    warn = _warnings(r)
    assert len(warn) == 1 and warn[0].subjects["prior_center"][0] >= 1.4
    keys = warn[0].subjects["images"]
    assert len(keys) == 12 and all(k in r.images for k in keys)
    img = r.images[keys[0]]
    assert img.dtype == np.uint8 and img.shape == (8, 8, 1)
    assert set(np.unique(img)) == {0, 255}                   # the checkerboard


# ------------------------------------------------------------------ nulls
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_decoder_flags_nothing(seed):
    r = _run(context(SmoothDecoder(), n=2000, samples=3000, seed=seed))
    assert r.status == "ok" and _warnings(r) == []
    assert r.metrics["generator.prior_holes"] == 0
    assert r.metrics["generator.prior_hole_mass"] == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_under_producing_decoder_is_not_a_hole(seed):
    r = _run(context(UnderDecoder(), n=2000, samples=3000, seed=seed))
    assert _warnings(r) == []


@pytest.mark.parametrize("n,samples,seed", [(300, 8000, 0), (300, 8000, 3), (100, 6000, 1)])
def test_sparse_real_data_flags_nothing(n, samples, seed):
    """Few real points, many generations: the prior's far tails decode where the real
    sample has no points. Those patches are small (below min_mass), and with fewer than
    min_real real points nothing is flagged at all."""
    r = _run(context(SmoothDecoder(), n=n, samples=samples, seed=seed))
    assert _warnings(r) == [], r.tables["regions"]
    assert r.tables["regions"]                 # there were tail regions to reject


# ------------------------------------------------------------------ degenerate input
def test_no_generator_or_tiny_input_is_skipped():
    ctx = Context(world(200, 0))
    assert GeneratorHolesCheck().applies(ctx) == "no generator: in the config"
    tiny = context(HoleDecoder(), n=12, samples=30, seed=0)
    r = run_check(GeneratorHolesCheck(), tiny)
    assert r.status == "skipped" and "real points" in r.error
    few = context(HoleDecoder(), n=300, samples=30, seed=0)
    assert "generations" in GeneratorHolesCheck().applies(few)


def test_small_input_gives_no_confident_finding():
    for seed in (0, 1, 2):
        r = _run(context(SmoothDecoder(), n=25, samples=60, seed=seed))
        assert r.status == "ok" and _warnings(r) == []


def test_constant_real_data_is_not_searched():
    real = world(100, 0)
    real = LatentSet(latents=np.ones_like(real.latents), metadata=real.metadata,
                     ids=real.ids, source="<const>")
    ctx = context(HoleDecoder(), samples=200, seed=0, real=real)
    r = _run(ctx)
    assert _warnings(r) == [] and r.findings[0].id == "generator_holes-not-searched"
    assert math.isnan(r.metrics["generator.prior_holes"])


# ------------------------------------------------------------------ report
def _render(tmp_path: Path, ctx, results) -> Path:
    from audit.findings import AuditResult
    from audit.report import render_html
    from audit.report.prepare import prepare_report
    points, thumbs, plot = prepare_report(ctx, results, ctx.config)
    geometry = ctx.describe()
    geometry["plot"] = plot
    run = {"name": "gen", "n": ctx.n, "dim": ctx.data.dim, "seed": 0, "created": "",
           "versions": {}, "config": {}, "config_file": None, "data": {"source": "x"},
           "reference": None, "attributes": [], "protected": []}
    res = AuditResult(run=run, checks=results, gates=[], points=points, geometry=geometry,
                      timings={"total": 1.0}, thumbnails=thumbs, ids=ctx.data.ids)
    return render_html(res, tmp_path / "report.html")


@pytest.fixture(scope="module")
def image_report(tmp_path_factory):
    from audit.checks.generator.memorization import GeneratorMemorizationCheck
    ctx = image_context("hole", n=800, samples=1500, seed=1)
    results = [_run(ctx), run_check(GeneratorMemorizationCheck(), ctx, debug=True)]
    return _render(tmp_path_factory.mktemp("holes_report"), ctx, results)


def test_section_in_the_report(image_report):
    html = image_report.read_text()
    assert 'id="check-generator_holes"' in html and "prior hole" in html
    assert html.count('alt="gen-') >= 12                 # the hole's decoded examples


@pytest.mark.browser
def test_prior_map_draws_in_chromium(image_report, browser):
    from conftest import console_errors, open_report
    page, events = open_report(browser, image_report)
    figs = page.locator("#check-generator_holes div.figure")
    assert figs.count() == 1
    assert page.locator("#check-generator_holes .js-plotly-plot").count() == 1
    assert page.locator("#check-generator_memorization .js-plotly-plot").count() == 1
    assert console_errors(events) == []
    page.close()
