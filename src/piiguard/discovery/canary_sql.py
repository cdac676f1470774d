"""The SQL canaries need: a table's columns, and inserting, counting and deleting piiguard's own rows.

PostgreSQL through :mod:`piiguard.engines.postgres`, MariaDB/MySQL through :mod:`piiguard.engines.mysql`
(the same connections as every other piiguard step: timeouts, TLS, credentials by reference). Each
write runs in one transaction, so a failure leaves the table as it was. A row is piiguard's only when
every canary field holds, byte for byte, the value derived for it: that is the ``WHERE`` of
:meth:`Table.count` and :meth:`Table.delete` (compared as bytes, never under the column's collation,
which may ignore case and trailing spaces), so a real customer whose e-mail happens to look alike is
never touched. :meth:`Table.delete` selects the rows first, deletes them one by one by row identity,
and commits only when exactly one row per canary was found: an exact copy of a canary row that is not
ours, or a canary row changed since it was planted, rolls the whole removal back (:class:`NotExact`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from piiguard.errors import CollectionError, PermissionDenied, UsageError
from piiguard.model import Store

SUPPORTED = ("postgres", "mysql")


class NotExact(Exception):
    """A removal found other than exactly one row per canary; it was rolled back, nothing was deleted."""

    def __init__(self, found: int, duplicated: int) -> None:
        super().__init__(f"{found} row(s) found, {duplicated} canary row(s) more than once")
        self.found, self.duplicated = found, duplicated


def _same(value: Any, expected: str) -> bool:
    """Whether a value read back is the canary value, byte for byte."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value) == expected.encode()
    return isinstance(value, str) and value == expected


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # information_schema's data_type, lower case
    nullable: bool
    filled: bool  # a default, an identity or a generated value: the engine fills it
    max_length: int | None
    unique: bool = False  # a primary key or a one-column unique index: a planted value must be free

    @property
    def required(self) -> bool:
        return not self.nullable and not self.filled


Redraw = Callable[[int, str, int], Any]


class Table(ABC):
    """One table of one store, opened for a canary step."""

    def __init__(self, store: Store, collection: str, timeout: float) -> None:
        schema, dot, table = collection.partition(".")
        if not dot or not schema or not table:
            raise UsageError(f"{collection!r} is not a table of {store.name}: write it as schema.table",
                             hint="as piiguard scan names it, e.g. public.customers (PostgreSQL) or app.customers")
        self.store, self.collection, self.schema, self.table, self.timeout = store, collection, schema, table, timeout

    @abstractmethod
    def columns(self) -> list[Column]: ...

    @abstractmethod
    def count(self, rows: Sequence[Mapping[str, Any]], match: Sequence[str]) -> int:
        """How many rows of the table hold one of ``rows``' values in every ``match`` field."""

    @abstractmethod
    def span(self, column: str) -> tuple[int, int] | None:
        """The column's smallest and largest whole value (read only), or None when it holds none."""

    @abstractmethod
    def sample(self, column: str, limit: int = 200) -> list[Any]:
        """Up to ``limit`` non-null values of the column (read only), for their shape alone."""

    @abstractmethod
    def insert(self, rows: Sequence[Mapping[str, Any]], unique: Sequence[str] = (),
               redraw: Redraw | None = None) -> int:
        """Insert ``rows`` in one transaction. In it, first, each ``unique`` field's value that an
        existing row (or an earlier canary) holds is drawn again with ``redraw(index, field, attempt)``."""

    @staticmethod
    def _free(rows: Sequence[Mapping[str, Any]], unique: Sequence[str], redraw: Redraw | None,
              held: Callable[[str, Any], bool]) -> list[dict[str, Any]]:
        out = [dict(r) for r in rows]
        if not unique or redraw is None:
            return out
        for field in unique:
            used: set[Any] = set()
            for i, row in enumerate(out):
                attempt = 0
                while row[field] in used or held(field, row[field]):
                    attempt += 1
                    row[field] = redraw(i, field, attempt)
                used.add(row[field])
        return out

    @abstractmethod
    def delete(self, rows: Sequence[Mapping[str, Any]], match: Sequence[str]) -> int:
        """Delete, in one transaction, the one row holding each of ``rows``' values in every ``match``
        field; returns how many (``len(rows)``), or rolls back and raises :class:`NotExact`."""

    def close(self) -> None:  # noqa: B027 — optional
        pass

    def missing(self) -> UsageError:
        return UsageError(f"{self.store.name} has no table {self.collection}",
                          hint=f"list its tables with: piiguard scan {self.store.name}")

    def failed(self, what: str, exc: BaseException) -> CollectionError:
        # the driver's text can quote row values: keep only the error's class
        return CollectionError(self.store.name, f"{what} failed ({type(exc).__name__}); nothing was changed",
                               collection=self.collection,
                               hint="check the table's constraints and that piiguard's user may write to it")


