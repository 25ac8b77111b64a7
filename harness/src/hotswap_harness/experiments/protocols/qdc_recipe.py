"""Choosing QDC's training recipe: ``hotswap experiment qdc-recipe``.

How long and how fast plain fine-tuning trains per task so that it forgets task 1, measured on validation queries
held out of each task's train queries (test queries are never read). The search itself is described in
:mod:`hotswap_harness.experiments.qdc_recipe`, which runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from hotswap_harness.experiments.protocols.qdc import PAPER, check_scale_and_sequence
from hotswap_harness.experiments.qdc_scales import SCALES
from hotswap_harness.experiments.registry import Experiment

RECIPES = ("1:2e-5", "1:1e-4", "4:1e-4")


@dataclass
class QDCRecipeOptions:
    """The search's options (each one a ``--option`` of ``hotswap experiment qdc-recipe``)."""

    scale: str = field(default="default", metadata={"help": f"{', '.join(SCALES)}"})
    sequence: str = field(default="sources", metadata={
        "help": "sources (five real text sources) or sections (Debian Sections)"})
    recipes: tuple[str, ...] = field(default=RECIPES, metadata={
        "help": "candidate EPOCHS:LR pairs, comma-separated"})
    workdir: Path = field(default=Path("runs/qdc_recipe"), metadata={
        "help": "where the trained models go (resumable)"})
    out: Path = Path("results/qdc_recipe.json")
    seed: int = 0


def recipe_pairs(recipes: tuple[str, ...]) -> list[tuple[int, float]]:
    """``("1:2e-5", "4:1e-4")`` -> ``[(1, 2e-05), (4, 0.0001)]``; ``ValueError`` naming the option otherwise."""
    try:
        pairs = [(int(e), float(lr)) for e, lr in (r.split(":") for r in recipes)]
    except ValueError:
        raise ValueError(f"--recipes wants EPOCHS:LR pairs like 1:2e-5,4:1e-4; got {','.join(recipes)!r}") from None
    if not pairs:
        raise ValueError("--recipes wants EPOCHS:LR pairs like 1:2e-5,4:1e-4; got none")
    return pairs


def check(options: QDCRecipeOptions) -> None:
    """Refuse an unknown scale or sequence, or a recipe that is not EPOCHS:LR, before anything is trained."""
    check_scale_and_sequence(options.scale, options.sequence)
    recipe_pairs(options.recipes)


def table(result: dict) -> Table:
    """One row per candidate recipe: FT's forgetting of task 1 on validation queries after each task."""
    table = Table(title=f"QDC recipe search on {len(result['tasks'])} tasks ({', '.join(result['tasks'])}): FT's "
                        "forgetting of task 1 on validation queries",
                  caption=f"chosen: the fewest steps (then the lowest lr) whose forgetting after the last task "
                          f"reaches {result['gate']:g}, else the one that forgets most")
    for col in ("epochs", "lr", "steps/task", "forgetting of task 1 after each task", "wall s"):
        table.add_column(col, justify="right")
    for c in result["candidates"]:
        table.add_row(str(c["epochs"]), f"{c['lr']:g}", str(c["steps_per_task"]),
                      ", ".join(f"{v:+.3f}" for v in c["forgetting"]), f"{c['wall_s']:.0f}")
    return table


def lines(result: dict) -> list[str]:
    """The chosen recipe."""
    return [f"chosen: {result['chosen']}"]


SPEC = Experiment(
    name="qdc-recipe",
    help="Choose how long and how fast FT trains per task so that it forgets task 1, on validation queries (a "
         "held-out share of each task's train queries; test queries are never read).",
    options=QDCRecipeOptions,
    run="hotswap_harness.experiments.qdc_recipe:run",
    save="hotswap_harness.experiments.qdc_recipe:save",
    table=table,
    example="hotswap experiment qdc-recipe --recipes 1:2e-5,4:1e-4",
    lines=lines,
    check=check,
    paper=PAPER,
)
