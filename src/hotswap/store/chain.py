"""A store's model chain: which models came after the one that built it, and the adapters that lead back.

A store built by v1 keeps serving while the model moves v1 -> v2 -> v3. ``record_chain`` writes
``chain.json`` beside the store's ``manifest.json`` (atomically; the manifest is not touched)::

    {"chain": [v1, v2, v3], "adapters": [path of A_{2→1}, path of A_{3→2}], "store_model_id": v1, ...}

``chain[0]`` must be the store's own model id; ``adapters[i]`` maps ``chain[i+1]`` into ``chain[i]``, so
queries of ``chain[-1]`` reach the index through ``A_{2→1} ∘ ... ∘ A_{n→n-1}``
(``hotswap.adapters.chain.ComposedAdapter``). Each adapter folder must exist and its ``adapter.json`` must
record those two model ids. Paths are stored as given (absolute, or relative to the reader's working folder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hotswap.errors import CorruptStoreError, ModelMismatchError
from hotswap.io import atomic_write_json, read_json_object, utc_now
from hotswap.store.faiss.manifest import read_manifest

CHAIN_FILE, FORMAT = "chain.json", "hotswap.chain"


@dataclass(frozen=True)
class StoreChain:
    """A store's recorded chain: model ids from the store's (first) to the newest, and the adapters between."""

    chain: tuple[str, ...]
    adapters: tuple[str, ...]
    recorded_at: str


def _check_adapter(path: str, new_model_id: str, old_model_id: str, i: int) -> None:
    config = Path(path) / "adapter.json"
    if not config.is_file():
        raise FileNotFoundError(f"adapter {i} ({new_model_id} -> {old_model_id}) has no adapter.json at {path}; "
                                "save the adapter before recording the chain")
    meta = json.loads(config.read_text())
    got = (meta.get("new_model_id"), meta.get("old_model_id"))
    if got != (new_model_id, old_model_id):
        raise ModelMismatchError(f"adapter {i} at {path} maps {got[0]!r} -> {got[1]!r}, but the chain needs "
                                 f"{new_model_id!r} -> {old_model_id!r}")


def record_chain(store_path: str | Path, chain: list[str], adapters: list[str]) -> Path:
    """Write ``store_path/chain.json``; refused unless ``chain[0]`` is the store's model id and ``adapters[i]``
    is a saved adapter from ``chain[i+1]`` into ``chain[i]``. Returns the file's path."""
    store_model_id = read_manifest(store_path).model_id
    chain, adapters = [str(m) for m in chain], [str(p) for p in adapters]
    if not chain:
        raise ValueError("a model chain needs at least the store's own model id")
    if chain[0] != store_model_id:
        raise ModelMismatchError(f"the chain starts at model {chain[0]!r}, but the store at {store_path} was built "
                                 f"by {store_model_id!r}; a store's chain starts with its own model")
    if len(set(chain)) != len(chain):
        raise ValueError(f"a model appears twice in the chain {chain}")
    if len(adapters) != len(chain) - 1:
        raise ValueError(f"a chain of {len(chain)} models needs {len(chain) - 1} adapters (one per upgrade, "
                         f"chain[i+1] -> chain[i]); got {len(adapters)}")
    for i, path in enumerate(adapters):
        _check_adapter(path, chain[i + 1], chain[i], i)
    return atomic_write_json(Path(store_path) / CHAIN_FILE, {
        "format": FORMAT, "version": 1, "store_model_id": store_model_id, "chain": chain, "adapters": adapters,
        "recorded_at": utc_now()})


def read_chain(store_path: str | Path) -> StoreChain | None:
    """The chain recorded for the store at ``store_path``, or ``None`` if none was recorded."""
    path = Path(store_path) / CHAIN_FILE
    if not path.exists():
        return None
    store_model_id = read_manifest(store_path).model_id
    data = read_json_object(path, what=CHAIN_FILE, fix="record the chain again with record_chain")
    try:
        chain, adapters = tuple(map(str, data["chain"])), tuple(map(str, data["adapters"]))
        recorded_at = str(data["recorded_at"])
    except (KeyError, TypeError) as e:
        raise CorruptStoreError(f"{path} is malformed ({type(e).__name__}: {e}); record the chain again") from e
    if data.get("format") != FORMAT or not chain or len(adapters) != len(chain) - 1:
        raise CorruptStoreError(f"{path} is not a valid {FORMAT} record; record the chain again")
    if chain[0] != store_model_id:
        raise ModelMismatchError(f"{path} starts at model {chain[0]!r} but the store is now {store_model_id!r}; "
                                 "record the chain again for this store")
    return StoreChain(chain, adapters, recorded_at)
