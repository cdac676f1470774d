"""Canary customers: planned, planted, found in copies, removed — piiguard's own rows only.

A canary set is ``count`` synthetic customers inserted into a production table. Their values are
derived from the discovery key and the set's nonce (:mod:`piiguard.discovery.canary_values`), never
stored or printed: a plan shows the statement's shape, how many rows and which field gets which kind
of value, because anyone who could read the values in a log could also strip them from a stolen copy.
The catalog keeps the nonce, the fields and keyed digests of every value, which is enough to

- find the set in another store (:func:`find`): proof that the store copies the table, with no
  fingerprint key shared;
- recognise a value arriving at the trap (:mod:`piiguard.discovery.trap`): proof of access;
- remove exactly the planted rows (:func:`remove`): a row is deleted only when every canary field
  holds its derived value.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from piiguard.catalog import Catalog
from piiguard.config import Config
from piiguard.discovery import canary_values as cv
from piiguard.discovery.base import CopyLink
from piiguard.discovery.canary_sql import SUPPORTED, NotExact, Table, open_table
from piiguard.discovery.canary_values import ValueKind
from piiguard.discovery.fingerprints import key_id
from piiguard.errors import CollectionError, UsageError
from piiguard.model import Store

log = logging.getLogger(__name__)
MAX_COUNT = 10_000
MIN_MATCHABLE_LENGTH = 12  # a canary value cut shorter than this is not distinctive: the field is not used


@dataclass(frozen=True)
class CanaryField:
    name: str
    kind: ValueKind
    pii_type: str | None  # the scan's type, or None for a required column filled by its type
    max_length: int | None = None
    # a required number's observed min and max (read when planning; never printed: it is real data),
    # and whether a planted value must be one no row holds (a primary key, a unique index)
    span: cv.Span | None = None
    unique: bool = False
    shape: str | None = None  # a user name's: the character classes and lengths of the column's values

    @property
    def recorded(self) -> str:
        return cv.encode_kind(self.kind, self.shape)


@dataclass(frozen=True)
class CanaryPlan:
    """What ``canary plant`` would do; safe to print (it holds no value)."""

    store: str
    engine: str
    collection: str
    count: int
    fields: tuple[CanaryField, ...]
    nonce: str
    resumes: int | None = None  # a set recorded as planned whose insert did not finish

    def lines(self) -> list[str]:
        names = ", ".join(f.name for f in self.fields)
        out = [f"plant {self.count} canary customer(s) in {self.store}.{self.collection} ({self.engine}), "
               "in one transaction:",
               f"  INSERT INTO {self.collection} ({names}) VALUES (…) × {self.count}"]
        out += [f"  {f.name}: {f.kind.value}" + (f" (scanned as {f.pii_type})" if f.pii_type else
                                                   " (required column, filled by its type" +
                                                   (", inside its observed range" if f.span else "") +
                                                   (", a value no row holds" if f.unique else "") + ")")
                for f in self.fields]
        out.append("  values are derived from the discovery key and not shown: whoever reads them could avoid them")
        if self.resumes is not None:
            out.append(f"  resumes canary set {self.resumes}, recorded as planned")
        return out


def _fields(table: Table, pii: dict[str, str], where: str) -> tuple[CanaryField, ...]:
    out: list[CanaryField] = []
    for col in table.columns():
        kind = cv.BY_PII_TYPE.get(pii.get(col.name, ""))
        if kind is not None and col.data_type in cv.TEXT_TYPES and \
                (col.max_length is None or col.max_length >= (64 if kind is ValueKind.EMAIL else MIN_MATCHABLE_LENGTH)):
            # a user name follows the column's own shape (never a value of it): a fixed name_xxxxxxxx
            # form would be filtered out by whoever knows piiguard
            shape = cv.shape_of(table.sample(col.name)) if kind in cv.SHAPED else None
            if shape and col.max_length:
                shape = _cut(shape, col.max_length)
            out.append(CanaryField(col.name, kind, pii[col.name], col.max_length, shape=shape))
        elif col.required:
            filler = cv.BY_COLUMN_TYPE.get(col.data_type)
            if filler is None:
                raise UsageError(f"{where}.{col.name} is required and of type {col.data_type}, which canaries "
                                 "cannot fill", hint="give the column a default, or plant in another table")
            # a number inside the column's observed range: 1…2·10⁹ among ids of 100000–999999 would
            # tell a canary from a customer at a glance
            span = table.span(col.name) if filler in cv.NUMBERS else None
            out.append(CanaryField(col.name, filler, None, col.max_length, span, col.unique and filler in cv.NUMBERS))
    if not any(f.kind.matchable and f.pii_type for f in out):
        raise UsageError(f"{where} has no field a canary can carry (e-mail, token, serial, MAC, SSID, name, phone, "
                         "link)", hint="scan it first (piiguard scan …), or plant in the customers table")
    return tuple(out)


def _cut(shape: str, max_length: int) -> str | None:
    classes, seps, lo, hi = cv.parse_shape(shape)
    hi = min(hi, max_length)
    return f"{classes}{seps}:{lo}-{hi}" if hi >= lo else None


def plan(config: Config, catalog: Catalog, key: bytes, store: Store, collection: str, count: int, *,
         timeout: float = 10.0) -> CanaryPlan:
    """The plan of a set: reads the table's columns and the catalog's latest scan, changes nothing."""
    where = f"{store.name}.{collection}"
    if store.engine not in SUPPORTED:
        open_table(store, collection, timeout)  # raises the refusal, naming the engine
    if not 0 < count <= MAX_COUNT:
        raise UsageError(f"--count {count}: plant between 1 and {MAX_COUNT:,} canaries",
                         hint="a few dozen are enough: one found proves a copy")
    sets = [c for c in catalog.canaries() if c["store"] == store.name and c["collection"] == collection]
    planted = [c for c in sets if c["status"] == "planted"]
    if planted:
        raise UsageError(f"{where} already holds canary set {planted[0]['id']} (planted {planted[0]['planted']}); "
                         "nothing was planted", hint=f"piiguard canary remove {planted[0]['id']} --apply first")
    pii = {f: t for c, f, t, _ in catalog.pii_fields(store.name) if c == collection}
    if not pii:
        raise UsageError(f"the catalog has no scan of {where} with PII fields",
                         hint=f"run piiguard scan {store.name} first: canaries take the shape of its PII fields")
    table = open_table(store, collection, timeout)
    try:
        fields = _fields(table, pii, where)
    finally:
        table.close()
    cv.check_settings((f.kind for f in fields), config.discovery.canary.domain, config.discovery.canary.trap_url)
    kid = key_id(key)
    resumable = [c for c in sets if c["status"] == "planned" and c["count"] == count and c["key_id"] == kid
                 and c["fields"] == {f.name: f.recorded for f in fields}]
    if resumable:
        return CanaryPlan(store.name, store.engine, collection, count, fields, resumable[-1]["nonce"],
                          int(resumable[-1]["id"]))
    return CanaryPlan(store.name, store.engine, collection, count, fields, secrets.token_hex(16))


def _deriver(config: Config, key: bytes, nonce: str) -> cv.Deriver:
    return cv.Deriver(key, nonce, config.discovery.canary.domain, config.discovery.canary.trap_url)


def apply(config: Config, catalog: Catalog, key: bytes, store: Store, planned: CanaryPlan, *,
          timeout: float = 10.0) -> int:
    """Insert the plan's rows in one transaction; returns the set's id. Recorded as planned first, so
    an interrupted insert is resumed (never doubled) by the next plant."""
    kinds = {f.name: f.kind for f in planned.fields}
    deriver = _deriver(config, key, planned.nonce)
    spans = {f.name: f.span for f in planned.fields}
    shapes = {f.name: f.shape for f in planned.fields}
    rows = deriver.rows(planned.count, kinds, {f.name: f.max_length for f in planned.fields}, spans, shapes)
    unique = [f.name for f in planned.fields if f.unique and f.span]

    def redraw(index: int, field: str, attempt: int) -> object:
        # numbers are fillers, neither digested nor matched: the value actually inserted needs no
        # re-deriving, so a collision is simply drawn again (inside the insert's transaction)
        return deriver.value(index, field, kinds[field], span=spans[field], attempt=attempt)
    match = cv.matchable_fields(kinds)
    canary_id = planned.resumes
    if canary_id is None:
        canary_id = catalog.add_canary(store.name, planned.collection, planned.count, planned.nonce, key_id(key),
                                       {f.name: f.recorded for f in planned.fields}, cv.digests(key, rows, kinds))
    table = open_table(store, planned.collection, timeout)
    try:
        there = table.count(rows, match)
        if there == 0:
            table.insert(rows, unique, redraw)
        elif there != planned.count:
            raise UsageError(f"{store.name}.{planned.collection} holds {there} of canary set {canary_id}'s "
                             f"{planned.count} rows; nothing was planted", hint=f"piiguard canary remove {canary_id} "
                             "--apply, then plant again")
    finally:
        table.close()
    catalog.set_canary(canary_id, "planted")
    log.info("canary set %d planted: %d row(s) in %s.%s", canary_id, planned.count, store.name, planned.collection)
    return canary_id


@dataclass(frozen=True)
class Removal:
    canary_id: int
    store: str
    collection: str
    count: int
    fields: tuple[str, ...]  # every row deleted holds its derived value in each of them
    deleted: int | None = None  # once applied

    def lines(self) -> list[str]:
        head = (f"removed {self.deleted} row(s)" if self.deleted is not None else
                f"remove canary set {self.canary_id}: up to {self.count} row(s)")
        return [f"{head} from {self.store}.{self.collection}, in one transaction:",
                f"  DELETE FROM {self.collection} WHERE {' AND '.join(f'{f} = …' for f in self.fields)} "
                f"× {self.count}",
                "  only rows whose every canary field holds its derived value byte for byte, one per canary: "
                "if any is missing, changed or has an exact copy, nothing is removed"]


def remove(config: Config, catalog: Catalog, key: bytes, canary_id: int, *, apply: bool = False,
           timeout: float = 10.0) -> Removal:
    """Plan (or with ``apply``, do) the removal of a planted set's rows, and mark it removed."""
    found = next((c for c in catalog.canaries() if c["id"] == canary_id), None)
    if found is None:
        raise UsageError(f"no canary set {canary_id}", hint="piiguard canary list shows them")
    if found["status"] == "removed":
        raise UsageError(f"canary set {canary_id} was removed at {found['removed']}; nothing to do")
    if found["key_id"] != key_id(key):
        raise UsageError(f"canary set {canary_id} was planted under another discovery key (key id "
                         f"{found['key_id']}); nothing was removed",
                         hint="its rows can only be told from customers' with that key: configure it again")
    store = config.store(found["store"])
    if store is None:
        raise UsageError(f"canary set {canary_id} is in store {found['store']}, which the configuration no longer "
                         "names", hint="add the store back to piiguard.yaml to remove its canaries")
    recorded = {f: cv.decode_kind(k) for f, k in found["fields"].items()}
    kinds = {f: k for f, (k, _) in recorded.items()}
    match = cv.matchable_fields(kinds)
    removal = Removal(canary_id, store.name, found["collection"], int(found["count"]), tuple(match))
    if not apply:
        return removal
    rows = _deriver(config, key, found["nonce"]).rows(int(found["count"]), kinds, _lengths(found, store, timeout),
                                                      shapes={f: s for f, (_, s) in recorded.items()})
    table = open_table(store, found["collection"], timeout)
    try:
        deleted = table.delete(rows, match)
    except NotExact as exc:
        copies = f"; {exc.duplicated} of them have an exact copy piiguard did not plant" if exc.duplicated else ""
        raise CollectionError(store.name, f"canary set {canary_id}: {exc.found} row(s) hold its values, "
                              f"{found['count']} were planted{copies}; nothing was removed, the set stays planted",
                              collection=found["collection"],
                              hint="a canary row was changed, deleted or copied since it was planted: restore "
                                   f"it, then run piiguard canary remove {canary_id} --apply again") from exc
    finally:
        table.close()
    if deleted != int(found["count"]):  # delete() commits only an exact match; never mark a set removed on less
        raise CollectionError(store.name, f"canary set {canary_id}: {deleted} row(s) removed, {found['count']} "
                              "planted; the set stays planted", collection=found["collection"],
                              hint=f"check the table, then run piiguard canary remove {canary_id} --apply again")
    catalog.set_canary(canary_id, "removed")
    log.info("canary set %d removed: %d row(s) from %s.%s", canary_id, deleted, store.name, found["collection"])
    return Removal(canary_id, store.name, found["collection"], int(found["count"]), tuple(match), deleted)


