"""What the model encodes now: the same linear probe in both spaces, and the change.

For every attribute and protected column, :func:`probe_changes` fits the one cross-validated
probe of the package (:func:`audit.metrics.probe_score`: balanced accuracy of a logistic
probe for a categorical column, out-of-fold R² of a ridge probe for a numeric one) on the
baseline's and on the candidate's latents of the same matched rows, with the **same folds**
on both sides, and measures the change with a paired bootstrap over rows of the two sets of
out-of-fold predictions. :func:`probe_findings` turns the changes into findings: an
attribute the candidate stopped encoding, a protected attribute that started leaking, with
Benjamini–Hochberg over all columns.

The statistics
--------------
* ``score`` (per side): the score of :func:`~audit.metrics.probe_score`, with its
  percentile bootstrap interval over evaluation rows.
* ``delta = score_cand - score_base``.
* ``ci_delta``: for ``b = 1..B``, one resample of row indices ``I_b`` (drawn with
  replacement) is applied to *both* sides' out-of-fold predictions, giving
  ``d_b = S(pred_cand[I_b], y[I_b]) - S(pred_base[I_b], y[I_b])``; the interval is the
  percentile interval of the ``d_b``. Pairing keeps the row-to-row covariance of the two
  probes (they see the same rows, the same folds, the same labels), so the interval is far
  narrower than one built from the two separate intervals, and honest for the question
  "on these rows, does the candidate's probe read the attribute worse?". Like
  ``probe_score``'s own interval, it covers the sampling of evaluation rows, not the
  refitting of the probe.
* ``p_value`` ("no change", two-sided): the inversion of that percentile interval,
  ``min(1, 2 * min(#{d_b <= 0} + 1, #{d_b >= 0} + 1) / (B + 1))``: below ``alpha``
  exactly when the equal-tailed ``1 - alpha`` interval excludes 0 (up to the +1). When no
  resample reaches 0 that count sits at its floor ``2 / (B + 1)``, too coarse for
  Benjamini–Hochberg over many columns (25 columns at ``B = 1000`` would hide every
  change), so the p-value is then the normal tail ``2 * Phi(-|delta| / sd(d_b))`` (the
  bootstrap standard error), never above the floor.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from audit.columns import group_column, is_numeric, slug
from audit.errors import AuditError
from audit.findings import SEVERITY_RANK, Finding
from audit.formatting import format_p
from audit.metrics import benjamini_hochberg, logistic_probe, out_of_fold, probe_score

# the ridge penalties of probe_score's numeric probe: the delta must refit the same probe
from audit.metrics._probes import _RIDGE_ALPHAS
from audit.streams import stream_seed

__all__ = ["ProbeChange", "probe_changes", "probe_findings", "probe_metrics"]

#: a row of a numeric column counts as "lost" (or "gained") when its absolute out-of-fold
#: error grew (or shrank) by more than this many standard deviations of the column
NUMERIC_EVIDENCE_SD = 0.5


@dataclass(frozen=True)
class ProbeChange:
    """One column probed in both spaces.

    ``score_*``/``ci_*``: balanced accuracy (categorical) or out-of-fold R² (numeric) and
    its bootstrap interval; ``delta = score_cand - score_base`` with a paired bootstrap
    interval ``ci_delta`` and ``p_value`` for "no change" (two-sided, uncorrected);
    ``p_base``/``p_cand``: probe_score's test of "no better than chance" on each side;
    ``lost_ids``/``gained_ids``: rows the baseline's probe read right and the candidate's
    wrong, and the reverse (numeric: absolute error grew / shrank by more than
    :data:`NUMERIC_EVIDENCE_SD` standard deviations). A column that cannot be probed has
    NaN scores and says why in ``note``.
    """

    column: str
    kind: Literal["categorical", "numeric"]
    protected: bool
    metric: str
    chance: float
    score_base: float
    ci_base: tuple[float, float]
    score_cand: float
    ci_cand: tuple[float, float]
    delta: float
    ci_delta: tuple[float, float]
    p_value: float
    n: int
    p_base: float = math.nan
    p_cand: float = math.nan
    lost_ids: tuple[str, ...] = ()
    gained_ids: tuple[str, ...] = ()
    note: str | None = None

    @property
    def probed(self) -> bool:
        return math.isfinite(self.delta)


_NAN2 = (math.nan, math.nan)


def _prepare(ser: pd.Series, cv: int, max_levels: int
             ) -> tuple[str, np.ndarray | None, np.ndarray, str | None]:
    """Kind, target values of the usable rows, the usable-row mask, and a note (a refusal
    when the values are None)."""
    ser = ser.reset_index(drop=True)
    if is_numeric(ser):
        vals = pd.to_numeric(ser, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        rows = np.isfinite(vals)
        notes = [f"{int((~rows).sum())} rows without a finite value left out"] \
            if not rows.all() else []
        if rows.sum() < max(cv, 3) or np.ptp(vals[rows]) == 0:
            return "numeric", None, rows, "too few distinct values to probe"
        return "numeric", vals[rows], rows, "; ".join(notes) or None
    groups = group_column(ser)
    labels = groups.labels
    rows = np.array([v is not None for v in labels.tolist()], dtype=bool)
    notes = [f"{int((~rows).sum())} rows without a value left out"] if not rows.all() else []
    levels, counts = np.unique(labels[rows].astype(str), return_counts=True)
    small = levels[counts < cv]
    if small.size:
        rows &= ~np.isin(labels.astype(str), small)
        notes.append(f"level(s) {', '.join(map(str, small))} with fewer than cv={cv} rows "
                     "left out")
    kept = levels.size - small.size
    if kept < 2:
        return "categorical", None, rows, "; ".join(notes + ["fewer than two levels to tell apart"])
    if kept > max_levels:
        return "categorical", None, rows, "; ".join(notes + [
            f"{kept} levels (more than max_levels={max_levels}): not probed"])
    return "categorical", labels[rows].astype(str), rows, "; ".join(notes) or None


def _boot_counts(n: int, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """(n_bootstrap, n) counts of each row in each resample (with replacement)."""
    idx = rng.integers(0, n, size=(n_bootstrap, n))
    flat = (np.arange(n_bootstrap)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=n_bootstrap * n).reshape(n_bootstrap, n) \
        .astype(np.float64)


def _weighted_scores(W: np.ndarray, pred: np.ndarray, target: np.ndarray,
                     categorical: bool) -> np.ndarray:
    """The probe's score under each row weighting ``W`` (m, n): with weights the counts of
    a bootstrap resample, exactly the score of the resampled rows (balanced accuracy over
    the classes present; R² with the resample's own mean)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if categorical:
            correct = (pred == target).astype(np.float64)
            per_class = []
            for c in np.unique(target):
                m = target == c
                den = W[:, m].sum(axis=1)
                per_class.append(np.where(den > 0, W[:, m] @ correct[m] / den, np.nan))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(np.vstack(per_class), axis=0)
        tot = W.sum(axis=1)
        mean = W @ target / tot
        sst = W @ target ** 2 - tot * mean ** 2
        sse = W @ (target - pred) ** 2
        return np.where(sst > 1e-12 * np.maximum(W @ target ** 2, 1.0), 1.0 - sse / sst, np.nan)


def _paired_p(boot: np.ndarray, delta: float) -> float:
    """Two-sided p-value of "no change" from the paired bootstrap differences ``boot``:
    the percentile-interval inversion ``2 * min(#{d <= 0} + 1, #{d >= 0} + 1) / (B + 1)``;
    when no resample reaches 0 (the count's floor ``2 / (B + 1)``, which Benjamini–Hochberg
    over many columns could not get under ``alpha``), the normal tail
    ``2 * Phi(-|delta| / sd(boot))`` below that floor."""
    b = boot.size
    tail = min(int(np.sum(boot <= 0)), int(np.sum(boot >= 0)))
    p = min(1.0, 2.0 * (tail + 1) / (b + 1))
    if tail == 0:
        se = float(np.std(boot, ddof=1)) if b > 1 else 0.0
        if se > 0:                       # a degenerate bootstrap keeps the floor
            p = min(p, 2.0 * float(stats.norm.sf(abs(delta) / se)))
    return float(p)


def _paired(Xb: np.ndarray, Xc: np.ndarray, target: np.ndarray, categorical: bool, cv: int,
            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions of both sides on the folds :func:`probe_score` draws from
    ``seed`` (its first draw seeds the split)."""
    fold_seed = check_random_state(seed).randint(np.iinfo(np.int32).max)
    if categorical:
        folds = list(StratifiedKFold(n_splits=cv, shuffle=True, random_state=fold_seed)
                     .split(Xb, target))
        model = logistic_probe
    else:
        folds = list(KFold(n_splits=cv, shuffle=True, random_state=fold_seed).split(Xb))
        model = partial(RidgeCV, alphas=_RIDGE_ALPHAS)
    out = []
    for X in (Xb, Xc):
        limit = 1 if X.size <= 1 << 22 else None
        with threadpool_limits(limits=limit), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            out.append(out_of_fold(X, target, folds, model, output="predict")[0])
    return out[0], out[1]


def _refused(column: str, kind: str, protected: bool, n: int, note: str) -> ProbeChange:
    return ProbeChange(column=column, kind=kind, protected=protected,  # type: ignore[arg-type]
                       metric="balanced_accuracy" if kind == "categorical" else "r2",
                       chance=math.nan, score_base=math.nan, ci_base=_NAN2,
                       score_cand=math.nan, ci_cand=_NAN2, delta=math.nan, ci_delta=_NAN2,
                       p_value=math.nan, n=n, note=note)


def probe_changes(base_latents, cand_latents, metadata: pd.DataFrame, columns: list[str], *,
                  protected: Sequence[str] = (), cv: int = 5, random_state: int,
                  n_bootstrap: int = 1000, confidence: float = 0.95, max_levels: int = 50,
                  ids: Sequence | None = None) -> list[ProbeChange]:
    """Probe every column in both spaces and measure the change.

    Parameters
    ----------
    base_latents, cand_latents : array-like of shape (n_samples, d_base), (n_samples, d_cand)
        The two spaces' latents of the same matched rows, in the order of ``metadata``
        (the dimensions may differ). Scale does not matter: each probe standardises its
        features with the training fold's mean and standard deviation, so z-scoring each
        side first changes nothing.
    metadata : DataFrame of n_samples rows
    columns : list of str
        Attributes to probe. ``protected`` columns are probed too (listed after these,
        each once).
    protected : sequence of str, default=()
        Protected columns: a rise is a leak, a drop is welcome.
    cv : int, default=5
        Folds, the same on both sides; categorical levels with fewer rows are left out.
    random_state : int
        Seeds each column's folds and bootstrap from the stream
        ``compare.probe.<column>`` (:mod:`audit.streams`), so a column's result does not
        depend on which other columns are probed.
    n_bootstrap : int, default=1000
        Resamples for every interval and the paired test.
    confidence : float, default=0.95
        Level of every interval.
    max_levels : int, default=50
        A categorical column with more levels is not probed (``note`` says so).
    ids : sequence, optional
        Row ids for the evidence; default the metadata's index as strings.

    Returns
    -------
    list of ProbeChange
        One per column, in the order of ``columns`` then ``protected``.
    """
    Xb = np.asarray(base_latents, dtype=np.float64)
    Xc = np.asarray(cand_latents, dtype=np.float64)
    n = len(metadata)
    if Xb.ndim != 2 or Xc.ndim != 2 or Xb.shape[0] != n or Xc.shape[0] != n:
        raise AuditError(f"latents of shapes {Xb.shape} and {Xc.shape} do not match "
                         f"{n} metadata rows")
    if not (np.isfinite(Xb).all() and np.isfinite(Xc).all()):
        raise AuditError("the latents hold NaN or Inf values")
    protected = list(dict.fromkeys(protected))
    names = list(dict.fromkeys(list(columns) + protected))
    missing = [c for c in names if c not in metadata.columns]
    if missing:
        raise AuditError(f"column(s) {missing} are not in the metadata", key=missing[0])
    ids_arr = np.asarray([str(i) for i in (metadata.index if ids is None else ids)],
                         dtype=object)
    if ids_arr.size != n:
        raise AuditError(f"{ids_arr.size} ids for {n} rows")
    out = []
    for col in names:
        is_prot = col in protected
        kind, target, rows, note = _prepare(metadata[col], cv, max_levels)
        if target is None:
            out.append(_refused(col, kind, is_prot, int(rows.sum()), note or "not probed"))
            continue
        cat = kind == "categorical"
        seed = stream_seed(random_state, f"compare.probe.{col}")
        xb, xc = Xb[rows], Xc[rows]
        kw = {"categorical": cat, "cv": cv, "n_bootstrap": n_bootstrap,
              "confidence": confidence, "random_state": seed}
        rb, rc = probe_score(xb, target, **kw), probe_score(xc, target, **kw)
        if cat:
            _, codes = np.unique(target, return_inverse=True)
            tgt = codes.astype(np.intp)
        else:
            tgt = target
        pred_b, pred_c = _paired(xb, xc, tgt, cat, cv, seed)
        ones = np.ones((1, tgt.size))
        sb = float(_weighted_scores(ones, pred_b, tgt, cat)[0])
        sc = float(_weighted_scores(ones, pred_c, tgt, cat)[0])
        if abs(sb - rb["score"]) > 1e-9 or abs(sc - rc["score"]) > 1e-9:
            raise RuntimeError("compare.probes: the paired refit no longer reproduces "
                               "probe_score's folds; keep _paired in step with it")
        rng = np.random.default_rng(stream_seed(random_state,
                                                f"compare.probe.{col}.bootstrap"))
        W = _boot_counts(tgt.size, n_bootstrap, rng)
        boot = (_weighted_scores(W, pred_c, tgt, cat)
                - _weighted_scores(W, pred_b, tgt, cat))
        boot = boot[np.isfinite(boot)]
        delta = sc - sb
        if boot.size:
            a = 1.0 - confidence
            ci_delta = (float(np.quantile(boot, a / 2)), float(np.quantile(boot, 1 - a / 2)))
            p = _paired_p(boot, delta)
        else:
            ci_delta, p = _NAN2, math.nan
        row_ids = ids_arr[rows]
        if cat:
            ok_b, ok_c = pred_b == tgt, pred_c == tgt
            lost, gained = ok_b & ~ok_c, ~ok_b & ok_c
        else:
            grew = np.abs(tgt - pred_c) - np.abs(tgt - pred_b)
            cut = NUMERIC_EVIDENCE_SD * float(np.std(tgt))
            lost, gained = grew > cut, grew < -cut
        out.append(ProbeChange(
            column=col, kind=kind, protected=is_prot, metric=rb["metric"],  # type: ignore
            chance=float(rb["chance"]), score_base=sb, ci_base=tuple(rb["ci"]),
            score_cand=sc, ci_cand=tuple(rc["ci"]), delta=float(delta), ci_delta=ci_delta,
            p_value=p, n=int(tgt.size), p_base=float(rb["p_value"]),
            p_cand=float(rc["p_value"]), lost_ids=tuple(row_ids[lost].tolist()),
            gained_ids=tuple(row_ids[gained].tolist()), note=note))
    return out


def probe_metrics(changes: Sequence[ProbeChange]) -> dict[str, float]:
    """A flat map for gates: ``compare.probe.<slug>.score_base``, ``.score_cand`` and
    ``.delta`` per column (higher is better for the scores; NaN where not probed), e.g. a
    gate ``compare.probe.sex.delta <= 0.05``."""
    out: dict[str, float] = {}
    for c in changes:
        key = f"compare.probe.{slug(c.column)}"
        out[f"{key}.score_base"] = c.score_base
        out[f"{key}.score_cand"] = c.score_cand
        out[f"{key}.delta"] = c.delta
    return out


def _num(x: float, digits: int = 3) -> str:
    return "–" if not math.isfinite(x) else f"{x:.{digits}f}"


def probe_findings(changes: Sequence[ProbeChange], *, alpha: float = 0.05,
                   min_delta: float = 0.05) -> list[Finding]:
    """Findings from :func:`probe_changes`, worst first.

    A change counts when its Benjamini–Hochberg-adjusted p-value (over every probed
    column) is below ``alpha``, its interval excludes 0 and ``|delta| >= min_delta``:

    * a drop of a column the baseline encoded (its interval above chance): a ``warning``
      "stopped encoding" (the candidate's interval reaches chance) or "encodes less"; for
      a protected column the drop is welcome (``info``, "leaks less");
    * a rise to a score above chance (the candidate's interval above chance) of a protected
      column: ``critical`` "started leaking" when the baseline did not leak (its interval
      reaches chance), else ``warning`` "leaks more"; of another column, ``info``.

    Unchanged columns, and changes that miss any condition, give no finding. Each finding:
    ``check="compare"``, id ``compare-probe-<slug>``, metric
    ``compare.probe.<slug>.delta``, ``value`` the delta with its paired interval,
    ``p_value`` the adjusted one, evidence the rows whose prediction went wrong (drop) or
    right (rise).
    """
    changes = list(changes)
    if not changes:
        return []
    _, q = benjamini_hochberg([c.p_value for c in changes], alpha=alpha)
    out: list[tuple[Finding, float]] = []
    for c, qv in zip(changes, q):
        if not (c.probed and math.isfinite(qv)):
            continue
        lo, hi = c.ci_delta
        if not (qv < alpha and abs(c.delta) >= min_delta and (lo > 0 or hi < 0)):
            continue
        base_reads = c.ci_base[0] > c.chance
        cand_reads = c.ci_cand[0] > c.chance
        if c.delta < 0:
            if not base_reads:
                continue
            if c.protected:
                sev, what = "info", "leaks less"
            else:
                sev, what = "warning", ("encodes less" if cand_reads else "stopped encoding")
            evidence = c.lost_ids
            threshold = -min_delta
        else:
            if not cand_reads:
                continue
            if c.protected:
                sev, what = (("warning", "leaks more") if base_reads
                             else ("critical", "started leaking"))
            else:
                sev, what = "info", "encodes more"
            evidence = c.gained_ids
            threshold = min_delta
        label = "balanced accuracy" if c.metric == "balanced_accuracy" else "R²"
        who = "Protected attribute" if c.protected else "Attribute"
        rows = "rows the probe now gets wrong" if c.delta < 0 else "rows it now gets right"
        summary = (f"A cross-validated linear probe ({c.n:,} matched rows, the same folds in "
                   f"both spaces) reads {c.column} with {label} {_num(c.score_base)} "
                   f"[{_num(c.ci_base[0])}, {_num(c.ci_base[1])}] in the baseline and "
                   f"{_num(c.score_cand)} [{_num(c.ci_cand[0])}, {_num(c.ci_cand[1])}] in "
                   f"the candidate (chance {_num(c.chance)}): a change of {c.delta:+.3f} "
                   f"(paired bootstrap interval [{lo:+.3f}, {hi:+.3f}]), "
                   f"{format_p(float(qv), name='BH-adjusted p')} over {len(changes)} "
                   f"columns. Evidence: the {len(evidence):,} {rows}.")
        key = slug(c.column)
        out.append((Finding(
            id=f"compare-probe-{key}", check="compare", severity=sev,  # type: ignore
            title=f"{who} {c.column} {what} ({label} {_num(c.score_base, 2)} → "
                  f"{_num(c.score_cand, 2)})",
            summary=summary, metric=f"compare.probe.{key}.delta", value=float(c.delta),
            threshold=threshold, p_value=float(qv), ci=(float(lo), float(hi)),
            subjects={"attributes": [c.column], "protected": c.protected,
                      "kind": "probe"},
            evidence_ids=tuple(evidence)), float(qv)))
    out.sort(key=lambda t: (SEVERITY_RANK[t[0].severity], t[1], -abs(t[0].value or 0.0)))
    return [f for f, _ in out]
