"""Joint read-out directions and the findings about attribute pairs.

One regression of the latents on every attribute at once gives each attribute's direction
with the others held fixed (``metrics._edit_leakage.entanglement_analysis``); here the
attributes taking part are chosen, and the cosines, edit leakage and data association it
returns become findings, metrics and the ``joint`` table.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...context import Context
from ...findings import Finding
from ...metrics import benjamini_hochberg
from ...metrics._edit_leakage import entanglement_analysis
from ._format import matrix, num, opt_float
from ._sampling import _seed
from .attributes import Attribute
from .settings import Settings

__all__ = ["joint_analysis", "pair_results"]


def joint_analysis(ctx: Context, usable: list[Attribute], sample: np.ndarray,
                   probes: dict[str, dict], notes: list[str], s: Settings
                   ) -> dict[str, Any] | None:
    """Joint directions, cosines, leakage and data association of the usable attributes
    on the sampled rows where all of them have a value.

    Attributes are left out one at a time (noted) while too few rows have every one, or
    while one takes a single value in those rows; ``None`` when none is left.
    """
    if not usable:
        return None
    members = list(usable)
    while members:
        ok = np.ones(sample.size, dtype=bool)
        for a in members:
            ok &= a.valid[sample]
        rows = sample[ok]
        p = sum(max(len(a.levels) - 1, 1) for a in members)
        if rows.size < max(30, 5 * (p + 1)):
            worst = max(members, key=lambda a: int((~a.valid).sum()))
            why = "with it, too few rows have every attribute"
        else:
            single = [a for a in members
                      if pd.unique(a.values[rows]).size < 2]
            if not single:
                break
            worst = single[0]
            why = "it takes a single value in the rows where every attribute is present"
        members.remove(worst)
        worst.notes.append(f"left out of the joint analysis: {why}")
        notes.append(f"'{worst.name}' is left out of the joint analysis ({why}).")
    if not members:
        return None
    dropped = int(sample.size - rows.size)
    if dropped:
        notes.append(f"The joint analysis uses the {rows.size:,} sampled rows where every "
                     f"attribute in it has a value ({dropped:,} left out).")
    res = entanglement_analysis(
        ctx.standardized[rows], [a.values[rows] for a in members],
        categorical=[a.categorical for a in members], threshold=s.leakage_threshold,
        n_bootstrap=s.n_bootstrap, confidence=s.confidence,
        random_state=_seed(ctx, "joint"))
    res["names"] = [a.name for a in members]
    res["attrs"] = members
    res["rows"] = rows
    res["encoded"] = np.array([probes[a.name]["encoded"] for a in members])
    return res


def pair_results(joint: dict, probes: dict, visuals: dict, s: Settings, *, check: str
                 ) -> tuple[list[Finding], dict[str, float], dict[str, Any]]:
    """Findings, metrics and the table of the joint analysis.

    An ordered pair (A, B) of encoded attributes is tested for leakage above
    ``leakage_threshold``; Benjamini–Hochberg runs over every tested pair, and a flagged
    pair is reported once, in its stronger direction. Pairs associated at least
    ``correlation_note`` in the data get an info finding saying whether the
    representation keeps them apart.
    """
    names, attrs = joint["names"], joint["attrs"]
    m = len(names)
    enc = joint["encoded"]
    L, Llo, Lhi = joint["leakage"], *joint["leakage_ci"]
    C, Clo, Chi = joint["cosine"], *joint["cosine_ci"]
    A, Alo, Ahi = joint["association"], *joint["association_ci"]
    P = joint["leakage_p"]
    tested = [(a, b) for a in range(m) for b in range(m)
              if a != b and enc[a] and enc[b] and np.isfinite(P[a, b])]
    q = np.full((m, m), np.nan)
    rejected = np.zeros((m, m), dtype=bool)
    if tested:
        rej, qv = benjamini_hochberg([P[a, b] for a, b in tested], alpha=s.alpha)
        for (a, b), r, qq in zip(tested, rej, qv):
            q[a, b], rejected[a, b] = qq, r
    reenc = visuals.get("reencoded")
    findings: list[Finding] = []
    flagged_pairs = set()
    for a in range(m):
        for b in range(a + 1, m):
            cand = [(x, y) for x, y in ((a, b), (b, a)) if rejected[x, y]]
            if not cand:
                continue
            x, y = max(cand, key=lambda t: L[t])
            flagged_pairs.add((a, b))
            na, nb = names[x], names[y]
            back = L[y, x]
            re_txt = ""
            if reenc is not None and np.isfinite(reenc["leakage"][x][y]):
                lo_r, hi_r = reenc["ci_low"][x][y], reenc["ci_high"][x][y]
                re_txt = (f" Through decode → re-encode: {num(reenc['leakage'][x][y])}"
                          f" [{num(lo_r)}, {num(hi_r)}].")
            data_txt = (f"In the data, {na} and {nb} are associated at "
                        f"{num(A[x, y])} [{num(Alo[x, y])}, {num(Ahi[x, y])}]")
            data_txt += (": part of what a naive probe would show is the data's, but "
                         "this leakage holds the other attributes fixed." if
                         abs(A[x, y]) >= s.correlation_note else
                         ", so the tie is the model's, not the data's.")
            sev = "critical" if Llo[x, y] >= s.critical_leakage else "warning"
            findings.append(Finding(
                id=f"entanglement-pair-{attrs[a].key}-{attrs[b].key}",
                check=check, severity=sev,
                title=f"Editing {na} moves {nb}: leakage {num(L[x, y])}",
                summary=(f"Moving a latent along {na}'s direction by one standard "
                         f"deviation of {na} moves the read-out of {nb} by "
                         f"{num(L[x, y])} standard deviations per standard deviation "
                         f"of {na}'s own ({s.confidence:.0%} interval "
                         f"[{num(Llo[x, y])}, {num(Lhi[x, y])}]; the other way, "
                         f"{nb} → {na}: {num(back)}). Their joint directions have "
                         f"cosine {num(C[x, y])} [{num(Clo[x, y])}, {num(Chi[x, y])}]."
                         f"{re_txt} {data_txt}"),
                metric="entanglement.leakage", value=opt_float(L[x, y]),
                threshold=s.leakage_threshold, p_value=opt_float(q[x, y]),
                ci=(opt_float(Llo[x, y]), opt_float(Lhi[x, y])),
                subjects={"attributes": [na, nb], "from": na, "to": nb},
                evidence_ids=tuple(visuals["evidence"].get(na, ()))))
    for a in range(m):
        for b in range(a + 1, m):
            if not np.isfinite(A[a, b]) or abs(A[a, b]) < s.correlation_note:
                continue
            na, nb = names[a], names[b]
            pair = [v for v in (L[a, b], L[b, a]) if np.isfinite(v)]
            lk = max(pair) if enc[a] and enc[b] and pair else float("nan")
            if (a, b) in flagged_pairs:
                verdict = ("The model also ties them together: see the flagged "
                           "entanglement finding for this pair.")
            elif enc[a] and enc[b]:
                verdict = (f"The representation keeps them apart: joint directions at "
                           f"cosine {num(C[a, b])}, edit leakage at most {num(lk)} "
                           f"(not significantly above {s.leakage_threshold:g}). This is a "
                           "property of the data, not entanglement by the model.")
            else:
                verdict = ("Not both are encoded by the latents, so their entanglement "
                           "is not tested.")
            kind = ("Pearson r" if not (attrs[a].categorical or attrs[b].categorical)
                    else "canonical correlation")
            findings.append(Finding(
                id=f"entanglement-data-{attrs[a].key}-{attrs[b].key}", check=check,
                severity="info",
                title=f"{na} and {nb} are correlated in the data ({kind} "
                      f"{num(A[a, b])})",
                summary=(f"In the audited rows, {na} and {nb} are associated at "
                         f"{num(A[a, b])} ({kind}, {s.confidence:.0%} interval "
                         f"[{num(Alo[a, b])}, {num(Ahi[a, b])}]). {verdict}"),
                metric="entanglement.data_association", value=opt_float(A[a, b]),
                threshold=s.correlation_note, ci=(opt_float(Alo[a, b]), opt_float(Ahi[a, b])),
                subjects={"attributes": [na, nb]}))
    iu = [(a, b) for a in range(m) for b in range(a + 1, m) if enc[a] and enc[b]]
    metrics = {
        "entanglement.max_leakage": (float(np.nanmax([L[a, b] for a, b in tested]))
                                     if tested else float("nan")),
        "entanglement.mean_abs_cosine": (float(np.nanmean([abs(C[a, b]) for a, b in iu]))
                                         if iu else float("nan")),
        "entanglement.flagged_pairs": float(len(flagged_pairs)),
    }
    if reenc is not None:
        R = np.array(reenc["leakage"], dtype=float)
        vals = [R[a, b] for a, b in tested if np.isfinite(R[a, b])]
        metrics["entanglement.max_leakage_reencoded"] = (float(max(vals)) if vals
                                                         else float("nan"))
    table = {
        "attributes": names, "encoded": enc.tolist(),
        "categorical": [a.categorical for a in attrs], "n_rows": int(joint["n"]),
        "n_bootstrap": int(joint["n_bootstrap"]),
        "association": matrix(A), "association_ci": [matrix(Alo), matrix(Ahi)],
        "cosine": matrix(C), "cosine_ci": [matrix(Clo), matrix(Chi)],
        "leakage": matrix(L), "leakage_ci": [matrix(Llo), matrix(Lhi)],
        "leakage_q": matrix(q), "flagged": rejected.tolist(),
        "marginal_leakage": matrix(joint["marginal_leakage"]),
        "direction_norm": [opt_float(v) for v in joint["direction_norm"]],
        "probe_vs_joint_cosine": [
            opt_float(abs(np.dot(probes[n]["direction"], joint["directions"][k]))
               / max(np.linalg.norm(joint["directions"][k]), 1e-300))
            for k, n in enumerate(names)],
    }
    if reenc is not None:
        table["reencoded"] = reenc
    return findings, metrics, table
