"""What editing along a direction looks like: slider images, interpolation grids, the
nearest real samples, and leakage measured through decode → re-encode.

Points are built in the z-scored space of the probes (``ctx.standardized``). With a
decoder they are decoded (:func:`audit.decoding.decode_images`); without one, or once it
fails, the nearest real samples stand in. With a decoder and an encoder, leakage is also
measured on re-encoded decodes (``metrics._edit_leakage.shift_leakage``). A failing decoder or
encoder costs the pictures or that measurement, never the check: it becomes a note.
"""
from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np

from ...context import Context
from ...decoding import DecodeError, decode_images
from ...metrics._edit_leakage import shift_leakage
from ._format import matrix, num, opt_float
from ._sampling import _seed, _subsample
from .settings import Settings

log = logging.getLogger("audit")

__all__ = ["visuals"]


def _shrink(img: np.ndarray, side: int = 64) -> np.ndarray:
    """Block-average an image down to at most ``side`` pixels on its longer side."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    f = int(math.ceil(max(img.shape[:2]) / side))
    if f <= 1:
        return img.astype(np.uint8)
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    x = img[:h, :w].astype(np.float32).reshape(h // f, f, w // f, f, img.shape[2])
    return np.clip(np.round(x.mean(axis=(1, 3))), 0, 255).astype(np.uint8)


class _Views:
    """Decode, re-encode and find the nearest samples of z-scored points; the first
    failure of the decoder or the encoder is noted and switches it off for the run."""

    def __init__(self, ctx: Context, attrs: list, notes: list[str]) -> None:
        self.ctx, self.attrs, self.notes = ctx, attrs, notes
        self.decoder, self.encoder = ctx.data.decoder, ctx.data.encoder

    def latents(self, z_std: np.ndarray) -> np.ndarray:
        return self.ctx.unstandardize(z_std).astype(np.float32)

    def decode(self, z_std: np.ndarray) -> np.ndarray | None:
        if self.decoder is None:
            return None
        try:
            return decode_images(self.decoder, self.latents(z_std))
        except DecodeError as exc:   # a broken decoder costs the pictures, not the check
            self.notes.append(f"The decoder failed ({exc}); nearest real samples are shown "
                              "instead.")
            log.warning("entanglement: decoder failed: %s", exc)
            self.decoder = None
            return None

    def reencode(self, imgs: np.ndarray) -> np.ndarray | None:
        if self.encoder is None:
            return None
        dim = self.ctx.data.dim
        try:
            z = np.asarray(self.encoder(imgs), dtype=np.float64)
            if z.shape != (len(imgs), dim):
                raise ValueError(f"returned shape {z.shape}, expected ({len(imgs)}, {dim})")
            return self.ctx.standardize(z)
        except Exception as exc:
            self.notes.append(f"The encoder failed on decoded images "
                              f"({exc.__class__.__name__}: {exc}); leakage is measured in "
                              "latent space only.")
            log.warning("entanglement: encoder failed: %s", exc)
            self.encoder = None
            return None

    def nearest(self, z_std: np.ndarray) -> np.ndarray:
        """Row of the nearest data point of each point, in the analysis space."""
        return self.ctx.nearest(self.ctx.to_space(self.latents(z_std)), k=1)[1][:, 0]

    def describe(self, i: int) -> str:
        """The attribute values of data row ``i``."""
        parts = [f"{a.name}={a.values[i] if a.categorical else num(a.values[i])}"
                 for a in self.attrs if a.valid[i]]
        return ", ".join(parts)


def visuals(ctx: Context, joint: dict | None, images: dict[str, np.ndarray],
            notes: list[str], s: Settings) -> dict[str, Any]:
    """Sliders along each encoded attribute's joint direction, grids between seeded pairs
    of rows, and the re-encoded leakage matrix. Images go into ``images``; returns the
    ``sliders`` and ``grids`` tables, the slider ids per attribute (finding evidence) and
    ``reencoded`` (or ``None``)."""
    out: dict[str, Any] = {"tables": {}, "evidence": {}, "reencoded": None}
    if joint is None:
        return out
    views = _Views(ctx, joint["attrs"], notes)
    out["tables"]["sliders"] = _sliders(ctx, joint, views, images, out["evidence"], s)
    out["tables"]["grids"] = _grids(ctx, joint, views, images, s)
    if views.decoder is not None and views.encoder is not None:
        out["reencoded"] = _reencoded_leakage(ctx, joint, views, s)
    return out


def _sliders(ctx: Context, joint: dict, views: _Views, images: dict[str, np.ndarray],
             evidence: dict[str, list[str]], s: Settings) -> list[dict[str, Any]]:
    """From the joint row closest to the mean latent, ± ``slider_range`` standard
    deviations along each encoded attribute's direction: the read-outs of every attribute
    (re-encoded when possible), the images, the nearest samples."""
    data, X = ctx.data, ctx.standardized
    attrs, rows, names = joint["attrs"], joint["rows"], joint["names"]
    W, dirs = joint["probes"], joint["directions"]
    base = int(rows[np.argmin(np.linalg.norm(X[rows], axis=1))])
    steps = np.linspace(-s.slider_range, s.slider_range, s.slider_steps | 1)  # odd: 0 in
    resp = dirs @ W.T                                     # resp[a, b] = w_b · δ_a
    sliders = []
    for k, a in enumerate(attrs):
        if not joint["encoded"][k]:
            continue
        z = X[base][None, :] + steps[:, None] * dirs[k][None, :]
        nn = views.nearest(z)
        imgs = views.decode(z)
        entry: dict[str, Any] = {
            "attribute": a.name, "steps": [float(t) for t in steps],
            "base_id": str(data.ids[base]), "base": views.describe(base),
            "readouts": {n: [opt_float(t * resp[k, b]) for t in steps]
                         for b, n in enumerate(names)},
            "readouts_source": "latent",
            "nearest_ids": [str(data.ids[i]) for i in nn],
            "nearest": [views.describe(int(i)) for i in nn],
            "images": [], "image_source": None}
        if imgs is not None:
            entry["image_source"] = "decoded"
            for t, img in enumerate(imgs):
                images[f"slider:{a.name}:{t}"] = _shrink(img)
                entry["images"].append(f"slider:{a.name}:{t}")
            back = views.reencode(imgs)
            if back is not None:
                r = (back - back[len(steps) // 2]) @ W.T
                entry["readouts"] = {n: [opt_float(v) for v in r[:, b]]
                                     for b, n in enumerate(names)}
                entry["readouts_source"] = "re-encoded"
        elif data.images is not None:
            entry["image_source"] = "nearest"
            for t, i in enumerate(nn):
                images[f"slider:{a.name}:{t}"] = _shrink(data.images[i])
                entry["images"].append(f"slider:{a.name}:{t}")
        evidence[a.name] = list(dict.fromkeys(entry["nearest_ids"]))[:12]
        sliders.append(entry)
    return sliders


def _grids(ctx: Context, joint: dict, views: _Views, images: dict[str, np.ndarray],
           s: Settings) -> list[dict[str, Any]]:
    """Straight lines between ``grid_pairs`` seeded pairs of joint rows."""
    data, X, rows = ctx.data, ctx.standardized, joint["rows"]
    grids = []
    if not s.grid_pairs or rows.size < 2:
        return grids
    rng = ctx.rng("entanglement.grid")
    lam = np.linspace(0.0, 1.0, s.grid_steps)
    for g in range(s.grid_pairs):
        i, j = (int(v) for v in rng.choice(rows, 2, replace=False))
        z = (1 - lam)[:, None] * X[i][None, :] + lam[:, None] * X[j][None, :]
        nn = views.nearest(z)
        imgs = views.decode(z)
        entry = {"from_id": str(data.ids[i]), "to_id": str(data.ids[j]),
                 "from": views.describe(i), "to": views.describe(j),
                 "nearest_ids": [str(data.ids[t]) for t in nn],
                 "nearest": [views.describe(int(t)) for t in nn], "images": [],
                 "image_source": None}
        if imgs is not None:
            entry["image_source"] = "decoded"
            src = imgs
        elif data.images is not None:
            entry["image_source"] = "nearest"
            src = data.images[nn]
        else:
            src = None
        if src is not None:
            for t, img in enumerate(src):
                images[f"grid:{g}:{t}"] = _shrink(img)
                entry["images"].append(f"grid:{g}:{t}")
        grids.append(entry)
    return grids


def _reencoded_leakage(ctx: Context, joint: dict, views: _Views, s: Settings
                       ) -> dict[str, Any] | None:
    """Leakage L(A→B) through decode → re-encode, on ``reencode_points`` seeded joint rows
    moved by one standard deviation of A along A's direction; ``None`` when nothing could
    be measured."""
    X, attrs = ctx.standardized, joint["attrs"]
    W, dirs = joint["probes"], joint["directions"]
    pick = _subsample(ctx, joint["rows"], s.reencode_points, "reencode")
    z0 = X[pick]
    imgs0 = views.decode(z0)
    r0 = views.reencode(imgs0) if imgs0 is not None else None
    m = len(attrs)
    R = np.full((m, m), np.nan)
    lo, hi = np.full((m, m), np.nan), np.full((m, m), np.nan)
    seed = _seed(ctx, "reencode")
    if r0 is None:
        return None
    for k in range(m):
        if not joint["encoded"][k]:
            continue
        imgs1 = views.decode(z0 + dirs[k][None, :])
        r1 = views.reencode(imgs1) if imgs1 is not None else None
        if r1 is None:
            break
        with warnings.catch_warnings():    # nan (source did not move) is kept
            warnings.simplefilter("ignore", RuntimeWarning)
            res = shift_leakage(r1 - r0, W, source=k, n_bootstrap=s.n_bootstrap,
                                confidence=s.confidence, random_state=seed)
        R[k], lo[k], hi[k] = res["leakage"], res["ci"][0], res["ci"][1]
    if not np.isfinite(R).any():
        return None
    return {"leakage": matrix(R), "ci_low": matrix(lo), "ci_high": matrix(hi),
            "n_points": int(pick.size)}
