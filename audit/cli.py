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
EXIT_ABORTED = 130          # Ctrl-C, at any moment: "latent-audit: aborted"
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
    from .io import out_lock
    from .pipeline import run, write_outputs
    setup_logging(2 if debug else verbosity)
    out_dir = Path(out) if out else Path("reports") / cfg.name
    try:
        with out_lock(out_dir):       # a second run into the same --out is refused at once
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
    """Audit the latent space of a trained model.

    \b
    Seven checks, all run by default (each skips itself without what it needs):
      clusters      HDBSCAN cluster structure and what each cluster holds
      outliers      isolated points, against a Gaussian null
      duplicates    near-duplicates, within the data and copies of the reference
      holes         empty regions inside the data's support
      coverage      how well the data covers a reference, and attribute combinations
      entanglement  how attributes are encoded and mixed (needs attributes:)
      bias          protected groups, outcome slices, WEAT (needs protected: or outcome:)
    `latent-audit checks` prints every setting as YAML. Gates on metrics exit 1 on failure.
    """


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
    from .io import out_lock
    from .pipeline import encode_store
    setup_logging(2 if debug else (0 if quiet else 1))
    try:
        cfg = load_config(config)
        with out_lock(out):
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
    """Check CONFIG without running anything.

    Refuses what `run` would refuse before computing: unknown keys and checks, gates on
    metrics no enabled check produces, missing extras, and attribute, protected or outcome
    columns absent from the metadata header.
    """
    from .preflight import preflight
    try:
        cfg = load_config(config)
        preflight(cfg, str(config))
    except AuditError as exc:
        click.echo(f"latent-audit: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"{config}: ok")


def _yaml_value(value: object) -> str:
    """One setting's value as YAML flow text (``null``, ``0.05``, ``[a, b]``)."""
    import yaml
    from pydantic_core import to_jsonable_python
    text = yaml.safe_dump(to_jsonable_python(value), default_flow_style=True, width=10**6,
                          allow_unicode=True)
    return text.strip().removesuffix("...").strip()


def _settings_yaml(model: object, cls: type, indent: int) -> list[str]:
    """A settings model as the YAML a user writes, each key with its description."""
    from pydantic import BaseModel
    pad = " " * indent
    lines: list[str] = []
    for key, field in cls.model_fields.items():
        value = getattr(model, key)
        note = f"  # {field.description}" if field.description else ""
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{key}:{note}")
            lines.extend(_settings_yaml(value, type(value), indent + 2))
        else:
            lines.append(f"{pad}{key}: {_yaml_value(value)}{note}")
    return lines


@cli.command("checks")
def checks_cmd() -> None:
    """List the checks and every setting, as the YAML you write under `checks:`."""
    from .checks import available_checks, default_checks
    defaults = set(default_checks())
    click.echo("# Every check with its settings at their defaults. Under `checks:` list the\n"
               "# checks to run (default: those marked default) and the settings you change.\n"
               "checks:")
    for name, cls in available_checks().items():          # in run order
        doc = (cls.__doc__ or "").strip().splitlines()
        click.echo(f"  # {name} ({'default' if name in defaults else 'opt-in'}): "
                   f"{doc[0] if doc else ''}")
        lines = _settings_yaml(cls.Settings(), cls.Settings, 4)
        click.echo(f"  {name}:" + ("" if lines else " {}"))
        for line in lines:
            click.echo(line)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code instead of raising SystemExit (130 on Ctrl-C)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        click.echo("latent-audit: aborted", err=True)
        return EXIT_ABORTED


def _main(argv: Sequence[str] | None) -> int:
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="latent-audit",
                 standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.Abort:
        click.echo("latent-audit: aborted", err=True)
        return EXIT_ABORTED
    except click.UsageError as exc:
        exc.show()
        return EXIT_BAD_INPUT
    except click.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT
    return EXIT_OK


def entry() -> None:
    try:
        code = main()
    except KeyboardInterrupt:        # a second Ctrl-C while the first is handled
        code = EXIT_ABORTED
    sys.exit(code)
