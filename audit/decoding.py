"""One safe call of a user's decoder: latents in, uint8 images out, or one clear error.

A decoder is whatever the user handed us (``LatentSet.decoder``): it may raise, return a
torch tensor, channels-first arrays, floats in [0, 1] or [-1, 1], or the wrong number of
images. Checks that show what the model generates (``holes``, ``entanglement``) call
:func:`decode_images` and, on :class:`DecodeError`, record a note and carry on without
the pictures: a broken decoder never costs a check its findings.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["DecodeError", "decode_images"]


class DecodeError(RuntimeError):
    """The decoder failed or returned something that is not a batch of images; the
    message is one line naming what is wrong."""


def decode_images(decoder: Callable[[np.ndarray], Any], z: np.ndarray, *,
                  batch_size: int = 256) -> np.ndarray:
    """Decode latents into ``(N, H, W, C)`` uint8 images, ``C`` in 1, 3, 4.

    The decoder gets float32 batches of at most ``batch_size`` rows. Its output is
    normalised: a torch tensor becomes an array; ``(N, H, W)`` gains a channel axis;
    ``(N, C, H, W)`` (channels-first, ``C`` in 1, 3, 4, and the last axis not a channel
    count) is moved to channels-last; uint8 is kept as it is; floats within [0, 1] are
    scaled by 255, floats within [-1, 1] (some negative) are mapped from [-1, 1]; any
    other numbers are rounded and clipped to 0..255.

    Parameters
    ----------
    decoder : callable
        ``decoder(z)`` with ``z`` of shape ``(n, d)`` float32, returning n images.
    z : ndarray of shape (N, d)
        Latents to decode (raw latents, as the decoder expects them).
    batch_size : int, default=256
        Rows per decoder call (>= 1).

    Returns
    -------
    ndarray of shape (N, H, W, C), uint8

    Raises
    ------
    DecodeError
        When the decoder raises, or returns a shape, count or values (NaN, Inf, text)
        that are not N images; the message is one line.

    Examples
    --------
    >>> decode_images(lambda z: np.ones((len(z), 2, 2)), np.zeros((3, 4))).shape
    (3, 2, 2, 1)
    >>> int(decode_images(lambda z: np.ones((len(z), 2, 2)), np.zeros((1, 4)))[0, 0, 0, 0])
    255
    >>> decode_images(lambda z: np.zeros((len(z), 3, 8, 8)), np.zeros((2, 4))).shape
    (2, 8, 8, 3)
    >>> decode_images(lambda z: np.zeros(5), np.zeros((2, 4)))
    Traceback (most recent call last):
    ...
    audit.decoding.DecodeError: the decoder returned shape (5,); expected (2, H, W, C) with C in 1, 3, 4
    """
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"z must be a non-empty 2-D array of latents; got shape {z.shape}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    z = np.ascontiguousarray(z, dtype=np.float32)
    batch_size = int(batch_size)
    parts = [_call(decoder, z[start:start + batch_size])
             for start in range(0, len(z), batch_size)]
    if len({p.shape[1:] for p in parts}) > 1:
        raise DecodeError("the decoder returned images of different sizes across batches: "
                          + ", ".join(str(p.shape[1:]) for p in parts))
    if len({p.dtype == np.uint8 for p in parts}) > 1:    # rescale all batches alike
        parts = [p.astype(np.float64) for p in parts]
    return _to_uint8(parts[0] if len(parts) == 1 else np.concatenate(parts))


def _call(decoder: Callable[[np.ndarray], Any], z: np.ndarray) -> np.ndarray:
    """One decoder call, its output as an ``(n, H, W, C)`` array (values not yet scaled)."""
    try:
        out = decoder(z)
    except Exception as exc:          # the user's code: any failure becomes one message
        raise DecodeError(_one_line(f"{exc.__class__.__name__}: {exc}")) from exc
    try:
        if hasattr(out, "detach") and hasattr(out, "cpu"):       # a torch tensor
            out = out.detach().cpu().numpy()
        arr = np.asarray(out)
    except Exception as exc:
        raise DecodeError(_one_line(f"the decoder returned {type(out).__name__}, not an "
                                    f"array ({exc.__class__.__name__}: {exc})")) from exc
    return _channels_last(arr, len(z))


def _channels_last(arr: np.ndarray, n: int) -> np.ndarray:
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim == 4 and arr.shape[-1] not in (1, 3, 4) and arr.shape[1] in (1, 3, 4):
        arr = np.moveaxis(arr, 1, -1)
    if arr.ndim != 4 or arr.shape[0] != n or arr.shape[-1] not in (1, 3, 4):
        raise DecodeError(f"the decoder returned shape {arr.shape}; expected ({n}, H, W, C) "
                          "with C in 1, 3, 4")
    if arr.dtype != np.uint8 and not (np.issubdtype(arr.dtype, np.number)
                                      or arr.dtype == np.bool_):
        raise DecodeError(f"the decoder returned values of dtype {arr.dtype}, not numbers")
    return arr


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Pixel values of ``(N, H, W, C)`` images as uint8 (the scaling rules of
    :func:`decode_images`)."""
    if arr.dtype == np.uint8:
        return arr
    x = arr.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise DecodeError("the decoder returned NaN or infinite pixel values")
    if arr.dtype == np.bool_:
        x = x * 255.0
    elif np.issubdtype(arr.dtype, np.floating) and x.size:
        lo, hi = float(x.min()), float(x.max())
        if lo >= 0.0 and hi <= 1.0:
            x = x * 255.0
        elif lo >= -1.0 and hi <= 1.0:
            x = (x + 1.0) * 127.5
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else "the decoder failed"
