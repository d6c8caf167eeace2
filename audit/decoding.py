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
    if all(p.dtype == np.uint8 for p in parts):
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    # rescale all batches alike, as if joined first (uint8 among floats joins as float64)
    mixed = any(p.dtype == np.uint8 for p in parts)
    return _blocks_to_uint8(parts, np.dtype(np.float64) if mixed else np.result_type(*parts))


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


#: float64 bytes rescaled at a time: the rescale's extra memory stays about this size
#: whatever the number of images (the whole output in float64 was 4.6 GiB at 50k images).
_CHUNK_BYTES = 64 * 2**20


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Pixel values of ``(N, H, W, C)`` images as uint8 (the scaling rules of
    :func:`decode_images`)."""
    if arr.dtype == np.uint8:
        return arr
    return _blocks_to_uint8([arr], arr.dtype)


def _blocks_to_uint8(parts: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """``np.concatenate(parts)`` (as ``dtype``) rescaled to uint8, without building it.

    The rules need the range of all pixels, so one pass finds it and a second rescales
    block by block into the output; each block is at most about ``_CHUNK_BYTES`` of
    float64. Elementwise float64 arithmetic per block gives the values the whole array
    would.
    """
    blocks = [b for p in parts for b in _row_blocks(p)]
    lo, hi = np.inf, -np.inf
    for b in blocks:
        x = _as_float64(b, dtype)
        if not np.all(np.isfinite(x)):
            raise DecodeError("the decoder returned NaN or infinite pixel values")
        if x.size:
            lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
    scale, shift = _scaling(dtype, lo, hi)
    out = np.empty((sum(len(p) for p in parts), *parts[0].shape[1:]), dtype=np.uint8)
    start = 0
    for b in blocks:
        x = _as_float64(b, dtype)
        if shift:
            x += shift
        if scale != 1.0:
            x *= scale
        np.round(x, out=x)
        out[start:start + len(b)] = np.clip(x, 0, 255, out=x)
        start += len(b)
    return out


def _row_blocks(arr: np.ndarray) -> list[np.ndarray]:
    """Consecutive row slices (views) of ``arr``, each about ``_CHUNK_BYTES`` as float64
    (at least one row)."""
    row_bytes = 8 * int(np.prod(arr.shape[1:], dtype=np.int64))
    step = max(1, _CHUNK_BYTES // max(1, row_bytes))
    return [arr[i:i + step] for i in range(0, len(arr), step)]


def _as_float64(block: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A fresh float64 copy of ``block``, cast through ``dtype`` first (as joining the
    parts into one ``dtype`` array would)."""
    if block.dtype == dtype:
        return block.astype(np.float64)
    joined = block.astype(dtype)
    return joined.astype(np.float64, copy=joined.dtype != np.float64)


def _scaling(dtype: np.dtype, lo: float, hi: float) -> tuple[float, float]:
    """``(scale, shift)`` with pixel = (x + shift) * scale: bool and floats within [0, 1]
    times 255, floats within [-1, 1] from [-1, 1], anything else as it is."""
    if dtype == np.bool_:
        return 255.0, 0.0
    if np.issubdtype(dtype, np.floating) and lo <= hi:
        if lo >= 0.0 and hi <= 1.0:
            return 255.0, 0.0
        if lo >= -1.0 and hi <= 1.0:
            return 127.5, 1.0
    return 1.0, 0.0


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else "the decoder failed"
