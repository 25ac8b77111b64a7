"""Compatibility training methods found by name: a new method is one file plus one ``@register_method`` line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from hotswap.training.methods.base import Method

M = TypeVar("M", bound="type[Method]")
_REGISTRY: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`~hotswap.training.methods.base.Method` under ``name``."""

    def add(klass: M) -> M:
        known = _REGISTRY.get(name)
        if known is not None and (known.__module__, known.__qualname__) != (klass.__module__, klass.__qualname__):
            raise ValueError(f"method name {name!r} is already taken by {known.__module__}.{known.__qualname__}")
        klass.name = name
        _REGISTRY[name] = klass
        return klass

    return add


def available_methods() -> tuple[str, ...]:
    """Registered method names, in registration order (the order of the package's imports)."""
    return tuple(_REGISTRY)


def get_method(name: str) -> type[Method]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(_REGISTRY)}") from None
