"""``NamedLoader``: ``load_encoder`` with operator-given names for model folders (``--allow-model NAME=FOLDER``).

Picklable, so that a backfill worker process (``hotswap.backfill.niced_executor``) loads models the same way.
"""

from __future__ import annotations

from typing import Any


class NamedLoader:
    """``loader(spec)`` loads ``folders.get(spec, spec)`` with ``load_encoder`` (cached per process; its
    ``__wrapped__`` is the same loader without the cache)."""

    def __init__(self, folders: dict[str, str] | None = None, cached: bool = True) -> None:
        self.folders, self.cached = dict(folders or {}), cached

    def __call__(self, spec: str) -> Any:
        from hotswap.encoders import load_encoder

        load = load_encoder if self.cached else load_encoder.__wrapped__
        return load(self.folders.get(spec, spec))

    @property
    def __wrapped__(self) -> NamedLoader:
        return NamedLoader(self.folders, cached=False)
