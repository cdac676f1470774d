"""Incidents: opened by watch when a store holding PII is exposed (or by hand), with a keyed,
sealed timeline that ``verify`` checks and ``export`` bundles.

The timeline lives in the catalog (:meth:`Catalog.event`). Each entry carries an HMAC-SHA256, under
the timeline key (kept outside the catalog, see :mod:`piiguard.catalog.timeline`), of the previous
entry's HMAC and the entry itself; the incident keeps a seal of the entry count and the last HMAC.
So changing one byte of any entry, reordering entries, deleting any of them (the last ones, or all)
or rewriting the whole chain without the key makes verification fail. A rewrite *with* the key, or a
catalog put back from an older copy, is found by checking against a head recorded outside the
catalog (``verify --head COUNT-HMAC``): every incident command prints the head it leaves.

The exported bundle carries the timeline and its head, the evidence files with their SHA-256, and the
reports; ``SHA256SUMS`` lists every file. Its files are 0600 in a 0700 folder, and an existing bundle
is replaced only with ``force``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from piiguard import safefile
from piiguard.catalog import Catalog
from piiguard.catalog import timeline as tl
from piiguard.discovery.base import Endpoint, clean
from piiguard.errors import UsageError
from piiguard.model import Exposure
from piiguard.report.document import iso


def exposure_title(catalog: Catalog, exposure: Exposure, *, engine: str | None = None) -> str:
    """An exposure incident's title: ``STORE exposed (CHECKS)``; for a store the inventory holds and
    nobody registered, ``ADDRESS exposed (unregistered ENGINE, copy of SOURCE.COLLECTION, CHECKS)`` —
    whichever thread opens it (the sweep's, or the check cycle's for a window its copy links gave PII).
    ``engine``: the caller knows the store is an unregistered one of this engine (the inventory decides
    otherwise)."""
    found = next((r for r in catalog.discovered(include_gone=True)
                  if Endpoint(str(r["host"]), int(r["port"])).address == exposure.store), None)
    if found is not None and found["registered"] is None:
        engine = found["product"] or found["engine"] or engine
    elif found is not None or engine is None:
        return f"{exposure.store} exposed ({exposure.checks})"
    engine = clean(engine, 20) or "store"
    sources = sorted({clean(f"{link.source_store}.{link.source_collection}", 80) or "?"
                      for link in catalog.links(store=exposure.store)})
    copy = f", copy of {', '.join(sources)}" if sources else ""
    return f"{exposure.store} exposed (unregistered {engine}{copy}, {exposure.checks})"


def follow_exposures(catalog: Catalog) -> list[int]:
    """Open an incident for every exposure window of a store holding PII that has none; close the
    incident's window when the exposure closes. Returns the incidents opened now."""
    opened = [catalog.open_incident(exposure_title(catalog, e), [e.store], e.opened_at, list(e.pii_types),
                                    e.subjects_estimate, e.id) for e in catalog.exposures_without_incident()]
    for incident_id, closed_at in catalog.incident_windows_to_close():
        catalog.close_window(incident_id, closed_at)
    return opened


def open_by_hand(catalog: Catalog, store: str, since: str, *, include_system: bool = False) -> int:
    """``piiguard incident open STORE --since …``: what the catalog knows of the store fills it in
    (what only its system collections hold, :mod:`piiguard.system`, only with ``include_system``)."""
    try:
        datetime.fromisoformat(since)
    except ValueError as exc:
        raise UsageError(f"--since {since!r}: expected an ISO date or time (2026-11-03T08:00)") from exc
    context = catalog.data_context(store, include_system=include_system)
    types, subjects = context if context is not None else ((), None)
    return catalog.open_incident(f"{store} exposed (reported)", [store], since, list(types), subjects)


def get(catalog: Catalog, incident_id: int) -> dict[str, Any]:
    incident = catalog.incident(incident_id)
    if incident is None:
        raise UsageError(f"no incident {incident_id}", hint="see `piiguard incident list`")
    return incident


