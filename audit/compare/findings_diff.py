"""Findings that appeared, were resolved, or persisted between two audits.

Two ``findings.json`` documents (schema ``latent-audit/findings/v1``) are matched by what
each finding is about, never by its position or its id (ids are numbered per run):

* **key** = ``(check, metric, canonical JSON of the identifying subjects)``. Canonical JSON
  is ``json.dumps(..., sort_keys=True)``. The identifying subjects are the finding's
  ``subjects`` less the fields that *measure* rather than *name* (:data:`MEASURED_FIELDS`:
  counts, shares, rates, example pairs... and any top-level float), since those change
  with every model: a representation gap observed 12 times in one audit and 9 in the
  next is the same gap. Pass ``ignore_fields=()`` to key on the subjects verbatim.
* Findings sharing a key are paired greedily by the largest **evidence overlap** (Jaccard
  of ``evidence_ids``), then the **closest value**, then position. Evidence comes first
  because ids are what a finding is about (two uncovered regions with swapped sizes are
  still paired with themselves); when no pair shares evidence, value alone decides.
* Unpaired baseline findings were **resolved**, unpaired candidate findings **appeared**.

With ``flagged_only`` (the default), ``info`` findings are left out on both sides, so a
finding that fell from ``warning`` to ``info`` counts as resolved.
"""
from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from audit.errors import AuditError
from audit.findings import SEVERITY_RANK

__all__ = ["MEASURED_FIELDS", "FindingsDiff", "PersistedFinding", "diff_findings",
           "diff_summary", "finding_key"]

#: subject fields the checks fill with measurements, not names (left out of the key)
MEASURED_FIELDS = frozenset({
    "observed", "expected", "n", "size", "sizes", "share", "rates", "top_dims", "pairs",
    "expected_count", "critical_count", "distance_factor", "max_depth", "composition",
    "rest_coverage", "sample_data", "sample_reference", "n_data", "n_reference",
})


def _is_float(v: Any) -> bool:
    return isinstance(v, float)


def finding_key(finding: dict, *, ignore_fields: Collection[str] = MEASURED_FIELDS
                ) -> tuple[str, str, str]:
    """``(check, metric, canonical JSON of the identifying subjects)`` of one finding.

    >>> finding_key({"check": "bias", "metric": "bias.sex.gap",
    ...              "subjects": {"group": "f", "attribute": "sex", "observed": 12}})
    ('bias', 'bias.sex.gap', '{"attribute":"sex","group":"f"}')
    """
    subjects = finding.get("subjects") or {}
    kept = {k: v for k, v in subjects.items()
            if k not in ignore_fields and not (ignore_fields and _is_float(v))}
    canon = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                       default=str)
    return (str(finding.get("check")), str(finding.get("metric")), canon)


@dataclass(frozen=True)
class PersistedFinding:
    """One finding present in both audits: both versions, and how its value moved."""

    base: dict
    cand: dict
    value_change: float | None       # cand value - base value (None if either is missing)
    evidence_jaccard: float | None   # None when neither side lists evidence

    @property
    def severity_change(self) -> int:
        """> 0: more severe in the candidate; < 0: less; 0: the same."""
        return (SEVERITY_RANK[self.base.get("severity", "info")]
                - SEVERITY_RANK[self.cand.get("severity", "info")])

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "cand": self.cand, "value_change": self.value_change,
                "evidence_jaccard": self.evidence_jaccard}


@dataclass(frozen=True)
class FindingsDiff:
    """Findings that appeared (candidate only), were resolved (baseline only), or
    persisted (both, paired), each worst first."""

    appeared: tuple[dict, ...]
    resolved: tuple[dict, ...]
    persisted: tuple[PersistedFinding, ...]

    def to_json(self) -> dict[str, Any]:
        return {"appeared": list(self.appeared), "resolved": list(self.resolved),
                "persisted": [p.to_json() for p in self.persisted]}


def _findings(doc: Any, name: str) -> list[dict]:
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list):
        raise AuditError(f"the {name} document has no 'findings' list (is it a "
                         "findings.json?)")
    bad = [i for i, f in enumerate(doc["findings"]) if not isinstance(f, dict)]
    if bad:
        raise AuditError(f"the {name} document's findings[{bad[0]}] is not an object")
    return doc["findings"]


def _value(f: dict) -> float | None:
    v = f.get("value")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _jaccard(a: dict, b: dict) -> float | None:
    ea, eb = set(map(str, a.get("evidence_ids") or ())), set(map(str, b.get("evidence_ids") or ()))
    if not ea and not eb:
        return None
    return len(ea & eb) / len(ea | eb)


def _pair_group(base: list[tuple[int, dict]], cand: list[tuple[int, dict]]
                ) -> tuple[list[tuple[dict, dict]], list[tuple[int, dict]],
                           list[tuple[int, dict]]]:
    """Greedy pairing within one key: largest Jaccard, then closest value, then order."""
    if len(base) == 1 and len(cand) == 1:
        return [(base[0][1], cand[0][1])], [], []
    options = []
    for i, (pb, fb) in enumerate(base):
        for j, (pc, fc) in enumerate(cand):
            jac = _jaccard(fb, fc) or 0.0
            vb, vc = _value(fb), _value(fc)
            dist = abs(vc - vb) if vb is not None and vc is not None else math.inf
            options.append((-jac, dist, pb, pc, i, j))
    options.sort()
    used_b, used_c, pairs = set(), set(), []
    for *_, i, j in options:
        if i in used_b or j in used_c:
            continue
        used_b.add(i)
        used_c.add(j)
        pairs.append((base[i][1], cand[j][1]))
    return (pairs, [b for i, b in enumerate(base) if i not in used_b],
            [c for j, c in enumerate(cand) if j not in used_c])


