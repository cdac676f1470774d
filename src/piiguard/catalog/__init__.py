"""piiguard's own state: stores, scans, classifications, subjects, problems.

An embedded SQLite file (default: the user's data directory; ``--catalog PATH`` or
``PIIGUARD_CATALOG`` moves it). Everything reads and writes it through :class:`Catalog`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from platformdirs import user_data_dir

from piiguard.catalog.migrations import MIGRATIONS
from piiguard.errors import CatalogError
from piiguard.model import Finding, ScanMode, ScanResult, Store, StoreResult


def default_path() -> Path:
    env = os.environ.get("PIIGUARD_CATALOG")
    return Path(env) if env else Path(user_data_dir("piiguard")) / "catalog.db"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Catalog:
    """The catalog file. Opening it applies pending migrations."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path)
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise CatalogError(f"cannot open the catalog at {self.path}",
                               hint="check the path and its permissions, or pass --catalog PATH") from exc

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.version
        if current > len(MIGRATIONS):
            raise CatalogError(f"the catalog at {self.path} is newer (schema {current}) than this piiguard",
                               hint="upgrade piiguard")
        for i, step in enumerate(MIGRATIONS[current:], start=current + 1):
            # One transaction per step: a failed migration leaves the previous version intact.
            self.db.executescript(f"BEGIN; {step}; PRAGMA user_version = {i}; COMMIT;")

    def start_scan(self, mode: ScanMode, sample_size: int) -> int:
        with self.db:
            cur = self.db.execute("INSERT INTO scans (started, mode, sample_size) VALUES (?, ?, ?)",
                                  (_now(), mode.value, sample_size))
        return int(cur.lastrowid or 0)

    def record_store(self, scan_id: int, store: Store, result: StoreResult) -> None:
        """One store's results, in one transaction."""
        now = _now()
        with self.db:
            self.db.execute(
                "INSERT INTO stores (name, engine, address, tags, first_seen, last_seen) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET engine=excluded.engine, address=excluded.address, "
                "tags=excluded.tags, last_seen=excluded.last_seen",
                (store.name, store.engine, store.address, json.dumps(dict(store.tags)), now, now))
            for c in result.collections:
                self.db.execute("INSERT INTO collections VALUES (?,?,?,?,?,?)",
                                (scan_id, store.name, c.name, c.rows_estimate, c.rows_estimate_kind.value,
                                 c.rows_read))
                self.db.executemany(
                    "INSERT INTO classifications VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [(scan_id, f.store, f.collection, f.field, f.pii_type, f.confidence, f.matched, f.sampled,
                      f.nulls, f.distinct, f.reason) for f in c.fields])
            if result.subjects is not None:
                s = result.subjects
                self.db.execute("INSERT INTO subjects VALUES (?,?,?,?,?,?)",
                                (scan_id, store.name, s.estimate, s.collection, s.field, s.kind.value))
            self.db.executemany("INSERT INTO problems VALUES (?,?,?,?,?,?)",
                                [(scan_id, p.store, p.collection, p.kind.value, p.message, p.hint)
                                 for p in result.problems])

    def finish_scan(self, result: ScanResult) -> None:
        with self.db:
            self.db.execute("UPDATE scans SET finished = ? WHERE id = ?",
                            (result.finished.isoformat(timespec="seconds"), result.scan_id))

    def pii_fields(self, store: str) -> list[tuple[str, str, str, float]]:
        """(collection, field, pii_type, confidence) from the store's latest scan."""
        rows = self.db.execute(
            "SELECT collection, field, pii_type, confidence FROM classifications WHERE store = ? AND "
            "pii_type IS NOT NULL AND scan_id = (SELECT max(scan_id) FROM classifications WHERE store = ?) "
            "ORDER BY collection, field", (store, store)).fetchall()
        return [(str(a), str(b), str(c), float(d)) for a, b, c, d in rows]

    def data_context(self, store: str) -> tuple[tuple[str, ...], int | None] | None:
        """PII types and subject estimate from the store's latest scan; None if it was never scanned."""
        last = self.db.execute("SELECT max(scan_id) FROM classifications WHERE store = ?", (store,)).fetchone()[0]
        if last is None:
            return None
        types = tuple(r[0] for r in self.db.execute(
            "SELECT DISTINCT pii_type FROM classifications WHERE store = ? AND scan_id = ? AND pii_type IS NOT NULL "
            "ORDER BY 1", (store, last)))
        row = self.db.execute("SELECT estimate FROM subjects WHERE store = ? AND scan_id = ?", (store, last)).fetchone()
        return types, (int(row[0]) if row else None)

    def record_findings(self, findings: list[Finding]) -> None:
        """Upsert findings: ``last_seen`` moves on; a changed status restarts ``first_seen`` and is logged
        as an event (what ``watch`` turns into alerts and exposure windows)."""
        now = _now()
        with self.db:
            for f in findings:
                row = self.db.execute("SELECT status FROM findings WHERE store = ? AND check_id = ?",
                                      (f.store, f.check)).fetchone()
                if row is not None and row[0] == f.status.value:
                    self.db.execute("UPDATE findings SET severity = ?, evidence = ?, last_seen = ? "
                                    "WHERE store = ? AND check_id = ?",
                                    (f.severity.value, f.evidence, now, f.store, f.check))
                    continue
                self.db.execute("INSERT OR REPLACE INTO findings VALUES (?,?,?,?,?,?,?,?)",
                                (f.store, f.check, f.status.value, f.severity.value, f.vantage.value, f.evidence,
                                 now, now))
                self.db.execute("INSERT INTO finding_events VALUES (?,?,?,?)", (f.store, f.check, f.status.value, now))

    def findings(self, store: str | None = None) -> list[tuple[str, str, str, str, str]]:
        """(store, check, status, first_seen, last_seen) as recorded."""
        query = "SELECT store, check_id, status, first_seen, last_seen FROM findings"
        rows = self.db.execute(query + (" WHERE store = ?" if store else "") + " ORDER BY 1, 2",
                               (store,) if store else ()).fetchall()
        return [tuple(map(str, r)) for r in rows]  # type: ignore[misc]
