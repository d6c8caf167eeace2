"""WEAT against WEFE 1.0.1, a plain brute-force enumeration, and planted/null data.

WEFE's ``WEAT`` works on words through a ``WordEmbeddingModel`` (a gensim wrapper), but
its private ``_calc_effect_size``, ``_calc_weat`` and ``_calc_p_value`` take arrays and
dicts of vectors; the tests call those. gensim is only needed to import
``wefe.word_embedding_model`` (it reads ``gensim.__version__`` and
``gensim.models.KeyedVectors``); when gensim is not installed a two-attribute stand-in is
put in ``sys.modules`` while WEFE is imported.
"""
from __future__ import annotations

import importlib
import itertools
import math
import sys
import types

import numpy as np
import pytest

from audit.metrics._association import weat, weat_normal_pvalue, weat_test

TOL = 1e-9


# ---- the reference -------------------------------------------------------------------

@pytest.fixture(scope="module")
def wefe_weat():
    """WEFE's WEAT module, imported with a gensim stand-in when gensim is missing."""
    pytest.importorskip("wefe")
    pytest.importorskip("semantic_version")
    saved = {k: sys.modules.get(k) for k in ("gensim", "gensim.models")}
    try:
        import gensim  # noqa: F401
        stub = False
    except ImportError:
        stub = True
        gensim_mod = types.ModuleType("gensim")
        gensim_mod.__version__ = "4.3.0"
        models = types.ModuleType("gensim.models")
        models.KeyedVectors = type("KeyedVectors", (), {})
        gensim_mod.models = models
        sys.modules["gensim"] = gensim_mod
        sys.modules["gensim.models"] = models
    try:
        module = importlib.import_module("wefe.metrics.WEAT")
    finally:
        if stub:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
    return module


def _sets(seed, n_x=8, n_y=8, n_a=6, n_b=7, d=10):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n_x, d)), rng.normal(size=(n_y, d)),
            rng.normal(size=(n_a, d)), rng.normal(size=(n_b, d)))


def _brute_force_p(X, Y, A, B):
    """One-sided exact permutation p-value, written out from the definition."""
    def cos(u, v):
        return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))

    def s(w):
        return (sum(cos(w, a) for a in A) / len(A)) - (sum(cos(w, b) for b in B) / len(B))

    def stat(xs, ys):
        return sum(s(x) for x in xs) - sum(s(y) for y in ys)

    pool = list(X) + list(Y)
    observed = stat(X, Y)
    count = total = 0
    for idx in itertools.combinations(range(len(pool)), len(X)):
        rest = [pool[i] for i in range(len(pool)) if i not in idx]
        total += 1
        count += stat([pool[i] for i in idx], rest) >= observed - 1e-12
    return count / total, total


def _numpy_cosine(u, v):
    u = np.asarray(u, dtype=float)
    v = np.asarray(v, dtype=float)
    return (u / np.linalg.norm(u, axis=1, keepdims=True)) @ (
        v / np.linalg.norm(v, axis=1, keepdims=True)).T


# ---- against WEFE --------------------------------------------------------------------

@pytest.mark.parametrize("seed,sizes", [(0, (8, 8)), (1, (5, 9)), (2, (12, 3)), (3, (2, 2))])
def test_effect_size_and_statistic_match_wefe(wefe_weat, seed, sizes):
    X, Y, A, B = _sets(seed, *sizes)
    ref = wefe_weat.WEAT()
    res = weat(X, Y, A, B, ddof=0, n_permutations=1, exact_max=0, random_state=0)
    assert res["effect_size"] == pytest.approx(float(ref._calc_effect_size(X, Y, A, B)),
                                               abs=TOL, rel=TOL)
    assert res["statistic"] == pytest.approx(float(ref._calc_weat(X, Y, A, B)),
                                             abs=TOL, rel=TOL)


def test_ddof_one_rescales_effect_size(wefe_weat):
    X, Y, A, B = _sets(4)
    n = len(X) + len(Y)
    es0 = weat(X, Y, A, B, ddof=0)["effect_size"]
    es1 = weat(X, Y, A, B)["effect_size"]
    assert es1 == pytest.approx(es0 * math.sqrt((n - 1) / n), rel=1e-12)


