"""``latent-audit serve`` (and ``serve token create``): the service's commands.

Kept apart from :mod:`audit.cli` so the core command never imports the ``serve`` extra.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import AuditError

EXIT_BAD_INPUT = 2
_EXTRA = ("the service needs the 'serve' extra: pip install 'latent-audit[serve]' "
          "({name} is missing)")


def _need_extra() -> None:
    for name in ("fastapi", "uvicorn", "sqlalchemy", "alembic", "fsspec", "multipart"):
        try:
            __import__(name)
        except ImportError:
            click.echo("latent-audit: error: " + _EXTRA.format(name=name), err=True)
            sys.exit(EXIT_BAD_INPUT)


def _settings(flags: dict, config: Path | None):
    from .service.settings import resolve_settings
    try:
        return resolve_settings(flags, config=config)
    except AuditError as exc:
        click.echo(f"latent-audit: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


_home = click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="folder for the embedded database, artifacts and jobs "
                          "[default: ./latent-audit-home]")
_config = click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path),
                       default=None, help="a YAML file whose serve: section sets any option")
_database = click.option("--database", default=None, metavar="URL",
                         help="SQLAlchemy URL [default: SQLite under --home]")


@click.group("serve", invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@_home
@click.option("--host", default=None, help="address to listen on [default: 127.0.0.1]")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="port [default: 8765]")
@click.option("--workers", type=click.IntRange(0, 64), default=None,
              help="job workers [default: 1]")
@_database
@click.option("--artifacts", default=None, metavar="URL",
              help="artifact store: a folder or an fsspec URL [default: <home>/artifacts]")
@click.option("--data-root", "data_roots", multiple=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="a folder job configs may read data from (repeatable)")
@click.option("--allow-code", is_flag=True, default=None,
              help="accept job configs with encoder.factory (runs code they name)")
@click.option("--engine", type=click.Choice(["local", "ray"]), default=None,
              help="where jobs run [default: local]")
@click.option("--ray-address", default=None, help="Ray cluster for --engine ray")
@click.option("--public-read", is_flag=True, default=None,
              help="reads need no token even when not on loopback")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=None,
              help="largest upload [default: 2048]")
@_config
@click.pass_context
def serve_cmd(ctx: click.Context, config: Path | None, **flags) -> None:
    """Start the audit service: submit, browse and compare audits over HTTP.

    Zero setup: an embedded SQLite database and an artifact folder under --home. Prints the
    URL, and the admin token on first start. Every option can also come from the
    environment (LATENT_AUDIT_SERVE_DATABASE, ...) or a serve: section in --config.
    See docs/service.md.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"home": flags.get("home"), "database": flags.get("database"),
                   "config": config}
        return
    _need_extra()
    settings = _settings(flags, config)
    from .service.server import serve
    try:
        serve(settings, echo=lambda line: click.echo(line, err=True))
    except AuditError as exc:
        click.echo(f"latent-audit: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


@serve_cmd.group("token")
def token_group() -> None:
    """Manage the service's tokens."""


@token_group.command("create")
@click.option("--project", default=None, help="the project this token may write to "
                                               "(created if needed)")
@click.option("--admin", is_flag=True, help="a token that may write to every project")
@_home
@_database
@_config
@click.pass_context
def token_create_cmd(ctx: click.Context, project: str | None, admin: bool, home: Path | None,
                     database: str | None, config: Path | None) -> None:
    """Make a token and print it (stored hashed: it cannot be shown again)."""
    _need_extra()
    parent = ctx.obj or {}
    if bool(project) == bool(admin):
        click.echo("latent-audit: error: give --project NAME or --admin", err=True)
        sys.exit(EXIT_BAD_INPUT)
    from .service.auth import create_token, valid_project_name
    from .service.state import open_state
    if project and not valid_project_name(project):
        click.echo(f"latent-audit: error: --project: {project!r} is not a valid project name "
                   "(letters, digits, ._-, at most 100)", err=True)
        sys.exit(EXIT_BAD_INPUT)
    settings = _settings({"home": home or parent.get("home"),
                          "database": database or parent.get("database")},
                         config or parent.get("config"))
    state = open_state(settings)
    with state.session() as s:
        raw = create_token(s, project)
    click.echo(raw)
