"""The Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL, and
applying them again (every server start) changes nothing."""
from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from audit.service.db import Base, make_engine
from audit.service.migrate import alembic_config, current_revision, head_revision, upgrade


def _url(backend, tmp_path, request) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return request.getfixturevalue("postgres").new_database()


def test_migrations_match_the_models(backend, tmp_path, request):
    engine = make_engine(_url(backend, tmp_path, request))
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision() == "0002"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    tables = set(inspect(engine).get_table_names())
    assert {"projects", "audits", "metric_values", "jobs", "tokens",
            "alembic_version"} <= tables
    upgrade(engine)                                      # a second start: a no-op
    assert current_revision(engine) == "0002"


def test_downgrade_and_upgrade_round_trip(backend, tmp_path, request):
    engine = make_engine(_url(backend, tmp_path, request))
    upgrade(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert "audits" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "audits" in inspect(engine).get_table_names()
