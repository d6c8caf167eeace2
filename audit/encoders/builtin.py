"""Encoders for in-memory image sets (the built-in datasets): the demo VAE, trained here
on the data, or the flattened pixels."""
from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from ..config import EncoderConfig
from ..data.arrays import validate_latent_array
from ..data.builtin import InputSet
from ..latents import LatentSet

log = logging.getLogger("audit")

__all__ = ["encode_builtin", "flatten"]


def flatten(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, H, W, C) as latents: the flattened pixels in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def _train_demo_vae(enc: EncoderConfig, images: np.ndarray) -> Any:
    from .vae import train_vae
    spec = enc.demo_vae
    log.info("encoder: training the demo VAE on %d images (%d epochs, latent dim %d)",
             len(images), spec.epochs, spec.latent_dim)

    def progress(epoch: int, total: int, loss: float) -> None:
        if epoch == total or epoch % max(1, total // 5) == 0:
            log.info("encoder: epoch %d/%d, loss %.1f", epoch, total, loss)
    return train_vae(images, spec, progress=progress)


def encode_builtin(enc: EncoderConfig | None, data: InputSet, reference: InputSet | None
                   ) -> tuple[LatentSet, LatentSet | None, Any]:
    """Encode ``data`` and ``reference`` with the demo VAE (``encoder.demo_vae``, trained on
    ``data``) or, without one, by flattening. Returns both sets and the trained model
    (None when flattening); with the VAE each set keeps its decoder and encoder."""
    model = decoder = encoder_fn = None
    encode: Callable[[np.ndarray], np.ndarray]
    if enc is not None and enc.demo_vae is not None:
        model = _train_demo_vae(enc, data.images)
        encode, decoder, encoder_fn = model.encode, model.decode, model.encode
        desc = {"kind": "demo_vae", **enc.demo_vae.model_dump(),
                "final_loss": model.history[-1]}
    else:
        encode = flatten
        desc = {"kind": "flatten", "note": "latents are the flattened pixels in [0, 1]"}

    def to_set(inp: InputSet, section: str) -> LatentSet:
        z = validate_latent_array(encode(inp.images), source=inp.source, key=section)
        return LatentSet(latents=z, metadata=inp.metadata, ids=inp.ids, source=inp.source,
                         provenance={"kind": "builtin", "source": inp.source,
                                     "encoder": desc, "truth": inp.truth},
                         images=inp.images, decoder=decoder, encoder=encoder_fn)
    return to_set(data, "data"), (to_set(reference, "reference") if reference else None), model
