"""generator_smoothness: step sizes along prior interpolations, and jump regions.

Planted truth from tests/generator_world.py: ``JumpDecoder`` (a step of 6 in column 0 where
z0 crosses 0) and ``HoleDecoder`` (+25 on every column where z0 crosses 1.5) must give a
jump region at the right place, with evidence paths that cross it; ``SmoothDecoder`` over
several seeds, a constant decoder and a handful of generations must give no flagged
finding. The metric functions are checked against their definitions.
"""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from generator_world import HoleDecoder, JumpDecoder, SmoothDecoder, context, world
from pydantic import ValidationError
from scipy import stats
from torch import nn

from audit.checks.generator.smoothness import GeneratorSmoothnessCheck
from audit.context import Context
from audit.generator import Decoder, GeneratedSet, fit_prior
from audit.generator.decoder import decode
from audit.latents import LatentSet
from audit.metrics import (
    fit_jump_plane,
    interpolate_prior,
    jump_concentration,
    jump_direction_groups,
    jump_region_test,
    jump_regions,
    path_step_lengths,
    plane_crossing_test,
    step_jump_threshold,
)
from audit.streams import stream

N, SAMPLES = 1000, 2000
SECTION = (Path(__file__).resolve().parents[1]
           / "audit/report/assets/sections/generator_smoothness.html.j2")
METRICS = ("generator.smoothness.jump_fraction", "generator.smoothness.max_step_ratio",
           "generator.smoothness.median_step")


def _run(ctx, **settings):
    return GeneratorSmoothnessCheck(**settings).run(ctx)


def _flagged(result):
    return [f for f in result.findings if f.severity != "info"]


class ConstantDecoder(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(z), 6) + 0.0 * z[:, :1]


# ---------------------------------------------------------------------- planted truth
@pytest.fixture(scope="module")
def jump_result():
    real = world(N, 0, decoder=JumpDecoder())
    ctx = context(JumpDecoder(), n=N, samples=SAMPLES, seed=0, real=real)
    return ctx, _run(ctx, grid=36)


def test_jump_decoder_region_is_found_at_z0_zero(jump_result):
    ctx, r = jump_result
    flagged = _flagged(r)
    assert flagged, [f.title for f in r.findings]
    z = ctx.generated.z
    pos = {g: i for i, g in enumerate(ctx.generated.ids)}
    for f in flagged:
        centre = f.subjects["prior_center"]
        assert abs(centre[0]) < 0.3, centre
        assert f.p_value < 0.05 and f.ci[0] > 0 and f.value >= f.ci[0]
        assert f.subjects["heldout_paths_jumping"] >= 2
        # every evidence path crosses z0 = 0: its two generations lie on either side
        for p in f.subjects["paths"]:
            z0a, z0b = z[pos[p["from"]], 0], z[pos[p["to"]], 0]
            assert z0a * z0b < 0, (p, z0a, z0b)
        assert set(f.evidence_ids) <= set(ctx.generated.ids)
    m = r.metrics
    assert set(m) == set(METRICS)
    assert 0.01 < m["generator.smoothness.jump_fraction"] < 0.06     # ~1 step of 16 on half the paths
    assert m["generator.smoothness.max_step_ratio"] > 20
    assert m["generator.smoothness.median_step"] > 0


def test_jump_decoder_report_data(jump_result):
    _, r = jump_result
    t = r.tables
    assert t["interpolation"] == "slerp" and t["measured"] and t["tested"]
    assert len(t["paths"]) == t["n_paths"] == 128
    assert all(len(p["ratio"]) == t["steps"] for p in t["paths"])
    assert t["strips"] and t["strips"][0]["jumps"]            # the largest jumps come first
    assert len(t["strips"][0]["rows"]) == t["steps"] + 1
    assert len(t["grid"]["rows"]) == 36 and t["grid"]["ids"][0] == "gen-0"
    assert {d["kind"] for d in r.display} == {"smoothness_steps", "smoothness_prior"}
    assert not r.images                                       # table rows, not images


@pytest.mark.parametrize("seed", [0, 1])
def test_hole_decoder_region_is_found_at_z0_one_and_a_half(seed):
    r = _run(context(HoleDecoder(), n=N, samples=SAMPLES, seed=seed))
    flagged = _flagged(r)
    assert flagged, [f.title for f in r.findings]
    for f in flagged:
        assert abs(f.subjects["prior_center"][0] - 1.5) < 0.3, f.subjects["prior_center"]
        assert f.p_value < 0.05


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_smooth_decoder_flags_nothing(seed):
    r = _run(context(SmoothDecoder(), n=N, samples=SAMPLES, seed=seed))
    assert not _flagged(r), [f.title for f in r.findings]
    assert r.metrics["generator.smoothness.jump_fraction"] == 0.0
    assert r.metrics["generator.smoothness.max_step_ratio"] < 3     # stretch varies smoothly


