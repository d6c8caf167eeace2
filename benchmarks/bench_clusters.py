"""HDBSCAN fitted on a sample and extended (``approximate_predict``) vs fitted on all points.

The clusters every check reads (``Context.clusters``) are fitted on at most
``geometry.cluster_sample`` points and extended to the rest. This checks, at sizes where a
full fit still runs, that the two agree: adjusted Rand index (ARI) between them and of
each against the planted blobs (noise, -1, counts as its own label), with the time of
each fit (PCA to ``cluster_dims`` included, as in a run).

    python benchmarks/bench_clusters.py              # 10k and 50k × 64, samples 2k and 20k
    python benchmarks/bench_clusters.py --quick      # 6,000 × 32, sample 2,000 (seconds)

Writes benchmarks/results/clusters.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def planted_blobs(n: int, d: int, k: int = 10, seed: int = 0):
    """``k`` Gaussian blobs of unequal sizes (shares 1 : 2 : ... : k), unit spread, centres
    drawn with standard deviation 4 per dimension."""
    import numpy as np
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 4
    share = np.arange(1, k + 1) / np.arange(1, k + 1).sum()
    lab = rng.choice(k, n, p=share)
    return (centres[lab] + rng.standard_normal((n, d))).astype(np.float32), lab


def fit(x, cluster_sample: int, seed: int = 0) -> tuple[dict, object]:
    import numpy as np
    import pandas as pd

    from audit.config import GeometryConfig
    from audit.context import Context
    from audit.latents import LatentSet
    lset = LatentSet(x, pd.DataFrame(index=range(len(x))), np.arange(len(x)), "bench")
    ctx = Context(lset, geometry=GeometryConfig(map="pca", cluster_sample=cluster_sample),
                  seed=seed)
    t0 = time.perf_counter()
    cl = ctx.clusters
    seconds = time.perf_counter() - t0
    return {"fit_size": cl.fit_size, "seconds": round(seconds, 2),
            "n_clusters": cl.n_clusters, "noise": round(float((cl.labels < 0).mean()), 4),
            "min_cluster_size": cl.min_cluster_size}, cl.labels


def run_size(n: int, d: int, samples: list[int], seed: int) -> list[dict]:
    from sklearn.metrics import adjusted_rand_score as ari
    x, truth = planted_blobs(n, d, seed=seed)
    print(f"  n={n:,}: full fit ...", flush=True)
    full, full_labels = fit(x, n, seed)
    rows = [{"n": n, "d": d, "kind": "full", **full,
             "ari_truth": round(ari(truth, full_labels), 4), "ari_full": 1.0}]
    for s in samples:
        if s >= n:
            continue
        print(f"  n={n:,}: sample {s:,} ...", flush=True)
        res, labels = fit(x, s, seed)
        rows.append({"n": n, "d": d, "kind": "sample", **res,
                     "ari_truth": round(ari(truth, labels), 4),
                     "ari_full": round(ari(full_labels, labels), 4)})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["Planted blobs: 10 Gaussian blobs of unequal sizes in d dimensions; HDBSCAN "
             "as in a run (first 10 PCA dimensions, `min_cluster_size` = max(15, 1% of the "
             "fitted points), `min_samples` = 10). *sample* = fitted on `cluster_sample` "
             "points and extended with `approximate_predict`; *full* = fitted on all N. "
             "ARI over all N points, noise counted as its own label.", "",
             "| N | d | fit | fitted on | time (s) | clusters | noise | ARI vs planted | "
             "ARI vs full fit |", "|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['d']} | {r['kind']} | {r['fit_size']:,} | "
                     f"{r['seconds']:.1f} | {r['n_clusters']} | {r['noise']:.1%} | "
                     f"{r['ari_truth']:.3f} | {r['ari_full']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6,000 × 32, one sample size")
    ap.add_argument("--sizes", type=int, nargs="+")
    ap.add_argument("--samples", type=int, nargs="+", help="cluster_sample values to compare")
    ap.add_argument("--dim", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "clusters.json")
    args = ap.parse_args()
    sizes = args.sizes or ([6000] if args.quick else [10_000, 50_000])
    samples = args.samples or ([2000] if args.quick else [2000, 20_000])
    d = args.dim or (32 if args.quick else 64)
    rows = []
    for n in sizes:
        rows += run_size(n, d, samples, args.seed)
    md = markdown(rows)
    result = {"benchmark": "clusters", "title": "Clusters: sample fit + extension vs full "
              "HDBSCAN fit", "quick": args.quick, "python": platform.python_version(),
              "rows": rows, "markdown": md}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(md)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
