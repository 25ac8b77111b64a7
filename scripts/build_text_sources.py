"""Build four bundled text-retrieval datasets from Debian 12 "bookworm" packages (BEIR layout, gzipped).

Each is a retrieval task with a natural *short query -> long document* pairing, shipped exactly like the
bundled ``debian`` set (``corpus.jsonl.gz``, ``queries.jsonl.gz``, ``qrels/{train,test}.tsv``, ``meta.json``
with the package, its version and its licence). Together with ``debian`` they form a five-source sequence.

* ``foldoc`` -- ``dict-foldoc``, the Free On-line Dictionary of Computing (GFDL-1.1+): query = the entry's
  headword (``spaghetti code``), document = its definition with the headword lines (the headword and its
  aliases), the ``<category>`` tags and the trailing ``(date)`` removed; the first category is the domain.
  Entries from Debian's own ``Dictionary.debian`` (appended after FOLDOC proper, from its ``Dictionary.debian``
  entry on, under a verbatim-copies-only licence) and FOLDOC's ``<introduction>`` preamble are left out.
* ``jargon`` -- ``dict-jargon``, the Jargon File 4.4.7 (public domain): query = headword, document = the
  definition without the headword / pronunciation / part-of-speech lines.
* ``gcide`` -- ``dict-gcide``, the GNU Collaborative International Dictionary of English (GPL-2+): query =
  headword, document = the definition without the header (headword, pronunciation, part of speech,
  inflections and etymology in brackets) and without the source tags (``[1913 Webster]``, ``[PJC]``, ...);
  ``GCIDE_QUERIES`` queries are drawn with a seeded RNG after filtering, the corpus is their documents.
* ``pydoc`` -- ``python3.11-doc``, the Python 3.11 HTML documentation (PSF-2.0): every API object
  (``py``/``c`` domain entry: function, class, method, attribute, C function, ...) of the library,
  language reference, tutorial, HOWTO, FAQ, usage, extending and C-API pages is a document; the query is
  its **summary line** (the first sentence of its description, PEP 257's sense), the document is the
  signature (as the BEIR ``title``) plus the rest of the description (nested objects, e.g. a class's
  methods, are their own documents). The documentation area (``library``, ``c-api``, ...) is the domain.
  The per-section pairing (first sentence of an h2/h3 section -> the rest of it) was tried and not used:
  about 2,260 pairs in all, 22-word queries that often lean on the section before ("We saw that lists and
  strings have ...") or are a "Note", and 184-word documents; the API pairing gives 5,253 queries of 13
  words for 66-word documents, the proportions of ``debian``'s short -> long descriptions.

Dictionary parsing is ours (no dictd binaries): ``.index`` lines are ``headword\\tOFFSET\\tLENGTH`` with
dictd's base64 numbers, ``.dict.dz`` is gzip-compatible (dictzip). Cleaning, common to all four:

* cross-references ``{like this}`` (dictionaries) lose their braces; whitespace is collapsed inside paragraphs and
  paragraphs are joined with a newline (as in ``debian``); documents are cut at ``MAX_DOC_WORDS`` words;
* a document needs ``MIN_DOC_WORDS`` words once cross-reference sentences ("See X.", "Same as X.",
  "Compare X.") are removed, so cross-reference-only entries are dropped; documents are deduplicated by
  identical text (the id is that of the first entry, in file order, carrying it); the corpus holds the
  documents that some query reaches;
* a dictionary query is a headword with at least two letters or digits; its relevant documents are all
  kept documents that the dictionary's index lists under that headword (case-insensitive, as dictd looks
  it up: homographs and aliases included); a pydoc query is a summary line of 3 to ``MAX_QUERY_WORDS``
  words and its relevant documents are all documents with that summary line; a query with more than
  ``MAX_RELEVANT`` relevant documents is too generic and dropped (the ``debian`` rule);
* the split is the ``debian`` one: ``train`` (60 %) or ``test`` (40 %) by a sha1 hash of the query id.

Usage: ``python scripts/build_text_sources.py [--debs DIR] [--out-root src/hotswap/data/bundled]
[--only foldoc,jargon,gcide,pydoc]``. Without ``--debs`` the four ``.deb`` files are fetched with
``apt-get download`` into a temporary folder (an apt source for bookworm must be configured).
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import random
import re
import subprocess
import tempfile
import unicodedata
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

from build_debian_dataset import TRAIN_SHARE, split_of, write_beir  # the same split and file layout

PACKAGES = {"foldoc": "dict-foldoc", "jargon": "dict-jargon", "gcide": "dict-gcide", "pydoc": "python3.11-doc"}
LICENCES = {
    "foldoc": "GFDL-1.1+ (FOLDOC, Copyright 1985 by Denis Howe; cite as \"The Free On-line Dictionary of "
              "Computing, http://foldoc.org/, Editor Denis Howe\")",
    "jargon": "public domain (The Jargon File 4.4.7; cite as \"Jargon File 4.4.7\")",
    "gcide": "GPL-2+ (GCIDE, derived from Webster's Revised Unabridged Dictionary 1913 and WordNet 1.5)",
    "pydoc": "PSF-2.0 (Python Software Foundation License Version 2; Python 3.11 documentation)",
}
SOURCES = {
    "foldoc": "dict-foldoc: usr/share/dictd/foldoc.{index,dict.dz}",
    "jargon": "dict-jargon: usr/share/dictd/jargon.{index,dict.dz}",
    "gcide": "dict-gcide: usr/share/dictd/gcide.{index,dict.dz}",
    "pydoc": "python3.11-doc: usr/share/doc/python3.11/html/{library,reference,tutorial,howto,faq,using,"
             "extending,c-api}/*.html",
}
MIN_DOC_WORDS = 8
MIN_QUERY_WORDS_PYDOC = 3
MAX_QUERY_WORDS = 40
MAX_DOC_WORDS = 400
MAX_RELEVANT = 5
GCIDE_QUERIES = 12_000
SEED = 0
PYDOC_DIRS = ("library", "reference", "tutorial", "howto", "faq", "using", "extending", "c-api")


# ----------------------------------------------------------------------------------------------- common

def _slug(text: str) -> str:
    return re.sub(r"\s+", "_", text.strip())


def _unique(base: str, taken: set[str]) -> str:
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}~{n}"
    taken.add(key)
    return key


_XREF = re.compile(r"(?:\b(?:[Ss]ee(?: also| under)?|Same as|[Cc]ompare|Cf\.|Synonym for|Also spelt)\s+[^.;]*[.;]?)")


def _content_words(text: str) -> int:
    """Words left once cross-reference sentences are removed: tells a real definition from a pointer."""
    return len(_XREF.sub(" ", text).split())


def _cap(text: str, n: int = MAX_DOC_WORDS) -> str:
    """At most ``n`` words, keeping the paragraph breaks of the kept part."""
    out, left = [], n
    for para in text.split("\n"):
        words = para.split()
        if not words:
            continue
        out.append(" ".join(words[:left]))
        left -= len(words[:left])
        if left <= 0:
            break
    return "\n".join(out)


def _paragraphs(raw: str) -> list[str]:
    """Blank-line separated paragraphs with inner whitespace collapsed."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", raw) if p.strip()]


