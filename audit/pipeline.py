"""Runs the stages in order: sources -> latents -> geometry -> checks -> gates -> outputs."""
from __future__ import annotations

import base64
import io
import json
import logging
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .checks import run_check
from .columns import is_numeric as is_numeric_column
from .columns import nested_rows
from .config import AuditConfig, DataConfig
from .context import Context
from .data import InputSet, load_builtin, load_latent_set
from .data.arrays import validate_latent_array
from .data.store import store_from_set
from .errors import AuditError, InputError
from .findings import AuditResult, evaluate_gate
from .io import atomic_outputs
from .latents import LatentSet

log = logging.getLogger("audit")

__all__ = ["AuditRun", "run", "write_outputs", "load_sets", "encode", "encode_store",
           "write_store"]


@dataclass
class AuditRun:
    """A finished audit: the result plus artifacts worth saving (e.g. the demo model)."""
    result: AuditResult
    artifacts: dict[str, Any] = field(default_factory=dict)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for pkg in ("latent-audit", "numpy", "scikit-learn", "hdbscan", "torch", "plotly",
                "pandas", "umap-learn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _source_name(cfg: AuditConfig) -> str:
    return str(cfg.config_path) if cfg.config_path else "<config>"


def _encode_inputs(cfg: AuditConfig, data: InputSet, reference: InputSet | None,
                   artifacts: dict[str, Any]) -> tuple[LatentSet, LatentSet | None]:
    enc = cfg.encoder
    decoder = encoder_fn = None
    if enc is not None and enc.demo_vae is not None:
        from .encoders.vae import train_vae
        spec = enc.demo_vae
        log.info("encoder: training the demo VAE on %d images (%d epochs, latent dim %d)",
                 len(data.images), spec.epochs, spec.latent_dim)

        def progress(epoch: int, total: int, loss: float) -> None:
            if epoch == total or epoch % max(1, total // 5) == 0:
                log.info("encoder: epoch %d/%d, loss %.1f", epoch, total, loss)
        model = train_vae(data.images, spec, progress=progress)
        artifacts["demo_vae"] = model
        encode = model.encode
        decoder = model.decode
        encoder_fn = model.encode
        desc = {"kind": "demo_vae", **spec.model_dump(), "final_loss": model.history[-1]}
    else:
        def encode(images: np.ndarray) -> np.ndarray:
            return images.reshape(len(images), -1).astype(np.float32) / 255.0
        desc = {"kind": "flatten", "note": "latents are the flattened pixels in [0, 1]"}

    def to_set(inp: InputSet, section: str) -> LatentSet:
        z = validate_latent_array(encode(inp.images), source=inp.source, key=f"{section}")
        return LatentSet(latents=z, metadata=inp.metadata, ids=inp.ids, source=inp.source,
                         provenance={"kind": "builtin", "source": inp.source,
                                     "encoder": desc, "truth": inp.truth},
                         images=inp.images, decoder=decoder, encoder=encoder_fn)
    return to_set(data, "data"), (to_set(reference, "reference") if reference else None)


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
            from .data.store import load_store_set
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
    from .encoders.encode import Encoders, encode_set
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
        encode_texts = _text_encoder(models, cfg.encoder.batch_size)
        for s in sets:
            s.text_encoder = encode_texts
    return sets


def _text_encoder(models: Any, batch_size: int):
    """Strings -> latents with the configured text model, in batches."""
    def encode_texts(texts: list[str]) -> np.ndarray:
        texts = list(texts)
        model = models.get()
        return np.concatenate([model(texts[i:i + batch_size])
                               for i in range(0, len(texts), batch_size)])
    return encode_texts


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
        overlap = set(data.ids.tolist()) & set(ref.ids.tolist())
        if overlap:       # e.g. two image folders with the same file names
            ref.ids = np.array([f"reference:{i}" for i in ref.ids])
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
        from .data.store import read_manifest
        from .encoders.encode import Encoders, encode_to_store
        models = Encoders(enc, source=_source_name(config))
        try:
            with atomic_outputs(out_dir) as stage:
                encode_to_store(dc, enc, stage / "store", section="data", models=models,
                                cache=_cache_dir(config), source=_source_name(config),
                                thumbnails=thumbnails)
                _hoist(stage / "store")
        finally:
            models.close()
        return read_manifest(out_dir)
    write_store(encode(config), out_dir, thumbnails=thumbnails)
    from .data.store import read_manifest
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


def _thumbnail(img: np.ndarray, size: int = 48) -> str:
    from PIL import Image
    arr = img[..., 0] if img.shape[-1] == 1 else img
    im = Image.fromarray(arr)
    scale = max(1, size // max(im.size))
    im = im.resize((im.size[0] * scale, im.size[1] * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


DENSITY_BINS = 200     # the density layer under a sampled map: a DENSITY_BINS² histogram


def _density_grid(coords: np.ndarray, bins: int = DENSITY_BINS) -> dict[str, Any]:
    """2-D histogram of every point's map position: counts (bins_y × bins_x) and the grid."""
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - 0.01 * span, hi + 0.01 * span
    counts, _, _ = np.histogram2d(coords[:, 1], coords[:, 0], bins=bins,
                                  range=[[lo[1], hi[1]], [lo[0], hi[0]]])
    step = (hi - lo) / bins
    return {"counts": counts.astype(np.uint32), "x0": float(lo[0] + step[0] / 2),
            "dx": float(step[0]), "y0": float(lo[1] + step[1] / 2), "dy": float(step[1]),
            "n": int(len(coords))}


_EVIDENCE_SHOWN = 1000      # evidence points per finding that the drawn sample keeps


def _plot_sample(ctx: Context, checks: list, cap: int) -> np.ndarray:
    """Rows drawn on the map: the points each finding refers to (its evidence, at most
    ``_EVIDENCE_SHOWN`` per finding, and the cluster exemplars), then points some check
    flagged, then a seeded sample; ``cap`` in all."""
    n = ctx.n
    if n <= cap:
        return np.arange(n)
    pos = {s: i for i, s in enumerate(ctx.data.ids.tolist())}
    pick = ctx.rng(6)
    must: set[int] = set()
    for c in checks:
        for f in c.findings:
            ev = [pos[e] for e in f.evidence_ids if e in pos]
            if len(ev) > _EVIDENCE_SHOWN:
                ev = pick.choice(ev, _EVIDENCE_SHOWN, replace=False).tolist()
            must.update(ev)
    must.update(int(i) for ex in ctx.clusters.exemplars.values() for i in ex)
    if len(must) > cap:
        must = set(pick.choice(sorted(must), cap, replace=False).tolist())
    keep = np.zeros(n, dtype=bool)
    keep[list(must)] = True
    rng = ctx.rng(5)
    flagged = np.zeros(n, dtype=bool)
    for c in checks:
        for name, arr in c.per_sample.items():
            arr = np.asarray(arr)
            if name.startswith("is_") and arr.dtype == bool and arr.shape == (n,):
                flagged |= arr
    for pool in (np.flatnonzero(flagged & ~keep), None):
        room = cap - int(keep.sum())
        if room <= 0:
            break
        pool = np.flatnonzero(~keep) if pool is None else pool
        keep[pool if pool.size <= room else rng.choice(pool, room, replace=False)] = True
    return np.flatnonzero(keep)


def _points(ctx: Context, checks: list, cfg: AuditConfig) -> tuple[dict[str, Any], np.ndarray]:
    """Per-point data for the report's map (numpy arrays; the renderer packs them): at most
    ``geometry.plot_points`` points drawn (see ``_plot_sample``), and when that is a
    sample, a density grid of all N points."""
    n = ctx.n
    idx = _plot_sample(ctx, checks, int(cfg.geometry.plot_points))
    all_coords = ctx.map2d.coords
    coords = all_coords[idx].astype(np.float32)
    cols: dict[str, np.ndarray] = {}
    for c in checks:
        for name, arr in c.per_sample.items():
            arr = np.asarray(arr)
            if arr.shape[:1] != (n,):
                continue
            if arr.dtype == bool:
                cols[name] = arr[idx].astype(np.uint8)
            elif np.issubdtype(arr.dtype, np.integer):
                cols[name] = arr[idx].astype(np.int32)
            elif np.issubdtype(arr.dtype, np.number):
                cols[name] = arr[idx].astype(np.float32)
    meta = ctx.data.metadata
    scalar = [c for c in meta.columns if not nested_rows(meta[c]).any()]   # no list/struct
    shown = [c for c in cfg.attributes + cfg.protected if c in scalar]
    shown += [c for c in scalar if c not in shown][: max(0, 8 - len(shown))]
    metadata = {}
    for c in shown:
        ser = meta[c].iloc[idx]
        if is_numeric_column(meta[c]):      # the one rule every chart uses (audit.columns)
            metadata[c] = {"kind": "numeric",
                           "values": pd.to_numeric(ser, errors="coerce")
                           .to_numpy(dtype=np.float32, na_value=np.nan)}
        else:
            codes, cats = pd.factorize(ser, use_na_sentinel=True)
            metadata[c] = {"kind": "categorical", "categories": [str(v) for v in cats],
                           "codes": codes.astype(np.int32)}     # -1 = missing
    sampled = bool(len(idx) < n)
    return ({"ids": [str(i) for i in ctx.data.ids[idx]], "x": coords[:, 0], "y": coords[:, 1],
             "columns": cols, "metadata": metadata, "color_by": shown,
             "density": _density_grid(all_coords) if sampled else None,
             "n_total": n, "n_shown": int(len(idx)), "sampled": sampled}, idx)


#: at most this many per-point hover thumbnails are embedded (each is a small PNG data URI,
#: ~0.4 kB for 32×32 images: 10,000 of them add ~4 MB to report.html)
THUMBNAIL_CAP = 10_000


def _thumbnails(ctx: Context, shown_idx: np.ndarray, checks: list,
                cap: int = THUMBNAIL_CAP) -> dict[str, str]:
    """Data-URI thumbnails: one for every point the map draws (up to ``cap``; beyond it,
    evidence and exemplars first, then a seeded sample), plus the checks' images."""
    thumbs: dict[str, str] = {}
    for c in checks:
        for key, img in c.images.items():
            thumbs[f"{c.check}:{key}"] = _thumbnail(np.asarray(img))
    images = ctx.data.images
    if images is None:
        return thumbs
    ids = ctx.data.ids
    pos = {s: i for i, s in enumerate(ids)}
    ref = ctx.reference
    ref_pos = ({s: i for i, s in enumerate(ref.ids)}
               if ref is not None and ref.images is not None else {})
    want: list[int] = []
    for c in checks:
        for f in c.findings:
            for e in f.evidence_ids[:12]:
                if e in pos:
                    want.append(pos[e])
                elif e in ref_pos:
                    thumbs[e] = _thumbnail(ref.images[ref_pos[e]])
    for ex in ctx.clusters.exemplars.values():
        want.extend(int(i) for i in ex)
    shown = set(int(i) for i in shown_idx)
    want = [i for i in dict.fromkeys(want) if i in shown]    # hover works on drawn points
    rest = np.setdiff1d(shown_idx, np.array(want, dtype=int))
    room = max(0, cap - len(want))
    if rest.size:
        want.extend(ctx.rng(6).choice(rest, min(room, rest.size), replace=False).tolist())
    chosen = want[:cap]
    thumbs.update({str(ids[i]): _thumbnail(images[i]) for i in chosen})
    return thumbs


def run(config: AuditConfig, *, debug: bool = False) -> AuditRun:
    """Run a whole audit in memory; nothing is written (see ``write_outputs``)."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    artifacts: dict[str, Any] = {}
    source = _source_name(config)
    from .preflight import preflight
    checks = preflight(config, source)        # gates, extras, headers: before any compute

    t0 = time.perf_counter()
    log.info("loading data")
    data, ref = load_sets(config, artifacts)
    artifacts["sets"] = {"data": data, "reference": ref}
    timings["load"] = round(time.perf_counter() - t0, 3)
    log.info("data: %d × %d%s", data.n, data.dim,
             f"; reference: {ref.n} × {ref.dim}" if ref is not None else "")

    ctx = Context(data, reference=ref, config=config)
    ctx.prepare()
    if ref is not None and any(c.name == "coverage" for c in checks):
        try:         # timed as geometry, not inside the check's time
            ctx.reference_map2d, ctx.reference_clusters
        except Exception:    # noqa: BLE001 - the check computes them again, reports the error
            log.debug("reference map/clusters failed up front", exc_info=True)
    results = [run_check(c, ctx, debug=debug) for c in checks]
    for r in results:
        timings[f"check.{r.check}"] = round(r.seconds, 3)
    t0 = time.perf_counter()
    points, shown_idx = _points(ctx, results, config)
    thumbs = _thumbnails(ctx, shown_idx, results)
    if ctx.data.images is not None:      # how many drawn points have a hover thumbnail
        points["thumbnails"] = {"n": sum(1 for i in ctx.data.ids[shown_idx] if str(i) in thumbs),
                                "shown": int(len(shown_idx)), "cap": THUMBNAIL_CAP}
    timings["report_data"] = round(time.perf_counter() - t0, 3)
    timings.update(ctx.timings)
    geometry = ctx.describe()
    geometry["plot"] = {"n_shown": points["n_shown"], "n": points["n_total"],
                        "density_bins": DENSITY_BINS if points["sampled"] else None}

    metrics: dict[str, float] = {}
    for r in results:
        metrics.update(r.metrics)
    metrics.update(geometry.get("metrics", {}))
    gates = [evaluate_gate(g.metric, g.op, g.threshold, metrics) for g in config.gates]
    timings["total"] = round(time.perf_counter() - t_start, 3)
    run_info = {
        "name": config.name, "n": data.n, "dim": data.dim, "seed": config.seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(), "config": config.public_dict(),
        "config_file": str(config.config_path) if config.config_path else None,
        "data": {k: v for k, v in data.provenance.items()},
        "reference": ({"n": ref.n, **ref.provenance} if ref is not None else None),
        "attributes": list(config.attributes), "protected": list(config.protected),
    }
    result = AuditResult(run=run_info, checks=results, gates=gates, points=points,
                         geometry=geometry, timings=timings, thumbnails=thumbs,
                         fail_on=config.fail_on)
    return AuditRun(result=result, artifacts=artifacts)


def write_store(latent_set: LatentSet, out_dir: Path, *, thumbnails: bool = True) -> Path:
    """Write ``latent_set`` as a latent store in ``out_dir``, atomically (see docs/inputs.md)."""
    out_dir = Path(out_dir)
    with atomic_outputs(out_dir) as stage:        # the folder is replaced whole
        store_from_set(stage / "store", latent_set, thumbnails=thumbnails)
        _hoist(stage / "store")
    return out_dir


def _hoist(folder: Path) -> None:
    """Move a store written into ``stage/store`` up into ``stage`` (the store writer needs a
    folder of its own; ``--out`` is the store itself)."""
    for item in folder.iterdir():
        item.rename(folder.parent / item.name)
    folder.rmdir()


def write_outputs(audit_run: AuditRun, out_dir: Path) -> dict[str, Path]:
    """Write findings.json, summary.md, report.html and the audited latent store(s)
    (``store/``, ``reference-store/``) atomically."""
    from .report import render_html, render_summary
    result = audit_run.result
    out_dir = Path(out_dir)
    with atomic_outputs(out_dir) as stage:
        (stage / "findings.json").write_text(json.dumps(result.to_json(), indent=2,
                                                        allow_nan=False), encoding="utf-8")
        (stage / "summary.md").write_text(render_summary(result), encoding="utf-8")
        render_html(result, stage / "report.html")
        model = audit_run.artifacts.get("demo_vae")
        if model is not None:
            (stage / "model").mkdir()
            model.save(stage / "model" / "demo_vae.pt")
        sets = audit_run.artifacts.get("sets") or {}
        for name, folder in (("data", "store"), ("reference", "reference-store")):
            if sets.get(name) is not None:          # the latents this run audited
                store_from_set(stage / folder, sets[name])
    return {"findings": out_dir / "findings.json", "summary": out_dir / "summary.md",
            "report": out_dir / "report.html"}
