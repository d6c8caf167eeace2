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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from ..config import DataConfig, EncoderConfig
from ..data.arrays import read_metadata
from ..data.builtin import InputSet
from ..data.images import UnreadableImage, model_array, thumbnail
from ..data.inputs import (ImageInputs, Inputs, TableInputs, TextInputs, file_fingerprint,
                           images_from_arrays, join_metadata, open_inputs, unreadable_error)
from ..data.store import SHARD_BYTES, StoreWriter, read_manifest, read_store
from ..errors import InputError
from ..latents import LatentSet
from ..logs import Progress

log = logging.getLogger("audit")

__all__ = ["Encoders", "encode_set", "encode_to_store", "fingerprint", "CACHE_VERSION"]

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
    settings = enc.model_dump(mode="json", exclude={"batch_size", "device", "engine", "ray"},
                              exclude_none=True)
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

def _cache_get(cache: Path | None, fp: str, *, mmap: bool = False) -> Any:
    if cache is None:
        return None
    entry = cache / fp[:32]
    if not (entry / "manifest.json").is_file():
        return None
    try:
        data = read_store(entry, key="cache", mmap=mmap)
    except InputError as exc:
        log.warning("encoder: ignoring a broken cache entry (%s)", exc)
        return None
    if data.manifest.get("fingerprint") != fp:
        return None
    return data


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


Batch = tuple[np.ndarray, list[int], "np.ndarray | None"]   # latents, row indices, thumbnails


def normalizer(enc: EncoderConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mean, std)`` shaped (C, 1, 1) for ``encoder.normalize``, or None."""
    if enc.normalize is None:
        return None
    return (np.asarray(enc.normalize.mean, np.float32)[:, None, None],
            np.asarray(enc.normalize.std, np.float32)[:, None, None])


def prepare_image(load: Callable[[], Any], enc: EncoderConfig,
                  size: tuple[int, int] | None) -> tuple[np.ndarray | None, Any]:
    """Decode one image: ``(model array, thumbnail)``, or ``(None, reason)`` when the file
    cannot be read. Used by the in-process loop and by the Ray actors alike."""
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


def size_mismatch(first: tuple[str, tuple[int, ...]], name: str, shape: tuple[int, ...],
                  source: str) -> InputError:
    a, b = first[1], shape
    return InputError(f"images differ in size ({first[0]}: {a[1]}×{a[2]}, {name}: "
                      f"{b[1]}×{b[2]}): set encoder.image_size to resize them",
                      source=source, key="encoder.image_size")


def _image_batches(inputs: ImageInputs, enc: EncoderConfig, model: Any, *, corrupt: str,
                   key: str, unreadable: list[tuple[str, str]]) -> Iterator[Batch]:
    """Encode images batch by batch; unreadable files are skipped (listed in
    ``unreadable``) or fail, as ``corrupt`` says."""
    size, batch = _image_settings(inputs, enc, model, key)
    norm = normalizer(enc)
    n = len(inputs)
    progress = Progress("encode", n, unit="images")
    first_shape: tuple[str, tuple[int, ...]] | None = None

    def prepare(i: int) -> tuple[int, Any, Any]:
        return (i, *prepare_image(lambda: inputs.load(i), enc, size))

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        for start in range(0, n, batch):
            arrays, idx, thumbs = [], [], []
            for i, arr, extra in pool.map(prepare, range(start, min(n, start + batch))):
                if arr is None:
                    skip_unreadable(inputs, i, extra, corrupt=corrupt, key=key,
                                    unreadable=unreadable)
                    continue
                if first_shape is None:
                    first_shape = (inputs.ids[i], arr.shape)
                elif arr.shape != first_shape[1]:
                    raise size_mismatch(first_shape, inputs.ids[i], arr.shape, inputs.source)
                arrays.append(arr)
                idx.append(i)
                thumbs.append(extra)
            if arrays:
                yield model(image_batch(arrays, norm)), idx, np.stack(thumbs)
            progress.update(min(n, start + batch) - start)


def skip_unreadable(inputs: ImageInputs, i: int, reason: str, *, corrupt: str, key: str,
                    unreadable: list[tuple[str, str]]) -> None:
    """``corrupt: fail`` raises for image ``i``; ``skip`` logs it and lists it."""
    if corrupt == "fail":
        raise unreadable_error(inputs.ids[i], reason, folder=inputs.source, key=key)
    log.warning("skipping unreadable image %s (%s)", inputs.ids[i], reason)
    unreadable.append((inputs.ids[i], reason))


def check_table_model(inputs: TableInputs, model: Any) -> None:
    """A torch.export program with a static input shape must take the table's rows."""
    shape = model.loaded.input_shape
    if shape is not None and (len(shape) != 2 or (shape[1] is not None
                                                   and shape[1] != len(inputs.columns))):
        raise InputError(f"the exported program takes inputs of shape {shape}; the table "
                         f"gives rows of {len(inputs.columns)} values",
                         source=model.loaded.source, key=model.loaded.key)


