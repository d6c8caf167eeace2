"""generator_modes: the planted mode no decoder produces is reported with exactly its ids,
the real region behind the planted prior hole is found, a reference mode shows as a
reference region, and a clean generator, a collapsed one and exact copies in the real data
give no confident finding; the report draws the section in a real browser."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import generator_world as W
from audit.checks.generator.modes import ModesCheck, dropped_regions
from audit.context import Context
from audit.latents import LatentSet

FLAGGED = ("warning", "critical")


def _flagged(res):
    return [f for f in res.findings if f.severity in FLAGGED]


def _run(ctx, **settings):
    return ModesCheck(**settings).run(ctx)


def _pr(found, truth):
    found, truth = set(found), set(truth)
    tp = len(found & truth)
    return tp / max(len(found), 1), tp / max(len(truth), 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_mode_is_the_one_dropped_region(seed):
    ctx = W.context(W.SmoothDecoder(), n=2000, samples=3000, seed=seed, mode=True)
    res = _run(ctx)
    (f,) = _flagged(res)
    truth = [i for i in ctx.data.ids if i.startswith("mode-")]
    precision, recall = _pr(f.evidence_ids, truth)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    assert f.id == "generator_modes-1" and f.p_value < 1e-10
    assert f.subjects["size"] == len(f.evidence_ids) and f.ci[0] <= f.value <= f.ci[1]
    assert res.metrics["generator.dropped_modes"] == 1.0
    assert res.metrics["generator.dropped_mass"] == pytest.approx(len(truth) / ctx.n,
                                                                  abs=0.01)
    # per real point: the flag marks the region, on the report's map too
    flag = res.per_sample["is_generator_modes_issue"]
    assert set(ctx.data.ids[flag]) == set(f.evidence_ids)
    assert res.per_sample["uncovered"][flag].all()
    assert set(res.metrics) <= set(ModesCheck.produces)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_generator_drops_nothing(seed):
    res = _run(W.context(W.SmoothDecoder(), n=2000, samples=3000, seed=seed))
    assert _flagged(res) == []
    assert res.metrics["generator.dropped_modes"] == 0.0


def test_hole_leaves_its_real_region_unreached():
    """Generations from z0 > 1.5 land far off, so the real data there is never reached."""
    ctx = W.context(W.HoleDecoder(), n=2000, samples=3000, seed=0)
    res = _run(ctx)
    (f,) = _flagged(res)
    z0 = ctx.data.metadata.set_index("id").loc[list(f.evidence_ids), "z0"].to_numpy()
    assert (z0 > 1.3).mean() >= 0.95 and np.median(z0) > 1.7
    true = set(ctx.data.ids[ctx.data.metadata["z0"].to_numpy() > 1.6])
    assert _pr(f.evidence_ids, true)[1] >= 0.9


def test_reference_mode_is_a_reference_region():
    ref = W.world(1500, 11, mode=True)
    ctx = W.context(W.SmoothDecoder(), n=2000, samples=3000, seed=0, reference=ref)
    res = _run(ctx)
    (f,) = _flagged(res)
    assert f.id == "generator_modes-reference-1" and f.subjects["set"] == "reference"
    truth = [i for i in ref.ids if i.startswith("mode-")]
    assert min(_pr(f.evidence_ids, truth)) >= 0.9
    assert res.metrics["generator.dropped_modes"] == 0.0
    assert res.metrics["generator.reference.dropped_modes"] == 1.0
    assert set(res.metrics) == set(ModesCheck.produces)
    assert "side=mode" in f.summary                    # what the region is made of


class _Collapsed(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return W.smooth(torch.zeros_like(z))


def test_collapsed_generator_gives_no_confident_finding():
    res = _run(W.context(_Collapsed(), n=1000, samples=60, seed=0))
    assert _flagged(res) == []
    assert [f.id for f in res.findings] == ["generator_modes-degenerate"]


def test_exact_copies_are_not_a_dropped_mode():
    """40 copies of one real row: a point mass no continuous generator hits exactly."""
    base = W.world(2000, 3)
    x = np.concatenate([base.latents, np.repeat(base.latents[:1], 40, axis=0)])
    meta = pd.concat([base.metadata, pd.DataFrame({"id": [f"copy-{i}" for i in range(40)],
                                                   "group": "A", "side": "left",
                                                   "z0": 0.0, "z1": 0.0})],
                     ignore_index=True)
    real = LatentSet(latents=x, metadata=meta, ids=meta["id"].to_numpy(), source="<copies>")
    res = _run(W.context(W.SmoothDecoder(), samples=3000, seed=3, real=real))
    assert _flagged(res) == []
    assert res.tables["real"]["distinct"] == 2000
    # without counting copies once, they would be one: 39 copies come before any generation
    gen = np.asarray(W.context(W.SmoothDecoder(), samples=3000, seed=3, real=real)
                     .generated.latents, dtype=np.float64)
    jitter = x.astype(np.float64) + np.r_[np.zeros((2000, 6)), 1e-6 * np.random.default_rng(
        0).standard_normal((40, 6))]
    assert len(dropped_regions(jitter, gen, k=5, alpha=0.01, min_size=10,
                               max_depth=1000).regions) == 1


# ------------------------------------------------------------------ the report
def _image_context(seed=0):
    ctx = W.context(W.SmoothDecoder(), n=800, samples=1200, seed=seed, mode=True,
                    reference=W.world(600, seed + 50, mode=True))
    rng = np.random.default_rng(seed)
    real = dataclasses.replace(ctx.data, images=rng.integers(
        0, 255, (ctx.n, 8, 8, 3), dtype=np.uint8))
    gen = dataclasses.replace(ctx.generated, real=real)
    return Context(real, reference=ctx.reference, config=ctx.config, generated=gen)


def test_examples_reach_the_report(tmp_path):
    from test_gen_fidelity import render
    ctx = _image_context()
    res = _run(ctx, examples=4)
    assert len(res.images) == 4               # the data's region; the reference has no images
    html = render(ctx, [res], tmp_path / "report.html").read_text()
    assert 'id="check-generator_modes"' in html and "dropped region(s)" in html
    assert html.count('title="mode-') == 4


@pytest.mark.browser
def test_section_draws_in_a_browser(browser, tmp_path):
    from conftest import console_errors, open_report
    from test_gen_fidelity import render
    ctx = _image_context(1)
    path = render(ctx, [_run(ctx)], tmp_path / "report.html")
    page, ev = open_report(browser, path)
    assert page.locator("#check-generator_modes .js-plotly-plot").count() == 1
    assert console_errors(ev) == []
    names = page.evaluate("() => document.querySelector('#check-generator_modes "
                          ".js-plotly-plot').data.map(t => t.text && typeof t.text === "
                          "'string' ? t.text : t.name)")
    assert any("mode 1" in str(n) for n in names)
    assert any("reference mode 1" in str(n) for n in names)
    page.close()


def test_many_clean_generations_do_not_resolve_the_data_noise_as_modes():
    """50,000 noise-free generations of the clean world against 10,000 noisy real rows: read
    in full, the depth test resolves the rows' noise as 11 'dropped' regions; the default
    reads a seeded sample of 5,000 generations and flags nothing."""
    from audit.checks import build_checks, run_check
    from generator_world import SmoothDecoder, context
    ctx = context(SmoothDecoder(), n=10000, samples=50000, seed=0)
    r = run_check(build_checks({"generator_modes": {}})[0], ctx)
    assert r.status == "ok" and r.tables["n_tested"] == 5000
    assert [f for f in r.findings if f.severity != "info"] == []
    assert r.metrics["generator.dropped_modes"] == 0.0
    uncapped = run_check(build_checks({"generator_modes": {"max_generations": 10**7}})[0], ctx)
    assert uncapped.metrics["generator.dropped_modes"] >= 5     # what the cap prevents
