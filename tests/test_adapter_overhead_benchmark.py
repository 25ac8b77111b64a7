"""``benchmarks/adapter_overhead.py`` runs at a tiny size (so it cannot rot): every registered adapter gets a
row, the ones that need equal dimensions included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hotswap.adapters import available_adapters

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "adapter_overhead.py"


def test_adapter_overhead_benchmark_runs_at_a_tiny_size():
    res = subprocess.run([sys.executable, str(SCRIPT), "--dim-new", "16", "--dim-old", "8", "--n-fit", "200",
                          "--repeats", "20", "--mlp-epochs", "2", "--no-encoder"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "160"})
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [line for line in res.stdout.splitlines() if line.startswith("│")]
    assert sorted(line.split("│")[1].strip() for line in rows) == available_adapters()
    assert "16->16" in res.stdout and "16->8" in res.stdout
