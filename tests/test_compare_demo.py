"""`latent-audit demo --compare`: two demo VAEs audited and compared, no config (issue 14)."""
from __future__ import annotations

import json
from importlib import resources

import jsonschema

from audit.cli import main

SCHEMA_DOC = json.loads(resources.files("audit").joinpath("schema/comparison-v1.json")
                        .read_text())


def test_demo_compare_writes_both_audits_and_their_comparison(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--compare", "--n", "600", "--epochs", "3", "--out", str(out), "-q"])
    assert code == 0                                   # no comparison gates by default
    for sub in ("baseline", "candidate"):
        assert (out / sub / "findings.json").exists() and (out / sub / "store").is_dir()
    base = json.loads((out / "baseline" / "findings.json").read_text())
    cand = json.loads((out / "candidate" / "findings.json").read_text())
    assert base["run"]["dim"] == 8 and cand["run"]["dim"] == 6
    assert base["run"]["name"] == "demo" and cand["run"]["name"] == "demo-candidate"

    doc = json.loads((out / "comparison" / "comparison.json").read_text())
    jsonschema.Draft202012Validator(
        SCHEMA_DOC, format_checker=jsonschema.FormatChecker()).validate(doc)
    assert doc["verdict"] == "pass" and doc["gates"] == []
    m = doc["metrics"]
    assert m["compare.matched"] == 1.0 and doc["run"]["matched"] == 600  # same ids
    assert 0.0 < m["compare.cka_linear"] < 1.0                  # similar, not identical
    assert 0.0 < m["compare.knn_overlap"] < 1.0
    assert doc["run"]["baseline"]["dim"] == 8 and doc["run"]["candidate"]["dim"] == 6
    assert any(k.startswith("delta.") for k in m)               # both sides are runs
    err = capsys.readouterr().err
    assert "demo --compare" in err and str(out / "comparison") in err
