"""The holes check: planted holes are found where they are; data without holes flags none."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.checks import build_checks, run_check
from audit.config import GeometryConfig
from audit.context import Context
from audit.errors import ConfigError
from audit.latents import LatentSet
from audit.metrics._enclosure import halfspace_depth, largest_piece_mask, tangent_alignment
from audit.metrics._hole_probes import smooth_probes
from audit.metrics._holes import (affine_weights, find_holes, interpolation_risk, merge_regions,
                                  segment_hits)


def lset(x, *, decoder=None, provenance=None):
    n = len(x)
    return LatentSet(np.asarray(x, np.float32), pd.DataFrame(index=range(n)),
                     np.array([f"p{i}" for i in range(n)]), "test",
                     provenance=provenance or {}, decoder=decoder)


def run_holes(x, *, seed=0, scale="none", **settings):
    ctx = Context(lset(x) if not isinstance(x, LatentSet) else x,
                  geometry=GeometryConfig(map="pca", scale=scale), seed=seed)
    (check,) = build_checks({"holes": settings})
    res = run_check(check, ctx, debug=True)
    assert res.status == "ok"
    return res, ctx


def flagged(res):
    return [f for f in res.findings if f.severity != "info"]


def sheet_with_holes(seed, *, n=3500, dim=2, ambient=16, holes=(((0.3, 0.3), 0.12),
                                                                   ((0.7, 0.65), 0.1)),
                     noise=0.005):
    """Uniform points on a `dim`-cube, balls cut out, rotated into `ambient` dimensions."""
    rng = np.random.default_rng(seed)
    z = rng.random((3 * n, dim))
    keep = np.ones(len(z), dtype=bool)
    for c, r in holes:
        keep &= np.linalg.norm(z - np.array(c), axis=1) > r
    z = z[keep][:n]
    q = np.linalg.qr(rng.standard_normal((ambient, ambient)))[0]
    x = np.concatenate([z, np.zeros((n, ambient - dim))], 1) @ q.T
    return x + noise * rng.standard_normal(x.shape), z, q


# ---------------------------------------------------------------------------- planted

@pytest.mark.parametrize("seed", [0, 1])
def test_planted_holes_in_a_sheet_are_found_with_their_centres(seed):
    holes = (((0.3, 0.3), 0.12), ((0.7, 0.65), 0.1))
    x, z, q = sheet_with_holes(seed, holes=holes)
    res, ctx = run_holes(x, seed=seed)
    hits = flagged(res)
    assert res.metrics["holes.count"] == len(hits) == 2
    assert res.tables["subspace_dims"] == 2 and res.tables["local_dim"] == 2
    for (c, r) in holes:
        # the centre is in the original latent coordinates: rotate back onto the sheet
        errs = [np.linalg.norm((np.array(f.subjects["center"]) @ q)[:2] - c) for f in hits]
        best = hits[int(np.argmin(errs))]
        assert min(errs) < r
        assert best.p_value < 1e-3 and best.severity == "warning"
        assert best.subjects["observed"] < best.subjects["expected"] * 0.5
        assert 0.5 * r < best.subjects["radius"] < 1.5 * r
        # the evidence is the rim: data points just outside the cut ball
        rim = np.array([int(e[1:]) for e in best.evidence_ids])
        d = np.linalg.norm(z[rim] - c, axis=1)
        assert (d > r - 0.02).all() and (d < r + 0.08).all()
    assert 0 < res.metrics["holes.volume_fraction"] < 0.2
    assert 0 < res.metrics["holes.interpolation_risk"] < 1


def test_planted_holes_in_a_3d_manifold_in_24_dimensions():
    holes = (((0.3, 0.3, 0.35), 0.2), ((0.7, 0.65, 0.6), 0.2))
    x, z, q = sheet_with_holes(3, n=5000, dim=3, ambient=24, holes=holes)
    res, _ = run_holes(x, seed=3, scale="standard")
    hits = flagged(res)
    assert len(hits) == 2
    for (c, r) in holes:
        errs = [np.linalg.norm((np.array(f.subjects["center"]) @ q)[:3] - c) for f in hits]
        assert min(errs) < r


def test_a_ring_has_a_hole_in_the_middle():
    rng = np.random.default_rng(0)
    a, rad = rng.uniform(0, 2 * np.pi, 3000), rng.normal(5, 0.7, 3000)
    res, _ = run_holes(np.stack([rad * np.cos(a), rad * np.sin(a)], 1))
    (hit,) = flagged(res)
    assert np.linalg.norm(hit.subjects["center"]) < 1.0
    assert 3 < hit.subjects["radius"] < 5


# ---------------------------------------------------------------------------- null data

NULLS = {
    "gauss2": lambda r: r.standard_normal((2500, 2)),
    "gauss8": lambda r: r.standard_normal((2500, 8)),
    "mixture6": lambda r: np.concatenate([r.standard_normal((1200, 6)),
                                          r.standard_normal((1200, 6)) * 0.4 + 5]),
    # three separate blobs around an empty middle: the middle is not enclosed *by data*
    "triangle": lambda r: np.concatenate([r.standard_normal((1000, 2)) + c
                                          for c in ([0, 0], [8, 0], [4, 7])]),
    "touching": lambda r: np.concatenate([r.standard_normal((1500, 2)),
                                          r.standard_normal((1500, 2)) + [3.5, 0]]),
    "uniform4": lambda r: r.random((2500, 4)),
    # a curled sheet: the inside of the curl is surrounded, but across the data
    "s_curve": lambda r: (lambda t, h: np.stack([np.sin(t), 2 * h,
                                                 np.sign(t) * (np.cos(t) - 1)], 1))(
        r.uniform(-1.5 * np.pi, 1.5 * np.pi, 2500), r.random(2500)),
    "manifold": lambda r: np.concatenate([r.standard_normal((2500, 3)), np.zeros((2500, 13))],
                                         1) @ np.linalg.qr(r.standard_normal((16, 16)))[0],
}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("null", sorted(NULLS))
def test_data_without_holes_flags_none(null, seed):
    res, _ = run_holes(NULLS[null](np.random.default_rng(seed)), seed=seed)
    assert flagged(res) == []
    assert res.metrics["holes.count"] == 0
    assert res.metrics["holes.interpolation_risk"] == 0
    assert res.metrics["holes.volume_fraction"] == 0


def test_high_local_dimension_is_not_searched():
    res, _ = run_holes(np.random.default_rng(0).standard_normal((600, 24)), max_dim=12)
    assert res.tables["searched"] is False
    assert all(np.isnan(v) for v in res.metrics.values())
    (f,) = res.findings
    assert f.id == "holes-not-searched" and f.severity == "info"


# ---------------------------------------------------------------------------- behaviour

def test_same_seed_same_findings():
    x, _, _ = sheet_with_holes(0, n=2500, ambient=6)
    a, _ = run_holes(x, seed=5)
    b, _ = run_holes(x, seed=5)
    assert [f.to_json() for f in a.findings] == [f.to_json() for f in b.findings]
    assert a.metrics == b.metrics


def test_decoder_images_and_vae_prior_probes():
    x, _, _ = sheet_with_holes(1, ambient=4)
    calls = []

    def decoder(z):
        calls.append(len(z))
        return np.zeros((len(z), 8, 8, 3), dtype=np.uint8)
    data = lset(x, decoder=decoder, provenance={"encoder": {"kind": "demo_vae"}})
    res, _ = run_holes(data, seed=1)
    assert res.tables["probe_kinds"]["prior"] == 400
    assert len(flagged(res)) == 2
    assert set(res.images) == {f"hole-{g}-{k}" for g in (1, 2)
                               for k in ("center", "rim-1", "rim-2", "rim-3")}
    assert res.tables["holes"][0]["images"][0] == "hole-1-center"
    assert calls == [8]


def test_centres_map_back_through_standard_scaling_and_pca():
    x, _, _ = sheet_with_holes(2, ambient=80)          # d > 64: the space is PCA-reduced
    x = x * np.linspace(1, 5, 80) + 3.0
    res, ctx = run_holes(x, seed=2, scale="standard")
    for f in flagged(res):
        c = np.array(f.subjects["center"], dtype=np.float32)[None]
        sub = ctx.project(c, res.tables["subspace_dims"])[0]
        assert np.allclose(sub, f.subjects["center_subspace"], atol=1e-3)
        assert len(f.subjects["map"]) == 2


@pytest.mark.parametrize("bad", [{"inner_share": 1.5}, {"n_probes": 0}, {"alpha": 0},
                                 {"max_ratio": 1}, {"probes": 10}, {"neighbours": 2}])
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError, match="checks.holes"):
        build_checks({"holes": bad})


def test_too_few_points_is_skipped():
    ctx = Context(lset(np.random.default_rng(0).random((30, 3))),
                  geometry=GeometryConfig(map="pca"))
    (check,) = build_checks({"holes": {}})
    res = run_check(check, ctx)
    assert res.status == "skipped" and "at least 50" in res.error


# ---------------------------------------------------------------------------- the pieces

def test_find_holes_on_a_plain_array():
    rng = np.random.default_rng(0)
    x = rng.random((3000, 2))
    x = x[np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) > 0.15]
    probes, kind = smooth_probes(x, 500, random_state=0)
    scan = find_holes(x, probes, random_state=0)
    assert len(scan.regions) == 1
    assert np.linalg.norm(scan.regions[0].center - 0.5) < 0.05
    assert scan.flagged.sum() == (scan.region >= 0).sum() > 0
    assert (scan.q_values[scan.flagged] <= 0.01).all()
    # probes beyond the edge can have a deficit, but are never enclosed
    outside = (scan.projected < -0.05).any(1) | (scan.projected > 1.05).any(1)
    assert not (scan.flagged & outside).any()


def test_halfspace_depth_and_pieces():
    ring = np.stack([np.cos(np.arange(16) * np.pi / 8), np.sin(np.arange(16) * np.pi / 8)], 1)
    assert halfspace_depth(ring[None], np.zeros((1, 2)))[0] == pytest.approx(0.5, abs=0.07)
    assert halfspace_depth(ring[None], np.array([[3.0, 0.0]]))[0] == 0
    two = np.concatenate([ring - [5, 0], ring + [5, 0]])[None]
    mask = largest_piece_mask(two)
    assert mask.sum() == 16
    assert halfspace_depth(two, np.zeros((1, 2)), mask=mask)[0] == 0


def test_tangent_alignment_separates_along_from_across():
    t = np.linspace(0, 1, 200)
    plane = np.stack([t, np.zeros_like(t), np.zeros_like(t)], 1)
    al = tangent_alignment(plane, np.array([[0.5, 0.0, 0.0], [0.5, 0.0, 1.0]]),
                           [[10, 190], [90, 110]], dim=1)
    assert al[0].min() > 0.99 and al[1].max() < 0.1


def test_merge_segments_and_risk():
    assert merge_regions([[0.0, 0.0], [1.5, 0.0], [5.0, 5.0]], [1, 1, 1]).tolist() == [0, 0, 1]
    hits = segment_hits([[-2.0, 0.0], [-2.0, 3.0], [0.0, 0.0]], [[2.0, 0.0], [2.0, 3.0],
                                                                 [0.0, 0.1]], [[0.0, 0.0]], [1.0])
    assert hits.ravel().tolist() == [True, False, True]
    x = np.array([[-1.0, 0.0], [1.0, 0.0], [-1.0, 5.0]])
    risk = interpolation_risk(x, [[0.0, 0.0]], [0.5], n_paths=3000, random_state=0)
    assert risk == pytest.approx(1 / 3, abs=0.04)      # only the pair (0, 1) crosses it
    assert interpolation_risk(x, np.empty((0, 2)), [], random_state=0) == 0.0


def test_doctests_pass():
    import doctest

    import audit.metrics._holes as mod
    res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 10 and res.failed == 0


def test_affine_weights_invert_an_affine_map():
    rng = np.random.default_rng(0)
    orig = rng.standard_normal((20, 6))
    a, b = rng.standard_normal((6, 3)), rng.standard_normal(3)
    mapped = orig @ a + b
    target = mapped[:5].mean(0) + 0.1
    w = affine_weights(mapped, target)
    assert w.sum() == pytest.approx(1)
    assert np.allclose((w @ orig) @ a + b, target)
