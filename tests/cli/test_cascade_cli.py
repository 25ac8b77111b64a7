"""``hotswap eval`` / ``hotswap search`` in mode cascade on an upgrade in progress (small real slice)."""

import json

import pytest

from hotswap.cli import app
from hotswap.upgrade import open_upgrade
from tests.cli.helpers import ok as _ok, runner

pytestmark = pytest.mark.realmodel


def test_eval_and_search_cascade_on_an_upgrade(tmp_path):
    index, up = tmp_path / "old", tmp_path / "up"
    _ok(["encode", "--model", "static", "--index", str(index), "--dataset", "debian", "--max-docs", "200"])
    _ok(["backfill", "--index", str(index), "--upgrade", str(up), "--new", "minilm", "--until", "0.25",
         "--batch-size", "25", "--order", "demand"])
    done = len(open_upgrade(up).new)
    results = {}
    for budget in ([], ["--encode-budget", "2"]):
        out = tmp_path / f"eval{len(budget)}.json"
        _ok(["eval", "--upgrade", str(up), "--mode", "cascade", "--model", "minilm", "--candidates", "20",
             *budget, "--max-test-queries", "40", "--out", str(out)])
        results[len(budget)] = json.loads(out.read_text())
    full, capped = results[0], results[2]
    assert full["mode"] == "cascade" and full["candidates"] == 20 and full["encode_budget"] is None
    assert capped["encode_budget"] == 2 and capped["encodes_per_query"] <= 2
    assert 0.0 < capped["ndcg@10"] <= 1.0 and 0.0 < full["ndcg@10"] <= 1.0
    assert len(open_upgrade(up).new) == done  # eval measures: it writes nothing into the upgrade
    text = _ok(["search", "Python library for numerical arrays", "--upgrade", str(up), "--mode", "cascade",
                "--model", "minilm", "--dataset", "debian", "--k", "3", "--candidates", "10"])
    assert "cascade" in text and "rank" in text
    assert len(open_upgrade(up).new) > done  # a real search writes its encodings back into the backfill
    res = runner.invoke(app, ["eval", "--index", str(index), "--mode", "cascade", "--model", "minilm"])
    assert res.exit_code != 0 and "--upgrade" in res.output
