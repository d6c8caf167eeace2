"""A finished run folder stored as an audit: checked, summarised, compared, written.

One path for both ways a run arrives: an upload (:mod:`.api`, the files of a multipart
request) and a job (:func:`ingest_folder`, a local folder). Every file name passes
:func:`check_name` (a run folder's names only, nothing that leaves the store),
``findings.json`` must validate against ``audit/schema/findings-v1.json``, and the files
are staged under ``staging/<random>/`` and moved to ``audits/{id}/`` inside the transaction
that inserts the audit's row, so a half-written run is never an audit: on any failure what
was written is deleted.

With a pinned baseline, the new audit is compared with it before it is stored
(:mod:`.compare_runs`), and its release verdict is the worse of its own and the
comparison's.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .auth import valid_project_name
from .compare_runs import (
    baseline_policy,
    compare_folders,
    comparison_prefix,
    key_lock,
    save_comparison,
    side_folder,
)
from .db import Audit, MetricValue, Project
from .state import ServiceState
from .store import UnsafeName, clean_relpath

__all__ = [
    "FINDINGS",
    "RUN_FILES",
    "STORE_FOLDERS",
    "BadUpload",
    "Entry",
    "check_name",
    "ingest_folder",
    "read_findings",
    "release_verdict",
    "store_run",
    "summarize",
]

log = logging.getLogger("audit")

FINDINGS = "findings.json"
#: the files a run folder holds at its top level
RUN_FILES = frozenset({FINDINGS, "report.html", "summary.md", "per_sample.parquet",
                       "comparison.json", "comparison.html", "comparison.md"})
#: the folders a run folder holds (latent stores), with anything inside
STORE_FOLDERS = frozenset({"store", "reference-store"})
#: longest text fields (the database's column widths)
FIELD_LIMITS = {"version": 200, "commit": 100, "name": 200}
MAX_LABELS_BYTES = 8192
#: a metric value's name in ``metric_values`` recording a run gate's outcome
#: (1 pass, 0 fail, null error); ``:`` never occurs in a metric's first part
GATE_METRIC = "gate:"
_INT_MAX = 2**31 - 1


class BadUpload(ValueError):
    """The run is refused: a bad file name, a missing or invalid findings.json, a bad
    field. The message names the file or field (the API answers 400 with it)."""


@dataclass(frozen=True)
class Entry:
    """One file of a run: its relative name and how to open it for reading."""
    name: str
    open: Callable[[], AbstractContextManager[IO[bytes]]]


def check_name(name: str) -> str:
    """``name`` as a clean relative path of a run folder's file, or :class:`BadUpload`."""
    try:
        clean = clean_relpath(name)
    except UnsafeName as exc:
        raise BadUpload(f"file name refused: {exc}") from None
    parts = clean.split("/")
    if (len(parts) == 1 and clean in RUN_FILES) or (len(parts) > 1 and parts[0] in STORE_FOLDERS):
        return clean
    raise BadUpload(f"file name refused: {name!r} is not a file of a run folder "
                    f"({', '.join(sorted(RUN_FILES))}, or under "
                    f"{'/, '.join(sorted(STORE_FOLDERS))}/)")


