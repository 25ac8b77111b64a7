import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hotswap.encoders.base import Encoder, weights_digest
from hotswap.encoders.image import (
    ARCHITECTURES,
    ImageEmbeddingNet,
    ImageEncoder,
    ResNet18Cifar,
    SmallCNN,
    build_backbone,
    random_crop,
    to_tensor,
)
from hotswap.errors import AssetMissingError, CorruptStoreError, InvalidVectorsError


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def _net(seed: int = 0, arch: str = "cnn", width: int = 8, embed_dim: int = 16) -> ImageEmbeddingNet:
    torch.manual_seed(seed)
    net = ImageEmbeddingNet(arch=arch, width=width, embed_dim=embed_dim)
    net.train()
    with torch.no_grad():  # move the BN running stats off their defaults so save/load must carry them
        for _ in range(2):
            net(to_tensor(_images(16, seed=seed + 1)))
    return net


@pytest.mark.parametrize("arch,width,out_dim", [("cnn", 32, 128), ("cnn", 8, 32), ("resnet18", 8, 64),
                                                 ("resnet18", 4, 32)])
def test_backbone_and_net_shapes(arch, width, out_dim):
    torch.manual_seed(0)
    backbone = build_backbone(arch, width)
    assert isinstance(backbone, ARCHITECTURES[arch]) and backbone.out_dim == out_dim
    x = torch.randn(5, 1, 28, 28)
    assert backbone(x).shape == (5, out_dim)
    net = ImageEmbeddingNet(arch=arch, width=width, embed_dim=24)
    assert net.dim == 24 and net.fc1.in_features == out_dim and net.fc1.bias is None
    assert net.config == {"arch": arch, "width": width, "embed_dim": 24, "in_channels": 1}
    assert net(x).shape == (5, 24)


def test_backbone_defaults_and_init():
    assert ResNet18Cifar().out_dim == 512 and SmallCNN().out_dim == 128
    net = ResNet18Cifar(in_channels=3, width=4)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and net.conv1.in_channels == 3
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 32)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in bns)


def test_unknown_arch_names_the_choices():
    with pytest.raises(ValueError, match="'vit'.*cnn, resnet18"):
        build_backbone("vit", 8)


def test_to_tensor_scales_to_minus_one_one():
    imgs = np.zeros((3, 28, 28), dtype=np.uint8)
    imgs[1] = 255
    imgs[2, 0, 0] = 51
    x = to_tensor(imgs)
    assert x.dtype == torch.float32 and x.shape == (3, 1, 28, 28)
    assert torch.all(x[0] == -1) and torch.all(x[1] == 1)
    assert x[2, 0, 0, 0].item() == pytest.approx(51 / 255 * 2 - 1)
    torch.testing.assert_close(to_tensor(imgs[:, None]), x)
    torch.testing.assert_close(to_tensor(imgs.astype(np.float64) / 255), x)
    assert to_tensor(np.zeros((0, 28, 28), dtype=np.uint8)).shape == (0, 1, 28, 28)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((2, 28, 28), dtype=np.int64), "dtype int64"),
    (np.zeros((2, 28, 27), dtype=np.uint8), r"shape.*\[2, 28, 27\]"),
    (np.zeros((2, 3, 28, 28), dtype=np.uint8), "shape"),
    (np.zeros((28, 28), dtype=np.uint8), "shape"),
    (np.full((2, 28, 28), np.nan, dtype=np.float32), "NaN"),
    (np.full((2, 28, 28), 255.0, dtype=np.float32), r"\[0, 1\]"),
])
def test_to_tensor_rejects_bad_input(bad, match):
    with pytest.raises(InvalidVectorsError, match=match):
        to_tensor(bad)


def test_random_crop_matches_a_naive_padded_crop():
    x = torch.randn(64, 2, 28, 28)
    assert random_crop(x, pad=0) is x
    g = torch.Generator().manual_seed(0)
    out = random_crop(x, pad=2, generator=g)
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)
    offsets = []
    for i in range(len(x)):
        hits = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(out[i], padded[i, :, dy:dy + 28, dx:dx + 28])]
        assert len(hits) == 1, f"image {i} is not a crop of its padded self"
        offsets.append(hits[0])
    assert len(set(offsets)) > 10  # each image draws its own offset
    torch.testing.assert_close(random_crop(x, pad=2, generator=torch.Generator().manual_seed(0)), out)
    with pytest.raises(ValueError, match="pad"):
        random_crop(x, pad=-1)


