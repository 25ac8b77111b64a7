"""``hotswap report``: gather every results JSON into one HTML page and one Markdown file (and a screenshot).

``--markdown PATH`` writes the docs site's results page instead: deterministic Markdown, its PNGs copied next to it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hotswap.errors import HotswapError
from hotswap_harness.report import build_docs_page, build_report
from hotswap_harness.report import screenshot as take_screenshot

console = Console()


def report(
    results: Path = typer.Option(Path("results"), help="folder holding the experiments' *.json and *.png"),
    out: Path = typer.Option(Path("results/report"), help="folder for report.html and report.md"),
    screenshot: Path | None = typer.Option(None, help="PNG of the page rendered by headless Chromium"),
    markdown: Path | None = typer.Option(
        None, help="write only the docs site's results page here (no timestamp; its PNGs go to img/results/ "
                   "beside it), instead of OUT/report.html and OUT/report.md"),
) -> None:
    """Write OUT/report.html (self-contained: images embedded, mail it as is) and OUT/report.md from RESULTS.

    Example: hotswap report --screenshot docs/report.png; for the docs site: hotswap report --markdown docs/results.md
    """
    if markdown is not None:
        _docs_page(results, markdown)
        return
    try:
        built = build_report(results, out)
    except HotswapError as e:
        console.print(f"[red]error[/]: {e}")
        raise typer.Exit(1) from e
    table = Table(title=f"report of {results}", show_lines=False)
    table.add_column("file")
    table.add_column("section")
    for item in built["included"]:
        table.add_row(item["file"], item["title"])
    console.print(table)
    for item in built["skipped"]:
        console.print(f"[yellow]not included[/] {item['file']}: {item['reason']}")
    for warning in built["warnings"]:
        console.print(f"[yellow]warning[/]: {warning}")
    console.print(f"wrote [bold]{built['html']}[/] and [bold]{built['markdown']}[/] "
                  f"({len(built['included'])} sections, {len(built['skipped'])} left out)")
    if screenshot is not None:
        try:
            take_screenshot(built["html"], screenshot)
        except HotswapError as e:
            console.print(f"[red]screenshot failed[/]: {e}")
            raise typer.Exit(1) from e
        console.print(f"wrote [bold]{screenshot}[/]")


def _docs_page(results: Path, page: Path) -> None:
    try:
        built = build_docs_page(results, page)
    except HotswapError as e:
        console.print(f"[red]error[/]: {e}")
        raise typer.Exit(1) from e
    for item in built["skipped"]:
        console.print(f"[yellow]not included[/] {item['file']}: {item['reason']}")
    for warning in built["warnings"]:
        console.print(f"[yellow]warning[/]: {warning}")
    changed, removed = len(built["changed"]), len(built["removed"])
    console.print(f"wrote [bold]{page}[/] ({len(built['included'])} sections, {len(built['images'])} images; "
                  f"{changed} files changed, {removed} stale images removed)")
