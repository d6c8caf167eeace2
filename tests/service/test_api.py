"""The REST API against a real server: push, list, fetch, metric series, baseline, compare.

Runs on SQLite and PostgreSQL (``backend``). Values are checked against the run folders
pushed (their findings.json) and against ``audit.compare.compare`` run directly.
"""
from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from audit.compare import compare, load_side

API = "/api/v1"
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; sandbox allow-scripts")


def run_files(folder: Path, skip: tuple[str, ...] = ()) -> list[tuple[str, tuple[str, bytes]]]:
    """A run folder as the upload's ``file`` parts (names relative, ``/`` separators)."""
    return [("file", (p.relative_to(folder).as_posix(), p.read_bytes()))
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).as_posix() not in skip]


def push(client, project: str, folder: Path, skip: tuple[str, ...] = (), **fields) -> dict:
    r = client.post(f"{API}/projects/{project}/audits", data=fields,
                    files=run_files(folder, skip))
    assert r.status_code == 201, r.text
    return r.json()


def findings(folder: Path) -> dict:
    return json.loads((folder / "findings.json").read_text())


def severity_counts(doc: dict) -> dict[str, int]:
    return {s: sum(f["severity"] == s for f in doc["findings"])
            for s in ("critical", "warning", "info")}


@functools.lru_cache(maxsize=1)
def _direct(base: Path, cand: Path):
    """The library's comparison of the two folders (made once for both backends)."""
    return compare(load_side(base, role="baseline"), load_side(cand, role="candidate"),
                   gates=[("compare.knn_overlap", ">=", 0.999), ("compare.cka_linear", ">=", 0.5)])


