"""PostgreSQL, through psycopg 3.

Least privileges: ``CONNECT`` on the database, ``USAGE`` on its schemas and ``SELECT`` on the
tables (the ``pg_read_all_data`` role does all three). The session is opened with
``default_transaction_read_only=on`` and a ``statement_timeout``.

Sampling uses ``TABLESAMPLE SYSTEM`` (a few random pages, so a 10M-row table samples in
milliseconds), falling back to the first rows when the sample comes back short (tiny tables, views,
no statistics). ``ORDER BY random()`` is never used: it sorts the whole table. The sample is
``REPEATABLE``: the same pages every run, so a field's type does not change between scans.

Native types come from ``pg_catalog`` (domains as their base type, arrays as their items' type,
enums as ``ENUM``) and values are rendered canonically in the SQL: ``inet`` through ``abbrev()`` (a
host address without the ``/32`` or ``/128`` that ``::text`` adds), dates, times and timestamps as
ISO 8601 through ``to_json`` (whatever the session's ``DateStyle``), arrays as their items joined by
U+001F and split into one value each (scans) or a ``list<string>`` (the whole-collection reader).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from piiguard.classify.types import Kind, NativeType
from piiguard.connectors.base import ITEMS, MAX_VALUE_CHARS, Batch, Connector, batch_from_rows, connectors
from piiguard.engines.postgres import connect
from piiguard.errors import CollectionError, PermissionDenied, UsageError
from piiguard.model import CollectionInfo, Estimate
from piiguard.registry import driver
from piiguard.system import SystemKind, system_kind

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    from psycopg import sql
else:  # imported on first use: starting the CLI must not load every engine's driver
    psycopg = driver("psycopg")
    pa = driver("pyarrow")
    pc = driver("pyarrow.compute")
    pacsv = driver("pyarrow.csv")
    sql = driver("psycopg.sql")

EXACT_DISTINCT_MAX_ROWS = 1_000_000
SAMPLE_SEED = 14

_COLLECTIONS = """
SELECT n.nspname, c.relname, c.reltuples::bigint, c.relkind,
       (SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = c.oid AND i.indisprimary)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
 ORDER BY 1, 2
"""

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid
  FROM pg_attribute a
 WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

# The columns' types and what they stand on: a domain's base type, an array's item type, transitively.
_TYPES = """
WITH RECURSIVE chain(oid) AS (
  SELECT atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
  UNION
  SELECT CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.typelem END
    FROM chain c JOIN pg_type t ON t.oid = c.oid
   WHERE t.typtype = 'd' OR (t.typcategory = 'A' AND t.typelem <> 0)
)
SELECT t.oid, t.typname, t.typtype, t.typcategory, t.typelem, t.typbasetype
  FROM chain JOIN pg_type t ON t.oid = chain.oid
"""

KINDS = {
    "inet": Kind.IP, "cidr": Kind.NETWORK, "macaddr": Kind.MAC, "macaddr8": Kind.MAC, "uuid": Kind.UUID,
    "date": Kind.DATE, "timestamp": Kind.TIMESTAMP, "timestamptz": Kind.TIMESTAMP, "time": Kind.TIME,
    "timetz": Kind.TIME, "interval": Kind.INTERVAL, "numeric": Kind.DECIMAL, "money": Kind.DECIMAL,
    "int2": Kind.INTEGER, "int4": Kind.INTEGER, "int8": Kind.INTEGER, "oid": Kind.INTEGER,
    "float4": Kind.FLOAT, "float8": Kind.FLOAT, "bool": Kind.BOOLEAN, "json": Kind.JSON, "jsonb": Kind.JSON,
    "bytea": Kind.BINARY, "text": Kind.TEXT, "varchar": Kind.TEXT, "bpchar": Kind.TEXT, "name": Kind.TEXT,
    "citext": Kind.TEXT,
}
_TEMPORAL = frozenset({Kind.DATE, Kind.TIMESTAMP, Kind.TIME})


@dataclass(frozen=True)
class _Column:
    name: str
    native: NativeType
    base: str  # the type name under domains and arrays (``inet`` for ``ip_domain[]``)


def resolve(oid: int, types: Mapping[int, tuple[str, str, str, int, int]], shown: str) -> _Column:
    """A column's native type from ``pg_type`` rows (oid → typname, typtype, typcategory, typelem,
    typbasetype): domains become their base type, arrays their items' type with ``array`` set, enums
    ``ENUM``. ``shown`` is the column's type as ``format_type`` spells it; the column's name is the
    caller's to set."""
    array = False
    for _ in range(16):  # domains over arrays of domains …: a bounded walk
        typname, typtype, category, elem, base = types[oid]
        if typtype == "d" and base:
            oid = base
        elif category == "A" and elem:
            array, oid = True, elem
        else:
            break
    typname, typtype, _, _, _ = types[oid]
    kind = Kind.ENUM if typtype == "e" else KINDS.get(typname, Kind.UNKNOWN)
    return _Column("", NativeType(shown, kind, array), typname)


