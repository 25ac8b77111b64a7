"""Adapters found by name (PEFT style): a new method is a new file plus one ``@register_adapter`` line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from hotswap.adapters.base import Adapter

A = TypeVar("A", bound="type[Adapter]")
_REGISTRY: dict[str, type[Adapter]] = {}
# composites registered by their own module, which ``hotswap.adapters`` does not import (they are not fitted
# from pairs, so they are not offered as kinds); loading a saved one imports it
_ON_DEMAND = {"chain": "hotswap.adapters.chain"}


@overload
def register_adapter(name: str) -> Callable[[A], A]: ...
@overload
def register_adapter(name: str, cls: A) -> A: ...
def register_adapter(name: str, cls: Any = None) -> Any:
    """Register ``cls`` under ``name``; use as ``@register_adapter("name")`` or ``register_adapter("name", C)``."""

    def add(klass: A) -> A:
        known = _REGISTRY.get(name)
        if known is not None and (known.__module__, known.__qualname__) != (klass.__module__, klass.__qualname__):
            raise ValueError(f"adapter name {name!r} is already taken by {known.__module__}.{known.__qualname__}")
        klass.name = name
        _REGISTRY[name] = klass
        return klass

    return add if cls is None else add(cls)


def available_adapters() -> list[str]:
    """The names of the adapters fitted from pairs, sorted (composites such as ``chain`` load by name too, but
    are built from fitted adapters, not offered here)."""
    return sorted(n for n in _REGISTRY if n not in _ON_DEMAND)


def get_adapter_class(name: str) -> type[Adapter]:
    if name not in _REGISTRY and name in _ON_DEMAND:
        import importlib

        importlib.import_module(_ON_DEMAND[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown adapter {name!r}; available adapters: "
                         f"{', '.join(available_adapters())}") from None


def make_adapter(name: str, **params: Any) -> Adapter:
    """An unfitted adapter of the registered kind ``name`` with hyper-parameters ``params``."""
    return get_adapter_class(name)(**params)


def load_adapter(path: str | Path) -> Adapter:
    """Load an adapter saved with ``Adapter.save``; its class is found through the name in ``adapter.json``."""
    from hotswap.adapters.base import Adapter

    return Adapter.load(path)
