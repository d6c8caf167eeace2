"""The service's database: SQLAlchemy 2 models and the engine, for SQLite and PostgreSQL alike.

Metadata lives here; the artifacts themselves (``findings.json``, ``report.html``, the
store) live in the artifact store under ``Audit.prefix``. The schema is created and
upgraded by Alembic (:mod:`.migrate`), never by ``create_all``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String,
                        Text, create_engine, event)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

__all__ = ["Audit", "Base", "Job", "JOB_ACTIVE", "JOB_DONE", "MetricValue", "Project",
           "Token", "make_engine", "make_sessionmaker", "utcnow"]

#: job states: queued -> running -> succeeded | failed | cancelled; cancelling in between
JOB_ACTIVE = ("queued", "running", "cancelling")
JOB_DONE = ("succeeded", "failed", "cancelled")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Project(Base):
    """A model line: its audits, its pinned baseline and the gates a new audit meets."""
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    baseline_audit_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: gates on comparison metrics (``compare.*``, ``delta.*``), each {metric, op, threshold}
    baseline_gates: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    #: which comparison findings fail a new audit besides the gates: never|warning|critical
    baseline_fail_on: Mapped[str] = mapped_column(String(10), default="never",
                                                  server_default="never")


class Audit(Base):
    """One finished run, pushed or produced by a job."""
    __tablename__ = "audits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            nullable=False)
    name: Mapped[str] = mapped_column(String(200), default="")
    version: Mapped[str] = mapped_column(String(200), default="")
    commit: Mapped[str] = mapped_column(String(100), default="")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    source: Mapped[str] = mapped_column(String(20), default="push")       # push | job
    #: the run's own verdict (its gates), from findings.json: pass | fail | error
    verdict: Mapped[str] = mapped_column(String(10), default="pass")
    #: the release verdict: the run's verdict, and the baseline comparison's when there is one
    release_verdict: Mapped[str] = mapped_column(String(10), default="pass")
    verdict_reason: Mapped[str] = mapped_column(Text, default="")
    critical: Mapped[int] = mapped_column(Integer, default=0)
    warning: Mapped[int] = mapped_column(Integer, default=0)
    info: Mapped[int] = mapped_column(Integer, default=0)
    n: Mapped[int] = mapped_column(Integer, default=0)
    dim: Mapped[int] = mapped_column(Integer, default=0)
    prefix: Mapped[str] = mapped_column(String(300), default="")   # in the artifact store
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)   # relative paths stored
    has_store: Mapped[bool] = mapped_column(Boolean, default=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    baseline_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comparison_verdict: Mapped[str | None] = mapped_column(String(10), nullable=True)
    comparison_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_audits_project_created", "project_id", "id"),)


class MetricValue(Base):
    """One metric of one audit, so a metric's series across a project is one indexed read."""
    __tablename__ = "metric_values"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audits.id", ondelete="CASCADE"),
                                          nullable=False)
    project_id: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_metric_values_project_name", "project_id", "name", "audit_id"),
                      Index("ix_metric_values_audit", "audit_id"))


class Job(Base):
    """An audit the server runs from a config: queued in the database, run by a worker."""
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            nullable=False)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    version: Mapped[str] = mapped_column(String(200), default="")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    worker: Mapped[str] = mapped_column(String(200), default="")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(200), default="")
    log_tail: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    audit_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (Index("ix_jobs_status", "status", "id"),)


class Token(Base):
    """A bearer token, stored as its SHA-256; ``project_id`` None is an admin token."""
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(12), default="")     # shown, never enough
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": 60})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):           # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
