"""The attributes as generative factors: the MI map, dead dimensions, and the
disentanglement scores (MIG, DCI, SAP, modularity; disentanglement_lib definitions).

Numeric attributes are cut into ``factor_bins`` quantile bins with
``columns.quantile_codes`` (pandas' qcut), not ``columns.quantile_edges``: pandas nudges quantile probabilities that are not exact in
binary (e.g. k/7) up to the next float and interpolates through percentiles, so an edge
can sit one ulp apart from numpy's and a value lying on it changes bin. These bins only
discretise factors for the scores; keeping pandas keeps every score as it was.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ...columns import quantile_codes
from ...context import Context
from ...findings import Finding
from ...metrics import (
    benjamini_hochberg,
    dci_scores,
    factor_entropy,
    mig_score,
    modularity_score,
    mutual_info_matrix,
    sap_score,
)
from ...metrics._dimensions import dead_dimension_test
from ...metrics._disentanglement import _mig, _modularity
from ._format import matrix, opt_float
from ._sampling import _seed, _subsample
from .attributes import Attribute
from .settings import Settings

__all__ = ["SCORE_NOTES", "factor_analysis", "factor_results"]

SCORE_NOTES = {
    "disentanglement.mig": "Mutual information gap: per attribute, the MI of the best latent "
                           "dimension minus the second best, over the attribute's entropy "
                           "(1 = each attribute lives in one dimension).",
    "disentanglement.dci.disentanglement": "DCI disentanglement: how much each dimension's "
                                           "importance concentrates on one attribute "
                                           "(gradient-boosted trees).",
    "disentanglement.dci.completeness": "DCI completeness: how much each attribute's "
                                        "importance concentrates on one dimension.",
    "disentanglement.dci.informativeness": "DCI informativeness: test accuracy of the trees "
                                           "predicting each attribute from all dimensions.",
    "disentanglement.sap": "Separated attribute predictability: per attribute, the gap in "
                           "accuracy between the best and second-best single dimension.",
    "disentanglement.modularity": "Modularity: how much each dimension's MI is about a "
                                  "single attribute (1 = every dimension serves one).",
}


def factor_analysis(ctx: Context, usable: list[Attribute], notes: list[str], s: Settings
                    ) -> dict[str, Any] | None:
    """The attributes as discrete factors (levels, or numeric ones in ``factor_bins``
    quantile bins) on the rows where all have a value: the normalised MI map, every
    dimension's variance ratio and dead-dimension p-value, and the disentanglement
    scores. ``None`` when fewer than 20 rows have every attribute or no factor varies.
    """
    if not usable:
        return None
    ok = np.ones(ctx.n, dtype=bool)
    for a in usable:
        ok &= a.valid
    rows = np.flatnonzero(ok)
    if rows.size < 20:
        notes.append("Too few rows have every attribute for the factor-based scores.")
        return None
    if rows.size > s.factor_max_rows:
        notes.append(f"The MI map and the disentanglement scores use a seeded sample of "
                     f"{s.factor_max_rows:,} of the {rows.size:,} rows with every "
                     f"attribute (setting factor_max_rows).")
        rows = _subsample(ctx, rows, s.factor_max_rows, "factor_rows")
    cols, kept, how = [], [], []
    for a in usable:
        v = a.values[rows]
        if a.categorical:
            codes = pd.factorize(v, sort=True)[0]
            how.append(f"{a.name}: its {len(a.levels)} levels")
        else:
            codes, _ = quantile_codes(v, s.factor_bins)
            how.append(f"{a.name}: {int(codes.max()) + 1} quantile bins")
        if np.unique(codes).size < 2:
            notes.append(f"'{a.name}' takes a single value in the rows used for the "
                         "factor-based scores and is left out of them.")
            continue
        cols.append(codes)
        kept.append(a)
    if not kept:
        return None
    factors = np.column_stack(cols)
    z = ctx.data.latents[rows].astype(np.float64)
    mi = mutual_info_matrix(z, factors, num_bins=s.mi_bins)
    ent = factor_entropy(factors)
    nmi = mi / np.where(ent > 0, ent, np.nan)
    out: dict[str, Any] = {"attrs": kept, "rows": rows, "nmi": nmi, "how": how,
                           "scores": {}, "score_notes": []}
    # dead dimensions: variance relative to the median dimension, bootstrap on log scale
    dead = dead_dimension_test(
        ctx.data.latents, ctx.data.latents[_subsample(ctx, np.arange(ctx.n), 5000, "dead")],
        threshold=s.dead_variance_ratio, n_bootstrap=s.n_bootstrap,
        confidence=s.confidence, random_state=ctx.rng("entanglement.dead_boot"))
    out["variance_ratio"] = dead["variance_ratio"]
    if dead["p_value"] is not None:
        out["dead_p"] = dead["p_value"]
        out["variance_ratio_ci"] = dead["ci"]
    # disentanglement scores
    if s.disentanglement:
        out["scores"] = _scores(ctx, z, factors, out["score_notes"], s, mi, ent)
    return out


def _scores(ctx: Context, z: np.ndarray, factors: np.ndarray, score_notes: list[str],
            s: Settings, mi: np.ndarray, ent: np.ndarray) -> dict[str, float]:
    """MIG, modularity, SAP and DCI (``nan`` where undefined; warnings become notes).

    ``mi`` and ``ent`` are the MI map's matrix and the factors' entropies: MIG and
    modularity are these functions of them (every factor here varies, so
    ``mig_score``/``modularity_score`` would drop none and recompute the same matrix).
    """
    nan = float("nan")
    scores = dict.fromkeys(SCORE_NOTES, nan)
    if z.shape[1] < 2:
        score_notes.append("The scores need at least two latent dimensions.")
        return scores
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        varies = bool(np.all(ent > 0))
        scores["disentanglement.mig"] = (_mig(mi, ent) if varies else
                                         mig_score(z, factors, num_bins=s.mi_bins))
        if factors.shape[1] >= 2:
            scores["disentanglement.modularity"] = (
                _modularity(mi) if varies else
                modularity_score(z, factors, num_bins=s.mi_bins))
        else:
            score_notes.append("Modularity and DCI need at least two attributes.")
        sub = ctx.sample_rows(z.shape[0], s.dci_max_rows, "entanglement.dci_rows")
        if sub.size < z.shape[0]:
            score_notes.append(f"DCI and SAP use a seeded sample of {sub.size:,} of "
                               f"{z.shape[0]:,} rows (gradient-boosted trees are slow).")
        seed = _seed(ctx, "dci")
        scores["disentanglement.sap"] = sap_score(z[sub], factors[sub], random_state=seed)
        if factors.shape[1] >= 2:
            # one thread per attribute, each from its own seed: the same scores on
            # any number of cores
            dci = dci_scores(z[sub], factors[sub], random_state=seed, n_jobs=-1)
            for k, v in dci.items():
                scores[f"disentanglement.dci.{k}"] = v
    for w in caught:
        score_notes.append(str(w.message))
    return {k: float(v) for k, v in scores.items()}


def factor_results(factor: dict, s: Settings, *, check: str
                   ) -> tuple[list[Finding], dict[str, float], dict[str, Any]]:
    """Dead-dimension findings (Benjamini–Hochberg over the dimensions, and no attribute
    sharing ``dead_mi`` with the dimension), the scores as metrics, the ``factors``
    table."""
    nmi, ratio = factor["nmi"], factor["variance_ratio"]
    d = nmi.shape[0]
    max_mi = np.nanmax(nmi, axis=1) if nmi.size else np.zeros(d)
    findings: list[Finding] = []
    dead = np.zeros(d, dtype=bool)
    q = np.full(d, np.nan)
    if "dead_p" in factor:
        rej, q = benjamini_hochberg(factor["dead_p"], alpha=s.alpha)
        dead = rej & (max_mi < s.dead_mi)
        lo, hi = factor["variance_ratio_ci"]
        for j in np.flatnonzero(dead):
            findings.append(Finding(
                id=f"entanglement-dead-z{j}", check=check, severity="warning",
                title=f"Latent dimension {j} is dead (variance {ratio[j]:.2g}× the median "
                      "dimension's)",
                summary=(f"Dimension {j} barely varies across the data (variance "
                         f"{ratio[j]:.2g}× the median dimension's, {s.confidence:.0%} "
                         f"interval [{lo[j]:.2g}, {hi[j]:.2g}]) and shares at most "
                         f"{max_mi[j]:.3f} normalised mutual information with any "
                         "attribute. In a VAE this is posterior collapse: the dimension "
                         "carries nothing, and the latent space is effectively smaller."),
                metric="entanglement.variance_ratio", value=opt_float(ratio[j]),
                threshold=s.dead_variance_ratio, p_value=opt_float(q[j]),
                ci=(opt_float(lo[j]), opt_float(hi[j])), subjects={"dimension": int(j)}))
    metrics = {"entanglement.dead_dimensions": float(dead.sum())}
    scores = factor["scores"]
    metrics.update(scores)
    table = {
        "attributes": [a.name for a in factor["attrs"]],
        "n_rows": int(factor["rows"].size), "how": factor["how"],
        "nmi": matrix(nmi), "variance_ratio": [opt_float(v) for v in ratio],
        "dead": dead.tolist(), "dead_q": [opt_float(v) for v in q],
        "max_nmi": [opt_float(v) for v in max_mi],
        "scores": [{"metric": k, "value": opt_float(v), "note": SCORE_NOTES[k]}
                   for k, v in scores.items()],
        "score_notes": list(dict.fromkeys(factor["score_notes"])),
    }
    return findings, metrics, table
