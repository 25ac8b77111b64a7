"""Links in the docs stay inside the repository, except to papers and public projects; no issue numbers and no
paths outside the repository, in the docs and in README.md."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# papers and public projects only; a subdomain of one of these is allowed too (e.g. docs.python.org)
ALLOWED_DOMAINS = (
    "arxiv.org", "doi.org", "aclanthology.org", "openaccess.thecvf.com", "proceedings.neurips.cc", "openreview.net",
    "papers.nips.cc", "proceedings.mlr.press", "dl.acm.org", "github.com", "pypi.org", "huggingface.co",
    "postgresql.org", "python.org", "pytorch.org", "faiss.ai", "qdrant.tech", "milvus.io", "fastapi.tiangolo.com",
    "sbert.net", "mkdocs.org", "squidfunk.github.io", "mkdocstrings.github.io", "ray.io", "debian.org",
    "prometheus.io",
)
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
BARE_URL = re.compile(r"https?://[^\s)\]>\"'`]+")
ISSUE = re.compile(r"\b(?:issues?|pull requests?|PRs?|tickets?)\s*#?\d+\b|(?<![\w&/#])#\d+\b|/(?:issues|pull)/\d+",
                   re.I)
OUTSIDE = re.compile(r"(?<![\w.])\.\./|(?<![\w.])/(?:work|mnt|home|Users|root)/")


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _allowed(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in ALLOWED_DOMAINS)


def _links(text: str) -> list[str]:
    return LINK.findall(text) + HTML_LINK.findall(text)


def test_there_are_pages():
    assert len(_pages()) >= 10


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_links_resolve_or_go_to_public_projects(page):
    text = page.read_text(encoding="utf-8")
    bad = []
    for url in _links(text) + BARE_URL.findall(text):
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):
            if not _allowed(url):
                bad.append(f"{url}: not a paper or public project site (ALLOWED_DOMAINS)")
            continue
        if parts.scheme or parts.netloc:
            bad.append(f"{url}: only http(s) links to public sites, or relative links inside docs/")
            continue
        if not parts.path:  # an anchor on the same page
            continue
        target = (page.parent / parts.path).resolve()
        if not target.is_relative_to(DOCS.resolve()):
            bad.append(f"{url}: leaves docs/")
        elif not target.is_file():
            bad.append(f"{url}: no such file in docs/")
    assert not bad, f"docs/{page.relative_to(DOCS)}:\n" + "\n".join(bad)


def _without_relative_links(text: str, page: Path) -> str:
    """The text with each relative link that stays inside docs/ removed (those are checked above)."""
    def keep(m: re.Match) -> str:
        url = m.group(1)
        if urlsplit(url).scheme or not url.startswith("../"):
            return m.group(0)
        inside = (page.parent / urlsplit(url).path).resolve().is_relative_to(DOCS.resolve())
        return "" if inside else m.group(0)
    return LINK.sub(keep, text)


@pytest.mark.parametrize("page", _pages() + [ROOT / "README.md"], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_issue_numbers_or_outside_paths(page):
    if not page.is_file():
        pytest.skip(f"{page.name} not written yet")
    text = page.read_text(encoding="utf-8")
    issues = sorted({m.group(0) for m in ISSUE.finditer(text)})
    assert not issues, f"{page.relative_to(ROOT)} names issues: {issues} (say what changed instead)"
    rest = _without_relative_links(text, page) if page.is_relative_to(DOCS) else text
    outside = sorted({rest[max(0, m.start() - 20):m.end() + 20] for m in OUTSIDE.finditer(rest)})
    assert not outside, f"{page.relative_to(ROOT)} names paths outside the repository: {outside}"


def test_the_checks_catch_what_they_should():
    # samples the checks must catch, built from parts so that this file itself names no issue and no outside path
    number, up = "12", ".."
    assert ISSUE.search(f"see issue {number}") and ISSUE.search(f"fixed in #{number}")
    assert ISSUE.search(f"github.com/a/b/pull/{number}")
    assert not ISSUE.search("&#8212; entity, the #L12 anchor, R@10, top-1, item 12")
    assert OUTSIDE.search(f"data in {up}/elsewhere/x") and OUTSIDE.search("cd /" + "home/someone/project")
    assert not OUTSIDE.search("docs/img/x.png and ~/.cache/hotswap")
    assert _allowed("https://arxiv.org/abs/2106.01234") and _allowed("https://docs.python.org/3/")
    assert not _allowed("https://example.com/x") and not _allowed("https://arxiv.org.evil.com/")
