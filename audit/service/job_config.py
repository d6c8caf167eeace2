"""A submitted job's config, checked before it is queued: valid, and reading only allowed data.

A job runs on the server with the server's rights, so its config may name data only inside
the folders the operator allowed (``--data-root``), checked on the real path (symlinks
followed); it may not run code (``encoder.factory``, or ``encoder.ray.address``: another
Ray cluster's results are unpickled) unless the server was started with ``--allow-code``;
and where it writes is the server's choice: the output folder is the job's own, and
``cache:`` is pointed into the job's folder when the job runs.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from ..config import AuditConfig, config_from_dict
from ..errors import AuditError
from .settings import ServeSettings

__all__ = [
    "MAX_CONFIG_BYTES",
    "SOURCE",
    "JobConfigError",
    "parse_config_yaml",
    "validate_job_config",
]

SOURCE = "job config"
#: the largest ``config_yaml`` accepted (a config is a few kilobytes)
MAX_CONFIG_BYTES = 1 << 20
#: entries of a data folder (images, a latent store) looked at for symlinks leaving the roots
_WALK_LIMIT = 200_000
#: the data keys of ``data:`` and ``reference:`` that name files or folders
_DATA_KEYS = ("latents", "images", "table", "text", "metadata")
_CODE_REFUSED = "refused: encoder.factory runs code; start the server with --allow-code"
_RAY_REFUSED = ("refused: encoder.ray.address sends the data to another Ray cluster and "
                "loads what it returns (code execution); start the server with --allow-code")
_NO_ROOTS = ("the server was started without --data-root: it reads no data files "
             "(built-in datasets need none)")


class JobConfigError(Exception):
    """A config the server will not run: ``status`` 400 (invalid) or 403 (not allowed)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def parse_config_yaml(text: str) -> Any:
    """``config_yaml`` as data (safe YAML only), or :class:`JobConfigError`."""
    if len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise JobConfigError(f"config_yaml: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise JobConfigError(f"config_yaml: not valid YAML{where} ({problem})") from None


def _roots(settings: ServeSettings) -> list[Path]:
    return [Path(r).expanduser().resolve() for r in settings.data_roots]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def _check_path(key: str, path: Path | str, roots: list[Path]) -> Path:
    """The real path of ``path`` (symlinks followed), which must exist inside ``roots``."""
    if not roots:
        raise JobConfigError(f"{key}: {_NO_ROOTS}")
    real = Path(path).expanduser().resolve()
    if not _inside(real, roots):
        raise JobConfigError(f"{key}: {path} is outside the server's data roots "
                             f"(--data-root: {', '.join(str(r) for r in roots)})")
    if not real.exists():
        raise JobConfigError(f"{key}: {path} not found")
    if real.is_dir():
        _check_folder(key, real, roots)
    return real


def _check_folder(key: str, folder: Path, roots: list[Path]) -> None:
    """No symlink inside ``folder`` leads out of the roots (the first entries looked at)."""
    seen = 0
    for here, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            seen += 1
            entry = Path(here) / name
            if entry.is_symlink() and not _inside(entry.resolve(), roots):
                raise JobConfigError(f"{key}: {entry} is a link to a place outside the "
                                     "server's data roots")
            if seen >= _WALK_LIMIT:
                return


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value


def _model_blocks(cfg: AuditConfig) -> list[tuple[str, Any]]:
    """(dotted key, block) of every model the config loads: the encoder, and a generator's
    decoder and embedding encoder."""
    blocks = [("encoder", cfg.encoder)]
    if cfg.generator is not None:
        blocks += [("generator.decoder", cfg.generator.decoder),
                   ("generator.embed", cfg.generator.embed)]
    return [(k, b) for k, b in blocks if b is not None and not isinstance(b, str)]


def _paths(cfg: AuditConfig) -> list[tuple[str, Any]]:
    """Every (dotted key, path) of ``cfg`` that names something on disk."""
    out: list[tuple[str, Any]] = []
    for section in ("data", "reference"):
        dc = getattr(cfg, section)
        if dc is not None:
            out += [(f"{section}.{k}", getattr(dc, k)) for k in _DATA_KEYS
                    if getattr(dc, k) is not None]
    for key, block in _model_blocks(cfg):
        out += [(f"{key}.{k}", getattr(block, k)) for k in ("torchscript", "export",
                                                           "checkpoint")
                if getattr(block, k) is not None]
    enc = cfg.encoder
    if enc is not None:
        st = enc.sentence_transformers
        if st and (Path(st).is_absolute() or "/" in st or "\\" in st):
            out.append(("encoder.sentence_transformers", st))   # else: an installed package
    if cfg.baseline is not None:
        out.append(("baseline", cfg.baseline))
    return out


def validate_job_config(raw: Any, settings: ServeSettings) -> dict[str, Any]:
    """Check a submitted config and return the config the job will run.

    The returned mapping is ``raw`` with every data path replaced by its real absolute
    path (relative paths are relative to the first data root), without ``cache:`` (set
    per job when it runs, unless ``false``) and without ``config_path``. Raises
    :class:`JobConfigError`: 400 for an invalid config or a path outside the data roots,
    403 for ``encoder.factory`` on a server without ``--allow-code``.
    """
    if not isinstance(raw, dict):
        raise JobConfigError("config: must be a mapping of keys to values")
    generator = raw.get("generator") if isinstance(raw.get("generator"), dict) else {}
    for key, block in (("encoder", raw.get("encoder")),
                       ("generator.decoder", generator.get("decoder")),
                       ("generator.embed", generator.get("embed"))):
        if not isinstance(block, dict) or settings.allow_code:
            continue
        if block.get("factory"):
            raise JobConfigError(_CODE_REFUSED.replace("encoder.factory", f"{key}.factory"),
                                 status=403)
        ray = block.get("ray")
        if isinstance(ray, dict) and ray.get("address"):
            raise JobConfigError(_RAY_REFUSED, status=403)
    roots = _roots(settings)
    try:
        cfg = config_from_dict(raw, source=SOURCE, base_dir=roots[0] if roots else None)
    except AuditError as exc:
        raise JobConfigError(str(exc)) from None
    out = copy.deepcopy(raw)
    out.pop("config_path", None)
    for key, path in _paths(cfg):
        _set(out, key, str(_check_path(key, path, roots)))
    for key, block in _model_blocks(cfg):
        if getattr(block, "factory", None):
            target, func = block.factory.rsplit(":", 1)
            if target.endswith(".py"):           # a file of code: inside the roots too
                real = _check_path(f"{key}.factory", target, roots)
                _set(out, f"{key}.factory", f"{real}:{func}")
    if out.get("cache") is not False:
        out.pop("cache", None)
    try:                                         # what `run` would refuse before computing
        from ..preflight import preflight
        preflight(config_from_dict(out, source=SOURCE), SOURCE)
    except AuditError as exc:
        raise JobConfigError(str(exc)) from None
    return out
