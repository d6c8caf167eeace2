"""Inputs into model batches: one set of steps for the in-process loop and the Ray actors.

An image is decoded and resized (``prepare_image``), the readable images of a batch are
kept in order with one size for all (``collect_images`` with a ``SizeGuard``), and stacked
and normalised into the model's input (``image_batch``). ``image_batches`` and
``row_batches`` are the in-process loops; ``audit.encoders.ray_engine`` runs the same steps
inside its actors. A batch is ``(latents, row indices, thumbnails or None)``.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..config import EncoderConfig
from ..data.images import UnreadableImage, model_array, thumbnail
from ..data.inputs import ImageInputs, Inputs, TableInputs, TextInputs, unreadable_error
from ..errors import InputError
from ..logs import Progress

log = logging.getLogger("audit")

__all__ = ["Batch", "SizeGuard", "check_table_model", "collect_images", "image_batch",
           "image_batches", "image_settings", "local_batches", "normalizer", "prepare_image",
           "row_batches", "skip_unreadable"]

Batch = tuple[np.ndarray, list[int], "np.ndarray | None"]   # latents, row indices, thumbnails


def image_settings(enc: EncoderConfig, model: Any) -> tuple[tuple[int, int] | None, int]:
    """``(image size or None, batch size)`` for ``model``: ``encoder.image_size``, or the
    exported program's static input size, checked against each other."""
    size = tuple(enc.image_size) if enc.image_size else None
    shape = model.loaded.input_shape
    batch = model.fixed_batch or enc.batch_size
    if shape is not None:
        src, k = model.loaded.source, model.loaded.key
        if len(shape) != 4:
            raise InputError(f"the exported program takes inputs of shape {shape}, not a batch "
                             "of images (B×C×H×W)", source=src, key=k)
        if shape[1] is not None and shape[1] != enc.channels:
            raise InputError(f"the exported program takes {shape[1]}-channel images; set "
                             f"encoder.channels: {shape[1]}", source=src, key=k)
        if shape[2] is not None and shape[3] is not None:
            if size is None:
                size = (shape[2], shape[3])
            elif size != (shape[2], shape[3]):
                raise InputError(f"the exported program takes {shape[2]}×{shape[3]} images "
                                 f"but encoder.image_size is {size[0]}×{size[1]}",
                                 source=src, key="encoder.image_size")
    return size, batch


def normalizer(enc: EncoderConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mean, std)`` shaped (C, 1, 1) for ``encoder.normalize``, or None."""
    if enc.normalize is None:
        return None
    return (np.asarray(enc.normalize.mean, np.float32)[:, None, None],
            np.asarray(enc.normalize.std, np.float32)[:, None, None])


def prepare_image(load: Callable[[], Any], enc: EncoderConfig,
                  size: tuple[int, int] | None) -> tuple[np.ndarray | None, Any]:
    """Decode one image: ``(model array, thumbnail)``, or ``(None, reason)`` when the file
    cannot be read."""
    try:
        img = load()
        return model_array(img, channels=enc.channels, size=size), thumbnail(img)
    except UnreadableImage as exc:
        return None, exc.reason


def image_batch(arrays: list[np.ndarray], norm: tuple[np.ndarray, np.ndarray] | None
                ) -> np.ndarray:
    """Stack prepared images into the model's input batch, normalised."""
    x = np.stack(arrays)
    return x if norm is None else (x - norm[0]) / norm[1]