def test_push_list_fetch_baseline_compare(make_server, run_dirs, backend):
    server = make_server(workers=0)
    base_doc, cand_doc = findings(run_dirs["base"]), findings(run_dirs["cand"])
    with server.client(server.admin) as c:
        health = c.get(f"{API}/health").json()
        assert health["status"] == "ok" and health["database"] == backend
        from audit.service.migrate import head_revision
        assert health["schema"] == head_revision()

        first = push(c, "line", run_dirs["base"], version="1.0", commit="abc123",
                     labels=json.dumps({"branch": "main"}))
        assert first == {"id": first["id"], "project": "line", "verdict": "pass",
                         "release_verdict": "pass", "baseline_id": None,
                         "comparison_verdict": None, "comparison_error": None,
                         "url": f"/audits/{first['id']}"}
        second = push(c, "line", run_dirs["cand"], version="2.0")
        assert second["id"] > first["id"] and second["baseline_id"] is None

        # the history, newest first, with the counts and metrics of what was pushed
        page = c.get(f"{API}/projects/line/audits").json()
        assert [a["id"] for a in page["audits"]] == [second["id"], first["id"]]
        assert page["total"] == 2 and page["baseline_audit_id"] is None
        for row, doc, version in ((page["audits"][0], cand_doc, "2.0"),
                                  (page["audits"][1], base_doc, "1.0")):
            assert row["counts"] == severity_counts(doc)
            assert row["version"] == version and row["n"] == 400 and row["dim"] == 6
            assert row["verdict"] == doc["run"]["verdict"]
            assert row["verdict_reason"] == doc["run"]["verdict_reason"]
            for name in ("clusters.count", "outliers.fraction", "bias.flagged"):
                assert row["metrics"][name] == pytest.approx(doc["metrics"][name])
            assert row["gates"] == {"outliers.fraction": "pass"}     # the run's own gate
        assert page["audits"][1]["commit"] == "abc123"
        one = c.get(f"{API}/projects/line/audits", params={"limit": 1, "offset": 1}).json()
        assert [a["id"] for a in one["audits"]] == [first["id"]]
        older = c.get(f"{API}/projects/line/audits", params={"before": second["id"]}).json()
        assert [a["id"] for a in older["audits"]] == [first["id"]]

        # one audit: metadata and the findings document as pushed
        meta = c.get(f"{API}/audits/{first['id']}").json()
        assert meta["findings"] == base_doc
        assert meta["labels"] == {"branch": "main"} and meta["has_store"] is True
        assert "store/manifest.json" in meta["files"] and "report.html" in meta["files"]
        assert meta["size_bytes"] == sum(p.stat().st_size for p in run_dirs["base"].rglob("*")
                                         if p.is_file())
        report = c.get(f"/audits/{first['id']}/report")
        assert report.status_code == 200
        assert report.content == (run_dirs["base"] / "report.html").read_bytes()
        assert report.headers["content-security-policy"] == CSP
        assert report.headers["x-content-type-options"] == "nosniff"
        parquet = c.get(f"{API}/audits/{first['id']}/files/per_sample.parquet")
        assert parquet.content == (run_dirs["base"] / "per_sample.parquet").read_bytes()

        # a metric's series, oldest first, equal to the pushed findings
        for name in ("clusters.count", "outliers.glosh_p99", "geometry.intrinsic_dim"):
            series = c.get(f"{API}/projects/line/metrics", params={"name": name}).json()
            assert [p["audit_id"] for p in series["points"]] == [first["id"], second["id"]]
            assert [p["version"] for p in series["points"]] == ["1.0", "2.0"]
            assert [p["value"] for p in series["points"]] == pytest.approx(
                [base_doc["metrics"][name], cand_doc["metrics"][name]])
        names = c.get(f"{API}/projects/line/metrics").json()["names"]
        assert names == sorted(base_doc["metrics"])

        # pin the baseline with one gate that holds and one the shifted candidate fails
        gates = ["compare.knn_overlap >= 0.999",
                 {"metric": "compare.cka_linear", "op": ">=", "threshold": 0.5}]
        r = c.put(f"{API}/projects/line/baseline", json={"audit_id": first["id"],
                                                         "gates": gates})
        assert r.status_code == 200, r.text
        pinned = {"project": "line", "audit_id": first["id"], "fail_on": "never",
                  "gates": [{"metric": "compare.knn_overlap", "op": ">=", "threshold": 0.999},
                            {"metric": "compare.cka_linear", "op": ">=", "threshold": 0.5}]}
        assert r.json() == pinned
        assert c.get(f"{API}/projects/line/baseline").json() == pinned

        third = push(c, "line", run_dirs["cand"], version="3.0")
        assert third["baseline_id"] == first["id"]
        assert third["verdict"] == "pass"
        assert third["comparison_verdict"] == "fail" and third["release_verdict"] == "fail"

        doc = c.get(f"{API}/compare", params={"baseline": first["id"],
                                              "candidate": third["id"]}).json()
        assert doc["schema"] == "latent-audit/comparison/v1" and doc["verdict"] == "fail"
        by_metric = {g["metric"]: g for g in doc["gates"]}
        assert by_metric["compare.knn_overlap"]["status"] == "fail"
        assert by_metric["compare.knn_overlap"]["value"] < 0.999
        assert by_metric["compare.cka_linear"]["status"] == "pass"
        assert doc["run"]["baseline"]["path"] == f"/audits/{first['id']}"
        direct = _direct(run_dirs["base"], run_dirs["cand"])
        assert direct.verdict == doc["verdict"]
        for name in ("compare.knn_overlap", "compare.cka_linear", "compare.procrustes_residual",
                     "compare.matched_count", "compare.neighbourhood_score"):
            assert doc["metrics"][name] == pytest.approx(direct.metrics[name], rel=1e-9), name
        assert len(doc["findings"]) == len(direct.findings)

        html = c.get("/compare/report", params={"baseline": first["id"],
                                                "candidate": third["id"]})
        assert html.status_code == 200 and html.headers["content-security-policy"] == CSP
        assert html.headers["content-type"].startswith("text/html")

        page = c.get(f"{API}/projects/line/audits").json()
        rows = {a["id"]: a for a in page["audits"]}
        assert page["baseline_audit_id"] == first["id"]
        assert rows[first["id"]]["baseline"] is True and rows[third["id"]]["baseline"] is False
        assert rows[third["id"]]["release_verdict"] == "fail"
        assert rows[third["id"]]["comparison_verdict"] == "fail"

        # gates that hold: the next push is released
        r = c.put(f"{API}/projects/line/baseline",
                  json={"audit_id": first["id"], "gates": ["compare.cka_linear >= 0.5"]})
        assert r.status_code == 200
        fourth = push(c, "line", run_dirs["cand"], version="4.0", skip=("report.html",))
        assert (fourth["comparison_verdict"], fourth["release_verdict"]) == ("pass", "pass")

        projects = {p["name"]: p for p in c.get(f"{API}/projects").json()["projects"]}
        assert projects["line"]["audits"] == 4
        assert projects["line"]["baseline_audit_id"] == first["id"]
        assert projects["line"]["latest"]["id"] == fourth["id"]
        assert projects["line"]["latest"]["version"] == "4.0"
        assert projects["line"]["latest"]["release_verdict"] == "pass"

        spec = c.get(f"{API}/openapi.json").json()
        for path in ("/api/v1/health", "/api/v1/projects", "/api/v1/projects/{project}/audits",
                     "/api/v1/audits/{audit_id}", "/api/v1/projects/{project}/baseline",
                     "/api/v1/compare", "/api/v1/projects/{project}/metrics",
                     "/audits/{audit_id}/report", "/compare/report"):
            assert path in spec["paths"], path
        assert "post" in spec["paths"]["/api/v1/projects/{project}/audits"]
        assert "put" in spec["paths"]["/api/v1/projects/{project}/baseline"]
        fields = spec["components"]["schemas"]["AuditSummary"]["properties"]
        assert {"id", "version", "created", "verdict", "counts", "metrics"} <= set(fields)


