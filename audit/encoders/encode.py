"""Encoding inputs into a ``LatentSet``, with a cache keyed by a fingerprint.

The fingerprint is a sha256 over (1) the inputs: every image's relative path, size and
modification time, or the table/text file's size and modification time and the columns
used; (2) the encoder: the size and modification time of its files (model, checkpoint,
factory module, sentence-transformers folder) and every ``encoder:`` setting except
``batch_size`` and ``device``. A cache entry is a latent store (see ``audit.data.store``)
under ``<cache>/<fingerprint[:32]>/`` holding the latents, the ids and, for images, the
thumbnails. Metadata is not cached: it is joined afresh on every run, so editing the
metadata file never re-encodes.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import DataConfig, EncoderConfig
from ..data.arrays import read_metadata, validate_latent_array
from ..data.builtin import InputSet
from ..data.images import UnreadableImage, model_array, thumbnail
from ..data.inputs import (ImageInputs, Inputs, TableInputs, TextInputs, file_fingerprint,
                           images_from_arrays, join_metadata, open_inputs, unreadable_error)
from ..data.store import read_store, write_store
from ..errors import InputError
from ..latents import LatentSet
from ..logs import Progress

log = logging.getLogger("audit")

__all__ = ["Encoders", "encode_set", "fingerprint", "CACHE_VERSION"]

CACHE_VERSION = 1
_LISTED = 20            # unreadable files named in findings.json


class Encoders:
    """Loads the configured model once, on first use, for the data and the reference."""

    def __init__(self, enc: EncoderConfig, *, source: str | Path = "<config>") -> None:
        self.enc, self.source = enc, source
        self._model: Any = None

    def get(self):
        if self._model is None:
            from .torch_models import ModelEncoder, load_model, resolve_device
            if self.enc.kind == "sentence_transformers":
                from .text import TextEncoder
                log.info("encoder: loading sentence-transformers model %s",
                         self.enc.sentence_transformers)
                self._model = TextEncoder(self.enc.sentence_transformers,
                                          resolve_device(self.enc.device))
            else:
                log.info("encoder: loading %s model", self.enc.kind)
                self._model = ModelEncoder(load_model(self.enc, source=self.source), self.enc)
        return self._model

    def close(self) -> None:
        if self._model is not None and hasattr(self._model, "close"):
            self._model.close()


# ---- fingerprint -------------------------------------------------------------------

def _path_fingerprint(p: Path | str | None) -> Any:
    if p is None:
        return None
    p = Path(p)
    if p.is_file():
        return file_fingerprint(p)
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(p).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        return {"folder": p.name, "listing_sha256": h.hexdigest()}
    return "missing"


def _encoder_fingerprint(enc: EncoderConfig, base: Path | None = None) -> dict[str, Any]:
    settings = enc.model_dump(mode="json", exclude={"batch_size", "device"}, exclude_none=True)
    files: dict[str, Any] = {}
    for k in ("torchscript", "export", "checkpoint"):
        if getattr(enc, k) is not None:
            files[k] = _path_fingerprint(getattr(enc, k))
    if enc.factory:
        target = enc.factory.rsplit(":", 1)[0]
        if target.endswith(".py"):
            files["factory"] = _path_fingerprint(target)
        else:
            import sys
            if base is not None:
                sys.path.insert(0, str(base))     # as import_factory searches it first
            try:       # locating a submodule imports its parent package (user code, opted in)
                spec = importlib.util.find_spec(target)
                files["factory"] = _path_fingerprint(spec.origin if spec else None)
            except Exception:
                files["factory"] = "unresolved"
            finally:
                if base is not None:
                    sys.path.remove(str(base))
    if enc.sentence_transformers:
        try:
            from .text import resolve_text_model
            _, path, module = resolve_text_model(enc.sentence_transformers)
            files["sentence_transformers"] = (
                _path_fingerprint(path) if path is not None
                else {"package": module.__name__, "version": getattr(module, "__version__",
                                                                     None)})
        except InputError:
            files["sentence_transformers"] = "missing"
    return {"settings": settings, "files": files}


def fingerprint(inputs: Inputs, enc: EncoderConfig, *, base: Path | None = None) -> str:
    """The cache key of ``inputs`` encoded by ``enc`` (sha256 hex); ``base`` is the
    config's folder, where a dotted factory module is looked up first."""
    doc = {"version": CACHE_VERSION, "inputs": inputs.fingerprint,
           "encoder": _encoder_fingerprint(enc, base)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


# ---- the cache -----------------------------------------------------------------------

def _cache_get(cache: Path | None, fp: str) -> Any:
    if cache is None:
        return None
    entry = cache / fp[:32]
    if not (entry / "manifest.json").is_file():
        return None
    try:
        data = read_store(entry, key="cache")
    except InputError as exc:
        log.warning("encoder: ignoring a broken cache entry (%s)", exc)
        return None
    if data.manifest.get("fingerprint") != fp:
        return None
    return data


def _cache_put(cache: Path | None, fp: str, **store: Any) -> None:
    if cache is None:
        return
    tmp = None
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{fp[:12]}-", dir=cache))
        write_store(tmp, fingerprint=fp, **store)
        final = cache / fp[:32]
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        tmp = None
        log.info("encoder: cached in %s", final)
    except OSError as exc:
        log.warning("encoder: could not write the cache in %s (%s); carrying on", cache,
                    exc.strerror or exc)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


# ---- running the encoder -------------------------------------------------------------

def _image_settings(inputs: ImageInputs, enc: EncoderConfig, model: Any, key: str
                    ) -> tuple[tuple[int, int] | None, int]:
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


def _encode_images(inputs: ImageInputs, enc: EncoderConfig, model: Any, *, corrupt: str,
                   key: str) -> tuple[np.ndarray, list[int], np.ndarray, list[tuple[str, str]]]:
    size, batch = _image_settings(inputs, enc, model, key)
    mean = std = None
    if enc.normalize is not None:
        mean = np.asarray(enc.normalize.mean, np.float32)[:, None, None]
        std = np.asarray(enc.normalize.std, np.float32)[:, None, None]
    n = len(inputs)
    progress = Progress("encode", n, unit="images")
    unreadable: list[tuple[str, str]] = []
    kept: list[int] = []
    parts: list[np.ndarray] = []
    thumbs: list[np.ndarray] = []
    first_shape: tuple[str, tuple[int, ...]] | None = None

    def prepare(i: int) -> tuple[int, Any, Any]:
        try:
            img = inputs.load(i)
            return i, model_array(img, channels=enc.channels, size=size), thumbnail(img)
        except UnreadableImage as exc:
            return i, None, exc.reason

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        for start in range(0, n, batch):
            arrays, idx = [], []
            for i, arr, extra in pool.map(prepare, range(start, min(n, start + batch))):
                if arr is None:
                    if corrupt == "fail":
                        raise unreadable_error(inputs.ids[i], extra, folder=inputs.source,
                                               key=key)
                    log.warning("skipping unreadable image %s (%s)", inputs.ids[i], extra)
                    unreadable.append((inputs.ids[i], extra))
                    continue
                if first_shape is None:
                    first_shape = (inputs.ids[i], arr.shape)
                elif arr.shape != first_shape[1]:
                    a, b = first_shape[1], arr.shape
                    raise InputError(f"images differ in size ({first_shape[0]}: {a[1]}×{a[2]}, "
                                     f"{inputs.ids[i]}: {b[1]}×{b[2]}): set encoder.image_size "
                                     "to resize them", source=inputs.source,
                                     key="encoder.image_size")
                arrays.append(arr)
                idx.append(i)
                thumbs.append(extra)
            if arrays:
                x = np.stack(arrays)
                if mean is not None:
                    x = (x - mean) / std
                parts.append(model(x))
                kept.extend(idx)
            progress.update(min(n, start + batch) - start)
    if not kept:
        raise InputError(f"none of the {n} images could be read (first: {unreadable[0][0]}: "
                         f"{unreadable[0][1]})", source=inputs.source, key=key)
    return np.concatenate(parts), kept, np.stack(thumbs), unreadable


def _encode_rows(inputs: TableInputs | TextInputs, enc: EncoderConfig, model: Any
                 ) -> np.ndarray:
    n = len(inputs)
    if isinstance(inputs, TextInputs):
        batch, unit, items = enc.batch_size, "texts", inputs.texts
    else:
        shape = model.loaded.input_shape
        if shape is not None and (len(shape) != 2 or (shape[1] is not None
                                                       and shape[1] != len(inputs.columns))):
            raise InputError(f"the exported program takes inputs of shape {shape}; the table "
                             f"gives rows of {len(inputs.columns)} values",
                             source=model.loaded.source, key=model.loaded.key)
        batch, unit, items = model.fixed_batch or enc.batch_size, "rows", inputs.values
    progress = Progress("encode", n, unit=unit)
    parts = []
    for start in range(0, n, batch):
        parts.append(model(items[start:start + batch]))
        progress.update(min(n, start + batch) - start)
    return np.concatenate(parts)


# ---- the public entry --------------------------------------------------------------

def _summary(kind: str, source: str, found: int, used: int, unreadable: list,
             join: dict[str, Any] | None) -> str:
    unit = {"images": "images", "table": "rows", "text": "texts"}.get(kind, "inputs")
    notes = []
    if unreadable:
        names = ", ".join(u[0] for u in unreadable[:3]) + ("…" if len(unreadable) > 3 else "")
        notes.append(f"{len(unreadable)} unreadable file(s) skipped: {names}")
    if join:
        if join["rows_without_input"]:
            notes.append(f"{join['rows_without_input']} metadata row(s) without "
                         f"{'an image' if kind == 'images' else 'an input'}")
        if join["inputs_without_metadata"]:
            notes.append(f"{join['inputs_without_metadata']} "
                         f"{'image(s)' if kind == 'images' else 'input(s)'} without metadata")
    text = f"{source}: {used} {unit}" + (f" of {found}" if used != found else "")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def encode_set(dc: DataConfig | None, enc: EncoderConfig, *, section: str,
               models: Encoders, cache: Path | None, builtin: InputSet | None = None,
               source: str | Path = "<config>") -> LatentSet:
    """Encode one section's inputs (or a built-in image set) into a ``LatentSet``.

    A cache hit reads the latents back and encodes nothing. Under ``corrupt: skip``
    unreadable images are left out and listed; under ``corrupt: fail`` the first one is an
    ``InputError`` naming the file (also when the cached entry recorded it).
    """
    if builtin is not None:
        inputs: Inputs = images_from_arrays(
            builtin.images, builtin.ids, builtin.metadata, builtin.source,
            identity={"builtin": builtin.source,
                      "spec": dc.builtin.model_dump(mode="json") if dc is not None else None,
                      "n": len(builtin.ids)}, truth=builtin.truth)
        key, corrupt = f"{section}.builtin", "fail"
    else:
        inputs = open_inputs(dc, section=section)
        key, corrupt = f"{section}.{dc.kind}", dc.corrupt
    base = Path(source).parent if str(source) not in ("<config>", "") else Path.cwd()
    fp = fingerprint(inputs, enc, base=base)
    found = len(inputs)
    hit = _cache_get(cache, fp)
    thumbs = None
    if hit is not None:
        info = hit.manifest.get("inputs") or {}
        unreadable = [(u["file"], u["reason"]) for u in info.get("unreadable", [])]
        if unreadable and corrupt == "fail":
            raise unreadable_error(unreadable[0][0], unreadable[0][1], folder=inputs.source,
                                   key=key)
        z = hit.latents
        pos = {s: i for i, s in enumerate(inputs.ids)}
        kept = [pos[s] for s in hit.ids if s in pos]
        if len(kept) != len(hit.ids):
            hit = None                      # should not happen: the fingerprint matched
        else:
            thumbs = hit.thumbnails
            desc = hit.manifest.get("encoder") or {}
            log.info("encoder: cache hit in %s: %d latents, nothing encoded",
                     cache / fp[:32], len(kept))
            status, encoded = "hit", 0
    if hit is None:
        model = models.get()
        log.info("encoder: encoding %d %s from %s", found,
                 {"images": "images", "table": "rows", "text": "texts"}[inputs.kind],
                 inputs.source)
        if isinstance(inputs, ImageInputs):
            z, kept, thumbs, unreadable = _encode_images(inputs, enc, model, corrupt=corrupt,
                                                         key=key)
        else:
            z, kept, unreadable = _encode_rows(inputs, enc, model), list(range(found)), []
        z = validate_latent_array(z, source=getattr(model, "location", None)
                                  or model.loaded.source, key="encoder")
        desc = model.describe()
        status, encoded = ("miss" if cache is not None else "off"), len(kept)
        _cache_put(cache, fp, latents=z, ids=np.asarray([inputs.ids[i] for i in kept]),
                   thumbnails=thumbs, encoder=desc, source={"kind": inputs.kind,
                                                            "path": inputs.source},
                   extra={"inputs": {"found": found, "unreadable": [
                       {"file": f, "reason": r} for f, r in unreadable]}})
    ids = [inputs.ids[i] for i in kept]

    # metadata: joined afresh every run (never cached)
    join = None
    if builtin is not None:
        meta = inputs.metadata.iloc[kept].reset_index(drop=True)
        images = builtin.images[kept]
    elif isinstance(inputs, ImageInputs):
        images = thumbs
        meta = pd.DataFrame(index=range(len(ids)))
        if dc.metadata is not None:
            table = read_metadata(dc.metadata, key=f"{section}.metadata")
            meta, join = join_metadata(ids, table, path=dc.metadata, key=f"{section}.metadata",
                                       on=("file", dc.id_column))
    else:
        images = None
        meta = inputs.metadata.iloc[kept].reset_index(drop=True)
        if dc.metadata is not None:
            table = read_metadata(dc.metadata, key=f"{section}.metadata")
            meta, join = join_metadata(ids, table, path=dc.metadata, key=f"{section}.metadata",
                                       on=(dc.id_column,), base=meta)
    kind = "builtin" if builtin is not None else inputs.kind
    prov: dict[str, Any] = {
        "kind": kind,
        "source": _summary(inputs.kind, inputs.source, found, len(ids), unreadable, join),
        "path": inputs.source,
        "metadata": str(dc.metadata) if dc is not None and dc.metadata else None,
        "inputs": {"found": found, "used": len(ids), "unreadable": len(unreadable),
                   "unreadable_files": [{"file": f, "reason": r}
                                        for f, r in unreadable[:_LISTED]]},
        "metadata_join": join,
        "encoder": desc,
        "fingerprint": fp,
        "cache": {"status": status, "dir": str(cache / fp[:32]) if cache else None,
                  "encoded": encoded},
    }
    if builtin is not None:
        prov["truth"] = builtin.truth
    return LatentSet(latents=z, metadata=meta, ids=np.asarray(ids), source=inputs.source,
                     provenance=prov, images=images)
