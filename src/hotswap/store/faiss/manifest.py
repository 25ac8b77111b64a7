"""The store manifest: which model wrote the vectors, their shape, and a checksum per segment file.

``manifest.json`` is the single source of truth of a store. Segment files it does not list do not exist as
far as readers are concerned (they are the leftovers of a crash and are removed by the next writer).
Rows are numbered across segments in order (global rows); ``dead`` lists the rows that a later ``upsert``
replaced or a ``delete`` removed: they stay in their segment file (listed files are never rewritten) but are
no longer part of the store. ``count`` counts every row, ``live`` the rows that are not dead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from hotswap.errors import CorruptStoreError
from hotswap.io import atomic_write_json, read_json_object, sha256_bytes, sha256_file, utc_now
from hotswap.store.base import METRICS

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Segment:
    """One append-only batch: ``<name>.vectors.npy`` (float32 [rows, dim]) and ``<name>.ids.json``."""

    name: str
    rows: int
    vectors_bytes: int
    vectors_sha256: str
    ids_bytes: int
    ids_sha256: str

    @property
    def vectors_file(self) -> str:
        return f"{self.name}.vectors.npy"

    @property
    def ids_file(self) -> str:
        return f"{self.name}.ids.json"

    def files(self) -> tuple[tuple[str, int, str], ...]:
        """``(file name, byte size, sha256)`` for both files of the segment."""
        return ((self.vectors_file, self.vectors_bytes, self.vectors_sha256),
                (self.ids_file, self.ids_bytes, self.ids_sha256))


def combined_checksum(segments: tuple[Segment, ...] | list[Segment], dead: tuple[int, ...] = ()) -> str:
    """sha256 over the segments' file checksums, in order, and the dead rows (sha256 of b"" for an empty store)."""
    text = "\n".join(f"{s.name}:{s.vectors_sha256}:{s.ids_sha256}" for s in segments)
    if dead:
        text += "\ndead:" + ",".join(map(str, dead))
    return sha256_bytes(text.encode())


@dataclass(frozen=True)
class Manifest:
    """Everything a reader needs to trust a store folder; immutable, replaced as a whole on each write."""

    model_id: str
    dim: int
    metric: str
    index_factory: str = "Flat"
    segments: tuple[Segment, ...] = ()
    count: int = 0
    dead: tuple[int, ...] = ()
    checksum: str = field(default_factory=lambda: combined_checksum(()))
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)
    format_version: int = FORMAT_VERSION

    def with_segment(self, seg: Segment) -> Manifest:
        """A new manifest with ``seg`` appended and count, checksum and ``updated_at`` recomputed."""
        return self.with_writes(seg, ())

    def with_writes(self, seg: Segment | None, dead: Sequence[int], merged: int = 0) -> Manifest:
        """A new manifest with rows ``dead`` marked dead and ``seg`` (if any) appended in place of the last
        ``merged`` segments (whose rows ``seg`` holds first, in order: global rows do not move)."""
        segs = self.segments[:len(self.segments) - merged] + ((seg,) if seg is not None else ())
        dead = tuple(sorted({*self.dead, *map(int, dead)}))
        return replace(self, segments=segs, count=sum(s.rows for s in segs), dead=dead,
                       checksum=combined_checksum(segs, dead), updated_at=utc_now())

    @property
    def live(self) -> int:
        """Rows that are part of the store: every row but the dead ones."""
        return self.count - len(self.dead)

    def next_segment_name(self) -> str:
        """``seg-000001`` for an empty store, then one past the last listed segment."""
        last = int(self.segments[-1].name.split("-")[1]) if self.segments else 0
        return f"seg-{last + 1:06d}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments"] = [asdict(s) for s in self.segments]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = MANIFEST_NAME) -> Manifest:
        """Build and self-check a manifest; raise ``CorruptStoreError`` naming ``where`` if it is inconsistent."""
        fix = "restore it from a backup or rebuild the store"
        try:
            if int(d["format_version"]) > FORMAT_VERSION:
                raise CorruptStoreError(f"{where} has format_version {d['format_version']}, newer than this "
                                        f"hotswap supports ({FORMAT_VERSION}); upgrade hotswap")
            segs = tuple(Segment(**s) for s in d["segments"])
            m = cls(**{**d, "segments": segs, "dead": tuple(d.get("dead", ()))})
        except CorruptStoreError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CorruptStoreError(f"{where} is malformed ({type(e).__name__}: {e}); {fix}") from e
        if m.metric not in METRICS or m.dim <= 0:
            raise CorruptStoreError(f"{where} has metric {m.metric!r} / dim {m.dim}; {fix}")
        if m.count != sum(s.rows for s in segs) or m.checksum != combined_checksum(segs, m.dead):
            raise CorruptStoreError(f"{where} count or checksum does not match its segment list; {fix}")
        if not all(isinstance(r, int) for r in m.dead) or list(m.dead) != sorted(set(m.dead)) or (
                m.dead and not 0 <= m.dead[0] <= m.dead[-1] < m.count):
            raise CorruptStoreError(f"{where} lists dead rows that are not sorted, distinct rows of the store; {fix}")
        return m


def read_manifest(folder: str | Path) -> Manifest:
    """Read ``folder/manifest.json``; a missing or unreadable manifest raises ``CorruptStoreError``."""
    path = Path(folder) / MANIFEST_NAME
    data = read_json_object(path, what="store manifest (not a hotswap store, or its manifest was deleted)",
                            fix="restore manifest.json from a backup or create a new store with create_store")
    return Manifest.from_dict(data, where=str(path))


def write_manifest(folder: str | Path, manifest: Manifest) -> None:
    """Atomically replace ``folder/manifest.json`` (temp file, fsync, rename, fsync folder)."""
    atomic_write_json(Path(folder) / MANIFEST_NAME, manifest.to_dict())


def check_segment_files(folder: str | Path, segments: tuple[Segment, ...], checksums: bool = False) -> None:
    """Check each listed file exists with the manifest's byte size (fast) and, if ``checksums``, its sha256."""
    folder = Path(folder)
    fix = "restore it from a backup, or rebuild the store by re-encoding the corpus"
    for seg in segments:
        for name, size, digest in seg.files():
            path = folder / name
            if not path.is_file():
                raise CorruptStoreError(f"segment file {path} listed in {MANIFEST_NAME} is missing; {fix}")
            actual = path.stat().st_size
            if actual != size:
                raise CorruptStoreError(f"segment file {path} is {actual} bytes but {MANIFEST_NAME} says {size} "
                                        f"(truncated or overwritten); {fix}")
            if checksums and sha256_file(path) != digest:
                raise CorruptStoreError(f"segment file {path} does not match its sha256 checksum in "
                                        f"{MANIFEST_NAME} (bit rot or an edit); {fix}")
