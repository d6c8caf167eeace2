"""Image files: listing a folder, decoding with Pillow, model arrays and thumbnails.

Colour handling, stated once: with ``channels: 3`` every image is converted to RGB the way
torchvision's ``ImageFolder`` loader does (``Image.convert("RGB")``: grayscale is replicated
to three channels, an alpha channel is dropped, palettes are expanded); with ``channels: 1``
it is converted to 8-bit grayscale (``"L"``). Thumbnails are always RGB.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["IMAGE_SUFFIXES", "THUMB_SIZE", "UnreadableImage", "list_images", "open_image",
           "model_array", "thumbnail"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
THUMB_SIZE = 48          # thumbnails are THUMB_SIZE × THUMB_SIZE × 3 uint8 (7 KB each)


class UnreadableImage(Exception):
    """A file that Pillow cannot decode; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def list_images(folder: Path, *, key: str) -> list[str]:
    """Image files under ``folder`` (recursively), as sorted POSIX paths relative to it.

    Hidden files and folders (names starting with '.') are left out, so a cache or a
    ``.git`` folder inside the data folder is never read as data.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError("folder not found", source=folder, key=key)
    if not folder.is_dir():
        raise InputError("is a file, expected a folder of images", source=folder, key=key)
    found: list[str] = []
    for root, dirs, files in os.walk(folder, onerror=None, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_root = Path(root).relative_to(folder)
        for name in files:
            if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            found.append((rel_root / name).as_posix())
    if not found:
        raise InputError(f"no image files ({', '.join(s[1:] for s in IMAGE_SUFFIXES)}) in "
                         "this folder or below it", source=folder, key=key)
    return sorted(found)


def open_image(path: Path):
    """Open and fully decode an image; raise ``UnreadableImage`` if Pillow cannot."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                im.load()
                return im.copy() if im.mode != "P" else im.convert("RGBA")
    except FileNotFoundError:
        raise UnreadableImage("file disappeared") from None
    except Exception as exc:  # Pillow raises many types for bad data
        msg = str(exc).split("\n")[0].replace(f" '{path}'", "").replace(str(path), "the file")
        msg = msg[:120] or exc.__class__.__name__
        raise UnreadableImage(f"{exc.__class__.__name__}: {msg}") from None


def model_array(img, *, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """An image as float32 (channels, height, width) in [0, 1], resized to ``size``.

    ``size`` is (height, width); resizing uses Pillow's bilinear filter (antialiased when
    shrinking). See the module docstring for how colour modes are converted.
    """
    from PIL import Image
    img = img.convert("RGB" if channels == 3 else "L")
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def thumbnail(img, size: int = THUMB_SIZE) -> np.ndarray:
    """A ``size`` × ``size`` RGB uint8 thumbnail, aspect kept, centred on black."""
    from PIL import Image
    rgb = img.convert("RGB")
    w, h = rgb.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    rgb = rgb.resize((nw, nh), Image.NEAREST if scale >= 1 else Image.BILINEAR)
    out = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top:top + nh, left:left + nw] = np.asarray(rgb, dtype=np.uint8)
    return out