@dataclass(frozen=True)
class Basis:
    """Where an incident's numbers come from, for every report and ``incident show``.

    Before a scope the number of people is the estimate the incident was opened with, and ``scans``
    names the scan of each exposed store it came from — the one its opening entry recorded (for an
    incident opened before piiguard recorded it: the store's latest scan that started before the
    incident was known) — with its times, how it counted (``exact``, ``approximate`` or ``sample``)
    and in which field. Once
    ``incident scope`` ran (the timeline's last ``scoped`` entry), the numbers are the scope's own:
    exact, each person counted once, and ``scoped_at`` says when.
    """

    exact: bool
    people: int | None
    scoped_at: str | None = None
    scans: tuple[dict[str, Any], ...] = ()

    @property
    def kind(self) -> str:
        return "scope" if self.exact else "estimate" if self.people is not None else "unknown"

    def text(self) -> str:
        if self.exact:
            return (f"exact: {self.people:,} people counted one by one by `piiguard incident scope` at "
                    f"{self.scoped_at}")
        then = "; run `piiguard incident scope` for the exact number"
        lead = "estimate" if self.people is not None else "unknown"
        if not self.scans:
            return f"{lead}: no scan of the exposed store is recorded{then}"
        sources = "; ".join(
            f"scan {s['scan_id']} of {s['store']} (started {s['started']}"
            + (f", finished {s['finished']}" if s["finished"] else f", {s['status']}")
            + (f"; {s['estimate_kind']} count of distinct {s['subjects_field']} at scan time" if s["estimate_kind"] else
               "; it found no customer key") + ")" for s in self.scans)
        return f"estimate from {sources}{then}" if self.people is not None else \
            f"unknown: no estimate from {sources}{then}"

    def to_dict(self) -> dict[str, Any]:
        return {"basis": self.kind, "exact": self.exact, "people": self.people, "scoped_at": iso(self.scoped_at),
                "scans": [{**s, "started": iso(s["started"]), "finished": iso(s["finished"])} for s in self.scans],
                "text": self.text()}


def scoped_at(catalog: Catalog, incident_id: int) -> str | None:
    """When the incident's last scope was taken (its timeline's last ``scoped`` entry); None before."""
    return _scoped_at(catalog.timeline(incident_id))


def _scoped_at(entries: list[dict[str, Any]]) -> str | None:
    scoped = [e for e in entries if e["kind"] == "scoped"]
    return str(scoped[-1]["at"]) if scoped else None


def basis(catalog: Catalog, incident: dict[str, Any]) -> Basis:
    """The incident's numbers and where they come from (see :class:`Basis`)."""
    incident_id = int(incident["id"])
    entries = catalog.timeline(incident_id)
    at = _scoped_at(entries)
    if at is not None:
        return Basis(True, catalog.scope_size(incident_id), scoped_at=at)
    opened = json.loads(entries[0]["payload"]) if entries and entries[0]["kind"] == "opened" else {}
    recorded = opened.get("estimate_scans")  # None: opened by a piiguard that did not record them
    scans = []
    for store in incident["stores"]:
        scan_id = recorded.get(store) if isinstance(recorded, dict) else \
            catalog.latest_scan_id(store, before=str(incident["aware_at"]))
        found = catalog.store_scan(store, scan_id) if scan_id is not None else None
        if found is not None:
            scans.append({"store": store, **{k: found[k] for k in ("scan_id", "started", "finished", "status",
                                                                   "estimate_kind", "subjects_field",
                                                                   "subjects_estimate")}})
    return Basis(False, incident["subjects_estimate"], scans=tuple(scans))


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    broken_at: int | None = None
    reason: str = ""
    head: tl.Head | None = None  # the timeline's head as found (None when it has no entries)


def verify(catalog: Catalog, incident_id: int, head: tl.Head | None = None) -> Verification:
    """Recompute the keyed chain and the seal; with ``head`` (recorded earlier, outside the catalog),
    check that the timeline still holds that entry as it was. The first break is reported."""
    if head is not None and catalog.incident(incident_id) is None:
        return Verification(False, 0, 1, f"incident {incident_id} is not in the catalog, but a head was recorded for "
                                         "it: the incident and its timeline were deleted")
    incident = get(catalog, incident_id)
    key = catalog.timeline_key()
    entries = catalog.timeline(incident_id)
    n = len(entries)
    if not entries:
        return Verification(False, 0, 1, "the timeline has no entries: they were deleted (an incident always has "
                                          "its 'opened' entry)")
    prev = tl.GENESIS
    for expected_seq, e in enumerate(entries, start=1):
        if e["seq"] != expected_seq:
            return Verification(False, n, expected_seq, f"entry {expected_seq} is missing or moved")
        if e["prev_hash"] != prev:
            return Verification(False, n, e["seq"], "its link to the previous entry does not match")
        material = (prev, incident_id, e["seq"], e["at"], e["kind"], e["payload"])
        if tl.entry_mac(key, *material) != e["hash"]:
            return Verification(False, n, e["seq"], _why_mismatch(key, entries[0], e, material))
        prev = e["hash"]
    found = tl.Head(n, prev)
    if catalog.timeline_seal(incident_id) != found.seal(key, incident_id):
        return Verification(False, n, n + 1, f"the seal does not match {n} entries: entries after entry {n} were "
                                             "deleted, or the seal was changed", found)
    disagreement = _row_disagrees(catalog, incident, entries)
    if disagreement:
        return Verification(False, n, None, disagreement, found)
    if head is not None:
        if head.entries > n:
            return Verification(False, n, n + 1, f"the recorded head has {head.entries} entries, the timeline {n}: "
                                                 f"entries {n + 1}–{head.entries} were deleted", found)
        if entries[head.entries - 1]["hash"] != head.last:
            return Verification(False, n, head.entries, f"entry {head.entries} is not the one in the recorded head: "
                                                        "the timeline was rewritten since", found)
    return Verification(True, n, head=found)


