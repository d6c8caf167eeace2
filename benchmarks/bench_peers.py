"""latent-audit vs the tools people use, on the same arrays in the same run.

1. Outliers + near-duplicates: our ``outliers`` and ``duplicates`` checks through the
   pipeline's ``Context`` (shared kNN graph, intrinsic dimension, HDBSCAN for GLOSH) vs
   cleanlab ``Datalab(...).find_issues(features=X, issue_types={"outlier": {},
   "near_duplicate": {}})``. Planted truth: points drawn far from every blob (outliers) and
   copies of blob points with tiny noise (near-duplicate pairs, both members count).
   Reported: time, flagged counts, precision/recall against the planted sets, and the
   Jaccard overlap of the two tools' flagged sets.
2. Clusters + 2-D map: ``Context.clusters`` + ``Context.map2d`` (UMAP fitted on
   ``map_sample`` points and extended; HDBSCAN on 10 PCA dimensions fitted on
   ``cluster_sample`` and extended) vs the common recipe ``umap.UMAP().fit_transform(X)``
   then ``hdbscan.HDBSCAN`` on the 2-D embedding (same ``min_cluster_size``, max(15, 1%
   of N)). Reported: time, ARI of each against the planted blobs and between the two.

Each tool runs in its own subprocess on data regenerated from the same seed (identical
arrays), so times and memory are its own; a subprocess past ``--timeout`` is recorded as
timed out. cleanlab runs only up to ``--cleanlab-max-n`` points (its near-duplicate and
outlier search is the slow part at scale).

    python benchmarks/bench_peers.py               # 10k and 100k × 64
    python benchmarks/bench_peers.py --quick       # 3,000 × 32 (under a minute)

Needs umap-learn and cleanlab's Datalab: pip install 'latent-audit[bench]' 'cleanlab[datalab]'
(without them the peer rows are recorded as failed, with the import error).
Writes benchmarks/results/peers.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_data(n: int, d: int, seed: int, *, outlier_share: float = 0.01,
              dup_share: float = 0.005, k: int = 10):
    """Blobs with planted outliers and near-duplicate pairs.

    Returns ``x`` (n × d float32), ``blob`` (the blob of each point, -1 for outliers),
    ``is_outlier`` and ``is_dup`` (both members of every planted pair).
    """
    import numpy as np
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 4
    n_out = max(1, int(round(outlier_share * n)))
    n_pairs = max(1, int(round(dup_share * n / 2)))
    n_blob = n - n_out - n_pairs
    share = np.arange(1, k + 1) / np.arange(1, k + 1).sum()
    lab = rng.choice(k, n_blob, p=share)
    blob_x = centres[lab] + rng.standard_normal((n_blob, d))
    # far from every blob: uniform in a box three centre-spreads wide
    out_x = rng.uniform(-12, 12, (n_out, d))
    base = rng.choice(n_blob, n_pairs, replace=False)
    dup_x = blob_x[base] + 1e-3 * rng.standard_normal((n_pairs, d))
    x = np.concatenate([blob_x, out_x, dup_x]).astype(np.float32)
    blob = np.concatenate([lab, np.full(n_out, -1), lab[base]])
    is_outlier = np.zeros(n, bool)
    is_outlier[n_blob:n_blob + n_out] = True
    is_dup = np.zeros(n, bool)
    is_dup[base] = True
    is_dup[n_blob + n_out:] = True
    perm = rng.permutation(n)                       # no tool sees the planted order
    return x[perm], blob[perm], is_outlier[perm], is_dup[perm]


def _context(x, map_method: str = "pca"):
    import numpy as np
    import pandas as pd

    from audit.config import GeometryConfig
    from audit.context import Context
    from audit.latents import LatentSet
    lset = LatentSet(x, pd.DataFrame(index=range(len(x))), np.arange(len(x)), "bench")
    return Context(lset, geometry=GeometryConfig(map=map_method), seed=0)


def _rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10, 1)


def measure(task: str, n: int, d: int, seed: int) -> dict:
    """One tool on one task, in this process (``main`` calls it in a subprocess)."""
    import numpy as np
    x, blob, _, _ = make_data(n, d, seed)
    out: dict = {"task": task, "n": n, "d": d}
    t0 = time.perf_counter()
    if task == "audit_issues":
        from audit.checks.duplicates import DuplicatesCheck
        from audit.checks.outliers import OutliersCheck
        ctx = _context(x)
        ctx.knn
        ctx.intrinsic_dim
        t_knn = time.perf_counter() - t0
        ctx.clusters                                    # GLOSH, shared with the clusters check
        res_o = OutliersCheck().run(ctx)
        res_d = DuplicatesCheck().run(ctx)
        out.update(knn_s=round(t_knn, 2),
                   outlier=np.flatnonzero(res_o.per_sample["is_outliers_issue"]).tolist(),
                   near_duplicate=np.flatnonzero(res_d.per_sample["is_duplicates_issue"]).tolist())
    elif task == "cleanlab_issues":
        from cleanlab import Datalab
        lab = Datalab(data={"row": np.arange(n)}, label_name=None, verbosity=0)
        lab.find_issues(features=x, issue_types={"outlier": {}, "near_duplicate": {}})
        out.update(
            outlier=np.flatnonzero(lab.get_issues("outlier")["is_outlier_issue"]).tolist(),
            near_duplicate=np.flatnonzero(
                lab.get_issues("near_duplicate")["is_near_duplicate_issue"]).tolist())
    elif task == "audit_map":
        ctx = _context(x, "umap")
        labels = ctx.clusters.labels
        t_cl = time.perf_counter() - t0
        ctx.map2d
        out.update(clusters_s=round(t_cl, 2), labels=labels.tolist(),
                   map_fit_size=ctx.map2d.fit_size, cluster_fit_size=ctx.clusters.fit_size)
    elif task == "umap_hdbscan":
        import hdbscan
        import umap
        emb = umap.UMAP().fit_transform(x)
        t_map = time.perf_counter() - t0
        labels = hdbscan.HDBSCAN(min_cluster_size=max(15, n // 100)).fit_predict(emb)
        out.update(map_s=round(t_map, 2), labels=np.asarray(labels).tolist())
    else:
        raise ValueError(task)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["peak_rss_mib"] = _rss_mib()
    return out


def run_one(task: str, n: int, d: int, seed: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--one", task, str(n), str(d), str(seed)]
    print(f"  {task} n={n:,} d={d} ...", flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"task": task, "n": n, "d": d, "failed": True,
                "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"task": task, "n": n, "d": d, "failed": True,
                "error": " | ".join(tail) or f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pr(flagged: set, truth: set) -> dict:
    tp = len(flagged & truth)
    return {"flagged": len(flagged), "precision": round(tp / len(flagged), 4) if flagged else None,
            "recall": round(tp / len(truth), 4) if truth else None}


def _jaccard(a: set, b: set) -> float | None:
    return round(len(a & b) / len(a | b), 4) if a | b else None


def compare_issues(n: int, d: int, seed: int, ours: dict, theirs: dict | None) -> dict:
    import numpy as np
    _, _, is_out, is_dup = make_data(n, d, seed)
    truth = {"outlier": set(np.flatnonzero(is_out).tolist()),
             "near_duplicate": set(np.flatnonzero(is_dup).tolist())}
    row = {"n": n, "d": d, "planted": {k: len(v) for k, v in truth.items()},
           "audit": {"seconds": ours.get("seconds"), "knn_s": ours.get("knn_s"),
                     "peak_rss_mib": ours.get("peak_rss_mib"), "error": ours.get("error")},
           "cleanlab": ({"seconds": theirs.get("seconds"),
                         "peak_rss_mib": theirs.get("peak_rss_mib"),
                         "error": theirs.get("error")} if theirs else {"skipped": True})}
    for kind in ("outlier", "near_duplicate"):
        a = set(ours.get(kind, []))
        row["audit"][kind] = _pr(a, truth[kind]) if not ours.get("failed") else None
        if theirs and not theirs.get("failed"):
            b = set(theirs.get(kind, []))
            row["cleanlab"][kind] = _pr(b, truth[kind])
            row.setdefault("jaccard", {})[kind] = None if ours.get("failed") else _jaccard(a, b)
    return row


def compare_maps(n: int, d: int, seed: int, ours: dict, theirs: dict) -> dict:
    from sklearn.metrics import adjusted_rand_score as ari
    _, blob, _, _ = make_data(n, d, seed)
    row = {"n": n, "d": d}
    for name, res in (("audit", ours), ("umap_hdbscan", theirs)):
        if res.get("failed"):
            row[name] = {"error": res["error"]}
            continue
        lab = res["labels"]
        row[name] = {"seconds": res["seconds"], "peak_rss_mib": res["peak_rss_mib"],
                     "ari_truth": round(ari(blob, lab), 4),
                     "n_clusters": int(max(lab) + 1),
                     **{k: res[k] for k in ("clusters_s", "map_fit_size", "cluster_fit_size",
                                            "map_s") if k in res}}
    if not ours.get("failed") and not theirs.get("failed"):
        row["ari_between"] = round(ari(ours["labels"], theirs["labels"]), 4)
    return row


def _f(v, fmt="{:.2f}") -> str:
    return "–" if v is None else fmt.format(v)


def markdown(issues: list[dict], maps: list[dict], cleanlab_max: int) -> str:
    lines = ["Data: 10 Gaussian blobs (unequal sizes) in d dimensions, plus planted outliers "
             "(1% of N, uniform in a box far from every blob) and near-duplicate pairs "
             "(0.5% of N, a blob point and a copy with noise 1e-3; both members count). "
             "Each tool runs in its own process on the same arrays; times are wall seconds "
             "on this machine, including one-off start-up costs inside the call (e.g. "
             "numba compiling UMAP, paid by both map pipelines).", "",
             "### Outliers and near-duplicates: latent-audit vs cleanlab Datalab", "",
             f"cleanlab `Datalab.find_issues(features=X, issue_types={{\"outlier\": {{}}, "
             f"\"near_duplicate\": {{}}}})` runs up to N = {cleanlab_max:,}. latent-audit's "
             "time covers the shared kNN graph, the intrinsic dimension and the HDBSCAN fit "
             "its GLOSH score needs (all shared with the other checks in a run), and the two "
             "checks. P/R = precision/recall against the planted sets; J = Jaccard overlap "
             "of the two tools' flagged sets.", "",
             "| N | d | tool | time (s) | peak RSS (MiB) | outliers flagged | P | R | "
             "near-dups flagged | P | R |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in issues:
        for tool in ("audit", "cleanlab"):
            t = r[tool]
            if t.get("skipped"):
                lines.append(f"| {r['n']:,} | {r['d']} | {tool} | not run (N > "
                             f"{cleanlab_max:,}) | | | | | | | |")
                continue
            if t.get("error"):
                lines.append(f"| {r['n']:,} | {r['d']} | {tool} | failed: {t['error'][:60]} "
                             "| | | | | | | |")
                continue
            o, nd = t["outlier"], t["near_duplicate"]
            lines.append(f"| {r['n']:,} | {r['d']} | {tool} | {t['seconds']:.1f} | "
                         f"{t['peak_rss_mib']:,.0f} | {o['flagged']:,} | {_f(o['precision'])} | "
                         f"{_f(o['recall'])} | {nd['flagged']:,} | {_f(nd['precision'])} | "
                         f"{_f(nd['recall'])} |")
        if r.get("jaccard"):
            lines.append(f"| | | J (audit, cleanlab) | | | {_f(r['jaccard']['outlier'])} | | | "
                         f"{_f(r['jaccard']['near_duplicate'])} | | |")
    lines += ["", f"Planted per N: " + "; ".join(
        f"{r['n']:,}: {r['planted']['outlier']:,} outliers, "
        f"{r['planted']['near_duplicate']:,} near-duplicate points" for r in issues), ""]
    lines += ["### Clusters and 2-D map: latent-audit vs UMAP + HDBSCAN", "",
              "latent-audit: `Context.clusters` (HDBSCAN on 10 PCA dimensions, fitted on at "
              "most 20,000 points, the rest by `approximate_predict`) and `Context.map2d` "
              "(UMAP fitted on 2,000 points, the rest placed among their 5 nearest fitted "
              "points). Recipe: `umap.UMAP().fit_transform(X)` on all N, then "
              "`hdbscan.HDBSCAN(min_cluster_size=max(15, N // 100))` on the 2-D embedding. "
              "ARI over all N points (noise its own label) against the planted blobs "
              "(outliers are a label of their own).", "",
              "| N | d | pipeline | time (s) | of which clusters / map (s) | peak RSS (MiB) | "
              "clusters | ARI vs planted |", "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in maps:
        for tool, label in (("audit", "latent-audit"), ("umap_hdbscan", "UMAP + HDBSCAN")):
            t = r[tool]
            if t.get("error"):
                lines.append(f"| {r['n']:,} | {r['d']} | {label} | failed: {t['error'][:60]} "
                             "| | | | |")
                continue
            split = (f"{t['clusters_s']:.1f} / {t['seconds'] - t['clusters_s']:.1f}"
                     if "clusters_s" in t else
                     f"{t['seconds'] - t['map_s']:.1f} / {t['map_s']:.1f}")
            lines.append(f"| {r['n']:,} | {r['d']} | {label} | {t['seconds']:.1f} | {split} | "
                         f"{t['peak_rss_mib']:,.0f} | {t['n_clusters']} | {t['ari_truth']:.3f} |")
        if "ari_between" in r:
            lines.append(f"| | | ARI between the two | | | | | {r['ari_between']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3,000 × 32 (under a minute)")
    ap.add_argument("--sizes", type=int, nargs="+")
    ap.add_argument("--dim", type=int)
    ap.add_argument("--cleanlab-max-n", type=int, default=100_000,
                    help="largest N cleanlab runs at (above it: recorded as not run)")
    ap.add_argument("--timeout", type=float, default=3600,
                    help="seconds before one tool's run is stopped and recorded as timed out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "peers.json")
    ap.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        task, n, d, seed = args.one
        print(json.dumps(measure(task, int(n), int(d), int(seed))))
        return
    sizes = args.sizes or ([3000] if args.quick else [10_000, 100_000])
    d = args.dim or (32 if args.quick else 64)
    issues, maps = [], []
    for n in sizes:
        ours = run_one("audit_issues", n, d, args.seed, args.timeout)
        theirs = (run_one("cleanlab_issues", n, d, args.seed, args.timeout)
                  if n <= args.cleanlab_max_n else None)
        issues.append(compare_issues(n, d, args.seed, ours, theirs))
        maps.append(compare_maps(n, d, args.seed,
                                 run_one("audit_map", n, d, args.seed, args.timeout),
                                 run_one("umap_hdbscan", n, d, args.seed, args.timeout)))
    md = markdown(issues, maps, args.cleanlab_max_n)
    result = {"benchmark": "peers", "title": "Against the tools people use: cleanlab "
              "(outliers, near-duplicates), UMAP + HDBSCAN (clusters, map)",
              "quick": args.quick, "python": platform.python_version(),
              "cleanlab_max_n": args.cleanlab_max_n, "issues": issues, "maps": maps,
              "markdown": md}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(md)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
