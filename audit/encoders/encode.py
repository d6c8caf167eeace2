"""Encoding inputs into a ``LatentSet`` or straight into a latent store, through the cache.

A cache hit (see ``audit.encoders.cache``) reads the latents back and encodes nothing; a
miss runs the model in process or on Ray (``audit.encoders.batching``,
``audit.encoders.ray_engine``) and streams the batches into their sinks. Metadata is not
cached: it is joined afresh on every run (``audit.data.metadata``), so editing the metadata
file never re-encodes.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import DataConfig, EncoderConfig
from ..data.arrays import read_metadata
from ..data.builtin import InputSet
from ..data.inputs import ImageInputs, Inputs, images_from_arrays, open_inputs, unreadable_error
from ..data.metadata import align_metadata
from ..data.store import StoreWriter, read_manifest, rows_per_shard
from ..errors import InputError
from ..latents import LatentSet
from .batching import local_batches
from .cache import CACHE_VERSION, CacheSink, cache_get, fingerprint
from .loader import Encoders

log = logging.getLogger("audit")

__all__ = ["Encoders", "encode_set", "encode_to_store", "fingerprint", "CACHE_VERSION"]

_LISTED = 20            # unreadable files named in findings.json


# ---- running the encoder -------------------------------------------------------------

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


def _check_finite(z: np.ndarray, first_row: int, source: Any) -> None:
    finite = np.isfinite(z)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        kind = "NaN" if np.isnan(z).any() else "Inf"
        raise InputError(f"the model returned {kind} values in {rows.size} row(s) of a batch, "
                         f"first at latent row {first_row + int(rows[0])}", source=source,
                         key="encoder")


def _stream(inputs: Inputs, enc: EncoderConfig, models: Encoders, *, corrupt: str, key: str,
            sinks: list[Any], cache_sink: CacheSink | None, found: int
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
        batches = local_batches(inputs, enc, model, corrupt=corrupt, key=key,
                                unreadable=unreadable)
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
    base = None if isinstance(inputs, ImageInputs) and builtin is None else (
        inputs.metadata.iloc[kept].reset_index(drop=True))
    if builtin is not None or dc.metadata is None:
        return align_metadata(ids, None, source=None, key=f"{section}.metadata",
                              base=base)[1:]
    table = read_metadata(dc.metadata, key=f"{section}.metadata")
    on = ("file", dc.id_column) if base is None else (dc.id_column,)
    _, meta, join = align_metadata(ids, table, source=dc.metadata, key=f"{section}.metadata",
                                   on=on, base=base)
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
    hit = cache_get(cache, fp)
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
        cache_sink = (CacheSink(cache, fp, {"kind": inputs.kind, "path": inputs.source})
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
    hit = cache_get(cache, fp, mmap=True)
    got = _hit_kept(hit, inputs, corrupt, key) if hit is not None else None
    with StoreWriter(out, fingerprint=fp) as writer:
        def to_out(z: np.ndarray, ids: list[str], t: np.ndarray | None) -> None:
            writer.append(z, ids, thumbnails=t if thumbnails else None)
        sink = type("_OutSink", (), {"append": staticmethod(to_out)})()
        if got is not None:
            kept, unreadable = got
            step = rows_per_shard(hit.latents.shape[1])
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
            cache_sink = (CacheSink(cache, fp, {"kind": inputs.kind, "path": inputs.source})
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
