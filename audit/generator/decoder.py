"""The generator's decoder as a plain function: prior coordinates in, outputs out.

A decoder comes from the config (``generator.decoder``): ``demo_vae`` (the demo VAE's own
decoder), or a PyTorch model (``torchscript``, ``export``, ``factory`` + ``checkpoint``,
loaded like an encoder, with ``weights_only=True``). Its outputs are images (3 or more
axes: made uint8 ``(n, H, W, C)`` by :func:`audit.decoding.decode_images`) or table rows
(2 axes: float32 ``(n, F)``). The prior's dimension is read from the model where it says
(an exported program's static input, the first linear layer's ``in_features``), else
from ``generator.latent_dim``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import InputError

__all__ = ["Decoder", "decode", "load_decoder"]

log = logging.getLogger("audit")


@dataclass
class Decoder:
    """``fn(z)`` maps a float32 batch (n, dim) to raw outputs (n, ...)."""

    fn: Callable[[np.ndarray], Any]
    dim: int
    kind: str
    batch_size: int = 256
    info: dict[str, Any] = field(default_factory=dict)


def _first_linear_in(module: Any) -> int | None:
    """``in_features`` of the first 2-D weight a module holds (its input layer), or None."""
    try:
        for name, p in module.named_parameters():
            if p.ndim == 2 and name.endswith("weight"):
                return int(p.shape[1])
    except Exception:          # noqa: BLE001 - a module that cannot list parameters
        return None
    return None


def _torch_decoder(spec: Any, *, source: Any) -> tuple[Callable, int | None, dict]:
    import torch

    from ..config import EncoderConfig
    from ..encoders.torch_models import _select, load_model
    kind = next(k for k in ("torchscript", "export", "factory") if getattr(spec, k))
    enc = EncoderConfig(**{kind: getattr(spec, kind)}, device=spec.device,
                        **({"checkpoint": spec.checkpoint, "factory_kwargs": spec.factory_kwargs}
                           if kind == "factory" else {}))
    loaded = load_model(enc, source=source, section="generator.decoder")
    dim = None
    if loaded.input_shape is not None and len(loaded.input_shape) == 2:
        dim = loaded.input_shape[1]
    if dim is None:
        dim = getattr(loaded.module, "latent_dim", None)
        dim = int(dim) if isinstance(dim, (int, np.integer)) else _first_linear_in(loaded.module)

    def fn(z: np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(z)).to(device=loaded.device,
                                                       dtype=loaded.dtype)
        with torch.inference_mode():
            out = _select(loaded.module(t), spec.output, source=loaded.source)
        return out.float().cpu().numpy()
    return fn, dim, {"kind": kind, "file": loaded.file, "device": str(loaded.device)}


def load_decoder(gen: Any, *, decoder_fn: Callable | None = None,
                 demo_dim: int | None = None, source: Any = "<config>") -> Decoder:
    """The decoder named by ``gen`` (a ``GeneratorConfig``).

    ``decoder_fn``/``demo_dim``: the demo VAE's decoder and latent size (for
    ``decoder: demo_vae``). Raises ``InputError`` naming ``generator.*`` keys.
    """
    if gen.decoder == "demo_vae":
        if decoder_fn is None:
            raise InputError("decoder: demo_vae needs the demo VAE as the encoder "
                             "(encoder: {demo_vae: ...})", source=source,
                             key="generator.decoder")
        fn, dim, info = decoder_fn, demo_dim, {"kind": "demo_vae"}
    else:
        fn, dim, info = _torch_decoder(gen.decoder, source=source)
    if gen.latent_dim is not None:
        if dim is not None and dim != gen.latent_dim and gen.decoder != "demo_vae":
            log.warning("generator.latent_dim is %d but the decoder's first layer takes %d "
                        "inputs; using %d", gen.latent_dim, dim, gen.latent_dim)
        dim = gen.latent_dim
    if dim is None:
        raise InputError("cannot read the prior's dimension from the decoder; set "
                         "generator.latent_dim", source=source, key="generator.latent_dim")
    batch = gen.decoder.batch_size if gen.decoder != "demo_vae" else 256
    return Decoder(fn=fn, dim=int(dim), kind=info["kind"], batch_size=batch, info=info)


def decode(decoder: Decoder, z: np.ndarray
           ) -> tuple[Literal["image", "table"], np.ndarray]:
    """Decode ``z`` in batches: ``("image", uint8 (n, H, W, C))`` or ``("table", float32
    (n, F))``. Raises ``InputError`` (key ``generator.decoder``) on a failing decoder,
    NaN/Inf rows or outputs of an unusable shape."""
    from ..decoding import DecodeError, decode_images
    z = np.ascontiguousarray(z, dtype=np.float32)
    try:
        first = np.asarray(decoder.fn(z[:1]))
    except Exception as exc:  # noqa: BLE001 - the user's model
        raise InputError(f"the decoder failed on a batch of shape 1×{z.shape[1]} "
                         f"({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]})",
                         key="generator.decoder") from None
    if first.ndim >= 3:
        try:
            return "image", decode_images(decoder.fn, z, batch_size=decoder.batch_size)
        except DecodeError as exc:
            raise InputError(f"the decoder's images are unusable: {exc}",
                             key="generator.decoder") from None
    if first.ndim != 2:
        raise InputError(f"the decoder returned shape {first.shape} for one input; expected "
                         "table rows (n, F) or images (n, H, W[, C])", key="generator.decoder")
    rows = []
    for start in range(0, len(z), decoder.batch_size):
        try:
            out = np.asarray(decoder.fn(z[start:start + decoder.batch_size]), dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - the user's model
            raise InputError(f"the decoder failed ({exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0][:200]})",
                             key="generator.decoder") from None
        if out.shape != (min(decoder.batch_size, len(z) - start), first.shape[1]):
            raise InputError(f"the decoder returned shape {out.shape} for a batch of "
                             f"{min(decoder.batch_size, len(z) - start)}",
                             key="generator.decoder")
        rows.append(out)
    x = np.concatenate(rows)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise InputError(f"the decoder returned NaN or Inf in {int(bad.sum())} of {len(x)} "
                         f"rows (first at prior sample {int(np.flatnonzero(bad)[0])})",
                         key="generator.decoder")
    return "table", x
