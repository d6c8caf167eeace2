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
from .findings import PER_SAMPLE_FILE, AuditResult, evaluate_gate
from .io import atomic_outputs
from .report.prepare import prepare_report
from .sources import _source_name, encode, encode_store, load_sets, write_store
from .streams import stream as named_stream

log = logging.getLogger("audit")

__all__ = ["AuditRun", "run", "write_outputs", "load_sets", "encode", "encode_store",
           "write_store"]


def _compare_baseline(config: AuditConfig, data: Any, ref: Any, results: list,
                      metrics: dict[str, float]) -> Any:
    """Compare this run's latents (the candidate, in memory) with ``config.baseline``."""
    from .compare.run import Side, compare, load_side
    from .preflight import COMPARE_METRICS, metric_declared
    base = load_side(config.baseline, role="baseline")
    doc = {"run": {"name": config.name, "attributes": list(config.attributes),
                   "protected": list(config.protected)},
           "metrics": dict(metrics),
           "findings": [f.to_json() for r in results for f in r.findings]}
    cand = Side(path=Path(config.config_path or config.name), kind="run", latents=data,
                findings=doc, name=config.name, reference=ref)
    gates = [g for g in config.gates if metric_declared(g.metric, COMPARE_METRICS)]
    return compare(base, cand, seed=config.seed, k=config.geometry.k, gates=gates)


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


#: the geometry every run computes, whichever checks run (see ``Context.warm``)
_ALWAYS = ("knn", "intrinsic_dim", "clusters", "map2d", "reference_knn", "cross_knn")


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

    generated = None
    if config.generator is not None:       # sample the prior, decode, re-embed
        t0 = time.perf_counter()
        from .generator import generate
        generated = generate(config, data, ref, named_stream(config.seed, "generator.prior"))
        artifacts["generated"] = generated
        timings["generate"] = round(time.perf_counter() - t0, 3)
        log.info("generator: %d generations embedded in %.1f s", generated.n,
                 timings["generate"])
    ctx = Context(data, reference=ref, config=config, generated=generated)
    # what every run reports (the graphs' method and recall, the intrinsic dimension) and
    # draws (the map, the clusters' exemplars); the rest is computed when a check asks
    ctx.warm(*_ALWAYS)
    results = []
    for c in checks:
        before = set(ctx.timings)
        results.append(run_check(c, ctx, debug=debug))
        timings[f"check.{c.name}"] = round(results[-1].seconds, 3)
        triggered = [k for k in ctx.timings if k not in before]
        if triggered:        # geometry first asked for by this check: counted in its time
            log.info("check %s computed %s", c.name, ", ".join(triggered))
            timings[f"check.{c.name}.geometry"] = round(sum(ctx.timings[k]
                                                            for k in triggered), 3)
    t0 = time.perf_counter()
    points, thumbs, plot = prepare_report(ctx, results, config)
    timings["report_data"] = round(time.perf_counter() - t0, 3)
    timings.update(ctx.timings)
    geometry = ctx.describe()
    geometry["plot"] = plot

    metrics: dict[str, float] = {}
    for r in results:
        metrics.update(r.metrics)
    metrics.update(geometry.get("metrics", {}))
    comparison = None
    if config.baseline is not None:    # the comparison with a previous run, before gates
        t0 = time.perf_counter()
        log.info("comparing with the baseline %s", config.baseline)
        comparison = _compare_baseline(config, data, ref, results, metrics)
        metrics.update(comparison.metrics)
        artifacts["comparison"] = comparison
        timings["compare"] = round(time.perf_counter() - t0, 3)
        flagged = [f for f in comparison.findings if f.severity != "info"]
        log.info("baseline %s: %d points matched, %d comparison metric(s), %d flagged "
                 "comparison finding(s) (in comparison.json, not in findings.json)",
                 comparison.run["baseline"]["name"], comparison.run["matched"],
                 len(comparison.metrics), len(flagged))
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
    if generated is not None:
        run_info["generator"] = generated.describe()
    common: dict[str, Any] = {"run": run_info, "checks": results, "gates": gates,
                              "points": points, "geometry": geometry, "timings": timings,
                              "thumbnails": thumbs, "fail_on": config.fail_on,
                              "ids": data.ids}
    if comparison is not None:
        run_info["baseline"] = {
            **comparison.run["baseline"], "matched": comparison.run["matched"],
            "verdict": comparison.verdict, "file": "comparison.json",
            "findings": sum(f.severity != "info" for f in comparison.findings)}
        common["extra_metrics"] = dict(comparison.metrics)
    result = AuditResult(**common)
    return AuditRun(result=result, artifacts=artifacts)


def write_outputs(audit_run: AuditRun, out_dir: Path) -> dict[str, Path]:
    """Write findings.json, per_sample.parquet, summary.md, report.html, the audited
    latent store(s) (``store/``, ``reference-store/``) and, with ``baseline:``,
    comparison.json, comparison.html and comparison.md, atomically."""
    from .report import render_html, render_summary, write_per_sample
    result = audit_run.result
    out_dir = Path(out_dir)
    with atomic_outputs(out_dir) as stage:
        (stage / "findings.json").write_text(json.dumps(result.to_json(), indent=2,
                                                        allow_nan=False), encoding="utf-8")
        write_per_sample(result, stage / PER_SAMPLE_FILE)
        (stage / "summary.md").write_text(render_summary(result), encoding="utf-8")
        render_html(result, stage / "report.html")
        model = audit_run.artifacts.get("demo_vae")
        if model is not None:
            (stage / "model").mkdir()
            model.save(stage / "model" / "demo_vae.pt")
        comparison = audit_run.artifacts.get("comparison")
        if comparison is not None:                  # baseline: the comparison's files
            _write_comparison(comparison, stage, out_dir)
        sets = audit_run.artifacts.get("sets") or {}
        for name, folder in (("data", "store"), ("reference", "reference-store")):
            if sets.get(name) is not None:          # the latents this run audited
                store_from_set(stage / folder, sets[name])
    paths = {"findings": out_dir / "findings.json",
             "per_sample": out_dir / PER_SAMPLE_FILE, "summary": out_dir / "summary.md",
             "report": out_dir / "report.html"}
    if audit_run.artifacts.get("comparison") is not None:
        paths.update({"comparison": out_dir / "comparison.json",
                      "comparison_report": out_dir / "comparison.html",
                      "comparison_summary": out_dir / "comparison.md"})
    return paths


def _write_comparison(comparison: Any, stage: Path, out_dir: Path) -> None:
    """comparison.json, comparison.html and comparison.md into the staging folder (in a
    run's folder report.html is the audit's: the comparison's report has its own name)."""
    from .report import write_comparison
    comparison.run["candidate"]["path"] = str(out_dir)     # this run's output folder
    write_comparison(comparison.to_json(), comparison.points, stage,
                     report_name="comparison.html", summary_name="comparison.md")
