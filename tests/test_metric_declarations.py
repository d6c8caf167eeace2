"""Every check declares the metrics it can produce (``Check.produces``); gates are validated
against those declarations before any compute, so they must never drift from the code."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.checks import available_checks
from audit.config import load_config
from audit.pipeline import run
from audit.preflight import GEOMETRY_METRICS, _NEEDS, metric_declared
from conftest import blobs


def test_every_check_declares_its_metrics():
    for name, cls in available_checks().items():
        assert cls.produces, f"{name} declares no metrics"
        # a metric starts with its check's name; the generator checks share `generator.`
        family = ("generator",) if name.startswith("generator_") else ()
        allowed = (name, "disentanglement", *family)
        assert all(p.split(".")[0] in allowed for p in cls.produces), name


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """All seven checks on data with a reference, attributes, protected columns and an
    outcome, so every part of every check runs."""
    tmp = tmp_path_factory.mktemp("declared")
    x, labels = blobs(400, 6, centers=3, seed=1)
    ref, _ = blobs(300, 6, centers=3, seed=2)
    rng = np.random.default_rng(0)
    np.save(tmp / "z.npy", x)
    np.save(tmp / "ref.npy", ref)
    pd.DataFrame({"id": [f"p{i}" for i in range(len(x))],
                  "shape": np.array(["a", "b", "c"])[labels],
                  "size": rng.normal(size=len(x)) + labels,
                  "group": np.where(rng.random(len(x)) < 0.4, "x", "y"),
                  "correct": (rng.random(len(x)) < 0.8).astype(int)}
                 ).to_csv(tmp / "meta.csv", index=False)
    cfg = {"name": "declared", "seed": 0, "geometry": {"map": "pca"},
           "data": {"latents": "z.npy", "metadata": "meta.csv"},
           "reference": {"latents": "ref.npy"},
           "attributes": ["shape", "size"], "protected": ["group"], "outcome": "correct",
           "checks": {name: {} for name in available_checks()
                      if not name.startswith("generator_")}}
    (tmp / "c.yaml").write_text(yaml.safe_dump(cfg))
    return run(load_config(tmp / "c.yaml")).result


@pytest.fixture(scope="module")
def generator_run(tmp_path_factory):
    """Every generator check on a table-world generator with a reference."""
    from generator_world import HoleDecoder, table_case
    tmp = tmp_path_factory.mktemp("declared-generator")
    cfg = table_case(tmp, HoleDecoder(), n=1200, samples=1500, reference=True,
                     checks={n: {} for n in available_checks() if n.startswith("generator_")})
    return run(load_config(cfg)).result


def test_generator_metrics_match_the_declarations(generator_run):
    classes = available_checks()
    ran = {r.check: r for r in generator_run.checks}
    assert set(ran) == {n for n in classes if n.startswith("generator_")}
    for name, r in ran.items():
        assert r.status == "ok", (name, r.error)
        assert r.metrics, name
        undeclared = [m for m in r.metrics if not metric_declared(m, classes[name].produces)]
        assert not undeclared, f"{name} emits undeclared metrics {undeclared}"


def test_emitted_metrics_match_the_declarations(full_run):
    classes = available_checks()
    ran = {r.check: r for r in full_run.checks}
    assert set(ran) == {n for n in classes if not n.startswith("generator_")}
    for name, r in ran.items():
        assert r.status == "ok", (name, r.error)
        assert r.metrics, name
        undeclared = [m for m in r.metrics if not metric_declared(m, classes[name].produces)]
        assert not undeclared, f"{name} emits undeclared metrics {undeclared}"
    geometry = full_run.geometry.get("metrics", {})
    assert all(metric_declared(m, GEOMETRY_METRICS) for m in geometry)


def test_reference_only_metrics_are_produced_with_a_reference(full_run, generator_run):
    emitted = {m for r in full_run.checks + generator_run.checks for m in r.metrics}
    for patterns, _, what in _NEEDS:
        assert any(metric_declared(m, patterns) for m in emitted), what
