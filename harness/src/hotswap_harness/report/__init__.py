"""``hotswap report``: every results JSON gathered into one self-contained HTML page and one Markdown file.

- :mod:`~hotswap_harness.report.sections`: one builder per results file, JSON -> :class:`Section` (tables, notes, PNG);
- :mod:`~hotswap_harness.report.render`: sections -> HTML (inline CSS, PNGs as data URIs) and Markdown;
- :mod:`~hotswap_harness.report.build`: :func:`build_report` finds the files and writes both, atomically;
- :mod:`~hotswap_harness.report.docs_page`: :func:`build_docs_page`, the docs site's deterministic results page;
- :mod:`~hotswap_harness.report.screenshot`: a PNG of the page by headless Chromium.
"""

from __future__ import annotations

from hotswap_harness.report.build import build_report, collect_sections
from hotswap_harness.report.docs_page import build_docs_page
from hotswap_harness.report.render import render_html, render_markdown
from hotswap_harness.report.screenshot import ChromiumError, screenshot
from hotswap_harness.report.sections import EXPECTED, ReportError, Section, Skipped, Table

__all__ = ["EXPECTED", "ChromiumError", "ReportError", "Section", "Skipped", "Table", "build_docs_page",
           "build_report", "collect_sections", "render_html", "render_markdown", "screenshot"]
