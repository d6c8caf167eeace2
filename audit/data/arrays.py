"""Readers for precomputed latents and metadata tables (.npy, .npz, .parquet, .csv)."""
from __future__ import annotations

import errno
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..latents import LatentSet
from .metadata import align_metadata

__all__ = ["read_latents", "read_metadata", "load_latent_set"]

LATENT_SUFFIXES = (".npy", ".npz", ".parquet", ".csv")
TABLE_SUFFIXES = (".csv", ".parquet")
#: the largest |value| × √d accepted: squared norms and distances (summed in float32 by
#: the kNN) stay below ~1e36, well inside float32's 3.4e38
MAX_LATENT_NORM = 1e18


def _check_file(path: Path, key: str, suffixes: tuple[str, ...]) -> None:
    if not path.exists():
        if path.is_symlink():
            try:
                path.resolve(strict=True)
            except RuntimeError:
                raise InputError("is a symbolic link loop", source=path, key=key) from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise InputError("is a symbolic link loop", source=path,
                                     key=key) from None
            raise InputError(f"is a broken symbolic link (to {os.readlink(path)})",
                             source=path, key=key)
        raise InputError("file not found", source=path, key=key)
    if path.is_dir():
        raise InputError("is a folder, expected a file", source=path, key=key)
    if path.suffix.lower() not in suffixes:
        raise InputError(f"unsupported file type '{path.suffix}' (use {', '.join(suffixes)})",
                         source=path, key=key)


def read_latents(path: Path, *, key: str = "data.latents", array: str | None = None) -> np.ndarray:
    """Read an N×d float array; reject ragged, 1-D, empty, non-numeric or non-finite data."""
    path = Path(path)
    _check_file(path, key, LATENT_SUFFIXES)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            with open(path, "rb") as fh:
                if fh.read(6) != b"\x93NUMPY":
                    raise InputError("unreadable: not a NumPy .npy file (bad magic bytes)",
                                     source=path, key=key)
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                if array is not None:
                    if array not in names:
                        raise InputError(f"no array '{array}' in the .npz (has {names})",
                                         source=path, key=key)
                    arr = z[array]
                elif len(names) == 1:
                    arr = z[names[0]]
                elif "latents" in names:
                    arr = z["latents"]
                else:
                    raise InputError(f"the .npz holds several arrays {names}: name one with "
                                     "'key:' or call it 'latents'", source=path, key=key)
        elif suffix == ".parquet":
            arr = _frame_to_matrix(pd.read_parquet(path), path, key)
        else:
            arr = _frame_to_matrix(pd.read_csv(path), path, key)
    except InputError:
        raise
    except ValueError as exc:
        if "bject arrays" in str(exc):
            raise InputError("holds Python objects (ragged rows?), expected a numeric N×d "
                             "array", source=path, key=key) from None
        raise InputError(f"unreadable: {exc}", source=path, key=key) from None
    except (OSError, EOFError, zipfile.BadZipFile, pd.errors.ParserError,
            pd.errors.EmptyDataError) as exc:
        raise InputError(f"unreadable ({exc.__class__.__name__}: {exc})".rstrip(": "),
                         source=path, key=key) from None
    except Exception as exc:  # pyarrow raises its own error types
        raise InputError(f"unreadable ({exc.__class__.__name__}: {exc})", source=path,
                         key=key) from None
    return validate_latent_array(arr, source=path, key=key)


def _frame_to_matrix(df: pd.DataFrame, path: Path, key: str) -> np.ndarray:
    if len(df) == 0:
        raise InputError(f"has a header ({df.shape[1]} column(s)) but no rows",
                         source=path, key=key)
    numeric = df.select_dtypes(include=[np.number, "bool"])
    if numeric.shape[1] != df.shape[1]:
        bad = [c for c in df.columns if c not in numeric.columns]
        if len(bad) == 1 and bad[0] == "id":
            numeric = df.drop(columns=["id"])
            if numeric.select_dtypes(include=[np.number]).shape[1] == numeric.shape[1]:
                return numeric.to_numpy(dtype=np.float64)
        raise InputError(f"non-numeric columns {bad[:5]}: a latent table holds one numeric "
                         "column per dimension (an 'id' column is allowed)",
                         source=path, key=key)
    return numeric.to_numpy(dtype=np.float64)


