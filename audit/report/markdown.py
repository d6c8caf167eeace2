"""summary.md: verdict, gates and top findings, short enough to paste into a pull request."""
from __future__ import annotations

from ..findings import AuditResult


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
    key = ["clusters.count", "clusters.noise_fraction", "outliers.count",
           "duplicates.within_fraction", "duplicates.cross_fraction", "geometry.intrinsic_dim"]
    m = result.metrics
    shown = [(k, m[k]) for k in key if k in m]
    if shown:
        lines += ["## Key metrics", ""] + [f"- `{k}` = {_fmt(v)}" for k, v in shown] + [""]
    lines.append("Full report: `report.html`; machine-readable: `findings.json`.")
    return "\n".join(lines) + "\n"
