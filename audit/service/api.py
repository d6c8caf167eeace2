"""The REST API under ``/api/v1`` (``router``) and the raw reports at ``/`` (``reports``).

Reads need :func:`.deps.require_read` (open on loopback or with ``--public-read``), writes a
token that may write to the project. Routes check their input, call one function (a query
below, :mod:`.ingest`, :mod:`.compare_runs`) and answer with the pydantic models here, so
``/api/v1/openapi.json`` documents every path and field. A report (the run's or a
comparison's ``report.html``, as uploaded) is served only with :data:`REPORT_HEADERS`: a
CSP that forbids every network request and sandboxes the page, so script in a hostile
report cannot act on the service's origin.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import IO, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, func, literal, or_, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, defer

from .auth import valid_project_name
from .compare_runs import (
    FAIL_ON,
    baseline_policy,
    comparison,
    parse_gates,
    set_baseline_policy,
)
from .db import Audit, MetricValue, Project, Token
from .deps import get_session, get_state, require_read, require_token, require_write
from .ingest import GATE_METRIC, BadUpload, Entry, store_run
from .state import ServiceState
from .store import UnsafeName, clean_relpath

__all__ = ["KEY_METRICS", "REPORT_HEADERS", "reports", "router"]

router = APIRouter(tags=["audits"])
reports = APIRouter(tags=["reports"])

#: the metrics a project's history lists for each audit (when the run has them), besides
#: the metrics its own gates read
KEY_METRICS = ("coverage.coverage", "coverage.density", "clusters.count",
               "clusters.noise_fraction", "outliers.fraction", "holes.count",
               "duplicates.within_fraction", "entanglement.max_leakage", "bias.flagged")
#: headers of every served report: no network, no plugins, a sandboxed opaque origin
REPORT_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'unsafe-inline'; "
                                "style-src 'unsafe-inline'; img-src data: blob:; "
                                "font-src data:; sandbox allow-scripts"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
#: text fields of the upload form
UPLOAD_FIELDS = ("version", "commit", "name", "labels")
#: most files in one upload (a run folder's files, its stores' parts included)
MAX_UPLOAD_FILES = 20_000
_READ = [Depends(require_read)]


# ---------------------------------------------------------------------------- models
class Error(BaseModel):
    detail: str = Field(description="what was wrong, naming the file or field")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route."""
    what = {400: "bad input", 401: "no valid token", 403: "this token may not write here",
            404: "not found", 409: "conflict", 413: "the upload is too large"}
    return {code: {"model": Error, "description": what[code]} for code in codes}