class SizeGuard:
    """Remembers the first image's shape (C, H, W); another size is an error naming both."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.first: tuple[str, tuple[int, ...]] | None = None

    def check(self, name: str, shape: tuple[int, ...]) -> None:
        if self.first is None:
            self.first = (name, tuple(shape))
        elif tuple(shape) != self.first[1]:
            a, b = self.first[1], shape
            raise InputError(f"images differ in size ({self.first[0]}: {a[1]}×{a[2]}, {name}: "
                             f"{b[1]}×{b[2]}): set encoder.image_size to resize them",
                             source=self.source, key="encoder.image_size")


def collect_images(prepared: Iterable[tuple[int, str, np.ndarray | None, Any]],
                   guard: SizeGuard, on_unreadable: Callable[[int, str], None]
                   ) -> tuple[list[int], list[np.ndarray], list[np.ndarray]]:
    """The readable images of one batch, in order: ``(positions, arrays, thumbnails)``.

    ``prepared`` yields ``(position, name, array or None, thumbnail or reason)`` as from
    ``prepare_image``; an unreadable one goes to ``on_unreadable(position, reason)`` (which
    may raise), a readable one of another size than the first raises through ``guard``.
    """
    positions, arrays, thumbs = [], [], []
    for i, name, arr, extra in prepared:
        if arr is None:
            on_unreadable(i, extra)
            continue
        guard.check(name, arr.shape)
        positions.append(i)
        arrays.append(arr)
        thumbs.append(extra)
    return positions, arrays, thumbs


def skip_unreadable(inputs: ImageInputs, i: int, reason: str, *, corrupt: str, key: str,
                    unreadable: list[tuple[str, str]]) -> None:
    """``corrupt: fail`` raises for image ``i``; ``skip`` logs it and lists it."""
    if corrupt == "fail":
        raise unreadable_error(inputs.ids[i], reason, folder=inputs.source, key=key)
    log.warning("skipping unreadable image %s (%s)", inputs.ids[i], reason)
    unreadable.append((inputs.ids[i], reason))


def check_table_model(n_columns: int, model: Any) -> None:
    """A torch.export program with a static input shape must take rows of ``n_columns``."""
    shape = model.loaded.input_shape
    if shape is not None and (len(shape) != 2 or (shape[1] is not None
                                                   and shape[1] != n_columns)):
        raise InputError(f"the exported program takes inputs of shape {shape}; the table "
                         f"gives rows of {n_columns} values",
                         source=model.loaded.source, key=model.loaded.key)


def image_batches(inputs: ImageInputs, enc: EncoderConfig, model: Any, *, corrupt: str,
                  key: str, unreadable: list[tuple[str, str]]) -> Iterator[Batch]:
    """Encode images batch by batch (decoded on a thread pool); unreadable files are
    skipped (listed in ``unreadable``) or fail, as ``corrupt`` says."""
    size, batch = image_settings(enc, model)
    norm = normalizer(enc)
    n = len(inputs)
    progress = Progress("encode", n, unit="images")
    guard = SizeGuard(inputs.source)

    def prepare(i: int) -> tuple[int, str, Any, Any]:
        return (i, inputs.ids[i], *prepare_image(lambda: inputs.load(i), enc, size))

    def skip(i: int, reason: str) -> None:
        skip_unreadable(inputs, i, reason, corrupt=corrupt, key=key, unreadable=unreadable)

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        for start in range(0, n, batch):
            idx, arrays, thumbs = collect_images(
                pool.map(prepare, range(start, min(n, start + batch))), guard, skip)
            if arrays:
                yield model(image_batch(arrays, norm)), idx, np.stack(thumbs)
            progress.update(min(n, start + batch) - start)


def row_batches(inputs: TableInputs | TextInputs, enc: EncoderConfig, model: Any
                ) -> Iterator[Batch]:
    """Encode table rows or texts batch by batch."""
    n = len(inputs)
    if isinstance(inputs, TextInputs):
        batch, unit, items = enc.batch_size, "texts", inputs.texts
    else:
        check_table_model(len(inputs.columns), model)
        batch, unit, items = model.fixed_batch or enc.batch_size, "rows", inputs.values
    progress = Progress("encode", n, unit=unit)
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        yield model(items[start:stop]), list(range(start, stop)), None
        progress.update(stop - start)


def local_batches(inputs: Inputs, enc: EncoderConfig, model: Any, *, corrupt: str, key: str,
                  unreadable: list[tuple[str, str]]) -> Iterator[Batch]:
    """The in-process loop for any input kind."""
    if isinstance(inputs, ImageInputs):
        return image_batches(inputs, enc, model, corrupt=corrupt, key=key,
                             unreadable=unreadable)
    return row_batches(inputs, enc, model)
