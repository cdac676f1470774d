"""MariaDB and MySQL, through PyMySQL.

Least privileges: ``SELECT`` on the schemas to scan (``SHOW VIEW`` is not needed). The session sets
``SESSION TRANSACTION READ ONLY``. MariaDB and MySQL do not even list tables the user has no
privilege on, so a scan sees exactly what its user may read: give it SELECT on every schema to see
every copy.

MySQL has no ``TABLESAMPLE``. A big table with a single integer primary key is sampled as a few short
index range reads from random starting keys (``WHERE pk >= ? ORDER BY pk LIMIT k``), each an index
seek; the ranges are disjoint and seeded by the table's name, so no row is counted twice and every
run reads the same rows. Other tables give their first rows in storage order.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from piiguard.classify.types import Kind, NativeType
from piiguard.connectors.base import MAX_VALUE_CHARS, Batch, Connector, batch_from_rows, connectors, record_batch
from piiguard.engines import mysql
from piiguard.errors import CollectionError, PermissionDenied
from piiguard.model import CollectionInfo, Estimate
from piiguard.registry import driver
from piiguard.system import SystemKind, system_kind

if TYPE_CHECKING:
    import pyarrow as pa
    import pymysql
    import pymysql.cursors
else:  # imported on first use: starting the CLI must not load every engine's driver
    pa = driver("pyarrow")
    pymysql = driver("pymysql")

EXACT_DISTINCT_MAX_ROWS = 1_000_000
SAMPLE_RANGES = 5
ER_ACCESS_DENIED, ER_BAD_DB, ER_TABLEACCESS_DENIED = 1045, 1049, 1142


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


KINDS = {
    "tinyint": Kind.INTEGER, "smallint": Kind.INTEGER, "mediumint": Kind.INTEGER, "int": Kind.INTEGER,
    "bigint": Kind.INTEGER, "year": Kind.INTEGER, "decimal": Kind.DECIMAL, "float": Kind.FLOAT,
    "double": Kind.FLOAT, "date": Kind.DATE, "datetime": Kind.TIMESTAMP, "timestamp": Kind.TIMESTAMP,
    "time": Kind.TIME, "json": Kind.JSON, "inet4": Kind.IP, "inet6": Kind.IP, "uuid": Kind.UUID,
    "binary": Kind.BINARY, "varbinary": Kind.BINARY, "tinyblob": Kind.BINARY, "blob": Kind.BINARY,
    "mediumblob": Kind.BINARY, "longblob": Kind.BINARY, "bit": Kind.BINARY, "enum": Kind.ENUM, "set": Kind.ENUM,
    "char": Kind.TEXT, "varchar": Kind.TEXT, "tinytext": Kind.TEXT, "text": Kind.TEXT, "mediumtext": Kind.TEXT,
    "longtext": Kind.TEXT,
}
_LONG = frozenset({"text", "mediumtext", "longtext", "json", "blob", "mediumblob", "longblob"})
# Read as text in SQL: the driver's objects (datetime, Decimal, int) would cost a Python call per value,
# INET6 and UUID arrive as bytes, and DATETIME's text has a space where ISO 8601 wants a T.
_AS_TEXT = frozenset({Kind.INTEGER, Kind.DECIMAL, Kind.FLOAT, Kind.DATE, Kind.TIME, Kind.IP, Kind.UUID})


def native(data_type: str, column_type: str) -> NativeType:
    """A column's native type from ``information_schema.COLUMNS``: ``TINYINT(1)`` is how both engines
    spell BOOLEAN; MariaDB's JSON is a LONGTEXT with a check (its values are still walked as JSON)."""
    typ = data_type.lower()
    if typ == "tinyint" and column_type.lower().startswith("tinyint(1)"):
        return NativeType(column_type, Kind.BOOLEAN)
    return NativeType(column_type, KINDS.get(typ, Kind.UNKNOWN))


