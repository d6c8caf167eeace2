"""The report stage alone at large N: per-point data (``report_data``), rendering, file size.

The geometry is not computed: a stand-in for the ``Context`` holds a ready 2-D map (blobs
in 2-D) and clusters, and the per-point columns of the default checks (clusters, outliers,
duplicates) are random arrays of the right types, with 100 flagged outliers and 50
duplicate pairs as findings. So this measures only what the report costs: building the
per-point payload, rendering report.html, and its size.

    python benchmarks/bench_report.py                 # 100k and 300k points
    python benchmarks/bench_report.py --quick         # 20k points
    python benchmarks/bench_report.py --sizes 1000000

Writes benchmarks/results/report.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def fake_run(n: int, plot_points: int | None = None, seed: int = 0):
    """A stand-in for the ``Context`` (what the report preparation reads: data, reference,
    n, map2d, clusters, rng) with a ready map and clusters, and check results like the
    defaults'."""
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from audit.config import AuditConfig
    from audit.findings import CheckResult, Finding
    from audit.geometry import Clusters, Map2D
    from audit.latents import LatentSet
    from audit.streams import stream
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 8, n)
    centres = rng.standard_normal((8, 2)) * 10
    xy = centres[lab] + rng.standard_normal((n, 2))
    meta = pd.DataFrame({"kind": lab.astype(str), "size": rng.random(n),
                         "group": rng.choice(["A", "B", "C"], n)})
    data = LatentSet(latents=np.zeros((n, 2), np.float32), metadata=meta,
                     ids=np.array([f"s{i}" for i in range(n)]), source="bench")
    cfg = AuditConfig.model_validate({"data": {"latents": "x.npy"}, "attributes": ["kind", "size"],
                                      "protected": ["group"],
                                      **({"geometry": {"plot_points": plot_points}}
                                         if plot_points else {})})
    exemplars = {c: np.flatnonzero(lab == c)[:5] for c in range(8)}
    ctx = SimpleNamespace(
        data=data, reference=None, n=n, rng=lambda name: stream(seed, name),
        map2d=Map2D(coords=xy, method="umap", fit_size=min(n, 2000)),
        clusters=Clusters(labels=lab, probabilities=rng.random(n),
                          outlier_scores=rng.random(n), exemplars=exemplars,
                          fit_size=min(n, 20000), min_cluster_size=15, min_samples=10))
    ratio = np.exp(rng.standard_normal(n) * 0.2)
    out_rows = rng.choice(n, 100, replace=False)
    ratio[out_rows] = 10.0
    dup = rng.choice(n, 100, replace=False)
    is_dup = np.zeros(n, bool)
    is_dup[dup] = True
    ids = data.ids
    checks = [
        CheckResult("clusters", "ok", per_sample={"cluster": lab, "clusters_score": rng.random(n)}),
        CheckResult("outliers", "ok", findings=tuple(
            Finding(id=f"outliers-{k}", check="outliers", severity="warning", title="t",
                    summary="s", metric="outliers.isolation_ratio", value=10.0, ci=(9.0, 11.0),
                    evidence_ids=(str(ids[i]),)) for k, i in enumerate(out_rows)),
            per_sample={"outliers_score": 1 / ratio.clip(min=1), "is_outliers_issue": ratio > 5,
                        "knn_distance": rng.random(n), "isolation_ratio": ratio,
                        "glosh": rng.random(n)},
            metrics={"outliers.threshold": 5.0}, display=({"kind": "outlier_hist"},),
            tables={"threshold": 5.0, "null_max_ratio": 3.0}),
        CheckResult("duplicates", "ok", findings=(Finding(
            id="duplicates-within", check="duplicates", severity="warning", title="t",
            summary="s", metric="duplicates.within_fraction", value=0.001, p_value=1e-9,
            evidence_ids=tuple(str(ids[i]) for i in dup)),),
            per_sample={"is_duplicates_issue": is_dup, "duplicates_score": rng.random(n)},
            tables={"rel_threshold": 0.02, "pairs": []}),
    ]
    return ctx, checks, cfg


def measure(n: int, plot_points: int | None = None) -> dict:
    from audit.report import prepare
    from audit.findings import AuditResult
    from audit.report.html import render_html
    ctx, checks, cfg = fake_run(n, plot_points)
    t0 = time.perf_counter()
    points, shown = prepare.map_points(ctx, checks, cfg)
    thumbs = prepare.thumbnails(ctx, shown, checks)
    t_data = time.perf_counter() - t0
    run = {"name": "bench", "n": n, "dim": 2, "data": {"source": "bench"}, "versions": {},
           "config": {}, "created": "", "attributes": [], "protected": []}
    geometry = {"scale": "none", "k": 15, "space_dims": 2, "latent_dims": 2,
                "clusters": {"fit_size": min(n, 20000), "n": n, "min_cluster_size": 15,
                             "min_samples": 10, "dims": 2},
                "map": {"method": "umap", "fit_size": min(n, 2000), "n": n}, "metrics": {}}
    result = AuditResult(run=run, checks=checks, gates=[], points=points,
                         geometry=geometry, timings={"total": 0.0}, thumbnails=thumbs)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        t0 = time.perf_counter()
        render_html(result, path)
        t_render = time.perf_counter() - t0
        size = path.stat().st_size
    return {"n": n, "n_drawn": int(len(shown)), "report_data_s": round(t_data, 2),
            "render_s": round(t_render, 2), "report_mib": round(size / 2**20, 2)}


def markdown(rows: list[dict]) -> str:
    lines = ["The report stage alone (per-point payload and rendering; no geometry), with the "
             "per-point columns of the clusters, outliers and duplicates checks and three "
             "metadata columns. `drawn` = points in the WebGL scatter (`geometry.plot_points`); "
             "all N are summarised in the density layer.", "",
             "| N | drawn | report_data (s) | render (s) | report.html (MiB) |",
             "|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['n_drawn']:,} | {r['report_data_s']:.2f} | "
                     f"{r['render_s']:.2f} | {r['report_mib']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20k points")
    ap.add_argument("--sizes", type=int, nargs="+")
    ap.add_argument("--plot-points", type=int, help="geometry.plot_points (default: the "
                    "config's default)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "report.json")
    args = ap.parse_args()
    sizes = args.sizes or ([20_000] if args.quick else [100_000, 300_000])
    rows = []
    for n in sizes:
        print(f"  report n={n:,} ...", flush=True)
        rows.append(measure(n, args.plot_points))
    md = markdown(rows)
    result = {"benchmark": "report", "title": "Report stage: per-point data, rendering, size",
              "quick": args.quick, "python": platform.python_version(), "rows": rows,
              "markdown": md}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(md)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
