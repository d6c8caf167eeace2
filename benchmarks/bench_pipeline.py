"""Whole-audit benchmark on precomputed latents: time per stage and peak memory.

Each size runs in a fresh subprocess so its peak RSS is its own. Data: a mixture of
Gaussian blobs (N × d, float32) with a categorical and a numeric attribute, a protected
column, a 0/1 outcome and a reference set (see ``make_data``), written as .npy + .parquet,
audited with every check. Results (time per stage, peak RSS) go to
``benchmarks/results/pipeline.json``, one row per size and data kind, replacing rows of the
same size and kind.

    python benchmarks/bench_pipeline.py                          # 10k and 100k × 64, both kinds
    python benchmarks/bench_pipeline.py --sizes 10k 100k 1M --dims 64 128
    python benchmarks/bench_pipeline.py --sizes 1M --dims 128 --data lowrank --keep /tmp/out
    python benchmarks/bench_pipeline.py --sizes 20k --dims 64 --no-record   # a look only
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


DATA_KINDS = ("isotropic", "lowrank")


def _draw(rng, centers, lab, kind: str, basis):
    """Points around ``centers[lab]``: isotropic unit noise in all d dimensions, or (a
    trained encoder's latents look like this) noise on a 16-dimensional subspace with a
    decaying spectrum (variance 1/i) plus 0.1 isotropic noise."""
    import numpy as np
    n, d = len(lab), centers.shape[1]
    if kind == "isotropic":
        return (centers[lab] + rng.standard_normal((n, d))).astype(np.float32)
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 100_000):          # in chunks: float64 temporaries stay small
        e = min(s + 100_000, n)
        g = rng.standard_normal((e - s, basis.shape[0])) @ basis
        out[s:e] = centers[lab[s:e]] + g + 0.1 * rng.standard_normal((e - s, d))
    return out


def make_data(n: int, d: int, folder: Path, seed: int = 0, kind: str = "isotropic",
              map_method: str = "auto") -> Path:
    """A blob mixture with every column a user would audit, and a reference set.

    ``kind`` is the blobs' shape (see ``_draw``): ``isotropic`` is the worst case for any
    neighbour index (intrinsic dimension = d, every distance in a blob nearly equal);
    ``lowrank`` has an intrinsic dimension of about 16, as encoders' latents do.

    Data: 8 Gaussian blobs; metadata ``kind`` (the blob, categorical), ``size`` (numeric),
    ``group`` (protected, independent of the latents), ``wrong`` (a 0/1 outcome). Reference:
    another draw from the same mixture (N/2 points) with blob 7 removed, so coverage has
    something to find. Every check runs: attributes (entanglement, bias leakage), protected
    and outcome (bias), the reference (coverage), holes and the defaults. ``map_method`` is
    ``geometry.map`` (``auto`` is UMAP when umap-learn is installed, else t-SNE).
    """
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((8, d)) * 4
    basis = None
    if kind == "lowrank":
        q = np.linalg.qr(rng.standard_normal((d, 16)))[0].T          # 16 orthonormal rows
        basis = q * np.sqrt(1.0 / np.arange(1, 17))[:, None] * np.sqrt(16)
    lab = rng.integers(0, 8, n)
    x = _draw(rng, centers, lab, kind, basis)
    np.save(folder / "latents.npy", x)
    del x
    pd.DataFrame({"id": [f"s{i}" for i in range(n)], "kind": lab.astype(str),
                  "size": rng.random(n), "group": rng.choice(["A", "B", "C"], n),
                  "wrong": (rng.random(n) < 0.1).astype(int)}) \
        .to_parquet(folder / "meta.parquet")
    m = n // 2
    rlab = rng.integers(0, 7, m)               # blob 7 is missing from the reference
    ref = _draw(rng, centers, rlab, kind, basis)
    np.save(folder / "reference.npy", ref)
    pd.DataFrame({"id": [f"r{i}" for i in range(m)], "kind": rlab.astype(str)}) \
        .to_parquet(folder / "reference.parquet")
    cfg = folder / "config.yaml"
    cfg.write_text(f"name: bench-{n}x{d}-{kind}\n"
                   "data: {latents: latents.npy, metadata: meta.parquet}\n"
                   "reference: {latents: reference.npy, metadata: reference.parquet}\n"
                   "attributes: [kind, size]\nprotected: [group]\noutcome: wrong\nseed: 0\n"
                   f"geometry: {{map: {map_method}}}\n"
                   "checks: {clusters: {}, outliers: {}, duplicates: {}, holes: {}, "
                   "coverage: {}, entanglement: {}, bias: {}}\n")
    return cfg


def one(n: int, d: int, keep: str | None = None, kind: str = "isotropic",
        map_method: str = "auto") -> dict:
    """Run one audit in this process; return stage timings and peak RSS (``keep``: a
    folder to copy the outputs to, to open the report afterwards)."""
    import shutil

    import audit
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_data(n, d, Path(tmp), kind=kind, map_method=map_method)
        t0 = time.perf_counter()
        run = audit.run(audit.load_config(cfg))
        audit.write_outputs(run, Path(tmp) / "out")
        wall = time.perf_counter() - t0
        size = (Path(tmp) / "out" / "report.html").stat().st_size
        if keep:
            shutil.copytree(Path(tmp) / "out", Path(keep) / f"{n}x{d}-{kind}",
                            dirs_exist_ok=True)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:        # the kernel's high-water mark of this process, same quantity in KiB
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_kib = max(peak_kib, int(line.split()[1]))
    except OSError:
        pass
    from datetime import date

    from audit.geometry import map_method as resolve_map
    return {"n": n, "d": d, "data": kind, "map": resolve_map(map_method),
            "recorded": date.today().isoformat(), "wall_s": round(wall, 2),
            "peak_rss_gib": round(peak_kib / 2**20, 3),
            "stages_s": run.result.timings, "report_mib": round(size / 2**20, 2),
            "checks_s": round(sum(v for k, v in run.result.timings.items()
                                  if k.startswith("check.")), 2),
            "checks": {c.check: c.status for c in run.result.checks},
            "knn": run.result.geometry.get("knn", {}),
            "errors": {c.check: c.error for c in run.result.checks if c.status == "error"}}


def size(text: str) -> int:
    """``10000``, ``10k``, ``1M``, ``1e6`` -> int."""
    t = text.strip().lower().replace("_", "").replace(",", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


def record(rows: list[dict]) -> None:
    """Merge ``rows`` into benchmarks/results/pipeline.json (same n and d replaced)."""
    out = HERE / "results" / "pipeline.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.read_text())["rows"] if out.is_file() else []
    def key(r: dict) -> tuple:
        return r.get("data", "isotropic"), r["d"], r["n"], r.get("map", "tsne")
    keep = {key(r): r for r in old}
    keep.update({key(r): r for r in rows})
    merged = [keep[k] for k in sorted(keep)]
    out.write_text(json.dumps({"benchmark": "pipeline", "rows": merged}, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=size, nargs="+", default=[10_000, 100_000],
                    help="numbers of points, e.g. 10k 100k 1M (issue #7)")
    ap.add_argument("--dims", type=int, nargs="+", default=[64], help="e.g. 64 128")
    ap.add_argument("--quick", action="store_true", help="one small size (smoke test)")
    ap.add_argument("--no-record", action="store_true",
                    help="print only; leave benchmarks/results/pipeline.json alone")
    ap.add_argument("--keep", metavar="DIR",
                    help="copy each audit's outputs (report.html, findings) to DIR/NxD")
    ap.add_argument("--data", choices=DATA_KINDS, nargs="+", default=list(DATA_KINDS),
                    help="blob shape: isotropic (worst case for a neighbour index) and/or "
                         "lowrank (intrinsic dimension 16, like an encoder's latents)")
    ap.add_argument("--map", choices=("auto", "tsne", "umap", "pca"), nargs="+",
                    default=["tsne"], help="geometry.map: tsne (the default without the "
                    "umap extra), umap (auto with it; numba compiles its kernels in each new "
                    "process), pca")
    ap.add_argument("--stages", action="store_true", help="print every stage's time")
    ap.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        n, d, kind, mapm = args.one
        print(json.dumps(one(int(n), int(d), keep=args.keep, kind=kind, map_method=mapm)))
        return
    sizes = [5000] if args.quick else args.sizes
    rows = []
    for kind, mapm in [(k, m) for k in args.data for m in args.map]:
        for d in args.dims:
            for n in sizes:
                proc = subprocess.run([sys.executable, __file__, "--one", str(n), str(d), kind,
                                       mapm]
                                      + (["--keep", args.keep] if args.keep else []),
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise SystemExit(proc.stderr[-3000:])
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                stages = sorted(((k, v) for k, v in r["stages_s"].items() if k != "total"),
                                key=lambda kv: -kv[1])[:6]
                print(f"{kind:<9} {r['map']:<5} {n:>9,} × {d:<4} {r['wall_s']:>8.1f} s  peak "
                      f"{r['peak_rss_gib']:.2f} GiB  checks {r['checks_s']:.1f} s  "
                      + ", ".join(f"{k} {v:.1f}" for k, v in stages), flush=True)
                if args.stages:
                    print("    " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(
                        r["stages_s"].items(), key=lambda kv: -kv[1])), flush=True)
                if not (args.quick or args.no_record):
                    record([r])


if __name__ == "__main__":
    main()
