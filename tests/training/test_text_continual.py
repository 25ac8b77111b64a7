"""ContinualTrainer on a tiny real slice: two tasks, saved models, drift vectors, KD flag, resume."""

import json

import numpy as np
import pytest

from hotswap.data import load_dataset
from hotswap.encoders import load_encoder
from hotswap.training import ContinualConfig, ContinualTrainer, TextTask, load_deltas

pytestmark = pytest.mark.realmodel


@pytest.fixture(scope="module")
def tasks():
    ds = load_dataset("debian", max_docs=120, max_train_queries=60, seed=0)
    pairs = [(ds.train_queries[q], next(iter(rel))) for q, rel in ds.train_qrels.items()]
    half = len(pairs) // 2
    return [TextTask("a", pairs[:half][:12], ds.corpus), TextTask("b", pairs[half:][:12], ds.corpus),
            TextTask("c", pairs[:12], ds.corpus)]


CFG = ContinualConfig(kd=True, batch_size=6, max_seq_length=32, hard_negatives=1, negative_ranks=(2, 10), lr=1e-4)


def test_two_tasks_then_resume_with_a_third(tmp_path, tasks):
    trainer = ContinualTrainer(tmp_path / "run", "minilm", CFG, progress=False)
    m = trainer.fit(tasks[:2])
    assert [t["name"] for t in m["tasks"]] == ["a", "b"] and [t["kd"] for t in m["tasks"]] == [False, True]
    assert all(t["steps"] == 2 and t["pairs"] == 12 for t in m["tasks"])
    deltas = load_deltas(m)
    assert deltas.shape == (2, 384) and np.all(np.linalg.norm(deltas, axis=1) > 0)
    assert [t["drift_norm"] for t in m["tasks"]] == pytest.approx(list(np.linalg.norm(deltas, axis=1)), rel=1e-5)
    enc = load_encoder(m["tasks"][1]["folder"])
    assert enc.id == m["tasks"][1]["model_id"] and enc.id != load_encoder("minilm").id
    # the drift of task 2 is the mean change of its training queries between f_1 and f_2
    f1, f2 = load_encoder(m["tasks"][0]["folder"]), enc
    queries = [q for q, _ in tasks[1].pairs]
    assert np.allclose(deltas[1], (f2.encode(queries) - f1.encode(queries)).mean(0), atol=1e-4)
    # resume: finished tasks are skipped, the next one starts from f_2
    before = json.loads((tmp_path / "run" / "manifest.json").read_text())
    m3 = ContinualTrainer(tmp_path / "run", "minilm", CFG, progress=False).fit(tasks)
    assert m3["tasks"][:2] == before["tasks"] and m3["tasks"][2]["name"] == "c"


def test_refuses_another_config_or_sequence(tmp_path, tasks):
    ContinualTrainer(tmp_path / "run", "minilm", CFG, progress=False).fit(tasks[:1])
    with pytest.raises(Exception, match="another start model or config"):
        ContinualTrainer(tmp_path / "run", "minilm", ContinualConfig(kd=False), progress=False).fit(tasks[:1])
    with pytest.raises(Exception, match="do not start the given sequence"):
        ContinualTrainer(tmp_path / "run", "minilm", CFG, progress=False).fit(tasks[1:])


def test_a_run_that_starts_after_task_one_distils_from_its_first_task(tmp_path, tasks):
    first = ContinualTrainer(tmp_path / "ft", "minilm", CFG, progress=False).fit(tasks[:1])["tasks"][0]["folder"]
    m = ContinualTrainer(tmp_path / "kd", first, CFG, progress=False, first_task=2).fit(tasks[1:2])
    assert m["tasks"][0]["kd"] is True and m["tasks"][0]["folder"].endswith("task-02-b")
