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


# ---- issue 12: inputs that must end in a clean exit 2 --------------------------------

def _one_line_exit_2(code, stderr, *expect):
    assert code == 2, stderr
    lines = [ln for ln in stderr.strip().splitlines() if ln]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and lines[0].startswith("latent-audit: error: ")
    for e in expect:
        assert e in lines[0], lines[0]
    return lines[0]


def _run_and_validate(run_cli, cfg, out, *expect):
    """``validate`` and ``run`` both refuse, and ``run`` writes nothing."""
    code, _, err = run_cli("validate", cfg)
    _one_line_exit_2(code, err, *expect)
    code, _, err = run_cli("run", cfg, "--out", out, "-q")
    _one_line_exit_2(code, err, *expect)
    assert not out.exists()


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if the geometry is ever computed (refusals come before compute)."""
    from audit.context import Context

    def boom(self, *products):
        raise AssertionError("computed before refusing")
    monkeypatch.setattr(Context, "warm", boom)


# 1. parquet list / struct metadata columns
def _nested_meta(n):
    return pd.DataFrame({"id": [f"p{i}" for i in range(n)],
                         "shape": np.array(["a", "b"])[np.arange(n) % 2],
                         "tags": [[f"t{i % 3}", "x"] for i in range(n)],
                         "box": [{"w": i, "h": 2} for i in range(n)]})


def test_unused_list_and_struct_columns_are_ignored(write_case, run_cli, tmp_path):
    cfg = write_case(X, _nested_meta(200), {"attributes": ["shape"]},
                     meta_name="meta.parquet")
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "o", "-q")
    assert code in (0, 1), err
    assert (tmp_path / "o" / "report.html").is_file()


@pytest.mark.parametrize("column", ["tags", "box"])
def test_used_list_or_struct_column_is_refused(write_case, run_cli, tmp_path, no_compute,
                                               column):
    cfg = write_case(X, _nested_meta(200), {"protected": [column]},
                     meta_name="meta.parquet")
    _run_and_validate(run_cli, cfg, tmp_path / "o", "meta.parquet", "key 'protected'",
                      f"column '{column}' holds lists or structs")


def test_list_column_caught_on_load_too(write_case, tmp_path):
    """Metadata that is not read from a header (here: checked on the loaded frame)."""
    from audit.config import load_config
    from audit.errors import InputError
    from audit.preflight import check_metadata_values
    cfg = load_config(write_case(X, _nested_meta(200), {"attributes": ["tags"]},
                                 meta_name="meta.parquet"))
    with pytest.raises(InputError, match="column 'tags' holds lists or structs"):
        check_metadata_values(_nested_meta(200), cfg, "meta.parquet")


# 2. seeds and extras
@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_out_of_range(write_case, run_cli, tmp_path, seed):
    cfg = write_case(X, None, {"seed": seed})
    _run_and_validate(run_cli, cfg, tmp_path / "o", "config.yaml", "key 'seed'")


def test_largest_seed_runs(write_case, run_cli, tmp_path):
    cfg = write_case(X, None, {"seed": 2**32 - 1})
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "o", "-q")
    assert code in (0, 1), err


@pytest.mark.parametrize("module,setting,extra", [
    ("umap", {"geometry": {"map": "umap"}}, "pip install 'latent-audit[umap]'"),
    ("faiss", {"geometry": {"knn": "approximate"}}, "pip install 'latent-audit[fast]'"),
])
def test_missing_extra_is_refused(write_case, run_cli, tmp_path, monkeypatch, no_compute,
                                  module, setting, extra):
    import audit.preflight as pre
    real = pre._has
    monkeypatch.setattr(pre, "_has", lambda m: False if m == module else real(m))
    cfg = write_case(X, None, setting)
    _run_and_validate(run_cli, cfg, tmp_path / "o", "config.yaml", extra)


def test_missing_text_extra_is_refused(run_cli, tmp_path, monkeypatch):
    import audit.preflight as pre
    monkeypatch.setattr(pre, "_has", lambda m: m != "sentence_transformers")
    (tmp_path / "c.yaml").write_text("data: {text: t.csv}\n"
                                     "encoder: {sentence_transformers: some-model}\n")
    code, _, err = run_cli("validate", tmp_path / "c.yaml")
    _one_line_exit_2(code, err, "c.yaml", "key 'encoder.sentence_transformers'",
                     "pip install 'latent-audit[text]'")


# 3 / 4. dtypes and magnitudes
def _limit(d):
    from audit.data.arrays import MAX_LATENT_NORM
    return MAX_LATENT_NORM / np.sqrt(d)


@pytest.mark.parametrize("name,latents,expect", [
    ("complex", X.astype(np.complex64) + 1j, "has complex dtype complex64"),
    ("float64-overflow", _with(X.astype(np.float64), 3, 2, 1e39),
     "values up to 1e+39 overflow float32"),
    ("huge-float32", _with(X, 3, 2, 3e38), "values up to 3e+38 are too large"),
    ("just-above-limit", X / np.abs(X).max() * np.float32(_limit(4) * 1.02),
     "are too large to audit in float32"),
])
def test_bad_latent_values(write_case, run_cli, tmp_path, name, latents, expect):
    cfg = write_case(latents)
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "o", "-q")
    _one_line_exit_2(code, err, "latents.npy", "key 'data.latents'", expect)


@pytest.mark.parametrize("name,latents", [
    ("just-below-limit", (X / np.abs(X).max() * _limit(4) * 0.98).astype(np.float32)),
    ("float16", X.astype(np.float16)),
    ("int", np.round(X * 10).astype(np.int64)),
    ("bool", np.random.default_rng(0).random((200, 12)) < 0.5),
])
def test_accepted_latent_dtypes(write_case, run_cli, tmp_path, name, latents):
    """Audited as float32 (docs/inputs.md): no crash, no check errors."""
    cfg = write_case(latents)
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "o", "-q")
    assert code in (0, 1), err
    doc = (tmp_path / "o" / "findings.json").read_text()
    assert '"status": "error"' not in doc


# 5. degenerate latents are refused
@pytest.mark.parametrize("latents,expect", [
    (np.ones((200, 4), dtype=np.float32), "all 200 rows are identical"),
    (np.repeat(X[:10], 20, axis=0), "10 distinct rows among 200"),
])
def test_degenerate_latents_are_refused(write_case, run_cli, tmp_path, latents, expect):
    cfg = write_case(latents)
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "o", "-q")
    _one_line_exit_2(code, err, "latents.npy", "key 'data'", "is degenerate", expect)


# 6. bad values in attribute, protected and outcome columns
@pytest.mark.parametrize("key,value,expect", [
    ("attributes", np.inf, "column 'score' contains Inf in 1 row(s), first at row 4"),
    ("protected", -np.inf, "column 'score' contains Inf"),
    ("outcome", 1e308, "column 'score' has values up to 1e+308 (first at row 4)"),
])
def test_bad_attribute_values(write_case, run_cli, tmp_path, key, value, expect):
    score = np.linspace(0, 1, 200)
    score[4] = value
    meta = _meta(200, score=score)
    cfg = write_case(X, meta, {key: ["score"] if key != "outcome" else "score"})
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "o", "-q")
    _one_line_exit_2(code, err, "meta.csv", f"key '{key}'", expect)


# 7. messages that said the wrong thing
def test_symlink_loop(write_case, run_cli, tmp_path):
    cfg = write_case(X)
    lp = tmp_path / "latents.npy"
    lp.unlink()
    lp.symlink_to(tmp_path / "loop.npy")
    (tmp_path / "loop.npy").symlink_to(lp)
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "o", "-q")
    _one_line_exit_2(code, err, "latents.npy", "is a symbolic link loop")


def test_broken_symlink(write_case, run_cli, tmp_path):
    cfg = write_case(X)
    lp = tmp_path / "latents.npy"
    lp.unlink()
    lp.symlink_to(tmp_path / "gone.npy")
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "o", "-q")
    _one_line_exit_2(code, err, "latents.npy", "is a broken symbolic link")


def test_header_only_csv(write_case, run_cli, tmp_path):
    cfg = write_case("a,b,c\n", latents_name="latents.csv")
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "o", "-q")
    _one_line_exit_2(code, err, "latents.csv", "has a header (3 column(s)) but no rows")


def test_bad_builtin_names_the_config(run_cli, tmp_path):
    (tmp_path / "c.yaml").write_text(
        "data: {builtin: {name: shapes, n: 100, remove: [{nonexistent: 1}]}}\n"
        "encoder: {flatten: true}\n")
    _run_and_validate(run_cli, tmp_path / "c.yaml", tmp_path / "o", "c.yaml",
                      "key 'data.builtin'", "unknown factor")


# 8. gates checked before any compute, and duplicate YAML keys
@pytest.mark.parametrize("config,expect", [
    ({"gates": ["holes.cnt <= 3"]}, "the check does not produce metric 'holes.cnt'"),
    ({"gates": ["clusters.count <= 3"], "checks": {"outliers": {}}},
     "no enabled check produces metric 'clusters.count'"),
    ({"gates": ["coverage.precision >= 0.5"]}, "only produced with a reference"),
    ({"gates": ["entanglement.max_leakage <= 0.5"], "checks": {"entanglement": {}}},
     "only produced with attributes"),
    ({"gates": ["bias.sex.leakage_auc <= 0.6"], "protected": ["group"]},
     "names no protected column"),
    ({"gates": ["coverage.combinations_missing <= 0"], "attributes": ["shape"]},
     "two or more attribute or protected columns"),
    ({"gates": ["outliers.fraction <= nan"]}, "NaN"),
    ({"gates": [{"metric": "outliers.fraction", "op": "<=", "threshold": float("nan")}]},
     "NaN"),
])
def test_bad_gates_refused_up_front(write_case, run_cli, tmp_path, no_compute, config,
                                    expect):
    cfg = write_case(X, None, config)
    _run_and_validate(run_cli, cfg, tmp_path / "o", "config.yaml", "key 'gates", expect)


def test_gates_on_declared_metrics_pass_validate(write_case, run_cli):
    cfg = write_case(X, None, {"gates": ["geometry.intrinsic_dim >= 1",
                                         "outliers.fraction <= 0.1"]})
    assert run_cli("validate", cfg)[0] == 0
    cfg = write_case(X, _meta(200, g=["a", "b"] * 100),
                     {"protected": ["g"], "gates": ["bias.g.leakage_auc <= 0.9"],
                      "checks": {"bias": {}}})
    assert run_cli("validate", cfg)[0] == 0


def test_duplicate_yaml_key(write_case, run_cli, tmp_path):
    cfg = write_case(X)
    cfg.write_text(cfg.read_text() + "seed: 3\n")
    _run_and_validate(run_cli, cfg, tmp_path / "o", "config.yaml", "duplicate key 'seed'")
    cfg.write_text("name: t\ndata: {latents: latents.npy}\ngeometry:\n  k: 5\n  k: 6\n")
    code, _, err = run_cli("validate", cfg)
    _one_line_exit_2(code, err, "duplicate key 'k' (first at line 4)")


# 9. validate reads the metadata header
@pytest.mark.parametrize("meta_name", ["meta.csv", "meta.parquet"])
@pytest.mark.parametrize("key", ["attributes", "protected", "outcome"])
def test_validate_refuses_missing_columns(write_case, run_cli, tmp_path, no_compute,
                                          meta_name, key):
    cfg = write_case(X, _meta(200, shape=["a"] * 200),
                     {key: "colour" if key == "outcome" else ["colour"]},
                     meta_name=meta_name)
    _run_and_validate(run_cli, cfg, tmp_path / "o", meta_name, f"key '{key}'",
                      "column(s) ['colour'] not in the metadata")


def test_validate_reads_a_stores_metadata_header(run_cli, tmp_path):
    """A latent store carries metadata.parquet: validate reads its schema (and a joined
    data.metadata's header) and refuses a column neither has."""
    import numpy as np
    import yaml

    from audit.latents import LatentSet
    from audit.pipeline import write_store
    meta = _meta(200, shape=["a", "b"] * 100)
    write_store(LatentSet(latents=X, metadata=meta, ids=np.array(meta["id"]),
                          source="x"), tmp_path / "store")
    pd.DataFrame({"id": meta["id"], "colour": ["red"] * 200}).to_csv(tmp_path / "extra.csv",
                                                                     index=False)
    for cols, extra, ok in ((["shape"], None, True), (["colour"], None, False),
                            (["shape", "colour"], "extra.csv", True)):
        data = {"latents": "store", **({"metadata": extra} if extra else {})}
        (tmp_path / "c.yaml").write_text(yaml.safe_dump({"data": data, "attributes": cols}))
        code, out, err = run_cli("validate", tmp_path / "c.yaml")
        if ok:
            assert (code, err) == (0, ""), err
        else:
            _one_line_exit_2(code, err, "metadata.parquet",
                             "column(s) ['colour'] not in the metadata")


def test_validate_refuses_columns_without_metadata(write_case, run_cli, tmp_path):
    cfg = write_case(X, None, {"attributes": ["shape"]})
    code, _, err = run_cli("validate", cfg)
    _one_line_exit_2(code, err, "latents.npy", "add data.metadata")


def test_validate_refuses_a_missing_metadata_file(write_case, run_cli, tmp_path):
    cfg = write_case(X, _meta(200, shape=["a"] * 200), {"attributes": ["shape"]})
    (tmp_path / "meta.csv").unlink()
    code, _, err = run_cli("validate", cfg)
    _one_line_exit_2(code, err, "meta.csv", "key 'data.metadata': file not found")


# 10. no torch at start-up, Ctrl-C is a clean abort
def test_cli_import_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, audit.cli; assert 'torch' not in sys.modules, 'torch'; "
            "assert 'sklearn' not in sys.modules, 'sklearn'")
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run([sys.executable, "-c", "import sys; from audit.cli import main; "
                          "sys.argv=['latent-audit','--help']; main(); "
                          "assert 'torch' not in sys.modules"],
                         check=True, capture_output=True, text=True)
    assert "Usage" in out.stdout


def test_ctrl_c_is_a_clean_abort(write_case, run_cli, monkeypatch):
    import audit.cli as cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "load_config", interrupted)
    code, _, err = run_cli("validate", write_case(X))
    assert code == 130 and err.strip() == "latent-audit: aborted"
    monkeypatch.setattr(cli, "_main", interrupted)
    with pytest.raises(SystemExit) as exc:
        cli.entry()
    assert exc.value.code == 130
