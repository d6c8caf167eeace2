"""Run every benchmark and write benchmarks/RESULTS.md from benchmarks/results/*.json.

    python benchmarks/run.py            # all benchmarks (minutes), then RESULTS.md
    python benchmarks/run.py --report   # only rebuild RESULTS.md from recorded results

Every ``bench_*.py`` here is run (clusters, compare, coverage, generator, knn, peers, pipeline,
report, service); each writes ``results/<name>.json`` with a ``markdown`` section for RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    vers = ", ".join(f"{p} {version(p)}" for p in ("numpy", "torch", "scikit-learn", "hdbscan"))
    peers = []                           # the tools bench_peers.py compares with, if installed
    for p in ("umap-learn", "cleanlab", "prdc", "dataeval"):
        try:
            peers.append(f"{p} {version(p)}")
        except Exception:
            pass
    vers = ", ".join([vers] + peers)
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; Python "
            f"{platform.python_version()}; {vers}")


def growth_lines(rows: list[dict]) -> list[str]:
    """How time grows with N: per d, the time ratio per 10× N between consecutive sizes
    (10 = linear, 100 = quadratic), for the whole audit and for the checks alone."""
    out = []
    rows = [r for r in rows if r.get("map", "tsne") == "tsne"]    # one map method
    for kind, d in sorted({(r.get("data", "isotropic"), r["d"]) for r in rows}):
        rs = sorted((r for r in rows if r["d"] == d and r.get("data", "isotropic") == kind),
                    key=lambda r: r["n"])
        parts = []
        for a, b in zip(rs, rs[1:]):
            decades = math.log10(b["n"] / a["n"])
            if decades <= 0 or a.get("recorded") != b.get("recorded"):
                continue                  # growth only between rows of the same code

            def per10(key_a: float, key_b: float) -> str:
                return (f"{(key_b / key_a) ** (1 / decades):.1f}×" if key_a > 0 and key_b > 0
                        else "n/a")
            checks = [sum(v for k, v in r["stages_s"].items() if k.startswith("check."))
                      for r in (a, b)]
            parts.append(f"{a['n']:,} → {b['n']:,}: total {per10(a['wall_s'], b['wall_s'])}, "
                         f"checks {per10(*checks)} per 10× N")
        if parts:
            out.append(f"Growth, {kind} d = {d} (10× = linear): " + "; ".join(parts) + ".")
    return out + ([""] if out else [])


def render(results: dict[str, dict]) -> str:
    lines = ["# Benchmark results", "",
             f"Recorded {datetime.now(timezone.utc):%Y-%m-%d} on: {machine()}.", "",
             "Regenerate with `make bench` (or `python benchmarks/run.py`).", ""]
    pipe = results.get("pipeline")
    if pipe:
        lines += ["## Whole audit (precomputed latents, every check, with a reference)", "",
                  "A mixture of 8 Gaussian blobs with a categorical, a numeric and a protected "
                  "column. Data `isotropic`: unit noise in all d dimensions, the worst case "
                  "for any neighbour index (intrinsic dimension d). Data `lowrank`: noise on "
                  "a 16-dimensional subspace with a decaying spectrum plus 0.1 isotropic noise "
                  "(intrinsic dimension about 16, as encoders' latents have). `geometry.*` "
                  "stages are the shared geometry (computed once), `check.*` the checks on "
                  "top of it (a `check.X.geometry` line is the shared geometry that check "
                  "asked for first, already counted in its time); map: `geometry.map` "
                  "(t-SNE is the default without the `umap` extra, UMAP with it); kNN recall is the approximate graph's recall@k against exact "
                  "search (exact: 1). Target (issue #7): the whole audit of 100k × 64 under "
                  "60 s on this 2-core machine.", "",
                  "| data | map | N | d | total (s) | peak RSS (GiB) | kNN recall "
                  "| report (MiB) | slowest stages (s) | recorded |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
        for r in pipe["rows"]:
            st = {k: v for k, v in r["stages_s"].items() if k != "total"}
            top = sorted(st.items(), key=lambda kv: -kv[1])[:5]
            graph = r.get("knn", {}).get("knn", {})
            recall = (f"{graph['recall_at_k']:.3f}" if "recall_at_k" in graph
                      else "1 (exact)" if graph else "—")
            lines.append(f"| {r.get('data', 'isotropic')} | {r.get('map', 'tsne')} "
                         f"| {r['n']:,} | {r['d']} "
                         f"| {r['wall_s']:.1f} | {r['peak_rss_gib']:.2f} | {recall} "
                         f"| {r['report_mib']:.1f} | "
                         + ", ".join(f"{k} {v:.1f}" for k, v in top)
                         + f" | {r.get('recorded', '2026-11-24, before issue 17')} |")
        lines.append("")
        lines += growth_lines(pipe["rows"])
    notes = HERE / "NOTES.md"             # hand-written: targets met or missed, and why
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    for name, res in sorted(results.items()):
        if name == "pipeline":
            continue
        md = res.get("markdown")
        if md:
            lines += [f"## {res.get('title', name)}", "", md.strip(), ""]
            if res.get("quick"):
                lines += [f"*A `--quick` run (small sizes), not the recorded numbers: rerun "
                          f"`python benchmarks/{'bench_' + name}.py`.*", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", action="store_true", help="only rebuild RESULTS.md")
    args = ap.parse_args()
    if not args.report:
        for script in sorted(HERE.glob("bench_*.py")):
            print(f"== {script.name}", flush=True)
            subprocess.run([sys.executable, str(script)], check=True)
    results = {p.stem: json.loads(p.read_text()) for p in sorted((HERE / "results").glob("*.json"))}
    (HERE / "RESULTS.md").write_text(render(results))
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
