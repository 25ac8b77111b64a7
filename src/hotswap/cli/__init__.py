"""The ``hotswap`` command line (typer + rich). Each verb lives in a small module of this package."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import typer  # noqa: E402

from hotswap.cli import (  # noqa: E402
    adopt,
    backfill,
    delete,
    encode,
    evaluate,
    fit_adapter,
    plan,
    search,
    serve,
    setup_models,
    train,
    upgrade,
    upsert,
    verify,
)
from hotswap.cli.friendly import friendly, set_debug  # noqa: E402

app = typer.Typer(
    help="Upgrade the embedding model behind a live retrieval index without re-indexing its corpus.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="show the traceback of an error (HOTSWAP_DEBUG=1 too)")
         ) -> None:
    """Upgrade the embedding model behind a live retrieval index without re-indexing its corpus."""
    set_debug(debug)


def verb(name: str, function, target: typer.Typer = app) -> None:
    """Register ``function`` as ``hotswap NAME``: its expected errors print one line and exit 2."""
    target.command(name)(friendly(function))


def load_plugins(target: typer.Typer, register_verb, group: str = "hotswap.cli") -> list[str]:
    """Let every installed distribution that declares a ``hotswap.cli`` entry point add its verbs (the entry point
    is ``register(app, verb)``); returns the entry points' names. The library itself never imports them."""
    from importlib.metadata import entry_points

    loaded = []
    for entry in sorted(entry_points(group=group), key=lambda e: e.name):
        entry.load()(target, register_verb)
        loaded.append(entry.name)
    return loaded


verb("encode", encode.encode)
verb("fit-adapter", fit_adapter.fit_adapter)
verb("search", search.search)
verb("eval", evaluate.evaluate)
verb("backfill", backfill.backfill)
verb("setup-models", setup_models.setup_models)
verb("serve", serve.serve)
verb("verify", verify.verify)
verb("upsert", upsert.upsert)
verb("delete", delete.delete)
verb("adopt", adopt.adopt)
verb("plan", plan.plan)
for name, function in upgrade.COMMANDS.items():
    verb(name, function, upgrade.upgrade_app)
app.add_typer(upgrade.upgrade_app, name="upgrade")
app.add_typer(train.train_app, name="train")
load_plugins(app, verb)  # e.g. the paper harness: demo, report, experiment

if __name__ == "__main__":
    app()
