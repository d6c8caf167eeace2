"""summary.md: verdict, gates and top findings, short enough to paste into a pull request,
and a bias section a reviewer can paste into a model card."""
from __future__ import annotations

import math
from typing import Any

from ..findings import AuditResult, CheckResult


def _md(text: object) -> str:
    """Neutralise markdown/HTML in user strings (table pipes, tags, backticks)."""
    s = str(text)
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("`", "\\`")):
        s = s.replace(a, b)
    return s.replace("\n", " ")


def _fmt(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def render_summary(result: AuditResult, *, max_findings: int = 10) -> str:
    r = result.run
    verdict = {"pass": "✅ PASS", "fail": "❌ FAIL", "error": "⚠️ ERROR"}[result.verdict]
    lines = [f"# latent-audit: {_md(r['name'])} — {verdict}", "",
             f"Verdict: {_md(result.verdict_reason)}.", "",
             f"{r['n']:,} points × {r['dim']} dimensions, seed {r['seed']}, "
             f"{result.timings.get('total', 0):.1f} s.", ""]
    flagged = [f for f in result.findings if f.severity != "info"]
    counts = {s: sum(f.severity == s for f in flagged) for s in ("critical", "warning")}
    lines.append(f"**{counts['critical']} critical, {counts['warning']} warning** findings.")
    lines.append("")
    if result.gates:
        lines += ["## Gates", "", "| gate | value | result |", "|---|---|---|"]
        for g in result.gates:
            res = {"pass": "pass", "fail": "**FAIL**", "error": "**ERROR**"}[g.status]
            lines.append(f"| `{_md(g.metric)} {g.op} {g.threshold:g}` | {_fmt(g.value)} | "
                         f"{res} |")
        lines.append("")
    errored = result.errored
    if errored:
        lines += ["## Checks that errored", ""]
        lines += [f"- `{c.check}`: {_md(c.error)}" for c in errored]
        lines.append("")
    if flagged:
        lines += ["## Top findings", "", "| severity | check | finding | value | p / CI |",
                  "|---|---|---|---|---|"]
        for f in flagged[:max_findings]:
            stat = (f"p={f.p_value:.2g}" if f.p_value is not None
                    else f"[{f.ci[0]:.3g}, {f.ci[1]:.3g}]" if f.ci else "–")
            lines.append(f"| {f.severity} | {f.check} | {_md(f.title)} | {_fmt(f.value)} | "
                         f"{stat} |")
        if len(flagged) > max_findings:
            lines.append(f"\n…and {len(flagged) - max_findings} more in findings.json.")
        lines.append("")
    bias = next((c for c in result.checks if c.check == "bias" and c.status == "ok"), None)
    if bias is not None:
        lines += _bias_section(bias, result.metrics)
    key = ["clusters.count", "clusters.noise_fraction", "outliers.count",
           "duplicates.within_fraction", "duplicates.cross_fraction", "geometry.intrinsic_dim"]
    m = result.metrics
    shown = [(k, m[k]) for k in key if k in m]
    if shown:
        lines += ["## Key metrics", ""] + [f"- `{k}` = {_fmt(v)}" for k, v in shown] + [""]
    lines.append("Full report: `report.html`; machine-readable: `findings.json`.")
    return "\n".join(lines) + "\n"


_DISPARITY = (("low_density", "low density"), ("noise", "HDBSCAN noise"),
              ("outlier", "outliers"),
              ("uncovered", "uncovered reference"))


def _p(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.2g}"


def _bias_section(check: CheckResult, m: dict[str, float]) -> list[str]:
    """Per protected column and per WEAT test: the numbers, their p-values, the verdict."""
    t = check.tables
    flagged = {f.id: f for f in check.findings if f.severity != "info"}
    lines = ["## Bias", "",
             f"{t.get('tests', 0)} tests, Benjamini–Hochberg at α = {t.get('alpha', 0.05):g} "
             f"over the whole check; groups under {t.get('min_group_size')} members are "
             "listed but not tested. Effect sizes with raw p-values; ⚠ marks a flagged "
             "finding.", ""]
    cols = t.get("columns") or {}
    if cols:
        lines += ["| protected column | groups (tested / untested) | leakage AUC (p) | "
                  "once attributes are removed | Cramér's V over clusters (p) | "
                  "worst disparity ratio |", "|---|---|---|---|---|---|"]
        for col, tab in cols.items():
            k = tab.get("key", col)
            mark = "⚠ " if any(f.subjects.get("attribute") == col for f in flagged.values()) \
                else ""
            auc, adj = m.get(f"bias.{k}.leakage_auc"), m.get(f"bias.{k}.leakage_auc_adjusted")
            leak = f"{_fmt(auc)} ({_p(m.get(f'bias.{k}.leakage_p'))})" if auc is not None \
                else "–"
            leak_adj = (f"{_fmt(adj)} ({_p(m.get(f'bias.{k}.leakage_p_adjusted'))})"
                        if adj is not None else "–")
            cv = m.get(f"bias.{k}.cramers_v")
            rep = f"{_fmt(cv)} ({_p(m.get(f'bias.{k}.representation_p'))})" if cv is not None \
                else "–"
            ratios = [(m[f"bias.{k}.{flag}_ratio"], name) for flag, name in _DISPARITY
                      if isinstance(m.get(f"bias.{k}.{flag}_ratio"), float)
                      and math.isfinite(m[f"bias.{k}.{flag}_ratio"])]
            worst = min(ratios) if ratios else None
            disp = f"{worst[0]:.2f} ({worst[1]})" if worst else "–"
            groups = tab.get("groups") or []
            n_t = sum(g["tested"] for g in groups)
            lines.append(f"| {mark}{_md(col)} | {n_t} / {len(groups) - n_t} | {leak} | "
                         f"{leak_adj} | {rep} | {disp} |")
        lines.append("")
        untested = [(col, u) for col, tab in cols.items() for u in tab.get("untested", [])]
        if untested:
            lines.append("Untested (too small): " + ", ".join(
                f"{_md(col)}={_md(u['group'])} (n={u['n']})" for col, u in untested) + ".")
            lines.append("")
    weat_rows = [w for w in (t.get("weat") or []) if "effect_size" in w]
    if weat_rows:
        lines += ["### Association tests (WEAT)", "",
                  "| test | X vs Y | A vs B | effect size | p | result |",
                  "|---|---|---|---|---|---|"]
        for w in weat_rows:
            f = flagged.get(f"bias-weat-{w['name']}")
            s = w["sets"]
            res = f"⚠ {f.severity}" if f else "not flagged"
            lines.append(f"| {_md(w['name'])} | {_md(s['X'])} vs {_md(s['Y'])} | "
                         f"{_md(s['A'])} vs {_md(s['B'])} | {_fmt(w['effect_size'])} | "
                         f"{_p(w['p'])} ({w['alternative']}) | {res} |")
        lines.append("")
    if "slices" in t and t["slices"].get("rows"):
        n_bad = sum(1 for f in flagged.values() if f.subjects.get("kind") == "outcome")
        lines += [f"Outcome `{_md(t['slices']['outcome'])}`: {n_bad} slice(s) flagged as "
                  "worse than the rest of the data (see report.html).", ""]
    return lines
