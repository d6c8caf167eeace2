"""Result objects: ``Finding``, ``CheckResult``, ``GateOutcome``, ``AuditResult``.

Plain, JSON-ready data with no markup. ``AuditResult.to_json()`` is findings.json
(schema ``latent-audit/findings/v1``, documented in docs/findings-schema.md).
"""
from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np


def natural_key(s: str) -> tuple:
    """Sort key that orders the numbers inside a string numerically ("#2" before "#10")."""
    import re
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", s))

SCHEMA = "latent-audit/findings/v1"
Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
Status = Literal["ok", "error", "skipped"]

__all__ = ["SCHEMA", "PER_SAMPLE_FILE", "Finding", "CheckResult", "GateOutcome", "AuditResult",
           "evaluate_gate", "jsonable", "per_sample_columns"]

#: the file beside findings.json that holds every per-sample column (``write_outputs``)
PER_SAMPLE_FILE = "per_sample.parquet"


def jsonable(x: Any) -> Any:
    """Turn numpy scalars/arrays and tuples into plain JSON values; NaN/Inf become None."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [jsonable(v) for v in x.tolist()]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


@dataclass(frozen=True)
class Finding:
    """One thing the audit found, with its evidence and the statistic behind it.

    ``severity``: ``info`` (context, never flagged), ``warning`` or ``critical`` (flagged:
    these always carry a p-value or a confidence interval).
    """

    id: str
    check: str
    severity: Severity
    title: str
    summary: str
    metric: str
    value: float | None
    threshold: float | None = None
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    subjects: dict[str, Any] = field(default_factory=dict)
    evidence_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"unknown severity {self.severity!r}")
        if self.severity != "info" and self.p_value is None and self.ci is None:
            raise ValueError(f"flagged finding {self.id} needs a p-value or an interval")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence_ids"] = [str(e) for e in self.evidence_ids]
        d["ci"] = list(self.ci) if self.ci is not None else None
        return jsonable(d)


@dataclass(frozen=True)
class CheckResult:
    """What one check returned: metrics, per-sample columns, findings, and display data.

    ``per_sample`` columns follow ``<check>_score`` in [0, 1] (lower = more severe) and
    ``is_<check>_issue``; every numeric one (bool, int or float, shape (N,)) reaches the
    report's map and ``per_sample.parquet`` as ``<check>.<column>``. ``tables`` holds
    plain data the report draws (no markup); ``display`` lists the figures to draw from
    it, each ``{"kind": ..., **params}`` (a kind of the check's own is drawn by
    ``report/assets/figures/<check>.js``, kinds being namespaced per check; built-in kinds
    such as ``histogram`` serve every check). ``images`` maps a key to a uint8 image
    (H×W×C) the report may show, e.g. decoded latents.
    """

    check: str
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    per_sample: dict[str, np.ndarray] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    display: tuple[dict[str, Any], ...] = ()
    images: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def per_sample_columns(checks: list[CheckResult], n: int) -> dict[str, np.ndarray]:
    """Every numeric per-sample column of ``checks`` (bool, integer or float, shape
    ``(n,)``), keyed ``<check>.<column>``, in check order."""
    out: dict[str, np.ndarray] = {}
    for c in checks:
        for name, arr in c.per_sample.items():
            arr = np.asarray(arr)
            if arr.shape == (n,) and arr.dtype.kind in "biuf":
                out[f"{c.check}.{name}"] = arr
    return out


def _column_summary(name: str, arr: np.ndarray) -> dict[str, Any]:
    """One entry of findings.json's ``per_sample.columns``: name, check, dtype and the
    finite range and mean (null when no value is finite; booleans count as 0/1)."""
    f = arr.astype(np.float64)
    f = f[np.isfinite(f)]
    stats = ({"min": float(f.min()), "max": float(f.max()), "mean": float(f.mean())}
             if f.size else {"min": None, "max": None, "mean": None})
    return {"name": name, "check": name.split(".", 1)[0], "dtype": str(arr.dtype), **stats}


@dataclass(frozen=True)
class GateOutcome:
    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    status: Literal["pass", "fail", "error"]
    details: str

    def to_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def failing_findings(findings, fail_on: str) -> list[Finding]:
    """Flagged findings at or above the ``fail_on`` severity (none for ``never``): what
    fails a run's or a comparison's verdict besides its gates."""
    if fail_on not in ("warning", "critical"):
        return []
    bar = SEVERITY_RANK[fail_on]
    return [f for f in findings if f.severity != "info" and SEVERITY_RANK[f.severity] <= bar]


_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
        "==": operator.eq}


def evaluate_gate(metric: str, op: str, threshold: float,
                  metrics: dict[str, float]) -> GateOutcome:
    """Compare one metric with its threshold. A missing or NaN metric fails closed."""
    label = f"{metric} {op} {threshold:g}"
    if metric not in metrics:
        close = [m for m in metrics if m.split(".")[0] == metric.split(".")[0]][:5]
        hint = f"; metrics of that check: {', '.join(close)}" if close else ""
        return GateOutcome(metric, op, threshold, None, False, "error",
                           f"{label}: metric not produced by this run{hint}")
    value = metrics[metric]
    if value is None or not math.isfinite(value):
        return GateOutcome(metric, op, threshold, None, False, "error",
                           f"{label}: metric is undefined (NaN) in this run")
    ok = bool(_OPS[op](value, threshold))
    return GateOutcome(metric, op, threshold, float(value), ok, "pass" if ok else "fail",
                       f"{label}: value {value:.4g} -> {'pass' if ok else 'FAIL'}")


@dataclass
class AuditResult:
    """Everything one run produced; renderers read only this."""

    run: dict[str, Any]
    checks: list[CheckResult]
    gates: list[GateOutcome]
    points: dict[str, Any]            # ids, map coords, per-point columns for the report
    geometry: dict[str, Any]          # what the shared geometry did (dims kept, samples)
    timings: dict[str, float]
    thumbnails: dict[str, str] = field(default_factory=dict)
    fail_on: Literal["never", "warning", "critical"] = "never"   # config ``fail_on``
    ids: np.ndarray | None = None     # every data point's id, in order (per_sample rows)
    #: metrics computed beside the checks: with ``baseline:``, the comparison's
    #: ``compare.*`` and ``delta.*`` (gates, findings.json and the reports see them)
    extra_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for c in self.checks:
            out.update(c.metrics)
        out.update({k: v for k, v in self.geometry.get("metrics", {}).items()})
        out.update(self.extra_metrics)
        return dict(sorted(out.items()))

    @property
    def findings(self) -> list[Finding]:
        all_f = [f for c in self.checks for f in c.findings]
        return sorted(all_f, key=lambda f: (SEVERITY_RANK[f.severity], f.check, natural_key(f.id)))

    @property
    def errored(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "error"]

    def _failing_findings(self) -> list[Finding]:
        return failing_findings(self.findings, self.fail_on)

    @property
    def verdict(self) -> Literal["pass", "fail", "error"]:
        if any(not g.passed for g in self.gates) or self._failing_findings():
            return "fail"
        if self.errored:
            return "error"
        return "pass"

    @property
    def verdict_reason(self) -> str:
        """How the verdict was reached, in one plain sentence (for people, not parsers)."""
        flagged = [f for f in self.findings if f.severity != "info"]
        counts = [(s, sum(f.severity == s for f in flagged)) for s in ("critical", "warning")]
        said = " and ".join(f"{n} {s}" for s, n in counts if n)
        failed = [g for g in self.gates if not g.passed]
        failing = self._failing_findings()
        parts: list[str] = []
        if failed:
            parts.append(f"{len(failed)} of {len(self.gates)} gate(s) failed: "
                         + "; ".join(g.details for g in failed[:3])
                         + ("; …" if len(failed) > 3 else ""))
        if failing:
            parts.append(f"fail_on: {self.fail_on} and {len(failing)} finding(s) are "
                         f"{self.fail_on}{' or worse' if self.fail_on == 'warning' else ''}")
        if self.errored:
            parts.append(f"{len(self.errored)} check(s) errored ("
                         + ", ".join(c.check for c in self.errored) + ")")
        if not failed:
            parts.insert(0, "every gate passed" if self.gates else "no gates configured")
        if said and not failing:
            gated = {"never": "not gated (fail_on: never)",
                     "critical": "below fail_on: critical"}.get(self.fail_on, "not gated")
            noun = "finding is" if len(flagged) == 1 else "findings are"
            parts.append(f"{said} {noun} {gated}")
        elif not said:
            parts.append("no critical or warning findings")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return jsonable({
            "schema": SCHEMA,
            "run": {**self.run, "verdict": self.verdict,
                    "verdict_reason": self.verdict_reason, "timings": self.timings,
                    "geometry": {k: v for k, v in self.geometry.items() if k != "metrics"},
                    "checks": {c.check: {"status": c.status, "error": c.error,
                                         "seconds": round(c.seconds, 3)}
                               for c in self.checks}},
            "metrics": self.metrics,
            "findings": [f.to_json() for f in self.findings],
            "gates": [{"metric": g.metric, "op": g.op, "threshold": g.threshold,
                       "value": g.value, "passed": g.passed, "status": g.status,
                       "details": g.details} for g in self.gates],
            "per_sample": {"file": PER_SAMPLE_FILE,
                           "columns": [_column_summary(k, v) for k, v in
                                       self.per_sample.items()]},
        })

    @property
    def per_sample(self) -> dict[str, np.ndarray]:
        """Every numeric per-sample column of the checks, ``<check>.<column>``."""
        return per_sample_columns(self.checks, int(self.run.get("n", -1)))
