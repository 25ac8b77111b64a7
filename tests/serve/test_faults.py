"""SIGKILL the HTTP server mid-upgrade (benchmarks/faults.py with toy encoders): it resumes, answers, loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", ["faiss", "qdrant", "milvus", "pg"])
def test_server_killed_during_an_upgrade_resumes_and_loses_nothing(tmp_path, backend):
    out = tmp_path / "faults.json"
    run = subprocess.run([sys.executable, "benchmarks/faults.py", "--toy", "--backend", backend,
                          "--kills", "3", "--n", "240",
                          "--batch-size", "8", "--toy-delay", "0.1", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["kills"] == r["recovered"] == 3
    assert r["items_lost"] == r["items_duplicated"] == r["responses_5xx"] == 0
    assert r["bad_requests"] == r["bad_requests_4xx"] > 0
    assert r["checksum_equal"] and r["committed"] and r["answered_after_completion"]
    assert min(r["stored_at_kill"]) < r["total"]  # at least one kill landed mid-backfill
