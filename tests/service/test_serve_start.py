"""Starting the server: zero setup, the URL and the admin token printed on the first start
only, and bad settings refused with one line and exit code 2."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx

from audit.service.auth import find_token
from audit.service.settings import ServeSettings
from audit.service.state import open_state

from .servers import ROOT, cli, free_port


def _start(home, port):
    return subprocess.Popen([sys.executable, "-m", "audit", "serve", "--home", str(home),
                             "--port", str(port), "--workers", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _first_lines(proc, port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    return out


def test_first_start_prints_url_and_admin_token_once(tmp_path):
    home = tmp_path / "home"
    port = free_port()
    out = _first_lines(_start(home, port), port)
    assert f"http://127.0.0.1:{port}/" in out
    token = re.search(r"admin token \(shown once, stored hashed\): (la_\S+)", out).group(1)
    assert (home / "latent-audit.db").exists() and (home / "artifacts").is_dir()
    state = open_state(ServeSettings(home=home))
    with state.session() as s:
        row = find_token(s, token)
        assert row is not None and row.project_id is None          # an admin token
        assert row.digest != token and token not in row.prefix     # stored hashed
    port = free_port()
    again = _first_lines(_start(home, port), port)
    assert f"http://127.0.0.1:{port}/" in again and "admin token" not in again


def test_bad_settings_exit_2_with_one_line(tmp_path):
    out = cli("serve", "--home", str(tmp_path / "h"), "--database", "nosuch://x")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "serve.database" in lines[0] and "Traceback" not in out.stderr
    out = cli("serve", "--home", str(tmp_path / "h"), env={"LATENT_AUDIT_SERVE_PORT": "x"})
    assert out.returncode == 2 and "LATENT_AUDIT_SERVE_PORT" in out.stderr
    out = cli("serve", "token", "create", "--home", str(tmp_path / "h"))
    assert out.returncode == 2 and "--project NAME or --admin" in out.stderr
    out = cli("serve", "token", "create", "--project", "../x", "--home", str(tmp_path / "h"))
    assert out.returncode == 2 and "not a valid project name" in out.stderr


def test_a_project_token_creates_its_project(tmp_path):
    out = cli("serve", "token", "create", "--project", "vae-line", "--home", str(tmp_path))
    assert out.returncode == 0
    raw = out.stdout.strip()
    assert raw.startswith("la_") and len(raw) > 40
    state = open_state(ServeSettings(home=tmp_path))
    with state.session() as s:
        from audit.service.db import Project
        row = find_token(s, raw)
        assert s.get(Project, row.project_id).name == "vae-line"
        assert find_token(s, raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None


def test_tokens_are_listed_and_revoked(tmp_path):
    home = ["--home", str(tmp_path)]
    admin = cli("serve", "token", "create", "--admin", *home).stdout.strip()
    proj = cli("serve", "token", "create", "--project", "line-a", *home).stdout.strip()
    out = cli("serve", "token", "list", *home)
    assert out.returncode == 0
    rows = [line.split("\t") for line in out.stdout.strip().splitlines()]
    assert [r[2] for r in rows] == ["(admin)", "line-a"]
    assert rows[1][1] == proj[:8] + "…" and admin not in out.stdout and proj not in out.stdout
    assert cli("serve", "token", "revoke", rows[1][0], *home).returncode == 0
    state = open_state(ServeSettings(home=tmp_path))
    with state.session() as s:
        assert find_token(s, proj) is None and find_token(s, admin) is not None
    missing = cli("serve", "token", "revoke", "999", *home)
    assert missing.returncode == 2 and "no token with id 999" in missing.stderr
