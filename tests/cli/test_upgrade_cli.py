"""The whole life cycle from the CLI on a small real slice, with nothing but the index named after encode:
encode (records its dataset and model) -> backfill part way -> search / eval on the upgrade in every mode ->
upgrade status / resume / commit, and a second upgrade rolled back; errors are one line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotswap.cli import app
from hotswap.store import open_store
from hotswap.store.provenance import read_provenance
from tests.cli.helpers import ok as _ok, ok_json, runner

pytestmark = pytest.mark.realmodel



def test_life_cycle_of_an_upgrade(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # paths relative to a folder that is not the repository's
    index, up = "old", "up"
    built = ok_json(["encode", "--model", "static", "--index", index, "--dataset", "debian", "--max-docs", "200"])
    assert built["documents"] == 200 and built["model_id"].startswith("static@")
    prov = read_provenance(index)
    assert prov["dataset"]["name"] == "debian" and built["model_id"] in prov["models"]

    _ok(["backfill", "--index", index, "--upgrade", up, "--new", "minilm", "--until", "0.5", "--batch-size", "50"])
    state = ok_json(["upgrade", "status", up])
    assert state["state"] == "paused" and (state["done"], state["total"]) == (100, 200)
    found = ok_json(["upgrade", "status", "--index", index])  # found through the index's record
    assert Path(found["upgrade"]).resolve() == (tmp_path / up).resolve() and found["done"] == 100

    scores = {}
    for mode in ("old", "merged", "calibrated", "new", "cascade"):
        res = ok_json(["eval", "--upgrade", up, "--mode", mode, "--max-test-queries", "40", "--calibration-docs", "60"])
        assert res["mode"] == mode and res["n_test_queries"] == 40 and 0.0 < res["ndcg@10"] <= 1.0
        scores[mode] = res
    assert scores["old"]["negative_flip_rate"] == 0.0
    assert scores["old"]["index"] == up
    assert Path(scores["new"]["index"].split()[0]).resolve() == (tmp_path / up / "new")
    assert ok_json(["upgrade", "status", up])["done"] == 100  # eval measured; it wrote nothing

    hits = ok_json(["search", "Python library for numerical arrays", "--upgrade", up, "--k", "3"])
    assert hits["mode"] == "merged" and len(hits["results"]) == 3 and hits["results"][0]["text"]

    res = runner.invoke(app, ["upgrade", "commit", up])
    assert res.exit_code == 2 and "cannot commit an upgrade that is paused" in res.output
    assert len(res.output.strip().splitlines()) == 1

    _ok(["upgrade", "resume", up])
    assert ok_json(["upgrade", "status", up])["state"] == "complete"
    complete = ok_json(["eval", "--upgrade", up, "--mode", "new", "--max-test-queries", "40"])
    committed = ok_json(["upgrade", "commit", up])
    assert committed["model_id"].startswith("minilm@")
    with open_store(index) as store:
        assert store.model_id == committed["model_id"] and len(store) == 200
    assert read_provenance(index)["dataset"]["name"] == "debian" and "upgrade" not in read_provenance(index)
    after = ok_json(["eval", "--index", index, "--max-test-queries", "40"])
    assert abs(after["ndcg@10"] - complete["ndcg@10"]) < 1e-6  # the committed index is the new one

    _ok(["backfill", "--index", index, "--upgrade", "up2", "--new", "static", "--until", "0.25"])
    rolled = ok_json(["upgrade", "rollback", "--index", index])
    assert rolled["model_id"] == committed["model_id"]
    with open_store(index) as store:
        assert store.model_id == committed["model_id"]


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    index = tmp_path / "old"
    _ok(["encode", "--model", "static", "--index", str(index), "--dataset", "debian", "--max-docs", "20"])
    cases = [
        (["encode", "--model", "static", "--index", str(index), "--dataset", "debian"], "already exists"),
        (["eval", "--index", str(index), "--mode", "merged"], "--upgrade"),
        (["eval", "--index", str(index), "--mode", "adapted", "--model", "minilm"], "--adapter"),
        (["search", "x", "--index", str(tmp_path / "nothing")], "hotswap encode"),
        (["upgrade", "status", str(tmp_path)], "not an upgrade folder"),
        (["backfill", "--upgrade", str(tmp_path / "nope"), "--resume"], "upgrade.json"),
    ]
    for args, words in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert words in res.output and "Traceback" not in res.output, (args, res.output)
    res = runner.invoke(app, ["--debug", "eval", "--index", str(index), "--mode", "merged"])
    assert res.exit_code != 0 and res.exception is not None and "--upgrade" in str(res.exception)


def test_an_index_without_a_record_asks_for_the_dataset(tmp_path):
    index = tmp_path / "old"
    _ok(["encode", "--model", "static", "--index", str(index), "--dataset", "debian", "--max-docs", "20"])
    (index / "provenance.json").unlink()  # an index built by an older hotswap
    res = runner.invoke(app, ["eval", "--index", str(index)])
    assert res.exit_code == 2 and "--dataset" in res.output
    res = runner.invoke(app, ["eval", "--index", str(index), "--dataset", "foldoc"])
    assert res.exit_code == 2 and "not in dataset 'foldoc'" in res.output
