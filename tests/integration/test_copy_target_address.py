"""A copy's target is where it was written, not whatever store now carries its name: expiry and
copy.expired resolve it by the address the registry recorded (files and a real PostgreSQL)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pg_connect
from servers import PASSWORD, Server

from piiguard.catalog import Catalog
from piiguard.checker import run_checks
from piiguard.model import Status, Store

PW = "PIIGUARD_ADDR_PW"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "piiguard", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, PW: PASSWORD, "COLUMNS": "250"}, timeout=120)


def source_db(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "src.db") as db:
        db.execute("CREATE TABLE users (id int, email text)")
        db.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"user{i}@example.org") for i in range(30)])
    (tmp_path / "copy.key").write_bytes(b"k" * 32)
    (tmp_path / "copy.key").chmod(0o600)


def expire_all(catalog: Path) -> None:
    with sqlite3.connect(catalog) as db:
        db.execute("UPDATE copies SET expires = '2020-01-01'")


def status(catalog: Path) -> str:
    with Catalog(catalog) as cat:
        return str(cat.copies()[0]["status"])


def config(path: Path, stores: list[dict[str, str]]) -> Path:
    path.write_text(json.dumps({"stores": stores}))
    return path


def test_a_file_copy_is_expired_where_it_was_written_never_at_a_namesake(tmp_path: Path) -> None:
    source_db(tmp_path)
    real, other = tmp_path / "t1" / "out", tmp_path / "t9" / "out"
    real.parent.mkdir()
    done = cli("copy", f"sqlite://{tmp_path}/src.db#users", f"file://{real}#users.parquet", "--key-file", "copy.key",
               "--owner", "bi", "--purpose", "t", "--expires", "2030-01-01", "--catalog", "cp.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expire_all(tmp_path / "cp.db")
    other.mkdir(parents=True)
    (other / "users.parquet").write_bytes(b"somebody else's file")
    namesake = config(tmp_path / "namesake.yaml", [{"name": "out", "url": f"file://{other}"}])

    refused = cli("copies", "expire", "-c", str(namesake), "--catalog", "cp.db", "--apply", cwd=tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "'out'" in refused.stdout and str(other) in refused.stdout and "nothing removed" in refused.stdout
    assert (other / "users.parquet").read_bytes() == b"somebody else's file"
    assert (real / "users.parquet").exists() and status(tmp_path / "cp.db") == "active"

    with Catalog(tmp_path / "cp.db") as cat:  # copy.expired: the namesake is no copy's target; the real one fails
        checked = run_checks([Store("out", "files", path=str(other)), Store("exports", "files", path=str(real))],
                             catalog=cat, record=False, only=["copy.expired"]).findings
    assert [(f.store, f.status) for f in checked if f.check == "copy.expired"] == [("exports", Status.FAIL)]

    # no configuration at all: the recorded URL is the target
    removed = cli("copies", "expire", "--catalog", "cp.db", "--apply", cwd=tmp_path)
    assert removed.returncode == 0 and "removed copy 1" in removed.stdout, removed.stdout + removed.stderr
    assert not (real / "users.parquet").exists() and (other / "users.parquet").exists()
    assert status(tmp_path / "cp.db") == "removed"


def test_a_file_copy_configured_under_another_name_is_found_by_its_folder(tmp_path: Path) -> None:
    source_db(tmp_path)
    real = tmp_path / "exports"
    done = cli("copy", f"sqlite://{tmp_path}/src.db#users", f"file://{real}#users.parquet", "--key-file", "copy.key",
               "--owner", "bi", "--purpose", "t", "--expires", "2030-01-01", "--catalog", "cp.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expire_all(tmp_path / "cp.db")
    (real / "users.parquet").write_bytes(b"rewritten since")  # same folder, not the object the copy made
    cfg = config(tmp_path / "p.yaml", [{"name": "warehouse", "url": f"file://{real}/../exports"}])
    kept = cli("copies", "expire", "-c", str(cfg), "--catalog", "cp.db", "--apply", cwd=tmp_path)
    assert kept.returncode == 0 and "kept" in kept.stdout, kept.stdout + kept.stderr
    assert (real / "users.parquet").read_bytes() == b"rewritten since"  # identity is still required


@pytest.fixture
def warehouse(postgres: Server) -> Server:
    with pg_connect(postgres) as conn:
        conn.autocommit = True
        for db in ("addr_src", "addr_real", "addr_other"):
            conn.execute(f"DROP DATABASE IF EXISTS {db}")
            conn.execute(f"CREATE DATABASE {db}")
    with pg_connect(postgres, "addr_src") as conn:
        conn.execute("CREATE TABLE users (id int, email text)")
        conn.execute("INSERT INTO users SELECT i, 'user' || i || '@example.org' FROM generate_series(1, 30) i")
    with pg_connect(postgres, "addr_other") as conn:
        conn.execute("CREATE TABLE export (id int)")  # a table of the same name in another database
    return postgres


def test_a_postgres_copy_is_never_expired_through_a_store_that_only_shares_its_name(warehouse: Server,
                                                                                   tmp_path: Path) -> None:
    (tmp_path / "copy.key").write_bytes(b"k" * 32)
    (tmp_path / "copy.key").chmod(0o600)
    base = f"postgresql://postgres@127.0.0.1:{warehouse.port}"
    done = cli("copy", f"{base}/addr_src?password_env={PW}#users", f"{base}/addr_real?password_env={PW}#export",
               "--key-file", "copy.key", "--owner", "bi", "--purpose", "t", "--expires", "2030-01-01",
               "--accept-risk", "test server without TLS", "--catalog", "cp.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expire_all(tmp_path / "cp.db")
    with Catalog(tmp_path / "cp.db") as cat:
        name = str(cat.copies()[0]["target_store"])
        assert "password" not in str(cat.copies()[0]["target_url"]).lower()
    namesake = config(tmp_path / "n.yaml", [{"name": name, "url": f"{base}/addr_other", "password_env": PW}])
    refused = cli("copies", "expire", "-c", str(namesake), "--catalog", "cp.db", "--apply", cwd=tmp_path)
    assert refused.returncode == 1 and "nothing removed" in refused.stdout, refused.stdout + refused.stderr
    with pg_connect(warehouse, "addr_other") as conn:
        assert conn.execute("SELECT to_regclass('export')").fetchone() != (None,)
    with pg_connect(warehouse, "addr_real") as conn:
        assert conn.execute("SELECT to_regclass('export')").fetchone() != (None,)
    assert status(tmp_path / "cp.db") == "active"

    renamed = config(tmp_path / "r.yaml", [{"name": "analytics", "url": f"{base}/addr_real", "password_env": PW}])
    removed = cli("copies", "expire", "-c", str(renamed), "--catalog", "cp.db", "--apply", cwd=tmp_path)
    assert removed.returncode == 0 and "removed copy 1" in removed.stdout, removed.stdout + removed.stderr
    with pg_connect(warehouse, "addr_real") as conn:
        assert conn.execute("SELECT to_regclass('export')").fetchone() == (None,)
    with pg_connect(warehouse, "addr_other") as conn:
        assert conn.execute("SELECT to_regclass('export')").fetchone() != (None,)


def test_a_copy_of_another_source_with_the_same_name_is_not_replaced_as_ours(tmp_path: Path) -> None:
    """Two SQLite files both called src.db (URL stores are named by their file): the second copy into
    the first's target is a copy of *another* source, so it is refused without --replace."""
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        source_db(tmp_path / sub)
    (tmp_path / "copy.key").write_bytes(b"k" * 32)
    (tmp_path / "copy.key").chmod(0o600)
    out = tmp_path / "out"

    def copy(sub: str) -> subprocess.CompletedProcess[str]:
        return cli("copy", f"sqlite://{tmp_path / sub}/src.db#users", f"file://{out}#users.parquet", "--key-file",
                   "copy.key", "--owner", "bi", "--purpose", "t", "--expires", "2030-01-01", "--catalog", "cp.db",
                   cwd=tmp_path)

    assert copy("a").returncode == 0
    again = copy("a")  # the same source: its own copy is replaced
    assert again.returncode == 0, again.stderr
    before = (out / "users.parquet").stat()
    other = copy("b")
    assert other.returncode == 2 and "not a piiguard copy of this source" in other.stderr, other.stdout + other.stderr
    assert (out / "users.parquet").stat().st_ino == before.st_ino  # b wrote nothing
    with Catalog(tmp_path / "cp.db") as cat:
        assert [c["status"] for c in cat.copies()] == ["replaced", "active"]
        assert cat.copies()[1]["source_url"] == f"sqlite://{os.path.realpath(tmp_path / 'a' / 'src.db')}"
