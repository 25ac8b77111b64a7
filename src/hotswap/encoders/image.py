"""Image encoders for 28×28 grayscale images (the 20-class MNIST + Fashion-MNIST set), with stable ids.

Two backbones map a normalised image ``[n, 1, 28, 28]`` to a pooled feature ``[n, out_dim]``:

* ``ResNet18Cifar`` — ResNet-18 (He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition",
  CVPR 2016): BasicBlocks in four stages of ``[2, 2, 2, 2]`` with widths ``w, 2w, 4w, 8w`` and strides
  ``1, 2, 2, 2``, in the small-image ("CIFAR") form whose stem is one 3×3 stride-1 convolution without
  max-pooling, followed by global average pooling. This is the backbone of the ``iamcl2r`` code of
  Biondi et al. (CVPR 2024, stationary representations for compatible model replacement); ``width=64`` gives
  its 512-d feature, smaller widths keep it affordable on a CPU.
* ``SmallCNN`` — three conv3×3-BN-ReLU-maxpool blocks (``w, 2w, 4w`` channels) and global average pooling:
  fast enough to train in CI on a CPU.

``ImageEmbeddingNet`` adds ``fc1``, a bias-free linear map from the backbone feature into the embedding space
(as ``iamcl2r``'s ``fc1``). ``ImageEncoder`` wraps a trained net in the ``Encoder`` protocol: its ``id`` is
``name@<sha256 prefix of the safetensors serialisation of the state dict>``, which is exactly the
``model.safetensors`` file that ``save`` writes, so ``weights_digest`` of that file gives the same digest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import nn

from hotswap.encoders.progress import PROGRESS_THRESHOLD, maybe_progress
from hotswap.errors import AssetMissingError, CorruptStoreError, InvalidVectorsError
from hotswap.io import atomic_write_bytes, atomic_write_json

IMAGE_SIZE = 28
BACKGROUND = -1.0  # black (0) after the (x/255 - 0.5)/0.5 normalisation
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
NET_KEYS = ("arch", "width", "embed_dim", "in_channels")


def _init_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions, BN weight 1 / bias 0, and channels-last conv weights: with channels-last
    inputs (each backbone's ``forward`` converts) oneDNN trains 1.1-1.6× faster on a CPU. The layout
    never reaches the id or the saved file, which store contiguous tensors."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    # torch's stubs list no memory_format keyword for Module.to, which accepts it (as Tensor.to does)
    module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18Cifar(nn.Module):
    """CIFAR-form ResNet-18: ``[n, in_channels, H, W] -> [n, 8 * width]`` (``out_dim``)."""

    def __init__(self, in_channels: int = 1, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, in_planes = [], width
        for mult, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
            planes = mult * width
            stages.append(nn.Sequential(_BasicBlock(in_planes, planes, stride), _BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_dim = 8 * width
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x.contiguous(memory_format=torch.channels_last))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)


class SmallCNN(nn.Module):
    """Three conv3×3-BN-ReLU-maxpool blocks (``w, 2w, 4w``) + global average pool: ``[n, 4 * width]``."""

    def __init__(self, in_channels: int = 1, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in ((in_channels, width), (width, 2 * width), (2 * width, 4 * width)):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.out_dim = 4 * width
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.features(x.contiguous(memory_format=torch.channels_last)), 1).flatten(1)


Backbone = ResNet18Cifar | SmallCNN  # each has ``out_dim``, the width of its pooled feature
ARCHITECTURES: dict[str, type[Backbone]] = {"resnet18": ResNet18Cifar, "cnn": SmallCNN}


def build_backbone(arch: str, width: int, in_channels: int = 1) -> Backbone:
    """The backbone ``arch`` (a key of ``ARCHITECTURES``) with ``width`` base channels; it has ``out_dim``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown image architecture {arch!r}: choose one of {', '.join(sorted(ARCHITECTURES))}")
    if width < 1 or in_channels < 1:
        raise ValueError(f"width and in_channels must be positive, got width={width}, in_channels={in_channels}")
    return ARCHITECTURES[arch](in_channels=in_channels, width=width)


