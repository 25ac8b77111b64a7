"""The ``hotswap`` command line (typer + rich). Each verb lives in a small module of this package."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import typer  # noqa: E402

from hotswap.cli import (adopt, backfill, bcl, continual, demo, documents, fit_adapter, index,  # noqa: E402
                         online_backfill, report, serve, verify)

app = typer.Typer(
    help="Upgrade the embedding model behind a live retrieval index without re-indexing its corpus.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
)
app.command("demo")(demo.demo)
app.command("encode")(index.encode)
app.command("fit-adapter")(fit_adapter.fit_adapter)
app.command("search")(index.search)
app.command("eval")(index.evaluate)
app.command("backfill")(backfill.backfill)
app.command("setup-models")(index.setup_models)
app.command("serve")(serve.serve)
app.command("report")(report.report)
app.command("verify")(verify.verify)
app.command("upsert")(documents.upsert)
app.command("delete")(documents.delete)
app.command("adopt")(adopt.adopt)
# bcl adds its verbs (train bcl, experiment dsimplex / perturbation) to continual's train and experiment apps
assert bcl.train_app is continual.train_app and online_backfill.experiment_app is continual.experiment_app
app.add_typer(continual.train_app, name="train")
app.add_typer(continual.experiment_app, name="experiment")

if __name__ == "__main__":
    app()
