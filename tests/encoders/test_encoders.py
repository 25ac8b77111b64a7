import numpy as np
import pytest

from hotswap.encoders import assets, encoder_for_model_id, load_encoder
from hotswap.encoders.cache import cache_key, encode_cached
from hotswap.errors import AssetMissingError, ModelMismatchError

TEXTS = ["Fast array facility to the Python 3 language", "numerical arrays and matrices for Python",
         "real-time strategy game of ancient warfare"]


class FakeEncoder:
    name, id, dim = "fake", "fake@1", 4

    def __init__(self):
        self.calls = 0

    def encode(self, texts, batch_size=64, show_progress=None):
        self.calls += 1
        return np.tile(np.arange(4, dtype=np.float32), (len(texts), 1)) + len(texts)


@pytest.mark.realmodel
@pytest.mark.parametrize("name,dim", [("static", 256), ("minilm", 384)])
def test_bundled_encoder_is_real_and_normalised(name, dim):
    enc = load_encoder(name)
    X = enc.encode(TEXTS)
    assert X.shape == (3, dim) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert enc.id.startswith(f"{name}@") and len(enc.id.split("@")[1]) == 12
    sims = X @ X.T
    assert sims[0, 1] > sims[0, 2]  # two Python-array texts are closer than a game


@pytest.mark.realmodel
def test_encoder_for_model_id_refuses_other_weights():
    enc = load_encoder("static")
    assert encoder_for_model_id(enc.id).id == enc.id
    with pytest.raises(ModelMismatchError, match="static@000000000000"):
        encoder_for_model_id("static@000000000000")


def test_unknown_encoder_and_missing_mpnet_parts(tmp_path, monkeypatch):
    with pytest.raises(AssetMissingError, match="unknown encoder"):
        load_encoder("no-such-model")
    monkeypatch.setenv("HOTSWAP_HOME", str(tmp_path))
    monkeypatch.setattr(assets, "_mpnet_part", lambda i: tmp_path / f"part{i}")
    (tmp_path / "part1").write_bytes(b"x")
    with pytest.raises(AssetMissingError, match="part2, part3, part4, part5"):
        assets.mpnet_folder()


def test_mpnet_parts_that_are_not_a_zip_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSWAP_HOME", str(tmp_path))
    monkeypatch.setattr(assets, "_mpnet_part", lambda i: tmp_path / f"part{i}")
    for i in range(1, 6):
        (tmp_path / f"part{i}").write_bytes(b"garbage")
    with pytest.raises(AssetMissingError, match="valid zip"):
        assets.mpnet_folder()


def test_embedding_cache_hits_and_keys(tmp_path):
    enc = FakeEncoder()
    X1, hit1 = encode_cached(enc, TEXTS, tmp_path)
    X2, hit2 = encode_cached(enc, TEXTS, tmp_path)
    assert (hit1, hit2) == (False, True) and enc.calls == 1
    np.testing.assert_array_equal(X1, X2)
    assert cache_key("a@1", TEXTS) != cache_key("a@2", TEXTS) != cache_key("a@2", TEXTS[:2])
    # a damaged entry is recomputed, not trusted
    entry = next(tmp_path.rglob("*.npy"))
    entry.write_bytes(entry.read_bytes()[:20])
    _, hit3 = encode_cached(enc, TEXTS, tmp_path)
    assert hit3 is False and enc.calls == 2
