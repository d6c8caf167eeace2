"""`baseline: PATH` in a run config: the run audits the candidate and adds the comparison
with a previous run, its metrics usable in gates (issue 14)."""
from __future__ import annotations

import json
from importlib import resources
import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import blobs, load_findings

from audit.cli import main
from audit.config import load_config
from audit.preflight import COMPARE_METRICS, _check_compare_metric, metric_declared

SCHEMA_DOC = json.loads(resources.files("audit").joinpath("schema/comparison-v1.json")
                        .read_text())
CHECKS = {"clusters": {}, "outliers": {}}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """A tiny baseline run (600 × 8 blobs, clusters and outliers), written by `run`."""
    root = tmp_path_factory.mktemp("baseline")
    x, labels = blobs()
    np.save(root / "latents.npy", x)
    pd.DataFrame({"id": [f"p{i}" for i in range(len(x))],
                  "shape": np.array(["a", "b", "c"])[labels]}).to_csv(root / "meta.csv",
                                                                     index=False)
    cfg = {"name": "base", "seed": 0, "geometry": {"map": "pca"}, "checks": CHECKS,
           "data": {"latents": "latents.npy", "metadata": "meta.csv"}}
    (root / "base.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(root / "base.yaml"), "--out", str(root / "out_base"), "-q"]) == 0
    return root / "out_base", x


def _candidate(write_case, baseline, gates, **extra):
    """A rotated, rescaled copy of the baseline's latents, with ``baseline:`` set."""
    out_base, x = baseline
    q = np.linalg.qr(np.random.default_rng(1).normal(size=(x.shape[1],) * 2))[0]
    cfg = {"name": "cand", "checks": CHECKS, "gates": gates,
           "baseline": str(out_base), **extra}
    return _with_meta(write_case, (2.5 * x @ q).astype(np.float32), cfg)


def _with_meta(write_case, latents, cfg):
    _, labels = blobs()
    meta = pd.DataFrame({"id": [f"p{i}" for i in range(len(latents))],
                         "shape": np.array(["a", "b", "c"])[labels]})
    return write_case(latents, meta, cfg)


def test_baseline_run_passes_and_writes_the_comparison(write_case, run_cli, baseline,
                                                       tmp_path):
    cp = _candidate(write_case, baseline, ["compare.cka_linear >= 0.99",
                                           "delta.clusters.count == 0"])
    out = tmp_path / "out"
    code, _, err = run_cli("run", cp, "--out", out, "-q")
    assert code == 0, err
    doc = json.loads((out / "comparison.json").read_text())
    jsonschema.Draft202012Validator(
        SCHEMA_DOC, format_checker=jsonschema.FormatChecker()).validate(doc)
    assert doc["run"]["baseline"]["kind"] == "run"
    assert doc["run"]["candidate"]["path"] == str(out)
    assert doc["run"]["matched"] == 600
    assert doc["metrics"]["compare.cka_linear"] > 0.99
    assert doc["findings_diff"] is not None                 # both sides are audits
    assert not [f for f in doc["findings"] if f["severity"] != "info"]   # a rotation
    assert [g["metric"] for g in doc["gates"]] == ["compare.cka_linear",
                                                   "delta.clusters.count"]
    findings = load_findings(out)
    m = findings["metrics"]
    assert m["compare.cka_linear"] == pytest.approx(doc["metrics"]["compare.cka_linear"])
    assert m["delta.clusters.count"] == 0
    assert all(g["status"] == "pass" for g in findings["gates"])
    assert findings["run"]["baseline"]["file"] == "comparison.json"
    assert not any(f["check"] == "compare" for f in findings["findings"])
    assert (out / "comparison.html").stat().st_size > 1000
    md = (out / "comparison.md").read_text()
    assert "comparison.html" in md and "`report.html`" not in md
    assert (out / "report.html").exists() and (out / "summary.md").exists()
    # every compare.* metric the comparison emitted is one preflight declares
    for name in doc["metrics"]:
        assert metric_declared(name, COMPARE_METRICS)
        if name.startswith("compare."):
            _check_compare_metric(load_config(cp), name, [], "<t>", "gates[0]")
    # a second run into the same folder replaces it (the comparison's files are ours)
    code, _, err = run_cli("run", cp, "--out", out, "-q")
    assert code == 0, err


def test_failing_comparison_gate_exits_1(write_case, run_cli, baseline, tmp_path):
    cp = _candidate(write_case, baseline, ["compare.knn_overlap < 0.5"])
    code, _, err = run_cli("run", cp, "--out", tmp_path / "out", "-q")
    assert code == 1, err
    gates = load_findings(tmp_path / "out")["gates"]
    assert gates[0]["metric"] == "compare.knn_overlap" and gates[0]["status"] == "fail"


def test_missing_baseline_is_refused_by_validate_and_run(write_case, run_cli, tmp_path):
    cp = write_case(config={"baseline": "nowhere"})
    for cmd in (("validate", cp), ("run", cp, "--out", tmp_path / "out")):
        code, _, err = run_cli(*cmd)
        assert code == 2, (cmd, err)
        assert "key 'baseline'" in err and str(tmp_path / "nowhere") in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "plain").mkdir()                    # a folder that is neither
    cp = write_case(config={"baseline": "plain"})
    code, _, err = run_cli("validate", cp)
    assert code == 2 and "neither a run folder" in err and "key 'baseline'" in err


