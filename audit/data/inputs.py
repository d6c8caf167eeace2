"""Inputs an encoder turns into latents: image folders, tables and texts.

``open_inputs`` reads what is cheap to read (a folder listing, a table, a text file) and
describes it with a fingerprint of the files (paths, sizes, modification times); images
are decoded later, batch by batch, by the encoder. A metadata table is joined onto the
inputs later, by ``audit.data.metadata.align_metadata``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..config import DataConfig
from ..errors import InputError
from .arrays import read_metadata
from .images import UnreadableImage, list_images, open_image
from .metadata import align_metadata

__all__ = ["ImageInputs", "TableInputs", "TextInputs", "Inputs", "UnreadableImage",
           "open_inputs", "images_from_arrays", "file_fingerprint",
           "unreadable_error"]

TEXT_SUFFIXES = (".csv", ".parquet", ".txt")


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Name, size and modification time of one file (what the cache keys on)."""
    st = Path(path).stat()
    return {"name": Path(path).name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class ImageInputs:
    """Images to encode: ``ids`` (file paths relative to the folder) and a loader."""
    ids: list[str]
    source: str
    load: Callable[[int], Any]            # index -> decoded PIL image, or UnreadableImage
    fingerprint: dict[str, Any]
    metadata: pd.DataFrame | None = None  # aligned with ids (built-in sets), else joined later
    folder: Path | None = None
    truth: dict[str, Any] = field(default_factory=dict)
    kind: str = "images"

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class TableInputs:
    """Table rows to encode: ``values`` (N × columns float32), ids and the other columns."""
    values: np.ndarray
    ids: list[str]
    metadata: pd.DataFrame
    source: str
    columns: list[str]
    fingerprint: dict[str, Any]
    kind: str = "table"

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class TextInputs:
    """Texts to encode, their ids and the other columns."""
    texts: list[str]
    ids: list[str]
    metadata: pd.DataFrame
    source: str
    column: str
    fingerprint: dict[str, Any]
    kind: str = "text"

    def __len__(self) -> int:
        return len(self.ids)


Inputs = ImageInputs | TableInputs | TextInputs


def open_inputs(dc: DataConfig, *, section: str) -> Inputs:
    """Read the input named by ``dc`` (images, table or text); images are not decoded yet."""
    kind = dc.kind
    if kind == "images":
        return _open_images(dc.images, key=f"{section}.images")
    if kind == "table":
        return _open_table(dc, section)
    if kind == "text":
        return _open_text(dc, section)
    raise ValueError(f"not an input kind: {kind}")


def _open_images(folder: Path, *, key: str) -> ImageInputs:
    files = list_images(folder, key=key)
    digest = hashlib.sha256()
    for rel in files:
        st = (folder / rel).stat()
        digest.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())

    def load(i: int):
        return open_image(folder / files[i])
    return ImageInputs(ids=files, source=str(folder), load=load, folder=folder,
                       fingerprint={"kind": "images", "files": len(files),
                                    "listing_sha256": digest.hexdigest()})


def images_from_arrays(images: np.ndarray, ids: np.ndarray, metadata: pd.DataFrame,
                       source: str, identity: Any, truth: dict[str, Any] | None = None
                       ) -> ImageInputs:
    """In-memory uint8 images (n, H, W, C), e.g. a built-in dataset, as encoder inputs."""
    from PIL import Image

    def load(i: int):
        arr = images[i]
        return Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
    return ImageInputs(ids=[str(i) for i in ids], source=source, load=load,
                       metadata=metadata.reset_index(drop=True),
                       fingerprint={"kind": "arrays", "identity": identity},
                       truth=truth or {})


def _read_frame(path: Path, key: str, suffixes: tuple[str, ...]) -> pd.DataFrame:
    if not path.exists():
        raise InputError("file not found", source=path, key=key)
    if path.suffix.lower() not in suffixes:
        raise InputError(f"unsupported file type '{path.suffix}' (use "
                         f"{', '.join(suffixes)})", source=path, key=key)
    if path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"unreadable ({exc.__class__.__name__}: {exc})", source=path,
                             key=key) from None
        return pd.DataFrame({"text": [ln for ln in lines if ln.strip()]})
    return read_metadata(path, key=key)


def _ids_from(frame: pd.DataFrame, id_column: str, path: Path, key: str
              ) -> tuple[list[str], pd.DataFrame]:
    ids, rest, _ = align_metadata(len(frame), frame, source=path, key=key,
                                  id_column=id_column, duplicates="example")
    return ids.tolist(), rest


def _open_table(dc: DataConfig, section: str) -> TableInputs:
    path, key = dc.table, f"{section}.table"
    frame = _read_frame(path, key, (".csv", ".parquet"))
    if frame.empty:
        raise InputError("has no rows", source=path, key=key)
    cols = list(dc.columns or [])
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise InputError(f"column(s) {missing} not in the table (columns: "
                         f"{list(frame.columns)[:20]})", source=path, key=f"{section}.columns")
    sub = frame[cols]
    bad = [c for c in cols if not (pd.api.types.is_numeric_dtype(sub[c])
                                   or pd.api.types.is_bool_dtype(sub[c]))]
    if bad:
        raise InputError(f"column(s) {bad} are not numeric: table columns fed to the encoder "
                         "must hold numbers", source=path, key=f"{section}.columns")
    values = sub.to_numpy(dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        raise InputError(f"missing or non-finite values in {rows.size} row(s) of the encoder "
                         f"columns, first at row {int(rows[0])}", source=path,
                         key=f"{section}.columns")
    ids, rest = _ids_from(frame, dc.id_column, path, key)
    meta = rest.drop(columns=[c for c in cols if c in rest.columns]).reset_index(drop=True)
    fp = {"kind": "table", **file_fingerprint(path), "columns": cols, "id_column": dc.id_column}
    return TableInputs(values=values, ids=ids, metadata=meta, source=str(path), columns=cols,
                       fingerprint=fp)


def _open_text(dc: DataConfig, section: str) -> TextInputs:
    path, key = dc.text, f"{section}.text"
    frame = _read_frame(path, key, TEXT_SUFFIXES)
    column = dc.column or "text"
    if frame.empty:
        raise InputError("has no rows", source=path, key=key)
    if column not in frame.columns:
        raise InputError(f"no column '{column}' (columns: {list(frame.columns)[:20]}); name "
                         "the text column with 'column:'", source=path,
                         key=f"{section}.column")
    ser = frame[column]
    if ser.isna().any():
        raise InputError(f"column '{column}' has {int(ser.isna().sum())} missing texts, first "
                         f"at row {int(np.flatnonzero(ser.isna().to_numpy())[0])}",
                         source=path, key=f"{section}.column")
    texts = ser.astype(str).tolist()
    ids, rest = _ids_from(frame, dc.id_column, path, key)
    meta = rest.drop(columns=[column], errors="ignore").reset_index(drop=True)
    fp = {"kind": "text", **file_fingerprint(path), "column": column,
          "id_column": dc.id_column}
    return TextInputs(texts=texts, ids=ids, metadata=meta, source=str(path), column=column,
                      fingerprint=fp)


def unreadable_error(name: str, reason: str, *, folder: Path | str, key: str) -> InputError:
    """The error for a corrupt image under ``corrupt: fail``."""
    return InputError(f"cannot be read as an image ({reason}); fix or remove it, or set "
                      f"{key.rsplit('.', 1)[0]}.corrupt: skip to leave unreadable files out",
                      source=Path(folder) / name, key=key)
