"""What one run of the bias check shares between its questions: the family of tests that
goes into one Benjamini–Hochberg correction, the info findings, unique finding ids, the
groups of each protected column, and the number formats of titles and summaries."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...columns import MISSING, Groups, slug
from ...context import Context
from ...findings import Finding
from ...metrics import benjamini_hochberg

__all__ = ["Test", "Ids", "Grouping", "BiasRun", "pct", "num"]


def pct(v: float) -> str:
    """A rate as a percentage with one decimal; ``–`` when undefined."""
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def num(v: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; ``–`` when undefined."""
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}g}"


@dataclass
class Test:
    """One p-value of the BH family and how to turn it into a finding."""
    p: float
    passes: bool                     # the effect size passes the minimum
    strong: bool                     # ... and the "critical" threshold
    make: Callable[[str, float], Finding]
    always: bool                     # give an info finding even when not flagged
    row: dict[str, Any] = field(default_factory=dict)   # table row to annotate with q


class Ids:
    """Finding ids ``bias-<part>-<part>...``, made unique within the run by a suffix."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, *parts: Any) -> str:
        base = "bias-" + "-".join(slug(p) for p in parts)
        out, k = base, 2
        while out in self.seen:
            out, k = f"{base}-{k}", k + 1
        self.seen.add(out)
        return out


@dataclass
class Grouping:
    """One protected column as groups (:func:`audit.columns.group_column`): its position
    among the protected columns, its name in metric keys, and which groups are large
    enough to test."""
    index: int
    column: str
    key: str
    groups: Groups
    names: np.ndarray                # group of every row, missing rows named MISSING
    sizes: dict[str, int]
    tested: list[str]
    untested: list[str]

    @property
    def labels(self) -> np.ndarray:
        return self.groups.labels

    @property
    def in_tested(self) -> np.ndarray:
        return np.isin(self.names, self.tested)

    @property
    def missing_fraction(self) -> float:
        return float(np.mean(self.names == MISSING))


class BiasRun:
    """The state of one run of the check: the tests collected for the BH correction."""

    def __init__(self, settings: Any, ctx: Context) -> None:
        self.settings = settings
        self.ctx = ctx
        self.ids = Ids()
        self.tests: list[Test] = []
        self.info: list[Finding] = []
        self.groupings: dict[str, Grouping] = {}
        self.cache: dict[str, Any] = {}          # products shared by the columns

    def add(self, test: Test) -> None:
        self.tests.append(test)

    def note(self, finding: Finding) -> None:
        """An info finding that is no test (untested groups, a question not run)."""
        self.info.append(finding)

    def resolve(self, metrics: dict[str, float]) -> list[Finding]:
        """One BH correction over every test; flagged findings first, then the info ones."""
        ps = np.array([t.p if t.p is not None and math.isfinite(t.p) else np.nan
                       for t in self.tests], dtype=float)
        if len(ps):
            rejected, q = benjamini_hochberg(ps, alpha=self.settings.alpha)
        else:
            rejected, q = np.zeros(0, bool), np.zeros(0)
        out: list[Finding] = []
        n_flagged = 0
        for t, rej, qv in zip(self.tests, rejected, q):
            flagged = bool(rej) and t.passes
            qv = float(qv) if math.isfinite(qv) else None
            t.row["q"] = qv
            t.row["flagged"] = flagged
            if flagged:
                n_flagged += 1
                out.append(t.make("critical" if t.strong else "warning", qv))
            elif t.always:
                out.append(t.make("info", qv))
        metrics["bias.tests"] = float(len(self.tests))
        metrics["bias.flagged"] = float(n_flagged)
        return out + self.info
