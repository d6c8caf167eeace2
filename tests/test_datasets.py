"""Built-in datasets: the recorded factors are the truth we plant and later find."""
from __future__ import annotations

import numpy as np
import pytest

from audit.config import DigitsSpec, ShapesSpec
from audit.data import load_builtin
from audit.data.shapes import make_shapes, render_shapes
from audit.errors import ConfigError


def test_shapes_factors_independent_by_default():
    d = make_shapes(4000, seed=0)
    f = d.factors
    assert set(f.columns) == {"shape", "colour", "size", "x", "y"}
    assert d.images.shape == (4000, 32, 32, 3) and d.images.dtype == np.uint8
    corr = f[["size", "x", "y"]].corr().to_numpy()
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < 0.05
    for col in ("shape", "colour"):
        shares = f[col].value_counts(normalize=True)
        assert shares.between(0.2, 0.3).all()


def test_shapes_planted_gap_and_correlation():
    d = make_shapes(3000, seed=1, remove=[{"shape": "heart", "x": [0.6, 1.0]}],
                    correlate=[("size", "y", 0.8)])
    f = d.factors
    hearts = f[f["shape"] == "heart"]
    assert len(hearts) > 400 and (hearts["x"] < 0.6).all()
    assert f["size"].corr(f["y"], method="spearman") == pytest.approx(0.8, abs=0.04)
    assert d.truth["removed_regions"] == [{"shape": "heart", "x": [0.6, 1.0]}]
    assert d.truth["removed_share_of_factor_space"] == pytest.approx(0.25 * 0.4, abs=0.02)


def test_shapes_render_what_the_factors_say():
    import pandas as pd
    f = pd.DataFrame({"shape": ["square", "circle"], "colour": ["red", "blue"],
                      "size": [1.0, 0.0], "x": [0.0, 1.0], "y": [1.0, 0.0]})
    img = render_shapes(f, image_size=32).astype(int)
    on0, on1 = img[0].sum(-1) > 0, img[1].sum(-1) > 0
    assert on0.sum() > 3 * on1.sum()                       # big vs small
    ys, xs = np.nonzero(on0)
    assert xs.mean() < 16 and ys.mean() < 16               # left, top (y up)
    ys, xs = np.nonzero(on1)
    assert xs.mean() > 16 and ys.mean() > 16               # right, bottom
    assert img[0][on0][:, 0].min() > img[0][on0][:, 2].max()   # red
    assert img[1][on1][:, 2].min() > img[1][on1][:, 0].max()   # blue


def test_shapes_same_seed_same_data():
    a, b = make_shapes(200, seed=3), make_shapes(200, seed=3)
    assert (a.images == b.images).all() and a.factors.equals(b.factors)


@pytest.mark.parametrize("region,msg", [
    ({"shape": "star"}, "unknown shape"),
    ({"hue": "red"}, "unknown factor 'hue'"),
    ({"x": [0.8, 0.2]}, "interval"),
    ({}, "at least one factor"),
])
def test_bad_regions_are_config_errors(region, msg):
    with pytest.raises(ConfigError, match=msg):
        load_builtin(ShapesSpec(name="shapes", n=50, remove=[region]))


def test_digits_are_real_images_with_labels():
    d = load_builtin(DigitsSpec(name="digits", n=300, seed=0))
    assert d.images.shape == (300, 8, 8, 1)
    assert sorted(d.metadata["label"].unique()) == list(range(10))
    assert len(set(d.ids)) == 300
