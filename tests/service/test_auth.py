"""Who may do what, against a real server: writes need a token that may write to the
project (401 without one, 403 for another project's), project creation needs an admin
token, and reads are open on loopback only (or with ``--public-read``)."""
from __future__ import annotations

import httpx

from audit.service.settings import ServeSettings

API = "/api/v1"


def _findings_only(run_dir) -> list:
    return [("file", ("findings.json", (run_dir / "findings.json").read_bytes()))]


def _writes(c: httpx.Client, project: str, run_dir) -> dict[str, int]:
    """The status of each write path for ``project`` with ``c``'s token."""
    return {
        "upload": c.post(f"{API}/projects/{project}/audits", files=_findings_only(run_dir),
                         data={"version": "x"}).status_code,
        "baseline": c.put(f"{API}/projects/{project}/baseline",
                          json={"audit_id": 1}).status_code,
        "unpin": c.delete(f"{API}/projects/{project}/baseline").status_code,
        "create": c.post(f"{API}/projects", json={"name": project + "-new"}).status_code,
    }


def test_write_rules(make_server, run_dirs):
    server = make_server(workers=0)
    alpha, beta = server.token("alpha"), server.token("beta")
    run = run_dirs["base"]
    with server.client() as anonymous:
        assert _writes(anonymous, "alpha", run) == {"upload": 401, "baseline": 401,
                                                    "unpin": 401, "create": 401}
        r = anonymous.post(f"{API}/projects/alpha/audits", files=_findings_only(run))
        assert r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["detail"]
    with server.client("la_" + "x" * 43) as forged:
        assert _writes(forged, "alpha", run) == {"upload": 401, "baseline": 401,
                                                 "unpin": 401, "create": 401}
    with server.client(beta) as other:
        statuses = _writes(other, "alpha", run)
        assert statuses == {"upload": 403, "baseline": 403, "unpin": 403, "create": 403}
        # a project token may not create a project, by upload or by name
        assert other.post(f"{API}/projects/gamma/audits",
                          files=_findings_only(run)).status_code == 403
        assert other.post(f"{API}/projects", json={"name": "gamma"}).status_code == 403
    with server.client(alpha) as own:
        r = own.post(f"{API}/projects/alpha/audits", files=[
            ("file", (p.relative_to(run).as_posix(), p.read_bytes()))
            for p in sorted(run.rglob("*")) if p.is_file() and p.name != "report.html"])
        assert r.status_code == 201, r.text
        audit_id = r.json()["id"]
        r = own.put(f"{API}/projects/alpha/baseline", json={"audit_id": audit_id})
        assert r.status_code == 200 and r.json()["audit_id"] == audit_id
        assert own.delete(f"{API}/projects/alpha/baseline").status_code == 200
    with server.client(server.admin) as admin:
        r = admin.post(f"{API}/projects/delta/audits", files=_findings_only(run))
        assert r.status_code == 201 and r.json()["project"] == "delta"     # created by it
        r = admin.post(f"{API}/projects", json={"name": "epsilon"})
        assert r.status_code == 201 and r.json()["name"] == "epsilon" and r.json()["audits"] == 0
        assert admin.post(f"{API}/projects", json={"name": "epsilon"}).status_code == 409
        r = admin.put(f"{API}/projects/alpha/baseline", json={"audit_id": audit_id})
        assert r.status_code == 200
    with server.client() as anonymous:                       # reads are open on loopback
        names = [p["name"] for p in anonymous.get(f"{API}/projects").json()["projects"]]
        assert names == ["alpha", "beta", "delta", "epsilon"]
        assert anonymous.get(f"{API}/audits/{audit_id}").status_code == 200
    assert "gamma" not in names


def test_reads_need_a_token_off_loopback(make_server, run_dirs):
    assert ServeSettings(host="0.0.0.0").reads_open is False
    assert ServeSettings(host="127.0.0.1").reads_open is True
    assert ServeSettings(host="0.0.0.0", public_read=True).reads_open is True

    closed = make_server(workers=0, args=("--host", "0.0.0.0"))
    token = closed.token("alpha")
    with closed.client(token) as c:
        r = c.post(f"{API}/projects/alpha/audits", files=_findings_only(run_dirs["base"]))
        assert r.status_code == 201
        audit_id = r.json()["id"]
    reads = (f"{API}/projects", f"{API}/projects/alpha/audits", f"{API}/audits/{audit_id}",
             f"{API}/projects/alpha/metrics", f"{API}/projects/alpha/baseline",
             f"/audits/{audit_id}/report")
    with closed.client() as anonymous:
        for path in reads:
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.get(f"{API}/health").status_code == 200      # liveness stays open
    with closed.client("la_" + "y" * 43) as forged:
        assert forged.get(f"{API}/projects").status_code == 401
    with closed.client(token) as c:                  # any valid token reads every project
        for path in reads[:-1]:
            assert c.get(path).status_code == 200, path
    with closed.client() as browser:                 # the UI's cookie is a token too
        browser.cookies.set("latent_audit_token", token)
        assert browser.get(f"{API}/projects").status_code == 200

    closed.args += ("--public-read",)                # the same server, reads opened
    closed.restart()
    with closed.client() as anonymous:
        r = anonymous.get(f"{API}/projects")
        assert r.status_code == 200 and [p["name"] for p in r.json()["projects"]] == ["alpha"]
        assert anonymous.get(f"{API}/audits/{audit_id}").status_code == 200
        assert anonymous.post(f"{API}/projects/alpha/audits",
                              files=_findings_only(run_dirs["base"])).status_code == 401
