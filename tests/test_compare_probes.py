"""compare.probes: the same probe in both spaces, a paired interval for the change, and
findings for an attribute the candidate lost and a protected one it started leaking."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.compare.probes import (
    ProbeChange,
    _paired_p,
    probe_changes,
    probe_findings,
    probe_metrics,
)
from audit.metrics import probe_score
from audit.streams import stream_seed

N = 1200


def _space(seed: int, n: int = N):
    """8-D baseline: 'shape' (3 levels) in z0-z1, 'size' (numeric) along z2, 'sex'
    (protected) nowhere; 'colour' is an unrelated categorical with 4 levels."""
    rng = np.random.default_rng(seed)
    shape = rng.integers(0, 3, n)
    Z = rng.normal(size=(n, 8))
    Z[:, :2] += np.array([[0, 0], [2, 0], [0, 2]])[shape]
    md = pd.DataFrame({
        "shape": np.array(["a", "b", "c"])[shape],
        "size": Z[:, 2] + 0.5 * rng.normal(size=n),
        "sex": np.where(rng.integers(0, 2, n) == 1, "f", "m"),
        "colour": rng.integers(0, 4, n),          # numeric dtype, 4 levels: categorical
    }, index=[f"p{i}" for i in range(n)])
    return Z, md, rng


def _zscore(X):
    return (X - X.mean(0)) / X.std(0)


def _by(changes: list[ProbeChange]) -> dict[str, ProbeChange]:
    return {c.column: c for c in changes}


def test_removed_attributes_show_as_drops_with_intervals_excluding_zero():
    Z, md, rng = _space(0)
    C = Z.copy()
    C[:, :3] = rng.normal(size=(N, 3))             # shape and size replaced by noise
    ch = _by(probe_changes(_zscore(Z), _zscore(C), md, ["shape", "size", "colour"],
                           cv=3, random_state=0))
    shape, size = ch["shape"], ch["size"]
    assert shape.kind == "categorical" and size.kind == "numeric"
    assert shape.metric == "balanced_accuracy" and size.metric == "r2"
    assert ch["colour"].kind == "categorical"
    for c in (shape, size):
        assert c.delta < -0.3 and c.ci_delta[1] < 0 and c.p_value < 0.01
        assert c.ci_delta[0] <= c.delta <= c.ci_delta[1]
        assert c.delta == pytest.approx(c.score_cand - c.score_base)
        assert c.n == N and len(c.lost_ids) > len(c.gained_ids)
        assert all(i.startswith("p") for i in c.lost_ids)
    findings = {f.subjects["attributes"][0]: f for f in probe_findings(list(ch.values()))}
    assert set(findings) == {"shape", "size"}
    for col in ("shape", "size"):
        f = findings[col]
        assert f.check == "compare" and f.id == f"compare-probe-{col}"
        assert f.severity == "warning" and "stopped encoding" in f.title
        assert f.ci[1] < 0 and f.p_value < 0.05 and f.evidence_ids


def test_protected_attribute_injected_into_candidate_is_a_leak():
    Z, md, _ = _space(1)
    C = Z.copy()
    C[:, 5] += 1.5 * np.where(md["sex"].to_numpy() == "f", 1.0, -1.0)
    changes = probe_changes(Z, C, md, ["shape"], protected=["sex"], cv=3, random_state=0)
    sex = _by(changes)["sex"]
    assert sex.protected and not _by(changes)["shape"].protected
    assert sex.delta > 0.2 and sex.ci_delta[0] > 0
    assert probe_metrics(changes)["compare.probe.sex.delta"] == sex.delta
    findings = probe_findings(changes)
    assert [f.id for f in findings] == ["compare-probe-sex"]
    f = findings[0]
    assert f.severity == "critical" and "started leaking" in f.title
    assert f.subjects == {"attributes": ["sex"], "protected": True, "kind": "probe"}
    # the same change in reverse: the candidate leaks less, which is no alarm
    back = probe_findings(probe_changes(C, Z, md, [], protected=["sex"], cv=3,
                                        random_state=0))
    assert [f.severity for f in back] == ["info"] and "leaks less" in back[0].title


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotated_copy_flags_nothing(seed):
    Z, md, rng = _space(10 + seed, n=1000)
    Q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    C = _zscore(Z @ Q * 3.0)
    changes = probe_changes(_zscore(Z), C, md, ["shape", "size", "colour"],
                            protected=["sex"], cv=3, random_state=seed)
    assert all(abs(c.delta) < 0.03 for c in changes)
    assert not [f for f in probe_findings(changes) if f.severity != "info"]


def test_scores_match_probe_score_and_same_seed_same_result():
    Z, md, rng = _space(3)
    C = Z + 0.3 * rng.normal(size=Z.shape)
    a = probe_changes(Z, C, md, ["shape", "size"], cv=3, random_state=7)
    b = probe_changes(Z, C, md, ["shape", "size"], cv=3, random_state=7)
    assert a == b
    # each side's score is probe_score's (the paired refit reproduces its folds)
    seed = stream_seed(7, "compare.probe.size")
    ref = probe_score(C, md["size"].to_numpy(), categorical=False, cv=3,
                      n_bootstrap=1000, random_state=seed)
    size = _by(a)["size"]
    assert size.score_cand == ref["score"] and size.ci_cand == ref["ci"]
    # a column's result does not depend on the other columns probed
    alone = probe_changes(Z, C, md, ["size"], cv=3, random_state=7)
    assert alone[0] == size


def test_unprobeable_columns_are_reported_not_raised():
    Z, md, _ = _space(4, n=300)
    md = md.assign(const="x", rare=np.where(np.arange(300) < 2, "r", "s"))
    ch = _by(probe_changes(Z, Z, md, ["const", "rare"], cv=3, random_state=0))
    assert not ch["const"].probed and "fewer than two levels" in ch["const"].note
    assert not ch["rare"].probed and "left out" in ch["rare"].note
    assert probe_findings(list(ch.values())) == []
    with pytest.raises(Exception, match="not in the metadata"):
        probe_changes(Z, Z, md, ["nope"], cv=3, random_state=0)


def test_paired_p_value():
    rng = np.random.default_rng(0)
    null = rng.normal(0.0, 0.01, 999)
    assert _paired_p(null, 0.0) > 0.5
    # percentile inversion: 25 of 999 resamples at or above 0 -> 2 * 26 / 1000
    boot = np.r_[np.full(974, -0.1), np.full(25, 0.01)]
    assert _paired_p(boot, -0.08) == pytest.approx(0.052)
    # beyond every resample: below the count's floor 2 / (B + 1), by the normal tail
    far = rng.normal(-0.2, 0.01, 999)
    assert _paired_p(far, -0.2) < 1e-10
    assert _paired_p(np.full(10, -0.1), -0.1) == pytest.approx(2 / 11)
