"""The ``latent-audit`` command: parse, call the library, turn outcomes into exit codes.

Exit codes: 0 ran and every gate passed; 1 ran and a gate failed; 2 bad config or input;
3 ran but a check errored (the report is still written, with the error in it).
"""
from __future__ import annotations

import logging
import sys
import traceback
from importlib import resources
from pathlib import Path
from typing import Sequence

import click

from .config import AuditConfig, config_from_dict, load_config
from .errors import AuditError

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT, EXIT_CHECK_ERROR = 0, 1, 2, 3
log = logging.getLogger("audit")


def demo_config(*, n: int | None = None, epochs: int | None = None) -> AuditConfig:
    """The embedded demo config, optionally scaled down (for tests and quick looks)."""
    import yaml
    raw = yaml.safe_load(resources.files("audit").joinpath("demo.yaml").read_text("utf-8"))
    if n is not None:
        raw["data"]["builtin"]["n"] = n
        raw["reference"]["builtin"]["n"] = max(n // 2, 50)
    if epochs is not None:
        raw["encoder"]["demo_vae"]["epochs"] = epochs
    return config_from_dict(raw, source="<demo>")


def _execute(cfg: AuditConfig, out: Path | None, debug: bool, verbosity: int) -> int:
    from .logs import setup_logging
    from .pipeline import run, write_outputs
    setup_logging(2 if debug else verbosity)
    out_dir = Path(out) if out else Path("reports") / cfg.name
    try:
        audit_run = run(cfg, debug=debug)
        paths = write_outputs(audit_run, out_dir)
    except AuditError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"latent-audit: error: {exc}", err=True)
        return EXIT_BAD_INPUT
    result = audit_run.result
    for g in result.gates:
        log.log(logging.WARNING if not g.passed else logging.INFO, "gate %s", g.details)
    flagged = [f for f in result.findings if f.severity != "info"]
    click.echo(f"latent-audit: {result.verdict.upper()}: {len(flagged)} flagged finding(s), "
               f"{sum(not g.passed for g in result.gates)}/{len(result.gates)} gate(s) failed"
               f"{f', {len(result.errored)} check(s) errored' if result.errored else ''}. "
               f"Report: {paths['report']}", err=True)
    if result.verdict == "fail":
        return EXIT_GATE_FAILED
    if result.verdict == "error":
        return EXIT_CHECK_ERROR
    return EXIT_OK


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="latent-audit")
def cli() -> None:
    """Audit the latent space of a trained model: clusters, outliers, duplicates, gates."""


_out = click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path),
                    help="output folder (default: reports/<name>)")
_debug = click.option("--debug", is_flag=True, help="show tracebacks and debug logging")
_quiet = click.option("--quiet", "-q", is_flag=True, help="only warnings and the verdict")


@cli.command("run")
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False))
@_out
@_debug
@_quiet
def run_cmd(config: Path, out: Path | None, debug: bool, quiet: bool) -> None:
    """Run the audit described by CONFIG (a YAML file)."""
    try:
        cfg = load_config(config)
    except AuditError as exc:
        click.echo(f"latent-audit: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(_execute(cfg, out, debug, 0 if quiet else 1))


@cli.command("demo")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports/demo"), show_default=True, help="output folder")
@click.option("--n", type=click.IntRange(min=100), default=None,
              help="images in the demo set (default 3000)")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="VAE training epochs (default 30)")
@_debug
@_quiet
def demo_cmd(out: Path, n: int | None, epochs: int | None, debug: bool, quiet: bool) -> None:
    """Build the shapes dataset, train the demo VAE, audit it, write reports/demo/."""
    sys.exit(_execute(demo_config(n=n, epochs=epochs), out, debug, 0 if quiet else 1))


@cli.command("encode")
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="folder the latent store is written to")
@click.option("--no-thumbnails", is_flag=True, help="leave image thumbnails out of the store")
@_debug
@_quiet
def encode_cmd(config: Path, out: Path, no_thumbnails: bool, debug: bool, quiet: bool) -> None:
    """Encode CONFIG's data into a latent store in --out (no audit).

    The store (manifest.json, latents/part-*.npy, metadata.parquet) is described in
    docs/inputs.md; `data: {latents: DIR}` reads it back.
    """
    from .logs import setup_logging
    from .pipeline import encode_store
    setup_logging(2 if debug else (0 if quiet else 1))
    try:
        cfg = load_config(config)
        manifest = encode_store(cfg, out, thumbnails=not no_thumbnails)
    except AuditError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"latent-audit: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"latent-audit: wrote {manifest['n']} × {manifest['dim']} latents to {out}",
               err=True)


@cli.command("validate")
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False))
def validate_cmd(config: Path) -> None:
    """Check CONFIG without running anything."""
    from .checks import build_checks
    try:
        cfg = load_config(config)
        build_checks(cfg.checks, source=str(config))
    except AuditError as exc:
        click.echo(f"latent-audit: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"{config}: ok")


@cli.command("checks")
def checks_cmd() -> None:
    """List the available checks and their settings."""
    from .checks import available_checks, default_checks
    defaults = set(default_checks())
    for name, cls in sorted(available_checks().items()):
        click.echo(f"{name}{'' if name in defaults else ' (opt-in)'}: "
                   f"{(cls.__doc__ or '').strip().splitlines()[0]}")
        for key, field in cls.Settings.model_fields.items():
            click.echo(f"    {key} = {field.get_default(call_default_factory=True)!r}  "
                       f"{field.description or ''}".rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code instead of raising SystemExit."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="latent-audit",
                 standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.Abort:
        click.echo("latent-audit: aborted", err=True)
        return 130
    except click.UsageError as exc:
        exc.show()
        return EXIT_BAD_INPUT
    except click.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT
    return EXIT_OK


def entry() -> None:
    sys.exit(main())
