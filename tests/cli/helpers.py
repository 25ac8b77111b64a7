"""Run CLI verbs in-process for the CLI tests."""

import json

from typer.testing import CliRunner

from hotswap.cli import app

runner = CliRunner()


def ok(args: list[str]) -> str:
    """Invoke ``hotswap ARGS``; fail the test with the output unless it exits 0; return the output."""
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def ok_json(args: list[str]) -> dict:
    """Invoke ``hotswap ARGS --json`` (must exit 0) and parse its stdout, which holds only the JSON (notes and
    progress go to stderr)."""
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return json.loads(res.stdout)
