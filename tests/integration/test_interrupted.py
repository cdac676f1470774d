"""Interrupted work is marked: a ``piiguard copy`` or ``piiguard scan`` killed with SIGKILL mid-way shows
``interrupted`` at the next start of piiguard (never ``writing`` or ``running`` forever), and a scan
whose PostgreSQL restarts under it reconnects once and completes, or names the problem."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import pg_connect
from servers import PASSWORD, Server, pg_ctl, start_postgres, stop_postgres

from piiguard.catalog import Catalog
from piiguard.model import ScanMode, Store
from piiguard.scanner import scan

PW = "PIIGUARD_INTERRUPT_PW"
BIG = 400_000  # about 7 s to copy or scan in full here: long enough to be killed in the middle
PEOPLE = ("CREATE TABLE people AS SELECT i AS customer_id, 'person' || i || '@example.com' AS email, "
          "(ARRAY['gold', 'free'])[1 + i % 2] AS plan FROM generate_series(1, {n}) i")


@pytest.fixture(scope="module")
def big(postgres: Server) -> str:
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS interrupt_src")
        conn.execute("CREATE DATABASE interrupt_src")
    with pg_connect(postgres, "interrupt_src") as conn:
        conn.execute(PEOPLE.format(n=BIG))
    return f"postgresql://postgres@127.0.0.1:{postgres.port}/interrupt_src"


def piiguard(tmp_path: Path, url: str, *args: str) -> list[str]:
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(json.dumps({"stores": [{"name": "prod", "url": url, "password_env": PW},
                                          {"name": "lake", "url": f"file://{tmp_path / 'lake'}"}],
                               "masking": {"prod.public.people": {"plan": "keep"}}}))
    return [sys.executable, "-m", "piiguard", *args, "-c", str(cfg), "--catalog", str(tmp_path / "c.db")]


ENV = {**os.environ, PW: PASSWORD, "COLUMNS": "200"}


def wait_for(what: str, condition: Any, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, f"piiguard ended ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} in {seconds} s"
        time.sleep(0.05)


def status(catalog: Path, table: str) -> list[str]:
    if not catalog.exists():
        return []
    with Catalog(catalog) as cat:  # opening it is "the next start of piiguard": it marks dead owners' runs
        return [r["status"] for r in (cat.copies() if table == "copies" else cat.scans())]


def test_a_killed_copy_shows_interrupted(big: str, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k" * 40)
    (tmp_path / "key").chmod(0o600)  # a key file others can read is refused
    proc = subprocess.Popen(piiguard(tmp_path, big, "copy", "prod.people", "lake.people.parquet", "--key-file",
                                     str(tmp_path / "key"), "--owner", "bi", "--purpose", "test"),
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        staging = tmp_path / "lake" / ".people.parquet.piiguard-1.tmp"
        wait_for("staging file", lambda: staging.exists() and staging.stat().st_size > 0, proc)
        assert status(tmp_path / "c.db", "copies") == ["writing"]  # alive: a reader does not mark it
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    listed = subprocess.run([sys.executable, "-m", "piiguard", "copies", "--catalog", str(tmp_path / "c.db")],
                            capture_output=True, text=True, env=ENV, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "interrupted" in listed.stdout and "writing" not in listed.stdout
    assert not (tmp_path / "lake" / "people.parquet").exists()  # never swapped in
    assert oct(staging.stat().st_mode & 0o777) == "0o600"  # what was staged was never readable by others
    planned = subprocess.run(piiguard(tmp_path, big, "copies", "expire"), capture_output=True, text=True, env=ENV,
                             timeout=60)
    assert "would remove copy 1: .people.parquet.piiguard-1.tmp" in planned.stdout, planned.stdout + planned.stderr
    assert "(left by the interrupted copy)" in planned.stdout and staging.exists()
    applied = subprocess.run(piiguard(tmp_path, big, "copies", "expire", "--apply"), capture_output=True, text=True,
                             env=ENV, timeout=60)
    assert applied.returncode == 0 and "removed copy 1" in applied.stdout, applied.stdout + applied.stderr
    assert not (tmp_path / "lake").exists()  # the staging, and the folder this copy made for it
    assert status(tmp_path / "c.db", "copies") == ["interrupted"]
    again = subprocess.run(piiguard(tmp_path, big, "copies", "expire"), capture_output=True, text=True, env=ENV,
                           timeout=60)
    assert "no expired copy" in again.stdout  # nothing of it is left to remove


def test_a_killed_scan_shows_interrupted(big: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(piiguard(tmp_path, big, "scan", "prod", "--full"), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("running scan", lambda: status(tmp_path / "c.db", "scans") == ["running"], proc)
        time.sleep(1.0)  # into the table
        assert status(tmp_path / "c.db", "scans") == ["running"]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    listed = subprocess.run([sys.executable, "-m", "piiguard", "scans", "--catalog", str(tmp_path / "c.db")],
                            capture_output=True, text=True, env=ENV, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "interrupted" in listed.stdout and "running" not in listed.stdout


@pytest.fixture(scope="module")
def own_server() -> Iterator[Server]:
    """A server of the module's own (restarting the shared one would cut the other tests' sessions),
    started and filled once for the tests that restart or stop it."""
    server = start_postgres()
    with pg_connect(server) as conn:
        conn.execute(PEOPLE.format(n=200_000))
    yield server
    stop_postgres(server)


@pytest.fixture
def restartable(own_server: Server, monkeypatch: pytest.MonkeyPatch) -> tuple[Server, Store]:
    """The module's own server, running at the start of each test whatever the last one did to it."""
    monkeypatch.setenv(PW, PASSWORD)
    try:
        pg_connect(own_server).close()
    except psycopg.OperationalError:  # a test that stopped it failed before starting it again
        pg_ctl(own_server, "start")
    return own_server, Store("prod", "postgres", host="127.0.0.1", port=own_server.port, database="postgres",
                             user="postgres", password_env=PW)