def _lengths(found: dict[str, object], store: Store, timeout: float) -> dict[str, int | None]:
    """The columns' lengths again: values were cut to them when planted."""
    table = open_table(store, str(found["collection"]), timeout)
    try:
        return {c.name: c.max_length for c in table.columns()}
    finally:
        table.close()


@dataclass(frozen=True)
class PlantedSet:
    """A planted (or removed) set, ready for matching: digest → (canary index, field)."""

    canary_id: int
    store: str
    collection: str
    count: int
    by_digest: dict[bytes, tuple[int, str, ValueKind]]


def planted_sets(catalog: Catalog, key: bytes) -> list[PlantedSet]:
    """Sets whose rows were inserted (planted, or since removed: a copy made meanwhile still holds them),
    under this key."""
    kid, out = key_id(key), []
    for c in catalog.canaries():
        if c["status"] not in ("planted", "removed") or c["key_id"] != kid:
            continue
        kinds = {f: cv.decode_kind(k)[0] for f, k in c["fields"].items()}
        names = cv.matchable_fields(kinds)
        by_digest = {d: (i // len(names), names[i % len(names)], kinds[names[i % len(names)]])
                     for i, d in enumerate(cv.split(bytes(c["digests"])))} if names else {}
        out.append(PlantedSet(int(c["id"]), str(c["store"]), str(c["collection"]), int(c["count"]), by_digest))
    return out


def find(store: Store, catalog: Catalog, key: bytes, *, limit: int = 100_000,
         collections: Sequence[str] = ()) -> list[CopyLink]:
    """Canary values of any planted set found in ``store``: each is proof it copies that set's table."""
    from piiguard import plugins
    from piiguard.connectors.base import connectors

    plugins.load()  # the connectors (idempotent): find may be called from the Python API alone
    sets = planted_sets(catalog, key)
    if not sets:
        return []
    index = {d: (s, hit) for s in sets for d, hit in s.by_digest.items()}
    links: list[CopyLink] = []
    with connectors.get(store.engine)(store) as conn:
        for info in conn.collections():
            if collections and info.name not in collections:
                continue
            columns = conn.columns(info)
            seen: dict[int, dict[str, set[str]]] = {}  # set id → copy field → its source fields
            people: dict[int, set[int]] = {}
            read = 0
            for batch in conn.read(info, columns, 2048):
                for name, array in zip(columns, batch.columns, strict=True):
                    for value in array.to_pylist()[: max(0, limit - read)]:
                        if not isinstance(value, str) or not value:
                            continue
                        for form in cv.forms(value):
                            got = index.get(cv.digest(key, form))
                            if got is None:
                                continue
                            s, (row, field, _kind) = got
                            if s.store == store.name and s.collection == info.name:
                                continue  # the planted table itself
                            seen.setdefault(s.canary_id, {}).setdefault(name, set()).add(field)
                            people.setdefault(s.canary_id, set()).add(row)
                read += batch.num_rows
                if read >= limit:
                    break
            for s in sets:
                if s.canary_id not in seen:
                    continue
                pairs = sorted((f, src) for f, srcs in seen[s.canary_id].items() for src in srcs)
                found = len(people[s.canary_id])
                links.append(CopyLink(store.name, info.name, s.store, s.collection, "canary",
                                      tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), found,
                                      round(found / s.count, 4) if s.count else 0.0, read, found))
                catalog.record_canary_hit(s.canary_id, "scan", f"{store.name}.{info.name}",
                                          detail=f"{found} of {s.count} canaries in fields "
                                                 f"{', '.join(sorted(seen[s.canary_id]))}")
    return links
