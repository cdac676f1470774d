"""Scope: exactly who was in an exposed store, and which of their data.

For each exposed store, the catalog's latest scan says which collections hold PII and which field
identifies the person (customer id, else e-mail). The collection is read whole: every row gives one
person and the PII types that row actually holds (non-empty fields).

When the exposed collection is a registered **copy**, its registry entry says what each field held
and how it was masked, so a person's exposed categories read ``email (pseudonym)``, ``phone
(keep-prefix)`` or plain ``city`` for a field copied as it was. Its identifiers are pseudonyms: the copy's
source is read and its identifiers pseudonymised again with the copy's key (checked against the key
id the registry kept), so each pseudonym found in the exposed copy maps back to exactly one real
identifier. The people in scope are those *in the copy as it was read* — not everyone in the
source. Copies made *from* an exposed store are listed too (they hold the same people, though they
were not exposed).

Raw identifiers go only to the file the operator names (0600). The catalog keeps an HMAC of each
under the same key, and counts.
"""

from __future__ import annotations

import array
import csv
import functools
import hmac
import io
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeAlias

from piiguard import safefile
from piiguard.catalog import Catalog
from piiguard.classify.engine import CUSTOMER_ID
from piiguard.connectors.base import Connector, connectors, has_value
from piiguard.connectors.labels import label
from piiguard.errors import PiiguardError, UsageError
from piiguard.masking.pipeline import BatchMasker, FieldRule, find_collection, key_id
from piiguard.model import CollectionInfo, Store
from piiguard.registry import driver
from piiguard.response.found import found_stores, held_by_links, lineage

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # imported on first use: starting the CLI must not load every engine's driver
    np = driver("numpy")
    pa = driver("pyarrow")
    pc = driver("pyarrow.compute")

BATCH_ROWS = 100_000


@dataclass
class Scope:
    people: dict[str, frozenset[str]] = field(default_factory=dict)  # raw identifier -> PII types exposed
    sources: list[str] = field(default_factory=list)  # what was read, for the timeline
    derived: list[int] = field(default_factory=list)  # copies made from an exposed collection
    # per collection read: "store.collection" -> {"field", "kind", "records", "unidentified", "unreadable"}
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_scoped: list[str] = field(default_factory=list)  # collections with PII but no field that names a person
    warnings: list[str] = field(default_factory=list)
    # for a found (unregistered) store: what it copies, from its copy links ("ADDRESS coll: copy of …")
    copy_of: list[str] = field(default_factory=list)

    @property
    def records(self) -> dict[str, int]:
        """Records read per collection (``store.collection``): what the draft counts as records concerned."""
        return {where: int(seen["records"]) for where, seen in self.collections.items()}

    @property
    def unidentified(self) -> int:
        """Records that held exposed PII but no identifier: not in the subject list (a limit of its count)."""
        return sum(int(c["unidentified"]) for c in self.collections.values())

    @property
    def unreadable(self) -> int:
        """Records that could not be read (a hostile nesting, a line that does not parse): a limit too."""
        return sum(int(c["unreadable"]) for c in self.collections.values())

    def limits(self) -> dict[str, Any]:
        """What the exact count leaves out, for the output, the timeline and the regulator's draft."""
        return {"unidentified_records": self.unidentified, "unreadable_records": self.unreadable,
                "not_scoped": list(self.not_scoped), "warnings": list(self.warnings),
                "identified_by": {c: {"field": v["field"], "kind": v["kind"], "without_identifier": v["unidentified"]}
                                  for c, v in self.collections.items()}}


def scope_lines(scope: Scope) -> list[str]:
    """The scope's per-collection identifiers and its limits, a line each (labels and counts only)."""
    out = [f"{where}: people identified by {seen['field']} ({seen['kind']}); {seen['records']:,} record(s) read, "
           f"{seen['unidentified']:,} with PII but no identifier" + (f", {seen['unreadable']:,} unreadable"
                                                                     if seen["unreadable"] else "")
           for where, seen in scope.collections.items()]
    out += [f"not scoped: no field identifies a person: {where}" for where in scope.not_scoped]
    if scope.unidentified:
        out.append(f"limit: {scope.unidentified:,} record(s) held exposed PII but no identifier: not in the list")
    if scope.unreadable:
        out.append(f"limit: {scope.unreadable:,} record(s) could not be read: not in the list")
    out += [f"warning: {w}" for w in scope.warnings]
    out += scope.copy_of
    return out


