"""The offline 20-class image set: MNIST digits (classes 0-9) + Fashion-MNIST (classes 10-19).

Official train/test splits: 120,000 training and 20,000 test images, 28×28 uint8. It stands in for the
papers' CIFAR-100 / GLDv2 / In-shop, which cannot be had offline. Built once by
``python scripts/build_image_dataset.py`` into ``$HOTSWAP_HOME/images`` (default ``~/.cache/hotswap/images``)
as ``mnist_fashion20.npz`` (no pickle) and ``mnist_fashion20.json`` (sha256, counts, sources, licences).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hotswap.encoders.assets import cache_home
from hotswap.errors import AssetMissingError, CorruptStoreError

NPZ_NAME = "mnist_fashion20.npz"
BUILD_COMMAND = "python scripts/build_image_dataset.py"
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot")
CLASS_NAMES = tuple(f"digit {i}" for i in range(10)) + FASHION_NAMES
N_TRAIN, N_TEST = 120_000, 20_000


@dataclass(frozen=True)
class ImageDataset:
    x_train: np.ndarray  # uint8 [120000, 28, 28]
    y_train: np.ndarray  # int64 [120000], 0-9 MNIST, 10-19 Fashion-MNIST
    x_test: np.ndarray   # uint8 [20000, 28, 28]
    y_test: np.ndarray   # int64 [20000]
    class_names: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def default_image_dir() -> Path:
    return cache_home() / "images"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _resolve(path: str | Path | None) -> Path:
    if path is None:
        return default_image_dir() / NPZ_NAME
    path = Path(path)
    return path / NPZ_NAME if path.is_dir() else path


def load_image_dataset(path: str | Path | None = None, verify: bool = True) -> ImageDataset:
    """Load the 20-class MNIST + Fashion-MNIST set from its ``.npz`` (a folder or the file; default cache).

    The sha256 recorded in the sidecar JSON is checked (``verify=False`` skips it); shapes, dtypes and label
    ranges are always checked. Missing files raise :class:`AssetMissingError`, a file that does not match
    raises :class:`CorruptStoreError`; both name the build command.
    """
    npz = _resolve(path)
    meta_path = npz.with_suffix(".json")
    fix = f"run {BUILD_COMMAND}" + (f" --out {npz.parent}" if path is not None else "")
    if not npz.is_file():
        raise AssetMissingError(f"image dataset not found at {npz}: {fix}")
    if not meta_path.is_file():
        raise AssetMissingError(f"image dataset metadata not found at {meta_path}: {fix}")
    try:
        meta = json.loads(meta_path.read_text())
        expected_sha = meta["sha256"]
    except (ValueError, KeyError) as e:
        raise CorruptStoreError(f"image dataset metadata {meta_path} is unreadable ({e}): {fix}") from e
    if verify:
        actual = sha256_file(npz)
        if actual != expected_sha:
            raise CorruptStoreError(f"image dataset {npz} has sha256 {actual}, metadata records {expected_sha} "
                                    f"(truncated or edited): {fix}")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise CorruptStoreError(f"image dataset {npz} is unreadable ({e}): {fix}") from e
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.shape != (n, 28, 28):
            raise CorruptStoreError(f"x_{split} is {x.dtype} {x.shape}, expected uint8 ({n}, 28, 28): {fix}")
        if y.dtype != np.int64 or y.shape != (n,) or y.min() < 0 or y.max() >= len(CLASS_NAMES):
            raise CorruptStoreError(f"y_{split} is {y.dtype} {y.shape} or out of 0..19, expected int64 ({n},): {fix}")
    return ImageDataset(class_names=list(CLASS_NAMES), **arrays)
