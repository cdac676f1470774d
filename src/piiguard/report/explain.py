"""Why a field was decided as it was: its recorded :class:`~piiguard.model.Evidence`, for people
(``piiguard explain``) and for machines (``explain --format json`` and every field of ``scan --format
json``). Only what the catalog holds is shown — shares, words of the field's name, type names; never a
value, because none was ever recorded."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from piiguard.errors import UsageError
from piiguard.model import Classification, Evidence

# decided_by → how a person reads it
DECIDERS = {
    "detector": "a detector matched the values",
    "native-type": "the engine's own column type settles it",
    "group": "judged with its neighbouring columns",
    "model": "the learned column model",
    "column-key": "the unique key of a collection holding PII",
    "override": "an override in the classify: section of piiguard.yaml",
    "none": "nothing reached its bar",
}


def path_of(f: Classification) -> str:
    return f"{f.store}.{f.collection}.{f.field}"


SHOWN_PATH = 200  # an unknown path is echoed up to this many characters


def find(decisions: Sequence[Classification], path: str) -> Classification:
    """The decision of ``STORE.COLLECTION.FIELD``; an unknown path is a usage error naming the closest
    recorded ones (paths are names, never values)."""
    by_path = {path_of(f): f for f in decisions}
    if path in by_path:
        return by_path[path]
    close = difflib.get_close_matches(path, list(by_path), n=3, cutoff=0.6) if len(path) <= 1000 else []
    hint = (f"did you mean {', '.join(close)}?" if close else
            "give STORE.COLLECTION.FIELD as `piiguard scan` lists it" if decisions else
            "nothing is recorded yet: run `piiguard scan` first")
    shown = path if len(path) <= SHOWN_PATH else path[:SHOWN_PATH] + f"… ({len(path):,} characters)"
    raise UsageError(f"no field {shown!r} in the catalog's latest scans", hint=hint)


def evidence_dict(f: Classification) -> dict[str, Any]:
    """The ``evidence`` object of a field in JSON (keys in docs/json.md)."""
    return (f.evidence or Evidence()).to_dict()


def explain_dict(f: Classification) -> dict[str, Any]:
    return {"store": f.store, "collection": f.collection, "field": f.field, "pii_type": f.pii_type,
            "confidence": f.confidence, "matched": f.matched, "sampled": f.sampled, "nulls": f.nulls,
            "distinct": f.distinct, "native_type": f.native_type, "evidence": evidence_dict(f)}


def _share(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def explain_lines(f: Classification) -> list[str]:
    """The decision in words, one line per part of the evidence."""
    e = f.evidence or Evidence()
    lines = [f"{path_of(f)}: {f.pii_type or 'not PII'} (confidence {f.confidence:.2f})",
             f"  decided by: {e.decided_by} — "
             + ("undecidable: no values (every one null or empty)" if f.sampled == 0 and not f.pii_type
                else DECIDERS.get(e.decided_by, e.decided_by))
             + (f" ({e.detector})" if e.detector else "")]
    lines.append(f"  values matched: {_share(e.share)} ({f.matched:,} of {f.sampled:,} non-null sampled, "
                 f"{f.nulls:,} null or empty)")
    lines.append(f"  context words: {', '.join(e.context) if e.context else '-'}")
    native = e.native_type or f.native_type
    lines.append(f"  native type: {native or '-'}" + (f" (kind {e.kind})" if e.kind else ""))
    if e.model is not None:
        lines.append(f"  model probability: {e.model:.2f}")
    if e.runner_up is not None:
        lines.append(f"  runner-up: {e.runner_up} (matched {_share(e.runner_up_share)})"
                     + (f" — lost: {e.lost_because}" if e.lost_because else ""))
    else:
        lines.append("  runner-up: -")
    lines += [f"  note: {n}" for n in e.notes]
    return lines
