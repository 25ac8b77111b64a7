"""The online-backfill protocol (Seo et al., WACV 2025): ``hotswap experiment online-backfill``.

Old model on half the classes, new models on all; merged-search mAP / top-1 at every 10 % of a backfill for plain
merge, BCT, merge + reverse transform, merge + reverse + CMCL (+ rho). The protocol itself (what is trained, how
each curve is traced) is described in :mod:`hotswap_harness.experiments.online_backfill`, which runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from hotswap.figures import save_png
from hotswap_harness.experiments.registry import Experiment, Paper
from hotswap_harness.report.sections import (
    DASH,
    Section,
    Source,
    hardware,
    join,
    max_drop,
    monotone,
    num,
    pct,
    wall,
    with_out,
)
from hotswap_harness.report.sections import Table as ReportTable

METHODS = ("merge", "bct", "merge+reverse", "merge+reverse+cmcl", "merge+reverse+cmcl+rho")
ORDERS = ("random", "uncertainty")
SETTINGS = ("fixed-new", "retrained-new")
SCALES = {
    "tiny": dict(arch="cnn", width=8, embed_dim=32, epochs=1, train_per_class=20, query_per_class=5,
                 gallery_per_class=20, batch_size=32, lr=0.05, psi_pairs=200),
    "default": dict(arch="cnn", width=32, embed_dim=128, epochs=12, train_per_class=600, query_per_class=100,
                    gallery_per_class=None, batch_size=128, lr=0.05, psi_pairs=4000),
    "paper": dict(arch="resnet18", width=64, embed_dim=256, epochs=30, train_per_class=None, query_per_class=100,
                  gallery_per_class=None, batch_size=128, lr=0.05, psi_pairs=20000),
}

PAPER = Paper(
    "Seo, Uzunbas, Han, Cao, Lim, Metric Compatible Training for Online Backfilling in Large-Scale Retrieval, "
    "WACV 2025, arXiv:2301.03767",
    numbers={"relative_gain": {"merge": "36–45 %", "bct": "4–27 %"}},
    note="merge+reverse+cmcl (+rho) > merge+reverse > merge > BCT on AUC; untrained merge recovers 36-45 % of the "
         "old->new gap (Table 1, second-hand), BCT 4-27 %")


@dataclass
class OnlineBackfillConfig:
    """The protocol's options (each one a ``--option`` of ``hotswap experiment online-backfill``)."""

    scale: str = field(default="default", metadata={
        "help": "tiny, default (2 CPU cores) or paper (ResNet-18, all images: a GPU)"})
    methods: tuple[str, ...] = field(default=METHODS, metadata={"help": "comma-separated"})
    orders: tuple[str, ...] = field(default=ORDERS, metadata={"help": "backfill orders, comma-separated"})
    settings: tuple[str, ...] = field(default=SETTINGS, metadata={
        "help": "comma-separated: fixed-new (psi / rho on the frozen independent new model) and/or retrained-new "
                "(new model trained with the method)"})
    old_fraction: float = field(default=0.5, metadata={"help": "share of the classes the old model trains on"})
    steps: int = field(default=10, metadata={"help": "curve points after 0 (10: every 10 % of the gallery)"})
    seed: int = 42
    data: str | None = field(default=None, metadata={
        "help": "image set .npz or folder (default: the built cache)"})
    workdir: str = field(default="runs/online_backfill", metadata={"help": "trained models (resumable)"})
    out: Path = field(default=Path("results"), metadata={"help": "folder for online_backfill.json and .png"})

    def limits(self) -> dict:
        """The scale's sizes; ``ValueError`` for an unknown scale."""
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; choose one of {', '.join(SCALES)}")
        return SCALES[self.scale]


def check(cfg: OnlineBackfillConfig) -> None:
    """Refuse an unknown scale, method, order or setting before anything is trained."""
    cfg.limits()
    for what, given, known in (("method", cfg.methods, METHODS), ("order", cfg.orders, ORDERS),
                               ("setting", cfg.settings, SETTINGS)):
        if bad := [g for g in given if g not in known]:
            raise ValueError(f"unknown {what} {bad[0]!r}; choose from {', '.join(known)}")


