"""Copy fingerprints: keyed Bloom filters of registered collections' customer keys and e-mails.

Why: a store nobody registered proves nothing by its column names (``member_email``, ``ref``). What
proves it holds production's customers is that its *values* are production's. piiguard keeps, per
registered collection and field, a Bloom filter (:mod:`.bloom`) of HMAC-SHA256 digests of the
normalised values under the discovery key; a scan of another store hashes its sampled values the same
way and counts how many are in the set. Values are never stored, the digests are never stored (only
their bit positions), and without the key neither can be tested.

Normalisation (what makes a copy's value equal to its source's):

- ``email``: Unicode NFKC, surrounding whitespace stripped, casefolded. Sub-addressing (``+tag``) and
  dots in the local part are kept: a copy keeps values as they are, and folding them would merge
  distinct people of providers that do not.
- ``key``: surrounding whitespace stripped; an integer (``00042``, ``+42``, ``42.0``) in its canonical
  decimal form (``42``), so a text column and an integer column match; a UUID lower-case with dashes
  (braces, ``urn:uuid:`` and upper case accepted); anything else as it is.

The kind is part of the hashed text (``email\\0…``, ``key\\0…``), so a key set never matches e-mails.
"""

from __future__ import annotations

import enum
import hmac
import math
import random
import re
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from piiguard.catalog import Catalog
from piiguard.discovery.base import CopyLink
from piiguard.discovery.bloom import HEADROOM, Bloom, words
from piiguard.discovery.canary_values import digest as cv_digest
from piiguard.discovery.keys import KEY_HINT, decode_key, key_id, load_key
from piiguard.errors import ConfigError, UsageError
from piiguard.model import Store

__all__ = ["KEY_HINT", "Built", "Kind", "build", "decode_key", "digest", "key_id", "load_key", "match", "normalise",
           "sources"]

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from piiguard.config import Config
    from piiguard.connectors.base import Connector
    from piiguard.model import CollectionInfo

BATCH_ROWS = 10_000
MAX_VALUE = 320  # longer texts are no e-mail (RFC 5321: 254) and no customer key
ALPHA = 1e-9  # a field links only when its matches would come from false matches alone with at most this chance
# A field links only with at least this many distinct values in the source's set: fewer people than this
# prove no copy — a handful of shared values is what coincidence (a status code, a small id) and the
# set's false matches give a column of any store, whatever ALPHA says of the rest.
MIN_MATCHED = 20
# A key set is "dense" (a counter: ids 1..N, zero-padded numbers in a range) when at least this share of
# the integers between its smallest and largest value are in it. Membership in a dense range says
# nothing about whose rows these are — any integer column in the range (another counter, invoice
# numbers, quantities) matches at that share — so a dense key alone never links (see :func:`_links`).
DENSE = 0.01
# A collection with at most this many times ``limit`` records is read whole and sampled uniformly as it
# streams (bounded: 1M records at the default limit); a larger one through the connector's own sample
# (TABLESAMPLE, random key ranges), as the scanner samples.
STREAM_FACTOR = 10
_INT = re.compile(r"^[+-]?\d+(?:\.0+)?$")
_UUID = re.compile(r"(?i)^(?:urn:uuid:)?\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$")


class Kind(enum.Enum):
    """What a fingerprinted field holds, which decides its normalisation."""

    KEY = "key"
    EMAIL = "email"


# Normalisation and hashing -----------------------------------------------------------------------------

def normalise(value: str, kind: Kind) -> str | None:
    """The value as both a source and its copies would spell it; None when it cannot be one of ``kind``."""
    text = value.strip()
    if not text or len(text) > MAX_VALUE:
        return None
    if kind is Kind.EMAIL:
        if not text.isascii():  # NFKC leaves ASCII as it is: skip it for the common case
            text = unicodedata.normalize("NFKC", text).strip()
        text = text.casefold()
        local, at, domain = text.rpartition("@")
        return text if at and local and domain and " " not in text else None
    if _INT.match(text):
        return str(int(text.split(".", 1)[0]))
    if _UUID.match(text):
        return str(uuid.UUID(text))
    return text


