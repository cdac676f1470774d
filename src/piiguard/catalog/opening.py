"""Which file is the catalog, and is it piiguard's? Both answered before anything is written.

A catalog is marked as piiguard's by SQLite's ``PRAGMA application_id`` (:data:`APPLICATION_ID`),
set when piiguard creates it. A file is inspected read-only first and refused — its bytes untouched:
no migration, no switch to WAL — when it is

- not an SQLite database, or damaged (``corrupt``);
- another application's database: it has tables and no, or another, application id (``foreign``);
- piiguard's, but from a newer piiguard (``too new``).

A catalog made by a piiguard from before the mark (application id 0) is recognised by its tables,
which must be exactly those its ``user_version`` implies, and adopted: marked, then migrated.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import quote

from platformdirs import user_data_dir

from piiguard.catalog.migrations import MIGRATIONS
from piiguard.errors import CatalogError

APPLICATION_ID = 0x50494731  # "PIG1" in the SQLite header (offset 68): this file is a piiguard catalog
ENV = "PIIGUARD_CATALOG"
SQLITE_MAGIC = b"SQLite format 3\x00"


def default_path() -> Path:
    """The catalog when nothing names one: the user's data folder."""
    return Path(user_data_dir("piiguard")) / "catalog.db"


def resolve(option: str | os.PathLike[str] | None = None, configured: str | None = None,
            config_source: str | os.PathLike[str] | None = None) -> Path:
    """The catalog every command uses: ``--catalog``, else ``$PIIGUARD_CATALOG``, else the configuration's
    ``catalog:`` (relative to the configuration file's folder), else the user's data folder.

    The folder is that of the path the user named, symlinks not followed: a config linked into several
    folders gives each its own catalog (README, configuration reference)."""
    if option:
        return Path(option)
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_absolute() and config_source:
            path = Path(config_source).parent / path
        return path
    return default_path()


class State(Enum):
    NEW = "new"          # missing or empty: piiguard creates and marks it
    OURS = "ours"        # marked as piiguard's
    ADOPT = "adopt"      # piiguard's from before the mark: marked, then migrated


@dataclass(frozen=True)
class Inspection:
    state: State
    version: int


@functools.cache
def tables_at(version: int) -> frozenset[str]:
    """The tables a catalog holds after ``version`` migrations (built in memory, so a new migration
    keeps adoption exact without a hand-kept list)."""
    db = sqlite3.connect(":memory:")
    try:
        for step in MIGRATIONS[:version]:
            db.executescript(step)
        return _tables(db)
    finally:
        db.close()


def _tables(db: sqlite3.Connection) -> frozenset[str]:
    return frozenset(str(r[0]) for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))


def inspect(path: Path) -> Inspection:
    """Read-only: what ``path`` is. Raises :class:`CatalogError` for a file piiguard must not open."""
    refuse_hint = "name a catalog file of piiguard's (--catalog PATH), or a path where none exists yet"
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except FileNotFoundError:
        return Inspection(State.NEW, 0)
    except IsADirectoryError:
        raise CatalogError(f"the catalog path {path} is a folder", hint="name a file, e.g. catalog.db") from None
    except OSError as exc:
        raise CatalogError(f"cannot read the catalog at {path} ({exc.strerror})",
                           hint="check the path and its permissions") from exc
    if not header:
        return Inspection(State.NEW, 0)  # an empty file holds nothing to protect: SQLite treats it as new
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise CatalogError(f"{path} is not an SQLite database (or its header is damaged); nothing was written",
                           hint=refuse_hint)
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is valid when its change counter matches (SQLite >= 3.7.0 keeps both):
    # a file shorter than that count was cut off (a copy that stopped, a full disk, a hostile edit).
    if header[24:28] == header[92:96] and pages and os.path.getsize(path) < pages * page_size:
        raise CatalogError(f"the catalog at {path} is truncated ({os.path.getsize(path)} bytes of "
                           f"{pages * page_size}); nothing was written", hint=refuse_hint)
    wal_mode = header[18] == 2
    # A WAL database without a -wal file is fully in the main file: read it immutable, so not even an
    # empty -wal or -shm appears beside another application's database. Otherwise read-only.
    immutable = wal_mode and not os.path.exists(f"{path}-wal")
    uri = f"file:{quote(str(path.resolve()))}?{'immutable=1' if immutable else 'mode=ro'}"
    try:
        db = sqlite3.connect(uri, uri=True)
        try:
            app_id = int(db.execute("PRAGMA application_id").fetchone()[0])
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            tables = _tables(db)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise CatalogError(f"the catalog at {path} cannot be read ({type(exc).__name__}: it is damaged or locked); "
                           "nothing was written", hint=refuse_hint) from exc
    latest = len(MIGRATIONS)
    if app_id == APPLICATION_ID:
        if version > latest:
            raise too_new(path, version)
        return Inspection(State.OURS, version)
    if app_id == 0 and not tables and version == 0:
        return Inspection(State.NEW, 0)
    if app_id == 0 and 1 <= version <= latest and tables == tables_at(version):
        return Inspection(State.ADOPT, version)
    if app_id == 0 and version > latest and tables >= tables_at(latest):
        raise too_new(path, version)
    owner = "another application's" if app_id else "an unmarked"
    raise CatalogError(f"{path} is {owner} database (application id {app_id:#x}, {len(tables)} table(s)), not a "
                       "piiguard catalog; nothing was written", hint=refuse_hint)


def too_new(path: Path, version: int) -> CatalogError:
    return CatalogError(f"the catalog at {path} is newer (schema {version}) than this piiguard "
                        f"(schema {len(MIGRATIONS)}); nothing was written", hint="upgrade piiguard")
