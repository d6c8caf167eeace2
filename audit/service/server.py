"""Starting a server: open the state, make the first admin token, run uvicorn."""
from __future__ import annotations

import logging

from sqlalchemy import select

from .auth import create_token
from .db import Token
from .settings import ServeSettings
from .state import ServiceState, open_state

__all__ = ["first_admin_token", "serve"]

log = logging.getLogger("audit")


def first_admin_token(state: ServiceState) -> str | None:
    """On the first start (no admin token yet) a new admin token; else None."""
    with state.session() as s:
        if s.scalar(select(Token.id).where(Token.project_id.is_(None)).limit(1)) is not None:
            return None
        return create_token(s, None)


def _check_port(settings: ServeSettings) -> None:
    """Refuse at once, with the key named, when the address cannot be listened on."""
    import socket

    from ..errors import ConfigError
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        with socket.socket(family) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((settings.host, settings.port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.host}:{settings.port} ({exc.strerror})",
                          source="--port", key="serve.port") from None


def serve(settings: ServeSettings, *, echo=print) -> None:
    """Run the service in the foreground until interrupted."""
    import uvicorn

    from .app import create_app

    from .ray_jobs import check_engine
    check_engine(settings)            # --engine ray without the ray extra: refused here
    _check_port(settings)
    state = open_state(settings)
    token = first_admin_token(state)
    app = create_app(state=state)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    echo(f"latent-audit serve: http://{host}:{settings.port}/  (home {settings.home.resolve()}, "
         f"database {state.engine.url.render_as_string(hide_password=True)}, "
         f"artifacts {settings.artifacts_url}, {settings.workers} worker(s), "
         f"engine {settings.engine})")
    if token:
        echo(f"latent-audit serve: admin token (shown once, stored hashed): {token}")
    if not settings.reads_open:
        echo("latent-audit serve: reads need a token (not on loopback; --public-read opens them)")
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            access_log=False, server_header=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run()
