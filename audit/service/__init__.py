"""The latent-audit service: submit, browse and compare audits over HTTP (``latent-audit serve``).

A client of the library like any script: it runs audits through :func:`audit.pipeline.run`
and compares them through :mod:`audit.compare`, and never reaches into checks or the
context. Its parts, one job each:

============== =================================================================
settings.py    ``ServeSettings``: flags, environment variables, a ``serve:`` YAML section
db.py          SQLAlchemy models (projects, audits, metric values, jobs, tokens), engine
migrate.py     Alembic migrations, applied on start (``migrations/``)
store.py       the artifact store over fsspec (a folder, or any fsspec URL)
auth.py        tokens (stored hashed) and who may read and write
ingest.py      an uploaded run folder checked, stored and summarised; baseline comparison
api.py         the REST API under ``/api/v1``
jobs.py        the job queue: worker threads running audits in child processes, or Ray
pages.py       the server-rendered web UI
app.py         ``create_app``: the ASGI application
client.py      ``push``: upload a run folder (standard library only)
============== =================================================================

Needs the ``serve`` extra: ``pip install 'latent-audit[serve]'``.
"""
