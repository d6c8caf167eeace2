"""The latent store: a folder other tools can read without latent-audit.

::

    STORE/
      manifest.json            format, n, dim, dtype, shards (file + rows), fingerprint,
                               encoder, source, created
      latents/part-00000.npy   float32 (rows, dim) shards, in row order
      latents/part-00001.npy   ...
      metadata.parquet         one row per latent, same order; column `id` first
      thumbnails.npy           optional: uint8 (n, 48, 48, 3) image thumbnails

Reading it needs only NumPy and a Parquet reader::

    m = json.load(open("STORE/manifest.json"))
    z = np.concatenate([np.load(f"STORE/{s['file']}") for s in m["shards"]])
    meta = pd.read_parquet("STORE/metadata.parquet")      # meta["id"][i] is row i of z

``StoreWriter`` writes one batch by batch in constant memory (a shard every ``SHARD_BYTES``)
and atomically (a temporary folder renamed into place); ``read_store`` reads the shards by
memory map into one preallocated array, or returns a single shard memory-mapped
(``mmap=True``). The full description is in docs/inputs.md and docs/scale.md.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ..errors import InputError
from ..latents import LatentSet

__all__ = ["STORE_FORMAT", "SHARD_BYTES", "StoreData", "StoreWriter", "is_store",
           "write_store", "read_store", "read_manifest", "iter_store_shards", "store_from_set",
           "load_store_set", "content_fingerprint"]

STORE_FORMAT = "latent-audit/latent-store/v1"
SHARD_BYTES = 256 * 2**20          # a new shard every 256 MiB of float32 rows


@dataclass
class StoreData:
    """What a store holds, read back."""
    latents: np.ndarray
    ids: np.ndarray
    metadata: pd.DataFrame          # without the id column
    manifest: dict[str, Any]
    thumbnails: np.ndarray | None = None


def is_store(path: Path) -> bool:
    """True when ``path`` is a folder holding a ``manifest.json``."""
    path = Path(path)
    return path.is_dir() and (path / "manifest.json").is_file()


def content_fingerprint(latents: np.ndarray, ids: np.ndarray) -> str:
    """sha256 of the latent bytes and the ids (for latents that were not encoded here)."""
    h = hashlib.sha256(np.ascontiguousarray(latents, dtype=np.float32).tobytes())
    h.update("\n".join(str(i) for i in ids).encode())
    return h.hexdigest()


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
                meta[c] = ser.map(lambda v: None if v is None or (isinstance(v, float)
                                                                  and np.isnan(v)) else str(v))
    return pd.concat([pd.DataFrame({"id": np.asarray(ids).astype(str)}), meta], axis=1)


def _shard_rows(dim: int, shard_rows: int | None) -> int:
    if shard_rows is not None:
        return max(1, int(shard_rows))
    return max(1, SHARD_BYTES // (4 * max(dim, 1)))


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
        (self._tmp / "latents").mkdir()

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
            self._rows_per_shard = _shard_rows(self.dim, self._shard_rows_given)
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
        name = f"latents/part-{len(self._shards):05d}.npy"
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
            _parquet_frame(ids, metadata).to_parquet(tmp / "metadata.parquet", index=False)
            thumbs_name = None
            if self._thumb_fh is not None:
                self._thumb_fh.close()
                raw = tmp / "thumbnails.raw"
                if self._thumb_rows == self.n:
                    _raw_to_npy(raw, tmp / "thumbnails.npy", (self.n, *self._thumb_shape))
                    thumbs_name = "thumbnails.npy"
                raw.unlink(missing_ok=True)
            if encoder is not None:
                self.encoder = encoder
            self.extra.update(extra or {})
            self._hash.update("\n".join(ids.tolist()).encode())
            manifest = {
                "format": STORE_FORMAT, "n": int(self.n), "dim": int(self.dim),
                "dtype": "float32", "shards": self._shards, "metadata": "metadata.parquet",
                "id_column": "id", "thumbnails": thumbs_name,
                "fingerprint": self.fingerprint or self._hash.hexdigest(),
                "encoder": _jsonable(self.encoder), "source": _jsonable(self.source),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "latent_audit_version": _version(),
                **_jsonable(self.extra),
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, allow_nan=False),
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


def write_store(folder: Path, latents: np.ndarray, ids: np.ndarray,
                metadata: pd.DataFrame | None = None, *, thumbnails: np.ndarray | None = None,
                fingerprint: str | None = None, encoder: dict[str, Any] | None = None,
                source: Any = None, extra: dict[str, Any] | None = None,
                shard_rows: int | None = None) -> Path:
    """Write a latent store into ``folder``, atomically (through ``StoreWriter``).

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
    step = _shard_rows(dim, shard_rows)
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
    return write_store(folder, latent_set.latents, latent_set.ids, latent_set.metadata,
                       thumbnails=images, fingerprint=prov.get("fingerprint"),
                       encoder=prov.get("encoder"),
                       source={k: v for k, v in prov.items() if k not in ("encoder", "truth")},
                       shard_rows=shard_rows)