def render(col: _Column, *, cut: bool = True) -> sql.Composable:
    """The SQL that reads one column as canonical text: for a scan cut to MAX_VALUE_CHARS (JSON as the
    driver's document, binary as its first bytes), for the whole-collection reader (``cut`` false)
    whole, as text. An array is its items joined by U+001F (:data:`ITEMS`)."""
    ident, kind = sql.Identifier(col.name), col.native.kind
    base = sql.SQL("pg_catalog.{}").format(sql.Identifier(col.base))
    if col.native.array:
        items: sql.Composable = ident
        if kind in _TEMPORAL:  # an array's output is not ISO 8601: each item through to_json
            items = sql.SQL("array(SELECT to_json(x::{}) #>> '{{}}' FROM unnest({}) x)").format(base, ident)
        joined = sql.SQL("array_to_string({}, {})").format(items, sql.Literal(ITEMS))
        return sql.SQL("left({}, {})").format(joined, MAX_VALUE_CHARS) if cut else joined
    if kind is Kind.IP:  # abbrev() is inet's own output: a host address without /32 or /128, unlike ::text
        return sql.SQL("abbrev({}::inet)").format(ident)
    if kind in _TEMPORAL:  # ISO 8601 whatever the session's DateStyle
        return sql.SQL("to_json({}::{}) #>> '{{}}'").format(ident, base)
    if not cut:
        return sql.SQL("{}::text").format(ident)
    if kind is Kind.JSON:
        return ident
    if kind is Kind.BINARY:
        return sql.SQL("substring({} from 1 for {})").format(ident, MAX_VALUE_CHARS)
    return sql.SQL("left({}::text, {})").format(ident, MAX_VALUE_CHARS)


def any_of(conn: psycopg.Connection[Any], table: sql.Composable, column: str, *, joined: bool = False) -> sql.Composed:
    """``column = ANY(%s::its_type[])``: the subjects' identifiers arrive as text, and comparing them in
    the column's own type (not ``column::text``) keeps the column's index usable. ``joined``: the
    parameter is one string, the identifiers joined by :data:`JOIN` (10,000 identifiers pass as one
    value instead of an array psycopg builds element by element)."""
    row = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass "
                       "AND attname = %s AND NOT attisdropped", [table.as_string(conn), column]).fetchone()
    if row is None:
        raise UsageError(f"no column {column!r} in {table.as_string(conn)}")
    if joined:
        return sql.SQL("{} = ANY(string_to_array(%s, chr(1))::{}[])").format(sql.Identifier(column), sql.SQL(row[0]))
    return sql.SQL("{} = ANY(%s::{}[])").format(sql.Identifier(column), sql.SQL(row[0]))


JOIN = "\x01"  # joins identifiers for any_of(joined=True); one that holds it is passed as an array instead


