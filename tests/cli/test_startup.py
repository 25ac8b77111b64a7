"""Start-up cost of the CLI: help and status read no model and load no torch; the CLI's own copy of the
backfill orderings (kept so that ``--help`` need not import the backfill package) matches the library's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hotswap.cli import app
from tests.cli.helpers import runner

HEAVY = ("torch", "sentence_transformers", "faiss", "transformers")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_help_loads_no_torch():
    loaded = _modules_after("from typer.testing import CliRunner\nfrom hotswap.cli import app\n"
                            "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
                            "assert CliRunner().invoke(app, ['upgrade', '--help']).exit_code == 0")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_upgrade_status_loads_no_torch(tmp_path):
    import numpy as np

    from hotswap.store import create_store
    from hotswap.upgrade import create_upgrade

    with create_store(tmp_path / "old", "toy@0", 4) as store:
        store.add(["a", "b"], np.eye(2, 4, dtype=np.float32), "toy@0")
        create_upgrade(tmp_path / "up", store, "toy@1", 4).close()
    code = ("from typer.testing import CliRunner\nfrom hotswap.cli import app\n"
            f"r = CliRunner().invoke(app, ['upgrade', 'status', {str(tmp_path / 'up')!r}, '--json'])\n"
            "assert r.exit_code == 0, r.output\nimport json\n"
            "assert json.loads(r.output)['total'] == 2, r.output")
    assert "torch" not in _modules_after(code)


def test_cli_orderings_match_the_library():
    from hotswap.backfill import ORDERINGS
    from hotswap.cli import backfill as cli_backfill

    assert cli_backfill.ORDERINGS == tuple(ORDERINGS)


@pytest.mark.parametrize("verb", ["encode", "search", "eval", "backfill", "upgrade", "fit-adapter", "serve"])
def test_verb_help_fits_80_columns(verb):
    res = runner.invoke(app, [verb, "--help"], terminal_width=80)
    assert res.exit_code == 0 and "--help" in res.output
