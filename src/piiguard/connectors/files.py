"""Data exports on disk: CSV, JSON Lines and Parquet, read with PyArrow (no hand-written parser).

The store's path is one file or a folder; a folder is walked recursively and every file with a
known suffix is a collection (named by its path relative to the folder). Every value is read as
text (``column_types`` forced to string) so that a column whose type drifts halfway through a large
export cannot abort the read. Nested JSON objects become dotted field paths, list items
``field[]``. CSV rows with the wrong number of fields are skipped and counted, never echoed.

Sampling reads the first rows of the file (exports are rarely sorted by anything PII-related; this
is the cheap read). Distinct counts for the subject estimate come from DuckDB (``approx_count_distinct``
for big files).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from piiguard.connectors.base import MAX_VALUE_CHARS, Batch, Connector, connectors
from piiguard.errors import CollectionError, StoreUnreachable
from piiguard.model import CollectionInfo, Estimate
from piiguard.registry import driver

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq
else:  # imported on first use: starting the CLI must not load every engine's driver
    duckdb = driver("duckdb")
    pa = driver("pyarrow")
    pc = driver("pyarrow.compute")
    pacsv = driver("pyarrow.csv")
    pajson = driver("pyarrow.json")
    pq = driver("pyarrow.parquet")

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
# Arrow's streaming readers keep a few dozen blocks read ahead, so the block is small (memory stays about
# 30 × READ_BYTES whatever the file's size); blocks are then joined into batches of BATCH_BYTES, because
# fewer, larger batches keep the classifier's per-batch overheads low.
READ_BYTES = 2 << 20
BATCH_BYTES = 16 << 20
EXACT_DISTINCT_MAX_ROWS = 100_000  # above: HyperLogLog (approx_count_distinct), memory independent of size
DUCKDB_MEMORY = "256MB"


def _leaves(columns: dict[str, pa.Array], name: str, arr: pa.Array) -> None:
    """Flatten structs and lists into string leaves keyed by field path."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_struct(arr.type):
        for i in range(arr.type.num_fields):
            _leaves(columns, f"{name}.{arr.type.field(i).name}", arr.field(i))
    elif pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        _leaves(columns, f"{name}[]", pc.list_flatten(arr))
    elif pa.types.is_null(arr.type):
        columns[name] = pa.nulls(len(arr), pa.string())
    elif pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        columns[name] = _repair_utf8(arr)
    else:
        text = arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())
        columns[name] = _repair_utf8(text)


def _repair_utf8(arr: pa.Array) -> pa.Array:
    """Strings that are not valid UTF-8 (``check_utf8=False``) are decoded with replacement."""
    try:
        if pa.types.is_string(arr.type):
            arr.validate(full=True)
            return pc.utf8_slice_codeunits(arr, 0, MAX_VALUE_CHARS)
    except pa.ArrowInvalid:
        pass
    raw = arr.cast(pa.binary()) if pa.types.is_string(arr.type) else arr
    return pa.array([None if b is None else b.decode("utf-8", "replace")[:MAX_VALUE_CHARS]
                     for b in raw.to_pylist()], pa.string())


def _batch(record: pa.RecordBatch, notes: dict[str, str] | None = None) -> Batch:
    columns: dict[str, pa.Array] = {}
    for name, arr in zip(record.schema.names, record.columns, strict=True):
        _leaves(columns, name, arr)
    return Batch(columns, record.num_rows, dict(notes or {}))


