"""The example check of docs/developing-checks.md, taken from the page exactly as written,
runs through the pipeline and the report (issue 13, item 7): its metric, its finding, its
per-sample column on the map and in per_sample.parquet, its section and figure."""
from __future__ import annotations

import base64
import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from audit.checks import base
from audit.config import load_config
from audit.pipeline import run, write_outputs

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "developing-checks.md"
SCHEMA = json.loads(resources.files("audit").joinpath("schema/findings-v1.json").read_text())


def guide_example() -> str:
    """The guide's first python code block, as written."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/developing-checks.md has no python example"
    return blocks[0]


@pytest.fixture
def guide_check():
    """Execute the example (it registers its check); the registry is restored after."""
    saved = dict(base._REGISTRY)
    namespace: dict = {"__name__": "guide_example"}
    try:
        exec(compile(guide_example(), str(GUIDE), "exec"), namespace)
        yield base._REGISTRY["far_points"]
    finally:
        base._REGISTRY.clear()
        base._REGISTRY.update(saved)


def _unpack(packed: dict) -> np.ndarray:
    types = {"f32": "<f4", "i8": "i1", "i16": "<i2", "i32": "<i4", "u32": "<u4", "u8": "u1"}
    return np.frombuffer(base64.b64decode(packed["b64"]), dtype=types[packed["$packed"]])


def test_the_guide_example_runs_through_the_pipeline_and_the_report(guide_check, tmp_path):
    assert guide_check.name == "far_points" and guide_check.default is False
    rng = np.random.default_rng(0)
    n, planted = 400, [7, 100, 250, 333, 399]
    x = rng.standard_normal((n, 5)).astype(np.float32)
    x[planted] += 25 * rng.choice([-1.0, 1.0], size=(len(planted), 5)).astype(np.float32)
    ids = [f"p{i}" for i in range(n)]
    np.save(tmp_path / "latents.npy", x)
    pd.DataFrame({"id": ids, "kind": rng.choice(["a", "b"], n)}).to_parquet(
        tmp_path / "meta.parquet")
    (tmp_path / "config.yaml").write_text(
        "name: guide\ndata: {latents: latents.npy, metadata: meta.parquet}\n"
        "attributes: [kind]\nseed: 0\ngeometry: {map: pca}\n"
        "checks:\n  far_points: {max_z: 6}\n"
        "gates:\n  - {metric: far_points.fraction, op: '<=', threshold: 0.5}\n")
    audit_run = run(load_config(tmp_path / "config.yaml"))
    out = tmp_path / "out"
    write_outputs(audit_run, out)

    # the metric and the finding, in findings.json
    doc = json.loads((out / "findings.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert doc["metrics"]["far_points.fraction"] == pytest.approx(len(planted) / n)
    assert doc["gates"][0]["passed"] is True
    (finding,) = [f for f in doc["findings"] if f["check"] == "far_points"]
    assert finding["severity"] == "warning" and finding["ci"][0] > 0
    assert sorted(finding["evidence_ids"]) == sorted(ids[i] for i in planted)

    # the per-sample columns: indexed in findings.json, written to per_sample.parquet
    index = {c["name"]: c for c in doc["per_sample"]["columns"]}
    assert doc["per_sample"]["file"] == "per_sample.parquet"
    assert index["far_points.far_z"]["check"] == "far_points"
    assert index["far_points.is_far_points_issue"]["mean"] == pytest.approx(len(planted) / n)
    table = pd.read_parquet(out / "per_sample.parquet")
    assert table["id"].tolist() == ids
    assert sorted(np.flatnonzero(table["far_points.is_far_points_issue"])) == planted
    z = table["far_points.far_z"].to_numpy()
    assert index["far_points.far_z"]["max"] == pytest.approx(z.max())
    assert z[planted].min() > 6 > np.delete(z, planted).max()

    # the map payload of report.html carries the column, for every drawn point
    html = (out / "report.html").read_text(encoding="utf-8")
    payload = json.loads(re.search(r'<script type="application/json" id="audit-data">(.*?)'
                                   r"</script>", html, re.S).group(1))
    drawn = payload["points"]["ids"]
    on_map = _unpack(payload["points"]["columns"]["far_points.far_z"])
    np.testing.assert_allclose(on_map, z[[ids.index(i) for i in drawn]].astype(np.float32))

    # its section and its figure (the built-in histogram kind, namespaced to the check)
    assert '<section id="check-far_points">' in html
    assert 'id="fig-far_points-0"' in html
    (fig,) = [f for f in payload["figures"] if f["check"] == "far_points"]
    assert fig["kind"] == "histogram" and fig["column"] == "far_z"
    assert "Far_points" in html and "points far from the centre of the data" in html


def test_the_registry_is_restored_after_the_example(guide_check):
    assert "far_points" in base._REGISTRY


def test_the_example_is_gone_from_the_registry_afterwards():
    assert "far_points" not in base.available_checks()
