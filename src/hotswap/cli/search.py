"""``hotswap search``: search an index or an upgrade in progress in any mode; the searching machinery
``hotswap eval`` shares (options, mode choice, adapter checks, the search session).

Heavy modules (torch, FAISS, the models) load inside the verbs, so ``hotswap --help`` stays fast. Every check
that can fail (paths, modes, adapters against models, dims) runs before anything is encoded, and every encoding
goes through the one embedding cache (``hotswap.encoders.cache``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hotswap.cli import context
from hotswap.cli.output import JSON, console, emit_json, say, table
from hotswap.errors import HotswapError

MODE_NAMES = ("old", "adapted", "blended", "new", "merged", "calibrated", "cross", "cascade")
UPGRADE_MODES = ("merged", "calibrated", "cross", "cascade")
INDEX = typer.Option(None, "--index", help="an index built by 'hotswap encode' (a folder or a store URI), a served "
                     "collection (read only) or an upgrade folder")
UPGRADE = typer.Option(None, "--upgrade", help="an upgrade in progress (the folder 'hotswap backfill' writes): "
                       "every mode, including merged, calibrated, cross and cascade")
MODE = typer.Option(None, help=f"one of {', '.join(MODE_NAMES)} (default: merged on an upgrade, adapted with "
                    "--adapter, new with --new-index, else old)")
MODEL = typer.Option(None, "--model", "--new", help="the new encoder: static, minilm, mpnet or a model folder (on "
                     "an upgrade: its new model by default)")
OLD = typer.Option(None, "--old", help="the encoder that built the index (default: found from the index's record)")
ADAPTER = typer.Option(None, help="a fitted adapter folder (hotswap fit-adapter); a saved blend searches blended")
NEW_INDEX = typer.Option(None, help="an index built by the new model (mode new)")
DATASET = typer.Option(None, help="the dataset the index was built from (default: the one it records)")
CANDIDATES = typer.Option(50, "--candidates", help="cascade: old-index candidates re-scored by the new model")
ENCODE_BUDGET = typer.Option(None, "--encode-budget", help="cascade: most documents encoded per query (default "
                             "unlimited); the rest keep their calibrated old score")
CANDIDATE_QUERY = typer.Option("auto", "--candidate-query", help="cascade: query that picks old candidates: auto, "
                               "old, adapted or blended")
CALIBRATION_DOCS = typer.Option(512, help="calibrated: documents the new model encodes to fit the score map")


# ---- searching ---------------------------------------------------------------------------------------------
def pick_mode(mode: str | None, target: context.Target, adapter: Path | None, new_index: Path | None) -> str:
    """The mode to search in, checked against what was given (before any model loads)."""
    if mode is None:
        mode = "merged" if target.upgrade is not None else "adapted" if adapter else "new" if new_index else "old"
    if mode not in MODE_NAMES:
        raise HotswapError(f"unknown mode {mode!r}; use one of {', '.join(MODE_NAMES)}")
    if mode in UPGRADE_MODES and target.upgrade is None:
        raise HotswapError(f"mode {mode!r} searches an upgrade in progress: pass --upgrade FOLDER (the folder "
                           "'hotswap backfill' writes)")
    if mode in ("adapted", "blended") and adapter is None:
        raise HotswapError(f"mode {mode!r} needs --adapter FOLDER (fit one with 'hotswap fit-adapter')")
    if mode == "new" and new_index is None and target.upgrade is None:
        raise HotswapError("mode 'new' needs --new-index (an index built by the new model) or --upgrade")
    if mode == "adapted" and adapter is not None and _is_blend(adapter):
        say(f"{adapter} is a blend: searching in mode blended")
        mode = "blended"
    if mode == "blended" and not _is_blend(adapter):
        raise HotswapError(f"{adapter} is a plain adapter, not a blend: search in mode adapted")
    return mode


def _is_blend(adapter: Path | None) -> bool:
    from hotswap.search.blend import is_blend_folder

    return adapter is not None and is_blend_folder(adapter)


def _adapter(path: Path | None, new_id: str, old_id: str) -> Any:
    """The adapter (or blend) at ``path``, refused unless it maps ``new_id`` queries into ``old_id``'s space."""
    if path is None:
        return None
    from hotswap.adapters import load_adapter
    from hotswap.errors import ModelMismatchError
    from hotswap.search import QueryBlend

    if not (path / "adapter.json").is_file():
        raise HotswapError(f"{path} is not an adapter folder (no adapter.json); fit one with 'hotswap fit-adapter'")
    fitted = QueryBlend.load(path) if _is_blend(path) else load_adapter(path)
    inner = getattr(fitted, "adapter", fitted)
    ids = (getattr(inner, "new_model_id_", None), getattr(inner, "old_model_id_", None))
    if ids != (new_id, old_id):
        raise ModelMismatchError(f"adapter {path} maps {ids[0]} -> {ids[1]}, but this search needs {new_id} -> "
                                 f"{old_id}; fit one with 'hotswap fit-adapter --index INDEX --new MODEL'")
    return fitted


