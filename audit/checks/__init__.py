"""Checks: one module each, discovered through the registry.

Every module in this package is imported here, so a new check is one new file with a
``@register``-ed class; nothing else needs editing.
"""
import importlib
import pkgutil

from .base import (Check, CheckSettings, available_checks, build_checks, default_checks,
                   register, run_check)

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod != "base" and not _mod.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["Check", "CheckSettings", "available_checks", "build_checks", "default_checks",
           "register", "run_check"]