def test_linear_interpolation_also_finds_the_jump():
    real = world(N, 1, decoder=JumpDecoder())
    r = _run(context(JumpDecoder(), n=N, samples=SAMPLES, seed=1, real=real),
             interpolation="linear")
    assert r.tables["interpolation"] == "linear"
    assert _flagged(r) and all(abs(f.subjects["prior_center"][0]) < 0.3 for f in _flagged(r))


def test_a_uniform_prior_is_interpolated_on_lines_and_the_jump_found():
    real = world(N, 0, decoder=JumpDecoder())
    ctx = context(JumpDecoder(), n=N, samples=SAMPLES, seed=0, real=real)
    gen = ctx.generated
    prior = fit_prior("uniform", 2)
    z = prior.sample(SAMPLES, stream(0, "generator.prior"))
    kind, out = decode(gen.decoder, z)
    ctx.generated = GeneratedSet(prior=prior, z=z, latents=out, kind=kind, real=real,
                                 decoder=gen.decoder, embed=gen.embed, rows=out)
    r = _run(ctx)
    assert r.tables["interpolation"] == "linear"
    assert _flagged(r) and all(abs(f.subjects["prior_center"][0]) < 0.3 for f in _flagged(r))


def test_same_seed_same_findings():
    def once():
        r = _run(context(HoleDecoder(), n=N, samples=SAMPLES, seed=4))
        return [(f.id, f.p_value, tuple(f.evidence_ids)) for f in r.findings], r.metrics
    assert once() == once()


def _tanh_context(k: int, seed: int, *, jump: bool = False, glitch: float = 0.0) -> Context:
    """A k-D Gaussian prior -> 12-D rows (tanh of a fixed linear map), identity embedding;
    ``jump``: +3 on column 0 where z0 > 0; ``glitch``: that share of decodes gets +10 on
    one random column (a stochastic decoder: fresh glitches on every call)."""
    w = np.random.default_rng(99).standard_normal((k, 12)) / np.sqrt(k)
    noise = np.random.default_rng(seed + 1000)

    def fn(z: np.ndarray) -> np.ndarray:
        x = np.tanh(z @ w)
        if jump:
            x[:, 0] += 3.0 * (z[:, 0] > 0)
        if glitch:
            hit = noise.random(len(z)) < glitch
            x[hit, noise.integers(0, 12, int(hit.sum()))] += 10.0
        return x.astype(np.float32)
    dec = Decoder(fn=fn, dim=k, kind="factory", info={"kind": "test"})
    _, rows = decode(dec, np.random.default_rng(seed).standard_normal((1000, k)))
    meta = pd.DataFrame({"id": [f"r{i}" for i in range(1000)]})
    real = LatentSet(latents=rows, metadata=meta, ids=meta["id"].to_numpy(), source="<k>")
    prior = fit_prior("gaussian", k)
    z = prior.sample(1500, stream(seed, "generator.prior"))
    kind, out = decode(dec, z)
    gen = GeneratedSet(prior=prior, z=z, latents=out, kind=kind, real=real, decoder=dec,
                       embed=lambda kind, x: np.asarray(x, np.float32), rows=out)
    return Context(real, generated=gen)


