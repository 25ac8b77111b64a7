"""Blended queries: average the old model's query with the adapted new-model query, in the old space.

``q = (1 - w) * f_old(q) / ||f_old(q)|| + w * A(f_new(q)) / ||A(f_new(q))||``, searched on the old index.

While the index is old, both encoders are at hand at query time: the old one built the index, the new one is
the upgrade. The adapter's output ``A(f_new(q))`` is a noisy estimate of where the query belongs in the old
space (a map fitted on a few thousand pairs), and ``f_old(q)`` is the old model's own, weaker view of it;
averaging two estimates with partly independent errors beats either one (a query-side ensemble, like
score fusion of two retrievers but with one search). ``w`` is chosen on held-out *train* queries
(``hotswap.search.selection.choose_blend_weight``); ``w = 1`` is the plain adapted mode, ``w = 0`` the old
system. Cost: one extra old-model query encoding (negligible for a static old model) and one adapter call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hotswap.adapters import load_adapter
from hotswap.io import atomic_write_json
from hotswap.validation import as_matrix, l2_normalise

BLEND_FILE = "blend.json"


@dataclass
class QueryBlend:
    adapter: Any  # a fitted new -> old adapter
    weight: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.weight) <= 1.0:
            raise ValueError(f"blend weight must be in [0, 1]; got {self.weight!r}")

    @property
    def old_model_id_(self) -> str | None:
        return self.adapter.old_model_id_

    @property
    def new_model_id_(self) -> str | None:
        return self.adapter.new_model_id_

    def combine(self, Q_new: np.ndarray, Q_old: np.ndarray, *, model_id: str | None = None) -> np.ndarray:
        """Old-space float32 queries from rows of new-model ``Q_new`` and old-model ``Q_old`` (same queries)."""
        mapped = l2_normalise(self.adapter.transform(Q_new, model_id=model_id))
        Q_old = as_matrix(Q_old, dim=mapped.shape[1], name="old-model queries",
                          where=f"the old index's dimension {mapped.shape[1]} (model {self.old_model_id_})")
        if len(Q_old) != len(mapped):
            raise ValueError(f"{len(Q_new)} new-model queries but {len(Q_old)} old-model queries; "
                             "encode the same queries with both models")
        w = float(self.weight)
        return ((1.0 - w) * l2_normalise(Q_old) + w * mapped).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        """The adapter's files plus ``blend.json`` (the weight), in one folder."""
        folder = self.adapter.save(path)
        atomic_write_json(Path(folder) / BLEND_FILE, {"weight": float(self.weight)})
        return Path(folder)

    @classmethod
    def load(cls, path: str | Path) -> QueryBlend:
        weight = json.loads((Path(path) / BLEND_FILE).read_text())["weight"]
        return cls(load_adapter(path), weight)


def is_blend_folder(path: str | Path) -> bool:
    return (Path(path) / BLEND_FILE).is_file()
