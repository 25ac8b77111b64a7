"""Manifest: JSON round trip, self-checks, checksums and the segment file checks."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import pytest

from hotswap.errors import CorruptStoreError
from hotswap.store.faiss.manifest import (MANIFEST_NAME, Manifest, Segment, check_segment_files, combined_checksum,
                                    read_manifest, sha256_bytes, sha256_file, write_manifest)


def _segment(folder, name: str, vec: bytes, ids: bytes, rows: int = 2) -> Segment:
    (folder / f"{name}.vectors.npy").write_bytes(vec)
    (folder / f"{name}.ids.json").write_bytes(ids)
    return Segment(name, rows, len(vec), sha256_bytes(vec), len(ids), sha256_bytes(ids))


@pytest.fixture
def manifest(tmp_path) -> Manifest:
    m = Manifest(model_id="minilm@abc", dim=8, metric="ip")
    m = m.with_segment(_segment(tmp_path, m.next_segment_name(), b"v" * 40, b'["a", "b"]'))
    return m.with_segment(_segment(tmp_path, m.next_segment_name(), b"w" * 24, b'["c"]', rows=1))


def test_with_segment_updates_count_checksum_and_names(manifest):
    assert [s.name for s in manifest.segments] == ["seg-000001", "seg-000002"]
    assert manifest.count == 3 and manifest.next_segment_name() == "seg-000003"
    assert manifest.checksum == combined_checksum(manifest.segments)
    assert manifest.checksum != combined_checksum(manifest.segments[::-1])  # order matters
    assert Manifest("m", 4, "l2").checksum == hashlib.sha256(b"").hexdigest()
    for stamp in (manifest.created_at, manifest.updated_at):
        assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).utcoffset().total_seconds() == 0


def test_json_round_trip_has_every_field(tmp_path, manifest):
    write_manifest(tmp_path, manifest)
    raw = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert {"format_version", "model_id", "dim", "metric", "count", "checksum", "created_at", "updated_at",
            "index_factory", "segments"} <= raw.keys()
    assert raw["index_factory"] == "Flat" and raw["segments"][1]["rows"] == 1
    assert read_manifest(tmp_path) == manifest


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.update(count=99), "count or checksum"),
    (lambda d: d["segments"][0].update(ids_sha256="0" * 64), "count or checksum"),
    (lambda d: d.pop("model_id"), "malformed"),
    (lambda d: d.update(metric="cosine"), "metric"),
    (lambda d: d.update(format_version=99), "upgrade hotswap"),
])
def test_inconsistent_manifest_is_refused(tmp_path, manifest, edit, words):
    d = manifest.to_dict()
    edit(d)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(d))
    with pytest.raises(CorruptStoreError, match=words):
        read_manifest(tmp_path)


def test_missing_or_garbled_manifest(tmp_path):
    with pytest.raises(CorruptStoreError, match="manifest.json is missing.*create_store"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(CorruptStoreError, match="JSON"):
        read_manifest(tmp_path)


def test_sha256_file_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 20000  # > one 4 MiB read chunk
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_check_segment_files(tmp_path, manifest):
    check_segment_files(tmp_path, manifest.segments, checksums=True)
    vec = tmp_path / "seg-000002.vectors.npy"
    vec.write_bytes(b"x" * 24)  # same size, other bytes
    check_segment_files(tmp_path, manifest.segments)  # the fast check only looks at sizes
    with pytest.raises(CorruptStoreError, match="seg-000002.vectors.npy.*sha256"):
        check_segment_files(tmp_path, manifest.segments, checksums=True)
    vec.write_bytes(b"x" * 10)
    with pytest.raises(CorruptStoreError, match="seg-000002.vectors.npy is 10 bytes.*says 24"):
        check_segment_files(tmp_path, manifest.segments)
    (tmp_path / "seg-000001.ids.json").unlink()
    with pytest.raises(CorruptStoreError, match="seg-000001.ids.json.*missing"):
        check_segment_files(tmp_path, manifest.segments)
