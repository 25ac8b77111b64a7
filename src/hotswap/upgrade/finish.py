"""End an upgrade of a plain store (one built by ``hotswap encode``): ``commit_upgrade`` makes the index serve the
new model, ``rollback_upgrade`` forgets the new model. Both survive being killed at any step: run again, they
finish what was started (a marker file in the upgrade folder says which).

Commit, FAISS: the old store's folder is renamed aside, the upgrade's ``new/`` store takes its place (the path
users search keeps working and now holds the new model's vectors), then the old folder and the upgrade folder
are deleted. Commit, database: the new model becomes the store's default (the backend's ``serve_model``), then
the upgrade folder goes. Rollback: a database's new vectors are dropped (the backend's ``drop_model``; FAISS keeps
them inside the upgrade folder), then the upgrade folder is deleted. Callers check first that no backfill is running
and, for a commit, that the backfill is complete (``hotswap.upgrade.lifecycle``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from hotswap.errors import HotswapError
from hotswap.io import atomic_write_json, read_json_object
from hotswap.store import backend
from hotswap.upgrade.base import UPGRADE_NAME

COMMIT_MARK, ROLLBACK_MARK = "COMMITTING", "ROLLING_BACK"
ASIDE = ".replaced-by-upgrade"


def _config(path: Path) -> dict[str, Any]:
    return read_json_object(path / UPGRADE_NAME, what="upgrade manifest",
                            fix="point --upgrade at the folder 'hotswap backfill' wrote")


def _old_location(path: Path, config: dict[str, Any]) -> Path | str:
    """The old store's folder (relative paths are the upgrade folder's), or a server's URI."""
    where = config["old_store"]
    return where if "://" in where else (path / where).resolve()


def _remove_folder(path: Path) -> None:
    """Delete the upgrade folder, its manifest last: until then a rerun still finds what it was doing."""
    for child in path.iterdir():
        if child.name not in (UPGRADE_NAME, COMMIT_MARK, ROLLBACK_MARK):
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    (path / UPGRADE_NAME).unlink(missing_ok=True)
    shutil.rmtree(path)


def commit_upgrade(path: str | Path) -> dict[str, Any]:
    """Make the old index's location serve the upgrade's new model and delete the upgrade folder. Returns
    ``{"index": location, "model_id": new model id, "backend": ...}``."""
    path = Path(path)
    config = _config(path)
    old, name = _old_location(path, config), config.get("backend", "faiss")
    atomic_write_json(path / COMMIT_MARK, {"old_store": str(old)})
    if name == "faiss":
        assert isinstance(old, Path)
        aside = old.with_name(old.name + ASIDE)
        if (path / "new").is_dir():
            if old.exists() and not aside.exists():
                old.rename(aside)
            elif old.exists():  # a commit killed after the swap? no: new/ is still here, so old is the original
                raise HotswapError(f"both {old} and {aside} exist; move one of them away and commit again")
            (path / "new").rename(old)
        if aside.exists():
            shutil.rmtree(aside)
    elif (serve := backend(name).serve_model) is not None:
        serve(old, config["new_model_id"])
    _remove_folder(path)
    return {"index": str(old), "model_id": config["new_model_id"], "backend": name}


def rollback_upgrade(path: str | Path) -> dict[str, Any]:
    """Forget the upgrade: drop a database's new vectors and delete the upgrade folder; the old index serves on,
    with every write made during the upgrade. Returns ``{"index": location, "model_id": old model id}``."""
    path = Path(path)
    config = _config(path)
    if (path / COMMIT_MARK).exists():
        raise HotswapError(f"upgrade {path} was being committed; finish it with 'hotswap upgrade commit'")
    old = _old_location(path, config)
    atomic_write_json(path / ROLLBACK_MARK, {"old_store": str(old)})
    if (drop := backend(config.get("backend", "faiss")).drop_model) is not None:
        drop(old, config["new_model_id"])
    _remove_folder(path)
    return {"index": str(old), "model_id": config["old_model_id"], "backend": config.get("backend", "faiss")}


def finishing(path: str | Path) -> str | None:
    """``"commit"`` or ``"rollback"`` when a commit or rollback of ``path`` was started and not finished."""
    path = Path(path)
    if (path / COMMIT_MARK).exists():
        return "commit"
    if (path / ROLLBACK_MARK).exists():
        return "rollback"
    return None


__all__ = ["commit_upgrade", "finishing", "rollback_upgrade"]
