"""The catalog: marked as piiguard's, anything else refused before a byte is written, a full disk
reported after the run's results, and one rule for which file it is."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from piiguard.catalog import APPLICATION_ID, Catalog, resolve
from piiguard.catalog.migrations import MIGRATIONS
from piiguard.catalog.opening import tables_at
from piiguard.errors import CatalogError
from piiguard.model import ScanMode
from piiguard.scanner import scan

KEY = "catalog-tests-timeline-key-0123456789"
EMAILS = [f"person{i}@example.org" for i in range(300)]


def fingerprint(path: Path) -> tuple[str, list[str]]:
    """The file's bytes, and what lies beside it (no -wal or -shm may appear)."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(p.name for p in path.parent.iterdir())


def app_database(path: Path, *, wal: bool = False, application_id: int = 0) -> Path:
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode = WAL")
    if application_id:
        db.execute(f"PRAGMA application_id = {application_id}")
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    db.executemany("INSERT INTO users (email) VALUES (?)", [(e,) for e in EMAILS[:20]])
    db.commit()
    db.close()
    return path


def old_catalog(path: Path, version: int) -> Path:
    """A catalog as piiguard made it before the application id: migrations applied, id 0."""
    db = sqlite3.connect(path)
    for i, step in enumerate(MIGRATIONS[:version], start=1):
        db.executescript(f"BEGIN; {step}; PRAGMA user_version = {i}; COMMIT;")
    db.execute("INSERT INTO scans (started, mode, sample_size) VALUES ('2026-01-01', 'sample', 10)")
    db.commit()
    db.close()
    return path


def refused(path: Path, match: str) -> None:
    before = fingerprint(path)
    with pytest.raises(CatalogError, match=match) as err:
        Catalog(path, timeline_key=KEY.encode())
    assert "nothing was written" in str(err.value) or "newer" in str(err.value)
    assert fingerprint(path) == before  # not one byte, no -wal/-shm beside it, no WAL switch


# Refused before anything is written ------------------------------------------------------------------


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_an_applications_database_is_refused_untouched(tmp_path: Path, wal: bool) -> None:
    path = app_database(tmp_path / "app.db", wal=wal)
    header = path.read_bytes()[18:20]
    refused(path, "not a piiguard catalog")
    assert path.read_bytes()[18:20] == header  # its journal mode is as it was
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    assert db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [("users",)]
    db.close()


def test_a_database_marked_by_another_application_is_refused_even_when_empty(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id = 1179210823")  # Fossil's
    db.close()
    refused(path, "another application's database")


@pytest.mark.parametrize("tamper", ["missing-table", "extra-table"])
def test_an_unmarked_database_with_other_tables_is_not_adopted(tmp_path: Path, tamper: str) -> None:
    path = old_catalog(tmp_path / "c.db", 3)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE alerts" if tamper == "missing-table" else "CREATE TABLE orders (id INTEGER)")
    db.commit()
    db.close()
    refused(path, "not a piiguard catalog")


def test_a_catalog_from_a_newer_piiguard_is_refused_before_a_wal_switch(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db", timeline_key=KEY.encode()):
        pass
    db = sqlite3.connect(tmp_path / "c.db")
    db.execute("PRAGMA journal_mode = DELETE")  # as a newer piiguard might leave it
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 3}")
    db.close()
    assert (tmp_path / "c.db").read_bytes()[18] == 1
    refused(tmp_path / "c.db", f"newer \\(schema {len(MIGRATIONS) + 3}\\)")
    assert (tmp_path / "c.db").read_bytes()[18] == 1  # still not WAL


def test_an_unmarked_catalog_from_a_newer_piiguard_is_refused_too(tmp_path: Path) -> None:
    path = old_catalog(tmp_path / "c.db", len(MIGRATIONS))
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    refused(path, "newer")


@pytest.mark.parametrize("damage", ["random", "text", "header-only", "bad-page", "truncated"])
def test_a_damaged_file_is_refused_untouched(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "c.db"
    if damage == "random":
        path.write_bytes(os.urandom(8192))
    elif damage == "text":
        path.write_text("stores:\n  - name: prod\n")
    else:
        with Catalog(tmp_path / "good.db", timeline_key=KEY.encode()):
            pass
        good = (tmp_path / "good.db").read_bytes()
        if damage == "header-only":
            path.write_bytes(good[:100])
        elif damage == "truncated":  # the schema page is whole: only the size gives it away
            path.write_bytes(good[: len(good) // 2])
        else:  # a valid header, the schema page overwritten
            path.write_bytes(good[:100] + os.urandom(len(good) - 100))
    refused(path, "not an SQLite database|cannot be read|not a piiguard catalog|truncated")


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="is a folder"):
        Catalog(tmp_path, timeline_key=KEY.encode())


def test_a_dangling_link_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "c.db").symlink_to(tmp_path / "elsewhere.db")
    with pytest.raises(CatalogError, match="symbolic link"):
        Catalog(tmp_path / "c.db", timeline_key=KEY.encode())
    assert not (tmp_path / "elsewhere.db").exists()


# Created marked and private; old catalogs adopted ---------------------------------------------------------


def test_a_new_catalog_is_marked_and_private_with_its_wal_and_shm(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "c.db"
    with Catalog(path, timeline_key=KEY.encode()) as cat:
        cat.open_incident("t", ["s"], "2026-11-03T08:00:00+00:00", [], None)
        assert cat.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert cat.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    assert modes == {"c.db": 0o600, "c.db-wal": 0o600, "c.db-shm": 0o600}
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert int.from_bytes(path.read_bytes()[68:72], "big") == APPLICATION_ID


def test_an_empty_file_becomes_a_catalog(tmp_path: Path) -> None:
    (tmp_path / "c.db").touch()
    with Catalog(tmp_path / "c.db", timeline_key=KEY.encode()) as cat:
        assert cat.version == len(MIGRATIONS)


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS) + 1))
def test_a_catalog_from_before_the_mark_is_adopted_with_its_data(tmp_path: Path, version: int) -> None:
    path = old_catalog(tmp_path / "c.db", version)
    path.chmod(0o644)
    assert tables_at(version)  # the test means something only if the version has tables
    with Catalog(path, timeline_key=KEY.encode()) as cat:
        assert cat.version == len(MIGRATIONS)
        assert cat.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert cat.db.execute("SELECT count(*) FROM scans").fetchone()[0] == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # ours, so tightened


