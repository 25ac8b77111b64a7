"""The prototype-perturbation protocol (Zhou et al., arXiv 2503.14824): ``hotswap experiment perturbation``.

Old model on 30 % of the classes, new on all (and 30 -> 60 -> 100 %): independent, BCT, prototype alignment,
NDPP, ODPP, scored by self- and cross-test mAP / top-1; the validated settings choose NDPP's and ODPP's
parameters on a validation split. The protocol itself is described in
:mod:`hotswap_harness.experiments.prototype_perturbation`, which runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from hotswap.figures import save_png
from hotswap_harness.experiments.registry import Experiment, Paper
from hotswap_harness.report.sections import Section, Source, hardware, join, num, pct, wall, with_out
from hotswap_harness.report.sections import Table as ReportTable

METHODS = ("independent", "bct", "prototype", "ndpp", "odpp")
SETTINGS = {"30-100": (0.3, 1.0), "30-60-100": (0.3, 0.6, 1.0)}   # setting -> share of the classes per step
VALIDATED = {"validated-30-100": "classes", "validated-data-30-100": "data"}   # setting -> what grows 30 -> 100%
SCALES = {
    "tiny": dict(arch="cnn", width=8, embed_dim=32, epochs=1, train_per_class=20, query_per_class=5,
                 gallery_per_class=20, batch_size=32, lr=0.05),
    "default": dict(arch="cnn", width=32, embed_dim=128, epochs=12, train_per_class=600, query_per_class=100,
                    gallery_per_class=None, batch_size=128, lr=0.05),
    "paper": dict(arch="resnet18", width=64, embed_dim=256, epochs=30, train_per_class=None, query_per_class=100,
                  gallery_per_class=None, batch_size=128, lr=0.05),
}

PAPER = Paper(
    "Zhou, Sun, Pei, Li, Wang, Prototype Perturbation for Relaxing Alignment Constraints in Backward-Compatible "
    "Learning, arXiv:2503.14824",
    note="NDPP >= ODPP > BCT on cross-test, self-test close to independent (GLDv2 / In-shop; numbers not readable "
         "here)")


@dataclass
class PerturbationOptions:
    """The protocol's options (each one a ``--option`` of ``hotswap experiment perturbation``)."""

    scale: str = field(default="default", metadata={
        "help": "tiny, default (2 CPU cores) or paper (ResNet-18, all images: a GPU)"})
    methods: tuple[str, ...] = field(default=METHODS, metadata={"help": "comma-separated"})
    settings: tuple[str, ...] = field(default=tuple(SETTINGS), metadata={
        "help": "comma-separated: 30-100, 30-60-100, validated-30-100 and/or validated-data-30-100 (NDPP / ODPP "
                "parameters chosen on a validation split of the training images; -data-: old on 30% of each "
                "class's images, scored on held-out classes)"})
    workdir: Path = field(default=Path("runs/perturbation"), metadata={
        "help": "trained models and embeddings (resumable)"})
    out: Path = field(default=Path("results"), metadata={
        "help": "folder for perturbation.json and perturbation.png"})
    seed: int = 42
    data: Path | None = field(default=None, metadata={
        "help": "image set .npz or folder (default: the built cache)"})

    def results(self) -> Path:
        """The results file the run's rows are merged into."""
        return Path(self.out) / "perturbation.json"


def check(options: PerturbationOptions) -> None:
    """Refuse an unknown setting, scale or method, and a run with nothing to run and nothing to show."""
    if bad := [s for s in options.settings if s not in SETTINGS and s not in VALIDATED]:
        raise ValueError(f"--settings: unknown {bad}; choose from {', '.join([*SETTINGS, *VALIDATED])}")
    if options.scale not in SCALES:
        raise ValueError(f"unknown scale {options.scale!r}; choose one of {', '.join(SCALES)}")
    if bad := [m for m in options.methods if m not in METHODS]:
        raise ValueError(f"unknown methods {bad}; the perturbation protocol compares {', '.join(METHODS)}")
    if not options.settings and not options.results().is_file():
        raise ValueError(f"no settings to run (--settings) and no earlier results in {options.results()}")


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def table(result: dict) -> Table:
    """Self-test and cross-test mAP / top-1 per (setting, method)."""
    table = Table(title=f"Prototype perturbation protocol: {result['dataset']}",
                  caption="paper: Zhou et al. arXiv 2503.14824 (GLDv2 / In-shop) finds NDPP >= ODPP > BCT on "
                          "cross-test with self-test close to independent; its numbers could not be read here")
    for col in ("setting", "method", "self mAP", "cross mAP", "self top-1", "cross top-1", "old self mAP",
                "NFR (%)"):
        table.add_column(col, justify="left" if col in ("setting", "method") else "right")
    for row in result["rows"]:
        table.add_row(row["setting"], row["method"], _fmt(row["self_map"], ".1f"), _fmt(row["cross_map"], ".1f"),
                      _fmt(row["self_top1"], ".1f"), _fmt(row["cross_top1"], ".1f"), _fmt(row["old_self_map"], ".1f"),
                      _fmt(100 * row["negative_flip_rate"], ".1f"))
    return table


