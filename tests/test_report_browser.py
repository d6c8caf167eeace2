"""The report in real headless Chromium: renders offline, no errors, user strings inert."""
from __future__ import annotations

import json

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


PROTO_VALUES = ["__proto__", "constructor", "toString", "hasOwnProperty"]


def _proto_case(write_case, tmp_path):
    """Metadata whose values and column names are Object.prototype member names."""
    rng = np.random.default_rng(5)
    n = 480
    lab = np.arange(n) % 4
    centres = rng.standard_normal((4, 6)) * 7
    x = (centres[lab] + rng.standard_normal((n, 6))).astype(np.float32)
    ref = np.concatenate([x[:300] + rng.standard_normal((300, 6)).astype(np.float32) * 0.3,
                          (rng.standard_normal((60, 6)) + 30).astype(np.float32)])
    meta = pd.DataFrame({
        "id": [PROTO_VALUES[i % 4] if i < 4 else f"p{i}" for i in range(n)],
        "constructor": np.array(PROTO_VALUES)[lab],
        "__proto__": np.array(PROTO_VALUES)[(lab + np.arange(n) // 4 % 2) % 4],
        "function": np.where(np.arange(n) % 3 == 0, "toString", "valueOf"),
        "colour": np.array(["green", "red", "blue", "orange"])[lab],
        "size": lab * 1.5 + rng.standard_normal(n),
    })
    cfg = write_case(x, meta, {"name": "proto", "attributes": ["constructor", "size", "colour"],
                               "protected": ["__proto__", "function"]}, reference=ref)
    return cfg


def test_prototype_names_draw_every_figure(browser, tmp_path, write_case, run_cli):
    """Values and columns named like Object.prototype members (``__proto__``,
    ``constructor``, ``toString``, ``hasOwnProperty``, ``function``): no console error,
    every figure drawn, and the map colours by each of those columns."""
    cfg = _proto_case(write_case, tmp_path)
    out = tmp_path / "o"
    code, _, err = run_cli("run", cfg, "--out", out, "-q")
    assert code in (0, 1), err
    page, ev = open_report(browser, out / "report.html")
    n_div = page.locator("div.figure").count()
    assert n_div >= 8
    assert page.locator(".js-plotly-plot").count() == n_div
    # every figure has data in it
    empty = page.evaluate("""() => [...document.querySelectorAll('div.figure')]
        .filter(d => !d.data || !d.data.length).map(d => d.id)""")
    assert empty == []
    assert errors(ev) == []
    options = page.locator("#colour-by option").all_text_contents()
    for col in ("constructor", "__proto__", "function"):
        assert col in options
        page.select_option("#colour-by", label=col)
        page.wait_for_timeout(200)
        # plotly keys categories by plain objects: such labels carry an invisible U+200B
        names = [n.replace("\u200b", "") for n in
                 page.evaluate("document.getElementById('fig-map').data.map(t => t.name)")]
        n_pts = page.evaluate("document.getElementById('fig-map').data"
                              ".filter(t => t.type === 'scattergl')"
                              ".reduce((s, t) => s + t.x.length, 0)")
        assert n_pts == page.evaluate("LatentAudit.points.x.length")
        if col != "function":
            assert sum(any(n.startswith(v + " (") for n in names) for v in PROTO_VALUES) == 4
    # hovering the point whose id is "__proto__" fills the panel without errors
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.wait_for_timeout(300)
    xy = page.evaluate("""() => {
        const div = document.getElementById('fig-map'), L = div._fullLayout;
        const P = LatentAudit.points, r = div.getBoundingClientRect();
        const i = P.ids.indexOf('__proto__');
        return [r.left + L.xaxis._offset + L.xaxis.d2p(P.x[i]),
                r.top + L.yaxis._offset + L.yaxis.d2p(P.y[i])];
    }""")
    page.mouse.move(xy[0] + 1, xy[1] + 1)
    page.mouse.move(xy[0], xy[1])
    page.wait_for_timeout(300)
    assert errors(ev) == []
    assert page.locator("#hover-text").inner_text().startswith("__proto__")
    page.close()


def _map_traces(page):
    return page.evaluate("""() => document.getElementById('fig-map').data
        .filter(t => t.type === 'scattergl' && t.name !== 'evidence')
        .map(t => ({name: t.name.replace(/\u200b/g, ''), color: t.marker.color, text: t.text}))""")


def test_map_colours_legend_and_hover_agree(browser, tmp_path, write_case, run_cli):
    """A column of colour names is drawn in those colours (legend = marker = hover); the
    clusters take one shared palette (map = cluster-size chart), noise is grey and called
    "noise"; hover numbers have ~3 significant digits."""
    cfg = _proto_case(write_case, tmp_path)
    out = tmp_path / "o"
    code, _, err = run_cli("run", cfg, "--out", out, "-q")
    assert code in (0, 1), err
    page, ev = open_report(browser, out / "report.html")
    page.select_option("#colour-by", label="colour")
    page.wait_for_timeout(200)
    traces = _map_traces(page)
    assert {t["name"].split(" (")[0] for t in traces} == {"green", "red", "blue", "orange"}
    for t in traces:
        value = t["name"].split(" (")[0]
        assert t["color"] == value                                   # legend = marker
        assert all(f"colour: {value}" in h for h in t["text"])      # = hover
    # clusters: the same colour on the map and in the cluster-size chart
    page.select_option("#colour-by", label="cluster")
    page.wait_for_timeout(200)
    on_map = {t["name"].split(" (")[0]: t["color"] for t in _map_traces(page)}
    bars = page.evaluate("""() => { const t = document.getElementById('fig-clusters-0').data[0];
        return t.x.map((x, i) => [x, t.marker.color[i]]); }""")
    assert len(bars) >= 2
    for x, colour in bars:
        name = "noise" if x == "noise" else "cluster " + x.lstrip("c")
        if name in on_map:
            assert on_map[name] == colour, (name, on_map[name], colour)
    hover = page.evaluate("document.getElementById('fig-map').data[0].text.join('|')")
    assert "cluster: -1" not in hover
    import re
    assert not re.search(r"\d\.0*[1-9]\d{4,}", hover)                  # no raw float32 digits
    # the legend is not under the modebar
    boxes = page.evaluate("""() => {
        const m = document.querySelector('#fig-map .modebar').getBoundingClientRect();
        const l = document.querySelector('#fig-map .legend').getBoundingClientRect();
        return [m.bottom, l.top]; }""")
    assert boxes[1] >= boxes[0] - 1
    assert errors(ev) == []
    page.close()


def test_png_download_is_not_blocked_by_csp(browser, demo_out):
    """The modebar's "Download plot as PNG" works under the report's CSP, which still
    allows no network request (img-src only data: and blob:)."""
    _, out = demo_out
    html = (out / "report.html").read_text()
    csp = html.split('http-equiv="Content-Security-Policy" content="')[1].split('"')[0]
    assert "default-src 'none'" in csp and "http" not in csp and "connect-src" not in csp
    assert "img-src data: blob:" in csp
    page, ev = open_report(browser, out / "report.html")
    page.evaluate("""() => { window.__csp = [];
        document.addEventListener('securitypolicyviolation',
            e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI)); }""")
    for fig in ("fig-map", "fig-clusters-0"):
        page.hover(f"#{fig}")
        with page.expect_download(timeout=20000) as dl:
            page.locator(f"#{fig} .modebar-btn[data-title*='Download']").first.click()
        assert dl.value.suggested_filename.endswith(".png")
        assert dl.value.path().read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.wait_for_timeout(300)
    assert page.evaluate("window.__csp") == []
    assert errors(ev) == []
    assert [u for u in ev["requests"] if not u.startswith(("file://", "blob:", "data:"))] == []
    page.close()


def test_report_reads_clearly_for_a_newcomer(browser, demo_out):
    """Every drawn point has a hover thumbnail; no p-value reads "p = 0"; findings with
    numbers sort numerically (#2 before #10); the disentanglement scores appear once; slider
    charts show bars before they are dragged; the sticky nav does not hide a heading after
    an anchor jump; hover numbers are short."""
    import re
    _, out = demo_out
    html = (out / "report.html").read_text()
    assert "p = 0<" not in html and "p = 0," not in html and "p 0)" not in html
    page, ev = open_report(browser, out / "report.html")
    p_cells = page.evaluate("[...document.querySelectorAll('#findings tbody tr')]"
                            ".map(r => r.cells[4].textContent.trim())")
    assert p_cells and "0" not in p_cells and "0.0" not in p_cells
    ids = page.evaluate("LatentAudit.points.ids")
    thumbs = page.evaluate("Object.keys(LatentAudit.data.thumbnails)")
    assert set(ids) <= set(thumbs)
    titles = page.locator("#check-outliers .finding strong").all_text_contents()
    ranks = [int(m.group(1)) for t in titles if (m := re.match(r"Most isolated #(\d+)", t))]
    assert ranks == sorted(ranks) and len(ranks) >= 2
    ent = page.locator("#check-entanglement")
    if ent.count():
        body = ent.inner_html()
        assert body.count("<td><code>disentanglement.mig</code></td>") == 1     # one scores table
        sliders = page.evaluate("""() => [...document.querySelectorAll('#check-entanglement div.figure')]
            .filter(d => d.layout && d.layout.sliders)
            .map(d => d.data[0].y.some(v => v !== null && Math.abs(v) > 1e-9))""")
        assert all(sliders)
    page.evaluate("location.hash = '#check-outliers'")
    page.wait_for_timeout(300)
    top = page.evaluate("document.querySelector('#check-outliers h2').getBoundingClientRect().top")
    nav = page.evaluate("document.querySelector('nav').getBoundingClientRect().bottom")
    assert top >= nav
    hover = page.evaluate("document.getElementById('fig-map').data[0].text.join('|')")
    assert not re.search(r"\d\.0*[1-9]\d{4,}", hover) and "cluster: -1" not in hover
    assert errors(ev) == []
    page.close()


def test_coverage_gap_regions_are_outlined(browser, tmp_path, write_case, run_cli):
    cfg = _proto_case(write_case, tmp_path)
    out = tmp_path / "o"
    code, _, err = run_cli("run", cfg, "--out", out, "-q")
    assert code in (0, 1), err
    doc = json.loads((out / "findings.json").read_text())
    n_gaps = sum(1 for f in doc["findings"] if f["check"] == "coverage" and "gap" in f["id"])
    # a leakage test that stopped early says why (sequential Besag–Clifford test)
    import re
    leak = [f["summary"] for f in doc["findings"] if f["id"].endswith("-leakage")
            or f["id"].endswith("-leakage-adjusted")]
    stopped = [t for t in leak if int(re.search(r"over (\d+) shuffles", t).group(1)) < 40]
    assert stopped and all("Besag–Clifford" in t and "stop_after" in t for t in stopped)
    page, ev = open_report(browser, out / "report.html")
    fig = page.locator("#check-coverage div.figure").first.get_attribute("id")
    data = page.evaluate(f"document.getElementById('{fig}').data.map(t => [t.name, t.fill || '', t.text])")
    outlines = [d for d in data if d[0] == "gap region outline"]
    assert outlines and all(d[1] == "toself" for d in outlines)
    labels = [d for d in data if d[0] == "gap labels"][0][2]
    assert labels[0] == "gap 1" and len(labels) == len(outlines)
    assert n_gaps == 0 or len(outlines) == n_gaps
    # "q" is defined wherever a caption uses it
    assert "BH-adjusted p-value as <em>q</em>" in page.locator("#check-bias").inner_html()
    assert errors(ev) == []
    page.close()


def test_p_values_never_print_as_zero():
    from audit.report.html import _pval
    assert _pval(0.0) == "< 1e-300" and _pval(1e-320) == "< 1e-300"
    assert _pval(None) == "–" and _pval(0.031) == "0.031" and _pval(2.5e-7) == "2.50e-07"


def test_figure_kinds_are_namespaced_per_check_and_columns_reach_the_map(browser, demo_out):
    """Two checks may register one kind name (each draws its own figures); one script
    registering a kind twice is an error; built-in kinds serve every check; every numeric
    per-sample column is a "colour by" entry of the map (issue 13, item 7)."""
    _, out = demo_out
    page, ev = open_report(browser, out / "report.html")
    got = page.evaluate("""() => {
        const LA = window.LatentAudit, a = () => 'a', b = () => 'b';
        LA.forCheck('check_a'); LA.register('same_kind', a);
        LA.forCheck('check_b'); LA.register('same_kind', b);
        let twice = null;
        try { LA.register('same_kind', b); } catch (e) { twice = String(e); }
        return {a: LA.drawer('check_a', 'same_kind') === a, b: LA.drawer('check_b', 'same_kind') === b,
                other: LA.drawer('check_c', 'same_kind') === undefined, twice: twice,
                builtin: typeof LA.drawer('anything', 'histogram'),
                outliers: typeof LA.drawer('outliers', 'outlier_hist'),
                not_for_others: LA.drawer('clusters', 'outlier_hist') === undefined};
    }""")
    assert got["a"] and got["b"] and got["other"] and got["not_for_others"]
    assert got["twice"] and "registered twice" in got["twice"]
    assert got["builtin"] == "function" and got["outliers"] == "function"
    options = page.locator("#colour-by option").all_text_contents()
    doc = json.loads((out / "findings.json").read_text())
    named = {"clusters.cluster", "outliers.isolation_ratio", "outliers.glosh"}  # own labels
    for col in doc["per_sample"]["columns"]:
        assert col["name"] in named or col["name"] in options
    for label in ("outliers.knn_distance", "duplicates.is_duplicates_issue"):
        page.select_option("#colour-by", label=label)
        page.wait_for_timeout(200)
    assert errors(ev) == []
    page.close()


def test_the_guide_check_draws_its_histogram(browser, tmp_path):
    """The guide's example check (docs/developing-checks.md) in the page: its built-in
    histogram is drawn and its column colours the map, without errors."""
    import test_guide_check as guide
    from audit.checks import base
    from audit.config import load_config
    from audit.pipeline import run, write_outputs
    saved = dict(base._REGISTRY)
    try:
        exec(compile(guide.guide_example(), str(guide.GUIDE), "exec"), {"__name__": "guide"})
        rng = np.random.default_rng(1)
        x = rng.standard_normal((300, 4)).astype(np.float32)
        x[:3] += 30
        np.save(tmp_path / "latents.npy", x)
        (tmp_path / "config.yaml").write_text(
            "data: {latents: latents.npy}\ngeometry: {map: pca}\nchecks: {far_points: {}}\n")
        write_outputs(run(load_config(tmp_path / "config.yaml")), tmp_path / "out")
    finally:
        base._REGISTRY.clear()
        base._REGISTRY.update(saved)
    page, ev = open_report(browser, tmp_path / "out" / "report.html")
    assert page.locator("#fig-far_points-0.js-plotly-plot").count() == 1
    page.select_option("#colour-by", label="far_points.far_z")
    page.wait_for_timeout(200)
    assert errors(ev) == []
    page.close()
