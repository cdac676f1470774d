"""What every connector does, and the helpers that turn driver rows into string columns.

A connector reads; it never writes (containment and copies come later, as planned steps). Every
value it hands on is a string in an Arrow array keyed by *field path*: a column name, or for JSON
columns and documents a dotted path (``profile.photo_url``; list items as ``devices[].serial``).
Values are cut to :data:`MAX_VALUE_CHARS` where the engine allows it (in SQL, so a 100 MB value is
never transferred), because classification needs only a value's shape.

Every name read from the store (column, key, struct field) passes :func:`piiguard.connectors.labels.label`
before it becomes a field path, so a key that is a customer's e-mail is the field ``<email>``. Documents
are walked to :data:`MAX_DEPTH` levels; what lies deeper, and whatever a reader had to leave out, is
counted in :attr:`Batch.skipped` — the scanner turns it into a problem on the collection.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from piiguard.classify.types import Kind, NativeType
from piiguard.connectors.labels import label
from piiguard.errors import UsageError
from piiguard.model import CollectionInfo, Estimate, Store
from piiguard.registry import Registry, driver

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # imported on first use: starting the CLI must not load every engine's driver
    np = driver("numpy")
    pa = driver("pyarrow")
    pc = driver("pyarrow.compute")

MAX_VALUE_CHARS = 4096
JSON_PROBE = 20  # non-null values looked at to decide whether a text column holds JSON documents
MAX_DEPTH = 64  # levels of nesting walked in a document; deeper parts are counted, not read
DEEP = f"value(s) nested deeper than {MAX_DEPTH} levels"
UNENCODABLE = "value(s) not encodable as UTF-8 (lone surrogates)"
ITEMS = "\x1f"  # joins an array's items in SQL (ASCII unit separator: no e-mail, name or address holds it)


def text_array(values: Sequence[str | None], skipped: dict[str, int]) -> pa.Array:
    """Strings as an Arrow array. A string Arrow cannot encode (a lone surrogate from a JSON
    ``\\ud800`` escape, a driver's ``surrogateescape``) is left out and counted in ``skipped``: one such
    value must never stop the scan."""
    try:
        return pa.array(values, pa.string())
    except UnicodeEncodeError:
        pass
    fixed: list[str | None] = []
    for v in values:
        if v is not None:
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                v = None
                skipped[UNENCODABLE] = skipped.get(UNENCODABLE, 0) + 1
        fixed.append(v)
    return pa.array(fixed, pa.string())


@dataclass
class Batch:
    """Rows of one collection as string columns.

    ``types`` gives each field's native type where the engine reports one (its values are already
    rendered canonically for that type). ``notes`` say what was not classified, per field, by design
    (a binary column). ``skipped`` counts
    what a reader had to leave out of the data (``{"row(s) with the wrong number of fields": 3}``) and
    ``stopped`` says why a reader could not go on: both make a problem on the collection. Counts and
    reasons only, never a value.
    """

    columns: dict[str, pa.Array]
    rows: int
    notes: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None
    #: field path → the engine's own type (piiguard.classify.types); absent where the engine has none
    types: dict[str, NativeType] = field(default_factory=dict)


class Connector(ABC):
    """Reads one store. Use as a context manager; ``open`` raises a :class:`StoreError` subclass."""

    #: Least privileges it needs, printed by ``piiguard show connector``.
    privileges: str = ""
    #: Whether :meth:`read` takes any field path a scan names (``profile.email``, ``devices[].serial``:
    #: documents, JSON lines, Parquet structs), not only top-level :meth:`columns`.
    reads_paths: bool = False

    def __init__(self, store: Store, *, timeout: float = 10.0) -> None:
        self.store = store
        self.timeout = timeout

    def __enter__(self) -> Connector:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def open(self) -> None:
        """Connect (read-only where the engine allows it)."""

    def close(self) -> None:  # noqa: B027 — optional for connectors holding no resources
        """Release the connection."""

    @abstractmethod
    def collections(self) -> list[CollectionInfo]:
        """Tables, files or indices with a cheap row estimate."""

    @abstractmethod
    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        """About ``n`` rows, cheaply (never a sort of the whole collection)."""

    @abstractmethod
    def batches(self, collection: CollectionInfo, batch_rows: int) -> Iterator[Batch]:
        """Every row, streamed with bounded memory."""

    def distinct(self, collection: CollectionInfo, field: str) -> tuple[int, Estimate] | None:
        """Distinct non-null values of one field, if the engine can count them cheaply."""
        return None

    # The one whole-collection reader: scope, copy and anything else that reads every record use it.
    # Whole values (not cut to MAX_VALUE_CHARS), as text, NULLs kept.
    def columns(self, collection: CollectionInfo) -> list[str]:
        """The collection's fields a copy takes, in order: top-level columns, or for documents the
        field paths a sample finds (as :func:`flatten` names them)."""
        raise self._cannot_read()

    def read(self, collection: CollectionInfo, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Every record's values at these field paths, streamed with bounded memory, one
        ``pa.RecordBatch`` of at most ``batch_rows`` records at a time, columns named and ordered as
        asked. A path without ``[]`` is a ``string`` column; a path through arrays is a
        ``list<string>`` column (see :func:`extract` for how its items line up)."""
        raise self._cannot_read()

    @classmethod
    def reads_whole(cls) -> bool:
        """Whether this connector has the whole-collection reader (it can be scoped and copied from)."""
        return cls.read is not Connector.read

    def _cannot_read(self) -> UsageError:
        from piiguard import plugins  # here: plugins imports the connectors, this module among them

        plugins.load()  # every connector, not only those imported so far (none, through the Python API)
        able = ", ".join(sorted(n for n in connectors.names() if connectors.get(n).reads_whole()))
        return UsageError(f"engine {self.store.engine} cannot read a whole collection yet (no scope, no copy "
                          "from it)", hint=f"engines read whole: {able}")


