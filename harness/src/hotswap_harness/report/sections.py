"""Results JSON -> report sections: one builder per results file, each returning a :class:`Section`.

A section holds what the results page shows for one experiment: the command that wrote the file, tables
whose numbers are already formatted (the papers' numbers as extra ``paper ...`` columns), a few notes read from
the JSON, and the PNG saved next to it. Nothing here reads files other than checking that the PNG exists, and
nothing renders or writes: see :mod:`hotswap_harness.report.render` and :mod:`hotswap_harness.report.build`.

Numbers follow one convention: nDCG and recall as fractions with 3 decimals in the demo and backfill tables,
percentages with 1 decimal, d-Simplex's AC and AM with 2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotswap.errors import HotswapError

DASH = "–"


class ReportError(HotswapError, ValueError):
    """A results folder or file that the report cannot read; the message names the file."""


@dataclass(frozen=True)
class Table:
    """A table of formatted cells; ``paper_columns`` are the indices of columns holding the papers' numbers.

    ``compact`` tables are small: the HTML page sets consecutive ones side by side.
    """

    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    paper_columns: tuple[int, ...] = ()
    compact: bool = False


@dataclass
class Section:
    """One results file as the report shows it."""

    key: str  # the JSON's path relative to the results folder, with '/' separators
    title: str
    command: str  # the command that wrote the file ('' when unknown); several commands are separated by newlines
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    image: Path | None = None
    source: Path | None = None


@dataclass(frozen=True)
class Skipped:
    """A results file the report leaves out, and why (not written yet, or not readable)."""

    key: str
    reason: str


@dataclass(frozen=True)
class Source:
    """Where a results file lies: its path, its key, and the results folder's name (for ``--out`` in commands)."""

    path: Path
    key: str
    results_name: str = "results"

    @property
    def subfolder(self) -> str | None:
        """``results/full`` for ``full/demo.json``; ``None`` for a file at the top of the results folder."""
        parent = Path(self.key).parent
        return None if parent == Path(".") else (Path(self.results_name) / parent).as_posix()

    @property
    def image(self) -> Path | None:
        png = self.path.with_suffix(".png")
        return png if png.is_file() else None


# --- formatting


def f3(x: float | None) -> str:
    """A fraction such as nDCG@10 with 3 decimals."""
    return DASH if x is None else f"{x:.3f}"


def pct(x: float | None) -> str:
    """A fraction shown as a percentage with 1 decimal (no % sign; the header says it)."""
    return DASH if x is None else f"{100 * x:.1f}"


def num(x: float | None, digits: int = 1) -> str:
    """A number already on its final scale (e.g. mAP in %) with ``digits`` decimals."""
    return DASH if x is None else f"{x:,.{digits}f}"


def scalar(x: Any) -> str:
    if x is None:
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:,.1f}" if abs(x) >= 1000 else f"{x:.4g}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def max_drop(values: Sequence[float]) -> float:
    """Largest fall between consecutive points (0 for a monotone curve)."""
    return max([0.0] + [a - b for a, b in zip(values, values[1:])])


def monotone(flag: bool | None, drop: float, digits: int) -> str:
    if flag or (flag is None and drop <= 0):
        return "yes"
    return f"no (−{drop:.{digits}f})" if drop > 0 else "no"


def with_out(command: str, src: Source) -> str:
    return f"{command} --out {src.subfolder}" if src.subfolder else command


def model_name(model_id: str | None) -> str:
    return (model_id or "?").split("@", 1)[0]


def hardware(data: dict) -> str | None:
    hw = data.get("hardware") or {}
    return f"{hw['cpu_count']} CPU cores ({hw.get('machine', '?')})" if "cpu_count" in hw else None


def wall(data: dict) -> str | None:
    seconds = data.get("wall_s", (data.get("timings_s") or {}).get("total"))
    return None if seconds is None else f"wall time {seconds:,.0f} s"


def join(*parts: str | None) -> str:
    return "; ".join(p for p in parts if p)


# --- the demo

DEMO_COLUMNS = [("ndcg@10", "nDCG@10"), ("recall@10", "R@10"), ("mrr@10", "MRR@10"), ("recall@100", "R@100"),
                ("negative_flip_rate", "NFR"), ("recovered_recall@10", "recovered R@10"),
                ("ratio_recall@10", "R@10 / new")]


def _demo_label(row: dict) -> str:
    if row.get("label"):
        return row["label"]
    if row.get("adapter") == "auto":
        return f"auto (validated): {row.get('auto_choice', '?')}"
    if "blend_weight" in row:
        return f"blended: {row['adapter']} (w={row['blend_weight']:g})"
    return {"old": "old/old", "new": "new/new (re-index)"}.get(row.get("mode", ""), f"adapted: {row.get('adapter')}")


