"""The outputs of fixed-seed audits do not change when code moves (issue 13).

Each case in ``golden_cases.CASES`` is audited in full and its findings document (less
times, versions and paths) plus what the report draws (tables, figure list, per-sample
columns) is compared with ``tests/golden/<case>.json``. A deliberate change of results
(a bug fix) regenerates them: ``LATENT_AUDIT_REGEN_GOLDEN=1 pytest tests/test_golden.py``,
and the commit says why.
"""
from __future__ import annotations

import json
import os

import pytest

from audit.config import load_config
from audit.pipeline import run

from golden_cases import CASES, GOLDEN, diff, digest, normalise

REGEN = os.environ.get("LATENT_AUDIT_REGEN_GOLDEN") == "1"


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_match_the_golden(case, tmp_path):
    folder = tmp_path / case
    cfg = load_config(CASES[case](folder))
    result = run(cfg).result
    got = {"findings": normalise(result.to_json(), folder),
           "report_data": normalise(digest(result), folder)}
    got = json.loads(json.dumps(got, allow_nan=True))
    path = GOLDEN / f"{case}.json"
    if REGEN:
        path.write_text(json.dumps(got, indent=1, sort_keys=True, allow_nan=True) + "\n")
    want = json.loads(path.read_text())
    problems = diff(got, want)
    assert not problems, f"{case}: outputs changed:\n" + "\n".join(problems[:40])
    # the planted truth is still there (so a golden file regenerated from a broken run
    # cannot pass unnoticed)
    flagged = [f for f in got["findings"]["findings"] if f["severity"] in ("warning", "critical")]
    assert flagged, f"{case}: the planted structure gives no flagged finding"