def test_a_discontinuity_in_an_8d_prior_is_found_as_a_surface():
    r = _run(_tanh_context(8, 0, jump=True))
    flagged = _flagged(r)
    assert len(flagged) == 1, [f.title for f in r.findings]
    sub = flagged[0].subjects
    assert "surface" in sub["kinds"] and abs(sub["prior_center"][0]) < 0.3
    normal = np.array(sub["surface"]["normal"])
    assert abs(normal[0]) > 0.9 and abs(sub["surface"]["offset"]) < 0.3   # the plane z0 = 0
    assert sub["heldout_paths_jumping"] >= 0.8 * sub["heldout_paths_crossing"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nulls_in_8d_flag_nothing(seed):
    smooth8 = _run(_tanh_context(8, seed))
    assert not _flagged(smooth8) and smooth8.metrics["generator.smoothness.jump_fraction"] == 0
    # random glitches jump, but nowhere in particular: no region is confirmed
    glitchy = _run(_tanh_context(8, seed, glitch=0.01))
    assert glitchy.metrics["generator.smoothness.jump_fraction"] > 0.005
    assert not _flagged(glitchy), [f.summary for f in _flagged(glitchy)]


# ---------------------------------------------------------------------- degenerate input
def test_constant_decoder_is_not_a_finding():
    r = _run(context(ConstantDecoder(), n=N, samples=500, seed=0))
    assert not _flagged(r)
    assert r.metrics["generator.smoothness.jump_fraction"] == 0.0
    assert math.isnan(r.metrics["generator.smoothness.max_step_ratio"])
    assert r.tables["measured"] is False and "constant" in r.findings[0].summary


def test_a_handful_of_generations_gives_no_confident_finding():
    real = world(N, 0, decoder=JumpDecoder())
    r = _run(context(JumpDecoder(), n=N, samples=5, seed=0, real=real))
    assert r.tables["n_paths"] == 10 and not r.tables["tested"]
    assert not _flagged(r)
    assert GeneratorSmoothnessCheck().applies(
        context(JumpDecoder(), n=N, samples=2, seed=0, real=real)) is not None


def test_without_a_generator_the_check_is_skipped():
    ctx = Context(world(200, 0))
    assert GeneratorSmoothnessCheck().applies(ctx) == "no generator: in the config"


@pytest.mark.parametrize("bad", [{"n_paths": 1}, {"steps": 2}, {"min_share": 1.0},
                                 {"interpolation": "cubic"}, {"nope": 1}])
def test_bad_settings_are_rejected(bad):
    with pytest.raises(ValidationError):
        GeneratorSmoothnessCheck(**bad)


# ---------------------------------------------------------------------- images
_YS, _XS = np.meshgrid(np.linspace(-1, 1, 8), np.linspace(-1, 1, 8), indexing="ij")


def _jump_images(z: np.ndarray) -> np.ndarray:
    """8×8 grey images, smooth in z, brighter by 0.25 where z0 > 0."""
    z = np.asarray(z, dtype=np.float64)
    base = 0.5 + 0.2 * np.tanh(z[:, :1, None] * _XS + z[:, 1:2, None] * _YS)
    return np.clip(base + 0.25 * (z[:, 0] > 0)[:, None, None], 0, 1).astype(np.float32)


def _image_context(seed: int = 0) -> Context:
    dec = Decoder(fn=_jump_images, dim=2, kind="factory", info={"kind": "test"})
    prior = fit_prior("gaussian", 2)
    rng = np.random.default_rng(seed)
    _, real_imgs = decode(dec, rng.standard_normal((600, 2)).astype(np.float32))

    def embed(kind: str, x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1).astype(np.float32) / 255.0
    meta = pd.DataFrame({"id": [f"r{i}" for i in range(600)]})
    real = LatentSet(latents=embed("image", real_imgs), metadata=meta,
                     ids=meta["id"].to_numpy(), images=real_imgs, source="<images>")
    z = prior.sample(800, stream(seed, "generator.prior"))
    kind, out = decode(dec, z)
    gen = GeneratedSet(prior=prior, z=z, latents=embed(kind, out), kind=kind, real=real,
                       decoder=dec, embed=embed, images=out)
    return Context(real, generated=gen)


def test_image_generator_strips_grid_and_section():
    from jinja2 import DictLoader, Environment, select_autoescape

    from audit.report.html import _fmt, _pval
    from audit.report.prepare import thumbnail
    ctx = _image_context()
    r = _run(ctx, strips=3, grid=36)
    flagged = _flagged(r)
    assert flagged and all(abs(f.subjects["prior_center"][0]) < 0.3 for f in flagged)
    t = r.tables
    assert len(t["strips"]) == 3 and t["strips"][0]["jumps"]
    assert len(t["strips"][0]["images"]) == t["steps"] + 1
    assert len(t["grid"]["images"]) == 36
    keys = set(t["grid"]["images"]) | {k for s in t["strips"] for k in s["images"]}
    assert keys == set(r.images)
    assert all(img.dtype == np.uint8 and img.shape == (8, 8, 1) for img in r.images.values())
    # the section draws every image the check returned
    src = SECTION.read_text(encoding="utf-8")
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True, loader=DictLoader({"s": src}))
    env.filters["fmt"], env.filters["pval"] = _fmt, _pval
    thumbs = {f"{r.check}:{k}": thumbnail(v) for k, v in r.images.items()}
    html = env.get_template("s").render(c=r, r=SimpleNamespace(thumbnails=thumbs),
                                        geometry={}, metrics=r.metrics)
    assert html.count("<img") == len(r.images)
    assert flagged[0].id in html and "Interpolation strips" in html


