"""Redis (and servers that speak its protocol), with redis-py, without ever blocking the server.

Least privileges: an ACL user with ``+@read +scan +type +dbsize +ping`` (``-@dangerous`` may stay).
``KEYS``, ``SORT`` and ``MONITOR`` are never sent: keys are found with ``SCAN … COUNT`` and every
value is read with a bounded command (``HSCAN``/``SSCAN``/``LRANGE`` pages for big values), pipelined
per batch of keys. The store's ``database`` is the database index (``redis://host:6379/2``); TLS as
for checks (``rediss://``, ``ssl_ca_certs``, ``ssl_cert_reqs``).

A collection is a *key pattern*. Listing the collections samples the keyspace with ``SCAN`` for at
most :data:`SCAN_SECONDS` seconds or :data:`SCAN_KEYS` keys, and groups the keys by shape
(:mod:`piiguard.connectors.keypatterns`: ``session:cust-123`` → ``session:*``; ids, e-mails and
numbers in a key are ``*``, and the pattern passes the labeler like any name). Its row estimate is
``DBSIZE`` × the pattern's share of the sample (the exact count when the sample saw every key).

A key's fields: a hash's fields (a field holding a JSON document is flattened like documents), a
string's ``value`` — or, when it holds a JSON object, its paths (``profile.email``), as for a
RedisJSON key (``JSON.GET``) — and ``members[]`` for sets, lists and sorted sets; a stream's
entries as ``entries[].field``. The key's variable part (the ``*`` segments: the id in
``session:cust-123``) is the field ``<key>``, listed first: it is what links the record to a person.

The whole-collection reader (:meth:`Redis.read`) scans with ``MATCH`` on the pattern, keeps the keys
that belong to it (a longer key can match the glob too), and reads whole values.
``SCAN`` may return a key twice while the keyspace is being resized; such a key is read twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from piiguard.connectors import keypatterns
from piiguard.connectors.base import (
    MAX_VALUE_CHARS,
    Batch,
    Connector,
    connectors,
    document_record_batches,
    documents_batch,
)
from piiguard.connectors.labels import label
from piiguard.engines.redis import client
from piiguard.errors import CollectionError, PermissionDenied, StoreUnreachable, UsageError
from piiguard.model import CollectionInfo, Estimate
from piiguard.registry import driver

if TYPE_CHECKING:
    import pyarrow as pa
    import redis
    import redis.exceptions as rex
else:  # imported on first use: starting the CLI must not load every engine's driver
    redis = driver("redis")
    rex = driver("redis.exceptions")

SCAN_COUNT = 1000  # keys the server looks at per SCAN call: each call stays short
SCAN_SECONDS = 5.0  # listing the collections samples the keyspace for at most this long …
SCAN_KEYS = 100_000  # … or this many keys
SAMPLE_KEYS = 10_000  # keys kept per pattern for its sample
PAGE = 1000  # fields, members or items read per command of a big value
SAMPLE_ITEMS = 100  # members or items sampled per key
KEY_FIELD = "<key>"
_CUT_BYTES = MAX_VALUE_CHARS * 4  # a string is read up to this many bytes for a scan (UTF-8: 4 per char)


def _text(value: bytes | None) -> str | None:
    """A value as text; None when it is not UTF-8 (binary: not classified)."""
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _name(value: bytes) -> str:
    """A key or field name as text: bytes that are not UTF-8 are kept as surrogates (the labeler escapes them)."""
    return value.decode("utf-8", "surrogateescape")


def _keys(found: Sequence[bytes | str]) -> list[bytes]:
    """Keys as bytes (the client is opened with ``decode_responses=False``: they are bytes already)."""
    return [k if isinstance(k, bytes) else k.encode("utf-8", "surrogateescape") for k in found]


def _json(text: str | None) -> Any:
    """A JSON document held in a string, or the string itself."""
    if text is None or text[:1] not in "{[":
        return text
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


@connectors.register("redis")
class Redis(Connector):
    """Redis 6+ (and protocol-compatible servers) over TCP or TLS, read-only; collections are key patterns."""

    reads_paths = True  # a document per key: any field path a scan names
    privileges = "an ACL user with +@read +scan +type +dbsize +ping (KEYS and SORT are never used)"
    r: redis.Redis

    def open(self) -> None:
        self.r = client(self.store, self.timeout, decode_responses=False)
        self._keys: dict[str, list[bytes]] = {}
        self._patterns = keypatterns.Patterns(())
        self._raw: dict[str, str] = {}  # a collection's name (labelled) → its pattern
        self._kind: dict[str, str] = {}  # a pattern → the type most of its keys had

    def close(self) -> None:
        if getattr(self, "r", None) is not None:
            self.r.close()

    @contextmanager
    def _errors(self, collection: str | None = None) -> Iterator[None]:
        try:
            yield
        except rex.NoPermissionError as exc:
            raise PermissionDenied(self.store.name, "the server refused a read command (ACL)", collection=collection,
                                   hint="give the user +@read +scan +type +dbsize") from exc
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise StoreUnreachable(self.store.name, f"cannot talk to {self.store.address} "
                                                    f"({type(exc).__name__})") from exc
        except redis.RedisError as exc:  # a server's error names a command or a type, never a value: keep the type
            raise CollectionError(self.store.name, f"the server refused ({type(exc).__name__})",
                                  collection=collection) from exc

    def collections(self) -> list[CollectionInfo]:
        seen: dict[bytes, None] = {}
        complete = False
        stop = time.monotonic() + min(SCAN_SECONDS, self.timeout)
        with self._errors():
            cursor = 0
            while True:
                cursor, found = self.r.scan(cursor, count=SCAN_COUNT)
                seen.update(dict.fromkeys(_keys(found)))
                if cursor == 0:
                    complete = True
                    break
                if len(seen) >= SCAN_KEYS or time.monotonic() > stop:
                    break
            total = int(self.r.dbsize())
        keys = list(seen)
        groups = keypatterns.group([_name(k) for k in keys])
        self._patterns = keypatterns.Patterns(groups)
        out = []
        for pattern, members in sorted(groups.items()):
            name = label(pattern)
            self._raw[name] = pattern
            self._keys[name] = [keys[i] for i in members[:SAMPLE_KEYS]]
            if complete:
                out.append(CollectionInfo(name, len(members), Estimate.APPROXIMATE, self._key_field(pattern)))
            else:
                out.append(CollectionInfo(name, round(total * len(members) / max(1, len(keys))),
                                          Estimate.APPROXIMATE, self._key_field(pattern)))
        return out

    @staticmethod
    def _key_field(pattern: str) -> tuple[str, ...]:
        return (KEY_FIELD,) if keypatterns.WILDCARD in pattern.split(keypatterns.SEPARATOR) else ()

    def _pattern(self, collection: CollectionInfo) -> str:
        if collection.name not in self._raw:
            self.collections()
        try:
            return self._raw[collection.name]
        except KeyError:
            raise CollectionError(self.store.name, "no key has this pattern any more",
                                  collection=collection.name) from None

    # reading keys

    def _scan(self, collection: CollectionInfo) -> Iterator[bytes]:
        """Every key of the collection's pattern, SCAN MATCH page by page."""
        pattern = self._pattern(collection)
        match = keypatterns.glob(pattern).encode("utf-8", "surrogateescape")
        with self._errors(collection.name):
            cursor = 0
            while True:
                cursor, found = self.r.scan(cursor, match=match, count=SCAN_COUNT)
                for key in _keys(found):
                    if self._patterns.assign(_name(key)) == pattern:
                        yield key
                if cursor == 0:
                    return

    def _documents(self, collection: CollectionInfo, keys: Sequence[bytes], *, whole: bool) -> list[dict[str, Any]]:
        """One document per key (``<key>`` first)."""
        pattern = self._pattern(collection)
        with self._errors(collection.name):
            types, values = self._values(keys, whole, self._kind.get(pattern))
        counts: dict[str, int] = {}
        for t in types:
            counts[t] = counts.get(t, 0) + 1
        if counts:
            self._kind[pattern] = max(counts.items(), key=lambda kv: kv[1])[0]
        docs = []
        for k, t, v in zip(keys, types, values, strict=True):
            if isinstance(v, Exception) or t == "none":  # expired or replaced since SCAN
                continue
            doc: dict[str, Any] = {}
            part = keypatterns.variable_part(pattern, _name(k))
            if part is not None:
                doc[KEY_FIELD] = part if whole else part[:MAX_VALUE_CHARS]
            doc.update(self._fields(t, v))
            docs.append(doc)
        return docs

    def _values(self, keys: Sequence[bytes], whole: bool, expected: str | None) -> tuple[list[str], list[Any]]:
        """Each key's type and value. The keys of one pattern nearly always have one type: once it is
        known, a string or a hash takes one pipelined round (``GET``; ``HSCAN`` from cursor 0, paged on
        for a big hash); a key of another type (a ``WRONGTYPE`` answer) and any key of an unknown pattern take
        three: ``TYPE``, its size, its value."""
        types: list[str | None] = [None] * len(keys)
        values: list[Any] = [None] * len(keys)
        if expected == "string":
            pipe = self.r.pipeline(transaction=False)
            for k in keys:
                pipe.get(k) if whole else pipe.getrange(k, 0, _CUT_BYTES - 1)
            for i, v in enumerate(pipe.execute(raise_on_error=False)):
                if not isinstance(v, Exception):
                    types[i], values[i] = ("none", None) if v is None or (not whole and v == b"" and
                                                                          not self.r.exists(keys[i])) else ("string", v)
        elif expected == "hash":
            # HSCAN, not HLEN then HGETALL: a small (listpack) hash comes whole in one page, a big one
            # is paged on from its cursor, and no command reads more than PAGE fields
            pipe = self.r.pipeline(transaction=False)
            for k in keys:
                pipe.hscan(k, 0, count=PAGE if whole else SAMPLE_ITEMS)
            for i, v in enumerate(pipe.execute(raise_on_error=False)):
                if isinstance(v, Exception):
                    continue
                cursor, fields = v
                if not fields:
                    types[i] = "none"  # gone since SCAN (a hash is never empty)
                    continue
                if whole and cursor != 0:
                    fields = dict(fields)
                    while cursor != 0:
                        cursor, more = self.r.hscan(keys[i], cursor, count=PAGE)
                        fields.update(cast("dict[bytes, bytes]", more))
                types[i], values[i] = "hash", fields
        rest = [i for i, t in enumerate(types) if t is None]
        if rest:
            got_types, got = self._typed([keys[i] for i in rest], whole)
            for i, t, v in zip(rest, got_types, got, strict=True):
                types[i], values[i] = t, v
        return [t or "none" for t in types], values

    def _typed(self, keys: Sequence[bytes], whole: bool) -> tuple[list[str], list[Any]]:
        """Three pipelined rounds: types, sizes, values."""
        pipe = self.r.pipeline(transaction=False)
        for k in keys:
            pipe.type(k)
        types = [t.decode() if isinstance(t, bytes) else str(t) for t in pipe.execute()]
        sizes = self._sizes(keys, types)
        pipe = self.r.pipeline(transaction=False)
        big: list[int] = []
        for i, (k, t) in enumerate(zip(keys, types, strict=True)):
            self._fetch(pipe, k, t, sizes[i], whole, big, i)
        values = pipe.execute(raise_on_error=False)
        for i in big:  # a big hash, set or list read whole: page by page, never in one command
            values[i] = self._paged(keys[i], types[i])
        return types, values

    def _sizes(self, keys: Sequence[bytes], types: Sequence[str]) -> list[int]:
        pipe = self.r.pipeline(transaction=False)
        for k, t in zip(keys, types, strict=True):
            size = {"hash": pipe.hlen, "set": pipe.scard, "list": pipe.llen, "zset": pipe.zcard}.get(t)
            if size is None:
                pipe.exists(k)
            else:
                size(k)
        return [int(n) if isinstance(n, int) else 0 for n in pipe.execute(raise_on_error=False)]

    def _fetch(self, pipe: Any, key: bytes, kind: str, size: int, whole: bool, big: list[int], i: int) -> None:
        if kind == "string":
            pipe.get(key) if whole else pipe.getrange(key, 0, _CUT_BYTES - 1)
        elif kind == "ReJSON-RL":
            pipe.execute_command("JSON.GET", key)
        elif kind == "stream":
            pipe.xrange(key, count=None if whole else SAMPLE_ITEMS)
        elif whole and size > PAGE:
            pipe.exists(key)  # a placeholder: read page by page after this round
            big.append(i)
        elif kind == "hash":
            pipe.hgetall(key) if whole else pipe.hscan(key, 0, count=SAMPLE_ITEMS)
        elif kind == "set":
            pipe.smembers(key) if whole else pipe.sscan(key, 0, count=SAMPLE_ITEMS)
        elif kind == "list":
            pipe.lrange(key, 0, -1 if whole else SAMPLE_ITEMS - 1)
        elif kind == "zset":
            pipe.zrange(key, 0, -1 if whole else SAMPLE_ITEMS - 1)
        else:
            pipe.exists(key)  # a type piiguard does not read (a module's): no fields

    def _paged(self, key: bytes, kind: str) -> Any:
        if kind == "hash":
            return dict(self.r.hscan_iter(key, count=PAGE))
        if kind == "set":
            return list(self.r.sscan_iter(key, count=PAGE))
        if kind == "zset":
            return [m for m, _ in self.r.zscan_iter(key, count=PAGE)]
        items: list[bytes] = []
        start = 0
        while page := self.r.lrange(key, start, start + PAGE - 1):
            items += _keys(page)
            start += PAGE
        return items

    @staticmethod
    def _fields(kind: str, value: Any) -> dict[str, Any]:
        if kind == "string":
            parsed = _json(_text(value))
            return parsed if isinstance(parsed, dict) else {"value": parsed}
        if kind == "ReJSON-RL":
            parsed = _json(_text(value))
            return parsed if isinstance(parsed, dict) else {"value": parsed}
        if kind == "hash":  # HGETALL's dict, or HSCAN's (cursor, dict)
            fields = value[1] if isinstance(value, tuple | list) else value
            return {_name(f): _json(_text(v)) for f, v in fields.items()}
        if kind == "set":  # SMEMBERS's set, or SSCAN's (cursor, list)
            members = value[1] if isinstance(value, tuple | list) and len(value) == 2 and \
                isinstance(value[1], list) else value
            return {"members": [_text(m) for m in members]}
        if kind in ("list", "zset"):
            return {"members": [_text(m) for m in value]}
        if kind == "stream":
            return {"entries": [{_name(f): _text(v) for f, v in fields.items()} for _, fields in value]}
        return {}

    # the connector's contract

    def sample(self, collection: CollectionInfo, n: int) -> Batch:
        self._pattern(collection)
        keys = self._keys.get(collection.name, [])[:n]
        docs: list[dict[str, Any]] = []
        for start in range(0, len(keys), PAGE):
            docs += self._documents(collection, keys[start:start + PAGE], whole=False)
        return documents_batch(docs)

    def batches(self, collection: CollectionInfo, batch_rows: int) -> Iterator[Batch]:
        for chunk in self._chunks(collection, min(batch_rows, PAGE)):
            yield documents_batch(self._documents(collection, chunk, whole=False))

    def _chunks(self, collection: CollectionInfo, size: int) -> Iterator[list[bytes]]:
        chunk: list[bytes] = []
        for key in self._scan(collection):
            chunk.append(key)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def distinct(self, collection: CollectionInfo, field: str) -> tuple[int, Estimate] | None:
        if field == KEY_FIELD and collection.rows_estimate is not None:
            return collection.rows_estimate, collection.rows_estimate_kind  # one key, one variable part
        return None

    def columns(self, collection: CollectionInfo) -> list[str]:
        batch = self.sample(collection, 1000)
        return list(batch.columns)

    def read(self, collection: CollectionInfo, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        if not columns:
            raise UsageError(f"{self.store.name}.{collection.name}: no field to read")

        def docs() -> Iterator[dict[str, Any]]:
            for chunk in self._chunks(collection, min(batch_rows, PAGE)):
                yield from self._documents(collection, chunk, whole=True)

        yield from document_record_batches(docs(), columns, batch_rows)
