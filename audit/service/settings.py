"""``ServeSettings``: how a server is started, from flags, environment and a YAML file.

Precedence, highest first: command-line flags, environment variables
``LATENT_AUDIT_SERVE_<KEY>`` (``LATENT_AUDIT_SERVE_DATABASE=postgresql://...``), the
``serve:`` section of a YAML file (``--config``), the defaults below.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError

__all__ = ["ENV_PREFIX", "LOOPBACK", "ServeSettings", "resolve_settings"]

ENV_PREFIX = "LATENT_AUDIT_SERVE_"
#: hosts on which reads are open without a token (only this machine can connect)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class ServeSettings(BaseModel):
    """Everything ``latent-audit serve`` can be told. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(Path("latent-audit-home"),
                       description="folder for the embedded database, artifacts and job folders")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8765, ge=0, le=65535)
    workers: int = Field(1, ge=0, le=64, description="job workers (0: accept jobs, run none)")
    database: str | None = Field(
        None, description="SQLAlchemy URL (default: sqlite:///<home>/latent-audit.db); "
                          "postgresql://user:pass@host:port/db for a team")
    artifacts: str | None = Field(
        None, description="where run folders are stored: a folder or any fsspec URL "
                          "(s3://bucket/prefix); default <home>/artifacts")
    data_roots: list[Path] = Field(
        default_factory=list,
        description="folders a job's config may read data from (repeat --data-root)")
    allow_code: bool = Field(False, description="accept job configs with encoder.factory "
                                                "(runs code named by the config)")
    engine: Literal["local", "ray"] = Field("local", description="where jobs run")
    ray_address: str | None = Field(None, description="ray.init(address=...) for engine ray")
    public_read: bool = Field(False, description="reads need no token on any address")
    max_upload_mb: float = Field(2048.0, gt=0, description="largest upload, all files together")
    job_timeout_s: float = Field(6 * 3600.0, gt=0, description="a job running longer fails")

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{(self.home / 'latent-audit.db').resolve()}"

    @property
    def artifacts_url(self) -> str:
        return self.artifacts or str((self.home / "artifacts").resolve())

    @property
    def reads_open(self) -> bool:
        """Reads need no token: only this machine can connect, or ``public_read``."""
        return self.public_read or self.host in LOOPBACK

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


_LIST_KEYS = {"data_roots"}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ServeSettings.model_fields:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is None or raw == "":
            continue
        out[name] = [p for p in raw.split(os.pathsep) if p] if name in _LIST_KEYS else raw
    return out


def _from_yaml(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"unreadable ({exc.__class__.__name__})", source=path) from None
    if not isinstance(doc, dict):
        raise ConfigError("is not a YAML mapping", source=path)
    section = doc.get("serve", {})
    if not isinstance(section, dict):
        raise ConfigError("must be a mapping", source=path, key="serve")
    return dict(section)


def resolve_settings(flags: Mapping[str, Any] | None = None, *, config: Path | None = None,
                     env: Mapping[str, str] | None = None) -> ServeSettings:
    """Merge defaults < ``serve:`` in ``config`` < environment < ``flags`` (None = unset).

    Raises ``ConfigError`` naming the key (and the file or variable) on a bad value.
    """
    merged: dict[str, Any] = {}
    layers = [("file", _from_yaml(config) if config else {}),
              ("env", _from_env(os.environ if env is None else env)),
              ("flag", {k: v for k, v in (flags or {}).items()
                        if v is not None and not (k in _LIST_KEYS and not v)})]
    for _, layer in layers:
        merged.update(layer)
    try:
        return ServeSettings(**merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "serve"
        origin = next((o for o, layer in reversed(layers) if str(err["loc"][0]) in layer),
                      "flag") if err["loc"] else "flag"
        source = {"file": config, "env": ENV_PREFIX + key.split(".")[0].upper(),
                  "flag": "--" + key.split(".")[0].replace("_", "-")}[origin]
        raise ConfigError(err["msg"], source=source, key=f"serve.{key}") from None
