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

The full description is in docs/inputs.md.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..latents import LatentSet
from .arrays import validate_latent_array

__all__ = ["STORE_FORMAT", "StoreData", "is_store", "write_store", "read_store",
           "store_from_set", "load_store_set", "content_fingerprint"]

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


def write_store(folder: Path, latents: np.ndarray, ids: np.ndarray,
                metadata: pd.DataFrame | None = None, *, thumbnails: np.ndarray | None = None,
                fingerprint: str | None = None, encoder: dict[str, Any] | None = None,
                source: Any = None, extra: dict[str, Any] | None = None,
                shard_rows: int | None = None) -> Path:
    """Write a latent store into ``folder`` (created; the caller makes it atomic).

    Parameters
    ----------
    latents : ndarray of shape (n, dim)
        Written as float32 shards of ``shard_rows`` rows (default: 256 MiB per shard).
    ids : array of str, shape (n,)
    metadata : DataFrame with n rows, optional
    thumbnails : uint8 array of shape (n, h, w, 3), optional
    fingerprint : str, optional
        The cache key of the inputs and encoder; default: ``content_fingerprint``.
    encoder, source, extra : JSON-ready descriptions recorded in the manifest.
    """
    folder = Path(folder)
    z = np.ascontiguousarray(latents, dtype=np.float32)
    n, dim = z.shape
    ids = np.asarray(ids).astype(str)
    if shard_rows is None:
        shard_rows = max(1, SHARD_BYTES // (4 * max(dim, 1)))
    (folder / "latents").mkdir(parents=True, exist_ok=True)
    shards = []
    for k, start in enumerate(range(0, max(n, 1), shard_rows)):
        part = z[start:start + shard_rows]
        name = f"latents/part-{k:05d}.npy"
        np.save(folder / name, part, allow_pickle=False)
        shards.append({"file": name, "rows": int(part.shape[0])})
    _parquet_frame(ids, metadata).to_parquet(folder / "metadata.parquet", index=False)
    thumbs_name = None
    if thumbnails is not None and len(thumbnails) == n:
        np.save(folder / "thumbnails.npy", np.asarray(thumbnails, dtype=np.uint8),
                allow_pickle=False)
        thumbs_name = "thumbnails.npy"
    manifest = {
        "format": STORE_FORMAT, "n": int(n), "dim": int(dim), "dtype": "float32",
        "shards": shards, "metadata": "metadata.parquet", "id_column": "id",
        "thumbnails": thumbs_name,
        "fingerprint": fingerprint or content_fingerprint(z, ids),
        "encoder": _jsonable(encoder), "source": _jsonable(source),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "latent_audit_version": _version(),
        **_jsonable(extra or {}),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, allow_nan=False),
                                          encoding="utf-8")
    return folder


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


def read_store(folder: Path, *, key: str = "data.latents") -> StoreData:
    """Read and check a latent store; every problem is an ``InputError`` naming the file."""
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
                         source=mpath, key=key)
    try:
        n, dim = int(manifest["n"]), int(manifest["dim"])
        shards = [(str(s["file"]), int(s["rows"])) for s in manifest["shards"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"manifest lacks or garbles {exc}", source=mpath, key=key) from None
    parts = []
    for name, rows in shards:
        p = folder / name
        if not p.is_file() or folder.resolve() not in p.resolve().parents:
            raise InputError("shard listed in the manifest is missing", source=p, key=key)
        try:
            arr = np.load(p, allow_pickle=False, mmap_mode="r")
        except Exception as exc:
            raise InputError(f"unreadable shard ({exc.__class__.__name__}: {exc})", source=p,
                             key=key) from None
        if arr.ndim != 2 or arr.shape[0] != rows or (arr.shape[0] and arr.shape[1] != dim):
            raise InputError(f"shard has shape {arr.shape}, the manifest says ({rows}, {dim})",
                             source=p, key=key)
        parts.append(arr)
    z = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
    if z.shape[0] != n:
        raise InputError(f"shards hold {z.shape[0]} rows, the manifest says n = {n}",
                         source=mpath, key=key)
    z = validate_latent_array(z, source=folder, key=key)
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
                   id_column: str = "id") -> LatentSet:
    """A store as a ``LatentSet``; ``metadata_path`` (optional) is joined on the ids."""
    from .arrays import read_metadata
    from .inputs import join_metadata
    key = f"{section}.latents"
    data = read_store(folder, key=key)
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