def subject_hash(key: bytes, subject: str) -> str:
    return hmac.digest(key, subject.encode(), "sha256").hex()


def _holdings(catalog: Catalog, store: str, include_system: bool) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}  # system collections (an audit index) only when asked: piiguard.system
    for collection, name, pii_type, _confidence in catalog.pii_fields(store, include_system=include_system):
        out.setdefault(collection, {})[name] = pii_type
    return out


def _copy_of(copies: list[dict[str, Any]], store: str, collection: str) -> dict[str, Any] | None:
    short = collection.rsplit(".", 1)[-1]
    for c in copies:
        if c["target_store"] == store and c["target_collection"] in (collection, short):
            return c
    return None


@contextmanager
def _opened(store: Store, collection: str, timeout: float) -> Iterator[tuple[Connector, CollectionInfo]]:
    with connectors.get(store.engine)(store, timeout=timeout) as connector:
        yield connector, find_collection(connector, collection)


def _read(store: Store, collection: str, columns: list[str], timeout: float) -> Iterator[pa.RecordBatch]:
    with _opened(store, collection, timeout) as (connector, info):
        yield from connector.read(info, columns, BATCH_ROWS)


def _readable(fields: Mapping[str, str], columns: list[str]) -> dict[str, str]:
    """The scanned fields a table's reader can read: its columns (``profile.email`` in a JSON column
    is not one; its reader reads ``profile`` whole)."""
    known = set(columns)
    return {f: t for f, t in fields.items() if f in known}


SKIP = "skip"
# a field's name that says it identifies a customer (the person), in English and its localised forms
_PERSON_WORDS = ("customer", "cust", "user", "member", "account", "acct", "client", "kunde", "kunden", "kd", "knr",
                 "kdnr", "kundennr", "kundennummer", "mitglied", "benutzer", "nutzer", "cliente", "klant", "uid",
                 "person", "subscriber", "patient", "owner")
# a name that says the record (or field) is something else's: a session, a token, an order …
_OTHER_WORDS = ("session", "sess", "sid", "token", "order", "bestell", "auftrag", "invoice", "rechnung", "payment",
                "txn", "transaction", "cart", "event", "request", "trace", "message", "ticket", "shipment")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(name.rsplit(".", 1)[-1].replace("[]", ""))]


def _says(name: str, words: tuple[str, ...]) -> bool:
    """Whether a name's words (``customer_id``, ``KundenNr``, ``kd_nr``, ``userid``) start with one of ``words``."""
    return any(w == word or (len(word) > 3 and w.startswith(word)) for w in _words(name) for word in words)


def _subject(kinds: Mapping[str, str], *, collection: str = "", primary_key: tuple[str, ...] = (),
             chosen: str | None = None) -> str | None:
    """The field that says who a record is about.

    ``chosen`` (``respond.scope`` in the configuration) decides when given. Otherwise a customer key,
    else an e-mail; a plain field before one inside an array (a document's owner before its list of
    members). Of customer keys, a child table's (sessions, tokens, orders: its name, or its primary
    key's, says so) own primary key and keys whose name says session/order/token are not people; a
    key whose name says customer/user/member/account/client (``kd``, ``kundennr`` …) comes first, except
    that a parent table's own primary key (``users.id``) is its person."""
    if chosen is not None:
        return None if chosen == SKIP else chosen
    child = _says(collection, _OTHER_WORDS) or any(_says(k, _OTHER_WORDS) for k in primary_key)
    keys = [f for f, k in kinds.items() if k == CUSTOMER_ID and not _says(f, _OTHER_WORDS)
            and not (child and (f in primary_key or not _says(f, _PERSON_WORDS)))]
    if keys:
        def rank(f: str) -> tuple[int, int]:
            own = f in primary_key and not child
            return (0 if own else 1 if _says(f, _PERSON_WORDS) else 2, f.count("[]"))
        return sorted(keys, key=rank)[0]
    found = sorted((f for f, k in kinds.items() if k == "email"), key=lambda f: f.count("[]"))
    return found[0] if found else None


