"""``hotswap adopt``: register a vector collection hotswap did not create, in place, after checking its vectors
against the model said to have made them."""

from __future__ import annotations

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

console = Console()


def adopt(
    store: str = typer.Option(..., "--store", help="the collection: postgres://user@host:port/db?table=NAME"),
    model: str = typer.Option(..., help="the encoder that made its vectors: static, minilm, mpnet or a folder"),
    vector_field: str = typer.Option(..., help="the vector column (pgvector vector(d))"),
    text_field: str = typer.Option(..., help="the column holding the text each vector embeds"),
    id_field: str = typer.Option("id", help="the column of unique ids"),
    metric: str = typer.Option("ip", help="ip (inner product; cosine on normalised vectors) or l2"),
    sample: int = typer.Option(64, help="rows re-encoded to check that the vectors are MODEL's"),
    min_agreement: float = typer.Option(0.95, help="median cosine (stored vs re-encoded) needed to adopt"),
) -> None:
    """Register an existing collection as a hotswap store of MODEL without copying it; refuses vectors made by
    another model (a re-encoded sample disagrees) or of another width, naming both.

    Example: hotswap adopt --store "postgres://me@localhost/search?table=docs" --model minilm
    --vector-field embedding --text-field body   (then: hotswap backfill --index "postgres://...?table=docs"
    --upgrade upgrades/docs-mpnet --new mpnet --dataset store)
    """
    from hotswap.encoders import load_encoder
    from hotswap.errors import HotswapError
    from hotswap.store.adopt import adopt_store, model_check

    encoder = load_encoder(model)
    seen: list[np.ndarray] = []
    check = model_check(model, encoder.dim, encoder.encode, sample, min_agreement, report=seen.append)
    try:
        adopted = adopt_store(store, encoder.id, vector_field, text_field, id_field, metric, check)
    except (HotswapError, ValueError, OSError) as e:
        raise HotswapError(f"not adopted: {e}") from e
    with adopted:
        table = Table(title=f"adopted {adopted.uri}")
        for col in ("rows", "model", "dim", "metric", "index", "agreement (median / min cosine)"):
            table.add_column(col)
        cos = seen[-1]
        table.add_row(f"{len(adopted):,}", adopted.model_id, str(adopted.dim), adopted.metric,
                      str(getattr(adopted, "index", "")),  # pgvector's "flat" / "hnsw" (only pg adopts yet)
                      f"{np.median(cos):.4f} / {cos.min():.4f} on {len(cos)} rows")
        console.print(table)
    console.print(f"next: hotswap backfill --index {store!r} --upgrade UPGRADE_FOLDER --new NEW_MODEL --dataset store")
