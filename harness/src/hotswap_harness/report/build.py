"""Gather every results JSON under a folder into ``report.html`` and ``report.md``, written atomically.

Every ``*.json`` under the results folder is read (the output folder excluded). A file the report knows gets its
own section (:func:`all_builders`, keyed by file name); any other JSON gets a generic section
listing its top-level scalar fields. An expected file that is not there yet (:data:`EXPECTED`) is listed as
skipped, and so is a file that is not valid JSON: the report still builds, and the page's "Not included" list
and the returned ``skipped`` entries name the file and the parser's message. ``strict=True`` raises
:class:`ReportError` for such a file instead.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from hotswap.io import atomic_write
from hotswap_harness.experiments.registry import experiments
from hotswap_harness.report.cascade_sections import CASCADE_BUILDERS
from hotswap_harness.report.render import render_html, render_markdown
from hotswap_harness.report.sections import (
    BUILDERS,
    EXPECTED,
    Builder,
    ReportError,
    Section,
    Skipped,
    Source,
    build_section,
    order_key,
)
from hotswap_harness.report.service_sections import SERVICE_BUILDERS


def all_builders() -> dict[str, Builder]:
    """Every section builder by results-file stem: the report's own, the benchmarks', and each registered paper
    protocol's (:mod:`hotswap_harness.experiments.registry`)."""
    builders = {**BUILDERS, **CASCADE_BUILDERS, **SERVICE_BUILDERS}
    for spec in experiments():
        builders.update({Path(key).stem: builder for key, builder in spec.sections.items()})
    return builders


def find_results(results_dir: Path, exclude: Path | None = None) -> list[str]:
    """The keys (paths relative to ``results_dir``) of every JSON below it, hidden files and ``exclude`` left out."""
    root = Path(results_dir).resolve()
    skip = Path(exclude).resolve() if exclude is not None else None
    keys = []
    for path in root.rglob("*.json"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if skip is not None and path.resolve().is_relative_to(skip):
            continue
        keys.append(rel.as_posix())
    return sorted(keys, key=order_key)


def load_results(path: Path) -> object:
    """The parsed JSON, or :class:`ReportError` naming the file and what is wrong with it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: cannot be read ({e})") from e


def collect_sections(results_dir: Path, *, exclude: Path | None = None,
                     strict: bool = False) -> tuple[list[Section], list[Skipped], list[str]]:
    """Sections for every results file, the files skipped (with the reason), and shape warnings."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f"{results_dir}: no such results folder")
    keys, builders = find_results(results_dir, exclude), all_builders()
    sections, skipped, warnings = [], [], []
    for key in EXPECTED:
        if key not in keys:
            skipped.append(Skipped(key, "not written yet"))
    for key in keys:
        path = results_dir / key
        try:
            data = load_results(path)
        except ReportError as e:
            if strict:
                raise
            skipped.append(Skipped(key, str(e)))
            continue
        section, warning = build_section(data, Source(path, key, results_dir.resolve().name), builders)
        sections.append(section)
        if warning:
            warnings.append(warning)
    return sections, skipped, warnings


def build_report(results_dir: Path, out_dir: Path, *, strict: bool = False,
                 title: str = "hotswap results") -> dict:
    """Write ``out_dir/report.html`` (self-contained) and ``out_dir/report.md``; return what went in and what not.

    Returns ``{"html": Path, "markdown": Path, "included": [{"file", "title"}], "skipped": [{"file", "reason"}],
    "warnings": [str]}``. ``strict=True`` raises :class:`ReportError` for a results file that is not valid JSON
    instead of skipping it.
    """
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    sections, skipped, warnings = collect_sections(results_dir, exclude=out_dir, strict=strict)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"{len(sections)} results files from {results_dir}/, gathered {stamp} by 'hotswap report'."
    page = render_html(sections, skipped, title=title, subtitle=subtitle)
    markdown = render_markdown(sections, skipped, out_dir, title=title, subtitle=subtitle)
    html_path = atomic_write(out_dir / "report.html", lambda p: p.write_text(page, encoding="utf-8"))
    md_path = atomic_write(out_dir / "report.md", lambda p: p.write_text(markdown, encoding="utf-8"))
    return {"html": html_path, "markdown": md_path,
            "included": [{"file": s.key, "title": s.title} for s in sections],
            "skipped": [{"file": s.key, "reason": s.reason} for s in skipped],
            "warnings": warnings}
