"""Helpers shared by the service tests: push a run folder, seed many audits quickly.

``push_run`` goes through the real upload route (what ``latent-audit push`` sends);
``seed_audits`` writes rows straight into a server's database with the models, for tests
that need many audits and no artifacts (start or restart the server afterwards when the
data must be there from its first request; SQLite and PostgreSQL both see committed rows
at once anyway).
"""
from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

__all__ = ["push_run", "run_files", "seed_audits", "seed_jobs", "server_state"]


def run_files(folder: Path, *, store: bool = True) -> list[str]:
    """Every file of a run folder, as ``/``-separated paths relative to it (the upload's
    part file names); without ``store`` the ``store/`` folder is left out."""
    folder = Path(folder)
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return [n for n in names if store or not n.startswith("store/")]


def push_run(server, project: str, folder: Path, version: str, *, commit: str = "",
             labels: dict[str, Any] | None = None, name: str = "", token: str | None = None,
             store: bool = True, expect: int = 201, timeout: float = 600) -> dict[str, Any]:
    """Upload ``folder`` to ``server`` as an audit of ``project`` (multipart: fields
    ``version``/``commit``/``name``/``labels``, one ``file`` part per file named by its
    relative path), with the admin token unless ``token``. Asserts the status is
    ``expect`` and returns the response's JSON."""
    folder = Path(folder)
    data = {"version": version, "commit": commit}
    if name:
        data["name"] = name
    if labels is not None:
        data["labels"] = json.dumps(labels)
    with ExitStack() as stack:
        files = [("file", (rel, stack.enter_context(open(folder / rel, "rb")),
                           "application/octet-stream"))
                 for rel in run_files(folder, store=store)]
        with server.client(token or server.admin, timeout=timeout) as c:
            r = c.post(f"/api/v1/projects/{project}/audits", data=data, files=files)
    assert r.status_code == expect, (r.status_code, r.text[:2000])
    return r.json()


def server_state(server):
    """A :class:`ServiceState` on ``server``'s home and database (close with
    ``state.engine.dispose()``)."""
    from audit.service.settings import ServeSettings
    from audit.service.state import open_state
    return open_state(ServeSettings(home=server.home, database=server.database))


def seed_audits(state, project: str, n: int, *, metrics: dict[str, float] | None = None,
                version: str = "1.0.{i}", labels: dict[str, Any] | None = None,
                baseline: int | None = None, start: datetime | None = None) -> list[int]:
    """``n`` audit rows of ``project`` (created if needed), one hour apart, each with the
    metrics ``metrics`` (value + i/1000), in one bulk insert; ``baseline`` pins the
    ``baseline``-th (0-based) as the project's baseline. Returns the ids, oldest first.
    The audits have no artifacts."""
    from sqlalchemy import insert

    from audit.service.auth import get_or_create_project
    from audit.service.db import Audit, MetricValue

    metrics = {"coverage.coverage": 0.9, "outliers.fraction": 0.02,
               "clusters.count": 3.0} if metrics is None else metrics
    start = start or datetime(2024, 1, 1, tzinfo=timezone.utc)
    with state.session() as s:
        p = get_or_create_project(s, project)
        rows = [{"project_id": p.id, "name": f"{project}-{i}",
                 "version": version.format(i=i), "commit": f"{i:07x}",
                 "labels": labels or {}, "created": start + timedelta(hours=i),
                 "source": "push", "verdict": "fail" if i % 7 == 3 else "pass",
                 "release_verdict": "fail" if i % 7 == 3 else "pass",
                 "verdict_reason": "seeded", "critical": i % 3, "warning": i % 5, "info": 1,
                 "n": 400, "dim": 6, "prefix": "", "files": [],
                 "has_store": False, "size_bytes": 0} for i in range(n)]
        ids = list(s.scalars(insert(Audit).returning(Audit.id, sort_by_parameter_order=True),
                             rows))
        values = [{"audit_id": ids[i], "project_id": p.id, "name": k, "value": v + i / 1000}
                  for i in range(n) for k, v in metrics.items()]
        if values:
            s.execute(insert(MetricValue), values)
        if baseline is not None:
            p.baseline_audit_id = ids[baseline]
    return ids


def seed_jobs(state, project: str, jobs: list[dict[str, Any]]) -> list[int]:
    """Job rows of ``project`` with the given fields (status, progress, stage, error,
    audit_id, ...); returns their ids in order."""
    from audit.service.auth import get_or_create_project
    from audit.service.db import Job

    with state.session() as s:
        p = get_or_create_project(s, project)
        rows = [Job(project_id=p.id, config={"seeded": True}, **fields) for fields in jobs]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]
