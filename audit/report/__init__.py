"""Renderers over ``AuditResult``: the HTML report, the pull-request summary and the
per-sample table; ``prepare`` builds what the report draws besides the check results."""
from pathlib import Path

from .compare_html import render_comparison_html
from .compare_markdown import render_comparison_summary
from .html import render_html
from .markdown import render_summary
from .per_sample import write_per_sample

__all__ = ["render_comparison_html", "render_comparison_summary", "render_html",
           "render_summary", "write_comparison", "write_per_sample"]


def write_comparison(doc: dict, points: dict, folder: Path, *,
                     report_name: str = "report.html",
                     summary_name: str = "summary.md") -> dict[str, Path]:
    """A comparison's files into ``folder`` (which exists): ``comparison.json``, its
    report and its summary. ``compare`` names them report.html and summary.md; a run with
    ``baseline:`` names them comparison.html and comparison.md beside its own report.
    Atomicity is the caller's (write into a staging folder)."""
    import json
    folder = Path(folder)
    paths = {"comparison": folder / "comparison.json", "report": folder / report_name,
             "summary": folder / summary_name}
    paths["comparison"].write_text(json.dumps(doc, indent=2, allow_nan=False),
                                   encoding="utf-8")
    md = render_comparison_summary(doc).replace("Full report: `report.html`",
                                                f"Full report: `{report_name}`")
    paths["summary"].write_text(md, encoding="utf-8")
    render_comparison_html(doc, points, paths["report"])
    return paths
