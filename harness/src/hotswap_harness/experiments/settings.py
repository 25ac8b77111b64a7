"""One results file holding several settings of a protocol (e.g. QDC on Debian Sections and on five sources).

A protocol run writes one *setting*: a dict with ``rows`` (each row carries ``"setting"``) and the run's
metadata. :func:`merge_setting` folds it into the file's existing content: rows of the same setting are
replaced, rows of other settings kept; each setting's metadata is kept under ``settings[name]``; the top-level
fields are those of the *headline* setting (the one the protocol's targets are read on), so a reader of the old
single-setting shape still finds every field it knew. Rows written before settings existed get ``legacy``.
"""

from __future__ import annotations

from typing import Any


def _meta(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("rows", "settings")}


def merge_setting(existing: dict | None, result: dict, headline: str, legacy: str) -> dict[str, Any]:
    """``existing`` (the file's content or None) with ``result`` (one setting's run) folded in."""
    name = result.get("setting")
    if not name:
        raise ValueError("a result merged by setting needs a 'setting' field")
    existing = existing or {}
    settings: dict[str, dict] = dict(existing.get("settings", {}))
    old_rows = [dict(r, setting=r.get("setting") or legacy) for r in existing.get("rows", [])]
    if existing.get("rows") and not existing.get("settings"):
        settings[existing.get("setting") or legacy] = dict(_meta(existing), setting=existing.get("setting") or legacy)
    settings[name] = _meta(result)
    rows = [r for r in old_rows if r["setting"] != name] + [dict(r, setting=name) for r in result["rows"]]
    top = settings.get(headline) or settings[name]
    return {**top, "rows": rows, "settings": settings}


def rows_of(result: dict, setting: str) -> list[dict]:
    """The rows of one setting (rows without a ``setting`` field belong to every setting)."""
    return [r for r in result.get("rows", []) if r.get("setting", setting) == setting]
