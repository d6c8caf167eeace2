"""The one exception type library code raises for bad config or input.

The CLI turns it into a one-line message and exit code 2; library code never exits.
"""
from __future__ import annotations

from pathlib import Path


class AuditError(Exception):
    """Bad config or input. ``source`` names the file, ``key`` the config key or column."""

    def __init__(self, message: str, *, source: str | Path | None = None,
                 key: str | None = None) -> None:
        self.message = message
        self.source = str(source) if source is not None else None
        self.key = key
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.key:
            where.append(f"key '{self.key}'")
        prefix = ": ".join([", ".join(where)]) + ": " if where else ""
        return f"{prefix}{self.message}"


class ConfigError(AuditError):
    """The YAML config is malformed or names an unknown key or a bad value."""


class InputError(AuditError):
    """An input file or array is unreadable, has the wrong shape, or does not match."""
