"""The d-Simplex protocol (Biondi et al., CVPR 2024): ``hotswap experiment dsimplex``.

Independent (ER), BCT and d-Simplex-HOC over a class-incremental chain with model replacements, scored by AC
and AM (the empirical compatibility criterion) in a ``seen-classes`` or a ``heldout-classes`` setting. The
protocol itself (tasks, replacements, evaluation, the settings) is described in
:mod:`hotswap_harness.experiments.dsimplex`, which runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from hotswap.figures import save_png
from hotswap_harness.experiments.registry import Experiment, Paper
from hotswap_harness.report.sections import DASH, Section, Source, hardware, join, num, pct, wall, with_out
from hotswap_harness.report.sections import Table as ReportTable

METHODS = ("independent", "bct", "dsimplex")
SETTINGS = ("seen-classes", "heldout-classes")
SCALES = {
    "tiny": dict(arch="cnn", widths=(8, 8, 8), preallocated=32, epochs=1, pretrain_epochs=1, train_per_class=20,
                 query_per_class=10, pretrain_per_class=30, gallery_per_class=20, batch_size=32, lr=0.01,
                 pretrain_lr=0.05),
    "default": dict(arch="cnn", widths=(32, 40, 48), preallocated=256, epochs=20, pretrain_epochs=3,
                    train_per_class=300, query_per_class=200, pretrain_per_class=1000, gallery_per_class=250,
                    batch_size=128, lr=0.01, pretrain_lr=0.05),
    "paper": dict(arch="resnet18", widths=(64, 64, 64), preallocated=1024, epochs=70, pretrain_epochs=30,
                  train_per_class=300, query_per_class=200, pretrain_per_class=None, gallery_per_class=None,
                  batch_size=128, lr=1e-3, pretrain_lr=0.1),
}

# numbers: tasks ("7", "31") -> method -> {"AC", "AM" (%)}: CIFAR-100 in 7 tasks and in 31 (our 19-task run
# stands in for the 31-task one)
PAPER = Paper(
    "Biondi, Pernici, Ricci, Del Bimbo, Stationary Representations: Optimally Approximating Compatibility and "
    "Implications for Improved Model Replacements, CVPR 2024, arXiv:2405.02581",
    numbers={"7": {"independent": {"AC": 0.0, "AM": 35.18}, "dsimplex": {"AC": 0.95, "AM": 68.90}},
             "31": {"independent": {"AC": 0.0, "AM": 30.32}, "dsimplex": {"AC": 0.65, "AM": 68.07}}},
    note="the authors' public notebooks (github.com/miccunifi/iamcl2r; CIFAR-100 -> CIFAR-10), as they print them")


@dataclass
class DSimplexOptions:
    """The protocol's options (each one a ``--option`` of ``hotswap experiment dsimplex``)."""

    scale: str = field(default="default", metadata={
        "help": "tiny, default (2 CPU cores) or paper (ResNet-18, 70 epochs: a GPU)"})
    tasks: int = field(default=7, metadata={
        "help": "tasks (7 = the paper's; 31 does not fit 20 classes: 19 stands in for it)"})
    methods: tuple[str, ...] = field(default=METHODS, metadata={"help": "comma-separated"})
    replace_at: tuple[int, ...] | None = field(default=None, metadata={
        "help": "replacement tasks, e.g. 0,2,4 (default: the paper's, scaled)"})
    workdir: Path = field(default=Path("runs/dsimplex"), metadata={
        "help": "trained models and embeddings (resumable)"})
    out: Path = field(default=Path("results"), metadata={"help": "folder for dsimplex.json and dsimplex.png"})
    seed: int = 42
    data: Path | None = field(default=None, metadata={
        "help": "image set .npz or folder (default: the built cache)"})
    setting: str = field(default=SETTINGS[0], metadata={
        "help": "seen-classes (evaluate on the 20 trained classes) or heldout-classes (6 classes no model trains "
                "on, as the paper's CIFAR-10)"})


