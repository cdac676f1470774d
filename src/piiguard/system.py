"""What is not the customers' data: the collections an engine (or piiguard) writes for itself.

:func:`system_kind` is the one place that decides it; :func:`system_collection` is its yes/no. The
connectors' skip lists, the scan's subject estimate, an incident's PII types, its scope, containment
and the regulator report all ask it, so no second list exists anywhere.

Two kinds, by what a scan does with them:

- **catalog** — the engine's own metadata. Connectors skip them when they list collections, as they
  always did (nothing of a customer's is there): PostgreSQL ``pg_catalog``, ``information_schema``
  and every other ``pg_*`` schema (PostgreSQL reserves the prefix); MySQL/MariaDB ``mysql``,
  ``information_schema``, ``performance_schema``, ``sys``; MongoDB ``admin``/``local``/``config``
  and any ``system.*`` collection; ClickHouse ``system`` and ``INFORMATION_SCHEMA``; SQLite's
  ``sqlite_*`` tables (the prefix is reserved); OpenSearch/Elasticsearch ``.``-prefixed indices.
- **trail** — logs the engine writes about its clients: OpenSearch's audit indices
  (``security-auditlog-*``, not dot-prefixed). A scan still reads and records them — an operator
  should know the audit log keeps addresses and user names — but what they hold is about whoever
  sent requests, not the customers.

Both kinds are left out of an incident's PII types, its scope, containment and its report by
default; the report lists the ones a scan found PII in under "system collections, not counted".
``--include-system`` (``incident open``, ``scope``, ``report``) counts them in.

Names are piiguard's collection names (``schema.table``, ``database.collection``, an index name).
"""

from __future__ import annotations

from enum import Enum


class SystemKind(Enum):
    CATALOG = "catalog"  # the engine's metadata: never listed by a connector
    TRAIL = "trail"  # a log the engine writes about its clients: scanned, never counted


# engine -> databases/schemas (the part before the first dot) that are the engine's own
_SCHEMAS = {
    "mysql": frozenset({"mysql", "sys"}),
    "clickhouse": frozenset({"system"}),
    "mongodb": frozenset({"admin", "local", "config"}),
}
# compared case-insensitively: these names are case-insensitive in the engine itself
_ANY_CASE = {
    "postgres": frozenset({"information_schema"}),
    "mysql": frozenset({"information_schema", "performance_schema"}),
    "clickhouse": frozenset({"information_schema"}),
}
AUDIT_INDEX_PREFIX = "security-auditlog-"  # plugins.security.audit.config.index default: 'security-auditlog-'YYYY.MM.dd
SEARCH_ENGINES = frozenset({"opensearch", "elasticsearch"})


def system_kind(engine: str, name: str) -> SystemKind | None:
    """Whether collection ``name`` of a store of ``engine`` is the engine's (or piiguard's) own, and
    which kind; None for a customer's collection."""
    if engine in SEARCH_ENGINES:
        if name.startswith("."):
            return SystemKind.CATALOG
        return SystemKind.TRAIL if name.startswith(AUDIT_INDEX_PREFIX) else None
    if engine == "sqlite":
        return SystemKind.CATALOG if name.rsplit(".", 1)[-1].lower().startswith("sqlite_") else None
    schema, dot, rest = name.partition(".")
    if not dot:
        return None  # no database part: a plain table name is the customer's
    if engine == "postgres" and schema.startswith("pg_"):
        return SystemKind.CATALOG
    if schema in _SCHEMAS.get(engine, ()) or schema.lower() in _ANY_CASE.get(engine, ()):
        return SystemKind.CATALOG
    if engine == "mongodb" and rest.startswith("system."):
        return SystemKind.CATALOG
    return None


def system_collection(engine: str, name: str) -> bool:
    """True when ``name`` is a system collection of ``engine`` (see the module's documentation)."""
    return system_kind(engine, name) is not None
