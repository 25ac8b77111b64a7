"""Exceptions raised by hotswap. Each message names the problem and, where there is one, the fix."""

from __future__ import annotations


class HotswapError(Exception):
    """Base class of every error hotswap raises on purpose."""


class DimensionMismatchError(HotswapError, ValueError):
    """Vectors whose width differs from what the index, adapter or model expects."""


class ModelMismatchError(HotswapError, ValueError):
    """Vectors written or queried by a model other than the one the index or adapter was built for."""


class InvalidVectorsError(HotswapError, ValueError):
    """NaN or infinite values, wrong dtype/rank, or misaligned rows."""


class DuplicateIdError(HotswapError, ValueError):
    """Ids that are already in the store, or repeated within one batch."""


class UnknownIdError(HotswapError, KeyError):
    """Ids that the store does not hold."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class CorruptStoreError(HotswapError, OSError):
    """A store file that is missing, truncated or does not match its manifest checksum."""


class NotFittedError(HotswapError, RuntimeError):
    """An estimator used before ``fit``."""


class AssetMissingError(HotswapError, FileNotFoundError):
    """A bundled model or dataset that is not installed or is incomplete."""


class UpgradeStateError(HotswapError, ValueError):
    """An action (pause, resume, commit, rollback) that the upgrade's current state does not allow."""
