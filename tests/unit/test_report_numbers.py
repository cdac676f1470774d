"""Where a report's numbers come from, on SQLite stores (no server): the scan that was the latest when
the incident was opened, not a later one; no scan at all; a scan without a customer key."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import jsondoc
import pytest
from typer.testing import CliRunner

from piiguard.catalog import Catalog
from piiguard.cli import app
from piiguard.model import Store
from piiguard.scanner import scan

runner = CliRunner()


def shop(path: Path, rows: int, *, with_key: bool = True) -> Store:
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE IF EXISTS customers")
        if with_key:
            db.execute("CREATE TABLE customers (id TEXT PRIMARY KEY, email TEXT)")
            db.executemany("INSERT INTO customers VALUES (?, ?)",
                           [(f"cust-{i:05d}", f"buyer{i}@shop.example.org") for i in range(rows)])
        else:
            db.execute("CREATE TABLE notes (body TEXT)")
            db.executemany("INSERT INTO notes VALUES (?)", [(f"note {i}",) for i in range(rows)])
    return Store("shop", "sqlite", path=str(path))


def report(catalog: Path, incident: int, out: Path) -> dict[str, object]:
    done = runner.invoke(app, ["incident", "report", str(incident), "--catalog", str(catalog), "--out", str(out),
                               "--force", "--format", "json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return jsondoc.check(done.stdout, "report")


@pytest.fixture(autouse=True)
def _timeline_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIIGUARD_TIMELINE_KEY", "report-numbers-timeline-key-0123")


def test_the_scan_named_is_the_latest_before_the_incident_not_a_later_one(tmp_path: Path) -> None:
    catalog, db = tmp_path / "c.db", tmp_path / "shop.db"
    with Catalog(catalog) as cat:
        first = scan([shop(db, 30)], catalog=cat)
        incident = cat.open_incident("shop exposed", ["shop"], "2026-11-03T08:00:00+00:00", ["email"], 30)
        scan([shop(db, 45)], catalog=cat)  # after awareness: not what the incident's number came from
    numbers = report(catalog, incident, tmp_path / "out")["numbers"]
    assert isinstance(numbers, dict)
    (source,) = numbers["scans"]
    assert (source["scan_id"], source["subjects_estimate"], numbers["people"]) == (first.scan_id, 30, 30)
    assert datetime.fromisoformat(source["started"]) <= datetime.now(UTC)
    text = " ".join((tmp_path / "out" / "reports" / "gdpr-art33.md").read_text().split())
    assert f"Numbers: estimate from scan {first.scan_id} of shop" in text
    assert "Approximate number of data subjects concerned: 30 (an estimate: see Numbers below)" in text


def test_a_store_never_scanned_has_unknown_numbers_and_says_why(tmp_path: Path) -> None:
    catalog = tmp_path / "c.db"
    with Catalog(catalog) as cat:
        incident = cat.open_incident("cache exposed", ["cache"], "2026-11-03T08:00:00+00:00", [], None)
    doc = report(catalog, incident, tmp_path / "out")
    numbers = doc["numbers"]
    assert isinstance(numbers, dict)
    assert (numbers["basis"], numbers["exact"], numbers["people"], numbers["scans"]) == ("unknown", False, None, [])
    text = " ".join((tmp_path / "out" / "reports" / "gdpr-art34.md").read_text().split())
    assert "unknown: no scan of the exposed store is recorded" in text


def test_a_scan_without_a_customer_key_is_named_and_says_so(tmp_path: Path) -> None:
    catalog = tmp_path / "c.db"
    with Catalog(catalog) as cat:
        found = scan([shop(tmp_path / "shop.db", 10, with_key=False)], catalog=cat)
        incident = cat.open_incident("shop exposed", ["shop"], "2026-11-03T08:00:00+00:00", [], None)
    numbers = report(catalog, incident, tmp_path / "out")["numbers"]
    assert isinstance(numbers, dict)
    (source,) = numbers["scans"]
    assert (source["scan_id"], source["estimate_kind"], source["subjects_field"]) == (found.scan_id, None, None)
    assert numbers["basis"] == "unknown" and numbers["people"] is None
    assert str(numbers["text"]).startswith(f"unknown: no estimate from scan {found.scan_id} of shop")
    assert "it found no customer key" in str(numbers["text"])