connectors: Registry[type[Connector]] = Registry("connector", Connector)


def stringify(value: Any) -> str | None:
    """One scalar as text, in the form a person would read it in an export."""
    if value is None:
        return None
    if isinstance(value, str):
        return value[:MAX_VALUE_CHARS]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, int | float | Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("binary")
    return str(value)[:MAX_VALUE_CHARS]


def flatten(value: Any, prefix: str, out: dict[str, list[str | None]], skipped: dict[str, int] | None = None,
            depth: int = 0) -> None:
    """Walk a JSON document, appending each scalar to ``out[path]``; keys pass :func:`label`.

    Containers deeper than :data:`MAX_DEPTH` are not walked (no RecursionError on a hostile
    document); each is counted in ``skipped``.
    """
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        if skipped is not None:
            skipped[DEEP] = skipped.get(DEEP, 0) + 1
        return
    if isinstance(value, dict):
        for key, item in value.items():
            name = label(str(key))
            flatten(item, f"{prefix}.{name}" if prefix else name, out, skipped, depth + 1)
    elif isinstance(value, list):
        for item in value:
            flatten(item, f"{prefix}[]", out, skipped, depth + 1)
    elif value is not None:
        try:
            out.setdefault(prefix, []).append(stringify(value))
        except TypeError:
            out.setdefault(prefix, []).append(None)  # binary inside a document: not classified


def _looks_like_json(values: Sequence[Any]) -> bool:
    probe = [v for v in values[: JSON_PROBE * 5] if v is not None][:JSON_PROBE]
    if not probe or not all(isinstance(v, str) and v[:1] in "{[" for v in probe):
        return False
    try:
        for v in probe:
            json.loads(v)
    except ValueError:
        return False
    return True


def build_batch(names: Sequence[str], columns: Iterable[Sequence[Any]], rows: int,
                json_fields: frozenset[str] = frozenset(),
                types: Mapping[str, NativeType] | None = None) -> Batch:
    """Driver values (one sequence per column) → a :class:`Batch` of string arrays.

    Dicts and lists, columns declared JSON, and text columns whose values are JSON documents are
    flattened into field paths. Binary values are not classified: valid UTF-8 is read as text,
    anything else is skipped and noted. ``types`` (by raw column name) become :attr:`Batch.types`; an
    array column's text is its items joined by :data:`ITEMS` (joined in SQL), split here into one value
    per item, so an array of e-mails is e-mails, not prose.
    """
    out: dict[str, pa.Array] = {}
    notes: dict[str, str] = {}
    left_out: dict[str, int] = {}
    found: dict[str, NativeType] = {}
    for raw_name, values in zip(names, columns, strict=True):
        name = unique_name(label(raw_name), out)
        native = (types or {}).get(raw_name)
        if native is not None and native.kind is not Kind.JSON:
            found[name] = native
        if native is not None and native.array:
            out[name] = pc.list_flatten(pc.split_pattern(text_array(values, left_out), ITEMS))
            continue
        first = next((v for v in values if v is not None), None)
        if isinstance(first, dict | list) or raw_name in json_fields or _looks_like_json(values):
            paths: dict[str, list[str | None]] = {}
            for v in values:
                try:
                    doc = json.loads(v) if isinstance(v, str | bytes) else v
                except RecursionError:  # the json module recurses: a hostile depth is refused, counted
                    left_out[DEEP] = left_out.get(DEEP, 0) + 1
                    continue
                except ValueError:
                    doc = v  # one malformed document among JSON ones: classify it as text
                flatten(doc, name, paths, left_out)
            out.update({p: text_array(vs, left_out) for p, vs in paths.items()})
            continue
        if isinstance(first, str) or first is None:
            try:
                out[name] = text_array(values, left_out)
                continue
            except (pa.ArrowException, TypeError):
                pass  # mixed types: take the general path below
        texts: list[str | None] = []
        skipped = 0
        for v in values:
            try:
                texts.append(stringify(v))
            except TypeError:
                try:
                    texts.append(bytes(v).decode("utf-8")[:MAX_VALUE_CHARS])
                except UnicodeDecodeError:
                    texts.append(None)
                    skipped += 1
        if skipped:
            notes[name] = f"{skipped} binary value(s) not classified"
        out[name] = text_array(texts, left_out)
    return Batch(out, rows, notes, left_out, types=found)