def _fallback(kinds: Mapping[str, str], subject: str) -> str | None:
    """The identifier a record is known by when its subject field is empty: its (plain) e-mail, else
    another plain customer key."""
    for kind in ("email", CUSTOMER_ID):
        found = sorted(f for f, k in kinds.items() if k == kind and f != subject and "[]" not in f)
        if found:
            return found[0]
    return None


def _is_list(column: pa.Array) -> bool:
    return bool(pa.types.is_list(column.type) or pa.types.is_large_list(column.type))


def _aligned(subject: str, names: list[str]) -> list[str]:
    """The subject and the fields whose items line up with its items: those under the same (one) array
    (``members[].phone`` beside ``members[].email``). Any other field is the whole record's."""
    if subject.count("[]") != 1:
        return [subject]
    array = subject[:subject.index("[]")]
    return [subject] + [f for f in names if f != subject and f.count("[]") == 1 and f[:f.index("[]")] == array]


def find_scope(catalog: Catalog, incident: dict[str, Any], stores: Mapping[str, Store], key: bytes, *,
               timeout: float = 30.0, include_system: bool = False,
               subjects: Mapping[str, str] | None = None, canary_key: bytes | None = None) -> Scope:
    """Who was in the incident's stores and which of their data; every network step bounded by ``timeout``.
    System collections (:mod:`piiguard.system`) are read only with ``include_system``. ``subjects``
    (``respond.scope``) names the field that identifies people per ``store.collection``, or ``skip``.

    A record whose subject is empty is known by its e-mail (or another plain customer key); a record
    with exposed PII and no identifier at all is counted per collection (``unidentified``), as is a
    record the reader could not read (``unreadable``): both are limits of the exact count. A collection
    with PII and no field that identifies a person is listed in ``not_scoped``.

    With ``canary_key`` (the discovery key), records holding a value of a planted canary set — in the
    production table or in a copy of it — are nobody and are left out, counted in a warning; without
    it, while sets are planted, a warning says their rows may be counted as people."""
    scope = Scope()
    canaries = _Canaries.of(catalog, canary_key)
    chosen_by = dict(subjects or {})
    copies = catalog.copies(status="active")
    found = found_stores(catalog, incident["stores"], stores)  # discovered addresses, read as anyone could
    for name in incident["stores"]:
        store = stores.get(name) or found.get(name)
        if store is None:
            raise UsageError(f"store {name!r} is not in the configuration nor in the inventory",
                             hint="add it to piiguard.yaml (`piiguard adopt ADDRESS --name NAME`)")
        links = catalog.links(store=name) if name in found else []
        scope.copy_of += [f"{name} {line}" for line in lineage(links)]
        held = _holdings(catalog, name, include_system) or (held_by_links(catalog, links) if name in found else {})
        if not held and name in found:
            raise UsageError(f"nothing says what {name} holds: it was never scanned and no copy link names a "
                             "source", hint="adopt it (`piiguard adopt`) and scan it, or build fingerprints "
                             "(`piiguard fingerprint build`) and run `piiguard discover` again")
        if not held:
            only_system = not include_system and catalog.system_pii(name)
            raise UsageError(f"the catalog holds no scan of {name} with PII" + (" outside its system collections"
                             if only_system else ""), hint="--include-system reads them" if only_system
                             else f"run `piiguard scan {name}`")
        for collection, fields in held.items():
            where = f"{name}.{collection}"
            copy = _copy_of(copies, name, collection)
            try:
                with _opened(store, collection, timeout) as (connector, info):
                    # a document reader reads any path; a table's reader its columns (found without a sample)
                    labels = (_labels(copy) if copy is not None else dict(fields) if connector.reads_paths
                              else _readable(fields, connector.columns(info)))
                    kinds = {f: shown.split(" (")[0] for f, shown in labels.items()}
                    chosen = chosen_by.get(where)
                    if chosen is not None and chosen != SKIP and chosen not in labels:
                        raise UsageError(f"respond.scope: {where} has no PII field {label(chosen)!r} to identify "
                                         "people by", hint=f"its fields: {', '.join(sorted(labels))}, or skip")
                    subject = _subject(kinds, collection=collection, primary_key=info.primary_key, chosen=chosen)
                    if subject is None:
                        if chosen != SKIP:
                            scope.not_scoped.append(where)
                        continue
                    mapping = None
                    if copy is not None and copy["transforms"][subject]["masker"] != "keep":
                        mapping = _unmask(copy, subject, stores, key, timeout)
                    # a copy's other identifiers are pseudonyms: only its subject traces back
                    spare = _fallback(kinds, subject) if copy is None else None
                    names = list(labels)
                    made: dict[tuple[bool, ...], frozenset[str]] = {}  # few distinct sets: each stored once
                    seen: dict[str, Any] = {"field": subject, "kind": kinds[subject], "records": 0, "unidentified": 0,
                                            "unreadable": 0}
                    for batch in _scope_batches(connector, info, names, seen):
                        batch = canaries.without(batch, names)
                        seen["records"] += batch.num_rows
                        seen["unidentified"] += _add(scope.people, batch, names, subject, labels, mapping, made, spare)
                    scope.collections[where] = seen
            except UsageError:
                raise  # the configuration's mistake, not the store's
            except (PiiguardError, OSError) as exc:
                if name not in found:
                    raise
                # a found store is nobody's to fix: it may be gone by now; say so, keep what it was known as
                known = "; ".join(lineage(links)) or "no copy link"
                scope.warnings.append(f"{name} could not be read now ({type(exc).__name__}): nobody in "
                                      f"{label(collection)} is listed from it; last known: {known}")
                continue
            scope.sources.append(where + (f" (copy {copy['id']} of {copy['source_store']}."
                                          f"{copy['source_collection']})" if copy else ""))
            scope.derived += [c["id"] for c in copies
                              if c["source_store"] == name and c["source_collection"] == collection]
    visited = {f"{name}.{collection}" for name in incident["stores"] for collection in _holdings(
        catalog, name, include_system)}
    for where in sorted(chosen_by):
        if where not in visited and any(where.startswith(f"{name}.") for name in incident["stores"]):
            scope.warnings.append(f"respond.scope names {label(where)}, which is no collection with PII in this "
                                  "incident's scan: its mapping was not used (the names are the scan's, as "
                                  "`piiguard incident scope` lists them)")
    scope.warnings += canaries.warnings()
    by_kind: dict[str, list[str]] = {}
    for where, seen in scope.collections.items():
        by_kind.setdefault(seen["kind"], []).append(where)
    if len(by_kind) > 1:
        scope.warnings.append("collections identify people by different kinds ("
                              + "; ".join(f"{k}: {', '.join(w)}" for k, w in sorted(by_kind.items()))
                              + "): one person may be listed once per kind; name the field with respond.scope")
    return scope


