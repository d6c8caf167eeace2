"""`latent-audit compare` end to end: two runs (or stores) in, comparison.json out (issue 14)."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import blobs

from audit.cli import main
from audit.compare import compare, load_side
from audit.errors import InputError

SCHEMA_DOC = json.loads(resources.files("audit").joinpath("schema/comparison-v1.json")
                        .read_text())
N, D = 600, 8


def validate(doc: dict) -> None:
    jsonschema.Draft202012Validator(
        SCHEMA_DOC, format_checker=jsonschema.FormatChecker()).validate(doc)


def _variants() -> dict[str, tuple[np.ndarray, list[str]]]:
    x, labels = blobs(N, D, centers=3, seed=0)
    ids = [f"p{i}" for i in range(N)]
    rng = np.random.default_rng(1)
    q = np.linalg.qr(rng.normal(size=(D, D)))[0]
    scrambled = x.copy()
    blob = labels == 0               # one blob's rows permuted: its neighbourhoods fall apart
    scrambled[blob] = scrambled[blob][rng.permutation(int(blob.sum()))]
    noisy = x + 0.4 * rng.standard_normal(x.shape).astype(np.float32)
    return {"base": (x, ids), "rotated": ((2.5 * x @ q).astype(np.float32), ids),
            "scrambled": (scrambled, ids), "noisy": (noisy, ids),
            "disjoint": (x, [f"q{i}" for i in range(N)])}, labels


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One small audit per variant (clusters and outliers only), written by `run`."""
    root = tmp_path_factory.mktemp("compare_runs")
    variants, labels = _variants()
    out = {}
    for name, (x, ids) in variants.items():
        np.save(root / f"{name}.npy", x)
        pd.DataFrame({"id": ids, "shape": np.array(["a", "b", "c"])[labels]}) \
          .to_csv(root / f"{name}.csv", index=False)
        cfg = {"name": name, "seed": 0, "geometry": {"map": "pca"},
               "data": {"latents": f"{name}.npy", "metadata": f"{name}.csv"},
               "checks": {"clusters": {}, "outliers": {}}}
        (root / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
        code = main(["run", str(root / f"{name}.yaml"), "--out", str(root / name), "-q"])
        assert code == 0, name
        out[name] = root / name
    return out


def _doc(out: Path) -> dict:
    return json.loads((out / "comparison.json").read_text())


def test_rotated_copy_passes_and_validates(runs, run_cli, tmp_path):
    out = tmp_path / "cmp"
    code, _, err = run_cli("compare", runs["base"], runs["rotated"], "--out", out,
                           "--gate", "compare.cka_linear >= 0.99")
    assert code == 0, err
    doc = _doc(out)
    validate(doc)
    assert doc["schema"] == "latent-audit/comparison/v1"
    assert doc["verdict"] == "pass" and doc["gates"][0]["status"] == "pass"
    m = doc["metrics"]
    assert m["compare.cka_linear"] > 0.99 and m["compare.knn_overlap"] > 0.99
    assert m["compare.matched"] == 1.0 and doc["run"]["matched"] == N
    assert "delta.clusters.count" in m                      # both sides are runs
    assert not [f for f in doc["findings"] if f["severity"] != "info"]
    assert all(f["check"] == "compare" for f in doc["findings"])
    assert doc["run"]["baseline"] == {"path": str(runs["base"]), "kind": "run", "n": N,
                                      "dim": D, "name": "base"}
    assert doc["findings_diff"]["summary"]["appeared"] == 0
    assert "PASS" in err and "600 points matched" in err
    # written beside comparison.json when the renderers are installed
    renderers = resources.files("audit").joinpath("report/compare_html.py").is_file()
    assert (out / "report.html").exists() == renderers


def test_scrambled_blob_is_a_neighbourhood_finding(runs, run_cli, tmp_path):
    out = tmp_path / "cmp"
    code, _, err = run_cli("compare", runs["base"], runs["scrambled"], "--out", out)
    assert code == 0, err                                   # findings alone do not fail
    doc = _doc(out)
    validate(doc)
    hood = [f for f in doc["findings"] if f["id"].startswith("compare-neighbourhood-")]
    assert hood and hood[0]["severity"] in ("warning", "critical")
    assert hood[0]["p_value"] <= 0.05
    _, labels = _variants()
    blob = {f"p{i}" for i in np.flatnonzero(labels == 0)}
    ev = set(hood[0]["evidence_ids"])
    assert len(ev & blob) / len(ev) > 0.9 and len(ev) > 0.7 * len(blob)
    # a neighbourhood gone to chance is critical, and --fail-on critical fails on it
    assert hood[0]["severity"] == "critical"
    code, _, _ = run_cli("compare", runs["base"], runs["scrambled"], "--out", out,
                         "--fail-on", "critical", "-q")
    assert code == 1 and _doc(out)["verdict"] == "fail"


def test_failed_gate_exits_1(runs, run_cli, tmp_path):
    out = tmp_path / "cmp"
    code, _, err = run_cli("compare", runs["base"], runs["noisy"], "--out", out,
                           "--gate", "compare.cka_linear >= 0.999", "-q")
    assert code == 1, err
    doc = _doc(out)
    validate(doc)
    assert doc["verdict"] == "fail" and doc["gates"][0]["status"] == "fail"
    assert "compare.cka_linear >= 0.999" in doc["verdict_reason"]


def test_gate_on_unknown_metric_is_an_error_verdict(runs, run_cli, tmp_path):
    code, _, _ = run_cli("compare", runs["base"], runs["rotated"], "--out", tmp_path / "c",
                         "--gate", "compare.nope <= 1", "-q")
    assert code == 3 and _doc(tmp_path / "c")["verdict"] == "error"


def test_store_folders_compare(runs, run_cli, tmp_path):
    out = tmp_path / "cmp"
    code, _, err = run_cli("compare", runs["base"] / "store", runs["rotated"] / "store",
                           "--out", out, "-q")
    assert code == 0, err
    doc = _doc(out)
    validate(doc)
    assert doc["run"]["baseline"]["kind"] == "store"
    assert doc["findings_diff"] is None
    assert not any(k.startswith("delta.") for k in doc["metrics"])


@pytest.mark.parametrize("bad", [["missing"], ["gate"], ["disjoint"], ["not_a_side"]])
def test_bad_input_exits_2_with_one_line(runs, run_cli, tmp_path, bad):
    out = tmp_path / "cmp"
    base, cand, extra = runs["base"], runs["rotated"], []
    if bad == ["missing"]:
        cand = tmp_path / "nowhere"
    elif bad == ["gate"]:
        extra = ["--gate", "compare.cka_linear is big"]
    elif bad == ["disjoint"]:
        cand = runs["disjoint"]
    else:
        cand = tmp_path / "empty"
        cand.mkdir()
    code, _, err = run_cli("compare", base, cand, "--out", out, *extra)
    assert code == 2, err
    assert "Traceback" not in err and not (out / "comparison.json").exists()
    if bad == ["missing"]:
        assert str(cand) in err and len(err.strip().splitlines()) == 1
    if bad == ["disjoint"]:
        assert "only 0 point ids match" in err and "600 points" in err
    if bad == ["not_a_side"]:
        assert str(cand) in err and "neither a run folder" in err


def test_unreadable_findings_json_names_the_path(runs, tmp_path):
    side = tmp_path / "run"
    side.mkdir()
    (side / "findings.json").write_text("{not json")
    with pytest.raises(InputError, match="findings.json"):
        load_side(side)


def test_points_are_aligned_and_sampled(runs):
    base, cand = load_side(runs["base"]), load_side(runs["rotated"])
    c = compare(base, cand, seed=3)
    p = c.points
    assert p["sampled"] is False and len(p["ids"]) == N and p["score"].dtype == np.float32
    assert p["base_xy"].shape == p["cand_xy"].shape == (N, 2)
    # a rotated, rescaled copy lands on the baseline's map after the 2-D Procrustes
    spread = np.abs(p["base_xy"]).max()
    assert np.abs(p["base_xy"] - p["cand_xy"]).max() < 1e-3 * spread
    small = compare(base, cand, seed=3, max_points=100)
    assert small.points["sampled"] is True and len(small.points["ids"]) == 100
    assert small.points["n_total"] == N
    assert c.to_json()["metrics"] == compare(base, cand, seed=3).to_json()["metrics"]


def test_probes_default_to_the_candidate_runs_attributes(runs):
    """A candidate that no longer encodes ``shape`` shows a probe drop with an interval
    below zero; the columns come from the candidate run's ``run.attributes``."""
    from audit.compare import Side
    from audit.latents import LatentSet
    base = load_side(runs["base"])
    noise = np.random.default_rng(5).standard_normal((N, D)).astype(np.float32)
    lost = LatentSet(latents=noise, metadata=base.latents.metadata.copy(),
                     ids=base.latents.ids.copy(), source="noise")
    cand = Side(path=Path("noise"), kind="run", latents=lost, name="noise",
                findings={"run": {"attributes": ["shape"], "protected": []},
                          "metrics": {}, "findings": []})
    c = compare(base, cand, seed=0, n_bootstrap=200)
    (p,) = c.probes
    assert p.column == "shape" and p.score_base > 0.95 and p.ci_delta[1] < 0
    assert c.metrics["compare.probe.shape.delta"] == pytest.approx(p.delta)
    assert [f.metric for f in c.findings if f.severity != "info"
            and f.metric.startswith("compare.probe.")] == ["compare.probe.shape.delta"]
    validate(c.to_json())
    assert compare(base, cand, seed=0, attributes=[]).probes == []     # explicit: none
