"""Whole-audit benchmark on precomputed latents: time per stage and peak memory.

Each size runs in a fresh subprocess so its peak RSS is its own. Data: a mixture of
Gaussian blobs (N × d, float32) with a categorical and a numeric attribute and a protected
column, written as .npy + .parquet, audited with the default checks.

    python benchmarks/bench_pipeline.py                 # 10k and 100k × 64
    python benchmarks/bench_pipeline.py --sizes 10000 --dims 64 128
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_data(n: int, d: int, folder: Path, seed: int = 0) -> Path:
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((8, d)) * 4
    lab = rng.integers(0, 8, n)
    x = (centers[lab] + rng.standard_normal((n, d))).astype(np.float32)
    np.save(folder / "latents.npy", x)
    pd.DataFrame({"id": [f"s{i}" for i in range(n)], "kind": lab.astype(str),
                  "size": rng.random(n), "group": rng.choice(["A", "B", "C"], n)}) \
        .to_parquet(folder / "meta.parquet")
    cfg = folder / "config.yaml"
    cfg.write_text(f"name: bench-{n}x{d}\ndata: {{latents: latents.npy, metadata: meta.parquet}}\n"
                   "attributes: [kind, size]\nprotected: [group]\nseed: 0\n")
    return cfg


def one(n: int, d: int) -> dict:
    """Run one audit in this process; return stage timings and peak RSS."""
    import audit
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_data(n, d, Path(tmp))
        t0 = time.perf_counter()
        run = audit.run(audit.load_config(cfg))
        audit.write_outputs(run, Path(tmp) / "out")
        wall = time.perf_counter() - t0
        size = (Path(tmp) / "out" / "report.html").stat().st_size
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n": n, "d": d, "wall_s": round(wall, 2), "peak_rss_gib": round(peak_kib / 2**20, 3),
            "stages_s": run.result.timings, "report_mib": round(size / 2**20, 2),
            "checks": {c.check: c.status for c in run.result.checks}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--dims", type=int, nargs="+", default=[64])
    ap.add_argument("--quick", action="store_true", help="one small size (smoke test)")
    ap.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    sizes = [5000] if args.quick else args.sizes
    rows = []
    for d in args.dims:
        for n in sizes:
            proc = subprocess.run([sys.executable, __file__, "--one", str(n), str(d)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-3000:])
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            stages = sorted(((k, v) for k, v in r["stages_s"].items() if k != "total"),
                            key=lambda kv: -kv[1])[:6]
            print(f"{n:>9,} × {d:<4} {r['wall_s']:>8.1f} s  peak {r['peak_rss_gib']:.2f} GiB  "
                  + ", ".join(f"{k} {v:.1f}" for k, v in stages), flush=True)
            if not args.quick:
                out = HERE / "results" / "pipeline.json"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps({"benchmark": "pipeline", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