def open_table(store: Store, collection: str, timeout: float) -> Table:
    if store.engine == "postgres":
        return _Postgres(store, collection, timeout)
    if store.engine == "mysql":
        return _MySQL(store, collection, timeout)
    raise UsageError(f"{store.name} is a {store.engine} store: canaries are planted in PostgreSQL and "
                     "MariaDB/MySQL tables only", hint="plant them in the production table the copies come from")


class _Postgres(Table):
    def __init__(self, store: Store, collection: str, timeout: float) -> None:
        super().__init__(store, collection, timeout)
        from psycopg import sql

        from piiguard.engines import postgres

        self.sql = sql
        self.conn = postgres.connect(store, timeout, autocommit=False, application="piiguard canary")
        self.ident = sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.table))

    def columns(self) -> list[Column]:
        rows = self.conn.execute(
            "SELECT column_name, data_type, is_nullable = 'YES', column_default IS NOT NULL OR is_identity = 'YES' "
            "OR is_generated = 'ALWAYS', character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (self.schema, self.table)).fetchall()
        # one-column unique indexes (a primary key is one), from the catalog: information_schema's
        # key_column_usage shows only constraints, not a CREATE UNIQUE INDEX
        unique = {str(n) for (n,) in self.conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass(format('%%I.%%I', %s::text, %s::text)) "
            "AND i.indisunique AND i.indnatts = 1", (self.schema, self.table)).fetchall()}
        self.conn.rollback()
        if not rows:
            raise self.missing()
        return [Column(str(n), str(t).lower(), bool(nu), bool(f), None if m is None else int(m), str(n) in unique)
                for n, t, nu, f, m in rows]

    def span(self, column: str) -> tuple[int, int] | None:
        sql = self.sql
        query = sql.SQL("SELECT ceil(min({c}))::numeric, floor(max({c}))::numeric FROM {t}").format(
            c=sql.Identifier(column), t=self.ident)
        try:
            got = self.conn.execute(query).fetchone()
        finally:
            self.conn.rollback()
        return _span(got)

    def sample(self, column: str, limit: int = 200) -> list[Any]:
        sql = self.sql
        query = sql.SQL("SELECT {c}::text FROM {t} WHERE {c} IS NOT NULL LIMIT %s").format(
            c=sql.Identifier(column), t=self.ident)
        try:
            return [r[0] for r in self.conn.execute(query, [limit]).fetchall()]
        finally:
            self.conn.rollback()

    def _where(self, match: Sequence[str]) -> Any:
        sql = self.sql
        # COLLATE "C": bytewise, whatever the column's collation (a nondeterministic one ignores case)
        return sql.SQL(" AND ").join(sql.SQL('{}::text COLLATE "C" = %s').format(sql.Identifier(f)) for f in match)

    def count(self, rows: Sequence[Mapping[str, Any]], match: Sequence[str]) -> int:
        query = self.sql.SQL("SELECT count(*) FROM {} WHERE {}").format(self.ident, self._where(match))
        try:
            total = 0
            for r in rows:
                got = self.conn.execute(query, [str(r[f]) for f in match]).fetchone()
                total += int(got[0]) if got else 0
        finally:
            self.conn.rollback()
        return total

    def _write(self, what: str, query: Any, params: Callable[[], list[list[Any]]]) -> int:
        import psycopg

        try:
            with self.conn.cursor() as cur:
                changed = 0
                for p in params():
                    cur.execute(query, p)
                    changed += max(cur.rowcount, 0)
            self.conn.commit()
            return changed
        except psycopg.errors.InsufficientPrivilege as exc:
            self.conn.rollback()
            raise PermissionDenied(self.store.name, f"{what} is not granted; nothing was changed",
                                   collection=self.collection,
                                   hint=f"GRANT {what} ON {self.collection} TO {self.store.user}") from exc
        except psycopg.Error as exc:
            self.conn.rollback()
            raise self.failed(what, exc) from exc

    def insert(self, rows: Sequence[Mapping[str, Any]], unique: Sequence[str] = (),
               redraw: Redraw | None = None) -> int:
        sql = self.sql
        names = list(rows[0])
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            self.ident, sql.SQL(", ").join(sql.Identifier(n) for n in names),
            sql.SQL(", ").join(sql.Placeholder() for _ in names))

        def held(field: str, value: Any) -> bool:  # in the insert's transaction (not yet committed)
            return self.conn.execute(self.sql.SQL("SELECT 1 FROM {} WHERE {} = %s LIMIT 1").format(
                self.ident, self.sql.Identifier(field)), [value]).fetchone() is not None

        return self._write("INSERT", query, lambda: [[r[n] for n in names]
                                                      for r in self._free(rows, unique, redraw, held)])

    def delete(self, rows: Sequence[Mapping[str, Any]], match: Sequence[str]) -> int:
        import psycopg

        sql = self.sql
        where = self._where(match)
        # tableoid + ctid: the row's identity (a partitioned table's ctid repeats across partitions),
        # stable while FOR UPDATE holds the row
        select = sql.SQL("SELECT tableoid::text, ctid::text, {} FROM {} WHERE {} FOR UPDATE").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(f)) for f in match), self.ident, where)
        delete = sql.SQL("DELETE FROM {} WHERE tableoid = %s::oid AND ctid = %s::tid AND {}").format(self.ident, where)
        try:
            with self.conn.cursor() as cur:
                found = duplicated = deleted = 0
                for r in rows:
                    want = [str(r[f]) for f in match]
                    cur.execute(select, want)
                    hits = [h for h in cur.fetchall() if all(_same(v, w) for v, w in zip(h[2:], want, strict=True))]
                    found += len(hits)
                    duplicated += len(hits) > 1
                    if len(hits) == 1:
                        cur.execute(delete, [hits[0][0], hits[0][1], *want])
                        deleted += max(cur.rowcount, 0)
                if found != len(rows) or duplicated or deleted != len(rows):
                    raise NotExact(found, duplicated)
            self.conn.commit()
            return deleted
        except NotExact:
            self.conn.rollback()
            raise
        except psycopg.errors.InsufficientPrivilege as exc:
            self.conn.rollback()
            raise PermissionDenied(self.store.name, "DELETE is not granted; nothing was changed",
                                   collection=self.collection,
                                   hint=f"GRANT SELECT, DELETE ON {self.collection} TO {self.store.user}") from exc
        except psycopg.Error as exc:
            self.conn.rollback()
            raise self.failed("DELETE", exc) from exc

    def close(self) -> None:
        self.conn.close()


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class _MySQL(Table):
    def __init__(self, store: Store, collection: str, timeout: float) -> None:
        super().__init__(store, collection, timeout)
        from piiguard.engines import mysql

        self.conn = mysql.connect(store, timeout, query_timeout=timeout * 30, charset="utf8mb4", autocommit=False)
        self.ident = f"{_q(self.schema)}.{_q(self.table)}"

    def _rows(self, query: str, args: Sequence[Any]) -> list[Any]:
        with self.conn.cursor() as cur:
            cur.execute(query, args)
            return list(cur.fetchall())

    def columns(self) -> list[Column]:
        rows = self._rows(
            "SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE = 'YES', (COLUMN_DEFAULT IS NOT NULL AND IS_NULLABLE = 'NO') "
            "OR EXTRA LIKE '%%auto_increment%%' OR EXTRA LIKE '%%GENERATED%%', CHARACTER_MAXIMUM_LENGTH "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (self.schema, self.table))
        # one-column unique indexes (a primary key is one)
        unique = {str(n) for (n,) in self._rows(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS s WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "AND NON_UNIQUE = 0 GROUP BY INDEX_NAME, COLUMN_NAME HAVING (SELECT count(*) FROM "
            "information_schema.STATISTICS t WHERE t.TABLE_SCHEMA = %s AND t.TABLE_NAME = %s "
            "AND t.INDEX_NAME = s.INDEX_NAME) = 1", (self.schema, self.table, self.schema, self.table))}
        self.conn.rollback()
        if not rows:
            raise self.missing()
        return [Column(str(n), str(t).lower(), bool(nu), bool(f), None if m is None else int(m), str(n) in unique)
                for n, t, nu, f, m in rows]

    def span(self, column: str) -> tuple[int, int] | None:
        try:
            got = self._rows(f"SELECT CEIL(MIN({_q(column)})), FLOOR(MAX({_q(column)})) FROM {self.ident}", ())
        finally:
            self.conn.rollback()
        return _span(got[0] if got else None)

    def sample(self, column: str, limit: int = 200) -> list[Any]:
        try:
            return [r[0] for r in self._rows(f"SELECT {_q(column)} FROM {self.ident} WHERE {_q(column)} IS NOT NULL "
                                             "LIMIT %s", [limit])]
        finally:
            self.conn.rollback()

    def _where(self, match: Sequence[str]) -> str:
        # BINARY: bytewise, as the column's charset stores it. Under the table's collation `=` ignores
        # case and (PAD SPACE) trailing spaces, and utf8mb4_bin is PAD SPACE too on MariaDB
        # (https://mariadb.com/kb/en/character-sets-and-collations/, "NO PAD collations")
        return " AND ".join(f"BINARY {_q(f)} = BINARY %s" for f in match)

    def count(self, rows: Sequence[Mapping[str, Any]], match: Sequence[str]) -> int:
        query = f"SELECT count(*) FROM {self.ident} WHERE {self._where(match)}"
        try:
            return sum(int(self._rows(query, [str(r[f]) for f in match])[0][0]) for r in rows)
        finally:
            self.conn.rollback()

    def _write(self, what: str, query: str, params: Callable[[], list[list[Any]]]) -> int:
        from piiguard.engines.mysql import driver_errors

        try:
            with self.conn.cursor() as cur:
                changed = sum(max(int(cur.execute(query, p)), 0) for p in params())
            self.conn.commit()
            return changed
        except driver_errors() as exc:
            self.conn.rollback()
            code = getattr(exc, "args", (None,))[0] if getattr(exc, "args", None) else None
            if code in (1142, 1044):  # ER_TABLEACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR
                raise PermissionDenied(self.store.name, f"{what} is not granted; nothing was changed",
                                       collection=self.collection,
                                       hint=f"GRANT {what} ON {self.collection} TO the configured user") from exc
            raise self.failed(what, exc) from exc

    def insert(self, rows: Sequence[Mapping[str, Any]], unique: Sequence[str] = (),
               redraw: Redraw | None = None) -> int:
        names = list(rows[0])
        query = (f"INSERT INTO {self.ident} ({', '.join(_q(n) for n in names)}) "
                 f"VALUES ({', '.join(['%s'] * len(names))})")

        def held(field: str, value: Any) -> bool:  # in the insert's transaction (not yet committed)
            return bool(self._rows(f"SELECT 1 FROM {self.ident} WHERE {_q(field)} = %s LIMIT 1", [value]))

        return self._write("INSERT", query, lambda: [[r[n] for n in names]
                                                      for r in self._free(rows, unique, redraw, held)])

    def _primary_key(self) -> list[str]:
        return [str(n) for (n,) in self._rows(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX", (self.schema, self.table))]

    def delete(self, rows: Sequence[Mapping[str, Any]], match: Sequence[str]) -> int:
        from piiguard.engines.mysql import driver_errors

        where = self._where(match)
        try:
            key = self._primary_key()
            select = (f"SELECT {', '.join(_q(c) for c in [*key, *match])} FROM {self.ident} WHERE {where} "
                      "FOR UPDATE")
            # by primary key; without one, the one row the locked SELECT found (LIMIT 1 cannot reach another)
            delete = (f"DELETE FROM {self.ident} WHERE {' AND '.join(f'{_q(c)} = %s' for c in key)} AND {where}"
                      if key else f"DELETE FROM {self.ident} WHERE {where} LIMIT 1")
            with self.conn.cursor() as cur:
                found = duplicated = deleted = 0
                for r in rows:
                    want = [str(r[f]) for f in match]
                    cur.execute(select, want)
                    hits = [h for h in cur.fetchall()
                            if all(_same(v, w) for v, w in zip(h[len(key):], want, strict=True))]
                    found += len(hits)
                    duplicated += len(hits) > 1
                    if len(hits) == 1:
                        deleted += max(int(cur.execute(delete, [*hits[0][:len(key)], *want])), 0)
                if found != len(rows) or duplicated or deleted != len(rows):
                    raise NotExact(found, duplicated)
            self.conn.commit()
            return deleted
        except NotExact:
            self.conn.rollback()
            raise
        except driver_errors() as exc:
            self.conn.rollback()
            code = getattr(exc, "args", (None,))[0] if getattr(exc, "args", None) else None
            if code in (1142, 1044):  # ER_TABLEACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR
                raise PermissionDenied(self.store.name, "DELETE is not granted; nothing was changed",
                                       collection=self.collection,
                                       hint=f"GRANT SELECT, DELETE ON {self.collection} TO the configured user") \
                    from exc
            raise self.failed("DELETE", exc) from exc

    def close(self) -> None:
        self.conn.close()


def _span(got: Sequence[Any] | None) -> tuple[int, int] | None:
    if not got or got[0] is None or got[1] is None or got[0] > got[1]:
        return None  # an empty column, or no whole number between its min and max
    return int(got[0]), int(got[1])
