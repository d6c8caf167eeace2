"""``audit.compare.run.compare`` on matched sets of N × 128 (baseline) and N × 64 (candidate).

Planted: the baseline is 10 Gaussian blobs on a 16-dimensional subspace of 128 dimensions
(plus 0.05 isotropic noise); the candidate is a random well-conditioned linear map of the
baseline's first 64 PCA components plus 0.02 noise, with one cluster (blob 3) scrambled:
its rows permuted among themselves, so each of its points keeps its cluster but loses its
neighbours. The comparison should flag that cluster's points (precision and recall of the
ids in its ``compare-neighbourhood-*`` findings) and nothing else.

Each stage of :func:`audit.compare.run.compare` is timed by wrapping the functions it calls
(matching, neighbourhoods: two exact kNN graphs and the region test; similarity metrics:
CKA, kNN overlap, Procrustes, linear map; clusters: two HDBSCAN fits and the mapping).
No probes run (the sides have no attributes). Peak memory: the process's peak RSS
(``resource.getrusage``) after the comparison, and its growth during it.

    python benchmarks/bench_compare.py            # 100k × 128 vs 100k × 64 (minutes)
    python benchmarks/bench_compare.py --quick    # 20k (tens of seconds)

Writes benchmarks/results/compare.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRAMBLED = 3


def planted(n: int, seed: int = 0):
    """Baseline (n × 128), candidate (n × 64), blob labels, ids."""
    import numpy as np
    rng = np.random.default_rng(seed)
    k, sub, d_base, d_cand = 10, 16, 128, 64
    lab = rng.choice(k, n, p=np.full(k, 1 / k))
    centres = rng.standard_normal((k, sub)) * 4
    basis = np.linalg.qr(rng.standard_normal((d_base, sub)))[0]          # 128 × 16
    z = centres[lab] + rng.standard_normal((n, sub))
    xb = z @ basis.T + 0.05 * rng.standard_normal((n, d_base))
    xc_centred = xb - xb.mean(0)
    # first 64 PCA components of the baseline (eigen-decomposition of the 128 × 128 covariance)
    _, evecs = np.linalg.eigh(xc_centred.T @ xc_centred / n)
    pcs = xc_centred @ evecs[:, ::-1][:, :d_cand]
    q1 = np.linalg.qr(rng.standard_normal((d_cand, d_cand)))[0]
    q2 = np.linalg.qr(rng.standard_normal((d_cand, d_cand)))[0]
    linear = q1 @ np.diag(rng.uniform(0.5, 1.5, d_cand)) @ q2             # condition ≤ 3
    xc = pcs @ linear + 0.02 * rng.standard_normal((n, d_cand))
    rows = np.flatnonzero(lab == SCRAMBLED)
    xc[rows] = xc[rng.permutation(rows)]
    return xb.astype(np.float32), xc.astype(np.float32), lab, np.array(
        [f"p{i}" for i in range(n)])


def side(x, ids, name):
    import numpy as np
    import pandas as pd

    from audit.compare.run import Side
    from audit.latents import LatentSet
    return Side(path=Path(name), kind="store",
                latents=LatentSet(x, pd.DataFrame(index=range(len(x))), np.asarray(ids), name),
                findings=None, name=name)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20   # KiB on Linux


def run_size(n: int, seed: int) -> dict:
    import numpy as np

    import audit.compare.run as cr
    t0 = time.perf_counter()
    xb, xc, lab, ids = planted(n, seed)
    gen_s = time.perf_counter() - t0
    stages: dict[str, float] = {}
    captured: dict = {}

    def timed(name, fn, keep=None):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            out = fn(*a, **kw)
            stages[name] = stages.get(name, 0.0) + time.perf_counter() - t
            if keep:
                captured[keep] = out
            return out
        return wrapper

    originals = {f: getattr(cr, f) for f in ("match_ids", "neighbourhood_change",
                                              "similarity_metrics", "cluster_labels",
                                              "cluster_mapping", "probe_changes",
                                              "_points")}
    names = {"match_ids": "match ids", "neighbourhood_change": "neighbourhoods (2 exact kNN "
             "graphs + regions)", "similarity_metrics": "similarity metrics (CKA, kNN "
             "overlap, Procrustes, linear map)", "cluster_labels": "clusters (2 HDBSCAN fits)",
             "cluster_mapping": "cluster mapping", "probe_changes": "probes",
             "_points": "report points (2-D maps)"}
    rss_before = peak_rss_gib()
    try:
        for f, fn in originals.items():
            setattr(cr, f, timed(names[f], fn, keep="change" if f == "neighbourhood_change"
                                 else None))
        t0 = time.perf_counter()
        comparison = cr.compare(side(xb, ids, "baseline"), side(xc, ids, "candidate"),
                                seed=seed)
        wall = time.perf_counter() - t0
    finally:
        for f, fn in originals.items():
            setattr(cr, f, fn)
    rss_after = peak_rss_gib()
    truth = set(ids[lab == SCRAMBLED])
    found: set[str] = set()
    for f in comparison.findings:
        if f.id.startswith("compare-neighbourhood"):
            found |= set(f.evidence_ids)
    tp = len(found & truth)
    m = comparison.metrics
    return {"n": n, "d_baseline": xb.shape[1], "d_candidate": xc.shape[1],
            "generate_s": round(gen_s, 2), "wall_s": round(wall, 2),
            "stages_s": {k: round(v, 2) for k, v in stages.items()},
            "peak_rss_gib": round(rss_after, 2),
            "rss_growth_gib": round(rss_after - rss_before, 2),
            "input_mib": round((xb.nbytes + xc.nbytes) / 2**20, 1),
            "scrambled_size": len(truth), "flagged": len(found),
            "neighbourhood_findings": sum(f.id.startswith("compare-neighbourhood")
                                          for f in comparison.findings),
            "precision": round(tp / len(found), 4) if found else 0.0,
            "recall": round(tp / len(truth), 4),
            "metrics": {k: round(float(m[k]), 4) for k in (
                "compare.cka_linear", "compare.cka_linear_debiased", "compare.knn_overlap",
                "compare.procrustes_residual", "compare.linear_map_residual",
                "compare.neighbourhood_score") if k in m and np.isfinite(m[k])}}


def markdown(rows: list[dict], recorded: str = "") -> str:
    lines = ([recorded, ""] if recorded else [])
    lines += ["Planted: baseline N × 128 (10 Gaussian blobs on a 16-D subspace plus 0.05 "
             "noise); candidate N × 64 = a random linear map (condition ≤ 3) of the "
             "baseline's first 64 PCA components plus 0.02 noise, with one blob (~10% of "
             "the points) scrambled (rows permuted within it). `compare()` on two "
             "in-memory sides, k = 15, no probes (no attributes). Arithmetic: two exact "
             "kNN graphs of N points (N² distance evaluations each; the 128-D side "
             "first projected by PCA to the components holding 99% of "
             "its variance), CKA through the 128 × 64 cross-covariance (no N × N matrix), "
             "two HDBSCAN fits on a sample extended to all N, a permutation test "
             "of the changed regions. Precision / recall: ids in `compare-neighbourhood-*` "
             "findings against the scrambled blob.", "",
             "| N | dims | total (s) | neighbourhoods (s) | similarity (s) | clusters (s) "
             "| other (s) | peak RSS (GiB) | CKA | kNN overlap | flagged | precision "
             "| recall |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        st = r["stages_s"]
        nb = sum(v for k, v in st.items() if k.startswith("neighbourhoods"))
        sim = sum(v for k, v in st.items() if k.startswith("similarity"))
        cl = sum(v for k, v in st.items() if k.startswith("cluster"))
        other = r["wall_s"] - nb - sim - cl
        mt = r["metrics"]
        lines.append(f"| {r['n']:,} | {r['d_baseline']} vs {r['d_candidate']} "
                     f"| {r['wall_s']:.1f} | {nb:.1f} | {sim:.1f} | {cl:.1f} | {other:.1f} "
                     f"| {r['peak_rss_gib']:.2f} "
                     f"| {mt.get('compare.cka_linear', float('nan')):.3f} "
                     f"| {mt.get('compare.knn_overlap', float('nan')):.3f} "
                     f"| {r['flagged']:,} of {r['scrambled_size']:,} "
                     f"| {r['precision']:.3f} | {r['recall']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20k points")
    ap.add_argument("--sizes", type=int, nargs="+")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "compare.json")
    ap.add_argument("--note", default="", help="how the machine was loaded (for the record)")
    args = ap.parse_args()
    sizes = args.sizes or ([20_000] if args.quick else [100_000])
    rows = []
    for n in sizes:
        print(f"  n={n:,} ...", flush=True)
        rows.append(run_size(n, args.seed))
        print(json.dumps(rows[-1]), flush=True)
    from datetime import datetime, timezone

    from run import machine  # benchmarks/run.py, next to this script
    recorded = (f"Recorded {datetime.now(timezone.utc):%Y-%m-%d} on: {machine()}"
                + (f"; {args.note}" if args.note else "") + ".")
    md = markdown(rows, recorded)
    result = {"benchmark": "compare", "title": "Compare: two latent spaces (N × 128 vs "
              "N × 64)", "quick": args.quick, "python": platform.python_version(),
              "rows": rows, "markdown": md}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(md)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
