"""Renderers over ``AuditResult``: the HTML report, the pull-request summary and the
per-sample table; ``prepare`` builds what the report draws besides the check results."""
from .html import render_html
from .markdown import render_summary
from .per_sample import write_per_sample

__all__ = ["render_html", "render_summary", "write_per_sample"]
