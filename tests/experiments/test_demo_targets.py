"""The issue-4 targets on the demo's own protocol (6,000 docs, real models). Slow: ``pytest -m slow``."""

import pytest

from hotswap_harness.experiments.upgrade_demo import DemoConfig, run_upgrade_demo

pytestmark = pytest.mark.slow


def test_static_to_minilm_best_adapter_beats_no_upgrade():
    result = run_upgrade_demo(DemoConfig())
    rows = {(r["mode"], r["adapter"]): r for r in result["rows"]}
    old, new = rows["old", None], rows["new", None]
    adapted = [r for r in result["rows"] if r["mode"] == "adapted" and r["adapter"] != "auto"]
    best = max(adapted, key=lambda r: r["recall@10"])
    assert new["recall@10"] - old["recall@10"] > 0.1  # a real upgrade on this data
    assert best["recall@10"] > old["recall@10"] and best["ndcg@10"] > old["ndcg@10"]
    assert 0.1 < best["recovered_recall@10"] < 1.0  # part of the gap, not all: the old documents cap it
    assert result["selection"]["choice"] in {r["adapter"] for r in adapted} | {"old"}