@dataclass
class _Canaries:
    """Planted canary records, told by their values' keyed digests and left out of the scope."""

    key: bytes | None
    digests: frozenset[bytes]
    planted: int  # sets planted now (a warning without the key)
    left_out: int = 0

    @classmethod
    def of(cls, catalog: Catalog, key: bytes | None) -> _Canaries:
        from piiguard.discovery.canaries import planted_sets

        planted = len(catalog.canaries(status="planted"))
        digests = frozenset(d for s in planted_sets(catalog, key) for d in s.by_digest) if key else frozenset()
        return cls(key, digests, planted)

    def _is_canary(self, value: Any) -> bool:
        from piiguard.discovery import canary_values as cv

        assert self.key is not None
        if isinstance(value, list):
            return any(self._is_canary(v) for v in value)
        if not isinstance(value, str) or not value:
            return False
        forms = {value, *(p for p in value.split("/") if len(p) >= 7)} if "/" in value else (value,)
        return any(cv.digest(self.key, f) in self.digests for f in forms)

    def without(self, batch: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
        if not self.digests or batch.num_rows == 0:
            return batch
        keep = [True] * batch.num_rows
        for name in names:
            for i, value in enumerate(batch.column(name).to_pylist()):
                if keep[i] and self._is_canary(value):
                    keep[i] = False
        dropped = keep.count(False)
        if not dropped:
            return batch
        self.left_out += dropped
        return batch.filter(pa.array(keep))

    def warnings(self) -> list[str]:
        if self.key is None and self.planted:
            return [f"{self.planted} canary set(s) are planted and the discovery key is not set: their rows may be "
                    "counted as people (set discovery.key_env to leave them out)"]
        if self.left_out:
            return [f"left out {self.left_out:,} record(s) of planted canaries: they are nobody"]
        return []


def _scope_batches(connector: Connector, info: CollectionInfo, names: list[str],
                   seen: dict[str, Any]) -> Iterator[pa.RecordBatch]:
    """The reader's batches; a record it could not read whole (a JSON line nested 10,000 deep) is
    counted in ``seen["unreadable"]`` and the read goes on, where the reader can say so (a copy refuses)."""
    reader = getattr(connector, "read_lenient", None)
    if reader is None:
        yield from connector.read(info, names, BATCH_ROWS)
        return
    skipped: dict[str, int] = {}
    yield from reader(info, names, BATCH_ROWS, skipped)
    seen["unreadable"] += sum(skipped.values())


def _add(people: dict[str, frozenset[str]], batch: pa.RecordBatch, names: list[str], subject: str,
         labels: Mapping[str, str], mapping: Mapping[str, str] | None,
         made: dict[tuple[bool, ...], frozenset[str]], spare: str | None = None) -> int:
    """One batch's people and what their records held, added to ``people`` (a union per person); the
    number of records that held PII but named nobody.

    A record names one person, or in a list (``members[].email``) one per item; each gets the record's
    fields that hold a value, except that a field under the subject's array counts for a person only
    where it holds a value at that person's item. A record whose subject is empty is known by ``spare``
    (its e-mail) when that holds a value. ``made`` keeps each set of categories made so far (few
    distinct ones occur), by which fields held a value.
    """
    unnamed = 0
    ids = batch.column(subject)
    if not _is_list(ids):
        present = [has_value(batch.column(f)) for f in names]
        others = batch.column(spare).to_pylist() if spare is not None else None
        for i, value in enumerate(ids.to_pylist()):
            person = mapping.get(value) if mapping is not None and value else value
            row = tuple(col[i] for col in present)
            if not person:
                person = others[i] if others is not None else None
                if not person:
                    unnamed += any(row)
                    continue
            types = made.get(row)
            if types is None:
                types = made[row] = frozenset(labels[f] for f, p in zip(names, row, strict=True) if p)
            before = people.get(person)
            people[person] = types if before is None else before | types
        return unnamed
    aligned = set(_aligned(subject, names))
    by_item = [f in aligned for f in names]  # lined up with the subject's items, or the whole record's
    items: list[list[Any]] = [batch.column(f).to_pylist() if b else [] for f, b in zip(names, by_item, strict=True)]
    held = [[] if b else has_value(batch.column(f)) for f, b in zip(names, by_item, strict=True)]
    for i, values in enumerate(ids.to_pylist()):
        record: list[Any] = [items[k][i] or () if b else held[k][i] for k, b in enumerate(by_item)]
        if not any(values or ()):
            unnamed += any(any(v) if b else bool(v) for b, v in zip(by_item, record, strict=True))
            continue
        for j, value in enumerate(values):
            person = mapping.get(value) if mapping is not None and value else value
            if not person:
                continue
            row = tuple(bool(j < len(v) and v[j]) if b else bool(v) for b, v in zip(by_item, record, strict=True))
            types = made.get(row)
            if types is None:
                types = made[row] = frozenset(labels[f] for f, p in zip(names, row, strict=True) if p)
            before = people.get(person)
            people[person] = types if before is None else before | types
    return unnamed


def _labels(copy: dict[str, Any]) -> dict[str, str]:
    """A copy's fields and what a reader of it saw: ``email (pseudonym)``, ``phone (keep-prefix)``,
    ``city`` (kept as it was). Dropped fields were not there."""
    return {f: t["pii_type"] + ("" if t["masker"] == "keep" else f" ({t['masker']})")
            for f, t in copy["transforms"].items() if t["pii_type"] and t["masker"] != "drop"}


def _unmask(copy: dict[str, Any], subject: str, stores: Mapping[str, Store], key: bytes,
            timeout: float) -> dict[str, str]:
    """pseudonym → real identifier, by pseudonymising the copy's source again with the copy's key."""
    if key_id(key) != copy["key_id"]:
        raise UsageError(f"the key given is not the key of copy {copy['id']} (key id {copy['key_id']})",
                         hint="give the copy's key: pseudonyms can only be traced back with it")
    source = stores.get(copy["source_store"])
    if source is None:
        raise UsageError(f"copy {copy['id']}'s source store {copy['source_store']!r} is not in the configuration")
    transform = copy["transforms"].get(subject)
    if transform is None or transform["masker"] != "pseudonym":
        raise UsageError(f"copy {copy['id']} did not pseudonymise {subject!r}: it cannot be traced back")
    masker = BatchMasker([FieldRule(subject, None, "pseudonym", transform["options"], "")], key, None, threads=2)
    mapping: dict[str, str] = {}
    try:
        for batch in _read(source, copy["source_collection"], [subject], timeout):
            values = batch.column(0)
            if _is_list(values):
                values = pc.list_flatten(values)  # a document's list of people: each item is one
            masked, _ = masker(pa.RecordBatch.from_arrays([values], names=[subject]))
            for real, pseudonym in zip(values.to_pylist(), masked.column(0).to_pylist(), strict=True):
                if real is not None:
                    mapping[pseudonym] = real
    finally:
        masker.close()
    return mapping


def keyed(scope: Scope, key: bytes) -> Iterator[tuple[str, tuple[str, ...]]]:
    """What the catalog keeps of a scope: each person's keyed hash and exposed types (sorted)."""
    kinds: dict[frozenset[str], tuple[str, ...]] = {}  # people share a handful of sets: sort each once
    for person, types in scope.people.items():
        yield subject_hash(key, person), kinds.get(types) or kinds.setdefault(types, tuple(sorted(types)))


def write_subjects(scope: Scope, path: Path, *, force: bool = False, key: bytes = b"") -> str:
    """The operator's subject list: identifier and exposed categories, readable by the owner only
    (0600, never through a symlink; an existing file is replaced only with ``force``, atomically).
    Returns the file's keyed MAC (HMAC-SHA256 of its bytes under ``key``; "" without a key): the
    timeline records it, so a file read back unchanged needs no check line by line."""
    joined: dict[frozenset[str], str] = {}
    with safefile.create(path, force=force) as f:
        signed = _Signed(f, key)
        out = csv.writer(signed)
        out.writerow(["subject", "exposed"])
        for person in sorted(scope.people):
            types = scope.people[person]
            out.writerow([person, joined.get(types) or joined.setdefault(types, ";".join(sorted(types)))])
    return signed.mac.hexdigest() if key else ""


class _Signed:
    """A text file that keeps the keyed MAC of the UTF-8 bytes written to it."""

    def __init__(self, f: IO[str], key: bytes) -> None:
        self.f, self.mac = f, hmac.new(key, digestmod="sha256")

    def write(self, text: str) -> int:
        self.mac.update(text.encode())
        return self.f.write(text)


class _Tee(io.RawIOBase):
    """A binary file whose bytes, as they are read, go into a MAC too."""

    def __init__(self, f: io.RawIOBase, mac: Any) -> None:
        self.f, self.mac = f, mac

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.f.readinto(buffer) or 0
        self.mac.update(memoryview(buffer)[:n])
        return n


Subject: TypeAlias = tuple[str, bytes, tuple[str, ...]]  # identifier, keyed hash (HMAC digest), exposed types
PREFIX = 16  # bytes of each keyed hash held for the scope: 128 bits, 16 bytes a person


class SubjectFile:
    """The subject file ``incident scope`` wrote, read back a chunk at a time and checked against the
    catalog's keyed hashes: a line whose hash is not in the scope, or a subject named twice, is refused
    with its line number (the file was edited).

    Memory stays small at any size: the scope's hashes are held as 16-byte prefixes in one sorted array
    with one flag per person for "named already", never as a set of strings, and the file is never held
    whole. A file byte for byte the one ``incident scope`` wrote (its keyed MAC is the one the timeline
    recorded) is known to hold exactly the scope, so :meth:`check` only computes that MAC and
    :meth:`ids` computes it as it reads. Any other file (a part of the list, say) is checked line by
    line: :meth:`check` reads it all before anything is done with it and keeps each line's keyed hash
    (32 bytes) and a fingerprint of its identifier (8 bytes, Python's per-process keyed ``hash``), about
    57 bytes a person in all, and :meth:`chunks` refuses a line that is not the one checked. In every
    case :meth:`chunks` checks each line it hands on against the scope.
    """

    def __init__(self, path: Path, catalog: Catalog, incident_id: int, key: bytes, chunk: int = 10_000) -> None:
        self.path, self.incident_id, self.key, self.chunk = path, incident_id, key, chunk
        self.catalog = catalog
        if not catalog.count("scope", incident_id):
            raise UsageError(f"incident {incident_id} has no scope yet",
                             hint=f"run `piiguard incident scope {incident_id}`")
        self._checked_lines: tuple[bytes, np.ndarray[Any, Any]] | None = None
        scoped = [e["payload"] for e in catalog.timeline(incident_id) if e["kind"] == "scoped"]
        self.written: dict[str, Any] = json.loads(scoped[-1]) if scoped else {}

    @functools.cached_property
    def scope(self) -> np.ndarray[Any, Any]:
        """The scope's keyed hashes (16-byte prefixes, sorted), read when a line is first checked."""
        return prefixes(self.catalog.scope_hashes(self.incident_id), PREFIX)

    def _mac(self) -> Any:
        return hmac.new(self.key, digestmod="sha256")

    def _as_written(self, mac: Any) -> bool:
        recorded = self.written.get("subject_file")
        return isinstance(recorded, str) and bool(recorded) and hmac.compare_digest(mac.hexdigest(), recorded)

    def check(self) -> int:
        """Read the whole file, refusing it at the first line that is not in the scope; the people in it."""
        mac = self._mac()
        try:
            with self.path.open("rb") as f:
                while block := f.read(1 << 20):
                    mac.update(block)
        except OSError as exc:
            raise UsageError(f"cannot read the subject file {self.path} ({exc.strerror})") from exc
        if self._as_written(mac):
            return int(self.written.get("people", 0))
        digests, prints = bytearray(), array.array("q")
        for ids, found, _ in self._checked():
            digests += b"".join(found)
            prints.extend(map(hash, ids))
        self._checked_lines = bytes(digests), np.frombuffer(prints, dtype=np.int64)
        return len(prints)

    def ids(self) -> list[str]:
        """Every identifier in the file, checked first, in order."""
        mac = self._mac()
        out = [s for ids, _ in self._read(mac) for s in ids]
        if not self._as_written(mac):
            out = [s for ids, _, _ in self._checked() for s in ids]
        out.sort()  # the file is in order already: a linear pass
        return out

    def chunks(self) -> Iterator[list[Subject]]:
        """The file's people, ``chunk`` at a time: the lines :meth:`check` checked, or each checked now."""
        kinds: dict[str, tuple[str, ...]] = {}
        for ids, digests, exposed in self._known() if self._checked_lines is not None else self._checked():
            if len(kinds) > 4096:  # a handful in a real scope; never unbounded
                kinds.clear()
            yield [(s, d, kinds.get(e) or kinds.setdefault(e, tuple(t for t in e.split(";") if t)))
                   for s, d, e in zip(ids, digests, exposed, strict=True)]

    def _known(self) -> Iterator[tuple[list[str], list[bytes], list[str]]]:
        assert self._checked_lines is not None
        digests, prints = self._checked_lines
        done = 0
        for ids, exposed in self._read():
            now = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))
            had = prints[done:done + len(ids)]
            same = np.zeros(len(ids), dtype=bool)  # a line past the checked ones is not the same
            same[:len(had)] = now[:len(had)] == had
            if not same.all():
                raise UsageError(f"{self.path} line {2 + done + int(np.argmin(same))}: changed since it was checked",
                                 hint="run the command again, and leave the file alone while it runs")
            yield ids, [digests[i:i + 32] for i in range(32 * done, 32 * (done + len(ids)), 32)], exposed
            done += len(ids)

    def _checked(self) -> Iterator[tuple[list[str], list[bytes], list[str]]]:
        seen = np.zeros(len(self.scope), dtype=bool)
        line = 2
        for ids, exposed in self._read():
            digests = [hmac.digest(self.key, s.encode(), "sha256") for s in ids]
            found = np.frombuffer(b"".join(d[:PREFIX] for d in digests), dtype=self.scope.dtype)
            at = np.searchsorted(self.scope, found).clip(0, len(self.scope) - 1)
            bad = self.scope[at] != found
            twice = seen[at] | _repeated(at)
            if bad.any() or twice.any():
                first = int(np.flatnonzero(bad | twice)[0])
                what = "not a subject of" if bad[first] else "a subject named twice in"
                raise UsageError(f"{self.path} line {line + first}: {what} incident {self.incident_id}'s scope",
                                 hint="use the file `piiguard incident scope` wrote, and the same key")
            seen[at] = True
            line += len(ids)
            yield ids, digests, exposed

    def _read(self, mac: Any = None) -> Iterator[tuple[list[str], list[str]]]:
        """The file's (identifiers, exposed) a chunk at a time; its bytes go into ``mac`` as they are read."""
        try:
            raw = self.path.open("rb", buffering=0)
        except OSError as exc:
            raise UsageError(f"cannot read the subject file {self.path} ({exc.strerror})") from exc
        source: io.RawIOBase = raw if mac is None else _Tee(raw, mac)
        with raw, io.TextIOWrapper(io.BufferedReader(source, 1 << 20), encoding="utf-8", newline="") as f:
            rows = filter(None, csv.reader(f))  # blank lines are skipped, as csv.DictReader skips them
            header = next(rows, [])
            where = {name: n for n, name in enumerate(header)}  # a name given twice: the last, as DictReader
            subject, exposed = where.get("subject", -1), where.get("exposed", -1)
            try:
                while chunk := list(itertools.islice(rows, self.chunk)):
                    yield ([r[subject] if 0 <= subject < len(r) else "" for r in chunk],
                           [r[exposed] if 0 <= exposed < len(r) else "" for r in chunk])
            except (OSError, csv.Error) as exc:
                raise UsageError(f"cannot read the subject file {self.path} ({type(exc).__name__})") from exc


