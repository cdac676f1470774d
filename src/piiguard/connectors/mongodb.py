"""MongoDB, and servers that speak its wire protocol (FerretDB, which the tests run), with ``pymongo``.

A collection is ``database.collection``; the store's ``database`` limits the scan to one database,
otherwise every database but ``admin``, ``local`` and ``config`` is read. Documents are flattened into
field paths like OpenSearch's. Sampling uses ``$sample``; where the server has not implemented it
(FerretDB 1.x) it reads a few short runs at offsets that are disjoint and seeded by the collection's
name (:mod:`piiguard.connectors.sampling`), so two scans read the same documents. Either way a document
is taken once (by ``_id``: ``$sample`` may return one twice). Distinct counts are exact (``$group``
then ``$count``, on the server).

Each field path is typed by the BSON types its values have (:func:`bson_type`, named as MongoDB's
``$type`` names them): ``objectId``, ``date``, ``decimal``, ``int``/``long``, ``double``, ``bool``,
``binData``, ``timestamp``, ``string``; items of arrays as arrays of their type, sub-documents by path.
A path whose values have different kinds across documents has no type. A UUID held as binary (subtypes
3 and 4) is rendered as UUID text, a BSON timestamp as ISO 8601.

Whole-collection reads (incident scope, copies from the collection) are one ``find`` projected on the
top-level keys of the fields asked for, in cursor batches of at most 10,000, the cursor closed however
the read ends; each round trip may take 30 x the timeout (a server may build a whole batch first), the
read 360 x. Dotted paths and arrays are then read from each document by path (a field inside an array
as a list, item by item). A copy's columns are the field paths of a sample of 1,000 documents.

Options: ``tls`` (default false: MongoDB's own default), ``cafile``, ``auth_mechanism`` (e.g. ``PLAIN``
for FerretDB 1.x, which passes the credentials to its PostgreSQL backend). The password comes from
``MONGODB_PASSWORD`` unless the store names another reference.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from piiguard.classify.types import Kind, NativeType
from piiguard.connectors.base import (
    MAX_DEPTH,
    Batch,
    Connector,
    connectors,
    document_record_batches,
    documents_batch,
    source_keys,
)
from piiguard.connectors.labels import label
from piiguard.connectors.sampling import runs
from piiguard.engines.mongodb import client
from piiguard.errors import AuthenticationFailed, CollectionError, StoreUnreachable
from piiguard.model import CollectionInfo, Estimate, Store
from piiguard.registry import driver
from piiguard.system import SystemKind, system_kind

if TYPE_CHECKING:
    import bson
    import pyarrow as pa
    import pymongo
    from pymongo import errors as me
else:  # imported on first use: starting the CLI must not load every engine's driver
    bson = driver("bson")
    pymongo = driver("pymongo")
    me = driver("pymongo.errors")
    pa = driver("pyarrow")

SAMPLE_RANGES = 5
NOT_IMPLEMENTED = 238
PAGE = 10_000  # documents per cursor batch at most
READ_STEP = 30  # x timeout: the longest one round trip of a whole-collection read may take
READ_BUDGET = 360  # x timeout: the longest a whole-collection read may take (an hour at 10 s)
COLUMNS_SAMPLE = 1_000  # documents sampled for a collection's field paths


@contextmanager
def errors(store: Store, collection: str | None = None) -> Iterator[None]:
    """pymongo's exceptions as piiguard's; a server's error message names commands, never values."""
    try:
        yield
    except me.OperationFailure as exc:
        if exc.code in (13, 18):  # Unauthorized, AuthenticationFailed
            raise AuthenticationFailed(store.name, f"the server refused: {exc.details and exc.details.get('codeName')}",
                                       hint="check the store's user, password reference and auth_mechanism") from exc
        if collection is not None:
            raise CollectionError(store.name, f"the server refused ({exc.code})", collection=collection) from exc
        raise StoreUnreachable(store.name, f"the server refused ({exc.code})") from exc
    except me.PyMongoError as exc:
        raise StoreUnreachable(store.name, f"cannot talk to {store.address} ({type(exc).__name__})",
                               hint="check host, port and the tls option") from exc


UUID_SUBTYPES = (3, 4)  # legacy and standard UUID binary subtypes


