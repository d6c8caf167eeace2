"""report.html: one self-contained, offline file (plotly.js embedded once)."""
from __future__ import annotations

import base64
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import DictLoader, Environment, select_autoescape

from ..findings import SEVERITY_RANK, AuditResult, jsonable
from ..io import write_text_atomic


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs
    return get_plotlyjs()


def _asset(name: str) -> str:
    return resources.files("audit.report").joinpath("assets", name).read_text("utf-8")


def _assets_in(folder: str, suffix: str) -> dict[str, str]:
    base = resources.files("audit.report").joinpath("assets", folder)
    return {p.name: p.read_text("utf-8") for p in sorted(base.iterdir(), key=lambda p: p.name)
            if p.name.endswith(suffix)}


def safe_json(data: Any) -> str:
    """JSON that can sit inside a <script> element: no '<', '>', '&' or line separators."""
    s = json.dumps(jsonable(data), allow_nan=False, separators=(",", ":"))
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                 ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        s = s.replace(a, b)
    return s


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.{digits}e}"
        return f"{v:.{digits}g}"
    return str(v)


def _pval(v: Any) -> str:
    """A p-value for the page: never ``0`` (below the smallest double it reads ``< 1e-300``)."""
    if v is None:
        return "–"
    v = float(v)
    if v != v:
        return "–"
    if v < 1e-300:
        return "< 1e-300"
    return f"{v:.2e}" if v < 1e-3 else f"{v:.2g}"


def figure_plan(result: AuditResult) -> list[dict[str, str]]:
    """The figures the report draws, in order (also used by tests to count them)."""
    figs = [{"id": "fig-map", "kind": "map", "check": ""}]
    for c in result.checks:
        if c.status != "ok":
            continue
        for k, spec in enumerate(c.display):
            figs.append({**spec, "id": f"fig-{c.check}-{k}", "check": c.check})
    return figs


_DTYPES = {"f": ("f32", "<f4"), "i": ("i32", "<i4"), "u": ("u32", "<u4"), "b": ("u8", "u1")}


def pack_array(arr: Any) -> dict[str, Any]:
    """A numeric array as a base64 little-endian typed array: float32, uint32, uint8 for
    bools, integers in the narrowest of int8/16/32. About 5.3 bytes a float in the page
    instead of 8–12 as JSON text; ``report.js`` turns it back into a JavaScript typed
    array (``unpack``)."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        name, dt = "u8", "u1"
    elif arr.dtype.kind == "i" and arr.size:      # the narrowest signed type that holds it
        lo, hi = int(arr.min()), int(arr.max())
        fits = [(nm, t) for nm, t, b in (("i8", "i1", 7), ("i16", "<i2", 15), ("i32", "<i4", 31))
                if -2 ** b <= lo and hi < 2 ** b]
        name, dt = fits[0] if fits else ("f32", "<f4")
    else:
        name, dt = _DTYPES[arr.dtype.kind if arr.dtype.kind in _DTYPES else "f"]
    flat = np.ascontiguousarray(arr, dtype=dt).reshape(-1)
    return {"$packed": name, "shape": list(arr.shape),
            "b64": base64.b64encode(flat.tobytes()).decode("ascii")}


def _points_payload(points: dict[str, Any]) -> dict[str, Any]:
    """The per-point data with every array packed (``pack_array``)."""
    if not points:
        return points
    out = dict(points)
    for key in ("x", "y"):
        out[key] = pack_array(np.asarray(points[key], dtype=np.float32))
    out["columns"] = {k: pack_array(v) for k, v in points.get("columns", {}).items()}
    meta = {}
    for c, m in points.get("metadata", {}).items():
        if m["kind"] == "numeric":
            meta[c] = {"kind": "numeric", "values": pack_array(
                np.asarray(m["values"], dtype=np.float32))}
        else:
            meta[c] = {"kind": "categorical", "categories": list(m["categories"]),
                       "codes": pack_array(np.asarray(m["codes"], dtype=np.int32))}
    out["metadata"] = meta
    if points.get("density"):
        out["density"] = {**points["density"],
                          "counts": pack_array(np.asarray(points["density"]["counts"],
                                                          dtype=np.uint32))}
    return out


def _payload(result: AuditResult, figures: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "run": {k: result.run[k] for k in ("name", "n", "dim")},
        "points": _points_payload(result.points),
        "thumbnails": result.thumbnails,
        "figures": figures,
        "checks": {c.check: {"tables": c.tables, "metrics": c.metrics}
                   for c in result.checks if c.status == "ok"},
        "findings": [{"id": f.id, "evidence_ids": list(f.evidence_ids)}
                     for f in result.findings],
    }


def render_html(result: AuditResult, path: Path) -> Path:
    """Write the interactive report for ``result`` to ``path`` (atomically)."""
    sections = _assets_in("sections", ".html.j2")
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True,
                      loader=DictLoader({f"sections/{k}": v for k, v in sections.items()}))
    env.filters["fmt"] = _fmt
    env.filters["pval"] = _pval
    template = env.from_string(_asset("report.html.j2"))
    figures = figure_plan(result)
    findings = result.findings
    by_check: dict[str, list] = {}
    for f in findings:
        by_check.setdefault(f.check, []).append(f)
    flagged = [f for f in findings if f.severity != "info"]
    html = template.render(
        r=result, run=result.run, metrics=result.metrics, geometry=result.geometry,
        findings=findings, flagged=flagged, by_check=by_check, figures=figures,
        severity_rank=SEVERITY_RANK, checks=result.checks,
        css=_asset("report.css"), js=_asset("report.js"), plotly_js=_plotly_js(),
        figure_js=[(name.removesuffix(".js"), src)
                   for name, src in _assets_in("figures", ".js").items()],
        payload=safe_json(_payload(result, figures)),
    )
    write_text_atomic(Path(path), html)
    return Path(path)
