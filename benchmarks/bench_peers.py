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

3. DataEval on the arrays of 1 and 2: ``dataeval.core.cluster(X)`` (its HDBSCAN), then
   ``Outliers().from_clusters(X, result)`` and ``Duplicates().from_clusters(result)``, its
   embedding-space outlier and near-duplicate detectors. Reported in the tables of 1 (P/R,
   Jaccard with ours) and 2 (ARI of its clusters; it draws no map).
4. Coverage on a planted gap: reference = a mixture of 16 Gaussian blobs, data = the same
   mixture without one blob (the construction of ``bench_coverage.py``). Ours:
   ``audit.metrics.coverage`` + ``uncovered_mask`` and the ``coverage`` check through a
   ``Context`` with a reference; DataEval: ``coverage_naive`` / ``coverage_adaptive`` (one
   set only, so given reference and data pooled). Truth: the removed blob's reference
   points.

Each tool runs in its own subprocess on data regenerated from the same seed (identical
arrays), so times and memory are its own; a subprocess past ``--timeout`` is recorded as
timed out. cleanlab and DataEval run only up to ``--cleanlab-max-n`` / ``--dataeval-max-n``
points (their neighbour searches are the slow part at scale).

    python benchmarks/bench_peers.py               # 10k and 100k × 64
    python benchmarks/bench_peers.py --quick       # 3,000 × 32 (a minute or two)

Needs umap-learn, cleanlab's Datalab and DataEval: pip install 'latent-audit[bench]'
'cleanlab[datalab]' (without them the peer rows are recorded as failed, with the import
error).
Writes benchmarks/results/peers.json (``--out`` to write elsewhere) and prints markdown.
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
PEERS = ("cleanlab", "dataeval")                     # issue-detection peers of latent-audit
DATAEVAL_OBS = 20     # DataEval coverage's num_observations (its guidance: 20-50; default 20)


