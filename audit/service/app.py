"""``create_app``: the ASGI application of ``latent-audit serve``."""
from __future__ import annotations

from contextlib import asynccontextmanager

import inspect

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .settings import ServeSettings
from .state import ServiceState, open_state

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"


async def _one_line_validation_error(request: Request,
                                     exc: RequestValidationError) -> JSONResponse:
    """A malformed request gets one line naming the field, like every other 4xx here."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query",
                                                                         "path"))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return JSONResponse({"detail": f"{where + ': ' if where else ''}{first['msg']}{more}"},
                        status_code=422)


def create_app(settings: ServeSettings | None = None, *,
               state: ServiceState | None = None) -> FastAPI:
    """The application for ``settings`` (database migrated, store opened). Job workers
    start with the application (``settings.workers``) and stop with it."""
    from importlib.metadata import version

    from . import api, api_jobs, pages
    from .jobs import JobRunner
    from .limits import BodyLimit

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

    kwargs = {}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        kwargs["telemetry"] = {"auto_configure": False, "tracing": False, "metrics": False,
                               "logs": False}                  # no telemetry, ever
    app = FastAPI(title="latent-audit", version=version("latent-audit"),
                  description="Submit, browse and compare latent-space audits.",
                  lifespan=lifespan, openapi_url=f"{API_PREFIX}/openapi.json",
                  docs_url=None, redoc_url=None,   # Swagger UI would load from a CDN
                  **kwargs)
    app.state.service = state
    app.add_exception_handler(RequestValidationError, _one_line_validation_error)
    app.include_router(api.router, prefix=API_PREFIX)
    app.include_router(api_jobs.router, prefix=API_PREFIX)
    app.include_router(api.reports)            # raw reports, sandboxed: /audits/{id}/report
    app.include_router(pages.router)
    app.add_middleware(BodyLimit, max_bytes=state.settings.max_upload_bytes)
    return app