@lru_cache(maxsize=1)
def _validator():
    from importlib import resources

    import jsonschema
    schema = json.loads(resources.files("audit").joinpath("schema/findings-v1.json")
                        .read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def read_findings(data: bytes) -> dict[str, Any]:
    """Parse and validate ``findings.json``; :class:`BadUpload` naming where it fails."""
    try:
        doc = json.loads(data.decode("utf-8"), parse_float=_finite,
                         parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadUpload(f"{FINDINGS}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise BadUpload(f"{FINDINGS}: not a JSON object")
    errors = sorted(_validator().iter_errors(doc),
                    key=lambda e: (len(e.absolute_path), [str(p) for p in e.absolute_path]))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(document)"
        raise BadUpload(f"{FINDINGS}: does not match the schema latent-audit/findings/v1 at "
                        f"{where}: {err.message[:300]}")
    return doc


def _gate_status(gate: Mapping[str, Any]) -> str:
    if gate.get("status") in ("pass", "fail", "error"):
        return str(gate["status"])
    if gate.get("passed"):
        return "pass"
    return "error" if gate.get("value") is None else "fail"


def summarize(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What the database keeps of a validated findings document: verdict, its reason,
    counts by severity, n, dim, name, every metric, and each run gate's outcome."""
    run = doc["run"]
    statuses = [(str(g["metric"]), _gate_status(g)) for g in doc.get("gates", [])]
    verdict = run.get("verdict")
    if verdict is None:
        verdict = ("fail" if any(s == "fail" for _, s in statuses) else
                   "error" if any(s == "error" for _, s in statuses) else "pass")
    counts = {"critical": 0, "warning": 0, "info": 0}
    for f in doc["findings"]:
        counts[f["severity"]] += 1
    metrics: dict[str, float | None] = {}
    for name, value in doc["metrics"].items():
        if len(name) > 190:
            raise BadUpload(f"{FINDINGS}: metrics: a metric name is longer than 190 "
                            f"characters ({name[:40]!r}...)")
        try:
            metrics[name] = None if value is None else _finite(str(float(value)))
        except (ValueError, OverflowError):
            raise BadUpload(f"{FINDINGS}: metrics/{name}: not a finite number") from None
    for name, status in statuses:
        if len(name) <= 190:
            metrics[GATE_METRIC + name] = {"pass": 1.0, "fail": 0.0}.get(status)
    for key in ("n", "dim"):
        if run[key] > _INT_MAX:
            raise BadUpload(f"{FINDINGS}: run/{key}: too large")
    return {"verdict": verdict, "verdict_reason": str(run.get("verdict_reason") or ""),
            **counts, "n": int(run["n"]), "dim": int(run["dim"]),
            "name": str(run["name"])[:FIELD_LIMITS["name"]], "metrics": metrics}


def release_verdict(own: str, comparison: str | None, *, compared: bool) -> str:
    """``fail`` when the run or its comparison failed, ``error`` when either errored (or a
    baseline comparison could not be made), else ``pass``."""
    verdicts = {own, comparison or ("error" if compared else "pass")}
    return "fail" if "fail" in verdicts else "error" if "error" in verdicts else "pass"


def _check_fields(version: str, commit: str, name: str,
                  labels: Mapping[str, Any] | None) -> dict[str, Any]:
    for key, value in (("version", version), ("commit", commit), ("name", name)):
        if not isinstance(value, str):
            raise BadUpload(f"{key}: must be a string")
        if len(value) > FIELD_LIMITS[key]:
            raise BadUpload(f"{key}: longer than {FIELD_LIMITS[key]} characters")
    labels = dict(labels or {})
    try:
        size = len(json.dumps(labels, allow_nan=False))
    except (TypeError, ValueError):
        raise BadUpload("labels: must be a JSON object of plain values") from None
    if size > MAX_LABELS_BYTES:
        raise BadUpload(f"labels: larger than {MAX_LABELS_BYTES} bytes of JSON")
    return labels


def _project_id(state: ServiceState, project: str) -> int:
    """The project's id, creating it when needed (safe when two requests race)."""
    for _ in range(3):
        try:
            with state.session() as s:
                row = s.scalar(select(Project).where(Project.name == project))
                if row is None:
                    row = Project(name=project)
                    s.add(row)
                    s.flush()
                return row.id
        except IntegrityError:
            continue                                  # created meanwhile: read it again
    raise RuntimeError(f"could not create project {project!r}")


def _move(state: ServiceState, src: str, dst: str) -> None:
    """Move the files under ``src`` to ``dst`` in the artifact store (a rename when the
    store is a local folder)."""
    store = state.store
    state.store.delete(dst)                   # leftovers of a rolled-back id, never an audit
    if store.local:
        target = store.local_path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(store.local_path(src), target)
    else:
        store.fs.mv(f"{store.root}/{clean_relpath(src)}", f"{store.root}/{clean_relpath(dst)}",
                    recursive=True)


def _baseline(state: ServiceState, project_id: int):
    """The project's baseline audit row (or None) and its gates and ``fail_on``."""
    with state.session() as s:
        project = s.get(Project, project_id)
        base = s.get(Audit, project.baseline_audit_id) if project.baseline_audit_id else None
        gates, fail_on = baseline_policy(project)
    return base, gates, fail_on


def _compare_with(state: ServiceState, base: Audit, candidate: Path | None,
                  gates: list, fail_on: str):
    """``(result, error)``: the library's comparison with the baseline, or why none."""
    from ..errors import AuditError
    if candidate is None:
        return None, ("this audit was stored without its latents (store/): it cannot be "
                      f"compared with the baseline (audit {base.id}); push it with store/")
    try:
        return compare_folders(side_folder(state, base), candidate, gates, fail_on), None
    except (AuditError, ValueError) as exc:
        return None, f"the comparison with the baseline (audit {base.id}) failed: {exc}"
    except Exception as exc:
        log.exception("comparison with baseline %s failed", base.id)
        return None, (f"the comparison with the baseline (audit {base.id}) failed: internal "
                      f"error {exc.__class__.__name__}: {exc}")


def _keep_comparison(state: ServiceState, result, baseline_id: int, candidate_id: int,
                     gates: list, fail_on: str) -> None:
    """Store the upload's comparison where :func:`.compare_runs.comparison` finds it; on
    failure it is only logged (it is made again when asked for)."""
    prefix = comparison_prefix(baseline_id, candidate_id, gates, fail_on)
    try:
        with key_lock("comparison:" + prefix):
            save_comparison(state, result, prefix, baseline_id, candidate_id)
    except Exception:
        log.exception("the comparison of audits %s and %s was not stored", baseline_id,
                      candidate_id)
        state.store.delete(prefix)


def store_run(state: ServiceState, project: str, entries: Sequence[Entry], *,
              version: str = "", commit: str = "", labels: Mapping[str, Any] | None = None,
              name: str = "", source: str = "push", local: Path | None = None) -> dict[str, Any]:
    """Check, summarise, compare and store one run; returns the upload's response dict.

    ``local`` is the run as a local folder when it is one (a job's), so the comparison
    reads it in place. Raises :class:`BadUpload` for a run that is refused.
    """
    if not valid_project_name(project):
        raise BadUpload(f"project: {project!r} is not a valid project name (letters, digits, "
                        "._-, at most 100, starting with a letter or digit)")
    names = [check_name(e.name) for e in entries]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise BadUpload(f"file {n!r}: given twice")
        seen.add(n)
    if FINDINGS not in seen:
        raise BadUpload(f"{FINDINGS}: missing (the run folder's findings document is required)")
    labels = _check_fields(version, commit, name, labels)
    by_name = dict(zip(names, entries))
    with by_name[FINDINGS].open() as f:
        summary = summarize(read_findings(f.read()))
    metrics = summary.pop("metrics")
    has_store = "store/manifest.json" in seen
    project_id = _project_id(state, project)

    staging = f"staging/{uuid.uuid4().hex}"
    size = 0
    materialized: Path | None = None
    prefix = None
    try:
        for n in names:
            with by_name[n].open() as src:
                size += state.store.put_stream(f"{staging}/{n}", src)
        base, gates, fail_on = _baseline(state, project_id)
        result = error = None
        if base is not None:
            if has_store and local is None:
                local = materialized = state.store.materialize(staging, state.cache)
            result, error = _compare_with(state, base, local if has_store else None,
                                          gates, fail_on)
        cmp_verdict = result.verdict if result is not None else None
        with state.session() as s:
            audit = Audit(project_id=project_id, name=name or summary["name"], version=version,
                          commit=commit, labels=labels, source=source,
                          verdict=summary["verdict"], verdict_reason=summary["verdict_reason"],
                          critical=summary["critical"], warning=summary["warning"],
                          info=summary["info"], n=summary["n"], dim=summary["dim"],
                          files=sorted(names), has_store=has_store, size_bytes=size,
                          baseline_id=base.id if base is not None else None,
                          comparison_verdict=cmp_verdict, comparison_error=error,
                          release_verdict=release_verdict(summary["verdict"], cmp_verdict,
                                                          compared=base is not None))
            s.add(audit)
            s.flush()
            audit.prefix = prefix = f"audits/{audit.id}"
            s.add_all(MetricValue(audit_id=audit.id, project_id=project_id, name=k, value=v)
                      for k, v in metrics.items())
            _move(state, staging, prefix)
            s.flush()
        prefix = None                           # committed: nothing to undo from here on
        if result is not None:                  # after the commit: no lock held meanwhile
            _keep_comparison(state, result, base.id, audit.id, gates, fail_on)
        log.info("audit %s stored in project %s (%s, release %s)", audit.id, project,
                 audit.verdict, audit.release_verdict)
        return {"id": audit.id, "project": project, "verdict": audit.verdict,
                "release_verdict": audit.release_verdict, "baseline_id": audit.baseline_id,
                "comparison_verdict": audit.comparison_verdict,
                "comparison_error": audit.comparison_error, "url": f"/audits/{audit.id}"}
    except BaseException:
        if prefix is not None:
            try:
                state.store.delete(prefix)
            except Exception:
                log.exception("could not delete %s after a failed ingest", prefix)
        raise
    finally:
        try:
            state.store.delete(staging)
        except Exception:
            log.exception("could not delete %s", staging)
        if materialized is not None and not state.store.local:
            shutil.rmtree(materialized, ignore_errors=True)


def ingest_folder(state: ServiceState, project: str, folder: Path, *, version: str = "",
                  commit: str = "", labels: Mapping[str, Any] | None = None, name: str = "",
                  source: str = "job") -> dict[str, Any]:
    """Store a finished local run folder as an audit of ``project`` (what a job does with
    its output); returns the same dict as the upload. Files that are not part of a run
    folder (a lock file, ...) are left out."""
    folder = Path(folder)
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(folder).as_posix()
        try:
            check_name(rel)
        except BadUpload:
            log.debug("ingest: %s left out (not a run folder's file)", rel)
            continue
        entries.append(Entry(name=rel, open=(lambda p=path: open(p, "rb"))))
    return store_run(state, project, entries, version=version, commit=commit, labels=labels,
                     name=name, source=source, local=folder)
