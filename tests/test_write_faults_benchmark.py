"""benchmarks/write_faults.py end to end on FAISS with 3 kills (one per phase): every acknowledged write survives."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {"backend", "kills", "recovered", "acknowledged_writes", "lost", "duplicated", "resurrected_deletes",
          "stale_texts", "responses_5xx", "wall_s"}


def load_benchmark():
    spec = importlib.util.spec_from_file_location("write_faults", ROOT / "benchmarks" / "write_faults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_write_faults_benchmark_loses_nothing_across_three_kills(tmp_path):
    out = tmp_path / "writes.json"
    code = load_benchmark().main(["--backends", "faiss", "--kills", "3", "--n-docs", "300", "--out", str(out)])
    result = json.loads(out.read_text())
    assert code == 1 and result["met"] is False  # fewer than the 20 kills the recorded run needs
    assert {"runs", "target", "machine"} <= set(result) and len(result["runs"]) == 1
    run = result["runs"][0]
    assert FIELDS <= set(run), FIELDS - set(run)
    assert run["error"] is None, run["error"]
    assert run["backend"] == "faiss" and run["kills"] == run["recovered"] == 3
    assert run["kills_by_phase"] == {"before": 1, "during": 1, "after": 1}
    assert run["upgrade_committed"] and run["acknowledged_writes"] > 0
    bad = {k: run[k] for k in ("lost", "duplicated", "resurrected_deletes", "stale_texts", "responses_5xx",
                               "phantom_ids")}
    assert not any(bad.values()), (bad, run["failures"])
    assert [d["where"] for d in run["deep_checks"]] == ["end of before", "during the upgrade (before commit)", "final"]
    assert isinstance(run["wall_s"], float)
