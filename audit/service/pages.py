"""The web UI: server-rendered pages over the service's database.

``/`` projects, ``/projects/{project}`` a project's history (paginated table and a plotly
trend chart of any metric), ``/audits/{id}`` one audit with its report, ``/compare`` any
two audits, ``/jobs`` the job queue, ``/login`` and ``/logout``.

Pages read the database through the models with a fixed number of queries per page,
whatever the number of audits (the queries are the ``_q_*`` functions below; routes only
call them and render). Templates are Jinja2 with autoescape on. Every page carries a CSP
that allows only this origin, so all page code lives in ``static/`` (no inline script, no
style attributes); plotly.js is served from the installed plotly package. Reports are never
inlined here: they load in ``<iframe sandbox="allow-scripts">`` from the raw report routes,
which send their own CSP.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .auth import find_token
from .db import JOB_ACTIVE, Audit, Job, MetricValue, Project
from .deps import get_session, get_state, require_read
from .state import ServiceState

log = logging.getLogger("audit")

__all__ = ["COOKIE", "CSP", "KEY_METRICS", "PAGE_SIZE", "plotly_css", "router"]

#: every page: only this origin (all script in /static), reports only in sandboxed frames
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'self'")
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}
#: the browser's token, set by /login (deps.bearer reads it)
COOKIE = "latent_audit_token"
PAGE_SIZE = 100
#: metrics shown as columns of a history, those a project has, in this order
KEY_METRICS = ("coverage.coverage", "outliers.fraction", "clusters.count",
               "duplicates.within_fraction")
DEFAULT_METRIC = "coverage.coverage"
#: seconds between reloads of /jobs while a job is active
JOBS_REFRESH_S = 5

_HERE = Path(__file__).parent
_STATIC = _HERE / "static"
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(css|js)$")
_DIGITS = re.compile(r"[0-9]+")
_MEDIA = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8"}

router = APIRouter(include_in_schema=False)


# ---------------------------------------------------------------------------- rendering

def _num(value: Any) -> str:
    """A metric or count for a table cell: integers with separators, floats to 4 digits."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) < 1e-3 or abs(value) >= 1e6:
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _when(value: datetime | None) -> str:
    value = _utc(value)
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "–"


def _size(n: int | None) -> str:
    size, unit = float(n or 0), "B"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"


def _page_number(raw: str | None) -> int:
    """``?page=`` as a page number; anything else is the first page."""
    return max(int(raw), 1) if raw and _DIGITS.fullmatch(raw) and len(raw) < 9 else 1


def _seg(value: Any) -> str:
    """``value`` quoted as one URL path segment or query value."""
    return quote(str(value), safe="")


def _verdict_class(verdict: str | None) -> str:
    """A CSS class for a verdict badge; anything unexpected is neutral."""
    return verdict if verdict in ("pass", "fail", "error", "warn") else "none"


@lru_cache(maxsize=1)
def _env() -> Environment:
    from importlib.metadata import version
    env = Environment(loader=FileSystemLoader(str(_HERE / "templates")), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_num, when=_when, size=_size, seg=_seg, verdict_class=_verdict_class)
    env.globals.update(app_version=version("latent-audit"))
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "allow_nan": False}
    return env


def _page(request: Request, template: str, code: int = 200, **ctx: Any) -> HTMLResponse:
    """``template`` rendered with ``ctx``, sent with the page security headers."""
    html = _env().get_template(template).render(
        request_path=request.url.path, signed_in=COOKIE in request.cookies, **ctx)
    return HTMLResponse(html, status_code=code, headers=_HEADERS)


def _error(request: Request, code: int, title: str, message: str) -> HTMLResponse:
    return _page(request, "error.html.j2", code, title=title, message=message)


