"""Reading latent stores: every shard checked (shape, dtype, finite values) and every
problem an ``InputError`` naming the file; ``load_store_set`` gives a ``LatentSet``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ...errors import InputError
from ...latents import LatentSet
from ..metadata import align_metadata
from .layout import MANIFEST, METADATA, read_manifest

__all__ = ["StoreData", "iter_store_shards", "read_store", "load_store_set"]


@dataclass
class StoreData:
    """What a store holds, read back."""
    latents: np.ndarray
    ids: np.ndarray
    metadata: pd.DataFrame          # without the id column
    manifest: dict[str, Any]
    thumbnails: np.ndarray | None = None


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
    mpath = folder / MANIFEST
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
    meta_path = folder / str(manifest.get("metadata") or METADATA)
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
    from ..arrays import read_metadata
    key = f"{section}.latents"
    data = read_store(folder, key=key, mmap=mmap)
    table = (read_metadata(metadata_path, key=f"{section}.metadata")
             if metadata_path is not None else None)
    _, meta, join = align_metadata(
        data.ids, table, source=metadata_path, key=f"{section}.metadata",
        on=(id_column, "file") if id_column != "file" else ("file",), base=data.metadata)
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
