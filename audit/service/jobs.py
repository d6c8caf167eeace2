"""The job queue: audits the server runs from submitted configs.

The queue is the ``jobs`` table (SQLite or PostgreSQL). ``JobRunner`` starts
``settings.workers`` worker threads; each claims the oldest queued job with an
``UPDATE ... WHERE status = 'queued'`` that must change exactly one row (so two workers,
or two servers on one PostgreSQL, never run the same job), and runs it as
``latent-audit run CONFIG --out DIR`` in a child process of its own session (locally, or
inside a Ray task with ``--engine ray``): a crash in an audit never takes the server down,
and a cancel kills the whole process group. Every half second the worker writes a
heartbeat, the progress and stage read from the audit's log, and the log's tail, and
looks for a cancel request (``DELETE`` sets ``cancelling``). A finished run (exit 0, or 1:
a gate failed) is stored as an audit with :func:`.ingest.ingest_folder`.

What a restart keeps:

- queued jobs stay queued and are picked up by the next server;
- ``stop()`` (a clean shutdown: SIGTERM, Ctrl-C) kills running audits and puts their jobs
  back in the queue, to run again from the start: a shutdown loses no job, only the
  minutes already spent on it;
- a job left running by a server that died (SIGKILL, a crash, the machine) is found on
  the next ``start()`` (its worker names this host and a process that is gone) or by the
  reaper of any server sharing the database (no heartbeat for two minutes), and is marked
  failed with the reason; an audit child it left behind is killed.

Each job's files live in ``<home>/cache/jobs/<id>/``: ``config.yaml`` (the validated
config), ``log.txt`` (the audit's output) and, while it runs, ``run/`` (the output folder)
and ``cache/`` (its encoding cache); ``run/`` and ``cache/`` are deleted once the audit is
stored.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import yaml
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .audit_process import (HOST, AuditProcess, alive, kill_group,
                            proc_cmdline)
from .db import JOB_ACTIVE, JOB_DONE, Job, Project, utcnow
from .state import ServiceState

__all__ = [
    "JOB_STATUSES",
    "STALE_AFTER_S",
    "JobRunner",
    "LogProgress",
    "cancel_job",
    "create_job",
    "job_doc",
    "last_error",
    "list_jobs",
]

log = logging.getLogger("audit")

JOB_STATUSES = JOB_ACTIVE + JOB_DONE
RUNNING = ("running", "cancelling")
#: a running job whose heartbeat is older than this is taken for dead (any server reaps it)
STALE_AFTER_S = 120.0
#: how often the reaper looks for stale jobs, and a worker for queued ones when idle
REAP_EVERY_S = 30.0
IDLE_POLL_S = 1.0
#: how often a running job's heartbeat, progress and log tail are written
TICK_S = 0.5
#: lines of the log kept in ``log_tail``
TAIL_LINES = 50
_LINE_MAX = 500



def worker_died(project: str) -> str:
    return ("worker died: the server stopped while the job ran (restart it with "
            f"POST /api/v1/projects/{project}/jobs)")


# ---- the queue, as the API sees it ------------------------------------------------------

def _iso(dt: datetime | None) -> str | None:
    """Database times as ISO 8601 in UTC (SQLite hands them back naive)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds")


def job_doc(job: Job, project: str) -> dict[str, Any]:
    """The JSON of one job (``GET /api/v1/jobs/{id}``)."""
    return {"id": job.id, "project": project, "status": job.status,
            "progress": round(float(job.progress or 0.0), 4), "stage": job.stage or "",
            "log_tail": job.log_tail or "", "error": job.error or "",
            "audit_id": job.audit_id,
            "audit_url": f"/audits/{job.audit_id}" if job.audit_id is not None else None,
            "version": job.version or "", "labels": job.labels or {},
            "created": _iso(job.created), "started": _iso(job.started),
            "finished": _iso(job.finished), "heartbeat": _iso(job.heartbeat),
            "worker": job.worker or "", "config": job.config,
            "url": f"/api/v1/jobs/{job.id}"}


