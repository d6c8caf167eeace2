"""generator_memorization: generations that are near-copies of real samples (issue 16, item 4).

Metric functions against their definitions; ``MemoDecoder`` (z0 < -1, 15.9% of the prior,
returns exact training rows) found with the right pairs; the same on images, with both
images of each pair; clean, under-producing and hole decoders over several seeds flag
nothing; degenerate input never yields a confident finding; the section renders.
"""
from __future__ import annotations

import numpy as np
import pytest
from generator_image_world import image_context
from generator_world import (
    HoleDecoder,
    MemoDecoder,
    SmoothDecoder,
    UnderDecoder,
    context,
    world,
)
from scipy import stats

from audit.checks import run_check
from audit.checks.generator.memorization import GeneratorMemorizationCheck
from audit.context import Context
from audit.latents import LatentSet
from audit.metrics import copy_ratios, copy_test, knn, loo_nearest_null


def _run(ctx, **settings):
    return run_check(GeneratorMemorizationCheck(**settings), ctx, debug=True)


def _warnings(result):
    return [f for f in result.findings if f.severity != "info"]


# ------------------------------------------------------------------ metric functions
def test_loo_null_is_the_leave_one_out_definition():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3)).astype(np.float32).astype(np.float64)   # knn's floats
    x[5] = x[7]                                       # an exact duplicate pair
    d, i = knn(x, k=4)
    dist = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    glob = loo_nearest_null(d, i, local=False)
    np.testing.assert_allclose(glob, dist.min(axis=1), rtol=1e-6)
    loc = loo_nearest_null(d, i)
    for a in range(len(x)):
        j = int(np.argmin(dist[a]))
        if a in (5, 7):
            j = 7 if a == 5 else 5
        others = np.delete(dist[j], [a, j])       # j's spacing without a (and itself)
        expect = 0.0 if dist[a, j] == 0 and others.min() == 0 else dist[a, j] / others.min()
        assert loc[a] == pytest.approx(expect, rel=1e-6), a
    assert loc[5] == 0.0 and loc[7] == 0.0


def test_copy_test_counts_and_fisher():
    rng = np.random.default_rng(1)
    null = rng.exponential(size=500)
    gen = np.concatenate([np.zeros(30), rng.exponential(size=470)])
    r = copy_test(gen, null, quantile=0.02, shrink=0.5)
    t = 0.5 * np.sort(null)[int(np.ceil(0.02 * 500)) - 1]          # inverted-cdf quantile
    assert r["threshold"] == pytest.approx(t)
    x, m = int((gen <= t).sum()), int((null <= t).sum())
    assert (r["observed"], r["null_below"]) == (x, m)
    p = stats.fisher_exact([[x, 500 - x], [m, 500 - m]], alternative="greater")[1]
    assert r["p_value"] == pytest.approx(p) and r["p_value"] < 1e-6
    assert r["fraction"] == x / 500 and r["expected"] == m / 500
    assert r["copies"].sum() == x and r["ratio_ci"][0] < r["ratio"] < r["ratio_ci"][1]
    same = copy_test(null, null, quantile=0.05)
    assert same["ratio"] == pytest.approx(1.0) and same["p_value"] > 0.4
    assert copy_ratios([0.0, 1.0], [0.0, 0.0]).tolist() == [0.0, np.inf]
    with pytest.raises(ValueError):
        copy_test([-1.0], [1.0])


# ------------------------------------------------------------------ planted memorisation
@pytest.fixture(scope="module")
def memo():
    real = world(2000, 0)
    ctx = context(MemoDecoder(real.latents), real=real, samples=3000, seed=0)
    return ctx, _run(ctx)


def test_memorisation_found_with_the_right_pairs(memo):
    ctx, r = memo
    gen = ctx.generated
    copied = gen.z[:, 0] < -1.0
    pick = (np.abs(gen.z[:, 1].astype(np.float32)) * 1e4).astype(np.int64) % 2000
    warn = _warnings(r)
    assert len(warn) == 1
    f = warn[0]
    frac = r.metrics["generator.memorized_fraction"]
    assert abs(frac - copied.mean()) <= 0.005 and 0.14 <= frac <= 0.18
    assert r.metrics["generator.memorized_expected"] <= 0.005
    assert f.p_value < 1e-20 and f.ci[0] <= frac <= f.ci[1]
    # every pair: a copying generation, its training row, distance 0
    pairs = f.subjects["pairs"]
    assert len(pairs) == 16
    for p in pairs:
        g = int(p["generated"].split("-")[1])
        assert copied[g] and p["real"] == f"r{pick[g]}" and p["distance"] == 0.0
    # evidence alternates generation, real id (50 pairs)
    ev = f.evidence_ids
    assert len(ev) == 100 and all(e.startswith("gen-") for e in ev[::2])
    for g, rid in zip(ev[::2], ev[1::2]):
        gi = int(g.split("-")[1])
        assert copied[gi] and rid == f"r{pick[gi]}"
    row = r.tables["pairs"][0]
    assert row["generated_row"] == row["real_row"]        # identity embedding: both rows


