"""``latent-audit push`` and ``latent-audit run --push`` against a real server.

The CLI runs in a child process (as CI would run it); the server is a real uvicorn on
SQLite and on PostgreSQL. Exit codes: 0 stored and the release verdict passes, 1 it fails
(the pinned baseline's gates), 2 bad input or refused by the server, 4 unreachable.
"""
from __future__ import annotations

import json
import re

import pytest

from .conftest import _dataset
from .servers import cli, free_port

pytestmark = pytest.mark.service

PUSHED = re.compile(r"latent-audit: pushed audit (\d+) to (\S+)/audits/(\d+): "
                    r"release verdict (\w+)")


def _pushed(out) -> tuple[int, str]:
    """(audit id, release verdict) from a push's one line; fails with the output if absent."""
    m = PUSHED.search(out.stdout)
    assert m, f"rc {out.returncode}\nstdout: {out.stdout}\nstderr: {out.stderr}"
    assert m.group(1) == m.group(3)
    return int(m.group(1)), m.group(4)


def _push(server, run_dir, *args, env=None):
    return cli("push", str(run_dir), "--server", server.url, *args, env=env)


def test_push_stores_the_run_and_the_server_decides(make_server, run_dirs):
    server = make_server(workers=0)
    token = server.token("vision")
    base = run_dirs["base"]

    out = _push(server, base, "--project", "vision", "--token", token, "--version", "v1",
                "--commit", "a" * 40, "--label", "team=perception", "--label", "gpu=none")
    assert out.returncode == 0, out.stderr
    audit_id, verdict = _pushed(out)
    assert verdict == "pass"
    assert f"to {server.url}/audits/{audit_id}:" in out.stdout

    with server.client() as c:
        listed = c.get("/api/v1/projects/vision/audits").json()
        rows = listed["audits"] if isinstance(listed, dict) else listed
        assert [r["id"] for r in rows] == [audit_id]
        assert rows[0]["version"] == "v1"
        doc = c.get(f"/api/v1/audits/{audit_id}").json()
        assert doc["findings"] == json.loads((base / "findings.json").read_text())
        meta = doc.get("audit", doc)
        assert meta["commit"] == "a" * 40
        assert meta["labels"] == {"team": "perception", "gpu": "none"}
        report = c.get(f"/audits/{audit_id}/report")
        assert report.status_code == 200
        assert report.content == (base / "report.html").read_bytes()

    # server and token from the environment; --no-store; version defaults to name@commit
    env = {"LATENT_AUDIT_SERVER": server.url, "LATENT_AUDIT_TOKEN": token}
    out = cli("push", str(base), "--project", "vision", "--no-store", "--commit", "b" * 40,
              env=env)
    assert out.returncode == 0, out.stderr
    second, _ = _pushed(out)
    with server.client() as c:
        meta = c.get(f"/api/v1/audits/{second}").json()
        meta = meta.get("audit", meta)
    run_name = json.loads((base / "findings.json").read_text())["run"]["name"]
    assert meta["version"] == f"{run_name}@bbbbbbb"
    assert meta["has_store"] is False
    assert not any(f.startswith("store/") for f in meta["files"])

    # a token the server does not know: exit 2 with the server's own message
    with server.client("la_not-a-real-token") as c:
        refused = c.post("/api/v1/projects/vision/audits", data={"version": "x"},
                         files=[("file", ("findings.json", b"{}"))])
    assert refused.status_code == 401
    out = _push(server, base, "--project", "vision", "--token", "la_not-a-real-token")
    assert out.returncode == 2, out.stderr
    assert refused.json()["detail"] in out.stderr
    assert "HTTP 401" in out.stderr and "Traceback" not in out.stderr

    # another project's token: 403, exit 2, nothing stored
    other = server.token("other")
    out = _push(server, base, "--project", "vision", "--token", other)
    assert out.returncode == 2
    assert "HTTP 403" in out.stderr and "vision" in out.stderr
    with server.client() as c:
        rows = c.get("/api/v1/projects/vision/audits").json()
        rows = rows["audits"] if isinstance(rows, dict) else rows
    assert [r["id"] for r in rows] == [second, audit_id]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_push_refused_when_too_large(make_server, run_dirs):
    """report.html alone is ~5 MB; a 1 MB limit refuses the upload (413, exit 2)."""
    server = make_server(workers=0, args=("--max-upload-mb", "1"))
    out = _push(server, run_dirs["base"], "--project", "big", "--token", server.admin)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "HTTP 413" in out.stderr and "Traceback" not in out.stderr
    with server.client() as c:
        assert c.get("/api/v1/projects").status_code == 200
        listed = c.get("/api/v1/projects/big/audits")
    assert listed.status_code == 404 or not (listed.json()["audits"]
                                             if isinstance(listed.json(), dict)
                                             else listed.json())


