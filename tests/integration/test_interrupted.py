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


@pytest.fixture
def restartable(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, Store]]:
    """A server of its own (restarting the shared one would cut the other tests' sessions)."""
    monkeypatch.setenv(PW, PASSWORD)
    server = start_postgres()
    with pg_connect(server) as conn:
        conn.execute(PEOPLE.format(n=200_000))
    yield server, Store("prod", "postgres", host="127.0.0.1", port=server.port, database="postgres",
                        user="postgres", password_env=PW)
    stop_postgres(server)


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
    assert list((tmp_path / "lake").iterdir()) == []  # no staging, no half copy
