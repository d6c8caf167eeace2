"""Config loading: every key declared, errors name the key and the file."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from audit.config import load_config
from audit.errors import ConfigError
from conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_issue_keys_and_relative_paths(tmp_path):
    cfg = load_config(write(tmp_path, """
name: my-audit
data: {latents: sub/latents.npy, metadata: meta.csv}
reference: {latents: /abs/ref.npy, metadata: ref_meta.csv}
attributes: [shape, size]
protected: [group]
seed: 7
gates: ["clusters.noise_fraction <= 0.2", {metric: outliers.count, op: "<", threshold: 3}]
"""))
    assert cfg.data.latents == tmp_path / "sub" / "latents.npy"
    assert cfg.data.metadata == tmp_path / "meta.csv"
    assert cfg.reference.latents == Path("/abs/ref.npy")
    assert cfg.attributes == ["shape", "size"] and cfg.protected == ["group"] and cfg.seed == 7
    assert [(g.metric, g.op, g.threshold) for g in cfg.gates] == [
        ("clusters.noise_fraction", "<=", 0.2), ("outliers.count", "<", 3.0)]


@pytest.mark.parametrize("text,key,msg", [
    ("name: x\ndata: {latents: a.npy}\nseeed: 1\n", "seeed", "unknown key"),
    ("name: x\ndata: {latents: a.npy, metdata: m.csv}\n", "data.metdata", "unknown key"),
    ("name: x\n", "data", "required key is missing"),
    ("name: x\ndata: {}\n", "data", "exactly one of 'latents' or 'builtin'"),
    ("name: x\ndata: {builtin: {name: shapes, nn: 3}}\n", "data.builtin.nn", "unknown key"),
    ("name: x\ndata: {builtin: {name: cifar}}\n", "data.builtin", "shapes"),
    ("name: 'a b'\ndata: {latents: a.npy}\n", "name", "letters, digits"),
    ("name: x\ndata: {latents: a.npy}\ngeometry: {k: 1}\n", "geometry.k",
     "greater than or equal to 2"),
    ("name: x\ndata: {latents: a.npy}\nattributes: [a]\nprotected: [a]\n", None,
     "both as attributes and protected"),
    ("- a\n- b\n", None, "must be a mapping"),
])
def test_config_errors_name_key_and_file(tmp_path, text, key, msg):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text))
    s = str(exc.value)
    assert s.startswith(str(tmp_path / "c.yaml"))
    if key:
        assert f"key '{key}'" in s
    assert msg in s


def test_demo_config_is_the_packaged_one():
    from importlib import resources
    packaged = resources.files("audit").joinpath("demo.yaml").read_text()
    assert (ROOT / "configs" / "demo.yaml").read_text() == packaged
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    assert cfg.data.builtin.remove == [{"shape": "heart", "x": [0.6, 1.0]}]
    assert cfg.encoder.demo_vae is not None


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")))
def test_shipped_configs_validate(path):
    load_config(path)


def test_config_roundtrips_into_findings(tmp_path):
    cfg = load_config(write(tmp_path, "name: x\ndata: {latents: a.npy}\n"))
    d = cfg.public_dict()
    assert d["data"]["latents"] == str(tmp_path / "a.npy")
    assert yaml.safe_dump(d)