def read_manifest(folder: Path, *, key: str = "data.latents") -> dict[str, Any]:
    """Read and check ``folder/manifest.json``: the format, ``n``, ``dim``, ``dtype`` and
    ``shards`` (row counts that add up to ``n``). Errors name the manifest and the field."""
    folder = Path(folder)
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        raise InputError("is a folder without a manifest.json: not a latent store (write one "
                         "with `latent-audit encode CONFIG --out DIR`)", source=folder, key=key)
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable ({exc.__class__.__name__}: {exc})", source=mpath,
                         key=key) from None
    if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT:
        raise InputError(f"not a latent store manifest (expected format '{STORE_FORMAT}')",
                         source=mpath, key="format")
    for field in ("n", "dim", "shards"):
        if field not in manifest:
            raise InputError("manifest lacks this field", source=mpath, key=field)
    for field in ("n", "dim"):
        v = manifest[field]
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if field == "dim" else 0):
            raise InputError(f"must be a {'positive' if field == 'dim' else 'non-negative'} "
                             f"integer, not {v!r}", source=mpath, key=field)
    if manifest.get("dtype", "float32") != "float32":
        raise InputError(f"is {manifest.get('dtype')!r}; a latent store holds float32",
                         source=mpath, key="dtype")
    shards = manifest["shards"]
    ok = isinstance(shards, list) and all(
        isinstance(s, dict) and isinstance(s.get("file"), str) and isinstance(s.get("rows"), int)
        and not isinstance(s.get("rows"), bool) and s["rows"] >= 0 for s in shards)
    if not ok:
        raise InputError("must be a list of {file, rows} entries", source=mpath, key="shards")
    total = sum(s["rows"] for s in shards)
    if total != manifest["n"]:
        raise InputError(f"shard row counts add up to {total}, but n = {manifest['n']}",
                         source=mpath, key="shards")
    return manifest


def _check_finite(arr: np.ndarray, *, offset: int, path: Path, key: str,
                  block: int = 1 << 16) -> None:
    """Raise when ``arr`` holds NaN or Inf, naming the shard file (checked in blocks)."""
    for start in range(0, arr.shape[0], block):
        part = np.asarray(arr[start:start + block])
        finite = np.isfinite(part)
        if finite.all():
            continue
        bad = np.flatnonzero(~finite.all(axis=1)) + start
        more = sum(int((~np.isfinite(np.asarray(arr[s:s + block]))).any(axis=1).sum())
                   for s in range(start + block, arr.shape[0], block))
        kind = "NaN" if np.isnan(part).any() else "Inf"
        raise InputError(f"contains {kind} values in {bad.size + more} row(s), first at row "
                         f"{int(bad[0])} of this shard (row {offset + int(bad[0])} of the "
                         "store)", source=path, key=key)


def iter_store_shards(folder: Path, manifest: dict[str, Any] | None = None, *,
                      key: str = "data.latents", check: bool = True) -> Iterator[np.ndarray]:
    """The store's latent shards in row order, each opened with ``np.load(mmap_mode="r")``
    and checked (shape, dtype, and with ``check`` finite values) before it is yielded."""
    folder = Path(folder)
    manifest = read_manifest(folder, key=key) if manifest is None else manifest
    dim, offset = manifest["dim"], 0
    root = folder.resolve()
    for s in manifest["shards"]:
        p = folder / s["file"]
        if not p.is_file() or root not in p.resolve().parents:
            raise InputError("shard listed in the manifest is missing", source=p, key=key)
        try:
            arr = np.load(p, allow_pickle=False, mmap_mode="r")
        except Exception as exc:
            raise InputError(f"unreadable shard ({exc.__class__.__name__}: {exc})", source=p,
                             key=key) from None
        if arr.ndim != 2 or arr.shape[0] != s["rows"] or arr.shape[1] != dim:
            raise InputError(f"shard has shape {arr.shape}, the manifest says "
                             f"({s['rows']}, {dim})", source=p, key=key)
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise InputError(f"shard has dtype {arr.dtype}, expected float32", source=p,
                             key=key)
        if check:
            _check_finite(arr, offset=offset, path=p, key=key)
        yield arr
        offset += s["rows"]


