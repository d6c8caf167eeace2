"""``create_app``: the ASGI application of ``latent-audit serve``."""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from .settings import ServeSettings
from .state import ServiceState, open_state

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"


def create_app(settings: ServeSettings | None = None, *,
               state: ServiceState | None = None) -> FastAPI:
    """The application for ``settings`` (database migrated, store opened). Job workers
    start with the application (``settings.workers``) and stop with it."""
    from importlib.metadata import version

    from . import api, api_jobs, pages
    from .jobs import JobRunner

    state = state or open_state(settings or ServeSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runner = JobRunner(state)
        state.runner = runner
        runner.start()
        try:
            yield
        finally:
            runner.stop()

    app = FastAPI(title="latent-audit", version=version("latent-audit"),
                  description="Submit, browse and compare latent-space audits.",
                  lifespan=lifespan, openapi_url=f"{API_PREFIX}/openapi.json",
                  docs_url=None, redoc_url=None)   # Swagger UI would load from a CDN
    app.state.service = state
    app.include_router(api.router, prefix=API_PREFIX)
    app.include_router(api_jobs.router, prefix=API_PREFIX)
    app.include_router(pages.router)
    return app
