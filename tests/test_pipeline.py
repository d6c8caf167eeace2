"""End to end on precomputed latents: the issue's config, outputs, schema, gates, seeds."""
from __future__ import annotations

import json
import re
from importlib import resources

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml

from audit.findings import SCHEMA
from conftest import blobs, load_findings

SCHEMA_DOC = json.loads(resources.files("audit").joinpath("schema/findings-v1.json")
                        .read_text())


def validate(doc: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA_DOC).validate(doc)


@pytest.fixture
def issue_config(tmp_path):
    """Exactly the config keys issue #2 spells out, with latents and metadata files."""
    x, labels = blobs(900, 16, centers=4, seed=1)
    rng = np.random.default_rng(1)
    meta = pd.DataFrame({"id": [f"img-{i}" for i in range(len(x))],
                         "shape": np.array(["square", "circle", "heart", "tri"])[labels],
                         "size": rng.random(len(x)),
                         "group": rng.choice(["A", "B"], len(x))})
    np.save(tmp_path / "latents.npy", x)
    meta.to_csv(tmp_path / "meta.csv", index=False)
    ref, rl = blobs(500, 16, centers=4, seed=1)
    np.save(tmp_path / "ref.npy", ref)
    pd.DataFrame({"id": [f"ref-{i}" for i in range(len(ref))], "shape": rl}) \
      .to_csv(tmp_path / "ref_meta.csv", index=False)
    (tmp_path / "cfg.yaml").write_text("""
name: my-audit
data:
  latents: latents.npy
  metadata: meta.csv
reference:
  latents: ref.npy
  metadata: ref_meta.csv
attributes: [shape, size]
protected: [group]
seed: 0
geometry: {map: pca}
gates:
  - clusters.noise_fraction <= 0.2
  - metric: clusters.count
    op: ">="
    threshold: 2
""")
    return tmp_path / "cfg.yaml"


def test_issue_config_end_to_end(issue_config, run_cli, tmp_path):
    out = tmp_path / "reports" / "my-model"
    code, _, err = run_cli("run", issue_config, "--out", out)
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {"findings.json", "summary.md", "report.html",
                                               "store", "reference-store",   # issue #3
                                               "per_sample.parquet"}         # issue #13
    doc = load_findings(out)
    validate(doc)
    assert doc["schema"] == SCHEMA
    assert doc["run"]["name"] == "my-audit" and doc["run"]["n"] == 900 and doc["run"]["dim"] == 16
    assert doc["run"]["config"]["attributes"] == ["shape", "size"]
    # four well-separated blobs -> four clusters, little noise
    assert doc["metrics"]["clusters.count"] == 4
    assert doc["metrics"]["clusters.noise_fraction"] < 0.1
    assert [g["passed"] for g in doc["gates"]] == [True, True]
    ids = {e for f in doc["findings"] for e in f["evidence_ids"]}
    assert ids and all(i.startswith(("img-", "ref-")) for i in ids)
    # reference ids from ref_meta.csv, data ids from meta.csv
    summary = (out / "summary.md").read_text()
    assert "PASS" in summary and "clusters.noise_fraction <= 0.2" in summary
    html = (out / "report.html").read_text()
    assert len(re.findall(r"plotly\.js v\d", html)) == 1      # plotly.js embedded once
    assert "<script src" not in html and "https://" not in html.split("plotly.js v")[0]


def test_gate_failure_exits_1(issue_config, run_cli, tmp_path):
    cfg = yaml.safe_load(issue_config.read_text())
    # a declared metric this run does not produce (no decoder) fails closed; an undeclared
    # one is refused before the run (tests/test_bad_input.py)
    cfg["gates"] = ["clusters.count <= 1", "entanglement.max_leakage_reencoded >= 0"]
    issue_config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "o"
    code, _, err = run_cli("run", issue_config, "--out", out, "-q")
    assert code == 1
    doc = load_findings(out)
    validate(doc)
    assert doc["run"]["verdict"] == "fail"
    assert [g["passed"] for g in doc["gates"]] == [False, False]
    assert doc["gates"][0]["value"] == 4.0
    assert doc["gates"][1]["status"] == "error" and "not produced" in doc["gates"][1]["details"]
    assert "FAIL" in (out / "summary.md").read_text()


def test_same_seed_same_findings(issue_config, run_cli, tmp_path):
    docs = []
    for k in range(2):
        out = tmp_path / f"o{k}"
        assert run_cli("run", issue_config, "--out", out, "-q")[0] == 0
        docs.append(load_findings(out))
    assert docs[0]["metrics"] == docs[1]["metrics"]
    assert docs[0]["findings"] == docs[1]["findings"]


