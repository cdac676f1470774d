"""The notices path as it was before the subject file was read in chunks (commit 5cf23b6), kept as the
baseline bench/respond.py runs beside the current one: the subject file read whole into a dict, every
notified hash in a set, a Jinja render and a ``json.dumps`` per person. Not used by piiguard itself."""

from __future__ import annotations

import csv
import gc
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from piiguard.catalog import Catalog
from piiguard.errors import UsageError
from piiguard.model import Store
from piiguard.response.notices import (
    SPOOL_PER_FILE,
    NoticeOptions,
    _Contacts,
    _environment,
    _Sender,
    advice,
    describe,
    measures,
)
from piiguard.response.scope import subject_hash

CHUNK = 10_000


def read_subjects(path: Path, catalog: Catalog, incident_id: int, key: bytes) -> dict[str, list[str]]:
    known = catalog.scope_subjects(incident_id)
    if not known:
        raise UsageError(f"incident {incident_id} has no scope yet")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for n, row in enumerate(rows, start=2):
        subject = row.get("subject") or ""
        if subject_hash(key, subject) not in known:
            raise UsageError(f"{path} line {n}: not a subject of incident {incident_id}'s scope")
        out[subject] = [t for t in (row.get("exposed") or "").split(";") if t]
    return out


def send(catalog: Catalog, incident: dict[str, Any], subjects: Mapping[str, Sequence[str]], key: bytes,
         options: NoticeOptions, store: Store, contact: Mapping[str, str], *, spool: Path | None = None,
         progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    incident_id = int(incident["id"])
    done = catalog.done("notices", incident_id)
    did = measures(catalog, incident_id)
    template = _environment().get_template("notice.txt.j2")
    lookup = _Contacts(options, store)
    sender = _Sender(options, spool)
    sent, pending, missing = 0, [], 0
    interval = 1.0 / options.rate if options.rate > 0 else 0.0
    everyone = list(subjects)
    gc.freeze()
    try:
        for start in range(0, len(everyone), CHUNK):
            hashes = {s: subject_hash(key, s) for s in everyone[start:start + CHUNK]}
            todo = [s for s, h in hashes.items() if h not in done]
            addresses = lookup(todo) if todo else {}
            for subject in todo:
                if subject not in addresses:
                    missing += 1
                    continue
                address, name = addresses[subject]
                kinds = subjects[subject]
                text = template.render(company=options.company, name=name, window_start=incident["window_start"],
                                       window_end=incident["window_end"], categories=[describe(t) for t in kinds],
                                       measures=did, advice=advice([t.split(" (")[0] for t in kinds], did),
                                       contact=contact, incident_id=incident_id)
                subject_line, _, body = text.partition("\n\n")
                started = time.monotonic()
                if spool is None:
                    catalog.mark_done("notices", incident_id, [hashes[subject]])
                    try:
                        sender.send(address, subject_line.removeprefix("Subject: "), body)
                    except BaseException:
                        catalog.unmark_notice(incident_id, hashes[subject])
                        raise
                else:
                    sender.send(address, subject_line.removeprefix("Subject: "), body)
                    pending.append(hashes[subject])
                    if len(pending) >= SPOOL_PER_FILE:
                        catalog.mark_done("notices", incident_id, pending)
                        pending = []
                sent += 1
                if progress is not None:
                    progress(1)
                if spool is None and interval:
                    time.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        gc.unfreeze()
        catalog.mark_done("notices", incident_id, pending)
        sender.close()
        lookup.close()
        catalog.event(incident_id, "notified", {"sent": sent, "without_address": missing,
                                                "spooled": spool is not None})
    return sent, missing
