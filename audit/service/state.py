"""``ServiceState``: what every request handler and worker of one server shares."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .db import make_engine, make_sessionmaker
from .migrate import upgrade
from .settings import ServeSettings
from .store import ArtifactStore

__all__ = ["ServiceState", "open_state"]


@dataclass
class ServiceState:
    settings: ServeSettings
    engine: Engine
    sessions: sessionmaker
    store: ArtifactStore
    runner: Any = None                      # the job runner (jobs.JobRunner), once started
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def cache(self) -> Path:
        """Local scratch: materialised artifacts, job folders. Under ``home``."""
        return self.settings.home / "cache"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success, rolled back on error."""
        with self.sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise


def open_state(settings: ServeSettings) -> ServiceState:
    """Open (and migrate) the database and the artifact store named by ``settings``."""
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return ServiceState(settings=settings, engine=engine, sessions=make_sessionmaker(engine),
                        store=ArtifactStore(settings.artifacts_url))
