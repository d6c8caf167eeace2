"""Generated outputs back into the audit's latent space: "re-embed" for generator audits.

``embed: encoder`` (the default) feeds the decoded images or rows through the audit's own
encoder with the same input preparation as the data (resize, channels, normalisation); an
encoder block of its own embeds both the generations and the real data with that model.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InputError
from ..latents import LatentSet

__all__ = ["Embedder", "make_embedder"]

#: outputs kind ("image" | "table"), outputs -> (n, d) float32 latents
Embedder = Callable[[str, np.ndarray], np.ndarray]


def _torch_embedder(enc: Any, source: Any, key: str) -> Embedder:
    from ..data.images import model_array
    from ..encoders.batching import image_batch, image_settings, normalizer
    from ..encoders.loader import Encoders
    models = Encoders(enc, source=source)
    state: dict[str, Any] = {}

    def embed(kind: str, x: np.ndarray) -> np.ndarray:
        from PIL import Image
        model = models.get()
        if kind == "table":
            out = [model(x[i:i + enc.batch_size]) for i in range(0, len(x), enc.batch_size)]
            return np.concatenate(out).astype(np.float32)
        if "size" not in state:
            state["size"], state["batch"] = image_settings(enc, model)
            state["norm"] = normalizer(enc)
        out = []
        for i in range(0, len(x), state["batch"]):
            arrays = [model_array(Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img),
                                  channels=enc.channels, size=state["size"])
                      for img in x[i:i + state["batch"]]]
            out.append(model(image_batch(arrays, state["norm"])))
        return np.concatenate(out).astype(np.float32)
    return embed


def make_embedder(cfg: Any, data: LatentSet) -> tuple[Embedder, LatentSet]:
    """The function that embeds generated outputs, and the real data in that same space
    (the audited ``data`` for ``embed: encoder``). ``InputError`` names ``generator.embed``
    when the audit has no encoder that can take the decoder's outputs."""
    gen, enc, source = cfg.generator, cfg.encoder, cfg.config_path or "<config>"
    if gen.embed != "encoder":                               # an encoder block of its own
        if cfg.data.images is None and cfg.data.table is None:
            raise InputError("an embed encoder of its own needs the data as files (data: "
                             "images: or table:) to embed them too", source=source,
                             key="generator.embed")
        from ..encoders.encode import encode_set
        from ..encoders.loader import Encoders
        real = encode_set(cfg.data, gen.embed, section="data", models=Encoders(
            gen.embed, source=source), cache=None, source=source)
        real = LatentSet(latents=real.latents, metadata=data.metadata, ids=data.ids,
                         source=real.source, provenance={"embed": "generator.embed"})
        return _torch_embedder(gen.embed, source, "generator.embed"), real
    if enc is None:
        raise InputError("the audit reads latents (no encoder), so generations cannot be "
                         "re-encoded with it: give generator.embed an encoder block",
                         source=source, key="generator.embed")
    if enc.demo_vae is not None:
        if data.encoder is None:
            raise InputError("the demo VAE's encoder is not available (was it read from a "
                             "cache?)", source=source, key="generator.embed")
        vae_encode = data.encoder
        return (lambda kind, x: np.asarray(vae_encode(x), dtype=np.float32)), data
    if enc.flatten:
        return (lambda kind, x: x.reshape(len(x), -1).astype(np.float32)
                / (255.0 if x.dtype == np.uint8 else 1.0)), data
    if enc.sentence_transformers is not None:
        raise InputError("a text encoder cannot embed decoded images or rows: give "
                         "generator.embed an encoder block", source=source,
                         key="generator.embed")
    return _torch_embedder(enc, source, "generator.embed"), data
