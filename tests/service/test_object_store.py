"""A server whose artifact store is not a local folder (an fsspec URL): pushes, reports,
downloads and baseline comparisons go through fsspec and the local cache.

``memory://`` is a real fsspec file system living in the server's process; it takes the same
code paths as ``s3://`` (no local path: staging moves, reads and the materialised copies
under ``<home>/cache`` for comparisons), without a network.
"""
from __future__ import annotations

import json

import pytest

from .helpers import push_run


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_remote_store_serves_pushes_reports_and_comparisons(make_server, run_dirs):
    server = make_server(workers=0, args=("--artifacts", "memory://latent-audit-test"))
    base = push_run(server, "line", run_dirs["base"], "1")
    with server.client(server.admin) as c:
        assert c.put("/api/v1/projects/line/baseline",
                     json={"audit_id": base["id"],
                           "gates": ["compare.knn_overlap >= 0.999"]}).status_code == 200
    cand = push_run(server, "line", run_dirs["cand"], "2")
    assert cand["baseline_id"] == base["id"] and cand["comparison_verdict"] == "fail"
    assert cand["release_verdict"] == "fail"
    with server.client() as c:
        doc = c.get(f"/api/v1/audits/{cand['id']}").json()
        pushed = json.loads((run_dirs["cand"] / "findings.json").read_text())
        assert doc["findings"]["metrics"] == pushed["metrics"]
        report = c.get(f"/audits/{cand['id']}/report")
        assert report.status_code == 200
        assert report.content == (run_dirs["cand"] / "report.html").read_bytes()
        parquet = c.get(f"/api/v1/audits/{cand['id']}/files/per_sample.parquet")
        assert parquet.content == (run_dirs["cand"] / "per_sample.parquet").read_bytes()
        cmp = c.get("/api/v1/compare", params={"baseline": base["id"],
                                               "candidate": cand["id"]}).json()
        assert cmp["verdict"] == "fail" and cmp["metrics"]["compare.knn_overlap"] < 0.999
    # nothing was written to the home's artifact folder: the store is the memory file system
    assert not any((server.home / "artifacts").rglob("findings.json"))
    # the baseline came back from the store as a materialised copy in the local cache (the
    # candidate was compared from its upload, before it reached the store)
    cached = sorted(p.parent.name for p in (server.home / "cache").rglob("findings.json"))
    assert cached == [str(base["id"])]
