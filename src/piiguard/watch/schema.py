"""Schema drift between re-scans: a collection that gained a field, or a field whose native type
changed, since the catalog's last scan of the store.

Either means the last classification no longer describes the store: a new ``phone`` column holds
PII nobody has classified, and a ``text`` column retyped to ``inet`` now holds addresses. The watch's
inside audits compare each readable store's live schema with its last scan, raise a
``watch.new-field`` or ``watch.retyped-field`` finding (alerted like any other failing check, and
resolved once a scan has caught up), and bring the next re-scan forward so the field is classified.

Only names and type names are read and compared: the listing asks the engine for its columns, and the
native types come from a one-row sample whose values are dropped unread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from piiguard.catalog import Catalog
from piiguard.connectors.base import Connector, connectors, shown_collections
from piiguard.errors import StoreError
from piiguard.model import Classification, Finding, Severity, Status, Store, Vantage

NEW_FIELD = "watch.new-field"
RETYPED_FIELD = "watch.retyped-field"
TITLES = {NEW_FIELD: "a collection gained a field since the last scan",
          RETYPED_FIELD: "a field's native type changed since the last scan"}
MAX_LISTED = 20  # fields named in one finding's evidence; the rest are counted
_ROOT = re.compile(r"[.\[]")  # a document's field path below its top-level field (flatten's naming)


@dataclass(frozen=True)
class FieldChange:
    """One field of one collection that the last scan does not describe; ``before`` is None for a new field."""

    collection: str
    field: str
    before: str | None
    after: str | None

    def words(self) -> str:
        if self.before is None:
            return f"{self.collection}.{self.field}" + (f" ({self.after})" if self.after else "")
        return f"{self.collection}.{self.field} ({self.before} → {self.after})"


def root(path: str) -> str:
    """A field path's top-level field: documents are compared by their top-level fields, because a
    sample of one record sees fewer nested paths than a scan's sample did, and that is no change."""
    return _ROOT.split(path, maxsplit=1)[0]


def changes(recorded: Sequence[Classification], live: Mapping[str, Mapping[str, str | None]]) -> list[FieldChange]:
    """The fields of ``live`` (collection → field → native type, None where the engine reports none)
    that ``recorded`` (the last scan of the store) lacks or typed otherwise. A collection the last scan
    did not record is left to the scan: it is new as a whole, not a field of a known collection; a type
    counts as changed only when both sides know it."""
    by_collection: dict[str, dict[str, str | None]] = {}
    for f in recorded:
        by_collection.setdefault(f.collection, {})[f.field] = f.native_type
    out = []
    for collection, fields in sorted(live.items()):
        known = by_collection.get(collection)
        if known is None:
            continue
        roots = {root(name) for name in known}
        for name, native in sorted(fields.items()):
            if name not in known:
                if root(name) not in roots:
                    out.append(FieldChange(collection, name, None, native))
            elif native is not None and known[name] is not None and known[name] != native:
                out.append(FieldChange(collection, name, known[name], native))
    return out


def live_schema(connector: Connector) -> dict[str, dict[str, str | None]]:
    """Collection label → field → native type name, as the store is now."""
    out: dict[str, dict[str, str | None]] = {}
    for shown, info in shown_collections(connector.collections()).items():
        types: dict[str, str | None] = {name: native.name for name, native in connector.sample(info, 1).types.items()}
        out[shown] = {name: types.get(name) for name in connector.columns(info)} | types
    return out


def _finding(check: str, store: str, found: list[FieldChange], what: str) -> Finding:
    listed = "; ".join(c.words() for c in found[:MAX_LISTED])
    more = f"; and {len(found) - MAX_LISTED:,} more" if len(found) > MAX_LISTED else ""
    if found:
        evidence = f"{len(found):,} field(s) {what} since the last scan: {listed}{more}; classified at the next re-scan"
    else:
        evidence = f"no field {what} since the last scan"
    return Finding(check, store, Status.FAIL if found else Status.PASS, Severity.MEDIUM, Vantage.INSIDE,
                   TITLES[check], evidence)


def _unlisted(check: str, store: str, why: str) -> Finding:
    return Finding(check, store, Status.ERROR, Severity.MEDIUM, Vantage.INSIDE, TITLES[check],
                   f"the schema could not be listed: {why}")


def schema_findings(stores: Sequence[Store], catalog: Catalog, timeout: float) -> list[Finding]:
    """A new-field and a retyped-field finding for each readable store the catalog has a scan of; for a
    store that cannot be listed now they are errors, which neither open nor resolve an alert."""
    recorded: dict[str, list[Classification]] = {}
    for f in catalog.decisions():
        recorded.setdefault(f.store, []).append(f)
    out = []
    for store in stores:
        if store.engine not in connectors or store.name not in recorded:
            continue
        try:
            with connectors.get(store.engine)(store, timeout=timeout) as connector:
                live = live_schema(connector)
        except Exception as exc:  # a driver's surprise must not stop the watch; the class only, never its text
            why = exc.detail if isinstance(exc, StoreError) else f"internal error ({type(exc).__name__})"
            out += [_unlisted(check, store.name, why) for check in (NEW_FIELD, RETYPED_FIELD)]
            continue
        found = changes(recorded[store.name], live)
        out.append(_finding(NEW_FIELD, store.name, [c for c in found if c.before is None], "added"))
        out.append(_finding(RETYPED_FIELD, store.name, [c for c in found if c.before is not None], "retyped"))
    return out
