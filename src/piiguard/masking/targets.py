"""Where a copy is written, one writer per engine. Every write is atomic: rows go into a staging
table (or file) named after the copy, and only :meth:`Writer.commit` swaps it in, so a failure at any
point leaves the target exactly as it was (:meth:`Writer.abort` removes the staging).

- **postgres**: one transaction — ``CREATE TABLE`` staging, ``COPY FROM STDIN`` (CSV written by
  Arrow), then ``DROP`` the old table and ``RENAME`` the staging; a rollback undoes it all.
- **clickhouse**: a ``Log`` staging table filled over HTTP (``JSONEachRow``), then one
  ``RENAME TABLE`` statement swaps it in (ClickHouse has no transactions: between the rename and the
  drop of the old table a reader sees either the old or the new copy, never a half one).
- **files**: Parquet or CSV (by the collection's suffix) written to a hidden temporary file in the
  same folder, then ``os.replace`` (atomic on one file system).
- **opensearch**: an index per copy behind an alias named like the collection; the alias moves in
  one call.

Columns are text (PostgreSQL ``text``, ClickHouse ``Nullable(String)``): masked values are text, and a
copy is for analysis, not for restoring types. The target's credentials need CREATE, INSERT, DROP on
the target schema (database, folder).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from piiguard.engines.clickhouse import post
from piiguard.engines.postgres import connect
from piiguard.errors import StoreError, UsageError
from piiguard.model import Store
from piiguard.registry import Registry

CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")  # NULL: empty; "": quoted


class Writer(ABC):
    """Writes one collection of one store. ``begin`` → ``write``* → ``commit`` (or ``abort``)."""

    def __init__(self, store: Store, collection: str, *, timeout: float = 30.0) -> None:
        self.store, self.collection, self.timeout = store, collection, timeout

    @abstractmethod
    def begin(self, columns: Sequence[str], tag: str) -> None:
        """Create the staging place; ``tag`` (the copy id) makes its name unique."""

    @abstractmethod
    def write(self, batch: pa.RecordBatch) -> None: ...

    @abstractmethod
    def commit(self) -> None:
        """Swap the staging in for the target collection."""

    @abstractmethod
    def abort(self) -> None:
        """Remove the staging; the target is untouched."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether the target collection exists (for expiry)."""

    @abstractmethod
    def remove(self) -> None:
        """Delete the target collection (an expired copy; planned and applied on purpose)."""


writers: Registry[type[Writer]] = Registry("copy target", Writer)


def _split(collection: str, default_schema: str) -> tuple[str, str]:
    schema, dot, table = collection.rpartition(".")
    return (schema, table) if dot else (default_schema, table)


@writers.register("postgres")
class PostgresWriter(Writer):
    conn: psycopg.Connection[Any]

    def _connect(self) -> psycopg.Connection[Any]:
        return connect(self.store, self.timeout, autocommit=False, application="piiguard-copy")

    def _names(self) -> tuple[sql.Composed, sql.Composed, sql.Identifier]:
        schema, table = _split(self.collection, "public")
        stage = f"{table[:40]}__piiguard_{self.tag}"
        return (sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table)),
                sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(stage)), sql.Identifier(table))

    def begin(self, columns: Sequence[str], tag: str) -> None:
        self.tag = tag
        self.conn = self._connect()
        _, stage, _ = self._names()
        cols = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in columns)
        try:
            self.conn.execute(sql.SQL("CREATE TABLE {} ({})").format(stage, cols))
            self.cursor = self.conn.cursor()
            self._copy = self.cursor.copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(stage))
            self.copy = self._copy.__enter__()
        except psycopg.Error as exc:
            self.conn.rollback()
            raise StoreError(self.store.name, f"cannot create the staging table ({type(exc).__name__})",
                             collection=self.collection, hint="the target user needs CREATE on the schema") from exc

    def write(self, batch: pa.RecordBatch) -> None:
        buffer = io.BytesIO()
        pacsv.write_csv(batch, buffer, CSV_OPTIONS)
        self.copy.write(buffer.getbuffer())

    def commit(self) -> None:
        target, stage, table = self._names()
        try:
            self._copy.__exit__(None, None, None)
            self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            self.conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(stage, table))
            self.conn.commit()
        except psycopg.Error as exc:
            self.conn.rollback()
            raise StoreError(self.store.name, f"the swap failed and was rolled back ({type(exc).__name__})",
                             collection=self.collection) from exc
        finally:
            self.conn.close()

    def abort(self) -> None:
        if getattr(self, "conn", None) is None or self.conn.closed:
            return
        try:
            if getattr(self, "_copy", None) is not None:
                with contextlib.suppress(psycopg.Error, RuntimeError):  # ends the COPY with CopyFail
                    self._copy.__exit__(RuntimeError, RuntimeError("copy aborted"), None)
            self.conn.rollback()  # the staging table was created in this transaction: it goes with it
        finally:
            self.conn.close()

    def exists(self) -> bool:
        schema, table = _split(self.collection, "public")
        with self._connect() as conn:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                               [sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
                                .as_string(conn)]).fetchone()
        return bool(row and row[0])

    def remove(self) -> None:
        schema, table = _split(self.collection, "public")
        with self._connect() as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))


