"""The store's layout in one place: format name, shard size and names, and the manifest
check every reader goes through (see ``audit.data.store`` for the folder itself)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError

__all__ = ["STORE_FORMAT", "SHARD_BYTES", "MANIFEST", "METADATA", "THUMBNAILS", "SHARDS",
           "shard_file",
           "rows_per_shard", "is_store", "content_fingerprint", "read_manifest"]

STORE_FORMAT = "latent-audit/latent-store/v1"
SHARD_BYTES = 256 * 2**20          # a new shard every 256 MiB of float32 rows
MANIFEST = "manifest.json"
METADATA = "metadata.parquet"
THUMBNAILS = "thumbnails.npy"


SHARDS = "latents"


def shard_file(i: int) -> str:
    """The path of shard ``i`` inside the store."""
    return f"{SHARDS}/part-{i:05d}.npy"


def is_store(path: Path) -> bool:
    """True when ``path`` is a folder holding a ``manifest.json``."""
    path = Path(path)
    return path.is_dir() and (path / MANIFEST).is_file()


def content_fingerprint(latents: np.ndarray, ids: np.ndarray) -> str:
    """sha256 of the latent bytes and the ids (for latents that were not encoded here)."""
    h = hashlib.sha256(np.ascontiguousarray(latents, dtype=np.float32).tobytes())
    h.update("\n".join(str(i) for i in ids).encode())
    return h.hexdigest()


def rows_per_shard(dim: int, shard_rows: int | None = None) -> int:
    """Rows in one shard of ``dim`` float32 columns: ``shard_rows`` when given, else as many
    as fit in ``SHARD_BYTES``."""
    if shard_rows is not None:
        return max(1, int(shard_rows))
    return max(1, SHARD_BYTES // (4 * max(dim, 1)))


def read_manifest(folder: Path, *, key: str = "data.latents") -> dict[str, Any]:
    """Read and check ``folder/manifest.json``: the format, ``n``, ``dim``, ``dtype`` and
    ``shards`` (row counts that add up to ``n``). Errors name the manifest and the field."""
    folder = Path(folder)
    mpath = folder / MANIFEST
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
