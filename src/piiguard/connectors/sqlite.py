"""SQLite files, opened read-only (``mode=ro``): piiguard never takes a write lock on them.

Row estimates are ``max(rowid)`` (an index lookup, not a count). Big rowid tables are sampled as a
few short rowid ranges, disjoint and seeded by the table's name (:mod:`piiguard.connectors.sampling`:
no row twice, the same rows every run); text that is not valid UTF-8 is read with replacement
characters rather than failing the table.

Each column's native type is its declared type, read by SQLite's affinity rules
(https://www.sqlite.org/datatype3.html#determination_of_column_affinity), except that the names SQLite
folds into NUMERIC say more and count as written: ``DATE``, ``DATETIME``/``TIMESTAMP``, ``TIME``,
``BOOLEAN``, ``DECIMAL``/``NUMERIC``, ``JSON``, ``UUID``. A column declared without a type has none.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from piiguard.classify.types import Kind, NativeType
from piiguard.connectors.base import MAX_VALUE_CHARS, Batch, Connector, batch_from_rows, connectors, record_batch
from piiguard.connectors.labels import label
from piiguard.connectors.sampling import runs
from piiguard.errors import CollectionError, StoreUnreachable
from piiguard.model import CollectionInfo, Estimate
from piiguard.registry import driver
from piiguard.system import SystemKind, system_kind

if TYPE_CHECKING:
    import pyarrow as pa
else:  # imported on first use: starting the CLI must not load every engine's driver
    pa = driver("pyarrow")

SAMPLE_RANGES = 5
MAX_JSON_CHARS = 64 << 10  # a longer JSON document is cut to MAX_VALUE_CHARS and read as text, counted
BATCH_CHARS = 1 << 30  # rows per batch of a table with JSON columns: at most this many characters of them
LONG_JSON = f"JSON document(s) longer than {MAX_JSON_CHARS >> 10} KiB (read cut, as text)"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Declared names that say more than their affinity (all NUMERIC but BOOLEAN's), then the affinity rules in order.
_NAMED = {"DATE": Kind.DATE, "DATETIME": Kind.TIMESTAMP, "TIMESTAMP": Kind.TIMESTAMP, "TIME": Kind.TIME,
          "BOOLEAN": Kind.BOOLEAN, "BOOL": Kind.BOOLEAN, "DECIMAL": Kind.DECIMAL, "NUMERIC": Kind.DECIMAL,
          "JSON": Kind.JSON, "UUID": Kind.UUID}
_AFFINITY = (("INT", Kind.INTEGER), ("CHAR", Kind.TEXT), ("CLOB", Kind.TEXT), ("TEXT", Kind.TEXT),
             ("BLOB", Kind.BINARY), ("REAL", Kind.FLOAT), ("FLOA", Kind.FLOAT), ("DOUB", Kind.FLOAT))


def declared(decl: str | None) -> NativeType | None:
    """A column's declared type (``VARCHAR(40)``, ``DATETIME``, ``unsigned big int``) as a native type."""
    name = (decl or "").strip()
    if not name:
        return None
    upper = name.upper()
    head = re.split(r"[\s(]", upper, maxsplit=1)[0]
    if head in _NAMED:
        return NativeType(name, _NAMED[head])
    found = next((k for part, k in _AFFINITY if part in upper), Kind.DECIMAL)  # else NUMERIC affinity
    return NativeType(name, found)


def _sum(terms: list[str]) -> str:
    """``a + b + …`` as a balanced tree: a chain of 1,000 columns exceeds SQLite's expression depth."""
    if not terms:
        return "0"
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({_sum(terms[:half])} + {_sum(terms[half:])})"