def prefixes(blobs: Iterable[bytes], width: int) -> np.ndarray[Any, Any]:
    """Keyed hashes (``width`` bytes each, concatenated) as one sorted array of their first 16 bytes."""
    parts = [np.frombuffer(b, dtype=np.uint8).reshape(-1, width)[:, :PREFIX] for b in blobs]
    out = np.ascontiguousarray(np.concatenate(parts) if parts else np.empty((0, PREFIX), dtype=np.uint8))
    flat = out.view(f"S{PREFIX}").ravel()
    if len(flat) > 1 and not bool((flat[1:] >= flat[:-1]).all()):
        flat = np.sort(flat)
    return flat


def _repeated(at: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """True at each position whose value came earlier in the same array."""
    out = np.zeros(len(at), dtype=bool)
    if len(at) > 1:
        order = np.argsort(at, kind="stable")
        ranked = at[order]
        out[order[1:]] = ranked[1:] == ranked[:-1]
    return out


def read_subjects(path: Path, catalog: Catalog, incident_id: int, key: bytes) -> dict[str, list[str]]:
    """The subject file back whole (``SubjectFile`` reads it a chunk at a time), each line checked
    against the catalog's keyed hashes: a file edited to add people who were not in scope is refused."""
    subjects = SubjectFile(path, catalog, incident_id, key)
    subjects.check()
    return {s: list(kinds) for chunk in subjects.chunks() for s, _, kinds in chunk}
