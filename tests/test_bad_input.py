"""Every bad input: exit 2, one line on stderr naming the file and the problem, no
traceback, and nothing already in the output folder is damaged."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import blobs


def _meta(n, **cols):
    return pd.DataFrame({"id": [f"p{i}" for i in range(n)], **cols})


X, _ = blobs(200, 4)

CASES = {
    "nan": (lambda: X.copy().__setitem__((5, 1), np.nan) or None, "latents.npy",
            "contains NaN values in 1 row(s), first at row 5"),
}


def _with(x, i, j, v):
    x = x.copy()
    x[i, j] = v
    return x


@pytest.mark.parametrize("name,latents,latents_name,meta,config,expect_file,expect", [
    ("nan", _with(X, 5, 1, np.nan), "latents.npy", None, None, "latents.npy",
     "contains NaN values in 1 row(s), first at row 5"),
    ("inf", _with(X, 7, 0, np.inf), "latents.npy", None, None, "latents.npy",
     "contains Inf values"),
    ("ragged", np.array([[1.0, 2.0], [3.0]], dtype=object), "latents.npy", None, None,
     "latents.npy", "Python objects (ragged rows?)"),
    ("one-d", np.arange(50, dtype=np.float32), "latents.npy", None, None, "latents.npy",
     "must be 2-D (N samples × d dimensions), got shape (50,)"),
    ("empty", np.zeros((0, 4), dtype=np.float32), "latents.npy", None, None, "latents.npy",
     "is empty"),
    ("too-few", X[:10], "latents.npy", None, None, "latents.npy",
     "fewer than the 16 needed for k=15 neighbours"),
    ("rows-mismatch", X, "latents.npy", _meta(199, shape=["a"] * 199), None, "meta.csv",
     "has 199 rows but the latents"),
    ("missing-column", X, "latents.npy", _meta(200, shape=["a"] * 200),
     {"attributes": ["shape", "colour"]}, "meta.csv", "column(s) ['colour'] not in the metadata"),
    ("duplicate-ids", X, "latents.npy",
     pd.DataFrame({"id": ["p1"] * 2 + [f"p{i}" for i in range(2, 200)]}), None, "meta.csv",
     "duplicate ids"),
    ("unreadable-npy", b"this is not numpy", "latents.npy", None, None, "latents.npy",
     "unreadable"),
    ("unreadable-parquet", b"PAR1garbage", "latents.parquet", None, None, "latents.parquet",
     "unreadable"),
    ("non-numeric-csv", "a,b\nx,1\ny,2\n", "latents.csv", None, None, "latents.csv",
     "non-numeric columns"),
    ("wrong-suffix", b"1,2", "latents.txt", None, None, "latents.txt",
     "unsupported file type '.txt'"),
    ("unknown-key", X, "latents.npy", None, {"atributes": ["shape"]}, "config.yaml",
     "key 'atributes': unknown key"),
    ("unknown-nested-key", X, "latents.npy", None, {"geometry": {"kk": 3}}, "config.yaml",
     "key 'geometry.kk': unknown key"),
    ("unknown-check", X, "latents.npy", None, {"checks": {"holez": {}}}, "config.yaml",
     "key 'checks.holez': unknown check"),
    ("bad-check-setting", X, "latents.npy", None, {"checks": {"outliers": {"topp": 3}}},
     "config.yaml", "key 'checks.outliers.topp': unknown key"),
    ("bad-gate", X, "latents.npy", None, {"gates": ["clusters.count ~ 3"]}, "config.yaml",
     "is not of the form"),
])
def test_bad_input_exits_2(write_case, run_cli, tmp_path, name, latents, latents_name, meta,
                           config, expect_file, expect):
    cfg = write_case(latents, meta, config, latents_name=latents_name)
    out = tmp_path / "out"
    out.mkdir()
    (out / "findings.json").write_text("previous run")
    code, stdout, stderr = run_cli("run", cfg, "--out", out, "-q")
    assert code == 2, stderr
    lines = [ln for ln in stderr.strip().splitlines() if ln]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert expect_file in lines[0] and expect in lines[0], lines[0]
    assert lines[0].startswith("latent-audit: error: ")
    assert (out / "findings.json").read_text() == "previous run"
    assert sorted(p.name for p in out.iterdir()) == ["findings.json"]
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]


def test_missing_latents_file(write_case, run_cli, tmp_path):
    cfg = write_case(X)
    (tmp_path / "latents.npy").unlink()
    code, _, err = run_cli("run", cfg, "-q", "--out", tmp_path / "o")
    assert code == 2
    assert "latents.npy" in err and "key 'data.latents': file not found" in err
    assert not (tmp_path / "o").exists()


def test_missing_config_and_bad_yaml(run_cli, tmp_path):
    code, _, err = run_cli("run", tmp_path / "nope.yaml")
    assert code == 2 and "nope.yaml: config file not found" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: [unclosed\n")
    code, _, err = run_cli("run", bad)
    assert code == 2 and "bad.yaml" in err and "not valid YAML at line" in err


def test_debug_shows_traceback(write_case, run_cli, tmp_path, capsys):
    cfg = write_case(_with(X, 1, 1, np.nan))
    code, _, err = run_cli("run", cfg, "--debug", "--out", tmp_path / "o")
    assert code == 2
    assert "Traceback" in err and "contains NaN" in err


def test_reference_dimension_mismatch(write_case, run_cli, tmp_path):
    cfg = write_case(X, reference=np.zeros((50, 3), dtype=np.float32))
    code, _, err = run_cli("run", cfg, "-q", "--out", tmp_path / "o")
    assert code == 2
    assert "ref.npy" in err and "3 dimensions but the data has 4" in err


# ---- bring your own model: bad models and bad images (issue #3) ----------------------

def _byo_case(tmp_path, kind):
    """A folder of images, a tiny CNN in every form, and a config broken as ``kind`` says."""
    import torch

    from _byo import make_images, model_module, save_forms, write_config
    make_images(tmp_path / "images")
    mod = model_module(tmp_path)
    torch.manual_seed(0)
    save_forms(mod.build(), tmp_path)
    enc = {"torchscript": "model.pt", "output": 0, "image_size": [16, 16]}
    data = {"images": "images"}
    if kind == "corrupt-image":
        (tmp_path / "images" / "sub" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    elif kind == "missing-model":
        enc["torchscript"] = "models/missing.pt"
    elif kind == "checkpoint-mismatch":
        torch.save(mod.build(width=4).state_dict(), tmp_path / "other.pt")
        enc = {"factory": "tinynet.py:build", "checkpoint": "other.pt", "output": 0,
               "image_size": 16}
    elif kind == "unknown-layer":
        enc = {"factory": "tinynet.py:build", "checkpoint": "weights.pt",
               "layer": "featurez", "image_size": 16}
    elif kind == "shape-changes":
        enc = {"factory": "tinynet.py:Shifty", "image_size": 16, "batch_size": 5}
    return write_config(tmp_path, data, enc, cache=False)


@pytest.mark.parametrize("kind,expect_file,expect", [
    ("corrupt-image", "images/sub/bad.png",
     "key 'data.images': cannot be read as an image (UnidentifiedImageError"),
    ("missing-model", "models/missing.pt", "key 'encoder.torchscript': model file not found"),
    ("checkpoint-mismatch", "other.pt",
     "key 'encoder.checkpoint': does not fit the model built by"),
    ("unknown-layer", "byo.yaml",
     "key 'encoder.layer': no layer 'featurez' in the model; available layers: features, "
     "features.0, features.1, features.2, head"),
    ("shape-changes", "byo.yaml",
     "the model's output shape changed between batches: B×15 in batch 1, B×6 in batch 3"),
])
def test_bad_model_or_image_exits_2(run_cli, tmp_path, kind, expect_file, expect):
    cfg = _byo_case(tmp_path, kind)
    out = tmp_path / "out"
    out.mkdir()
    (out / "findings.json").write_text("previous run")
    code, _, stderr = run_cli("run", cfg, "--out", out, "-q")
    assert code == 2, stderr
    lines = [ln for ln in stderr.strip().splitlines() if ln]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and lines[0].startswith("latent-audit: error: ")
    assert expect_file in lines[0] and expect in lines[0], lines[0]
    assert (out / "findings.json").read_text() == "previous run"
    assert sorted(p.name for p in out.iterdir()) == ["findings.json"]


def test_corrupt_image_message_offers_the_skip_switch(run_cli, tmp_path):
    cfg = _byo_case(tmp_path, "corrupt-image")
    _, _, err = run_cli("run", cfg, "-q", "--out", tmp_path / "o")
    assert "set data.corrupt: skip to leave unreadable files out" in err


def test_checkpoint_mismatch_names_the_tensors(run_cli, tmp_path):
    cfg = _byo_case(tmp_path, "checkpoint-mismatch")
    _, _, err = run_cli("run", cfg, "-q", "--out", tmp_path / "o")
    assert "size mismatch for features.0.weight" in err