def _row_batches(inputs: TableInputs | TextInputs, enc: EncoderConfig, model: Any
                 ) -> Iterator[Batch]:
    n = len(inputs)
    if isinstance(inputs, TextInputs):
        batch, unit, items = enc.batch_size, "texts", inputs.texts
    else:
        check_table_model(inputs, model)
        batch, unit, items = model.fixed_batch or enc.batch_size, "rows", inputs.values
    progress = Progress("encode", n, unit=unit)
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        yield model(items[start:stop]), list(range(start, stop)), None
        progress.update(stop - start)


class _ArraySink:
    """Collects batches into one array preallocated for ``n`` rows (no list of batches)."""

    def __init__(self, n: int) -> None:
        self.n, self.rows = n, 0
        self.latents: np.ndarray | None = None
        self.thumbs: np.ndarray | None = None

    def append(self, z: np.ndarray, ids: list[str], thumbs: np.ndarray | None) -> None:
        if self.latents is None:
            self.latents = np.empty((self.n, z.shape[1]), np.float32)
        if thumbs is not None and self.thumbs is None:
            self.thumbs = np.empty((self.n, *thumbs.shape[1:]), np.uint8)
        stop = self.rows + len(z)
        self.latents[self.rows:stop] = z
        if thumbs is not None:
            self.thumbs[self.rows:stop] = thumbs
        self.rows = stop

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        z = self.latents[:self.rows]
        return z, (None if self.thumbs is None else self.thumbs[:self.rows])


class _CacheSink:
    """Streams into a cache entry; a failed write (disk full, read-only) drops the cache."""

    def __init__(self, cache: Path, fp: str, source: dict[str, Any]) -> None:
        self.writer: StoreWriter | None = None
        self.cache, self.fp = cache, fp
        try:
            cache.mkdir(parents=True, exist_ok=True)
            self.writer = StoreWriter(cache / fp[:32], fingerprint=fp, source=source)
        except OSError as exc:
            self._give_up(exc)

    def _give_up(self, exc: OSError) -> None:
        log.warning("encoder: could not write the cache in %s (%s); carrying on", self.cache,
                    exc.strerror or exc)
        if self.writer is not None:
            self.writer.abort()
        self.writer = None

    def append(self, z: np.ndarray, ids: list[str], thumbs: np.ndarray | None) -> None:
        if self.writer is not None:
            try:
                self.writer.append(z, ids, thumbnails=thumbs)
            except OSError as exc:
                self._give_up(exc)

    def close(self, encoder: dict[str, Any], extra: dict[str, Any]) -> None:
        if self.writer is not None:
            try:
                self.writer.close(encoder=encoder, extra=extra)
                log.info("encoder: cached in %s", self.cache / self.fp[:32])
            except OSError as exc:
                self._give_up(exc)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def _check_finite(z: np.ndarray, first_row: int, source: Any) -> None:
    finite = np.isfinite(z)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        kind = "NaN" if np.isnan(z).any() else "Inf"
        raise InputError(f"the model returned {kind} values in {rows.size} row(s) of a batch, "
                         f"first at latent row {first_row + int(rows[0])}", source=source,
                         key="encoder")


def _stream(inputs: Inputs, enc: EncoderConfig, models: Encoders, *, corrupt: str, key: str,
            sinks: list[Any], cache_sink: _CacheSink | None, found: int
            ) -> tuple[list[int], list[tuple[str, str]], dict[str, Any]]:
    """Run the encoder (in process, or on Ray with ``engine: ray``) and hand every batch, in
    row order, to each sink. Returns (kept rows, unreadable files, encoder description)."""
    unreadable: list[tuple[str, str]] = []
    kept: list[int] = []
    if enc.engine == "ray":
        from .ray_engine import RayEncoding
        run = RayEncoding(inputs, enc, corrupt=corrupt, key=key, unreadable=unreadable,
                          source=models.source)
        batches, where = run.batches(), enc.kind
    else:
        model = models.get()
        where = getattr(model, "location", None) or model.loaded.source
        if isinstance(inputs, ImageInputs):
            batches = _image_batches(inputs, enc, model, corrupt=corrupt, key=key,
                                     unreadable=unreadable)
        else:
            batches = _row_batches(inputs, enc, model)
    try:
        for z, idx, thumbs in batches:
            z = np.asarray(z, dtype=np.float32)
            _check_finite(z, len(kept), where)
            ids = [inputs.ids[i] for i in idx]
            for sink in sinks:
                sink.append(z, ids, thumbs)
            kept.extend(idx)
    finally:
        batches.close()         # the Ray engine shuts down what it started, now
    if not kept:
        raise InputError(f"none of the {found} images could be read (first: {unreadable[0][0]}: "
                         f"{unreadable[0][1]})", source=inputs.source, key=key)
    desc = run.describe() if enc.engine == "ray" else model.describe()
    if cache_sink is not None:
        cache_sink.close(desc, {"inputs": {"found": found, "unreadable": [
            {"file": f, "reason": r} for f, r in unreadable]}})
    return kept, unreadable, desc


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


