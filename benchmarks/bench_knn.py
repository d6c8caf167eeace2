"""kNN: the exact tiled search's achieved GFLOP/s against a float32 GEMM on the same
machine, and the approximate (faiss HNSW) graph's time and recall.

The exact search costs 2 * N^2 * d flops (the matrix products of every query against every
point); its achieved rate is that over the wall time. The GEMM rate is torch.mm over the
same N x N product in tiles (the tile shape ``knn`` uses, and a larger one; the faster
counts), with the same threads. Target (issue #7): exact kNN within 2x of the GEMM rate.
The approximate graph is timed end to end (build and search) and its recall@k measured
against exact search of 1,000 seeded queries.

    python benchmarks/bench_knn.py            # N = 20k, 100k; d = 64, 128; faiss at 100k
    python benchmarks/bench_knn.py --quick    # N = 5,000, d = 64 (seconds)

Writes benchmarks/results/knn.json (rendered into RESULTS.md by run.py).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
K = 15
TILES = ((256, 4096), (2048, 8192))      # knn's default block x tile, and a larger one


def make_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """A mixture of 8 Gaussian blobs (as in the pipeline benchmark)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, d)) * 3
    return (centres[rng.integers(0, 8, n)] + rng.standard_normal((n, d))).astype(np.float32)


def gemm_gflops(x: np.ndarray) -> float:
    """float32 GFLOP/s of torch.mm over the N x N product of ``x`` with itself, in tiles."""
    xt = torch.from_numpy(x)
    n, d = x.shape
    best = 0.0
    for rows, cols in TILES:
        out = torch.empty(rows, cols)
        flops = 0
        t0 = time.perf_counter()
        for s in range(0, n, rows):
            q = xt[s:s + rows]
            for c in range(0, n, cols):
                y = xt[c:c + cols]
                if q.shape[0] == rows and y.shape[0] == cols:
                    torch.mm(q, y.T, out=out)
                else:
                    torch.mm(q, y.T)
                flops += 2 * q.shape[0] * y.shape[0] * d
        best = max(best, flops / (time.perf_counter() - t0) / 1e9)
    return best


def exact_row(n: int, d: int, repeats: int) -> dict:
    from audit.metrics import knn
    x = make_data(n, d)
    gemm = gemm_gflops(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        knn(x, k=K)
        times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    rate = 2 * n * n * d / sec / 1e9
    return {"n": n, "d": d, "k": K, "threads": torch.get_num_threads(),
            "exact_s": round(sec, 2), "exact_gflops": round(rate, 1),
            "gemm_gflops": round(gemm, 1), "gemm_over_exact": round(gemm / rate, 2)}


def approximate_row(n: int, d: int, exact_s: float | None) -> dict:
    from audit.metrics import knn, knn_approximate, knn_recall
    x = make_data(n, d)
    t0 = time.perf_counter()
    _, found = knn_approximate(x, k=K, random_state=0)
    sec = time.perf_counter() - t0
    rows = np.sort(np.random.default_rng(1).choice(n, min(n, 1000), replace=False))
    _, nb = knn(x[rows], y=x, k=K + 1)
    truth = np.array([r[r != i][:K] for r, i in zip(nb, rows)])
    return {"n": n, "d": d, "k": K, "index": "faiss.IndexHNSWFlat", "m": 32,
            "ef_construction": 80, "ef_search": max(64, 2 * (K + 8)),
            "approximate_s": round(sec, 2),
            "recall_at_k": round(knn_recall(found[rows], truth), 4), "exact_s": exact_s}


def markdown(res: dict) -> str:
    lines = ["Exact = `audit.metrics.knn` (k = 15, self search), achieved GFLOP/s = 2·N²·d / "
             "time; GEMM = `torch.mm` over the same N × N product in tiles, same threads. "
             "Target (issue #7): exact within 2× of the GEMM rate.", "",
             "| N | d | exact (s) | exact GFLOP/s | GEMM GFLOP/s | GEMM / exact |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in res["exact"]:
        lines.append(f"| {r['n']:,} | {r['d']} | {r['exact_s']:.2f} | {r['exact_gflops']:.1f} "
                     f"| {r['gemm_gflops']:.1f} | {r['gemm_over_exact']:.2f} |")
    if res.get("approximate"):
        lines += ["", "Approximate = `audit.metrics.knn_approximate` (faiss HNSW, build and "
                  "search, then exact re-rank of the candidates); recall@15 against exact "
                  "search of 1,000 seeded queries.", "",
                  "| N | d | approximate (s) | recall@15 | exact (s) |",
                  "|---:|---:|---:|---:|---:|"]
        for r in res["approximate"]:
            ex = f"{r['exact_s']:.2f}" if r.get("exact_s") is not None else "–"
            lines.append(f"| {r['n']:,} | {r['d']} | {r['approximate_s']:.2f} | "
                         f"{r['recall_at_k']:.3f} | {ex} |")
    if res.get("approximate_skipped"):
        lines += ["", f"Approximate: skipped ({res['approximate_skipped']})."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 5,000, d = 64")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--dims", type=int, nargs="+", default=None)
    ap.add_argument("--faiss-size", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "knn.json")
    args = ap.parse_args()
    sizes = args.sizes or ([5000] if args.quick else [20_000, 100_000])
    dims = args.dims or ([64] if args.quick else [64, 128])
    faiss_n = args.faiss_size or (5000 if args.quick else 100_000)
    res = {"benchmark": "knn", "title": "kNN: exact achieved GFLOP/s vs float32 GEMM; "
                                        "approximate time and recall",
           "quick": args.quick, "exact": [], "approximate": []}

    def save() -> None:
        res["markdown"] = markdown(res)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))

    for d in dims:
        for n in sizes:
            print(f"  exact n={n:,} d={d} ...", flush=True)
            res["exact"].append(exact_row(n, d, args.repeats))
            print(f"    {res['exact'][-1]}", flush=True)
            save()
    try:
        import faiss  # noqa: F401
    except ImportError:
        res["approximate_skipped"] = "faiss not installed: pip install 'latent-audit[fast]'"
    else:
        d = dims[0]
        ex = next((r["exact_s"] for r in res["exact"] if r["n"] == faiss_n and r["d"] == d),
                  None)
        print(f"  approximate n={faiss_n:,} d={d} ...", flush=True)
        res["approximate"].append(approximate_row(faiss_n, d, ex))
        print(f"    {res['approximate'][-1]}", flush=True)
    save()
    print(res["markdown"])


if __name__ == "__main__":
    main()
