"""One comparison end to end: two sides read from disk, every part of the core, a verdict.

:func:`load_side` reads a side (a ``latent-audit run`` output folder, or a latent store);
:func:`compare` matches the points by id and runs the core (:mod:`.metrics`,
:mod:`.neighbourhoods`, :mod:`.clusters`, :mod:`.probes`, :mod:`.findings_diff`), evaluates
the gates on the flat metrics and returns a :class:`Comparison`, whose
:meth:`Comparison.to_json` is ``comparison.json`` (schema ``latent-audit/comparison/v1``,
``audit/schema/comparison-v1.json``).

Every random draw comes from a named stream ``compare.<use>`` of the comparison's seed.
"""
from __future__ import annotations

import json
import logging
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..data.store import is_store, load_store_set
from ..errors import InputError
from ..findings import (
    SEVERITY_RANK,
    Finding,
    GateOutcome,
    evaluate_gate,
    failing_findings,
    jsonable,
    natural_key,
)
from ..latents import LatentSet
from ..streams import stream
from ._space import cluster_space
from .clusters import KINDS, ClusterMapping, cluster_labels, cluster_mapping
from .coverage import CoverageChange, coverage_change
from .findings_diff import FindingsDiff, diff_findings, diff_summary
from .match import Matched, match_ids
from .metrics import delta_metrics, similarity_metrics
from .neighbourhoods import NeighbourhoodChange, neighbourhood_change
from .probes import ProbeChange, probe_changes, probe_findings, probe_metrics

__all__ = ["COMPARISON_SCHEMA", "PLOT_POINTS", "Comparison", "Side", "compare", "load_side"]

COMPARISON_SCHEMA = "latent-audit/comparison/v1"
#: most points in the report's maps (a seeded sample beyond it, stream ``compare.plot``)
PLOT_POINTS = 50_000

log = logging.getLogger("audit")


@dataclass(frozen=True, eq=False)
class Side:
    """One side of a comparison: its latents, and its audit when it is a run folder.

    ``kind`` is ``"run"`` (a ``latent-audit run`` output folder: ``findings.json`` and the
    audited latents in ``store/``) or ``"store"`` (a latent store, ``manifest.json``);
    ``findings`` is the parsed ``findings.json`` (``None`` for a store).
    """

    path: Path
    kind: Literal["run", "store"]
    latents: LatentSet
    findings: dict[str, Any] | None
    name: str
    reference: LatentSet | None = None    # in memory (a run with ``baseline:``); else read

    def reference_set(self) -> LatentSet | None:
        """The reference this side's audit measured coverage against: in memory, or the
        run folder's ``reference-store/``; None for a store or a run without one."""
        if self.reference is not None:
            return self.reference
        folder = self.path / "reference-store"
        if self.kind != "run" or not is_store(folder):
            return None
        return load_store_set(folder, None, section=f"{self.name} reference")

    @property
    def n(self) -> int:
        return int(self.latents.latents.shape[0])

    @property
    def dim(self) -> int:
        return int(self.latents.latents.shape[1])

    def describe(self) -> dict[str, Any]:
        """The side as ``comparison.json`` names it (``run.baseline``/``run.candidate``)."""
        return {"path": str(self.path), "kind": self.kind, "n": self.n, "dim": self.dim,
                "name": self.name}


def _read_findings(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable ({exc.__class__.__name__}: {exc})",
                         source=path) from None
    if (not isinstance(doc, dict) or not isinstance(doc.get("findings"), list)
            or not isinstance(doc.get("metrics", {}), dict)):
        raise InputError("is not a latent-audit findings.json (needs a 'findings' list and "
                         "a 'metrics' map)", source=path)
    return doc


