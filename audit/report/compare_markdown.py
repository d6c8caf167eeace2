"""summary.md of ``latent-audit compare``: verdict, gates, headline similarity, the five
largest changes and the findings diff, short enough to paste into a pull request.

Works on the comparison document (schema ``latent-audit/comparison/v1``) as plain data.
"""
from __future__ import annotations

import math
import re
from typing import Any

from ..findings import SEVERITY_RANK
from .markdown import _md  # private helper of the audit summary, shared on purpose

__all__ = ["HEADLINE", "largest_changes", "metric_changes", "render_comparison_summary"]

#: the similarity metrics a reader sees first, with what they mean
HEADLINE: tuple[tuple[str, str], ...] = (
    ("compare.cka_linear", "linear CKA: 1 = the same geometry up to rotation and scale"),
    ("compare.cka_linear_debiased", "debiased linear CKA (less optimistic on small n)"),
    ("compare.knn_overlap", ("mean Jaccard of each point's k nearest neighbours in the "
                             "two spaces: 1 = every neighbourhood kept")),
    ("compare.procrustes_residual", ("residual after the best rotation and scale: 0 = the "
                                     "candidate is a rotated, rescaled baseline")),
    ("compare.linear_map_residual", ("1 - R² of a linear map from baseline to candidate, "
                                     "fitted on half the points, scored on the other half")),
)

_MD_INLINE = re.compile(r"([\\*_\[\]#~!])")


def _txt(text: object) -> str:
    """A user string for running text (not a code span): ``_md`` plus the characters that
    make emphasis, links or headings (``*``, ``_``, ``[``, ``]``, ``#``, ``~``, ``!``)."""
    return _MD_INLINE.sub(r"\\\1", _md(text))


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        v = float(v)
        if not math.isfinite(v):
            return "–"
        if v == int(v) and abs(v) < 1e6:
            return f"{int(v)}"
        return f"{v:.3g}"
    return _md(v)


def _signed(v: float) -> str:
    return "–" if v is None or not math.isfinite(v) else (f"{v:+.3g}")


def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def metric_changes(doc: dict) -> list[dict[str, Any]]:
    """Every ``delta.<metric>`` of ``doc``, largest relative change first.

    Each row: ``metric`` (the audit metric, without ``delta.``), ``delta``, ``base`` (the
    baseline's value when the document carries it in ``base_metrics``, else None) and
    ``relative`` (``|delta| / |base|``, or ``|delta|`` when the baseline value is unknown
    or zero). Rows with a relative change come before those without (ties broken by
    ``|delta|``, then name).
    """
    metrics = doc.get("metrics") or {}
    base = doc.get("base_metrics") or {}
    rows = []
    for name, v in metrics.items():
        if not str(name).startswith("delta."):
            continue
        d = _finite(v)
        if d is None:
            continue
        metric = str(name)[len("delta."):]
        b = _finite(base.get(metric))
        rel = abs(d) / abs(b) if b not in (None, 0.0) else None
        rows.append({"metric": metric, "delta": d, "base": b, "relative": rel})
    rows.sort(key=lambda r: (r["relative"] is None,
                             -(r["relative"] if r["relative"] is not None else abs(r["delta"])),
                             -abs(r["delta"]), r["metric"]))
    return rows


def flagged_findings(doc: dict) -> list[dict]:
    """Findings above ``info``, most severe first (stable within a severity)."""
    fs = [f for f in doc.get("findings") or [] if f.get("severity") != "info"]
    return sorted(fs, key=lambda f: SEVERITY_RANK.get(f.get("severity"), 3))


def largest_changes(doc: dict, k: int = 5) -> list[dict[str, Any]]:
    """The ``k`` largest changes, worst first: flagged compare findings (critical, then
    warning), then metric deltas by relative size. Each: ``kind`` ("finding" or "metric")
    and the finding or the row of :func:`metric_changes`."""
    out: list[dict[str, Any]] = [{"kind": "finding", **f} for f in flagged_findings(doc)]
    out += [{"kind": "metric", **r} for r in metric_changes(doc)]
    return out[:k]


def _stat(f: dict) -> str:
    p, ci = f.get("p_value"), f.get("ci")
    if _finite(p) is not None:
        return f"p={p:.2g}"
    if ci and all(_finite(c) is not None for c in ci):
        return f"[{ci[0]:.3g}, {ci[1]:.3g}]"
    return "–"


def _side(s: dict | None) -> str:
    s = s or {}
    return (f"{_txt(s.get('name') or s.get('path') or '?')} ({_num(s.get('n'))} × "
            f"{_num(s.get('dim'))}, {_txt(s.get('kind') or '?')})")