@connectors.register("files")
class Files(Connector):
    """CSV, JSON Lines and Parquet files: one file, or every such file under a folder."""

    privileges = "read permission on the files"

    def open(self) -> None:
        self.root = Path(self.store.path or "")
        if not self.root.exists():
            raise StoreUnreachable(self.store.name, f"no file or folder at {self.root}", hint="check the path")

    def _path(self, collection: CollectionInfo) -> Path:
        return self.root if self.root.is_file() else self.root / collection.name

    # Where the bytes are: a subclass (s3) overrides these three and lists its own collections.
    def _source(self, collection: CollectionInfo, *, seekable: bool = False) -> Any:
        """What Arrow's readers open: a path, or an open file (random access when ``seekable``)."""
        return self._path(collection)

    def _size(self, collection: CollectionInfo) -> int:
        return self._path(collection).stat().st_size

    def _head(self, collection: CollectionInfo) -> bytes:
        with self._path(collection).open("rb") as f:
            return f.read(1 << 16)

    def collections(self) -> list[CollectionInfo]:
        paths = [self.root] if self.root.is_file() else sorted(
            p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        return [self._info(p.name if p == self.root else str(p.relative_to(self.root))) for p in paths]

    def _info(self, name: str) -> CollectionInfo:
        """A collection with its row count (Parquet metadata) or estimate (mean line length)."""
        info = CollectionInfo(name, None, Estimate.APPROXIMATE)
        try:
            if SUFFIXES.get(PurePath(name).suffix.lower()) == "parquet":
                return CollectionInfo(name, pq.ParquetFile(self._source(info, seekable=True)).metadata.num_rows,
                                      Estimate.EXACT)
            return CollectionInfo(name, _estimate_lines(self._head(info), self._size(info), name),
                                  Estimate.APPROXIMATE)
        except (pa.ArrowException, OSError):
            return info

    def _reader(self, collection: CollectionInfo, block_bytes: int) -> tuple[Iterator[pa.RecordBatch], list[int]]:
        suffix = PurePath(collection.name).suffix.lower()
        kind = SUFFIXES.get(suffix)
        ragged = [0]
        try:
            if kind == "parquet":
                return pq.ParquetFile(self._source(collection, seekable=True)).iter_batches(
                    batch_size=max(1, block_bytes // 512)), ragged
            if kind == "jsonl":
                return iter(pajson.open_json(self._source(collection),
                                             read_options=pajson.ReadOptions(block_size=block_bytes))), ragged
            if kind == "csv":
                delimiter = "\t" if suffix == ".tsv" else ","

                def skip(_row: Any) -> str:
                    ragged[0] += 1
                    return "skip"

                header = pacsv.open_csv(self._source(collection), read_options=pacsv.ReadOptions(block_size=1 << 16),
                                        parse_options=pacsv.ParseOptions(delimiter=delimiter,
                                                                         invalid_row_handler=lambda _r: "skip"),
                                        convert_options=pacsv.ConvertOptions(check_utf8=False)).schema.names
                reader = pacsv.open_csv(
                    self._source(collection), read_options=pacsv.ReadOptions(block_size=block_bytes),
                    parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=skip,
                                                     newlines_in_values=True),
                    convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                         check_utf8=False, strings_can_be_null=True))
                return iter(reader), ragged
        except (pa.ArrowException, OSError) as exc:
            raise CollectionError(self.store.name, f"cannot read the file ({type(exc).__name__})",
                                  collection=collection.name,
                                  hint="check that the file is well-formed " + (kind or "")) from exc
        raise CollectionError(self.store.name, "unknown file type", collection=collection.name,
                              hint=f"use one of {', '.join(SUFFIXES)}")

    def _notes(self, ragged: list[int]) -> dict[str, str]:
        return {"*": f"{ragged[0]} malformed row(s) skipped"} if ragged[0] else {}

    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        if self._size(collection) == 0:
            return Batch({}, 0)  # an empty export holds nothing (Arrow would call it malformed)
        reader, ragged = self._reader(collection, 1 << 20)
        taken: list[pa.RecordBatch] = []
        rows = 0
        try:
            for record in reader:
                taken.append(record)
                rows += record.num_rows
                if rows >= n:
                    break
        except (pa.ArrowException, OSError) as exc:
            if not taken:
                raise CollectionError(self.store.name, f"cannot parse the file ({type(exc).__name__})",
                                      collection=collection.name) from exc
        if not taken:
            return Batch({}, 0)
        table = pa.Table.from_batches(taken).slice(0, n).combine_chunks()
        return _batch(table.to_batches()[0] if table.num_rows else taken[0].slice(0, 0), self._notes(ragged))

    def batches(self, collection: CollectionInfo, batch_rows: int) -> Iterator[Batch]:
        if self._size(collection) == 0:
            return
        reader, ragged = self._reader(collection, READ_BYTES)
        pending: list[pa.RecordBatch] = []
        try:
            for record in reader:
                pending.append(record)
                if sum(r.nbytes for r in pending) >= BATCH_BYTES:
                    yield _batch(_joined(pending), self._notes(ragged))
                    pending = []
            if pending:
                yield _batch(_joined(pending), self._notes(ragged))
        except (pa.ArrowException, OSError) as exc:
            raise CollectionError(self.store.name, f"cannot parse the file ({type(exc).__name__})",
                                  collection=collection.name, hint="the rows read before it were classified"
                                  ) from exc

    def distinct(self, collection: CollectionInfo, field: str) -> tuple[int, Estimate] | None:
        path = self._path(collection)
        kind = SUFFIXES.get(path.suffix.lower())
        if kind is None or "." in field or "[" in field:
            return None
        source = {"csv": "read_csv(?, all_varchar=true)", "jsonl": "read_json_auto(?)",
                  "parquet": "read_parquet(?)"}[kind]
        exact = (collection.rows_estimate or 0) <= EXACT_DISTINCT_MAX_ROWS
        agg = "count(DISTINCT {})" if exact else "approx_count_distinct({})"
        col = '"' + field.replace('"', '""') + '"'
        try:
            with duckdb.connect(config={"memory_limit": DUCKDB_MEMORY, "threads": 2}) as db:
                row = db.execute(f"SELECT {agg.format(col)} FROM {source}", [str(path)]).fetchone()
        except duckdb.Error:
            return None
        return (int(row[0]), Estimate.EXACT if exact else Estimate.APPROXIMATE) if row else None


def _joined(records: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(records) == 1:
        return records[0]
    return pa.Table.from_batches(records).combine_chunks().to_batches()[0]


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