def bson_type(value: Any) -> NativeType | None:
    """A decoded BSON value's type, by MongoDB's ``$type`` name; None for null and the rare types
    (regex, code, min/max key) that say nothing about PII."""
    if isinstance(value, bool):
        return NativeType("bool", Kind.BOOLEAN)
    if isinstance(value, bson.Int64):
        return NativeType("long", Kind.INTEGER)
    if isinstance(value, int):
        return NativeType("int", Kind.INTEGER)
    if isinstance(value, float):
        return NativeType("double", Kind.FLOAT)
    if isinstance(value, bson.Decimal128 | Decimal):
        return NativeType("decimal", Kind.DECIMAL)
    if isinstance(value, datetime | bson.datetime_ms.DatetimeMS):
        return NativeType("date", Kind.TIMESTAMP)
    if isinstance(value, bson.Timestamp):
        return NativeType("timestamp", Kind.TIMESTAMP)
    if isinstance(value, bson.ObjectId):
        return NativeType("objectId", Kind.UUID)  # a generated unique identifier, as a UUID is
    if isinstance(value, uuid.UUID) or (isinstance(value, bson.Binary) and value.subtype in UUID_SUBTYPES
                                        and len(value) == 16):
        return NativeType("binData(uuid)", Kind.UUID)
    if isinstance(value, bytes):
        return NativeType("binData", Kind.BINARY)
    if isinstance(value, str):
        return NativeType("string", Kind.TEXT)
    return None


def _canonical(value: Any) -> Any:
    """A BSON value whose text is not already canonical, as one that is (others as they are)."""
    if isinstance(value, bson.Binary) and value.subtype in UUID_SUBTYPES and len(value) == 16:
        return str(uuid.UUID(bytes=bytes(value)))
    if isinstance(value, bson.Timestamp):
        return value.as_datetime().isoformat()
    return value


class _Types:
    """Field path → BSON type over many documents, walked as :func:`~piiguard.connectors.base.flatten`
    names paths; values made canonical in place on the way."""

    def __init__(self) -> None:
        self.types: dict[str, NativeType] = {}
        self.mixed: set[str] = set()

    def walk(self, value: Any, prefix: str, array: bool, depth: int) -> Any:
        if isinstance(value, dict | list) and depth >= MAX_DEPTH:
            return value  # flatten counts it
        if isinstance(value, dict):
            for key, item in value.items():
                name = label(str(key))
                value[key] = self.walk(item, f"{prefix}.{name}" if prefix else name, array, depth + 1)
            return value
        if isinstance(value, list):
            return [self.walk(item, f"{prefix}[]", True, depth + 1) for item in value]
        native = bson_type(value)
        if native is not None and prefix not in self.mixed:
            native = NativeType(native.name, native.kind, array)
            known = self.types.setdefault(prefix, native)
            if known.kind is not native.kind:
                self.mixed.add(prefix)
                del self.types[prefix]
        return _canonical(value)


def typed_batch(docs: Sequence[Mapping[str, Any]]) -> Batch:
    """Documents → a batch whose fields carry their BSON types."""
    types = _Types()
    walked = [types.walk(dict(d), "", False, 0) for d in docs]
    batch = documents_batch(walked)
    batch.types = {p: t for p, t in types.types.items() if p in batch.columns}
    return batch


