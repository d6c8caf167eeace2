"""audit.metrics._coverage's float32 tiles: screened in float32, decided in float64, so the
results equal the exact float64 computation (and prdc) whatever the tile sizes."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from audit.metrics import _coverage as cov_mod
from audit.metrics._coverage import coverage, knn_radii, uncovered_mask

KEYS = ("precision", "recall", "density", "coverage")


def _exact(real, fake, k):
    r_real = np.sort(cdist(real, real), axis=1)[:, k]
    r_fake = np.sort(cdist(fake, fake), axis=1)[:, k]
    dist = cdist(real, fake)
    inside = dist < r_real[:, None]
    return {
        "precision": float(inside.any(axis=0).mean()),
        "recall": float((dist < r_fake[None, :]).any(axis=1).mean()),
        "density": float((1.0 / k) * inside.sum(axis=0).mean()),
        "coverage": float(inside.any(axis=1).mean()),
    }, ~inside.any(axis=1), r_real


def _float64_radii(x, k):
    out = np.empty(len(x))
    cov_mod._knn_radii_sq_rows(np.asarray(x, dtype=np.float64), np.arange(len(x)), k, 64, out)
    return np.sqrt(out)


def _cases():
    rng = np.random.default_rng(11)
    gauss = rng.normal(size=(230, 7)), rng.normal(size=(190, 7)) + 0.3
    ints = (rng.integers(0, 3, size=(200, 4)).astype(float),
            rng.integers(0, 3, size=(180, 4)).astype(float))
    dup_r = rng.normal(size=(150, 40))
    dup_r[100:] = dup_r[:50]
    dup_f = np.vstack([dup_r[:60], rng.normal(size=(90, 40))])
    # far from the origin and not representable in float32: the bounds must widen
    far = 1e6 + rng.normal(size=(120, 3)), 1e6 + rng.normal(size=(110, 3))
    scaled = rng.normal(size=(160, 12)) * 1e-3, rng.normal(size=(140, 12)) * 1e-3
    return {"gauss": gauss, "ints": ints, "dups": (dup_r, dup_f), "far": far,
            "scaled": scaled}


@pytest.mark.parametrize("name", ["gauss", "ints", "dups", "far", "scaled"])
@pytest.mark.parametrize("tile", [(16, 3), (64, 256), (4096, 256)])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_tiles_equal_exact_float64(monkeypatch, name, tile, k):
    monkeypatch.setattr(cov_mod, "_TILE_COLS", tile[0])
    monkeypatch.setattr(cov_mod, "_TILE_ROWS", tile[1])
    real, fake = _cases()[name]
    ref, unc, r_real = _exact(real, fake, k)
    assert coverage(real, fake, k=k) == ref
    np.testing.assert_array_equal(uncovered_mask(real, fake, k=k), unc)
    radii = knn_radii(real, k=k)
    np.testing.assert_array_equal(radii, _float64_radii(real, k))
    np.testing.assert_allclose(radii, r_real, rtol=1e-12, atol=1e-300)


def test_tiles_equal_exact_float64_beyond_one_tile():
    # more points than one 4,096-column tile, default sizes, float32 input as in the bench
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(6, 16)) * 3
    real = (centres[rng.integers(0, 6, 4500)] + rng.normal(size=(4500, 16))).astype(np.float32)
    fake = (centres[rng.integers(0, 5, 4300)] + rng.normal(size=(4300, 16))).astype(np.float32)
    real64, fake64 = real.astype(np.float64), fake.astype(np.float64)
    ref, unc, _ = _exact(real64, fake64, 5)
    assert coverage(real, fake, k=5) == ref
    np.testing.assert_array_equal(uncovered_mask(real, fake, k=5), unc)
    np.testing.assert_array_equal(knn_radii(real, k=5), _float64_radii(real64, 5))


def test_crowded_blocks_fall_back_to_float64(monkeypatch):
    # many exact copies: more candidates a row than the screen keeps, so the rows go to
    # the float64 blocks, with the same answer
    rng = np.random.default_rng(5)
    base = rng.normal(size=(20, 5))
    real = np.repeat(base, 30, axis=0)
    fake = np.repeat(base[:15], 20, axis=0) + 0.0
    monkeypatch.setattr(cov_mod, "_TILE_COLS", 64)
    monkeypatch.setattr(cov_mod, "_CANDIDATE_CAP", 1)
    calls = []
    orig = cov_mod._knn_radii_sq_rows

    def spy(*args):
        calls.append(len(args[1]))
        return orig(*args)

    monkeypatch.setattr(cov_mod, "_knn_radii_sq_rows", spy)
    ref, _, _ = _exact(real, fake, 3)
    assert coverage(real, fake, k=3) == ref
    assert calls  # the fallback ran


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("name", ["gauss", "ints", "dups", "far"])
def test_radii_symmetric_and_one_sided_screens_agree(monkeypatch, symmetric, name):
    # the symmetric screen (each tile for both of its row blocks) and the one-sided one
    # give the exact float64 radii; tiles of 16 columns, 5-row blocks (not dividing them)
    monkeypatch.setattr(cov_mod, "_TILE_COLS", 16)
    monkeypatch.setattr(cov_mod, "_TILE_ROWS", 5)
    monkeypatch.setattr(cov_mod, "_SYMMETRIC", symmetric)
    ran = []
    orig = cov_mod._radii_symmetric
    monkeypatch.setattr(cov_mod, "_radii_symmetric",
                        lambda *a: ran.append(1) or orig(*a))
    real, _ = _cases()[name]
    for k in (1, 4):
        np.testing.assert_array_equal(knn_radii(real, k=k), _float64_radii(real, k))
    assert bool(ran) == symmetric


def test_radii_symmetric_only_up_to_its_size(monkeypatch):
    monkeypatch.setattr(cov_mod, "_TILE_COLS", 16)
    monkeypatch.setattr(cov_mod, "_SYMMETRIC_MAX", 100)
    ran = []
    orig = cov_mod._radii_symmetric
    monkeypatch.setattr(cov_mod, "_radii_symmetric",
                        lambda *a: ran.append(1) or orig(*a))
    real, _ = _cases()["gauss"]                       # 230 points: above the limit
    np.testing.assert_array_equal(knn_radii(real, k=3), _float64_radii(real, 3))
    assert not ran
