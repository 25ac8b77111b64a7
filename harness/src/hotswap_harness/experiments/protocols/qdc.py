"""The QDC protocol (Goswami et al., CoLLAs 2025): ``hotswap experiment qdc``.

Continual fine-tuning with an index that is never re-embedded: FT, FT+KD and joint trained on five tasks, every
method's T x T nDCG@10 matrix. The protocol itself (the methods, how each matrix is filled) is described in
:mod:`hotswap_harness.experiments.qdc`, which runs it; its options, terminal table, plot, report section and the paper's
numbers are here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from hotswap.figures import save_png
from hotswap_harness.experiments.qdc_scales import SCALES, SETTINGS
from hotswap_harness.experiments.registry import Experiment, Paper
from hotswap_harness.report.sections import Section, Source, hardware, join, num, pct, with_out
from hotswap_harness.report.sections import Table as ReportTable

# The paper's average nDCG@10 after the last task (x100), used only where a results JSON carries no
# ``paper_avg_ndcg@10`` field of its own.
PAPER = Paper(
    "Goswami, Wang, Twardowski, van de Weijer, Query Drift Compensation: Enabling Compatibility in Continual "
    "Learning of Retrieval Embedding Models, CoLLAs 2025, arXiv:2506.00037",
    numbers={"avg_ndcg@10": {"FT": 49.4, "FT+reindex": 50.1, "FT+QDC": 53.5, "FT+KD+QDC": 54.1, "joint": 54.1}},
    note="5 BEIR-style datasets, nomic-embed 137M: other data and model, so compare orderings, not levels")


@dataclass
class QDCOptions:
    """The protocol's options (each one a ``--option`` of ``hotswap experiment qdc``); the run's full settings are
    :class:`hotswap_harness.experiments.qdc.QDCConfig`, made from these."""

    scale: str = field(default="default", metadata={
        "help": f"{', '.join(SCALES)} (paper: the paper's sizes, for a GPU)"})
    workdir: Path = field(default=Path("runs/qdc"), metadata={"help": "where the trained models go (resumable)"})
    out: Path = field(default=Path("results"), metadata={"help": "folder for qdc.json and qdc.png"})
    sequence: str = field(default="sections", metadata={
        "help": "sections: five Debian-Section tasks (qdc.json); sources: Debian, FOLDOC, Jargon, GCIDE, Python docs "
                "(qdc_five_sources.json)"})
    lr: float = field(default=2e-5, metadata={
        "help": "learning rate per task (choose it with 'hotswap experiment qdc-recipe')"})
    epochs: int = field(default=1, metadata={"help": "passes over each task's pairs (likewise)"})
    seed: int = 0


def check_scale_and_sequence(scale: str, sequence: str) -> None:
    """``ValueError`` for a scale or task sequence the QDC runs do not know."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if sequence not in SETTINGS:
        raise ValueError(f"unknown task sequence {sequence!r}; use 'sections' or 'sources'")


def check(options: QDCOptions) -> None:
    """Refuse an unknown scale or sequence before anything is loaded or trained."""
    check_scale_and_sequence(options.scale, options.sequence)


def results_name(sequence: str) -> str:
    """The stem of the run's own results file: ``qdc`` for the Debian Sections, ``qdc_five_sources`` otherwise
    (every run is also merged by setting into ``qdc.json``)."""
    return "qdc" if sequence == "sections" else "qdc_five_sources"


def table(result: dict) -> Table:
    """Average nDCG@10 after the last task (x100, as the paper prints it), ours beside the paper's."""
    table = Table(title=f"QDC on {len(result['tasks'])} tasks ({', '.join(result['tasks'])}; {result['model']}): "
                        "average nDCG@10 "
                        "after the last task", caption="paper: Goswami et al., CoLLAs 2025, 5 BEIR-style datasets, "
                        "nomic-embed 137M (not comparable in level; compare the ordering)")
    for col in ("method", "ours", "paper", *result["tasks"]):
        table.add_column(col, justify="left" if col == "method" else "right")
    for row in result["rows"]:
        paper = row.get("paper_avg_ndcg@10")
        table.add_row(row["method"], f"{100 * row['avg_ndcg@10']:.1f}", "-" if paper is None else f"{paper:.1f}",
                      *(f"{100 * v:.1f}" for v in row["matrix"][-1]))
    return table


def lines(result: dict) -> list[str]:
    """FT's drift norms and forgetting of task 1, and how long the run took."""
    return ["drift norms |delta_t| (FT): " + ", ".join(f"{v:.4f}" for v in result["drift_norms"]),
            "FT's forgetting of task 1 after each task: " + ", ".join(f"{v:.3f}" for v in result["forgetting"]),
            f"setting {result['setting']} (merged by setting into qdc.json) in {result['wall_s']:.0f} s (training, "
            f"over all runs of this workdir: {result['training_wall_s']:.0f} s; "
            f"evaluation {result['timings_s']['evaluate']:.0f} s)"]


