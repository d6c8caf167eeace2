"""The check interface and its registry.

A check is a small class: ``name``, a pydantic ``Settings`` model (its config keys under
``checks.<name>``), ``produces`` (the metrics it can emit), ``default`` (whether it runs
when the config names no checks) and ``run(ctx) -> CheckResult``. ``@register`` adds it to
the registry. docs/developing-checks.md is the guide, with a complete example.
"""
from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..context import Context
from ..errors import ConfigError
from ..findings import CheckResult

log = logging.getLogger("audit")

__all__ = ["Check", "CheckSettings", "register", "available_checks", "default_checks",
           "build_checks", "run_check"]

_REGISTRY: dict[str, type["Check"]] = {}


class CheckSettings(BaseModel):
    """Base of every check's settings: unknown keys are rejected."""
    model_config = ConfigDict(extra="forbid", frozen=True)


class Check:
    """Base class. Subclasses set ``name``, ``Settings`` and implement ``run``."""

    name: ClassVar[str]
    Settings: ClassVar[type[CheckSettings]] = CheckSettings
    #: runs when the config has no ``checks:`` mapping; ``False``: only when named there
    default: ClassVar[bool] = True
    #: ``"data"`` checks audit the latents; ``"generator"`` checks audit what a decoder
    #: produces, and are among the defaults only when the config has ``generator:``
    family: ClassVar[str] = "data"
    #: every metric name ``run`` can put in ``CheckResult.metrics`` (fnmatch patterns for
    #: names built from data, e.g. ``bias.*.leakage_auc``); gates are validated against it
    produces: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **settings: Any) -> None:
        self.settings = self.Settings(**settings)

    def applies(self, ctx: Context) -> str | None:
        """``None`` when the check can run on ``ctx``, else the reason it is skipped."""
        return None

    def run(self, ctx: Context) -> CheckResult:  # pragma: no cover - interface
        raise NotImplementedError


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: add a check to the registry by its ``name``."""
    name = getattr(cls, "name", None)
    if not name:
        raise TypeError(f"{cls.__name__} has no name")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"a check named '{name}' is already registered")
    _REGISTRY[name] = cls
    return cls


def available_checks() -> dict[str, type[Check]]:
    return dict(_REGISTRY)


def default_checks(*, generator: bool = False) -> list[str]:
    """The checks a config without ``checks:`` runs: every default data check, and the
    default generator checks when ``generator`` (the config has ``generator:``)."""
    return [n for n, c in _REGISTRY.items()
            if c.default and (c.family == "data" or generator)]


def build_checks(spec: dict[str, dict[str, Any]] | None,
                 source: str | None = None, *, generator: bool = False) -> list[Check]:
    """Instantiate checks from the config's ``checks:`` mapping (None = the defaults, with
    the generator checks when ``generator``)."""
    if spec is None:
        spec = {name: {} for name in default_checks(generator=generator)}
    out = []
    for name, settings in spec.items():
        if name not in _REGISTRY:
            raise ConfigError(f"unknown check (available: {', '.join(sorted(_REGISTRY))})",
                              source=source, key=f"checks.{name}")
        try:
            out.append(_REGISTRY[name](**(settings or {})))
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(["checks", name, *[str(p) for p in err["loc"]]])
            msg = ("unknown key" if err["type"] == "extra_forbidden"
                   else err["msg"].removeprefix("Value error, "))
            raise ConfigError(msg, source=source, key=key) from None
    return out


def run_check(check: Check, ctx: Context, *, debug: bool = False) -> CheckResult:
    """Run one check; a check that raises gives status ``error`` and the audit goes on."""
    t0 = time.perf_counter()
    reason = check.applies(ctx)
    if reason:
        log.info("check %s: skipped (%s)", check.name, reason)
        return CheckResult(check=check.name, status="skipped", error=reason)
    log.info("check %s ...", check.name)
    try:
        result = check.run(ctx)
    except Exception as exc:
        if debug:
            raise
        log.warning("check %s failed: %s", check.name, exc)
        log.debug("%s", traceback.format_exc())
        return CheckResult(check=check.name, status="error",
                           error=f"{exc.__class__.__name__}: {exc}",
                           seconds=time.perf_counter() - t0)
    return dataclasses.replace(result, seconds=time.perf_counter() - t0)