def load_side(path: str | Path, *, role: str = "side") -> Side:
    """Read one side of a comparison.

    Parameters
    ----------
    path : str or Path
        A run folder (holds ``findings.json`` and ``store/``, as ``latent-audit run``
        writes it) or a latent store folder (holds ``manifest.json``, as ``latent-audit
        encode`` writes it).
    role : str, default="side"
        ``"baseline"`` or ``"candidate"``: the key error messages name.

    Raises
    ------
    InputError
        Naming the path: it does not exist, is not a folder, is neither a run folder nor a
        store, its ``findings.json`` is unreadable, or its store is broken.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", source=p, key=role)
    if not p.is_dir():
        raise InputError("is not a folder (give a run's output folder or a latent store)",
                         source=p, key=role)
    findings_path = p / "findings.json"
    if findings_path.exists():
        doc = _read_findings(findings_path)
        store = p / "store"
        if not is_store(store):
            raise InputError("is a run folder without its latents (no store/manifest.json; "
                             "rerun the audit with this version of latent-audit, or compare "
                             "the latent store it read)", source=p, key=role)
        latents = load_store_set(store, None, section=role)
        run = doc.get("run") if isinstance(doc.get("run"), dict) else {}
        return Side(path=p, kind="run", latents=latents, findings=doc,
                    name=str(run.get("name") or p.name))
    if is_store(p):
        latents = load_store_set(p, None, section=role)
        return Side(path=p, kind="store", latents=latents, findings=None, name=p.name)
    raise InputError("is neither a run folder (findings.json and store/) nor a latent store "
                     "(manifest.json)", source=p, key=role)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for pkg in ("latent-audit", "numpy", "scikit-learn", "hdbscan", "pandas"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _worst_first(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_RANK[f.severity], natural_key(f.id)))


@dataclass(eq=False)
class Comparison:
    """Everything one comparison produced; ``to_json()`` is ``comparison.json``.

    ``points`` (for the report, not in the JSON): ``ids``, ``score`` (float32
    neighbourhood score per point), ``base_xy`` and ``cand_xy`` ((n, 2): each side's first
    two PCA components, the candidate aligned to the baseline by orthogonal Procrustes
    with scale), ``sampled`` (whether a seeded sample of at most :data:`PLOT_POINTS`
    stands for all matched points) and ``n_total`` (points matched).
    """

    run: dict[str, Any]
    metrics: dict[str, float]
    findings: list[Finding]
    gates: list[GateOutcome]
    clusters: ClusterMapping
    probes: list[ProbeChange]
    findings_diff: FindingsDiff | None
    points: dict[str, Any] = field(default_factory=dict)
    neighbourhood: NeighbourhoodChange | None = None
    matched: Matched | None = None
    fail_on: Literal["never", "warning", "critical"] = "never"
    base_metrics: dict[str, float] = field(default_factory=dict)   # the baseline audit's
    coverage: CoverageChange | None = None

    def _failing_findings(self) -> list[Finding]:
        return failing_findings(self.findings, self.fail_on)

    @property
    def verdict(self) -> Literal["pass", "fail", "error"]:
        """``fail`` when a gate fails (or a finding reaches ``fail_on``), ``error`` when a
        gate cannot be evaluated (its metric is missing or undefined), else ``pass``."""
        if any(g.status == "fail" for g in self.gates) or self._failing_findings():
            return "fail"
        if any(g.status == "error" for g in self.gates):
            return "error"
        return "pass"

    @property
    def verdict_reason(self) -> str:
        """How the verdict was reached, in one plain sentence."""
        failed = [g for g in self.gates if g.status == "fail"]
        errored = [g for g in self.gates if g.status == "error"]
        failing = self._failing_findings()
        flagged = [f for f in self.findings if f.severity != "info"]
        parts: list[str] = []
        if failed:
            parts.append(f"{len(failed)} of {len(self.gates)} gate(s) failed: "
                         + "; ".join(g.details for g in failed[:3])
                         + ("; …" if len(failed) > 3 else ""))
        if errored:
            parts.append(f"{len(errored)} gate(s) could not be evaluated: "
                         + "; ".join(g.details for g in errored[:3]))
        if not failed and not errored:
            parts.append("every gate passed" if self.gates else "no gates given")
        if failing:
            parts.append(f"fail_on: {self.fail_on} and {len(failing)} finding(s) are "
                         f"{self.fail_on}{' or worse' if self.fail_on == 'warning' else ''}")
        elif flagged:
            parts.append(f"{len(flagged)} flagged finding(s), not gated "
                         f"(fail_on: {self.fail_on})")
        else:
            parts.append("no critical or warning findings")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """``comparison.json`` (plain JSON values; NaN and infinities become ``null``)."""
        diff = None
        if self.findings_diff is not None:
            diff = {**self.findings_diff.to_json(),
                    "summary": diff_summary(self.findings_diff)}
        return jsonable({
            "schema": COMPARISON_SCHEMA,
            "run": self.run,
            "metrics": self.metrics,
            "findings": [f.to_json() for f in self.findings],
            "gates": [g.to_json() for g in self.gates],
            "verdict": self.verdict,
            "verdict_reason": self.verdict_reason,
            "clusters": self.clusters.to_json(),
            "probes": [asdict(p) for p in self.probes],
            "findings_diff": diff,
            "base_metrics": self.base_metrics,
            "coverage": self.coverage.to_json() if self.coverage is not None else None,
        })


def _gate_parts(g: Any) -> tuple[str, str, float]:
    if isinstance(g, (tuple, list)):
        metric, op, threshold = g
    else:                                       # GateConfig or anything with these fields
        metric, op, threshold = g.metric, g.op, g.threshold
    return str(metric), str(op), float(threshold)


def _columns(side: Side, explicit: Sequence[str] | None, key: str) -> list[str]:
    if explicit is not None:
        return list(explicit)
    run = (side.findings or {}).get("run")
    cols = run.get(key) if isinstance(run, dict) else None
    return [str(c) for c in cols] if isinstance(cols, list) else []


def _probe_frame(base: Side, cand: Side, m: Matched, columns: list[str]) -> pd.DataFrame:
    """The probed columns over the matched rows: the candidate's metadata first, else the
    baseline's; a column on neither side is an ``InputError``."""
    cm = cand.latents.metadata.iloc[m.cand_index].reset_index(drop=True)
    bm = base.latents.metadata.iloc[m.base_index].reset_index(drop=True)
    out = {}
    for c in columns:
        if c in cm.columns:
            out[c] = cm[c]
        elif c in bm.columns:
            out[c] = bm[c]
        else:
            raise InputError(f"column {c!r} is in neither side's metadata (candidate: "
                             f"{list(cm.columns)[:10]})", source=cand.path, key="attributes")
    return pd.DataFrame(out, index=pd.RangeIndex(m.n))


