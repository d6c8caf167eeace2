"""The job routes under ``/api/v1``: submit an audit for the server to run, follow it,
cancel it.

``POST /projects/{project}/jobs`` checks the config (:mod:`.job_config`: valid, data only
inside ``--data-root``, no code without ``--allow-code``) and queues it; the job runner
(:mod:`.jobs`) runs it. Reads are open like every read of the API; submitting and
cancelling need a token that may write to the job's project.
"""
from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from .auth import get_or_create_project, valid_project_name
from .db import JOB_DONE, Project, Token
from .deps import get_session, get_state, require_read, require_token, require_write
from .job_config import (
    MAX_CONFIG_BYTES,
    JobConfigError,
    parse_config_yaml,
    validate_job_config,
)
from .jobs import JOB_STATUSES, cancel_job, create_job, get_job, job_doc, list_jobs
from .state import ServiceState

__all__ = ["JobOut", "JobRequest", "router"]

router = APIRouter(tags=["jobs"])

MAX_LABELS_BYTES = 8192
#: the largest request body of a submission (the config is a few kilobytes)
MAX_BODY_BYTES = 2 * MAX_CONFIG_BYTES

Status = Literal["queued", "running", "cancelling", "succeeded", "failed", "cancelled"]


class JobRequest(BaseModel):
    """A job: the audit config (as a mapping, or as YAML text), version and labels."""
    model_config = ConfigDict(extra="forbid")
    config: dict[str, Any] | None = Field(
        None, description="the audit config, as in a YAML file for `latent-audit run`; "
                          "relative data paths are relative to the first --data-root")
    config_yaml: str | None = Field(None, description="the same config as YAML text")
    version: str = Field("", max_length=200, description="the model's version")
    labels: dict[str, Any] = Field(default_factory=dict,
                                   description="labels stored with the audit")


class JobCreated(BaseModel):
    id: int
    status: Status
    url: str


class JobOut(BaseModel):
    id: int
    project: str
    status: Status
    progress: float = Field(description="0 to 1: stages done / stages of the run")
    stage: str = Field(description="what the audit is doing")
    log_tail: str = Field(description="the last lines of the audit's log")
    error: str = Field(description="why a job failed")
    audit_id: int | None = Field(description="the stored audit, once the job is done")
    audit_url: str | None
    version: str
    labels: dict[str, Any]
    created: str | None
    started: str | None
    finished: str | None
    heartbeat: str | None
    worker: str = Field(description="host:server-pid:worker[:audit-pid] running it")
    config: dict[str, Any] = Field(description="the config as the job runs it")
    url: str


class JobList(BaseModel):
    jobs: list[JobOut]


def _bad(detail: str, status: int = 400) -> HTTPException:
    return HTTPException(status, detail)


async def _read_request(request: Request) -> JobRequest:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise _bad(f"the job request is larger than {MAX_BODY_BYTES} bytes", 413)
    try:
        data = json.loads(body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"the body is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise _bad('the body must be a JSON object: {"config": {...}} or '
                   '{"config_yaml": "..."}')
    try:
        req = JobRequest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "body"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise _bad(f"{key}: {msg}") from None
    if (req.config is None) == (req.config_yaml is None):
        raise _bad("give exactly one of config (a mapping) and config_yaml (YAML text)")
    try:
        size = len(json.dumps(req.labels, allow_nan=False))
    except (TypeError, ValueError):
        raise _bad("labels: must be a JSON object of plain values") from None
    if size > MAX_LABELS_BYTES:
        raise _bad(f"labels: larger than {MAX_LABELS_BYTES} bytes of JSON")
    return req


def _submit(project: str, row: Project | None, req: JobRequest, session: Session,
            state: ServiceState) -> int:
    """Check the config and queue the job; returns its id."""
    try:
        raw = (req.config if req.config is not None
               else parse_config_yaml(req.config_yaml or ""))
        config = validate_job_config(raw, state.settings)
    except JobConfigError as exc:
        raise _bad(exc.message, exc.status) from None
    if row is None:                        # an admin token creates the project
        row = get_or_create_project(session, project)
    job = create_job(session, row, config, version=req.version, labels=req.labels)
    session.commit()
    return job.id


@router.post("/projects/{project}/jobs", status_code=201, response_model=JobCreated,
             summary="Submit an audit for the server to run",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": JobRequest.model_json_schema()}}}},
             responses={400: {"description": "invalid config, or data outside --data-root"},
                        401: {"description": "no valid token"},
                        403: {"description": "the token may not write to this project, or "
                                             "the config runs code (encoder.factory) on a "
                                             "server without --allow-code"}})
async def submit_job(project: str, request: Request, token: Token = Depends(require_token),
                     session: Session = Depends(get_session),
                     state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """Queue an audit: the config's data must lie inside the server's ``--data-root``
    folders; the server picks the output folder. Poll the returned ``url``."""
    if not valid_project_name(project):
        raise _bad(f"project: {project!r} is not a valid project name (letters, digits, "
                   "._-, at most 100, starting with a letter or digit)")
    row = await run_in_threadpool(require_write, project, token, session)
    req = await _read_request(request)
    job_id = await run_in_threadpool(_submit, project, row, req, session, state)
    if state.runner is not None:
        state.runner.wake()
    return {"id": job_id, "status": "queued", "url": f"/api/v1/jobs/{job_id}"}


@router.get("/jobs", response_model=JobList, dependencies=[Depends(require_read)],
            summary="The job queue, newest first")
def get_jobs(project: str | None = Query(None, description="only this project's jobs"),
             status: str | None = Query(None, description="only these statuses, "
                                                          "comma-separated"),
             limit: int = Query(50, ge=1, le=1000),
             session: Session = Depends(get_session)) -> dict[str, Any]:
    wanted = [s.strip() for s in status.split(",") if s.strip()] if status else None
    bad = [s for s in wanted or [] if s not in JOB_STATUSES]
    if bad:
        raise _bad(f"status: {bad[0]!r} is not a job status ({', '.join(JOB_STATUSES)})")
    return {"jobs": list_jobs(session, project=project, status=wanted, limit=limit)}


@router.get("/jobs/{job_id}", response_model=JobOut, dependencies=[Depends(require_read)],
            summary="A job: status, progress, stage, log tail, error, audit")
def get_one_job(job_id: int, session: Session = Depends(get_session)) -> dict[str, Any]:
    found = get_job(session, job_id)
    if found is None:
        raise _bad(f"job {job_id} not found", 404)
    return job_doc(*found)


@router.delete("/jobs/{job_id}", response_model=JobOut,
               summary="Cancel a job",
               responses={200: {"description": "a queued job, cancelled"},
                          202: {"description": "a running job, being cancelled (it is "
                                               "killed within seconds)"},
                          409: {"description": "the job has already finished"}})
def delete_job(job_id: int, token: Token = Depends(require_token),
               session: Session = Depends(get_session)) -> Any:
    """Cancel: a queued job becomes ``cancelled`` at once; a running one ``cancelling``,
    then ``cancelled`` once its audit is killed; a finished one is left as it is (409)."""
    found = get_job(session, job_id)
    if found is None:
        raise _bad(f"job {job_id} not found", 404)
    job, project = found
    require_write(project, token, session)
    if job.status in JOB_DONE:
        raise _bad(f"job {job_id} has already finished ({job.status})", 409)
    new = cancel_job(session, job_id)
    session.commit()
    if new is None:
        raise _bad(f"job {job_id} has already finished", 409)
    session.refresh(job)
    return JSONResponse(job_doc(job, project), status_code=200 if new == "cancelled" else 202)