def render(name: str, data_type: str, kind: Kind) -> str:
    """The SQL that reads one column for a scan: canonical text, cut to MAX_VALUE_CHARS."""
    col = _q(name)
    if kind is Kind.TIMESTAMP:
        return f"REPLACE(CAST({col} AS CHAR), ' ', 'T')"
    if kind in _AS_TEXT:
        return f"CAST({col} AS CHAR)"
    if data_type.lower() in _LONG:
        return f"LEFT({col}, {MAX_VALUE_CHARS})"
    return col


def _table(collection: CollectionInfo) -> str:
    schema, _, table = collection.name.partition(".")
    return f"{_q(schema)}.{_q(table)}"


def sample_ranges(lo: int, hi: int, seed: str) -> list[tuple[int, int]]:
    """:data:`SAMPLE_RANGES` key ranges ``[start, end)`` over ``lo..hi``: each start drawn in its own
    slice of the keys and each range ending where the next one starts, so they are disjoint (no row
    read twice), and the same on every run of the collection (seeded by its name, not drawn anew)."""
    draw = random.Random(seed)  # a str seed is hashed with SHA-512: the same on every run and machine
    width = (hi - lo + 1) / SAMPLE_RANGES
    bounds = sorted({lo + round(i * width) for i in range(SAMPLE_RANGES)} | {hi + 1})
    starts = [draw.randrange(a, b) for a, b in itertools.pairwise(bounds)]
    return list(zip(starts, [*starts[1:], hi + 1], strict=True))


