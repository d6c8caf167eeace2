"""The comparison report (report.html of ``latent-audit compare``) and its pull-request
summary, on a hand-built comparison document with hostile strings in ids, column names
and titles."""
from __future__ import annotations

import numpy as np
import pytest

from audit.report.compare_html import comparison_figures, render_comparison_html
from audit.report.compare_markdown import (
    largest_changes,
    metric_changes,
    render_comparison_summary,
)
from audit.report.html import _plotly_js

XSS = "<script>alert(1)</script>"
XSS2 = '"><img src=x onerror=alert(2)>'
PROTO = "__proto__"


def _finding(fid, severity, title, metric, value, evidence, **kw):
    return {"id": fid, "check": "compare", "severity": severity, "title": title,
            "summary": kw.pop("summary", f"summary of {title}"), "metric": metric,
            "value": value, "threshold": kw.pop("threshold", None),
            "p_value": kw.pop("p_value", None), "ci": kw.pop("ci", None),
            "subjects": kw.pop("subjects", {}), "evidence_ids": list(evidence)}


def make_doc(n=60):
    ids = [XSS, PROTO, XSS2, "constructor"] + [f"p{i}" for i in range(4, n)]
    findings = [
        _finding("compare-neighbourhood-1", "warning", f"Region {XSS} lost its neighbours",
                 "compare.neighbourhood.region", 0.31, ids[:10], p_value=0.001),
        _finding("compare-cluster-vanished-1", "critical", "Baseline cluster 2 vanished into noise",
                 "compare.clusters.vanished", 0.9, ids[20:40], ci=[0.8, 0.95]),
        _finding("compare-probe-proto", "critical",
                 f"Protected attribute {PROTO} started leaking", "compare.probe.proto.delta",
                 0.3, ids[:5], p_value=1e-6, ci=[0.2, 0.4],
                 subjects={"attributes": [PROTO], "protected": True, "kind": "probe"}),
        _finding("compare-info-1", "info", 'info "quoted" finding', "compare.x", 0.0, []),
    ]
    metrics = {"compare.matched": float(n), "compare.cka_linear": 0.91,
               "compare.cka_linear_debiased": 0.88, "compare.knn_overlap": 0.62,
               "compare.procrustes_residual": 0.12, "compare.linear_map_residual": 0.2,
               "compare.probe.proto.delta": 0.3,
               # base values: coverage 0.8, clusters 4, outliers 10, dim 6, dup 0.05
               "delta.coverage.coverage": -0.4,        # -50%
               "delta.clusters.count": 1.0,            # +25%
               "delta.outliers.count": 1.0,            # +10%
               "delta.geometry.intrinsic_dim": -0.3,   # -5%
               "delta.duplicates.within_fraction": 0.04,  # +80%
               f"delta.{PROTO}.{XSS}": 0.001}          # 0.1% of 1.0
    base_metrics = {"coverage.coverage": 0.8, "clusters.count": 4.0, "outliers.count": 10.0,
                    "geometry.intrinsic_dim": 6.0, "duplicates.within_fraction": 0.05,
                    f"{PROTO}.{XSS}": 1.0}
    base_f = _finding("coverage-1", "warning", f"Uncovered {XSS2}", "coverage.region", 0.2,
                      ids[:3])
    diff = {"appeared": [_finding("holes-1", "critical", f"Hole near {XSS}", "holes.x", 1.0,
                                  ids[5:9])],
            "resolved": [base_f],
            "persisted": [{"base": {**base_f, "severity": "warning", "value": 0.2},
                           "cand": {**base_f, "severity": "critical", "value": 0.3},
                           "value_change": 0.1, "evidence_jaccard": 0.5,
                           "severity_change": 1}],
            "summary": {"appeared": 1, "resolved": 1, "persisted": 1,
                        "appeared_by_severity": {"critical": 1, "warning": 0, "info": 0},
                        "resolved_by_severity": {"critical": 0, "warning": 1, "info": 0},
                        "persisted_more_severe": 1, "persisted_less_severe": 0}}
    clusters = {"base_labels": [0, 1, 2, -1], "cand_labels": [0, 1, -1],
                "table": [[18, 2, 0], [1, 17, 2], [0, 1, 15], [0, 3, 1]],
                "kinds": {"0": "kept", "1": "kept", "2": "vanished"},
                "targets": {"0": [0], "1": [1], "2": []}, "appeared": []}
    probes = [
        {"column": "colour", "kind": "categorical", "protected": False,
         "metric": "balanced_accuracy", "chance": 0.25, "score_base": 0.9,
         "ci_base": [0.85, 0.95], "score_cand": 0.88, "ci_cand": [0.82, 0.93],
         "delta": -0.02, "ci_delta": [-0.05, 0.01], "p_value": 0.3, "n": n, "note": None},
        {"column": PROTO, "kind": "categorical", "protected": True,
         "metric": "balanced_accuracy", "chance": 0.5, "score_base": 0.5,
         "ci_base": [0.45, 0.56], "score_cand": 0.8, "ci_cand": [0.74, 0.86],
         "delta": 0.3, "ci_delta": [0.2, 0.4], "p_value": 1e-6, "n": n, "note": None},
        {"column": XSS2, "kind": "numeric", "protected": False, "metric": "r2",
         "chance": 0.0, "score_base": float("nan"), "ci_base": [float("nan")] * 2,
         "score_cand": float("nan"), "ci_cand": [float("nan")] * 2,
         "delta": float("nan"), "ci_delta": [float("nan")] * 2, "p_value": float("nan"),
         "n": 3, "note": f"too few distinct values to probe {XSS}"},
    ]
    doc = {"schema": "latent-audit/comparison/v1",
           "run": {"created": "2026-12-01T00:00:00Z", "seed": 0, "k": 15,
                   "versions": {"latent-audit": "0.0"},
                   "baseline": {"path": "runs/old", "kind": "run", "n": n + 20, "dim": 64,
                                "name": f"old {XSS}"},
                   "candidate": {"path": "runs/new", "kind": "store", "n": n, "dim": 128,
                                 "name": f"new {PROTO}"},
                   "matched": n},
           "metrics": metrics, "base_metrics": base_metrics, "findings": findings,
           "gates": [{"metric": "compare.cka_linear", "op": ">=", "threshold": 0.95,
                      "value": 0.91, "passed": False, "status": "fail", "details": None}],
           "verdict": "fail", "verdict_reason": "gate compare.cka_linear >= 0.95 failed",
           "clusters": clusters, "probes": probes, "findings_diff": diff}
    rng = np.random.default_rng(0)
    bxy = rng.standard_normal((n, 2))
    points = {"ids": ids, "score": rng.uniform(0, 1, n), "base_xy": bxy,
              "cand_xy": bxy @ np.array([[0.0, -1.0], [1.0, 0.0]]) * 2,
              "sampled": False, "n_total": n}
    return doc, points


