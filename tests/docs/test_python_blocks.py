"""Every ```python block of the docs runs, as written.

Convention (also in docs/design.md, "Writing docs"): the python blocks of one page run in order, in one shared
namespace, in a fresh temporary working folder; one test per page. A page holding the HTML comment
``<!-- docs-test: realmodel -->`` gets the ``realmodel`` marker (its blocks load minilm / mpnet); any other page
must run in a few seconds (the bundled ``static`` model, numpy, synthetic arrays). Output to read, not run, goes
in ```text or ```console blocks, shell commands in ```bash blocks: neither is run. Some pages get extra checks
after their blocks ran (:data:`CHECKS`: the files they wrote, what they printed).
"""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
REALMODEL = "<!-- docs-test: realmodel -->"
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M)
FAST_PAGE_S = 30.0  # a page without the realmodel comment must stay quick; a few seconds is the aim


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line, code)`` of every python block of a page, in order (indented blocks, e.g. in an admonition, too)."""
    return [(text.count("\n", 0, m.start()) + 2, textwrap.dedent(m.group("body"))) for m in FENCE.finditer(text)]


def _pages() -> list:
    params = []
    for path in sorted(DOCS.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        if not python_blocks(text):
            continue
        rel = path.relative_to(DOCS).as_posix()
        marks = [pytest.mark.realmodel] if REALMODEL in text else []
        params.append(pytest.param(rel, marks=marks, id=rel))
    return params


def _check_getting_started(out: str, cwd: Path, ns: dict) -> None:
    """The quick starts: what each wrote and printed (they continue one another in this page)."""
    # quick start: the old index, the adapter, an evaluation of the adapted search
    assert (cwd / "indexes" / "old" / "manifest.json").is_file()
    assert (cwd / "adapters" / "procrustes" / "adapter.json").is_file()
    assert "ndcg@10" in out
    # online backfill: half the gallery re-embedded, then paused
    assert "{'old': 500, 'new': 500}" in out and "state='paused'" in out
    assert (cwd / "indexes" / "upgrade" / "upgrade.json").is_file()
    # cascade search: the 50 candidates it encoded were written back as one atomic batch
    assert "{'old': 950, 'new': 50}" in out
    assert len(list((cwd / "indexes" / "cascade" / "new").glob("seg-*.ids.json"))) == 1
    # the search service: an upgrade backfilled, committed, then searched by the new model
    assert "complete minilm@" in out and "'mode': 'old'" in out
    assert (cwd / "collections" / "debian" / "serving.json").is_file()
    # the backward-compatible image model
    cross, old_alone = (float(out.split(tag)[1].split()[0].rstrip(",)")) for tag in ("cross-test top-1 ", "alone "))
    assert 0.0 <= cross <= 1.0 and old_alone > 0.3
    assert (cwd / "indexes" / "images" / "manifest.json").is_file()


CHECKS: dict[str, Callable[[str, Path, dict], None]] = {"getting-started.md": _check_getting_started}


def test_pages_with_checks_have_python_blocks():
    for rel in CHECKS:
        assert python_blocks((DOCS / rel).read_text(encoding="utf-8")), f"docs/{rel} has no python block left"


@pytest.mark.parametrize("page", _pages())
def test_python_blocks_run(page, tmp_path, monkeypatch, capsys):
    text = (DOCS / page).read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    start = time.perf_counter()
    for line, code in python_blocks(text):
        exec(compile(code, f"docs/{page}, block at line {line}", "exec"), namespace)
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    if page in CHECKS:
        CHECKS[page](out, tmp_path, namespace)
    if REALMODEL not in text:
        assert elapsed < FAST_PAGE_S, (f"docs/{page} took {elapsed:.0f} s: mark it with {REALMODEL} or make its "
                                       "blocks lighter")