@connectors.register("mysql")
class MySQL(Connector):
    """MariaDB 10.3+ and MySQL 5.7+ over TCP, read-only."""

    privileges = "SELECT on the schemas to scan"
    conn: pymysql.connections.Connection[Any]

    def open(self) -> None:
        self.conn = mysql.connect(self.store, self.timeout, query_timeout=self.timeout * 30,
                                  database=self.store.database, charset="utf8mb4", autocommit=True)
        with self.conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")

    def close(self) -> None:
        if getattr(self, "conn", None) is not None:
            self.conn.close()

    def _rows(self, collection: CollectionInfo | None, query: str, args: Any = None) -> list[Any]:
        try:
            with self.conn.cursor() as cur:
                cur.execute(query, args)
                return list(cur.fetchall())
        except pymysql.err.Error as exc:
            if exc.args and exc.args[0] == ER_TABLEACCESS_DENIED:
                raise PermissionDenied(self.store.name, "SELECT is not granted",
                                       collection=collection.name if collection else None,
                                       hint="GRANT SELECT ON the schema TO the scanning user") from exc
            raise CollectionError(self.store.name, f"query failed (error {exc.args[0] if exc.args else '?'})",
                                  collection=collection.name if collection else None) from exc

    def collections(self) -> list[CollectionInfo]:
        where, args = ("AND TABLE_SCHEMA = %s", (self.store.database,)) if self.store.database else ("", ())
        tables = [t for t in self._rows(None, "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema."
                                              f"TABLES WHERE TABLE_TYPE = 'BASE TABLE' {where} ORDER BY 1, 2", args)
                  if system_kind("mysql", f"{t[0]}.{t[1]}") is not SystemKind.CATALOG]
        keys = self._rows(None, "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM "
                                "information_schema.KEY_COLUMN_USAGE WHERE CONSTRAINT_NAME = 'PRIMARY' "
                                "ORDER BY ORDINAL_POSITION")
        pks: dict[tuple[str, str], list[str]] = {}
        for schema, table, col in keys:
            pks.setdefault((schema, table), []).append(col)
        return [CollectionInfo(f"{schema}.{table}", None if est is None else int(est),
                               Estimate.APPROXIMATE, tuple(pks.get((schema, table), ())))
                for schema, table, est in tables]

    def _select(self, collection: CollectionInfo) -> tuple[list[str], frozenset[str], dict[str, NativeType], str]:
        schema, _, table = collection.name.partition(".")
        cols = self._rows(collection, "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS "
                                      "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                          (schema, table))
        names = [c[0] for c in cols]
        json_fields = frozenset(n for n, typ, _ in cols if typ == "json")
        types = {n: native(typ, shown) for n, typ, shown in cols}
        exprs = [render(n, typ, types[n].kind) for n, typ, _ in cols]
        return names, json_fields, types, f"SELECT {', '.join(exprs)} FROM {_table(collection)}"

    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        names, json_fields, types, select = self._select(collection)
        est = collection.rows_estimate or 0
        pk = collection.primary_key
        rows: list[Any] = []
        if est > 10 * n and len(pk) == 1:
            key = _q(pk[0])
            lo, hi = self._rows(collection, f"SELECT MIN({key}), MAX({key}) FROM {_table(collection)}")[0]
            if isinstance(lo, int) and isinstance(hi, int):
                for start, end in sample_ranges(lo, hi, collection.name):
                    rows += self._rows(collection, f"{select} WHERE {key} >= %s AND {key} < %s ORDER BY {key} "
                                       f"LIMIT {max(1, n // SAMPLE_RANGES)}", (start, end))
        if len(rows) < n // 2:  # instead of the sample, never added to it: no row counted twice
            rows = self._rows(collection, f"{select} LIMIT {int(n)}")
        return batch_from_rows(names, rows, json_fields, types)

    def batches(self, collection: CollectionInfo, batch_rows: int) -> Iterator[Batch]:
        names, json_fields, types, select = self._select(collection)
        # An unbuffered cursor streams rows instead of loading the result set into memory.
        cur = self.conn.cursor(pymysql.cursors.SSCursor)
        try:
            cur.execute(select)
            while rows := cur.fetchmany(batch_rows):
                yield batch_from_rows(names, rows, json_fields, types)
        except pymysql.err.Error as exc:  # the driver's text can quote row data: keep only its code
            code = exc.args[0] if exc.args else "?"
            if code == ER_TABLEACCESS_DENIED:
                raise PermissionDenied(self.store.name, "SELECT is not granted", collection=collection.name,
                                       hint="GRANT SELECT ON the schema TO the scanning user") from exc
            raise CollectionError(self.store.name, f"read failed (error {code})",
                                  collection=collection.name) from exc
        finally:
            # after a lost connection PyMySQL's close reads from a socket it has dropped (AttributeError):
            # that must not hide the error above, which says what happened
            try:
                cur.close()
            except (pymysql.err.Error, AttributeError):
                # and their finalizers would try again at garbage collection, raising where nobody catches
                result = getattr(cur, "_result", None)
                if result is not None:
                    result.unbuffered_active = False
                cur.connection = None  # type: ignore[assignment]

    def columns(self, collection: CollectionInfo) -> list[str]:
        return self._select(collection)[0]

    def read(self, collection: CollectionInfo, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        select = f"SELECT {', '.join(_q(c) for c in columns)} FROM {_table(collection)}"
        with self.conn.cursor(pymysql.cursors.SSCursor) as cur:
            try:
                cur.execute(select)
                while rows := cur.fetchmany(batch_rows):
                    yield record_batch(columns, rows)
            except pymysql.err.Error as exc:  # the driver's text can quote row data: keep only its code
                raise CollectionError(self.store.name, f"read failed (error {exc.args[0] if exc.args else '?'})",
                                      collection=collection.name) from exc

    def distinct(self, collection: CollectionInfo, field: str) -> tuple[int, Estimate] | None:
        if "." in field or "[" in field or (collection.rows_estimate or 0) > EXACT_DISTINCT_MAX_ROWS:
            return None
        row = self._rows(collection, f"SELECT COUNT(DISTINCT {_q(field)}) FROM {_table(collection)}")
        return int(row[0][0]), Estimate.EXACT