def render_comparison_summary(doc: dict) -> str:
    """The pull-request summary of a comparison document."""
    run = doc.get("run") or {}
    base, cand = run.get("baseline") or {}, run.get("candidate") or {}
    verdict = str(doc.get("verdict", "error"))
    badge = {"pass": "✅ PASS", "fail": "❌ FAIL"}.get(verdict, "⚠️ ERROR")
    title = f"{_txt(base.get('name') or 'baseline')} → {_txt(cand.get('name') or 'candidate')}"
    lines = [f"# latent-audit compare: {title} — {badge}", ""]
    reason = doc.get("verdict_reason")
    if reason:
        lines += [f"Verdict: {_txt(reason)}.", ""]
    matched = run.get("matched")
    share = ""
    if isinstance(matched, int) and base.get("n"):
        share = f" ({matched / base['n']:.1%} of the baseline"
        if cand.get("n"):
            share += f", {matched / cand['n']:.1%} of the candidate"
        share += ")"
    lines += [f"Baseline {_side(base)}; candidate {_side(cand)}.",
              (f"{_num(matched)} points matched by id{share}; k = {_num(run.get('k'))}, "
               f"seed {_num(run.get('seed'))}."), ""]
    flagged = flagged_findings(doc)
    counts = {s: sum(f.get("severity") == s for f in flagged) for s in ("critical", "warning")}
    lines += [(f"**{counts['critical']} critical, {counts['warning']} warning** compare "
               "findings."), ""]
    gates = doc.get("gates") or []
    if gates:
        lines += ["## Gates", "", "| gate | value | result |", "|---|---|---|"]
        for g in gates:
            status = str(g.get("status") or ("pass" if g.get("passed") else "fail"))
            res = {"pass": "pass", "fail": "**FAIL**"}.get(status, "**ERROR**")
            extra = f": {_txt(g['details'])}" if status == "error" and g.get("details") else ""
            lines.append(f"| `{_md(g.get('metric'))} {_md(g.get('op'))} "
                         f"{_num(g.get('threshold'))}` | {_num(g.get('value'))} | "
                         f"{res}{extra} |")
        lines.append("")
    metrics = doc.get("metrics") or {}
    shown = [(k, m) for k, m in HEADLINE if k in metrics]
    if shown:
        lines += ["## Similarity", "", "| metric | value | meaning |", "|---|---|---|"]
        lines += [f"| `{k}` | {_num(metrics[k])} | {m} |" for k, m in shown]
        lines.append("")
    top = largest_changes(doc)
    if top:
        lines += ["## Largest changes", "", "| # | change | value | p / CI or relative |",
                  "|---|---|---|---|"]
        for i, c in enumerate(top, 1):
            if c["kind"] == "finding":
                lines.append(f"| {i} | {_md(c.get('severity'))}: {_txt(c.get('title'))} | "
                             f"{_num(c.get('value'))} | {_stat(c)} |")
            else:
                rel = (f"{c['delta'] / abs(c['base']):+.1%} of {_num(c['base'])}"
                       if c["relative"] is not None else "–")
                lines.append(f"| {i} | `delta.{_md(c['metric'])}` | {_signed(c['delta'])} | "
                             f"{rel} |")
        more = len(flagged) + len(metric_changes(doc)) - len(top)
        if more > 0:
            lines.append(f"\n…and {more} more in comparison.json.")
        lines.append("")
    diff = doc.get("findings_diff")
    if diff:
        s = diff.get("summary") or {}
        n_app = s.get("appeared", len(diff.get("appeared") or []))
        n_res = s.get("resolved", len(diff.get("resolved") or []))
        n_per = s.get("persisted", len(diff.get("persisted") or []))

        def sev(d: dict | None) -> str:
            d = {k: v for k, v in (d or {}).items() if v}
            return (" (" + ", ".join(f"{v} {_md(k)}" for k, v in d.items()) + ")") if d else ""

        more = s.get("persisted_more_severe", 0)
        less = s.get("persisted_less_severe", 0)
        lines += ["## Findings diff (audit findings)", "",
                  f"- appeared: {n_app}{sev(s.get('appeared_by_severity'))}",
                  f"- resolved: {n_res}{sev(s.get('resolved_by_severity'))}",
                  f"- persisted: {n_per} ({more} more severe, {less} less severe)", ""]
    lines.append("Full report: `report.html`; machine-readable: `comparison.json`.")
    return "\n".join(lines) + "\n"
