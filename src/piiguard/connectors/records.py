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
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from piiguard.connectors.base import MAX_DEPTH, _whole, documents_record_batch, flatten, text_array
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
    if isinstance(t, pa.ExtensionType):
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


def parquet_batches(source: Any, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """A Parquet file's records at these field paths, ``batch_rows`` at a time (row groups are read one
    by one, only the top-level columns a path needs)."""
    pf = pq.ParquetFile(source)
    schema = pf.schema_arrow
    by_label: dict[str, str] = {}
    for f in schema:
        by_label.setdefault(label(f.name), f.name)

    def scalar(path: str) -> bool:
        name = by_label.get(path)
        return name is not None and not pa.types.is_nested(schema.field(name).type)

    if all(scalar(c) for c in columns):
        for record in pf.iter_batches(batch_size=batch_rows, columns=[by_label[c] for c in columns]):
            yield pa.RecordBatch.from_arrays([whole_text(a) for a in record.columns], names=list(columns))
        return
    wanted = [name for shown, name in by_label.items()
              if any(c == shown or c.startswith((f"{shown}.", f"{shown}[")) for c in columns)]
    maps = any("map<" in str(schema.field(n).type) for n in wanted)
    for record in pf.iter_batches(batch_size=max(1, min(batch_rows, DOC_ROWS)), columns=wanted):
        docs = record.to_pylist()
        yield documents_record_batch([_plain(d) for d in docs] if maps else docs, columns)


def table_batches(records: Iterator[pa.RecordBatch], names: Sequence[str], columns: Sequence[str],
                  batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Arrow record batches of text columns named ``names`` (a CSV file's) as reader batches of ``columns``."""
    index = {n: i for i, n in enumerate(names)}
    for record in records:
        arrays = [record.column(index[c]) if c in index else pa.nulls(record.num_rows, pa.string()) for c in columns]
        table = pa.RecordBatch.from_arrays(arrays, names=list(columns))
        for start in range(0, table.num_rows, batch_rows):
            yield table.slice(start, batch_rows)
