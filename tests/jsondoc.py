"""Hold a ``--format json`` document to its documentation: the key tables of ``docs/json.md``.

:func:`check` parses the document, and fails on a key the tables do not list, a documented key of
an object that is missing, a value of the wrong type (a count as a string, a time that is not
ISO-8601) and anything on stdout besides the one document.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[1] / "docs" / "json.md"
_HEADING = re.compile(r"^## `([a-z-]+)` — ")
_ROW = re.compile(r"^\| `([^`]+)` \| ([a-z ]+) \| ")


@cache
def documented() -> dict[str, dict[str, str]]:
    """kind → {key path → type}, from the tables of docs/json.md."""
    out: dict[str, dict[str, str]] = {}
    kind = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            kind = heading.group(1)
            out[kind] = {"kind": "string", "version": "number"}
            continue
        row = _ROW.match(line)
        if kind and row and row.group(1) != "key":
            out[kind][row.group(1)] = row.group(2).strip()
    return out


def _type_ok(kind: str, value: Any) -> bool:
    base, _, nullable = kind.partition(" or ")
    if value is None:
        return nullable == "null"
    if base == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if base == "time":
        return isinstance(value, str) and bool(datetime.fromisoformat(value))
    if base == "date":
        return isinstance(value, str) and bool(date.fromisoformat(value))
    return isinstance(value, {"string": str, "boolean": bool, "list": list, "object": dict, "map": dict}[base])


def _walk(value: Any, path: str, keys: dict[str, str], problems: list[str]) -> None:
    if isinstance(value, dict):
        if path and keys.get(path, "").startswith("map"):
            return  # data-dependent keys: documented by what they map
        children = {k for k in keys if k.startswith(f"{path}.") and "." not in k[len(path) + 1:]} if path else \
            {k for k in keys if "." not in k and "[" not in k}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else k
            if sub not in keys:
                problems.append(f"{sub}: not documented")
                continue
            if not _type_ok(keys[sub], v):
                problems.append(f"{sub}: {v!r} is not {keys[sub]}")
            _walk(v, sub, keys, problems)
        problems.extend(f"{k}: documented, missing" for k in children - {f"{path}.{k}" if path else k for k in value})
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                _walk(item, f"{path}[]", keys, problems)


def check(stdout: str, kind: str) -> dict[str, Any]:
    """The one document on ``stdout``, checked against the ``kind`` table; returned parsed."""
    doc = json.loads(stdout)  # one document and nothing else: a second line of text would not parse
    assert isinstance(doc, dict) and list(doc)[:2] == ["kind", "version"], list(doc)[:2]
    assert doc["kind"] == kind and doc["version"] == 1
    assert stdout.isascii(), "the document is ASCII: non-ASCII characters are escaped"
    problems: list[str] = []
    _walk(doc, "", documented()[kind], problems)
    assert not problems, problems
    return doc
