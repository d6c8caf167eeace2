"""Sources: a config's data and reference as ``LatentSet``s, read from latents or encoded.

Precomputed latents (arrays, stores), built-in datasets and inputs an encoder reads (images,
tables, text) all end here as ``LatentSet``s with their metadata aligned; degenerate sets are
refused before any geometry is computed. ``encode``/``encode_store`` are the encode-only path
(``latent-audit encode``); ``write_store`` (from ``audit.data.store``) writes one set as a
latent store. Encoding itself lives in ``audit.encoders``: this module only chooses.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .config import AuditConfig, DataConfig
from .data import InputSet, load_builtin, load_latent_set, load_store_set
from .data.metadata import distinct_ids
from .data.store import read_manifest, store_output, write_store
from .errors import AuditError, InputError
from .latents import LatentSet

log = logging.getLogger("audit")

__all__ = ["load_sets", "encode", "encode_store", "write_store"]


def _source_name(cfg: AuditConfig) -> str:
    return str(cfg.config_path) if cfg.config_path else "<config>"


def _encode_inputs(cfg: AuditConfig, data: InputSet, reference: InputSet | None,
                   artifacts: dict[str, Any]) -> tuple[LatentSet, LatentSet | None]:
    from .encoders.builtin import encode_builtin
    data_set, ref_set, model = encode_builtin(cfg.encoder, data, reference)
    if model is not None:
        artifacts["demo_vae"] = model
    return data_set, ref_set


def _load_one(dc: DataConfig, section: str, source: str | None = None
              ) -> LatentSet | InputSet | None:
    """Precomputed latents or a built-in set; ``None`` for inputs an encoder must read."""
    if dc.builtin is not None:
        try:
            return load_builtin(dc.builtin, section=section)
        except AuditError as exc:
            if exc.source is None and source is not None:
                exc.source = source        # name the config file, not only the key
            raise
    if dc.latents is not None:
        if Path(dc.latents).is_dir():
            return load_store_set(dc.latents, dc.metadata, section=section,
                                  id_column=dc.id_column)
        return load_latent_set(dc.latents, dc.metadata, section=section,
                               id_column=dc.id_column, array=dc.key)
    return None


def _cache_dir(cfg: AuditConfig) -> Path | None:
    if cfg.cache is False:
        return None
    if isinstance(cfg.cache, Path):
        return cfg.cache
    return Path.cwd() / ".cache" / "latent-audit"


def _encode_with_model(cfg: AuditConfig, sections: list[str],
                       loaded: dict[str, LatentSet | InputSet | None]) -> list[LatentSet]:
    """Encode each section's inputs with the configured model (loaded once)."""
    from .encoders.encode import encode_set
    from .encoders.loader import Encoders
    models = Encoders(cfg.encoder, source=_source_name(cfg))
    text = cfg.encoder.kind == "sentence_transformers"
    try:
        sets = [encode_set(getattr(cfg, s), cfg.encoder, section=s, models=models,
                           cache=_cache_dir(cfg), source=_source_name(cfg),
                           builtin=loaded[s] if isinstance(loaded[s], InputSet) else None)
                for s in sections]
    finally:
        if not text:
            models.close()
    if text:
        # the same model embeds word lists for the checks (SEAT); after a cache hit it is
        # loaded only if a check asks
        encode_texts = models.text_encoder(cfg.encoder.batch_size)
        for s in sets:
            s.text_encoder = encode_texts
    return sets


def _read_sets(cfg: AuditConfig, artifacts: dict[str, Any], *, with_reference: bool = True
               ) -> tuple[LatentSet, LatentSet | None]:
    sections = ["data"] + (["reference"] if with_reference and cfg.reference else [])
    loaded = {s: _load_one(getattr(cfg, s), s, _source_name(cfg)) for s in sections}
    sets = list(loaded.values())
    if any(isinstance(x, LatentSet) for x in sets) and not all(isinstance(x, LatentSet)
                                                               for x in sets):
        raise InputError("data and reference must both be latents or both be inputs for "
                         "the same encoder", source=_source_name(cfg), key="reference")
    if all(isinstance(x, LatentSet) for x in sets):
        if cfg.encoder is not None:
            raise InputError("an encoder is given but data.latents are already latents",
                             source=_source_name(cfg), key="encoder")
        out = sets
    elif cfg.encoder is not None and cfg.encoder.kind not in ("demo_vae", "flatten"):
        out = _encode_with_model(cfg, sections, loaded)
    else:
        data, ref = _encode_inputs(cfg, loaded["data"], loaded.get("reference"), artifacts)
        out = [data, ref]
    data, ref = out[0], (out[1] if len(out) > 1 else None)
    if ref is not None and data.provenance.get("encoder") is not None:
        ref.ids = distinct_ids(data.ids, ref.ids)
    return data, ref


