"""The ``latent-audit`` command: parse, call the library, turn outcomes into exit codes.

Exit codes: 0 ran and every gate passed; 1 ran and a gate failed; 2 bad config or input;
3 ran but a check errored (the report is still written, with the error in it); for
``compare``, 3 is a gate that could not be evaluated, or an internal error.
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


#: what ``latent-audit demo --compare`` changes for its candidate: a smaller latent space
#: (6 instead of 8), everything else (data, ids, VAE seed, checks) the baseline's
DEMO_CANDIDATE = {"name": "demo-candidate", "latent_dim": 6}


def demo_config(*, n: int | None = None, epochs: int | None = None,
                candidate: bool = False) -> AuditConfig:
    """The embedded demo config, optionally scaled down (for tests and quick looks).

    ``candidate=True``: the candidate of ``demo --compare`` (:data:`DEMO_CANDIDATE`).
    """
    import yaml
    raw = yaml.safe_load(resources.files("audit").joinpath("demo.yaml").read_text("utf-8"))
    if candidate:
        raw["name"] = DEMO_CANDIDATE["name"]
        raw["encoder"]["demo_vae"]["latent_dim"] = DEMO_CANDIDATE["latent_dim"]
    if n is not None:
        raw["data"]["builtin"]["n"] = n
        raw["reference"]["builtin"]["n"] = max(n // 2, 50)
    if epochs is not None:
        raw["encoder"]["demo_vae"]["epochs"] = epochs
    return config_from_dict(raw, source="<demo>")


def _verdict_exit(verdict: str, gates) -> int:
    """Log each gate and map a verdict (a run's or a comparison's) to the exit code."""
    for g in gates:
        log.log(logging.WARNING if not g.passed else logging.INFO, "gate %s", g.details)
    return {"fail": EXIT_GATE_FAILED, "error": EXIT_CHECK_ERROR}.get(verdict, EXIT_OK)


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
    code = _verdict_exit(result.verdict, result.gates)
    flagged = [f for f in result.findings if f.severity != "info"]
    click.echo(f"latent-audit: {result.verdict.upper()}: {len(flagged)} flagged finding(s), "
               f"{sum(not g.passed for g in result.gates)}/{len(result.gates)} gate(s) failed"
               f"{f', {len(result.errored)} check(s) errored' if result.errored else ''}. "
               f"Report: {paths['report']}", err=True)
    return code


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="latent-audit")
def cli() -> None:
    """Audit the latent space of a trained model.

    \b
    Seven checks of the data, all run by default (each skips itself without what it needs):
      clusters      HDBSCAN cluster structure and what each cluster holds
      outliers      isolated points, against a Gaussian null
      duplicates    near-duplicates, within the data and copies of the reference
      holes         empty regions inside the data's support
      coverage      how well the data covers a reference, and attribute combinations
      entanglement  how attributes are encoded and mixed (needs attributes:)
      bias          protected groups, outcome slices, WEAT (needs protected: or outcome:)
    \b
    Seven checks of a generator (with generator: in the config; sample, decode, re-embed):
      generator_fidelity      precision, recall, density, coverage; realism per sample
      generator_modes         regions of the real data the generations never reach
      generator_holes         regions of the prior that decode to unrealistic outputs
      generator_memorization  generations that copy a training sample
      generator_attributes    attributes and groups it over- or under-produces
      generator_editing       editing one attribute through the prior moves others
      generator_smoothness    large jumps along interpolations in the prior
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
@click.option("--push", "push_url", default=None, metavar="URL",
              help="then upload the output folder to this latent-audit server")
@click.option("--project", default=None, help="with --push: the project to push to")
@click.option("--version", "version", default=None, metavar="V",
              help="with --push: the model's version [default: name @ short commit]")
@click.option("--token", default=None,
              help="with --push: a token for the project [env LATENT_AUDIT_TOKEN]")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="with --push: a label stored with the audit (repeatable)")
