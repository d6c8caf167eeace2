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
    if bool(project) == bool(admin):
        click.echo("latent-audit: error: give --project NAME or --admin", err=True)
        sys.exit(EXIT_BAD_INPUT)
    from .service.auth import create_token, valid_project_name
    if project and not valid_project_name(project):
        click.echo(f"latent-audit: error: --project: {project!r} is not a valid project name "
                   "(letters, digits, ._-, at most 100)", err=True)
        sys.exit(EXIT_BAD_INPUT)
    state = _open(ctx, home, database, config)
    with state.session() as s:
        raw = create_token(s, project)
    click.echo(raw)


# ---------------------------------------------------------------------------------------
# latent-audit push: the client side (core install: httpx only, no serve extra)

EXIT_UNREACHABLE = 4


def push_options_error(server: str, project: str, labels: tuple[str, ...]) -> str | None:
    """Why ``run --push`` options are unusable (a bad URL, project name or label), else
    None: checked before the run."""
    from .service.client import PushError, check_target, parse_labels
    try:
        check_target(server, project)
        parse_labels(labels)
    except PushError as exc:
        return str(exc)
    return None


def push_folder(run_dir: Path, *, server: str | None, project: str, token: str | None,
                version: str | None = None, commit: str | None = None,
                labels: tuple[str, ...] = (), with_store: bool = True,
                debug: bool = False) -> int:
    """Push ``run_dir`` and print the one-line outcome; returns the exit code.

    0 stored, release verdict pass; 1 stored, release verdict fail; 3 stored, release
    verdict error; 2 bad input or refused by the server; 4 the server could not be reached
    (or failed with a 5xx).
    """
    import os
    import traceback

    from .service.client import (ENV_SERVER, ENV_TOKEN, PushError, parse_labels, push,
                                 verdict_exit)
    server = server or os.environ.get(ENV_SERVER)
    token = token or os.environ.get(ENV_TOKEN) or None
    try:
        if not server:
            raise PushError(f"no server: give --server URL or set {ENV_SERVER}")
        result = push(run_dir, server=server, project=project, token=token, version=version,
                      commit=commit, labels=parse_labels(labels), with_store=with_store)
    except PushError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"latent-audit: error: {exc}", err=True)
        return exc.code
    except OSError as exc:                      # a file vanished or became unreadable
        if debug:
            traceback.print_exc()
        click.echo(f"latent-audit: error: {exc}", err=True)
        return EXIT_BAD_INPUT
    click.echo(f"latent-audit: pushed audit {result.id} to {result.url}: release verdict "
               f"{result.release_verdict}")
    if result.baseline_id is not None:
        click.echo(f"latent-audit: compared with the baseline, audit {result.baseline_id}: "
                   f"{result.comparison_verdict or 'error'}; the run's own verdict "
                   f"{result.verdict}"
                   + (f" ({result.comparison_error})" if result.comparison_error else ""),
                   err=True)
    return verdict_exit(result.release_verdict)


@click.command("push", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--server", default=None, metavar="URL",
              help="the service, e.g. http://audits.example:8765 [env LATENT_AUDIT_SERVER]")
@click.option("--project", required=True, help="the project (model line) the audit belongs to")
@click.option("--version", "version", default=None, metavar="V",
              help="the model's version [default: the run's name @ the short commit]")
@click.option("--commit", default=None, metavar="SHA",
              help="git commit [default: git rev-parse HEAD here, else none]")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="a label to store with the audit (repeatable)")
@click.option("--token", default=None,
              help="a token that may write to the project [env LATENT_AUDIT_TOKEN]")
@click.option("--no-store", is_flag=True,
              help="leave store/ and reference-store/ out (no baseline comparison then)")
@click.option("--debug", is_flag=True, help="show tracebacks")
def push_cmd(run_dir: Path, server: str | None, project: str, version: str | None,
             commit: str | None, labels: tuple[str, ...], token: str | None, no_store: bool,
             debug: bool) -> None:
    """Upload a finished run's folder (RUN_DIR, the --out of `latent-audit run`) to a server.

    Sends findings.json, report.html, summary.md, per_sample.parquet and comparison.* when
    present, and store/ and reference-store/ unless --no-store. Prints the audit's id and
    URL and its release verdict (the run's gates, and the comparison with the project's
    pinned baseline when there is one).

    \b
    Exit codes:
      0  stored, release verdict pass
      1  stored, release verdict fail (its gates, or the baseline comparison's)
      3  stored, release verdict error
      2  bad input, or the server refused the push (401, 403, 413, ...)
      4  the server could not be reached (or failed with a 5xx)
    See docs/service.md.
    """
    sys.exit(push_folder(run_dir, server=server, project=project, token=token,
                         version=version, commit=commit, labels=labels,
                         with_store=not no_store, debug=debug))


def _open(ctx: click.Context, home: Path | None, database: str | None, config: Path | None):
    parent = ctx.obj or {}
    settings = _settings({"home": home or parent.get("home"),
                          "database": database or parent.get("database")},
                         config or parent.get("config"))
    from .service.state import open_state
    try:
        return open_state(settings)
    except AuditError as exc:
        click.echo(f"latent-audit: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


@token_group.command("list")
@_home
@_database
@_config
@click.pass_context
def token_list_cmd(ctx: click.Context, home: Path | None, database: str | None,
                   config: Path | None) -> None:
    """List tokens: id, the first characters, the project it may write to, created."""
    _need_extra()
    from sqlalchemy import select

    from .service.db import Project, Token
    state = _open(ctx, home, database, config)
    with state.session() as s:
        rows = s.execute(select(Token, Project.name).outerjoin(
            Project, Token.project_id == Project.id).order_by(Token.id)).all()
        for token, project in rows:
            click.echo(f"{token.id}\t{token.prefix}…\t{project or '(admin)'}\t"
                       f"{token.created:%Y-%m-%d %H:%M}")


@token_group.command("revoke")
@click.argument("token_id", type=int)
@_home
@_database
@_config
@click.pass_context
def token_revoke_cmd(ctx: click.Context, token_id: int, home: Path | None,
                     database: str | None, config: Path | None) -> None:
    """Revoke the token with id TOKEN_ID (see `token list`); it stops working at once."""
    _need_extra()
    from .service.db import Token
    state = _open(ctx, home, database, config)
    with state.session() as s:
        row = s.get(Token, token_id)
        if row is None:
            click.echo(f"latent-audit: error: TOKEN_ID: no token with id {token_id}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        s.delete(row)
    click.echo(f"revoked token {token_id}")
