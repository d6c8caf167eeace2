"""The audit service (``latent-audit serve``) against a real server: push, list, jobs.

A real server in a child process (uvicorn, 127.0.0.1, the tests' ``LiveServer``), on the
embedded SQLite and, when Debian's PostgreSQL is installed, on a throwaway PostgreSQL.
Measured over HTTP from this process (``audit.service.client.push`` and httpx):

- **push**: N uploads of a small finished run (1,000 × 16 latents: findings.json,
  report.html, summary.md, per_sample.parquet, store/), with its store and with
  ``--no-store``; and the whole ``latent-audit push`` command (a child process: Python
  start-up included), as CI sees it;
- **list at 1,000 audits**: a project is seeded with 1,000 audits by pushing a
  findings-only folder 1,000 times (real uploads, one after the other; their rate is
  reported too), then ``GET /api/v1/projects/{p}/audits`` (first page, 100 rows), the
  project's history page ``GET /projects/{p}`` (HTML, with its trend chart), the metric
  series ``GET /api/v1/projects/{p}/metrics?name=...`` (1,000 points) and the project
  list;
- **jobs**: J jobs of a small config (400 × 6 latents, every check) submitted at once to
  a server with 1 and then 2 workers; jobs per minute from the first submission to the
  last job stored.

    python benchmarks/bench_service.py            # 30 pushes, 1,000 audits, 6 jobs (minutes)
    python benchmarks/bench_service.py --quick    # 8 pushes, 200 audits, 2 jobs

Writes benchmarks/results/service.json and prints a markdown section.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.service.servers import LiveServer, PostgresCluster, cli


def _stats(seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 1),
            "p95_ms": round(p95, 1), "max_ms": round(ms[-1], 1)}


def _dataset(folder: Path, n: int, d: int, seed: int = 0) -> dict:
    """``n`` points in ``d`` dimensions, 3 blobs, an attribute and a protected column;
    returns a config (data paths relative to ``folder``)."""
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = rng.standard_normal((3, d))[labels] * 5 + rng.standard_normal((n, d))
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "latents.npy", x.astype(np.float32))
    pd.DataFrame({"id": [f"s{i}" for i in range(n)],
                  "shape": np.array(["a", "b", "c"])[labels],
                  "group": np.where(np.arange(n) % 4 == 0, "x", "y")}) \
        .to_parquet(folder / "meta.parquet")
    return {"name": folder.name, "seed": 0, "attributes": ["shape"], "protected": ["group"],
            "data": {"latents": "latents.npy", "metadata": "meta.parquet"},
            "geometry": {"map": "pca"},
            "gates": [{"metric": "outliers.fraction", "op": "<=", "threshold": 0.5}]}


def make_run(work: Path) -> Path:
    """A finished run folder of 1,000 × 16 latents (run in this process)."""
    from audit.config import load_config
    from audit.pipeline import run, write_outputs
    cfg = _dataset(work / "small", 1000, 16)
    (work / "small" / "config.yaml").write_text(json.dumps(cfg))
    out = work / "run-small"
    write_outputs(run(load_config(work / "small" / "config.yaml")), out)
    return out


def _folder_bytes(folder: Path, with_store: bool = True) -> int:
    from audit.service.client import run_files
    return sum(p.stat().st_size for _, p in run_files(folder, with_store=with_store))


def bench_push(server: LiveServer, run_dir: Path, n: int, n_cli: int) -> dict:
    import httpx

    from audit.service.client import push
    out = {}
    first = None
    for label, with_store in (("with store", True), ("without store", False)):
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            res = push(run_dir, server=server.url, project="bench-push", token=server.admin,
                       version=f"v{i}", commit="", with_store=with_store)
            times.append(time.perf_counter() - t0)
            assert res.release_verdict == "pass", res
            first = first or res.id
        out[label] = {**_stats(times), "mib": round(_folder_bytes(run_dir, with_store)
                                                    / 2**20, 2)}
        print(f"    push {label}: {out[label]}", flush=True)
    # the same run again with the project's baseline pinned: each push is compared with it
    with httpx.Client(base_url=server.url, timeout=120,
                      headers={"Authorization": f"Bearer {server.admin}"}) as c:
        r = c.put("/api/v1/projects/bench-push/baseline", json={
            "audit_id": first, "gates": ["compare.knn_overlap >= 0.9"]})
        assert r.status_code == 200, r.text
    times = []
    for i in range(max(3, n // 3)):
        t0 = time.perf_counter()
        res = push(run_dir, server=server.url, project="bench-push", token=server.admin,
                   version=f"b{i}", commit="")
        times.append(time.perf_counter() - t0)
        assert res.comparison_verdict == "pass" and res.baseline_id == first, res
    out["with baseline"] = {**_stats(times), "mib": out["with store"]["mib"]}
    print(f"    push compared with a baseline: {out['with baseline']}", flush=True)
    with httpx.Client(base_url=server.url, timeout=120,
                      headers={"Authorization": f"Bearer {server.admin}"}) as c:
        assert c.delete("/api/v1/projects/bench-push/baseline").status_code == 200
    times = []
    for i in range(n_cli):
        t0 = time.perf_counter()
        res = cli("push", str(run_dir), "--server", server.url, "--project", "bench-push",
                  "--token", server.admin, "--version", f"cli{i}", "--commit", "")
        times.append(time.perf_counter() - t0)
        assert res.returncode == 0, res.stderr
    out["cli"] = _stats(times)
    print(f"    latent-audit push (child process): {out['cli']}", flush=True)
    return out


def seed_project(server: LiveServer, run_dir: Path, work: Path, n: int) -> dict:
    """``n`` audits in project ``bench-list``: pushes of a findings-only folder whose
    ``clusters.noise_fraction`` changes from push to push (so the series is a series)."""
    import numpy as np

    from audit.service.client import push
    tiny = work / "findings-only"
    tiny.mkdir(exist_ok=True)
    doc = json.loads((run_dir / "findings.json").read_text())
    values = np.random.default_rng(0).uniform(0.0, 0.3, n)
    times = []
    t_all = time.perf_counter()
    for i in range(n):
        doc["metrics"]["clusters.noise_fraction"] = round(float(values[i]), 4)
        (tiny / "findings.json").write_text(json.dumps(doc))
        t0 = time.perf_counter()
        push(tiny, server=server.url, project="bench-list", token=server.admin,
             version=f"1.{i}", commit="")
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - t_all
    res = {**_stats(times), "wall_s": round(wall, 1),
           "per_s": round(n / sum(times), 1), "kib": round(len(json.dumps(doc)) / 1024, 1)}
    print(f"    seeded {n} audits: {res}", flush=True)
    return res


def bench_reads(server: LiveServer, n: int, audits: int) -> dict:
    import httpx
    paths = {"audits page (API, 100 rows)": "/api/v1/projects/bench-list/audits",
             "history page (HTML)": "/projects/bench-list",
             "metric series (API)": "/api/v1/projects/bench-list/metrics"
                                    "?name=clusters.noise_fraction",
             "project list (API)": "/api/v1/projects"}
    out = {}
    with httpx.Client(base_url=server.url, timeout=120) as c:
        page = c.get(paths["audits page (API, 100 rows)"]).json()
        assert page["total"] == audits, page["total"]
        series = c.get(paths["metric series (API)"]).json()
        assert len(series["points"]) == audits, len(series["points"])
        for label, path in paths.items():
            r = c.get(path)                                  # warm once
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                r = c.get(path)
                times.append(time.perf_counter() - t0)
            out[label] = {**_stats(times), "kib": round(len(r.content) / 1024, 1)}
            print(f"    GET {label}: {out[label]}", flush=True)
    return out


def bench_jobs(work: Path, database: str | None, workers: int, jobs: int) -> dict:
    """``jobs`` jobs submitted at once to a server with ``workers`` workers."""
    import httpx
    data = work / "job-data"
    if not data.exists():
        cfg = _dataset(data, 400, 6)
        (data / "config.json").write_text(json.dumps(cfg))
    cfg = json.loads((data / "config.json").read_text())
    server = LiveServer(work / f"home-jobs-{workers}-{os.urandom(3).hex()}", database=database,
                        workers=workers, args=("--data-root", str(data))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=120,
                          headers={"Authorization": f"Bearer {server.admin}"}) as c:
            t0 = time.perf_counter()
            ids = []
            for i in range(jobs):
                r = c.post("/api/v1/projects/bench-jobs/jobs",
                           json={"config": {**cfg, "name": f"job{i}"}, "version": f"j{i}"})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            done: dict[int, dict] = {}
            while len(done) < jobs:
                if time.perf_counter() - t0 > 1800:
                    raise RuntimeError(f"jobs not done after 30 min: {done}")
                for i in ids:
                    if i not in done:
                        doc = c.get(f"/api/v1/jobs/{i}").json()
                        if doc["status"] in ("succeeded", "failed", "cancelled"):
                            done[i] = doc
                time.sleep(0.25)
            wall = time.perf_counter() - t0
    finally:
        server.stop()
    failed = [d for d in done.values() if d["status"] != "succeeded"]
    assert not failed, failed[0]["error"] + failed[0]["log_tail"][-2000:]
    from datetime import datetime
    runs = [(datetime.fromisoformat(d["finished"]) - datetime.fromisoformat(d["started"]))
            .total_seconds() for d in done.values()]
    res = {"workers": workers, "jobs": jobs, "wall_s": round(wall, 1),
           "per_min": round(jobs / wall * 60, 2),
           "job_median_s": round(statistics.median(runs), 1)}
    print(f"    jobs: {res}", flush=True)
    return res


def run_backend(backend: str, database: str | None, work: Path, run_dir: Path,
                args) -> dict:
    print(f"  {backend}", flush=True)
    server = LiveServer(work / f"home-{backend}", database=database, workers=0).start()
    try:
        row = {"backend": backend,
               "push": bench_push(server, run_dir, args.pushes, args.cli_pushes),
               "seed": seed_project(server, run_dir, work, args.audits),
               "reads": bench_reads(server, args.reads, args.audits)}
    finally:
        server.stop()
    row["jobs"] = [bench_jobs(work, database, w, args.jobs) for w in (1, 2)]
    return row


def _jobs_sentence(rows: list[dict]) -> str:
    gains = [r["jobs"][1]["per_min"] / r["jobs"][0]["per_min"] for r in rows]
    slower = all(r["jobs"][1]["job_median_s"] > r["jobs"][0]["job_median_s"] for r in rows)
    return (f"Jobs: 2 workers ran {min(gains):.2f}× to {max(gains):.2f}× as many jobs per "
            "minute as 1 worker" + ("; each job took longer with 2 (they share the 2 cores)."
                                    if slower else "."))


def markdown(rows: list[dict], recorded: str, run_mib: float, args) -> str:
    lines = [recorded, "",
             "A real server (`latent-audit serve` in a child process, uvicorn on 127.0.0.1) "
             "and its client in another process on the same 2 cores. Push = "
             "`audit.service.client.push` (what `latent-audit push` calls) of a finished run "
             f"of 1,000 × 16 latents ({run_mib:.1f} MiB with its store: report.html is most "
             "of it), stored, summarised and answered (201); *CLI* = the whole `latent-audit "
             "push` command in a child process, Python start-up included. The "
             f"{args.audits:,} audits of the list rows were seeded by {args.audits:,} real "
             "pushes of a findings-only folder, one after the other (no database inserts "
             "behind the API's back). Jobs: a config of 400 × 6 latents (every check that "
             f"applies), {args.jobs} submitted at once; each job is a `latent-audit run` child "
             "process (Python and library start-up included), stored as an audit when done.",
             "",
             "| backend | request | runs | median (ms) | p95 (ms) | size |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        b = r["backend"]
        for label in ("with store", "without store", "with baseline"):
            p = r["push"][label]
            what = ("with store, compared with the pinned baseline (gate "
                    "`compare.knn_overlap >= 0.9`)" if label == "with baseline" else label)
            lines.append(f"| {b} | push, {what} | {p['n']} | {p['median_ms']:.0f} "
                         f"| {p['p95_ms']:.0f} | {p['mib']:.2f} MiB |")
        p = r["push"]["cli"]
        lines.append(f"| {b} | `latent-audit push` (CLI, with store) | {p['n']} "
                     f"| {p['median_ms']:.0f} | {p['p95_ms']:.0f} | {run_mib:.2f} MiB |")
        s = r["seed"]
        lines.append(f"| {b} | push, findings.json only (seeding; {s['per_s']:.1f}/s) "
                     f"| {s['n']:,} | {s['median_ms']:.0f} | {s['p95_ms']:.0f} "
                     f"| {s['kib']:.0f} KiB |")
        for label, q in r["reads"].items():
            lines.append(f"| {b} | GET {label} at {args.audits:,} audits | {q['n']} "
                         f"| {q['median_ms']:.1f} | {q['p95_ms']:.1f} | {q['kib']:.1f} KiB |")
    lines += ["", "| backend | workers | jobs | wall (s) | jobs / minute | one job (median s) |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        for j in r["jobs"]:
            lines.append(f"| {r['backend']} | {j['workers']} | {j['jobs']} | {j['wall_s']:.1f} "
                         f"| {j['per_min']:.1f} | {j['job_median_s']:.1f} |")
    cli_ms = ", ".join(f"{r['push']['cli']['median_ms']:.0f} ms in the {r['backend']} pass"
                       for r in rows)
    lines += ["", "A push with a pinned baseline is compared with it inside the upload "
              "request (the library's `compare` on both stores, then its report), so CI gets "
              "the release verdict in the answer; that comparison is most of its time. "
              "Audits in the list are read with a fixed number of queries per page, whatever "
              "the project's size. " + _jobs_sentence(rows), "",
              f"How loaded the machine was: `latent-audit push` on the command line, whose "
              f"time is mostly Python start-up and the same work on every backend, took "
              f"{cli_ms}. Differences between the backends' rows are mostly the load of "
              "the moment, not the database."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts (a minute or two)")
    ap.add_argument("--pushes", type=int, default=None, help="timed pushes of the run")
    ap.add_argument("--audits", type=int, default=None, help="audits the project is seeded with")
    ap.add_argument("--jobs", type=int, default=None, help="jobs per worker count")
    ap.add_argument("--no-postgres", action="store_true", help="SQLite only")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "service.json")
    ap.add_argument("--note", default="", help="how the machine was loaded (for the record)")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite the markdown of the recorded --out file")
    args = ap.parse_args()
    if args.render:
        result = json.loads(args.out.read_text())
        params = argparse.Namespace(**result["params"])
        result["markdown"] = markdown(result["rows"], result["markdown"].splitlines()[0],
                                      result["run_mib"], params)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(result["markdown"])
        return
    try:
        import fastapi  # noqa: F401
    except ImportError:
        print("bench_service: skipped, the service needs the 'serve' extra "
              "(pip install -e '.[serve]')")
        return
    args.pushes = args.pushes or (8 if args.quick else 30)
    args.cli_pushes = 3 if args.quick else 5
    args.audits = args.audits or (200 if args.quick else 1000)
    args.reads = 10 if args.quick else 30
    args.jobs = args.jobs or (2 if args.quick else 6)
    load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench-service-"))
    work.chmod(0o755)           # PostgreSQL runs as 'postgres' when this runs as root
    cluster = None
    try:
        print("  making the run folder ...", flush=True)
        run_dir = make_run(work)
        run_mib = _folder_bytes(run_dir) / 2**20
        backends: list[tuple[str, str | None]] = [("sqlite", None)]
        why = PostgresCluster.available()
        if not args.no_postgres and why is None:
            cluster = PostgresCluster(work / "pg").start()
            backends.append(("postgresql", cluster.new_database()))
        elif not args.no_postgres:
            print(f"  PostgreSQL skipped: {why}", flush=True)
        rows = [run_backend(b, db, work, run_dir, args) for b, db in backends]
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    from datetime import datetime, timezone

    from run import machine  # benchmarks/run.py, next to this script
    note = args.note or (f"2 shared cores, noisy: load average {load:.1f} at the start, "
                         "other sessions' tests running beside it")
    recorded = (f"Recorded {datetime.now(timezone.utc):%Y-%m-%d} on: {machine()}; {note}.")
    md = markdown(rows, recorded, run_mib, args)
    result = {"benchmark": "service",
              "title": "Service: push, list at 1,000 audits, jobs (latent-audit serve)",
              "quick": args.quick, "python": platform.python_version(),
              "params": {"audits": args.audits, "jobs": args.jobs, "pushes": args.pushes},
              "run_mib": run_mib, "rows": rows, "markdown": md}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(md)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
