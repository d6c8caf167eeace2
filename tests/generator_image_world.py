"""A small image world for the generator_holes / generator_memorization tests: a 2-D prior
decoded to 8×8 grey images (a bright blob whose position follows the prior point), embedded
by flattening (pixels / 255), with planted defects like tests/generator_world.py's:

- ``"smooth"``: the blob only;
- ``"hole"``: prior points with ``z0 > 1.5`` decode to a checkerboard (off the data);
- ``"memo"``: prior points with ``z0 < -1`` decode to an exact copy of a real image (chosen by
  the prior point, deterministically: ``int(|z1| * 1e4) % n``).

``image_context(kind, n=, samples=, seed=)`` builds a ``Context`` (config: seed, PCA map)
whose data are the real images' embeddings (with ``.images``) and whose ``generated`` is
the decoder's ``GeneratedSet``, the way ``audit.generator.generate`` builds it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from audit.context import Context
from audit.generator import Decoder, GeneratedSet, fit_prior
from audit.generator.decoder import decode
from audit.latents import LatentSet
from audit.streams import stream

SIZE = 8
_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def blobs(z: np.ndarray) -> np.ndarray:
    """(n, 2) prior points -> (n, 8, 8, 1) uint8 blob images."""
    cy = 3.5 + 1.2 * np.clip(z[:, 1], -2.5, 2.5)
    cx = 3.5 + 1.2 * np.clip(z[:, 0], -2.5, 2.5)
    img = np.exp(-((_YY[None] - cy[:, None, None]) ** 2 + (_XX[None] - cx[:, None, None]) ** 2)
                 / 4.0)
    return np.round(255 * img).astype(np.uint8)[..., None]


def decoder_fn(kind: str, real_images: np.ndarray):
    checker = (((_YY + _XX) % 2) * 255).astype(np.uint8)[..., None]

    def fn(z: np.ndarray) -> np.ndarray:
        out = blobs(z)
        if kind == "hole":
            out[z[:, 0] > 1.5] = checker
        elif kind == "memo":
            pick = (np.abs(z[:, 1].astype(np.float64)) * 1e4).astype(np.int64) % len(real_images)
            copy = z[:, 0] < -1.0
            out[copy] = real_images[pick[copy]]
        return out
    return fn


def embed(kind: str, x: np.ndarray) -> np.ndarray:
    return (x.reshape(len(x), -1) / 255.0).astype(np.float32)


def real_set(n: int, seed: int) -> LatentSet:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2)).astype(np.float32)
    noise = rng.integers(-6, 7, size=(n, SIZE, SIZE, 1))
    images = np.clip(blobs(z).astype(int) + noise, 0, 255).astype(np.uint8)
    meta = pd.DataFrame({"id": [f"img{i}" for i in range(n)], "z0": z[:, 0], "z1": z[:, 1]})
    return LatentSet(latents=embed("image", images), metadata=meta, ids=meta["id"].to_numpy(),
                     source="<images>", images=images)


def image_context(kind: str = "smooth", *, n: int = 1500, samples: int = 2500,
                  seed: int = 0) -> Context:
    real = real_set(n, seed)
    dec = Decoder(fn=decoder_fn(kind, real.images), dim=2, kind="factory", info={"kind": "test"})
    prior = fit_prior("gaussian", 2)
    z = prior.sample(samples, stream(seed, "generator.prior"))
    out_kind, out = decode(dec, z)
    gen = GeneratedSet(prior=prior, z=z, latents=embed(out_kind, out), kind=out_kind,
                       real=real, decoder=dec, embed=embed, images=out)
    from audit.config import config_from_dict
    cfg = config_from_dict({"name": "images", "seed": seed, "data": {"latents": "x.npy"},
                            "geometry": {"map": "pca"}}, source="<images>")
    return Context(real, config=cfg, generated=gen)