def test_push_local_errors(tmp_path, run_dirs):
    """No server needed: checked before anything is sent, or nothing listens."""
    port = free_port()                                   # nothing listens here
    out = cli("push", str(run_dirs["base"]), "--server", f"http://127.0.0.1:{port}",
              "--project", "p", "--token", "la_x")
    assert out.returncode == 4, out.stderr
    assert f"could not reach http://127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr

    empty = tmp_path / "not-a-run"
    empty.mkdir()
    out = cli("push", str(empty), "--server", f"http://127.0.0.1:{port}", "--project", "p")
    assert out.returncode == 2
    assert str(empty / "findings.json") in out.stderr and "not found" in out.stderr

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "findings.json").write_text('{"schema": ')
    out = cli("push", str(broken), "--server", f"http://127.0.0.1:{port}", "--project", "p")
    assert out.returncode == 2
    assert str(broken / "findings.json") in out.stderr and "not valid JSON" in out.stderr

    out = cli("push", str(run_dirs["base"]), "--server", f"http://127.0.0.1:{port}",
              "--project", "p", "--label", "no-equals-sign")
    assert out.returncode == 2 and "KEY=VALUE" in out.stderr

    out = cli("push", str(run_dirs["base"]), "--project", "p",
              env={"LATENT_AUDIT_SERVER": ""})
    assert out.returncode == 2 and "LATENT_AUDIT_SERVER" in out.stderr

    out = cli("run", "no-such.yaml", "--project", "p")
    assert out.returncode == 2 and "--push" in out.stderr
    # run --push options are checked before the audit runs (not after minutes of it)
    out = cli("run", "no-such.yaml", "--push", "ftp://host", "--project", "p")
    assert out.returncode == 2 and "'ftp://host': expected an http" in out.stderr
    out = cli("run", "no-such.yaml", "--push", "http://host", "--project", "a/b")
    assert out.returncode == 2 and "not a valid project name" in out.stderr


def test_run_push_then_baseline_gate(make_server, run_dirs, tmp_path):
    """``run --push`` stores the run; with a pinned baseline whose gate the candidate
    misses, a push (and a ``run --push``) exits 1 although the run itself passes."""
    server = make_server(workers=0)
    token = server.token("line")
    config = _dataset(tmp_path / "data-base", seed=0, shift=0.0)    # run_dirs['base']'s data
    out_dir = tmp_path / "out-base"
    out = cli("run", str(config), "--out", str(out_dir), "-q", "--push", server.url,
              "--project", "line", "--token", token, "--version", "1.0",
              "--label", "stage=release")
    assert out.returncode == 0, out.stderr
    base_id, verdict = _pushed(out)
    assert verdict == "pass"
    with server.client() as c:
        doc = c.get(f"/api/v1/audits/{base_id}").json()
    assert doc["findings"] == json.loads((out_dir / "findings.json").read_text())
    meta = doc.get("audit", doc)
    assert meta["version"] == "1.0" and meta["labels"] == {"stage": "release"}

    with server.client(token) as c:
        pinned = c.put("/api/v1/projects/line/baseline", json={
            "audit_id": base_id,
            "gates": [{"metric": "compare.knn_overlap", "op": ">=", "threshold": 0.99}]})
    assert pinned.status_code == 200, pinned.text

    # the same latents again: every neighbourhood kept, the gate passes
    out = _push(server, run_dirs["base"], "--project", "line", "--token", token)
    assert out.returncode == 0, out.stdout + out.stderr
    same_id, verdict = _pushed(out)
    assert verdict == "pass"
    assert f"baseline, audit {base_id}: pass" in out.stderr

    # the candidate's latent space moved: its own gates pass, the comparison's gate fails
    out = _push(server, run_dirs["cand"], "--project", "line", "--token", token)
    assert out.returncode == 1, out.stdout + out.stderr
    cand_id, verdict = _pushed(out)
    assert verdict == "fail"
    with server.client() as c:
        meta = c.get(f"/api/v1/audits/{cand_id}").json()
        meta = meta.get("audit", meta)
        comparison = c.get("/api/v1/compare", params={"baseline": base_id,
                                                      "candidate": cand_id})
    assert meta["verdict"] == "pass" and meta["release_verdict"] == "fail"
    assert meta["baseline_id"] == base_id and meta["comparison_verdict"] == "fail"
    assert comparison.status_code == 200
    overlap = comparison.json()["metrics"]["compare.knn_overlap"]
    assert overlap < 0.99

    # run --push of the candidate's config: the run passes (exit 0 alone), the release fails
    cand_config = _dataset(tmp_path / "data-cand", seed=1, shift=3.0)
    out = cli("run", str(cand_config), "--out", str(tmp_path / "out-cand"), "-q",
              "--push", server.url, "--project", "line", "--token", token)
    assert out.returncode == 1, out.stdout + out.stderr
    assert _pushed(out)[1] == "fail"
    assert "latent-audit: PASS" in out.stderr                       # the run's own verdict

    with server.client() as c:
        rows = c.get("/api/v1/projects/line/audits").json()
        rows = rows["audits"] if isinstance(rows, dict) else rows
    assert [r["id"] for r in rows][:3] == sorted([same_id, cand_id, rows[0]["id"]],
                                                 reverse=True)
    assert len(rows) == 4