def validate_latent_array(arr: np.ndarray, *, source: str | Path, key: str) -> np.ndarray:
    """Check that ``arr`` is a finite, numeric, non-empty N×d matrix; return it as float32."""
    arr = np.asarray(arr)
    if arr.dtype == object:
        raise InputError("holds Python objects (ragged rows?), expected a numeric N×d array",
                         source=source, key=key)
    if np.iscomplexobj(arr):
        raise InputError(f"has complex dtype {arr.dtype}: latents must be real numbers (take "
                         "the real and imaginary parts as separate dimensions if both matter)",
                         source=source, key=key)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"has dtype {arr.dtype}, expected numbers", source=source, key=key)
    if arr.ndim != 2:
        raise InputError(f"must be 2-D (N samples × d dimensions), got shape {arr.shape}",
                         source=source, key=key)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"is empty (shape {arr.shape})", source=source, key=key)
    # integers, bools and float16 are converted to float32 like float64 (docs/inputs.md)
    finite = np.isfinite(arr) if np.issubdtype(arr.dtype, np.inexact) else None
    if finite is not None and not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        kind = "NaN" if np.isnan(arr).any() else "Inf"
        raise InputError(f"contains {kind} values in {rows.size} row(s), first at row "
                         f"{int(rows[0])}", source=source, key=key)
    big = max(abs(float(arr.max())), abs(float(arr.min())))     # no copy of arr
    f32_max = float(np.finfo(np.float32).max)
    if big > f32_max:
        row = int(np.flatnonzero((np.abs(arr) > f32_max).any(axis=1))[0])
        raise InputError(f"values up to {big:.3g} overflow float32 (largest "
                         f"{f32_max:.3g}; first at row {row}): rescale the "
                         "latents", source=source, key=key)
    limit = MAX_LATENT_NORM / np.sqrt(arr.shape[1])
    if big > limit:
        raise InputError(f"values up to {big:.3g} are too large to audit in float32: squared "
                         f"distances would overflow (the limit is {MAX_LATENT_NORM:.0e}/√d = "
                         f"{limit:.3g} for d={arr.shape[1]}); rescale the latents",
                         source=source, key=key)
    return arr.astype(np.float32)


def read_metadata(path: Path, *, key: str = "data.metadata") -> pd.DataFrame:
    """Read a metadata table (.csv or .parquet)."""
    path = Path(path)
    _check_file(path, key, TABLE_SUFFIXES)
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise InputError("is empty", source=path, key=key) from None
    except Exception as exc:
        raise InputError(f"unreadable ({exc.__class__.__name__}: {exc})", source=path,
                         key=key) from None


def load_latent_set(latents_path: Path, metadata_path: Path | None, *, section: str,
                    id_column: str = "id", array: str | None = None) -> LatentSet:
    """Read a precomputed latent matrix and its optional metadata into a ``LatentSet``."""
    arr = read_latents(latents_path, key=f"{section}.latents", array=array)
    meta = None
    if metadata_path is not None:
        meta = read_metadata(metadata_path, key=f"{section}.metadata")
    ids, meta, _ = align_metadata(arr.shape[0], meta, source=metadata_path,
                                  key=f"{section}.metadata", id_column=id_column,
                                  latents_source=str(latents_path),
                                  id_prefix="" if section == "data" else f"{section}:")
    return LatentSet(latents=arr, metadata=meta, ids=ids, source=str(latents_path),
                     provenance={"kind": "precomputed", "latents": str(latents_path),
                                 "metadata": str(metadata_path) if metadata_path else None})