def check(options: DSimplexOptions) -> None:
    """Refuse an unknown setting, scale or method and a task count the classes cannot be cut into."""
    from hotswap.data.image_splits import incremental_tasks  # numpy: only when the command runs

    if options.setting not in SETTINGS:
        raise ValueError(f"--setting {options.setting!r}: choose one of {', '.join(SETTINGS)}")
    incremental_tasks(list(range(20 if options.setting == SETTINGS[0] else 14)), options.tasks)
    if options.scale not in SCALES:
        raise ValueError(f"unknown scale {options.scale!r}; choose one of {', '.join(SCALES)}")
    if bad := [m for m in options.methods if m not in METHODS]:
        raise ValueError(f"unknown method(s) {bad}; the d-Simplex protocol compares {', '.join(METHODS)}")


def png_name(setting: str) -> str:
    """``dsimplex.png`` for seen-classes, ``dsimplex-<setting>.png`` for the other setting."""
    return "dsimplex.png" if setting == SETTINGS[0] else f"dsimplex-{setting}.png"


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def table(result: dict) -> Table:
    """AC / AM per method, ours beside the paper's (repo notebooks, CIFAR-100 -> CIFAR-10)."""
    table = Table(title=f"d-Simplex protocol, {result['tasks']} tasks, replacements at "
                        f"{result['replacement_tasks']}: {result['dataset']}",
                  caption="paper: Biondi et al. CVPR 2024 / miccunifi/iamcl2r notebooks, CIFAR-100 -> CIFAR-10, "
                          "ResNet-18 (compare the ordering, not the level)")
    for col in ("method", "AC", "paper AC", "AM (%)", "paper AM", "last self (%)", "mean NFR (%)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for row in result["rows"]:
        nfr = row.get("negative_flip_rates") or []
        table.add_row(row["method"], _fmt(row["AC"]), _fmt(row.get("paper_AC")), _fmt(row["AM"]),
                      _fmt(row.get("paper_AM")), _fmt(row["matrix"][-1][-1], ".1f"),
                      _fmt(100 * sum(nfr) / len(nfr) if nfr else None, ".1f"))
    return table


def status_split_summary(result: dict) -> list[str]:
    """One printable line per row: the mean cross-model top-1 over same-status and changed-status queries."""
    lines = []
    for row in result["rows"]:
        means = row.get("status_split_means") or {}
        parts = [f"{name} {'-' if m['mean_cross'] is None else format(m['mean_cross'], '.1f')} % "
                 f"({m['cells']} cells)" for name, m in means.items()]
        lines.append(f"status split, {row['method']} ({row.get('setting', SETTINGS[0])}): cross-model cells j < i: "
                     + "; ".join(parts))
    return lines


def plot(result: dict, path: str | Path) -> Path:
    """One heat map of C[i][j] (top-1 %, lower triangle) per method, the ECC-satisfying cells outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = result["rows"]
    fig, axes = plt.subplots(1, len(rows), figsize=(4.4 * len(rows), 4.0), squeeze=False)
    for ax, row in zip(axes[0], rows):
        M = np.array([[np.nan if v is None else v for v in r] for r in row["matrix"]], dtype=float)
        ax.imshow(np.ma.masked_invalid(M), vmin=0, vmax=100, cmap="viridis")
        for (i, j), v in np.ndenumerate(M):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="w" if v < 60 else "k")
                if j < i and v > M[j, j]:
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
        ax.set_title(f"{row['method']}: AC {row['AC']:.2f}, AM {row['AM']:.1f}", fontsize=9)
        ax.set_xlabel("gallery model j")
        ax.set_ylabel("query model i")
        ax.set_xticks(range(M.shape[1]))
        ax.set_yticks(range(M.shape[0]))
    fig.suptitle("top-1 (%) of model i's queries on model j's gallery; red: C[i][j] > C[j][j] (ECC)", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


LABELS = {"independent": "independent (ER)", "bct": "BCT", "dsimplex": "d-Simplex-HOC"}


def section(data: dict, src: Source) -> Section:
    """``dsimplex.json`` (``hotswap experiment dsimplex``): AC, AM and the compatibility matrices."""
    n_tasks = int(data["tasks"])
    paper_tasks = 7 if n_tasks <= 7 else 31
    suffix = "" if paper_tasks == n_tasks else f" ({paper_tasks} tasks)"
    header = ["method", "AC", f"paper AC{suffix}", "AM (%)", f"paper AM{suffix}", "last model self-test (%)",
              "mean NFR, consecutive models (%)"]
    settings = [r["setting"] for r in data["rows"] if r.get("setting")]
    if len(set(settings)) > 1:
        header = ["setting"] + header
    rows, matrices = [], []
    for r in data["rows"]:
        lead = [r.get("setting", "")] if len(set(settings)) > 1 else []
        fallback = PAPER.numbers[str(paper_tasks)].get(r["method"], {})   # only where the JSON carries no paper field
        p_ac = r["paper_AC"] if "paper_AC" in r else fallback.get("AC")
        p_am = r["paper_AM"] if "paper_AM" in r else fallback.get("AM")
        nfr = r.get("negative_flip_rates") or []
        last_self = r["matrix"][-1][-1]
        rows.append(lead + [LABELS.get(r["method"], r["method"]), num(r["AC"], 2), num(p_ac, 2),
                            num(r["AM"], 2), num(p_am, 2), num(last_self),
                            pct(sum(nfr) / len(nfr)) if nfr else DASH])
        if n_tasks <= 8:
            matrices.append(ReportTable(["query i / gallery j"] + [str(j) for j in range(n_tasks)],
                                        [[str(i)] + ["" if v is None else num(v) for v in row]
                                         for i, row in enumerate(r["matrix"])],
                                        caption=f"{' '.join(lead)} {LABELS.get(r['method'], r['method'])}: "
                                                "top-1 (%) of model i's "
                                                "queries on model j's gallery", compact=True))
    notes = [data.get("paper_reference"), join(data.get("dataset"), data.get("metric")),
             join(f"replacements at tasks {', '.join(map(str, data.get('replacement_tasks', [])))}",
                  f"{data.get('queries', 0):,} queries", f"{data.get('gallery_images', 0):,} gallery images"),
             join(wall(data), hardware(data))]
    if n_tasks > 8:
        notes.append(f"the {n_tasks}×{n_tasks} matrices are in {src.key} and the heat maps below")
    cfg = data.get("config", {})
    command = f"hotswap experiment dsimplex --scale {cfg.get('scale', 'default')}"
    if n_tasks != 7:
        command += f" --tasks {n_tasks}"
    if cfg.get("workdir") not in (None, "runs/dsimplex"):
        command += f" --workdir {cfg['workdir']}"
    title = f"Stationary representations (d-Simplex), {n_tasks} tasks"
    if paper_tasks != n_tasks:
        title += f" (stands in for the paper's {paper_tasks})"
    return Section(src.key, title, with_out(command, src),
                   [ReportTable(header, rows, paper_columns=(3, 5) if len(set(settings)) > 1 else (2, 4),
                                caption="AC = share of pairs j < i with C[i][j] > C[j][j]; AM = mean of the lower "
                                        "triangle")]
                   + matrices, [n for n in notes if n], src.image, src.path)


SPEC = Experiment(
    name="dsimplex",
    help="Independent (ER), BCT and d-Simplex-HOC over a class-incremental chain with model replacements; prints "
         "AC / AM beside the paper's and merges this setting's rows into results/dsimplex.json (the other "
         "setting's rows are kept); writes dsimplex.png (seen-classes) or dsimplex-heldout-classes.png.",
    options=DSimplexOptions,
    run="hotswap_harness.experiments.dsimplex:run",
    save="hotswap_harness.experiments.dsimplex:save",
    table=table,
    example="hotswap experiment dsimplex --scale default --setting heldout-classes",
    sections={"dsimplex.json": section},
    lines=status_split_summary,
    check=check,
    paper=PAPER,
)