def _demo_command(cfg: dict, src: Source) -> str:
    parts = ["hotswap demo"]
    if cfg.get("old", "static") != "static":
        parts.append(f"--old {cfg['old']}")
    if cfg.get("new", "minilm") != "minilm":
        parts.append(f"--new {cfg['new']}")
    if cfg.get("dataset", "debian") != "debian":
        parts.append(f"--dataset {cfg['dataset']}")
    if "max_docs" in cfg and cfg["max_docs"] is None:
        parts.append("--full")
    elif cfg.get("max_docs", 6000) != 6000:
        parts.append(f"--max-docs {cfg['max_docs']}")
    if cfg.get("seed", 0) != 0:
        parts.append(f"--seed {cfg['seed']}")
    return with_out(" ".join(parts), src)


def demo_section(data: dict, src: Source) -> Section:
    """``demo.json`` (``hotswap demo``): every adapter and blend against no upgrade and a full re-index."""
    cfg = data.get("config", {})
    size = "full corpus" if "max_docs" in cfg and cfg["max_docs"] is None else "subset"
    title = (f"Upgrade demo: {model_name(data.get('old_model'))} → {model_name(data.get('new_model'))}, "
             f"{data['n_docs']:,} docs ({size})")
    rows = [[_demo_label(r)] + [f3(r.get(k)) for k, _ in DEMO_COLUMNS] for r in data["rows"]]
    tables = [Table(["system"] + [h for _, h in DEMO_COLUMNS], rows,
                    caption=f"{data['n_test_queries']:,} test queries; NFR = negative flip rate vs old/old; "
                            "recovered = (adapted − old) / (new − old)")]
    notes = [join(data.get("dataset_note"), f"{data.get('n_fit_pairs', 0):,} fit pairs",
                   f"{data.get('n_train_queries', 0):,} train queries")]
    if sel := data.get("selection"):
        scores = sel.get("scores", {})
        tables.append(Table(["candidate", f"validation {sel.get('metric', 'nDCG@10')}", "served"],
                            [[k, f3(v), "yes" if k == sel.get("choice") else ""] for k, v in scores.items()],
                            caption=f"auto: each candidate refitted and scored on {sel.get('validation_queries', '?')} "
                                    "held-out train queries"))
        notes.append(f"auto served: {sel.get('choice')}")
    notes += [f"skipped adapter {k}: {why}" for k, why in (data.get("skipped_adapters") or {}).items()]
    notes.append(join(f"{data.get('old_model')} ({data.get('old_dim')}-d) → {data.get('new_model')} "
                       f"({data.get('new_dim')}-d)", wall(data), hardware(data)))
    return Section(src.key, title, _demo_command(cfg, src), tables, [n for n in notes if n], src.image, src.path)


# --- the backfill curves of `hotswap demo` / `hotswap backfill`


def fraction_header(f: float) -> str:
    return f"{100 * f:.0f}%"


def backfill_section(data: dict, src: Source) -> Section:
    """``backfill.json`` (``hotswap demo``'s backfill section, or ``hotswap backfill --eval-every``)."""
    curves = data["curves"]
    fractions = data.get("fractions") or [p["fraction"] for p in curves[0]["points"]]
    header = ["policy", "mode"] + [fraction_header(f) for f in fractions] + [
        "AUC nDCG@10", "AUC R@10", "AUC NFR", "monotone"]
    rows = []
    for c in curves:
        by_f = {round(p["fraction"], 6): p for p in c["points"]}
        ndcg = [by_f.get(round(f, 6), {}).get("ndcg@10") for f in fractions]
        drop = c.get("max_drop_ndcg@10", max_drop([v for v in ndcg if v is not None]))
        rows.append([c["policy"], c["mode"]] + [f3(v) for v in ndcg] + [
            f3(c.get("auc_ndcg@10")), f3(c.get("auc_recall@10")), f3(c.get("auc_negative_flip_rate")),
            monotone(c.get("monotone"), drop, 3)])
    notes = []
    if t := data.get("throughput"):
        n = t.get("n_docs", t.get("raw_encode_sample"))
        ratio = t.get("ratio") or (t["runner_items_s"] / t["raw_encode_items_s"]
                                   if t.get("runner_items_s") and t.get("raw_encode_items_s") else None)
        notes.append(f"throughput on {n} documents: the runner stored {num(t.get('runner_items_s'))} items/s, "
                     f"a raw encode {num(t.get('raw_encode_items_s'))} items/s"
                     + (f" ({ratio:.2f}×)" if ratio else ""))
    notes += [f"skipped mode {k}: {why}" for k, why in (data.get("skipped_modes") or {}).items()]
    notes.append(join(f"{data.get('old_model')} → {data.get('new_model')}",
                       f"{data['n_docs']:,} docs" if "n_docs" in data else None,
                       f"{data.get('n_test_queries', 0):,} test queries", wall(data), hardware(data)))
    cfg = data.get("config")
    if cfg and len(cfg.get("policies", [])) > 1:
        command = _demo_command(cfg, src) + "   # its backfill section"
    else:
        command = (f"hotswap backfill --index OLD --upgrade UP --new {model_name(data.get('new_model'))} "
                   f"--eval-every 10%")
        command = with_out(command, src)
    return Section(src.key, "Online backfill: nDCG@10 along the re-embedding", command,
                   [Table(header, rows, caption="nDCG@10 at each share of the gallery re-embedded; "
                                                "AUC = mean over the points")],
                   [n for n in notes if n], src.image, src.path)