def run_cmd(config: Path, out: Path | None, debug: bool, quiet: bool, push_url: str | None,
            project: str | None, version: str | None, token: str | None,
            labels: tuple[str, ...]) -> None:
    """Run the audit described by CONFIG (a YAML file).

    With --push URL --project NAME, the output folder is then uploaded to a latent-audit
    server (`latent-audit push`); the exit code is the run's, or 1 when the release verdict
    (against the project's pinned baseline) fails, or 2/4 when the push is refused/fails.
    """
    if push_url is None and (project or version or token or labels):
        click.echo("latent-audit: error: --project, --version, --token and --label need "
                   "--push URL", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if push_url is not None and not project:
        click.echo("latent-audit: error: --push needs --project NAME", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if push_url is not None:
        from .cli_service import push_options_error
        why = push_options_error(push_url, project, labels)
        if why:
            click.echo(f"latent-audit: error: {why}", err=True)
            sys.exit(EXIT_BAD_INPUT)
    try:
        cfg = load_config(config)
    except AuditError as exc:
        click.echo(f"latent-audit: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    code = _execute(cfg, out, debug, 0 if quiet else 1)
    if push_url is None or code == EXIT_BAD_INPUT:      # nothing written: nothing to push
        sys.exit(code)
    from .cli_service import EXIT_UNREACHABLE, push_folder
    pushed = push_folder(Path(out) if out else Path("reports") / cfg.name, server=push_url,
                         project=project, token=token, version=version, labels=labels,
                         debug=debug)
    if pushed in (EXIT_BAD_INPUT, EXIT_UNREACHABLE):    # refused, or the server unreachable
        sys.exit(pushed)
    if pushed == EXIT_GATE_FAILED:                      # the release verdict failed
        sys.exit(EXIT_GATE_FAILED)
    sys.exit(EXIT_CHECK_ERROR if pushed == EXIT_CHECK_ERROR and code == EXIT_OK else code)


@cli.command("demo")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports/demo"), show_default=True, help="output folder")
@click.option("--n", type=click.IntRange(min=100), default=None,
              help="images in the demo set (default 3000)")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="VAE training epochs (default 30)")
@click.option("--compare", "with_compare", is_flag=True,
              help="also audit a candidate VAE (latent_dim 6) and compare the two: "
                   "writes OUT/baseline, OUT/candidate and OUT/comparison")
@_debug
@_quiet
def demo_cmd(out: Path, n: int | None, epochs: int | None, with_compare: bool, debug: bool,
             quiet: bool) -> None:
    """Build the shapes dataset, train the demo VAE, audit it, write reports/demo/.

    With --compare: the same audit twice, the baseline VAE (latent_dim 8) into OUT/baseline
    and a candidate VAE (latent_dim 6, same images and ids) into OUT/candidate, then
    `latent-audit compare` of the two into OUT/comparison; exits with the comparison's code.
    """
    verbosity = 0 if quiet else 1
    if not with_compare:
        sys.exit(_execute(demo_config(n=n, epochs=epochs), out, debug, verbosity))
    base_dir, cand_dir, cmp_dir = out / "baseline", out / "candidate", out / "comparison"
    for cfg, where in ((demo_config(n=n, epochs=epochs), base_dir),
                       (demo_config(n=n, epochs=epochs, candidate=True), cand_dir)):
        code = _execute(cfg, where, debug, verbosity)
        if code not in (EXIT_OK, EXIT_GATE_FAILED):   # a failed gate still leaves a run
            sys.exit(code)
    args = [str(base_dir), str(cand_dir), "--out", str(cmp_dir)]
    args += ["--debug"] if debug else []
    args += ["-q"] if quiet else []
    try:
        compare_cmd.main(args=args, standalone_mode=False)
        code = EXIT_OK
    except SystemExit as exc:
        code = int(exc.code or 0)
    report = cmp_dir / "report.html"
    click.echo(f"latent-audit: demo --compare: baseline {base_dir / 'report.html'}, "
               f"candidate {cand_dir / 'report.html'}, comparison "
               f"{report if report.exists() else cmp_dir / 'comparison.json'}", err=True)
    sys.exit(code)


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


def _parse_gate_options(gates: Sequence[str]) -> list:
    """``--gate`` expressions, parsed as a config's ``gates:`` (``metric op number``)."""
    from .config import parse_gates
    try:
        return parse_gates(list(gates))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--gate") from None


def _write_comparison(comparison, out_dir: Path) -> dict[str, Path]:
    """comparison.json, report.html and summary.md, written atomically into ``out_dir``."""
    from .io import atomic_outputs
    from .report import write_comparison
    with atomic_outputs(out_dir) as stage:
        written = write_comparison(comparison.to_json(), comparison.points, stage)
    return {name: out_dir / path.name for name, path in written.items()}


@cli.command("compare")
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("candidate", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="output folder (comparison.json, report.html, summary.md)")
@click.option("--gate", "gates", multiple=True, metavar="EXPR",
              help="release gate 'metric op number', e.g. 'compare.cka_linear >= 0.9' "
                   "(repeatable; exit 1 when one fails)")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="random seed of every draw")
@click.option("--k", type=click.IntRange(min=1), default=15, show_default=True,
              help="neighbours per point")
@click.option("--fail-on", type=click.Choice(["never", "warning", "critical"]),
              default="never", show_default=True,
              help="also fail when a comparison finding at or above this severity exists")
@_debug
@_quiet
def compare_cmd(baseline: Path, candidate: Path, out: Path, gates: tuple[str, ...],
                seed: int, k: int, fail_on: str, debug: bool, quiet: bool) -> None:
    """Compare CANDIDATE's latent space with BASELINE's, over the points both hold.

    Each side is the output folder of `latent-audit run` (findings.json and store/) or a
    latent store written by `latent-audit encode`; points are matched by id. Writes
    comparison.json (and report.html, summary.md) to --out; see docs/compare.md.
    """
    from .io import out_lock
    from .logs import setup_logging
    setup_logging(2 if debug else (0 if quiet else 1))
    parsed = _parse_gate_options(gates)
    try:
        from .compare.run import compare, load_side
        with out_lock(out):
            base = load_side(baseline, role="baseline")
            cand = load_side(candidate, role="candidate")
            comparison = compare(base, cand, seed=seed, k=k, gates=parsed,
                                 fail_on=fail_on)  # type: ignore[arg-type]
            paths = _write_comparison(comparison, out)
    except AuditError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"latent-audit: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except Exception as exc:  # noqa: BLE001 - a bug, not the user's input: exit 3
        if debug:
            traceback.print_exc()
        click.echo(f"latent-audit: internal error: {exc.__class__.__name__}: {exc} "
                   "(rerun with --debug for the traceback)", err=True)
        sys.exit(EXIT_CHECK_ERROR)
    code = _verdict_exit(comparison.verdict, comparison.gates)
    flagged = [f for f in comparison.findings if f.severity != "info"]
    click.echo(f"latent-audit: {comparison.verdict.upper()}: {comparison.run['matched']} "
               f"points matched, {len(flagged)} flagged finding(s), "
               f"{sum(not g.passed for g in comparison.gates)}/{len(comparison.gates)} "
               f"gate(s) failed. Output: {paths.get('report', paths['comparison'])}", err=True)
    sys.exit(code)


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
    with_generator = set(default_checks(generator=True)) - defaults
    click.echo("# Every check with its settings at their defaults. Under `checks:` list the\n"
               "# checks to run (default: those marked default) and the settings you change.\n"
               "checks:")
    for name, cls in available_checks().items():          # in run order
        doc = (cls.__doc__ or "").strip().splitlines()
        when = ("default" if name in defaults else "default with generator:"
                if name in with_generator else "opt-in")
        click.echo(f"  # {name} ({when}): {doc[0] if doc else ''}")
        lines = _settings_yaml(cls.Settings(), cls.Settings, 4)
        click.echo(f"  {name}:" + ("" if lines else " {}"))
        for line in lines:
            click.echo(line)


def _add_service_commands() -> None:
    from .cli_service import push_cmd, serve_cmd
    cli.add_command(serve_cmd)
    cli.add_command(push_cmd)


_add_service_commands()


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