def _worst_first(items: list[tuple[int, dict]]) -> tuple[dict, ...]:
    items = sorted(items, key=lambda t: (SEVERITY_RANK.get(t[1].get("severity"), 3), t[0]))
    return tuple(f for _, f in items)


def diff_findings(base_doc: dict, cand_doc: dict, *, flagged_only: bool = True,
                  ignore_fields: Collection[str] = MEASURED_FIELDS) -> FindingsDiff:
    """Match the findings of two findings.json documents by what they are about.

    Parameters
    ----------
    base_doc, cand_doc : dict
        Parsed findings.json documents (anything with a ``findings`` list of finding
        objects, e.g. comparison.json).
    flagged_only : bool, default=True
        Leave ``info`` findings out on both sides.
    ignore_fields : collection of str, default=MEASURED_FIELDS
        Subject fields (and, unless empty, every top-level float) left out of the key.

    Returns
    -------
    FindingsDiff
        ``appeared`` and ``resolved`` findings (the documents' own dicts), worst first;
        ``persisted`` pairs in the candidate's order, worst first by the candidate's
        severity, with ``value_change = cand.value - base.value``.

    Examples
    --------
    >>> a = {"findings": [{"id": "x-1", "check": "x", "severity": "warning", "metric": "m",
    ...                    "value": 1.0, "subjects": {"cluster": 1}}]}
    >>> b = {"findings": [{"id": "x-7", "check": "x", "severity": "warning", "metric": "m",
    ...                    "value": 1.5, "subjects": {"cluster": 1}}]}
    >>> d = diff_findings(a, b)
    >>> len(d.appeared), len(d.resolved), d.persisted[0].value_change
    (0, 0, 0.5)
    """
    keep = (lambda f: f.get("severity") != "info") if flagged_only else (lambda f: True)
    sides = []
    for doc, name in ((base_doc, "baseline"), (cand_doc, "candidate")):
        groups: dict[tuple, list[tuple[int, dict]]] = {}
        for pos, f in enumerate(_findings(doc, name)):
            if keep(f):
                groups.setdefault(finding_key(f, ignore_fields=ignore_fields), []) \
                    .append((pos, f))
        sides.append(groups)
    base_groups, cand_groups = sides
    appeared: list[tuple[int, dict]] = []
    resolved: list[tuple[int, dict]] = []
    persisted: list[tuple[int, PersistedFinding]] = []
    cand_pos = {id(f): pos for items in cand_groups.values() for pos, f in items}
    for key in list(base_groups) + [k for k in cand_groups if k not in base_groups]:
        pairs, left_b, left_c = _pair_group(base_groups.get(key, []),
                                            cand_groups.get(key, []))
        resolved += left_b
        appeared += left_c
        for fb, fc in pairs:
            vb, vc = _value(fb), _value(fc)
            change = vc - vb if vb is not None and vc is not None else None
            persisted.append((cand_pos[id(fc)],
                              PersistedFinding(base=fb, cand=fc, value_change=change,
                                               evidence_jaccard=_jaccard(fb, fc))))
    persisted.sort(key=lambda t: (SEVERITY_RANK.get(t[1].cand.get("severity"), 3), t[0]))
    return FindingsDiff(appeared=_worst_first(appeared), resolved=_worst_first(resolved),
                        persisted=tuple(p for _, p in persisted))


def diff_summary(d: FindingsDiff) -> dict[str, Any]:
    """Counts of a :class:`FindingsDiff`: totals, appeared and resolved by severity,
    persisted findings that became more or less severe, and all three per check.

    >>> diff_summary(FindingsDiff((), (), ()))["appeared"]
    0
    """
    def by_severity(items) -> dict[str, int]:
        out = {s: 0 for s in sorted(SEVERITY_RANK, key=SEVERITY_RANK.get)}
        for f in items:
            sev = f.get("severity")
            out[sev] = out.get(sev, 0) + 1
        return out

    by_check: dict[str, dict[str, int]] = {}
    for label, items in (("appeared", d.appeared), ("resolved", d.resolved),
                         ("persisted", [p.cand for p in d.persisted])):
        for f in items:
            row = by_check.setdefault(str(f.get("check")),
                                      {"appeared": 0, "resolved": 0, "persisted": 0})
            row[label] += 1
    return {"appeared": len(d.appeared), "resolved": len(d.resolved),
            "persisted": len(d.persisted),
            "appeared_by_severity": by_severity(d.appeared),
            "resolved_by_severity": by_severity(d.resolved),
            "persisted_more_severe": sum(p.severity_change > 0 for p in d.persisted),
            "persisted_less_severe": sum(p.severity_change < 0 for p in d.persisted),
            "by_check": dict(sorted(by_check.items()))}
