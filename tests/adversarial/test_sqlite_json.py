"""SQLite JSON documents are read whole (up to 64 KiB): a key after a long value is still found, in a
declared JSON column or a text column of documents; a longer document is a named problem."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard.model import ScanMode
from piiguard.scanner import scan

SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(bio=st.integers(0, 60_000), declared=st.booleans(), full=st.booleans())
def test_keys_after_a_long_value_are_found(bio: int, declared: bool, full: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "j.db"
        with sqlite3.connect(db) as conn:
            conn.execute(f"CREATE TABLE t (profile {'JSON' if declared else 'TEXT'})")
            conn.executemany("INSERT INTO t VALUES (?)", [
                (json.dumps({"bio": "lorem ipsum " * (bio // 12), "email": f"p{i}@example.com",
                             "phone": f"+49 30 1234{i:04d}"}),) for i in range(30)])
        result = scan([f"sqlite://{db}"], mode=ScanMode.FULL if full else ScanMode.SAMPLE)
        fields = {f.field: f.pii_type for c in result.stores[0].collections for f in c.fields}
        assert fields.get("profile.email") == "email" and fields.get("profile.phone") == "phone", fields
        assert result.problems == ()


def test_a_document_over_the_cap_is_a_named_problem(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (profile JSON)")
        conn.executemany("INSERT INTO t VALUES (?)", [(json.dumps({"email": f"q{i}@example.com", "bio": "x" * 70_000}),)
                                                      for i in range(3)])
    result = scan([f"sqlite://{db}"], mode=ScanMode.FULL)
    assert [p.message for p in result.problems] == [
        "3 JSON document(s) longer than 64 KiB (read cut, as text) skipped; 3 row(s) read"]