class Health(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    status: Literal["ok"] = "ok"
    version: str = Field(description="latent-audit's version")
    database: str = Field(description="sqlite or postgresql")
    schema_revision: str | None = Field(alias="schema",
                                        description="the database's Alembic revision")


class LatestAudit(BaseModel):
    id: int
    version: str
    created: datetime
    verdict: str
    release_verdict: str


class ProjectOut(BaseModel):
    name: str
    created: datetime
    audits: int = Field(description="number of audits")
    latest: LatestAudit | None = Field(None, description="the newest audit")
    baseline_audit_id: int | None = None


class ProjectList(BaseModel):
    projects: list[ProjectOut]


class ProjectCreate(BaseModel):
    name: str = Field(description="letters, digits, ._-; 1 to 100, starting with a letter "
                                  "or digit")


class Counts(BaseModel):
    critical: int
    warning: int
    info: int


class AuditSummary(BaseModel):
    id: int
    project: str
    name: str
    version: str
    commit: str
    created: datetime
    source: str = Field(description="push or job")
    verdict: str = Field(description="the run's own verdict (its gates): pass, fail, error")
    release_verdict: str = Field(description="the verdict with the baseline comparison's")
    verdict_reason: str
    counts: Counts
    n: int
    dim: int
    metrics: dict[str, float | None] = Field(
        description="the key metrics the run has, and every metric its gates read")
    gates: dict[str, str] = Field(description="the run's gates: metric -> pass/fail/error")
    baseline: bool = Field(description="this audit is the project's pinned baseline")
    baseline_id: int | None = Field(description="the baseline it was compared with")
    comparison_verdict: str | None
    comparison_error: str | None
    url: str


class AuditPage(BaseModel):
    project: str
    total: int = Field(description="audits in the project")
    limit: int
    offset: int
    baseline_audit_id: int | None
    audits: list[AuditSummary] = Field(description="newest first")


class AuditDetail(AuditSummary):
    labels: dict[str, Any]
    files: list[str]
    has_store: bool = Field(description="stored with its latents (store/): comparable")
    size_bytes: int
    report_url: str | None
    comparison_url: str | None = Field(description="the comparison with its baseline")
    findings: dict[str, Any] = Field(description="findings.json as uploaded "
                                                 "(schema latent-audit/findings/v1)")


class UploadOut(BaseModel):
    id: int
    project: str
    verdict: str
    release_verdict: str
    baseline_id: int | None
    comparison_verdict: str | None
    comparison_error: str | None = None
    url: str


class Gate(BaseModel):
    metric: str
    op: Literal["<=", ">=", "<", ">", "=="]
    threshold: float


class BaselineIn(BaseModel):
    audit_id: int = Field(description="an audit of this project, stored with its store/")
    gates: list[str | dict[str, Any]] | None = Field(
        None, description="gates on the comparison's metrics (compare.*, delta.*): "
                          "'metric op number' or {metric, op, threshold}; omitted: kept")
    fail_on: str | None = Field(None, description="never, warning or critical: also fail "
                                                  "on comparison findings this severe; "
                                                  "omitted: kept")


class BaselineOut(BaseModel):
    project: str
    audit_id: int | None
    gates: list[Gate]
    fail_on: str


class MetricPoint(BaseModel):
    audit_id: int
    version: str
    created: datetime
    value: float | None


class MetricSeries(BaseModel):
    project: str
    name: str | None = Field(None, description="the metric asked for")
    points: list[MetricPoint] | None = Field(None, description="oldest first")
    names: list[str] | None = Field(None, description="without name: the project's metrics")


# ---------------------------------------------------------------------------- queries
def _utc(when: datetime | None) -> datetime | None:
    """A stored time as UTC (SQLite hands it back without its zone)."""
    return when.replace(tzinfo=timezone.utc) if when is not None and when.tzinfo is None \
        else when


def _project(session: Session, name: str) -> Project:
    row = session.scalar(select(Project).where(Project.name == name))
    if row is None:
        raise HTTPException(404, f"project {name!r} does not exist")
    return row


def _audit(session: Session, audit_id: int) -> Audit:
    row = session.get(Audit, audit_id)
    if row is None:
        raise HTTPException(404, f"audit {audit_id} does not exist")
    return row


def _projects(session: Session) -> list[dict[str, Any]]:
    """Every project with its audit count and newest audit: three queries in all."""
    projects = session.scalars(select(Project).order_by(Project.name)).all()
    stats = {pid: (count, newest) for pid, count, newest in session.execute(
        select(Audit.project_id, func.count(Audit.id), func.max(Audit.id))
        .group_by(Audit.project_id))}
    newest_ids = [newest for _, newest in stats.values()]
    latest = {a.id: a for a in session.scalars(
        select(Audit).options(defer(Audit.files), defer(Audit.labels))
        .where(Audit.id.in_(newest_ids)))} if newest_ids else {}
    out = []
    for p in projects:
        count, newest = stats.get(p.id, (0, None))
        a = latest.get(newest)
        out.append({"name": p.name, "created": _utc(p.created), "audits": count,
                    "baseline_audit_id": p.baseline_audit_id,
                    "latest": None if a is None else {
                        "id": a.id, "version": a.version, "created": _utc(a.created),
                        "verdict": a.verdict, "release_verdict": a.release_verdict}})
    return out


def _key_metrics(session: Session, audit_ids: list[int]) -> dict[int, dict[str, Any]]:
    """For each audit: its key metrics, its gates' outcomes and the metrics they read, in
    one query (a metric is read by a gate when a ``gate:<metric>`` row exists)."""
    out: dict[int, dict[str, Any]] = {i: {"metrics": {}, "gates": {}} for i in audit_ids}
    if not audit_ids:
        return out
    m, g = MetricValue, aliased(MetricValue)
    own = (select(m.audit_id, m.name, m.value)
           .where(m.audit_id.in_(audit_ids),
                  or_(m.name.in_(KEY_METRICS), m.name.startswith(GATE_METRIC))))
    gated = (select(m.audit_id, m.name, m.value)
             .join(g, and_(g.audit_id == m.audit_id,
                           g.name == literal(GATE_METRIC) + m.name))
             .where(g.audit_id.in_(audit_ids), g.name.startswith(GATE_METRIC)))
    for audit_id, name, value in session.execute(union_all(own, gated)):
        if name.startswith(GATE_METRIC):
            out[audit_id]["gates"][name[len(GATE_METRIC):]] = (
                "error" if value is None else "pass" if value else "fail")
        else:
            out[audit_id]["metrics"][name] = value
    return out


def _summary(a: Audit, project: Project, extra: dict[str, Any]) -> dict[str, Any]:
    return {"id": a.id, "project": project.name, "name": a.name, "version": a.version,
            "commit": a.commit, "created": _utc(a.created), "source": a.source,
            "verdict": a.verdict, "release_verdict": a.release_verdict,
            "verdict_reason": a.verdict_reason,
            "counts": {"critical": a.critical, "warning": a.warning, "info": a.info},
            "n": a.n, "dim": a.dim, "metrics": extra["metrics"], "gates": extra["gates"],
            "baseline": a.id == project.baseline_audit_id, "baseline_id": a.baseline_id,
            "comparison_verdict": a.comparison_verdict,
            "comparison_error": a.comparison_error, "url": f"/audits/{a.id}"}


def _audit_page(session: Session, project: Project, limit: int, offset: int,
                before: int | None) -> dict[str, Any]:
    """A page of the project's audits, newest first: one query for the rows, one for
    their metrics (and one count)."""
    where = [Audit.project_id == project.id]
    if before is not None:
        where.append(Audit.id < before)
    total = session.scalar(select(func.count(Audit.id)).where(Audit.project_id == project.id))
    rows = session.scalars(select(Audit).options(defer(Audit.files), defer(Audit.labels))
                           .where(*where).order_by(Audit.id.desc())
                           .limit(limit).offset(offset)).all()
    extra = _key_metrics(session, [a.id for a in rows])
    return {"project": project.name, "total": total or 0, "limit": limit, "offset": offset,
            "baseline_audit_id": project.baseline_audit_id,
            "audits": [_summary(a, project, extra[a.id]) for a in rows]}


def _series(session: Session, project: Project, name: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(MetricValue.audit_id, Audit.version, Audit.created, MetricValue.value)
        .join(Audit, Audit.id == MetricValue.audit_id)
        .where(MetricValue.project_id == project.id, MetricValue.name == name)
        .order_by(MetricValue.audit_id))
    return [{"audit_id": i, "version": v, "created": _utc(c), "value": x} for i, v, c, x in rows]


def _metric_names(session: Session, project: Project) -> list[str]:
    return list(session.scalars(
        select(MetricValue.name).distinct()
        .where(MetricValue.project_id == project.id,
               ~MetricValue.name.startswith(GATE_METRIC))
        .order_by(MetricValue.name)))


def _baseline_out(project: Project) -> dict[str, Any]:
    gates, fail_on = baseline_policy(project)
    return {"project": project.name, "audit_id": project.baseline_audit_id, "gates": gates,
            "fail_on": fail_on}


# ---------------------------------------------------------------------------- serving files
def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    with f:
        while chunk := f.read(1 << 20):
            yield chunk


def _artifact(state: ServiceState, key: str, media_type: str,
              headers: dict[str, str]) -> Response:
    """The stored file ``key`` as a response (404 when it is not there)."""
    if not state.store.exists(key):
        raise HTTPException(404, f"{key.rsplit('/', 1)[-1]} is not stored")
    local = state.store.local_path(key)
    if local is not None:
        return FileResponse(local, media_type=media_type, headers=headers)
    return StreamingResponse(_chunks(state.store.open(key)), media_type=media_type,
                             headers=headers)


_MEDIA = {".json": "application/json", ".md": "text/plain; charset=utf-8"}


# ---------------------------------------------------------------------------- routes
@router.get("/health", response_model=Health, response_model_by_alias=True,
            summary="The service is up; its version, database kind and schema revision")
def health(state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    from importlib.metadata import version

    from .migrate import current_revision
    return {"status": "ok", "version": version("latent-audit"),
            "database": state.engine.dialect.name, "schema": current_revision(state.engine)}


@router.get("/projects", response_model=ProjectList, dependencies=_READ,
            responses=_errors(401),
            summary="Every project with its newest audit")
def list_projects(session: Session = Depends(get_session)) -> dict[str, Any]:
    return {"projects": _projects(session)}


@router.post("/projects", response_model=ProjectOut, status_code=201,
             responses=_errors(400, 401, 403, 409),
             summary="Create a project (admin token)")
def create_project(body: ProjectCreate, token: Token = Depends(require_token),
                   session: Session = Depends(get_session)) -> dict[str, Any]:
    if token.project_id is not None:
        raise HTTPException(403, "only an admin token may create projects")
    if not valid_project_name(body.name):
        raise HTTPException(400, f"name: {body.name[:120]!r} is not a valid project name "
                                 "(letters, digits, ._-, 1 to 100, starting with a letter "
                                 "or digit)")
    if session.scalar(select(Project.id).where(Project.name == body.name)) is not None:
        raise HTTPException(409, f"project {body.name!r} exists")
    row = Project(name=body.name)
    session.add(row)
    try:
        session.commit()                   # before the answer (get_session commits after it)
    except IntegrityError:
        session.rollback()
        raise HTTPException(409, f"project {body.name!r} exists") from None
    return {"name": row.name, "created": _utc(row.created), "audits": 0, "latest": None,
            "baseline_audit_id": None}


@router.get("/projects/{project}/audits", response_model=AuditPage, dependencies=_READ,
            responses=_errors(400, 401, 404),
            summary="A project's audits, newest first")
def list_audits(project: str, limit: int = Query(100, description="at most 1000"),
                offset: int = Query(0, description="audits skipped"),
                before: int | None = Query(None, description="only audits with a smaller id"),
                session: Session = Depends(get_session)) -> Response:
    if not 1 <= limit <= 1000:
        raise HTTPException(400, "limit: must be between 1 and 1000")
    if offset < 0:
        raise HTTPException(400, "offset: must not be negative")
    page = _audit_page(session, _project(session, project), limit, offset, before)
    # serialised here in one pass (FastAPI's generic path costs ~4x on 1,000 rows)
    return Response(AuditPage.model_validate(page).model_dump_json(),
                    media_type="application/json")


def _authorize_upload(state: ServiceState, request: Request, project: str) -> None:
    with state.session() as s:
        require_write(project, require_token(request, s), s)


@contextmanager
def _rewound(f: IO[bytes]) -> Iterator[IO[bytes]]:
    f.seek(0)
    yield f


def _form_parts(form) -> tuple[dict[str, Any], list[Entry]]:
    """The upload's text fields and files; :class:`BadUpload` for a part that is not of
    the protocol."""
    fields: dict[str, Any] = {}
    entries: list[Entry] = []
    for key, value in form.multi_items():
        if not isinstance(value, str):                       # a file part
            if key != "file":
                raise BadUpload(f"part {key!r}: files are sent as parts named 'file'")
            entries.append(Entry(name=value.filename or "", open=lambda f=value.file: _rewound(f)))
            continue
        if key == "file":
            raise BadUpload("part 'file' has no filename (each file's filename is its path "
                            "in the run folder)")
        if key not in UPLOAD_FIELDS:
            raise BadUpload(f"field {key!r}: unknown (fields: {', '.join(UPLOAD_FIELDS)}, "
                            "and files as parts named 'file')")
        if key in fields:
            raise BadUpload(f"field {key!r}: given twice")
        fields[key] = value
    if "labels" in fields:
        try:
            labels = json.loads(fields["labels"]) if fields["labels"].strip() else {}
        except ValueError:
            raise BadUpload("labels: not JSON (a JSON object of labels)") from None
        if not isinstance(labels, dict):
            raise BadUpload("labels: must be a JSON object")
        fields["labels"] = labels
    return fields, entries


_UPLOAD_DOC = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {
        "version": {"type": "string", "maxLength": 200},
        "commit": {"type": "string", "maxLength": 100},
        "name": {"type": "string", "maxLength": 200},
        "labels": {"type": "string", "description": "a JSON object"},
        "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                 "description": "each file of the run folder; its filename is its path in "
                                "the folder (findings.json, report.html, summary.md, "
                                "per_sample.parquet, store/..., reference-store/...); "
                                "findings.json is required"}}}}}}}


