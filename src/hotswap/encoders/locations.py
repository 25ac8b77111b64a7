"""A registry of model folders by model id, so a later command in any working folder finds a folder model.

``load_encoder(folder)`` calls ``remember``; ``encoder_for_model_id`` asks ``known_location``. The registry is
``$HOTSWAP_HOME/models.json``, shaped like a store's provenance ``models`` record::

    {"custom@3f2a9c1b7d4e": {"name": "my-minilm", "location": "/abs/my-minilm", "weights_sha256": "3f2a..."}}

It is a convenience, never the truth: the loaded model's id is always checked against the one asked for, a
damaged file is replaced, and a cache folder that cannot be written is skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hotswap.encoders.assets import cache_home
from hotswap.io import atomic_write_json

REGISTRY_NAME = "models.json"


def registry_path() -> Path:
    """Where the registry lives (follows ``$HOTSWAP_HOME``)."""
    return cache_home() / REGISTRY_NAME


def _read() -> dict[str, dict[str, Any]]:
    """The registry's entries; a missing or damaged file (bad JSON, wrong shape) reads as empty."""
    try:
        data = json.loads(registry_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, dict)}


def remember(encoder: Any) -> None:
    """Record where the model ``encoder`` was loaded from, under its id (atomic write, best effort)."""
    location = getattr(encoder, "location", None)
    if not location:
        return
    entries = _read()
    entry = {"name": encoder.name, "location": str(location),
             "weights_sha256": getattr(encoder, "weights_sha256", None)}
    if entries.get(encoder.id) == entry:
        return
    entries[encoder.id] = entry
    try:
        atomic_write_json(registry_path(), entries)
    except OSError:
        pass  # a read-only cache folder: later commands need --old FOLDER, loading still works


def known_location(model_id: str) -> str | None:
    """The folder last seen holding model ``model_id``, if it still exists; else None."""
    location = _read().get(model_id, {}).get("location")
    return location if isinstance(location, str) and os.path.isdir(location) else None


__all__ = ["REGISTRY_NAME", "known_location", "registry_path", "remember"]