def read_store(folder: Path, *, key: str = "data.latents", mmap: bool = False) -> StoreData:
    """Read and check a latent store; every problem is an ``InputError`` naming the file.

    Parameters
    ----------
    folder : Path
        The store (a folder with ``manifest.json``).
    key : str, default="data.latents"
        The config key errors name.
    mmap : bool, default=False
        When the store has one float32 shard, return it memory-mapped (read-only,
        ``np.memmap``) instead of reading it into memory. Otherwise the shards are copied,
        one at a time, into one preallocated float32 array (peak memory: one copy).
    """
    folder = Path(folder)
    manifest = read_manifest(folder, key=key)
    n, dim = manifest["n"], manifest["dim"]
    mpath = folder / "manifest.json"
    if n == 0:
        raise InputError("the store holds no latents (n = 0)", source=mpath, key="n")
    shards = iter_store_shards(folder, manifest, key=key)
    if mmap and len(manifest["shards"]) == 1:
        z = next(shards)
        if z.dtype != np.float32:
            z = z.astype(np.float32)
    else:
        z = np.empty((n, dim), dtype=np.float32)
        start = 0
        for arr in shards:
            z[start:start + arr.shape[0]] = arr
            start += arr.shape[0]
    meta_path = folder / str(manifest.get("metadata") or "metadata.parquet")
    try:
        frame = pd.read_parquet(meta_path)
    except Exception as exc:
        raise InputError(f"unreadable ({exc.__class__.__name__}: {exc})", source=meta_path,
                         key=key) from None
    id_col = str(manifest.get("id_column") or "id")
    if id_col not in frame.columns or len(frame) != n:
        raise InputError(f"needs an '{id_col}' column and {n} rows (has {len(frame)} rows, "
                         f"columns {list(frame.columns)[:10]})", source=meta_path, key=key)
    ids = frame[id_col].astype(str).to_numpy()
    if pd.Series(ids).duplicated().any():
        raise InputError(f"column '{id_col}' has duplicate ids", source=meta_path, key=key)
    thumbs = None
    if manifest.get("thumbnails"):
        tp = folder / str(manifest["thumbnails"])
        try:
            t = np.load(tp, allow_pickle=False, mmap_mode="r")
            if t.ndim == 4 and t.shape[0] == n and t.shape[-1] == 3 and t.dtype == np.uint8:
                thumbs = t
        except Exception:
            thumbs = None          # thumbnails are optional: a broken file only loses them
    meta = frame.drop(columns=[id_col]).reset_index(drop=True)
    return StoreData(latents=z, ids=ids, metadata=meta, manifest=manifest, thumbnails=thumbs)


def load_store_set(folder: Path, metadata_path: Path | None, *, section: str,
                   id_column: str = "id", mmap: bool = False) -> LatentSet:
    """A store as a ``LatentSet``; ``metadata_path`` (optional) is joined on the ids.
    ``mmap`` as in ``read_store`` (the latents are then read-only)."""
    from .arrays import read_metadata
    from .inputs import join_metadata
    key = f"{section}.latents"
    data = read_store(folder, key=key, mmap=mmap)
    meta, join = data.metadata, None
    if metadata_path is not None:
        table = read_metadata(metadata_path, key=f"{section}.metadata")
        on = (id_column, "file") if id_column != "file" else ("file",)
        meta, join = join_metadata(data.ids, table, path=metadata_path,
                                   key=f"{section}.metadata", on=on, base=meta)
    m = data.manifest
    src = m.get("source") if isinstance(m.get("source"), dict) else {}
    return LatentSet(
        latents=data.latents, metadata=meta, ids=data.ids, source=str(folder),
        images=data.thumbnails,
        provenance={"kind": "store", "latents": str(folder),
                    "source": f"latent store {folder} ({m.get('n')} × {m.get('dim')}"
                              + (f", from {src.get('path')}" if src.get("path") else "") + ")",
                    "metadata": str(metadata_path) if metadata_path else None,
                    "metadata_join": join, "fingerprint": m.get("fingerprint"),
                    "encoder": m.get("encoder"), "store_created": m.get("created"),
                    "store_source": src or None})
