"""``push``: upload a finished run folder to a latent-audit server.

The client half of the service, and the only part a CI job needs: it imports httpx (a core
dependency) and nothing of the ``serve`` extra. It speaks the upload protocol of
``POST /api/v1/projects/{project}/audits``: a multipart form with the text fields
``version``, ``commit``, ``name`` and ``labels`` (a JSON object) and one part named ``file``
per file, whose filename is its path relative to the run folder (``store/manifest.json``).
Files are streamed from disk one at a time, so a store of many gigabytes is never held in
memory and never holds more than one file open.
"""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ENV_SERVER", "ENV_TOKEN", "EXIT_BAD_INPUT", "EXIT_UNREACHABLE", "PushError",
           "PushResult", "check_target", "default_commit", "default_version", "parse_labels", "push",
           "read_findings", "run_files", "verdict_exit"]

log = logging.getLogger("audit")

ENV_SERVER = "LATENT_AUDIT_SERVER"
ENV_TOKEN = "LATENT_AUDIT_TOKEN"
#: ``push`` exit codes besides the verdict's (0 pass, 1 fail, 3 error)
EXIT_BAD_INPUT, EXIT_UNREACHABLE = 2, 4
#: the run's files that are pushed when present (findings.json is required)
TOP_FILES = ("findings.json", "report.html", "summary.md", "per_sample.parquet",
             "comparison.json", "comparison.html", "comparison.md")
#: folders pushed whole unless ``with_store=False`` (a baseline comparison needs store/)
STORE_DIRS = ("store", "reference-store")
#: an upload may be large and the server compares it with the baseline before it answers
TIMEOUT = {"connect": 15.0, "read": 3600.0, "write": 3600.0, "pool": 15.0}
#: the server's rule for project names (audit.service.auth.valid_project_name)
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class PushError(Exception):
    """A push that did not store the audit; ``code`` is the exit code (2 or 4)."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PushResult:
    """The server's answer to an upload (``url`` made absolute)."""

    id: int
    project: str
    verdict: str
    release_verdict: str
    baseline_id: int | None
    comparison_verdict: str | None
    comparison_error: str | None
    url: str


def verdict_exit(release_verdict: str) -> int:
    """0 pass, 1 fail, 3 error: the same codes as ``latent-audit run``."""
    return {"pass": 0, "fail": 1}.get(release_verdict, 3)


