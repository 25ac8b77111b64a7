"""Serving: search an index in one of several modes (``old``, ``adapted``, ``new``, ``blended``)."""

from hotswap.search.blend import QueryBlend
from hotswap.search.modes import MODES, Partitions
from hotswap.search.searcher import Searcher

__all__ = ["MODES", "Partitions", "QueryBlend", "Searcher"]