class AfterFirstBatch:
    """Scan progress that runs ``action`` once, after the first batch was classified."""

    def __init__(self, action: Any) -> None:
        self.action, self.done = action, False

    def collection_started(self, store: str, collection: str, total: int | None) -> None:
        pass

    def advanced(self, rows: int) -> None:
        if not self.done:
            self.done = True
            self.action()

    def collection_finished(self) -> None:
        pass


def started(server: Server) -> Any:
    with pg_connect(server) as conn:
        return conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]  # type: ignore[index]


def test_a_store_restarted_mid_scan_is_reconnected_once(restartable: tuple[Server, Store], tmp_path: Path) -> None:
    server, store = restartable
    before = started(server)
    progress = AfterFirstBatch(lambda: pg_ctl(server, "restart", "-m", "fast"))
    with Catalog(tmp_path / "c.db") as cat:
        result = scan([store], mode=ScanMode.FULL, batch_rows=10_000, catalog=cat, progress=progress)
        assert [s["status"] for s in cat.scans()] == ["finished"]
    assert progress.done and started(server) > before  # it was restarted under the scan
    (store_result,) = result.stores
    assert store_result.problems == ()
    (people,) = store_result.collections
    assert people.rows_read == 200_000  # read again from the start, on the new connection, in full
    assert {f.field: f.pii_type for f in people.fields}["email"] == "email"


def test_a_store_that_stays_down_mid_scan_is_named_as_the_problem(restartable: tuple[Server, Store],
                                                                  tmp_path: Path) -> None:
    server, store = restartable
    progress = AfterFirstBatch(lambda: pg_ctl(server, "stop", "-m", "fast"))
    with Catalog(tmp_path / "c.db") as cat:
        result = scan([store], mode=ScanMode.FULL, batch_rows=10_000, catalog=cat, progress=progress, timeout=2)
        assert [s["status"] for s in cat.scans()] == ["finished"]
    (store_result,) = result.stores
    (lost, down) = store_result.problems
    assert lost.collection == "public.people" and lost.message.startswith("read failed (")
    assert lost.message.endswith("the connection was lost and could not be opened again")
    assert down.collection is None and down.message.startswith("cannot connect to ")  # and the rest was not read
    pg_ctl(server, "start")


