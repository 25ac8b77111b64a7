"""``docs/results.md`` and its images are exactly what ``hotswap report --markdown docs/results.md`` writes from the
committed ``results/`` folder: nobody edited the page by hand, and nobody forgot to regenerate it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotswap.cli import app
from hotswap_harness.report.docs_page import IMAGE_DIR, build_docs_page

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "results.md"
RESULTS = ROOT / "results"
FIX = "run: hotswap report --markdown docs/results.md (and commit docs/results.md and docs/img/results/)"

pytestmark = pytest.mark.skipif(not any(RESULTS.glob("*.json")), reason="no results/ JSONs in this checkout")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))} if folder.is_dir() else {}


def test_committed_page_is_what_the_command_writes(tmp_path):
    built = build_docs_page(RESULTS, tmp_path / "results.md", page_label="docs/results.md")
    assert PAGE.is_file(), f"docs/results.md is missing; {FIX}"
    assert PAGE.read_text(encoding="utf-8") == built["markdown"].read_text(encoding="utf-8"), \
        f"docs/results.md differs from what the results/ folder gives; {FIX}"
    ours, committed = _files(tmp_path / IMAGE_DIR), _files(PAGE.parent / IMAGE_DIR)
    assert sorted(committed) == sorted(ours), f"docs/img/results/ holds other images than the page shows; {FIX}"
    stale = [name for name in ours if ours[name] != committed[name]]
    assert not stale, f"docs/img/results/ images differ from results/: {stale}; {FIX}"


def test_page_is_deterministic_and_rewrites_only_what_changed(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results, ignore=shutil.ignore_patterns("report"))
    page = tmp_path / "docs" / "results.md"
    first = build_docs_page(results, page)
    text = page.read_text(encoding="utf-8")
    assert first["changed"] and set(first["images"]) <= set(first["changed"])
    assert "UTC" not in text and str(tmp_path) not in text and str(ROOT) not in text
    assert text.splitlines()[1] == "# Results"
    assert "hotswap report --markdown" in text and "do not edit" in text
    for image in first["images"]:  # every image is linked relative to the page, inside its folder
        assert f"]({image.relative_to(page.parent).as_posix()})" in text
    again = build_docs_page(results, page)
    assert again["changed"] == [] and page.read_text(encoding="utf-8") == text
    # a results file gone: its image is removed, the page rewritten; a stray PNG is removed too
    (results / "demo.json").unlink()
    (page.parent / IMAGE_DIR / "stray.png").write_bytes(b"x")
    third = build_docs_page(results, page)
    names = {p.name for p in third["removed"]}
    assert names == {"demo.png", "stray.png"} and page in third["changed"]
    assert "](img/results/demo.png)" not in page.read_text(encoding="utf-8")


def test_cli_writes_the_page(tmp_path):
    out = tmp_path / "site-docs" / "results.md"
    result = CliRunner().invoke(app, ["report", "--results", str(RESULTS), "--markdown", str(out),
                                      "--out", str(tmp_path / "html")])
    assert result.exit_code == 0, result.output
    assert out.is_file() and (out.parent / IMAGE_DIR / "demo.png").is_file()
    assert not (tmp_path / "html").exists()  # --markdown writes the docs page only
    assert "wrote" in result.output
