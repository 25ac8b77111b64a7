"""Adapters registered into a collection: the only adapters its service loads, named by clients, never given
as paths.

Layout: ``COLLECTION/adapters/NAME/`` holds a copy of the fitted adapter's files plus ``checksums.json``
(sha256 of each file). ``register`` copies into a hidden temporary folder, fsyncs, writes the checksums and
renames the folder into place, so a kill leaves the adapter whole or absent (a leftover temporary folder is
removed by the next ``register``). ``folder`` confines the name to ``COLLECTION/adapters`` and verifies every
checksum before anything is loaded: an adapter edited or swapped after registration is refused, naming the
file. Names are 1-64 characters of letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path

from hotswap.errors import CorruptStoreError, HotswapError
from hotswap.io import atomic_write_json, sha256_file

ADAPTERS_DIR, CHECKSUMS = "adapters", "checksums.json"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name) or name in (".", ".."):
        raise HotswapError(f"adapter names are 1-64 letters, digits, '.', '_' or '-' (not a path); got {name!r}: "
                           "register an adapter with 'hotswap fit-adapter ... --into COLLECTION NAME'")
    return name


def registered(collection: Path) -> list[str]:
    """Names of the adapters registered in ``collection``."""
    root = Path(collection) / ADAPTERS_DIR
    return sorted(p.name for p in root.iterdir() if p.is_dir() and NAME.fullmatch(p.name)) if root.is_dir() else []


def register(collection: Path, name: str, source: str | Path) -> Path:
    """Copy the adapter folder ``source`` into ``collection`` as ``name`` (refused if the name is taken)."""
    check_name(name)
    source, root = Path(source), Path(collection) / ADAPTERS_DIR
    files = sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else []
    if not files:
        raise HotswapError(f"{source} is not a folder of a fitted adapter; save one with 'hotswap fit-adapter'")
    dest = root / name
    if dest.exists():
        raise FileExistsError(f"adapter {name!r} is already registered in {collection}; choose another name")
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob(".*.tmp-*"):
        shutil.rmtree(old, ignore_errors=True)
    tmp = root / f".{name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for f in files:
            shutil.copyfile(f, tmp / f.name)
            with open(tmp / f.name, "rb") as fh:
                os.fsync(fh.fileno())
        atomic_write_json(tmp / CHECKSUMS, {f.name: sha256_file(tmp / f.name) for f in files})
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def folder(collection: Path, name: str) -> Path:
    """The verified folder of registered adapter ``name`` (confined to the collection's adapters)."""
    check_name(name)
    root = (Path(collection) / ADAPTERS_DIR).resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_dir():
        have = ", ".join(registered(collection)) or "none"
        raise HotswapError(f"no adapter {name!r} is registered in {collection} (registered: {have}); register one "
                           "with 'hotswap fit-adapter ... --into COLLECTION NAME'")
    try:
        sums = json.loads((path / CHECKSUMS).read_text())
    except (OSError, ValueError) as e:
        raise CorruptStoreError(f"adapter {name!r} in {collection} has no readable {CHECKSUMS} ({e}); register it "
                                "again") from None
    present = {p.name for p in path.iterdir() if p.is_file()} - {CHECKSUMS}
    if not isinstance(sums, dict) or present != set(sums):
        raise CorruptStoreError(f"adapter {name!r} in {collection} holds files {sorted(present)} but was registered "
                                f"with {sorted(sums) if isinstance(sums, dict) else '?'}; register it again")
    for file, digest in sums.items():
        if sha256_file(path / file) != digest:
            raise CorruptStoreError(f"adapter file {path / file} changed since it was registered (sha256 "
                                    "mismatch); register the adapter again")
    return path
