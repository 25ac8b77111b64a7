"""The QDC protocol on a tiny real slice: two tasks, every method's matrix, QDC differs from FT."""

import numpy as np
import pytest

from hotswap_harness.experiments.protocols.qdc import plot_matrices, table
from hotswap_harness.experiments.qdc import QDCConfig, run_qdc_experiment

# real training runs (~2 min in all): the slow tier (pytest -m slow); the protocol's wiring, merging and files are
# checked fast on canned results in test_qdc_protocol.py, the trainer in tests/training/test_text_continual.py
pytestmark = [pytest.mark.realmodel, pytest.mark.slow]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qdc")
    cfg = QDCConfig(scale="tiny", tasks=("games", "media"), workdir=str(tmp / "runs"), cache_dir=str(tmp / "cache"),
                    lr=1e-4, batch_size=16)
    return run_qdc_experiment(cfg, progress=False)


def test_results_shape(result):
    assert result["tasks"] == ["games", "media"] and result["model"].startswith("minilm@")
    methods = [r["method"] for r in result["rows"]]
    assert methods == ["FT", "FT+reindex", "FT+QDC", "FT+KD", "FT+KD+QDC", "FT+procrustes", "FT+affine", "joint"]
    for r in result["rows"]:
        shape = (1, 2) if r["method"] == "joint" else (2, 2)
        assert np.array(r["matrix"]).shape == shape and 0 < r["avg_ndcg@10"] <= 1
        assert r["avg_ndcg@10"] == pytest.approx(float(np.mean(r["matrix"][-1])))
    assert len(result["drift_norms"]) == 2 and all(v > 0 for v in result["drift_norms"])
    assert result["wall_s"] > 0
    assert result["setting"] == "debian-sections" and {r["setting"] for r in result["rows"]} == {"debian-sections"}
    ft = result["rows"][0]["matrix"]
    assert result["forgetting"] == [0.0, pytest.approx(ft[0][0] - ft[1][0])]


def test_five_sources_sequence_runs_end_to_end(tmp_path):
    cfg = QDCConfig(scale="tiny", sequence="sources", tasks=("jargon", "pydoc"), workdir=str(tmp_path / "runs"),
                    cache_dir=str(tmp_path / "cache"), lr=1e-4, batch_size=16)
    result = run_qdc_experiment(cfg, progress=False)
    assert result["tasks"] == ["jargon", "pydoc"] and result["setting"] == "five-sources"
    assert [s["task"] for s in result["task_sizes"]] == ["jargon", "pydoc"]
    ft = result["rows"][0]["matrix"]
    assert result["forgetting"] == [0.0, pytest.approx(ft[0][0] - ft[1][0])]
    assert all(0 < r["avg_ndcg@10"] <= 1 for r in result["rows"])


def test_methods_agree_after_task_one_and_qdc_moves_queries_after_task_two(result):
    rows = {r["method"]: r["matrix"] for r in result["rows"]}
    # after task 1 every method uses f_1 on the f_1 index (no drift yet, KD starts at task 2)
    for m in ("FT+reindex", "FT+QDC", "FT+KD", "FT+KD+QDC", "FT+procrustes", "FT+affine"):
        assert rows[m][0] == pytest.approx(rows["FT"][0])
    assert rows["FT+QDC"][1] != rows["FT"][1]  # the drift of task 2 changes the rankings


def test_report(result, tmp_path):
    assert table(result).row_count == 8
    assert plot_matrices(result, tmp_path / "qdc.png").stat().st_size > 0


def test_recipe_search_chooses_on_validation_queries_only(tmp_path):
    from hotswap_harness.experiments.qdc import load_tasks
    from hotswap_harness.experiments.qdc_recipe import choose, run_recipe_search, split_validation

    cfg = QDCConfig(scale="tiny", sequence="sources", tasks=("jargon", "pydoc"), workdir=str(tmp_path / "runs"),
                    cache_dir=str(tmp_path / "cache"), batch_size=16)
    task = load_tasks(cfg)[0]
    train, val = split_validation(task)
    assert set(val.data.queries) <= set(task.data.train_queries)
    assert not set(val.data.queries) & set(train.data.train_queries)
    assert not set(val.data.queries) & set(task.data.queries)  # test queries are never validation queries
    assert set(train.data.train_queries) | set(val.data.queries) == set(task.data.train_queries)
    result = run_recipe_search(cfg, [(1, 1e-5), (2, 1e-4)], progress=False)
    a, b = result["candidates"]
    assert (a["epochs"], b["epochs"]) == (1, 2) and b["steps_per_task"] == 2 * a["steps_per_task"]
    assert all(c["forgetting"][0] == 0.0 and len(c["forgetting"]) == 2 for c in (a, b))
    assert result["chosen"] == {"epochs": choose([a, b])["epochs"], "lr": choose([a, b])["lr"],
                                "meets_gate": choose([a, b])["forgetting"][-1] >= 0.03}
    cheap, long = {"steps_per_task": 2, "lr": 1e-4, "forgetting": [0, 0.05]}, {"steps_per_task": 8, "lr": 1e-5,
                                                                                 "forgetting": [0, 0.09]}
    assert choose([long, cheap]) is cheap and choose([{**cheap, "forgetting": [0, 0.01]}, long]) is long
