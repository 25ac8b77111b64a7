"""The harness's verbs, added to the ``hotswap`` command line through the ``hotswap.cli`` entry point:
``hotswap demo``, ``hotswap report`` and ``hotswap experiment NAME`` (one per registered paper protocol)."""

from __future__ import annotations

from collections.abc import Callable

import typer

from hotswap_harness.cli import demo, experiment, report


def register(app: typer.Typer, verb: Callable[..., None]) -> None:
    """Add the harness's verbs to ``app``; ``verb(name, function, target)`` registers one with the CLI's
    one-line errors."""
    verb("demo", demo.demo, app)
    verb("report", report.report, app)
    experiment.register(verb)
    app.add_typer(experiment.experiment_app, name="experiment")


__all__ = ["register"]