# ---------------------------------------------------------------------------- markdown

def test_metric_changes_rank_by_relative_change():
    doc, _ = make_doc()
    names = [r["metric"] for r in metric_changes(doc)]
    assert names[:5] == ["duplicates.within_fraction", "coverage.coverage", "clusters.count",
                         "outliers.count", "geometry.intrinsic_dim"]
    # without the baseline's values, the absolute change decides
    doc.pop("base_metrics")
    names = [r["metric"] for r in metric_changes(doc)]
    assert names[:3] == ["clusters.count", "outliers.count", "coverage.coverage"]


def test_summary_has_verdict_gates_and_five_changes_in_order():
    doc, _ = make_doc()
    md = render_comparison_summary(doc)
    assert md.startswith("# latent-audit compare: ")
    assert "❌ FAIL" in md.splitlines()[0]
    assert "Verdict: gate compare.cka\\_linear &gt;= 0.95 failed." in md
    assert "| `compare.cka_linear &gt;= 0.95` | 0.91 | **FAIL** |" in md
    assert "| `compare.knn_overlap` | 0.62 |" in md
    # the five largest changes: critical findings, the warning, then the largest delta
    top = largest_changes(doc)
    assert [c.get("id") or c.get("metric") for c in top] == [
        "compare-cluster-vanished-1", "compare-probe-proto", "compare-neighbourhood-1",
        "duplicates.within_fraction", "coverage.coverage"]
    section = md.split("## Largest changes")[1].split("##")[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert len(rows) == 5
    assert [r.split("|")[1].strip() for r in rows] == ["1", "2", "3", "4", "5"]
    assert "Baseline cluster 2 vanished into noise" in rows[0]
    assert "started leaking" in rows[1] and "p=1e-06" in rows[1]
    assert "Region" in rows[2]
    assert "`delta.duplicates.within_fraction`" in rows[3] and "+80.0% of 0.05" in rows[3]
    assert "`delta.coverage.coverage`" in rows[4] and "-50.0% of 0.8" in rows[4]
    assert "…and 4 more in comparison.json." in section
    assert "- appeared: 1 (1 critical)" in md and "- resolved: 1 (1 warning)" in md
    assert "- persisted: 1 (1 more severe, 0 less severe)" in md


def test_summary_escapes_user_strings():
    doc, _ = make_doc()
    md = render_comparison_summary(doc)
    assert "<script>" not in md and "<img" not in md
    assert "&lt;script&gt;" in md                      # the name and the finding title
    assert "\\_\\_proto\\_\\_" in md                   # not bold "proto"
    assert md.count("\n") < 60                         # short enough for a pull request


def test_summary_of_a_minimal_doc():
    md = render_comparison_summary({"verdict": "pass", "run": {}, "metrics": {}})
    assert "✅ PASS" in md and "Largest changes" not in md


# ---------------------------------------------------------------------------- html

def test_html_escapes_and_contains_the_content(tmp_path):
    doc, points = make_doc()
    out = render_comparison_html(doc, points, tmp_path / "report.html")
    html = out.read_text()
    assert XSS not in html and XSS2 not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html       # name, titles, note
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html  # probe column, quoted
    assert html.count("<script") == 3                             # data, plotly, compare.js
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert html.count(_plotly_js()) == 1                          # plotly embedded once
    assert "nan" not in html.split('<script type="application/json"')[0]  # "–" instead
    for anchor in ("id=\"fig-base\"", "id=\"fig-cand\"", "id=\"fig-clusters\"",
                   "id=\"probes\"", "id=\"deltas\"", "id=\"diff\""):
        assert anchor in html
    # flagged findings first, evidence counted; the flagged probe row marked
    assert html.index("vanished into noise") < html.index("info &#34;quoted&#34; finding")
    assert '<span class="ev-count">20</span>' in html
    assert 'class="flagged sev-row-critical"' in html
    # deltas worst first
    assert html.index("<code>duplicates.within_fraction</code>") < \
        html.index("<code>coverage.coverage</code>") < html.index("<code>clusters.count</code>")
    assert comparison_figures(doc) == ["fig-base", "fig-cand", "fig-clusters"]


def test_html_of_a_sparse_doc(tmp_path):
    """No clusters, probes or findings diff, a sampled map: those sections are left out
    and the sample is disclosed."""
    doc, points = make_doc(30)
    for k in ("clusters", "probes", "findings_diff", "base_metrics"):
        doc.pop(k)
    doc["findings"], doc["verdict"] = [], "pass"
    points = {**points, "sampled": True, "n_total": 1000}
    html = render_comparison_html(doc, points, tmp_path / "r.html").read_text()
    assert "Showing 30 of 1,000 matched points" in html
    assert 'id="fig-clusters"' not in html and 'id="probes"' not in html
    assert 'id="diff"' not in html and "No findings" in html
    assert comparison_figures(doc) == ["fig-base", "fig-cand"]
    md = render_comparison_summary(doc)
    assert "✅ PASS" in md and "Findings diff" not in md
    assert "| 1 | `delta.clusters.count` | +1 | – |" in md     # no baseline values


# ---------------------------------------------------------------------------- browser

@pytest.mark.browser
def test_comparison_report_in_chromium(browser, tmp_path):
    from conftest import console_errors, open_report
    doc, points = make_doc()
    path = render_comparison_html(doc, points, tmp_path / "report.html")
    page, ev = open_report(browser, path)
    assert console_errors(ev) == []
    assert [u for u in ev["requests"] if not u.startswith("file://")] == []
    n = len(points["ids"])
    for fig in ("fig-base", "fig-cand"):
        kinds = page.evaluate(f"document.getElementById('{fig}').data"
                              ".map(t => [t.type, t.x.length])")
        assert kinds[0] == ["scattergl", n]
    heat = page.evaluate("document.getElementById('fig-clusters').data[0]")
    assert heat["type"] == "heatmap" and len(heat["z"]) == 4 and heat["text"][2][2] == "15"
    assert "vanished" in heat["y"][2]
    # hover the hostile first point on the baseline map: both maps mark it, the panel
    # shows its id as text
    page.locator("#fig-base").scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    xy = page.evaluate("""() => {
        const div = document.getElementById('fig-base'), L = div._fullLayout;
        const r = div.getBoundingClientRect();
        const X = LatentCompare.x.base, Y = LatentCompare.y.base;
        return [r.left + L.xaxis._offset + L.xaxis.d2p(X[0]),
                r.top + L.yaxis._offset + L.yaxis.d2p(Y[0])];
    }""")
    page.mouse.move(xy[0] + 1, xy[1] + 1)
    page.mouse.move(xy[0], xy[1])
    page.wait_for_timeout(400)
    assert page.locator("#compare-hover .hover-id").inner_text(timeout=3000) == XSS
    marks = page.evaluate("LatentCompare.marks()")
    page.wait_for_timeout(500)
    assert page.evaluate("LatentCompare.marks()") == marks      # no hover ping-pong
    # plotly's tooltip on both maps: the hovered one, and the same id echoed on the other
    for fig in ("fig-base", "fig-cand"):
        tip = page.locator(f"#{fig} .hoverlayer").text_content()
        assert XSS in tip and "neighbourhood score" in tip, fig
    marked = page.evaluate("""() => ['fig-base', 'fig-cand'].map(f => {
        const t = document.getElementById(f).data[2]; return [t.x[0], t.y[0]]; })""")
    ex = page.evaluate("[[LatentCompare.x.base[0], LatentCompare.y.base[0]],"
                       " [LatentCompare.x.cand[0], LatentCompare.y.cand[0]]]")
    assert [v for xy in marked for v in xy] == pytest.approx([v for xy in ex for v in xy])
    assert ex[0] != pytest.approx(ex[1])              # two different positions, one id
    # the same through the API for the __proto__ id, then "show on maps"
    page.evaluate("LatentCompare.mark(1)")
    assert page.locator("#compare-hover .hover-id").inner_text() == PROTO
    page.locator("button.show[data-finding='compare-cluster-vanished-1']").click()
    page.wait_for_timeout(300)
    shown = page.evaluate("['fig-base', 'fig-cand'].map(f => "
                          "document.getElementById(f).data[1].x.length)")
    assert shown == [20, 20]
    assert ev["dialogs"] == [] and page.evaluate("window.__pwned === undefined")
    assert page.locator("img[src='x']").count() == 0
    assert XSS in page.locator("body").inner_text()
    assert console_errors(ev) == []
    page.close()
