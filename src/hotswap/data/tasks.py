"""A sequence of five retrieval tasks on real data, for continual fine-tuning (Query Drift Compensation).

Goswami et al. (CoLLAs 2025) fine-tune a text retriever on five retrieval datasets in turn. We build the same
shape from the bundled Debian package descriptions (``load_dataset("debian")``: short description -> long
description, one query per short description), splitting them by the package's **Section** into domains:

* ``libraries-devel`` -- ``libs``, ``libdevel``, ``devel``, ``oldlibs``: shared libraries, headers, compilers
  ("library", "development", "shared", "C++", "API", "compiler");
* ``python-science`` -- ``python``, ``science``, ``math``: Python modules, scientific and mathematical software
  ("python", "module", "genome", "jupyter", "pytest", "octave");
* ``games`` -- ``games``: ("game", "player", "play", "levels", "arcade", "multiplayer");
* ``network-web-mail`` -- ``net``, ``web``, ``mail``, ``httpd``, ``comm``, ``news``: servers, clients and
  protocols ("server", "network", "client", "protocol", "daemon", "VPN", "mailbox");
* ``media`` -- ``sound``, ``video``, ``graphics``: audio, video and image tools ("audio", "images",
  "synthesizer", "playlist"; ``graphics`` also holds ~160 near-identical Tesseract OCR language packs).

A Section is chosen by the package's maintainer to say what the package is for, so each task's documents
and queries come from a different corner of the vocabulary (``tests/data/test_tasks.py`` checks that the most
frequent content words of ``games`` and ``libraries-devel`` barely overlap); the remaining Sections
(``perl``, ``haskell``, ``rust``, ``doc``, ``utils`` ...) are left out. Sections may carry an archive component
prefix (``contrib/games``); it is dropped before matching (the bundled data, built from ``main``, has none).

Per task:

* **corpus** -- every document of the task's Sections; where there are more than ``max_docs_per_task``, a
  seeded random sample of that many (the generator is seeded by ``seed`` and the task's name, so one task's
  sample does not depend on the others);
* **train / test queries** -- the bundled dataset's fixed split is kept (each query was assigned to train or
  test by a hash of its id when the dataset was built), so test queries are never trained on. A query stays in
  a task when one of its relevant documents is in the task's corpus, its qrels cut to those documents
  (``RetrievalDataset.restrict``); the few queries (~20) whose relevant documents lie in two tasks are dropped,
  so no query belongs to two tasks; each split is capped at ``max_train_queries`` / ``max_test_queries``
  (seeded sample).

Tasks are disjoint (no Section, hence no document or query, in two tasks). In the QDC protocol the documents
of **every** task are embedded once, by the first model, and never re-embedded: later models only encode
queries, whose drift is compensated at search time.

``load_source_sequence`` builds the other sequence, closer to the paper's five datasets: one task per bundled
real text source (``SOURCES``: Debian descriptions, FOLDOC, the Jargon File, GCIDE, Python's documentation),
each capped the same way; ids are prefixed with the source (``foldoc/spaghetti-code``) so no two tasks share one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hotswap.data import load_dataset
from hotswap.data.dataset import Qrels, RetrievalDataset

TASK_DOMAINS: dict[str, tuple[str, ...]] = {
    "libraries-devel": ("libs", "libdevel", "devel", "oldlibs"),
    "python-science": ("python", "science", "math"),
    "games": ("games",),
    "network-web-mail": ("net", "web", "mail", "httpd", "comm", "news"),
    "media": ("sound", "video", "graphics"),
}


@dataclass(frozen=True)
class TaskData:
    """One task of the sequence: its name, its Debian Sections (or its source) and its own ``RetrievalDataset``."""

    name: str
    sections: tuple[str, ...]
    data: RetrievalDataset
    available_docs: int = 0  # documents of these Sections before the ``max_docs_per_task`` cap


def normalise_section(section: str) -> str:
    """``"contrib/games"`` -> ``"games"``: drop the archive component, keep the Section."""
    return section.strip().split("/")[-1]


def _task_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)])


def _check_tasks(tasks: Mapping[str, tuple[str, ...]], known: set[str]) -> dict[str, tuple[str, ...]]:
    if not tasks:
        raise ValueError("no tasks given: pass a mapping of task name -> Debian Sections")
    out: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for name, sections in tasks.items():
        if isinstance(sections, str):
            raise ValueError(f"task {name!r}: sections must be a tuple of Section names, not the string {sections!r}")
        norm = tuple(dict.fromkeys(normalise_section(s) for s in sections))
        if not norm:
            raise ValueError(f"task {name!r} has no Sections")
        unknown = [s for s in norm if s not in known]
        if unknown:
            raise ValueError(f"task {name!r}: unknown Section(s) {unknown}; "
                             f"the dataset has: {', '.join(sorted(known))}")
        for s in norm:
            if s in owner:
                raise ValueError(f"Section {s!r} is in tasks {owner[s]!r} and {name!r}: tasks must be disjoint")
            owner[s] = name
        out[name] = norm
    return out


def _drop_cross_task(queries: dict[str, str], qrels: Qrels, task_of: dict[str, str]) -> tuple[dict[str, str], Qrels]:
    """Queries whose relevant documents fall in two or more tasks are dropped (documents outside every task
    do not count)."""
    keep = {q for q, rel in qrels.items() if len({task_of[d] for d in rel if d in task_of}) <= 1}
    return {q: t for q, t in queries.items() if q in keep}, {q: r for q, r in qrels.items() if q in keep}


def load_task_sequence(
    name: str | Path | RetrievalDataset = "debian",
    tasks: Mapping[str, tuple[str, ...]] = TASK_DOMAINS,
    max_docs_per_task: int | None = 3000,
    max_train_queries: int | None = 2000,
    max_test_queries: int | None = 500,
    seed: int = 0,
) -> list[TaskData]:
    """The tasks in order, each with its own corpus, train queries + qrels and held-out test queries + qrels.

    ``name`` is a dataset name or BEIR folder for ``load_dataset`` (its corpus rows must carry a ``domain`` /
    ``section``), or an already loaded ``RetrievalDataset``. Unknown or shared Sections raise ``ValueError``.
    """
    ds = name if isinstance(name, RetrievalDataset) else load_dataset(name)
    if not ds.domains:
        raise ValueError(f"dataset {ds.name!r} has no domains (Sections): its corpus rows need a 'domain' field")
    domains = {d: normalise_section(s) for d, s in ds.domains.items()}
    checked = _check_tasks(tasks, set(domains.values()))
    section_task = {s: t for t, ss in checked.items() for s in ss}
    task_of = {d: section_task[s] for d, s in domains.items() if s in section_task}
    queries, qrels = _drop_cross_task(ds.queries, ds.qrels, task_of)
    train_queries, train_qrels = _drop_cross_task(ds.train_queries, ds.train_qrels, task_of)
    base = replace(ds, queries=queries, qrels=qrels, train_queries=train_queries, train_qrels=train_qrels,
                   domains=domains)
    out = []
    for task, sections in checked.items():
        rng = _task_rng(seed, task)
        doc_ids = sorted(d for d, t in task_of.items() if t == task)
        available = len(doc_ids)
        if max_docs_per_task is not None and max_docs_per_task < available:
            doc_ids = sorted(rng.choice(doc_ids, size=max_docs_per_task, replace=False).tolist())
        data = base.restrict(doc_ids, max_train_queries, max_test_queries, rng)
        note = (f"task {task!r} of {ds.name}: Sections {', '.join(sections)}; {len(doc_ids)} of {available} docs "
                f"(seed {seed})")
        out.append(TaskData(task, sections, replace(data, name=f"{ds.name}/{task}", note=note), available))
    return out


SOURCES = ("debian", "foldoc", "jargon", "gcide", "pydoc")


def _prefixed(ds: RetrievalDataset, prefix: str) -> RetrievalDataset:
    """``ds`` with every document and query id written ``prefix/id``."""
    def ids(m: Mapping[str, str]) -> dict[str, str]:
        return {f"{prefix}/{k}": v for k, v in m.items()}

    def rels(q: Qrels) -> Qrels:
        return {f"{prefix}/{k}": {f"{prefix}/{d}": g for d, g in r.items()} for k, r in q.items()}
    return replace(ds, corpus=ids(ds.corpus), queries=ids(ds.queries), qrels=rels(ds.qrels),
                   train_queries=ids(ds.train_queries), train_qrels=rels(ds.train_qrels), domains=ids(ds.domains))


def load_source_sequence(
    sources: tuple[str, ...] = SOURCES,
    max_docs_per_task: int | None = 3000,
    max_train_queries: int | None = 2000,
    max_test_queries: int | None = 500,
    seed: int = 0,
) -> list[TaskData]:
    """One task per real text source, in order: each a seeded sample of ``max_docs_per_task`` of the source's
    documents, its queries with a relevant document among them (the source's train / test split kept), each
    split capped; ids prefixed with the source name. Unknown or repeated sources raise ``ValueError``."""
    if not sources or len(set(sources)) != len(sources):
        raise ValueError(f"need distinct sources, in order; got {sources!r}")
    out = []
    for name in sources:
        ds = load_dataset(name)  # AssetMissingError names the known ones
        rng = _task_rng(seed, name)
        doc_ids = sorted(ds.corpus)
        available = len(doc_ids)
        if max_docs_per_task is not None and max_docs_per_task < available:
            doc_ids = sorted(rng.choice(doc_ids, size=max_docs_per_task, replace=False).tolist())
        data = _prefixed(ds.restrict(doc_ids, max_train_queries, max_test_queries, rng), name)
        note = f"source {name}: {len(doc_ids)} of {available} docs (seed {seed})"
        out.append(TaskData(name, (name,), replace(data, name=name, note=note), available))
    return out


def train_pairs(task: TaskData) -> list[tuple[str, str]]:
    """``(query text, positive document text)`` for each train query and each of its relevant documents."""
    d = task.data
    return [(d.train_queries[q], d.corpus[doc]) for q in sorted(d.train_qrels)
            for doc, grade in sorted(d.train_qrels[q].items()) if grade > 0]


def describe_tasks(tasks: list[TaskData]) -> list[dict]:
    """Per-task counts for the data page's table."""
    return [{"task": t.name, "sections": list(t.sections), "docs": len(t.data.corpus),
             "available_docs": t.available_docs, "train_queries": len(t.data.train_queries),
             "train_pairs": sum(1 for rel in t.data.train_qrels.values() for g in rel.values() if g > 0),
             "test_queries": len(t.data.queries)} for t in tasks]


__all__ = ["SOURCES", "TASK_DOMAINS", "TaskData", "describe_tasks", "load_source_sequence", "load_task_sequence",
           "normalise_section", "train_pairs"]


# sizes of a task sequence: docs, train and test queries, training pairs per task and the training max length
TASK_SCALES: dict[str, dict[str, Any]] = {
    # name: (max docs per task, train queries per task, test queries per task, pairs per task, train max length)
    "tiny": dict(max_docs_per_task=150, max_train_queries=48, max_test_queries=40, max_pairs=48, max_seq_length=32),
    "default": dict(max_docs_per_task=1000, max_train_queries=500, max_test_queries=300, max_pairs=500,
                    max_seq_length=64),
    "paper": dict(max_docs_per_task=None, max_train_queries=None, max_test_queries=None, max_pairs=None,
                  max_seq_length=512),
}
