"""The CLI verbs, end to end on a small real slice (static index, minilm queries)."""

import json

import pytest

from hotswap.cli import app
from hotswap.store import open_store

from tests.cli.helpers import ok as _ok, runner

pytestmark = pytest.mark.realmodel


def test_encode_fit_search_eval(tmp_path):
    index, adapter = tmp_path / "old", tmp_path / "affine"
    _ok(["encode", "--model", "static", "--index", str(index), "--max-docs", "300", "--dataset", "debian"])
    store = open_store(index)
    assert len(store) == 300 and store.model_id.startswith("static@")
    _ok(["fit-adapter", "--index", str(index), "--new", "minilm", "--kind", "affine", "--out", str(adapter),
         "--fit-docs", "100", "--max-train-queries", "100"])
    assert json.loads((adapter / "adapter.json").read_text())["old_model_id"] == store.model_id
    out = _ok(["search", "Python library for numerical arrays", "--index", str(index), "--model", "minilm",
               "--adapter", str(adapter), "--k", "3", "--dataset", "debian"])
    assert "adapted" in out and "rank" in out
    _ok(["eval", "--index", str(index), "--mode", "adapted", "--model", "minilm", "--adapter", str(adapter),
         "--max-test-queries", "60", "--out", str(tmp_path / "eval.json")])
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics["n_test_queries"] == 60 and 0.0 < metrics["ndcg@10"] <= 1.0


def test_cross_model_search_without_adapter_is_a_clear_error(tmp_path):
    index = tmp_path / "old"
    _ok(["encode", "--model", "static", "--index", str(index), "--max-docs", "50", "--dataset", "debian"])
    res = runner.invoke(app, ["search", "anything", "--index", str(index), "--mode", "adapted", "--model", "minilm"])
    assert res.exit_code == 2 and "--adapter" in res.output and len(res.output.strip().splitlines()) == 1


def test_every_verb_has_help_with_an_example():
    for verb in ("demo", "encode", "fit-adapter", "search", "eval"):
        assert "Example" in _ok([verb, "--help"])


def test_fit_adapter_auto_saves_only_what_beats_old(tmp_path):
    index, out = tmp_path / "old", tmp_path / "auto"
    _ok(["encode", "--model", "static", "--index", str(index), "--max-docs", "300", "--dataset", "debian"])
    text = _ok(["fit-adapter", "--index", str(index), "--new", "minilm", "--kind", "auto", "--out", str(out),
                "--fit-docs", "100", "--max-train-queries", "150", "--dataset", "debian"])
    assert "validation ndcg@10 on" in text
    scores = {x.split()[0]: float(x.split()[1]) for x in text.splitlines() if x.startswith("  ")}
    assert "old" in scores and "procrustes" in scores and "drift" not in scores  # 384 -> 256: no drift
    best = max((k for k in scores if k != "old"), key=scores.get)
    if scores[best] > scores["old"]:
        assert json.loads((out / "adapter.json").read_text())["name"] == best.split("+")[0]
        assert (out / "blend.json").is_file() == best.endswith("+blend")
        mode = "blended" if best.endswith("+blend") else "adapted"
        _ok(["eval", "--index", str(index), "--mode", mode, "--model", "minilm", "--adapter", str(out),
             "--max-test-queries", "40", "--out", str(tmp_path / "eval.json")])
        assert json.loads((tmp_path / "eval.json").read_text())["mode"] == mode
    else:
        assert "nothing saved" in text and not out.exists()


def test_eval_blended_mode_on_a_saved_blend(tmp_path):
    from hotswap.adapters import make_adapter
    from hotswap.encoders import load_encoder
    from hotswap.search import QueryBlend

    index, folder = tmp_path / "old", tmp_path / "blend"
    _ok(["encode", "--model", "static", "--index", str(index), "--max-docs", "200", "--dataset", "debian"])
    old, new = load_encoder("static"), load_encoder("minilm")
    texts = ["python arrays", "a strategy game", "chinese fonts", "sound mixer", "network tool"] * 20
    adapter = make_adapter("procrustes").fit(new.encode(texts), old.encode(texts), new_model_id=new.id,
                                             old_model_id=old.id)
    QueryBlend(adapter, 0.5).save(folder)
    _ok(["eval", "--index", str(index), "--mode", "blended", "--model", "minilm", "--adapter", str(folder),
         "--max-test-queries", "30", "--out", str(tmp_path / "eval.json")])
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics["mode"] == "blended" and metrics["n_test_queries"] == 30 and 0.0 < metrics["ndcg@10"] <= 1.0