def plot(result: dict, path: str | Path) -> Path:
    """Grouped bars: self-test and cross-test mAP per method, one panel per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    settings = list(dict.fromkeys(r["setting"] for r in result["rows"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 3.8), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        rows = [r for r in result["rows"] if r["setting"] == setting]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r["self_map"] for r in rows], 0.4, label="self-test mAP")
        ax.bar(x + 0.2, [r["cross_map"] for r in rows], 0.4, label="cross-test mAP")
        ax.axhline(rows[0]["old_self_map"], color="grey", ls="--", lw=1, label="old model self-test")
        ax.set_xticks(x, [r["method"] for r in rows])
        ax.set_title(setting, fontsize=10)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


LABELS = {"independent": "independent", "bct": "BCT", "prototype": "prototype", "ndpp": "NDPP", "odpp": "ODPP"}


def _train_s(data: dict, row: dict) -> float | None:
    """Training seconds of one row: the unrounded ``timings_s`` entry when there is one."""
    timed = (data.get("timings_s") or {}).get(f"train {row['method']} ({row['setting']})")
    return timed if timed is not None else row.get("train_wall_s")


def section(data: dict, src: Source) -> Section:
    """``perturbation.json`` (``hotswap experiment perturbation``): self- and cross-test of NDPP / ODPP."""
    header = ["setting", "method", "self mAP", "cross mAP", "self top-1", "cross top-1",
              "cross vs 60 % model mAP", "NFR (%)", "train s"]
    rows = [[r["setting"], LABELS.get(r["method"], r["method"]), num(r["self_map"]),
             num(r["cross_map"]), num(r["self_top1"]), num(r["cross_top1"]), num(r.get("cross_prev_map")),
             pct(r["negative_flip_rate"]), num(_train_s(data, r), 0)] for r in data["rows"]]
    old = data["rows"][0]
    notes = [f"paper: {data['paper_finding']}" if data.get("paper_finding") else None,
             f"the old (30 %) model: self-test mAP {num(old.get('old_self_map'))}, top-1 "
             f"{num(old.get('old_self_top1'))}",
             join(data.get("dataset"), data.get("metric")),
             join(f"{data.get('queries', 0):,} queries", f"{data.get('gallery_images', 0):,} gallery images",
                  wall(data), hardware(data))]
    cfg = data.get("config", {})
    command = f"hotswap experiment perturbation --scale {cfg.get('scale', 'default')}"
    return Section(src.key, "Prototype perturbation (NDPP / ODPP)", with_out(command, src),
                   [ReportTable(header, rows, caption="mAP and top-1 in %; cross-test searches the first (30 %) "
                                                      "model's gallery")],
                   [n for n in notes if n], src.image, src.path)


SPEC = Experiment(
    name="perturbation",
    help="Old model on 30% of the classes, new on all (and 30 -> 60 -> 100%): independent, BCT, prototype "
         "alignment, NDPP, ODPP; prints self-/cross-test mAP and top-1 and merges the rows of the settings run "
         "into results/perturbation.json (other settings' rows kept) + .png.",
    options=PerturbationOptions,
    run="hotswap_harness.experiments.prototype_perturbation:run",
    save="hotswap_harness.experiments.prototype_perturbation:save",
    table=table,
    example="hotswap experiment perturbation --scale default --settings validated-30-100",
    sections={"perturbation.json": section},
    check=check,
    paper=PAPER,
)