def read_findings(run_dir: Path) -> dict[str, Any]:
    """The run folder's ``findings.json`` as a dict, or :class:`PushError` naming it."""
    run_dir = Path(run_dir)
    path = run_dir / "findings.json"
    if not run_dir.is_dir():
        raise PushError(f"{run_dir}: not a folder (give a finished run's output folder)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PushError(f"{path}: not found (is {run_dir} a finished run's output folder?)") \
            from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PushError(f"{path}: unreadable ({exc.__class__.__name__})") from None
    except json.JSONDecodeError as exc:
        raise PushError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise PushError(f"{path}: not a findings document (a JSON object)")
    return doc


def _visible_files(folder: Path) -> Iterable[Path]:
    """Regular files under ``folder``, sorted, skipping hidden names and links."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if not name.startswith(".") and path.is_file() and not path.is_symlink():
                yield path


def run_files(run_dir: Path, *, with_store: bool = True) -> list[tuple[str, Path]]:
    """The files a push sends: ``(relative POSIX path, local path)``, findings.json first."""
    run_dir = Path(run_dir)
    out = [(name, run_dir / name) for name in TOP_FILES if (run_dir / name).is_file()]
    if with_store:
        for folder in STORE_DIRS:
            if (run_dir / folder).is_dir():
                out += [(p.relative_to(run_dir).as_posix(), p)
                        for p in _visible_files(run_dir / folder)]
    return out


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    """``["team=vision", "gpu=a100"]`` → a dict; :class:`PushError` on an item without ``=``."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PushError(f"--label {item!r}: expected KEY=VALUE")
        labels[key.strip()] = value
    return labels


def default_commit(cwd: Path | None = None) -> str:
    """``git rev-parse HEAD`` in ``cwd`` (the current folder), or "" outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) in (40, 64) else ""


def default_version(findings: Mapping[str, Any], run_dir: Path, commit: str) -> str:
    """The run's name (from findings.json, else the folder's), ``@`` the short commit."""
    run = findings.get("run") if isinstance(findings.get("run"), dict) else {}
    name = str(run.get("name") or Path(run_dir).resolve().name)
    return f"{name}@{commit[:7]}" if commit else name


class _LazyFile:
    """A file opened on its first read and closed at its end, so that an upload of many
    files holds one open at a time. Its size is known up front (for Content-Length)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._fh = None
        self._done = False

    def tell(self) -> int:
        return self._fh.tell() if self._fh is not None else 0

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == os.SEEK_END:
            return self.size + offset
        if self._fh is not None:
            return self._fh.seek(offset, whence)
        return offset

    def read(self, n: int = -1) -> bytes:
        if self._done:
            return b""
        if self._fh is None:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - closed at EOF or by close()
        chunk = self._fh.read(n)
        if not chunk:
            self.close()
        return chunk

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._done = True


def _detail(response) -> str:
    """The server's one-line ``detail``, else the start of its body."""
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "detail" in doc:
        detail = doc["detail"]
        if not isinstance(detail, str):          # a validation error list
            detail = json.dumps(detail)[:500]
        return detail
    text = " ".join(response.text.split())
    return text[:300] or response.reason_phrase


def base_url(server: str) -> str:
    """``server`` without a trailing ``/`` or ``/api/v1``; :class:`PushError` unless http(s)."""
    url = (server or "").strip().rstrip("/").removesuffix("/api/v1")
    if not url.startswith(("http://", "https://")):
        raise PushError(f"server {server!r}: expected an http:// or https:// URL")
    return url


def check_target(server: str, project: str) -> str:
    """The server's base URL, or :class:`PushError` for a bad URL or project name (checked
    before a run, so that ``run --push`` fails before the audit, not after)."""
    url = base_url(server)
    if not _PROJECT.fullmatch(project or ""):
        raise PushError(f"--project {project!r}: not a valid project name (letters, digits, "
                        "._-, at most 100, starting with a letter or digit)")
    return url


def push(run_dir: Path, *, server: str, project: str, token: str | None = None,
         version: str | None = None, commit: str | None = None,
         labels: Mapping[str, str] | None = None, with_store: bool = True,
         timeout: Mapping[str, float] | None = None) -> PushResult:
    """Upload ``run_dir`` to ``server`` as an audit of ``project``.

    ``commit`` None: the current folder's git commit; ``version`` None: the run's name and
    the short commit. Raises :class:`PushError` (code 2: bad input or refused by the server,
    its ``detail`` in the message; code 4: the server could not be reached or failed).
    """
    import httpx

    run_dir = Path(run_dir)
    url = check_target(server, project)
    findings = read_findings(run_dir)
    commit = default_commit() if commit is None else commit
    version = default_version(findings, run_dir, commit) if version is None else version
    run = findings.get("run") if isinstance(findings.get("run"), dict) else {}
    data = {"version": version, "commit": commit, "name": str(run.get("name") or ""),
            "labels": json.dumps(dict(labels or {}))}
    files = [(rel, _LazyFile(path)) for rel, path in run_files(run_dir, with_store=with_store)]
    total = sum(f.size for _, f in files)
    log.info("pushing %d file(s), %.1f MiB, to %s (project %s)", len(files), total / 2**20,
             url, project)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    endpoint = f"{url}/api/v1/projects/{project}/audits"
    try:
        with httpx.Client(timeout=httpx.Timeout(**(timeout or TIMEOUT)),
                          follow_redirects=False) as client:
            response = client.post(endpoint, data=data, headers=headers,
                                   files=[("file", (rel, f, "application/octet-stream"))
                                          for rel, f in files])
    except httpx.TransportError as exc:
        raise PushError(f"could not reach {url} ({exc.__class__.__name__}: {exc})",
                        EXIT_UNREACHABLE) from None
    finally:
        for _, f in files:
            f.close()
    if response.status_code >= 500:
        raise PushError(f"{url} failed: HTTP {response.status_code}: {_detail(response)}",
                        EXIT_UNREACHABLE)
    if response.status_code >= 300:
        hint = (f" (give --token or set {ENV_TOKEN})"
                if response.status_code == 401 and not token else "")
        raise PushError(f"{url} refused the push: HTTP {response.status_code}: "
                        f"{_detail(response)}{hint}")
    try:
        doc = response.json()
        return PushResult(id=int(doc["id"]), project=str(doc.get("project", project)),
                          verdict=str(doc.get("verdict", "")),
                          release_verdict=str(doc.get("release_verdict", "error")),
                          baseline_id=doc.get("baseline_id"),
                          comparison_verdict=doc.get("comparison_verdict"),
                          comparison_error=doc.get("comparison_error"),
                          url=url + str(doc.get("url") or f"/audits/{doc['id']}"))
    except (ValueError, KeyError, TypeError):
        raise PushError(f"{url} answered HTTP {response.status_code} without an audit id: "
                        f"{_detail(response)}", EXIT_UNREACHABLE) from None
