"""SQL dialects for the responders: what differs between PostgreSQL and MariaDB/MySQL when a
responder deletes or updates a batch of subjects' rows — connecting (through the engine's own client
module), quoting, matching a batch of values exactly, and naming a row.

Matching is exact (:mod:`piiguard.response.exact`), in a form that keeps the column's index usable:

- integer columns: only canonical integer text within the column's range is sent, as integers;
- MariaDB/MySQL text (and other non-binary) columns: ``col IN (…)`` in the column's collation (the
  index), ``AND CAST(CONVERT(col USING utf8mb4) AS BINARY) IN (…)``: byte for byte, so a ``_ci`` or PAD
  SPACE collation cannot match ``'Ab3X'`` to ``'aB3x'`` or ``'q7 '`` to ``'q7'``; binary columns compare
  bytes already;
- PostgreSQL columns of other types: ``col = ANY(%s::its_type[])`` (the index) ``AND col::text COLLATE
  "C" = ANY(%s::text[])``: the value's own text form, byte for byte (a nondeterministic collation, a
  ``char(n)``'s padding or a type's lenient input cannot widen the match).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from piiguard.errors import UsageError
from piiguard.model import Store
from piiguard.registry import driver
from piiguard.response import exact

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
else:  # imported on first use: starting the CLI must not load every engine's driver
    psycopg = driver("psycopg")
    sql = driver("psycopg.sql")

_NAME = re.compile(r"[A-Za-z0-9_]{1,64}", re.ASCII)  # a charset or collation name read from information_schema
Match = Callable[[Sequence[Any]], tuple[str, list[Any]]]  # a batch of values → (condition, parameters)


class Dialect(ABC):
    """What differs between SQL engines for a responder. Statements are text with ``%s`` parameters
    (both drivers' style); identifiers are quoted here (a ``%`` in a name doubled, as the drivers read
    every statement as a template), values are always parameters."""

    @abstractmethod
    def connect(self, store: Store, timeout: float) -> Any:
        """A DB-API connection in autocommit (each batch commits), closed by ``with``."""

    @abstractmethod
    def errors(self) -> tuple[type[BaseException], ...]: ...

    @abstractmethod
    def quote(self, name: str) -> str: ...

    @abstractmethod
    def table(self, name: str) -> str:
        """``schema.table`` (or ``table``, in the default schema) quoted."""

    @abstractmethod
    def match(self, conn: Any, table: str, name: str, column: str) -> Match:
        """``column`` is exactly one of a batch of values (given as text): see the module's docstring."""

    @abstractmethod
    def row_key(self, conn: Any, table: str, name: str, fallback: str) -> tuple[str, Match]:
        """An expression naming a row, and the condition matching a batch of those names."""

    @abstractmethod
    def execute(self, conn: Any, query: str, params: Sequence[Any]) -> int:
        """Run a statement; how many rows it changed."""

    @abstractmethod
    def rows(self, conn: Any, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...


class Postgres(Dialect):
    def connect(self, store: Store, timeout: float) -> Any:
        from piiguard.engines.postgres import connect

        return connect(store, timeout, application="piiguard-respond")

    def errors(self) -> tuple[type[BaseException], ...]:
        return (psycopg.Error,)

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""').replace("%", "%%") + '"'

    def table(self, name: str) -> str:
        schema, dot, table = name.rpartition(".")
        return f"{self.quote(schema if dot else 'public')}.{self.quote(table)}"

    def match(self, conn: Any, table: str, name: str, column: str) -> Match:
        schema, dot, bare = name.rpartition(".")
        relation = sql.Identifier(schema if dot else "public", bare).as_string(conn)
        row = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass "
                           "AND attname = %s AND NOT attisdropped", [relation, column]).fetchone()
        if row is None:
            raise UsageError(f"no column {column!r} in {name}")
        typ, quoted = str(row[0]), self.quote(column)
        if typ in exact.INTEGER_BITS:  # '0042'::int would be 42: only canonical integers are sent
            bits = exact.INTEGER_BITS[typ]
            return lambda values: (f"{quoted} = ANY(%s::{typ}[])", [exact.integers(values, bits)])
        if typ == "uuid":  # a subject that is no UUID would fail the whole batch's cast
            return lambda values: (f"{quoted} = ANY(%s::uuid[])", [exact.uuids(values)])
        # the type's cast finds the candidates through the index (a varchar(n) cast truncates, a char(n)
        # pads, a nondeterministic collation folds); the value's text, in bytes, decides
        condition = f'{quoted} = ANY(%s::{typ.replace("%", "%%")}[]) AND ({quoted}::text COLLATE "C") = ANY(%s::text[])'
        return lambda values: (condition, [[str(v) for v in values]] * 2)

    def row_key(self, conn: Any, table: str, name: str, fallback: str) -> tuple[str, Match]:
        return "ctid::text", lambda ids: ("ctid = ANY(%s::tid[])", [list(ids)])

    def execute(self, conn: Any, query: str, params: Sequence[Any]) -> int:
        return max(int(conn.execute(query, list(params)).rowcount), 0)

    def rows(self, conn: Any, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return list(conn.execute(query, list(params)))


class MySQL(Dialect):
    """MariaDB and MySQL: ``IN (…)`` (no arrays); a row is named by its single-column primary key, else
    by the token itself."""

    def connect(self, store: Store, timeout: float) -> Any:
        from piiguard.engines import mysql

        return mysql.connect(store, timeout, query_timeout=timeout * 10, database=store.database,
                             charset="utf8mb4", autocommit=True)

    def errors(self) -> tuple[type[BaseException], ...]:
        from piiguard.engines.mysql import driver_errors

        return driver_errors()

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``").replace("%", "%%") + "`"

    def table(self, name: str) -> str:
        schema, dot, table = name.rpartition(".")
        return f"{self.quote(schema)}.{self.quote(table)}" if dot else self.quote(table)

    def _columns(self, conn: Any, name: str, extra: str = "") -> list[tuple[Any, ...]]:
        schema, dot, table = name.rpartition(".")
        return self.rows(conn, "SELECT c.COLUMN_NAME, c.COLUMN_KEY, c.DATA_TYPE, c.COLUMN_TYPE, "
                         "c.CHARACTER_SET_NAME, c.COLLATION_NAME "
                         "FROM information_schema.COLUMNS c "
                         "WHERE c.TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND c.TABLE_NAME = %s" + extra,
                         [schema if dot else None, table])

    _BINARY = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})

    def match(self, conn: Any, table: str, name: str, column: str) -> Match:
        found = {str(r[0]): (str(r[2]).lower(), str(r[3]).lower(), r[4], r[5]) for r in self._columns(conn, name)}
        if column not in found:
            raise UsageError(f"no column {column!r} in {name}")
        data_type, column_type, charset, collation = found[column]
        quoted = self.quote(column)

        def listed(n: int) -> str:
            return ", ".join(["%s"] * n)

        if data_type in exact.INTEGER_BITS:  # 'alice@x' would be 0, '7abc' 7: only canonical integers are sent
            bits, unsigned = exact.INTEGER_BITS[data_type], "unsigned" in column_type

            def integers(values: Sequence[Any]) -> tuple[str, list[Any]]:
                numbers = exact.integers(values, bits, unsigned)
                return (f"{quoted} IN ({listed(len(numbers))})" if numbers else "FALSE"), list(numbers)
            return integers
        if data_type in self._BINARY:  # bytes already
            return lambda values: (f"{quoted} IN ({listed(len(values))})" if values else "FALSE", list(values))
        # the column's collation finds the candidates through the index; the bytes decide. A subject is
        # converted to the column's charset and collation for the first (a character it lacks turns into
        # '?', a wider candidate set, never an "illegal mix of collations"); compared as utf8mb4 bytes after
        exactly = f"CAST(CONVERT({quoted} USING utf8mb4) AS BINARY)"
        known = all(isinstance(n, str) and _NAME.fullmatch(n) for n in (charset, collation))
        candidate = f"CONVERT(%s USING {charset}) COLLATE {collation}" if known else "%s"

        def texts(values: Sequence[Any]) -> tuple[str, list[Any]]:
            if not values:
                return "FALSE", []
            strings = [str(v) for v in values]
            candidates = ", ".join([candidate] * len(strings))
            casts = ", ".join(["CAST(%s AS BINARY)"] * len(strings))
            return f"{quoted} IN ({candidates}) AND {exactly} IN ({casts})", strings * 2
        return texts

    def row_key(self, conn: Any, table: str, name: str, fallback: str) -> tuple[str, Match]:
        keys = [str(r[0]) for r in self._columns(conn, name) if r[1] == "PRI"]
        column = keys[0] if len(keys) == 1 else fallback
        return self.quote(column), self.match(conn, table, name, column)

    def execute(self, conn: Any, query: str, params: Sequence[Any]) -> int:
        with conn.cursor() as cur:
            cur.execute(query, list(params))
            return max(int(cur.rowcount), 0)

    def rows(self, conn: Any, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(query, list(params))
            return list(cur.fetchall())


DIALECTS: dict[str, Dialect] = {"postgres": Postgres(), "mysql": MySQL()}