@writers.register("clickhouse")
class ClickHouseWriter(Writer):
    def _query(self, query: str, body: bytes | None = None) -> str:
        return post(self.store, query, body, timeout=self.timeout, collection=self.collection)

    def _q(self, name: str) -> str:
        return "`" + name.replace("`", "\\`") + "`"

    def _table(self, table: str) -> str:
        database, _ = _split(self.collection, self.store.database or "default")
        return f"{self._q(database)}.{self._q(table)}"

    def begin(self, columns: Sequence[str], tag: str) -> None:
        _, table = _split(self.collection, "")
        self.target, self.stage, self.old = (self._table(table), self._table(f"{table}__piiguard_{tag}"),
                                             self._table(f"{table}__piiguard_{tag}_old"))
        cols = ", ".join(f"{self._q(c)} Nullable(String)" for c in columns)
        self._query(f"CREATE TABLE {self.stage} ({cols}) ENGINE = Log")

    def write(self, batch: pa.RecordBatch) -> None:
        body = "\n".join(json.dumps(row, ensure_ascii=False) for row in batch.to_pylist())
        self._query(f"INSERT INTO {self.stage} FORMAT JSONEachRow", body.encode())

    def commit(self) -> None:
        if self.exists():
            self._query(f"RENAME TABLE {self.target} TO {self.old}, {self.stage} TO {self.target}")
            self._query(f"DROP TABLE {self.old}")
        else:
            self._query(f"RENAME TABLE {self.stage} TO {self.target}")

    def abort(self) -> None:
        if getattr(self, "stage", None):
            self._query(f"DROP TABLE IF EXISTS {self.stage}")

    def exists(self) -> bool:
        _, table = _split(self.collection, "")
        return self._query(f"EXISTS TABLE {self._table(table)}").strip() == "1"

    def remove(self) -> None:
        _, table = _split(self.collection, "")
        self._query(f"DROP TABLE IF EXISTS {self._table(table)}")


@writers.register("files")
class FilesWriter(Writer):
    def _path(self) -> Path:
        root = Path(self.store.path or ".")
        return root / self.collection

    def begin(self, columns: Sequence[str], tag: str) -> None:
        path = self._path()
        if path.suffix.lower() not in (".parquet", ".csv"):
            raise UsageError(f"a file copy is written as .parquet or .csv, not {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.temp = path.with_name(f".{path.name}.piiguard-{tag}.tmp")
        schema = pa.schema([(c, pa.string()) for c in columns])
        self.out: Any = (pq.ParquetWriter(self.temp, schema) if path.suffix.lower() == ".parquet"
                         else pacsv.CSVWriter(self.temp, schema))

    def write(self, batch: pa.RecordBatch) -> None:
        self.out.write_batch(batch) if isinstance(self.out, pq.ParquetWriter) else self.out.write(batch)

    def commit(self) -> None:
        self.out.close()
        self.temp.chmod(0o600)  # a copy of customer data, even masked, is not for every local user
        os.replace(self.temp, self._path())

    def abort(self) -> None:
        if getattr(self, "out", None) is not None:
            self.out.close()
            self.temp.unlink(missing_ok=True)

    def exists(self) -> bool:
        return self._path().exists()

    def remove(self) -> None:
        self._path().unlink(missing_ok=True)


@writers.register("opensearch")
class OpenSearchWriter(Writer):
    """An index per copy (``NAME-piiguard-ID``) behind an alias ``NAME``: the alias moves to the new
    index in one ``_aliases`` call, then the previous copy's index is deleted. A concrete index that
    already holds the name is deleted just before the alias is added (the one non-atomic moment)."""

    def _client(self) -> Any:
        from piiguard.engines.opensearch import client

        return client(self.store, self.timeout)

    def begin(self, columns: Sequence[str], tag: str) -> None:
        from piiguard.connectors.opensearch import errors

        self.es, self.index = self._client(), f"{self.collection}-piiguard-{tag}"
        with errors(self.store, self.collection):
            self.es.indices.create(index=self.index, body={"settings": {"index": {"number_of_replicas": 0}}})

    def write(self, batch: pa.RecordBatch) -> None:
        from opensearchpy.helpers import bulk

        from piiguard.connectors.opensearch import errors

        actions = ({"_index": self.index, "_source": {k: v for k, v in row.items() if v is not None}}
                   for row in batch.to_pylist())
        with errors(self.store, self.collection):
            bulk(self.es, actions, chunk_size=5000, max_retries=0, raise_on_error=True)

    def commit(self) -> None:
        from piiguard.connectors.opensearch import errors

        with errors(self.store, self.collection):
            self.es.indices.refresh(index=self.index)
            old = list(self.es.indices.get_alias(name=self.collection, ignore=[404]).keys()) \
                if self.es.indices.exists_alias(name=self.collection) else []
            if not old and self.es.indices.exists(index=self.collection):
                self.es.indices.delete(index=self.collection)
            actions = [{"remove": {"index": i, "alias": self.collection}} for i in old]
            self.es.indices.update_aliases(body={"actions": [*actions, {"add": {"index": self.index,
                                                                                 "alias": self.collection}}]})
            for index in old:
                self.es.indices.delete(index=index)

    def abort(self) -> None:
        if getattr(self, "es", None) is not None:
            self.es.indices.delete(index=self.index, ignore=[404])

    def exists(self) -> bool:
        return bool(self._client().indices.exists(index=self.collection))

    def remove(self) -> None:
        es = self._client()
        if es.indices.exists_alias(name=self.collection):
            for index in list(es.indices.get_alias(name=self.collection).keys()):
                es.indices.delete(index=index)
        elif es.indices.exists(index=self.collection):
            es.indices.delete(index=self.collection)
