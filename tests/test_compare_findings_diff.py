"""compare.findings_diff: findings matched across two audits by what they are about
(check, metric, subjects), never by position or id."""
from __future__ import annotations

import copy
import doctest

import pytest

import audit.compare.findings_diff
from audit.compare.findings_diff import (
    FindingsDiff,
    diff_findings,
    diff_summary,
    finding_key,
)
from audit.errors import AuditError


def _f(id, check="clusters", metric="clusters.size", value=1.0, severity="warning",
       subjects=None, evidence=()):
    return {"id": id, "check": check, "severity": severity, "title": id, "summary": "",
            "metric": metric, "value": value, "threshold": None, "p_value": 0.01,
            "ci": None, "subjects": subjects if subjects is not None else {},
            "evidence_ids": list(evidence)}


def _doc(*findings):
    return {"schema": "latent-audit/findings/v1", "findings": list(findings)}


BASE = _doc(
    _f("clusters-1", subjects={"cluster": 1}, value=0.30),
    _f("bias-1", check="bias", metric="bias.sex.leakage_auc", value=0.71,
       severity="critical", subjects={"attribute": "sex", "kind": "leakage",
                                      "top_dims": [{"dim": 3, "coef": 0.4}]}),
    _f("outliers-1", check="outliers", metric="outliers.isolation_ratio", value=9.0,
       subjects={"index": 12}, evidence=["p12"]),
    _f("entanglement-probe-size", check="entanglement",
       metric="entanglement.size.probe_score", value=0.8, severity="info",
       subjects={"attributes": ["size"]}),
)


def test_reordered_and_renumbered_findings_persist():
    cand = copy.deepcopy(BASE)
    cand["findings"].reverse()
    for i, f in enumerate(cand["findings"]):
        f["id"] = f"renamed-{i}"
    cand["findings"][-1]["value"] = 0.25                       # clusters-1, now last
    cand["findings"][2]["subjects"]["top_dims"] = [{"dim": 7, "coef": -0.2}]  # measured
    d = diff_findings(BASE, cand)
    assert d.appeared == () and d.resolved == ()
    assert {p.base["id"] for p in d.persisted} == {"clusters-1", "bias-1", "outliers-1"}
    assert all(p.cand["id"].startswith("renamed-") for p in d.persisted)
    change = {p.base["id"]: p.value_change for p in d.persisted}
    assert change["clusters-1"] == pytest.approx(-0.05)
    assert change["bias-1"] == 0.0
    assert d.persisted[0].cand["severity"] == "critical"           # worst first
    assert diff_summary(d)["persisted"] == 3


def test_new_subjects_appear_and_missing_findings_are_resolved():
    cand = _doc(
        _f("c-9", subjects={"cluster": 1}, value=0.31),
        _f("c-10", subjects={"cluster": 4}, value=0.2),              # new subject
        _f("bias-3", check="bias", metric="bias.age.leakage_auc", value=0.7,
           severity="critical", subjects={"attribute": "age", "kind": "leakage"}),
    )
    d = diff_findings(BASE, cand)
    assert [f["id"] for f in d.appeared] == ["bias-3", "c-10"]       # worst first
    assert [f["id"] for f in d.resolved] == ["bias-1", "outliers-1"]
    assert [(p.base["id"], p.cand["id"]) for p in d.persisted] == [("clusters-1", "c-9")]
    s = diff_summary(d)
    assert (s["appeared"], s["resolved"], s["persisted"]) == (2, 2, 1)
    assert s["appeared_by_severity"] == {"critical": 1, "warning": 1, "info": 0}
    assert s["by_check"]["bias"] == {"appeared": 1, "resolved": 1, "persisted": 0}


def test_duplicate_keys_are_paired_by_evidence_overlap():
    # two uncovered regions under one key; their sizes swap, their points do not
    region = {"check": "coverage", "metric": "coverage.region_share"}
    base = _doc(_f("r-1", value=0.10, evidence=["a", "b", "c", "d"], **region),
                _f("r-2", value=0.12, evidence=["x", "y", "z"], **region))
    cand = _doc(_f("r-5", value=0.121, evidence=["a", "b", "c"], **region),
                _f("r-6", value=0.099, evidence=["x", "y", "z", "w"], **region))
    d = diff_findings(base, cand)
    pairs = {p.base["id"]: p.cand["id"] for p in d.persisted}
    assert pairs == {"r-1": "r-5", "r-2": "r-6"}
    assert {p.evidence_jaccard for p in d.persisted} == {0.75}
    # without evidence, the closest value decides
    for doc in (base, cand):
        for f in doc["findings"]:
            f["evidence_ids"] = []
    pairs = {p.base["id"]: p.cand["id"] for p in diff_findings(base, cand).persisted}
    assert pairs == {"r-1": "r-6", "r-2": "r-5"}
    # an extra duplicate with no match appears
    cand["findings"].append(_f("r-7", value=0.5, **region))
    d = diff_findings(base, cand)
    assert [f["id"] for f in d.appeared] == ["r-7"] and len(d.persisted) == 2


def test_info_findings_ignored_with_flagged_only():
    cand = copy.deepcopy(BASE)
    cand["findings"] = [f for f in cand["findings"] if f["severity"] == "info"]
    cand["findings"].append(_f("entanglement-probe-colour", check="entanglement",
                               metric="entanglement.colour.probe_score", severity="info",
                               subjects={"attributes": ["colour"]}))
    d = diff_findings(BASE, cand)
    assert d.appeared == () and len(d.resolved) == 3 and d.persisted == ()
    d = diff_findings(BASE, cand, flagged_only=False)
    assert [f["id"] for f in d.appeared] == ["entanglement-probe-colour"]
    assert [p.base["id"] for p in d.persisted] == ["entanglement-probe-size"]
    # a finding that fell from warning to info is resolved when only flagged ones count
    cand = copy.deepcopy(BASE)
    cand["findings"][0]["severity"] = "info"
    d = diff_findings(BASE, cand)
    assert [f["id"] for f in d.resolved] == ["clusters-1"]
    d = diff_findings(BASE, cand, flagged_only=False)
    p = next(p for p in d.persisted if p.base["id"] == "clusters-1")
    assert p.severity_change < 0 and diff_summary(d)["persisted_less_severe"] == 1


def test_key_and_bad_input():
    f = _f("x", subjects={"attribute": "sex", "group": "f", "observed": 12,
                          "expected": 20.5, "p": 0.3})
    assert finding_key(f) == ("clusters", "clusters.size", '{"attribute":"sex","group":"f"}')
    assert '"observed":12' in finding_key(f, ignore_fields=())[2]
    assert finding_key({**f, "subjects": {"group": "f", "attribute": "sex"}}) == finding_key(f)
    with pytest.raises(AuditError, match="findings"):
        diff_findings({}, BASE)
    empty = diff_findings(_doc(), _doc())
    assert empty == FindingsDiff((), (), ())
    assert empty.to_json() == {"appeared": [], "resolved": [], "persisted": []}


def test_docstring_examples():
    result = doctest.testmod(audit.compare.findings_diff, verbose=False)
    assert result.attempted >= 3 and result.failed == 0