def test_twenty_concurrent_pushes(make_server, run_dirs):
    server = make_server(workers=0)
    folder = run_dirs["base"]
    with server.client(server.admin) as c:
        def one(i: int) -> dict:
            with server.client(server.admin) as own:
                return push(own, "busy", folder, skip=("report.html",), version=f"v{i}")
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(one, range(20)))
        ids = [r["id"] for r in results]
        assert len(set(ids)) == 20
        page = c.get(f"{API}/projects/busy/audits").json()
        assert page["total"] == 20
        assert sorted(a["id"] for a in page["audits"]) == sorted(ids)
        assert sorted(a["version"] for a in page["audits"]) == sorted(f"v{i}" for i in range(20))
        assert [a["id"] for a in page["audits"]] == sorted(ids, reverse=True)
        series = c.get(f"{API}/projects/busy/metrics", params={"name": "clusters.count"}).json()
        assert len(series["points"]) == 20
    staging = server.home / "artifacts" / "staging"
    assert not staging.exists() or not any(staging.iterdir())


@pytest.mark.parametrize("backend", ["sqlite"])
def test_gates_refusals_and_missing(make_server, run_dirs, run_copy):
    # a run whose gates read a metric outside the key list: its value and outcome listed
    folder = run_copy("base")
    doc = findings(folder)
    value = doc["metrics"]["geometry.intrinsic_dim"]
    doc["gates"].append({"metric": "geometry.intrinsic_dim", "op": ">=", "threshold": 100.0,
                         "value": value, "passed": False, "status": "fail",
                         "details": "geometry.intrinsic_dim >= 100: FAIL"})
    doc["run"]["verdict"], doc["run"]["verdict_reason"] = "fail", "1 of 2 gate(s) failed"
    (folder / "findings.json").write_text(json.dumps(doc))
    server = make_server(workers=0)
    with server.client(server.admin) as c:
        pushed = push(c, "g", folder, skip=("report.html",))
        assert (pushed["verdict"], pushed["release_verdict"]) == ("fail", "fail")
        row = c.get(f"{API}/projects/g/audits").json()["audits"][0]
        assert row["gates"] == {"outliers.fraction": "pass", "geometry.intrinsic_dim": "fail"}
        assert row["metrics"]["geometry.intrinsic_dim"] == pytest.approx(value)
        assert row["verdict_reason"] == "1 of 2 gate(s) failed"
        names = c.get(f"{API}/projects/g/metrics").json()["names"]
        assert not [n for n in names if n.startswith("gate:")]

        base = push(c, "p", run_dirs["base"])["id"]
        bare = push(c, "p", run_dirs["cand"], skip=("store/manifest.json",
                                                    "store/metadata.parquet",
                                                    "store/latents/part-00000.npy"))["id"]
        other = push(c, "q", run_dirs["base"])["id"]
        assert c.get(f"{API}/audits/999").status_code == 404
        assert c.get(f"{API}/projects/nope/audits").status_code == 404
        assert c.get(f"{API}/projects/p/audits", params={"limit": 0}).status_code == 400
        assert c.get(f"{API}/projects/p/audits", params={"limit": 1001}).status_code == 400
        r = c.get(f"{API}/compare", params={"baseline": base, "candidate": 999})
        assert r.status_code == 404 and "999" in r.json()["detail"]
        r = c.get(f"{API}/compare", params={"baseline": base, "candidate": bare})
        assert r.status_code == 409 and "store/" in r.json()["detail"]
        assert c.get("/compare/report", params={"baseline": bare,
                                                "candidate": base}).status_code == 409
        r = c.get(f"{API}/audits/{base}/files/store%2F..%2Ffindings.json")
        assert r.status_code == 400 and "not allowed" in r.json()["detail"]
        assert c.get(f"{API}/audits/{base}/files/nothing.txt").status_code == 404

        def pin(body: dict, project: str = "p"):
            return c.put(f"{API}/projects/{project}/baseline", json=body)
        r = pin({"audit_id": bare})
        assert r.status_code == 409 and "store/" in r.json()["detail"]
        assert pin({"audit_id": other}).status_code == 409
        assert pin({"audit_id": 999}).status_code == 404
        assert pin({"audit_id": base}, project="nope").status_code == 404
        r = pin({"audit_id": base, "gates": ["compare.knn_overlap >> 3"]})
        assert r.status_code == 400 and "gates[0]" in r.json()["detail"]
        r = pin({"audit_id": base, "gates": ["outliers.fraction <= 0.1"]})
        assert r.status_code == 400 and "comparison metric" in r.json()["detail"]
        r = pin({"audit_id": base, "fail_on": "sometimes"})
        assert r.status_code == 400 and "fail_on" in r.json()["detail"]
        assert c.get(f"{API}/projects/p/baseline").json()["audit_id"] is None

        # a baseline, and an audit pushed without its store: kept, release verdict error
        assert pin({"audit_id": base, "fail_on": "critical"}).json()["fail_on"] == "critical"
        r = push(c, "p", run_dirs["cand"], skip=("store/manifest.json",))
        assert r["release_verdict"] == "error" and r["comparison_verdict"] is None
        assert "store/" in r["comparison_error"]
        assert c.get(f"{API}/projects/p/baseline").json() == {
            "project": "p", "audit_id": base, "gates": [], "fail_on": "critical"}
        r = c.delete(f"{API}/projects/p/baseline")
        assert r.status_code == 200 and r.json()["audit_id"] is None


