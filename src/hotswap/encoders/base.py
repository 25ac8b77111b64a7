"""The ``Encoder`` protocol: a model with a stable id that turns texts into L2-normalised float32 rows."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """What every encoder offers.

    ``id`` is stable across processes and machines for the same weights (short name + a hash of the weight
    file), so a store or an adapter can tell which model wrote a vector. ``encode`` returns
    ``np.float32 [n, dim]`` with unit-norm rows.
    """

    name: str
    id: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray: ...


def weights_digest(path: Path, n_hex: int = 12) -> str:
    """sha256 of a weight file (first ``n_hex`` hex digits): the part of a model id that changes with weights."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:n_hex]
