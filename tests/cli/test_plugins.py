"""Verbs from other distributions (the paper harness) join the command line through the ``hotswap.cli`` entry
point; the library itself imports none of them."""

import typer
from typer.main import get_command

from hotswap.cli import load_plugins, verb


def _commands(app: typer.Typer) -> set[str]:
    @app.callback()
    def main() -> None:  # a group, even with one command
        pass

    return set(get_command(app).commands)  # type: ignore[attr-defined]


def test_without_plugins_the_library_has_no_harness_verbs():
    app = typer.Typer()
    assert load_plugins(app, lambda name, f, target=app: verb(name, f, target), group="hotswap.no-such-group") == []
    assert not {"demo", "report", "experiment"} & _commands(app)


def test_the_installed_harness_adds_demo_report_and_experiment():
    app = typer.Typer()
    assert load_plugins(app, lambda name, f, target=app: verb(name, f, target)) == ["harness"]
    assert {"demo", "report", "experiment"} <= _commands(app)