@pytest.mark.parametrize("backend", ["sqlite"])
def test_ingest_folder(make_server, run_dirs):
    """What a job does with its finished run folder, beside a running server."""
    from audit.service.ingest import ingest_folder
    from audit.service.settings import ServeSettings
    from audit.service.state import open_state

    server = make_server(workers=0)
    state = open_state(ServeSettings(home=server.home))
    try:
        out = ingest_folder(state, "jobs", run_dirs["base"], version="j1", commit="c0ffee",
                            labels={"job": 7})
        assert out["project"] == "jobs" and out["verdict"] == "pass"
        assert out["baseline_id"] is None and out["url"] == f"/audits/{out['id']}"
        with server.client(server.admin) as c:
            r = c.put(f"{API}/projects/jobs/baseline",
                      json={"audit_id": out["id"], "gates": ["compare.cka_linear >= 0.5"]})
            assert r.status_code == 200
            second = ingest_folder(state, "jobs", run_dirs["cand"], version="j2")
            assert second["baseline_id"] == out["id"]
            assert (second["comparison_verdict"], second["release_verdict"]) == ("pass", "pass")
            rows = c.get(f"{API}/projects/jobs/audits").json()["audits"]
            assert [(a["id"], a["source"], a["version"]) for a in rows] == [
                (second["id"], "job", "j2"), (out["id"], "job", "j1")]
            meta = c.get(f"{API}/audits/{out['id']}").json()
            assert meta["labels"] == {"job": 7} and meta["commit"] == "c0ffee"
            assert meta["findings"] == findings(run_dirs["base"])
            doc = c.get(f"{API}/compare", params={"baseline": out["id"],
                                                  "candidate": second["id"]}).json()
            assert doc["verdict"] == "pass" and doc["gates"][0]["status"] == "pass"
            assert doc["run"]["candidate"]["path"] == f"/audits/{second['id']}"
    finally:
        state.engine.dispose()
