"""A job's generator block obeys the server's rules like its encoder: a decoder or embedding
factory is code (refused without --allow-code) and every model file lies in a data root."""
from __future__ import annotations

import pytest

from audit.service.job_config import JobConfigError, validate_job_config
from audit.service.settings import ServeSettings

BASE = {"name": "g", "data": {"builtin": {"name": "shapes", "n": 100}},
        "encoder": {"demo_vae": {"latent_dim": 4, "epochs": 1}}}


@pytest.mark.parametrize("block", ["decoder", "embed"])
def test_generator_factories_are_code(tmp_path, block):
    gen = {"decoder": "demo_vae", block: {"factory": "evil:make"}}
    with pytest.raises(JobConfigError) as err:
        validate_job_config({**BASE, "generator": gen}, ServeSettings(data_roots=[tmp_path]))
    assert err.value.status == 403 and f"generator.{block}.factory" in str(err.value)


def test_generator_model_files_must_lie_in_a_data_root(tmp_path):
    inside = tmp_path / "decoder.pt"
    inside.write_bytes(b"x")
    settings = ServeSettings(data_roots=[tmp_path])
    with pytest.raises(JobConfigError) as err:
        validate_job_config({**BASE, "generator": {"decoder": {"torchscript": "/etc/hostname"}}},
                            settings)
    assert err.value.status == 400 and "generator.decoder.torchscript" in str(err.value)
    out = validate_job_config({**BASE, "generator": {"decoder": {"torchscript": "decoder.pt"},
                                                     "latent_dim": 4}}, settings)
    assert out["generator"]["decoder"]["torchscript"] == str(inside.resolve())


def test_a_demo_generator_is_accepted(tmp_path):
    out = validate_job_config({**BASE, "generator": {"decoder": "demo_vae", "samples": 100}},
                              ServeSettings(data_roots=[tmp_path]))
    assert out["generator"] == {"decoder": "demo_vae", "samples": 100}
