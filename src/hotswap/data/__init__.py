"""Datasets as BEIR-shaped dicts: ``load_dataset("debian")`` or ``load_dataset("/path/to/beir/folder")``.

``debian`` is bundled: Debian 12 package descriptions (short description -> long description, Section as the
domain), built by ``scripts/build_debian_dataset.py``; 60,190 documents, 35,628 train / 23,632 test queries.
Four more real sources, built by ``scripts/build_text_sources.py`` from Debian 12 packages (the query a term or
a summary line, the document its definition or description): ``foldoc`` (dict-foldoc, 10,524 documents),
``jargon`` (dict-jargon, the Jargon File, 2,082), ``gcide`` (dict-gcide, a seeded 12,000-headword sample,
14,467) and ``pydoc`` (python3.11-doc: an API entry's summary line -> its signature and description, 5,424).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from hotswap.data.beir import load_beir_folder
from hotswap.data.dataset import Qrels, RetrievalDataset
from hotswap.errors import AssetMissingError

BUNDLED = ("debian", "foldoc", "jargon", "gcide", "pydoc")


def bundled_path(name: str) -> Path:
    return Path(str(files("hotswap.data") / "bundled" / name))


def load_dataset(name_or_path: str | Path, max_docs: int | None = None, max_train_queries: int | None = None,
                 max_test_queries: int | None = None, seed: int = 0) -> RetrievalDataset:
    """Load a bundled dataset by name or a BEIR folder by path, optionally as a seeded subset."""
    if str(name_or_path) in BUNDLED:
        ds = load_beir_folder(bundled_path(str(name_or_path)), name=str(name_or_path))
    elif Path(name_or_path).is_dir():
        ds = load_beir_folder(name_or_path)
    else:
        raise AssetMissingError(f"unknown dataset {str(name_or_path)!r}: use one of {BUNDLED} or a BEIR folder path")
    if max_docs is None and max_train_queries is None and max_test_queries is None:
        return ds
    return ds.subset(max_docs, max_train_queries, max_test_queries, seed)


__all__ = ["BUNDLED", "Qrels", "RetrievalDataset", "load_dataset", "load_beir_folder"]
