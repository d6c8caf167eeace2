"""Null data raises no flagged finding; degenerate data gives no statistics on nothing.

Each null set is one population with no structure to find: latents from one distribution
(isotropic, anisotropic, a dense core in a sparse halo, uniform in a cube), metadata drawn
independently of them, and a reference drawn from the same distribution. Every check runs;
none may report a warning or a critical finding.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import audit
from audit.checks import available_checks
from audit.columns import bin_values, is_numeric, quantile_edges, range_labels
from audit.formatting import format_p

N, D = 2000, 10


def draw(shape: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if shape == "gaussian":
        return rng.standard_normal((n, D))
    if shape == "anisotropic":
        return rng.standard_normal((n, D)) * np.geomspace(5, 0.2, D)
    if shape == "core_halo":       # 80% in a core of sd 0.5, 20% in a halo of sd 3
        core = rng.random(n) < 0.8
        return np.where(core[:, None], 0.5 * rng.standard_normal((n, D)),
                        3.0 * rng.standard_normal((n, D)))
    if shape == "cube":
        return rng.random((n, D))
    raise ValueError(shape)


def run_all(tmp_path, latents, meta=None, reference=None, seed=0, **cfg):
    np.save(tmp_path / "z.npy", latents.astype(np.float32))
    data = {"latents": str(tmp_path / "z.npy")}
    if meta is not None:
        meta.to_csv(tmp_path / "m.csv", index=False)
        data["metadata"] = str(tmp_path / "m.csv")
    raw = {"name": "null", "data": data, "seed": seed, "geometry": {"map": "pca"},
           "checks": {c: {} for c, cls in available_checks().items()
                      if cls.family == "data"}, **cfg}
    if reference is not None:
        np.save(tmp_path / "ref.npy", reference.astype(np.float32))
        raw["reference"] = {"latents": str(tmp_path / "ref.npy")}
    return audit.run(audit.config_from_dict(raw)).result


def flagged(result):
    return [(c.check, f.id, f.title) for c in result.checks for f in c.findings
            if f.severity in ("warning", "critical")]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("shape", ["gaussian", "anisotropic", "core_halo", "cube"])
def test_null_data_raises_no_flagged_finding(tmp_path, shape, seed):
    rng = np.random.default_rng([seed, 17])
    z, ref = draw(shape, N, rng), draw(shape, N // 2, rng)
    meta = pd.DataFrame({"id": [f"p{i}" for i in range(N)],
                         "colour": rng.choice(["red", "green", "blue"], N),
                         "size": rng.random(N), "age": rng.integers(18, 80, N),
                         "group": rng.choice(["A", "B"], N, p=[0.7, 0.3]),
                         "outcome": rng.random(N)})
    res = run_all(tmp_path, z, meta, ref, seed=seed, attributes=["colour", "size", "age"],
                  protected=["group"], outcome="outcome")
    assert {c.check: c.status for c in res.checks} == {
        c: "ok" for c, cls in available_checks().items() if cls.family == "data"}
    assert flagged(res) == []
    clusters = next(c for c in res.checks if c.check == "clusters")
    # a single blob is described (one cluster, or no cluster structure), never flagged
    assert clusters.findings


def test_degenerate_latents_flag_the_copies_and_nothing_computed_on_nothing(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((20, 8))
    z = base[rng.integers(0, 20, 3000)]            # 3000 rows, 20 distinct values
    res = run_all(tmp_path, z)
    by = {c.check: c for c in res.checks}
    assert [fid for _, fid, _ in flagged(res)] == ["duplicates-within"]
    dup = by["duplicates"].findings[0]
    assert "3000 of 3000 points (100.00%)" in dup.summary and "exact copies" in dup.summary
    holes = by["holes"]
    assert not [f for f in holes.findings if f.id.startswith("holes-") and
                f.id != "holes-not-searched"]
    assert "20 distinct points" in holes.tables["note"]
    # one varying dimension, the rest constant: no hole of radius 0, no outlier storm
    z = np.zeros((3000, 8))
    z[:, 3] = rng.standard_normal(3000)
    res = run_all(tmp_path, z)
    assert flagged(res) == []
    for c in res.checks:
        for f in c.findings:
            assert "radius 0 " not in f.title


def test_duplicates_text_uses_one_unit_and_the_decision_threshold(tmp_path):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((2000, 8))
    z[:20] = z[1000:1020]                          # 20 planted exact copies
    res = run_all(tmp_path, z)
    (f,) = [f for c in res.checks if c.check == "duplicates" for f in c.findings]
    assert f.summary.startswith("40 of 2000 points (2.00%)")
    assert "points (" in f.summary.split("chance predicts")[1]      # count and percent
    crit = f.subjects["critical_count"]
    assert f.threshold == pytest.approx(crit / 2000) and crit < 40
    assert f.subjects["distance_factor"] == 0.02
    assert "p = 0 " not in f.summary and "p = 0)" not in f.summary


def test_format_p_never_prints_zero():
    assert format_p(0.0) == "p < 1e-300"
    assert format_p(1e-320) == "p < 1e-300"
    assert format_p(0.0123) == "p = 0.012"
    assert format_p(0.5, name="BH-adjusted p") == "BH-adjusted p = 0.5"
    assert format_p(float("nan")) == "p = –"


def test_columns_one_rule_one_label_format():
    rng = np.random.default_rng(0)
    y = pd.Series(np.concatenate([[3.09e-05], rng.random(997), [0.99999, 1.0]]))
    assert is_numeric(y) and not is_numeric(pd.Series(rng.integers(0, 5, 100)))
    assert not is_numeric(pd.Series(rng.random(100) > 0.5))
    edges = quantile_edges(y, 4)
    labels = range_labels(edges)
    assert labels[0].startswith("0–") and labels[-1].endswith("–1")
    assert all("e-" not in lab for lab in labels)
    age = pd.Series(rng.integers(18, 80, 500).astype(float))
    assert all(lab.replace("–", "").isdigit() for lab in range_labels(quantile_edges(age, 4)))
    lab, names = bin_values(pd.Series([0.0, 0.5, np.nan, 5.0]), np.array([0, 0.25, 1]))
    assert lab.tolist() == ["0–0.25", "0.25–1", None, "0.25–1"]   # beyond the end: end bin
    assert range_labels(np.array([-1.52, 0.0, 1.5])) == ["-1.5 to 0", "0 to 1.5"]


def test_same_attribute_same_bins_in_every_chart():
    from audit.checks.clusters import composition
    from audit.columns import group_column
    from audit.checks.coverage import bin_columns
    rng = np.random.default_rng(1)
    y = pd.Series(rng.random(800) * 0.99 + 3.09e-05, name="y")
    comp = composition(y, np.zeros(800, dtype=int), bins=4)["values"]
    order = group_column(y, bins=4).order
    cov = bin_columns(pd.DataFrame({"y": y}), None, ["y"], 4)["y"][2]
    assert comp == order == cov
    assert comp[0].startswith("0–") and "e-" not in "".join(comp)
