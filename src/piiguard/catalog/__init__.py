"""piiguard's own state: stores, scans, classifications, subjects, problems, incidents.

An embedded SQLite file, marked as piiguard's (``PRAGMA application_id``) and readable by its owner
only (0600, like its -wal and -shm). Which file: ``--catalog PATH``, else ``PIIGUARD_CATALOG``, else
the configuration's ``catalog:``, else the user's data folder (:func:`resolve`). A file that is not a
piiguard catalog, is from a newer piiguard, or is damaged is refused before anything is written
(:mod:`piiguard.catalog.opening`). Everything reads and writes it through :class:`Catalog`.

When the disk is full, what a run *observed* (scans, findings, deliveries, timeline entries) is not
saved and the run goes on; the catalog raises the :class:`CatalogError` when it is closed (leaving a
``with Catalog(...)`` block), so the run's results can be shown first. What a run *does* (containment,
copies, incidents, notices) is refused at once when it cannot be recorded.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeAlias, TypeVar, cast

from piiguard import safefile
from piiguard.catalog import timeline as tl
from piiguard.catalog.inventory import InventoryTables
from piiguard.catalog.migrations import MIGRATIONS
from piiguard.catalog.opening import APPLICATION_ID, Inspection, State, default_path, inspect, resolve, too_new
from piiguard.catalog.owners import Owner, RunStatus, current
from piiguard.errors import CatalogError, PiiguardError
from piiguard.model import (
    Alert,
    Classification,
    Evidence,
    Exposure,
    Finding,
    ScanMode,
    ScanResult,
    Status,
    Store,
    StoreResult,
    Transition,
)
from piiguard.system import system_collection

__all__ = ["APPLICATION_ID", "Catalog", "default_path", "resolve"]

P = ParamSpec("P")
R = TypeVar("R")
_Method: TypeAlias = Callable[Concatenate["Catalog", P], R]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# Catalog files this process has open, by (device, inode), with how many Catalogs hold each. Why:
# inspect() reads the header with a plain open() and close(), and closing *any* descriptor of a file
# drops every POSIX lock this process holds on it — SQLite's included. Another process (`piiguard
# exposures` beside a running watch) then looks like the last connection, checkpoints and removes the
# -wal that watch still writes to, and what watch commits after that is lost. A file this process has
# open was inspected when it was first opened; it is not opened again behind SQLite's back.
_OPEN: dict[tuple[int, int], int] = {}
_OPEN_LOCK = threading.Lock()


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)  # a stat opens no descriptor
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _is_full(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT))


def _observation(default: Any) -> Callable[[_Method[P, R]], _Method[P, R]]:
    """A write of what a run saw: on a full disk it is dropped (with every later one, so the catalog
    stays consistent) and the error is raised when the catalog closes, after the results are shown."""
    def wrap(method: _Method[P, R]) -> _Method[P, R]:
        @functools.wraps(method)
        def inner(self: Catalog, /, *args: P.args, **kwargs: P.kwargs) -> R:
            if self.unsaved is not None:
                return cast(R, default)
            try:
                return method(self, *args, **kwargs)
            except (sqlite3.OperationalError, OSError) as exc:
                if not _is_full(exc):
                    raise
                self.unsaved = self._full_error()
                self.unsaved.__cause__ = exc
                return cast(R, default)
        return inner
    return wrap


def _action(method: _Method[P, R]) -> _Method[P, R]:
    """A write that records something piiguard does: a full disk refuses it at once."""
    @functools.wraps(method)
    def inner(self: Catalog, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.OperationalError, OSError) as exc:
            if not _is_full(exc):
                raise
            raise self._full_error() from exc
    return inner


class Catalog(InventoryTables):
    """The catalog file. Opening it checks that it is piiguard's, then applies pending migrations.

    ``timeline_key`` signs incident timelines (bytes, or a function returning them); by default it is
    found when first needed (:func:`piiguard.catalog.timeline.load_key`).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 timeline_key: bytes | Callable[[], bytes] | None = None) -> None:
        self.path = Path(path) if path is not None else resolve()
        self.unsaved: CatalogError | None = None
        self._timeline_key = timeline_key
        for name in (self.path, *(Path(f"{self.path}{s}") for s in ("-wal", "-shm", "-journal"))):
            if name.is_symlink():  # SQLite would write through it (its -wal and -shm too)
                raise CatalogError(f"{name} is a symbolic link; nothing was written",
                                   hint="name the real file: piiguard never writes through links")
        self._id: tuple[int, int] | None = None
        with _OPEN_LOCK:
            held = _file_id(self.path) in _OPEN
        # read-only: a file that is not ours is refused before any write (once per process: see _OPEN)
        found = Inspection(State.OURS, 0) if held else inspect(self.path)
        try:
            if found.state is State.NEW:
                safefile.ensure_private_file(self.path)  # SQLite gives -wal and -shm the database file's mode
            # A Catalog may be handed to another thread (watch runs in one), but is used by one at a time;
            # concurrent work (deliveries, re-scans) opens its own Catalog.
            self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        except PiiguardError as exc:
            raise CatalogError(f"cannot create the catalog at {self.path}: {exc.message}", hint=exc.hint) from exc
        except (sqlite3.Error, OSError) as exc:
            raise self._open_error(exc) from exc
        try:
            self._prepare(found.state)
        except CatalogError:
            self.db.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            self.db.close()
            raise self._open_error(exc) from exc
        with _OPEN_LOCK:
            self._id = _file_id(self.path)
            if self._id is not None:
                _OPEN[self._id] = _OPEN.get(self._id, 0) + 1

    def _prepare(self, state: State) -> None:
        # Looked at again on the connection that writes: the file may have changed since it was inspected.
        app_id = int(self.db.execute("PRAGMA application_id").fetchone()[0])
        if self.version > len(MIGRATIONS):
            raise too_new(self.path, self.version)
        if state is State.OURS and app_id != APPLICATION_ID:
            raise CatalogError(f"{self.path} changed while it was opened", hint="run again")
        if state is not State.OURS:
            self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        if os.stat(self.path).st_uid == os.geteuid():
            os.chmod(self.path, 0o600)  # a catalog made by an older piiguard may be 0644: it is ours, tighten it
        self.db.execute("PRAGMA foreign_keys = ON")
        # WAL with synchronous=NORMAL: a commit is a write, not an fsync (a killed process loses nothing
        # committed; a power cut may lose the last commits, never the file's consistency)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self._migrate()
        self._mark_interrupted()

    def _open_error(self, exc: BaseException) -> CatalogError:
        if _is_full(exc):
            return self._full_error()
        return CatalogError(f"cannot open the catalog at {self.path} ({type(exc).__name__})",
                            hint="check the path and its permissions, or pass --catalog PATH")

    def _full_error(self) -> CatalogError:
        return CatalogError(f"the disk holding the catalog at {self.path} is full: this run's results were not "
                            "saved", hint="free space on that disk (or pass --catalog PATH) and run again")

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
        if et is None and self.unsaved is not None:
            raise self.unsaved

    def close(self) -> None:
        self.db.close()
        with _OPEN_LOCK:
            if self._id is not None and self._id in _OPEN:
                _OPEN[self._id] -= 1
                if not _OPEN[self._id]:
                    del _OPEN[self._id]
            self._id = None

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.version
        for i, step in enumerate(MIGRATIONS[current:], start=current + 1):
            # One transaction per step: a failed migration leaves the previous version intact.
            try:
                self.db.executescript(f"BEGIN IMMEDIATE; {step}; PRAGMA user_version = {i}; COMMIT;")
            except sqlite3.Error as exc:
                if self.db.in_transaction:
                    self.db.rollback()
                if self.version < i:
                    raise self._migration_error(exc, current, i) from exc
                # another piiguard opening the same new catalog applied this step first (it held the lock)

    def _migration_error(self, exc: sqlite3.Error, found: int, step: int) -> CatalogError:
        """Names the catalog's version and the migration that failed. SQLite's own message is shown only
        for an ``OperationalError``: a migration runs piiguard's fixed DDL, so that class's message is
        about the schema ("duplicate column name: status", "database is locked"), never a row's value;
        other classes (an ``IntegrityError`` on the rows a step copies) show their class only."""
        if _is_full(exc):
            return self._full_error()
        cause = type(exc).__name__
        if type(exc) is sqlite3.OperationalError:
            cause += f": {str(exc)[:200]}"  # printed through escaped() at the CLI
        return CatalogError(f"cannot upgrade the catalog at {self.path} from schema version {found}: migration "
                            f"{step} of {len(MIGRATIONS)} failed ({cause}); the file is left at version {step - 1}",
                            hint="the file was changed by something other than this piiguard (a development build?): "
                            "back it up, then start a new catalog with --catalog NEW_PATH (or PIIGUARD_CATALOG)")

    def _mark_interrupted(self) -> None:
        """Scans still ``running`` and copies still ``writing`` whose owner on this host is dead (killed,
        crashed, the machine rebooted) become ``interrupted``: nothing else would ever end them."""
        me = current()
        for table, running in (("scans", RunStatus.RUNNING), ("copies", RunStatus.WRITING)):
            rows = self.db.execute(f"SELECT id, owner_pid, owner_started FROM {table} WHERE status = ? "
                                   "AND owner_host = ?", (running.value, me.host)).fetchall()
            dead = [(int(i),) for i, pid, started in rows if not Owner(me.host, int(pid), str(started or "")).alive()]
            if dead:
                with self.db:
                    self.db.executemany(f"UPDATE {table} SET status = 'interrupted' WHERE id = ? AND status = ?",
                                        [(i, running.value) for (i,) in dead])

    @_observation(0)
    def start_scan(self, mode: ScanMode, sample_size: int) -> int:
        owner = current()
        with self.db:
            cur = self.db.execute("INSERT INTO scans (started, mode, sample_size, status, owner_host, owner_pid, "
                                  "owner_started) VALUES (?, ?, ?, 'running', ?, ?, ?)",
                                  (_now(), mode.value, sample_size, owner.host, owner.pid, owner.started))
        return int(cur.lastrowid or 0)

    @_observation(None)
    def end_scan(self, scan_id: int, status: RunStatus) -> None:
        """A scan that did not finish (``failed``, or ``interrupted`` by the operator)."""
        with self.db:
            self.db.execute("UPDATE scans SET status = ? WHERE id = ? AND status = 'running'",
                            (status.value, scan_id))

    SCAN_KEYS = ("id", "started", "finished", "mode", "sample_size", "status")

    def scans(self) -> list[dict[str, Any]]:
        """Every scan: when, how, and whether it finished (``running``, ``finished``, ``failed``, ``interrupted``)."""
        rows = self.db.execute(f"SELECT {', '.join(self.SCAN_KEYS)} FROM scans ORDER BY id").fetchall()
        return [dict(zip(self.SCAN_KEYS, r, strict=True)) for r in rows]

    @_observation(None)
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
                    "INSERT INTO classifications (scan_id, store, collection, field, pii_type, confidence, matched, "
                    "sampled, nulls, distinct_values, reason, native_type, evidence) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(scan_id, f.store, f.collection, f.field, f.pii_type, f.confidence, f.matched, f.sampled,
                      f.nulls, f.distinct, f.reason, f.native_type,
                      None if f.evidence is None else json.dumps(f.evidence.to_dict(), sort_keys=True))
                     for f in c.fields])
            if result.subjects is not None:
                s = result.subjects
                self.db.execute("INSERT INTO subjects VALUES (?,?,?,?,?,?)",
                                (scan_id, store.name, s.estimate, s.collection, s.field, s.kind.value))
            self.db.executemany("INSERT INTO problems VALUES (?,?,?,?,?,?)",
                                [(scan_id, p.store, p.collection, p.kind.value, p.message, p.hint)
                                 for p in result.problems])

    @_observation(None)
    def finish_scan(self, result: ScanResult) -> None:
        with self.db:
            self.db.execute("UPDATE scans SET finished = ?, status = 'finished' WHERE id = ?",
                            (result.finished.isoformat(timespec="seconds"), result.scan_id))

    def _engine(self, store: str) -> str:
        row = self.db.execute("SELECT engine FROM stores WHERE name = ?", (store,)).fetchone()
        return str(row[0]) if row else ""

    def pii_fields(self, store: str, *, include_system: bool = False) -> list[tuple[str, str, str, float]]:
        """(collection, field, pii_type, confidence) from the store's latest scan; system collections
        (:mod:`piiguard.system`) only with ``include_system``."""
        rows = self.db.execute(
            "SELECT collection, field, pii_type, confidence FROM classifications WHERE store = ? AND "
            "pii_type IS NOT NULL AND scan_id = (SELECT max(scan_id) FROM classifications WHERE store = ?) "
            "ORDER BY collection, field", (store, store)).fetchall()
        engine = self._engine(store)
        return [(str(a), str(b), str(c), float(d)) for a, b, c, d in rows
                if include_system or not system_collection(engine, str(a))]

    def decisions(self) -> list[Classification]:
        """Every field's recorded decision, from each store's latest scan, with its evidence: what
        ``explain`` reads back (counts, types and evidence only; the catalog holds no values)."""
        rows = self.db.execute(
            "SELECT c.store, c.collection, c.field, c.pii_type, c.confidence, c.matched, c.sampled, c.nulls, "
            "c.distinct_values, c.reason, c.native_type, c.evidence FROM classifications c "
            "JOIN (SELECT store, max(scan_id) AS last FROM classifications GROUP BY store) l "
            "ON l.store = c.store AND l.last = c.scan_id ORDER BY c.store, c.collection, c.field").fetchall()
        return [Classification(str(st), str(co), str(fi), None if pt is None else str(pt), float(cf), int(m),
                               int(sa), int(nu), None if di is None else int(di), str(re),
                               None if nt is None else str(nt),
                               None if ev is None else Evidence.from_dict(json.loads(ev)))
                for st, co, fi, pt, cf, m, sa, nu, di, re, nt, ev in rows]

    def system_pii(self, store: str) -> dict[str, list[str]]:
        """System collections the store's latest scan found PII in → their PII types: what an
        incident leaves out by default, for a report to list separately."""
        out: dict[str, list[str]] = {}
        engine = self._engine(store)
        for collection, _field, pii_type, _confidence in self.pii_fields(store, include_system=True):
            if system_collection(engine, collection) and pii_type not in out.setdefault(collection, []):
                out[collection].append(pii_type)
        return {c: sorted(t) for c, t in out.items()}

    def data_context(self, store: str, *, include_system: bool = False) -> tuple[tuple[str, ...], int | None] | None:
        """PII types and subject estimate from the store's latest scan; None if it was never scanned.
        What only system collections hold is left out unless ``include_system``."""
        last = self.db.execute("SELECT max(scan_id) FROM classifications WHERE store = ?", (store,)).fetchone()[0]
        if last is None:
            return None
        engine = self._engine(store)
        types = tuple(sorted({str(t) for c, t in self.db.execute(
            "SELECT DISTINCT collection, pii_type FROM classifications WHERE store = ? AND scan_id = ? AND "
            "pii_type IS NOT NULL", (store, last)) if include_system or not system_collection(engine, str(c))}))
        row = self.db.execute("SELECT estimate FROM subjects WHERE store = ? AND scan_id = ?", (store, last)).fetchone()
        return types, (int(row[0]) if row else None)

    def latest_scan_id(self, store: str, before: str | None = None) -> int | None:
        """The store's latest scan (the latest started at or before ``before``, an ISO time); None if none."""
        row = self.db.execute("SELECT max(c.scan_id) FROM classifications c JOIN scans t ON t.id = c.scan_id "
                              "WHERE c.store = ? AND (? IS NULL OR t.started <= ?)", (store, before, before)).fetchone()
        return int(row[0]) if row[0] is not None else None

    def store_scan(self, store: str, scan_id: int | None = None) -> dict[str, Any] | None:
        """A scan of the store (by default its latest): its id, times, status, PII types and subject
        estimate with its kind and field; None if the store has no such scan."""
        scan_id = self.latest_scan_id(store) if scan_id is None else scan_id
        row = self.db.execute("SELECT id, started, finished, status, mode FROM scans WHERE id = ? AND EXISTS "
                              "(SELECT 1 FROM classifications WHERE scan_id = ? AND store = ?)",
                              (scan_id, scan_id, store)).fetchone()
        if row is None:
            return None
        types = [str(r[0]) for r in self.db.execute(
            "SELECT DISTINCT pii_type FROM classifications WHERE store = ? AND scan_id = ? AND pii_type IS NOT NULL "
            "ORDER BY 1", (store, scan_id))]
        subjects = self.db.execute("SELECT estimate, kind, collection, field FROM subjects WHERE store = ? AND "
                                   "scan_id = ?", (store, scan_id)).fetchone()
        return {"scan_id": scan_id, "started": row[1], "finished": row[2], "status": row[3], "mode": row[4],
                "pii_types": types, "subjects_estimate": int(subjects[0]) if subjects else None,
                "estimate_kind": str(subjects[1]) if subjects else None,
                "subjects_field": f"{subjects[2]}.{subjects[3]}" if subjects else None}

    def known_stores(self) -> list[dict[str, Any]]:
        """Every store a scan recorded: name, engine, address (no credentials), first and last seen."""
        keys = ("name", "engine", "address", "first_seen", "last_seen")
        rows = self.db.execute(f"SELECT {', '.join(keys)} FROM stores ORDER BY name").fetchall()
        return [dict(zip(keys, r, strict=True)) for r in rows]

    @_observation([])
    def record_findings(self, findings: list[Finding]) -> list[Transition]:
        """Upsert findings: ``last_seen`` moves on; a changed status restarts ``first_seen`` and is logged
        as an event. Returns the status changes (what ``watch`` turns into alerts)."""
        with self.db:
            return self._record_findings(findings, _now())

    def _record_findings(self, findings: list[Finding], now: str) -> list[Transition]:
        changes = []
        for f in findings:
            row = self.db.execute("SELECT status FROM findings WHERE store = ? AND check_id = ?",
                                  (f.store, f.check)).fetchone()
            if row is not None and row[0] == f.status.value:
                self.db.execute("UPDATE findings SET severity = ?, evidence = ?, last_seen = ? "
                                "WHERE store = ? AND check_id = ?",
                                (f.severity.value, f.evidence, now, f.store, f.check))
                continue
            self.db.execute("INSERT OR REPLACE INTO findings VALUES (?,?,?,?,?,?,?,?)",
                            (f.store, f.check, f.status.value, f.severity.value, f.vantage.value, f.evidence, now, now))
            # The last pass or fail before this change: fail → error → fail is one failure, not two.
            decided = self.db.execute("SELECT status FROM finding_events WHERE store = ? AND check_id = ? "
                                      "AND status IN ('pass', 'fail') ORDER BY rowid DESC LIMIT 1",
                                      (f.store, f.check)).fetchone() if row is not None else None
            cur = self.db.execute("INSERT INTO finding_events VALUES (?,?,?,?)",
                                  (f.store, f.check, f.status.value, now))
            changes.append(Transition(int(cur.lastrowid or 0), f, Status(row[0]) if row else None, now,
                                      Status(decided[0]) if decided else None))
        return changes

    @_action
    def record_cycle(self, findings: list[Finding], alerts: Callable[[list[Transition]], list[Alert]],
                     sinks: list[str], exposed: dict[str, Finding | None]) -> list[Alert]:
        """One watch cycle, in one transaction so a crash loses no transition and doubles no alert:
        findings and their transitions, the alerts they cause (queued once per sink, by dedupe key), and
        exposure windows opened or closed (``exposed`` maps store → a failing outside finding, or None)."""
        now = _now()
        with self.db:
            changes = self._record_findings(findings, now)
            queued = alerts(changes)
            for alert in queued:
                cur = self.db.execute("INSERT OR IGNORE INTO alerts VALUES (?,?,?,?,?,?,?)",
                                      (alert.dedupe_key, alert.event, alert.store, alert.check, alert.severity.value,
                                       alert.at, json.dumps(alert.payload())))
                if cur.rowcount:
                    self.db.executemany("INSERT OR IGNORE INTO deliveries (dedupe_key, sink, next_try) VALUES (?,?,?)",
                                        [(alert.dedupe_key, sink, now) for sink in sinks])
            for store, finding in exposed.items():
                open_row = self.db.execute("SELECT id FROM exposures WHERE store = ? AND closed_at IS NULL",
                                           (store,)).fetchone()
                if finding is not None and open_row is None:
                    self.db.execute("INSERT INTO exposures (store, opened_at, checks, pii_types, subjects_estimate) "
                                    "VALUES (?,?,?,?,?)", (store, now, finding.check, ",".join(finding.pii_types),
                                                           finding.subjects_estimate))
                elif finding is None and open_row is not None:
                    self.db.execute("UPDATE exposures SET closed_at = ? WHERE id = ?", (now, open_row[0]))
        return queued

    def pending(self, sink: str, now: str | None = None) -> list[tuple[str, dict[str, Any], int]]:
        """Alerts not yet delivered to ``sink`` and due for a try: (dedupe_key, payload, attempts)."""
        rows = self.db.execute(
            "SELECT d.dedupe_key, a.payload, d.attempts FROM deliveries d JOIN alerts a USING (dedupe_key) "
            "WHERE d.sink = ? AND d.delivered_at IS NULL AND d.next_try <= ? ORDER BY a.at, d.dedupe_key",
            (sink, now or _now())).fetchall()
        return [(str(k), json.loads(p), int(n)) for k, p, n in rows]

    @_observation(None)
    def delivered(self, dedupe_key: str, sink: str) -> None:
        with self.db:
            self.db.execute("UPDATE deliveries SET delivered_at = ?, attempts = attempts + 1 "
                            "WHERE dedupe_key = ? AND sink = ?", (_now(), dedupe_key, sink))

    @_observation(None)
    def dropped_delivery(self, dedupe_key: str, sink: str, error: str) -> None:
        """Give up on one alert for one sink (it failed too often): never pending again, even for
        ``watch --once`` (``next_try`` 'never' sorts after every date and after '9999')."""
        with self.db:
            self.db.execute("UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_try = 'never' "
                            "WHERE dedupe_key = ? AND sink = ?", (f"dropped: {error}", dedupe_key, sink))

    @_observation(None)
    def failed_delivery(self, dedupe_key: str, sink: str, error: str, next_try: str) -> None:
        with self.db:
            self.db.execute("UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_try = ? "
                            "WHERE dedupe_key = ? AND sink = ?", (error, next_try, dedupe_key, sink))

    def exposures(self, store: str | None = None) -> list[Exposure]:
        return self._exposures(" WHERE store = ?" if store else "", (store,) if store else ())

    def _exposures(self, where: str, args: tuple[Any, ...] = ()) -> list[Exposure]:
        query = "SELECT id, store, opened_at, closed_at, checks, pii_types, subjects_estimate FROM exposures e"
        rows = self.db.execute(query + where + " ORDER BY opened_at, id", args).fetchall()
        return [Exposure(int(i), str(s), str(o), c, str(ch), tuple(p.split(",")) if p else (), n)
                for i, s, o, c, ch, p, n in rows]

    def exposures_without_incident(self) -> list[Exposure]:
        """Exposure windows of stores holding PII that no incident follows yet (watch opens one each)."""
        return self._exposures(" WHERE pii_types != '' AND NOT EXISTS "
                               "(SELECT 1 FROM incidents i WHERE i.exposure_id = e.id)")

    def incident_windows_to_close(self) -> list[tuple[int, str]]:
        """(incident, closed_at) for incidents whose exposure closed while their window is still open."""
        rows = self.db.execute("SELECT i.id, e.closed_at FROM incidents i JOIN exposures e ON e.id = i.exposure_id "
                               "WHERE i.window_end IS NULL AND e.closed_at IS NOT NULL ORDER BY i.id").fetchall()
        return [(int(i), str(c)) for i, c in rows]

    def findings(self, store: str | None = None) -> list[tuple[str, str, str, str, str]]:
        """(store, check, status, first_seen, last_seen) as recorded."""
        query = "SELECT store, check_id, status, first_seen, last_seen FROM findings"
        rows = self.db.execute(query + (" WHERE store = ?" if store else "") + " ORDER BY 1, 2",
                               (store,) if store else ()).fetchall()
        return [tuple(map(str, r)) for r in rows]  # type: ignore[misc]

    def open_exposures(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM exposures WHERE closed_at IS NULL").fetchone()[0])

    @_action
    def add_containment(self, store: str, engine: str, plan: dict[str, Any], status: str) -> int:
        now = _now()
        with self.db:
            cur = self.db.execute("INSERT INTO containments (store, engine, status, plan, created, updated) "
                                  "VALUES (?,?,?,?,?,?)", (store, engine, status, json.dumps(plan), now, now))
        return int(cur.lastrowid or 0)

    @_action
    def set_containment(self, containment_id: int, status: str, note: str = "") -> None:
        with self.db:
            self.db.execute("UPDATE containments SET status = ?, note = ?, updated = ? WHERE id = ?",
                            (status, note, _now(), containment_id))

    def containment(self, containment_id: int) -> dict[str, Any] | None:
        rows = self._containments(" WHERE id = ?", (containment_id,))
        return rows[0] if rows else None

    def containments(self, store: str | None = None) -> list[dict[str, Any]]:
        return self._containments(" WHERE store = ?" if store else "", (store,) if store else ())

    def _containments(self, where: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        query = "SELECT id, store, engine, status, plan, created, updated, note FROM containments"
        rows = self.db.execute(query + where + " ORDER BY id", args).fetchall()
        keys = ("id", "store", "engine", "status", "plan", "created", "updated", "note")
        return [{**dict(zip(keys, r, strict=True)), "plan": json.loads(r[4])} for r in rows]

    def applied_since(self, since: str) -> int:
        """Containments applied (or verified, or failed after applying) since ``since``: the rate cap."""
        row = self.db.execute("SELECT count(*) FROM containments WHERE status IN ('applied', 'verified', 'failed') "
                              "AND updated >= ?", (since,)).fetchone()
        return int(row[0])

    COPY_KEYS = ("id", "source_store", "source_collection", "target_store", "target_engine", "target_collection",
                 "transforms", "key_id", "owner", "purpose", "created", "expires", "status", "rows", "subjects",
                 "accepted_risk", "note", "objects", "target_url", "source_url")

    @_action
    def add_copy(self, record: dict[str, Any]) -> int:
        """Register a copy before its first write (status ``writing``), so a crash leaves a trace."""
        keys = [k for k in self.COPY_KEYS if k not in ("id", "created", "status", "rows", "subjects", "note",
                                                       "objects")]
        urls = ("target_url", "source_url")  # '' when a caller does not know them
        values = [json.dumps(record[k]) if k == "transforms" else record.get(k, "") if k in urls else record[k]
                  for k in keys]
        owner = current()
        with self.db:
            cur = self.db.execute(f"INSERT INTO copies ({', '.join(keys)}, created, status, owner_host, owner_pid, "
                                  f"owner_started) VALUES ({', '.join('?' * len(keys))}, ?, 'writing', ?, ?, ?)",
                                  (*values, _now(), owner.host, owner.pid, owner.started))
        return int(cur.lastrowid or 0)

    @_action
    def finish_copy(self, copy_id: int, status: str, *, rows: int | None = None, subjects: int | None = None,
                    note: str = "", objects: list[dict[str, str]] | None = None,
                    replaced: list[int] | None = None) -> None:
        """End a copy: its status, counts, the objects it created (``objects``), and the earlier copies
        whose objects it replaced (``replaced``; they become ``replaced`` in the same transaction)."""
        with self.db:
            self.db.execute("UPDATE copies SET status = ?, rows = coalesce(?, rows), subjects = coalesce(?, subjects),"
                            " note = ?, objects = coalesce(?, objects) WHERE id = ?",
                            (status, rows, subjects, note, json.dumps(objects) if objects is not None else None,
                             copy_id))
            self.db.executemany("UPDATE copies SET status = 'replaced', note = ? WHERE id = ? AND status = 'active'",
                                [(f"replaced by copy {copy_id}", i) for i in replaced or ()])

    def set_copy_objects(self, copy_id: int, objects: list[dict[str, str]]) -> None:
        """What a copy has made so far (its staging, while it writes)."""
        with self.db:
            self.db.execute("UPDATE copies SET objects = ? WHERE id = ?", (json.dumps(objects), copy_id))

    def copies(self, *, status: str | None = None, expired_before: str | None = None) -> list[dict[str, Any]]:
        """Registered copies; ``expired_before`` (an ISO date) keeps those whose expiry is earlier."""
        conditions = [(c, v) for c, v in (("status = ?", status), ("expires < ?", expired_before)) if v]
        where = " WHERE " + " AND ".join(c for c, _ in conditions) if conditions else ""
        rows = self.db.execute(f"SELECT {', '.join(self.COPY_KEYS)} FROM copies{where} ORDER BY id",
                               tuple(v for _, v in conditions)).fetchall()
        return [{**dict(zip(self.COPY_KEYS, r, strict=True)), "transforms": json.loads(r[6]),
                 "objects": json.loads(r[17])} for r in rows]


    # Incidents ----------------------------------------------------------------------------------------

    @_action
    def open_incident(self, title: str, stores: list[str], window_start: str, pii_types: list[str],
                      subjects: int | None, exposure_id: int | None = None) -> int:
        now = _now()
        with self.db:
            cur = self.db.execute(
                "INSERT INTO incidents (title, status, stores, window_start, aware_at, pii_types, subjects_estimate,"
                " exposure_id) VALUES (?, 'open', ?, ?, ?, ?, ?, ?)",
                (title, json.dumps(stores), window_start, now, json.dumps(pii_types), subjects, exposure_id))
            incident_id = int(cur.lastrowid or 0)
            # which scan each store's PII types and estimate are from: the reports name it until a scope exists
            scans = {s: self.latest_scan_id(s) for s in stores}
            self._append(incident_id, "opened", {"title": title, "stores": stores, "window_start": window_start,
                                                 "pii_types": pii_types, "subjects_estimate": subjects,
                                                 "estimate_scans": scans,
                                                 "timeline_key": tl.key_id(self.timeline_key())}, now)
        return incident_id

    INCIDENT_KEYS = ("id", "title", "status", "stores", "window_start", "window_end", "aware_at", "pii_types",
                     "subjects_estimate", "exposure_id")

    def incidents(self) -> list[dict[str, Any]]:
        rows = self.db.execute(f"SELECT {', '.join(self.INCIDENT_KEYS)} FROM incidents ORDER BY id").fetchall()
        return [{**dict(zip(self.INCIDENT_KEYS, r, strict=True)), "stores": json.loads(r[3]),
                 "pii_types": json.loads(r[7])} for r in rows]

    def incident(self, incident_id: int) -> dict[str, Any] | None:
        return next((i for i in self.incidents() if i["id"] == incident_id), None)

    @_action
    def close_window(self, incident_id: int, window_end: str) -> None:
        with self.db:
            self.db.execute("UPDATE incidents SET window_end = ? WHERE id = ?", (window_end, incident_id))
            self._append(incident_id, "window-closed", {"window_end": window_end}, _now())

    @_observation(None)
    def event(self, incident_id: int, kind: str, payload: dict[str, Any]) -> tl.Head | None:
        """Append to the incident's timeline; returns its new head (None when the disk is full: see the
        module's documentation)."""
        with self.db:
            return self._append(incident_id, kind, payload, _now())

    def timeline_key(self) -> bytes:
        """The key the timeline is signed with (found, or created, on first use)."""
        if not isinstance(self._timeline_key, bytes):
            self._timeline_key = (self._timeline_key or tl.load_key)()
        return self._timeline_key

    def _append(self, incident_id: int, kind: str, payload: dict[str, Any], at: str) -> tl.Head:
        """One timeline entry, chained: its HMAC covers the previous entry's HMAC and its own content, so
        editing or reordering any entry breaks every HMAC after it; the incident's seal covers the count
        and the last HMAC, so removing the last entries is found too (``incident verify``)."""
        key = self.timeline_key()
        last = self.db.execute("SELECT seq, hash FROM timeline WHERE incident_id = ? ORDER BY seq DESC LIMIT 1",
                               (incident_id,)).fetchone()
        seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, tl.GENESIS)
        if last:
            self._same_key(incident_id, key)
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        digest = tl.entry_mac(key, prev, incident_id, seq, at, kind, body)
        self.db.execute("INSERT INTO timeline VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (incident_id, seq, at, kind, body, prev, digest))
        head = tl.Head(seq, digest)
        self.db.execute("UPDATE incidents SET timeline_seal = ? WHERE id = ?", (head.seal(key, incident_id),
                                                                                   incident_id))
        return head

    def _same_key(self, incident_id: int, key: bytes) -> None:
        """An entry signed with another key than the incident's would leave a timeline no key verifies."""
        row = self.db.execute("SELECT payload FROM timeline WHERE incident_id = ? AND seq = 1 AND kind = 'opened'",
                              (incident_id,)).fetchone()
        recorded = json.loads(row[0]).get("timeline_key") if row else None
        if recorded and recorded != tl.key_id(key):
            raise CatalogError(f"incident {incident_id}'s timeline is signed with another key (key id {recorded}) than "
                               f"the one given (key id {tl.key_id(key)}); nothing was added",
                               hint="set PIIGUARD_TIMELINE_KEY or PIIGUARD_TIMELINE_KEY_FILE to the incident's key")

    def timeline_head(self, incident_id: int) -> tl.Head | None:
        """The head as the catalog holds it now (not verified: see ``incident verify``)."""
        row = self.db.execute("SELECT seq, hash FROM timeline WHERE incident_id = ? ORDER BY seq DESC LIMIT 1",
                              (incident_id,)).fetchone()
        return tl.Head(int(row[0]), str(row[1])) if row else None

    def timeline_seal(self, incident_id: int) -> str | None:
        row = self.db.execute("SELECT timeline_seal FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        return str(row[0]) if row and row[0] else None

    def timeline(self, incident_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT seq, at, kind, payload, prev_hash, hash FROM timeline WHERE incident_id = ? "
                               "ORDER BY seq", (incident_id,)).fetchall()
        keys = ("seq", "at", "kind", "payload", "prev_hash", "hash")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    @_action
    def set_scope(self, incident_id: int,
                  subjects: Mapping[str, Sequence[str]] | Iterable[tuple[str, Sequence[str]]]) -> None:
        """Replace the scope: (keyed hash, exposed types) per person. The rows go through a temporary
        table and into the scope's index in hash order, so 2.4M random hashes are appended, not
        scattered over the index."""
        encoded: dict[tuple[str, ...], str] = {}  # people share a handful of category lists: encode each once
        rows = subjects.items() if isinstance(subjects, Mapping) else subjects
        with self.db:
            self.db.execute("DELETE FROM scope WHERE incident_id = ?", (incident_id,))
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS scope_load (subject TEXT NOT NULL, fields TEXT NOT NULL)")
            self.db.execute("DELETE FROM scope_load")
            self.db.executemany("INSERT INTO scope_load VALUES (?, ?)", (
                (s, encoded.get(k := tuple(f)) or encoded.setdefault(k, json.dumps(list(f)))) for s, f in rows))
            self.db.execute("INSERT INTO scope SELECT ?, subject, fields FROM scope_load ORDER BY subject",
                            (incident_id,))
            self.db.execute("DROP TABLE scope_load")

    def scope_hashes(self, incident_id: int, batch: int = 100_000) -> Iterator[bytes]:
        """The first 16 bytes of each keyed hash in an incident's scope, in order, concatenated, one
        ``bytes`` per ``batch`` people: the caller decodes each at once, so no Python object per person
        outlives a batch."""
        cur = self.db.execute("SELECT substr(subject, 1, 32) FROM scope WHERE incident_id = ? ORDER BY subject",
                              (incident_id,))
        while rows := cur.fetchmany(batch):
            yield bytes.fromhex("".join(r[0] for r in rows))

    def notified(self, incident_id: int, batch: int = 100_000) -> Iterator[bytes]:
        """The keyed hash of everyone notified, as 32-byte digests concatenated, a batch at a time (in no
        particular order)."""
        cur = self.db.execute("SELECT subject FROM notices WHERE incident_id = ?", (incident_id,))
        while rows := cur.fetchmany(batch):
            yield bytes.fromhex("".join(r[0] for r in rows))
        for (blob,) in self.db.execute("SELECT subjects FROM notice_batches WHERE incident_id = ? ORDER BY seq",
                                       (incident_id,)):
            yield bytes(blob)

    @_action
    def mark_notified(self, incident_id: int, digests: bytes) -> None:
        """Record notices at once (a spool file's): their keyed hashes, 32-byte digests concatenated."""
        if not digests:
            return
        with self.db:
            self.db.execute("INSERT INTO notice_batches SELECT ?, coalesce(max(seq), 0) + 1, ?, ? FROM notice_batches "
                            "WHERE incident_id = ?", (incident_id, _now(), digests, incident_id))

    def count(self, table: str, incident_id: int) -> int:
        """People in an incident's ``scope``, or notified (``notices``)."""
        if table == "scope":
            row = self.db.execute("SELECT count(*) FROM scope WHERE incident_id = ?", (incident_id,)).fetchone()
            return int(row[0])
        if table != "notices":
            raise ValueError(f"no people counted in {table!r}")
        one = self.db.execute("SELECT count(*) FROM notices WHERE incident_id = ?", (incident_id,)).fetchone()[0]
        many = self.db.execute("SELECT coalesce(sum(length(subjects)), 0) / 32 FROM notice_batches "
                               "WHERE incident_id = ?", (incident_id,)).fetchone()[0]
        return int(one) + int(many)

    def scope_size(self, incident_id: int) -> int:
        """How many people the incident's scope holds (0 before a scope, or for an empty one)."""
        return int(self.db.execute("SELECT count(*) FROM scope WHERE incident_id = ?", (incident_id,)).fetchone()[0])

    def scope_subjects(self, incident_id: int) -> set[str]:
        return {str(r[0]) for r in self.db.execute("SELECT subject FROM scope WHERE incident_id = ?", (incident_id,))}

    def scope(self, incident_id: int) -> dict[str, list[str]]:
        rows = self.db.execute("SELECT subject, fields FROM scope WHERE incident_id = ?", (incident_id,))
        return {str(s): json.loads(f) for s, f in rows}

    def done(self, table: str, incident_id: int, name: str | None = None) -> set[str]:
        """Subjects already notified (``notices``) or already handled by a responder (``responses``)."""
        if table == "notices":
            return {blob[i:i + 32].hex() for blob in self.notified(incident_id) for i in range(0, len(blob), 32)}
        rows = self.db.execute("SELECT subject FROM responses WHERE incident_id = ? AND responder = ?",
                               (incident_id, name))
        return {str(r[0]) for r in rows}

    @_action
    def mark_done(self, table: str, incident_id: int, subjects: list[str], name: str | None = None) -> None:
        now = _now()
        with self.db:
            if table == "notices":
                self.db.executemany("INSERT OR IGNORE INTO notices VALUES (?, ?, 'sent', ?)",
                                    ((incident_id, s, now) for s in subjects))
            else:
                self.db.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?)",
                                    ((incident_id, name, s, now) for s in subjects))

    @_action
    def unmark_notice(self, incident_id: int, subject: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM notices WHERE incident_id = ? AND subject = ?", (incident_id, subject))

