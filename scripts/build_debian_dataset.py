"""Build the bundled Debian package-description retrieval dataset (BEIR layout, gzipped).

Source: Debian 12 "bookworm" main, amd64. The English package descriptions come from
``/var/lib/apt/lists/*bookworm_main_i18n_Translation-en.lz4`` and the sections from the matching
``*_main_binary-amd64_Packages.lz4`` (run ``apt-get update -o Acquire::Languages=en`` first).
Debian package descriptions are written by Debian's maintainers and distributed by the Debian archive
under the licences of their packages; we ship them as a research dataset with this note.

Task: the **short description** (first line of ``Description-en``) is the query, the **long description**
(the indented text, paragraphs separated by `` .``) is the document, the package **Section** is the domain.

Cleaning:
* documents are deduplicated by identical long text (packages of one source share text); the document id
  is the alphabetically first package that carries the text;
* documents with fewer than 8 words and queries with fewer than 3 words are dropped;
* one query per distinct short description, named after the first package (alphabetically) that has it; every document whose text was written under that short
  description is relevant (grade 1); short descriptions shared by more than 5 distinct documents
  ("transitional dummy package") are too generic to be a query and are dropped;
* each query is assigned to ``train`` (60 %) or ``test`` (40 %) by a hash of its id, so the split is fixed
  and independent of ordering.

Usage: ``python scripts/build_debian_dataset.py [--out src/hotswap/data/bundled/debian]``
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import subprocess
from collections import defaultdict
from pathlib import Path

LISTS = "/var/lib/apt/lists"
MIN_DOC_WORDS = 8
MIN_QUERY_WORDS = 3
MAX_RELEVANT = 5
TRAIN_SHARE = 0.6


def _cat(pattern: str) -> str:
    paths = sorted(glob.glob(f"{LISTS}/{pattern}"))
    if not paths:
        raise SystemExit(f"no file matches {LISTS}/{pattern}; run: apt-get update -o Acquire::Languages=en")
    out = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", paths[0]], check=True, capture_output=True)
    return out.stdout.decode("utf-8", errors="replace")


def _stanzas(text: str):
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line.startswith(" ") and key is not None:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def _long_text(raw: str) -> str:
    paragraphs, current = [], []
    for line in raw.split("\n"):
        line = line.strip()
        if line == ".":
            paragraphs.append(" ".join(current))
            current = []
        elif line:
            current.append(line)
    paragraphs.append(" ".join(current))
    return "\n".join(p for p in paragraphs if p)


def split_of(qid: str) -> str:
    """``"train"`` or ``"test"``: a fixed hash of the query id against ``TRAIN_SHARE``."""
    h = int(hashlib.sha1(qid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "train" if h < TRAIN_SHARE else "test"


def build(out: Path) -> dict:
    sections = {}
    for st in _stanzas(_cat("*bookworm_main_binary-*_Packages.lz4")):
        if "Package" in st:
            sections[st["Package"]] = st.get("Section", "unknown").split("/")[-1]
    doc_of_text: dict[str, str] = {}
    short_to_docs: dict[str, set[str]] = defaultdict(set)
    short_to_pkg: dict[str, str] = {}
    packages = []
    for st in _stanzas(_cat("*bookworm_main_i18n_Translation-en.lz4")):
        if "Package" not in st or "Description-en" not in st:
            continue
        short, _, rest = st["Description-en"].partition("\n")
        packages.append((st["Package"], short.strip(), _long_text(rest)))
    packages.sort()
    corpus = {}
    for pkg, short, long in packages:
        if len(long.split()) < MIN_DOC_WORDS:
            continue
        if long not in doc_of_text:
            doc_of_text[long] = pkg
            corpus[pkg] = {"_id": pkg, "title": "", "text": long, "domain": sections.get(pkg, "unknown")}
        if len(short.split()) >= MIN_QUERY_WORDS:
            short_to_docs[short].add(doc_of_text[long])
            short_to_pkg.setdefault(short, pkg)  # packages are sorted: the first one names the query
    queries, qrels, seen_qids = [], {"train": [], "test": []}, set()
    for short in sorted(short_to_docs):
        docs = sorted(short_to_docs[short])
        if len(docs) > MAX_RELEVANT:
            continue
        qid = "q-" + short_to_pkg[short]
        while qid in seen_qids:  # a package listed twice (two versions) can name two short descriptions
            qid += "~"
        seen_qids.add(qid)
        split = split_of(qid)
        queries.append({"_id": qid, "text": short, "split": split, "domain": corpus[docs[0]]["domain"]})
        qrels[split] += [(qid, d) for d in docs]
    write_beir(out, corpus, queries, qrels)
    meta = {
        "name": "debian",
        "source": "Debian 12 bookworm main (amd64): Translation-en + Packages",
        "licence": "Debian package descriptions, from Debian's archive (each under its package's licence)",
        "n_docs": len(corpus),
        "n_queries": {s: sum(q["split"] == s for q in queries) for s in ("train", "test")},
        "rules": {"min_doc_words": MIN_DOC_WORDS, "min_query_words": MIN_QUERY_WORDS,
                  "max_relevant": MAX_RELEVANT, "train_share": TRAIN_SHARE},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def write_jsonl(path: Path, rows) -> None:
    """Gzipped JSON lines; mtime=0 keeps the gzip bytes reproducible across rebuilds."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        for row in rows:
            f.write((json.dumps(row, ensure_ascii=False) + "\n").encode())


def write_beir(out: Path, corpus: dict[str, dict], queries: list[dict], qrels: dict[str, list]) -> None:
    """A bundled dataset's files in ``out``: ``corpus.jsonl.gz``, ``queries.jsonl.gz`` and
    ``qrels/{split}.tsv`` (every pair relevant with score 1)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    write_jsonl(out / "corpus.jsonl.gz", corpus.values())
    write_jsonl(out / "queries.jsonl.gz", queries)
    for split, rows in qrels.items():
        with open(out / "qrels" / f"{split}.tsv", "w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            f.writelines(f"{q}\t{d}\t1\n" for q, d in rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("src/hotswap/data/bundled/debian"))
    print(json.dumps(build(ap.parse_args().out), indent=2))