# --- online backfill after Seo et al.: images, then the text pair

TEXT_LABELS = {"merge": "merge", "merge+reverse": "merge + reverse (psi, L2)",
               "merge+procrustes": "merge + procrustes"}


def online_backfill_text_section(data: dict, src: Source) -> Section:
    """``online_backfill_text.json``: the online-backfill protocol on the text pair, nDCG@10 and recall@10 in %."""
    shown = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    header = ["method", "order", "AUC nDCG@10 (%)", "AUC recall@10 (%)", "mean NFR (%)", "monotone"] + [
        fraction_header(f) for f in shown]
    rows = []
    for r in data["rows"]:
        by_f = {round(p["fraction"], 6): p["ndcg@10"] for p in r["curve"]}
        drop = r.get("max_drop_ndcg@10", max_drop(list(by_f.values())))
        rows.append([TEXT_LABELS.get(r["method"], r["method"]), r["order"], pct(r["auc_ndcg@10"]),
                     pct(r["auc_recall@10"]), pct(r["auc_negative_flip_rate"]),
                     monotone(r.get("monotone"), 100 * drop, 1)]
                    + [pct(by_f.get(f)) for f in shown])
    notes = [data.get("note"), join(data.get("dataset"), f"{data.get('old_model')} → {data.get('new_model')}")]
    return Section(src.key, "Online backfill on the text pair", "\n".join(data.get("commands", [])),
                   [Table(header, rows, caption="nDCG@10 (%) at 0, 20, …, 100 % of the gallery re-embedded; AUC = "
                                                "mean over the 11 points; no CMCL row: the text models are not "
                                                "retrained")],
                   [n for n in notes if n], src.image, src.path)


# --- anything else

GENERIC_TITLES = {"load": "Load test", "faults": "Fault injection", "upgrade_chain": "Upgrade chain"}


def generic_section(data: Any, src: Source, why: str | None = None) -> Section:
    """Any other JSON: its top-level scalar fields, and the names of the nested ones."""
    stem = Path(src.key).stem
    title = GENERIC_TITLES.get(stem, f"Other results: {src.key}")
    items = list(data.items()) if isinstance(data, dict) else []
    scalars = [[k, scalar(v)] for k, v in items if not isinstance(v, (dict, list))]
    nested = [f"{k} ({type(v).__name__} of {len(v)})" for k, v in items if isinstance(v, (dict, list))]
    notes = [why or "no dedicated section for this file: its top-level scalar fields"]
    if nested:
        notes.append("also holds: " + ", ".join(nested))
    if not isinstance(data, dict) and why is None:
        notes.append(f"the file holds a JSON {type(data).__name__}, not an object")
    return Section(src.key, title, "", [Table(["field", "value"], scalars)] if scalars else [], notes, src.image,
                   src.path)


# --- registry

Builder = Callable[[dict, Source], Section]
BUILDERS: dict[str, Builder] = {
    "demo": demo_section, "backfill": backfill_section,
    "online_backfill_text": online_backfill_text_section,
}
# The files the experiments write, in the report's order; a missing one is listed as skipped.
EXPECTED: tuple[str, ...] = (
    "demo.json", "backfill.json", "qdc.json", "dsimplex.json", "dsimplex_19tasks/dsimplex.json",
    "perturbation.json", "online_backfill.json", "online_backfill_text.json", "load.json", "faults.json",
    "upgrade_chain.json", "cascade.json", "cascade_cost.json",
)
_ORDER = [Path(k).stem for k in EXPECTED]


def order_key(key: str) -> tuple[int, int, str]:
    """Known files in :data:`EXPECTED`'s order (a subfolder's copy right after the top one), then the rest."""
    stem = Path(key).stem
    return (_ORDER.index(stem) if stem in _ORDER else len(_ORDER), key.count("/"), key)


def build_section(data: Any, src: Source, builders: Mapping[str, Builder] | None = None
                  ) -> tuple[Section, str | None]:
    """The section for one parsed file (``builders``: by file stem, default :data:`BUILDERS`), and a warning when a
    known file did not have the expected shape."""
    builder = (BUILDERS if builders is None else builders).get(Path(src.key).stem)
    if builder is None:
        return generic_section(data, src), None
    try:
        if not isinstance(data, dict):
            raise TypeError(f"the file holds a JSON {type(data).__name__}, not an object")
        return builder(data, src), None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, ZeroDivisionError) as e:
        why = (f"{src.key} does not have the shape its section expects ({type(e).__name__}: {e}); "
               "showing its scalar fields")
        return generic_section(data, src, why), why