def test_global_scale_finds_it_too(memo):
    ctx, _ = memo
    r = _run(ctx, scale="global")
    assert r.tables["scale"] == "global" and len(_warnings(r)) == 1
    assert 0.14 <= r.metrics["generator.memorized_fraction"] <= 0.18


def test_memorisation_on_images_shows_both_images():
    ctx = image_context("memo", n=1200, samples=2000, seed=2)
    r = _run(ctx)
    assert len(_warnings(r)) == 1
    gen = ctx.generated
    assert abs(r.metrics["generator.memorized_fraction"] - np.mean(gen.z[:, 0] < -1)) <= 0.005
    pos = {s: i for i, s in enumerate(ctx.data.ids)}
    for n, p in enumerate(r.tables["pairs"]):
        g = int(p["generated"].split("-")[1])
        gi, ri = r.images[p["generated_image"]], r.images[p["real_image"]]
        assert p["generated_image"] == f"pair-{n + 1}-generated"
        np.testing.assert_array_equal(gi, gen.images[g])
        np.testing.assert_array_equal(ri, ctx.data.images[pos[p["real"]]])
        np.testing.assert_array_equal(gi, ri)                          # an exact copy


# ------------------------------------------------------------------ nulls
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_clean_decoder_flags_nothing(seed):
    r = _run(context(SmoothDecoder(), n=2000, samples=3000, seed=seed))
    assert r.status == "ok" and _warnings(r) == []
    assert r.metrics["generator.memorized_fraction"] < 0.005


@pytest.mark.parametrize("decoder", [UnderDecoder, HoleDecoder])
def test_other_defects_are_not_memorisation(decoder):
    for seed in (0, 1):
        r = _run(context(decoder(), n=2000, samples=3000, seed=seed))
        assert _warnings(r) == []


def test_clean_images_flag_nothing():
    """Clean outputs of noisy real images sit closer to the real images than the real
    images sit to each other (the noise): not memorisation."""
    for seed in (0, 1):
        r = _run(image_context("smooth", n=1200, samples=2000, seed=seed))
        assert _warnings(r) == [] and r.metrics["generator.memorized_fraction"] < 0.005


# ------------------------------------------------------------------ degenerate input
def test_no_generator_or_tiny_input_is_skipped():
    assert GeneratorMemorizationCheck().applies(Context(world(100, 0))) == \
        "no generator: in the config"
    r = run_check(GeneratorMemorizationCheck(), context(SmoothDecoder(), n=10, samples=50))
    assert r.status == "skipped"


def test_constant_real_data_gives_no_finding():
    real = world(100, 0)
    real = LatentSet(latents=np.zeros_like(real.latents), metadata=real.metadata,
                     ids=real.ids, source="<const>")
    r = _run(context(MemoDecoder(real.latents), samples=200, seed=0, real=real))
    # every real point is a copy of another: copies are what chance gives, never above it
    assert _warnings(r) == [] and r.metrics["generator.memorized_expected"] == 1.0


def test_small_input_gives_no_confident_finding():
    for seed in (0, 1, 2):
        r = _run(context(SmoothDecoder(), n=25, samples=60, seed=seed))
        assert r.status == "ok" and _warnings(r) == []


# ------------------------------------------------------------------ report
def test_section_in_the_report(memo, tmp_path):
    from test_gen_holes import _render
    ctx, r = memo
    html = _render(tmp_path, ctx, [r]).read_text()
    assert 'id="check-generator_memorization"' in html and "near-copies" in html
    assert html.count("<code>gen-") >= 16 and "copy_distances" in html


def test_exact_duplicates_in_the_real_data_do_not_zero_the_threshold():
    """2% of the real rows duplicated exactly: their leave-one-out score is 0, and the 1%
    quantile with them would be 0 (only exact copies caught). The threshold stays the one
    of the distinct rows, and a copying decoder is still found."""
    import numpy as np

    from audit.checks import build_checks, run_check
    from audit.latents import LatentSet
    from generator_world import MemoDecoder, SmoothDecoder, context, world
    base = world(2000, 0)
    dup = np.arange(0, 2000, 50)                      # 40 rows, each written twice
    x = np.concatenate([base.latents, base.latents[dup]])
    meta = base.metadata.iloc[np.concatenate([np.arange(2000), dup])].reset_index(drop=True)
    meta["id"] = [f"r{i}" for i in range(len(meta))]
    real = LatentSet(latents=x, metadata=meta, ids=meta["id"].to_numpy(), source="<dup>")
    check = build_checks({"generator_memorization": {}})[0]
    clean = run_check(check, context(SmoothDecoder(), real=real, samples=3000))
    assert clean.tables["real_duplicates"] > 0.03 and clean.tables["threshold"] > 0
    assert [f for f in clean.findings if f.severity != "info"] == []
    memo = run_check(check, context(MemoDecoder(base.latents), real=real, samples=3000))
    assert memo.metrics["generator.memorized_fraction"] > 0.12
    assert any(f.severity != "info" for f in memo.findings)
