"""Alembic environment: runs on the connection :func:`audit.service.migrate.upgrade` passes."""
from alembic import context

from audit.service.db import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:                      # `alembic` run by hand with sqlalchemy.url set
    from sqlalchemy import engine_from_config, pool
    engine = engine_from_config(context.config.get_section(context.config.config_ini_section)
                                or {}, prefix="sqlalchemy.", poolclass=pool.NullPool)
    connection = engine.connect()

context.configure(connection=connection, target_metadata=target_metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
