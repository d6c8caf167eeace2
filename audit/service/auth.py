"""Tokens and who may do what.

A token is ``la_`` and 43 random URL-safe characters; the database keeps only its SHA-256.
An admin token (``project_id`` None) may write anywhere; a project token writes only to its
project. Reads are open when the server listens on loopback or with ``--public-read``,
else any valid token may read.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import Project, Token

__all__ = ["TOKEN_PREFIX", "create_token", "digest", "find_token", "get_or_create_project",
           "may_write", "valid_project_name"]

TOKEN_PREFIX = "la_"


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def valid_project_name(name: str) -> bool:
    """Letters, digits, ``._-``, 1 to 100 characters, starting with a letter or digit."""
    import re
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name or ""))


def get_or_create_project(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        project = Project(name=name)
        session.add(project)
        session.flush()
    return project


def create_token(session: Session, project: str | None = None) -> str:
    """A new token (admin when ``project`` is None, else for that project, created if
    needed); returns the raw token, which is never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    project_id = get_or_create_project(session, project).id if project else None
    session.add(Token(digest=digest(raw), prefix=raw[:8], project_id=project_id))
    session.flush()
    return raw


def find_token(session: Session, raw: str | None) -> Token | None:
    """The token row for ``raw``, or None (compared by digest, in constant time)."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    d = digest(raw)
    row = session.scalar(select(Token).where(Token.digest == d))
    return row if row is not None and hmac.compare_digest(row.digest, d) else None


def may_write(token: Token, project: Project | None) -> bool:
    """Admin tokens write anywhere; a project token only to its own project."""
    if token.project_id is None:
        return True
    return project is not None and token.project_id == project.id
