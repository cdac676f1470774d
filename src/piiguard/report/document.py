"""The one way a command writes JSON: one document on stdout, nothing else on it.

Every ``--format json`` command builds a plain mapping and hands it to :func:`emit`. The document is
an object whose first keys are ``kind`` (what it describes, e.g. ``incidents``) and ``version`` (of
that kind's keys, :data:`VERSION`); its keys are documented per command in ``docs/json.md``.
Timestamps are ISO-8601 (:func:`iso`), counts are numbers, a missing value is ``null``.

Text from the catalog (titles, owners, notes, store names) is written as it is: ``json`` escapes quotes,
backslashes and control characters, and ``ensure_ascii`` writes every other non-ASCII character as a
``\\uXXXX`` escape, so the document is plain ASCII — a bidi override or a lone surrogate can neither
reach a terminal nor stop the output from being encoded — and parses back to exactly the same text.
Progress bars and logs go to stderr (:mod:`piiguard.log`), so stdout holds the document alone.
``scan``, ``check`` and SARIF are serialised by the same :func:`dumps`; their shapes predate
``kind`` and ``version`` and are kept as they are.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import IO, Any

VERSION = 1


def document(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A document of ``kind``: ``{"kind": …, "version": …, **body}``."""
    return {"kind": kind, "version": VERSION, **body}


def dumps(doc: Mapping[str, Any]) -> str:
    # allow_nan=False: NaN and Infinity are not JSON; a count never is one, so this only ever guards.
    return json.dumps(doc, indent=2, ensure_ascii=True, allow_nan=False)


def emit(kind: str, body: Mapping[str, Any], out: IO[str] | None = None) -> None:
    """Write the document to stdout (or ``out``), followed by one newline."""
    stream = out or sys.stdout
    stream.write(dumps(document(kind, body)) + "\n")
    stream.flush()


def iso(text: str | None) -> str | None:
    """A recorded time as ISO-8601 (``2026-11-03T08:00:00+00:00``); a time without a zone stays
    without one (it was given so, e.g. ``incident open --since``); None stays None."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(str(text)).isoformat()
    except ValueError:
        return str(text)  # not a time piiguard wrote: shown as recorded rather than dropped