@router.post("/projects/{project}/audits", response_model=UploadOut, status_code=201,
             responses=_errors(400, 401, 403, 413),
             openapi_extra=_UPLOAD_DOC,
             summary="Upload a finished run folder as an audit (what push sends)")
async def upload_audit(project: str, request: Request,
                       state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    await run_in_threadpool(_authorize_upload, state, request, project)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(400, "the upload must be multipart/form-data")
    form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=len(UPLOAD_FIELDS) + 1,
                              max_part_size=64 * 1024)
    try:
        fields, entries = _form_parts(form)
        return await run_in_threadpool(store_run, state, project, entries, source="push",
                                       **fields)
    except BadUpload as exc:
        raise HTTPException(400, str(exc)) from None
    finally:
        await form.close()


@router.get("/projects/{project}/baseline", response_model=BaselineOut, dependencies=_READ,
            responses=_errors(401, 404),
            summary="The project's pinned baseline and its gates")
def get_baseline(project: str, session: Session = Depends(get_session)) -> dict[str, Any]:
    return _baseline_out(_project(session, project))


@router.put("/projects/{project}/baseline", response_model=BaselineOut,
            responses=_errors(400, 401, 403, 404, 409),
            summary="Pin an audit as the baseline every new audit is compared with")
def put_baseline(project: str, body: BaselineIn, token: Token = Depends(require_token),
                 session: Session = Depends(get_session)) -> dict[str, Any]:
    row = require_write(project, token, session)
    if row is None:
        raise HTTPException(404, f"project {project!r} does not exist")
    audit = _audit(session, body.audit_id)
    if audit.project_id != row.id:
        raise HTTPException(409, f"audit {audit.id} belongs to another project")
    if not audit.has_store:
        raise HTTPException(409, f"audit {audit.id} was stored without its latents (store/): "
                                 "a baseline must be comparable; push it with store/")
    gates, fail_on = baseline_policy(row)
    if body.gates is not None:
        try:
            gates = parse_gates(body.gates)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
    if body.fail_on is not None:
        if body.fail_on not in FAIL_ON:
            raise HTTPException(400, f"fail_on: must be one of {', '.join(FAIL_ON)}")
        fail_on = body.fail_on
    row.baseline_audit_id = audit.id
    set_baseline_policy(row, gates, fail_on)
    session.commit()                       # before the answer (get_session commits after it)
    return _baseline_out(row)


