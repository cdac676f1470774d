"""Data exports on disk: CSV, JSON Lines and Parquet, read with PyArrow (no hand-written parser).

The store's path is one file or a folder; a folder is walked recursively and every file with a
known suffix is a collection (named by its path relative to the folder). **Symbolic links inside the
folder are never followed** (files or folders): each is reported as a problem under its own name,
its target is neither read nor printed. Files are opened with ``O_NOFOLLOW`` and must be regular
files (a FIFO named ``x.csv`` would block the scan).

Every value is read as text (``column_types`` forced to string) so that a column whose type drifts
halfway through a large export cannot abort the read. Each field's native type is the one Parquet or
Arrow's JSON reader gives it, and a CSV column's only where all its values are ISO dates or
timestamps (:mod:`piiguard.connectors.arrowtypes`, which also renders them canonically). Nested JSON
objects become dotted field paths, list items ``field[]``, walked to 64 levels.

**A CSV header is data until proven otherwise**: the first row is taken as column names only when
none of its cells is a PII value, a number or a date, and none has the same PII type as the values
under it (:func:`piiguard.connectors.labels.header_is_data`); otherwise the columns are ``col_1``,
``col_2`` … and the first row is read as a record. Every name passes
:func:`~piiguard.connectors.labels.label`.

**A CSV's delimiter is found, not assumed**: ``,`` ``;`` (the usual European export) tab or ``|``,
whichever splits the header and the most of the first 50 rows into as many fields, quoted fields read
as quoted (:func:`sniff_delimiter`; a tie goes to tab for ``.tsv``, else ``,``). The store option
``delimiter`` forces one.

**Nothing is left out silently.** Rows with the wrong number of fields, lines longer than 1 MiB,
JSON lines that do not parse, are not objects or nest deeper than 64 levels, values that are not
valid UTF-8, and a file that ends early (truncated Parquet) are counted per reason; the scan reports
them as a problem on the collection (exit 1) with rows read and skipped, classifies the rest and
goes on with the other collections. Never a value in the message.

Sampling reads the first rows of the file (exports are rarely sorted by anything PII-related; this
is the cheap read). Distinct counts for the subject estimate come from DuckDB (``approx_count_distinct``
for big files). Scope and copy read every record whole with :meth:`Files.read` (see
:mod:`piiguard.connectors.records`), at the field paths the scan names, and fail rather than skip.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import stat
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from piiguard.classify.types import Kind, NativeType
from piiguard.connectors import arrowtypes
from piiguard.connectors.base import (
    DEEP,
    MAX_DEPTH,
    MAX_VALUE_CHARS,
    Batch,
    Connector,
    connectors,
    documents_batch,
    unique_name,
)
from piiguard.connectors.labels import header_is_data, label
from piiguard.connectors.records import (
    DEEP_LINES,
    DOC_ROWS,
    Paths,
    document,
    document_paths,
    line_documents,
    parquet_batches,
    schema_paths,
    table_batches,
)
from piiguard.connectors.streams import LineFilter, Tally, line_blocks
from piiguard.errors import CollectionError, StoreUnreachable
from piiguard.model import CollectionInfo, Estimate
from piiguard.registry import driver

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq
else:  # imported on first use: starting the CLI must not load every engine's driver
    duckdb = driver("duckdb")
    np = driver("numpy")
    pa = driver("pyarrow")
    pc = driver("pyarrow.compute")
    pacsv = driver("pyarrow.csv")
    pajson = driver("pyarrow.json")
    pq = driver("pyarrow.parquet")

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
            ".parquet": "parquet"}
# A CSV or JSON file may be compressed (``x.csv.gz``): Arrow decompresses it as a stream.
COMPRESSION = {".gz": "gzip", ".zst": "zstd"}
MAX_JSON_ARRAY_BYTES = 256 << 20  # a .json file holding one array is parsed whole, up to this size
# Arrow's streaming readers keep a few dozen blocks read ahead, so the block is small (memory stays about
# 30 × READ_BYTES whatever the file's size); blocks are then joined into batches of BATCH_BYTES, because
# fewer, larger batches keep the classifier's per-batch overheads low. A block must hold the longest
# line (streams.MAX_LINE_BYTES), or Arrow fails on it.
READ_BYTES = 2 << 20
SAMPLE_BYTES = 2 << 20
BATCH_BYTES = 16 << 20
EXACT_DISTINCT_MAX_ROWS = 100_000  # above: HyperLogLog (approx_count_distinct), memory independent of size
DUCKDB_MEMORY = "256MB"
HEADER_PROBE_ROWS = 50

RAGGED = "row(s) with the wrong number of fields"
BAD_UTF8 = "value(s) not valid UTF-8"
CHANGED = "the file changed while it was read (its size or modification time); scan it again when it is still"
UNCLOSED = "line(s) after a quote that is never closed (read as one value)"
_NOT_FOLLOWED = "a symbolic link: not followed"


def _holds_newline(row: pa.RecordBatch) -> bool:
    return any(isinstance(v, str) and "\n" in v for col in row.columns for v in col.to_pylist())


def _kind(name: str) -> tuple[str | None, str | None]:
    """A file's type and compression from its name (``x.csv.gz`` → ``("csv", "gzip")``); ``None``
    when it is not a type piiguard reads (a compressed Parquet file is not one: Parquet compresses
    inside)."""
    path = PurePath(name)
    compression = COMPRESSION.get(path.suffix.lower())
    if compression is not None:
        path = path.with_suffix("")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind == "parquet" and compression is not None:
        return None, None
    return kind, compression


def known_file(name: str) -> bool:
    """Whether piiguard reads a file of this name (its suffix, after a compression suffix)."""
    return _kind(name)[0] is not None


def _put(columns: dict[str, pa.Array], name: str, arr: pa.Array) -> None:
    """Two keys with the same label (``<email>`` twice) are one field: their values are joined."""
    columns[name] = pa.concat_arrays([columns[name], arr]) if name in columns else arr


@dataclass
class _Leaves:
    """What flattening one record batch makes: string leaves by field path, their native types and
    notes. ``inferred``: the types are Arrow's guesses from JSON text, not a writer's (Parquet's)."""

    tally: Tally
    inferred: bool
    columns: dict[str, pa.Array] = field(default_factory=dict)
    types: dict[str, NativeType] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def typed(self, name: str, native: NativeType | None) -> None:
        if native is not None:
            self.types.setdefault(name, native)  # two keys with one label: the first one's type

    def add(self, name: str, arr: pa.Array, depth: int = 0, array: bool = False) -> None:
        """Flatten structs, lists, maps and unions into string leaves keyed by field path (names
        labelled); a leaf under a list is typed as an array of its items' type.

        Every Arrow type is either read or noted by name: a map's keys and values are ``field[].key`` and
        ``field[].value`` (its keys are data, as a list's items are), a union's members are read one by one,
        a dictionary is decoded, and a type Arrow cannot write as text is noted, never a crash."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        t = arr.type
        if isinstance(t, pa.BaseExtensionType):  # Arrow's own (uuid) and Python-defined extensions
            if arrowtypes.kind(t) is Kind.UUID:
                self.typed(name, NativeType(str(t), Kind.UUID, array))
                _put(self.columns, name, arrowtypes.uuids(arr.storage))
            else:
                self.add(name, arr.storage, depth, array)
            return
        if pa.types.is_dictionary(t):
            self.typed(name, arrowtypes.native(t, array=array))
            self.add(name, arr.dictionary_decode(), depth, array)
            return
        nested = pa.types.is_nested(t)
        if nested and depth >= MAX_DEPTH:
            self.tally.add(DEEP, len(arr) - arr.null_count)
            return
        if pa.types.is_map(t):
            self.add(f"{name}[].key", arr.keys, depth + 1, True)
            self.add(f"{name}[].value", arr.items, depth + 1, True)
        elif pa.types.is_struct(t) or pa.types.is_union(t):
            for i in range(t.num_fields):
                self.add(f"{name}.{label(t.field(i).name)}", arr.field(i), depth + 1, array)
        elif nested:  # list, large_list, fixed_size_list, list_view …
            try:
                items = pc.list_flatten(arr)
            except pa.ArrowException:
                items = arr.flatten() if hasattr(arr, "flatten") else None
            if items is None:
                self.notes[name] = f"values of type {t} not classified"
                return
            self.add(f"{name}[]", items, depth + 1, True)
        else:
            self._scalar(name, arr, array)

    def _scalar(self, name: str, arr: pa.Array, array: bool) -> None:
        t = arr.type
        native = arrowtypes.native(t, array=array)
        if pa.types.is_null(t):
            _put(self.columns, name, pa.nulls(len(arr), pa.string()))
        elif native is not None and native.kind is Kind.UUID:
            self.typed(name, native)
            _put(self.columns, name, arrowtypes.uuids(arr))
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) \
                or pa.types.is_binary_view(t):
            # A typed binary column (Parquet BYTE_ARRAY without UTF8) holds blobs by design, as an SQL BLOB does.
            self.typed(name, native)
            text, bad = _decoded(arr if pa.types.is_binary(t) or pa.types.is_large_binary(t)
                                 else arr.cast(pa.binary()))
            if bad:
                self.notes[name] = f"{bad} binary value(s) not classified"
            _put(self.columns, name, text)
        elif pa.types.is_timestamp(t):
            text, kind = arrowtypes.timestamps(arr, inferred=self.inferred)
            self.typed(name, NativeType("date" if kind is Kind.DATE else str(t), kind, array))
            _put(self.columns, name, text)
        else:
            try:
                text = arr if pa.types.is_string(t) else pc.cast(arr, pa.string())
            except pa.ArrowException:
                self.notes[name] = f"values of type {t} not classified"
                _put(self.columns, name, pa.nulls(len(arr), pa.string()))
                return
            text, bad = _decoded(text)
            if bad:
                self.tally.add(BAD_UTF8, bad)
            self.typed(name, native)
            _put(self.columns, name, text)


def _decoded(arr: pa.Array) -> tuple[pa.Array, int]:
    """Text cut to MAX_VALUE_CHARS, and how many values were not valid UTF-8 (those become null)."""
    try:
        if pa.types.is_string(arr.type):
            arr.validate(full=True)
            return pc.utf8_slice_codeunits(arr, 0, MAX_VALUE_CHARS), 0
    except pa.ArrowInvalid:
        pass
    raw = arr.cast(pa.binary()) if pa.types.is_string(arr.type) else arr
    out: list[str | None] = []
    bad = 0
    for b in raw.to_pylist():
        if b is None:
            out.append(None)
            continue
        try:
            out.append(b.decode("utf-8")[:MAX_VALUE_CHARS])
        except UnicodeDecodeError:
            out.append(None)
            bad += 1
    return pa.array(out, pa.string()), bad


def _batch(record: pa.RecordBatch, tally: Tally, kind: str | None) -> Batch:
    """One record batch of a file of this kind (``csv``, ``jsonl``, ``json``, ``parquet``) as a batch."""
    leaves = _Leaves(tally, inferred=kind in ("json", "jsonl"))
    for name, arr in zip(record.schema.names, record.columns, strict=True):
        leaves.add(label(name), arr)  # label() is idempotent: CSV names pass it twice
    if kind == "csv":  # text by force (module docstring): typed only where every value is an ISO date or timestamp
        leaves.types.clear()
        for name, arr in leaves.columns.items():
            found = arrowtypes.text_kind(arr)
            if found is not None:
                leaves.types[name] = NativeType(f"text ({found.value})", found)
    return Batch(leaves.columns, record.num_rows, leaves.notes, types=leaves.types)


def _merged(batches: list[Batch]) -> Batch:
    """Several batches as one (their columns joined, counts added)."""
    if len(batches) == 1:
        return batches[0]
    parts: dict[str, list[pa.Array]] = {}
    out = Batch({}, 0)
    for b in batches:
        for name, arr in b.columns.items():
            parts.setdefault(name, []).append(arr)
        out.rows += b.rows
        out.notes.update(b.notes)
        for name, native in b.types.items():
            out.types.setdefault(name, native)
        for reason, n in b.skipped.items():
            out.skipped[reason] = out.skipped.get(reason, 0) + n
        out.stopped = out.stopped or b.stopped
    out.columns = {name: pa.concat_arrays(arrs) if len(arrs) > 1 else arrs[0] for name, arrs in parts.items()}
    return out


def _split_deep(block: bytes) -> tuple[bytes, bytes]:
    """The block's lines that cannot nest :data:`MAX_DEPTH` deep (fewer opening brackets), and the
    others, which go the careful way: Arrow's parser recurses, and a 1 MiB line can be 500,000 deep."""
    raw = np.frombuffer(block, np.uint8)
    opens = np.flatnonzero((raw == ord("{")) | (raw == ord("[")))
    if len(opens) < MAX_DEPTH:
        return block, b""
    ends = np.append(np.flatnonzero(raw == ord("\n")), len(raw))  # each line's end, and the unterminated tail
    per_line = np.diff(np.searchsorted(opens, ends), prepend=0)  # opening brackets per line
    if int(per_line.max()) < MAX_DEPTH:
        return block, b""  # the usual case, decided in one vectorised pass
    lines = block.split(b"\n")
    deep = {i for i in np.flatnonzero(per_line >= MAX_DEPTH).tolist() if i < len(lines)}
    keep = b"\n".join(line for i, line in enumerate(lines) if i not in deep)
    return keep, b"\n".join(lines[i] for i in sorted(deep))


_KEY = re.compile(rb'"((?:[^"\\]|\\.){0,200})"\s*:')
KEYS_PROBE = 32 << 10
MANY_KEYS = 1000


def _many_keys(block: bytes) -> bool:
    """Whether the block's documents are keyed by values (a key per customer id): Arrow's reader makes
    a struct field of every distinct key (20,000 keys: two minutes and gigabytes for one block), where
    the line reader folds them into one ``<id>`` segment. Three windows of the block are looked at."""
    if len(block) <= 3 * KEYS_PROBE:
        windows = [block]
    else:
        mid = len(block) // 2
        windows = [block[:KEYS_PROBE], block[mid:mid + KEYS_PROBE], block[-KEYS_PROBE:]]
    keys: set[bytes] = set()
    for w in windows:
        keys.update(_KEY.findall(w))
    return len(keys) > MANY_KEYS


def _json_lines(block: bytes, tally: Tally) -> Batch:
    """The careful way through a block Arrow refused (or that may nest too deep): line by line."""
    docs = [d for d in (document(line, tally) for line in block.split(b"\n")) if d is not None]
    return documents_batch(docs)


@connectors.register("files")
class Files(Connector):
    """CSV, JSON Lines and Parquet files: one file, or every such file under a folder."""

    privileges = "read permission on the files"
    reads_paths = True

    def open(self) -> None:
        self.root = Path(self.store.path or "")
        if not self.root.exists():
            raise StoreUnreachable(self.store.name, f"no file or folder at {self.root}", hint="check the path")
        if self.root.is_file():
            self.root = self.root.resolve()  # the store's own path may be a link: the user named it
        self._reset()

    def _reset(self) -> None:
        self._refused: dict[str, str] = {}  # collection → why it is not read (a link, not a regular file)
        self._layouts: dict[str, tuple[list[str], bool]] = {}
        self._delimiters: dict[str, str] = {}  # a CSV file's delimiter: the store's option, or sniffed
        self._troubled: set[str] = set()  # collections a reader had to skip parts of: no DuckDB count

    def _path(self, collection: CollectionInfo) -> Path:
        return self.root if self.root.is_file() else self.root / collection.name

    def _open(self, collection: CollectionInfo) -> io.BufferedReader:
        """The file, opened without following a link, and only if it is a regular file."""
        try:
            fd = os.open(self._path(collection), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise CollectionError(self.store.name, f"cannot open the file ({type(exc).__name__})",
                                  collection=label(collection.name),
                                  hint="a symbolic link is never followed; check permissions") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise CollectionError(self.store.name, "not a regular file", collection=label(collection.name))
        return os.fdopen(fd, "rb")

    # Where the bytes are: a subclass (s3) overrides these three and lists its own collections.
    def _source(self, collection: CollectionInfo, *, seekable: bool = False) -> Any:
        """What Arrow's readers open: an open file (random access when ``seekable``)."""
        return self._open(collection)

    def _size(self, collection: CollectionInfo) -> int:
        return os.lstat(self._path(collection)).st_size

    def _head(self, collection: CollectionInfo) -> bytes:
        with self._open(collection) as f:
            return f.read(1 << 16)

    def collections(self) -> list[CollectionInfo]:
        if self.root.is_file():
            return [self._info(self.root.name)]
        found: list[str] = []
        unknown = 0

        def unlisted(exc: OSError) -> None:
            where = Path(exc.filename or self.root)
            name = str(where.relative_to(self.root)) if where != self.root else "."
            self._refused[name] = f"cannot list the folder ({type(exc).__name__})"
            found.append(name)

        for folder, dirs, files in os.walk(self.root, followlinks=False, onerror=unlisted):
            for entry in (*dirs, *files):
                path = Path(folder) / entry
                name = str(path.relative_to(self.root))
                try:
                    mode = os.lstat(path).st_mode
                except OSError:
                    continue  # removed while listing
                if stat.S_ISLNK(mode):
                    self._refused[name] = _NOT_FOLLOWED
                    found.append(name)
                elif entry in files and _kind(entry)[0] is not None:
                    if not stat.S_ISREG(mode):
                        self._refused[name] = "not a regular file"
                    found.append(name)
                elif entry in files:
                    unknown += 1
            dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
        if unknown:  # one problem for them all: their names are not listed (a name can be a value)
            name = unique_name(".", dict.fromkeys(found))
            self._refused[name] = f"{unknown:,} file(s) of unknown type not read"
            found.append(name)
        return [CollectionInfo(n, None, Estimate.APPROXIMATE) if n in self._refused else self._info(n)
                for n in sorted(found)]

    def _refuse(self, collection: CollectionInfo) -> None:
        why = getattr(self, "_refused", {}).get(collection.name)
        if why is not None:
            hint = ("scan the link's target as a store of its own if it belongs in the scan"
                    if why == _NOT_FOLLOWED else
                    f"piiguard reads {', '.join(SUFFIXES)} (also compressed as .gz or .zst)"
                    if why.endswith("of unknown type not read") else "check the folder's permissions and file types")
            raise CollectionError(self.store.name, why, collection=label(collection.name), hint=hint)

    def _info(self, name: str) -> CollectionInfo:
        """A collection with its row count (Parquet metadata) or estimate (mean line length)."""
        info = CollectionInfo(name, None, Estimate.APPROXIMATE)
        try:
            kind, compression = _kind(name)
            if kind == "parquet":
                return CollectionInfo(name, pq.ParquetFile(self._source(info, seekable=True)).metadata.num_rows,
                                      Estimate.EXACT)
            if compression is not None:
                return info  # the compressed size says little about the rows
            return CollectionInfo(name, _estimate_lines(self._head(info), self._size(info), name),
                                  Estimate.APPROXIMATE)
        except (pa.ArrowException, OSError, CollectionError):
            return info

    def _layout(self, collection: CollectionInfo) -> tuple[list[str], bool]:
        """A CSV file's column names, and whether its first row holds them (see the module docstring)."""
        if collection.name in self._layouts:
            return self._layouts[collection.name]
        head, whole = self._text_head(collection)
        text = head.decode("utf-8-sig", "replace")
        forced = self.store.options.get("delimiter")
        delimiter = DELIMITER_NAMES.get(forced, forced) if forced else sniff_delimiter(
            text, whole, "\t" if _tsv(collection.name) else ",")
        self._delimiters[collection.name] = delimiter
        rows = _csv_rows(text, whole, delimiter)
        if not rows:
            layout: tuple[list[str], bool] = (["col_1"], False)
        else:
            first = rows[0]
            header = not header_is_data(first, rows[1:HEADER_PROBE_ROWS + 1])
            names: dict[str, None] = {}
            for i, cell in enumerate(first):
                shown = label(cell) if header and cell.strip() else f"col_{i + 1}"
                names[unique_name(shown, names)] = None
            layout = (list(names), header)
        self._layouts[collection.name] = layout
        return layout

    def _delimiter(self, collection: CollectionInfo) -> str:
        if collection.name not in self._delimiters:
            self._layouts.pop(collection.name, None)
            self._layout(collection)
        return self._delimiters[collection.name]

    def _stream(self, collection: CollectionInfo) -> Any:
        """The file's bytes, decompressed when its name says it is compressed."""
        compression = _kind(collection.name)[1]
        source = self._source(collection)
        if compression is None:
            return source
        # an S3 object is already an Arrow stream; a local file is a Python one
        native = source if isinstance(source, pa.NativeFile) else pa.PythonFile(source, mode="r")
        return pa.CompressedInputStream(native, compression)

    def _text_head(self, collection: CollectionInfo) -> tuple[bytes, bool]:
        """The first 64 KiB of the (decompressed) text, and whether that is all of it."""
        if _kind(collection.name)[1] is None:
            head = self._head(collection)
            return head, len(head) >= self._size(collection)
        with contextlib.closing(self._stream(collection)) as stream:
            head = bytes(stream.read(1 << 16))
            return head, not stream.read(1)

    def _records(self, collection: CollectionInfo, block_bytes: int, tally: Tally) -> Iterator[pa.RecordBatch | Batch]:
        """The file's rows: Arrow record batches, or batches the careful reader already made."""
        self._refuse(collection)
        kind = _kind(collection.name)[0]
        started = False
        try:
            if kind == "parquet":
                source: Any = pq.ParquetFile(self._source(collection, seekable=True)).iter_batches(
                    batch_size=max(1, block_bytes // 512))
            elif kind == "jsonl" or (kind == "json" and not self._text_head(collection)[0].lstrip()
                                     .startswith(b"[")):
                source = self._json_blocks(collection, block_bytes, tally)  # a .json of one object per line
            elif kind == "json":
                source = self._json_array(collection, tally)
            elif kind == "csv":
                source = self._csv(collection, block_bytes, tally)
            else:
                raise CollectionError(self.store.name, "unknown file type", collection=label(collection.name),
                                      hint=f"use one of {', '.join(SUFFIXES)}")
            for item in source:
                started = True
                yield item
        except (pa.ArrowException, OSError, csv.Error, EOFError) as exc:
            self._troubled.add(collection.name)
            if not started:
                raise CollectionError(self.store.name, f"cannot read the file ({type(exc).__name__})",
                                      collection=label(collection.name),
                                      hint="check that the file is well-formed " + (kind or "")) from exc
            yield Batch({}, 0, stopped=f"the file is malformed or ends early ({type(exc).__name__})")

    def _csv(self, collection: CollectionInfo, block_bytes: int, tally: Tally) -> Iterator[pa.RecordBatch]:
        names, header = self._layout(collection)
        delimiter = self._delimiter(collection)
        ids = [f"c{i}" for i in range(len(names))]  # Arrow's own names: unique, and never a value

        def skip(_row: Any) -> str:
            tally.add(RAGGED)
            return "skip"

        lines = LineFilter(self._stream(collection), tally, text=True)
        stream = io.BufferedReader(lines, 1 << 20)
        reader = pacsv.open_csv(
            stream, read_options=pacsv.ReadOptions(block_size=block_bytes, column_names=ids),
            parse_options=pacsv.ParseOptions(delimiter=delimiter,
                                             invalid_row_handler=skip, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={i: pa.string() for i in ids}, check_utf8=False,
                                                 strings_can_be_null=True))
        first = header
        last: pa.RecordBatch | None = None
        for record in reader:
            if first:  # the header is the first *parsed* row (skip_rows counts lines, and a name may hold one)
                record, first = record.slice(1), False
            if record.num_rows:
                last = record
            yield record.rename_columns(names)
        if lines.quotes % 2 and last is not None and _holds_newline(last.slice(last.num_rows - 1)):
            # An odd number of quotes and a last value holding line ends: a quote was never closed, and
            # Arrow read every line after it into that one value.
            tally.add(UNCLOSED, max(1, lines.lines_after_quote))

    def _json_blocks(self, collection: CollectionInfo, block_bytes: int, tally: Tally
                     ) -> Iterator[pa.RecordBatch | Batch]:
        """Arrow reads each block of whole lines; a block it refuses (a bad line, a type that changes
        within it) or that may nest too deep is read line by line, the bad lines counted."""
        for block in line_blocks(LineFilter(self._stream(collection), tally), block_bytes):
            block, careful = _split_deep(block)
            if careful:
                yield _json_lines(careful, tally)
            if not block.strip():
                continue
            if _many_keys(block):
                yield _json_lines(block, tally)  # keys that are ids: Arrow would build a struct field per key
                continue
            try:
                table = pajson.read_json(pa.BufferReader(block),
                                         read_options=pajson.ReadOptions(block_size=len(block) + 1))
            except pa.ArrowInvalid:
                yield _json_lines(block, tally)
                continue
            if table.num_rows != block.count(b"\n") + (not block.endswith(b"\n")) and \
                    table.num_rows != sum(1 for line in block.split(b"\n") if line.strip()):
                yield _json_lines(block, tally)  # Arrow passed over a line (bytes that are not JSON): count it
                continue
            yield from table.to_batches()

    def _json_array(self, collection: CollectionInfo, tally: Tally) -> Iterator[Batch]:
        """A .json file holding one array of objects: parsed whole (it has no lines to stream by)."""
        docs = self._array_documents(collection, tally)
        for start in range(0, len(docs), 10_000):
            yield documents_batch(docs[start:start + 10_000])

    def _array_documents(self, collection: CollectionInfo, tally: Tally) -> list[dict[str, Any]]:
        with contextlib.closing(self._stream(collection)) as stream:
            data = bytes(stream.read(MAX_JSON_ARRAY_BYTES + 1))
        if len(data) > MAX_JSON_ARRAY_BYTES:
            raise CollectionError(self.store.name, f"a JSON array larger than {MAX_JSON_ARRAY_BYTES >> 20} MiB",
                                  collection=label(collection.name), hint="export it as JSON Lines (.jsonl)")
        try:
            items = json.loads(data)
        except RecursionError:
            tally.add(DEEP_LINES)
            return []
        except ValueError:  # not valid JSON (UnicodeDecodeError is one)
            tally.add("file(s) that are not valid JSON")
            return []
        docs = [d for d in items if isinstance(d, dict)] if isinstance(items, list) else []
        if len(docs) < (len(items) if isinstance(items, list) else 1):
            tally.add("array item(s) that are not JSON objects", (len(items) if isinstance(items, list) else 1)
                      - len(docs))
        return docs

    def _items(self, collection: CollectionInfo, block_bytes: int) -> Iterator[Batch]:
        """Batches of the file's rows, each carrying what was skipped while reading it."""
        tally = Tally()
        kind = _kind(collection.name)[0]
        for item in self._records(collection, block_bytes, tally):
            batch = _batch(item, tally, kind) if isinstance(item, pa.RecordBatch) else item
            for reason, n in tally.take().items():
                batch.skipped[reason] = batch.skipped.get(reason, 0) + n
            if batch.skipped:
                self._troubled.add(collection.name)
            yield batch
        leftover = tally.take()  # skipped after the last batch (a long last line)
        if leftover:
            self._troubled.add(collection.name)
            yield Batch({}, 0, skipped=leftover)

    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        self._refuse(collection)
        if self._size(collection) == 0:
            return Batch({}, 0)  # an empty export holds nothing (Arrow would call it malformed)
        taken: list[Batch] = []
        rows = 0
        tally = Tally()
        for item in self._records(collection, SAMPLE_BYTES, tally):
            if isinstance(item, pa.RecordBatch):
                item = _batch(item.slice(0, n - rows), tally, _kind(collection.name)[0])
            item.skipped.update({r: item.skipped.get(r, 0) + c for r, c in tally.take().items()})
            taken.append(item)
            rows += item.rows
            if rows >= n:
                break
        leftover = tally.take()
        if leftover:
            taken.append(Batch({}, 0, skipped=leftover))
        if any(b.skipped or b.stopped for b in taken):
            self._troubled.add(collection.name)
        return _merged(taken) if taken else Batch({}, 0)

    def _version(self, collection: CollectionInfo) -> tuple[int, int] | None:
        """Size and modification time, to tell whether the file changed while it was read."""
        try:
            st = os.lstat(self._path(collection))
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def batches(self, collection: CollectionInfo, batch_rows: int) -> Iterator[Batch]:
        self._refuse(collection)
        if self._size(collection) == 0:
            return
        before = self._version(collection)
        pending: list[Batch] = []
        for batch in self._items(collection, READ_BYTES):
            pending.append(batch)
            if sum(a.nbytes for b in pending for a in b.columns.values()) >= BATCH_BYTES:
                yield _merged(pending)
                pending = []
        if self._version(collection) != before:  # truncated, appended to or rewritten under the reader
            self._troubled.add(collection.name)
            pending.append(Batch({}, 0, stopped=CHANGED))
        if pending:
            yield _merged(pending)

    # The whole-collection reader (scope, copy): every record, whole values, the scan's field paths.
    def _array_file(self, collection: CollectionInfo) -> bool:
        return _kind(collection.name)[0] == "json" and self._text_head(collection)[0].lstrip().startswith(b"[")

    def _documents(self, collection: CollectionInfo, tally: Tally) -> Generator[list[dict[str, Any]], None, None]:
        """A JSON Lines file (or a .json of one object per line), or a JSON array, as lists of documents."""
        if self._array_file(collection):
            docs = self._array_documents(collection, tally)
            for start in range(0, len(docs), DOC_ROWS):
                yield docs[start:start + DOC_ROWS]
        else:
            yield from line_documents(self._stream(collection), tally)

    def columns(self, collection: CollectionInfo) -> list[str]:
        """CSV: the columns as the scan names them. Parquet: the schema's leaf paths. JSON: the paths
        the first documents hold (as the scan names them: ``profile.email``, ``devices[].serial``)."""
        self._refuse(collection)
        kind = _kind(collection.name)[0]
        try:
            if kind == "csv":
                return list(self._layout(collection)[0])
            if kind == "parquet":
                return schema_paths(pq.ParquetFile(self._source(collection, seekable=True)).schema_arrow)
            if self._size(collection) == 0:
                return []
            return document_paths(self._documents(collection, Tally()))
        except (pa.ArrowException, OSError, csv.Error, EOFError) as exc:
            raise CollectionError(self.store.name, f"cannot read the file ({type(exc).__name__})",
                                  collection=label(collection.name),
                                  hint="check that the file is well-formed " + (kind or "")) from exc

    def read(self, collection: CollectionInfo, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Every record at these field paths. Streams (bounded memory) except a JSON array, which is
        parsed whole as the scan parses it. **Nothing is skipped silently**: when a record could not be
        read whole (a ragged CSV row, a JSON line that does not parse or is longer than 16 MiB, bytes
        that are not UTF-8) or the file changed under the reader, the read fails after the last batch
        with the counts by reason, never a value: a scope or copy without those records would be wrong."""
        yield from self._read(collection, columns, batch_rows, None)

    def read_lenient(self, collection: CollectionInfo, columns: Sequence[str], batch_rows: int,
                     skipped: dict[str, int]) -> Iterator[pa.RecordBatch]:
        """:meth:`read`, except that the records it could not read whole are counted in ``skipped`` (by
        reason) and the read goes on: for a scope, whose limits say so; a copy keeps refusing. A file that
        changed under the reader still fails."""
        yield from self._read(collection, columns, batch_rows, skipped)

    def _read(self, collection: CollectionInfo, columns: Sequence[str], batch_rows: int,
              skipped: dict[str, int] | None) -> Iterator[pa.RecordBatch]:
        self._refuse(collection)
        if self._size(collection) == 0:
            return
        before = self._version(collection)
        tally = Tally()
        kind = _kind(collection.name)[0]
        try:
            if kind == "csv":
                names, _ = self._layout(collection)
                yield from table_batches(self._csv(collection, READ_BYTES, tally), names, columns, batch_rows)
            elif kind == "parquet":
                yield from parquet_batches(self._source(collection, seekable=True), columns, batch_rows)
            else:
                paths = Paths(columns)
                for docs in self._documents(collection, tally):
                    for start in range(0, len(docs), batch_rows):
                        yield paths.batch(docs[start:start + batch_rows])
        except (pa.ArrowException, OSError, csv.Error, EOFError) as exc:
            raise CollectionError(self.store.name, f"cannot read the file whole ({type(exc).__name__})",
                                  collection=label(collection.name),
                                  hint="check that the file is well-formed " + (kind or "")) from exc
        left = tally.take()
        if skipped is not None:
            for reason, n in left.items():
                skipped[reason] = skipped.get(reason, 0) + n
            left = {}
        if self._version(collection) != before:
            left[CHANGED] = 1
        if left:
            what = "; ".join(reason if reason == CHANGED else f"{n:,} {reason}" for reason, n in sorted(left.items()))
            raise CollectionError(self.store.name, f"the file could not be read whole: {what}",
                                  collection=label(collection.name),
                                  hint="fix or remove those records (`piiguard scan` counts them too), then run "
                                       "it again: a scope or copy without them would be incomplete")

    def distinct(self, collection: CollectionInfo, field: str) -> tuple[int, Estimate] | None:
        path = self._path(collection)
        kind, compression = _kind(path.name)
        if kind not in ("csv", "jsonl", "parquet") or compression is not None \
                or "." in field or "[" in field or collection.name in self._troubled \
                or collection.name in self._refused or path.is_symlink():
            return None  # a file with skipped parts is counted from what was read
        source = {"csv": "read_csv(?, all_varchar=true)", "jsonl": "read_json_auto(?)",
                  "parquet": "read_parquet(?)"}[kind]
        if kind == "csv":
            names, header = self._layout(collection)
            if not header or field not in names:
                return None
            ids = ", ".join(f"'c{i}'" for i in range(len(names)))  # ours, as for Arrow: never a value
            field = f"c{names.index(field)}"
            delim = self._delimiter(collection).replace("'", "''")
            source = f"read_csv(?, all_varchar=true, header=false, skip=1, names=[{ids}], delim='{delim}')"
        exact = (collection.rows_estimate or 0) <= EXACT_DISTINCT_MAX_ROWS
        agg = "count(DISTINCT {})" if exact else "approx_count_distinct({})"
        col = '"' + field.replace('"', '""') + '"'
        try:
            with duckdb.connect(config={"memory_limit": DUCKDB_MEMORY, "threads": 2}) as db:
                row = db.execute(f"SELECT {agg.format(col)} FROM {source}", [str(path)]).fetchone()
        except duckdb.Error:
            return None
        return (int(row[0]), Estimate.EXACT if exact else Estimate.APPROXIMATE) if row else None


DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
SNIFF_ROWS = 50


def _csv_rows(text: str, whole: bool, delimiter: str, limit: int | None = None) -> list[list[str]]:
    """The non-empty rows of a CSV head (quote-aware); the last one dropped when the head may end inside it."""
    rows: list[list[str]] = []
    try:
        for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if r:
                rows.append(r)
            if limit is not None and len(rows) > limit:
                break
    except csv.Error:
        pass
    if (not whole or (limit is not None and len(rows) > limit)) and len(rows) > 1:
        rows = rows[:-1]  # the probe may end inside the last row
    return rows


def sniff_delimiter(text: str, whole: bool, default: str) -> str:
    """The delimiter of a CSV head among ``,`` ``;`` tab ``|``: the one that splits the header into
    several fields and the most of the first rows into as many (quoted fields are read as quoted, so a
    ``;`` inside ``"a;b"`` counts for nothing). On a tie, or when none splits the header, ``default``
    (tab for a ``.tsv``, else ``,``)."""
    best, best_score = default, (0.0, 0)
    for d in (default, *[c for c in DELIMITERS if c != default]):
        rows = _csv_rows(text, whole, d, SNIFF_ROWS)
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(len(r) == width for r in rows) / len(rows), width)
        if score > best_score:  # the most consistent, then the widest; the default first on a tie
            best, best_score = d, score
    return best


def _tsv(name: str) -> bool:
    path = PurePath(name)
    return (path.with_suffix("") if path.suffix.lower() in COMPRESSION else path).suffix.lower() == ".tsv"


def _estimate_lines(head: bytes, size: int, name: str) -> int | None:
    """Rows ≈ file size / mean line length of the first 64 KiB (minus a header line for CSV)."""
    lines = head.count(b"\n")
    if size == 0:
        return 0
    if lines == 0:
        return 1
    if len(head) == size:
        header = 1 if PurePath(name).suffix.lower() in (".csv", ".tsv") else 0
        return max(0, lines - header + (0 if head.endswith(b"\n") else 1))
    return int(size / (len(head) / lines))