# A full disk -----------------------------------------------------------------------------------------------


def source(tmp_path: Path) -> Path:
    db = sqlite3.connect(tmp_path / "shop.db")
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, nickname TEXT)")
    db.executemany("INSERT INTO customers (email, nickname) VALUES (?, ?)", [(e, f"n{i}") for i, e in enumerate(EMAILS)])
    db.commit()
    db.close()
    return tmp_path / "shop.db"


def test_a_full_disk_is_a_clear_error_and_the_scan_is_still_printed(tmp_path: Path, tiny_disk: Path,
                                                                    fill: Callable[[Path], Path]) -> None:
    shop = source(tmp_path)
    path = tiny_disk / "c.db"
    holder = Catalog(path, timeline_key=KEY.encode())  # keeps -wal and -shm in place while the disk fills
    filler = fill(tiny_disk)
    run = subprocess.run([sys.executable, "-m", "piiguard", "scan", f"sqlite://{shop}", "--catalog", str(path),
                          "--format", "json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr
    assert "is full" in run.stderr and "free space" in run.stderr
    printed = json.loads(run.stdout)  # the results, whole
    assert [f["field"] for f in printed["fields"] if f["pii_type"] == "email"] == ["email"]
    assert not any(e in run.stdout + run.stderr for e in EMAILS)
    filler.unlink()
    assert holder.db.execute("SELECT count(*) FROM scans").fetchone()[0] == 0  # nothing half-saved
    holder.close()
    with Catalog(path, timeline_key=KEY.encode()) as cat:  # and the catalog is whole
        assert cat.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_full_disk_in_the_library_keeps_results_and_raises_on_close(tmp_path: Path, tiny_disk: Path,
                                                                      fill: Callable[[Path], Path]) -> None:
    shop = source(tmp_path)
    cat = Catalog(tiny_disk / "c.db", timeline_key=KEY.encode())
    incident_id = cat.open_incident("t", ["s"], "2026-11-03T08:00:00+00:00", [], None)
    fill(tiny_disk)
    result = scan([f"sqlite://{shop}"], mode=ScanMode.FULL, catalog=cat)
    assert result.stores and result.stores[0].collections  # the run went on, its results returned
    assert cat.unsaved is not None
    assert cat.event(incident_id, "note", {}) is None  # an observation: dropped, reported on close
    with pytest.raises(CatalogError, match="is full"):  # an action: refused at once
        cat.open_incident("t", ["s"], "2026-11-03T08:00:00+00:00", [], None)
    with pytest.raises(CatalogError, match="is full"):
        cat.__exit__(None, None, None)


def test_a_catalog_that_cannot_be_created_on_a_full_disk_says_so(tmp_path: Path, tiny_disk: Path,
                                                                 fill: Callable[[Path], Path]) -> None:
    fill(tiny_disk)
    run = subprocess.run([sys.executable, "-m", "piiguard", "incident", "list", "--catalog",
                          str(tiny_disk / "sub" / "c.db")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "internal error" not in run.stderr, run.stderr
    assert "full" in run.stderr


# One rule for which catalog ------------------------------------------------------------------------------


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIIGUARD_CATALOG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    config = str(tmp_path / "conf" / "piiguard.yaml")
    assert resolve() == tmp_path / "data" / "piiguard" / "catalog.db"
    assert resolve(None, "state/c.db", config) == tmp_path / "conf" / "state" / "c.db"
    assert resolve(None, "/abs/c.db", config) == Path("/abs/c.db")
    monkeypatch.setenv("PIIGUARD_CATALOG", str(tmp_path / "env.db"))
    assert resolve(None, "state/c.db", config) == tmp_path / "env.db"
    assert resolve(tmp_path / "flag.db", "state/c.db", config) == tmp_path / "flag.db"


COMMANDS = [
    ["scan", "shop"], ["check", "shop"], ["watch", "--once", "shop"], ["exposures"], ["copies"],
    ["copies", "expire"], ["contain", "list"], ["approve", "1"], ["contain", "undo", "1"], ["incident", "list"],
    ["incident", "open", "shop", "--since", "2026-11-03T08:00"], ["incident", "verify", "1"],
    ["incident", "export", "1", "BUNDLE"], ["incident", "report", "1"],
]
CASES = [(a, "config") for a in COMMANDS] + [(a, w) for a in (["scan", "shop"], ["incident", "list"])
                                             for w in ("env", "flag")]


@pytest.mark.parametrize(("argv", "where"), CASES, ids=[f"{' '.join(a[:2])}-{w}" for a, w in CASES])
def test_every_command_uses_the_one_rule(tmp_path: Path, argv: list[str], where: str) -> None:
    shop = source(tmp_path)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "piiguard.yaml").write_text(json.dumps({"catalog": "state/from-config.db",
                                                    "stores": [{"name": "shop", "url": f"sqlite://{shop}"}]}))
    env = {**os.environ, "PIIGUARD_TIMELINE_KEY": KEY, "XDG_DATA_HOME": str(tmp_path / "default")}
    env.pop("PIIGUARD_CATALOG", None)
    flag: list[str] = []
    if where in ("env", "flag"):
        env["PIIGUARD_CATALOG"] = str(tmp_path / "from-env.db")
    if where == "flag":
        flag = ["--catalog", str(tmp_path / "from-flag.db")]
    expected = {"config": conf / "state" / "from-config.db", "env": tmp_path / "from-env.db",
                "flag": tmp_path / "from-flag.db"}[where]
    args = [str(tmp_path / "bundle") if a == "BUNDLE" else a for a in argv]
    run = subprocess.run([sys.executable, "-m", "piiguard", *args, *flag], capture_output=True, text=True, env=env,
                         cwd=conf, timeout=300)
    assert "internal error" not in run.stderr, run.stderr
    assert expected.exists(), (run.returncode, run.stdout, run.stderr)
    made = {p for p in (conf / "state" / "from-config.db", tmp_path / "from-env.db", tmp_path / "from-flag.db",
                        tmp_path / "default" / "piiguard" / "catalog.db") if p.exists()}
    assert made == {expected}


def test_damage_past_the_schema_is_a_clear_error_not_an_internal_one(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with Catalog(path, timeline_key=KEY.encode()) as cat:
        for i in range(300):
            cat.open_incident(f"incident {i} " * 20, ["s"], "2026-11-03T08:00:00+00:00", ["email"], i)
    data = bytearray(path.read_bytes())
    data[-3 * 4096:] = b"\xab" * (3 * 4096)  # the last pages: incidents and timeline, not the schema
    path.write_bytes(bytes(data))
    run = subprocess.run([sys.executable, "-m", "piiguard", "incident", "list", "--catalog", str(path)],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PIIGUARD_TIMELINE_KEY": KEY})
    assert run.returncode == 1 and "internal error" not in run.stderr
    assert "catalog is damaged" in run.stderr and "integrity_check" in run.stderr


@pytest.mark.parametrize("marked", [False, True], ids=["unmarked", "marked"])
def test_a_failing_migration_names_the_version_the_step_and_the_schema_error(tmp_path: Path, marked: bool) -> None:
    # A development-era catalog: version 7, but scans already has the column migration 8 adds.
    path = old_catalog(tmp_path / "c.db", 7)
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE scans ADD COLUMN status TEXT")
    if marked:
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.commit()
    db.close()
    with pytest.raises(CatalogError) as err:
        Catalog(path, timeline_key=KEY.encode())
    message = str(err.value)
    assert "from schema version 7: migration 8 of" in message
    assert "OperationalError: duplicate column name: status" in message
    assert "left at version 7" in message
    assert "--catalog" in (err.value.hint or "") and "back it up" in (err.value.hint or "")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 7  # the failed step was rolled back
    assert db.execute("SELECT count(*) FROM scans").fetchone()[0] == 1
    db.close()


def test_a_failing_migration_at_the_default_path_is_explained_on_the_command_line(tmp_path: Path) -> None:
    default = tmp_path / "data" / "piiguard" / "catalog.db"
    default.parent.mkdir(parents=True)
    old_catalog(default, 7)
    db = sqlite3.connect(default)
    db.execute("ALTER TABLE scans ADD COLUMN status TEXT")
    db.commit()
    db.close()
    env = {**os.environ, "PIIGUARD_TIMELINE_KEY": KEY, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("PIIGUARD_CATALOG", None)
    run = subprocess.run([sys.executable, "-m", "piiguard", "incident", "list"], capture_output=True, text=True,
                         timeout=120, env=env, cwd=tmp_path)
    assert run.returncode == 1 and "internal error" not in run.stderr
    assert "migration 8" in run.stderr and "duplicate column name: status" in run.stderr, run.stderr
    assert "check the path and its permissions" not in run.stderr
