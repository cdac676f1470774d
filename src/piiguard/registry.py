"""The one extension mechanism: a name → class (or instance) map per kind of plugin.

Connectors, detectors, and later checks, maskers, responders and alert sinks all register here the
same way. Like Cloud Custodian's ``c7n/registry.py``, but a duplicate name is refused instead of
silently replacing the first, and the base class is checked when the plugin registers, not when it is
first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from piiguard.errors import PluginError

T = TypeVar("T")


class Registry(Generic[T]):
    """Plugins of one kind, keyed by a unique name."""

    def __init__(self, kind: str, base: type) -> None:
        self.kind = kind
        self.base = base
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form: ``@connectors.register("postgres")``."""

        def decorate(item: T) -> T:
            self.add(name, item)
            return item

        return decorate

    def add(self, name: str, item: T) -> None:
        if name in self._items:
            raise PluginError(f"{self.kind} {name!r} is already registered")
        ok = issubclass(item, self.base) if isinstance(item, type) else isinstance(item, self.base)
        if not ok:
            raise PluginError(f"{self.kind} {name!r} is not a {self.base.__name__}")
        self._items[name] = item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise PluginError(f"unknown {self.kind} {name!r}", hint=f"known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