@connectors.register("sqlite")
class SQLite(Connector):
    """A SQLite database file, read-only."""

    privileges = "read permission on the database file"
    conn: sqlite3.Connection

    def open(self) -> None:
        path = Path(self.store.path or "")
        if not path.is_file():
            raise StoreUnreachable(self.store.name, f"no database file at {path}", hint="check the path")
        try:
            # check_same_thread=False: the scanner reads the next batch in a helper thread (one at a time).
            self.conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=self.timeout,
                                        check_same_thread=False)
            self.conn.text_factory = lambda b: b.decode("utf-8", "replace")
            self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreUnreachable(self.store.name, "not a readable SQLite database",
                                   hint="check that the file is a SQLite database") from exc

    def close(self) -> None:
        if getattr(self, "conn", None) is not None:
            self.conn.close()

    def _rows(self, collection: CollectionInfo, query: str, args: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self.conn.execute(query, args).fetchall()
        except sqlite3.Error as exc:
            raise CollectionError(self.store.name, f"query failed ({type(exc).__name__})",
                                  collection=collection.name) from exc

    def collections(self) -> list[CollectionInfo]:
        out = []
        tables = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
        for name, ddl in tables:
            if system_kind("sqlite", name) is SystemKind.CATALOG:
                continue
            rowid = "WITHOUT ROWID" not in (ddl or "").upper()
            est = self.conn.execute(f"SELECT max(rowid) FROM {_q(name)}").fetchone()[0] if rowid else None
            pk = tuple(r[1] for r in self.conn.execute(f"PRAGMA table_info({_q(name)})") if r[5])
            out.append(CollectionInfo(name, int(est or 0) if rowid else None, Estimate.APPROXIMATE, pk))
        return out

    def _types(self, collection: CollectionInfo) -> dict[str, NativeType]:
        """Each column's declared type by its field name (a JSON column's is its paths', not given)."""
        out: dict[str, NativeType] = {}
        for c in self._rows(collection, f"PRAGMA table_info({_q(collection.name)})"):
            native = declared(c[2])
            if native is not None and native.kind is not Kind.JSON:
                out.setdefault(label(c[1]), native)
        return out

    def _select(self, collection: CollectionInfo) -> tuple[list[str], frozenset[str], str]:
        """Column names, the JSON ones, and the SELECT: text cut to MAX_VALUE_CHARS in SQL (a huge
        value is never read whole), except a JSON document up to :data:`MAX_JSON_CHARS`, read whole
        so that every key in it is found; its last column counts the longer documents, which are cut."""
        cols = self._rows(collection, f"PRAGMA table_info({_q(collection.name)})")
        names = [c[1] for c in cols]
        json_fields = frozenset(c[1] for c in cols if (c[2] or "").upper() == "JSON")
        doc = "typeof({0}) = 'text' AND substr({0}, 1, 1) IN ('{{', '[')"
        # blobs stay blobs (classified only if UTF-8).
        exprs = [f"CASE WHEN {doc.format(_q(n))} AND length({_q(n)}) <= {MAX_JSON_CHARS} THEN {_q(n)} "
                 f"WHEN typeof({_q(n)}) = 'text' THEN substr({_q(n)}, 1, {MAX_VALUE_CHARS}) "
                 f"ELSE {_q(n)} END" for n in names]
        long = _sum([f"({doc.format(_q(n))} AND length({_q(n)}) > {MAX_JSON_CHARS})" for n in names])
        return names, json_fields, f"SELECT {', '.join(exprs)}, {long} FROM {_q(collection.name)}"

    def _batch(self, names: list[str], rows: list[Any], json_fields: frozenset[str],
               types: dict[str, NativeType]) -> Batch:
        """Rows of the SELECT above as a batch, the documents cut for length counted."""
        batch = batch_from_rows(names, [r[:-1] for r in rows], json_fields)
        batch.types = {name: native for name, native in types.items() if name in batch.columns}
        cut = sum(int(r[-1] or 0) for r in rows)
        if cut:
            batch.skipped[LONG_JSON] = batch.skipped.get(LONG_JSON, 0) + cut
        return batch

    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        names, json_fields, select = self._select(collection)
        est = collection.rows_estimate or 0
        rows: list[Any] = []
        if est > 10 * n:
            taken = runs(est, n, SAMPLE_RANGES, collection.name)
            # rowids 1 … est; a run stops before the next one starts even across gaps in the rowids
            ends = [start + 1 for start, _ in taken[1:]] + [est + 1]
            for (start, length), end in zip(taken, ends, strict=True):
                rows += self._rows(collection, f"{select} WHERE rowid >= ? AND rowid < ? ORDER BY rowid "
                                   f"LIMIT {length}", (start + 1, end))
        if len(rows) < n // 2:
            rows = self._rows(collection, f"{select} LIMIT {int(n)}")
        return self._batch(names, rows, json_fields, self._types(collection))

    def batches(self, collection: CollectionInfo, batch_rows: int) -> Iterator[Batch]:
        names, json_fields, select = self._select(collection)
        # Whole JSON documents may be MAX_JSON_CHARS each: fewer rows per batch keeps memory bounded.
        batch_rows = max(1, min(batch_rows, BATCH_CHARS // (MAX_JSON_CHARS * max(1, len(names)))))
        types = self._types(collection)
        try:
            cur = self.conn.execute(select)
            while rows := cur.fetchmany(batch_rows):
                yield self._batch(names, rows, json_fields, types)
        except sqlite3.Error as exc:
            raise CollectionError(self.store.name, f"read failed ({type(exc).__name__})",
                                  collection=collection.name) from exc

    def columns(self, collection: CollectionInfo) -> list[str]:
        return self._select(collection)[0]

    def read(self, collection: CollectionInfo, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        cur = self.conn.execute(f"SELECT {', '.join(_q(c) for c in columns)} FROM {_q(collection.name)}")
        try:
            while rows := cur.fetchmany(batch_rows):
                yield record_batch(columns, rows)
        except sqlite3.Error as exc:
            raise CollectionError(self.store.name, f"read failed ({type(exc).__name__})",
                                  collection=collection.name) from exc

    def distinct(self, collection: CollectionInfo, field: str) -> tuple[int, Estimate] | None:
        if field not in self._select(collection)[0]:
            return None
        row = self._rows(collection, f"SELECT count(DISTINCT {_q(field)}) FROM {_q(collection.name)}")
        return int(row[0][0]), Estimate.EXACT
