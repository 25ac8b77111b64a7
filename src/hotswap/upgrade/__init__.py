"""Upgrades in progress: one gallery served from an old and a new model's index while it is re-embedded.

``create_upgrade(path, old_store, new_model_id, new_dim)`` starts one (``old_store``: an open store or a store
URI; a plain path means FAISS) with its records in the new folder ``path``; ``open_upgrade(path)`` opens one of
any backend. Both return an ``Upgrade``: ``FaissUpgrade`` for FAISS (the new model's store inside ``path``),
``DbUpgrade`` for the database backends (the new model in the same database; ``hotswap.store.drop_model``
rolls it back, ``hotswap.store.serve_model`` commits it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hotswap.errors import CorruptStoreError, HotswapError
from hotswap.io import read_json_object
from hotswap.store import BACKENDS, VectorStore, backend, open_store
from hotswap.upgrade.base import UPGRADE_NAME, PartitionView, Upgrade, UpgradeCommon, check_partition_query
from hotswap.upgrade.database import DbUpgrade, create_db_upgrade, open_db_upgrade
from hotswap.upgrade.faiss import FaissUpgrade, create_faiss_upgrade, open_faiss_upgrade

# family -> (create(path, old_store, new_model_id, new_dim), open(path, config)); the store is of that family
FAMILIES: dict[str, tuple[Callable[..., Upgrade], Callable[[Path, dict], Upgrade]]] = {
    "faiss": (create_faiss_upgrade, open_faiss_upgrade), "database": (create_db_upgrade, open_db_upgrade)}


def create_upgrade(path: str | Path, old_store: VectorStore | str | Path, new_model_id: str,
                   new_dim: int) -> Upgrade:
    """Start an upgrade of ``old_store`` (an open store, or a store URI) to ``new_model_id`` (vectors of width
    ``new_dim``) in the empty folder ``path``. A store opened here from a URI is owned by the upgrade."""
    path = Path(path)
    if isinstance(old_store, (str, Path)):
        old = open_store(old_store)
        try:
            up = create_upgrade(path, old, new_model_id, new_dim)
        except BaseException:
            old.close()
            raise
        if up.old is not old:  # a database upgrade opens views of its own
            old.close()
        return up
    if new_model_id == old_store.model_id:
        raise HotswapError(f"the index {old_store.path} is already built by {new_model_id!r}; nothing to upgrade")
    return FAMILIES[backend(old_store.backend).family][0](path, old_store, new_model_id, new_dim)


def open_upgrade(path: str | Path) -> Upgrade:
    """Open an upgrade folder of any backend; refuses one whose stores changed model or lost items."""
    path = Path(path)
    config = read_json_object(path / UPGRADE_NAME, what="upgrade manifest",
                              fix="start an upgrade with hotswap.upgrade.create_upgrade")
    name = config.get("backend", "faiss")  # upgrade.json written before backends were named: FAISS
    if name not in BACKENDS:
        raise CorruptStoreError(f"{path / UPGRADE_NAME} names backend {name!r}, not one of {list(BACKENDS)}")
    return FAMILIES[backend(name).family][1](path, config)


__all__ = ["DbUpgrade", "FaissUpgrade", "PartitionView", "Upgrade", "UpgradeCommon", "check_partition_query",
           "create_upgrade", "open_upgrade"]