def unique_name(name: str, taken: Mapping[str, object]) -> str:
    """``name``, or ``name~2``, ``name~3`` … when two columns got the same label (two ``<email>``)."""
    if name not in taken:
        return name
    n = 2
    while f"{name}~{n}" in taken:
        n += 1
    return f"{name}~{n}"


def shown_collections(infos: Iterable[CollectionInfo]) -> dict[str, CollectionInfo]:
    """A store's collections by the name shown and stored for each (its :func:`label`), made distinct:
    two files whose names hold different e-mails are ``<email>.jsonl`` and ``<email>.jsonl~2``, in the
    order of their raw names, so every scan and every later reader gives each the same name. The
    connector's order is kept."""
    listed = list(infos)
    named: dict[str, CollectionInfo] = {}
    for info in sorted(listed, key=lambda i: i.name):
        named[unique_name(label(info.name), named)] = info
    by_id = {id(info): shown for shown, info in named.items()}
    return {by_id[id(info)]: info for info in listed}


def documents_batch(docs: Sequence[Mapping[str, Any]]) -> Batch:
    """Documents (OpenSearch sources, MongoDB documents) → one string array per field path."""
    paths: dict[str, list[str | None]] = {}
    skipped: dict[str, int] = {}
    for doc in docs:
        flatten(doc, "", paths, skipped)
    return Batch({p: text_array(vs, skipped) for p, vs in paths.items()}, len(docs), skipped=skipped)


