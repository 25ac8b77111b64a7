"""The reverse query transform psi (fit, numpy transform, save/load) and the learnable new embedding rho."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hotswap.errors import AssetMissingError, CorruptStoreError, DimensionMismatchError, InvalidVectorsError
from hotswap.adapters.reverse_transform import LearnableEmbedding, ReverseTransform, fit_reverse_transform


@pytest.fixture(autouse=True)
def _one_thread():
    """The fits here are tiny: a second intra-op thread only adds synchronisation, which is very slow on a busy
    machine. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _l2(pred, target):
    return float(np.mean(np.sum((pred - target) ** 2, axis=1)))


def _toy_linear(d_new, d_old, n=256, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    new = rng.standard_normal((n, d_new)).astype(np.float32)
    a = rng.standard_normal((d_new, d_old)).astype(np.float32) / np.sqrt(d_new)
    old = new @ a + noise * rng.standard_normal((n, d_old)).astype(np.float32)
    return new, old


def test_linear_psi_beats_the_identity_map_when_dims_are_equal():
    new, old = _toy_linear(8, 8)
    psi = fit_reverse_transform(new, old)
    fitted, identity = _l2(psi.transform(new), old), _l2(new, old)
    assert fitted < 0.01 * identity
    assert fitted < 0.05                       # close to the noise floor (8 * 0.01**2 = 0.0008)


def test_linear_psi_beats_the_mean_predictor_when_dims_differ():
    new, old = _toy_linear(12, 8, seed=1)
    psi = fit_reverse_transform(new, old)
    assert psi.transform(new).shape == (256, 8)
    assert _l2(psi.transform(new), old) < 0.02 * _l2(np.broadcast_to(old.mean(0), old.shape), old)


def test_mlp_psi_fits_a_mildly_nonlinear_map():
    rng = np.random.default_rng(2)
    new = rng.standard_normal((256, 6)).astype(np.float32)
    a = rng.standard_normal((6, 4)).astype(np.float32) / np.sqrt(6)
    old = np.tanh(1.5 * new @ a).astype(np.float32)
    psi = fit_reverse_transform(new, old, hidden=32, epochs=300)
    assert psi.mlp is not None
    err = _l2(psi.transform(new), old)
    assert err < 0.3 * _l2(np.broadcast_to(old.mean(0), old.shape), old)
    assert err < 0.7 * _l2(fit_reverse_transform(new, old).transform(new), old)   # and beats the linear psi


def test_mlp_variant_starts_as_a_linear_map():
    psi = ReverseTransform(5, 3, hidden=7)
    z = torch.randn(4, 5)
    assert torch.equal(psi(z), psi.linear(z))


def test_cosine_loss_fits_directions_and_normalise_gives_unit_rows():
    new, old = _toy_linear(10, 6, seed=3)
    psi = fit_reverse_transform(new, old, loss="cosine")
    out = psi.transform(new, normalise=True)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    target = old / np.linalg.norm(old, axis=1, keepdims=True)
    assert float(np.mean(np.sum(out * target, axis=1))) > 0.98


def test_fit_is_deterministic_and_leaves_the_global_rng_alone():
    new, old = _toy_linear(6, 4, n=64, seed=4)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    psi1 = fit_reverse_transform(new, old, epochs=20, seed=7, batch_size=16)
    after = torch.rand(1)
    psi2 = fit_reverse_transform(new, old, epochs=20, seed=7, batch_size=16)
    assert torch.equal(before, after)
    np.testing.assert_array_equal(psi1.transform(new), psi2.transform(new))


def test_transform_single_vector_and_dimension_checks():
    psi = ReverseTransform(4, 3)
    v = np.ones(4, dtype=np.float64)
    assert psi.transform(v).shape == (3,) and psi.transform(v).dtype == np.float32
    with pytest.raises(DimensionMismatchError):
        psi.transform(np.ones((2, 5)))
    with pytest.raises(InvalidVectorsError):
        psi.transform(np.array([[np.nan, 0, 0, 0]]))
    with pytest.raises(InvalidVectorsError):
        fit_reverse_transform(np.ones((5, 4)), np.ones((4, 3)))
    with pytest.raises(ValueError):
        fit_reverse_transform(np.ones((5, 4)), np.ones((5, 3)), loss="l1")


@pytest.mark.parametrize("hidden", [None, 6])
def test_save_load_round_trip(tmp_path, hidden):
    new, old = _toy_linear(5, 3, n=32, seed=5)
    psi = fit_reverse_transform(new, old, hidden=hidden, epochs=5)
    psi.save(tmp_path / "psi")
    back = ReverseTransform.load(tmp_path / "psi")
    assert back.config == psi.config
    np.testing.assert_array_equal(back.transform(new), psi.transform(new))
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "psi").iterdir())


def test_truncated_weights_raise_corrupt_store_error_naming_the_file(tmp_path):
    ReverseTransform(5, 3, hidden=4).save(tmp_path)
    weights = tmp_path / "reverse_transform.safetensors"
    weights.write_bytes(weights.read_bytes()[:-20])
    with pytest.raises(CorruptStoreError, match="reverse_transform.safetensors"):
        ReverseTransform.load(tmp_path)


def test_edited_weights_raise_corrupt_store_error(tmp_path):
    psi = ReverseTransform(5, 3)
    psi.save(tmp_path)
    with torch.no_grad():
        psi.linear.weight.add_(1.0)
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in psi.state_dict().items()}, str(tmp_path / "reverse_transform.safetensors"))
    with pytest.raises(CorruptStoreError, match="sha256"):
        ReverseTransform.load(tmp_path)


def test_missing_folder_or_file_raises_asset_missing_error(tmp_path):
    with pytest.raises(AssetMissingError):
        ReverseTransform.load(tmp_path / "nowhere")
    ReverseTransform(2, 2).save(tmp_path)
    (tmp_path / "reverse_transform.json").unlink()
    with pytest.raises(AssetMissingError):
        ReverseTransform.load(tmp_path)


def test_rho_starts_as_the_identity_and_round_trips(tmp_path):
    rho = LearnableEmbedding(6)
    z = torch.randn(3, 6)
    assert torch.equal(rho(z), z)
    with torch.no_grad():
        rho.linear.bias.add_(0.5)
    rho.save(tmp_path)
    ReverseTransform(6, 4).save(tmp_path)                 # both can share a folder
    back = LearnableEmbedding.load(tmp_path)
    assert torch.equal(back(z), rho(z))
    assert ReverseTransform.load(tmp_path).dim_new == 6
