"""Serving: search an index in one of several modes (``old``, ``adapted``, ``new``, ``blended``, and
during a backfill ``merged``, ``calibrated`` and ``cross``); ``rank_merge`` merges two result lists by score."""

from hotswap.search.blend import QueryBlend
from hotswap.search.modes import MODES, Partitions
from hotswap.search.rank_merge import rank_merge
from hotswap.search.score_calibration import ScoreCalibration
from hotswap.search.searcher import Searcher

__all__ = ["MODES", "Partitions", "QueryBlend", "ScoreCalibration", "Searcher", "rank_merge"]