def _procrustes_2d(base: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """``cand`` rotated (or reflected) and scaled onto ``base`` (both (n, 2))."""
    mb, mc = base.mean(axis=0), cand.mean(axis=0)
    b, c = base - mb, cand - mc
    u, s, vt = np.linalg.svd(c.T @ b)
    r = u @ vt
    norm = float((c ** 2).sum())
    scale = float(s.sum()) / norm if norm > 0 else 1.0
    return c @ r * scale + mb


def _points(xb: np.ndarray, xc: np.ndarray, m: Matched, scores: np.ndarray, seed: int,
            max_points: int) -> dict[str, Any]:
    xy = {}
    for side, x in (("base", xb), ("cand", xc)):
        if x.shape[1] >= 2:
            xy[side] = cluster_space(x, rng=stream(seed, f"compare.map.{side}"),
                                     cluster_dims=2)
        else:                                   # a 1-D side: its values against zero
            xy[side] = np.column_stack([x[:, 0] - x[:, 0].mean(), np.zeros(len(x))])
    base_xy = xy["base"].astype(np.float64)
    cand_xy = _procrustes_2d(base_xy, xy["cand"].astype(np.float64))
    n = m.n
    sampled = n > max_points
    rows = (np.sort(stream(seed, "compare.plot").choice(n, size=max_points, replace=False))
            if sampled else np.arange(n))
    return {"ids": [str(i) for i in m.ids[rows]],
            "score": np.asarray(scores, dtype=np.float32)[rows],
            "base_xy": base_xy[rows].astype(np.float32),
            "cand_xy": cand_xy[rows].astype(np.float32),
            "sampled": bool(sampled), "n_total": int(n)}


#: fewest reference ids both runs' reference stores must share for the coverage change
MIN_REFERENCE_MATCH = 10


def _coverage(baseline: Side, candidate: Side, seed: int) -> CoverageChange | None:
    """The change in coverage of the reference both runs audited against (their
    ``reference-store/``, matched by id), or ``None`` when a side is not a run, has no
    reference, or fewer than :data:`MIN_REFERENCE_MATCH` reference ids match."""
    rb, rc = baseline.reference_set(), candidate.reference_set()
    if rb is None or rc is None:
        return None
    try:
        m = match_ids(rb.ids, rc.ids, min_share=0.0, min_count=MIN_REFERENCE_MATCH)
    except InputError as exc:
        log.info("compare: no coverage change (%s)", exc)
        return None
    return coverage_change(baseline.latents.latents, rb.latents[m.base_index],
                           candidate.latents.latents, rc.latents[m.cand_index],
                           rng=stream(seed, "compare.coverage"), ids=m.ids)


def compare(baseline: Side, candidate: Side, *, seed: int = 0, k: int = 15,
            gates: Sequence[Any] = (), attributes: Sequence[str] | None = None,
            protected: Sequence[str] | None = None,
            fail_on: Literal["never", "warning", "critical"] = "never",
            min_share: float = 0.5, n_bootstrap: int = 1000,
            max_points: int = PLOT_POINTS) -> Comparison:
    """Compare a candidate's latent space with a baseline's, over the points both hold.

    Parameters
    ----------
    baseline, candidate : Side
        From :func:`load_side`. The dimensions may differ.
    seed : int, default=0
        Seeds every named stream ``compare.<use>``.
    k : int, default=15
        Neighbours per point (kNN overlap and neighbourhood scores).
    gates : sequence
        ``GateConfig``s or ``(metric, op, threshold)`` tuples, evaluated on the flat
        metrics (``compare.*``, ``compare.probe.*``, ``delta.*``).
    attributes, protected : sequence of str, optional
        Metadata columns to probe in both spaces. Default: the candidate run's
        ``attributes``/``protected`` (its findings.json ``run`` section), else none.
    fail_on : {"never", "warning", "critical"}, default="never"
        Also fail when a flagged comparison finding at or above this severity exists.
    min_share : float, default=0.5
        Fewest matched points as a share of the larger side (else ``InputError``).
    n_bootstrap : int, default=1000
        Bootstrap resamples of the probe intervals.
    max_points : int, default=PLOT_POINTS
        Most points in ``Comparison.points``.

    Raises
    ------
    InputError
        Ids repeat, too few ids match (the message gives both counts), or a probed column
        is missing.
    """
    m = match_ids(baseline.latents.ids, candidate.latents.ids, min_share=min_share,
                  min_count=max(10, 2 * int(k) + 2))
    xb = np.asarray(baseline.latents.latents[m.base_index], dtype=np.float64)
    xc = np.asarray(candidate.latents.latents[m.cand_index], dtype=np.float64)

    change = neighbourhood_change(xb, xc, m.ids, k=int(k),
                                  rng=stream(seed, "compare.neighbourhood"))
    metrics: dict[str, float] = similarity_metrics(
        xb, xc, change.base_knn, change.cand_knn, matched=m.share,
        rng=stream(seed, "compare.linear_map"))
    metrics["compare.matched_count"] = float(m.n)
    metrics["compare.neighbourhood_score"] = float(np.mean(change.scores))
    metrics["compare.neighbourhood_changed"] = float(np.mean(change.low))

    lb = cluster_labels(xb, rng=stream(seed, "compare.clusters.baseline"))
    lc = cluster_labels(xc, rng=stream(seed, "compare.clusters.candidate"))
    mapping = cluster_mapping(lb, lc, m.ids)
    for kind in KINDS:
        metrics[f"compare.clusters.{kind}"] = float(
            sum(v == kind for v in mapping.kinds.values()))
    metrics["compare.clusters.appeared"] = float(len(mapping.appeared))

    columns = _columns(candidate, attributes, "attributes")
    prot = [c for c in _columns(candidate, protected, "protected") if c not in columns]
    probes: list[ProbeChange] = []
    if columns or prot:
        frame = _probe_frame(baseline, candidate, m, columns + prot)
        probes = probe_changes(xb, xc, frame, columns, protected=prot,
                               random_state=int(seed),
                               n_bootstrap=n_bootstrap, ids=list(m.ids))
        metrics.update(probe_metrics(probes))

    diff = None
    if baseline.kind == "run" and candidate.kind == "run":
        metrics.update(delta_metrics(baseline.findings.get("metrics") or {},
                                     candidate.findings.get("metrics") or {}))
        diff = diff_findings(baseline.findings, candidate.findings)

    cov = _coverage(baseline, candidate, int(seed))
    if cov is not None:
        metrics.update(cov.metrics())

    metrics = dict(sorted(metrics.items()))
    findings = _worst_first([*change.findings, *mapping.findings,
                             *(probe_findings(probes) if probes else []),
                             *(cov.findings if cov is not None else [])])
    outcomes = [evaluate_gate(*_gate_parts(g), metrics) for g in gates]
    run = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "seed": int(seed), "k": int(k), "versions": _versions(),
           "baseline": baseline.describe(), "candidate": candidate.describe(),
           "matched": m.n}
    return Comparison(run=run, metrics=metrics, findings=findings, gates=outcomes,
                      clusters=mapping, probes=probes, findings_diff=diff,
                      points=_points(xb, xc, m, change.scores, seed, max_points),
                      neighbourhood=change, matched=m, fail_on=fail_on,
                      base_metrics=dict((baseline.findings or {}).get("metrics") or {}),
                      coverage=cov)
