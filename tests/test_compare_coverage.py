"""Coverage of a shared reference, baseline against candidate (issue 14, item 5)."""
from __future__ import annotations

import json
from importlib import resources

import jsonschema
import numpy as np
import pytest
from conftest import blobs

from audit.compare.coverage import COVERAGE_METRICS, coverage_change

D = 8


def _blobs(rng, n_per, centers, spread=1.0):
    x = np.concatenate([c + spread * rng.standard_normal((n_per, D)) for c in centers])
    lab = np.repeat(np.arange(len(centers)), n_per)
    return x, lab


def _centers(seed=123):
    return np.random.default_rng(seed).normal(scale=12.0, size=(5, D))


def _planted(seed):
    rng = np.random.default_rng(seed)
    centers = _centers()
    ref, ref_lab = _blobs(rng, 80, centers)
    base, _ = _blobs(rng, 200, centers)
    cand, _ = _blobs(rng, 250, centers[1:])             # blob 0 is missing
    return ref, ref_lab, base, cand


@pytest.mark.parametrize("seed", [0, 1])
def test_missing_blob_is_one_lost_region(seed):
    ref, lab, base, cand = _planted(seed)
    ids = np.array([f"r{i}" for i in range(len(ref))])
    c = coverage_change(base, ref, cand, ref, k=5, rng=np.random.default_rng(seed), ids=ids)
    assert c.delta < 0 and c.ci[1] < 0 and c.p_value < 1e-6
    assert c.base > 0.9 and c.cand < c.base - 0.1
    flagged = [f for f in c.findings if f.severity != "info"]
    assert len(flagged) == 1
    f = flagged[0]
    assert f.id == "compare-coverage-lost-1" and f.metric == "compare.coverage.lost"
    assert f.severity == "critical" and f.p_value < 0.05
    assert f.value == len(f.evidence_ids)
    truth = set(ids[lab == 0])
    got = set(f.evidence_ids)
    assert len(got & truth) / len(got) >= 0.8
    assert len(got & truth) / len(truth) >= 0.8
    m = c.metrics()
    assert set(m) == set(COVERAGE_METRICS)
    assert m["compare.coverage.delta_low"] <= m["compare.coverage.delta"] \
        <= m["compare.coverage.delta_high"]
    assert m["compare.coverage.lost"] == c.lost and c.lost >= len(got)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotated_rescaled_candidate_changes_nothing(seed):
    rng = np.random.default_rng(100 + seed)
    centers = _centers()
    ref, _ = _blobs(rng, 80, centers)
    base, _ = _blobs(rng, 200, centers)
    q = np.linalg.qr(rng.normal(size=(D, D)))[0]
    cand = 3.0 * (base + 0.05 * rng.standard_normal(base.shape)) @ q + 7.0
    cand_ref = 3.0 * ref @ q + 7.0
    c = coverage_change(base, ref, cand, cand_ref, k=5, rng=np.random.default_rng(seed))
    assert c.ci[0] <= 0 <= c.ci[1]
    assert abs(c.delta) < 0.02
    assert not [f for f in c.findings if f.severity != "info"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_redrawn_candidate_flags_no_region(seed):
    """Few data points per blob: many reference points change sides by chance, in
    patches; none of the patches is a finding."""
    rng = np.random.default_rng(900 + seed)
    centers = _centers()
    ref, _ = _blobs(rng, 200, centers)
    base, _ = _blobs(rng, 25, centers)
    cand, _ = _blobs(rng, 25, centers)
    c = coverage_change(base, ref, cand, ref, k=5, rng=np.random.default_rng(seed))
    assert c.lost > 100 and c.findings                  # regions were tested
    assert c.ci[0] <= 0 <= c.ci[1] or abs(c.delta) < 0.1
    assert not [f for f in c.findings if f.severity != "info"]


def test_wide_sides_go_through_pca_and_same_seed_same_result():
    rng = np.random.default_rng(5)
    ref, _, base, cand = _planted(3)
    proj = rng.normal(size=(D, 80))                   # > 64 dims: the PCA path
    args = (base @ proj, ref @ proj, cand @ proj, ref @ proj)
    a = coverage_change(*args, k=5, rng=np.random.default_rng(9))
    b = coverage_change(*args, k=5, rng=np.random.default_rng(9))
    assert a.to_json() == b.to_json()
    assert [f.to_json() for f in a.findings] == [f.to_json() for f in b.findings]
    assert a.delta < 0 and a.ci[1] < 0


def test_no_change_no_discordance():
    ref, _, base, _ = _planted(4)
    c = coverage_change(base, ref, base, ref, k=5, rng=np.random.default_rng(0))
    assert c.delta == 0 and c.ci == (0.0, 0.0) and c.p_value == 1.0
    assert c.lost == c.gained == 0 and not c.findings


def test_compare_cli_reports_coverage(write_case, run_cli, tmp_path):
    x, _ = blobs(600, D, centers=3, seed=0)
    ref, _ = blobs(300, D, centers=3, seed=1)
    q = np.linalg.qr(np.random.default_rng(2).normal(size=(D, D)))[0]
    sides = {"base": (x, ref), "cand": ((2.0 * x @ q).astype(np.float32),
                                        (2.0 * ref @ q).astype(np.float32))}
    runs = {}
    for name, (lat, r) in sides.items():          # one after the other: same config file
        cp = write_case(lat, reference=r, latents_name=f"{name}.npy",
                        config={"checks": {"coverage": {}}})
        code, _, err = run_cli("run", cp, "--out", tmp_path / name, "-q")
        assert code == 0, err
        assert (tmp_path / name / "reference-store").is_dir()
        runs[name] = tmp_path / name
    code, _, err = run_cli("compare", runs["base"], runs["cand"], "--out",
                           tmp_path / "cmp", "-q")
    assert code == 0, err
    doc = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    schema = json.loads(resources.files("audit").joinpath("schema/comparison-v1.json")
                        .read_text())
    jsonschema.Draft202012Validator(schema,
                                    format_checker=jsonschema.FormatChecker()).validate(doc)
    cov = doc["coverage"]
    assert cov is not None and cov["n"] == 300
    assert cov["ci"][0] <= 0 <= cov["ci"][1] and cov["lost"] == cov["gained"] == 0
    assert doc["metrics"]["compare.coverage.delta"] == 0
