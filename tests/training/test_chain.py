"""The chain trainer: replacement vs fine-tuning, the old model per method, rehearsal, saved models, reuse."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.training.chain import old_model_for, train_chain
from hotswap.training.classification import BCLConfig, train_step
from tests.training.test_classification import XQ, X, Y


def _config(method: str):
    def config_for(t: int, init) -> BCLConfig:
        return BCLConfig(method=method, arch="cnn", width=8, embed_dim=16, n_classes=4, preallocated=17, epochs=1,
                         batch_size=16, lr=0.05, seed=t)
    return config_for


def test_old_model_table():
    prev, repl = object(), object()
    assert old_model_for("independent", True, prev, repl) is None
    assert old_model_for("independent", False, prev, prev) is None
    assert old_model_for("dsimplex", True, prev, repl) is repl       # the replacement anchors itself (paper code)
    assert old_model_for("dsimplex", False, prev, prev) is prev
    assert old_model_for("bct", True, prev, repl) is prev
    assert old_model_for("ndpp", False, prev, prev) is prev


@pytest.mark.parametrize("method", ["bct", "dsimplex"])
def test_chain_replaces_fine_tunes_rehearses_and_reuses(tmp_path, method):
    cfg = BCLConfig(method="dsimplex" if method == "dsimplex" else "independent", arch="cnn", width=8, embed_dim=16,
                    n_classes=4, preallocated=17, epochs=1, batch_size=16, seed=9)
    replacement = {t: train_step(cfg, X, Y, np.arange(len(Y)), name=f"r{t}") for t in (0, 2)}
    for r in replacement.values():
        r.info["recipe_key"] = r.name
    tasks = [[0], [1], [2, 3]]
    run = lambda: train_chain(method, tasks, X, Y, np.arange(len(Y)), _config(method), replacement,
                              tmp_path / method, embed={"query": XQ}, memory_per_class=3)
    chain = run()
    s = chain.steps
    assert [st["replaced"] for st in s] == [True, False, True]
    assert [st["init"] for st in s] == ["r0", f"{method}-t0", "r2"]
    expected_old = [None, f"{method}-t0", f"{method}-t1"] if method == "bct" else ["r0", f"{method}-t0", "r2"]
    assert [st["old"] for st in s] == expected_old
    assert [st["memory_images"] for st in s] == [0, 3, 6]
    assert [m.classes for m in chain.models][-1] == [0, 1, 2, 3]
    assert len(chain.embeddings["query"]) == 3 and chain.embeddings["query"][0].shape == (len(XQ), 16)
    assert (tmp_path / method / "task1" / "model.safetensors").is_file()
    assert np.load(tmp_path / method / "task2" / "query.npy").dtype == np.float16
    again = run()
    assert all(st["reused"] for st in again.steps)
    np.testing.assert_allclose(again.embeddings["query"][2], chain.embeddings["query"][2], atol=1e-6)
