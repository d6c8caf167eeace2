"""1M × 128 isotropic blobs: the data graph's time against its recall (issue 17, target 4).

The worst case for any neighbour index: 8 Gaussian blobs with unit noise in all 128
dimensions (the pipeline benchmark's ``isotropic`` data), so inside a blob every distance
is nearly the same. One HNSW index is built (faiss ``IndexHNSWFlat``, single-threaded
for a reproducible graph, as the audit builds it), then searched at several ``ef_search``
values; for each, recall@15 is measured against exact search of 2,000 seeded queries and
the search time of 20,000 queries is scaled to all N (search time is linear in the
queries). The exact search is timed on the same 20,000 queries and scaled the same way.
Each row is then what the data graph would cost at that recall; the reference graph and
the data→reference search of a whole audit cost about half as much again each (see the
whole-audit table).

    python benchmarks/bench_tradeoff.py              # N = 1,000,000, d = 128 (about 20 min)
    python benchmarks/bench_tradeoff.py --n 100000   # a smaller look

Writes benchmarks/results/tradeoff.json (rendered into RESULTS.md by run.py).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
K = 15


def make_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """The pipeline benchmark's isotropic blobs: 8 centres ~ N(0, 16 I), unit noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, d)) * 4
    out = np.empty((n, d), dtype=np.float32)
    lab = rng.integers(0, 8, n)
    for s in range(0, n, 100_000):
        e = min(s + 100_000, n)
        out[s:e] = centres[lab[s:e]] + rng.standard_normal((e - s, d))
    return out


def run(n: int, d: int, efs: list[int], n_truth: int, n_time: int) -> dict:
    import torch

    from audit.metrics import hnsw_index, knn, knn_approximate, knn_recall
    x = make_data(n, d)
    rng = np.random.default_rng(1)
    timed = np.sort(rng.choice(n, min(n, n_time), replace=False))
    truth_rows = timed[np.sort(rng.choice(len(timed), min(len(timed), n_truth),
                                          replace=False))]
    t0 = time.perf_counter()
    _, nb = knn(x[timed], y=x, k=K + 1)
    exact_q = time.perf_counter() - t0
    truth_all = np.array([r[r != i][:K] for r, i in zip(nb, timed)])
    truth = truth_all[np.searchsorted(timed, truth_rows)]
    print(f"exact: {len(timed):,} queries in {exact_q:.1f} s", flush=True)
    t0 = time.perf_counter()
    index = hnsw_index(x, m=32, ef_construction=80, random_state=0)
    build = time.perf_counter() - t0
    print(f"HNSW build (M 32, efConstruction 80): {build:.1f} s", flush=True)
    rows = []
    for ef in efs:
        t0 = time.perf_counter()
        _, found = knn_approximate(x[timed], k=K + 1, y=x, ef_search=ef, index=index)
        search = time.perf_counter() - t0
        found = np.array([r[r != i][:K] for r, i in zip(found, timed)])
        rec = knn_recall(found[np.searchsorted(timed, truth_rows)], truth)
        scaled = search * n / len(timed)
        rows.append({"ef_search": ef, "recall_at_k": round(float(rec), 4),
                     "search_s_per_1k": round(search / len(timed) * 1000, 3),
                     "graph_s": round(build + scaled, 1)})
        print(f"ef_search {ef}: recall@{K} {rec:.3f}, data graph {build + scaled:.0f} s "
              f"(build {build:.0f} + search {scaled:.0f})", flush=True)
    return {"n": n, "d": d, "k": K, "threads": torch.get_num_threads(),
            "build_s": round(build, 1), "queries_timed": len(timed),
            "queries_truth": len(truth_rows), "exact_s_scaled": round(exact_q * n / len(timed), 1),
            "rows": rows}


def markdown(res: dict) -> str:
    lines = [(f"{res['n']:,} × {res['d']} isotropic blobs (the pipeline benchmark's worst case). "
              f"One HNSW index (M 32, efConstruction 80, built single-threaded for a "
              f"reproducible graph) in {res['build_s']:.0f} s; searched at each `ef_search` "
              f"({res['queries_timed']:,} timed queries, scaled to N); recall@{res['k']} "
              f"against exact search of {res['queries_truth']:,} of them. *Data graph* = "
              f"build + search of all N. Exact search of all N, scaled the same way from the "
              f"timed queries (one-sided): {res['exact_s_scaled']:.0f} s (recall 1). "
              f"Threads: {res['threads']}."), "",
             "| ef_search | recall@15 | search (s per 1,000 queries) | data graph (s) |",
             "|---:|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append(f"| {r['ef_search']} | {r['recall_at_k']:.3f} | "
                     f"{r['search_s_per_1k']:.2f} | {r['graph_s']:.0f} |")
    if res.get("note"):
        lines += ["", res["note"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--ef", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    ap.add_argument("--truth", type=int, default=2000, help="queries with exact truth")
    ap.add_argument("--timed", type=int, default=20000, help="queries timed")
    ap.add_argument("--note", default="", help="how the machine was loaded (for the record)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "tradeoff.json")
    args = ap.parse_args()
    res = run(args.n, args.d, args.ef, args.truth, args.timed)
    res["note"] = args.note
    res["title"] = (f"Neighbour graph at {args.n:,} × {args.d} isotropic: time against recall "
                    "(HNSW ef_search)")
    res["markdown"] = markdown(res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(res["markdown"])


if __name__ == "__main__":
    main()
