"""Read a BEIR-format folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/{train,dev,test}.tsv``.

Plain or ``.gz`` files. The corpus text is ``title + " " + text`` when a title is present (BEIR's own
convention). Extra fields ``domain`` / ``section`` on corpus rows become the dataset's ``domains``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hotswap.data.dataset import Qrels, RetrievalDataset
from hotswap.errors import AssetMissingError, HotswapError


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` of each non-blank line."""
    with _open_text(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}: line {n} is not valid JSON ({e}); is the file truncated?") from e


def _read_jsonl(path: Path) -> list[dict]:
    return [row for _, row in _iter_jsonl(path)]


def corpus_text(row: dict) -> str:
    """A corpus row's text, BEIR's way: ``title + " " + text`` when a title is present."""
    title, text = row.get("title") or "", row.get("text") or ""
    return f"{title} {text}".strip() if title else text


def read_corpus_jsonl(path: str | Path, max_docs: int | None = None) -> dict[str, str]:
    """``{id: text}`` of a corpus JSONL file (plain or ``.gz``): one object per line with ``id`` (or BEIR's
    ``_id``) and a non-empty ``text`` (``title`` is prefixed, as in BEIR); the first ``max_docs`` rows."""
    corpus: dict[str, str] = {}
    for n, row in _iter_jsonl(Path(path)):
        if not isinstance(row, dict):
            raise HotswapError(f"{path} line {n} is not a JSON object with an id and a text")
        key, text = row.get("id", row.get("_id")), corpus_text(row)
        if key is None or not isinstance(text, str) or not text:
            raise HotswapError(f"{path} line {n} needs an 'id' and a non-empty 'text'")
        corpus[str(key)] = text
        if max_docs is not None and len(corpus) >= max_docs:
            break
    return corpus


def _read_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with _open_text(path) as f:
        reader = csv.reader(f, delimiter="\t")
        for n, row in enumerate(reader, 1):
            if n == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # header
            if len(row) < 3:
                raise ValueError(f"{path}: line {n} needs 3 tab-separated fields (query-id, corpus-id, score)")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def read_qrels(path: str | Path) -> Qrels:
    """A BEIR qrels file (``query-id<TAB>corpus-id<TAB>score``, header optional, ``.gz`` read too)."""
    return _read_qrels(Path(path))


def read_queries(path: str | Path) -> dict[str, str]:
    """Queries ``{id: text}`` from a JSONL file of ``{"_id" or "id", "text"}`` lines (ids default to the line
    number), or from a plain text file with one query per line."""
    path = Path(path)
    if path.suffix not in (".jsonl", ".gz", ".json"):
        with _open_text(path) as f:
            return {str(n): line.strip() for n, line in enumerate(f, 1) if line.strip()}
    out = {}
    for n, row in _iter_jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ValueError(f"{path}: line {n} is not a JSON object with a \"text\" string")
        out[str(row.get("_id", row.get("id", n)))] = row["text"]
    return out


def load_beir_folder(folder: str | Path, name: str | None = None) -> RetrievalDataset:
    """Load a BEIR folder; the test split is ``qrels/test.tsv`` and the train split ``qrels/train.tsv``
    (or ``dev.tsv``) when present. Queries rows may carry ``split``; qrels decide membership either way."""
    folder = Path(folder)
    corpus_path, queries_path = _find(folder, "corpus.jsonl"), _find(folder, "queries.jsonl")
    test_path = _find(folder / "qrels", "test.tsv")
    if corpus_path is None or queries_path is None or test_path is None:
        missing = [n for n, p in (("corpus.jsonl", corpus_path), ("queries.jsonl", queries_path),
                                  ("qrels/test.tsv", test_path)) if p is None]
        raise AssetMissingError(f"{folder} is not a BEIR folder: missing {', '.join(missing)}")
    corpus: dict[str, str] = {}
    domains: dict[str, str] = {}
    titles: dict[str, str] = {}
    for row in _read_jsonl(corpus_path):
        did = str(row["_id"])
        corpus[did] = corpus_text(row)
        if row.get("title"):
            titles[did] = str(row["title"])
        if domain := row.get("domain") or row.get("section"):
            domains[did] = domain
    all_queries = {str(r["_id"]): r["text"] for r in _read_jsonl(queries_path)}
    test_qrels = _read_qrels(test_path)
    train_path = _find(folder / "qrels", "train.tsv") or _find(folder / "qrels", "dev.tsv")
    train_qrels = _read_qrels(train_path) if train_path else {}
    unknown = [d for rel in (*test_qrels.values(), *train_qrels.values()) for d in rel if d not in corpus]
    if unknown:
        raise ValueError(f"{folder}: qrels name {len(unknown)} document id(s) not in the corpus, e.g. {unknown[:3]}")

    def pick(qrels: Qrels) -> tuple[dict[str, str], Qrels]:
        kept = {q: rel for q, rel in qrels.items() if q in all_queries and any(g > 0 for g in rel.values())}
        return {q: all_queries[q] for q in kept}, kept

    queries, qrels = pick(test_qrels)
    train_queries, train_qrels = pick(train_qrels)
    return RetrievalDataset(name or folder.name, corpus, queries, qrels, train_queries, train_qrels, domains,
                            titles=titles)
