"""The latent store: `latent-audit encode` writes it, `data: {latents: DIR}` reads it back,
every run keeps the store it audited, and plain NumPy/pandas can read it."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import audit
from _byo import make_images, metadata, model_module, save_forms, write_config
from audit.data.store import STORE_FORMAT, read_store, write_latents
from conftest import blobs, load_findings


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """Images + a TorchScript CNN, encoded by the CLI into a store."""
    from audit.cli import main
    root = tmp_path_factory.mktemp("store")
    names = make_images(root / "images", n=18)
    metadata(names, label=[f"c{i % 3}" for i in range(18)], score=np.arange(18) / 18) \
        .to_csv(root / "meta.csv", index=False)
    mod = model_module(root)
    torch.manual_seed(0)
    save_forms(mod.build(), root)
    cfg = write_config(root, {"images": "images", "metadata": "meta.csv"},
                       {"torchscript": "model.pt", "output": 1, "image_size": [16, 16]},
                       attributes=["label"])
    assert main(["encode", str(cfg), "--out", str(root / "store"), "-q"]) == 0
    return root, names, cfg


def test_store_layout_and_manifest(encoded):
    root, names, _ = encoded
    store = root / "store"
    m = json.loads((store / "manifest.json").read_text())
    assert m["format"] == STORE_FORMAT
    assert (m["n"], m["dim"], m["dtype"]) == (18, 8, "float32")
    assert m["shards"] == [{"file": "latents/part-00000.npy", "rows": 18}]
    assert len(m["fingerprint"]) == 64
    assert m["encoder"]["kind"] == "torchscript" and m["encoder"]["output"] == 1
    assert m["created"].endswith("+00:00")
    assert m["source"]["kind"] == "images" and m["thumbnails"] == "thumbnails.npy"
    # readable without latent-audit, as docs/inputs.md shows
    z = np.concatenate([np.load(store / s["file"]) for s in m["shards"]])
    meta = pd.read_parquet(store / "metadata.parquet")
    assert z.dtype == np.float32 and z.shape == (18, 8)
    assert list(meta.columns[:1]) == ["id"] and list(meta["id"]) == names
    assert {"label", "score"} <= set(meta.columns)
    assert np.load(store / "thumbnails.npy").shape == (18, 48, 48, 3)


def test_round_trip_through_data_latents_dir(encoded, run_cli, tmp_path):
    root, names, cfg = encoded
    original = audit.encode(audit.load_config(cfg))
    cfg2 = write_config(root, {"latents": "store"}, None, name="fromstore",
                        attributes=["label"])
    back = audit.encode(audit.load_config(cfg2))
    np.testing.assert_array_equal(back.latents, original.latents)
    assert list(back.ids) == names
    pd.testing.assert_frame_equal(back.metadata, original.metadata)
    assert back.images is not None and back.images.shape == (18, 48, 48, 3)
    assert back.provenance["encoder"]["kind"] == "torchscript"
    assert back.provenance["fingerprint"] == original.provenance["fingerprint"]

    # and a run on the store keeps a copy with the same latents in its out folder
    out = tmp_path / "out"
    code, _, err = run_cli("run", cfg2, "--out", out, "-q")
    assert code == 0, err
    kept = read_store(out / "store")
    np.testing.assert_array_equal(kept.latents, original.latents)
    assert list(kept.ids) == names
    assert load_findings(out)["run"]["data"]["kind"] == "store"


def test_every_run_keeps_the_store_it_audited(write_case, run_cli, tmp_path):
    x, labels = blobs(120, 5, seed=2)
    ref, _ = blobs(60, 5, seed=3)
    meta = pd.DataFrame({"id": [f"p{i}" for i in range(120)], "c": labels})
    cfg = write_case(x, meta, {"attributes": ["c"]}, reference=ref)
    out = tmp_path / "o"
    assert run_cli("run", cfg, "--out", out, "-q")[0] == 0
    assert {p.name for p in out.iterdir()} == {"findings.json", "summary.md", "report.html",
                                               "per_sample.parquet",
                                               "store", "reference-store"}
    kept = read_store(out / "store")
    np.testing.assert_array_equal(kept.latents, x)
    assert list(kept.ids) == [f"p{i}" for i in range(120)]
    assert list(kept.metadata["c"]) == list(labels)
    assert read_store(out / "reference-store").latents.shape == (60, 5)
    m = kept.manifest
    assert m["encoder"] is None and len(m["fingerprint"]) == 64   # content sha256
    assert m["thumbnails"] is None                                # runs keep no thumbnails


def test_shards_in_row_order_and_stale_shards_removed(tmp_path):
    z = np.arange(23 * 3, dtype=np.float32).reshape(23, 3)
    ids = np.array([f"r{i}" for i in range(23)])
    write_latents(tmp_path / "s", z, ids, pd.DataFrame({"k": np.arange(23)}), shard_rows=10)
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert [s["rows"] for s in m["shards"]] == [10, 10, 3]
    back = read_store(tmp_path / "s")
    np.testing.assert_array_equal(back.latents, z)
    assert list(back.metadata["k"]) == list(range(23))

    from audit.latents import LatentSet
    small = LatentSet(latents=z[:4], metadata=pd.DataFrame(index=range(4)), ids=ids[:4],
                      source="x")
    big = LatentSet(latents=z, metadata=pd.DataFrame(index=range(23)), ids=ids, source="x")
    from audit.data.store import layout as store_mod
    old = store_mod.SHARD_BYTES
    store_mod.SHARD_BYTES = 4 * 3 * 10             # 10 rows of 3 floats per shard
    try:
        audit.write_store(big, tmp_path / "w")
        assert len(list((tmp_path / "w" / "latents").glob("part-*.npy"))) == 3
        audit.write_store(small, tmp_path / "w")
    finally:
        store_mod.SHARD_BYTES = old
    assert [p.name for p in (tmp_path / "w" / "latents").glob("part-*.npy")] == \
        ["part-00000.npy"]
    assert read_store(tmp_path / "w").latents.shape == (4, 3)


@pytest.mark.parametrize("damage,expect", [
    (lambda s: (s / "manifest.json").write_text("{not json"), "manifest.json"),
    (lambda s: (s / "latents" / "part-00000.npy").unlink(), "shard listed in the manifest is "
                                                            "missing"),
    (lambda s: np.save(s / "latents" / "part-00000.npy", np.zeros((3, 8), np.float32)),
     "shard has shape (3, 8), the manifest says (18, 8)"),
    (lambda s: pd.DataFrame({"id": ["a"]}).to_parquet(s / "metadata.parquet"),
     "needs an 'id' column and 18 rows"),
    (lambda s: (s / "manifest.json").unlink(), "not a latent store"),
])
def test_damaged_store_exits_2(encoded, run_cli, tmp_path, damage, expect):
    import shutil
    root, _, _ = encoded
    shutil.copytree(root / "store", tmp_path / "store")
    damage(tmp_path / "store")
    cfg = write_config(tmp_path, {"latents": "store"}, None, name="damaged")
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "out", "-q")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_encode_command_errors_exit_2(tmp_path, run_cli):
    cfg = write_config(tmp_path, {"images": "nowhere"}, {"torchscript": "m.pt"})
    code, _, err = run_cli("encode", cfg, "--out", tmp_path / "s")
    assert code == 2 and "nowhere, key 'data.images': folder not found" in err
    assert not (tmp_path / "s").exists()


def test_a_later_run_without_reference_drops_the_old_reference_store(write_case, run_cli,
                                                                      tmp_path):
    x, _ = blobs(80, 4, seed=5)
    out = tmp_path / "o"
    assert run_cli("run", write_case(x, reference=x[:30]), "--out", out, "-q")[0] == 0
    assert (out / "reference-store" / "manifest.json").is_file()
    assert run_cli("run", write_case(x), "--out", out, "-q")[0] == 0
    assert not (out / "reference-store").exists() and (out / "store").is_dir()


# ---- scale: shards, memory maps, the streaming writer, errors, atomicity ----------------

def _store(tmp_path, n=23, dim=3, shard_rows=None, name="s", **kw):
    z = np.random.default_rng(n).standard_normal((n, dim)).astype(np.float32)
    ids = np.array([f"r{i}" for i in range(n)])
    write_latents(tmp_path / name, z, ids, pd.DataFrame({"k": np.arange(n)}),
                shard_rows=shard_rows, **kw)
    return tmp_path / name, z, ids


def test_shard_round_trip_with_a_tiny_shard_size(tmp_path, monkeypatch):
    from audit.data.store import layout as store_mod
    monkeypatch.setattr(store_mod, "SHARD_BYTES", 4 * 3 * 7)      # 7 rows of 3 floats
    folder, z, ids = _store(tmp_path)
    m = json.loads((folder / "manifest.json").read_text())
    assert [s["rows"] for s in m["shards"]] == [7, 7, 7, 2]
    for mmap in (False, True):              # several shards: one preallocated array
        back = read_store(folder, mmap=mmap)
        assert not isinstance(back.latents, np.memmap) and back.latents.flags.owndata
        np.testing.assert_array_equal(back.latents, z)
        assert list(back.ids) == list(ids)


def test_one_shard_is_memory_mapped_when_asked(tmp_path):
    folder, z, _ = _store(tmp_path, n=50, dim=4)
    back = read_store(folder, mmap=True)
    assert isinstance(back.latents, np.memmap) and not back.latents.flags.owndata
    assert not back.latents.flags.writeable
    np.testing.assert_array_equal(back.latents, z)
    assert read_store(folder).latents.flags.owndata                 # default: in memory
    from audit.data.store import load_store_set
    ls = load_store_set(folder, None, section="data", mmap=True)
    assert not ls.latents.flags.owndata and ls.n == 50


def test_streaming_writer_equals_write_latents(tmp_path):
    from audit.data.store import StoreWriter
    folder, z, ids = _store(tmp_path, n=41, dim=5, shard_rows=8, name="whole",
                            thumbnails=np.full((41, 4, 4, 3), 7, np.uint8))
    thumbs = np.full((41, 4, 4, 3), 7, np.uint8)
    meta = pd.DataFrame({"k": np.arange(41)})
    with StoreWriter(tmp_path / "streamed", shard_rows=8) as w:
        for start in (0, 3, 20, 33):                               # uneven batches
            stop = {0: 3, 3: 20, 20: 33, 33: 41}[start]
            w.append(z[start:stop], ids[start:stop], meta.iloc[start:stop],
                     thumbnails=thumbs[start:stop])
    a = json.loads((folder / "manifest.json").read_text())
    b = json.loads((tmp_path / "streamed" / "manifest.json").read_text())
    for k in ("n", "dim", "dtype", "shards", "fingerprint", "thumbnails"):
        assert a[k] == b[k], k
    for s in a["shards"]:
        np.testing.assert_array_equal(np.load(folder / s["file"]),
                                      np.load(tmp_path / "streamed" / s["file"]))
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "metadata.parquet"),
                                  pd.read_parquet(tmp_path / "streamed" / "metadata.parquet"))
    np.testing.assert_array_equal(np.load(tmp_path / "streamed" / "thumbnails.npy"), thumbs)
    assert a["fingerprint"] == audit.data.store.content_fingerprint(z, ids)


def _edit_manifest(folder, **changes):
    m = json.loads((folder / "manifest.json").read_text())
    m.update(changes)
    (folder / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("damage,key,words", [
    (lambda f: _edit_manifest(f, n=24), "shards", "shard row counts add up to 23, but n = 24"),
    (lambda f: _edit_manifest(f, dim=4), None, "the manifest says (10, 4)"),
    (lambda f: _edit_manifest(f, dim="3"), "dim", "must be a positive integer"),
    (lambda f: _edit_manifest(f, dtype="float64"), "dtype", "holds float32"),
    (lambda f: _edit_manifest(f, shards=[{"file": "latents/part-00000.npy"}]), "shards",
     "list of {file, rows}"),
    (lambda f: _edit_manifest(f, format="other"), "format", "not a latent store manifest"),
    (lambda f: (f / "latents" / "part-00001.npy").unlink(), None,
     "shard listed in the manifest is missing"),
])
def test_bad_manifest_or_shard_is_one_clear_error(tmp_path, damage, key, words):
    folder, _, _ = _store(tmp_path, shard_rows=10)
    damage(folder)
    with pytest.raises(audit.InputError) as err:
        read_store(folder, key="data.latents")
    msg = str(err.value)
    assert words in msg and "\n" not in msg, msg
    if key is not None:
        assert err.value.key == key and err.value.source.endswith("manifest.json")
    else:
        assert err.value.key == "data.latents" and ".npy" in err.value.source


def test_nan_in_a_shard_names_the_shard(tmp_path):
    folder, z, _ = _store(tmp_path, shard_rows=10)
    bad = z[10:20].copy()
    bad[4, 1] = np.nan
    np.save(folder / "latents" / "part-00001.npy", bad)
    for mmap in (False, True):
        with pytest.raises(audit.InputError) as err:
            read_store(folder, mmap=mmap)
        assert err.value.source.endswith("part-00001.npy")
        assert "contains NaN values in 1 row(s), first at row 4 of this shard (row 14 of " \
               "the store)" in str(err.value)


def test_a_failed_write_leaves_the_existing_store_intact(tmp_path):
    from audit.data.store import StoreWriter
    folder, z, ids = _store(tmp_path, shard_rows=10)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    with pytest.raises(RuntimeError, match="encoder crashed"):
        with StoreWriter(folder, shard_rows=5) as w:
            w.append(z[:12] + 1, ids[:12])          # two shards already on disk
            raise RuntimeError("encoder crashed")
    with pytest.raises(ValueError):                 # a bad batch mid-way
        write_latents(folder, np.zeros((3, 3, 1), np.float32), ids[:3])
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    np.testing.assert_array_equal(read_store(folder).latents, z)
    assert [p.name for p in tmp_path.iterdir()] == ["s"]        # no temporary folders left

    # a successful write replaces the store whole (no stale shards)
    write_latents(folder, z[:4], ids[:4])
    assert [p.name for p in (folder / "latents").iterdir()] == ["part-00000.npy"]
    assert read_store(folder).latents.shape == (4, 3)


def test_a_writer_refuses_to_replace_a_folder_that_is_not_a_store(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(audit.InputError, match="exists and is not a latent store"):
        write_latents(tmp_path / "mine", np.ones((2, 2), np.float32), ["a", "b"])
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]
