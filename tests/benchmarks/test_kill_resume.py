"""benchmarks/kill_resume.py at a tiny size: a backfill killed -9 and resumed loses and duplicates nothing."""

from __future__ import annotations

import json

from tests.benchmarks.helpers import ok


def test_kill_resume_loses_nothing_across_kills(run_bench, tmp_path):
    out = tmp_path / "x.json"
    stdout = ok(run_bench("kill_resume.py", "--kills", 2, "--n", 200, "--batch-size", 16, "--model", "toy",
                          "--toy-delay", 0.02, "--dir", tmp_path / "work", "--out", out))
    result = json.loads(out.read_text())
    assert result["ok"] is True and result["model_id"] == "toy@1"
    assert 1 <= result["kills"] <= result["kills_asked"] == 2  # the last child may finish before its delay
    assert result["stored"] == result["n"] == 200 and result["final_state"] == "done"
    assert result["lost"] == result["missing"] == result["duplicated"] == 0
    assert result["count_decreased"] == result["partial_batches"] == 0
    assert result["checksum_match"] is True and result["clean_items_per_s"] > 0
    assert "checksum match: yes" in stdout and "items lost: 0 (missing at the end: 0)" in stdout
    assert "kill  1 after" in stdout
