"""Whole records of a data export, for the one whole-collection reader (:meth:`Connector.read`) of the
``files`` and ``s3`` connectors: what scope and copy read, where the scan only samples and classifies.

The field paths are the scan's (:func:`piiguard.connectors.files._leaves` for Arrow-typed files,
:func:`~piiguard.connectors.base.flatten` for documents), so scope can read a field by the name the
catalog gives it — ``email``, ``profile.email``, ``devices[].serial``:

- **CSV/TSV**: the columns, as the scan names them (header or ``col_N``); Arrow parses, values stay text.
- **Parquet**: top-level scalar columns are cast to text by Arrow; a path into a struct or list is read
  from the row's Python value with :func:`~piiguard.connectors.base.extract`, like a document.
- **JSON Lines, JSON arrays**: each line (item) is a document read with ``extract``.

Values are whole (never cut to ``MAX_VALUE_CHARS``). A JSON line may be up to :data:`READ_LINE_BYTES`
(the scan's limit is 1 MiB: it needs only a value's shape); a CSV row stays within Arrow's block.
Whatever cannot be read whole is counted by reason, never shown, and the read then fails (see
:meth:`piiguard.connectors.files.Files.read`): a scope or copy that silently missed a record would
be wrong.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from piiguard.classify.types import Kind
from piiguard.connectors import arrowtypes
from piiguard.connectors.base import MAX_DEPTH, _whole, extract, flatten, text_array
from piiguard.connectors.labels import label
from piiguard.connectors.streams import LineFilter, Tally, line_blocks
from piiguard.registry import driver

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
else:  # imported on first use: starting the CLI must not load every engine's driver
    pa = driver("pyarrow")
    pc = driver("pyarrow.compute")
    pq = driver("pyarrow.parquet")

READ_LINE_BYTES = 16 << 20  # one JSON line read whole at most; longer ones are counted and fail the read
BLOCK_BYTES = 2 << 20
DOC_ROWS = 10_000  # documents held as Python objects at a time: a reader batch of documents is at most this
SAMPLE_DOCS = 2000  # documents whose paths make a JSON export's columns
MAX_LABELS = 100_000  # distinct keys whose labels a reader remembers

BAD_UTF8_LINES = "line(s) not valid UTF-8"
BAD_JSON = "line(s) that are not valid JSON"
NOT_OBJECT = "line(s) that are not JSON objects"
DEEP_LINES = f"line(s) nested deeper than {MAX_DEPTH} levels"


def document(line: bytes, tally: Tally) -> dict[str, Any] | None:
    """One JSON line as a document; None (counted by reason) when it is blank, broken or not an object."""
    if not line.strip():
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        tally.add(BAD_UTF8_LINES)
        return None
    try:
        doc = json.loads(text)
    except RecursionError:  # the json module recurses; Python's limit is about 1,000 levels
        tally.add(DEEP_LINES)
        return None
    except ValueError:
        tally.add(BAD_JSON)
        return None
    if not isinstance(doc, dict):
        tally.add(NOT_OBJECT)
        return None
    return doc


_SIMPLE = re.compile(r"[^.\[\]]+(\[\])*(\.[^.\[\]]+(\[\])*)*|[^.\[\]]*(\[\])+")


class _Odd(Exception):
    pass


class _Node:
    """One step of the wanted paths: the keys (labelled) below it, its list items, and the path it
    ends, if any."""

    __slots__ = ("arrays", "children", "items", "name", "path")

    def __init__(self, name: str) -> None:
        self.name = name
        self.children: dict[str, _Node] = {}
        self.items: _Node | None = None
        self.path: str | None = None
        self.arrays = name.count("[]")


class Paths:
    """:func:`~piiguard.connectors.base.extract` for many documents at the same paths, faster: the
    paths are a tree walked once per document, only down the keys that lead to a wanted path (a scope
    reads a few PII fields of wide documents), and keys are labelled once per distinct key, not once
    per document. Same results as ``extract``, which the tests hold it to."""

    def __init__(self, wanted: Sequence[str]) -> None:
        self.wanted = list(wanted)
        # a path with an empty or bracketed name (``a..b``, ``x[0]``) is left to extract itself
        self.simple = all(_SIMPLE.fullmatch(p) for p in self.wanted)
        self.root = _Node("")
        for path in self.wanted if self.simple else ():
            node, name = self.root, ""
            for part in path.split("."):
                key = part.rstrip("[]")
                name = f"{name}.{key}" if name else key
                if key or node is not self.root:  # an empty top-level name is the top level itself
                    node = node.children.setdefault(key, _Node(name))
                for _ in range((len(part) - len(key)) // 2):
                    name += "[]"
                    node.items = node.items or _Node(name)
                    node = node.items
            node.path = path
        self.labels: dict[str, str] = {}
        self.odd: set[str] = set()  # labels that are not one step of a path ("a.b", "x[]", ""): extract decides

    def _label(self, key: Any) -> str:
        text = str(key)
        name = self.labels.get(text)
        if name is None:
            if len(self.labels) >= MAX_LABELS:  # keys that are values (a key per customer): bounded
                self.labels.clear()
                self.odd.clear()
            name = self.labels[text] = label(text)
            if not name or any(c in name for c in ".[]"):
                self.odd.add(name)
        return name

    def extract(self, doc: Any) -> dict[str, Any]:
        if not self.simple:
            return extract(doc, self.wanted)
        first: dict[str, str] = {}
        slots: dict[str, dict[int, str | None]] = {}
        many: dict[str, list[str | None]] = {}
        lengths: dict[str, int] = {}
        labels, relabel, root, odd = self.labels, self._label, self.root, self.odd

        def walk(value: Any, node: _Node, slot: int | None, depth: int) -> None:
            if isinstance(value, dict):
                children, top = node.children, node is root
                if depth >= MAX_DEPTH or not (children or top):
                    return
                for key, item in value.items():
                    name = labels.get(key) or relabel(key)
                    if name in odd and (name or not top):
                        raise _Odd
                    # a top-level key labelled "" names no step: extract reads what is below it as top-level
                    child = root if top and not name else children.get(name)
                    if child is not None:
                        walk(item, child, slot, depth + 1)
            elif isinstance(value, list):
                items = node.items
                if depth >= MAX_DEPTH or items is None:
                    return
                if slot is None:
                    lengths[items.name] = max(lengths.get(items.name, 0), len(value))
                    for i, item in enumerate(value):
                        walk(item, items, i, depth + 1)
                else:
                    for item in value:
                        walk(item, items, slot, depth + 1)
            elif value is not None and node.path is not None:
                text = value if isinstance(value, str) else _whole(value)
                if node.arrays == 0:
                    if text is not None:
                        first.setdefault(node.path, text)
                elif node.arrays == 1 and slot is not None:
                    slots.setdefault(node.path, {}).setdefault(slot, text)
                else:
                    many.setdefault(node.path, []).append(text)

        try:
            walk(doc, self.root, None, 0)
        except _Odd:  # a key whose label holds a path's punctuation: only extract's string paths tell
            return extract(doc, self.wanted)
        out: dict[str, Any] = {}
        for path in self.wanted:
            arrays = path.count("[]")
            if arrays == 0:
                out[path] = first.get(path)
            elif arrays == 1:
                length = lengths.get(path[:path.index("[]") + 2])
                found = slots.get(path, {})
                out[path] = None if length is None else [found.get(i) for i in range(length)]
            else:
                out[path] = many.get(path)
        return out

    def batch(self, docs: Sequence[Any]) -> pa.RecordBatch:
        """Documents → a reader batch (as :func:`~piiguard.connectors.base.documents_record_batch`)."""
        values: dict[str, list[Any]] = {c: [] for c in self.wanted}
        for doc in docs:
            for path, value in self.extract(doc).items():
                values[path].append(value)
        arrays = [pa.array(values[c], pa.list_(pa.string()) if "[]" in c else pa.string()) for c in self.wanted]
        return pa.RecordBatch.from_arrays(arrays, names=self.wanted)


def line_documents(stream: Any, tally: Tally, rows: int = DOC_ROWS) -> Iterator[list[dict[str, Any]]]:
    """A JSON Lines stream as lists of at most ``rows`` documents, lines up to :data:`READ_LINE_BYTES`."""
    with contextlib.closing(LineFilter(stream, tally, READ_LINE_BYTES)) as lines:
        chunk: list[dict[str, Any]] = []
        for block in line_blocks(lines, BLOCK_BYTES):
            for line in block.split(b"\n"):
                doc = document(line, tally)
                if doc is not None:
                    chunk.append(doc)
                    if len(chunk) >= rows:
                        yield chunk
                        chunk = []
        if chunk:
            yield chunk


def document_paths(docs: Generator[list[dict[str, Any]], None, None], limit: int = SAMPLE_DOCS) -> list[str]:
    """The field paths the first ``limit`` documents hold, in the order they are first seen (the
    stream is closed after them)."""
    paths: dict[str, list[str | None]] = {}
    seen = 0
    with contextlib.closing(docs):
        for chunk in docs:
            for doc in chunk[:limit - seen]:
                flatten(doc, "", paths)
            seen += len(chunk)
            if seen >= limit:
                break
    return list(paths)


def _type_paths(name: str, t: pa.DataType, out: dict[str, None], depth: int) -> None:
    if isinstance(t, pa.ExtensionType):  # a Python-defined extension (Arrow's own, as uuid, are leaves)
        _type_paths(name, t.storage_type, out, depth)
    elif pa.types.is_dictionary(t):
        _type_paths(name, t.value_type, out, depth)
    elif pa.types.is_nested(t) and depth >= MAX_DEPTH:
        return
    elif pa.types.is_map(t):
        _type_paths(f"{name}[].key", t.key_type, out, depth + 1)
        _type_paths(f"{name}[].value", t.item_type, out, depth + 1)
    elif pa.types.is_struct(t) or pa.types.is_union(t):
        for i in range(t.num_fields):
            _type_paths(f"{name}.{label(t.field(i).name)}", t.field(i).type, out, depth + 1)
    elif pa.types.is_nested(t) and hasattr(t, "value_type"):  # list, large_list, fixed_size_list, list_view …
        _type_paths(f"{name}[]", t.value_type, out, depth + 1)
    else:
        out.setdefault(name)


def schema_paths(schema: pa.Schema) -> list[str]:
    """An Arrow schema's leaf field paths, named as the scan names them (struct fields dotted, list
    items ``[]``, map entries ``[].key`` / ``[].value``)."""
    out: dict[str, None] = {}
    for f in schema:
        _type_paths(label(f.name), f.type, out, 0)
    return list(out)


def whole_text(arr: pa.Array) -> pa.Array:
    """A scalar column as whole text: Arrow's cast where it can, else value by value (binary as UTF-8,
    or null when it is not)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if arrowtypes.kind(arr.type) is Kind.UUID:  # 16 bytes that are no UTF-8: the scan's UUID text
        return arrowtypes.uuids(arr.storage if isinstance(arr.type, pa.BaseExtensionType) else arr)
    if pa.types.is_string(arr.type):
        return arr
    try:
        return pc.cast(arr, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return text_array([_whole(v) for v in arr.to_pylist()], {})


def _plain(value: Any) -> Any:
    """A Parquet row's Python value with maps (lists of key/value tuples) as lists of ``{key, value}``,
    the shape the scan names ``field[].key``."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [{"key": _plain(v[0]), "value": _plain(v[1])} if isinstance(v, tuple) and len(v) == 2 else _plain(v)
                for v in value]
    return value


def _segments(path: str) -> list[tuple[str, int]] | None:
    """``devices[].serial`` → ``[("devices", 1), ("serial", 0)]`` (name, arrays after it); None for a
    path Arrow cannot follow here (more than one array, or an empty name)."""
    out = []
    for part in path.split("."):
        name = part.rstrip("[]")
        arrays = (len(part) - len(name)) // 2
        if not name or part != name + "[]" * arrays:
            return None
        out.append((name, arrays))
    return out if sum(a for _, a in out) <= 1 else None


def arrow_path(record: pa.RecordBatch, by_label: dict[str, int], path: str) -> pa.Array | None:
    """A reader column computed by Arrow from typed (struct and list) columns, as :func:`extract`
    would read it from the row's Python value: text for a path through structs, ``list<string>``
    with one item per element for a path through one list. None when Arrow cannot follow it (maps,
    nested lists, unions, a name that is not there): the caller reads those rows as documents."""
    if path in by_label and not pa.types.is_nested(record.column(by_label[path]).type):
        return whole_text(record.column(by_label[path]))  # a column named so (a copy written to a file)
    steps = _segments(path)
    if steps is None or steps[0][0] not in by_label:
        return None
    current: pa.Array = record.column(by_label[steps[0][0]])
    outer: pa.Array | None = None  # the one list the path goes through, to rebuild around the items
    for i, (name, arrays) in enumerate(steps):
        if i:
            t = current.type
            if not pa.types.is_struct(t):
                return None
            found = [j for j in range(t.num_fields) if label(t.field(j).name) == name]
            if not found:
                return None
            current = pc.struct_field(current, [found[0]])
        if arrays:
            if not (pa.types.is_list(current.type) or pa.types.is_large_list(current.type)):
                return None
            outer, current = current, current.flatten()
    if pa.types.is_nested(current.type) or (isinstance(current.type, pa.BaseExtensionType)
                                            and arrowtypes.kind(current.type) is not Kind.UUID):
        return None
    text = whole_text(current)
    if outer is None:
        return text
    offsets = pc.subtract(outer.offsets, outer.offsets[0]).cast(pa.int32())
    return pa.ListArray.from_arrays(offsets, text, mask=outer.is_null())


def parquet_batches(source: Any, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """A Parquet file's records at these field paths, ``batch_rows`` at a time (row groups are read one
    by one, only the top-level columns a path needs). Arrow computes every path it can follow
    (:func:`arrow_path`); a batch with a path it cannot is read as documents."""
    pf = pq.ParquetFile(source)
    schema = pf.schema_arrow
    by_label: dict[str, str] = {}
    for f in schema:
        by_label.setdefault(label(f.name), f.name)
    wanted = [name for shown, name in by_label.items()
              if any(c == shown or c.startswith((f"{shown}.", f"{shown}[")) for c in columns)]
    if not wanted:
        for n in (pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)):
            for start in range(0, n, batch_rows):
                rows = min(batch_rows, n - start)
                yield pa.RecordBatch.from_arrays([pa.nulls(rows, _reader_type(c)) for c in columns],
                                                 names=list(columns))
        return
    index = {label(n): i for i, n in reversed(list(enumerate(wanted)))}
    maps = any("map<" in str(schema.field(n).type) for n in wanted)
    paths = Paths(columns)
    for record in pf.iter_batches(batch_size=batch_rows, columns=wanted):
        arrays = [arrow_path(record, index, c) if c in index or _top(c) in index
                  else pa.nulls(record.num_rows, _reader_type(c)) for c in columns]
        if all(a is not None for a in arrays):
            yield pa.RecordBatch.from_arrays(arrays, names=list(columns))
            continue
        for start in range(0, record.num_rows, DOC_ROWS):
            docs = record.slice(start, DOC_ROWS).to_pylist()
            yield paths.batch([_plain(d) for d in docs] if maps else docs)


def _top(path: str) -> str:
    return path.split(".", 1)[0].split("[]", 1)[0]


def _reader_type(path: str) -> pa.DataType:
    return pa.list_(pa.string()) if "[]" in path else pa.string()


def table_batches(records: Iterator[pa.RecordBatch], names: Sequence[str], columns: Sequence[str],
                  batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Arrow record batches of text columns named ``names`` (a CSV file's) as reader batches of ``columns``."""
    index = {n: i for i, n in enumerate(names)}
    for record in records:
        arrays = [record.column(index[c]) if c in index else pa.nulls(record.num_rows, pa.string()) for c in columns]
        table = pa.RecordBatch.from_arrays(arrays, names=list(columns))
        for start in range(0, table.num_rows, batch_rows):
            yield table.slice(start, batch_rows)
