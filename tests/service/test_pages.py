"""The web UI's pages as HTML: a real server (SQLite), real pushes and seeded rows.

What a person sees is checked in a real browser by ``test_ui.py``; here every page's
status, content, security headers and escaping, the history's pagination over 1,000
audits, a fixed number of SQL statements per page whatever the number of audits, and the
login flow when reads need a token.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .helpers import push_run, seed_audits, seed_jobs, server_state

pytestmark = pytest.mark.service
SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'self'")
XSS = "<script>alert(1)</script>"
XSS_NAME = "<img src=x onerror=alert(1)>"         # no '/': it must fit in a URL segment
ROW = re.compile(r'<tr(?: class="baseline")? data-id="(\d+)"')


def _secure(r) -> None:
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["content-type"].startswith("text/html")


def _self_contained(html: str) -> None:
    """No URL of another origin, and no script but /static files and JSON data."""
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""",
                         html, re.IGNORECASE)
    assert "http://" not in html and "https://" not in html
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="/static/' in tag or 'type="application/json"' in tag, tag
    for tag in re.findall(r"<[a-zA-Z][^>]*>", html):
        assert not re.search(r"\son[a-z]+\s*=", tag), tag
    assert " style=" not in html                  # the CSP refuses inline styles


def _chart(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="trend-data">(.*?)</script>', html,
                  re.DOTALL)
    assert m, "no chart data"
    return json.loads(m.group(1))