def test_section_renders_rows_and_the_not_measured_note(jump_result):
    from jinja2 import DictLoader, Environment, select_autoescape

    from audit.report.html import _fmt, _pval
    src = SECTION.read_text(encoding="utf-8")
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True, loader=DictLoader({"s": src}))
    env.filters["fmt"], env.filters["pval"] = _fmt, _pval
    _, r = jump_result
    html = env.get_template("s").render(c=r, r=SimpleNamespace(thumbnails={}), geometry={},
                                        metrics=r.metrics)
    assert "Random generations" in html and "gen-35" in html and "<table" in html
    const = _run(context(ConstantDecoder(), n=N, samples=300, seed=0))
    html = env.get_template("s").render(c=const, r=SimpleNamespace(thumbnails={}),
                                        geometry={}, metrics=const.metrics)
    assert "constant decoder" in html


# ---------------------------------------------------------------------- the metrics
def test_interpolation_ends_norms_and_fallback():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((50, 5)), rng.standard_normal((50, 5))
    t = np.linspace(0, 1, 11)
    for method in ("linear", "slerp"):
        p = interpolate_prior(a, b, t, method=method)
        assert p.shape == (50, 11, 5)
        np.testing.assert_allclose(p[:, 0], a, atol=1e-12)
        np.testing.assert_allclose(p[:, -1], b, atol=1e-12)
    p = interpolate_prior(a, b, t, method="slerp")
    want = (1 - t) * np.linalg.norm(a, axis=1)[:, None] + t * np.linalg.norm(b, axis=1)[:, None]
    np.testing.assert_allclose(np.linalg.norm(p, axis=2), want, rtol=1e-10)
    # the direction turns at a constant rate: equal angles between consecutive points
    u = p / np.linalg.norm(p, axis=2, keepdims=True)
    ang = np.arccos(np.clip(np.einsum("pti,pti->pt", u[:, 1:], u[:, :-1]), -1, 1))
    np.testing.assert_allclose(ang, ang[:, :1].repeat(10, axis=1), atol=1e-6)
    # opposite ends: a straight line (no blow-up)
    q = interpolate_prior([[1.0, 0.0]], [[-2.0, 0.0]], t, method="slerp")
    np.testing.assert_allclose(q[0, :, 0], 1 - 3 * t)
    # per-path fractions
    r = interpolate_prior(a[:2], b[:2], [[0.5], [0.25]])
    np.testing.assert_allclose(r[:, 0], [(a[0] + b[0]) / 2, 0.75 * a[1] + 0.25 * b[1]])
    with pytest.raises(ValueError):
        interpolate_prior(a, b, [1.5])
    with pytest.raises(ValueError):
        interpolate_prior(a, b[:, :2], t)
    with pytest.raises(ValueError):
        interpolate_prior(a, b, t, method="cubic")


def test_step_lengths_and_threshold_against_their_definitions():
    rng = np.random.default_rng(1)
    pts = rng.standard_normal((4, 6, 3))
    want = np.array([[np.linalg.norm((pts[p, t + 1] - pts[p, t]) / [1, 2, 4])
                      for t in range(5)] for p in range(4)])
    np.testing.assert_allclose(path_step_lengths(pts, scale=[1, 2, 4]), want)
    with pytest.raises(ValueError):
        path_step_lengths(pts, scale=[1, 0, 1])
    # robust to the jumps it looks for: 3% huge steps move neither median nor spread much
    s = np.exp(rng.normal(0, 0.3, 2000))
    med0, sig0, _ = step_jump_threshold(s)
    dirty = np.concatenate([s, np.full(60, 200.0)])
    med1, sig1, thr1 = step_jump_threshold(dirty)
    assert abs(med1 / med0 - 1) < 0.05 and abs(sig1 / sig0 - 1) < 0.1
    z = stats.norm.isf(0.05 / dirty.size)
    assert thr1 == pytest.approx(max(3.0, math.exp(z * sig1)))
    assert (dirty / med1 > thr1).sum() == 60            # the planted steps, and only they
    # half the steps do not move: median 0, no ratio threshold
    med, _, thr = step_jump_threshold([0, 0, 0, 1.0, 2.0])
    assert med == 0 and math.isnan(thr)
    with pytest.raises(ValueError):
        step_jump_threshold([-1.0, 1.0])
    with pytest.raises(ValueError):
        step_jump_threshold([1.0, 2.0], alpha=0)


