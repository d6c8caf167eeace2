"""The report in real headless Chromium: renders offline, no errors, user strings inert."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import console_errors, open_report

XSS = "<img src=x onerror=alert(1)>"
XSS2 = '"><script>window.__pwned=1</script>'

pytestmark = pytest.mark.browser


def errors(events):
    return console_errors(events)


def test_demo_report_renders_offline(browser, demo_out):
    _, out = demo_out
    page, ev = open_report(browser, out / "report.html")
    n_div = page.locator("div.figure").count()
    # map + cluster sizes + one composition heatmap per attribute/protected column + outliers
    doc = json.loads((out / "findings.json").read_text())
    cols = doc["run"]["config"]["attributes"] + doc["run"]["config"]["protected"]
    assert n_div >= 3 + len(cols)
    assert page.locator(".js-plotly-plot").count() == n_div
    assert errors(ev) == []
    assert [u for u in ev["requests"] if not u.startswith("file://")] == []
    # the map is WebGL and colours by every column
    options = page.locator("#colour-by option").all_text_contents()
    assert options[0] == "cluster" and all(c in options for c in cols)
    page.select_option("#colour-by", label="shape")
    page.wait_for_timeout(300)
    assert page.locator("#fig-map .gl-container canvas, #fig-map canvas").count() >= 1
    assert errors(ev) == []
    page.close()


def test_metadata_cannot_inject_script(browser, tmp_path, write_case, run_cli):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal((150, 4)), rng.standard_normal((150, 4)) + 8])
    meta = pd.DataFrame({"id": [XSS if i == 0 else f"p{i}" for i in range(300)],
                         "label": [XSS if i % 2 else XSS2 for i in range(300)]})
    cfg = write_case(x.astype(np.float32), meta, {"attributes": ["label"], "name": "xss"})
    out = tmp_path / "o"
    code, _, err = run_cli("run", cfg, "--out", out, "-q")
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert XSS not in html and XSS2 not in html        # never raw in the file
    page, ev = open_report(browser, out / "report.html")
    # hover a point: the label shows as text in the hover panel and plotly's tooltip
    # move the real mouse onto the first point (id = the injected string)
    xy = page.evaluate("""() => {
        const div = document.getElementById('fig-map'), L = div._fullLayout;
        const P = LatentAudit.points, r = div.getBoundingClientRect();
        return [r.left + L.xaxis._offset + L.xaxis.d2p(P.x[0]),
                r.top + L.yaxis._offset + L.yaxis.d2p(P.y[0])];
    }""")
    page.mouse.move(xy[0] + 1, xy[1] + 1)
    page.mouse.move(xy[0], xy[1])
    page.wait_for_timeout(300)
    panel = page.locator("#hover-text").inner_text()
    assert XSS in panel                                  # the hovered point's id, as text
    assert ev["dialogs"] == []
    assert page.evaluate("window.__pwned === undefined")
    assert page.locator("img[src='x']").count() == 0
    body = page.locator("body").inner_text()
    assert XSS in body                                   # shown as text (title, findings)
    assert errors(ev) == []
    page.close()


def test_sampled_map_discloses_the_sample_and_keeps_evidence(browser, tmp_path, write_case,
                                                             run_cli):
    """With the cap below N, the map draws a sample holding every point a finding refers
    to, says so in words, and puts a density layer of all N points underneath."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal((300, 4)), rng.standard_normal((290, 4)) + 9,
                        rng.standard_normal((10, 4)) * 0.3 + 40])      # 10 far outliers
    x[[5, 6]] = x[4]                                                  # near-duplicates
    x = x.astype(np.float32)
    meta = pd.DataFrame({"id": [f"p{i}" for i in range(600)],
                         "kind": np.where(np.arange(600) < 300, "a", "b"),
                         "size": np.where(np.arange(600) % 7 == 0, np.nan, np.arange(600.0))})
    cfg = write_case(x, meta, {"attributes": ["kind", "size"], "name": "sampled",
                               "geometry": {"map": "pca", "plot_points": 100},
                               "checks": {"clusters": {}, "outliers": {}, "duplicates": {}}})
    out = tmp_path / "o"
    code, _, err = run_cli("run", cfg, "--out", out, "-q")
    assert code == 0, err
    doc = json.loads((out / "findings.json").read_text())
    plot = doc["run"]["geometry"]["plot"]
    assert plot["n"] == 600 and plot["n_shown"] < 600 and plot["density_bins"]
    evidence = {e for f in doc["findings"] for e in f["evidence_ids"]}
    assert evidence                                   # outliers and duplicates were found
    page, ev = open_report(browser, out / "report.html")
    note = page.locator("#map .note").inner_text()
    assert f"Showing {plot['n_shown']:,} of 600 points; density of all points underneath" in note
    ids = page.evaluate("LatentAudit.points.ids")
    assert len(ids) == plot["n_shown"] and evidence <= set(ids)
    # the metadata came through the packed arrays: categories and missing numbers
    meta_js = page.evaluate("LatentAudit.points.metadata")
    pos = {int(i[1:]): k for k, i in enumerate(ids)}
    for row, k in pos.items():
        assert meta_js["kind"]["values"][k] == ("a" if row < 300 else "b")
        assert meta_js["size"]["values"][k] == (None if row % 7 == 0 else float(row))
    traces = page.evaluate("document.getElementById('fig-map').data.map(t => [t.type, t.name])")
    assert traces[0][0] == "heatmap" and "600 points" in traces[0][1]
    assert sum(t == "scattergl" for t, _ in traces) >= 2           # clusters, drawn on top
    # "show on map" for the duplicates finding highlights every one of its points
    dup = next(f for f in doc["findings"] if f["check"] == "duplicates")
    page.locator(f"button.show[data-finding='{dup['id']}']").click()
    page.wait_for_timeout(300)
    shown = page.evaluate("document.getElementById('fig-map').data"
                          ".filter(t => t.name === 'evidence')[0].x.length")
    assert shown == len(dup["evidence_ids"])
    # colouring by a numeric column with missing values still draws
    page.select_option("#colour-by", label="size")
    page.wait_for_timeout(300)
    assert errors(ev) == []
    page.close()
