"""The encoder cache: a fingerprint of inputs and encoder, and entries stored as latent stores.

The fingerprint is a sha256 over (1) the inputs: every image's relative path, size and
modification time, or the table/text file's size and modification time and the columns
used; (2) the encoder: the size and modification time of its files (model, checkpoint,
factory module, sentence-transformers folder) and every ``encoder:`` setting except
``batch_size``, ``device``, ``engine`` and ``ray``. An entry is a latent store (see
``audit.data.store``) under ``<cache>/<fingerprint[:32]>/`` holding the latents, the ids
and, for images, the thumbnails.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..config import EncoderConfig
from ..data.inputs import Inputs, file_fingerprint
from ..data.store import StoreWriter, read_store
from ..errors import InputError

log = logging.getLogger("audit")

__all__ = ["CACHE_VERSION", "CacheSink", "cache_get", "fingerprint"]

CACHE_VERSION = 1


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


def cache_get(cache: Path | None, fp: str, *, mmap: bool = False) -> Any:
    """The cache entry for ``fp``, or None (no cache, no entry, a broken or stale one)."""
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


class CacheSink:
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
