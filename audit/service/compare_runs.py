"""Comparisons of two stored audits, made with the library's ``compare`` and kept in the store.

A comparison is computed once per (baseline, candidate, gates) and stored under
``comparisons/{baseline}-{candidate}/{policy}/`` (``comparison.json`` and ``report.html``),
where ``policy`` is a short hash of the gates and ``fail_on``: changing the project's gates
makes a new comparison, asking again with the same ones reads the stored one.

A project's baseline policy (the gates a new audit's comparison is held to, and
``fail_on``) lives in ``Project.baseline_gates`` and ``Project.baseline_fail_on``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from .db import Audit, Project
from .state import ServiceState

__all__ = [
    "FAIL_ON",
    "GATE_PREFIXES",
    "baseline_policy",
    "compare_folders",
    "comparison",
    "comparison_prefix",
    "key_lock",
    "parse_gates",
    "save_comparison",
    "set_baseline_policy",
    "side_folder",
]

log = logging.getLogger("audit")

FAIL_ON = ("never", "warning", "critical")
#: a baseline gate reads the comparison's metrics: these families only
GATE_PREFIXES = ("compare.", "delta.")

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def key_lock(key: str) -> Iterator[None]:
    """One thread at a time per ``key`` in this process (a comparison being written, a
    folder being materialised)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        yield


def parse_gates(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Gates as ``{metric, op, threshold}`` dicts, from ``"metric op number"`` strings or
    dicts (the config's syntax, :func:`audit.config.parse_gates`); ``ValueError`` naming
    the gate when one is malformed, not finite or not on a comparison metric
    (``compare.*``, ``delta.*``)."""
    from ..config import parse_gates as parse_config_gates
    out = []
    for i, gate in enumerate(parse_config_gates(list(items))):
        if not math.isfinite(gate.threshold):
            raise ValueError(f"gates[{i}]: the threshold must be a finite number")
        if not gate.metric.startswith(GATE_PREFIXES):
            raise ValueError(f"gates[{i}]: {gate.metric!r} is not a comparison metric (a "
                             "baseline gate reads compare.* or delta.* metrics)")
        out.append({"metric": gate.metric, "op": gate.op, "threshold": gate.threshold})
    return out


def baseline_policy(project: Project) -> tuple[list[dict[str, Any]], str]:
    """The project's baseline gates and ``fail_on``."""
    gates = [{"metric": g["metric"], "op": g["op"], "threshold": float(g["threshold"])}
             for g in project.baseline_gates or [] if isinstance(g, dict) and "metric" in g]
    return gates, project.baseline_fail_on or "never"


def set_baseline_policy(project: Project, gates: list[dict[str, Any]], fail_on: str) -> None:
    project.baseline_gates = list(gates)
    project.baseline_fail_on = fail_on


def _policy_hash(gates: list[dict[str, Any]], fail_on: str) -> str:
    text = json.dumps({"gates": gates, "fail_on": fail_on}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def comparison_prefix(baseline_id: int, candidate_id: int, gates: list[dict[str, Any]],
                      fail_on: str) -> str:
    return f"comparisons/{int(baseline_id)}-{int(candidate_id)}/{_policy_hash(gates, fail_on)}"


def side_folder(state: ServiceState, audit: Audit) -> Path:
    """A local folder holding ``audit``'s run (its store included); ``ValueError`` when it
    was pushed without ``store/``."""
    if not audit.has_store:
        raise ValueError(f"audit {audit.id} was stored without its latents (store/): it "
                         "cannot be compared; push the run folder with its store/")
    with key_lock("materialize:" + audit.prefix):
        return state.store.materialize(audit.prefix, state.cache)


def compare_folders(baseline: Path, candidate: Path, gates: list[dict[str, Any]],
                    fail_on: str):
    """The library's comparison of two local run folders (``audit.compare.Comparison``)."""
    from ..compare import compare, load_side
    base = load_side(baseline, role="baseline")
    cand = load_side(candidate, role="candidate")
    return compare(base, cand, gates=[(g["metric"], g["op"], g["threshold"]) for g in gates],
                   fail_on=fail_on)  # type: ignore[arg-type]


def save_comparison(state: ServiceState, result, prefix: str, baseline_id: int,
                    candidate_id: int) -> dict[str, Any]:
    """Write ``result``'s ``comparison.json`` and ``report.html`` under ``prefix``; the
    sides are named by their audits (``/audits/{id}``), not by server paths. Returns what
    :func:`comparison` returns."""
    doc = result.to_json()
    doc["run"]["baseline"]["path"] = f"/audits/{int(baseline_id)}"
    doc["run"]["candidate"]["path"] = f"/audits/{int(candidate_id)}"
    from ..report import write_comparison
    state.cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=state.cache, prefix="cmp-") as tmp:
        paths = write_comparison(doc, result.points, Path(tmp))
        report_key = f"{prefix}/report.html"
        state.store.put_file(report_key, paths["report"])
        state.store.put_file(f"{prefix}/summary.md", paths["summary"])
        # written last: its presence says the comparison is complete
        state.store.put_file(f"{prefix}/comparison.json", paths["comparison"])
    return {"json": doc, "report_key": report_key, "verdict": doc["verdict"]}


def _load_saved(state: ServiceState, prefix: str) -> dict[str, Any] | None:
    if not state.store.exists(f"{prefix}/comparison.json"):
        return None
    doc = json.loads(state.store.read_bytes(f"{prefix}/comparison.json"))
    report_key = f"{prefix}/report.html"
    return {"json": doc, "report_key": report_key if state.store.exists(report_key) else None,
            "verdict": doc.get("verdict")}


def _policy_for(session: Session, baseline: Audit, candidate: Audit) -> tuple[list, str]:
    """The gates a comparison is held to: the candidate project's when ``baseline`` is that
    project's pinned baseline, else none."""
    project = session.get(Project, candidate.project_id)
    if project is not None and project.baseline_audit_id == baseline.id:
        return baseline_policy(project)
    return [], "never"


def comparison(state: ServiceState, baseline_id: int, candidate_id: int) -> dict[str, Any]:
    """The comparison of two audits: ``{"json": comparison document, "report_key": artifact
    key of its report.html (or None), "verdict": ...}``, computed once and stored.

    Raises ``LookupError`` when an audit does not exist, ``ValueError`` when one cannot be
    compared (stored without ``store/``, or the library refuses the pair, e.g. too few
    shared ids).
    """
    from ..errors import AuditError
    with state.session() as s:
        rows = {a.id: a for a in (s.get(Audit, int(baseline_id)), s.get(Audit, int(candidate_id)))
                if a is not None}
        for role, i in (("baseline", baseline_id), ("candidate", candidate_id)):
            if int(i) not in rows:
                raise LookupError(f"{role}: audit {int(i)} does not exist")
        base, cand = rows[int(baseline_id)], rows[int(candidate_id)]
        gates, fail_on = _policy_for(s, base, cand)
    prefix = comparison_prefix(base.id, cand.id, gates, fail_on)
    saved = _load_saved(state, prefix)
    if saved is not None:
        return saved
    with key_lock("comparison:" + prefix):
        saved = _load_saved(state, prefix)           # made meanwhile by another request
        if saved is not None:
            return saved
        base_dir, cand_dir = side_folder(state, base), side_folder(state, cand)
        try:
            result = compare_folders(base_dir, cand_dir, gates, fail_on)
        except AuditError as exc:
            raise ValueError(f"audits {base.id} and {cand.id} cannot be compared: {exc}") \
                from None
        try:
            return save_comparison(state, result, prefix, base.id, cand.id)
        except BaseException:
            state.store.delete(prefix)
            raise
