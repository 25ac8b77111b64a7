"""Serving: search an index in one of several modes (``old``, ``adapted``, ``new``)."""

from hotswap.search.modes import MODES, Partitions
from hotswap.search.searcher import Searcher

__all__ = ["MODES", "Partitions", "Searcher"]
