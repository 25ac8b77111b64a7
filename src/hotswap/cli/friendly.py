"""Errors for people: a verb that fails on purpose prints one line naming the problem and the fix, and exits 2.

``friendly(verb)`` wraps a verb's function (its signature, and so its options, unchanged). The traceback shows
only with ``hotswap --debug VERB ...`` (or ``HOTSWAP_DEBUG=1``). Expected failures are hotswap's own errors
(``hotswap.errors.HotswapError``), a bad option (``typer.BadParameter``), and the file system's and the
parsers' (``OSError``, ``ValueError``, ``KeyError``); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click
import typer

EXIT_USAGE = 2
# typer may ship its own copy of click: its BadParameter is then not click's
BAD_PARAMETER = (click.BadParameter, typer.BadParameter)


def _env_debug() -> bool:
    return os.environ.get("HOTSWAP_DEBUG", "") not in ("", "0")


_debug = {"on": _env_debug()}


def set_debug(on: bool) -> None:
    """Set for this invocation (``--debug``, or ``HOTSWAP_DEBUG``): a later invocation in the same process starts
    afresh."""
    _debug["on"] = on or _env_debug()


def debug() -> bool:
    return _debug["on"]


def one_line(error: BaseException) -> str:
    """The error's message on one line (a KeyError's quotes and a multi-line message folded)."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    if isinstance(error, BAD_PARAMETER):
        text = error.format_message()
    return " ".join(text.split()) or type(error).__name__


def fail(message: str) -> None:
    """Print ``error: MESSAGE`` on stderr and exit 2 (a verb's own refusal, without an exception)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def friendly(verb: Callable[..., Any]) -> Callable[..., Any]:
    """``verb`` whose expected failures become one line on stderr and exit code 2 (unless ``--debug``)."""
    from hotswap.errors import HotswapError

    @functools.wraps(verb)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return verb(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.Exit):
            raise
        except (HotswapError, *BAD_PARAMETER, OSError, ValueError, KeyError) as e:
            if debug():
                raise
            sys.stdout.flush()
            typer.echo(f"error: {one_line(e)}", err=True)
            if not isinstance(e, (HotswapError, *BAD_PARAMETER)):
                typer.echo("(run with --debug for the traceback)", err=True)
            raise typer.Exit(EXIT_USAGE) from None

    return run