def _redirect(url: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(url, status_code=status, headers=_HEADERS)


def _local_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else ``/`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# --------------------------------------------------------------------------------- auth

def reader(request: Request, state: ServiceState = Depends(get_state),
           session: Session = Depends(get_session)) -> None:
    """``deps.require_read``, but a person without a token is sent to /login."""
    try:
        require_read(request, state, session)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "sign in to read: /login",
                            headers={"Location": "/login?" + urlencode({"next": target}),
                                     **_HEADERS}) from None


# ------------------------------------------------------------------------------ queries

def _q_projects(session: Session) -> list[dict[str, Any]]:
    """Every project with its audit count, latest audit, baseline and last activity.

    Four queries in all: projects, audit aggregates, job aggregates, the latest and
    baseline audits.
    """
    projects = session.scalars(select(Project).order_by(Project.name)).all()
    agg = {pid: (count, latest, last) for pid, count, latest, last in session.execute(
        select(Audit.project_id, func.count(Audit.id), func.max(Audit.id),
               func.max(Audit.created)).group_by(Audit.project_id))}
    jobs = dict(session.execute(select(Job.project_id, func.max(Job.created))
                                .group_by(Job.project_id)).all())
    wanted = {a[1] for a in agg.values()} | {p.baseline_audit_id for p in projects
                                              if p.baseline_audit_id is not None}
    audits = {a.id: a for a in session.scalars(select(Audit).where(Audit.id.in_(wanted)))} \
        if wanted else {}
    rows = []
    for p in projects:
        count, latest_id, last_audit = agg.get(p.id, (0, None, None))
        times = [t for t in (_utc(p.created), _utc(last_audit), _utc(jobs.get(p.id))) if t]
        rows.append({"project": p, "count": count, "latest": audits.get(latest_id),
                     "baseline": audits.get(p.baseline_audit_id),
                     "last_activity": max(times) if times else None})
    return rows


def _q_project(session: Session, name: str) -> Project | None:
    return session.scalar(select(Project).where(Project.name == name))


def _q_metric_names(session: Session, project_id: int) -> list[str]:
    return list(session.scalars(select(MetricValue.name).where(
        MetricValue.project_id == project_id).distinct().order_by(MetricValue.name)))


def _q_history(session: Session, project: Project, page: int, metric: str | None,
               key_metrics: Sequence[str]) -> dict[str, Any]:
    """One page of a project's audits (newest first), their key metrics, the chart series.

    A fixed number of queries: the count, the page's rows, their metric values (one
    ``IN`` query), the baseline row, and the chart's series (one join).
    """
    total = session.scalar(select(func.count(Audit.id)).where(Audit.project_id == project.id))
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(page, 1), pages)
    audits = session.scalars(select(Audit).where(Audit.project_id == project.id)
                             .order_by(Audit.id.desc()).offset((page - 1) * PAGE_SIZE)
                             .limit(PAGE_SIZE)).all()
    values: dict[int, dict[str, float | None]] = {a.id: {} for a in audits}
    if audits and key_metrics:
        for audit_id, name, value in session.execute(
                select(MetricValue.audit_id, MetricValue.name, MetricValue.value).where(
                    MetricValue.audit_id.in_(list(values)),
                    MetricValue.name.in_(list(key_metrics)))):
            values[audit_id][name] = _finite(value)
    baseline = session.scalar(select(Audit).where(Audit.id == project.baseline_audit_id)) \
        if project.baseline_audit_id is not None else None
    series: dict[str, list[Any]] = {"id": [], "version": [], "created": [], "value": [],
                                    "verdict": []}
    if metric:
        for audit_id, version, created, verdict, value in session.execute(
                select(Audit.id, Audit.version, Audit.created, Audit.release_verdict,
                       MetricValue.value)
                .join(MetricValue, MetricValue.audit_id == Audit.id)
                .where(MetricValue.project_id == project.id, MetricValue.name == metric,
                       Audit.project_id == project.id)
                .order_by(Audit.id)):
            series["id"].append(audit_id)
            series["version"].append(version)
            series["created"].append(_utc(created).strftime("%Y-%m-%d %H:%M:%S"))
            series["verdict"].append(verdict)
            series["value"].append(_finite(value))
    return {"total": total, "page": page, "pages": pages, "audits": audits,
            "values": values, "baseline": baseline, "series": series}


def _q_audit(session: Session, audit_id: int) -> tuple[Audit, Project] | None:
    row = session.execute(select(Audit, Project).join(Project, Project.id == Audit.project_id)
                          .where(Audit.id == audit_id)).first()
    return (row[0], row[1]) if row else None


def _q_audit_metrics(session: Session, audit_id: int) -> list[tuple[str, float | None]]:
    return [(name, _finite(value)) for name, value in session.execute(
        select(MetricValue.name, MetricValue.value).where(MetricValue.audit_id == audit_id)
        .order_by(MetricValue.name))]


def _q_jobs(session: Session, page: int, project: str | None,
            status: str | None) -> dict[str, Any]:
    """A page of jobs, newest first, with their project names; whether any is active."""
    where = []
    if project:
        where.append(Project.name == project)
    if status:
        where.append(Job.status == status)
    total = session.scalar(select(func.count(Job.id)).join(Project, Project.id == Job.project_id)
                           .where(*where))
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = session.execute(select(Job, Project.name).join(Project, Project.id == Job.project_id)
                           .where(*where).order_by(Job.id.desc())
                           .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    active = session.scalar(select(Job.id).where(Job.status.in_(JOB_ACTIVE)).limit(1))
    return {"jobs": [(job, name) for job, name in rows], "total": total, "page": page,
            "pages": pages, "active": active is not None}


def _pick_metric(names: list[str], asked: str | None) -> tuple[str | None, str, list[str]]:
    """(the metric to chart, a notice when ``asked`` is not one of ``names``, the metric
    columns of the table: the key metrics the project has, and the charted one)."""
    known = set(names)
    notice = ""
    if asked and asked not in known:
        notice = f"This project has no metric named {asked!r}; showing another."
        asked = None
    metric = asked or (DEFAULT_METRIC if DEFAULT_METRIC in known else
                       next((m for m in KEY_METRICS if m in known), names[0] if names else None))
    columns = [m for m in KEY_METRICS if m in known]
    if metric and metric not in columns:
        columns.append(metric)
    return metric, notice, columns


# ------------------------------------------------------------------------------- routes

@router.get("/", response_class=HTMLResponse, dependencies=[Depends(reader)])
def projects_page(request: Request, session: Session = Depends(get_session)) -> Response:
    return _page(request, "projects.html.j2", rows=_q_projects(session))


@router.get("/projects/{project}", response_class=HTMLResponse, dependencies=[Depends(reader)])
def history_page(request: Request, project: str, page: str | None = None,
                 metric: str | None = None,
                 session: Session = Depends(get_session)) -> Response:
    row = _q_project(session, project)
    if row is None:
        return _error(request, 404, "No such project", f"There is no project named {project!r}.")
    names = _q_metric_names(session, row.id)
    metric, notice, columns = _pick_metric(names, metric)
    h = _q_history(session, row, _page_number(page), metric, columns)
    chart = {"metric": metric, "baseline_id": row.baseline_audit_id, **h.pop("series")}
    return _page(request, "history.html.j2", project=row, names=names, metric=metric,
                 notice=notice, columns=columns, chart=chart,
                 style_guards=_plotly_assets()[1], **h)


@router.get("/audits/{audit_id}", response_class=HTMLResponse, dependencies=[Depends(reader)])
def audit_page(request: Request, audit_id: int,
               session: Session = Depends(get_session)) -> Response:
    found = _q_audit(session, audit_id)
    if found is None:
        return _error(request, 404, "No such audit", f"There is no audit {audit_id}.")
    audit, project = found
    files = [f for f in (audit.files or []) if isinstance(f, str)]
    return _page(request, "audit.html.j2", audit=audit, project=project,
                 is_baseline=project.baseline_audit_id == audit.id,
                 downloads=[f for f in files if "/" not in f],
                 folder_files=sum("/" in f for f in files),
                 has_report="report.html" in files,
                 metrics=_q_audit_metrics(session, audit_id))


def _audit_id(raw: str | None) -> int | None:
    """A query value as an audit id, or None when it is not one."""
    raw = (raw or "").strip()
    return int(raw) if _DIGITS.fullmatch(raw) and len(raw) < 19 else None


@router.get("/compare", response_class=HTMLResponse, dependencies=[Depends(reader)])
def compare_page(request: Request, baseline: str | None = None, candidate: str | None = None,
                 pick: list[str] = Query([]),
                 session: Session = Depends(get_session)) -> Response:
    if pick and baseline is None and candidate is None:
        ids = [_audit_id(p) for p in pick]
        if len(ids) != 2 or None in ids or ids[0] == ids[1]:
            return _error(request, 400, "Pick two audits",
                          "Tick exactly two audits of the history to compare them.")
        older, newer = sorted(ids)
        return _redirect("/compare?" + urlencode({"baseline": older, "candidate": newer}))
    ids = {"baseline": _audit_id(baseline),
           "candidate": _audit_id(candidate)}
    for field, value in ids.items():
        if value is None:
            return _error(request, 400, "Pick two audits",
                          f"{field} must be an audit id: /compare?baseline=ID&candidate=ID.")
    sides = {}
    for field, value in ids.items():
        found = _q_audit(session, value)
        if found is None:
            return _error(request, 404, "No such audit",
                          f"There is no audit {value} (the {field}).")
        sides[field] = found
    missing = [f"{field} (audit {a.id})" for field, (a, _) in sides.items() if not a.has_store]
    return _page(request, "compare.html.j2", 409 if missing else 200, base=sides["baseline"],
                 cand=sides["candidate"], missing=missing,
                 report_url="/compare/report?" + urlencode(
                     {"baseline": ids["baseline"], "candidate": ids["candidate"]}))


@router.get("/jobs", response_class=HTMLResponse, dependencies=[Depends(reader)])
def jobs_page(request: Request, page: str | None = None, project: str | None = None,
              status: str | None = None,
              session: Session = Depends(get_session)) -> Response:
    j = _q_jobs(session, _page_number(page), project or None, status or None)
    return _page(request, "jobs.html.j2", refresh=JOBS_REFRESH_S if j["active"] else 0,
                 project=project or "", status=status or "", **j)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    return _page(request, "login.html.j2", next=_local_next(next), failed=False)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: str = Form(""), next: str = Form("/"),
          session: Session = Depends(get_session)) -> Response:
    """Check the token and keep it in an HttpOnly, SameSite=Strict cookie."""
    token = token.strip()
    if find_token(session, token) is None:
        return _page(request, "login.html.j2", 401, next=_local_next(next), failed=True)
    response = _redirect(_local_next(next))
    response.set_cookie(COOKIE, token, max_age=30 * 24 * 3600, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.api_route("/logout", methods=["GET", "POST"])
def logout() -> Response:
    response = _redirect("/login")
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@lru_cache(maxsize=1)
def _plotly_js() -> Path | None:
    """plotly.js as bundled by the installed plotly package (never copied, never a CDN)."""
    try:
        path = Path(str(resources.files("plotly").joinpath("package_data", "plotly.min.js")))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


#: plotly.js keeps its stylesheet as a map of rules it injects in a <style> element, which
#: a strict CSP refuses; it skips that when #plotly.js-style-global has the class
#: no-inline-styles, so the pages link the rules, read out of the bundle, as a stylesheet
_PLOTLY_RULES = re.compile(r'([\w$]+)=\{([^{}]*)\};for\(([\w$]+) in \1\)[\w$]+=\3'
                           r'\.replace\(/\^,/,')
_RULE = re.compile(r'(?:"([^"]*)"|\'([^\']*)\'|([A-Za-z_$][\w$]*))\s*:\s*'
                   r'(?:"([^"]*)"|\'([^\']*)\')\s*(?:,|$)')
#: bundled libraries (maplibre) add their <style> on load unless an element with its id
#: exists; the pages put an inert <template> with each id (their maps are not used here)
_STYLE_GUARD = re.compile(r'if\(!document\.getElementById\("([0-9A-Za-z_-]{8,})"\)\)\{'
                          r'var ([\w$]+)=document\.createElement\("style"\)')
#: when the bundle's rules cannot be found: enough for a chart to lay out
_PLOTLY_FALLBACK = (".js-plotly-plot .plotly .main-svg{position:absolute;top:0;left:0;"
                    "pointer-events:none}\n.js-plotly-plot .plotly .main-svg .draglayer"
                    "{pointer-events:all}\n.js-plotly-plot .plotly .modebar{position:absolute;"
                    "top:2px;right:2px}\n")


def plotly_css(js: str) -> str:
    """plotly.js's own stylesheet, read out of its bundle (the fallback when not found)."""
    found = _PLOTLY_RULES.search(js)
    if not found:
        log.warning("plotly.js: its style rules were not found in the bundle; "
                    "charts get a minimal stylesheet")
        return _PLOTLY_FALLBACK
    rules = []
    for m in _RULE.finditer(found.group(2)):
        key = next(g for g in m.groups()[:3] if g is not None)
        value = m.group(4) if m.group(4) is not None else m.group(5)
        selector = re.sub(r"^,", " ,", key).replace("X", ".js-plotly-plot .plotly") \
            .replace("Y", ".plotly-notifier")
        rules.append(f"{selector}{{{value}}}")
    return "\n".join(rules) + "\n" if rules else _PLOTLY_FALLBACK


@lru_cache(maxsize=1)
def _plotly_assets() -> tuple[str, tuple[str, ...]]:
    """(plotly.js's stylesheet, the ids of the <style> elements its bundle adds on load)."""
    path = _plotly_js()
    if path is None:
        return _PLOTLY_FALLBACK, ()
    js = path.read_text("utf-8")
    return plotly_css(js), tuple(dict.fromkeys(m.group(1) for m in _STYLE_GUARD.finditer(js)))


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The UI's own CSS and JS, and plotly.js from the plotly package."""
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600"}
    if name == "plotly.css":
        return Response(_plotly_assets()[0], media_type=_MEDIA["css"], headers=headers)
    if name == "plotly.min.js":
        path = _plotly_js()
    else:
        path = _STATIC / name if _STATIC_NAME.match(name) else None
    if path is None or not path.is_file():
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(path, media_type=_MEDIA[name.rsplit(".", 1)[1]], headers=headers)