class Session:
    """The searcher for a verb: target, encoders, adapter, optional calibration and texts, all checked."""

    def __init__(self, target: context.Target, mode: str, model: str | None, old: str | None, adapter: Path | None,
                 new_index: Path | None, ds: Any, *, persist: bool, candidate_query: str = "auto",
                 calibration_docs: int = 512, seed: int = 0) -> None:
        from hotswap.search import Searcher
        from hotswap.search.cascade import needs_old_queries
        from hotswap.store import open_store

        self.target, self.mode, self.ds = target, mode, ds
        self.new_enc = None if mode == "old" else context.new_encoder(target, model)
        if mode == "cross" and self._new_encoder().dim != target.store.dim:
            raise HotswapError(f"mode 'cross' compares new-model queries ({self._new_encoder().dim}-d) with old "
                               f"vectors ({target.store.dim}-d) directly; use merged or adapted")
        fitted = _adapter(adapter, self.new_enc.id, target.old_model_id) if self.new_enc is not None else None
        blend = fitted if mode == "blended" else None
        kwargs: dict[str, Any] = {"adapter": getattr(fitted, "adapter", fitted), "blend": blend,
                                  "new_encoder": self.new_enc}
        if target.upgrade is not None:
            texts = None
            if mode == "cascade":
                if ds is None:
                    raise HotswapError("mode 'cascade' encodes candidate documents: pass --dataset (their texts)")
                texts = lambda ids: [ds.corpus[i] for i in ids]  # noqa: E731
            self.searcher = Searcher.for_upgrade(target.upgrade, texts=texts, persist=persist, **kwargs)
        else:
            new_store = open_store(new_index) if new_index is not None else None
            if new_store is not None and new_store.model_id != self._new_encoder().id:
                raise HotswapError(f"--new-index {new_index} was built by {new_store.model_id}, not by the new model "
                                   f"{self._new_encoder().id}")
            self.searcher = Searcher(target.store, new_store=new_store, **kwargs)
        self.pair = mode in ("blended", "merged", "calibrated") or (
            mode == "cascade" and needs_old_queries(self.searcher.partitions, candidate_query))
        if self.pair or mode == "old":
            self.searcher.old_encoder = context.old_encoder(target, old)
        if mode == "calibrated":
            self.searcher.partitions.calibration = self._calibration(calibration_docs, seed)

    def _new_encoder(self) -> Any:
        """The new model's encoder: every mode but ``old`` has one."""
        if self.new_enc is None:
            raise HotswapError(f"mode {self.mode!r} searches with the old model only; it has no new-model encoder")
        return self.new_enc

    def _old_encoder(self) -> Any:
        """The old model's encoder: set for mode ``old`` and the modes that take (new, old) query pairs."""
        if self.searcher.old_encoder is None:
            raise HotswapError(f"mode {self.mode!r} encodes no old-model queries")
        return self.searcher.old_encoder

    @property
    def searched(self) -> str:
        """What the mode searches, in words, for the table's title."""
        if self.mode == "new":
            p = self.searcher.partitions
            new = p.new if p.new is not None else getattr(p.upgrade, "new", None)
            return f"{getattr(new, 'path', None) or self.target.location} (new model)"
        return self.target.location

    def _calibration(self, n_docs: int, seed: int) -> Any:
        return context.fit_calibration(self.target.store, self.ds, self.searcher.old_encoder, self.new_enc, n_docs,
                                       seed)

    def encode_queries(self, texts: list[str]) -> Any:
        """What ``Searcher.search`` takes for the mode: new-model queries, or the (new, old) pair."""
        from hotswap.encoders.cache import encode_cached

        Q_old = encode_cached(self._old_encoder(), texts)[0] if self.pair or self.mode == "old" else None
        if self.mode == "old":
            return Q_old
        Q_new = encode_cached(self._new_encoder(), texts)[0]
        return (Q_new, Q_old) if self.pair else Q_new

    def search(self, queries: Any, k: int, options: dict) -> tuple[Any, Any]:
        model_id = self._old_encoder().id if self.mode == "old" else self._new_encoder().id
        return self.searcher.search(queries, k, self.mode, model_id, **options)


