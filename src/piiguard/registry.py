"""The one extension mechanism: a name → class (or instance) map per kind of plugin.

Connectors, detectors, and later checks, maskers, responders and alert sinks all register here the
same way. Like Cloud Custodian's ``c7n/registry.py``, but a duplicate name is refused instead of
silently replacing the first, and the base class is checked when the plugin registers, not when it is
first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Generic, TypeVar

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


# The package each optional extra installs, so a missing driver names what to install.
EXTRAS = {
    "psycopg": "postgres", "pymysql": "mysql", "redis": "redis", "clickhouse_driver": "clickhouse",
    "opensearchpy": "opensearch", "pymongo": "mongodb", "bson": "mongodb", "boto3": "s3", "botocore": "s3",
    "openlineage": "lineage",
}

# Import names whose distribution (what pip installs) is called something else.
PACKAGES = {"bson": "pymongo", "botocore": "boto3", "clickhouse_driver": "clickhouse-driver",
            "opensearchpy": "opensearch-py", "openlineage": "openlineage-python"}


class _Driver(ModuleType):
    """A module that is imported on first attribute access, then behaves as the module itself."""

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            root = name.partition(".")[0]
            extra = EXTRAS.get(root)
            root = PACKAGES.get(root, root)
            # The extra is named in words too: a renderer with markup would eat "[mongodb]".
            what = f"install the {extra} extra: pip install 'piiguard[{extra}]'" if extra else \
                "reinstall piiguard (pip install piiguard)"
            raise PluginError(f"the {root} package is not installed; it is needed for this engine",
                              hint=what) from exc
        # Copy once, so later look-ups are plain attribute reads (hot loops use pa.*, pc.*).
        self.__dict__.update({k: v for k, v in vars(module).items() if k not in ("__name__", "__spec__")})
        return getattr(module, attr)


def driver(name: str) -> Any:
    """``psycopg = driver("psycopg")``: the module, imported when first used, not when piiguard starts.

    Engines' drivers (and Arrow, DuckDB, Hyperscan) take most of a second to import; ``piiguard
    --help`` and ``validate`` need none of them. A driver that is not installed is a
    :class:`PluginError` naming the extra that installs it (``pip install 'piiguard[mongodb]'``).
    Declare the real import under ``if TYPE_CHECKING:`` so mypy still sees the module's types.
    """
    return _Driver(name)
