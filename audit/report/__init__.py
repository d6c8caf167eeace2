"""Renderers over ``AuditResult``: the HTML report and the pull-request summary."""
from .html import render_html
from .markdown import render_summary

__all__ = ["render_html", "render_summary"]
