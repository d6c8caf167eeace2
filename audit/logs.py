"""The one logging setup: progress and messages go to stderr through the ``audit`` logger."""
from __future__ import annotations

import logging
import sys
import time


class _Formatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self.t0 = time.perf_counter()

    def format(self, record: logging.LogRecord) -> str:
        return f"[{time.perf_counter() - self.t0:6.1f}s] {record.getMessage()}"


def setup_logging(verbosity: int = 1) -> None:
    """0 = warnings only, 1 = progress, 2 = debug."""
    log = logging.getLogger("audit")
    log.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log.addHandler(handler)
    log.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG))
    log.propagate = False