@router.delete("/projects/{project}/baseline", response_model=BaselineOut,
               responses=_errors(401, 403, 404),
               summary="Unpin the baseline (new audits are no longer compared)")
def delete_baseline(project: str, token: Token = Depends(require_token),
                    session: Session = Depends(get_session)) -> dict[str, Any]:
    row = require_write(project, token, session)
    if row is None:
        raise HTTPException(404, f"project {project!r} does not exist")
    row.baseline_audit_id = None
    session.commit()
    return _baseline_out(row)


@router.get("/projects/{project}/metrics", response_model=MetricSeries,
            responses=_errors(401, 404),
            response_model_exclude_none=True, dependencies=_READ,
            summary="A metric's values across the project's audits, oldest first")
def metric_series(project: str,
                  name: str | None = Query(None, description="e.g. coverage.coverage; "
                                                             "omitted: the metric names"),
                  session: Session = Depends(get_session)) -> dict[str, Any]:
    row = _project(session, project)
    if name is None:
        return {"project": row.name, "names": _metric_names(session, row)}
    return {"project": row.name, "name": name, "points": _series(session, row, name)}


@router.get("/audits/{audit_id}", response_model=AuditDetail, dependencies=_READ,
            responses=_errors(401, 404),
            summary="An audit's metadata and its findings document")