def digest(key: bytes, value: str, kind: Kind) -> bytes | None:
    """HMAC-SHA256 of the normalised value, kind-separated; None when it normalises to nothing."""
    norm = normalise(value, kind)
    if norm is None:
        return None
    return hmac.digest(key, f"{kind.value}\0{norm}".encode("utf-8", "surrogatepass"), "sha256")


def kinds_of(value: str) -> tuple[Kind, ...]:
    """The normalisations a value of unknown meaning is tried under when matching."""
    return (Kind.KEY, Kind.EMAIL) if "@" in value else (Kind.KEY,)


def texts(column: pa.Array | pa.ChunkedArray) -> Iterator[str]:
    """A reader column's non-empty texts; items of a ``list<string>`` column one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        column = pc.list_flatten(column)
    for v in column.to_pylist():
        if isinstance(v, str) and v:
            yield v


# Building ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Built:
    """What ``fingerprint build`` made of one field (counts only)."""

    store: str
    collection: str
    field: str
    kind: Kind
    people: int
    capacity: int
    hashes: int
    key_id: str
    values: int  # non-empty values read (with repeats)
    dense: bool = False  # a key whose values fill their integer range (see DENSE): weak alone


def _targets(config: Config, targets: Sequence[str]) -> list[tuple[Store, str | None]]:
    by_name = {s.name: s for s in config.stores}
    if not targets:
        return [(s, None) for s in config.stores]
    out: list[tuple[Store, str | None]] = []
    for target in targets:
        name = max((n for n in by_name if target == n or target.startswith(n + ".")), key=len, default=None)
        if name is None:
            raise UsageError(f"{target[:80]!r} names no configured store",
                             hint=f"stores: {', '.join(sorted(by_name)) or 'none'}; write STORE or STORE.COLLECTION")
        out.append((by_name[name], target[len(name) + 1:] or None))
    return out


def fields_to_fingerprint(catalog: Catalog, store: str, info_of: Any) -> dict[str, dict[str, Kind]]:
    """collection → {field: kind}: the latest scan's e-mail fields and the collection's subject key."""
    from piiguard.classify.engine import CUSTOMER_ID
    from piiguard.response.scope import _subject

    held: dict[str, dict[str, str]] = {}
    for collection, name, pii_type, _confidence in catalog.pii_fields(store):
        held.setdefault(collection, {})[name] = pii_type
    out: dict[str, dict[str, Kind]] = {}
    for collection, kinds in held.items():
        chosen = {f: Kind.EMAIL for f, t in kinds.items() if t == "email"}
        info = info_of(collection)
        subject = _subject(kinds, collection=collection, primary_key=info.primary_key if info else ())
        if subject is not None and kinds[subject] == CUSTOMER_ID:
            chosen[subject] = Kind.KEY
        if chosen:
            out[collection] = chosen
    return out


def build(config: Config, catalog: Catalog, key: bytes, targets: Sequence[str] = (), *,
          timeout: float = 30.0) -> list[Built]:
    """Fingerprint each target (a configured store, or STORE.COLLECTION; all stores when none is
    given): every value of its e-mail fields and subject key, read whole, into one set per field."""
    from piiguard import plugins
    from piiguard.connectors.base import connectors, shown_collections

    plugins.load()
    kid = key_id(key)
    out: list[Built] = []
    for store, only in _targets(config, targets):
        if catalog.latest_scan_id(store.name) is None:
            if targets:
                raise UsageError(f"the catalog holds no scan of {store.name}",
                                 hint=f"run `piiguard scan {store.name}` first: it finds the e-mail and key fields")
            continue
        with connectors.get(store.engine)(store, timeout=timeout) as connector:
            infos = shown_collections(connector.collections())
            wanted = fields_to_fingerprint(catalog, store.name, infos.get)
            if only is not None:
                wanted = {c: f for c, f in wanted.items() if c == only or c.rsplit(".", 1)[-1] == only}
                if not wanted:
                    raise UsageError(f"{store.name}.{only[:80]} has no e-mail or customer key field in its latest "
                                     "scan", hint=f"collections with one: {', '.join(sorted(infos)) or 'none'}")
            for collection, fields in wanted.items():
                info = infos.get(collection)
                if info is None:
                    continue  # gone since the scan
                readable = fields if connector.reads_paths else {
                    f: k for f, k in fields.items() if f in set(connector.columns(info))}
                out += _build_collection(connector, info, store.name, collection, readable, key, kid, catalog)
    return out


def canary_digests(catalog: Catalog, key: bytes, store: str, collection: str) -> frozenset[bytes]:
    """The digests of the canaries planted in ``store.collection`` under this key: its own rows, which
    are nobody and are left out of its fingerprint and its people."""
    from piiguard.discovery.canaries import planted_sets

    return frozenset(d for s in planted_sets(catalog, key) if s.store == store and s.collection == collection
                     for d in s.by_digest)


def _build_collection(connector: Connector, info: CollectionInfo, store: str, collection: str,
                      fields: dict[str, Kind], key: bytes, kid: str, catalog: Catalog) -> list[Built]:
    import numpy as np

    if not fields:
        return []
    names = list(fields)
    planted = canary_digests(catalog, key, store, collection)
    # 16 bytes a value (the digest's two words), never the value: 160 MB at 10M people while building
    parts: dict[str, list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]] = {f: [] for f in names}
    counts = dict.fromkeys(names, 0)
    spans = {f: _Span() for f in names if fields[f] is Kind.KEY}
    for batch in connector.read(info, names, BATCH_ROWS):
        for f in names:
            vals = list(texts(batch.column(f)))
            chunk = [d for v in vals if (d := digest(key, v, fields[f])) is not None
                     and not (planted and cv_digest(key, v) in planted)]
            counts[f] += len(chunk)
            parts[f].append(words(b"".join(chunk)))
            if f in spans:
                spans[f].add(vals)
    out = []
    for f in names:
        h1 = np.concatenate([p[0] for p in parts[f]] or [np.zeros(0, np.uint64)])
        h2 = np.concatenate([p[1] for p in parts[f]] or [np.zeros(0, np.uint64)])
        parts[f] = []
        order = np.sort(h1)  # distinct people, exactly: two people's 64-bit words meet with chance ~n²/2⁶⁵
        people = int(np.count_nonzero(order[1:] != order[:-1])) + (1 if order.size else 0)
        del order
        capacity = max(math.ceil(people * HEADROOM), 1)
        bloom = Bloom.empty(capacity)
        bloom.add(h1, h2)
        dense = f in spans and spans[f].dense(people)
        catalog.save_fingerprint({"store": store, "collection": collection, "field": f, "kind": fields[f].value,
                                  "key_id": kid, "people": people, "capacity": capacity, "hashes": bloom.hashes,
                                  "built": None, "bits": bloom.to_bytes(), "dense": int(dense)})
        out.append(Built(store, collection, f, fields[f], people, capacity, bloom.hashes, kid, counts[f], dense))
    return out


class _Span:
    """The smallest and largest integer of a key field and how many of its values are no integer: enough
    to tell a counter from an identity (only the verdict is kept, never the bounds)."""

    def __init__(self) -> None:
        self.low: int | None = None
        self.high: int | None = None
        self.ints = 0  # values read (with repeats) that are integers
        self.other = 0  # and that are not

    def add(self, values: Iterable[str]) -> None:
        for v in values:
            norm = normalise(v, Kind.KEY)
            if norm is None:
                continue
            if not _INT.match(norm):
                self.other += 1
                continue
            n = int(norm)
            self.ints += 1
            self.low = n if self.low is None else min(self.low, n)
            self.high = n if self.high is None else max(self.high, n)

    def dense(self, people: int) -> bool:
        """Whether the integers fill at least DENSE of their range (``people`` distinct values in all, of
        which the integers' share; a field with more than one value in ten no integer is no counter)."""
        if self.low is None or self.high is None or self.other * 10 > self.ints + self.other:
            return False
        return people * self.ints / (self.ints + self.other) / (self.high - self.low + 1) >= DENSE


# Matching ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """One fingerprint loaded for matching."""

    store: str
    collection: str
    field: str
    kind: Kind
    people: int
    bloom: Bloom
    rate: float  # measured false-match rate of its bits
    dense: bool = False  # a counter-like key: links only beside another matching field (see DENSE)


def binomial_tail(x: int, n: int, p: float) -> float:
    """P(X ≥ x) for X ~ Binomial(n, p), summed in log space from x up (terms fall fast past the mean)."""
    if x <= 0:
        return 1.0
    if x > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total, term_max = 0.0, -math.inf
    for i in range(x, min(n, x + 20_000) + 1):
        term = math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        term_max = max(term_max, term)
        total += math.exp(term)
        if term < term_max - 50:
            break
    return min(total, 1.0)


def sources(catalog: Catalog, key: bytes, *, besides: str | None = None) -> list[Source]:
    """The fingerprints built under ``key`` (other stores' than ``besides``); ConfigError when some
    exist but none was built with this key."""
    kid = key_id(key)
    rows = [r for r in catalog.fingerprints() if r["store"] != besides]
    mine = [r for r in rows if r["key_id"] == kid]
    if rows and not mine:
        raise ConfigError([f"discovery.key_env: the fingerprints were built with another key (key id "
                           f"{rows[0]['key_id']}), not this one ({kid})"],
                          hint="give the key they were built with, or rebuild them: piiguard fingerprint build")
    out = []
    for r in mine:
        bloom = Bloom.from_bytes(bytes(r["bits"]), int(r["hashes"]))
        out.append(Source(r["store"], r["collection"], r["field"], Kind(r["kind"]), int(r["people"]), bloom,
                          bloom.false_rate(), bool(r.get("dense"))))
    return out


def _registered_copy(catalog: Catalog, store: Store, collection: str) -> CopyLink | None:
    short = collection.rsplit(".", 1)[-1]
    for c in catalog.copies(status="active"):
        if c["target_store"] == store.name and c["target_collection"] in (collection, short):
            fields = tuple(sorted(c["transforms"]))
            people = int(c["subjects"] or 0)
            known = [int(r["people"]) for r in catalog.fingerprints(c["source_store"], with_bits=False)
                     if r["collection"] == c["source_collection"]]
            top = max(known, default=0)
            share = people / top if top else 0.0
            return CopyLink(store.name, collection, c["source_store"], c["source_collection"], "copy-registry",
                            fields, fields, people, round(min(share, 1.0), 4), 0, 0)
    return None


@dataclass(frozen=True)
class _Hit:
    field: str
    source: Source
    sampled: int  # values tested
    matched: float  # matches beyond the expected false ones
    people: int
    from_sample: bool = False  # people estimated from a sample of the collection, not counted


def match(store: Store, catalog: Catalog, key: bytes, *, limit: int = 100_000,
          collections: Sequence[str] = (), timeout: float = 30.0, rng: random.Random | None = None) -> list[CopyLink]:
    """Read each collection of ``store`` (whole, or a random sample of about ``limit`` records of a
    larger one, drawn with ``rng``) and link it to every fingerprinted source collection whose people it
    holds; every network step bounded by ``timeout``. A store that fails (closes mid-read, answers
    garbage) raises its StoreError: no partial link is made of it."""
    from piiguard import plugins
    from piiguard.connectors.base import connectors, shown_collections

    plugins.load()
    found = sources(catalog, key, besides=store.name)
    rng = rng or random.Random()
    links: list[CopyLink] = []
    with connectors.get(store.engine)(store, timeout=timeout) as connector:
        infos = shown_collections(connector.collections())
        for shown, info in infos.items():
            if collections and shown not in collections and shown.rsplit(".", 1)[-1] not in collections:
                continue
            registered = _registered_copy(catalog, store, shown)
            if registered is not None:
                links.append(registered)  # its pseudonyms do not match by design: the registry says whose it is
                continue
            if found:
                links += _match_collection(connector, info, store.name, shown, found, key, limit, rng)
    return links


@dataclass(frozen=True)
class _Read:
    values: dict[str, list[str]]  # field → the non-empty texts of the records read
    rows: int  # records read
    total: int | None  # records the collection holds: counted when it was streamed, else None
    whole: bool  # every record was read


def _read(connector: Connector, info: CollectionInfo, limit: int, rng: random.Random) -> _Read:
    """Every record when the collection holds at most ``limit``; else a random sample of about ``limit``
    of them, never its first ones: storage order is often the order people were copied in, and the first
    records scaled up count the copy's first source ``total / limit`` times and its last one not at all."""
    est = info.rows_estimate
    if not connector.reads_whole() or (est is not None and est > STREAM_FACTOR * limit):
        sample = connector.sample(info, limit)
        values = {f: list(texts(column)) for f, column in sample.columns.items()}
        return _Read(values, sample.rows, None, sample.rows < limit)
    names = connector.columns(info)
    kept: list[list[list[str]]] = []  # a uniform reservoir of records (Vitter's algorithm R), each its fields' texts
    seen = 0
    for batch in connector.read(info, names, min(BATCH_ROWS, limit)):
        columns = [_cells(batch.column(f)) for f in names]
        for i in range(batch.num_rows):
            if seen < limit:
                kept.append([column[i] for column in columns])
            elif (j := rng.randrange(seen + 1)) < limit:
                kept[j] = [column[i] for column in columns]
            seen += 1
        if seen > STREAM_FACTOR * limit:  # the row estimate was stale: sample as the scanner does instead
            sample = connector.sample(info, limit)
            return _Read({f: list(texts(c)) for f, c in sample.columns.items()}, sample.rows, None, False)
    values = {f: [v for record in kept for v in record[k]] for k, f in enumerate(names)}
    return _Read(values, len(kept), seen, seen <= limit)


def _cells(column: pa.Array | pa.ChunkedArray) -> list[list[str]]:
    """Each record's non-empty texts of a reader column (a ``list<string>`` cell's items)."""
    out: list[list[str]] = []
    for v in column.to_pylist():
        items = v if isinstance(v, list) else [v]
        out.append([x for x in items if isinstance(x, str) and x])
    return out


def _match_collection(connector: Connector, info: CollectionInfo, store: str, collection: str,
                      found: list[Source], key: bytes, limit: int, rng: random.Random) -> list[CopyLink]:
    read = _read(connector, info, limit, rng)
    hits: list[_Hit] = []
    for field, vals in read.values.items():
        distinct = {v for v in vals if len(v) <= MAX_VALUE}
        if not distinct:
            continue
        by_kind: dict[Kind, tuple[list[str], np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
        for kind in Kind:
            pairs = [(v, d) for v in distinct if kind in kinds_of(v) and (d := digest(key, v, kind)) is not None]
            if pairs:
                h1, h2 = words(b"".join(d for _, d in pairs))
                by_kind[kind] = ([v for v, _ in pairs], h1, h2)
        for src in found:
            if src.kind not in by_kind:
                continue
            tested, h1, h2 = by_kind[src.kind]
            n = len(tested)
            x = int(src.bloom.contains(h1, h2).sum())
            if x < MIN_MATCHED or binomial_tail(x, n, src.rate) > ALPHA:
                continue  # too few people to prove a copy, or no more than the set's false matches would give
            excess = max(x - n * src.rate, 0.0)
            people = round(excess) if read.whole else round(excess / n * _distinct_estimate(
                connector, info, field, n, read.rows, read.total))
            hits.append(_Hit(field, src, len(vals), excess, min(people, src.people), not read.whole))
    return _links(store, collection, hits)


def _distinct_estimate(connector: Connector, info: CollectionInfo, field: str, distinct: int, rows: int,
                       counted_rows: int | None) -> float:
    """Distinct values of the field in the whole collection: the engine's count where it has a cheap one,
    else the sample's distinct share scaled to the collection's records (counted, or its row estimate)."""
    counted = connector.distinct(info, field)
    if counted is not None:
        return float(counted[0])
    total = counted_rows or info.rows_estimate or rows
    return distinct / max(rows, 1) * max(total, rows)


def _links(store: str, collection: str, hits: Iterable[_Hit]) -> list[CopyLink]:
    """One link per source collection. A dense key's hits count only beside another field's hit on the
    same source (an e-mail): they are then named among the fields, and the people come from the others."""
    by_source: dict[tuple[str, str], list[_Hit]] = {}
    for h in hits:
        by_source.setdefault((h.source.store, h.source.collection), []).append(h)
    out = []
    for (src_store, src_collection), group in sorted(by_source.items()):
        strong = [h for h in group if not h.source.dense]
        if not strong:
            continue  # only a counter-like key matched: any integer column in its range would
        best = max(strong, key=lambda h: h.people)
        group.sort(key=lambda h: h.field)
        out.append(CopyLink(store, collection, src_store, src_collection, "fingerprint",
                            tuple(h.field for h in group), tuple(h.source.field for h in group), best.people,
                            round(best.people / max(best.source.people, 1), 4), best.sampled, round(best.matched),
                            best.from_sample))
    return out
