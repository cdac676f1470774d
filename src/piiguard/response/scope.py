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

import csv
import hashlib
import hmac
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from piiguard import safefile
from piiguard.catalog import Catalog
from piiguard.classify.engine import CUSTOMER_ID
from piiguard.connectors.base import Connector, connectors
from piiguard.errors import UsageError
from piiguard.masking.pipeline import BatchMasker, FieldRule, find_collection, key_id
from piiguard.model import CollectionInfo, Store
from piiguard.registry import driver

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


def subject_hash(key: bytes, subject: str) -> str:
    return hmac.new(key, subject.encode(), hashlib.sha256).hexdigest()


def _holdings(catalog: Catalog, store: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for collection, name, pii_type, _confidence in catalog.pii_fields(store):
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


def _subject(kinds: Mapping[str, str]) -> str | None:
    """The field that says who a record is about: a customer key, else an e-mail; a plain field before
    one inside an array (a document's owner before its list of members)."""
    for kind in (CUSTOMER_ID, "email"):
        found = sorted((f for f, k in kinds.items() if k == kind), key=lambda f: f.count("[]"))
        if found:
            return found[0]
    return None


def _is_list(column: pa.Array) -> bool:
    return bool(pa.types.is_list(column.type) or pa.types.is_large_list(column.type))


def _present(column: pa.Array) -> list[bool]:
    """Per record: does the field hold a value (not NULL, not empty); for a list, does any item."""
    if _is_list(column):
        held = pc.fill_null(pc.not_equal(pc.list_flatten(column), ""), False).to_numpy(zero_copy_only=False)
        out = np.zeros(len(column), dtype=bool)
        out[pc.list_parent_indices(column).to_numpy()[held]] = True
        return list(out.tolist())
    return list(pc.invert(pc.or_kleene(pc.is_null(column), pc.equal(column, ""))).to_pylist())


def _aligned(subject: str, names: list[str]) -> list[str]:
    """The subject and the fields whose items line up with its items: those under the same (one) array
    (``members[].phone`` beside ``members[].email``). Any other field is the whole record's."""
    if subject.count("[]") != 1:
        return [subject]
    array = subject[:subject.index("[]")]
    return [subject] + [f for f in names if f != subject and f.count("[]") == 1 and f[:f.index("[]")] == array]


def find_scope(catalog: Catalog, incident: dict[str, Any], stores: Mapping[str, Store], key: bytes, *,
               timeout: float = 30.0) -> Scope:
    """Who was in the incident's stores and which of their data; every network step bounded by ``timeout``."""
    scope = Scope()
    copies = catalog.copies(status="active")
    for name in incident["stores"]:
        store = stores.get(name)
        if store is None:
            raise UsageError(f"store {name!r} is not in the configuration", hint="add it to piiguard.yaml")
        held = _holdings(catalog, name)
        if not held:
            raise UsageError(f"the catalog holds no scan of {name} with PII", hint=f"run `piiguard scan {name}`")
        for collection, fields in held.items():
            copy = _copy_of(copies, name, collection)
            with _opened(store, collection, timeout) as (connector, info):
                # a document reader reads any path; a table's reader its columns (found without a sample)
                labels = (_labels(copy) if copy is not None else dict(fields) if connector.reads_paths
                          else _readable(fields, connector.columns(info)))
                kinds = {f: label.split(" (")[0] for f, label in labels.items()}
                subject = _subject(kinds)
                if subject is None:
                    continue  # no field says who a record is about: nothing to scope by
                mapping = None
                if copy is not None and copy["transforms"][subject]["masker"] != "keep":
                    mapping = _unmask(copy, subject, stores, key, timeout)
                names = list(labels)
                made: dict[tuple[bool, ...], frozenset[str]] = {}  # few distinct sets: each stored once
                for batch in connector.read(info, names, BATCH_ROWS):
                    _add(scope.people, batch, names, subject, labels, mapping, made)
            scope.sources.append(f"{name}.{collection}" + (f" (copy {copy['id']} of {copy['source_store']}."
                                                           f"{copy['source_collection']})" if copy else ""))
            scope.derived += [c["id"] for c in copies
                              if c["source_store"] == name and c["source_collection"] == collection]
    return scope


def _add(people: dict[str, frozenset[str]], batch: pa.RecordBatch, names: list[str], subject: str,
         labels: Mapping[str, str], mapping: Mapping[str, str] | None,
         made: dict[tuple[bool, ...], frozenset[str]]) -> None:
    """One batch's people and what their records held, added to ``people`` (a union per person).

    A record names one person, or in a list (``members[].email``) one per item; each gets the record's
    fields that hold a value, except that a field under the subject's array counts for a person only
    where it holds a value at that person's item. ``made`` keeps each set of categories made so far
    (few distinct ones occur), by which fields held a value.
    """
    ids = batch.column(subject)
    if not _is_list(ids):
        present = [_present(batch.column(f)) for f in names]
        for i, value in enumerate(ids.to_pylist()):
            person = mapping.get(value) if mapping is not None and value else value
            if not person:
                continue
            row = tuple(col[i] for col in present)
            types = made.get(row)
            if types is None:
                types = made[row] = frozenset(labels[f] for f, p in zip(names, row, strict=True) if p)
            before = people.get(person)
            people[person] = types if before is None else before | types
        return
    aligned = set(_aligned(subject, names))
    by_item = [f in aligned for f in names]  # lined up with the subject's items, or the whole record's
    items: list[list[Any]] = [batch.column(f).to_pylist() if b else [] for f, b in zip(names, by_item, strict=True)]
    held = [[] if b else _present(batch.column(f)) for f, b in zip(names, by_item, strict=True)]
    for i, values in enumerate(ids.to_pylist()):
        if not values:
            continue
        record: list[Any] = [items[k][i] or () if b else held[k][i] for k, b in enumerate(by_item)]
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


def write_subjects(scope: Scope, path: Path, *, force: bool = False) -> None:
    """The operator's subject list: identifier and exposed categories, readable by the owner only
    (0600, never through a symlink; an existing file is replaced only with ``force``, atomically)."""
    with safefile.create(path, force=force) as f:
        out = csv.writer(f)
        out.writerow(["subject", "exposed"])
        for person, types in sorted(scope.people.items()):
            out.writerow([person, ";".join(sorted(types))])


def read_subjects(path: Path, catalog: Catalog, incident_id: int, key: bytes) -> dict[str, list[str]]:
    """The subject file back, each line checked against the catalog's keyed hashes: a file edited to
    add people who were not in scope is refused."""
    known = catalog.scope_subjects(incident_id)
    if not known:
        raise UsageError(f"incident {incident_id} has no scope yet",
                         hint=f"run `piiguard incident scope {incident_id}`")
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise UsageError(f"cannot read the subject file {path} ({exc.strerror})") from exc
    out = {}
    for n, row in enumerate(rows, start=2):
        subject = row.get("subject") or ""
        if subject_hash(key, subject) not in known:
            raise UsageError(f"{path} line {n}: not a subject of incident {incident_id}'s scope",
                             hint="use the file `piiguard incident scope` wrote, and the same key")
        out[subject] = [t for t in (row.get("exposed") or "").split(";") if t]
    return out