def plot_matrices(result: dict, path: str | Path) -> Path:
    """One heat map per method (rows: after task i; columns: task j), values x100."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = result["rows"]
    cols = 4
    fig, axes = plt.subplots(-(-len(rows) // cols), cols, figsize=(4.2 * cols, 3.8 * -(-len(rows) // cols)))
    axes = np.atleast_1d(axes).ravel()
    short = [t.split("-")[0][:6] for t in result["tasks"]]
    for ax, row in zip(axes, rows):
        M = 100 * np.array(row["matrix"])
        ax.imshow(M, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(M):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="w" if v < 60 else "k")
        ax.set_title(f"{row['method']} (avg {100 * row['avg_ndcg@10']:.1f})", fontsize=9)
        ax.set_xticks(range(M.shape[1]), short, fontsize=7, rotation=30)
        ax.set_yticks(range(M.shape[0]), [f"after {i + 1}" for i in range(M.shape[0])] if M.shape[0] > 1
                      else ["after all"], fontsize=7)
    for ax in axes[len(rows):]:
        ax.axis("off")
    fig.suptitle("nDCG@10 on each task (columns) after training each task (rows)")
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


# --- the report's section for qdc.json

LABELS = {"FT": "FT (new queries → f_1 index)", "FT+reindex": "FT + re-index (upper bound)",
          "FT+QDC": "FT + QDC", "FT+KD": "FT + KD", "FT+KD+QDC": "FT + KD + QDC",
          "FT+procrustes": "FT + procrustes (ours, post hoc)", "FT+affine": "FT + affine (ours, post hoc)",
          "joint": "joint (all tasks at once, own index)"}


def _setting_table(setting: str, meta: dict, rows: list[dict]) -> ReportTable:
    tasks = meta["tasks"]
    header = ["method", f"ours: avg nDCG@10 after task {len(tasks)}", "paper"] + list(tasks)
    cells, paper_avg = [], PAPER.numbers["avg_ndcg@10"]
    for r in rows:
        paper = r.get("paper_avg_ndcg@10", paper_avg.get(r["method"]))
        cells.append([LABELS.get(r["method"], r["method"]), pct(r["avg_ndcg@10"]), num(paper)]
                     + [pct(v) for v in r["matrix"][-1]])
    caption = (f"{setting}: " if setting else "") + "nDCG@10 (%) on each task's test queries after the last task"
    if forgot := meta.get("forgetting"):
        caption += "; FT's task-1 drop after each task " + ", ".join(f"{100 * v:.1f}" for v in forgot)
    return ReportTable(header, cells, paper_columns=(2,), caption=caption + "; paper: Goswami et al. (CoLLAs 2025), "
                       "other data and model, so compare orderings, not levels")


def section(data: dict, src: Source) -> Section:
    """``qdc.json`` (``hotswap experiment qdc``): nDCG@10 after the last task, per method and per task, one
    table per setting (five sources, Debian Sections) when the file holds several."""
    settings = data.get("settings") or {"": data}
    settings = dict(sorted(settings.items(), key=lambda kv: kv[0] != data.get("setting")))  # headline first
    tables = [_setting_table(name, meta, [r for r in data["rows"] if r.get("setting", name) == name or not name])
              for name, meta in settings.items()]
    cfg = data.get("config", {})
    notes = []
    if norms := data.get("drift_norms"):
        notes.append("drift norms ‖δ_t‖ of the FT run: " + ", ".join(f"{v:.3f}" for v in norms))
    if norms := data.get("drift_norms_kd"):
        notes.append("drift norms of the FT+KD run: " + ", ".join(f"{v:.3f}" for v in norms))
    if "training_wall_s" in data:
        notes.append(f"training took {data['training_wall_s']:,.0f} s (training_wall_s); the run that wrote this "
                     f"JSON took {data.get('wall_s', 0):,.0f} s (wall_s; trained models are reused)")
    notes.append(join(f"start model {data.get('model')}", f"scale {cfg.get('scale')}", hardware(data)))
    command = f"hotswap experiment qdc --scale {cfg.get('scale', 'default')}"
    if cfg.get("sequence", "sections") != "sections":
        command += f" --sequence {cfg['sequence']} --lr {cfg.get('lr'):g} --epochs {cfg.get('epochs')}"
    if cfg.get("workdir") not in (None, "runs/qdc"):
        command += f" --workdir {cfg['workdir']}"
    return Section(src.key, "Query Drift Compensation (QDC)", with_out(command, src), tables,
                   [n for n in notes if n], src.image, src.path)


SPEC = Experiment(
    name="qdc",
    help="Train FT, FT+KD and joint on 5 tasks and evaluate every method's T x T nDCG@10 matrix.",
    options=QDCOptions,
    run="hotswap_harness.experiments.qdc:run",
    save="hotswap_harness.experiments.qdc:save",
    table=table,
    example="hotswap experiment qdc --scale default   (five sources: --sequence sources)",
    sections={"qdc.json": section},
    lines=lines,
    check=check,
    paper=PAPER,
)
