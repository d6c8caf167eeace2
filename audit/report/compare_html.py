"""report.html of ``latent-audit compare``: one self-contained, offline file (plotly.js
embedded once), with the same content-security policy and escaping discipline as the audit
report: Jinja2 autoescapes every user string, the data travels as ``safe_json`` in a
``<script type="application/json">`` element, and ``compare.js`` sets text with
``textContent`` and escapes every string it hands to plotly."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, select_autoescape

from ..findings import SEVERITY_RANK
from ..io import write_text_atomic
from .compare_markdown import HEADLINE, flagged_findings, metric_changes

# private helpers of the audit report, shared on purpose (one plotly bundle, one escaping)
from .html import _asset, _fmt, _plotly_js, _pval, pack_array, safe_json

__all__ = ["comparison_figures", "render_comparison_html"]

#: the figures the page draws (also used by tests to count them)
FIGURES = ("fig-base", "fig-cand", "fig-clusters")


def comparison_figures(doc: dict) -> list[str]:
    """Ids of the plot ``div``s of the page: both maps, and the cluster heatmap when the
    document has a cluster mapping."""
    return [f for f in FIGURES if f != "fig-clusters" or _has_clusters(doc)]


def _has_clusters(doc: dict) -> bool:
    c = doc.get("clusters") or {}
    return bool(c.get("table"))


def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(float(v)) else None


def _points_payload(points: dict | None, doc: dict) -> dict[str, Any]:
    """Ids as JSON text, the score and both maps' coordinates packed (``pack_array``), and
    the flagged findings' evidence restricted to the drawn ids."""
    if not points:
        return {"ids": [], "n_total": 0, "sampled": False, "evidence": []}
    ids = [str(i) for i in points["ids"]]
    n = len(ids)
    score = np.asarray(points["score"], dtype=np.float32).reshape(-1)
    bxy = np.asarray(points["base_xy"], dtype=np.float32).reshape(n, 2)
    cxy = np.asarray(points["cand_xy"], dtype=np.float32).reshape(n, 2)
    if score.size != n:
        raise ValueError(f"points: {score.size} scores for {n} ids")
    drawn = set(ids)
    evidence = [{"id": str(f.get("id")),
                 "ids": [e for e in map(str, f.get("evidence_ids") or []) if e in drawn]}
                for f in doc.get("findings") or []]
    return {"ids": ids, "score": pack_array(score), "base_xy": pack_array(bxy),
            "cand_xy": pack_array(cxy), "sampled": bool(points.get("sampled")),
            "n_total": int(points.get("n_total", n)), "evidence": evidence}


def _cluster_payload(doc: dict) -> dict[str, Any] | None:
    c = doc.get("clusters") or {}
    if not c.get("table"):
        return None
    return {"base_labels": [int(v) for v in c.get("base_labels", [])],
            "cand_labels": [int(v) for v in c.get("cand_labels", [])],
            "table": [[int(v) for v in row] for row in c["table"]],
            "kinds": {str(k): str(v) for k, v in (c.get("kinds") or {}).items()},
            "appeared": [int(v) for v in c.get("appeared", [])]}


def _probe_rows(doc: dict) -> list[dict[str, Any]]:
    """Probe changes, flagged rows (a compare finding names the column) first."""
    flagged_cols = {}
    for f in flagged_findings(doc):
        s = f.get("subjects") or {}
        if s.get("kind") == "probe":
            for col in s.get("attributes") or []:
                flagged_cols.setdefault(str(col), f)
    rows = []
    for p in doc.get("probes") or []:
        f = flagged_cols.get(str(p.get("column")))
        rows.append({**p, "flag": f})
    rows.sort(key=lambda r: (r["flag"] is None,
                             SEVERITY_RANK.get((r["flag"] or {}).get("severity"), 3),
                             -abs(_finite(r.get("delta")) or 0.0)))
    return rows


def _num(v: Any) -> str:
    """``_fmt`` of the audit report, with "–" for NaN and infinities."""
    if isinstance(v, float) and not math.isfinite(v):
        return "–"
    return _fmt(v)


def _interval(ci: Any) -> str:
    if not ci or len(ci) != 2 or any(_finite(c) is None for c in ci):
        return "–"
    return f"[{_num(float(ci[0]))}, {_num(float(ci[1]))}]"


def render_comparison_html(doc: dict, points: dict, path) -> Path:
    """Write the comparison report for ``doc`` (a ``latent-audit/comparison/v1`` document)
    and ``points`` (``ids``, ``score``, ``base_xy``, ``cand_xy``, ``sampled``,
    ``n_total``) to ``path`` (atomically); returns the path."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = _num
    env.filters["pval"] = _pval
    env.filters["interval"] = _interval
    template = env.from_string(_asset("compare.html.j2"))
    run = doc.get("run") or {}
    metrics = doc.get("metrics") or {}
    base, cand = run.get("baseline") or {}, run.get("candidate") or {}
    matched = run.get("matched")
    shares = {side: (matched / s["n"] if isinstance(matched, int) and s.get("n") else None)
              for side, s in (("base", base), ("cand", cand))}
    findings = doc.get("findings") or []
    flagged = flagged_findings(doc)
    ordered = flagged + [f for f in findings if f.get("severity") == "info"]
    diff = doc.get("findings_diff")
    payload = {"points": _points_payload(points, doc), "clusters": _cluster_payload(doc),
               "names": {"base": str(base.get("name") or "baseline"),
                         "cand": str(cand.get("name") or "candidate")}}
    html = template.render(
        doc=doc, run=run, base=base, cand=cand, matched=matched, shares=shares,
        verdict=str(doc.get("verdict", "error")), reason=doc.get("verdict_reason"),
        gates=doc.get("gates") or [], metrics=metrics,
        headline=[(k, metrics[k], m) for k, m in HEADLINE if k in metrics],
        changes=metric_changes(doc), findings=ordered, flagged=flagged,
        probes=_probe_rows(doc), clusters=payload["clusters"], diff=diff,
        figures=comparison_figures(doc), points=payload["points"],
        css=_asset("report.css") + "\n" + _asset("compare.css"),
        js=_asset("compare.js"), plotly_js=_plotly_js(), payload=safe_json(payload),
    )
    write_text_atomic(Path(path), html)
    return Path(path)