class _CopyStream(io.RawIOBase):
    """psycopg's COPY output as a file Arrow can read."""

    def __init__(self, copy: Any) -> None:
        self.copy, self.pending = copy, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            chunk = self.copy.read()
            if not chunk:
                return 0
            self.pending = memoryview(chunk)
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def _split_items(batch: pa.RecordBatch, arrays: Sequence[int]) -> pa.RecordBatch:
    """The array columns of a reader's batch (items joined by :data:`ITEMS`) as ``list<string>``; an
    empty array is an empty list, a NULL array NULL."""
    if not arrays:
        return batch
    columns = list(batch.columns)
    for i in arrays:
        joined = columns[i]
        columns[i] = pc.if_else(pc.equal(joined, ""), pa.scalar([], pa.list_(pa.string())),
                                pc.split_pattern(joined, ITEMS))
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


@connectors.register("postgres")
class Postgres(Connector):
    """PostgreSQL 11+ (and wire-compatible engines) over TCP, read-only."""

    privileges = "CONNECT, USAGE on schemas, SELECT on tables (or the pg_read_all_data role)"
    conn: psycopg.Connection[Any]

    def open(self) -> None:
        self.conn = connect(self.store, self.timeout, read_only=True)

    def close(self) -> None:
        if getattr(self, "conn", None) is not None:
            self.conn.close()

    def collections(self) -> list[CollectionInfo]:
        rows = self.conn.execute(_COLLECTIONS).fetchall()
        return [
            CollectionInfo(f"{schema}.{table}", None if est < 0 else est,
                           Estimate.APPROXIMATE, tuple(pk or ()))
            for schema, table, est, _kind, pk in rows
            if system_kind("postgres", f"{schema}.{table}") is not SystemKind.CATALOG
        ]

    def _ident(self, collection: CollectionInfo) -> sql.Composed:
        schema, _, table = collection.name.partition(".")
        return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))

    def _columns(self, collection: CollectionInfo) -> list[_Column]:
        """The collection's columns with their native types, from the catalog (two queries)."""
        table = self._ident(collection).as_string(self.conn)
        try:
            cols = self.conn.execute(_COLUMNS, [table]).fetchall()
            types = {r[0]: tuple(r[1:]) for r in self.conn.execute(_TYPES, [table]).fetchall()}
        except psycopg.Error as exc:
            raise CollectionError(self.store.name, "cannot read its columns",
                                  collection=collection.name) from exc
        return [replace(resolve(oid, types, shown), name=name) for name, shown, oid in cols]

    def _select(self, collection: CollectionInfo) -> tuple[list[str], frozenset[str], dict[str, NativeType],
                                                           sql.Composed]:
        cols = self._columns(collection)
        names = [c.name for c in cols]
        json_fields = frozenset(c.name for c in cols if c.native.kind is Kind.JSON and not c.native.array)
        select = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(render(c) for c in cols),
                                                     self._ident(collection))
        return names, json_fields, {c.name: c.native for c in cols}, select

    def _fetch(self, collection: CollectionInfo, query: sql.Composed) -> list[tuple[Any, ...]]:
        try:
            return list(self.conn.execute(query).fetchall())
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PermissionDenied(self.store.name, "SELECT is not granted", collection=collection.name,
                                   hint=f"GRANT SELECT ON {collection.name} TO {self.store.user}") from exc
        except psycopg.Error as exc:
            raise CollectionError(self.store.name, f"query failed ({type(exc).__name__})",
                                  collection=collection.name) from exc

    def columns(self, collection: CollectionInfo) -> list[str]:
        return [c.name for c in self._columns(collection)]

    def read(self, collection: CollectionInfo, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """``COPY (SELECT col::text, …) TO STDOUT`` in CSV, parsed by Arrow as it streams: NULL is an
        unquoted empty field, an empty string a quoted one, so both survive. Values are rendered as for a
        scan (an ``inet`` host without /32, timestamps ISO 8601), so a masker sees what the classifier
        saw; an array column is a ``list<string>`` of its items, each masked on its own."""
        known = {c.name: c for c in self._columns(collection)}
        exprs = sql.SQL(", ").join(render(known[c], cut=False) if c in known
                                   else sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns)
        arrays = [i for i, c in enumerate(columns) if c in known and known[c].native.array]
        query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT csv)").format(exprs, self._ident(collection))
        options = pacsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string()), strings_can_be_null=True,
                                       quoted_strings_can_be_null=False)
        try:
            with self.conn.cursor() as cur, cur.copy(query) as copy:
                # PostgreSQL sends one message per row; the buffer hands Arrow whole blocks
                stream = io.BufferedReader(_CopyStream(copy), buffer_size=1 << 20)
                reader = pacsv.open_csv(stream, convert_options=options,
                                        read_options=pacsv.ReadOptions(column_names=list(columns),
                                                                       block_size=max(1 << 16, batch_rows * 64)),
                                        parse_options=pacsv.ParseOptions(newlines_in_values=True))
                for batch in reader:
                    yield _split_items(batch, arrays)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PermissionDenied(self.store.name, "SELECT is not granted", collection=collection.name) from exc
        except psycopg.Error as exc:
            raise CollectionError(self.store.name, f"read failed ({type(exc).__name__})",
                                  collection=collection.name) from exc

    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        names, json_fields, types, select = self._select(collection)
        est = collection.rows_estimate
        rows: list[tuple[Any, ...]] = []
        if est is not None and est > 10 * n:
            percent = min(100.0, 300.0 * n / est)  # 3× head-room: pages differ in how many rows they hold
            # REPEATABLE: the same pages every run, so a scan's types do not change from run to run
            rows = self._fetch(collection, sql.SQL("{} TABLESAMPLE SYSTEM ({}) REPEATABLE ({}) LIMIT {}").format(
                select, sql.Literal(percent), sql.Literal(SAMPLE_SEED), sql.Literal(n)))
        if len(rows) < n // 2:  # instead of the sample, never added to it: no row counted twice
            rows = self._fetch(collection, sql.SQL("{} LIMIT {}").format(select, sql.Literal(n)))
        return batch_from_rows(names, rows, json_fields, types)

    def batches(self, collection: CollectionInfo, batch_rows: int) -> Iterator[Batch]:
        names, json_fields, types, select = self._select(collection)
        try:
            with self.conn.transaction(), self.conn.cursor(name="piiguard_scan") as cur:
                cur.itersize = batch_rows
                cur.execute(select)
                while rows := cur.fetchmany(batch_rows):
                    yield batch_from_rows(names, rows, json_fields, types)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PermissionDenied(self.store.name, "SELECT is not granted", collection=collection.name,
                                   hint=f"GRANT SELECT ON {collection.name} TO {self.store.user}") from exc
        except psycopg.Error as exc:  # the driver's text can quote row data: keep only its type
            raise CollectionError(self.store.name, f"read failed ({type(exc).__name__})",
                                  collection=collection.name, hint="the rows read before it were classified") from exc

    def distinct(self, collection: CollectionInfo, field: str) -> tuple[int, Estimate] | None:
        if "." in field or "[" in field:
            return None  # a JSON path: estimated from the sample instead
        schema, _, table = collection.name.partition(".")
        if collection.rows_estimate is not None and collection.rows_estimate <= EXACT_DISTINCT_MAX_ROWS:
            q = sql.SQL("SELECT count(DISTINCT {}) FROM {}").format(sql.Identifier(field),
                                                                   self._ident(collection))
            return int(self._fetch(collection, q)[0][0]), Estimate.EXACT
        row = self.conn.execute(
            "SELECT n_distinct FROM pg_stats WHERE schemaname = %s AND tablename = %s AND attname = %s",
            [schema, table, field]).fetchone()
        if row is None or collection.rows_estimate is None:
            return None
        nd = float(row[0])
        return int(nd if nd > 0 else -nd * collection.rows_estimate), Estimate.APPROXIMATE