def make_data(n: int, d: int, seed: int, *, outlier_share: float = 0.01,
              dup_share: float = 0.005, k: int = 10):
    """Blobs with planted outliers and near-duplicate pairs.

    Returns ``x`` (n × d float32), ``blob`` (the blob of each point, -1 for outliers),
    ``is_outlier``, ``is_dup`` (both members of every planted pair) and ``pair`` (the
    planted pair of each point, -1 for points in none).
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
    pair = np.full(n, -1)
    pair[base] = np.arange(n_pairs)
    pair[n_blob + n_out:] = np.arange(n_pairs)
    is_dup = pair >= 0
    perm = rng.permutation(n)                       # no tool sees the planted order
    return x[perm], blob[perm], is_outlier[perm], is_dup[perm], pair[perm]


def make_gap_data(n: int, d: int, seed: int):
    """Reference and data with a planted gap, as ``bench_coverage.make_data`` builds them
    (the same draws, so the same arrays): 16 Gaussian blobs (centres 3 × N(0, 1), unit
    noise), ``n`` reference points from all 16 and ``n`` data points from the first 15.

    Returns ``reference``, ``data`` (n × d float32) and ``gap`` (True for the reference
    points of the removed blob: the planted truth).
    """
    import numpy as np
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((16, d)) * 3

    def draw(m: int, drop: bool):
        lab = rng.integers(0, 15 if drop else 16, m)
        return (centres[lab] + rng.standard_normal((m, d))).astype(np.float32), lab
    reference, ref_blob = draw(n, False)
    data, _ = draw(n, True)
    return reference, data, ref_blob == 15


def _latents(x, source: str):
    import numpy as np
    import pandas as pd

    from audit.latents import LatentSet
    return LatentSet(x, pd.DataFrame(index=range(len(x))), np.arange(len(x)), source)


def _context(x, map_method: str = "pca", reference=None):
    from audit.config import GeometryConfig
    from audit.context import Context
    return Context(_latents(x, "bench"), geometry=GeometryConfig(map=map_method), seed=0,
                   reference=None if reference is None else _latents(reference, "reference"))


def _rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10, 1)


def _dataeval_setup() -> None:
    """DataEval's neighbour searches (scikit-learn ``n_jobs``) default to 1 process; give
    them every core, as the other tools use."""
    from dataeval.config import set_max_processes
    set_max_processes(-1)


def measure(task: str, n: int, d: int, seed: int) -> dict:
    """One tool on one task, in this process (``main`` calls it in a subprocess)."""
    import numpy as np
    out: dict = {"task": task, "n": n, "d": d}
    if task.startswith(("audit_cov", "dataeval_cov")):
        reference, data, gap = make_gap_data(n, d, seed)
    else:
        x, *_ = make_data(n, d, seed)
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
    elif task == "dataeval_issues":
        # DataEval's embedding route: cluster once (HDBSCAN, min_cluster_size
        # min(100, max(5, 5% of N))), then both detectors read the clustering
        from dataeval.core import cluster
        from dataeval.quality import Duplicates, Outliers
        _dataeval_setup()
        cr = cluster(x, algorithm="hdbscan")
        t_cl = time.perf_counter() - t0
        # outliers: farther from the nearest cluster centre than mean + 2.5 sd of that
        # cluster's distances (default cluster_threshold)
        res_o = Outliers().from_clusters(x, cr)
        # near duplicates: MST edges inside a cluster shorter than 1.0 × the std of that
        # cluster's MST edge lengths (default cluster_sensitivity), joined into groups
        groups = [g for g, _ in Duplicates().from_clusters(cr).near]
        out.update(clusters_s=round(t_cl, 2), labels=np.asarray(cr["clusters"]).tolist(),
                   outlier=sorted(set(res_o.data()["item_index"].to_list())),
                   near_duplicate=sorted({int(i) for g in groups for i in g}),
                   dup_groups=len(groups), largest_group=max(map(len, groups), default=0))
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
    elif task == "audit_coverage":
        from audit.metrics import coverage, uncovered_mask
        scores = coverage(reference, data, k=5)
        unc = uncovered_mask(reference, data, k=5)       # reference points no data ball holds
        out.update(coverage=round(scores["coverage"], 4), flagged=np.flatnonzero(unc).tolist())
    elif task == "audit_coverage_check":
        from audit.checks.coverage import CoverageCheck
        res = CoverageCheck().run(_context(data, reference=reference))
        # the map's reference points: every uncovered one (gap members are among them),
        # covered ones sampled beyond 50,000 points
        pts = res.tables["reference_points"]
        if res.tables["uncovered"] > sum(pts["uncovered"]):
            raise RuntimeError("coverage check sampled its uncovered reference points")
        ids = np.asarray(pts["ids"]).astype(np.int64)   # the LatentSet ids: row numbers
        out.update(coverage=round(res.metrics["coverage.coverage"], 4),
                   gap_regions=int(res.metrics["coverage.gap_regions"]),
                   # flagged: in a gap region that passed the depth test
                   flagged=sorted(ids[np.asarray(pts["gap"]) >= 0].tolist()))
    elif task in ("dataeval_coverage_naive", "dataeval_coverage_adaptive"):
        # one-set coverage: it has no reference argument, so it gets reference ∪ data
        # (reference rows first), min-max rescaled as a whole to [0, 1] by
        # force_unit_interval=True (one affine map: neighbour order is kept)
        from dataeval.core import coverage_adaptive, coverage_naive
        _dataeval_setup()
        pooled = np.concatenate([reference, data])
        if task == "dataeval_coverage_naive":
            res = coverage_naive(pooled, DATAEVAL_OBS, force_unit_interval=True)
        else:                   # told the planted share: it flags exactly that many points
            res = coverage_adaptive(pooled, DATAEVAL_OBS, percent=gap.sum() / len(pooled),
                                    force_unit_interval=True)
        radii = np.asarray(res["critical_value_radii"])
        out.update(radius=round(float(res["coverage_radius"]), 4),
                   radii_range=[round(float(radii.min()), 4), round(float(radii.max()), 4)],
                   flagged=np.asarray(res["uncovered_indices"]).tolist())
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


def compare_issues(n: int, d: int, seed: int, ours: dict, peers: dict[str, dict | None]) -> dict:
    """Flags of ours and of each peer (None: not run at this N) against the planted sets."""
    import numpy as np
    _, _, is_out, is_dup, pair = make_data(n, d, seed)
    truth = {"outlier": set(np.flatnonzero(is_out).tolist()),
             "near_duplicate": set(np.flatnonzero(is_dup).tolist())}
    members = [np.flatnonzero(pair == p) for p in range(pair.max() + 1)]

    def pairs_found(flagged: set) -> int:             # planted pairs with both members flagged
        return sum(all(int(i) in flagged for i in m) for m in members)

    def tool_row(res: dict) -> dict:
        row = {"seconds": res.get("seconds"), "peak_rss_mib": res.get("peak_rss_mib"),
               "error": res.get("error")}
        row.update({k: res[k] for k in ("knn_s", "clusters_s", "dup_groups", "largest_group")
                    if k in res})
        if not res.get("failed"):
            for kind, planted in truth.items():
                row[kind] = _pr(set(res.get(kind, [])), planted)
            row["near_duplicate"]["pairs_found"] = pairs_found(set(res["near_duplicate"]))
        return row

    row = {"n": n, "d": d, "planted": {**{k: len(v) for k, v in truth.items()},
                                       "pairs": len(members)},
           "audit": tool_row(ours)}
    for name, res in peers.items():
        row[name] = tool_row(res) if res else {"skipped": True}
        if res and not res.get("failed") and not ours.get("failed"):
            row.setdefault("jaccard", {})[name] = {
                kind: _jaccard(set(ours[kind]), set(res[kind])) for kind in truth}
    return row


def compare_maps(n: int, d: int, seed: int, runs: dict[str, dict | None]) -> dict:
    """ARI against the planted blobs of each pipeline's labels (``runs``: name -> result;
    None: not run at this N), and between latent-audit's and each other's."""
    from sklearn.metrics import adjusted_rand_score as ari
    _, blob, *_ = make_data(n, d, seed)
    row = {"n": n, "d": d}
    for name, res in runs.items():
        if res is None:
            row[name] = {"skipped": True}
            continue
        if res.get("failed"):
            row[name] = {"error": res["error"]}
            continue
        lab = res["labels"]
        row[name] = {"seconds": res["seconds"], "peak_rss_mib": res["peak_rss_mib"],
                     "ari_truth": round(ari(blob, lab), 4),
                     "n_clusters": int(max(lab) + 1),
                     **{k: res[k] for k in ("clusters_s", "map_fit_size", "cluster_fit_size",
                                            "map_s") if k in res}}
        if name != "audit" and "ari_truth" in row.get("audit", {}):
            row.setdefault("ari_between", {})[name] = round(ari(runs["audit"]["labels"], lab), 4)
    return row


def compare_coverage(n: int, d: int, seed: int, runs: dict[str, dict | None]) -> dict:
    """Each tool's flagged points against the removed blob's reference points. DataEval's
    indices are into reference ∪ data (reference first), so a flagged data point is a
    false positive; ours are reference indices."""
    import numpy as np
    _, _, gap = make_gap_data(n, d, seed)
    truth = set(np.flatnonzero(gap).tolist())
    row = {"n": n, "d": d, "planted_gap": len(truth)}
    for name, res in runs.items():
        if res is None:
            row[name] = {"skipped": True}
        elif res.get("failed"):
            row[name] = {"error": res["error"]}
        else:
            row[name] = {**{k: v for k, v in res.items() if k not in ("task", "n", "d", "flagged")},
                         **_pr(set(res["flagged"]), truth)}
    return row


def _f(v, fmt="{:.2f}") -> str:
    return "–" if v is None else fmt.format(v)


def _not_run(t: dict, limit: int, cols: int) -> str | None:
    """The cells of a tool that was skipped or failed, else None."""
    if t.get("skipped"):
        return f"not run (N > {limit:,}) |" + " |" * (cols - 1)
    if t.get("error"):
        return f"failed: {t['error'][:60]} |" + " |" * (cols - 1)
    return None


ISSUE_TOOLS = (("audit", "latent-audit"), ("cleanlab", "cleanlab"), ("dataeval", "DataEval"))
MAP_TOOLS = (("audit", "latent-audit"), ("umap_hdbscan", "UMAP + HDBSCAN"),
             ("dataeval", "DataEval `cluster`"))
COV_TOOLS = (("audit_metrics", "latent-audit `coverage` + `uncovered_mask`"),
             ("audit_check", "latent-audit `coverage` check"),
             ("dataeval_naive", "DataEval `coverage_naive`"),
             ("dataeval_adaptive", "DataEval `coverage_adaptive`"))


def markdown(issues: list[dict], maps: list[dict], coverage: list[dict],
             limits: dict[str, int]) -> str:
    lim = {"cleanlab": limits["cleanlab"], "dataeval": limits["dataeval"]}
    lines = ["Data: 10 Gaussian blobs (unequal sizes) in d dimensions, plus planted outliers "
             "(1% of N, uniform in a box far from every blob) and near-duplicate pairs "
             "(0.5% of N, a blob point and a copy with noise 1e-3; both members count). "
             "Each tool runs in its own process on the same arrays; times are wall seconds "
             "on this machine, including imports and one-off start-up costs inside the "
             "call (e.g. numba compiling UMAP, paid by both map pipelines, and DataEval's "
             "numba HDBSCAN). DataEval's neighbour searches are given every core "
             "(`dataeval.config.set_max_processes(-1)`; its default is one).", "",
             "### Outliers and near-duplicates: latent-audit vs cleanlab Datalab vs DataEval",
             "",
             f"cleanlab `Datalab.find_issues(features=X, issue_types={{\"outlier\": {{}}, "
             f"\"near_duplicate\": {{}}}})` runs up to N = {lim['cleanlab']:,}. DataEval (up to "
             f"N = {lim['dataeval']:,}): `r = dataeval.core.cluster(X)` (its HDBSCAN, "
             "defaults), then `Outliers().from_clusters(X, r)` (a point farther from its "
             "nearest cluster centre than mean + 2.5 sd of that cluster's distances) and "
             "`Duplicates().from_clusters(r)` (minimum-spanning-tree edges inside a cluster "
             "shorter than 1.0 × the sd of that cluster's edge lengths; every member of a "
             "returned group counts as flagged); its time includes the clustering. "
             "latent-audit's time covers the shared kNN graph, the intrinsic dimension and "
             "the HDBSCAN fit its GLOSH score needs (all shared with the other checks in a "
             "run), and the two checks. P/R = precision/recall against the planted sets; "
             "pairs = planted pairs with both members flagged; J = Jaccard overlap of a "
             "peer's flagged set with latent-audit's.", "",
             "| N | d | tool | time (s) | peak RSS (MiB) | outliers flagged | P | R | "
             "near-dups flagged | P | R | pairs |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in issues:
        for tool, label in ISSUE_TOOLS:
            t = r.get(tool, {"skipped": True})
            lead = f"| {r['n']:,} | {r['d']} | {label} | "
            cells = _not_run(t, lim.get(tool, 0), 9)
            if cells:
                lines.append(lead + cells)
                continue
            o, nd = t["outlier"], t["near_duplicate"]
            lines.append(lead + f"{t['seconds']:.1f} | {t['peak_rss_mib']:,.0f} | "
                         f"{o['flagged']:,} | {_f(o['precision'])} | {_f(o['recall'])} | "
                         f"{nd['flagged']:,} | {_f(nd['precision'])} | {_f(nd['recall'])} | "
                         f"{nd['pairs_found']:,} |")
        for peer, j in r.get("jaccard", {}).items():
            lines.append(f"| | | J (latent-audit, {dict(ISSUE_TOOLS)[peer]}) | | | "
                         f"{_f(j['outlier'])} | | | {_f(j['near_duplicate'])} | | | |")
    lines += ["", "Planted per N: " + "; ".join(
        f"{r['n']:,}: {r['planted']['outlier']:,} outliers, "
        f"{r['planted']['near_duplicate']:,} near-duplicate points "
        f"({r['planted']['pairs']:,} pairs)" for r in issues), ""]
    lines += ["### Clusters and 2-D map: latent-audit vs UMAP + HDBSCAN vs DataEval", "",
              "latent-audit: `Context.clusters` (HDBSCAN on 10 PCA dimensions, fitted on at "
              "most 20,000 points, the rest by `approximate_predict`) and `Context.map2d` "
              "(UMAP fitted on 2,000 points, the rest placed among their 5 nearest fitted "
              "points). Recipe: `umap.UMAP().fit_transform(X)` on all N, then "
              "`hdbscan.HDBSCAN(min_cluster_size=max(15, N // 100))` on the 2-D embedding. "
              "DataEval: `dataeval.core.cluster(X)` (HDBSCAN on all d dimensions, "
              "min_cluster_size min(100, max(5, 5% of N)); no map), timed inside its "
              "outliers/duplicates run above, whose peak RSS it shows. "
              "ARI over all N points (noise its own label) against the planted blobs "
              "(outliers are a label of their own).", "",
              "| N | d | pipeline | time (s) | of which clusters / map (s) | peak RSS (MiB) | "
              "clusters | ARI vs planted |", "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in maps:
        for tool, label in MAP_TOOLS:
            t = r.get(tool, {"skipped": True})
            lead = f"| {r['n']:,} | {r['d']} | {label} | "
            cells = _not_run(t, lim.get(tool, 0), 5)
            if cells:
                lines.append(lead + cells)
                continue
            if tool == "dataeval":
                secs, split = t["clusters_s"], f"{t['clusters_s']:.1f} / –"
            elif "clusters_s" in t:
                secs = t["seconds"]
                split = f"{t['clusters_s']:.1f} / {t['seconds'] - t['clusters_s']:.1f}"
            else:
                secs = t["seconds"]
                split = f"{t['seconds'] - t['map_s']:.1f} / {t['map_s']:.1f}"
            lines.append(lead + f"{secs:.1f} | {split} | {t['peak_rss_mib']:,.0f} | "
                         f"{t['n_clusters']} | {t['ari_truth']:.3f} |")
        for other, v in r.get("ari_between", {}).items():
            lines.append(f"| | | ARI (latent-audit, {dict(MAP_TOOLS)[other]}) | | | | | "
                         f"{v:.3f} |")
    lines += ["", "### Coverage of a reference: latent-audit vs DataEval", "",
              "Data (as in the coverage benchmark): reference = N points from a mixture of "
              "16 Gaussian blobs (centres 3 × N(0, 1), unit noise), data = N points from the "
              "same mixture without one blob. Planted truth: the reference points of the "
              "removed blob (about N/16); P/R of each tool's flagged points against them.", "",
              "* latent-audit `coverage(ref, data, k=5)` (the `coverage` value: share of "
              "reference 5-NN balls holding a data point) and `uncovered_mask(ref, data, k=5)` "
              "(flagged: the reference points whose ball holds none). Tails of the 15 other "
              "blobs are left uncovered by chance too (a few % of the reference), which "
              "costs precision, not recall.",
              "* latent-audit `coverage` check through a `Context` with the reference: "
              "flagged are the reference points in a gap region that passes its depth test "
              "(Bonferroni over the reference, α = 0.01), which removes those chance "
              "uncovered points. Its time includes the kNN graphs of both sets, the "
              "reference's clusters and map (shared with other checks in a run).",
              "* DataEval `coverage_naive` / `coverage_adaptive` (Asudeh et al. 2021) answer "
              "another question: which points of *one* set sit where fewer than "
              f"`num_observations` (= {DATAEVAL_OBS}, its default) points of that set lie "
              "within the coverage radius. There is no reference argument, and a region "
              "with no data at all is invisible in the data alone, so it is given reference "
              "∪ data (2N points, rescaled as a whole to [0, 1] by `force_unit_interval="
              "True`): the removed blob's region then holds only reference points, half the "
              "density of the rest. Flagged data points count as false positives. "
              "`coverage_naive` uses its fixed radius (derived for points uniform in the unit "
              "cube); `coverage_adaptive` is told the planted share as `percent`, so it flags "
              "exactly as many points as are planted (P = R): its best case.",
              "",
              "So DataEval's numbers say how far a one-set sparsity criterion gets on a "
              "gap between two sets, not how well it does the job it is built for (sparse "
              "regions within one data set). In d dimensions halving the density moves the "
              f"{DATAEVAL_OBS}-NN radius by only 2^(1/d) (about 2% at d = 32), less than it "
              "varies between a blob's centre and its tail.", "",
              "| N | d | tool | time (s) | peak RSS (MiB) | reported | flagged | P | R |",
              "|---:|---:|---|---:|---:|---|---:|---:|---:|"]
    for r in coverage:
        for tool, label in COV_TOOLS:
            t = r.get(tool, {"skipped": True})
            lead = f"| {r['n']:,} | {r['d']} | {label} | "
            cells = _not_run(t, lim["dataeval"], 6)
            if cells:
                lines.append(lead + cells)
                continue
            if "radius" in t:
                lo, hi = t["radii_range"]
                said = f"radius {t['radius']:.3f} (critical radii {lo:.3f}–{hi:.3f})"
            else:
                said = f"coverage {t['coverage']:.3f}" + (
                    f", {t['gap_regions']} gap region(s)" if "gap_regions" in t else "")
            lines.append(lead + f"{t['seconds']:.1f} | {t['peak_rss_mib']:,.0f} | {said} | "
                         f"{t['flagged']:,} | {_f(t['precision'])} | {_f(t['recall'])} |")
    lines += ["", "Planted per N: " + "; ".join(
        f"{r['n']:,}: {r['planted_gap']:,} reference points in the removed blob"
        for r in coverage)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3,000 × 32 (a minute or two)")
    ap.add_argument("--sizes", type=int, nargs="+")
    ap.add_argument("--dim", type=int)
    ap.add_argument("--cleanlab-max-n", type=int, default=100_000,
                    help="largest N cleanlab runs at (above it: recorded as not run)")
    ap.add_argument("--dataeval-max-n", type=int, default=100_000,
                    help="largest N DataEval runs at (above it: recorded as not run)")
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
    limits = {"cleanlab": args.cleanlab_max_n, "dataeval": args.dataeval_max_n}
    issues, maps, coverage = [], [], []
    for n in sizes:
        def run(task: str, peer: str | None = None, n: int = n) -> dict | None:
            """One task at this N; None for a peer above its largest N."""
            if peer and n > limits[peer]:
                return None
            return run_one(task, n, d, args.seed, args.timeout)
        ours = run("audit_issues")
        peers = {p: run(f"{p}_issues", p) for p in PEERS}
        issues.append(compare_issues(n, d, args.seed, ours, peers))
        # DataEval's clusters come from its issues run (one cluster() call feeds all three)
        maps.append(compare_maps(n, d, args.seed, {
            "audit": run("audit_map"), "umap_hdbscan": run("umap_hdbscan"),
            "dataeval": peers["dataeval"]}))
        coverage.append(compare_coverage(n, d, args.seed, {
            "audit_metrics": run("audit_coverage"),
            "audit_check": run("audit_coverage_check"),
            "dataeval_naive": run("dataeval_coverage_naive", "dataeval"),
            "dataeval_adaptive": run("dataeval_coverage_adaptive", "dataeval")}))
    md = markdown(issues, maps, coverage, limits)
    result = {"benchmark": "peers", "title": "Against the tools people use: cleanlab "
              "(outliers, near-duplicates), UMAP + HDBSCAN (clusters, map), DataEval "
              "(outliers, duplicates, clusters, coverage)",
              "quick": args.quick, "python": platform.python_version(),
              "cleanlab_max_n": args.cleanlab_max_n, "dataeval_max_n": args.dataeval_max_n,
              "issues": issues, "maps": maps, "coverage": coverage, "markdown": md}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(md)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