@SQLITE
def test_every_page_over_pushed_runs(make_server, run_dirs):
    server = make_server(workers=0)
    base = push_run(server, "vision", run_dirs["base"], "v1", commit="a" * 40,
                    labels={"team": "perception"})
    with server.client(server.admin) as c:
        r = c.put("/api/v1/projects/vision/baseline", json={"audit_id": base["id"]})
        assert r.status_code == 200, r.text
    cand = push_run(server, "vision", run_dirs["cand"], "v2", commit="b" * 40)
    bare = push_run(server, "vision", run_dirs["base"], "v3", store=False)
    assert cand["baseline_id"] == base["id"] and cand["comparison_verdict"] in ("pass", "fail")
    state = server_state(server)
    seed_jobs(state, "vision", [{"status": "succeeded", "progress": 1.0, "stage": "done",
                                 "audit_id": cand["id"], "version": "v2"},
                                {"status": "failed", "progress": 0.4, "stage": "checks",
                                 "error": "the data root is not allowed",
                                 "log_tail": "[   0.0s] loading data\n"}])
    state.engine.dispose()

    with server.client() as c:
        pages = {}
        for url in ("/", "/projects/vision", f"/audits/{cand['id']}",
                    f"/compare?baseline={base['id']}&candidate={cand['id']}", "/jobs",
                    "/login"):
            r = c.get(url)
            assert r.status_code == 200, (url, r.text[:500])
            _secure(r)
            _self_contained(r.text)
            pages[url] = r.text

        home = pages["/"]
        assert '<a href="/projects/vision">vision</a>' in home
        row = home[home.index("/projects/vision"):]
        row = row[:row.index("</tr>")]
        assert '<td class="n">3</td>' in row                           # audits
        assert f'href="/audits/{bare["id"]}">v3</a>' in row            # the latest
        assert f'badge-{bare["release_verdict"]}' in row
        assert f'href="/audits/{base["id"]}">v1</a>' in row            # the baseline

        history = pages["/projects/vision"]
        assert ROW.findall(history) == [str(bare["id"]), str(cand["id"]), str(base["id"])]
        assert f'<tr class="baseline" data-id="{base["id"]}">' in history
        assert history.count('class="baseline"') == 1
        assert history.count('type="checkbox" name="pick"') == 3
        assert '<form id="compare-form" method="get" action="/compare">' in history
        chart = _chart(history)
        names = re.findall(r'<option value="([^"]+)"', history)
        assert chart["metric"] in names and chart["baseline_id"] == base["id"]
        assert chart["id"] == [base["id"], cand["id"], bare["id"]]          # oldest first
        assert chart["version"] == ["v1", "v2", "v3"]
        assert len(chart["value"]) == 3
        # any metric of the project can be charted
        other = next(n for n in names if n != chart["metric"])
        r = c.get("/projects/vision", params={"metric": other})
        assert _chart(r.text)["metric"] == other
        assert f'<option value="{other}" selected>' in r.text

        audit = pages[f"/audits/{cand['id']}"]
        assert (f'<iframe class="report-frame" id="report-frame" sandbox="allow-scripts" '
                f'src="/audits/{cand["id"]}/report"') in audit
        assert "b" * 40 in audit and ">v2<" in audit
        assert (f'href="/compare?baseline={base["id"]}&amp;candidate={cand["id"]}"' in audit)
        assert f"badge-{cand['comparison_verdict']}" in audit
        for name in ("findings.json", "report.html", "summary.md"):
            link = f'/api/v1/audits/{cand["id"]}/files/{name}'
            assert f'href="{link}"' in audit
            got = c.get(link)
            assert got.status_code == 200
            assert got.content == (run_dirs["cand"] / name).read_bytes()
        assert c.get(f"/audits/{cand['id']}/report").status_code == 200

        compare = pages[f"/compare?baseline={base['id']}&candidate={cand['id']}"]
        assert ('sandbox="allow-scripts" src="/compare/report?baseline='
                f'{base["id"]}&amp;candidate={cand["id"]}"') in compare
        assert ">v1</a> → <a" in compare and ">v2</a></h1>" in compare

        jobs = pages["/jobs"]
        assert len(re.findall(r'<tr data-id="\d+" class="job-', jobs)) == 2
        assert "the data root is not allowed" in jobs
        assert "<pre>[   0.0s] loading data\n</pre>" in jobs
        assert f'<a href="/audits/{cand["id"]}">#{cand["id"]}</a>' in jobs
        assert '<progress max="1" value="0.4">' in jobs
        assert 'http-equiv="refresh"' not in jobs                     # nothing active

        # two audits picked in the history land on the canonical compare URL
        r = c.get("/compare", params=[("pick", cand["id"]), ("pick", base["id"])])
        assert r.status_code == 303
        assert r.headers["location"] == f"/compare?baseline={base['id']}&candidate={cand['id']}"

        # unknown ids, an audit without its store, bad input: a page that says so
        r = c.get("/compare", params={"baseline": base["id"], "candidate": 99999})
        assert r.status_code == 404 and "There is no audit 99999 (the candidate)." in r.text
        _secure(r)
        r = c.get("/compare", params={"baseline": base["id"], "candidate": bare["id"]})
        assert r.status_code == 409 and "<iframe" not in r.text
        assert f"the candidate (audit {bare['id']}) was pushed without its store/" in r.text
        for bad in ("x", "²", "-1", "1" * 30):
            r = c.get("/compare", params={"baseline": bad, "candidate": "1"})
            assert r.status_code == 400 and "baseline must be an audit id" in r.text
        r = c.get("/compare", params=[("pick", base["id"])])
        assert r.status_code == 400 and "Tick exactly two audits" in r.text
        r = c.get("/audits/99999")
        assert r.status_code == 404 and "There is no audit 99999." in r.text
        r = c.get("/projects/nope")
        assert r.status_code == 404 and "There is no project named &#39;nope&#39;." in r.text

        # static files: the UI's own, and plotly.js read from the installed package
        import plotly
        bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        r = c.get("/static/plotly.min.js")
        assert r.status_code == 200 and r.content == bundled.read_bytes()
        assert r.headers["content-type"].startswith("text/javascript")
        css = c.get("/static/plotly.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert ".js-plotly-plot .plotly .main-svg{position:absolute;" in css.text
        assert css.text.count("{") >= 30
        for name in ("service.css", "history.js"):
            assert c.get(f"/static/{name}").status_code == 200
        for bad in ("nope.js", "..%2Fpages.py", "pages.py", "Service.css"):
            assert c.get(f"/static/{bad}").status_code == 404


@SQLITE
def test_user_strings_are_escaped(make_server):
    """A project, version, label, metric name and job error carrying markup show as text."""
    server = make_server(workers=0, start=False)
    state = server_state(server)
    ids = seed_audits(state, XSS_NAME, 3, version=XSS + "{i}", labels={XSS: XSS},
                      metrics={XSS: 1.0, "coverage.coverage": 0.5}, baseline=0)
    seed_jobs(state, XSS_NAME, [{"status": "failed", "error": XSS, "stage": XSS,
                                 "version": XSS}, {"status": "queued", "version": XSS}])
    state.engine.dispose()
    server.start()
    from urllib.parse import quote
    project_url = "/projects/" + quote(XSS_NAME, safe="")
    with server.client() as c:
        for url in ("/", project_url, project_url + "?metric=" + quote(XSS, safe=""),
                    f"/audits/{ids[1]}", f"/compare?baseline={ids[0]}&candidate={ids[1]}",
                    "/jobs"):
            r = c.get(url)
            assert r.status_code in (200, 409), (url, r.status_code)
            _secure(r)
            assert XSS not in r.text and XSS_NAME not in r.text, url
            assert "alert(1)" in r.text, url                  # shown, as text
            _self_contained(r.text)
        history = c.get(project_url).text
        assert "&lt;img src=x onerror=alert(1)&gt;" in history
        assert "&lt;script&gt;alert(1)&lt;/script&gt;2" in history
        assert f'<option value="{XSS}"' not in history
        assert '<option value="&lt;script&gt;alert(1)&lt;/script&gt;">' in history
        chart = _chart(history)                     # the JSON block parses, strings intact
        assert chart["version"][0] == XSS + "0"
        assert "\\u003cscript\\u003e" in history and "</script>0" not in history
        # the metric named by the markup is charted (its values are JSON numbers)
        chart = _chart(c.get(project_url, params={"metric": XSS}).text)
        assert chart["metric"] == XSS and chart["value"] == pytest.approx([1.0, 1.001, 1.002])
        audit = c.get(f"/audits/{ids[1]}").text
        assert '<span class="label">&lt;script&gt;alert(1)&lt;/script&gt;=' in audit
        jobs = c.get("/jobs").text
        assert "<pre>&lt;script&gt;alert(1)&lt;/script&gt;</pre>" in jobs
        assert '<meta http-equiv="refresh" content="5">' in jobs      # a job is active
        r = c.get("/jobs", params={"status": "failed", "page": "x"})
        assert r.status_code == 200 and len(re.findall(r'<tr data-id=', r.text)) == 1


@SQLITE
def test_history_of_a_thousand_audits_is_paginated(make_server):
    server = make_server(workers=0, start=False)
    state = server_state(server)
    ids = seed_audits(state, "big", 1000, baseline=950)
    state.engine.dispose()
    server.start()
    with server.client() as c:
        r = c.get("/projects/big")
        assert r.status_code == 200
        rows = [int(i) for i in ROW.findall(r.text)]
        assert rows == ids[::-1][:100]                        # newest first, 100 a page
        assert f'<tr class="baseline" data-id="{ids[950]}">' in r.text
        assert "page 1 of 10" in r.text
        assert 'href="/projects/big?metric=coverage.coverage&amp;page=2"' in r.text
        chart = _chart(r.text)
        assert chart["metric"] == "coverage.coverage" and chart["id"] == ids
        assert chart["baseline_id"] == ids[950]
        assert chart["value"][:2] == pytest.approx([0.9, 0.901])
        assert '<th class="n metric-col">outliers.fraction</th>' in r.text
        assert '<td class="n">1.899</td>' in r.text               # the newest's coverage
        r = c.get("/projects/big", params={"page": 2, "metric": "clusters.count"})
        assert [int(i) for i in ROW.findall(r.text)] == ids[::-1][100:200]
        assert 'class="baseline"' not in r.text and "page 2 of 10" in r.text
        assert _chart(r.text)["metric"] == "clusters.count"
        r = c.get("/projects/big", params={"page": 10})
        assert [int(i) for i in ROW.findall(r.text)] == ids[::-1][900:]
        assert 'rel="next"' not in r.text
        r = c.get("/projects/big", params={"page": 99})              # past the end: the last
        assert "page 10 of 10" in r.text
        for bad in ("0", "-1", "x", "1e3", "²"):                          # not a page: the first
            assert "page 1 of 10" in c.get("/projects/big", params={"page": bad}).text
        r = c.get("/projects/big", params={"metric": "no.such"})
        assert "no metric named &#39;no.such&#39;" in r.text
        assert _chart(r.text)["metric"] == "coverage.coverage"
        home = c.get("/").text
        assert '<td class="n">1,000</td>' in home


def _statements(client, engine, url: str) -> int:
    from sqlalchemy import event
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)
    event.listen(engine, "before_cursor_execute", count)
    try:
        r = client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert r.status_code in (200, 409), (url, r.text[:300])   # 409: seeded, no store
    return len(seen)


def test_sql_statements_per_page_do_not_grow_with_audits(tmp_path):
    """In-process (a real app and SQLite database, counted at the engine): the same
    statements for a page whether the project has 5 audits or 600."""
    from starlette.testclient import TestClient

    from audit.service.app import create_app
    from audit.service.settings import ServeSettings

    app = create_app(ServeSettings(home=tmp_path / "home", workers=0))
    state = app.state.service
    client = TestClient(app)

    def counts(ids: list[int]) -> dict[str, int]:
        pages = {"projects": "/", "history": "/projects/p",
                 "history metric": "/projects/p?metric=clusters.count",
                 "history page 2": "/projects/p?page=2", "audit": f"/audits/{ids[-1]}",
                 "jobs": "/jobs", "compare": f"/compare?baseline={ids[0]}&candidate={ids[-1]}"}
        return {k: _statements(client, state.engine, u) for k, u in pages.items()}

    few = seed_audits(state, "p", 5, baseline=1)
    seed_audits(state, "q", 2)
    seed_jobs(state, "p", [{"status": "failed"}] * 3)
    small = counts(few)
    many = few + seed_audits(state, "p", 600)
    seed_jobs(state, "p", [{"status": "succeeded"}] * 150)
    large = counts(many)
    assert large == small
    assert max(large.values()) <= 8, large
    state.engine.dispose()


def test_login_when_reads_need_a_token(tmp_path):
    """Off loopback reads need a token: pages send people to /login, which checks the
    token and keeps it in an HttpOnly SameSite=Strict cookie. In-process: the address is
    only read for the rule, so no socket is opened on a public interface."""
    from starlette.testclient import TestClient

    from audit.service.app import create_app
    from audit.service.auth import create_token
    from audit.service.settings import ServeSettings

    app = create_app(ServeSettings(home=tmp_path / "home", host="0.0.0.0", workers=0))
    state = app.state.service
    assert not state.settings.reads_open
    ids = seed_audits(state, "p", 2)
    with state.session() as s:
        token = create_token(s, "p")
    c = TestClient(app, follow_redirects=False)
    for url in ("/", "/projects/p?page=1", f"/audits/{ids[0]}", "/jobs"):
        r = c.get(url)
        assert r.status_code == 303, url
        assert r.headers["location"].startswith("/login?next=%2F"), r.headers["location"]
    assert c.get("/").headers["location"] == "/login?next=%2F"
    r = c.get("/login", params={"next": "/jobs"})
    assert r.status_code == 200 and 'name="next" value="/jobs"' in r.text
    _secure(r)
    r = c.post("/login", data={"token": "la_wrong", "next": "/jobs"})
    assert r.status_code == 401 and "That token is not valid" in r.text
    assert "set-cookie" not in r.headers
    r = c.post("/login", data={"token": token, "next": "/jobs"})
    assert r.status_code == 303 and r.headers["location"] == "/jobs"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"latent_audit_token={token};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Path=/" in cookie
    r = c.get("/jobs")
    assert r.status_code == 200 and "Sign out" in r.text
    assert c.get(f"/audits/{ids[0]}").status_code == 200
    # only paths of this site are followed after signing in
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil"):
        r = c.post("/login", data={"token": token, "next": target})
        assert r.headers["location"] == "/", target
    r = c.get("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert 'latent_audit_token=""' in r.headers["set-cookie"] or \
        "Max-Age=0" in r.headers["set-cookie"]
    c.cookies.clear()
    assert c.get("/").status_code == 303
    state.engine.dispose()
