"""The QDC experiment's sizes and settings, apart from its code so that the CLI's help reads them without torch."""

from __future__ import annotations

from typing import Any

SCALES: dict[str, dict[str, Any]] = {
    # name: (max docs per task, train queries per task, test queries per task, pairs per task, train max length)
    "tiny": dict(max_docs_per_task=150, max_train_queries=48, max_test_queries=40, max_pairs=48, max_seq_length=32),
    "default": dict(max_docs_per_task=1000, max_train_queries=500, max_test_queries=300, max_pairs=500,
                    max_seq_length=64),
    "paper": dict(max_docs_per_task=None, max_train_queries=None, max_test_queries=None, max_pairs=None,
                  max_seq_length=512),
}

SETTINGS = {"sections": "debian-sections", "sources": "five-sources"}  # --sequence -> the setting's name