def record_batch(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    """Driver rows → a record batch of whole values as text (a copy's input; binary as UTF-8 or NULL)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for values in columns:
        texts: list[str | None] = []
        for v in values:
            if isinstance(v, bytes | bytearray | memoryview):
                try:
                    texts.append(bytes(v).decode("utf-8"))
                except UnicodeDecodeError:
                    texts.append(None)
            elif isinstance(v, dict | list):
                texts.append(json.dumps(v, default=str))
            else:
                texts.append(None if v is None else v if isinstance(v, str) else stringify_whole(v))
        arrays.append(pa.array(texts, pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=list(names))


def stringify_whole(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime | date | time) else str(value)


def document_batches(docs: Iterable[Mapping[str, Any]], batch_rows: int) -> Iterator[Batch]:
    """A stream of documents as batches of ``batch_rows`` (the last one shorter)."""
    chunk: list[Mapping[str, Any]] = []
    for doc in docs:
        chunk.append(doc)
        if len(chunk) >= batch_rows:
            yield documents_batch(chunk)
            chunk = []
    if chunk:
        yield documents_batch(chunk)


def batch_from_rows(names: Sequence[str], rows: Sequence[Sequence[Any]],
                    json_fields: frozenset[str] = frozenset(),
                    types: Mapping[str, NativeType] | None = None) -> Batch:
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return build_batch(names, cols, len(rows), json_fields, types)


def _whole(value: Any) -> str | None:
    """One scalar as whole text (a reader's output; binary as UTF-8 or None)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return stringify_whole(value)


def _array_prefix(path: str) -> str:
    return path[:path.index("[]") + 2]


def extract(doc: Any, wanted: Collection[str]) -> dict[str, Any]:
    """One document's values at the field paths ``wanted``, the paths named as :func:`flatten` names
    them (keys through :func:`label`, list items as ``[]``).

    - A path without ``[]``: the first scalar found there, as text, or None.
    - A path through one array (``members[].email``): a list with one item per element of that array,
      None where an element lacks the field — so ``members[].email`` and ``members[].phone`` line up
      item by item, and a reader can tell which member held which.
    - A path through nested arrays (``a[].b[].c``): every scalar found there, in document order.

    A path absent from the document is None (not an empty list). Walks at most :data:`MAX_DEPTH`
    levels, like :func:`flatten`.
    """
    want = set(wanted)
    first: dict[str, str] = {}
    slots: dict[str, dict[int, str | None]] = {}
    many: dict[str, list[str | None]] = {}
    lengths: dict[str, int] = {}
    shapes: dict[str, tuple[int, str]] = {}  # path -> arrays it passed through, and the first one's path

    def walk(value: Any, prefix: str, slot: int | None, depth: int, arrays: int = 0, array: str = "") -> None:
        if isinstance(value, dict | list) and depth >= MAX_DEPTH:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                name = label(str(key))
                walk(item, f"{prefix}.{name}" if prefix else name, slot, depth + 1, arrays, array)
        elif isinstance(value, list):
            path = f"{prefix}[]"
            if slot is None:
                lengths[path] = max(lengths.get(path, 0), len(value))
                for i, item in enumerate(value):
                    walk(item, path, i, depth + 1, arrays + 1, path)
            else:
                for item in value:
                    walk(item, path, slot, depth + 1, arrays + 1, array)
        elif value is not None and prefix in want:
            text = _whole(value)
            shapes.setdefault(prefix, (arrays, array))  # as found: a key may itself be spelt "[]"
            if arrays == 0:
                if text is not None:
                    first.setdefault(prefix, text)
            elif arrays == 1 and slot is not None:
                slots.setdefault(prefix, {}).setdefault(slot, text)
            else:
                many.setdefault(prefix, []).append(text)

    walk(doc, "", None, 0)
    out: dict[str, Any] = {}
    for path in wanted:
        arrays, array = shapes.get(path, (path.count("[]"), ""))
        if arrays == 0:
            out[path] = first.get(path)
        elif arrays == 1:
            length = lengths.get(array or _array_prefix(path))
            found = slots.get(path, {})
            out[path] = None if length is None else [found.get(i) for i in range(length)]
        else:
            out[path] = many.get(path)
    return out


def documents_record_batch(docs: Sequence[Any], columns: Sequence[str]) -> pa.RecordBatch:
    """Documents → a reader's record batch: each path in ``columns`` as :func:`extract` reads it,
    ``string`` for plain paths, ``list<string>`` for paths through arrays."""
    values: dict[str, list[Any]] = {c: [] for c in columns}
    for doc in docs:
        for path, value in extract(doc, columns).items():
            # a key spelt with "[]" holding a scalar: one item of its (list) column, never a type error
            values[path].append([value] if isinstance(value, str) and "[]" in path else value)
    arrays = [pa.array(values[c], pa.list_(pa.string()) if "[]" in c else pa.string()) for c in columns]
    return pa.RecordBatch.from_arrays(arrays, names=list(columns))


def document_record_batches(docs: Iterable[Any], columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """A stream of documents as reader batches of ``batch_rows`` (the last one shorter)."""
    chunk: list[Any] = []
    for doc in docs:
        chunk.append(doc)
        if len(chunk) >= batch_rows:
            yield documents_record_batch(chunk, columns)
            chunk = []
    if chunk:
        yield documents_record_batch(chunk, columns)



def has_value(values: pa.Array) -> list[bool]:
    """Whether each record holds a value in this reader column: a text that is not null or empty, or
    for a ``list<string>`` column at least one such item."""
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        held = pc.fill_null(pc.not_equal(pc.list_flatten(values), ""), False).to_numpy(zero_copy_only=False)
        found = np.zeros(len(values), dtype=bool)
        found[pc.list_parent_indices(values).to_numpy()[held]] = True
        return list(found.tolist())
    return list(pc.invert(pc.or_kleene(pc.is_null(values), pc.equal(values, ""))).to_pylist())


_NOT_RAW = ("<", "\\", "…", "*", ",", "$")  # what label() writes in place of a raw key, and projection syntax


def source_keys(paths: Iterable[str], *, top_level: bool = False) -> list[str] | None:
    """The document keys a reader must fetch to :func:`extract` ``paths``, dotted and without ``[]``:
    each path up to its first array, whole (a server's source filter drops the array elements that lack
    a field, which would shift the items of ``members[].email`` against ``members[].phone``), or with
    ``top_level`` only the first key. None when a name may stand for another raw key (``<email>``, an
    escape, a cut name) or is projection syntax: the reader then fetches whole documents."""
    out: dict[str, None] = {}
    for path in paths:
        head = path.split("[]", 1)[0]
        if top_level:
            head = head.split(".", 1)[0]
        if not head or any(mark in head for mark in _NOT_RAW) or ".." in head or head.endswith("."):
            return None
        out[head] = None
    return list(out)
