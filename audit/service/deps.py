"""FastAPI dependencies: the shared state, a database session, and the auth rules."""
from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from .auth import find_token, may_write
from .db import Project, Token
from .state import ServiceState

__all__ = ["bearer", "get_session", "get_state", "require_read", "require_token",
           "require_write"]


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


def get_session(state: ServiceState = Depends(get_state)) -> Iterator[Session]:
    with state.session() as s:
        yield s


def bearer(request: Request) -> str | None:
    """The raw token: ``Authorization: Bearer ...``, else the UI's ``latent_audit_token``
    cookie (set by ``/login``)."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.cookies.get("latent_audit_token")


def require_token(request: Request, session: Session = Depends(get_session)) -> Token:
    """A valid token, else 401."""
    token = find_token(session, bearer(request))
    if token is None:
        raise HTTPException(401, "a valid token is needed: Authorization: Bearer <token>",
                            headers={"WWW-Authenticate": "Bearer"})
    return token


def require_read(request: Request, state: ServiceState = Depends(get_state),
                 session: Session = Depends(get_session)) -> None:
    """Reads are open on loopback or with ``--public-read``; otherwise any valid token."""
    if state.settings.reads_open:
        return
    require_token(request, session)


def require_write(project: str, token: Token, session: Session) -> Project | None:
    """403 unless ``token`` may write to ``project`` (which may not exist yet: admin only).

    Returns the project row, or None when it does not exist.
    """
    row = session.scalar(select(Project).where(Project.name == project))
    if not may_write(token, row):
        raise HTTPException(403, f"this token may not write to project {project!r}")
    return row
