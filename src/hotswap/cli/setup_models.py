"""``hotswap setup-models``: assemble and distil the bundled models once."""

from __future__ import annotations

from hotswap.cli.output import console


def setup_models() -> None:
    """Assemble and distil the bundled models once (run by make demo / make test). Example: hotswap setup-models"""
    from hotswap.encoders import prepare_models

    for name, model_id in prepare_models().items():
        console.print(f"{name}: [green]{model_id}[/]")