def _open(dc: DataConfig | None, builtin: InputSet | None, section: str
          ) -> tuple[Inputs, str, str]:
    if builtin is not None:
        inputs: Inputs = images_from_arrays(
            builtin.images, builtin.ids, builtin.metadata, builtin.source,
            identity={"builtin": builtin.source,
                      "spec": dc.builtin.model_dump(mode="json") if dc is not None else None,
                      "n": len(builtin.ids)}, truth=builtin.truth)
        return inputs, f"{section}.builtin", "fail"
    return open_inputs(dc, section=section), f"{section}.{dc.kind}", dc.corrupt


def _hit_kept(hit: Any, inputs: Inputs, corrupt: str, key: str
              ) -> tuple[list[int], list[tuple[str, str]]] | None:
    info = hit.manifest.get("inputs") or {}
    unreadable = [(u["file"], u["reason"]) for u in info.get("unreadable", [])]
    if unreadable and corrupt == "fail":
        raise unreadable_error(unreadable[0][0], unreadable[0][1], folder=inputs.source,
                               key=key)
    pos = {s: i for i, s in enumerate(inputs.ids)}
    kept = [pos[s] for s in hit.ids if s in pos]
    if len(kept) != len(hit.ids):
        return None                      # should not happen: the fingerprint matched
    return kept, unreadable


def _metadata(dc: DataConfig | None, inputs: Inputs, builtin: InputSet | None,
              kept: list[int], ids: list[str], section: str
              ) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """Metadata aligned with the kept inputs: joined afresh every run (never cached)."""
    join = None
    if builtin is not None:
        meta = inputs.metadata.iloc[kept].reset_index(drop=True)
    elif isinstance(inputs, ImageInputs):
        meta = pd.DataFrame(index=range(len(ids)))
        if dc.metadata is not None:
            table = read_metadata(dc.metadata, key=f"{section}.metadata")
            meta, join = join_metadata(ids, table, path=dc.metadata, key=f"{section}.metadata",
                                       on=("file", dc.id_column))
    else:
        meta = inputs.metadata.iloc[kept].reset_index(drop=True)
        if dc.metadata is not None:
            table = read_metadata(dc.metadata, key=f"{section}.metadata")
            meta, join = join_metadata(ids, table, path=dc.metadata, key=f"{section}.metadata",
                                       on=(dc.id_column,), base=meta)
    return meta, join


