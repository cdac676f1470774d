"""What the catalog holds, as the JSON documents of ``--format json`` (keys in ``docs/json.md``).

One function per record kind: incidents, containments, exposures, copies, stores. Each returns plain
JSON values — names, counts, ISO-8601 times, hashes — and nothing the catalog does not already hold,
so nothing here can carry a data value. Collection and field names of copies are labels
(:func:`~piiguard.connectors.labels.label`), as in the text output. A store's credentials appear as
their *reference* (which variable or file), never read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from piiguard.model import Exposure, Store
from piiguard.report.document import iso

if TYPE_CHECKING:
    from piiguard.catalog import Catalog
    from piiguard.response.incidents import Basis


def incident(row: Mapping[str, Any], people_in_scope: int | None) -> dict[str, Any]:
    """One incident as ``incident list`` shows it; ``people_in_scope`` is None before a scope."""
    return {"id": int(row["id"]), "title": row["title"], "status": row["status"], "stores": list(row["stores"]),
            "window_start": iso(row["window_start"]), "window_end": iso(row["window_end"]),
            "aware_at": iso(row["aware_at"]), "pii_types": list(row["pii_types"]),
            "subjects_estimate": row["subjects_estimate"], "people_in_scope": people_in_scope,
            "exposure_id": row["exposure_id"]}


# the timeline entries that are steps taken (the others: opened, window-closed, are the incident's facts)
STEPS = ("scoped", "evidence", "responded", "notified", "reported", "exported")


def incident_whole(cat: Catalog, row: Mapping[str, Any], numbers: Basis, *, head_entries: int = 5) -> dict[str, Any]:
    """One incident whole (``incident show``): its window, stores, PII types, where its numbers come
    from, the scope's counts by type, the steps done, and the timeline's head and last entries."""
    incident_id = int(row["id"])
    entries = cat.timeline(incident_id)
    payloads = [json.loads(e["payload"]) for e in entries]
    scoped = [(e, p) for e, p in zip(entries, payloads, strict=True) if e["kind"] == "scoped"]
    scope: dict[str, Any] | None = None
    if scoped:
        entry, payload = scoped[-1]
        scope = {"at": iso(entry["at"]), "people": numbers.people, "by_type": dict(payload.get("by_type", {})),
                 "read": list(payload.get("read", [])), "derived_copies": list(payload.get("derived_copies", []))}
    steps = [{"seq": int(e["seq"]), "at": iso(e["at"]), "kind": e["kind"], "details": p}
             for e, p in zip(entries, payloads, strict=True) if e["kind"] in STEPS]
    head = cat.timeline_head(incident_id)
    return {**incident(row, numbers.people if numbers.exact else None), "numbers": numbers.to_dict(),
            "scope": scope, "steps": steps,
            "timeline": {"entries": len(entries), "head": str(head) if head else None,
                         "last": [{"seq": int(e["seq"]), "at": iso(e["at"]), "kind": e["kind"]}
                                  for e in entries[-head_entries:]]}}


def containment(row: Mapping[str, Any]) -> dict[str, Any]:
    """A containment's plan as a person approves it: steps, undo, the checks that verify it (never the
    data apply/undo keep for themselves)."""
    plan = row["plan"]
    return {"id": int(row["id"]), "store": row["store"], "engine": row["engine"], "status": row["status"],
            "automatic": bool(plan.get("automatic", True)), "steps": list(plan.get("steps", [])),
            "undo": list(plan.get("undo", [])), "verify": list(plan.get("verify", [])),
            "created": iso(row["created"]), "updated": iso(row["updated"]), "note": row["note"] or ""}


def exposure(e: Exposure) -> dict[str, Any]:
    return {"id": e.id, "store": e.store, "opened_at": iso(e.opened_at), "closed_at": iso(e.closed_at),
            "open": e.closed_at is None, "checks": [c.strip() for c in e.checks.split(",") if c.strip()],
            "pii_types": list(e.pii_types), "subjects_estimate": e.subjects_estimate}


def copy(row: Mapping[str, Any], today: str) -> dict[str, Any]:
    """A registered copy (``today``: an ISO date, for ``expired``). Its key appears as its id only."""
    from piiguard.connectors.labels import label  # the classifier behind labels loads only when needed

    transforms = row["transforms"] or {}
    return {"id": int(row["id"]), "status": row["status"],
            "expired": row["status"] == "active" and str(row["expires"]) < today,
            "source": {"store": row["source_store"], "collection": label(row["source_collection"])},
            "target": {"store": row["target_store"], "engine": row["target_engine"],
                       "collection": label(row["target_collection"])},
            "fields": [{"field": label(name), "masker": t.get("masker"), "pii_type": t.get("pii_type")}
                       for name, t in transforms.items()],
            "key_id": row["key_id"], "owner": row["owner"], "purpose": row["purpose"],
            "created": iso(row["created"]), "expires": row["expires"], "rows": row["rows"],
            "subjects": row["subjects"], "accepted_risk": row["accepted_risk"] or None, "note": row["note"] or ""}


def credentials(store: Store) -> dict[str, Any] | None:
    """Where the store's password is to be found — the reference and whether it is there, never the value."""
    if store.password_file:
        return {"kind": "file", "reference": store.password_file, "present": os.path.isfile(store.password_file)}
    if store.password_env:
        return {"kind": "env", "reference": store.password_env, "present": store.password_env in os.environ}
    return None


def findings_summary(rows: Iterable[tuple[str, str, str, str, str]]) -> dict[str, Any] | None:
    """(store, check, status, first_seen, last_seen) rows of one store → counts and the failing checks."""
    rows = list(rows)
    if not rows:
        return None
    counts: dict[str, int] = {}
    for _, _, status, _, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    return {"last_seen": iso(max(r[4] for r in rows)), "checks": len(rows), "by_status": counts,
            "failing": sorted(r[1] for r in rows if r[2] == "fail")}


def discovered(row: Mapping[str, Any], registered: str | None) -> dict[str, Any]:
    """One inventory row (:meth:`Catalog.discovered`) as the ``discovered`` block of a store: where a
    sweep saw it, what it said it was (cleaned when it was recorded), and when."""
    host, port = str(row["host"]), int(row["port"])
    return {"address": f"[{host}]:{port}" if ":" in host else f"{host}:{port}", "host": host, "port": port,
            "also": [int(p) for p in row.get("also") or ()],
            "kind": row["kind"], "engine": row["engine"], "product": row["product"], "version": row["version"],
            "registered": registered is not None, "open": bool(row["open"]),
            "first_seen": iso(row["first_seen"]), "last_seen": iso(row["last_seen"])}


def store(cat: Catalog, name: str, *, configured: Store | None, known: Mapping[str, Any] | None,
          found: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A store as ``piiguard stores`` shows it: what the configuration says (or, for a store only a
    scan by URL recorded, what the catalog says; for one only a sweep found, what the sweep saw), its
    last scan and its last check. ``found`` is the inventory row of a sweep that saw it."""
    scan = cat.store_scan(name)
    engine = configured.engine if configured else known["engine"] if known else found["engine"] if found else None
    address = configured.address if configured else known["address"] if known else \
        discovered(found, None)["address"] if found else None
    return {
        "name": name, "configured": configured is not None,
        "engine": engine,
        "address": address,
        "credentials": credentials(configured) if configured else None,
        "tags": dict(configured.tags) if configured else {},
        "last_scan": None if scan is None else {**scan, "started": iso(scan["started"]),
                                                "finished": iso(scan["finished"])},
        "last_check": findings_summary(cat.findings(name)),
        "discovered": None if found is None else discovered(found, name if configured else None),
    }
