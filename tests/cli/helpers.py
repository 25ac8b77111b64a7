"""Run CLI verbs in-process for the CLI tests."""

from typer.testing import CliRunner

from hotswap.cli import app

runner = CliRunner()


def ok(args: list[str]) -> str:
    """Invoke ``hotswap ARGS``; fail the test with the output unless it exits 0; return the output."""
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output
