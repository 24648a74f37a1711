"""Networks by name: ``build("resnet50", num_classes=10)`` and ``available()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

__all__ = ["register", "build", "available"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}

B = TypeVar("B", bound=Callable[..., nn.Module])


def register(name: str) -> Callable[[B], B]:
    """Decorator that makes a keyword-only builder available to :func:`build` under ``name``."""

    def decorate(builder: B) -> B:
        if name in _BUILDERS:
            raise ValueError(f"a network named {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return decorate


def build(name: str, **kwargs: object) -> nn.Module:
    """Build the network registered as ``name`` with the builder's keyword arguments.

    Raises ``ValueError`` naming the available networks when ``name`` is unknown.
    """
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; available: {', '.join(available())}") from None
    return builder(**kwargs)


def available() -> list[str]:
    """The registered network names, sorted."""
    return sorted(_BUILDERS)
