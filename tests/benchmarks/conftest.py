"""Shared by the benchmark tests: every script in benchmarks/ runs end to end at a tiny size, as a subprocess.

``run_bench`` runs one script from the repository root with one thread per library, offline, and with a private
``$HOTSWAP_HOME`` (the installed models linked into it), so a test never writes into the user's cache nor into
the repository's ``results/``. ``variant_models`` are two cheap folder models derived from the bundled ``static``
one (its token table rotated, noised and for one of them projected to fewer dimensions): distinct model ids that
load in a fraction of a second, where a script would otherwise upgrade to minilm or mpnet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.benchmarks.helpers import ROOT, derive_static


@pytest.fixture(scope="session")
def bench_home(tmp_path_factory) -> Path:
    """A private ``$HOTSWAP_HOME`` whose ``models/`` links every model installed in the real one."""
    from hotswap.encoders import assets

    real = assets.static_folder().parent  # the static model is installed (make setup): its models folder
    home = tmp_path_factory.mktemp("hotswap-home")
    (home / "models").mkdir()
    for entry in real.iterdir():
        (home / "models" / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return home


@pytest.fixture(scope="session")
def variant_models(tmp_path_factory) -> tuple[Path, Path]:
    """Two folder models derived from ``static``: 256-d and 128-d."""
    root = tmp_path_factory.mktemp("variant-models")
    return derive_static(root / "static-b", 256, 1), derive_static(root / "static-c", 128, 2)


@pytest.fixture
def run_bench(bench_home) -> Callable[..., subprocess.CompletedProcess]:
    """``run_bench("name.py", *args, timeout=...)``: the finished process (stdout and stderr as text)."""

    def run(script: str, *args: object, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
               "TOKENIZERS_PARALLELISM": "false", "HOTSWAP_HOME": str(bench_home), "COLUMNS": "200"}
        cmd = [sys.executable, f"benchmarks/{script}", *map(str, args)]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return run