def test_encode_is_unit_norm_deterministic_and_batch_independent():
    enc = ImageEncoder(_net(), "cnn-test")
    assert isinstance(enc, Encoder) and enc.dim == 16
    imgs = _images(40)
    X = enc.encode(imgs)
    assert X.shape == (40, 16) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(enc.encode(imgs), X)
    np.testing.assert_allclose(enc.encode(imgs, batch_size=7, show_progress=True), X, atol=1e-5)
    np.testing.assert_allclose(enc.encode(imgs[:, None].astype(np.float32) / 255), X, atol=1e-5)
    assert enc.net.training  # encode switches to eval and back
    assert enc.encode(np.zeros((0, 28, 28), dtype=np.uint8)).shape == (0, 16)


def test_id_follows_the_weights():
    a, b = _net(seed=0), _net(seed=1)
    enc_a = ImageEncoder(a, "m")
    name, digest = enc_a.id.split("@")
    assert name == "m" and len(digest) == 12 and int(digest, 16) >= 0
    assert ImageEncoder(b, "m").id != enc_a.id
    b.load_state_dict(a.state_dict())
    assert ImageEncoder(b, "m").id == enc_a.id
    with torch.no_grad():
        b.fc1.weight[0, 0] += 1e-3
    assert ImageEncoder(b, "m").id != enc_a.id


def test_save_load_round_trip(tmp_path):
    enc = ImageEncoder(_net(arch="resnet18", width=4), "res-test")
    folder = enc.save(tmp_path / "enc")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg == {"arch": "resnet18", "width": 4, "embed_dim": 16, "in_channels": 1, "name": "res-test",
                   "id": enc.id}
    assert enc.id.endswith(weights_digest(folder / "model.safetensors"))
    loaded = ImageEncoder.load(folder)
    assert loaded.id == enc.id and loaded.name == "res-test" and loaded.dim == 16
    imgs = _images(9)
    np.testing.assert_array_equal(loaded.encode(imgs), enc.encode(imgs))


def test_load_refuses_missing_truncated_and_edited_folders(tmp_path):
    with pytest.raises(AssetMissingError, match="nope"):
        ImageEncoder.load(tmp_path / "nope")
    folder = ImageEncoder(_net(), "m").save(tmp_path / "enc")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()

    weights.unlink()
    with pytest.raises(AssetMissingError, match="model.safetensors"):
        ImageEncoder.load(folder)

    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptStoreError, match="model.safetensors"):
        ImageEncoder.load(folder)

    weights.write_bytes(data)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "id": "m@000000000000"}))
    with pytest.raises(CorruptStoreError, match="enc"):
        ImageEncoder.load(folder)

    (folder / "config.json").write_text(json.dumps({**cfg, "width": 16}))
    with pytest.raises(CorruptStoreError, match="architecture"):
        ImageEncoder.load(folder)


def test_small_cnn_overfits_two_patterns():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    protos = rng.integers(0, 256, size=(2, 28, 28))
    y = np.arange(64) % 2
    imgs = np.clip(protos[y] + rng.normal(0, 40, size=(64, 28, 28)), 0, 255).astype(np.uint8)
    x, target = to_tensor(imgs), torch.from_numpy(y)
    net = ImageEmbeddingNet(arch="cnn", width=8, embed_dim=16)
    head = torch.nn.Linear(16, 2)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(head(net(random_crop(x, pad=1))), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert net.backbone.features[0].weight.grad.abs().sum() > 0
    assert losses[-1] < 0.25 * losses[0], losses


def test_learnable_embedding_starts_as_identity_and_round_trips(tmp_path):
    torch.manual_seed(0)
    net = ImageEmbeddingNet("cnn", 8, 16, learnable_embedding=True)
    x = torch.randn(5, 1, 28, 28)
    net.eval()
    pre, post = net.embed_pair(x)
    assert torch.allclose(pre, post, atol=1e-6) and torch.allclose(net(x), post)
    with torch.no_grad():
        net.rho.weight.mul_(2.0)
    enc = ImageEncoder(net, "rho")
    enc.save(tmp_path / "m")
    back = ImageEncoder.load(tmp_path / "m")
    assert back.net.rho is not None and back.id == enc.id
    images = (np.random.default_rng(0).random((6, 28, 28)) * 255).astype(np.uint8)
    np.testing.assert_allclose(back.encode(images), enc.encode(images), atol=1e-6)
    plain = ImageEmbeddingNet("cnn", 8, 16)
    assert plain.rho is None and "learnable_embedding" not in plain.config
