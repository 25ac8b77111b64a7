"""One registry of the paper protocols: ``hotswap experiment NAME`` and the report's sections are generated from it.

Each protocol is one module in :mod:`hotswap_harness.experiments.protocols` defining an :class:`Experiment`, ``SPEC``:
its options (a dataclass whose fields become the command's options), how it runs and saves (the heavy code,
imported only when the command runs), its terminal table, its report section and the paper's numbers it is
compared with. A new protocol is one such module plus one line in :data:`PROTOCOLS`.

Importing this module or a protocol module loads no torch: ``hotswap --help`` and ``hotswap report`` stay fast.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotswap.errors import HotswapError

# name -> module defining SPEC; in the order ``hotswap experiment --help`` lists them
PROTOCOLS: dict[str, str] = {
    "dsimplex": "hotswap_harness.experiments.protocols.dsimplex",
    "perturbation": "hotswap_harness.experiments.protocols.perturbation",
    "qdc": "hotswap_harness.experiments.protocols.qdc",
    "qdc-recipe": "hotswap_harness.experiments.protocols.qdc_recipe",
    "online-backfill": "hotswap_harness.experiments.protocols.online_backfill",
    "plan": "hotswap_harness.experiments.protocols.plan",
}


@dataclass(frozen=True)
class Paper:
    """The paper a protocol reproduces and the numbers our tables print beside ours (one place for them)."""

    citation: str  # authors, title, venue, arXiv id
    numbers: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""  # how the numbers were read (e.g. second-hand, from the authors' notebooks)


@dataclass(frozen=True)
class Experiment:
    """A paper protocol: everything ``hotswap experiment NAME`` and the report need, in one place.

    ``options`` is a dataclass; each field is one command-line option (``--field-name``; its ``metadata["help"]``
    is the help text; a ``tuple[str, ...]`` field takes a comma-separated list). ``run(options, say)`` runs the
    protocol and returns its result; ``save(result, options)`` writes the results files (merging with what is
    there where the protocol merges settings) and the plot, returning the paths written; ``lines(result)`` are
    printed after ``table(result)``. ``run`` and ``save`` are ``"module:function"`` strings, imported only when
    the command runs (they load torch). ``sections`` maps each results file name (e.g. ``"qdc.json"``) to the
    report section builder for it.
    """

    name: str
    help: str
    options: type
    run: str
    save: str
    table: Callable[[dict], Any]
    example: str
    sections: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    lines: Callable[[dict], Sequence[str]] = lambda result: ()
    check: Callable[[Any], None] = lambda options: None  # raise ValueError on bad options, before any work
    paper: Paper | None = None

    def call(self, which: str) -> Callable[..., Any]:
        """The function ``self.run`` or ``self.save`` names, imported now."""
        module, _, attr = getattr(self, which).partition(":")
        return getattr(importlib.import_module(module), attr)

    def execute(self, options: Any, say: Callable[[str], None] = print) -> tuple[dict, list[Path]]:
        """Check the options, run the protocol, save its files; return the result and the paths written."""
        self.check(options)
        result = self.call("run")(options, say)
        return result, list(self.call("save")(result, options))


def experiment(name: str) -> Experiment:
    """The registered protocol ``name``; :class:`HotswapError` naming the known ones otherwise."""
    if name not in PROTOCOLS:
        raise HotswapError(f"unknown experiment {name!r}; choose one of {', '.join(PROTOCOLS)}")
    spec = importlib.import_module(PROTOCOLS[name]).SPEC
    if not isinstance(spec, Experiment) or spec.name != name:
        raise HotswapError(f"{PROTOCOLS[name]}.SPEC is not the Experiment {name!r}")
    return spec


def experiments() -> list[Experiment]:
    """Every registered protocol, in registry order."""
    return [experiment(name) for name in PROTOCOLS]


def option_fields(options: type) -> list[dataclasses.Field]:
    """The option fields of an options dataclass, in order."""
    if not dataclasses.is_dataclass(options):
        raise TypeError(f"{options!r} is not a dataclass")
    return list(dataclasses.fields(options))
