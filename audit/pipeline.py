"""Runs the stages in order: sources -> latents -> geometry -> checks -> gates -> outputs."""
from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .checks import run_check
from .config import AuditConfig
from .context import Context
from .data.store import store_from_set
from .findings import AuditResult, evaluate_gate
from .io import atomic_outputs
from .report.prepare import DENSITY_BINS, THUMBNAIL_CAP, _points, _thumbnails
from .sources import _source_name, encode, encode_store, load_sets, write_store

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