def table(result: dict) -> Table:
    """The terminal table: AUCs, relative gains, monotonicity, flips per (method, setting, order)."""
    table = Table(title=f"Online backfill with rank merge: {result['dataset']}",
                  caption=f"old model mAP {result['old_model_map']:.1f}; {_shared(result)}"
                          f"paper (Seo et al. WACV 2025; second-hand): {result['paper_ordering']}")
    for col in ("method", "setting", "order", "AUC mAP", "AUC CMC", "rel. gain", "rel. gain (shared new)",
                "monotone", "max neg. flips", "new mAP", "stored new mAP"):
        table.add_column(col, justify="left" if col in ("method", "setting", "order") else "right")
    for r in result["rows"]:
        table.add_row(r["method"], r.get("setting", "-"), r["order"], f"{r['auc_map']:.1f}", f"{r['auc_cmc']:.1f}",
                      _percent(r["relative_gain_map"]), _percent(r.get("relative_gain_shared_map")),
                      "yes" if r["monotone_map"] else "no", str(r["max_negative_flips"]), f"{r['new_model_map']:.1f}",
                      f"{r.get('stored_new_map', r['new_model_map']):.1f}")
    return table


def _shared(result: dict) -> str:
    m = result.get("shared_new_model_map")
    return "" if m is None else f"independent (shared) new model mAP {m:.1f}; "


def _percent(gain: float | None) -> str:
    return "-" if gain is None else f"{100 * gain:.0f} %"


def plot(result: dict, path: str | Path) -> Path:
    """mAP (left) and top-1 (right) against the backfilled fraction, one line per (method, setting, order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for r in result["rows"]:
        x = [c["fraction"] for c in r["curve"]]
        style = "-" if r["order"] == "random" else "--"
        for ax, key in zip(axes, ("map", "top1")):
            label = f"{r['method']} [{r.get('setting', '-')}] ({r['order']})"
            ax.plot(x, [c[key] for c in r["curve"]], style, marker="o", ms=3, label=label)
    axes[0].axhline(result["old_model_map"], color="grey", lw=0.8, label="old model alone")
    for ax, name in zip(axes, ("mAP (%)", "top-1 (%)")):
        ax.set_xlabel("fraction of the gallery backfilled")
        ax.set_ylabel(name)
    axes[0].legend(fontsize=7)
    fig.suptitle("Merged search over old and new partitions while the gallery is re-embedded", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


LABELS = {"merge": "merge", "bct": "BCT", "merge+reverse": "merge + reverse",
                          "merge+reverse+cmcl": "merge + reverse + CMCL",
                          "merge+reverse+cmcl+rho": "merge + reverse + CMCL + rho"}


def section(data: dict, src: Source) -> Section:
    """``online_backfill.json`` (``hotswap experiment online-backfill``): AUC of the backfill curves."""
    n_q = data.get("queries")
    header = ["method", "order", "AUC mAP", "AUC CMC (top-1)", "relative gain (%)", "paper relative gain",
              "mAP monotone", f"most negative flips (of {n_q:,})" if n_q else "most negative flips",
              "new model mAP"]
    rows, paper_gain = [], PAPER.numbers["relative_gain"]
    for r in data["rows"]:
        drop = max_drop([p["map"] for p in r.get("curve", [])])
        rows.append([LABELS.get(r["method"], r["method"]), r["order"], num(r["auc_map"]),
                     num(r["auc_cmc"]), pct(r["relative_gain_map"]), paper_gain.get(r["method"], DASH),
                     monotone(r.get("monotone_map"), drop, 1), str(r.get("max_negative_flips", DASH)),
                     num(r.get("new_model_map"))])
    notes = [f"paper: {data['paper_ordering']}" if data.get("paper_ordering") else None,
             f"the old model alone: {num(data.get('old_model_map'))} mAP",
             data.get("dataset"),
             join(f"{data.get('gallery_images', 0):,} gallery images", wall(data), hardware(data))]
    cfg = data.get("config", {})
    command = f"hotswap experiment online-backfill --scale {cfg.get('scale', 'default')}"
    return Section(src.key, "Online backfill with metric-compatible training (CMCL)", with_out(command, src),
                   [ReportTable(header, rows, paper_columns=(5,),
                          caption="AUC = mean over the 11 points (%); relative gain = (AUC − old mAP) / "
                                  "(new mAP − old mAP)")],
                   [n for n in notes if n], src.image, src.path)


SPEC = Experiment(
    name="online-backfill",
    help="Old model on half the classes, new models on all: merged-search mAP / top-1 at every 10 % of a backfill "
         "for plain merge, BCT, merge + reverse transform, merge + reverse + CMCL (+ rho), the CMCL rows both on "
         "the frozen independent new model (fixed-new) and with the new model retrained (retrained-new); writes "
         "results/online_backfill.json and .png.",
    options=OnlineBackfillConfig,
    run="hotswap_harness.experiments.online_backfill:run",
    save="hotswap_harness.experiments.online_backfill:save",
    table=table,
    example="hotswap experiment online-backfill --scale default",
    sections={"online_backfill.json": section},
    check=check,
    paper=PAPER,
)
