"""How many people a store holds is counted on its best identifying fields, but a wide export must not
be read once per e-mail column: at most COUNTED_FIELDS exact counts per collection, on the fields whose
samples had the most distinct values (a real SQLite file; the connector's count is observed, not
replaced)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from piiguard.connectors.sqlite import SQLite
from piiguard.model import Estimate, Store
from piiguard.scanner import COUNTED_FIELDS, scan

DISTINCT = [40, 90, 20, 150, 60, 200, 10, 120]  # distinct people in each of eight e-mail columns
ROWS = 200


def _export(path: Path) -> None:
    cols = [f"mail_{i}" for i in range(len(DISTINCT))]
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE export ({', '.join(c + ' text' for c in cols)})")
        conn.executemany(f"INSERT INTO export VALUES ({', '.join('?' * len(cols))})",
                         [tuple(f"person{r % d}.c{i}@example.org" for i, d in enumerate(DISTINCT))
                          for r in range(ROWS)])


def test_a_wide_export_is_counted_on_its_most_distinct_fields_only(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "export.db"
    _export(db)
    counted: list[str] = []
    real = SQLite.distinct

    def observed(self: SQLite, collection, field):  # type: ignore[no-untyped-def]
        counted.append(field)
        return real(self, collection, field)

    monkeypatch.setattr(SQLite, "distinct", observed)
    result = scan([Store("exp", "sqlite", path=str(db))]).stores[0]
    assert {f.field for f in result.collections[0].fields if f.pii_type == "email"} == \
        {f"mail_{i}" for i in range(len(DISTINCT))}
    most = sorted(range(len(DISTINCT)), key=lambda i: -DISTINCT[i])[:COUNTED_FIELDS]
    assert sorted(counted) == sorted(f"mail_{i}" for i in most)
    assert result.subjects is not None
    assert (result.subjects.field, result.subjects.estimate, result.subjects.kind) == ("mail_5", 200, Estimate.EXACT)