def test_default_out_folder_and_python_m(issue_config, tmp_path, monkeypatch):
    import subprocess
    import sys
    monkeypatch.chdir(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "audit", "run", str(issue_config), "-q"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "reports" / "my-audit" / "findings.json").exists()


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".csv"])
def test_latent_formats_agree(write_case, run_cli, tmp_path, suffix):
    x, _ = blobs(300, 5, seed=3)
    cfg = write_case(x.astype(np.float32), latents_name=f"latents{suffix}")
    out = tmp_path / "o"
    assert run_cli("run", cfg, "--out", out, "-q")[0] == 0
    doc = load_findings(out)
    assert doc["run"]["n"] == 300 and doc["run"]["dim"] == 5
    ref_cfg = write_case(x.astype(np.float32), latents_name="latents.npy")
    assert run_cli("run", ref_cfg, "--out", tmp_path / "r", "-q")[0] == 0
    assert load_findings(tmp_path / "r")["metrics"] == doc["metrics"]


def test_metadata_without_id_uses_row_numbers(write_case, run_cli, tmp_path):
    x, labels = blobs(300, 5, seed=4)
    x[7] = x[8]                                    # an exact duplicate pair
    cfg = write_case(x, pd.DataFrame({"c": labels}), {"attributes": ["c"]})
    out = tmp_path / "o"
    assert run_cli("run", cfg, "--out", out, "-q")[0] == 0
    dup = [f for f in load_findings(out)["findings"] if f["id"] == "duplicates-within"]
    assert dup and dup[0]["evidence_ids"] == ["7", "8"]


def test_check_error_is_reported_and_exit_3(write_case, run_cli, tmp_path, monkeypatch):
    from audit.checks.outliers import OutliersCheck

    def boom(self, ctx):
        raise RuntimeError("planted failure")
    monkeypatch.setattr(OutliersCheck, "run", boom)
    cfg = write_case()
    out = tmp_path / "o"
    code, _, _ = run_cli("run", cfg, "--out", out, "-q")
    assert code == 3
    doc = load_findings(out)
    validate(doc)
    assert doc["run"]["checks"]["outliers"] == {"status": "error",
                                                "error": "RuntimeError: planted failure",
                                                "seconds": doc["run"]["checks"]["outliers"]
                                                ["seconds"]}
    assert doc["run"]["checks"]["clusters"]["status"] == "ok"
    assert "planted failure" in (out / "report.html").read_text()


def test_validate_and_checks_commands(issue_config, run_cli):
    code, out, _ = run_cli("validate", issue_config)
    assert code == 0 and out.strip().endswith(": ok")
    code, out, _ = run_cli("checks")
    assert code == 0
    for name in ("clusters", "outliers", "duplicates"):
        assert f"\n  {name}:" in out


def test_schema_rejects_a_flagged_finding_without_statistics():
    doc = {"schema": SCHEMA, "run": {"name": "x", "n": 1, "dim": 1, "seed": 0,
                                      "created": "2026-01-01T00:00:00+00:00",
                                      "versions": {}, "config": {}},
           "metrics": {}, "gates": [],
           "findings": [{"id": "a", "check": "c", "severity": "warning", "title": "",
                         "summary": "", "metric": "m", "value": 1.0, "threshold": None,
                         "p_value": None, "ci": None, "subjects": {}, "evidence_ids": []}]}
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)
    doc["findings"][0]["p_value"] = 0.01
    validate(doc)


def test_report_states_an_approximate_graph_and_its_recall(write_case, run_cli, tmp_path,
                                                            monkeypatch):
    """An approximate graph is named in the map caption with its measured recall; a recall
    below 0.9 adds the warning and what to do (the recall is forced low to see it)."""
    pytest.importorskip("faiss")
    x, labels = blobs(600, 6, seed=5)
    cfg = write_case(x, pd.DataFrame({"c": labels}), {"geometry": {"map": "pca",
                                                                   "knn": "approximate"}})
    out = tmp_path / "o"
    assert run_cli("run", cfg, "--out", out, "-q")[0] == 0
    rec = load_findings(out)["run"]["geometry"]["knn"]["knn"]["recall_at_k"]
    html = (out / "report.html").read_text()
    assert "The kNN graph every check reads is approximate (faiss.IndexHNSWFlat)" in html
    assert f"{rec:.3f}" in html and rec >= 0.9 and "below 0.9" not in html
    import audit.geometry.neighbors as context_mod
    monkeypatch.setattr(context_mod, "knn_recall", lambda found, truth: 0.5)
    low = tmp_path / "low"
    assert run_cli("run", cfg, "--out", low, "-q")[0] == 0
    html = (low / "report.html").read_text()
    assert "is 0.500 <strong>(below 0.9" in html and "geometry.knn: exact" in html
