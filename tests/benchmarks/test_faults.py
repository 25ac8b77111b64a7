"""benchmarks/faults.py at a tiny size (toy encoders, FAISS): the server killed mid-upgrade recovers, loses nothing.
tests/serve/test_faults.py runs it on every backend."""

from __future__ import annotations

import json

from tests.benchmarks.helpers import committed_keys, ok


def test_faults_recovers_from_a_kill_and_answers(run_bench, tmp_path):
    out = tmp_path / "x.json"
    stdout = ok(run_bench("faults.py", "--toy", "--backend", "faiss", "--kills", 1, "--n", 60, "--batch-size", 8,
                          "--toy-delay", 0.05, "--out", out))
    result = json.loads(out.read_text())
    assert set(result) == committed_keys("faults.json")
    assert result["kills"] == result["recovered"] == 1 and result["total"] == 60
    assert result["items_lost"] == result["items_duplicated"] == result["responses_5xx"] == 0
    assert result["bad_requests"] == result["bad_requests_4xx"] == 8
    assert result["checksum_equal"] and result["committed"] and result["answered_after_completion"]
    assert len(result["stored_at_kill"]) == 1 and 0 < result["restart_s"]["median"] == result["restart_s"]["max"]
    assert result["config"] == {"n": 60, "old": "toy-old", "new": "toy-new", "batch_size": 8, "seed": 0,
                                "toy": True}
    assert "answered correctly: True" in stdout
