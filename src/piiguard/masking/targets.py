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

A target that exists is replaced only when it is what :attr:`Writer.expected` says (a piiguard copy
of the same source, or anything with ``--replace``), checked again just before the swap; each
commit leaves in :attr:`Writer.created` the physical objects it made (a table's OID, an index's
UUID, a file's inode), which the registry keeps so that expiry removes exactly those.

Columns are text (PostgreSQL ``text``, ClickHouse ``Nullable(String)``): masked values are text, and a
copy is for analysis, not for restoring types. The target's credentials need CREATE, INSERT, DROP on
the target schema (database, folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import stat
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from piiguard.engines.clickhouse import post
from piiguard.engines.postgres import STATEMENT_BUDGET, connect
from piiguard.errors import StoreError, UsageError
from piiguard.model import Store
from piiguard.registry import Registry, driver

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from psycopg import sql
else:  # imported on first use: starting the CLI must not load every engine's driver
    psycopg = driver("psycopg")
    pa = driver("pyarrow")
    pacsv = driver("pyarrow.csv")
    pq = driver("pyarrow.parquet")
    sql = driver("psycopg.sql")



@cache
def _csv_options() -> pacsv.WriteOptions:
    return pacsv.WriteOptions(include_header=False, quoting_style="all_valid")  # NULL: empty; "": quoted


@dataclass(frozen=True)
class CopyObject:
    """One physical object a copy created: its kind (``table``, ``index``, ``alias``, ``file``,
    ``folder``), its name, and its identity (a table's OID or UUID, an index's UUID, a file's inode),
    so a later object of the same name is never mistaken for it."""

    kind: str
    name: str
    id: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "id": self.id}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> CopyObject:
        return cls(str(data["kind"]), str(data["name"]), str(data["id"]))


class Writer(ABC):
    """Writes one collection of one store. ``begin`` → ``write``* → ``commit`` (or ``abort``).

    Before ``begin`` the pipeline sets :attr:`expected` to the identity of what is at the collection
    (``None``: nothing), and :attr:`owned` when that is a piiguard copy. ``commit`` replaces the
    target only if it is still that object, and leaves in :attr:`created` what the copy made."""

    expected: str | None = None
    owned: bool = False
    #: Whether ``write`` takes ``list<string>`` columns (document paths through arrays) as the engine's
    #: own arrays; otherwise the pipeline hands them over as JSON text arrays.
    native_lists: bool = False
    ours: frozenset[tuple[str, str]] = frozenset()  # (name, identity) of what live copies made in this store

    def __init__(self, store: Store, collection: str, *, timeout: float = 30.0,
                 write_timeout: float | None = None) -> None:
        # ``timeout`` bounds connecting and every exchange (the caller's --timeout); ``write_timeout``
        # only the bulk write of one batch, which may legitimately take longer (WRITE_FLOOR at least)
        self.store, self.collection, self.timeout = store, collection, timeout
        self.write_timeout = write_timeout if write_timeout is not None else max(timeout, WRITE_FLOOR)
        self.created: list[CopyObject] = []

    def validate(self) -> None:  # noqa: B027 — only writers whose names can be hostile check them
        """Refuse a collection name this writer cannot write safely (before anything is written)."""

    @abstractmethod
    def begin(self, columns: Sequence[str], tag: str) -> None:
        """Create the staging place; ``tag`` (the copy id) makes its name unique."""

    @abstractmethod
    def write(self, batch: pa.RecordBatch) -> None: ...

    @abstractmethod
    def commit(self) -> None:
        """Swap the staging in for the target collection (if it is still :attr:`expected`)."""

    @abstractmethod
    def abort(self) -> None:
        """Remove the staging; the target is untouched."""

    @abstractmethod
    def identity(self, name: str | None = None, *, staging: bool = False) -> str | None:
        """The identity of the object named ``name`` (default: the collection) now; None if absent.
        ``staging``: an identity that stays the same while rows are still being written into it."""

    @abstractmethod
    def drop(self, obj: CopyObject) -> bool:
        """Remove ``obj`` if it is still there as itself (same identity); whether it was removed."""

    def staged(self) -> list[CopyObject]:
        """After ``begin``: what a copy killed before ``commit`` would leave behind (none where the
        engine's transaction takes it away), recorded so ``copies expire`` can remove exactly that."""
        return []

    def identity_of(self, obj: CopyObject) -> str | None:
        return self.identity(obj.name, staging=obj.kind == "staging")

    def exists(self) -> bool:
        return self.identity() is not None

    def _changed(self) -> StoreError:
        return StoreError(self.store.name, "the target changed while the copy was written (another writer created "
                          "or replaced it): nothing was replaced", collection=self.collection,
                          hint="find out who writes there, then copy again (with --replace if it should go)")


writers: Registry[type[Writer]] = Registry("copy target", Writer)
WRITE_FLOOR = 30.0  # seconds one batch's bulk write may take, whatever --timeout says


def _split(collection: str, default_schema: str) -> tuple[str, str]:
    schema, dot, table = collection.rpartition(".")
    return (schema, table) if dot else (default_schema, table)


_OID = """SELECT c.relkind::text || ':' || c.oid::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relname = %s"""


@writers.register("postgres")
class PostgresWriter(Writer):
    """The identity of a table is its relation kind and OID: a table dropped and created again under
    the same name gets a new OID, so it is not taken for the copy that was there."""

    conn: psycopg.Connection[Any]

    def _connect(self, autocommit: bool = False) -> psycopg.Connection[Any]:
        return connect(self.store, self.timeout, autocommit=autocommit, application="piiguard-copy")

    def _writing(self) -> psycopg.Connection[Any]:
        """The session the COPY runs in: connected within ``timeout``; its one long statement gets the
        write budget (the COPY lasts as long as the whole copy)."""
        conn = self._connect()
        conn.execute(sql.SQL("SET statement_timeout = {}").format(
            sql.Literal(int(self.write_timeout * STATEMENT_BUDGET * 1000))))
        return conn

    def _names(self) -> tuple[sql.Composed, sql.Composed, sql.Identifier]:
        schema, table = _split(self.collection, "public")
        stage = f"{table[:40]}__piiguard_{self.tag}"
        return (sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table)),
                sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(stage)), sql.Identifier(table))

    @staticmethod
    def _oid(conn: psycopg.Connection[Any], name: str) -> str | None:
        row = conn.execute(_OID, list(_split(name, "public"))).fetchone()
        return str(row[0]) if row else None

    def begin(self, columns: Sequence[str], tag: str) -> None:
        self.tag = tag
        self.conn = self._writing()
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
        pacsv.write_csv(batch, buffer, _csv_options())
        self.copy.write(buffer.getbuffer())

    def commit(self) -> None:
        target, stage, table = self._names()
        schema, _ = _split(self.collection, "public")
        try:
            self._copy.__exit__(None, None, None)
            if self._oid(self.conn, self.collection) is not None:
                # locked, then looked at again: nobody swaps the table between the look and the drop
                self.conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(target))
            if self._oid(self.conn, self.collection) != self.expected:
                raise self._changed()
            if self.expected is not None:
                self.conn.execute(sql.SQL("DROP TABLE {}").format(target))
            _, name = _split(self.collection, "public")
            made = self._oid(self.conn, f"{schema}.{name[:40]}__piiguard_{self.tag}")  # a rename keeps the OID
            self.conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(stage, table))
            self.conn.commit()
            self.created = [CopyObject("table", f"{schema}.{name}", str(made))]
        except psycopg.Error as exc:
            self.conn.rollback()
            raise StoreError(self.store.name, f"the swap failed and was rolled back ({type(exc).__name__})",
                             collection=self.collection) from exc
        except BaseException:
            self.conn.rollback()
            raise
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

    def identity(self, name: str | None = None, *, staging: bool = False) -> str | None:
        with self._connect(autocommit=True) as conn:
            return self._oid(conn, name or self.collection)

    def drop(self, obj: CopyObject) -> bool:
        schema, table = _split(obj.name, "public")
        ident = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        try:
            with self._connect() as conn:
                if self._oid(conn, obj.name) != obj.id:
                    return False
                conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(ident))
                if self._oid(conn, obj.name) != obj.id:
                    return False
                conn.execute(sql.SQL("DROP TABLE {}").format(ident))  # no CASCADE: what depends on it stays
        except psycopg.errors.DependentObjectsStillExist as exc:
            raise StoreError(self.store.name, "other objects (views, foreign keys) depend on the copy: not removed",
                             collection=obj.name, hint="drop or repoint what depends on it, then expire again") from exc
        except psycopg.Error as exc:
            raise StoreError(self.store.name, f"cannot remove the copy ({type(exc).__name__})",
                             collection=obj.name, hint="the target user needs to own the table to drop it") from exc
        return True


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@writers.register("clickhouse")
class ClickHouseWriter(Writer):
    """The identity of a table is its UUID where the server has them (``Atomic`` databases, 20.5+);
    elsewhere a hash of its definition, metadata time (to the second) and row count. Each copy's
    table carries an ``ALIAS`` column ``_piiguard_copy`` (stores nothing, left out of ``SELECT *``)
    holding a random mark, so a table made again with the same columns, even within the same second,
    has another definition; a clone of the definition itself differs in its rows."""

    def _query(self, query: str, body: bytes | None = None) -> str:
        return post(self.store, query, body, timeout=self.timeout, collection=self.collection)

    def _q(self, name: str) -> str:
        return "`" + name.replace("`", "\\`") + "`"

    def _where(self, name: str) -> tuple[str, str]:
        return _split(name, self.store.database or "default")

    def _table(self, table: str) -> str:
        database, _ = self._where(self.collection)
        return f"{self._q(database)}.{self._q(table)}"

    def begin(self, columns: Sequence[str], tag: str) -> None:
        _, table = _split(self.collection, "")
        self.target, self.stage, self.old = (self._table(table), self._table(f"{table}__piiguard_{tag}"),
                                             self._table(f"{table}__piiguard_{tag}_old"))
        cols = ", ".join([*(f"{self._q(c)} Nullable(String)" for c in columns),
                          f"_piiguard_copy String ALIAS {_literal(f'{tag}-{secrets.token_hex(8)}')}"])
        self._query(f"CREATE TABLE {self.stage} ({cols}) ENGINE = Log")  # fails if the name is taken
        self.made_stage = True  # only now is the staging table this copy's to drop
        self.stage_name = f"{self._where(self.collection)[0]}.{table}__piiguard_{tag}"

    def staged(self) -> list[CopyObject]:
        return [CopyObject("staging", self.stage_name, str(self.identity(self.stage_name, staging=True)))]

    def write(self, batch: pa.RecordBatch) -> None:
        body = "\n".join(json.dumps(row, ensure_ascii=False) for row in batch.to_pylist())
        post(self.store, f"INSERT INTO {self.stage} FORMAT JSONEachRow", body.encode(), timeout=self.write_timeout,
             collection=self.collection)

    def commit(self) -> None:
        # ClickHouse has no transactions: the look and the rename are two statements (a writer racing
        # in between is not seen; one that came before is)
        if self.identity() != self.expected:
            raise self._changed()
        if self.expected is not None:
            self._query(f"RENAME TABLE {self.target} TO {self.old}, {self.stage} TO {self.target}")
            self._query(f"DROP TABLE {self.old}")
        else:
            self._query(f"RENAME TABLE {self.stage} TO {self.target}")
        made = self.identity()  # after the rename: the definition names the table
        database, table = self._where(self.collection)
        self.created = [CopyObject("table", f"{database}.{table}", str(made))]

    def abort(self) -> None:
        if getattr(self, "made_stage", False):
            self._query(f"DROP TABLE IF EXISTS {self.stage}")

    def identity(self, name: str | None = None, *, staging: bool = False) -> str | None:
        database, table = self._where(name or self.collection)
        where = f"WHERE database = {_literal(database)} AND name = {_literal(table)}"
        if not self._query(f"SELECT count() FROM system.tables {where}").strip().strip("0"):
            return None
        columns = self._query("SELECT name FROM system.columns WHERE database = 'system' AND table = 'tables'").split()
        if "uuid" in columns:
            uuid = self._query(f"SELECT toString(uuid) FROM system.tables {where}").strip()
            if uuid.strip("0-"):
                return uuid
        out = self._query(f"SELECT engine, toString(metadata_modification_time), create_table_query "
                          f"FROM system.tables {where} FORMAT TSVRaw")
        rows = "" if staging else self._query(f"SELECT count() FROM {self._q(database)}.{self._q(table)}")
        return "ddl:" + hashlib.sha256(f"{out}\n{rows}".encode()).hexdigest()[:32]

    def drop(self, obj: CopyObject) -> bool:
        if self.identity_of(obj) != obj.id:
            return False
        database, table = self._where(obj.name)
        self._query(f"DROP TABLE {self._q(database)}.{self._q(table)}")
        return True


