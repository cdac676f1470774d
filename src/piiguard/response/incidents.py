"""Incidents: opened by watch when a store holding PII is exposed (or by hand), with a hash-chained
timeline that ``verify`` checks and ``export`` bundles.

The timeline lives in the catalog (:meth:`Catalog.event`). Each entry's hash is SHA-256 over the
previous entry's hash and the entry itself, so changing one byte of any entry — or deleting or
reordering one — makes verification fail at that entry. The exported bundle carries the timeline,
the evidence files with their SHA-256, and the reports; ``SHA256SUMS`` lists every file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from piiguard.catalog import Catalog, chain_hash
from piiguard.errors import UsageError


def follow_exposures(catalog: Catalog) -> list[int]:
    """Open an incident for every exposure window of a store holding PII that has none; close the
    incident's window when the exposure closes. Returns the incidents opened now."""
    opened = [catalog.open_incident(f"{e.store} exposed ({e.checks})", [e.store], e.opened_at, list(e.pii_types),
                                    e.subjects_estimate, e.id) for e in catalog.exposures_without_incident()]
    for incident_id, closed_at in catalog.incident_windows_to_close():
        catalog.close_window(incident_id, closed_at)
    return opened


def open_by_hand(catalog: Catalog, store: str, since: str) -> int:
    """``piiguard incident open STORE --since …``: what the catalog knows of the store fills it in."""
    try:
        datetime.fromisoformat(since)
    except ValueError as exc:
        raise UsageError(f"--since {since!r}: expected an ISO date or time (2026-11-03T08:00)") from exc
    context = catalog.data_context(store)
    types, subjects = context if context is not None else ((), None)
    return catalog.open_incident(f"{store} exposed (reported)", [store], since, list(types), subjects)


def get(catalog: Catalog, incident_id: int) -> dict[str, Any]:
    incident = catalog.incident(incident_id)
    if incident is None:
        raise UsageError(f"no incident {incident_id}", hint="see `piiguard incident list`")
    return incident


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    broken_at: int | None = None
    reason: str = ""


def verify(catalog: Catalog, incident_id: int) -> Verification:
    """Recompute the chain; the first entry whose link or hash does not match is reported."""
    get(catalog, incident_id)
    entries = catalog.timeline(incident_id)
    prev = "0" * 64
    for expected_seq, e in enumerate(entries, start=1):
        if e["seq"] != expected_seq:
            return Verification(False, len(entries), expected_seq, f"entry {expected_seq} is missing or moved")
        if e["prev_hash"] != prev:
            return Verification(False, len(entries), e["seq"], "its link to the previous entry does not match")
        if chain_hash(prev, incident_id, e["seq"], e["at"], e["kind"], e["payload"]) != e["hash"]:
            return Verification(False, len(entries), e["seq"], "its content does not match its hash")
        prev = e["hash"]
    return Verification(True, len(entries))


def export(catalog: Catalog, incident_id: int, out: Path, files: dict[str, Path] | None = None) -> Path:
    """Write the bundle: incident.json, timeline.jsonl, the given files (evidence, reports), SHA256SUMS."""
    incident = get(catalog, incident_id)
    checked = verify(catalog, incident_id)
    out.mkdir(parents=True, exist_ok=True)
    (out / "incident.json").write_text(json.dumps({**incident, "timeline_verified": checked.ok}, indent=2))
    with (out / "timeline.jsonl").open("w") as f:
        for e in catalog.timeline(incident_id):
            f.write(json.dumps(e, sort_keys=True) + "\n")
    for name, path in (files or {}).items():
        shutil.copyfile(path, out / name)
    sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(out.iterdir())
            if p.is_file() and p.name != "SHA256SUMS"]
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    catalog.event(incident_id, "exported", {"files": len(sums), "timeline_verified": checked.ok})
    return out
