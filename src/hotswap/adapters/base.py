"""Adapter base: input checks, fit/transform wrappers, save/load. Subclasses implement ``_fit`` (checked float64
pairs) and ``_transform`` (checked float32 queries); learned state lives in attributes ending in ``_`` (arrays ->
``adapter.safetensors``; the rest -> ``adapter.json`` beside the versioned config, both model ids and dims)."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save_file

from hotswap.errors import (
    CorruptStoreError,
    DimensionMismatchError,
    InvalidVectorsError,
    ModelMismatchError,
    NotFittedError,
)
from hotswap.io import atomic_write, atomic_write_json
from hotswap.validation import as_matrix

WEIGHTS_FILE, CONFIG_FILE, FORMAT = "adapter.safetensors", "adapter.json", "hotswap.adapter"


@dataclasses.dataclass
class AdapterConfig:
    """Hyper-parameters of one adapter; bump ``config_version`` when a field's meaning changes."""
    config_version: ClassVar[int] = 1


def hotswap_version() -> str:
    try:
        return importlib.metadata.version("hotswap")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "0+unknown"


class Adapter(ABC):
    """Base of every adapter (scikit-learn style estimator: ``fit(X_new, X_old) -> self``, ``transform``)."""

    name: ClassVar[str] = ""  # set by ``register_adapter``
    config_class: ClassVar[type[AdapterConfig]] = AdapterConfig
    equal_dims: ClassVar[bool] = False  # True when the map only makes sense for d_new == d_old

    def __init__(self, **params: Any) -> None:
        try:
            self.config = self.config_class(**params)
        except TypeError as exc:
            valid = ", ".join(f.name for f in dataclasses.fields(self.config_class)) or "(none)"
            raise TypeError(f"{type(self).__name__}: {exc}; valid parameters: {valid}") from None

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def set_params(self, **params: Any) -> Adapter:
        self.config = dataclasses.replace(self.config, **params)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "dim_in_")

    def min_pairs(self, dim_in: int, dim_out: int) -> int:  # fewest aligned pairs ``fit`` accepts
        return 2

    @abstractmethod
    def _fit(self, X_new: np.ndarray, X_old: np.ndarray) -> None: ...
    @abstractmethod
    def _transform(self, X: np.ndarray) -> np.ndarray: ...
    def _prepare(self) -> None:  # noqa: B027 - hook: build caches from the learned state (after fit, load)
        pass

    def fit(self, X_new: Any, X_old: Any, *, new_model_id: str | None = None,
            old_model_id: str | None = None) -> Adapter:
        """Fit on aligned pairs: row i of ``X_new`` and ``X_old`` embed the same item under each model."""
        Xn, Xo = as_matrix(X_new, name="X_new (new-model embeddings)"), as_matrix(X_old, name="X_old")
        (n, d_in), (n_old, d_out), need = Xn.shape, Xo.shape, self.min_pairs(Xn.shape[1], Xo.shape[1])
        if n != n_old:
            raise InvalidVectorsError(f"X_new has {n} rows but X_old has {n_old}; fit needs aligned pairs "
                                      "(row i = the same item embedded by the new and by the old model)")
        if self.equal_dims and d_in != d_out:
            raise DimensionMismatchError(f"the {self.name} adapter needs equal dimensions, got new {d_in} and "
                                         f"old {d_out}; use 'procrustes', 'affine' or 'low_rank' instead")
        if n < need:
            raise InvalidVectorsError(f"the {self.name} adapter needs at least {need} aligned pairs to fit "
                                      f"({d_in} -> {d_out} dims, {self.config}); got only {n}")
        self._fit(Xn.astype(np.float64), Xo.astype(np.float64))
        self.dim_in_, self.dim_out_, self.n_fit_pairs_ = d_in, d_out, n
        self.new_model_id_, self.old_model_id_ = new_model_id, old_model_id
        self._prepare()
        return self

    def transform(self, X_new: Any, *, model_id: str | None = None) -> np.ndarray:
        """Map new-model query embeddings into the old space: float32 ``[n, dim_out_]``, rows aligned."""
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X_new, X_old) first")
        if model_id is not None and self.new_model_id_ is not None and model_id != self.new_model_id_:
            raise ModelMismatchError(f"queries come from model {model_id!r} but this {self.name} adapter maps "
                                     f"new model {self.new_model_id_!r} into old model {self.old_model_id_!r}; "
                                     f"encode queries with {self.new_model_id_!r} or fit an adapter for {model_id!r}")
        return self._transform(as_matrix(X_new, dim=self.dim_in_, name="query vectors", where=(
            f"the adapter's input dimension {self.dim_in_} ({self.name} adapter for new model "
            f"{self.new_model_id_!r}, {self.dim_in_} -> {self.dim_out_}); encode queries with that model "
            "or fit an adapter for yours")))

    def save(self, path: str | Path) -> Path:
        """Write ``adapter.safetensors``, then ``adapter.json`` (atomic; the JSON holds the weights' sha256)."""
        if not self.is_fitted:
            raise NotFittedError(f"cannot save an unfitted {type(self).__name__} adapter; call fit first")
        folder, state = Path(path), {k: v for k, v in sorted(vars(self).items()) if k.endswith("_")}
        arrays = {k: np.ascontiguousarray(v) for k, v in state.items() if isinstance(v, np.ndarray)}
        scalars = {k: v.item() if isinstance(v, np.generic) else v for k, v in state.items() if k not in arrays}
        atomic_write(folder / WEIGHTS_FILE, lambda p: save_file(arrays, str(p)))
        atomic_write_json(folder / CONFIG_FILE, {
            "format": FORMAT, "name": self.name, "class": type(self).__name__,
            "config_version": self.config_class.config_version, "params": self.get_params(),
            "new_model_id": self.new_model_id_, "old_model_id": self.old_model_id_, "dim_in": self.dim_in_,
            "dim_out": self.dim_out_, "n_fit_pairs": self.n_fit_pairs_, "hotswap_version": hotswap_version(),
            "fitted": scalars, "weights_sha256": hashlib.sha256((folder / WEIGHTS_FILE).read_bytes()).hexdigest()})
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Adapter:
        """Load a saved adapter; on ``Adapter`` itself the class is found by its registry name."""
        from hotswap.adapters.registry import get_adapter_class
        folder = Path(path)
        if not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"no {CONFIG_FILE} in {folder}; is this a folder written by Adapter.save?")
        meta = json.loads((folder / CONFIG_FILE).read_text())
        klass = get_adapter_class(meta["name"])
        if not issubclass(klass, cls):
            raise TypeError(f"{folder} holds a {meta['name']!r} adapter ({meta['class']}), not a {cls.__name__}")
        if meta["config_version"] > klass.config_class.config_version:
            raise ValueError(f"{folder} has {klass.__name__} config version {meta['config_version']} (hotswap "
                             f"{meta['hotswap_version']}); this hotswap reads up to "
                             f"{klass.config_class.config_version}: upgrade hotswap")
        blob = (folder / WEIGHTS_FILE).read_bytes()
        if hashlib.sha256(blob).hexdigest() != meta["weights_sha256"]:
            raise CorruptStoreError(f"{folder / WEIGHTS_FILE} does not match the checksum in {CONFIG_FILE} "
                                    "(interrupted save or edited file); save the adapter again")
        obj = klass(**meta["params"])
        for key, value in {**meta["fitted"], **load_arrays(blob)}.items():
            setattr(obj, key, value)
        obj._prepare()
        return obj
