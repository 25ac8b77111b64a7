"""Model ids follow the weights, not the folder name; the model registry finds folder models from any folder."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import hotswap.encoders as encoders
from hotswap.encoders import as_model_id, assets, base, describe, encoder_for_model_id, folder_label, load_encoder
from hotswap.encoders.base import cached_sha256
from hotswap.encoders.locations import known_location, registry_path, remember
from hotswap.errors import AssetMissingError, ModelMismatchError


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private ``$HOTSWAP_HOME`` whose bundled ``static`` is the real one (linked, never distilled again)."""
    real_static = assets.static_folder()
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / real_static.name).symlink_to(real_static, target_is_directory=True)
    monkeypatch.setenv("HOTSWAP_HOME", str(home))
    assert assets.static_folder() == home / "models" / real_static.name
    return home


def copy_static(to: Path, scale: float | None = None) -> Path:
    """A folder copy of the bundled static model; ``scale`` rewrites its weights (new digest, same shape)."""
    shutil.copytree(assets.static_folder(), to, symlinks=False)
    if scale is not None:
        from safetensors.numpy import load_file, save_file

        arrays = load_file(to / "model.safetensors")
        save_file({k: (v * scale).astype(v.dtype) for k, v in arrays.items()}, to / "model.safetensors")
    return to


class Fake:
    """An encoder stand-in with the attributes ``remember`` and ``describe`` read."""

    def __init__(self, id: str, location: str | None, name: str = "fake") -> None:
        self.id, self.name, self.location, self.weights_sha256 = id, name, location, "ab" * 32


@pytest.mark.realmodel
def test_same_weights_in_two_folders_get_the_bundled_id(home, tmp_path):
    static = load_encoder("static")
    a = load_encoder(str(copy_static(tmp_path / "x" / "alpha")))
    b = load_encoder(str(copy_static(tmp_path / "y" / "beta")))
    assert a.id == b.id == static.id and static.id.startswith("static@")
    assert (a.name, b.name) == ("alpha", "beta")
    assert a.location == str((tmp_path / "x" / "alpha").resolve()) != b.location
    digest = hashlib.sha256((tmp_path / "x" / "alpha" / "model.safetensors").read_bytes()).hexdigest()
    assert a.weights_sha256 == b.weights_sha256 == static.weights_sha256 == digest
    assert describe(a) == {"id": static.id, "name": "alpha", "location": a.location, "weights_sha256": digest}
    assert type(a).__name__ == "Model2VecEncoder"  # a model2vec folder encodes as the bundled static does
    np.testing.assert_allclose(a.encode(["numpy arrays"]), static.encode(["numpy arrays"]), atol=1e-6)
    # digests are cached, keyed by the resolved path
    cached = json.loads((home / "digests.json").read_text())
    assert cached[str(Path(a.location, "model.safetensors"))]["sha256"] == digest


@pytest.mark.realmodel
def test_other_weights_are_custom_and_found_from_any_folder(home, tmp_path, monkeypatch):
    folder = copy_static(tmp_path / "work" / "my-static", scale=2.0)
    enc = load_encoder(str(folder))
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert enc.id == f"custom@{digest[:12]}" and enc.name == "my-static" and enc.weights_sha256 == digest
    assert known_location(enc.id) == str(folder.resolve())
    registry = json.loads(registry_path().read_text())
    assert registry[enc.id] == {"name": "my-static", "location": str(folder.resolve()), "weights_sha256": digest}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert encoder_for_model_id(enc.id).id == enc.id  # through the registry
    registry_path().unlink()
    assert encoder_for_model_id(enc.id, location=str(folder)).id == enc.id  # through the caller's location
    with pytest.raises(AssetMissingError) as err:
        encoder_for_model_id(enc.id)
    message = str(err.value)
    assert enc.id in message and "pass --old FOLDER (the model folder that built the index)" in message
    assert "\n" not in message and "(" + "'" not in message and "encoder_for_model_id" not in message


@pytest.mark.realmodel
def test_wrong_weights_at_a_location_are_refused(home, tmp_path):
    folder = copy_static(tmp_path / "other")
    with pytest.raises(ModelMismatchError, match="custom@000000000000"):
        encoder_for_model_id("custom@000000000000", location=str(folder))
    with pytest.raises(AssetMissingError, match="custom@000000000000"):
        encoder_for_model_id("custom@000000000000")


@pytest.mark.realmodel
def test_ids_from_older_versions_still_resolve_relative_to_the_working_folder(home, tmp_path, monkeypatch):
    folder = copy_static(tmp_path / "fine", scale=0.5)
    monkeypatch.chdir(tmp_path)
    current = load_encoder("fine")
    legacy_id = f"fine@{current.weights_sha256[:12]}"  # the id hotswap wrote before ids followed the weights
    legacy = encoder_for_model_id(legacy_id)
    assert legacy.id == legacy_id and legacy.weights_sha256 == current.weights_sha256
    assert current.id.startswith("custom@") and legacy.location == current.location
    assert load_encoder("fine").id == current.id  # the cached encoder keeps its own id
    assert as_model_id(current, current.id) is current and as_model_id(current, legacy_id).id == legacy_id
    assert as_model_id(current, "other@" + legacy_id.split("@")[1]) is None  # another folder name: not legacy
    with pytest.raises(ModelMismatchError, match="fine@000000000000"):
        encoder_for_model_id("fine@000000000000")
    assert folder.is_dir()


