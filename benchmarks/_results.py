"""Shared by the benchmarks that run one backend at a time: keep the other backends' rows of a results file."""

from __future__ import annotations

import json
from pathlib import Path

FOLDER_SCHEME = {"postgres": "pg"}  # a served collection lives in a folder: PostgreSQL on an embedded server there
ALIASES = {"postgres": {"pg"}}  # older labels of a backend, replaced by a new run of it


def scheme(backend: str) -> str:
    """The store scheme of a collection folder on ``backend``."""
    return FOLDER_SCHEME.get(backend, backend)


def kept_rows(path: Path, key: str, run: list[str]) -> list[dict]:
    """The rows under ``key`` of the results file ``path`` whose backend is not one of ``run`` (nor an older
    label of one): what a run of only those backends keeps."""
    if not path.is_file():
        return []
    replaced = set(run).union(*(ALIASES.get(b, set()) for b in run))
    return [r for r in json.loads(path.read_text()).get(key, []) if r.get("backend") not in replaced]
