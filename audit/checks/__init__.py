"""Checks: one module (or small package) each, discovered through the registry.

Every module and package in this package is imported here, so a new check is one new
file (or folder) with a ``@register``-ed class; nothing else needs editing.
"""
import importlib
import pkgutil

from .base import (Check, CheckSettings, available_checks, build_checks, default_checks,
                   register, run_check)

# the order checks run and appear in the report: the pipeline's own, then any others
_ORDER = ["clusters", "outliers", "duplicates", "holes", "coverage", "entanglement", "bias"]
_found = [m.name for m in pkgutil.iter_modules(__path__)]
for _mod in [m for m in _ORDER if m in _found] + sorted(set(_found) - set(_ORDER)):
    if _mod != "base" and not _mod.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["Check", "CheckSettings", "available_checks", "build_checks", "default_checks",
           "register", "run_check"]