@pytest.mark.realmodel
def test_a_missing_bundled_model_does_not_break_loading_a_folder(home, tmp_path, monkeypatch):
    def missing():
        raise AssetMissingError("model 'minilm' is not installed")

    monkeypatch.setattr(assets, "minilm_folder", missing)
    enc = load_encoder(str(copy_static(tmp_path / "solo", scale=3.0)))
    assert enc.id.startswith("custom@")


def test_folder_label_matches_bundled_weights_by_digest(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSWAP_HOME", str(tmp_path / "home"))
    bundled = tmp_path / "bundled.safetensors"
    bundled.write_bytes(b"w" * 1000)
    monkeypatch.setattr(encoders, "_installed_bundled_weights", lambda: {"minilm": bundled})
    same, other, longer = (tmp_path / n for n in ("same", "other", "longer"))
    same.write_bytes(b"w" * 1000)
    other.write_bytes(b"v" * 1000)
    longer.write_bytes(b"w" * 1001)
    assert (folder_label(same), folder_label(other)) == ("minilm", "custom")
    hashed = []
    monkeypatch.setattr(encoders, "cached_sha256", lambda p: hashed.append(Path(p)) or "0" * 64)
    assert folder_label(longer) == "custom" and hashed == [longer]  # a bundled file of another size is not hashed


def test_installed_bundled_weights_never_build_a_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSWAP_HOME", str(tmp_path))
    monkeypatch.setattr(assets, "minilm_folder", lambda: (_ for _ in ()).throw(AssetMissingError("no minilm")))
    assert encoders._installed_bundled_weights() == {}
    assert list(tmp_path.iterdir()) == []  # nothing distilled or assembled


def test_digest_cache_keys_on_path_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSWAP_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(base, "_MEMO", {})
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc")
    assert cached_sha256(f) == hashlib.sha256(b"abc").hexdigest()
    entry = json.loads((tmp_path / "home" / "digests.json").read_text())[str(f.resolve())]
    assert entry["size"] == 3 and entry["mtime_ns"] == f.stat().st_mtime_ns
    monkeypatch.setattr(base, "_MEMO", {})
    monkeypatch.setattr(base, "weights_digest", lambda *a, **k: pytest.fail("hashed again"))
    assert cached_sha256(f) == hashlib.sha256(b"abc").hexdigest()  # from the file cache
    monkeypatch.undo()
    monkeypatch.setenv("HOTSWAP_HOME", str(tmp_path / "home"))
    f.write_bytes(b"abcd")  # new size (and mtime): hashed again
    assert cached_sha256(f) == hashlib.sha256(b"abcd").hexdigest()
    (tmp_path / "home" / "digests.json").write_text("{not json")  # a damaged cache is only a miss
    monkeypatch.setattr(base, "_MEMO", {})
    assert cached_sha256(f) == hashlib.sha256(b"abcd").hexdigest()
    assert json.loads((tmp_path / "home" / "digests.json").read_text())[str(f.resolve())]["size"] == 4


def test_registry_replaces_a_damaged_file_and_forgets_gone_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSWAP_HOME", str(tmp_path / "home"))
    registry_path().parent.mkdir(parents=True)
    registry_path().write_text("[1, 2")
    assert known_location("custom@aaaaaaaaaaaa") is None
    model = tmp_path / "model"
    model.mkdir()
    remember(Fake("custom@aaaaaaaaaaaa", str(model), "model"))
    remember(Fake("custom@bbbbbbbbbbbb", str(tmp_path / "gone")))
    remember(Fake("fake@1", None))  # no location: nothing to remember
    data = json.loads(registry_path().read_text())
    assert set(data) == {"custom@aaaaaaaaaaaa", "custom@bbbbbbbbbbbb"}
    assert data["custom@aaaaaaaaaaaa"] == {"name": "model", "location": str(model), "weights_sha256": "ab" * 32}
    assert known_location("custom@aaaaaaaaaaaa") == str(model)
    assert known_location("custom@bbbbbbbbbbbb") is None  # the folder is gone
    registry_path().write_text('{"custom@aaaaaaaaaaaa": "not an object"}')
    assert known_location("custom@aaaaaaaaaaaa") is None


def test_describe_an_encoder_without_a_folder():
    class Bare:
        id, name = "x@1", "x"

    assert describe(Bare()) == {"id": "x@1", "name": "x", "location": None, "weights_sha256": None}


def test_unknown_ids_name_the_cli_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSWAP_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssetMissingError, match=r"custom@123456789abc.*pass --old FOLDER"):
        encoder_for_model_id("custom@123456789abc")
    with pytest.raises(AssetMissingError, match="no-such@123456789abc"):
        encoder_for_model_id("no-such@123456789abc", location=str(tmp_path / "nowhere"))


def test_a_folder_without_safetensors_weights_is_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "modules.json").write_text("[]")
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(AssetMissingError, match="has no model.safetensors"):
        load_encoder(str(folder))
