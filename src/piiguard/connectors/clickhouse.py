"""ClickHouse, over its HTTP interface (the store's port, 8123 by default), read-only.

Least privileges: ``SELECT`` on the databases to scan and on ``system.tables``, ``system.columns``
and ``system.parts``. Every query carries ``readonly=1`` and a ``max_execution_time``; a user whose
profile already has ``readonly = 1`` (the least privilege) may override no setting, and then gets
none but the profile's own. A collection is ``database.table``; the store's ``database`` limits
the scan to one database, otherwise every database but ``system``, ``INFORMATION_SCHEMA`` and
``information_schema`` is read. Views are not read (a view runs its query); the tables a materialized
view fills are.

Sampling never sorts: a table with a sampling key is read with ``SAMPLE``; another is filtered with
``rand()`` at about four times the share wanted, and either way the read stops after ``LIMIT`` rows
and at a bounded number of rows read (``read_overflow_mode=break``). Values are cut to 4096 characters
in SQL, array items to the first 1,000. Native types become text and field paths: ``Nullable`` and
``LowCardinality`` as their inner type, ``Array(T)`` as ``name[]``, a ``Nested`` column's parts
(``members.email``) as ``members[].email``, ``Tuple`` elements as ``name.element`` (or ``name.1``),
``Map`` keys and ``JSON``/``Object('json')`` paths as document paths (keys through the labeler);
``UUID``, ``IPv4``/``IPv6``, ``Enum`` and ``Decimal`` as ClickHouse writes them (``toString``),
``DateTime``/``DateTime64`` in ISO 8601 (a ``T`` between date and time). Each field path read as it
is (a scalar, an array's items) has its :class:`~piiguard.classify.types.NativeType` in the batch.
Samples are the same rows every run: ``SAMPLE`` is deterministic, and ``rand()`` is seeded by the
table's name. Aggregate-function states are binary and not classified. Distinct counts are exact
(``uniqExact``) up to a million rows, HyperLogLog (``uniq``) above.

The whole-collection reader (:meth:`ClickHouse.read`) streams ``JSONEachRow`` with every value cast
to text on the server, parsed by Arrow block by block: memory stays bounded by the block, whatever
the table's size. Its field paths are the top-level columns, ``name[]`` for arrays of scalars and
``members[].email`` for ``Nested`` parts (list<string>, items lined up); other composite columns
(``Map``, ``Tuple``, ``JSON``, arrays of arrays) are read whole as text. ClickHouse writes a
``String``'s bytes as they are; a sequence that is not UTF-8 (a raw digest in a ``FixedString``) is
read as U+FFFD, in scans and reads alike (18.16 has no ``isValidUTF8`` to make it NULL on the server).
"""

from __future__ import annotations

import codecs
import io
import json
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from piiguard.classify.types import Kind, NativeType
from piiguard.connectors.base import (
    MAX_VALUE_CHARS,
    Batch,
    Connector,
    connectors,
    flatten,
    text_array,
    unique_name,
)
from piiguard.connectors.labels import label
from piiguard.engines import clickhouse
from piiguard.errors import AuthenticationFailed, CollectionError, PermissionDenied, StoreError, UsageError
from piiguard.model import CollectionInfo, Estimate
from piiguard.registry import driver
from piiguard.system import system_collection

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.json as pajson
else:  # imported on first use: starting the CLI must not load every engine's driver
    pa = driver("pyarrow")
    pajson = driver("pyarrow.json")

NOT_READ_ENGINES = ("View", "LiveView", "WindowView", "MaterializedView", "Dictionary")
EXACT_DISTINCT_MAX_ROWS = 1_000_000
ARRAY_ITEMS = 1000  # items of one array value sampled
MAX_ROWS_READ_PER_SAMPLED = 200  # a sample stops after this many rows read per row wanted
ACCESS_DENIED = ("Code: 497",)  # not enough privileges (wrong credentials are AuthenticationFailed already)
_WRAPPERS = ("Nullable", "LowCardinality", "SimpleAggregateFunction")


