"""A generator audit from a config, end to end: table rows from a TorchScript decoder,
re-encoded by the audit's TorchScript encoder, the generator checks' findings in
findings.json; and the config errors a user meets, each naming its key."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from generator_world import HoleDecoder, SmoothDecoder, table_case


class WithLatentDim(nn.Module):
    """A decoder whose first layer says the prior's dimension (2)."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.first.weight.copy_(torch.eye(2))
        self.rest = SmoothDecoder()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(z))


def _case(tmp_path, decoder, **kw):
    return table_case(tmp_path, decoder, **kw)


def test_a_table_generator_with_a_hole_is_audited_from_its_config(tmp_path, run_cli):
    cfg = _case(tmp_path, HoleDecoder(), checks={"generator_fidelity": {},
                                                 "generator_holes": {}})
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "out")
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "findings.json").read_text())
    gen = doc["run"]["generator"]
    assert gen["n"] == 1500 and gen["kind"] == "table" and gen["prior"]["kind"] == "gaussian"
    assert gen["decoder"]["kind"] == "torchscript"
    assert {"generator.precision", "generator.prior_holes"} <= set(doc["metrics"])
    holes = [f for f in doc["findings"] if f["check"] == "generator_holes"
             and f["severity"] != "info"]
    assert holes, "the planted prior hole (z0 > 1.5) was not found"
    assert doc["metrics"]["generator.precision"] < 0.97          # 6.7% decode off the data


def test_the_prior_dimension_is_read_from_the_decoder(tmp_path, run_cli):
    cfg = _case(tmp_path, WithLatentDim(), latent_dim=None, samples=300,
                checks={"generator_fidelity": {}})
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "out")
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert doc["run"]["generator"]["prior"]["dim"] == 2


def test_a_decoder_that_does_not_say_its_dimension_needs_latent_dim(tmp_path, run_cli):
    cfg = _case(tmp_path, SmoothDecoder(), latent_dim=None, samples=300,
                checks={"generator_fidelity": {}})
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "out")
    assert code == 2
    assert "generator.latent_dim" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("gen,key", [
    ({"decoder": "demo_vae"}, "generator.decoder"),
    ({"decoder": {"torchscript": "d.pt", "export": "d.pt2"}}, "generator.decoder"),
    ({"decoder": {"torchscript": "d.pt"}, "prior": "beta"}, "generator.prior"),
    ({"decoder": {"torchscript": "d.pt"}, "samples": 10}, "generator.samples"),
    ({"decoder": {"torchscript": "d.pt"}, "sample": 100}, "generator.sample"),
])
def test_config_errors_name_the_generator_key(tmp_path, run_cli, gen, key):
    np.save(tmp_path / "x.npy", np.zeros((50, 4), np.float32))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "data": {"latents": "x.npy"},
                                    "encoder": {"torchscript": "e.pt"}, "generator": gen}))
    code, _, err = run_cli("validate", path)
    assert code == 2 and f"'{key}" in err, err


def test_latents_without_an_encoder_cannot_re_embed(tmp_path, run_cli):
    np.save(tmp_path / "x.npy", np.zeros((50, 4), np.float32))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "data": {"latents": "x.npy"},
                                    "generator": {"decoder": {"torchscript": "d.pt"}}}))
    code, _, err = run_cli("validate", path)
    assert code == 2 and "generator.embed" in err and "encoder block" in err