def _provenance(dc: DataConfig | None, inputs: Inputs, builtin: InputSet | None, *,
                found: int, n_used: int, unreadable: list, join: dict[str, Any] | None,
                desc: Any, fp: str, cache: Path | None, status: str, encoded: int
                ) -> dict[str, Any]:
    prov: dict[str, Any] = {
        "kind": "builtin" if builtin is not None else inputs.kind,
        "source": _summary(inputs.kind, inputs.source, found, n_used, unreadable, join),
        "path": inputs.source,
        "metadata": str(dc.metadata) if dc is not None and dc.metadata else None,
        "inputs": {"found": found, "used": n_used, "unreadable": len(unreadable),
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
    return prov


def _encoding_note(inputs: Inputs, found: int, enc: EncoderConfig) -> None:
    log.info("encoder: encoding %d %s from %s%s", found,
             {"images": "images", "table": "rows", "text": "texts"}[inputs.kind],
             inputs.source, " on Ray" if enc.engine == "ray" else "")


def encode_set(dc: DataConfig | None, enc: EncoderConfig, *, section: str,
               models: Encoders, cache: Path | None, builtin: InputSet | None = None,
               source: str | Path = "<config>") -> LatentSet:
    """Encode one section's inputs (or a built-in image set) into a ``LatentSet``.

    A cache hit reads the latents back and encodes nothing. Under ``corrupt: skip``
    unreadable images are left out and listed; under ``corrupt: fail`` the first one is an
    ``InputError`` naming the file (also when the cached entry recorded it). Batches are
    written into one preallocated array and, when the cache is on, streamed into the cache
    entry as they come (``encode_to_store`` streams into a store instead).
    """
    inputs, key, corrupt = _open(dc, builtin, section)
    base = Path(source).parent if str(source) not in ("<config>", "") else Path.cwd()
    fp = fingerprint(inputs, enc, base=base)
    found = len(inputs)
    hit = _cache_get(cache, fp)
    thumbs = None
    if hit is not None:
        got = _hit_kept(hit, inputs, corrupt, key)
        if got is None:
            hit = None
        else:
            kept, unreadable = got
            z, thumbs = hit.latents, hit.thumbnails
            desc = hit.manifest.get("encoder") or {}
            log.info("encoder: cache hit in %s: %d latents, nothing encoded",
                     cache / fp[:32], len(kept))
            status, encoded = "hit", 0
    if hit is None:
        _encoding_note(inputs, found, enc)
        sink = _ArraySink(found)
        cache_sink = (_CacheSink(cache, fp, {"kind": inputs.kind, "path": inputs.source})
                      if cache is not None else None)
        try:
            kept, unreadable, desc = _stream(
                inputs, enc, models, corrupt=corrupt, key=key, found=found,
                sinks=[sink] + ([cache_sink] if cache_sink else []), cache_sink=cache_sink)
        except BaseException:
            if cache_sink is not None:
                cache_sink.abort()
            raise
        z, thumbs = sink.result()
        status, encoded = ("miss" if cache is not None else "off"), len(kept)
    ids = [inputs.ids[i] for i in kept]
    meta, join = _metadata(dc, inputs, builtin, kept, ids, section)
    images = builtin.images[kept] if builtin is not None else (
        thumbs if isinstance(inputs, ImageInputs) else None)
    prov = _provenance(dc, inputs, builtin, found=found, n_used=len(ids),
                       unreadable=unreadable, join=join, desc=desc, fp=fp, cache=cache,
                       status=status, encoded=encoded)
    return LatentSet(latents=z, metadata=meta, ids=np.asarray(ids), source=inputs.source,
                     provenance=prov, images=images)


def encode_to_store(dc: DataConfig | None, enc: EncoderConfig, out: Path, *, section: str,
                    models: Encoders, cache: Path | None, builtin: InputSet | None = None,
                    source: str | Path = "<config>", thumbnails: bool = True
                    ) -> dict[str, Any]:
    """Encode one section's inputs straight into a latent store at ``out``.

    Batches stream into ``out`` (and into the cache entry on a miss) as they are encoded,
    so memory holds one shard, not the whole N×d matrix. On a cache hit the cached shards
    are copied. ``out`` is replaced atomically (see ``StoreWriter``). Returns the manifest.
    """
    inputs, key, corrupt = _open(dc, builtin, section)
    base = Path(source).parent if str(source) not in ("<config>", "") else Path.cwd()
    fp = fingerprint(inputs, enc, base=base)
    found = len(inputs)
    hit = _cache_get(cache, fp, mmap=True)
    got = _hit_kept(hit, inputs, corrupt, key) if hit is not None else None
    with StoreWriter(out, fingerprint=fp) as writer:
        def to_out(z: np.ndarray, ids: list[str], t: np.ndarray | None) -> None:
            writer.append(z, ids, thumbnails=t if thumbnails else None)
        sink = type("_OutSink", (), {"append": staticmethod(to_out)})()
        if got is not None:
            kept, unreadable = got
            step = max(1, SHARD_BYTES // (4 * hit.latents.shape[1]))
            t = hit.thumbnails if isinstance(inputs, ImageInputs) else None
            for start in range(0, len(kept), step):
                stop = min(len(kept), start + step)
                to_out(hit.latents[start:stop], list(hit.ids[start:stop]),
                       None if t is None else np.asarray(t[start:stop]))
            desc = hit.manifest.get("encoder") or {}
            log.info("encoder: cache hit in %s: %d latents, nothing encoded",
                     cache / fp[:32], len(kept))
            status, encoded = "hit", 0
        else:
            _encoding_note(inputs, found, enc)
            cache_sink = (_CacheSink(cache, fp, {"kind": inputs.kind, "path": inputs.source})
                          if cache is not None else None)
            try:
                kept, unreadable, desc = _stream(
                    inputs, enc, models, corrupt=corrupt, key=key, found=found,
                    sinks=[sink] + ([cache_sink] if cache_sink else []),
                    cache_sink=cache_sink)
            except BaseException:
                if cache_sink is not None:
                    cache_sink.abort()
                raise
            status, encoded = ("miss" if cache is not None else "off"), len(kept)
        ids = [inputs.ids[i] for i in kept]
        meta, join = _metadata(dc, inputs, builtin, kept, ids, section)
        prov = _provenance(dc, inputs, builtin, found=found, n_used=len(ids),
                           unreadable=unreadable, join=join, desc=desc, fp=fp, cache=cache,
                           status=status, encoded=encoded)
        writer.source = {k: v for k, v in prov.items() if k not in ("encoder", "truth")}
        writer.close(metadata=meta, encoder=desc)
    return read_manifest(out)