def _q(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- native types ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Type:
    """A parsed ClickHouse type: ``Array(Nullable(String))`` is Type("Array", (Type("Nullable", …),)).
    ``field`` is the element's name inside a named ``Tuple``/``Nested``."""

    name: str
    args: tuple[Type, ...] = ()
    field: str | None = None


def parse_type(text: str) -> Type:
    """A type as ``system.columns`` writes it. Literal arguments (``Enum8('a' = 1)``,
    ``Decimal(10, 2)``, ``DateTime64(3, 'UTC')``) are kept as argument-less types named by their text."""
    pos = 0

    def skip() -> None:
        nonlocal pos
        while pos < len(text) and text[pos] == " ":
            pos += 1

    def one() -> Type:
        nonlocal pos
        skip()
        if pos < len(text) and text[pos] == "'":  # a string literal argument
            end = pos + 1
            while end < len(text) and text[end] != "'":
                end += 2 if text[end] == "\\" else 1
            lit, pos = text[pos:end + 1], end + 1
            while pos < len(text) and text[pos] not in ",)":  # Enum's " = 1"
                pos += 1
            return Type(lit)
        m = re.compile(r"[A-Za-z0-9_$`.]+").match(text, pos)
        word = m.group(0) if m else ""
        pos += len(word)
        skip()
        field = None
        # a named element (``Tuple(a String)``): a word followed by another word, not "(" "," ")"
        if word and pos < len(text) and text[pos] not in "(),":
            field = word.strip("`")
            m = re.compile(r"[A-Za-z0-9_]+").match(text, pos)
            word = m.group(0) if m else ""
            pos += len(word)
            skip()
        args: list[Type] = []
        if pos < len(text) and text[pos] == "(":
            pos += 1
            while True:
                args.append(one())
                skip()
                if pos >= len(text) or text[pos] == ")":
                    pos += 1
                    break
                pos += 1  # ","
        return Type(word, tuple(args), field)

    return one()


def _inner(t: Type) -> Type:
    while t.name in _WRAPPERS and t.args:
        t = t.args[-1]
    return t


def _is_scalar(t: Type) -> bool:
    return _inner(t).name not in ("Array", "Tuple", "Map", "Nested", "JSON", "Object", "AggregateFunction",
                                  "Variant", "Dynamic")


@dataclass(frozen=True)
class Leaf:
    """One field path of a column and the SQL expression that reads its (cut) text for a scan.
    ``kind``: ``text`` (one string), ``items`` (an array of strings, nested arrays flattened),
    ``document`` (a JSON value to flatten: Map), ``json`` (JSON text to parse and flatten)."""

    path: str
    sql: str
    kind: str


def _cut(expr: str, t: Type | None = None) -> str:
    text = f"toString({expr})"
    if t is not None and _inner(t).name in ("DateTime", "DateTime64"):
        text = f"replaceOne({text}, ' ', 'T')"  # ISO 8601: toString writes a space between date and time
    return f"substringUTF8({text}, 1, {MAX_VALUE_CHARS})"


_KINDS = {
    "String": Kind.TEXT, "FixedString": Kind.TEXT, "Float32": Kind.FLOAT, "Float64": Kind.FLOAT,
    "Bool": Kind.BOOLEAN, "Date": Kind.DATE, "Date32": Kind.DATE, "DateTime": Kind.TIMESTAMP,
    "DateTime64": Kind.TIMESTAMP, "UUID": Kind.UUID, "IPv4": Kind.IP, "IPv6": Kind.IP, "Enum8": Kind.ENUM,
    "Enum16": Kind.ENUM, "Map": Kind.JSON, "JSON": Kind.JSON, "Object": Kind.JSON,
}


def native_type(type_text: str) -> NativeType | None:
    """A column's native type: ``Nullable``/``LowCardinality`` unwrapped, ``Array(T)`` as T's kind with
    ``array`` set (nested arrays too, their items flattened). None for a Tuple or Nested column, whose
    elements each have their own type."""
    t, array = _inner(parse_type(type_text)), False
    while t.name == "Array" and t.args:
        t, array = _inner(t.args[0]), True
    if t.name in ("Tuple", "Nested"):
        return None
    kind = _KINDS.get(t.name)
    if kind is None:
        integer = re.fullmatch(r"U?Int\d+", t.name) is not None
        kind = Kind.INTEGER if integer else Kind.DECIMAL if t.name.startswith("Decimal") else Kind.UNKNOWN
    return NativeType(type_text, kind, array)


def _items(t: Type, var: str, depth: int) -> str | None:
    """An expression over ``var`` (an array's item) giving cut text, or an array of it for nested arrays."""
    inner = _inner(t)
    if _is_scalar(inner):
        return _cut(var, inner)
    if inner.name == "Array" and inner.args and depth < 4:
        sub = _items(inner.args[0], f"x{depth + 1}", depth + 1)
        if sub is not None:
            return f"arrayMap(x{depth + 1} -> {sub}, arraySlice({var}, 1, {ARRAY_ITEMS}))"
    return None


def leaves(name: str, type_text: str) -> list[Leaf]:
    """The field paths a column gives a scan, with their SQL (see the module docstring)."""
    col = _q(name)
    t = _inner(parse_type(type_text))
    base, _, part = name.partition(".")
    if t.name == "Array" and t.args and part:  # a flattened Nested column: members.email Array(String)
        return _leaves(label(name), col, t, f"{label(base)}[].{label(part)}")
    return _leaves(label(name), col, t)


def _leaves(path: str, expr: str, t: Type, items_path: str | None = None) -> list[Leaf]:
    """``items_path``: where an array's items go (``path[]`` unless the column is a Nested part)."""
    t = _inner(t)
    if t.name == "AggregateFunction":
        return []
    if _is_scalar(t):
        return [Leaf(path, _cut(expr, t), "text")]
    if t.name in ("Array", "Nested") and t.args:
        item = t.args[0] if t.name == "Array" else Type("Tuple", t.args)
        item = _inner(item)
        if item.name == "Tuple" and all(_is_scalar(a) for a in item.args):
            # Array(Tuple(a String, b UInt8)) and Nested(a String, b UInt8): one path per element
            stem = items_path or f"{path}[]"
            return [Leaf(f"{stem}.{label(a.field or str(i + 1))}", f"arrayMap(x1 -> "
                         f"{_cut(f'tupleElement(x1, {i + 1})', a)}, arraySlice({expr}, 1, {ARRAY_ITEMS}))",
                         "items") for i, a in enumerate(item.args)]
        sub = _items(item, "x1", 1)
        if sub is not None:
            items = f"arrayMap(x1 -> {sub}, arraySlice({expr}, 1, {ARRAY_ITEMS}))"
            return [Leaf(items_path or f"{path}[]", items, "items")]
        return [Leaf(path, _cut(expr), "text")]
    if t.name == "Tuple" and t.args:
        out: list[Leaf] = []
        for i, a in enumerate(t.args):
            out += _leaves(f"{path}.{label(a.field or str(i + 1))}", f"tupleElement({expr}, {i + 1})", a)
        return out
    if t.name == "Map":
        return [Leaf(path, expr, "document")]
    if t.name in ("JSON", "Object"):
        return [Leaf(path, f"toString({expr})", "json")]
    return [Leaf(path, _cut(expr), "text")]  # Variant, Dynamic and types newer than this module: as text


def reader_column(name: str, type_text: str) -> tuple[str, str]:
    """The whole-collection reader's field path for a column and its SQL (whole text, or an array of it)."""
    t = _inner(parse_type(type_text))
    col = _q(name)
    base, _, part = name.partition(".")
    if t.name == "Array" and t.args and _is_scalar(t.args[0]):
        path = f"{label(base)}[].{label(part)}" if part else f"{label(name)}[]"
        return path, f"arrayMap(x -> toString(x), {col})"
    if t.name == "Map":
        return label(name), f"toJSONString({col})"
    return label(name), f"toString({col})"


# --- the connector --------------------------------------------------------------------------------

@connectors.register("clickhouse")
class ClickHouse(Connector):
    """ClickHouse 18.16+ over HTTP (or HTTPS with ``secure``), read-only."""

    privileges = "SELECT on the databases to scan and on system.tables, system.columns, system.parts"
    _fixed: dict[str, str] | None

    def open(self) -> None:
        self._columns: dict[str, list[tuple[str, str]]] = {}
        # A user whose profile says readonly=1 may override no setting (ClickHouse error 164): then
        # readonly alone, or (servers that refuse even that) nothing — the profile is read-only already,
        # and the server's own limits bound each query.
        for self._fixed in (None, {"readonly": "1"}, {}):
            try:
                self._query("SELECT 1", timeout=self.timeout)  # the first answer: one timeout, as every engine's
                return
            except StoreError as exc:
                if "Code: 164" not in exc.detail or self._fixed == {}:
                    raise

    def _settings(self, **more: str) -> dict[str, str]:
        if self._fixed is not None:
            return dict(self._fixed)
        # readonly last: after it no setting may change
        return {"max_execution_time": str(max(1, int(self.timeout * 3))), **more, "readonly": "1"}

    def _query(self, query: str, collection: CollectionInfo | None = None, *, timeout: float | None = None,
               settings: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """A read's rows; a sample or a count may take three timeouts (``max_execution_time`` too)."""
        where = collection.name if collection else None
        try:
            body = clickhouse.post(self.store, f"{query} FORMAT JSONEachRow", timeout=timeout or self.timeout * 3,
                                   collection=where, settings=self._settings(**(settings or {})))
        except StoreError as exc:
            raise self._refused(exc, where) from exc
        # rows end at \n only: \x85 in a String is written as it is (splitlines() would cut the row there)
        return _rows([line.encode() for line in body.split("\n") if line], self.store.name, where)

    def _refused(self, exc: StoreError, where: str | None) -> StoreError:
        if isinstance(exc, AuthenticationFailed):
            return exc
        if any(code in exc.detail for code in ACCESS_DENIED):
            return PermissionDenied(self.store.name, exc.detail, collection=where,
                                    hint="GRANT SELECT ON the database (and system tables) TO the scanning user")
        return exc

    def collections(self) -> list[CollectionInfo]:
        # system databases are left out by piiguard.system's one rule, not a list of our own here
        where = f"database = {_literal(self.store.database)}" if self.store.database else "1"
        engines = ", ".join(_literal(e) for e in NOT_READ_ENGINES)
        tables = self._query(f"SELECT database, name, engine, sorting_key FROM system.tables WHERE {where} "
                             f"AND engine NOT IN ({engines}) AND NOT is_temporary ORDER BY database, name")
        parts = {(r["database"], r["table"]): int(r["rows"]) for r in self._query(
            f"SELECT database, table, sum(rows) AS rows FROM system.parts WHERE active AND {where} "
            "GROUP BY database, table")}
        out = []
        for t in tables:
            if system_collection("clickhouse", f"{t['database']}.{t['name']}"):
                continue
            rows = parts.get((t["database"], t["name"]))
            if rows is None and "MergeTree" in t["engine"]:
                rows = 0  # a MergeTree table without active parts is empty
            key = [k.strip() for k in (t.get("sorting_key") or "").split(",")]
            single = len(key) == 1 and re.fullmatch(r"\w+", key[0]) is not None  # one column, not an expression
            out.append(CollectionInfo(f"{t['database']}.{t['name']}", rows, Estimate.EXACT if rows is not None
                                      else Estimate.APPROXIMATE, tuple(key) if single else ()))
        return out

    def _table(self, collection: CollectionInfo) -> str:
        database, _, table = collection.name.partition(".")
        return f"{_q(database)}.{_q(table)}"

    def _described(self, collection: CollectionInfo) -> list[tuple[str, str]]:
        if collection.name not in self._columns:
            database, _, table = collection.name.partition(".")
            rows = self._query(f"SELECT name, type FROM system.columns WHERE database = {_literal(database)} "
                               f"AND table = {_literal(table)}", collection)
            if not rows:
                raise CollectionError(self.store.name, "no such table, or no column it may read",
                                      collection=collection.name)
            self._columns[collection.name] = [(r["name"], r["type"]) for r in rows]
        return self._columns[collection.name]

    def _plan(self, collection: CollectionInfo) -> tuple[list[Leaf], dict[str, str], dict[str, NativeType], str]:
        """The scan's leaves, notes on columns not classified, the native type of each field path read
        as it is (a scalar or an array's items), and its SELECT (columns aliased c0, c1 …)."""
        plan: list[Leaf] = []
        notes: dict[str, str] = {}
        types: dict[str, NativeType] = {}
        for name, typ in self._described(collection):
            found = leaves(name, typ)
            if not found:
                notes[label(name)] = "aggregate-function states are binary: not classified"
            native = native_type(typ)
            if native is not None and len(found) == 1 and found[0].kind in ("text", "items"):
                types[found[0].path] = native
            plan += found
        if not plan:
            raise CollectionError(self.store.name, "no column piiguard can read as text", collection=collection.name)
        exprs = ", ".join(f"{leaf.sql} AS c{i}" for i, leaf in enumerate(plan))
        return plan, notes, types, f"SELECT {exprs} FROM {self._table(collection)}"

    def _sampling_key(self, collection: CollectionInfo) -> bool:
        database, _, table = collection.name.partition(".")
        rows = self._query(f"SELECT sampling_key FROM system.tables WHERE database = {_literal(database)} "
                           f"AND name = {_literal(table)}", collection)
        return bool(rows and rows[0].get("sampling_key"))

    def _row_hash(self, collection: CollectionInfo) -> str:
        """A number in 0..2³²-1 per row, the same on every run (``rand()`` ignores its argument): a hash
        of the sorting key, or of every scalar column, seeded by the table's name. NULL hashes as ''."""
        described = self._described(collection)
        key = [c for c in collection.primary_key if c in dict(described)]
        cols = key or [name for name, typ in described if _is_scalar(parse_type(typ))]
        if not cols:
            return "rand()"
        seed = zlib.crc32(collection.name.encode())
        parts = ", ".join(f"ifNull(toString({_q(c)}), '')" for c in cols)
        return f"cityHash64({seed}, {parts}) % 4294967296"

    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        plan, notes, types, select = self._plan(collection)
        est = collection.rows_estimate
        # one thread: which rows reach the LIMIT first must not depend on threads racing, run to run
        bound = {"max_rows_to_read": str(max(1_000_000, n * MAX_ROWS_READ_PER_SAMPLED)),
                 "read_overflow_mode": "break", "max_threads": "1"}
        query = f"{select} LIMIT {int(n)}"
        if est is not None and est > 10 * n:
            share = min(1.0, 4.0 * n / est)
            if self._sampling_key(collection):
                query = f"{select} SAMPLE {share:.6f} LIMIT {int(n)}"
            else:  # every row read has this chance of being kept: no sort, and LIMIT ends the read
                query = f"{select} WHERE {self._row_hash(collection)} < {int(share * 4294967295)} LIMIT {int(n)}"
        rows = self._query(query, collection, settings=bound)
        if len(rows) < min(n, est or n) // 2:  # a small table, or sampling keys that hash unevenly
            rows = self._query(f"{select} LIMIT {int(n)}", collection, settings=bound)
        return _batch(plan, rows, notes, types)

    def batches(self, collection: CollectionInfo, batch_rows: int) -> Iterator[Batch]:
        plan, notes, types, select = self._plan(collection)
        chunk: list[bytes] = []
        for line in self._lines(collection, select):
            if line:
                chunk.append(line)
            if len(chunk) >= batch_rows:
                yield _batch(plan, _rows(chunk, self.store.name, collection.name), notes, types)
                chunk = []
        if chunk:
            yield _batch(plan, _rows(chunk, self.store.name, collection.name), notes, types)

    def _lines(self, collection: CollectionInfo, select: str) -> Iterator[bytes]:
        settings = self._settings()
        settings.pop("max_execution_time", None)  # a whole table takes as long as it takes; each read is bounded
        try:
            with clickhouse.stream(self.store, f"{select} FORMAT JSONEachRow", timeout=self.timeout,
                                   collection=collection.name, settings=settings) as body:
                carry = b""  # whole lines from big reads: http.client's readline is slow on a chunked body
                while chunk := body.read(1 << 20):
                    lines = (carry + chunk).split(b"\n")
                    carry = lines.pop()
                    yield from lines
                if carry:
                    yield carry
        except StoreError as exc:
            raise self._refused(exc, collection.name) from exc

    def distinct(self, collection: CollectionInfo, field: str) -> tuple[int, Estimate] | None:
        exact = collection.rows_estimate is not None and collection.rows_estimate <= EXACT_DISTINCT_MAX_ROWS
        fn = "uniqExact" if exact else "uniq"
        for leaf in self._plan(collection)[0]:
            if leaf.path != field or leaf.kind not in ("text", "items"):
                continue
            if leaf.kind == "items" and leaf.path.count("[]") != 1:
                return None
            expr = f"{fn}Array({leaf.sql})" if leaf.kind == "items" else f"{fn}({leaf.sql})"
            rows = self._query(f"SELECT {expr} AS n FROM {self._table(collection)}", collection)
            return int(rows[0]["n"]), Estimate.EXACT if exact else Estimate.APPROXIMATE
        return None

    # the whole-collection reader

    def _reader_columns(self, collection: CollectionInfo) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, typ in self._described(collection):
            if _inner(parse_type(typ)).name == "AggregateFunction":
                continue
            path, sql = reader_column(name, typ)
            out[unique_name(path, out)] = sql
        return out

    def columns(self, collection: CollectionInfo) -> list[str]:
        return list(self._reader_columns(collection))

    def read(self, collection: CollectionInfo, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """``JSONEachRow`` of text values, parsed by Arrow's JSON reader block by block."""
        known = self._reader_columns(collection)
        missing = [c for c in columns if c not in known]
        if missing:
            raise UsageError(f"{self.store.name}.{collection.name} has no field {label(missing[0])!r}",
                             hint=f"its fields: {', '.join(known)}")
        exprs = ", ".join(f"{known[c]} AS c{i}" for i, c in enumerate(columns))
        aliases = [f"c{i}" for i in range(len(columns))]
        schema = pa.schema([pa.field(a, pa.list_(pa.string()) if "[]" in c else pa.string())
                            for a, c in zip(aliases, columns, strict=True)])
        settings = self._settings()
        settings.pop("max_execution_time", None)  # a whole table takes as long as it takes; each read is bounded
        select = f"SELECT {exprs} FROM {self._table(collection)} FORMAT JSONEachRow"
        try:
            with clickhouse.stream(self.store, select, timeout=self.timeout, collection=collection.name,
                                   settings=settings) as body:
                # Arrow cannot parse a row longer than its block: 16 MiB holds any row but a huge value's
                block_size = max(1 << 24, min(batch_rows * 256, 1 << 26))
                reader = pajson.open_json(
                    _Utf8(body), read_options=pajson.ReadOptions(block_size=block_size),
                    parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))
                while True:
                    try:
                        block = reader.read_next_batch()
                    except StopIteration:
                        return
                    except pa.ArrowInvalid as exc:  # the server's error text after the rows can quote data
                        raise CollectionError(self.store.name, "the server stopped the result part way "
                                              "(or sent text that is not UTF-8)", collection=collection.name,
                                              hint="see the server's error log") from exc
                    block = pa.RecordBatch.from_arrays(block.columns, names=list(columns))
                    for start in range(0, block.num_rows, batch_rows):
                        yield block.slice(start, batch_rows)
        except StoreError as exc:
            raise self._refused(exc, collection.name) from exc


class _Utf8(io.RawIOBase):
    """A byte stream with every sequence that is not UTF-8 written as U+FFFD: ClickHouse writes a
    String's bytes as they are, and one binary value must not stop Arrow's reader (and the read)."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self.source = source
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.out = memoryview(b"")
        self.eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.out and not self.eof:
            chunk = self.source.read(1 << 20)
            self.eof = not chunk
            self.out = memoryview(self.decoder.decode(chunk, final=self.eof).encode("utf-8"))
        n = min(len(buffer), len(self.out))
        buffer[:n] = self.out[:n]
        self.out = self.out[n:]
        return n


def _rows(lines: Sequence[bytes], store: str, collection: str | None) -> list[dict[str, Any]]:
    """``JSONEachRow`` lines as dicts: parsed as one JSON array (one call, not one per row); a line
    that is not a JSON object is found, and named by its error code, line by line."""
    try:  # a String holds bytes, and ClickHouse writes them as they are: not UTF-8 becomes U+FFFD
        rows = json.loads((b"[" + b",".join(lines) + b"]").decode("utf-8", "replace"))
    except ValueError:
        return [_row(line, store, collection) for line in lines]
    if all(isinstance(r, dict) for r in rows):
        return rows  # type: ignore[no-any-return]
    return [_row(line, store, collection) for line in lines]


def _row(line: str | bytes, store: str, collection: str | None) -> dict[str, Any]:
    try:
        row = json.loads(line.decode("utf-8", "replace") if isinstance(line, bytes) else line)
    except ValueError:  # the server's error text after the rows (it can quote data): only its code
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        code = text.split(",", 1)[0] if text.startswith("Code:") else "an answer that is not JSON"
        raise CollectionError(store, f"the server stopped the result part way ({code[:40]})",
                              collection=collection) from None
    if not isinstance(row, dict):
        raise CollectionError(store, "an answer that is not a JSON object per row", collection=collection)
    return row


def _batch(plan: Sequence[Leaf], rows: Sequence[dict[str, Any]], notes: dict[str, str],
           types: dict[str, NativeType]) -> Batch:
    values: dict[str, list[str | None]] = {}
    skipped: dict[str, int] = {}
    for i, leaf in enumerate(plan):
        alias = f"c{i}"
        if leaf.kind == "text":
            values[leaf.path] = [r.get(alias) for r in rows]
            continue
        for r in rows:
            v = r.get(alias)
            if v is None:
                continue
            if leaf.kind == "items":
                _append_items(v, values.setdefault(leaf.path, []))
            elif leaf.kind == "document":
                flatten(v, leaf.path, values, skipped)
            else:
                try:
                    flatten(json.loads(v), leaf.path, values, skipped)
                except (ValueError, RecursionError):
                    values.setdefault(leaf.path, []).append(str(v)[:MAX_VALUE_CHARS])
    columns = {p: text_array(vs, skipped) for p, vs in values.items()}
    return Batch(columns, len(rows), dict(notes), skipped, types={p: t for p, t in types.items() if p in columns})


def _append_items(value: Any, out: list[str | None]) -> None:
    if isinstance(value, list):
        for item in value:
            _append_items(item, out)
    elif value is not None:
        out.append(value if isinstance(value, str) else str(value))