def test_comparison_gate_without_baseline_is_refused(write_case, run_cli):
    cp = write_case(config={"checks": CHECKS, "gates": ["compare.knn_overlap >= 0.9"]})
    code, _, err = run_cli("validate", cp)
    assert code == 2
    assert "gates[0]" in err and "baseline" in err and "compare.knn_overlap" in err


@pytest.mark.parametrize("gate, checks, msg", [
    ("compare.knn_overlapp >= 0.9", CHECKS, "does not produce metric"),
    ("compare.probe.colour.delta <= 0.1", CHECKS, "attribute and protected columns"),
    ("delta.holes.count <= 0", CHECKS, "this run produces no metric 'holes.count'"),
    ("delta.coverage.coverage >= 0", {**CHECKS, "coverage": {}}, "a reference"),
    ("delta.holes.count <= 0", {**CHECKS, "holes": {}}, "reports no finite value"),
])
def test_comparison_gates_are_checked_before_compute(write_case, run_cli, baseline, gate,
                                                     checks, msg):
    cp = _candidate(write_case, baseline, [gate], checks=checks)
    code, _, err = run_cli("validate", cp)
    assert code == 2, err
    assert msg in err and "gates[0]" in err


def test_store_baseline_gives_no_deltas(write_case, run_cli, baseline, tmp_path):
    out_base, _ = baseline
    cp = _candidate(write_case, baseline, ["delta.clusters.count == 0"])
    raw = yaml.safe_load(cp.read_text())
    raw["baseline"] = str(out_base / "store")
    cp.write_text(yaml.safe_dump(raw))
    code, _, err = run_cli("validate", cp)
    assert code == 2 and "latent store" in err


def test_baseline_run_with_a_shared_reference_compares_coverage(tmp_path, run_cli):
    """Both audits have the same reference: the run's in-memory reference is compared with
    the baseline's reference-store/ (issue 14, item 5); a candidate that lost one blob
    covers less of it, with an interval below zero."""
    x, labels = blobs(900, 6, centers=3, seed=4)
    ref, _ = blobs(450, 6, centers=3, seed=4)        # same centres (same seed), fresh points
    ids = [f"p{i}" for i in range(len(x))]
    np.save(tmp_path / "ref.npy", ref)
    pd.DataFrame({"id": ids}).to_csv(tmp_path / "meta.csv", index=False)
    np.save(tmp_path / "base.npy", x)
    cand = x.copy()
    lost = labels == 0                                  # the candidate collapses one blob
    cand[lost] = x[lost].mean(axis=0) + 0.01 * np.random.default_rng(0).normal(
        size=(int(lost.sum()), x.shape[1])).astype(np.float32)
    np.save(tmp_path / "cand.npy", cand.astype(np.float32))
    common = {"seed": 0, "geometry": {"map": "pca"}, "checks": CHECKS,
              "reference": {"latents": "ref.npy"}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(
        {"name": "base", "data": {"latents": "base.npy", "metadata": "meta.csv"}, **common}))
    assert run_cli("run", tmp_path / "base.yaml", "--out", tmp_path / "b", "-q")[0] == 0
    (tmp_path / "cand.yaml").write_text(yaml.safe_dump(
        {"name": "cand", "data": {"latents": "cand.npy", "metadata": "meta.csv"},
         "baseline": "b", "gates": ["compare.coverage.delta >= 0"], **common}))
    code, _, err = run_cli("run", tmp_path / "cand.yaml", "--out", tmp_path / "c", "-q")
    assert code == 1, err                                  # the coverage gate fails
    doc = json.loads((tmp_path / "c" / "comparison.json").read_text())
    cov = doc["coverage"]
    assert cov is not None and cov["n"] == 450
    assert cov["delta"] < -0.1 and cov["ci"][1] < 0
    m = load_findings(tmp_path / "c")["metrics"]
    assert m["compare.coverage.delta"] == pytest.approx(cov["delta"])
