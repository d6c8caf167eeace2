"""``ServiceState``: what every request handler and worker of one server shares."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ..errors import ConfigError
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
    """Open (and migrate) the database and the artifact store named by ``settings``.

    Raises ``ConfigError`` naming the setting when the home, the database or the artifact
    store cannot be opened.
    """
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    try:
        settings.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder ({exc.strerror})", source=settings.home,
                          key="serve.home") from None
    shown = settings.database_url.split("@")[-1]
    try:
        engine = make_engine(settings.database_url)
        upgrade(engine)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise ConfigError(f"not a usable database URL ({exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0]})", source=shown,
                          key="serve.database") from None
    except SQLAlchemyError as exc:
        raise ConfigError(f"cannot open the database ({exc.__class__.__name__}: "
                          f"{str(getattr(exc, 'orig', exc)).strip().splitlines()[0]})",
                          source=shown, key="serve.database") from None
    try:
        store = ArtifactStore(settings.artifacts_url)
    except (ImportError, ValueError, OSError) as exc:
        raise ConfigError(f"cannot open the artifact store ({exc.__class__.__name__}: {exc})",
                          source=settings.artifacts_url, key="serve.artifacts") from None
    return ServiceState(settings=settings, engine=engine, sessions=make_sessionmaker(engine),
                        store=store)
