"""docs/cli.md has one table row for every verb of ``hotswap`` and of its groups (``upgrade``, ``train``,
``experiment``), and names no verb the command line does not have."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from hotswap.cli import app

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _verbs(command, prefix: str = "hotswap") -> set[str]:
    if not getattr(command, "commands", None):
        return {prefix}
    verbs: set[str] = set()
    for name, sub in command.commands.items():
        verbs |= _verbs(sub, f"{prefix} {name}")
    return verbs


def test_every_verb_has_its_row():
    verbs = _verbs(typer.main.get_command(app))
    rows = set(re.findall(r"^\| `(hotswap [a-z -]+)` \|", PAGE.read_text(encoding="utf-8"), re.M))
    assert len(verbs) > 20
    assert not verbs - rows, f"docs/cli.md lacks a row for: {sorted(verbs - rows)}"
    assert not rows - verbs, f"docs/cli.md has rows for verbs hotswap does not have: {sorted(rows - verbs)}"
