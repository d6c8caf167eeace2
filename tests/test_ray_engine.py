"""engine: ray gives the latents, ids and row order of the in-process loop (images with an
unreadable file skipped; a table through `latent-audit encode`), and its config is checked.

One local Ray (2 CPUs) serves the module; the engine reuses it and leaves it running.
"""
from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import audit
from _byo import MEAN, STD, make_images, model_module, save_forms, write_config
from audit.config import config_from_dict
from audit.data.store import read_store
from audit.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
    yield ray
    if started:
        ray.shutdown()


def _ray(enc: dict, **spec) -> dict:
    return {**enc, "engine": "ray", "ray": {"num_cpus_per_actor": 0.5, **spec}}


def test_images_on_ray_equal_the_in_process_loop(ray_local, tmp_path):
    names = make_images(tmp_path / "images", n=40, size=18)
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")      # corrupt: skip
    mod = model_module(tmp_path)
    torch.manual_seed(0)
    save_forms(mod.build(), tmp_path)
    enc = {"torchscript": "model.pt", "output": 1, "image_size": [16, 16],
           "normalize": {"mean": MEAN, "std": STD}, "batch_size": 7}
    data = {"images": "images", "corrupt": "skip"}
    local = audit.encode(audit.load_config(write_config(tmp_path, data, enc, name="local",
                                                        cache=False)))
    cfg = write_config(tmp_path, data, _ray(enc, num_actors=2, batch_size=6), name="onray",
                       cache=False)
    ray_set = audit.encode(audit.load_config(cfg))
    assert list(ray_set.ids) == list(local.ids) == names        # same rows, same order
    np.testing.assert_allclose(ray_set.latents, local.latents, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(ray_set.images, local.images)  # thumbnails too
    assert ray_set.provenance["inputs"] == local.provenance["inputs"]
    assert ray_set.provenance["inputs"]["unreadable_files"][0]["file"] == "broken.png"
    desc = ray_set.provenance["encoder"]
    assert desc["engine"] == "ray" and desc["ray"]["num_actors"] == 2
    assert desc["pooling"] == local.provenance["encoder"]["pooling"]
    assert ray_local.is_initialized()                  # a running Ray is reused, not shut


def test_table_on_ray_streams_the_same_store(ray_local, tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.standard_normal((57, 4)), columns=list("abcd"))
    frame.insert(0, "id", [f"row{i}" for i in range(57)])
    frame["group"] = np.where(np.arange(57) % 2, "x", "y")
    frame.to_parquet(tmp_path / "table.parquet")
    mod = model_module(tmp_path)
    torch.manual_seed(1)
    torch.save(mod.build_mlp(4).state_dict(), tmp_path / "mlp.pt")
    enc = {"factory": "tinynet.py:build_mlp", "checkpoint": "mlp.pt", "batch_size": 8}
    data = {"table": "table.parquet", "columns": list("abcd")}
    stores = {}
    for name, e in (("local", enc), ("onray", _ray(enc, num_actors=1, batch_size=10))):
        cfg = audit.load_config(write_config(tmp_path, data, e, name=name, cache=False))
        manifest = audit.pipeline.encode_store(cfg, tmp_path / name, thumbnails=False)
        assert manifest["n"] == 57 and manifest["dim"] == 3
        stores[name] = read_store(tmp_path / name)
    a, b = stores["local"], stores["onray"]
    np.testing.assert_allclose(b.latents, a.latents, atol=1e-6, rtol=0)
    assert list(b.ids) == list(a.ids) == [f"row{i}" for i in range(57)]
    pd.testing.assert_frame_equal(b.metadata, a.metadata)
    assert b.manifest["fingerprint"] == a.manifest["fingerprint"]   # the engine is not in it


def _enc(**extra) -> dict:
    return {"data": {"images": "x"}, "encoder": {"torchscript": "m.pt", **extra}}


@pytest.mark.parametrize("extra,key,words", [
    ({"engine": "ray", "ray": {"num_actor": 2}}, "encoder.ray.num_actor", "unknown key"),
    ({"engine": "ray", "ray": {"num_cpus_per_actor": 0}}, "encoder.ray.num_cpus_per_actor",
     "greater than 0"),
    ({"engine": "spark"}, "encoder.engine", "'local' or 'ray'"),
    ({"ray": {"address": "auto"}}, "encoder", "'ray' settings apply with engine: ray"),
])
def test_ray_config_errors_name_the_key(extra, key, words):
    with pytest.raises(ConfigError) as err:
        config_from_dict(_enc(**extra))
    assert err.value.key == key and words in str(err.value)


def test_ray_config_defaults():
    enc = config_from_dict(_enc(engine="ray", ray={"address": "ray://head:10001"})).encoder
    assert enc.engine == "ray" and enc.ray.address == "ray://head:10001"
    assert (enc.ray.num_actors, enc.ray.num_cpus_per_actor, enc.ray.batch_size) == (2, 0.5,
                                                                                   None)
    assert config_from_dict(_enc()).encoder.engine == "local"


def test_missing_ray_names_the_extra(monkeypatch):
    from audit.encoders.ray_engine import require_ray
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError) as err:
        require_ray()
    msg = str(err.value)
    assert err.value.key == "encoder.engine" and "pip install 'latent-audit[ray]'" in msg
    assert "\n" not in msg


def test_actor_errors_come_back_as_data(tmp_path):
    """An actor cannot raise our errors through Ray Data (their type is lost): it returns
    them as a column, and the driver raises the same one-line error in row order."""
    from PIL import Image

    from audit.config import EncoderConfig
    from audit.encoders.ray_engine import _EncodeActor
    mod = model_module(tmp_path)
    torch.manual_seed(0)
    save_forms(mod.build(), tmp_path)
    for i, size in enumerate((16, 20)):
        Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(tmp_path / f"m{i}.png")
    batch = {"row": np.arange(2), "id": np.array(["m0.png", "m1.png"], dtype=object)}
    enc = EncoderConfig(torchscript=tmp_path / "model.pt", output=1, engine="ray")
    out = _EncodeActor(enc, "cfg.yaml", kind="images", key="data.images",
                       folder=str(tmp_path))(batch)
    err = json.loads(out["error"][0])
    assert err["key"] == "encoder.image_size"
    assert err["message"].startswith("images differ in size (m0.png: 16×16, m1.png: 20×20)")
    assert set(out) >= {"row", "ok", "z", "thumb", "desc"}
    bad = EncoderConfig(torchscript=tmp_path / "nowhere.pt", engine="ray")      # load fails
    out = _EncodeActor(bad, str(tmp_path / "cfg.yaml"), kind="images", key="data.images",
                       folder=str(tmp_path))(batch)
    assert json.loads(out["error"][0])["key"] == "encoder.torchscript" and not out["ok"].any()