def create_job(session: Session, project: Project, config: dict[str, Any], *,
               version: str = "", labels: dict[str, Any] | None = None) -> Job:
    """Queue a job (``config`` already validated by :mod:`.job_config`)."""
    job = Job(project_id=project.id, status="queued", config=config, version=version,
              labels=dict(labels or {}), stage="queued", created=utcnow())
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: int) -> tuple[Job, str] | None:
    """The job and its project's name, or None."""
    row = session.execute(select(Job, Project.name).join(Project, Project.id == Job.project_id)
                          .where(Job.id == job_id)).first()
    return (row[0], row[1]) if row else None


def list_jobs(session: Session, *, project: str | None = None,
              status: list[str] | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Jobs, newest first, optionally of one project and of some statuses."""
    q = select(Job, Project.name).join(Project, Project.id == Job.project_id)
    if project is not None:
        q = q.where(Project.name == project)
    if status:
        q = q.where(Job.status.in_(status))
    rows = session.execute(q.order_by(Job.id.desc()).limit(limit)).all()
    return [job_doc(job, name) for job, name in rows]


def cancel_job(session: Session, job_id: int) -> str | None:
    """Ask for a job to stop: a queued job is cancelled at once, a running one is marked
    ``cancelling`` (its worker kills the audit within a second or so). Returns the new
    status, or None when the job had already finished."""
    now = utcnow()
    done = session.execute(update(Job).where(Job.id == job_id, Job.status == "queued")
                           .values(status="cancelled", finished=now, stage="cancelled")
                           .execution_options(synchronize_session=False))
    if done.rowcount == 1:
        return "cancelled"
    asked = session.execute(update(Job).where(Job.id == job_id, Job.status.in_(RUNNING))
                            .values(status="cancelling", stage="cancelling")
                            .execution_options(synchronize_session=False))
    return "cancelling" if asked.rowcount == 1 else None


# ---- reading an audit's log -------------------------------------------------------------

_STAMP = re.compile(r"^\[\s*[\d.]+s\]\s?")
_CHECK = re.compile(r"^check (\S+?)(?: \.\.\.$|: skipped)")
_COUNTER = re.compile(r"^(.+?): (\d+)/(\d+) .*\((\d+)%")
_GEOMETRY = re.compile(r"^geometry: (\S+) \.\.\.$")
_VERDICT = re.compile(r"^latent-audit: (PASS|FAIL|ERROR):")
_ERROR = re.compile(r"^latent-audit: (internal )?error: ")
_CHECK_FAILED = re.compile(r"^check \S+ failed: ")


class LogProgress:
    """Progress of ``latent-audit run`` read from its log, as stages done / stages total.

    The stages are the pipeline's own log lines: loading the data (with its encoder's
    ``done/total`` counters inside), the geometry, each enabled check (``check NAME ...``
    or ``check NAME: skipped``), the baseline comparison when there is one, writing the
    outputs (done when the verdict line appears) and storing the audit (done by the
    worker). A stage counts as done when the next one starts, so the number never runs
    ahead of the work.

    >>> p = LogProgress(n_checks=2)
    >>> p.feed("[   0.0s] loading data"); p.stage
    'loading data'
    >>> p.feed("[   0.1s] data: 400 × 6"); p.feed("[   0.3s] check clusters ...")
    >>> round(p.progress, 3), p.stage
    (0.333, 'check clusters (1/2)')
    """

    def __init__(self, n_checks: int, *, baseline: bool = False) -> None:
        self.n_checks = max(int(n_checks), 1)
        self.baseline = baseline
        self.total = 2 + self.n_checks + int(baseline) + 2
        self.done = 0.0
        self.part = 0.0                 # fraction of the running stage, from a counter
        self.checks = 0
        self.stage = "starting"

    @property
    def progress(self) -> float:
        return min((self.done + self.part) / self.total, (self.total - 1) / self.total)

    def _reach(self, done: float, stage: str) -> None:
        if done > self.done:
            self.done, self.part = done, 0.0
        self.stage = stage

    def feed(self, line: str) -> None:
        msg = _STAMP.sub("", line.rstrip())
        if not msg:
            return
        n = self.n_checks
        if msg == "loading data":
            self._reach(0, "loading data")
        elif msg.startswith("data: ") and "×" in msg:
            self._reach(1, "geometry")
        elif (m := _GEOMETRY.match(msg)) and self.checks == 0:
            self._reach(1, f"geometry: {m.group(1)}")
        elif m := _CHECK.match(msg):
            self.checks = min(self.checks + 1, n)
            self._reach(2 + self.checks - 1, f"check {m.group(1)} ({self.checks}/{n})")
        elif msg.startswith("comparing with the baseline"):
            self._reach(2 + n, "comparing with the baseline")
        elif _VERDICT.match(msg) or msg.startswith("gate "):
            self._reach(self.total - 1, "storing the audit")
        elif (m := _COUNTER.match(msg)) and self.done < 2:
            total = int(m.group(3))
            self.part = min(int(m.group(2)) / total, 1.0) * 0.99 if total else 0.0
            self.stage = f"loading data: {m.group(1)} {m.group(2)}/{m.group(3)}"
        elif msg.startswith("encoder: ") and self.done < 1:
            self.stage = msg[:200]


def last_error(lines: list[str], code: int | None) -> str:
    """The reason a run failed, from its log: the CLI's ``error:`` line, else the last line
    (a traceback's exception), with the exit code or the signal that ended it."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        why = f"the audit process was killed by {name}"
        return why + (" (out of memory?)" if name == "SIGKILL" else "")
    text = [_STAMP.sub("", x).strip() for x in lines if x.strip()]
    found = next((x for x in reversed(text) if _ERROR.match(x)), None)
    if found is None:                           # exit 3: the check that errored
        found = next((x for x in reversed(text) if _CHECK_FAILED.match(x)), None)
    if found is None:
        found = next((x for x in reversed(text) if not x.startswith("latent-audit serve:")),
                     None)
    prefix = f"exit {code}: " if code is not None else ""
    return prefix + (found[:_LINE_MAX] if found else "the audit wrote no log")


class _LogReader:
    """Follows a log file: new complete lines go to a :class:`LogProgress`, the last
    ``TAIL_LINES`` are kept."""

    def __init__(self, path: Path, progress: LogProgress) -> None:
        self.path, self.progress = path, progress
        self.offset = 0
        self.partial = b""
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def read(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(8 << 20)
        except OSError:
            return
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            for part in line.split("\r"):           # a progress bar's carriage returns
                if part.strip():
                    self.tail.append(part[:_LINE_MAX])
                    self.progress.feed(part)

    def finish(self) -> None:
        self.read()
        if self.partial:
            self.partial += b"\n"
            self.read()

    @property
    def text(self) -> str:
        return "\n".join(self.tail)


class _Handle(Protocol):
    pid: int | None
    error: str | None

    def poll(self) -> int | None: ...
    def kill(self, grace: float = ...) -> None: ...
    def result_folder(self) -> Path: ...
    def cleanup(self) -> None: ...


class LocalEngine:
    """Jobs run as child processes of this server."""

    def launch(self, job_id: int, job_dir: Path, config_text: str) -> _Handle:
        return AuditProcess(job_dir / "config.yaml", job_dir / "run", job_dir / "log.txt",
                            cwd=job_dir)

    def shutdown(self) -> None:
        pass


def _n_checks(config: dict[str, Any]) -> int:
    """How many checks the run has (the config's, else the default ones)."""
    if isinstance(config.get("checks"), dict):
        return len(config["checks"])
    try:
        from ..checks import default_checks
        return len(default_checks(generator=bool(config.get("generator"))))
    except Exception:  # noqa: BLE001 - only the progress bar's denominator
        return 7


def _parse_worker(worker: str) -> tuple[str, int | None, int | None]:
    """``host:server_pid:index[:child_pid]`` -> (host, server pid, child pid)."""
    parts = (worker or "").split(":")
    def num(i: int) -> int | None:
        return int(parts[i]) if len(parts) > i and parts[i].isdigit() else None
    return parts[0], num(1), num(3)


# ---- the runner ---------------------------------------------------------------------

class JobRunner:
    """Worker threads that run queued jobs; a reaper of jobs whose worker died.

    ``start()`` recovers what a previous server left running, then starts
    ``settings.workers`` workers (none with ``--workers 0``: jobs are accepted and stay
    queued) and the reaper. ``stop()`` stops claiming, kills running audits and puts their
    jobs back in the queue.
    """

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.settings = state.settings
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.engine: Any = None

    # -- life cycle
    def start(self) -> None:
        self._stopping.clear()
        try:
            self.reap(startup=True)
        except Exception:  # noqa: BLE001 - never keep a server from starting
            log.exception("jobs: could not look for jobs a previous server left running")
        if self.settings.workers > 0:
            if self.settings.engine == "ray":
                from .ray_jobs import RayEngine, check_engine
                try:
                    check_engine(self.settings)     # serve() refuses this before starting
                except Exception as exc:  # noqa: BLE001 - jobs will fail, saying why
                    log.error("jobs: %s", exc)
                self.engine = RayEngine(self.state)
            else:
                self.engine = LocalEngine()
        for i in range(self.settings.workers):
            self._spawn(self._work, f"latent-audit-job-worker-{i}", i)
        self._spawn(self._reaper, "latent-audit-job-reaper")

    def _spawn(self, target, name: str, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop claiming; kill running audits and queue their jobs again."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(timeout=max(deadline - time.monotonic(), 0.1))
        self._threads.clear()
        if self.engine is not None:
            self.engine.shutdown()

    def wake(self) -> None:
        """A job was queued: idle workers look at once instead of at their next poll."""
        self._wake.set()

    def job_dir(self, job_id: int) -> Path:
        return self.state.cache / "jobs" / str(job_id)

    # -- dead workers
    def reap(self, *, startup: bool = False) -> int:
        """Fail (or, when a cancel was asked, cancel) running jobs whose worker is gone:
        no heartbeat for ``STALE_AFTER_S``, or, at ``startup``, a worker of this host whose
        server process no longer runs. Returns how many were reaped."""
        cutoff = utcnow() - timedelta(seconds=STALE_AFTER_S)
        with self.state.session() as s:
            stale = set(s.scalars(select(Job.id).where(
                Job.status.in_(RUNNING),
                or_(Job.heartbeat.is_(None), Job.heartbeat < cutoff))))
            rows = s.execute(select(Job.id, Job.status, Job.worker, Project.name)
                             .join(Project, Project.id == Job.project_id)
                             .where(Job.status.in_(RUNNING))).all()
        reaped = 0
        for job_id, status, worker, project in rows:
            host, pid, child = _parse_worker(worker)
            gone_here = startup and host == HOST and (
                pid is None or pid == os.getpid() or not alive(pid))
            if job_id not in stale and not gone_here:
                continue
            why = (worker_died(project) if gone_here else
                   f"worker died: no heartbeat from {worker or 'its worker'} for "
                   f"{STALE_AFTER_S:.0f} s (resubmit with POST /api/v1/projects/{project}/jobs)")
            new = "cancelled" if status == "cancelling" else "failed"
            with self.state.session() as s:
                res = s.execute(update(Job).where(Job.id == job_id, Job.status == status,
                                                  Job.worker == worker)
                                .values(status=new, finished=utcnow(), stage=new,
                                        error="" if new == "cancelled" else why)
                                .execution_options(synchronize_session=False))
            if res.rowcount == 1:
                reaped += 1
                log.warning("jobs: job %d %s: %s", job_id, new, why)
                if host == HOST and child is not None:
                    self._kill_orphan(job_id, child)
        return reaped

    def _kill_orphan(self, job_id: int, child: int) -> None:
        """Kill an audit a dead server left running, if that pid is still that audit."""
        cmd = proc_cmdline(child)
        if cmd is not None and f"{os.sep}jobs{os.sep}{job_id}{os.sep}" in cmd:
            kill_group(child, signal.SIGKILL)
            log.warning("jobs: killed the audit (pid %d) job %d left running", child, job_id)

    def _reaper(self) -> None:
        while not self._stopping.wait(REAP_EVERY_S):
            try:
                self.reap()
            except Exception:  # noqa: BLE001 - a database hiccup: try again later
                log.exception("jobs: the reaper failed")

    # -- workers
    def _work(self, index: int) -> None:
        base = f"{HOST}:{os.getpid()}:{index}"
        while not self._stopping.is_set():
            try:
                job_id = self._claim(base)
            except Exception:  # noqa: BLE001 - the database went away: retry
                log.exception("jobs: could not claim a job")
                job_id = None
            if job_id is None:
                self._wake.wait(IDLE_POLL_S)
                self._wake.clear()
                continue
            try:
                self._run(job_id, base)
            except Exception as exc:  # noqa: BLE001 - a bug here must not kill the worker
                log.exception("jobs: job %d: internal error", job_id)
                self._fail_internal(job_id, base, exc)

    def _claim(self, worker: str) -> int | None:
        """Take the oldest queued job: the conditional UPDATE changes one row for exactly
        one claimant, on SQLite and PostgreSQL alike."""
        with self.state.session() as s:
            ids = s.scalars(select(Job.id).where(Job.status == "queued")
                            .order_by(Job.id).limit(8)).all()
            for job_id in ids:
                now = utcnow()
                res = s.execute(update(Job).where(Job.id == job_id, Job.status == "queued")
                                .values(status="running", worker=worker, started=now,
                                        heartbeat=now, finished=None, progress=0.0,
                                        stage="starting", error="", log_tail="",
                                        audit_id=None)
                                .execution_options(synchronize_session=False))
                if res.rowcount == 1:
                    return job_id
        return None

    def _update(self, job_id: int, owner: str, **values: Any) -> str | None:
        """Write a running job's fields (and its heartbeat) if ``owner`` still runs it;
        returns its status, or None when it is not ours any more (reaped, or finished)."""
        with self.state.session() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.worker == owner,
                                              Job.status.in_(RUNNING))
                            .values(heartbeat=utcnow(), **values)
                            .execution_options(synchronize_session=False))
            if res.rowcount != 1:
                return None
            return s.scalar(select(Job.status).where(Job.id == job_id))

    def _finish(self, job_id: int, worker: str, status: str, **values: Any) -> bool:
        now = utcnow()
        with self.state.session() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.worker == worker,
                                              Job.status.in_(RUNNING))
                            .values(status=status, finished=now, heartbeat=now,
                                    **{"stage": status, **values})
                            .execution_options(synchronize_session=False))
        log.info("jobs: job %d %s%s", job_id, status,
                 f": {values['error']}" if values.get("error") else "")
        return res.rowcount == 1

    def _fail_internal(self, job_id: int, base: str, exc: Exception) -> None:
        """A bug in the runner itself: the job fails with it (whatever pid it recorded)."""
        try:
            with self.state.session() as s:
                s.execute(update(Job).where(Job.id == job_id, Job.status.in_(RUNNING),
                                            or_(Job.worker == base,
                                                Job.worker.startswith(base + ":")))
                          .values(status="failed", finished=utcnow(), stage="failed",
                                  error=f"internal error: {exc.__class__.__name__}: {exc}")
                          .execution_options(synchronize_session=False))
        except Exception:  # noqa: BLE001 - the reaper will fail it later
            log.exception("jobs: job %d: could not record the internal error", job_id)

    def _requeue(self, job_id: int, worker: str) -> None:
        """The server is stopping: the job goes back to the queue (or, when a cancel was
        asked, is cancelled)."""
        with self.state.session() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.worker == worker,
                                              Job.status == "running")
                            .values(status="queued", worker="", started=None, heartbeat=None,
                                    progress=0.0, stage="queued again: the server stopped "
                                                        "while it ran")
                            .execution_options(synchronize_session=False))
        if res.rowcount != 1:
            self._finish(job_id, worker, "cancelled")
        else:
            log.info("jobs: job %d queued again (the server is stopping)", job_id)

    def _prepare(self, job_id: int) -> tuple[Path, dict[str, Any], str, str, dict]:
        with self.state.session() as s:
            job, project = get_job(s, job_id)  # type: ignore[misc]
            config, version, labels = dict(job.config), job.version, dict(job.labels or {})
        folder = self.job_dir(job_id)
        shutil.rmtree(folder / "run", ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        if config.get("cache") is not False:        # the job's own encoding cache
            config["cache"] = str((folder / "cache").resolve())
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        (folder / "config.yaml").write_text(text, encoding="utf-8")
        (folder / "log.txt").write_text(
            f"latent-audit serve: job {job_id} of project {project} on {HOST}\n",
            encoding="utf-8")
        return folder, config, project, version, labels

    def _run(self, job_id: int, base: str) -> None:
        folder, config, project, version, labels = self._prepare(job_id)
        try:
            handle = self.engine.launch(job_id, folder, (folder / "config.yaml").read_text())
        except Exception as exc:  # noqa: BLE001 - e.g. Ray cannot be reached
            self._finish(job_id, base, "failed", error=f"could not start the audit: {exc}")
            return
        try:
            if handle.pid:                  # the audit's pid, in the job's worker at once
                self._update(job_id, base, worker=f"{base}:{handle.pid}")
            progress = LogProgress(_n_checks(config), baseline=bool(config.get("baseline")))
            reader = _LogReader(folder / "log.txt", progress)
            self._follow(job_id, base, handle, folder, config, project, version, labels,
                         progress, reader)
        except BaseException:
            handle.kill()                   # never leave an audit running unwatched
            raise

    def _follow(self, job_id: int, base: str, handle: _Handle, folder: Path,
                config: dict[str, Any], project: str, version: str, labels: dict,
                progress: LogProgress, reader: _LogReader) -> None:
        """Watch a launched audit until it ends, is cancelled, times out or the server
        stops; then store it or record why it failed."""
        worker = f"{base}:{handle.pid}" if handle.pid else base
        timeout = self.settings.job_timeout_s
        t0 = time.monotonic()
        log.info("jobs: job %d of %s running (%s)", job_id, project, worker)
        while True:
            code = handle.poll()
            reader.read()
            if worker == base and handle.pid:           # a Ray task told its pid late
                worker = f"{base}:{handle.pid}"
                self._update(job_id, base, worker=worker)
            try:
                status = self._update(job_id, worker, progress=progress.progress,
                                      stage=progress.stage, log_tail=reader.text)
            except Exception:  # noqa: BLE001 - the database hiccuped: carry on
                log.exception("jobs: job %d: heartbeat failed", job_id)
                status = "running"
            if status is None:                          # reaped by another server
                handle.kill()
                handle.cleanup()
                return
            if code is not None:
                break
            if status == "cancelling":
                handle.kill()
                reader.finish()
                self._finish(job_id, worker, "cancelled", log_tail=reader.text,
                             progress=progress.progress)
                self._clean(folder, handle)
                return
            if self._stopping.is_set():
                handle.kill()
                self._requeue(job_id, worker)
                handle.cleanup()
                return
            if time.monotonic() - t0 > timeout:
                handle.kill()
                reader.finish()
                self._finish(job_id, worker, "failed", log_tail=reader.text,
                             progress=progress.progress,
                             error=f"timed out: ran longer than {timeout:g} s "
                                   "(job_timeout_s)")
                self._clean(folder, handle)
                return
            self._stopping.wait(TICK_S)
        reader.finish()
        self._complete(job_id, worker, code, handle, reader, progress, folder,
                       project=project, version=version, labels=labels)

    def _complete(self, job_id: int, worker: str, code: int, handle: _Handle,
                  reader: _LogReader, progress: LogProgress, folder: Path, *,
                  project: str, version: str, labels: dict) -> None:
        """A finished audit: stored when it wrote its outputs (exit 0, 1, or 3: a check
        errored, the report says which), else the job fails with the log's last error."""
        lines = list(reader.tail)
        error = handle.error or (last_error(lines, code) if code not in (0, 1) else "")
        audit_id = None
        try:
            run_dir = handle.result_folder() if code in (0, 1, 3) else None
        except Exception as exc:  # noqa: BLE001 - e.g. the Ray result could not be fetched
            run_dir, error = None, error or f"could not fetch the run's outputs: {exc}"
        if run_dir is not None and (run_dir / "findings.json").is_file():
            self._update(job_id, worker, stage="storing the audit",
                         progress=progress.progress, log_tail=reader.text)
            try:
                from .ingest import ingest_folder
                stored = ingest_folder(self.state, project, run_dir, version=version,
                                       labels=labels, source="job")
                audit_id = int(stored["id"])
            except Exception as exc:  # noqa: BLE001 - a run the store refused
                log.exception("jobs: job %d: storing the audit failed", job_id)
                error = error or f"storing the audit failed: {exc}"
        elif not error:
            error = f"exit {code}: the audit wrote no findings.json"
        if audit_id is not None and not error:
            self._finish(job_id, worker, "succeeded", progress=1.0, audit_id=audit_id,
                         log_tail=reader.text, stage="done")
        else:
            self._finish(job_id, worker, "failed", audit_id=audit_id, log_tail=reader.text,
                         progress=progress.progress, error=error or "failed")
        self._clean(folder, handle)

    @staticmethod
    def _clean(folder: Path, handle: _Handle) -> None:
        """The run and its cache are stored (or useless): keep config.yaml and log.txt."""
        handle.cleanup()
        for name in ("run", "cache"):
            shutil.rmtree(folder / name, ignore_errors=True)
