"""MariaDB and MySQL, through PyMySQL.

Least privileges: ``SELECT`` on the schemas to scan (``SHOW VIEW`` is not needed). The session sets
``SESSION TRANSACTION READ ONLY``. MariaDB and MySQL do not even list tables the user has no
privilege on, so a scan sees exactly what its user may read: give it SELECT on every schema to see
every copy.

MySQL has no ``TABLESAMPLE``. A big table with a single integer primary key is sampled as a few short
index range reads from random starting keys (``WHERE pk >= ? ORDER BY pk LIMIT k``), each an index
seek; other tables give their first rows in storage order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

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


def _table(collection: CollectionInfo) -> str:
    schema, _, table = collection.name.partition(".")
    return f"{_q(schema)}.{_q(table)}"


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

    def _select(self, collection: CollectionInfo) -> tuple[list[str], frozenset[str], str]:
        schema, _, table = collection.name.partition(".")
        cols = self._rows(collection, "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
                                      "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                          (schema, table))
        names = [c[0] for c in cols]
        json_fields = frozenset(n for n, typ in cols if typ == "json")
        exprs = [f"LEFT({_q(n)}, {MAX_VALUE_CHARS})" if typ in ("text", "mediumtext", "longtext", "json",
                                                               "blob", "mediumblob", "longblob") else _q(n)
                 for n, typ in cols]
        return names, json_fields, f"SELECT {', '.join(exprs)} FROM {_table(collection)}"

    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        names, json_fields, select = self._select(collection)
        est = collection.rows_estimate or 0
        pk = collection.primary_key
        rows: list[Any] = []
        if est > 10 * n and len(pk) == 1:
            key = _q(pk[0])
            lo, hi = self._rows(collection, f"SELECT MIN({key}), MAX({key}) FROM {_table(collection)}")[0]
            if isinstance(lo, int) and isinstance(hi, int):
                per = max(1, n // SAMPLE_RANGES)
                for start in sorted(random.randint(lo, hi) for _ in range(SAMPLE_RANGES)):
                    rows += self._rows(collection, f"{select} WHERE {key} >= %s ORDER BY {key} LIMIT {per}",
                                       (start,))
        if len(rows) < n // 2:
            rows = self._rows(collection, f"{select} LIMIT {int(n)}")
        return batch_from_rows(names, rows, json_fields)

    def batches(self, collection: CollectionInfo, batch_rows: int) -> Iterator[Batch]:
        names, json_fields, select = self._select(collection)
        # An unbuffered cursor streams rows instead of loading the result set into memory.
        cur = self.conn.cursor(pymysql.cursors.SSCursor)
        try:
            cur.execute(select)
            while rows := cur.fetchmany(batch_rows):
                yield batch_from_rows(names, rows, json_fields)
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