MAX_COLLECTION_CHARS = 1024
MAX_PART_BYTES = 200  # a file system's name limit is 255 bytes; the staging file adds about 30


def _stat_id(path: Path, *, stable: bool = False) -> str | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode) or stable:
        return f"{'folder' if stat.S_ISDIR(st.st_mode) else 'file'}:{st.st_dev}:{st.st_ino}"
    # a file rewritten in place keeps its inode: its size and modification time tell it apart
    return f"{'link' if stat.S_ISLNK(st.st_mode) else 'file'}:{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


@writers.register("files")
class FilesWriter(Writer):
    """A collection is a path relative to the store's folder, and stays in it: absolute paths, ``..``,
    empty parts, NUL and symbolic links anywhere below the folder are refused before anything is
    written. Folders the copy creates are recorded with it (and removed on expiry if empty)."""

    def _root(self) -> Path:
        return Path(os.path.realpath(self.store.path or "."))

    def _path(self, name: str | None = None) -> Path:
        return self._root() / (name or self.collection)

    def _refuse(self, why: str) -> UsageError:
        shown = self.collection if len(self.collection) <= 80 else self.collection[:77] + "..."
        return UsageError(f"{self.store.name}: the file collection {shown!r} {why}",
                          hint="name a .parquet or .csv path inside the store's folder, e.g. exports/users.parquet")

    def validate(self) -> None:
        name = self.collection
        if "\0" in name:
            raise self._refuse("holds a NUL character")
        if len(name) > MAX_COLLECTION_CHARS:
            raise self._refuse(f"is longer than {MAX_COLLECTION_CHARS} characters")
        if name.startswith(("/", "\\")) or os.path.isabs(name):
            raise self._refuse("is an absolute path: it must stay inside the store's folder")
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise self._refuse("has an empty, '.' or '..' part: it must stay inside the store's folder")
        if any(len(p.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES for p in parts):
            raise self._refuse(f"has a part longer than {MAX_PART_BYTES} bytes")
        if Path(name).suffix.lower() not in (".parquet", ".csv"):
            raise self._refuse("is not a .parquet or .csv file name")
        root = self._root()
        if root.exists() and not root.is_dir():
            raise self._refuse("cannot be written: the store's path is a file, not a folder")
        here = root
        for i, part in enumerate(parts):
            here = here / part
            if here.is_symlink():
                raise self._refuse("passes through a symbolic link: it must stay inside the store's folder")
            if i < len(parts) - 1 and here.exists() and not here.is_dir():
                raise self._refuse(f"cannot be written: {'/'.join(parts[:i + 1])!r} is a file, not a folder")
        if here.is_dir():
            raise self._refuse("is a folder, not a file")
        if not Path(os.path.realpath(here)).is_relative_to(root):  # belt and braces after the checks above
            raise self._refuse("leaves the store's folder")

    def _folders(self) -> list[CopyObject]:
        """Create the missing folders one at a time (none may turn out a link), root first; the new ones."""
        made = []
        here = self._root()
        for part in ("", *self.collection.split("/")[:-1]):
            here = here / part if part else here
            try:
                here.mkdir(mode=0o700)
                made.append(CopyObject("folder", os.path.relpath(here, self._root()), str(_stat_id(here))))
            except FileExistsError:
                pass
            if here.is_symlink() or not here.is_dir():
                raise self._refuse("passes through a symbolic link: it must stay inside the store's folder")
        return made[::-1]  # deepest first: the order to remove them in

    def begin(self, columns: Sequence[str], tag: str) -> None:
        self.validate()
        self.folders = self._folders()
        path = self._path()
        self.temp = path.with_name(f".{path.name}.piiguard-{tag}.tmp")
        # created 0600 and exclusively, never through a link: the staging holds the data from the first row
        try:
            fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError as exc:
            raise StoreError(self.store.name, f"the staging name {self.temp.name!r} is taken by a file piiguard did "
                             "not make: nothing was written", collection=self.collection,
                             hint="move that file away, then copy again") from exc
        self.made_stage = True  # only now is the staging file this copy's to remove
        self.sink = os.fdopen(fd, "wb")
        schema = pa.schema([(c, pa.string()) for c in columns])
        self.out: Any = (pq.ParquetWriter(self.sink, schema) if path.suffix.lower() == ".parquet"
                         else pacsv.CSVWriter(self.sink, schema))

    def write(self, batch: pa.RecordBatch) -> None:
        self.out.write_batch(batch) if isinstance(self.out, pq.ParquetWriter) else self.out.write(batch)

    def commit(self) -> None:
        self.out.close()
        self.sink.close()
        self.out = None
        if self.identity() != self.expected:
            self.temp.unlink(missing_ok=True)
            raise self._changed()
        os.replace(self.temp, self._path())  # replaces a name, never follows it
        self.created = [CopyObject("file", self.collection, str(_stat_id(self._path()))), *self.folders]

    def abort(self) -> None:
        if getattr(self, "out", None) is not None:
            with contextlib.suppress(Exception):  # the staging goes whatever state its writer is in
                self.out.close()
            self.sink.close()
        if getattr(self, "made_stage", False):
            self.temp.unlink(missing_ok=True)
        for folder in getattr(self, "folders", ()):  # deepest first; one holding anything else stays
            with contextlib.suppress(OSError):
                self._path(folder.name).rmdir()

    def staged(self) -> list[CopyObject]:
        name = os.path.relpath(self.temp, self._root())
        return [CopyObject("staging", name, str(_stat_id(self.temp, stable=True))), *self.folders]

    def identity(self, name: str | None = None, *, staging: bool = False) -> str | None:
        return _stat_id(self._path(name), stable=staging)

    def drop(self, obj: CopyObject) -> bool:
        path = self._path(obj.name)
        outside = path != self._root() and not Path(os.path.realpath(path.parent)).is_relative_to(self._root())
        if outside or self.identity_of(obj) != obj.id:
            return False  # a recorded name that now leads out of the folder (a link put in its way) is not followed
        try:
            path.rmdir() if obj.kind == "folder" else path.unlink()
        except OSError:
            return False  # a folder that holds something else now stays
        return True


@writers.register("opensearch")
class OpenSearchWriter(Writer):
    """An index per copy (``NAME-piiguard-ID``) behind an alias ``NAME``: the alias moves to the new
    index in one ``_aliases`` call. The index behind it before is deleted only if it was a piiguard
    copy's; with ``--replace`` over a foreign alias it stays (only the alias moves), and a concrete
    foreign index of that name is deleted just before the alias is added (the one non-atomic moment).
    A document path through arrays is written as a JSON array of its (masked) items."""

    native_lists = True

    def _client(self) -> Any:
        from piiguard.engines.opensearch import client

        return client(self.store, self.timeout)

    def begin(self, columns: Sequence[str], tag: str) -> None:
        from piiguard.connectors.opensearch import errors

        self.es, self.index = self._client(), f"{self.collection}-piiguard-{tag}"
        from piiguard.engines.opensearch import client

        self.bulk_es = client(self.store, self.write_timeout)  # the bulk write alone gets the longer bound
        with errors(self.store, self.collection):  # fails if the name is taken
            self.es.indices.create(index=self.index, body={"settings": {"index": {"number_of_replicas": 0}}})
        self.made_stage = True  # only now is the index this copy's to delete

    def staged(self) -> list[CopyObject]:
        return [CopyObject("staging", self.index, str(self._identity(self.es, self.index)))]

    def write(self, batch: pa.RecordBatch) -> None:
        from opensearchpy.helpers import bulk

        from piiguard.connectors.opensearch import errors

        actions = ({"_index": self.index, "_source": {k: v for k, v in row.items() if v is not None}}
                   for row in batch.to_pylist())
        with errors(self.store, self.collection):
            bulk(self.bulk_es, actions, chunk_size=5000, max_retries=0, raise_on_error=True)

    def commit(self) -> None:
        from piiguard.connectors.opensearch import errors

        with errors(self.store, self.collection):
            self.es.indices.refresh(index=self.index)
            if self._identity(self.es, self.collection) != self.expected:
                raise self._changed()
            old = list(self.es.indices.get_alias(name=self.collection, ignore=[404]).keys()) \
                if self.es.indices.exists_alias(name=self.collection) else []
            if not old and self.es.indices.exists(index=self.collection):
                self.es.indices.delete(index=self.collection)
            actions = [{"remove": {"index": i, "alias": self.collection}} for i in old]
            self.es.indices.update_aliases(body={"actions": [*actions, {"add": {"index": self.index,
                                                                                 "alias": self.collection}}]})
            for index in old:  # a piiguard copy's index goes; another's data only loses the alias
                if self.owned or (index, self._identity(self.es, index)) in self.ours:
                    self.es.indices.delete(index=index)
            self.created = [CopyObject("index", self.index, str(self._identity(self.es, self.index))),
                            CopyObject("alias", self.collection, str(self._identity(self.es, self.collection)))]

    def abort(self) -> None:
        if getattr(self, "made_stage", False):
            self.es.indices.delete(index=self.index, ignore=[404])

    @staticmethod
    def _identity(es: Any, name: str) -> str | None:
        """An alias: ``alias:`` and the indices behind it; an index: ``index:`` and its UUID."""
        if es.indices.exists_alias(name=name):
            indices = sorted(es.indices.get_alias(name=name).keys())
            settings = es.indices.get_settings(index=",".join(indices), name="index.uuid")
            return "alias:" + ",".join(f"{i}@{settings[i]['settings']['index']['uuid']}" for i in indices)
        if es.indices.exists(index=name):
            settings = es.indices.get_settings(index=name, name="index.uuid")
            (only,) = settings.values()
            return f"index:{only['settings']['index']['uuid']}"
        return None

    def identity(self, name: str | None = None, *, staging: bool = False) -> str | None:
        from piiguard.connectors.opensearch import errors

        with errors(self.store, self.collection):
            return self._identity(self._client(), name or self.collection)

    def drop(self, obj: CopyObject) -> bool:
        from piiguard.connectors.opensearch import errors

        es = self._client()
        with errors(self.store, self.collection):
            if self._identity(es, obj.name) != obj.id:
                return False
            if obj.kind == "alias":
                for index in es.indices.get_alias(name=obj.name):
                    es.indices.delete_alias(index=index, name=obj.name)
            else:
                es.indices.delete(index=obj.name)
        return True