def _unbrace(text: str) -> str:
    """``{cross reference}`` -> ``cross reference``; ``{text (http://url)}`` -> ``text``; ``{(url)}`` -> ''."""
    def repl(m: re.Match) -> str:
        inner = re.sub(r"\s*\((?:[a-z]+:|www\.|[^()\s]*\.html?\b)[^()]*\)", "", m.group(1))
        return inner
    return re.sub(r"\{([^{}]*)\}", repl, text)


def _finish(name: str, corpus: dict[str, dict], queries: list[dict], qrels: dict[str, list], out: Path,
            meta_extra: dict) -> dict:
    write_beir(out, corpus, queries, qrels)
    qwords = [len(q["text"].split()) for q in queries]
    dwords = [len(((r.get("title") or "") + " " + r["text"]).split()) for r in corpus.values()]
    meta = {
        "name": name,
        **meta_extra,
        "n_docs": len(corpus),
        "n_queries": {s: sum(q["split"] == s for q in queries) for s in ("train", "test")},
        "mean_query_words": round(sum(qwords) / max(len(qwords), 1), 2),
        "mean_doc_words": round(sum(dwords) / max(len(dwords), 1), 2),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return meta


def _assemble(docs: list[tuple[str, str, dict]], query_docs: dict[str, tuple[str, list[str]]]):
    """``docs``: ``(entry key, text, extra row fields)`` in file order; ``query_docs``: ``{query key:
    (query text, [entry keys])}``. Dedupes documents by text and names queries; returns corpus, queries, qrels."""
    corpus: dict[str, dict] = {}
    doc_of_text: dict[tuple[str, str], str] = {}
    doc_of_entry: dict[str, str] = {}
    for key, text, extra in docs:
        extra = dict(extra)
        title = extra.pop("title", "")
        if (title, text) not in doc_of_text:
            doc_of_text[(title, text)] = key
            corpus[key] = {"_id": key, "title": title, "text": text, **extra}
        doc_of_entry[key] = doc_of_text[(title, text)]
    queries, qrels, taken = [], {"train": [], "test": []}, set()
    for qkey in sorted(query_docs):
        qtext, entries = query_docs[qkey]
        rel = sorted({doc_of_entry[e] for e in entries if e in doc_of_entry})
        if not rel or len(rel) > MAX_RELEVANT:
            continue
        qid = _unique("q-" + _slug(qkey), taken)
        split = split_of(qid)
        row = {"_id": qid, "text": qtext, "split": split}
        if corpus[rel[0]].get("domain"):
            row["domain"] = corpus[rel[0]]["domain"]
        queries.append(row)
        qrels[split] += [(qid, d) for d in rel]
    used = {d for rows in qrels.values() for _, d in rows}
    corpus = {k: v for k, v in corpus.items() if k in used}  # a document no query reaches only adds noise
    return corpus, queries, qrels


# ---------------------------------------------------------------------------------------------- dictd

_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _b64(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + _B64[c]
    return n


def read_dictd(stem: Path) -> tuple[list[tuple[str, int, int]], bytes]:
    """``([(headword, offset, length)], uncompressed .dict bytes)`` of a dictd database."""
    data = gzip.open(f"{stem}.dict.dz").read()
    index = []
    with open(f"{stem}.index", encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3 and not parts[0].startswith("00-database") and not parts[0].startswith("00database"):
                index.append((parts[0], _b64(parts[1]), _b64(parts[2])))
    return index, data


def _dictionary(index, data, clean, min_query_alnum: int = 2, end: int | None = None):
    """Entries (distinct offset/length, those before offset ``end``), cleaned by ``clean(raw) -> (primary
    headword, text, extra) | None``; queries = primary headwords, relevant = every kept entry the index
    lists under the headword."""
    entries = sorted({(o, n) for _, o, n in index if end is None or o < end})
    under: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for head, o, n in index:
        under[head.casefold()].append((o, n))
    docs, key_of, taken, primaries = [], {}, set(), {}
    for o, n in entries:
        got = clean(data[o:o + n].decode("utf-8", errors="replace"))
        if got is None:
            continue
        head, text, extra = got
        if len(text.split()) < MIN_DOC_WORDS or _content_words(text) < MIN_DOC_WORDS:
            continue
        key = _unique(_slug(head), taken)
        key_of[(o, n)] = key
        docs.append((key, _cap(text), extra))
        if sum(ch.isalnum() for ch in head) >= min_query_alnum:
            primaries.setdefault(head.casefold(), head)
    query_docs = {}
    for folded, head in primaries.items():
        query_docs[folded] = (head, [key_of[e] for e in under.get(folded, []) if e in key_of])
    return docs, query_docs


_TAG = re.compile(r"^((?:\d+\.\s*)?)<([A-Za-z][A-Za-z0-9 ,/&+'-]*)>\s*")
_DATE = re.compile(r"^\(\d{4}-\d{2}-\d{2}\)$")


def clean_foldoc(raw: str):
    header, _, body = raw.partition("\n\n")
    heads = [h.strip() for h in header.splitlines() if h.strip()]
    if not heads or "<Debian>" in body or "<introduction>" in body:  # Debian's additions, FOLDOC's preamble
        return None
    domain, paras = "", []
    for p in _paragraphs(body):
        if _DATE.match(p):
            continue
        m = _TAG.match(p)
        while m:  # "<programming>" or "2. <file format>"
            domain = domain or m.group(2).split(",")[0].strip().lower()
            p = m.group(1) + p[m.end():]
            m = _TAG.match(p)
        p = " ".join(_unbrace(p).split())
        if p:
            paras.append(p)
    return heads[0], "\n".join(paras), ({"domain": domain} if domain else {})


def clean_jargon(raw: str):
    header, _, body = raw.partition("\n\n")
    lines = [h.strip() for h in header.splitlines() if h.strip()]
    if not lines:
        return None
    paras = [" ".join(_unbrace(p).split()) for p in _paragraphs(body)]
    return lines[0], "\n".join(p for p in paras if p), {}


_SOURCE_TAG = re.compile(r"\[[^\[\]]*(?:Webster|WordNet|PJC|Century|RHD|MW10|\bAS\b)[^\[\]]*\]")
_MERGED = re.compile(r"\]([ \t]+[^\s\\\[\]{}()][^\\\n]{0,60}\\[^\\\n]{0,80}\\)")
_GCIDE_POS = re.compile(r"^(?:(?:[a-z]{1,7}\.|&|[;,]|or|\{[^{}]*\}\.?)\s*)+")


def _drop_brackets(s: str) -> str:
    """Remove leading balanced ``[...]`` groups (inflections, etymology) and what separates them."""
    while s.startswith("["):
        depth = 0
        for i, ch in enumerate(s):
            depth += ch == "["
            depth -= ch == "]"
            if depth == 0:
                s = s[i + 1:].lstrip(" ,;.")
                break
        else:
            return ""
    return s


_GCIDE_HEADS = re.compile(r"^(?:[^\\\[\](){}]{0,60}?\\[^\\]{0,80}\\\s*,?\s*)+")  # Word \Wo"rd\, Alt \Alt\,
_GCIDE_PAREN = re.compile(r"^\(((?:[^()]|\([^()]*\))*)\)[\s,;.]*")


def _strip_pronunciation(s: str) -> str:
    """Drop a leading ``(pr[o^]*n[=u]n")`` / ``(-al)``, keep a field label such as ``(Zool.)``/``(Zo["o]l.)``."""
    m = _GCIDE_PAREN.match(s)
    if not m:
        return s
    inner, bare = m.group(1), re.sub(r"\[[^\]]*\]", "", m.group(1))
    pron = (inner.startswith("-") or any(c in bare for c in '*`?;"')
            or ("[" in inner and (inner[0] == "[" or inner[0].islower())))
    return s[m.end():] if pron else s
_ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304", ",": "\u0327"}
_LIGATURES = {"[ae]": "\u00e6", "[AE]": "\u00c6", "[oe]": "\u0153", "[OE]": "\u0152"}


def _gcide_chars(text: str) -> str:
    """GCIDE's ASCII markup for letters: ``['e]`` -> e-acute, ``["o]`` -> o-umlaut, ``[ae]`` -> ae ligature."""
    for k, v in _LIGATURES.items():
        text = text.replace(k, v)
    return unicodedata.normalize(
        "NFC", re.sub(r"\[([\"'`^~=,])([A-Za-z])\]", lambda m: m.group(2) + _ACCENTS[m.group(1)], text))


def clean_gcide(raw: str):
    lines = raw.rstrip().split("\n")
    if lines and _SOURCE_TAG.search(lines[-1]):  # dictfmt leaks the next headword after the last tag
        last = list(_SOURCE_TAG.finditer(lines[-1]))[-1]
        lines[-1] = lines[-1][:last.end()]
    raw = "\n".join(lines)
    merged = _MERGED.search(raw)  # ... and now and then a whole next entry: "[1913 Webster] Word \\Wo"rd\\, adv."
    if merged:
        raw = raw[:merged.start(1)]
    m = re.match(r"([^\\\n]+?)\s*\\", raw)
    if not m:
        return None
    head = m.group(1).strip()
    paras = _paragraphs(_SOURCE_TAG.sub(" ", raw))
    if not paras:
        return None
    first, previous = paras[0], None
    while first != previous:  # Word \Wo"rd\ (pron), n.; pl. {Words} (pron). [etymology] -> the definition
        previous = first
        first = _GCIDE_HEADS.sub("", first)
        first = re.sub(r"^(?:\\\s*)+", "", first)
        first = _strip_pronunciation(first)
        first = _GCIDE_POS.sub("", first)
        first = _drop_brackets(first)
    paras[0] = re.sub(r"\s*\\[^\\\n]{1,60}\\", "", first)  # a pronunciation left further in: "Also Nuragh \\Nu"ragh\\"
    paras = [_gcide_chars(" ".join(_unbrace(p).split())) for p in paras]
    return head, "\n".join(p for p in paras if p), {}


def build_dictionary(name: str, root: Path, out: Path, meta_extra: dict) -> dict:
    stem = {"foldoc": "foldoc", "jargon": "jargon", "gcide": "gcide"}[name]
    index, data = read_dictd(root / "usr/share/dictd" / stem)
    clean = {"foldoc": clean_foldoc, "jargon": clean_jargon, "gcide": clean_gcide}[name]
    end = None
    if name == "foldoc":  # Debian appends Dictionary.debian (verbatim-copies-only licence) after FOLDOC proper
        end = min((o for h, o, _ in index if h.casefold() == "dictionary.debian"), default=None)
    docs, query_docs = _dictionary(index, data, clean, end=end)
    extra_rules = {}
    if name == "gcide":
        # filter first (a query needs 1..MAX_RELEVANT kept documents), then draw the queries
        kept_entries = {k for k, _, _ in docs}
        ok = sorted(q for q, (_, ents) in query_docs.items()
                    if 1 <= len({e for e in ents if e in kept_entries}) <= MAX_RELEVANT)
        chosen = set(random.Random(SEED).sample(ok, min(GCIDE_QUERIES, len(ok))))
        query_docs = {q: v for q, v in query_docs.items() if q in chosen}
        extra_rules = {"sampled_queries": len(chosen), "of_candidates": len(ok), "seed": SEED}
    corpus, queries, qrels = _assemble(docs, query_docs)
    rules = {"min_doc_words": MIN_DOC_WORDS, "max_doc_words": MAX_DOC_WORDS, "max_relevant": MAX_RELEVANT,
             "train_share": TRAIN_SHARE, "query": "headword", **extra_rules}
    return _finish(name, corpus, queries, qrels, out, {**meta_extra, "rules": rules})


# --------------------------------------------------------------------------------------------- pydoc

_VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"}
_BLOCK = {"p", "pre", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "blockquote", "div",
          "section", "dl", "ul", "ol", "caption"}


class _Node:
    __slots__ = ("tag", "attrs", "children", "parent")

    def __init__(self, tag: str, attrs, parent):
        self.tag, self.attrs, self.children, self.parent = tag, dict(attrs), [], parent

    @property
    def cls(self) -> str:
        return self.attrs.get("class") or ""


class _DOM(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.cur = _Node("root", [], None)

    def handle_starttag(self, tag, attrs):
        node = _Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in _VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(_Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        node = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.cur = node.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def _is_object(node) -> bool:
    return not isinstance(node, str) and node.tag == "dl" and node.cls.startswith(("py ", "c "))


def _skip(node) -> bool:
    return ("headerlink" in node.cls or "admonition-title" in node.cls or node.tag in ("script", "style"))


def _inline(node) -> str:
    out = []

    def rec(n):
        if isinstance(n, str):
            out.append(n)
        elif not _skip(n):
            for c in n.children:
                rec(c)
    rec(node)
    return " ".join("".join(out).split())


def _blocks(node) -> list[str]:
    """Paragraph texts under ``node``, not entering nested API objects."""
    out, buf = [], []

    def flush():
        s = " ".join("".join(buf).split())
        if s:
            out.append(s)
        buf.clear()

    def rec(n):
        if isinstance(n, str):
            buf.append(n)
            return
        if _skip(n):
            return
        if n is not node and _is_object(n):
            flush()
            return
        block = n.tag in _BLOCK
        if block:
            flush()
        if n.tag == "pre":
            buf.append(_inline(n))
            flush()
            return
        for c in n.children:
            rec(c)
        if block:
            flush()
    rec(node)
    flush()
    return out


_ABBR = re.compile(r"(?:\be\.g|\bi\.e|\betc|\bvs|\bcf|\bMr|\bDr|\bNo|\bSt|\bapprox|\b[A-Za-z])\.$")


def first_sentence(text: str) -> tuple[str, str]:
    """``(first sentence, rest)``: the first ``.``/``!``/``?`` followed by a space and a capital, digit,
    quote or bracket, that does not end an abbreviation (e.g., i.e., etc., an initial)."""
    for m in re.finditer(r"[.!?](?=\s+[A-Z(\"'`*_0-9\[])", text):
        if not _ABBR.search(text[:m.end()]):
            return text[:m.end()].strip(), text[m.end():].strip()
    return text.strip(), ""


def _elements(node):
    for c in node.children:
        if not isinstance(c, str):
            yield c


def build_pydoc(root: Path, out: Path, meta_extra: dict) -> dict:
    html = root / "usr/share/doc/python3.11/html"
    docs, summaries, taken = [], defaultdict(list), set()
    n_objects = 0
    for area in PYDOC_DIRS:
        for path in sorted(glob.glob(str(html / area / "*.html"))):
            parser = _DOM()
            with open(path, encoding="utf-8") as f:
                parser.feed(f.read())
            page = os.path.relpath(path, html)[:-len(".html")]
            stack = [parser.root]
            while stack:  # document order: pop from the end, push children reversed
                node = stack.pop()
                if _is_object(node):
                    n_objects += 1
                    dts = [c for c in _elements(node) if c.tag == "dt"]
                    dd = next((c for c in _elements(node) if c.tag == "dd"), None)
                    if dts and dd is not None:
                        blocks = _blocks(dd)
                        if blocks:
                            summary, rest = first_sentence(blocks[0])
                            text = _cap("\n".join(([rest] if rest else []) + blocks[1:]))
                            sig = " ; ".join(_inline(dt) for dt in dts)
                            nq = len(summary.split())
                            if (len(text.split()) >= MIN_DOC_WORDS and MIN_QUERY_WORDS_PYDOC <= nq <= MAX_QUERY_WORDS):
                                key = _unique(dts[0].attrs.get("id") or f"{page}#{n_objects}", taken)
                                docs.append((key, text, {"title": sig, "domain": area}))
                                summaries[summary].append(key)
                stack.extend(reversed(list(_elements(node))))
    query_docs = {}
    for summary, keys in summaries.items():
        query_docs[keys[0]] = (summary, keys)  # named after the first object that carries the summary line
    corpus, queries, qrels = _assemble(docs, query_docs)
    rules = {"min_doc_words": MIN_DOC_WORDS, "min_query_words": MIN_QUERY_WORDS_PYDOC,
             "max_query_words": MAX_QUERY_WORDS, "max_doc_words": MAX_DOC_WORDS, "max_relevant": MAX_RELEVANT,
             "train_share": TRAIN_SHARE, "query": "summary line (first sentence) of an API object's description",
             "api_objects_seen": n_objects}
    return _finish("pydoc", corpus, queries, qrels, out, {**meta_extra, "rules": rules})


# ----------------------------------------------------------------------------------------------- main

def _debs(folder: Path | None, tmp: Path) -> dict[str, Path]:
    if folder is None:
        folder = tmp / "debs"
        folder.mkdir()
        subprocess.run(["apt-get", "download", *PACKAGES.values()], cwd=folder, check=True)
    found = {}
    for name, pkg in PACKAGES.items():
        hits = sorted(Path(folder).glob(f"{pkg}_*.deb"))
        if not hits:
            raise SystemExit(f"no {pkg}_*.deb in {folder}")
        found[name] = hits[-1]
    return found


def build(names: list[str], debs_dir: Path | None, out_root: Path) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        debs = _debs(debs_dir, tmp)
        for name in names:
            deb = debs[name]
            root = tmp / name
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            field = lambda f: subprocess.run(["dpkg-deb", "-f", str(deb), f], check=True,  # noqa: E731
                                             capture_output=True, text=True).stdout.strip()
            meta_extra = {"source": f"Debian 12 bookworm, {SOURCES[name]}", "package": field("Package"),
                          "version": field("Version"), "deb": deb.name, "licence": LICENCES[name],
                          "copyright_file": f"/usr/share/doc/{field('Package')}/copyright"}
            out = out_root / name
            if name == "pydoc":
                results[name] = build_pydoc(root, out, meta_extra)
            else:
                results[name] = build_dictionary(name, root, out, meta_extra)
            print(json.dumps(results[name], indent=2, ensure_ascii=False), flush=True)
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--debs", type=Path, default=None,
                    help="folder holding the four .deb files (else apt-get download)")
    ap.add_argument("--out-root", type=Path, default=Path("src/hotswap/data/bundled"))
    ap.add_argument("--only", default=",".join(PACKAGES), help="comma-separated subset of " + ",".join(PACKAGES))
    args = ap.parse_args()
    build([n for n in args.only.split(",") if n], args.debs, args.out_root)