def _once(docs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Documents without repeats (by ``_id``; one without an ``_id`` is kept)."""
    seen: set[str] = set()
    out = []
    for d in docs:
        key = repr(d.get("_id")) if "_id" in d else None
        if key is None or key not in seen:
            out.append(d)
            if key is not None:
                seen.add(key)
    return out


@connectors.register("mongodb")
class MongoConnector(Connector):
    """A MongoDB-protocol server; one collection per ``database.collection``."""

    privileges = "the built-in read role on the databases to scan (and listDatabases, or set database)"
    reads_paths = True
    mongo: pymongo.MongoClient[dict[str, Any]]

    def open(self) -> None:
        self.mongo = client(self.store, self.timeout)
        with errors(self.store):
            self.mongo.admin.command("ping")

    def close(self) -> None:
        if getattr(self, "mongo", None) is not None:
            self.mongo.close()

    def _collection(self, info: CollectionInfo) -> Any:
        database, _, name = info.name.partition(".")
        return self.mongo[database][name]

    def collections(self) -> list[CollectionInfo]:
        out = []
        with errors(self.store):
            databases = [self.store.database] if self.store.database else self.mongo.list_database_names()
            for database in sorted(databases):
                if system_kind("mongodb", f"{database}.") is SystemKind.CATALOG:
                    continue  # admin, local, config: the server's own, never listed
                for name in sorted(self.mongo[database].list_collection_names()):
                    if system_kind("mongodb", f"{database}.{name}") is SystemKind.CATALOG:
                        continue
                    count = self.mongo[database][name].estimated_document_count()
                    out.append(CollectionInfo(f"{database}.{name}", int(count), Estimate.APPROXIMATE))
        return out

    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        coll = self._collection(collection)
        with errors(self.store, collection.name):
            try:
                return typed_batch(_once(coll.aggregate([{"$sample": {"size": n}}])))
            except me.OperationFailure as exc:
                if exc.code != NOT_IMPLEMENTED:
                    raise
            return self.sample_runs(collection, n)

    def sample_runs(self, collection: CollectionInfo, n: int) -> Batch:
        """The sample of a server without ``$sample``: disjoint runs seeded by the collection's name."""
        coll = self._collection(collection)
        est = collection.rows_estimate or 0
        with errors(self.store, collection.name):
            if est <= 2 * n:
                return typed_batch(list(coll.find({}, limit=n)))
            docs: list[Any] = []
            for start, length in runs(est, n, SAMPLE_RANGES, collection.name):
                docs += coll.find({}, skip=start, limit=length)
            return typed_batch(_once(docs))

    def batches(self, collection: CollectionInfo, batch_rows: int) -> Iterator[Batch]:
        with errors(self.store, collection.name):
            cursor = self._collection(collection).find({}, batch_size=min(batch_rows, 10_000))
            while chunk := list(itertools.islice(cursor, batch_rows)):
                yield typed_batch(chunk)

    def columns(self, collection: CollectionInfo) -> list[str]:
        """The field paths a sample of documents holds, ``_id`` first, then sorted."""
        return sorted(self.sample(collection, COLUMNS_SAMPLE).columns, key=lambda p: (p != "_id", p))

    def read(self, collection: CollectionInfo, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Every document, projected on the top-level keys ``columns`` need (whole documents when a
        name is a label that stands for another key), in cursor batches of at most :data:`PAGE`; the
        cursor is closed however the read ends."""
        keys = source_keys(columns, top_level=True)
        projection = None if keys is None else {"_id": int("_id" in keys), **{k: 1 for k in keys if k != "_id"}}
        budget = self.timeout * READ_BUDGET
        until = time.monotonic() + budget
        database, _, name = collection.name.partition(".")
        # its own client: one round trip may take READ_STEP x the timeout (FerretDB builds a whole first
        # batch: 22+ s for 100,000 documents here, past a 10 s operation timeout); the whole read READ_BUDGET x
        with errors(self.store, collection.name), client(self.store, self.timeout * READ_STEP) as reader, \
                reader[database][name].find({}, projection, batch_size=min(batch_rows, PAGE)) as cursor:
            # batches of a cursor batch at most: documents are held as dicts until converted
            for batch in document_record_batches(cursor, columns, min(batch_rows, PAGE)):
                if time.monotonic() > until:
                    raise CollectionError(self.store.name, f"the read took longer than {budget:.0f} s: stopped",
                                          collection=collection.name)
                yield batch

    def distinct(self, collection: CollectionInfo, field: str) -> tuple[int, Estimate] | None:
        path = field.replace("[]", "")
        # a field inside arrays counts its items, not its arrays: one $unwind per array on the way
        arrays = [field[:i].replace("[]", "") for i in range(len(field)) if field.startswith("[]", i)]
        unwind = [{"$unwind": f"${a}"} for a in arrays]
        pipeline = [{"$match": {path: {"$ne": None}}}, *unwind, {"$group": {"_id": f"${path}"}},
                    {"$match": {"_id": {"$ne": None}}}, {"$count": "n"}]
        with errors(self.store, collection.name):
            rows = list(self._collection(collection).aggregate(pipeline, allowDiskUse=True))
        return (int(rows[0]["n"]) if rows else 0), Estimate.EXACT
