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


class Progress:
    """Progress of a long loop through the ``audit`` logger (so ``-q`` silences it).

    Logs ``label: done/total unit`` at about every tenth of the way and at the end; no
    terminal control codes, so the lines read the same in a CI log as in a terminal.

    >>> p = Progress("encode", total=3, unit="images")
    >>> p.update(3)
    """

    def __init__(self, label: str, total: int, *, unit: str = "items", steps: int = 10) -> None:
        self.label, self.total, self.unit = label, max(int(total), 0), unit
        self.done = 0
        self._every = max(1, -(-self.total // steps)) if self.total else 1
        self._next = self._every
        self._t0 = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.done >= self._next or self.done >= self.total:
            log = logging.getLogger("audit")
            rate = self.done / max(time.perf_counter() - self._t0, 1e-9)
            pct = 100.0 * self.done / self.total if self.total else 100.0
            log.info("%s: %d/%d %s (%.0f%%, %.1f/s)", self.label, self.done, self.total,
                     self.unit, pct, rate)
            while self._next <= self.done:
                self._next += self._every