def get_audit(audit_id: int, state: ServiceState = Depends(get_state),
              session: Session = Depends(get_session)) -> dict[str, Any]:
    a = _audit(session, audit_id)
    project = session.get(Project, a.project_id)
    doc = json.loads(state.store.read_bytes(f"{a.prefix}/findings.json"))
    return {**_summary(a, project, _key_metrics(session, [a.id])[a.id]),
            "labels": a.labels or {}, "files": a.files or [], "has_store": a.has_store,
            "size_bytes": a.size_bytes,
            "report_url": f"/audits/{a.id}/report" if "report.html" in (a.files or []) else None,
            "comparison_url": (f"/compare/report?baseline={a.baseline_id}&candidate={a.id}"
                               if a.comparison_verdict is not None else None),
            "findings": doc}


@router.get("/audits/{audit_id}/files/{path:path}", dependencies=_READ,
            response_class=Response, summary="Download one file of an audit's run folder",
            responses={200: {"content": {"application/octet-stream": {}}},
                       **_errors(400, 401, 404)})
def get_audit_file(audit_id: int, path: str, state: ServiceState = Depends(get_state),
                   session: Session = Depends(get_session)) -> Response:
    try:
        rel = clean_relpath(path)
    except UnsafeName as exc:
        raise HTTPException(400, f"path: {exc}") from None
    a = _audit(session, audit_id)
    if rel not in (a.files or []):
        raise HTTPException(404, f"audit {a.id} has no file {rel!r}")
    suffix = "." + rel.rsplit(".", 1)[-1] if "." in rel else ""
    filename = rel.rsplit("/", 1)[-1]
    return _artifact(state, f"{a.prefix}/{rel}", _MEDIA.get(suffix, "application/octet-stream"),
                     {**REPORT_HEADERS,
                      "Content-Disposition": f'attachment; filename="{filename}"'})