def test_p_value_close_to_wefe(wefe_weat, monkeypatch):
    # A weak planted association keeps the p-value away from 0 and 1 (here about 0.25).
    X, Y, A, B = _sets(5, 6, 6, 5, 5, 10)
    direction = A.mean(axis=0) - B.mean(axis=0)
    X = X + 0.6 * direction / np.linalg.norm(direction)
    ref = wefe_weat.WEAT()
    words = {"X": X, "Y": Y, "A": A, "B": B}
    emb = {k: {f"{k}{i}": v for i, v in enumerate(arr)} for k, arr in words.items()}
    original = ref._calc_weat(X, Y, A, B)
    default_rng = np.random.default_rng
    # WEFE seeds nothing; pin its generator so this test is deterministic.
    monkeypatch.setattr(wefe_weat.np.random, "default_rng", lambda *a, **k: default_rng(7))
    # sklearn's cosine_similarity validates its input on each of WEFE's ~24,000 calls
    # (about 30 s); the same arithmetic in numpy keeps this test under a second.
    monkeypatch.setattr(wefe_weat, "cosine_similarity", _numpy_cosine)
    p_ref = float(ref._calc_p_value([emb["X"], emb["Y"]], [emb["A"], emb["B"]], original,
                                    iterations=1000, method="approximate",
                                    test_type="right-sided", verbose=False))
    res = weat(X, Y, A, B)
    assert res["exact"] and res["n_partitions"] == math.comb(12, 6)
    assert 0.1 < res["p_value"] < 0.5
    # Not equal: WEFE draws its partitions with replacement of words (a word can sit in
    # both halves) and counts strictly greater statistics; here they differ by about 0.02.
    assert abs(res["p_value"] - p_ref) < 0.05


# ---- exact and sampled p-values ------------------------------------------------------

@pytest.mark.parametrize("seed,sizes", [(10, (5, 5)), (11, (4, 6)), (12, (1, 4)), (13, (3, 3))])
def test_exact_p_value_equals_brute_force(seed, sizes):
    X, Y, A, B = _sets(seed, sizes[0], sizes[1], 4, 3, 5)
    X = X + 0.3 * A.mean(axis=0)
    p, total = _brute_force_p(X, Y, A, B)
    res = weat(X, Y, A, B)
    assert res["exact"] is True
    assert res["n_partitions"] == total == math.comb(sum(sizes), sizes[0])
    assert res["p_value"] == pytest.approx(p, abs=1e-15)


def test_ties_count_the_observed_partition():
    # Every target vector equal: s is constant, all partitions tie, p = 1.
    X = np.ones((4, 3))
    A, B = np.eye(3)[:1], np.eye(3)[1:2]
    with pytest.warns(RuntimeWarning, match="undefined"):
        res = weat(X, X.copy(), A, B)
    assert math.isnan(res["effect_size"])
    assert res["statistic"] == 0.0
    assert res["p_value"] == 1.0


def test_sampled_p_value_approximates_exact_and_is_reproducible():
    X, Y, A, B = _sets(20, 7, 7, 5, 5, 8)
    X = X + 0.2 * A.mean(axis=0)
    exact = weat(X, Y, A, B)
    sampled = weat(X, Y, A, B, exact_max=0, n_permutations=20000, random_state=3)
    assert exact["exact"] and not sampled["exact"]
    assert sampled["n_partitions"] == 20000
    assert abs(sampled["p_value"] - exact["p_value"]) < 0.01
    again = weat(X, Y, A, B, exact_max=0, n_permutations=20000, random_state=3)
    assert again == sampled
    assert sampled["effect_size"] == exact["effect_size"]


def test_sampled_p_value_is_never_zero():
    X, Y, A, B = _sets(21, 30, 30, 5, 5, 8)
    X = X + 3.0 * A.mean(axis=0)
    Y = Y + 3.0 * B.mean(axis=0)
    res = weat(X, Y, A, B, n_permutations=99, random_state=0)
    assert not res["exact"]  # C(60, 30) partitions
    assert res["p_value"] == pytest.approx(1 / 100)


# ---- planted and null ----------------------------------------------------------------