def test_concentration_and_regions():
    share, where = jump_concentration([[1, 1, 1, 1], [0.1, 0.1, 5, 0.1]])
    assert share.tolist() == [0.25, pytest.approx(5 / 5.3)] and where.tolist()[1] == 2
    labels = jump_regions([[0, 0], [0, 0.3], [0, 0.6], [0, 0.9], [4, 4], [4, 4.2], [9, 9]],
                          radius=0.5)
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 2]
    assert jump_regions(np.zeros((0, 2)), radius=1).size == 0
    with pytest.raises(ValueError):
        jump_regions([[0, 0]], radius=0)


def test_region_test_is_fisher_exact_on_paths():
    rng = np.random.default_rng(2)
    n_paths, steps = 60, 16
    t = (np.arange(steps) + 0.5) / steps
    start, end = rng.uniform(-3, 3, (n_paths, 2)), rng.uniform(-3, 3, (n_paths, 2))
    loc = start[:, None] + t[None, :, None] * (end - start)[:, None]        # (P, S, 2)
    near = np.abs(loc[..., 0]) < 0.2
    jump = near & (rng.random((n_paths, steps)) < 0.7)
    jump |= rng.random((n_paths, steps)) < 0.003
    path = np.repeat(np.arange(n_paths)[:, None], steps, axis=1)
    region = np.column_stack([np.zeros(13), np.linspace(-3, 3, 13)])
    r = jump_region_test([region], loc.reshape(-1, 2), jump.ravel(), path.ravel(), radius=0.4)
    d = np.sqrt(((loc[..., None, :] - region) ** 2).sum(-1)).min(-1)
    inside = d <= 0.4
    crossing = inside.any(axis=1)
    jumping = (inside & jump).any(axis=1)
    background = ~crossing
    table = [[int(jumping.sum()), int((crossing & ~jumping).sum())],
             [int((background & jump.any(axis=1)).sum()),
              int((background & ~jump.any(axis=1)).sum())]]
    assert [r.paths_jumping[0], r.paths_crossing[0] - r.paths_jumping[0]] == table[0]
    assert [r.jumping_out, r.paths_out - r.jumping_out] == table[1]
    assert r.p_value[0] == pytest.approx(stats.fisher_exact(table, alternative="greater")[1])
    assert r.p_value[0] < 1e-6
    assert r.steps_in[0] == inside.sum() and r.jumps_in[0] == (inside & jump).sum()
    # jumps scattered with no regard to the region: not special
    flat = rng.random((n_paths, steps)) < 0.02
    assert jump_region_test([region], loc.reshape(-1, 2), flat.ravel(), path.ravel(),
                            radius=0.4).p_value[0] > 0.05


def test_surface_groups_plane_and_crossing_test():
    rng = np.random.default_rng(3)
    k = 6
    # jumps across the plane z0 = 0.5 in 6-D, output change ±(3, 0, 0, ...)
    loc = rng.standard_normal((40, k))
    loc[:, 0] = 0.5
    step = rng.standard_normal((40, k)) * 0.05
    before, after = loc - step, loc + step
    sign = np.sign(after[:, 0] - before[:, 0])
    vec = np.zeros((40, 4))
    vec[:, 0] = 3.0 * sign
    vec += 0.05 * rng.standard_normal((40, 4))
    assert (jump_direction_groups(vec) == 0).all()
    normal, offset = fit_jump_plane(before, after, vec)
    assert abs(normal[0]) > 0.95 and abs(offset - 0.5 * np.sign(normal[0])) < 0.1
    other = np.zeros((5, 4))
    other[:, 2] = 1.0
    labels = jump_direction_groups(np.vstack([vec, other]))
    assert set(labels[:40]) == {0} and set(labels[40:]) == {1}
    # held-out paths: straight lines; those that cross z0 = 0.5 have the jump
    a, b = rng.standard_normal((80, k)), rng.standard_normal((80, k))
    pts = interpolate_prior(a, b, np.linspace(0, 1, 17))
    crosses = (np.diff(np.sign(pts[..., 0] - 0.5), axis=1) != 0).any(axis=1)
    assert plane_crossing_test(pts, crosses, normal, offset).p_value < 1e-15   # fitted
    r = plane_crossing_test(pts, crosses, np.eye(k)[0], 0.5)                   # true plane
    assert r.paths_jumping == r.paths_crossing == crosses.sum() and r.jumps_other == 0
    table = [[int(crosses.sum()), 0], [0, int((~crosses).sum())]]
    assert r.p_value == pytest.approx(stats.fisher_exact(table, alternative="greater")[1])
    shuffled = rng.permutation(crosses)
    assert plane_crossing_test(pts, shuffled, normal, offset).p_value > 0.01
