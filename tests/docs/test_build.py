"""The docs site builds with ``mkdocs build --strict``: every nav page exists, every link and image resolves, and
mkdocstrings renders the API reference pages from the docstrings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")


def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-6000:]}"
    for page in ("index.html", "getting-started/index.html", "results/index.html", "concepts/lifecycle/index.html"):
        assert (site / page).is_file(), page
    assert "Upgrade demo" in (site / "results" / "index.html").read_text(encoding="utf-8")
