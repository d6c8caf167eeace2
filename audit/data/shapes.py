"""Procedural shapes: small RGB images from independent, recorded generative factors.

In the spirit of dSprites / 3D-shapes. Factors: ``shape`` (square, circle, triangle,
heart), ``colour`` (red, green, blue, yellow), ``size``, ``x``, ``y`` (numeric in [0, 1]).
A region of factor space can be removed (a planted coverage gap) and two numeric factors
correlated (a planted data-level correlation); both are recorded as ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

SHAPES = ("square", "circle", "triangle", "heart")
COLOURS = {"red": (1.0, 0.25, 0.2), "green": (0.2, 0.85, 0.3), "blue": (0.25, 0.45, 1.0),
           "yellow": (1.0, 0.85, 0.15)}
NUMERIC_FACTORS = ("size", "x", "y")
CATEGORICAL_FACTORS = {"shape": SHAPES, "colour": tuple(COLOURS)}
FACTORS = ("shape", "colour", "size", "x", "y")

__all__ = ["ShapesData", "make_shapes", "render_shapes", "FACTORS", "SHAPES"]


@dataclass
class ShapesData:
    images: np.ndarray          # (n, H, W, 3) uint8
    factors: pd.DataFrame       # one column per factor (+ group when asked)
    truth: dict[str, Any] = field(default_factory=dict)


def _sample_factors(rng: np.random.Generator, n: int,
                    correlate: list[tuple[str, str, float]]) -> pd.DataFrame:
    z = rng.standard_normal((n, len(NUMERIC_FACTORS)))
    corr = np.eye(len(NUMERIC_FACTORS))
    for a, b, rho in correlate:
        i, j = NUMERIC_FACTORS.index(a), NUMERIC_FACTORS.index(b)
        corr[i, j] = corr[j, i] = rho
    z = z @ np.linalg.cholesky(corr).T
    u = stats.norm.cdf(z)
    df = pd.DataFrame({
        "shape": rng.choice(SHAPES, size=n),
        "colour": rng.choice(tuple(COLOURS), size=n),
    })
    for k, name in enumerate(NUMERIC_FACTORS):
        df[name] = u[:, k]
    return df


def _in_region(df: pd.DataFrame, region: dict[str, Any]) -> np.ndarray:
    hit = np.ones(len(df), dtype=bool)
    for factor, cond in region.items():
        if factor in CATEGORICAL_FACTORS:
            values = [cond] if isinstance(cond, str) else list(cond)
            hit &= df[factor].isin(values).to_numpy()
        else:
            lo, hi = cond
            hit &= ((df[factor] >= lo) & (df[factor] <= hi)).to_numpy()
    return hit


def validate_region(region: dict[str, Any]) -> None:
    """Raise ``ValueError`` when a removal region names an unknown factor or bad value."""
    if not region:
        raise ValueError("a removal region must name at least one factor")
    for factor, cond in region.items():
        if factor in CATEGORICAL_FACTORS:
            values = [cond] if isinstance(cond, str) else list(cond)
            bad = [v for v in values if v not in CATEGORICAL_FACTORS[factor]]
            if bad:
                raise ValueError(f"unknown {factor} {bad}; choose from "
                                 f"{list(CATEGORICAL_FACTORS[factor])}")
        elif factor in NUMERIC_FACTORS:
            if not (isinstance(cond, (list, tuple)) and len(cond) == 2
                    and all(isinstance(c, (int, float)) for c in cond) and cond[0] < cond[1]):
                raise ValueError(f"{factor} needs an interval [low, high] within [0, 1]")
        else:
            raise ValueError(f"unknown factor '{factor}'; factors are {list(FACTORS)}")


def render_shapes(factors: pd.DataFrame, *, image_size: int = 32) -> np.ndarray:
    """Draw one image per row of ``factors``; returns (n, H, W, 3) uint8."""
    n = len(factors)
    grid = (np.arange(image_size) + 0.5) / image_size * 2 - 1
    gx = grid[None, None, :]
    gy = -grid[None, :, None]                      # y up
    half = (0.22 + 0.28 * factors["size"].to_numpy())[:, None, None]
    cx = ((factors["x"].to_numpy() - 0.5) * (2 - 2 * 0.52))[:, None, None]
    cy = ((factors["y"].to_numpy() - 0.5) * (2 - 2 * 0.52))[:, None, None]
    u = (gx - cx) / half
    v = (gy - cy) / half
    shape = factors["shape"].to_numpy()
    mask = np.zeros((n, image_size, image_size), dtype=bool)
    sel = shape == "square"
    mask[sel] = np.maximum(np.abs(u[sel]), np.abs(v[sel])) <= 0.8
    sel = shape == "circle"
    mask[sel] = u[sel] ** 2 + v[sel] ** 2 <= 0.9
    sel = shape == "triangle"
    mask[sel] = (v[sel] >= -0.75) & (np.abs(u[sel]) <= 0.55 * (0.95 - v[sel]))
    sel = shape == "heart"
    hx, hy = u[sel] * 1.15, v[sel] * 1.15 + 0.15
    mask[sel] = (hx ** 2 + hy ** 2 - 1) ** 3 - hx ** 2 * hy ** 3 <= 0
    rgb = np.array([COLOURS[c] for c in factors["colour"]], dtype=np.float32)
    img = mask[..., None].astype(np.float32) * rgb[:, None, None, :]
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def make_shapes(n: int = 3000, *, image_size: int = 32, seed: int = 0,
                remove: list[dict[str, Any]] | None = None,
                correlate: list[tuple[str, str, float]] | None = None,
                groups: dict[str, float] | None = None) -> ShapesData:
    """Sample ``n`` shapes, leaving out ``remove`` regions and correlating factor pairs.

    ``correlate`` items are ``(factor_a, factor_b, rho)`` over numeric factors, applied
    through a Gaussian copula so each factor stays uniform on [0, 1].
    """
    remove = list(remove or [])
    correlate = list(correlate or [])
    for region in remove:
        validate_region(region)
    for a, b, rho in correlate:
        for f in (a, b):
            if f not in NUMERIC_FACTORS:
                raise ValueError(f"can only correlate numeric factors {list(NUMERIC_FACTORS)}, "
                                 f"got '{f}'")
        if a == b:
            raise ValueError("correlate needs two different factors")
    rng = np.random.default_rng(seed)
    parts, kept, removed_total, drawn = [], 0, 0, 0
    while kept < n:
        batch = _sample_factors(rng, max(2 * (n - kept), 64), correlate)
        drop = np.zeros(len(batch), dtype=bool)
        for region in remove:
            drop |= _in_region(batch, region)
        drawn += len(batch)
        removed_total += int(drop.sum())
        batch = batch[~drop]
        parts.append(batch)
        kept += len(batch)
        if drawn > 50 * n:
            raise ValueError("the removal regions leave (almost) nothing of factor space")
    df = pd.concat(parts, ignore_index=True).iloc[:n].reset_index(drop=True)
    if groups:
        names = list(groups)
        p = np.asarray([groups[g] for g in names], dtype=float)
        if (p < 0).any() or p.sum() <= 0:
            raise ValueError("group shares must be non-negative and not all zero")
        df["group"] = rng.choice(names, size=n, p=p / p.sum())
    images = render_shapes(df, image_size=image_size)
    truth = {"removed_regions": remove,
             "removed_share_of_factor_space": removed_total / max(drawn, 1),
             "correlated": [{"factors": [a, b], "rho": rho} for a, b, rho in correlate]}
    return ShapesData(images=images, factors=df, truth=truth)