def test_a_terminated_copy_removes_its_staging_and_says_failed(big: str, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k" * 40)
    (tmp_path / "key").chmod(0o600)  # a key file others can read is refused
    proc = subprocess.Popen(piiguard(tmp_path, big, "copy", "prod.people", "lake.people.parquet", "--key-file",
                                     str(tmp_path / "key"), "--owner", "bi", "--purpose", "test"),
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        staging = tmp_path / "lake" / ".people.parquet.piiguard-1.tmp"
        wait_for("staging file", lambda: staging.exists() and staging.stat().st_size > 0, proc)
        proc.send_signal(signal.SIGTERM)  # a cancelled CI job, a stopped container
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
        proc.wait()
    assert status(tmp_path / "c.db", "copies") == ["failed"]
    assert not (tmp_path / "lake").exists()  # no staging, no half copy, not even the folder it made


def test_what_a_copy_killed_mid_write_into_clickhouse_left_is_removed_by_expire(big: str, tmp_path: Path) -> None:
    import urllib.request

    from servers import start_clickhouse, stop_clickhouse

    server = start_clickhouse()

    def ch(query: str) -> str:
        req = urllib.request.Request(f"http://127.0.0.1:{server.port}/", data=query.encode(),
                                     headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD})
        with urllib.request.urlopen(req, timeout=10) as r:
            return str(r.read().decode()).strip()

    try:
        (tmp_path / "key").write_text("k" * 40)
        (tmp_path / "key").chmod(0o600)  # a key file others can read is refused
        cfg = tmp_path / "piiguard.yaml"
        cfg.write_text(json.dumps({"stores": [
            {"name": "prod", "url": big, "password_env": PW},
            {"name": "olap", "url": f"clickhouse://default@127.0.0.1:{server.port}", "password_env": PW,
             "options": {"tcp_port": str(server.tcp_port), "config_dir": str(server.data / "conf")}}],  # type: ignore[attr-defined]
            "masking": {"prod.public.people": {"plan": "keep"}}}))
        base = [sys.executable, "-m", "piiguard"]
        where = ["-c", str(cfg), "--catalog", str(tmp_path / "c.db")]
        proc = subprocess.Popen([*base, "copy", "prod.people", "olap.default.people", "--key-file",
                                 str(tmp_path / "key"), "--owner", "bi", "--purpose", "test", *where],
                                env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def staged() -> bool:
                return "people__piiguard_1" in ch("SHOW TABLES FROM default") and \
                    int(ch("SELECT count() FROM default.people__piiguard_1") or 0) > 0
            wait_for("staging table with rows", staged, proc, seconds=120)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        ch("CREATE TABLE default.people__piiguard_9 (id UInt32) ENGINE = Log")  # looks like piiguard's; is not
        assert status(tmp_path / "c.db", "copies") == ["interrupted"]
        applied = subprocess.run([*base, "copies", "expire", "--apply", *where], capture_output=True, text=True,
                                 env=ENV, timeout=60)
        assert "removed copy 1: default.people__piiguard_1" in applied.stdout, applied.stdout + applied.stderr
        assert ch("SHOW TABLES FROM default").split() == ["people__piiguard_9"]
    finally:
        stop_clickhouse(server)


def test_a_mariadb_restarted_mid_scan_is_reconnected_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The variant: another engine, another driver (PyMySQL), a server stopped by SIGTERM and started
    again on the same port."""
    from conftest import my_connect
    from servers import mariadb_options, restart_mariadb, start_mariadb, stop_mariadb

    monkeypatch.setenv(PW, PASSWORD)
    server = start_mariadb()
    try:
        with my_connect(server) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE people (customer_id INT PRIMARY KEY, email TEXT, note TEXT)")
            # wide rows: a result that fits the sockets' buffers would be read in full past a restart
            cur.execute("INSERT INTO people SELECT seq, CONCAT('person', seq, '@example.com'), REPEAT('note ', 60) "
                        "FROM seq_1_to_300000")
        store = Store("shop", "mysql", host="127.0.0.1", port=server.port, database="app", user="root",
                      password_env=PW)
        progress = AfterFirstBatch(lambda: restart_mariadb(server, mariadb_options(server, hardened=False)))
        with Catalog(tmp_path / "c.db") as cat:
            result = scan([store], mode=ScanMode.FULL, batch_rows=5_000, catalog=cat, progress=progress)
        assert progress.done
        (store_result,) = result.stores
        assert store_result.problems == ()
        (people,) = store_result.collections
        assert people.rows_read == 300_000
    finally:
        stop_mariadb(server)
