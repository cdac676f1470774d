"""SQL dialects for the responders: what differs between PostgreSQL and MariaDB/MySQL when a
responder deletes or updates a batch of subjects' rows — connecting (through the engine's own client
module), quoting, matching a batch of values in the column's own type, and naming a row."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from piiguard.errors import UsageError
from piiguard.model import Store
from piiguard.registry import driver

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
else:  # imported on first use: starting the CLI must not load every engine's driver
    psycopg = driver("psycopg")
    sql = driver("psycopg.sql")

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
        """``column`` is one of a batch of values (given as text), compared in the column's own type."""

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
        from piiguard.connectors.postgres import any_of

        schema, dot, bare = name.rpartition(".")
        typed = any_of(conn, sql.Identifier(schema if dot else "public", bare), column).as_string(conn)
        ident = sql.Identifier(column).as_string(conn)
        condition = self.quote(column) + typed[len(ident):]  # "column" = ANY(%s::its_type[]), % doubled
        return lambda values: (condition, [list(values)])

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
        return self.rows(conn, "SELECT c.COLUMN_NAME, c.COLUMN_KEY FROM information_schema.COLUMNS c "
                         "WHERE c.TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND c.TABLE_NAME = %s" + extra,
                         [schema if dot else None, table])

    def match(self, conn: Any, table: str, name: str, column: str) -> Match:
        if column not in {str(r[0]) for r in self._columns(conn, name)}:
            raise UsageError(f"no column {column!r} in {name}")
        quoted = self.quote(column)
        return lambda values: (f"{quoted} IN ({', '.join(['%s'] * len(values))})" if values else "FALSE",
                               list(values))

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
