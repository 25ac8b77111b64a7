"""Adopting a collection hotswap did not create: registered in place (nothing copied), after checking that its
vectors are the named model's.

The check re-encodes the texts of a seeded sample of rows with the named model and compares each with the
stored vector (cosine). Vectors the model made agree to float rounding (cosine ~1.0, whatever the hardware);
another model's, or the same model fed other text (a prefix, title + body), do not. The width is checked first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from hotswap.errors import DimensionMismatchError, HotswapError, ModelMismatchError
from hotswap.store.base import VectorStore
from hotswap.store.registry import backend, parse_store_uri

MIN_AGREEMENT = 0.95  # median cosine between stored and re-encoded vectors


@runtime_checkable
class HasTexts(Protocol):
    """A store that keeps texts beside its vectors (a pgvector table adopted with a text column)."""

    def texts(self, ids: Sequence[str]) -> dict[str, str]: ...


def _texts(store: VectorStore, ids: Sequence[str]) -> dict[str, str]:
    """``{id: text}`` from ``store``'s own texts, or ``ValueError`` for a backend that keeps none."""
    if not isinstance(store, HasTexts):
        raise ValueError(f"store {store.uri} keeps no texts beside its vectors (the {store.backend} backend has "
                         "none; an adopted pgvector table with a text column does)")
    return store.texts(ids)


def agreement(store: VectorStore, encode: Callable[[list[str]], np.ndarray], sample: int = 64,
              seed: int = 0) -> np.ndarray:
    """Cosine between the stored vector and ``encode(text)`` for a seeded sample of ``store``'s rows that have a
    text (``store.texts``)."""
    ids = store.ids
    rng = np.random.default_rng(seed)
    picked = [ids[r] for r in sorted(rng.choice(len(ids), size=min(sample, len(ids)), replace=False))]
    texts = _texts(store, picked)
    picked = [i for i in picked if i in texts]
    if not picked:
        raise ValueError(f"none of the {sample} sampled rows of {store.uri} has a text to re-encode")
    stored, fresh = store.get(picked), np.asarray(encode([texts[i] for i in picked]), dtype=np.float32)

    def unit(X: np.ndarray) -> np.ndarray:
        return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return np.sum(unit(stored) * unit(fresh), axis=1)


def model_check(model: str, dim: int, encode: Callable[[list[str]], np.ndarray], sample: int = 64,
                min_agreement: float = MIN_AGREEMENT, seed: int = 0,
                report: Callable[[np.ndarray], None] | None = None) -> Callable[[VectorStore], None]:
    """A check for ``adopt``: refuse a store whose width is not ``dim`` or whose sampled vectors agree with
    ``model``'s re-encoding below ``min_agreement`` (median cosine), naming both; ``report`` sees the cosines."""
    def check(store: VectorStore) -> None:
        if store.dim != dim:
            raise DimensionMismatchError(f"{store.uri} holds {store.dim}-d vectors but model {model} makes {dim}-d "
                                         "ones: it was built by another model; name that one with --model")
        cos = agreement(store, encode, sample, seed)
        if report is not None:
            report(cos)
        if float(np.median(cos)) < min_agreement:
            raise ModelMismatchError(f"the vectors of {store.uri} are not model {model}'s: re-encoding {len(cos)} "
                                     f"sampled texts gives a median cosine of {np.median(cos):.3f} with the stored "
                                     f"vectors (>= {min_agreement} expected); name the model that built them, or "
                                     "check that the text field is the text that was embedded")
    return check


def text_fetch(store: VectorStore) -> Callable[[Sequence[str]], list[str]]:
    """``fetch(ids) -> texts`` read from ``store``'s own text column (an adopted table's): what a backfill
    re-embeds when the texts live beside the vectors."""
    def fetch(ids: Sequence[str]) -> list[str]:
        found = _texts(store, ids)
        if missing := [i for i in ids if i not in found]:
            raise HotswapError(f"{len(missing)} item(s) of {store.uri} have no text: {missing[:3]}")
        return [found[i] for i in ids]
    return fetch


def adopt_store(uri: str | Path, model_id: str, vector_field: str, text_field: str | None = None,
                id_field: str = "id", metric: str = "ip",
                check: Callable[[VectorStore], None] | None = None) -> VectorStore:
    """Register the collection at ``uri`` as a store of ``model_id`` in place; ``check`` runs on it before the
    registration commits (and undoes it by raising). Backends without ``adopt`` refuse, naming those with it."""
    scheme, location = parse_store_uri(uri)
    b = backend(scheme)
    if b.adopt is None:
        raise ValueError(f"the {b.name} backend cannot adopt a collection yet; adopt a pgvector table with "
                         "postgres://user@host/db?table=NAME")
    return b.adopt(location, model_id, vector_field, text_field, id_field, metric, check)


__all__: Sequence[str] = ["MIN_AGREEMENT", "adopt_store", "agreement", "model_check", "text_fetch"]
