"""save/load round trips for every registered adapter; the JSON records how the artifact was made."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hotswap.adapters import (Adapter, Affine, Procrustes, available_adapters, get_adapter_class, load_adapter,
                              make_adapter)
from hotswap.errors import CorruptStoreError, NotFittedError

FAST = {"residual_mlp": {"hidden": 16, "max_epochs": 3}, "low_rank": {"rank": 4}, "reverse": {"epochs": 30}}


def fitted(name: str) -> tuple[Adapter, np.ndarray]:
    rng = np.random.default_rng(1)
    d_new, d_old = (12, 12) if get_adapter_class(name).equal_dims else (12, 8)
    X_new = rng.standard_normal((200, d_new)).astype(np.float32)
    X_old = np.tanh(X_new @ rng.standard_normal((d_new, d_old))).astype(np.float32)
    adapter = make_adapter(name, **FAST.get(name, {}))
    return adapter.fit(X_new, X_old, new_model_id="new@2", old_model_id="old@1"), X_new[:17]


@pytest.mark.parametrize("name", available_adapters())
def test_round_trip_gives_identical_transforms(name, tmp_path):
    adapter, queries = fitted(name)
    adapter.save(tmp_path / name)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["adapter.json", "adapter.safetensors"]
    loaded = load_adapter(tmp_path / name)
    assert type(loaded) is type(adapter) and loaded.get_params() == adapter.get_params()
    out = loaded.transform(queries, model_id="new@2")
    assert out.dtype == np.float32 and out.shape == (17, adapter.dim_out_)
    np.testing.assert_array_equal(out, adapter.transform(queries))
    assert type(adapter).load(tmp_path / name).transform(queries).tobytes() == out.tobytes()

    meta = json.loads((tmp_path / name / "adapter.json").read_text())
    assert meta["name"] == name and meta["config_version"] == 1
    assert (meta["new_model_id"], meta["old_model_id"]) == ("new@2", "old@1")
    assert (meta["dim_in"], meta["dim_out"], meta["n_fit_pairs"]) == (12, adapter.dim_out_, 200)
    assert meta["params"] == adapter.get_params() and meta["hotswap_version"]


def test_load_checks_the_class_the_checksum_and_the_version(tmp_path):
    adapter, _ = fitted("affine")
    folder = adapter.save(tmp_path / "a")
    assert isinstance(Affine.load(folder), Affine)
    with pytest.raises(TypeError, match="not a Procrustes"):
        Procrustes.load(folder)
    meta = json.loads((folder / "adapter.json").read_text())
    (folder / "adapter.json").write_text(json.dumps({**meta, "config_version": 99}))
    with pytest.raises(ValueError, match="upgrade hotswap"):
        load_adapter(folder)
    (folder / "adapter.json").write_text(json.dumps(meta))
    blob = bytearray((folder / "adapter.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (folder / "adapter.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CorruptStoreError, match="checksum"):
        load_adapter(folder)
    with pytest.raises(FileNotFoundError, match="adapter.json"):
        load_adapter(tmp_path / "missing")


def test_saving_an_unfitted_adapter_is_refused(tmp_path):
    with pytest.raises(NotFittedError, match="fit"):
        make_adapter("procrustes").save(tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_save_overwrites_atomically_and_reloads_the_new_state(tmp_path):
    first, queries = fitted("procrustes")
    first.save(tmp_path / "a")
    rng = np.random.default_rng(5)
    second = make_adapter("procrustes").fit(rng.standard_normal((50, 12)), rng.standard_normal((50, 8)))
    second.save(tmp_path / "a")
    np.testing.assert_array_equal(load_adapter(tmp_path / "a").transform(queries), second.transform(queries))
    assert [p.name for p in (tmp_path / "a").iterdir() if p.name.endswith(".tmp")] == []


def test_every_adapter_and_a_chain_load_in_a_fresh_process(tmp_path):
    """``load_adapter`` in a process that imported nothing but ``hotswap.adapters`` gives the same transforms
    (a saved chain included: its module is imported on demand)."""
    import subprocess
    import sys

    from hotswap.adapters.chain import ComposedAdapter

    cases = {name: fitted(name) for name in available_adapters()}
    rng = np.random.default_rng(2)
    X3, X2 = rng.standard_normal((80, 6)).astype(np.float32), rng.standard_normal((80, 12)).astype(np.float32)
    a32 = make_adapter("procrustes").fit(X3, X2, new_model_id="v3@1", old_model_id="new@2")
    a21 = cases["affine"][0]  # 12 -> 8, new@2 -> old@1
    cases["chain"] = (ComposedAdapter([a32, a21]), X3[:5])
    for name, (adapter, queries) in cases.items():
        adapter.save(tmp_path / name)
        np.save(tmp_path / f"{name}.q.npy", queries)
        np.save(tmp_path / f"{name}.out.npy", adapter.transform(queries))
    code = ("import sys, numpy as np\nfrom hotswap.adapters import load_adapter\n"
            "for name in sys.argv[2:]:\n"
            "    root = sys.argv[1]\n"
            "    out = load_adapter(f'{root}/{name}').transform(np.load(f'{root}/{name}.q.npy'))\n"
            "    assert np.array_equal(out, np.load(f'{root}/{name}.out.npy')), name\n"
            "    print(name, 'ok')\n")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path), *cases], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split().count("ok") == len(cases)
