"""``hotswap experiment NAME``: one command per registered paper protocol, generated from its spec.

Each field of the protocol's options dataclass becomes an option (``--field-name``, help from the field's
metadata; a tuple field takes a comma-separated list). The command checks the options, runs the protocol, prints
its table and lines, and names the files it wrote. The protocol logic lives in :mod:`hotswap_harness.experiments`.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from hotswap.cli.options import comma_list
from hotswap.cli.output import say
from hotswap_harness.experiments.registry import Experiment, experiments, option_fields

experiment_app = typer.Typer(help="Paper protocols, with our numbers beside the paper's.", no_args_is_help=True)
console = Console() if sys.stdout.isatty() else Console(width=160)  # wide protocol tables in logs


def _cli_type(hint: Any) -> tuple[Any, Callable[[Any], Any]]:
    """(the type typer parses, a function turning the parsed value into the field's value)."""
    members = typing.get_args(hint)
    optional = type(None) in members
    base = next(a for a in members if a is not type(None)) if optional else hint
    if typing.get_origin(base) is tuple:
        item = typing.get_args(base)[0]

        def parse(text: str | None) -> Any:
            return None if text is None else tuple(item(x) for x in comma_list(text))
        return (str | None) if optional else str, parse
    return hint, lambda value: value


def _shown(value: Any) -> Any:
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def command_for(spec: Experiment) -> Callable[..., None]:
    """A typer-ready function whose keyword parameters are the options of ``spec``."""
    hints = typing.get_type_hints(spec.options)
    params, parsers = [], {}
    for f in option_fields(spec.options):
        cli_type, parse = _cli_type(hints[f.name])
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            raise TypeError(f"{spec.options.__name__}.{f.name}: an option needs a default")
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=cli_type,
                                        default=typer.Option(_shown(default), help=f.metadata.get("help"))))
        parsers[f.name] = parse

    def command(**kwargs: Any) -> None:
        try:
            options = spec.options(**{k: parsers[k](v) for k, v in kwargs.items()})
            spec.check(options)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
        result, written = spec.execute(options, say)
        console.print(spec.table(result))
        for line in spec.lines(result):
            console.print(line, highlight=False)
        console.print("wrote " + ", ".join(str(p) for p in written), highlight=False)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = f"{spec.help}\n\nExample: {spec.example}"
    command.__name__ = spec.name.replace("-", "_")
    return command


def register(verb: Callable[..., None]) -> None:
    """Add every protocol's command to ``experiment_app`` through ``verb`` (the CLI's one-line-error wrapper)."""
    for spec in experiments():
        verb(spec.name, command_for(spec), experiment_app)
