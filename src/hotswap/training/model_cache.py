"""Train-or-reuse a saved image model folder, and encode-and-keep embeddings (the chain trainer and the
image protocols use both).

A model folder is reused when its ``bcl.json`` records the same *recipe key* (method, config, data indices,
init and old model), so a stopped run picks up where it stopped and a changed setting retrains.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np

from hotswap.errors import AssetMissingError, CorruptStoreError
from hotswap.training.bcl_model import BCLModel

T = TypeVar("T", bound=Any)


def recipe_key(**parts: object) -> str:
    """sha256 (16 hex) of a JSON rendering of the recipe; arrays hash by content."""
    def norm(v: object) -> object:
        if isinstance(v, np.ndarray):
            return hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {str(k): norm(x) for k, x in sorted(v.items())}
        return v
    return hashlib.sha256(json.dumps(norm(parts), sort_keys=True, default=str).encode()).hexdigest()[:16]


@overload
def train_or_load(folder: Path, key: str, train: Callable[[], BCLModel], *,
                  marker: str = "bcl.json") -> tuple[BCLModel, bool]: ...


@overload
def train_or_load(folder: Path, key: str, train: Callable[[], T], load: Callable[[Path], T],
                  marker: str = "bcl.json") -> tuple[T, bool]: ...


def train_or_load(folder: Path, key: str, train: Callable[[], Any], load: Callable[[Path], Any] = BCLModel.load,
                  marker: str = "bcl.json") -> tuple[Any, bool]:
    """``(trained, reused)``: load ``folder`` (it holds ``marker``) if what it holds has this recipe ``key``,
    else train and save. ``T`` has ``info`` (a dict) and ``save(folder)``: a :class:`BCLModel` by default."""
    if (folder / marker).is_file():
        try:
            found = load(folder)
            if found.info.get("recipe_key") == key:
                return found, True
        except (AssetMissingError, CorruptStoreError):
            pass
    result = train()
    result.info["recipe_key"] = key
    result.save(folder)
    return result, False


def encode_and_keep(model: BCLModel, images: np.ndarray, path: Path | None) -> np.ndarray:
    """Embeddings of ``images`` (float32, unit rows); kept at ``path`` (``.npy``, float16) when given."""
    emb = model.encode(images)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, emb.astype(np.float16), allow_pickle=False)
        tmp.replace(path)
    return emb
