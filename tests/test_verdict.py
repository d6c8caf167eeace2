"""Issue 12: the verdict says how it was reached (``verdict_reason``), and ``fail_on``
gates on the severity of flagged findings."""
from __future__ import annotations

import json

import numpy as np
import pytest

from audit.findings import AuditResult, CheckResult, Finding, GateOutcome
from conftest import blobs, load_findings


def _f(i: int, severity: str) -> Finding:
    return Finding(id=f"f{i}", check="outliers", severity=severity, title="t", summary="s",
                   metric="outliers.fraction", value=0.1, p_value=1e-6)


def _result(severities, gates=(), fail_on="never", errored=False) -> AuditResult:
    checks = [CheckResult("outliers", "ok",
                          findings=tuple(_f(i, s) for i, s in enumerate(severities)))]
    if errored:
        checks.append(CheckResult("holes", "error", error="boom"))
    return AuditResult(run={"name": "x"}, checks=checks, gates=list(gates), points={},
                       geometry={}, timings={}, fail_on=fail_on)


PASS_GATE = GateOutcome("clusters.count", ">=", 2, 4.0, True, "pass",
                        "clusters.count >= 2: value 4 -> pass")
FAIL_GATE = GateOutcome("clusters.count", "<=", 1, 4.0, False, "fail",
                        "clusters.count <= 1: value 4 -> FAIL")
CRIT4 = ["critical"] * 4


@pytest.mark.parametrize("sev,gates,fail_on,errored,verdict,reason", [
    (CRIT4, [PASS_GATE], "never", False, "pass",
     "every gate passed; 4 critical findings are not gated (fail_on: never)"),
    (CRIT4 + ["warning", "info"], [], "never", False, "pass",
     "no gates configured; 4 critical and 1 warning findings are not gated (fail_on: never)"),
    (["warning"], [PASS_GATE], "critical", False, "pass",
     "every gate passed; 1 warning finding is below fail_on: critical"),
    (["warning", "info"], [PASS_GATE], "warning", False, "fail",
     "every gate passed; fail_on: warning and 1 finding(s) are warning or worse"),
    (CRIT4 + ["warning"], [], "critical", False, "fail",
     "no gates configured; fail_on: critical and 4 finding(s) are critical"),
    (["info"], [PASS_GATE], "warning", False, "pass",
     "every gate passed; no critical or warning findings"),
    (["critical"], [PASS_GATE, FAIL_GATE], "never", False, "fail",
     "1 of 2 gate(s) failed: clusters.count <= 1: value 4 -> FAIL; "
     "1 critical finding is not gated (fail_on: never)"),
    ([], [PASS_GATE], "never", True, "error",
     "every gate passed; 1 check(s) errored (holes); no critical or warning findings"),
])
def test_verdict_and_its_reason(sev, gates, fail_on, errored, verdict, reason):
    r = _result(sev, gates, fail_on, errored)
    assert (r.verdict, r.verdict_reason) == (verdict, reason)
    assert r.to_json()["run"]["verdict_reason"] == reason


@pytest.fixture
def flagged_case(write_case):
    """Blobs with planted exact duplicates and far outliers: flagged findings, no gates."""
    x, _ = blobs(400, 6, seed=3)
    x = np.concatenate([x, x[:40], x[:6] * 0 + 80.0 + np.arange(6)[:, None]]).astype(np.float32)
    return write_case(x)


def _with(cfg, **keys):
    import yaml
    doc = yaml.safe_load(cfg.read_text())
    doc.update(keys)
    cfg.write_text(yaml.safe_dump(doc))
    return cfg


def test_fail_on_gates_the_cli_exit_code_on_real_findings(flagged_case, run_cli, tmp_path):
    code, _, err = run_cli("run", flagged_case, "--out", tmp_path / "a", "-q")
    doc = load_findings(tmp_path / "a")
    flagged = [f["severity"] for f in doc["findings"] if f["severity"] != "info"]
    assert flagged, "the planted duplicates/outliers should be flagged"
    assert code == 0 and doc["run"]["verdict"] == "pass"        # default: never
    assert doc["run"]["verdict_reason"].startswith("no gates configured; ")
    assert "not gated (fail_on: never)" in doc["run"]["verdict_reason"]
    summary = (tmp_path / "a" / "summary.md").read_text()
    assert f"Verdict: {doc['run']['verdict_reason']}." in summary
    html = (tmp_path / "a" / "report.html").read_text()
    assert doc["run"]["verdict_reason"] in html

    worst = "critical" if "critical" in flagged else "warning"
    _with(flagged_case, fail_on=worst)
    code, _, err = run_cli("run", flagged_case, "--out", tmp_path / "b", "-q")
    doc = load_findings(tmp_path / "b")
    assert code == 1 and doc["run"]["verdict"] == "fail", err
    n = sum(s == "critical" for s in flagged) if worst == "critical" else len(flagged)
    assert f"fail_on: {worst} and {n} finding(s)" in doc["run"]["verdict_reason"]
    assert json.loads(json.dumps(doc["run"]["config"]))["fail_on"] == worst


def test_fail_on_refuses_an_unknown_severity(flagged_case, run_cli, tmp_path):
    _with(flagged_case, fail_on="high")
    code, _, err = run_cli("run", flagged_case, "--out", tmp_path / "o", "-q")
    assert code == 2 and "fail_on" in err and "Traceback" not in err, err