def encode(config: AuditConfig) -> LatentSet:
    """Read or encode the config's ``data`` (not the reference) into a ``LatentSet``.

    This is what ``latent-audit encode`` writes as a latent store. Image, table and text
    inputs go through the encoder and its cache; precomputed latents are read as they are.
    """
    return _read_sets(config, {}, with_reference=False)[0]


def encode_store(config: AuditConfig, out_dir: Path, *, thumbnails: bool = True
                 ) -> dict[str, Any]:
    """Encode the config's ``data`` into a latent store in ``out_dir``; return its manifest.

    Image, table and text inputs stream from the encoder into the store batch by batch
    (memory holds one shard, not the N×d matrix); other sources are read and written whole.
    """
    out_dir = Path(out_dir)
    dc, enc = config.data, config.encoder
    if enc is not None and enc.kind not in ("demo_vae", "flatten") and dc.kind in (
            "images", "table", "text"):
        from .encoders.encode import encode_to_store
        from .encoders.loader import Encoders
        models = Encoders(enc, source=_source_name(config))
        try:
            with store_output(out_dir) as folder:
                encode_to_store(dc, enc, folder, section="data", models=models,
                                cache=_cache_dir(config), source=_source_name(config),
                                thumbnails=thumbnails)
        finally:
            models.close()
        return read_manifest(out_dir)
    write_store(encode(config), out_dir, thumbnails=thumbnails)
    return read_manifest(out_dir)


def load_sets(cfg: AuditConfig, artifacts: dict[str, Any] | None = None
              ) -> tuple[LatentSet, LatentSet | None]:
    """Read or encode the data and the reference into ``LatentSet``s, and check columns."""
    artifacts = {} if artifacts is None else artifacts
    data, ref = _read_sets(cfg, artifacts)
    if ref is not None and ref.dim != data.dim:
        raise InputError(f"reference latents have {ref.dim} dimensions but the data has "
                         f"{data.dim}", source=ref.source, key="reference.latents")
    meta_src = str(cfg.data.metadata) if cfg.data.metadata else data.source
    for key in ("attributes", "protected", "outcome"):
        wanted = getattr(cfg, key)
        wanted = [wanted] if isinstance(wanted, str) else (wanted or [])
        missing = [c for c in wanted if c not in data.metadata.columns]
        if missing:
            have = list(data.metadata.columns)
            raise InputError(f"column(s) {missing} not in the metadata (columns: "
                             f"{have[:20]}{'…' if len(have) > 20 else ''})",
                             source=meta_src, key=key)
    from .preflight import check_metadata_values
    check_metadata_values(data.metadata, cfg, meta_src)
    min_n = cfg.geometry.k + 1
    if data.n < min_n:
        raise InputError(f"has {data.n} points, fewer than the {min_n} needed for "
                         f"k={cfg.geometry.k} neighbours (lower geometry.k)",
                         source=data.source, key="data")
    _refuse_degenerate(data.latents, min_n, cfg.geometry.k, source=data.source)
    if ref is not None and ref.n < 2:
        raise InputError(f"has {ref.n} points; a reference needs at least 2",
                         source=ref.source, key="reference")
    return data, ref


def _refuse_degenerate(z: np.ndarray, min_n: int, k: int, *, source: str) -> None:
    """Refuse latents with no geometry to audit: every row identical, or fewer distinct
    rows than the k+1 a neighbourhood needs (distances would all be 0)."""
    if not np.ptp(z, axis=0).any():
        raise InputError(f"is degenerate: all {len(z)} rows are identical (zero variance in "
                         "every dimension), so there is no geometry to audit",
                         source=source, key="data")
    rows = np.ascontiguousarray(z).view(np.dtype((np.void, z.dtype.itemsize * z.shape[1])))
    distinct = int(np.unique(rows.ravel()).size)
    if distinct < min_n:
        raise InputError(f"is degenerate: {distinct} distinct rows among {len(z)}, fewer than "
                         f"the {min_n} needed for k={k} neighbours", source=source, key="data")