class ImageEmbeddingNet(nn.Module):
    """``backbone`` + bias-free ``fc1`` into the embedding space; ``forward`` gives unnormalised ``[n, dim]``.

    ``learnable_embedding=True`` adds ``rho``, a square linear layer after ``fc1`` that starts as the identity:
    Seo et al.'s learnable new embedding (WACV 2025), whose output is what the new index stores. The classifier
    of the new model reads the feature before it (``embed_pair``).
    """

    def __init__(self, arch: str = "cnn", width: int = 32, embed_dim: int = 128, in_channels: int = 1,
                 learnable_embedding: bool = False) -> None:
        super().__init__()
        self.config: dict = {"arch": arch, "width": int(width), "embed_dim": int(embed_dim),
                             "in_channels": int(in_channels)}
        if learnable_embedding:
            self.config["learnable_embedding"] = True
        self.backbone = build_backbone(arch, int(width), int(in_channels))
        self.fc1 = nn.Linear(self.backbone.out_dim, int(embed_dim), bias=False)
        self.rho: nn.Linear | None = None
        if learnable_embedding:
            self.rho = nn.Linear(int(embed_dim), int(embed_dim))
            with torch.no_grad():
                self.rho.weight.copy_(torch.eye(int(embed_dim)))
                self.rho.bias.zero_()

    @property
    def dim(self) -> int:
        return self.fc1.out_features

    def embed_pair(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(fc1 feature, stored embedding)``: equal unless ``rho`` is present."""
        pre = self.fc1(self.backbone(x))
        return pre, (pre if self.rho is None else self.rho(pre))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_pair(x)[1]


def _check_images(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images)
    if not (arr.ndim == 3 and arr.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE)
            or arr.ndim == 4 and arr.shape[1:] == (1, IMAGE_SIZE, IMAGE_SIZE)):
        raise InvalidVectorsError(f"expected images of shape [n, {IMAGE_SIZE}, {IMAGE_SIZE}] or "
                                  f"[n, 1, {IMAGE_SIZE}, {IMAGE_SIZE}], got {list(arr.shape)}")
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidVectorsError(f"expected uint8 images (0..255) or floats in [0, 1], got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise InvalidVectorsError("float images contain NaN or infinite values")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise InvalidVectorsError(f"float images must lie in [0, 1], got values in [{arr.min()}, {arr.max()}]; "
                                  "pass uint8 for 0..255 pixels")
    return arr


def _normalise(arr: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if arr.dtype == np.uint8:
        x = x / 255.0
    return ((x - 0.5) / 0.5).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[n, 28, 28]`` / ``[n, 1, 28, 28]`` (or floats in [0, 1]) -> float32 ``[n, 1, 28, 28]`` in [-1, 1]."""
    return _normalise(_check_images(images))


def random_crop(x: torch.Tensor, pad: int = 2, generator: torch.Generator | None = None,
                fill: float = BACKGROUND) -> torch.Tensor:
    """Pad ``[n, c, h, w]`` by ``pad`` with ``fill`` (normalised black) and crop each image back to ``h × w``
    at its own random offset in ``[0, 2 * pad]``. No flips: digits must not be mirrored."""
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    if pad == 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), value=fill)
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def _state_bytes(net: nn.Module) -> bytes:
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    return safetensors.torch.save(state)


def state_digest(net: nn.Module, n_hex: int = 12) -> str:
    """sha256 prefix of the safetensors serialisation of ``net``'s state dict (weights and BN buffers)."""
    return hashlib.sha256(_state_bytes(net)).hexdigest()[:n_hex]


class ImageEncoder:
    """An ``ImageEmbeddingNet`` as an ``Encoder``: uint8 images in, L2-normalised float32 rows out.

    ``id`` is taken when the encoder is built, so wrap the net after training it (or build a new encoder).
    """

    def __init__(self, net: ImageEmbeddingNet, name: str, device: str = "cpu") -> None:
        self.net = net.to(device)
        self.name = name
        self.device = device
        self.dim = net.dim
        self.id = f"{name}@{state_digest(net)}"

    def encode(self, images: np.ndarray, batch_size: int = 512, show_progress: bool | None = None) -> np.ndarray:
        """Embed ``images`` (see ``to_tensor``) in eval mode without gradients: ``np.float32 [n, dim]``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        arr = _check_images(images)
        n = len(arr)
        out = np.empty((n, self.dim), dtype=np.float32)
        show = n >= PROGRESS_THRESHOLD if show_progress is None else show_progress
        was_training = self.net.training
        self.net.eval()
        try:
            with torch.inference_mode(), maybe_progress(show and n > 0) as bar:
                task = bar.add_task(f"encode {self.name}", total=n, rate="")
                for start in range(0, n, batch_size):
                    emb = self.net(_normalise(arr[start : start + batch_size]).to(self.device))
                    out[start : start + len(emb)] = F.normalize(emb.float(), dim=1).cpu().numpy()
                    bar.update(task, advance=len(emb))
        finally:
            self.net.train(was_training)
        return out

    def save(self, folder: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` (net config, name, id) atomically; returns ``folder``."""
        folder = Path(folder)
        data = _state_bytes(self.net)
        atomic_write_bytes(folder / WEIGHTS_FILE, data)
        atomic_write_json(folder / CONFIG_FILE, {**self.net.config, "name": self.name, "id": self.id})
        return folder

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> ImageEncoder:
        """Rebuild a saved encoder; refuses weights whose hash differs from the id in ``config.json``."""
        folder = Path(folder)
        if not folder.is_dir():
            raise AssetMissingError(f"image encoder folder {folder} does not exist")
        cfg_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        for path in (cfg_path, weights_path):
            if not path.is_file():
                raise AssetMissingError(f"{path} is missing: save the encoder with ImageEncoder.save({str(folder)!r})")
        try:
            cfg = json.loads(cfg_path.read_text())
            net = ImageEmbeddingNet(**{k: cfg[k] for k in NET_KEYS},
                                    learnable_embedding=bool(cfg.get("learnable_embedding", False)))
            name, saved_id = str(cfg["name"]), str(cfg["id"])
        except (KeyError, TypeError, ValueError) as e:
            raise CorruptStoreError(f"{cfg_path} is not a valid image encoder config: {e}") from e
        try:
            state = safetensors.torch.load(weights_path.read_bytes())
        except SafetensorError as e:
            raise CorruptStoreError(f"{weights_path} is truncated or not a safetensors file: {e}") from e
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise CorruptStoreError(f"{weights_path} does not match the architecture in {cfg_path}: {e}") from e
        encoder = cls(net, name, device)
        if encoder.id != saved_id:
            raise CorruptStoreError(f"image encoder folder {folder}: the weights hash to {encoder.id} but "
                                    f"config.json records {saved_id}; the folder is corrupt or was edited")
        return encoder

    def __repr__(self) -> str:
        return f"ImageEncoder(id={self.id!r}, dim={self.dim}, arch={self.net.config['arch']!r})"