def _row_disagrees(catalog: Catalog, incident: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    """The incident row and the scope are outside the chain; what the verified timeline says of them must
    still hold (an exposure window shortened in the row, people removed from the scope, are found)."""
    opened = json.loads(entries[0]["payload"]) if entries[0]["kind"] == "opened" else None
    if opened is None:
        return "the first entry is not the incident's opening"
    recorded = {k: opened.get(k) for k in ("title", "stores", "window_start", "pii_types", "subjects_estimate")}
    recorded["aware_at"] = entries[0]["at"]
    closes = [json.loads(e["payload"]).get("window_end") for e in entries if e["kind"] == "window-closed"]
    recorded["window_end"] = closes[-1] if closes else None
    changed = sorted(k for k, v in recorded.items() if incident[k] != v)
    if changed:
        return f"the incident's {', '.join(changed)} differ from what its timeline recorded: the row was edited"
    scoped = [json.loads(e["payload"]).get("people") for e in entries if e["kind"] == "scoped"]
    people = catalog.count("scope", int(incident["id"]))
    if (scoped[-1] if scoped else 0) != people:
        return (f"the scope holds {people} people, the timeline's last scope {scoped[-1] if scoped else 0}: the scope "
                "was edited")
    return ""


def _why_mismatch(key: bytes, first: dict[str, Any], entry: dict[str, Any], material: tuple[Any, ...]) -> str:
    if tl.unkeyed_hash(*material) == entry["hash"]:
        return ("it carries an unkeyed hash: written by a piiguard from before timelines were keyed, or rewritten "
                "by someone without the timeline key")
    recorded = str(json.loads(first["payload"]).get("timeline_key", "")) if first["kind"] == "opened" else ""
    if recorded and recorded != tl.key_id(key):
        return (f"the timeline key given (key id {tl.key_id(key)}) is not the one this incident was opened with "
                f"(key id {recorded}): set PIIGUARD_TIMELINE_KEY or PIIGUARD_TIMELINE_KEY_FILE to that key")
    return "its content does not match its HMAC"


def export(catalog: Catalog, incident_id: int, out: Path, files: dict[str, Path] | None = None, *,
           force: bool = False) -> tl.Head | None:
    """Write the bundle: incident.json, timeline.jsonl, HEAD, the given files (evidence, reports),
    SHA256SUMS. Returns the timeline's head after the ``exported`` entry is added."""
    incident = get(catalog, incident_id)
    checked = verify(catalog, incident_id)
    safefile.private_dir(out)
    written: dict[str, bytes] = {}

    def put(name: str, data: bytes) -> None:
        safefile.write(out / name, data, force=force)
        written[name] = data

    head = str(checked.head) if checked.head else None
    put("incident.json", json.dumps({**incident, "timeline_verified": checked.ok, "timeline_head": head},
                                    indent=2).encode())
    put("timeline.jsonl", "".join(json.dumps(e, sort_keys=True) + "\n" for e in catalog.timeline(incident_id)).encode())
    if head:
        put("HEAD", (head + "\n").encode())
    for name, path in (files or {}).items():
        put(name, path.read_bytes())
    sums = [f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in sorted(written.items())]
    safefile.write(out / "SHA256SUMS", "\n".join(sums) + "\n", force=force)
    return catalog.event(incident_id, "exported", {"files": len(sums), "timeline_verified": checked.ok,
                                                   "timeline_head": head})
