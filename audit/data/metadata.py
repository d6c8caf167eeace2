"""Metadata aligned to latents, in one function for every source.

``align_metadata`` takes the latents as a row count (metadata given row for row, ids from
its id column or numbered) or as ids (metadata joined on a key column, in any order, with
a report of what did not match). Arrays, stores, encoded inputs and tables all go
through it, so a metadata file means the same thing, and fails the same way, everywhere.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["Aligned", "align_metadata", "distinct_ids"]

_EXAMPLES = 10          # how many unmatched names findings.json lists


class Aligned(NamedTuple):
    """Ids (str) and metadata with one row per latent, in latent order; ``join`` reports
    what did not match when the metadata was joined on a column (else None)."""
    ids: np.ndarray
    metadata: pd.DataFrame
    join: dict[str, Any] | None


def align_metadata(latents: int | Sequence[str] | np.ndarray, metadata: pd.DataFrame | None,
                   *, source: str | Path | None, key: str, id_column: str = "id",
                   on: tuple[str, ...] | None = None, base: pd.DataFrame | None = None,
                   latents_source: str | None = None, id_prefix: str = "",
                   duplicates: str = "rows") -> Aligned:
    """Align ``metadata`` (from ``source``, named by config ``key``) with the latents.

    Parameters
    ----------
    latents : int or sequence of str
        A row count: ``metadata`` matches the latents row for row (same length, same
        order); the ids come from its ``id_column`` (dropped from it) or are
        ``f"{id_prefix}{i}"``. A sequence of ids: ``metadata`` is joined on the first
        column of ``on`` it has (default ``(id_column,)``), in any order; latents without a
        row get missing values.
    metadata : DataFrame, optional
        None: no metadata (an empty frame, or ``base``).
    base : DataFrame, optional
        Join mode only: columns already aligned with the ids, kept and extended (columns
        of ``metadata`` replace same-named ones).
    latents_source : str, optional
        Row mode: where the latents came from, named when the row counts differ.
    duplicates : {"rows", "example"}, default="rows"
        Row mode: how a duplicate id is reported: with the number of rows involved
        (latent files), or with the first repeated id (input tables and texts).
    """
    if isinstance(latents, (int, np.integer)):
        return _by_rows(int(latents), metadata, source=source, key=key, id_column=id_column,
                        latents_source=latents_source, id_prefix=id_prefix,
                        duplicates=duplicates)
    ids = [str(i) for i in latents]
    if metadata is None:
        frame = pd.DataFrame(index=range(len(ids))) if base is None else base
        return Aligned(np.asarray(ids), frame.reset_index(drop=True), None)
    frame, report = _join(ids, metadata, path=source, key=key,
                          on=on if on is not None else (id_column,), base=base)
    return Aligned(np.asarray(ids), frame, report)


def distinct_ids(data_ids: np.ndarray, reference_ids: np.ndarray) -> np.ndarray:
    """Reference ids prefixed ``reference:`` when any equals a data id (e.g. two image
    folders with the same file names), so every id names one row; else unchanged."""
    if set(np.asarray(data_ids).tolist()) & set(np.asarray(reference_ids).tolist()):
        return np.array([f"reference:{i}" for i in reference_ids])
    return reference_ids


def _by_rows(n: int, meta: pd.DataFrame | None, *, source: str | Path | None, key: str,
             id_column: str, latents_source: str | None, id_prefix: str, duplicates: str
             ) -> Aligned:
    if meta is None:
        meta = pd.DataFrame(index=range(n))
    if len(meta) != n:
        raise InputError(f"has {len(meta)} rows but the latents ({latents_source}) have {n}: "
                         "rows must match one to one, in the same order",
                         source=source, key=key)
    if id_column in meta.columns:
        ser = meta[id_column]
        if ser.isna().any():
            raise InputError(f"column '{id_column}' has {int(ser.isna().sum())} missing "
                             "ids", source=source, key=key)
        ids = pd.Series(ser.astype(str).to_numpy())
        if duplicates == "rows":
            dup = ids.duplicated(keep=False)
            if dup.any():
                raise InputError(f"column '{id_column}' has {int(dup.sum())} rows with "
                                 f"duplicate ids (e.g. '{ids[dup].iloc[0]}'): ids must be "
                                 "unique", source=source, key=key)
        else:
            dup = ids.duplicated()
            if dup.any():
                raise InputError(f"column '{id_column}' has duplicate ids (e.g. "
                                 f"'{ids[dup].iloc[0]}'): ids must be unique",
                                 source=source, key=key)
        return Aligned(ids.to_numpy(), meta.drop(columns=[id_column]).reset_index(drop=True),
                       None)
    return Aligned(np.array([f"{id_prefix}{i}" for i in range(n)]),
                   meta.reset_index(drop=True), None)


def _norm_file(v: Any) -> str:
    s = str(v).replace("\\", "/")
    while s.startswith("./"):
        s = s[2:]
    return s


def _join(ids: list[str], meta: pd.DataFrame, *, path: Path | str | None, key: str,
          on: tuple[str, ...], base: pd.DataFrame | None
          ) -> tuple[pd.DataFrame, dict[str, Any]]:
    col = next((c for c in on if c in meta.columns), None)
    if col is None:
        raise InputError(f"has no {' or '.join(repr(c) for c in on)} column to join the "
                         f"inputs on (columns: {list(meta.columns)[:20]})", source=path, key=key)
    keys_ser = meta[col]
    if keys_ser.isna().any():
        raise InputError(f"column '{col}' has {int(keys_ser.isna().sum())} empty values",
                         source=path, key=key)
    keys = keys_ser.map(_norm_file if col == "file" else str)
    dup = keys.duplicated(keep=False)
    if dup.any():
        raise InputError(f"column '{col}' names '{keys[dup].iloc[0]}' in {int(dup.sum())} "
                         "rows: each input may have one row", source=path, key=key)
    id_set, key_set = set(ids), set(keys)
    rows_unmatched = [k for k in keys if k not in id_set]
    inputs_unmatched = [i for i in ids if i not in key_set]
    if len(rows_unmatched) == len(keys) and ids:
        raise InputError(f"none of its {len(keys)} rows matches an input on '{col}' (e.g. "
                         f"'{keys.iloc[0]}' vs the input '{ids[0]}'"
                         + ("; file paths are relative to the images folder" if col == "file"
                            else "") + ")", source=path, key=key)
    aligned = meta.drop(columns=[col]).set_axis(keys.to_numpy()).reindex(ids)
    aligned = aligned.reset_index(drop=True)
    if base is not None:
        keep = base.drop(columns=[c for c in aligned.columns if c in base.columns])
        aligned = pd.concat([keep.reset_index(drop=True), aligned], axis=1)
    report = {
        "file": str(path), "on": col, "rows": int(len(keys)),
        "matched": int(len(ids) - len(inputs_unmatched)),
        "rows_without_input": int(len(rows_unmatched)),
        "rows_without_input_examples": rows_unmatched[:_EXAMPLES],
        "inputs_without_metadata": int(len(inputs_unmatched)),
        "inputs_without_metadata_examples": inputs_unmatched[:_EXAMPLES],
    }
    return aligned, report
