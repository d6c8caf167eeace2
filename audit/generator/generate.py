"""Sample the prior, decode, re-embed: the generated set a generator audit measures.

:func:`generate` returns a :class:`GeneratedSet`: the prior draws, what they decoded to
(images or rows), their embeddings in the audit's latent space, and the real data (and
reference) in that same space. Checks that need more generations (interpolations,
attribute edits) call :meth:`GeneratedSet.render` on prior points of their own.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import InputError
from ..latents import LatentSet
from .decoder import Decoder, decode, load_decoder
from .embed import Embedder, make_embedder
from .prior import Prior, fit_prior

__all__ = ["GeneratedSet", "generate"]

log = logging.getLogger("audit")


@dataclass(eq=False)
class GeneratedSet:
    """Generations of one decoder, measured in the audit's latent space.

    ``z`` (G, k) prior draws; ``latents`` (G, d) their embeddings; ``images`` (G, H, W, C)
    uint8 when the decoder makes images, else ``rows`` (G, F); ``real``/``reference`` the
    real data in the same space as ``latents``; ``ids`` ``gen-0`` … ``gen-{G-1}``.
    """

    prior: Prior
    z: np.ndarray
    latents: np.ndarray
    kind: Literal["image", "table"]
    real: LatentSet
    decoder: Decoder
    embed: Embedder
    images: np.ndarray | None = None
    rows: np.ndarray | None = None
    reference: LatentSet | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.z.shape[0])

    @property
    def ids(self) -> np.ndarray:
        return np.array([f"gen-{i}" for i in range(self.n)])

    def render(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decode and embed prior points ``z``: ``(outputs, latents)``."""
        kind, out = decode(self.decoder, z)
        return out, _checked(self.embed(kind, out), len(z))

    def outputs(self, idx: np.ndarray) -> np.ndarray:
        """The decoded outputs of generations ``idx`` (images or rows)."""
        return (self.images if self.kind == "image" else self.rows)[np.asarray(idx)]

    def describe(self) -> dict[str, Any]:
        return {"n": self.n, "prior": self.prior.describe(), "kind": self.kind,
                "decoder": self.decoder.info, "dim": int(self.latents.shape[1]),
                **self.info}


def _checked(z: np.ndarray, n: int) -> np.ndarray:
    z = np.asarray(z, dtype=np.float32)
    if z.ndim != 2 or z.shape[0] != n:
        raise InputError(f"re-embedding {n} generations returned shape {z.shape}",
                         key="generator.embed")
    bad = ~np.isfinite(z).all(axis=1)
    if bad.any():
        raise InputError(f"re-embedding returned NaN or Inf for {int(bad.sum())} "
                         "generation(s)", key="generator.embed")
    return z


def generate(cfg: Any, data: LatentSet, reference: LatentSet | None,
             rng: np.random.Generator) -> GeneratedSet:
    """Sample ``cfg.generator.samples`` prior points, decode and re-embed them.

    ``data``/``reference`` are the audit's sets (the demo VAE's decoder rides on
    ``data.decoder``). Raises ``InputError`` naming a ``generator.*`` key on a decoder or
    embedding that cannot be used.
    """
    gen = cfg.generator
    demo_dim = cfg.encoder.demo_vae.latent_dim if (cfg.encoder is not None
                                                   and cfg.encoder.demo_vae) else None
    decoder = load_decoder(gen, decoder_fn=data.decoder, demo_dim=demo_dim,
                           source=cfg.config_path or "<config>")
    embed, real = make_embedder(cfg, data)
    if real.dim != data.dim and reference is not None:
        reference = None                  # the reference lives in the audit's space only
    if gen.prior == "latents" and data.dim != decoder.dim:
        raise InputError(f"prior: latents fits a density on the data's latents ({data.dim}-D), "
                         f"but the decoder takes {decoder.dim}-D inputs",
                         key="generator.prior")
    prior = fit_prior(gen.prior, decoder.dim,
                      latents=data.latents if gen.prior == "latents" else None, seed=cfg.seed)
    z = prior.sample(gen.samples, rng)
    log.info("generator: decoding %d samples of a %s prior (%d-D)", len(z), prior.kind,
             prior.dim)
    kind, out = decode(decoder, z)
    latents = _checked(embed(kind, out), len(z))
    if latents.shape[1] != real.dim:
        raise InputError(f"generations embed to {latents.shape[1]} dimensions but the real "
                         f"data has {real.dim}", key="generator.embed")
    return GeneratedSet(prior=prior, z=z, latents=latents, kind=kind, real=real,
                        decoder=decoder, embed=embed,
                        images=out if kind == "image" else None,
                        rows=out if kind == "table" else None, reference=reference,
                        info={"embed": "encoder" if gen.embed == "encoder" else "own"})