def test_planted_association_is_found():
    rng = np.random.default_rng(30)
    d = 16
    A = rng.normal(size=(8, d)) + 2.0 * np.eye(d)[0]
    B = rng.normal(size=(8, d)) + 2.0 * np.eye(d)[1]
    X = rng.normal(size=(8, d)) + 1.5 * np.eye(d)[0]
    Y = rng.normal(size=(8, d)) + 1.5 * np.eye(d)[1]
    res = weat(X, Y, A, B)
    assert res["exact"]
    assert res["p_value"] < 0.01
    assert res["effect_size"] > 1.2
    # The direction flips with the attribute sets and with the target sets.
    assert weat(X, Y, B, A)["effect_size"] == pytest.approx(-res["effect_size"], rel=1e-12)
    assert weat(Y, X, A, B)["effect_size"] == pytest.approx(-res["effect_size"], rel=1e-12)
    assert weat(X, Y, B, A)["p_value"] > 0.99


def test_null_p_values_are_roughly_uniform():
    p = np.array([weat(*_sets(100 + seed, 8, 8, 6, 6, 12))["p_value"] for seed in range(50)])
    assert np.mean(p < 0.05) <= 0.15
    assert 0.3 <= np.mean(p < 0.5) <= 0.7
    assert p.min() > 0


# ---- validation ----------------------------------------------------------------------

GOOD = dict(zip("XYAB", _sets(0, 3, 3, 2, 2, 4)))


@pytest.mark.parametrize("kwargs,match", [
    ({"X": np.zeros((3, 4))}, "zero vectors"),
    ({"A": np.ones((2, 5))}, "same number of features"),
    ({"Y": np.ones(4)}, "2-D"),
    ({"B": np.full((2, 4), np.nan)}, "NaN"),
    ({"X": np.empty((0, 4))}, "at least 1 rows"),
    ({"ddof": 2}, "ddof"),
    ({"ddof": 0.5}, "ddof"),
    ({"n_permutations": 0}, "n_permutations"),
    ({"exact_max": -1}, "exact_max"),
    ({"exact_max": True}, "exact_max"),
])
def test_invalid_arguments_raise(kwargs, match):
    args = {**GOOD, **kwargs}
    data = [args.pop(k) for k in "XYAB"]
    with pytest.raises(ValueError, match=match):
        weat(*data, **args)


def test_one_vector_per_target_set():
    X, Y, A, B = _sets(0, 1, 1, 2, 2, 4)
    assert math.isfinite(weat(X, Y, A, B, ddof=1)["effect_size"])
    res = weat(X, Y, A, B)
    assert res["n_partitions"] == 2 and res["p_value"] in (0.5, 1.0)


# ---- weat_test: one alternative, with the normal tail ---------------------------------

def test_weat_test_combines_both_directions():
    rng = np.random.default_rng(11)
    A, B = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    X, Y = rng.normal(size=(5, 5)) + 0.3 * A.mean(0), rng.normal(size=(5, 5))
    greater, less = weat(X, Y, A, B), weat(Y, X, A, B)
    assert greater["exact"]
    res = {alt: weat_test(X, Y, A, B, alternative=alt) for alt in
           ("greater", "less", "two-sided")}
    assert res["greater"]["p_value"] == greater["p_value"]
    assert res["less"]["p_value"] == less["p_value"]
    assert res["two-sided"]["p_value"] == min(1.0, 2 * min(greater["p_value"],
                                                            less["p_value"]))
    assert all(r["p_method"] == "exact" and r["effect_size"] == greater["effect_size"]
               for r in res.values())
    with pytest.raises(ValueError, match="alternative"):
        weat_test(X, Y, A, B, alternative="bigger")


def test_weat_test_uses_the_normal_tail_beyond_every_sampled_partition():
    rng = np.random.default_rng(12)
    A, B = rng.normal(size=(20, 8)) + 3, rng.normal(size=(20, 8)) - 3
    X, Y = rng.normal(size=(40, 8)) + 3, rng.normal(size=(40, 8)) - 3
    res = weat_test(X, Y, A, B, alternative="greater", n_permutations=99, random_state=1)
    assert not res["exact"] and res["p_method"] == "normal-tail"
    assert res["p_value"] == weat_normal_pvalue(X, Y, A, B) < 1 / 100
    # an int seed runs the two directions with seed and seed + 1
    assert res["p_value"] == weat_test(X, Y, A, B, alternative="greater",
                                       n_permutations=99, random_state=1)["p_value"]

