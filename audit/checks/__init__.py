"""Checks: one module each, discovered through the registry."""
from . import clusters, duplicates, outliers  # noqa: F401  (registration)
from .base import (Check, CheckSettings, available_checks, build_checks, default_checks,
                   register, run_check)

__all__ = ["Check", "CheckSettings", "available_checks", "build_checks", "default_checks",
           "register", "run_check"]
