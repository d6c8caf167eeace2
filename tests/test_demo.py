"""The demo end to end, on a reduced size: valid outputs, the planted truth recorded."""
from __future__ import annotations

import json
from importlib import resources

import jsonschema
import torch

from audit.encoders.vae import VAE

SCHEMA = json.loads(resources.files("audit").joinpath("schema/findings-v1.json").read_text())


def test_demo_writes_a_valid_report(demo_out):
    code, out = demo_out
    assert code in (0, 1)                      # ran; gates decide 0/1
    doc = json.loads((out / "findings.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert doc["run"]["name"] == "demo" and doc["run"]["n"] == 900 and doc["run"]["dim"] == 8
    assert (code == 0) == all(g["passed"] for g in doc["gates"])
    assert doc["run"]["data"]["encoder"]["kind"] == "demo_vae"
    truth = doc["run"]["data"]["truth"]
    assert truth["removed_regions"] == [{"shape": "heart", "x": [0.6, 1.0]}]
    assert truth["correlated"] == [{"factors": ["size", "y"], "rho": 0.8}]
    assert doc["run"]["reference"]["n"] == 450
    for key in ("clusters.count", "clusters.noise_fraction", "outliers.count",
                "duplicates.within_fraction", "duplicates.cross_fraction",
                "geometry.intrinsic_dim"):
        assert key in doc["metrics"]
    assert all(c["status"] == "ok" for c in doc["run"]["checks"].values()), doc["run"]["checks"]
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# latent-audit: demo")


def test_demo_keeps_its_decoder(demo_out):
    _, out = demo_out
    saved = torch.load(out / "model" / "demo_vae.pt", weights_only=True)
    model = VAE(32 * 32 * 3, saved["latent_dim"], saved["hidden"])
    model.load_state_dict(saved["state_dict"])
    with torch.inference_mode():
        x = torch.sigmoid(model.decoder(torch.zeros(2, saved["latent_dim"])))
    assert x.shape == (2, 3072) and 0 <= float(x.min()) and float(x.max()) <= 1


def test_demo_report_has_thumbnails_for_images(demo_out):
    _, out = demo_out
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 100
    assert (out / "report.html").stat().st_size < 15 * 2**20
