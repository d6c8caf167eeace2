"""Writing latent stores: ``StoreWriter`` (batch by batch, constant memory, atomic),
``write_latents`` (arrays), ``store_from_set`` (a ``LatentSet`` into a folder) and
``write_store`` (a ``LatentSet`` as the whole ``--out`` folder)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ...columns import is_missing
from ...errors import InputError
from ...io import atomic_outputs
from ...latents import LatentSet
from .layout import (MANIFEST, METADATA, SHARDS, STORE_FORMAT, THUMBNAILS, is_store,
                     rows_per_shard, shard_file)

__all__ = ["StoreWriter", "write_latents", "store_from_set", "store_output", "write_store"]


def _plain(x: Any) -> Any:
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _jsonable(x: Any) -> Any:
    """JSON-ready copy: numpy values become Python ones, NaN None, anything else a string."""
    def fix(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): fix(w) for k, w in v.items()}
        if isinstance(v, (list, tuple)):
            return [fix(w) for w in v]
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if v is None or isinstance(v, (str, bool, int, float)):
            return v
        return fix(_plain(v)) if isinstance(v, (np.generic, np.ndarray)) else str(v)
    return fix(x)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("latent-audit")
    except PackageNotFoundError:
        return "unknown"


def _parquet_frame(ids: np.ndarray, metadata: pd.DataFrame | None) -> pd.DataFrame:
    meta = pd.DataFrame(index=range(len(ids))) if metadata is None else metadata
    meta = meta.reset_index(drop=True).copy()
    meta.columns = [str(c) for c in meta.columns]
    if "id" in meta.columns:                  # a metadata column called `id` that is not the id
        meta = meta.rename(columns={"id": "id_original"})
    for c in meta.columns:
        ser = meta[c]
        if ser.dtype == object:
            kinds = {type(v) for v in ser.dropna()}
            if len(kinds) > 1 or (kinds and not kinds <= {str, bool, int, float}):
                meta[c] = ser.map(lambda v: None if is_missing(v) else str(v))
    return pd.concat([pd.DataFrame({"id": np.asarray(ids).astype(str)}), meta], axis=1)


def _replace_folder(tmp: Path, folder: Path) -> None:
    """Move the finished store ``tmp`` to ``folder``; an existing store there is swapped out
    (renamed aside, then removed), so a reader sees the old store or the new one."""
    if not folder.exists():
        os.replace(tmp, folder)
        return
    if not folder.is_dir() or (any(folder.iterdir()) and not is_store(folder)):
        raise InputError("exists and is not a latent store: give a new or empty folder "
                         "(an existing store there is replaced)", source=folder, key="--out")
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    os.replace(folder, old / "store")
    try:
        os.replace(tmp, folder)
    except OSError:
        os.replace(old / "store", folder)       # put the old store back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


class StoreWriter:
    """Write a latent store batch by batch, in constant memory (one shard at a time).

    Rows are buffered until a shard holds ``shard_rows`` rows (default: ``SHARD_BYTES`` of
    float32), then written as ``latents/part-NNNNN.npy``; thumbnails go to a scratch file
    as they come. Ids and metadata (small next to the latents) are kept until ``close``,
    which writes ``metadata.parquet``, ``thumbnails.npy`` and ``manifest.json``. Everything
    is written into a temporary folder beside ``folder`` and renamed into place at the
    end, so a failed or abandoned write leaves an existing store untouched.

    Examples
    --------
    >>> with StoreWriter(path, encoder={"kind": "torchscript"}) as w:  # doctest: +SKIP
    ...     for z, ids in batches:
    ...         w.append(z, ids)
    """

    def __init__(self, folder: Path, *, shard_rows: int | None = None,
                 fingerprint: str | None = None, encoder: dict[str, Any] | None = None,
                 source: Any = None, extra: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.fingerprint, self.encoder, self.source = fingerprint, encoder, source
        self.extra = dict(extra or {})
        self._shard_rows_given = shard_rows
        self._rows_per_shard: int | None = None
        self.dim: int | None = None
        self.n = 0
        self._buf: list[np.ndarray] = []
        self._buf_rows = 0
        self._shards: list[dict[str, Any]] = []
        self._ids: list[np.ndarray] = []
        self._meta: list[pd.DataFrame] = []
        self._thumb_shape: tuple[int, ...] | None = None
        self._thumb_fh: Any = None
        self._thumb_rows = 0
        self._hash = hashlib.sha256()
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._tmp: Path | None = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}.tmp-",
                                                       dir=self.folder.parent))
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self._tmp, 0o777 & ~mask)       # mkdtemp makes it private
        (self._tmp / SHARDS).mkdir()

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            if not self.closed:
                self.close()
        else:
            self.abort()

    @property
    def closed(self) -> bool:
        return self._tmp is None

    def append(self, latents: np.ndarray, ids: Any, metadata: pd.DataFrame | None = None,
               thumbnails: np.ndarray | None = None) -> None:
        """Add rows: latents (b, dim), their b ids, and optionally b metadata rows and
        b thumbnails (uint8, b × h × w × 3). Give metadata and thumbnails for every batch
        or for none."""
        if self._tmp is None:
            raise RuntimeError("the store writer is closed")
        z = np.ascontiguousarray(latents, dtype=np.float32)
        if z.ndim != 2:
            raise ValueError(f"latents must be 2-D, got shape {z.shape}")
        ids = np.asarray(ids).astype(str).reshape(-1)
        if len(ids) != len(z):
            raise ValueError(f"{len(z)} latent rows but {len(ids)} ids")
        if self.dim is None:
            self.dim = int(z.shape[1])
            self._rows_per_shard = rows_per_shard(self.dim, self._shard_rows_given)
        elif z.shape[1] != self.dim:
            raise ValueError(f"latents have {z.shape[1]} columns, earlier batches {self.dim}")
        if metadata is not None:
            if len(metadata) != len(z):
                raise ValueError(f"{len(z)} latent rows but {len(metadata)} metadata rows")
            self._meta.append(metadata.reset_index(drop=True))
        if thumbnails is not None:
            self._append_thumbnails(np.asarray(thumbnails, dtype=np.uint8), len(z))
        self._ids.append(ids)
        self._hash.update(z.tobytes())
        self.n += len(z)
        start = 0
        while start < len(z):
            take = min(len(z) - start, self._rows_per_shard - self._buf_rows)
            self._buf.append(z[start:start + take])
            self._buf_rows += take
            start += take
            if self._buf_rows == self._rows_per_shard:
                self._flush()

    def _append_thumbnails(self, t: np.ndarray, rows: int) -> None:
        if t.ndim != 4 or len(t) != rows:
            raise ValueError(f"thumbnails must be ({rows}, h, w, 3), got {t.shape}")
        if self._thumb_shape is None:
            self._thumb_shape = t.shape[1:]
            self._thumb_fh = open(self._tmp / "thumbnails.raw", "wb")
        elif t.shape[1:] != self._thumb_shape:
            raise ValueError(f"thumbnails of shape {t.shape[1:]}, earlier {self._thumb_shape}")
        self._thumb_fh.write(np.ascontiguousarray(t).tobytes())
        self._thumb_rows += rows

    def _flush(self) -> None:
        if not self._buf_rows:
            return
        part = self._buf[0] if len(self._buf) == 1 else np.concatenate(self._buf)
        name = shard_file(len(self._shards))
        np.save(self._tmp / name, part, allow_pickle=False)
        self._shards.append({"file": name, "rows": int(part.shape[0])})
        self._buf, self._buf_rows = [], 0

    def close(self, *, metadata: pd.DataFrame | None = None,
              encoder: dict[str, Any] | None = None,
              extra: dict[str, Any] | None = None) -> Path:
        """Write the metadata, thumbnails and manifest, and move the store into place.

        ``metadata`` (n rows), given here, replaces what ``append`` collected; ``encoder``
        and ``extra`` update what the constructor was given.
        """
        if self._tmp is None:
            raise RuntimeError("the store writer is closed")
        try:
            tmp = self._tmp
            if self.n == 0:
                raise InputError("no latents to write", source=self.folder)
            self._flush()
            ids = np.concatenate(self._ids)
            if metadata is None and self._meta:
                if sum(len(m) for m in self._meta) != self.n:
                    raise ValueError("metadata was given for some batches only")
                metadata = pd.concat(self._meta, ignore_index=True)
            _parquet_frame(ids, metadata).to_parquet(tmp / METADATA, index=False)
            thumbs_name = None
            if self._thumb_fh is not None:
                self._thumb_fh.close()
                raw = tmp / "thumbnails.raw"
                if self._thumb_rows == self.n:
                    _raw_to_npy(raw, tmp / THUMBNAILS, (self.n, *self._thumb_shape))
                    thumbs_name = THUMBNAILS
                raw.unlink(missing_ok=True)
            if encoder is not None:
                self.encoder = encoder
            self.extra.update(extra or {})
            self._hash.update("\n".join(ids.tolist()).encode())
            manifest = {
                "format": STORE_FORMAT, "n": int(self.n), "dim": int(self.dim),
                "dtype": "float32", "shards": self._shards, "metadata": METADATA,
                "id_column": "id", "thumbnails": thumbs_name,
                "fingerprint": self.fingerprint or self._hash.hexdigest(),
                "encoder": _jsonable(self.encoder), "source": _jsonable(self.source),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "latent_audit_version": _version(),
                **_jsonable(self.extra),
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, allow_nan=False),
                                               encoding="utf-8")
            _replace_folder(tmp, self.folder)
        except BaseException:
            self.abort()
            raise
        self._tmp = None
        return self.folder

    def abort(self) -> None:
        """Drop what was written; an existing store at ``folder`` stays as it was."""
        if self._thumb_fh is not None and not self._thumb_fh.closed:
            self._thumb_fh.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._buf, self._ids, self._meta = [], [], []


def _raw_to_npy(raw: Path, out: Path, shape: tuple[int, ...]) -> None:
    """A .npy file of uint8 ``shape`` from the raw bytes in ``raw`` (copied in chunks)."""
    with open(out, "wb") as fh, open(raw, "rb") as src:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                 "fortran_order": False, "shape": tuple(int(s) for s in shape)})
        shutil.copyfileobj(src, fh, 16 * 2**20)


def write_latents(folder: Path, latents: np.ndarray, ids: np.ndarray,
                  metadata: pd.DataFrame | None = None, *,
                  thumbnails: np.ndarray | None = None, fingerprint: str | None = None,
                  encoder: dict[str, Any] | None = None, source: Any = None,
                  extra: dict[str, Any] | None = None, shard_rows: int | None = None) -> Path:
    """Write arrays as a latent store into ``folder``, atomically (through ``StoreWriter``).

    Parameters
    ----------
    latents : ndarray of shape (n, dim)
        Written as float32 shards of ``shard_rows`` rows (default: 256 MiB per shard); a
        memory-mapped array is read one shard at a time.
    ids : array of str, shape (n,)
    metadata : DataFrame with n rows, optional
    thumbnails : uint8 array of shape (n, h, w, 3), optional
    fingerprint : str, optional
        The cache key of the inputs and encoder; default: ``content_fingerprint``.
    encoder, source, extra : JSON-ready descriptions recorded in the manifest.

    Returns
    -------
    Path
        ``folder``. An existing store there is replaced whole, or left as it was when the
        write fails.
    """
    n, dim = latents.shape
    ids = np.asarray(ids).astype(str)
    if thumbnails is not None and len(thumbnails) != n:
        thumbnails = None
    step = rows_per_shard(dim, shard_rows)
    with StoreWriter(folder, shard_rows=shard_rows, fingerprint=fingerprint, encoder=encoder,
                     source=source, extra=extra) as writer:
        for start in range(0, n, step):
            stop = min(n, start + step)
            writer.append(latents[start:stop], ids[start:stop],
                          thumbnails=None if thumbnails is None else thumbnails[start:stop])
        return writer.close(metadata=metadata)


def store_from_set(folder: Path, latent_set: LatentSet, *, thumbnails: bool = False,
                   shard_rows: int | None = None) -> Path:
    """Write a ``LatentSet`` (as audited) as a store; thumbnails only when asked."""
    prov = latent_set.provenance
    images = latent_set.images if thumbnails else None
    if images is not None and (np.asarray(images).ndim != 4 or images.shape[-1] != 3):
        images = None
    return write_latents(folder, latent_set.latents, latent_set.ids, latent_set.metadata,
                         thumbnails=images, fingerprint=prov.get("fingerprint"),
                         encoder=prov.get("encoder"),
                         source={k: v for k, v in prov.items()
                                 if k not in ("encoder", "truth")},
                         shard_rows=shard_rows)


@contextmanager
def store_output(out_dir: Path) -> Iterator[Path]:
    """The folder to write a store into so that it becomes ``out_dir`` itself, atomically.

    ``out_dir`` (``--out``) is staged and swapped in whole by ``audit.io.atomic_outputs``;
    the store writer needs a folder of its own, so it writes ``stage/store``, whose files
    are then moved up into the stage.
    """
    with atomic_outputs(Path(out_dir)) as stage:
        folder = stage / "store"
        yield folder
        for item in folder.iterdir():
            item.rename(stage / item.name)
        folder.rmdir()


def write_store(latent_set: LatentSet, out_dir: Path, *, thumbnails: bool = True) -> Path:
    """Write ``latent_set`` as a latent store in ``out_dir``, atomically (see docs/inputs.md).

    An existing store in ``out_dir`` is replaced whole; a folder holding anything else is
    refused. Thumbnails are written when the set has images and ``thumbnails`` is true.
    """
    out_dir = Path(out_dir)
    with store_output(out_dir) as folder:
        store_from_set(folder, latent_set, thumbnails=thumbnails)
    return out_dir
