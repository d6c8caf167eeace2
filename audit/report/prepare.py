"""What the report draws besides the check results: the plot sample, the density layer
under a sampled map, per-point columns and metadata, and hover thumbnails.

``prepare_report`` is what the pipeline calls; ``map_points`` and ``thumbnails`` are its
two parts (benchmarks/bench_report.py times them)."""
from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..columns import is_numeric as is_numeric_column
from ..columns import nested_rows
from ..findings import CheckResult, per_sample_columns

if TYPE_CHECKING:        # the pipeline hands over its context and config; no import edge
    from ..config import AuditConfig
    from ..context import Context

__all__ = ["DENSITY_BINS", "THUMBNAIL_CAP", "prepare_report", "map_points", "plot_sample",
           "density_grid", "thumbnails", "thumbnail"]


def thumbnail(img: np.ndarray, size: int = 48) -> str:
    """A uint8 image (H×W×C) as a PNG data URI, scaled up to about ``size`` pixels."""
    from PIL import Image
    arr = img[..., 0] if img.shape[-1] == 1 else img
    im = Image.fromarray(arr)
    scale = max(1, size // max(im.size))
    im = im.resize((im.size[0] * scale, im.size[1] * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


DENSITY_BINS = 200     # the density layer under a sampled map: a DENSITY_BINS² histogram


def density_grid(coords: np.ndarray, bins: int = DENSITY_BINS) -> dict[str, Any]:
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


def plot_sample(ctx: Context, checks: list, cap: int) -> np.ndarray:
    """Rows drawn on the map: the points each finding refers to (its evidence, at most
    ``_EVIDENCE_SHOWN`` per finding, and the cluster exemplars), then points some check
    flagged, then a seeded sample; ``cap`` in all."""
    n = ctx.n
    if n <= cap:
        return np.arange(n)
    pos = {s: i for i, s in enumerate(ctx.data.ids.tolist())}
    pick = ctx.rng("report.plot.evidence")
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
    rng = ctx.rng("report.plot.fill")
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


def _drawn(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The drawn rows of a per-sample column, in the type the page packs: uint8 for
    booleans, int32 for integers, float32 otherwise."""
    kind = arr.dtype.kind
    return arr[idx].astype(np.uint8 if kind == "b" else np.int32 if kind in "iu"
                           else np.float32)


def map_points(ctx: Context, checks: list[CheckResult], cfg: AuditConfig
               ) -> tuple[dict[str, Any], np.ndarray]:
    """Per-point data for the report's map (numpy arrays; the renderer packs them): at most
    ``geometry.plot_points`` points drawn (see ``plot_sample``), every numeric per-sample
    column of the checks (``<check>.<column>``), metadata, and when the points are a
    sample, a density grid of all N points. Returns it and the drawn rows."""
    n = ctx.n
    idx = plot_sample(ctx, checks, int(cfg.geometry.plot_points))
    all_coords = ctx.map2d.coords
    coords = all_coords[idx].astype(np.float32)
    cols = {name: _drawn(arr, idx) for name, arr in per_sample_columns(checks, n).items()}
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
             "density": density_grid(all_coords) if sampled else None,
             "n_total": n, "n_shown": int(len(idx)), "sampled": sampled}, idx)


#: at most this many per-point hover thumbnails are embedded (each is a small PNG data URI,
#: ~0.4 kB for 32×32 images: 10,000 of them add ~4 MB to report.html)
THUMBNAIL_CAP = 10_000


def thumbnails(ctx: Context, shown_idx: np.ndarray, checks: list[CheckResult],
               cap: int = THUMBNAIL_CAP) -> dict[str, str]:
    """Data-URI thumbnails: one for every point the map draws (up to ``cap``; beyond it,
    evidence and exemplars first, then a seeded sample), plus the checks' images."""
    thumbs: dict[str, str] = {}
    for c in checks:
        for key, img in c.images.items():
            thumbs[f"{c.check}:{key}"] = thumbnail(np.asarray(img))
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
                    thumbs[e] = thumbnail(ref.images[ref_pos[e]])
    for ex in ctx.clusters.exemplars.values():
        want.extend(int(i) for i in ex)
    shown = set(int(i) for i in shown_idx)
    want = [i for i in dict.fromkeys(want) if i in shown]    # hover works on drawn points
    rest = np.setdiff1d(shown_idx, np.array(want, dtype=int))
    room = max(0, cap - len(want))
    if rest.size:
        pick = ctx.rng("report.thumbnails")
        want.extend(pick.choice(rest, min(room, rest.size), replace=False).tolist())
    chosen = want[:cap]
    thumbs.update({str(ids[i]): thumbnail(images[i]) for i in chosen})
    return thumbs


def prepare_report(ctx: Context, checks: list[CheckResult], cfg: AuditConfig
                   ) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Everything the report draws besides the check results: the map's points (with a
    count of the drawn points that have a hover thumbnail), the thumbnails, and the plot
    record for ``findings.json`` (``run.geometry.plot``)."""
    points, shown_idx = map_points(ctx, checks, cfg)
    thumbs = thumbnails(ctx, shown_idx, checks)
    if ctx.data.images is not None:      # how many drawn points have a hover thumbnail
        points["thumbnails"] = {"n": sum(1 for i in ctx.data.ids[shown_idx] if str(i) in thumbs),
                                "shown": int(len(shown_idx)), "cap": THUMBNAIL_CAP}
    plot = {"n_shown": points["n_shown"], "n": points["n_total"],
            "density_bins": DENSITY_BINS if points["sampled"] else None}
    return points, thumbs, plot
