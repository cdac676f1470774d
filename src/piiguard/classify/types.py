"""Native types: what the engine itself says a field is, as evidence for the classifier.

Every connector maps its engine's types onto one small vocabulary, :class:`Kind`, and reports a
:class:`NativeType` per field path in :attr:`piiguard.connectors.base.Batch.types` (the engine's own
spelling kept in ``name`` for explain and the catalog). The classifier weighs the kind
(:mod:`piiguard.classify.engine`):

- ``IP`` is an IP address whatever the field is called (PostgreSQL ``inet`` of host addresses,
  MariaDB ``INET6``, ClickHouse ``IPv4``/``IPv6``, OpenSearch ``ip``);
- ``NETWORK`` (``cidr``) is a network, never a person's address;
- ``GEO_POINT`` is geographic coordinates;
- ``DATE`` / ``TIMESTAMP`` / ``TIME`` are never free text; a ``DATE`` (or an ``INTEGER`` year) is a
  birth date only by name or by its distribution;
- ``BOOLEAN``, ``FLOAT``, ``DECIMAL`` hold no identifier by themselves.

A connector renders values canonically per kind before they reach the classifier: an ``inet``
host address without its ``/32`` or ``/128``, dates and timestamps in ISO 8601, an array's items one
value each (the field keeps the column's name; ``array`` is set), JSON walked into field paths.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIME = "time"
    INTERVAL = "interval"
    UUID = "uuid"
    IP = "ip"
    NETWORK = "network"
    MAC = "mac"
    JSON = "json"
    BINARY = "binary"
    GEO_POINT = "geo_point"
    ENUM = "enum"
    UNKNOWN = "unknown"


#: Kinds whose values are never prose: a free-text decision on them is wrong by construction.
NOT_TEXT = frozenset({Kind.INTEGER, Kind.DECIMAL, Kind.FLOAT, Kind.BOOLEAN, Kind.DATE, Kind.TIMESTAMP,
                      Kind.TIME, Kind.INTERVAL, Kind.UUID, Kind.IP, Kind.NETWORK, Kind.MAC, Kind.GEO_POINT})


@dataclass(frozen=True)
class NativeType:
    """One field's type as the engine reports it.

    ``name`` is the engine's spelling (``timestamp with time zone``, ``Nullable(IPv6)``, ``INET6``,
    ``keyword``); ``kind`` the piiguard kind; for an array column ``array`` is true and ``kind`` is its
    items' kind."""

    name: str
    kind: Kind
    array: bool = False

    @property
    def shown(self) -> str:
        return f"{self.name} ({self.kind.value}{'[]' if self.array else ''})"
