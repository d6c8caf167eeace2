"""The web UI in real headless Chromium (Debian's), driven as a person would.

Two real runs are pushed to a real server and the first pinned as the baseline; the
browser opens the project list, the history (the trend chart drawn, the baseline marked),
an audit's page (its report renders inside the sandboxed frame), a comparison picked by
ticking two audits, and the job queue. Every page must log no console error and request
nothing outside the server's origin.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import push_run, seed_jobs, server_state
from .servers import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.service]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
#: schemes that never leave the machine
LOCAL_SCHEMES = ("data:", "blob:", "about:")


@pytest.fixture(scope="module")
def chromium():
    """Debian's headless Chromium through Playwright (never a downloaded browser)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, run_dirs):
    """A server holding v1 (the pinned baseline) and v2 of project ``vision``, and two
    finished jobs."""
    server = LiveServer(tmp_path_factory.mktemp("ui") / "home", workers=0).start()
    try:
        base = push_run(server, "vision", run_dirs["base"], "v1", commit="a" * 40,
                        labels={"team": "perception"})
        with server.client(server.admin) as c:
            r = c.put("/api/v1/projects/vision/baseline", json={"audit_id": base["id"]})
            assert r.status_code == 200, r.text
        cand = push_run(server, "vision", run_dirs["cand"], "v2", commit="b" * 40)
        state = server_state(server)
        seed_jobs(state, "vision", [{"status": "succeeded", "progress": 1.0, "stage": "done",
                                     "audit_id": cand["id"], "version": "v2"},
                                    {"status": "failed", "progress": 0.3, "stage": "load",
                                     "error": "data.latents: outside the allowed roots"}])
        state.engine.dispose()
        yield {"server": server, "base": base["id"], "cand": cand["id"]}
    finally:
        server.stop(kill=True)


class Tab:
    """A browser page that records console errors, dialogs and off-origin requests."""

    def __init__(self, browser, origin: str) -> None:
        self.origin = origin
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.console: list[tuple[str, str]] = []
        self.foreign: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.console.append(("pageerror", str(e))))
        self.page.on("request", self._request)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _request(self, request) -> None:
        url = request.url
        if not (url.startswith(self.origin + "/") or url.startswith(LOCAL_SCHEMES)):
            self.foreign.append(url)

    def goto(self, path: str):
        r = self.page.goto(self.origin + path)
        assert r is not None and r.status == 200, (path, r and r.status)
        return self.page

    def assert_clean(self) -> None:
        errors = [(t, m) for t, m in self.console if t in ("error", "pageerror")
                  or (t == "warning" and "GL Driver" not in m)]
        assert errors == []
        assert self.foreign == []
        assert self.dialogs == []

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def tab(chromium, site):
    t = Tab(chromium, site["server"].url)
    yield t
    t.close()


def test_project_list_and_history_with_its_trend_chart(tab, site):
    page = tab.goto("/")
    row = page.locator("#projects tbody tr", has_text="vision")
    assert row.count() == 1
    assert row.locator(".badge").count() == 1                   # the latest's release verdict
    row.get_by_role("link", name="vision").click()
    page.wait_for_url("**/projects/vision")
    # the chart: plotly drew its svg, with one point per audit and the baseline starred
    page.wait_for_selector("#trend[data-drawn='2'] svg.main-svg")
    traces = page.evaluate("document.getElementById('trend').data.map("
                           "t => [t.name, t.customdata])")
    assert traces == [["audits", [site["base"], site["cand"]]], ["baseline", [site["base"]]]]
    assert page.locator("#trend .annotation-text", has_text="baseline").count() == 1
    assert page.locator("#trend .scatterlayer .trace .point").count() >= 3
    # the table: newest first, the baseline row marked
    ids = page.locator("#history tbody tr").evaluate_all("rs => rs.map(r => +r.dataset.id)")
    assert ids == [site["cand"], site["base"]]
    assert page.locator("#history tr.baseline").get_attribute("data-id") == str(site["base"])
    assert "baseline" in page.locator("#history tr.baseline").inner_text().lower()
    # another metric: the picker reloads the page with that metric charted
    options = page.locator("#metric option").all_inner_texts()
    current = page.locator("#metric").input_value()
    other = next(o for o in options if o != current)
    page.select_option("#metric", other)
    page.wait_for_url(f"**/projects/vision?metric={other}")
    page.wait_for_selector("#trend[data-drawn='2'] svg.main-svg")
    assert page.locator("#metric").input_value() == other
    tab.assert_clean()


def test_audit_page_embeds_its_report(tab, site):
    page = tab.goto(f"/audits/{site['cand']}")
    frame_el = page.locator("iframe#report-frame")
    assert frame_el.get_attribute("sandbox") == "allow-scripts"
    assert frame_el.get_attribute("src") == f"/audits/{site['cand']}/report"
    frame = page.frame_locator("#report-frame")
    assert "latent-audit" in frame.locator("header h1").inner_text(timeout=30000)
    frame.locator("section#overview").wait_for(timeout=30000)
    frame.locator(".js-plotly-plot").first.wait_for(timeout=60000)     # its figures drew
    assert page.locator("h1").inner_text().startswith("vision · v2")
    link = page.locator("#comparison-link")
    assert link.get_attribute("href") == \
        f"/compare?baseline={site['base']}&candidate={site['cand']}"
    page.wait_for_timeout(500)
    tab.assert_clean()


def test_compare_two_audits_picked_in_the_history(tab, site):
    page = tab.goto("/projects/vision")
    button = page.locator("#compare-button")
    assert button.is_disabled()
    page.locator(f"input[name=pick][value='{site['cand']}']").check()
    assert button.is_disabled()
    page.locator(f"input[name=pick][value='{site['base']}']").check()
    assert button.is_enabled()
    button.click()
    page.wait_for_url(f"**/compare?baseline={site['base']}&candidate={site['cand']}")
    assert page.locator("iframe#compare-frame").get_attribute("sandbox") == "allow-scripts"
    frame = page.frame_locator("#compare-frame")
    assert "latent-audit compare" in frame.locator("h1").inner_text(timeout=120000)
    frame.locator("section#overview").wait_for(timeout=30000)
    page.wait_for_timeout(500)
    facts = page.locator(".columns .panel").all_inner_texts()
    assert "v1" in facts[0] and "v2" in facts[1]
    tab.assert_clean()


def test_job_queue(tab, site):
    page = tab.goto("/jobs")
    rows = page.locator("#jobs tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator(".status").inner_text() == "failed"      # newest first
    assert "outside the allowed roots" in rows.nth(0).inner_text()
    assert rows.nth(0).locator("progress").get_attribute("value") == "0.3"
    assert page.locator("meta[http-equiv=refresh]").count() == 0        # nothing active
    rows.nth(1).get_by_role("link", name=f"#{site['cand']}").click()
    page.wait_for_url(f"**/audits/{site['cand']}")
    tab.assert_clean()
