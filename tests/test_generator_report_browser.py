"""The generator sections of the report in real headless Chromium (issue 16): the seven
sections draw their figures, the random-generation grid and the interpolation strips show
decoded images, the editing sliders decode, and user strings stay inert."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import console_errors, open_report

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
SECTIONS = ("generator_fidelity", "generator_modes", "generator_holes",
            "generator_memorization", "generator_attributes", "generator_editing",
            "generator_smoothness")


@pytest.fixture(scope="module")
def gen_report(tmp_path_factory):
    """One generator audit with images: the demo scaled down (600 points, 3 epochs,
    800 generations), through the pipeline as ``latent-audit demo`` runs it."""
    from audit.cli import demo_config
    from audit.config import config_from_dict
    from audit.pipeline import run, write_outputs
    raw = demo_config(n=600, epochs=3).model_dump(mode="json", exclude_unset=True,
                                                   by_alias=True)
    raw["generator"]["samples"] = 800
    audit_run = run(config_from_dict(raw, source="<demo>"))
    out = tmp_path_factory.mktemp("gen") / "out"
    write_outputs(audit_run, out)
    display = {c.check: len(c.display) for c in audit_run.result.checks if c.status == "ok"}
    return out, display


def _srcs(page, selector):
    return page.evaluate(f"""() => [...document.querySelectorAll({json.dumps(selector)})]
        .filter(i => !i.hidden).map(i => i.getAttribute('src') || '')""")


def test_generator_sections_draw_offline(browser, gen_report):
    out, display = gen_report
    doc = json.loads((out / "findings.json").read_text())
    assert doc["run"]["generator"]["kind"] == "image"
    assert all(doc["run"]["checks"][s]["status"] == "ok" for s in SECTIONS), doc["run"]["checks"]
    page, ev = open_report(browser, out / "report.html")
    plan = page.evaluate("LatentAudit.data.figures")
    for check in SECTIONS:
        sec = page.locator(f"#check-{check}")
        assert sec.count() == 1, check
        # the check's declared figures: each a div, drawn by plotly (the div itself, or a
        # plot inside it for the sliders and share charts, which add HTML around the plot)
        assert display[check] >= 1, check
        ids = [f["id"] for f in plan if f["check"] == check]
        assert ids == [f"fig-{check}-{k}" for k in range(display[check])]
        assert sec.locator("div.figure").count() == display[check]
        drawn = page.evaluate("""ids => ids.map(id => {
            const d = document.getElementById(id);
            const p = d.classList.contains('js-plotly-plot') ? d : d.querySelector('.js-plotly-plot');
            return p && p.data ? p.data.length : 0; })""", ids)
        assert all(n > 0 for n in drawn), (check, dict(zip(ids, drawn)))
    assert console_errors(ev) == []
    assert [u for u in ev["requests"] if not u.startswith("file://")] == []
    page.close()


def test_generations_and_interpolations_show_as_images(browser, gen_report):
    out, _ = gen_report
    page, ev = open_report(browser, out / "report.html")
    fid = page.evaluate("LatentAudit.data.checks.generator_fidelity.tables")
    assert fid["kind"] == "image" and len(fid["grid"]) >= 8
    # the random-generation grid (and the least realistic ones), open, as data: images
    grid = _srcs(page, "#check-generator_fidelity .gen-grid img")
    assert len(grid) == len(fid["grid"]) + len(fid["lowest"] or [])
    assert all(s.startswith("data:image/png;base64,") for s in grid)
    assert len(set(grid)) > len(grid) // 2                       # not one picture repeated
    assert page.locator("#check-generator_fidelity details.gen-examples[open]").count() == 1
    assert page.locator("#check-generator_fidelity .gen-grid img").first.is_visible()
    # the interpolation strips: one image per point along each path
    sm = page.evaluate("LatentAudit.data.checks.generator_smoothness.tables")
    assert sm["strips"] and all(s["images"] for s in sm["strips"])
    strips = page.locator("#check-generator_smoothness details.smoothness-strip")
    assert strips.count() == len(sm["strips"])
    for k, s in enumerate(sm["strips"]):
        imgs = strips.nth(k).locator("img").evaluate_all(
            "els => els.map(i => i.getAttribute('src'))")
        assert len(imgs) == len(s["images"]) == sm["steps"] + 1
        assert all(i.startswith("data:image/png;base64,") for i in imgs)
    assert strips.first.locator("img").first.is_visible()
    # the dropped regions show their real examples as pictures
    assert _srcs(page, "#check-generator_modes table.gen-modes img")
    assert console_errors(ev) == []
    page.close()


def test_editing_slider_decodes_another_step(browser, gen_report):
    out, _ = gen_report
    page, ev = open_report(browser, out / "report.html")
    tab = page.evaluate("LatentAudit.data.checks.generator_editing.tables")
    assert tab["sliders"] and all(s["images"] for s in tab["sliders"])
    sliders = page.locator("#check-generator_editing input[type=range]")
    assert sliders.count() == len(tab["sliders"])
    assert sliders.first.is_visible()
    # figures after the first two fold under "n more figure(s)": open it as a reader would
    more = page.locator("#check-generator_editing details.more-figures > summary")
    if more.count():
        more.click()
    assert all(sliders.nth(k).is_visible() for k in range(sliders.count()))
    for k, spec in enumerate(tab["sliders"]):
        root = f"#fig-generator_editing-{k + 1}"
        rng = page.locator(f"{root} input[type=range]")
        assert rng.count() == 1
        top = int(rng.get_attribute("max"))
        assert top == len(spec["steps"]) - 1 and rng.input_value() == str(top)
        before = _srcs(page, f"{root} td img")
        label = page.locator(f"{root} input[type=range] + span").inner_text()
        assert len(before) == len(spec["points"])
        assert all(s.startswith("data:image/png;base64,") for s in before)
        rng.fill("0")                                  # sets the value, fires 'input'
        page.wait_for_timeout(100)
        after = _srcs(page, f"{root} td img")
        assert len(after) == len(before) and all(s.startswith("data:") for s in after)
        assert after != before, spec["attribute"]      # other decodes are shown
        assert page.locator(f"{root} input[type=range] + span").inner_text() != label
        # moving back by an 'input' event restores the first pictures
        page.evaluate("""([sel, v]) => { const i = document.querySelector(sel); i.value = v;
            i.dispatchEvent(new Event('input', {bubbles: true})); }""",
                      [f"{root} input[type=range]", str(top)])
        page.wait_for_timeout(100)
        assert _srcs(page, f"{root} td img") == before
    assert console_errors(ev) == []
    page.close()


def test_generator_metadata_cannot_inject_script(browser, tmp_path):
    """A table-world generator audit whose ``side`` column holds markup: no dialog, no
    injected element, and the string shows as text in the attributes section."""
    from generator_world import HoleDecoder, table_case

    from audit.config import load_config
    from audit.pipeline import run, write_outputs
    cfg = table_case(tmp_path, HoleDecoder(), n=600, samples=600)
    rows = pd.read_csv(tmp_path / "rows.csv")
    rows["side"] = rows["side"].replace("right", XSS)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    write_outputs(run(load_config(cfg)), tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert XSS not in html
    page, ev = open_report(browser, tmp_path / "out" / "report.html")
    page.wait_for_timeout(300)
    assert ev["dialogs"] == []
    assert page.locator("img[src='x']").count() == 0
    assert XSS in page.locator("#check-generator_attributes").text_content()
    # the level is an axis label of the shares chart, as text
    labels = page.locator("#check-generator_attributes svg text").all_text_contents()
    assert XSS in labels
    for check in SECTIONS:
        assert page.locator(f"#check-{check}").count() == 1
    # the planted prior hole (z0 > 1.5) with its decoded rows, and ringed on the prior map
    holes = page.locator("#check-generator_holes table.generator-hole-rows")
    assert holes.count() >= 1 and holes.first.locator("tbody tr").count() >= 3
    traces = page.evaluate("document.getElementById('fig-generator_holes-0').data"
                           ".map(t => t.name)")
    assert any("generator_holes-1" in (t or "") for t in traces), traces
    assert console_errors(ev) == []
    page.close()


def test_nav_reaches_every_generator_section(browser, gen_report):
    """With the seven generator checks the nav holds 16 links: they wrap inside a 1280 px
    window (no sideways scrolling), and each generator link jumps to its section."""
    out, _ = gen_report
    page, ev = open_report(browser, out / "report.html")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"
    for check in SECTIONS:
        link = page.locator(f"nav a[href='#check-{check}']")
        box = link.bounding_box()
        assert box and box["x"] + box["width"] <= width[1], check
        link.click()
        page.wait_for_timeout(150)
        top = page.evaluate(f"document.querySelector('#check-{check} h2')"
                            ".getBoundingClientRect().top")
        nav = page.evaluate("document.querySelector('nav').getBoundingClientRect().bottom")
        assert nav <= top < 900, (check, top, nav)
    assert console_errors(ev) == []
    page.close()