def cascade_options(mode: str, candidates: int, encode_budget: int | None, candidate_query: str) -> dict:
    if mode != "cascade":
        return {}
    return {"candidates": candidates, "encode_budget": encode_budget, "candidate_query": candidate_query}


def _texts_for_display(target: context.Target, dataset: str | None) -> Any:
    """The dataset (for titles and snippets), or None when the index records none and none was given."""
    if dataset is None and not target.provenance.get("dataset"):
        return None
    return context.dataset_of(target, dataset)


def search(
    query: str = typer.Argument(..., help="query text"),
    index: str = INDEX,
    upgrade: Path = UPGRADE,
    mode: str = MODE,
    model: str = MODEL,
    old: str = OLD,
    adapter: Path = ADAPTER,
    new_index: Path = NEW_INDEX,
    k: int = typer.Option(10, min=1, max=1000),
    dataset: str = DATASET,
    candidates: int = CANDIDATES,
    encode_budget: int = ENCODE_BUDGET,
    candidate_query: str = CANDIDATE_QUERY,
    calibration_docs: int = CALIBRATION_DOCS,
    json_output: bool = JSON,
) -> None:
    """Search an index (or an upgrade in progress) for QUERY: the top K with ids, scores, titles and text.

    Example: hotswap search "fast array library for python" --index indexes/old --model minilm --adapter adapters/affine
    (an upgrade: hotswap search "..." --upgrade indexes/upgrade --mode cascade; what cascade encodes joins the backfill)
    """
    target = context.open_target(index, upgrade)
    try:
        mode = pick_mode(mode, target, adapter, new_index)
        ds = _texts_for_display(target, dataset)
        session = Session(target, mode, model, old, adapter, new_index, ds, persist=True,
                          candidate_query=candidate_query, calibration_docs=calibration_docs)
        D, I = session.search(session.encode_queries([query]), k,
                              cascade_options(mode, candidates, encode_budget, candidate_query))
        session.searcher.flush()  # cascade: what it encoded joins the upgrade's new partition
    finally:
        target.close()
    hits = [{"rank": r, "id": d, "score": float(s), "title": _title(ds, d), "text": _snippet(ds, d)}
            for r, (d, s) in enumerate(zip(I[0], D[0]), 1) if d is not None]
    if json_output:
        emit_json({"query": query, "mode": mode, "index": session.searched, "results": hits})
        return
    console.print(table(f"{mode}: {query}", hits, ["rank", "id", "score", "title", "text"]
                        if any(h["title"] for h in hits) else ["rank", "id", "score", "text"]))


def _title(ds: Any, doc_id: str) -> str:
    return "" if ds is None else ds.titles.get(doc_id, "")


def _snippet(ds: Any, doc_id: str, width: int = 60) -> str:
    if ds is None:
        return ""
    text = " ".join(ds.corpus.get(doc_id, "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


