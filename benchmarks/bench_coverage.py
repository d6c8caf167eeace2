"""Coverage metrics (precision, recall, density, coverage): ``audit.metrics.coverage`` vs
``prdc.compute_prdc``, time and peak memory.

``audit.metrics.coverage`` streams float32 tiles of at most 256 x 4,096 distances (memory
O(tile + N k)); prdc builds three full N x N distance matrices. The speed-up is measured
with both in one process, alternately (best of ``--repeats``), since only a ratio taken
side by side means anything on a shared machine. Each measurement runs in a fresh
subprocess, so its peak resident memory (``ru_maxrss``) is its own; ``tracemalloc`` gives
the peak of Python-level allocations (numpy arrays included) on top of the loaded data.
Where both run, the four numbers are compared (they must agree within 1/N).

    python benchmarks/bench_coverage.py            # 100k x 64 ours; prdc beside it at 20k
    python benchmarks/bench_coverage.py --quick    # 2,000 x 32, seconds
    python benchmarks/bench_coverage.py --sizes 5000 --prdc-sizes 5000 --dim 64
    python benchmarks/bench_coverage.py --dim 64 --prdc-sizes 20000 --sizes 100000

Writes benchmarks/results/coverage.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEYS = ("precision", "recall", "density", "coverage")


def make_data(n: int, d: int, seed: int):
    """Reference and data: the same mixture of 16 Gaussian blobs, the data without one."""
    import numpy as np
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((16, d)) * 3

    def draw(m: int, drop: bool):
        lab = rng.integers(0, 15 if drop else 16, m)
        return (centres[lab] + rng.standard_normal((m, d))).astype(np.float32)
    return draw(n, False), draw(n, True)


def measure(impl: str, n: int, d: int, k: int, block: int, seed: int) -> dict:
    """One measurement in this process (called in a subprocess by ``main``)."""
    import contextlib
    import io
    import tracemalloc

    import numpy as np
    from prdc import compute_prdc

    from audit.metrics import coverage
    real, fake = make_data(n, d, seed)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    if impl == "prdc":
        with contextlib.redirect_stdout(io.StringIO()):
            out = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    else:
        out = coverage(real, fake, k=k, block_size=block)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"impl": impl, "n": n, "d": d, "k": k, "block_size": block if impl == "audit" else None,
            "seconds": round(seconds, 2), "peak_traced_mib": round(peak / 2**20, 1),
            "peak_rss_mib": round(rss / 2**10, 1), "rss_before_mib": round(rss_before / 2**10, 1),
            "values": {key: float(np.asarray(out[key])) for key in KEYS}}


def measure_pair(n: int, d: int, k: int, block: int, seed: int, repeats: int) -> dict:
    """Both implementations in this one process, alternately, best of ``repeats`` each:
    on a shared machine only the ratio of times taken side by side means something."""
    import contextlib
    import io

    import numpy as np
    from prdc import compute_prdc

    from audit.metrics import coverage
    real, fake = make_data(n, d, seed)
    best = {"audit": float("inf"), "prdc": float("inf")}
    values = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        ours = coverage(real, fake, k=k, block_size=block)
        best["audit"] = min(best["audit"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            theirs = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
        best["prdc"] = min(best["prdc"], time.perf_counter() - t0)
        values = {"audit": {key: float(ours[key]) for key in KEYS},
                  "prdc": {key: float(np.asarray(theirs[key])) for key in KEYS}}
    return {"n": n, "d": d, "k": k, "repeats": repeats,
            "audit_seconds": round(best["audit"], 2), "prdc_seconds": round(best["prdc"], 2),
            "speedup": round(best["prdc"] / best["audit"], 2), "values": values,
            "max_abs_diff": max(abs(values["audit"][key] - values["prdc"][key])
                                for key in KEYS)}


def run_pair(n: int, d: int, k: int, block: int, seed: int, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--pair", str(n), str(d), str(k), str(block), str(seed),
           str(repeats)]
    print(f"  audit vs prdc, same process, n={n:,} d={d}, best of {repeats} ...", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"n": n, "d": d, "k": k, "failed": True,
                "error": " | ".join(tail) or f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_one(impl: str, n: int, d: int, k: int, block: int, seed: int) -> dict:
    cmd = [sys.executable, __file__, "--one", impl, str(n), str(d), str(k), str(block), str(seed)]
    print(f"  {impl} n={n:,} d={d} ...", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"impl": impl, "n": n, "d": d, "k": k, "failed": True,
                "error": " | ".join(tail) or f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict], agreement: list[dict], pairs: list[dict] | None = None,
             note: str = "") -> str:
    lines = ["Reference and data are N × d float32 (a 16-blob Gaussian mixture; the data lacks "
             "one blob), k = 5. `audit` = `audit.metrics.coverage` (streamed float32 "
             "tiles, exact float64 decisions), `prdc` = `prdc.compute_prdc` 0.2 (full N × N matrices). Peak "
             "RSS is the whole process (Python, numpy, torch and the data included); traced "
             "= numpy/Python allocations during the call. Each row is its own subprocess."
             + (f" {note}" if note else ""), ""]
    if pairs:
        lines += ["Speed-up, measured side by side in one process (alternating, best of each; "
                  "on a shared machine only this ratio is meaningful):", "",
                  "| N (each) | d | audit (s) | prdc (s) | speed-up | max abs diff of the four |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for p in pairs:
            if p.get("failed"):
                lines.append(f"| {p['n']:,} | {p['d']} | failed: {p['error'][:80]} | | | |")
            else:
                lines.append(f"| {p['n']:,} | {p['d']} | {p['audit_seconds']:.2f} | "
                             f"{p['prdc_seconds']:.2f} | {p['speedup']:.1f}× | "
                             f"{p['max_abs_diff']:.1e} |")
        lines.append("")
    lines += [
             "| implementation | N (each) | d | time (s) | peak traced (MiB) | peak RSS (MiB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        name = r["impl"]
        if r.get("failed"):
            lines.append(f"| {name} | {r['n']:,} | {r['d']} | failed: {r['error'][:80]} | | |")
        else:
            lines.append(f"| {name} | {r['n']:,} | {r['d']} | {r['seconds']:.1f} | "
                         f"{r['peak_traced_mib']:,.0f} | {r['peak_rss_mib']:,.0f} |")
    if agreement:
        lines += ["", "Agreement where both ran (largest absolute difference of the four "
                  "numbers; the bound is 1/N):", ""]
        for a in agreement:
            lines.append(f"- N = {a['n']:,}: {a['max_abs_diff']:.2e} (1/N = {1 / a['n']:.1e})")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small size (2,000 × 32)")
    ap.add_argument("--sizes", type=int, nargs="+", help="N for audit.metrics.coverage")
    ap.add_argument("--prdc-sizes", type=int, nargs="+", help="N for prdc (and audit beside it)")
    ap.add_argument("--dim", type=int, default=None)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--block-size", type=int, default=4096,
                    help="audit's block_size (rows of a float32 tile, at most 256 used)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "coverage.json")
    ap.add_argument("--repeats", type=int, default=3,
                    help="side-by-side runs (best of) for the speed-up at --prdc-sizes")
    ap.add_argument("--no-separate", action="store_true",
                    help="skip the separate subprocess rows at --prdc-sizes (memory)")
    ap.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--pair", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        impl, n, d, k, block, seed = args.one
        print(json.dumps(measure(impl, int(n), int(d), int(k), int(block), int(seed))))
        return
    if args.pair:
        n, d, k, block, seed, repeats = (int(v) for v in args.pair)
        print(json.dumps(measure_pair(n, d, k, block, seed, repeats)))
        return
    # the sizes of issue 17's targets: 20k x 64 beside prdc, 100k x 64 alone
    d = args.dim or (32 if args.quick else 64)
    sizes = args.sizes or ([2000] if args.quick else [100_000])
    prdc_sizes = args.prdc_sizes or ([2000] if args.quick else [20_000])
    load = os.getloadavg()[0]
    note = (f"Load average at the start: {load:.1f} on {os.cpu_count()} cores; absolute "
            "times on a shared machine are pessimistic, the side-by-side ratio is not.")
    rows, agreement, pairs = [], [], []
    for n in prdc_sizes:
        pairs.append(run_pair(n, d, args.k, args.block_size, args.seed, args.repeats))
        if args.no_separate:
            continue
        ours = run_one("audit", n, d, args.k, args.block_size, args.seed)
        theirs = run_one("prdc", n, d, args.k, args.block_size, args.seed)
        rows += [ours, theirs]
        if not ours.get("failed") and not theirs.get("failed"):
            diff = max(abs(ours["values"][key] - theirs["values"][key]) for key in KEYS)
            agreement.append({"n": n, "max_abs_diff": diff, "within_1_over_n": diff <= 1 / n})
    for n in sizes:
        if n not in prdc_sizes:
            rows.append(run_one("audit", n, d, args.k, args.block_size, args.seed))
    md = markdown(rows, agreement, pairs, note)
    result = {"benchmark": "coverage", "title": "Coverage metrics (precision, recall, density, "
              "coverage) vs prdc", "quick": args.quick, "python": platform.python_version(),
              "rows": rows, "agreement": agreement, "pairs": pairs, "markdown": md}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(md)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