def _comparison(state: ServiceState, baseline: int, candidate: int) -> dict[str, Any]:
    try:
        return comparison(state, baseline, candidate)
    except LookupError as exc:
        raise HTTPException(404, str(exc).strip("'\"")) from None
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/compare", response_model=dict[str, Any], dependencies=_READ,
            responses=_errors(401, 404, 409),
            summary="The comparison document of two audits (schema latent-audit/comparison/v1)")
def get_comparison(baseline: int = Query(description="the baseline audit's id"),
                   candidate: int = Query(description="the candidate audit's id"),
                   state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    return _comparison(state, baseline, candidate)["json"]


_HTML = {200: {"content": {"text/html": {}}, "description": "the report, sandboxed"},
         **_errors(401, 404, 409)}


@reports.get("/audits/{audit_id}/report", dependencies=_READ, response_class=Response,
             responses=_HTML, summary="An audit's HTML report (sandboxed, no network)")
def audit_report(audit_id: int, state: ServiceState = Depends(get_state),
                 session: Session = Depends(get_session)) -> Response:
    a = _audit(session, audit_id)
    if "report.html" not in (a.files or []):
        raise HTTPException(404, f"audit {a.id} was stored without report.html")
    return _artifact(state, f"{a.prefix}/report.html", "text/html; charset=utf-8",
                     REPORT_HEADERS)


@reports.get("/compare/report", dependencies=_READ, response_class=Response, responses=_HTML,
             summary="The HTML report comparing two audits (sandboxed, no network)")
def comparison_report(baseline: int = Query(description="the baseline audit's id"),
                      candidate: int = Query(description="the candidate audit's id"),
                      state: ServiceState = Depends(get_state)) -> Response:
    key = _comparison(state, baseline, candidate)["report_key"]
    if key is None:
        raise HTTPException(404, "this comparison has no HTML report")
    return _artifact(state, key, "text/html; charset=utf-8", REPORT_HEADERS)
