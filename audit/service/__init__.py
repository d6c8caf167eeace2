"""The latent-audit service: submit, browse and compare audits over HTTP (``latent-audit serve``).

A client of the library like any script: it runs audits through :func:`audit.pipeline.run`
and compares them through :mod:`audit.compare`, and never reaches into checks or the
context. Its parts, one job each:

================ ===============================================================
settings.py      ``ServeSettings``: flags, environment variables, a ``serve:`` YAML section
db.py            SQLAlchemy models (projects, audits, metric values, jobs, tokens), engine
migrate.py       Alembic migrations, applied on start (``migrations/``)
state.py         ``ServiceState``: the settings, database and store one server shares
store.py         the artifact store over fsspec (a folder, or any fsspec URL)
auth.py          tokens (stored hashed) and who may write
deps.py          FastAPI dependencies: session, who may read, who may write
limits.py        the upload size limit, on Content-Length and on the streamed body
ingest.py        an uploaded run folder checked, stored and summarised; baseline comparison
compare_runs.py  comparisons of two stored audits, made once and kept in the store
api.py           the REST API under ``/api/v1``, and the sandboxed raw reports
api_jobs.py      the jobs routes
job_config.py    a submitted config checked: data roots, code execution, preflight
jobs.py          the job queue: claiming, worker threads, restart recovery, the reaper
audit_process.py one audit in a child process (its own session: a cancel kills it all)
ray_jobs.py      the Ray engine: each job one Ray task
pages.py         the server-rendered web UI (``templates/``, ``static/``)
app.py           ``create_app``: the ASGI application
server.py        ``serve``: first admin token, port check, uvicorn
client.py        ``push``: upload a run folder (httpx only: works with the core install)
================ ===============================================================

Needs the ``serve`` extra: ``pip install 'latent-audit[serve]'``.
"""
