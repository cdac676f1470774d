"""PostgreSQL as users run it, not as the fixture does: a server speaking German (lc_messages =
de_DE), writing its log with its own log_line_prefix in Europe/Berlin time, to stderr, csvlog and
jsonlog at once. Failed logins are told by SQLSTATE, and the evidence collector reads every format
with the settings the server reports."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from servers import PASSWORD, Server, pg_ctl, start_postgres, stop_postgres

from piiguard.checker import check_store
from piiguard.checks.postgres import PostgresTarget
from piiguard.model import Status, Store
from piiguard.response.evidence import PostgresLog

PW = "PIIGUARD_PGV_PW"
PREFIX = "%m|%h|%p|%q%u@%d "


@pytest.fixture(scope="module")
def german() -> Iterator[Server]:
    if shutil.which("localedef") is None:
        pytest.skip("localedef is needed to build a de_DE locale")
    locales = Path(tempfile.mkdtemp(prefix="piiguard-locale-", dir="/tmp"))
    locales.chmod(0o755)
    subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", str(locales / "de_DE.UTF-8")], check=True,
                   capture_output=True)
    server = start_postgres(hardened=True)
    logs = server.data / "logs"
    logs.mkdir()
    shutil.chown(logs, "postgres", "postgres")
    with (server.data / "data" / "postgresql.conf").open("a") as conf:
        conf.write(f"lc_messages = 'de_DE.UTF-8'\nlog_line_prefix = '{PREFIX}'\nlog_timezone = 'Europe/Berlin'\n"
                   f"logging_collector = on\nlog_directory = '{logs}'\nlog_filename = 'pg.log'\n"
                   "log_destination = 'stderr,csvlog,jsonlog'\npgaudit.log = 'read'\n")
    previous = os.environ.get("LOCPATH")
    os.environ["LOCPATH"] = str(locales)  # the restarted postmaster inherits it and finds de_DE there
    try:
        pg_ctl(server, "restart")
    finally:
        if previous is None:
            os.environ.pop("LOCPATH")
        else:
            os.environ["LOCPATH"] = previous
    yield server
    stop_postgres(server)
    shutil.rmtree(locales, ignore_errors=True)


def store(server: Server, **options: str) -> Store:
    return Store("pg", "postgres", host="127.0.0.1", port=server.port, user="postgres", password_env=PW,
                 options=options, allowed_networks=("10.0.0.0/8",))  # loopback is not allowed: it is "unknown"


def test_failed_logins_are_told_by_sqlstate_not_english(german: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(psycopg.OperationalError) as err:  # the variant is real: the server speaks German
        psycopg.connect(host="127.0.0.1", port=german.port, user="postgres", password="wrong", dbname="postgres")
    assert "Passwort" in str(err.value) and "authentication failed" not in str(err.value)
    target = PostgresTarget(store(german), timeout=3)
    assert target.refusal("postgres", "wrong") == "28P01"
    assert target.refusal("postgres", "x") == "28P01" and target.login("postgres", PASSWORD)
    assert not target.login("nobody-here", "x")
    monkeypatch.setenv(PW, PASSWORD)
    (default,) = check_store(store(german), timeout=3, only=["postgres.default-password"])
    assert default.status is Status.PASS, default.evidence  # was "could not be decided" on a German server
    monkeypatch.setenv(PW, "not-the-password")
    (inside,) = check_store(store(german), timeout=3, only=["postgres.tls-off"])
    assert inside.status is Status.ERROR and "inside checks could not log in" in inside.evidence


@pytest.mark.parametrize("log", ["pg.log", "pg.csv", "pg.json"])
def test_evidence_reads_the_servers_own_log_format(german: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   log: str) -> None:
    monkeypatch.setenv(PW, PASSWORD)
    start = datetime.now(UTC) - timedelta(seconds=5)
    with psycopg.connect(host="127.0.0.1", port=german.port, user="postgres", password=PASSWORD,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS customers (id int)")
        conn.execute("SELECT count(*) FROM customers").fetchall()
    path = german.data / "logs" / log
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "customers" not in (path.read_text() if path.exists() else ""):
        time.sleep(0.2)  # the logging collector writes asynchronously
    ev = PostgresLog().collect(store(german, log_file=str(path)), start, datetime.now(UTC) + timedelta(seconds=5),
                               tmp_path / "evidence")
    assert ev.addresses.get("127.0.0.1") == "unknown", ev.note
    assert "public.customers" in ev.reads["127.0.0.1"] or "customers" in ev.reads["127.0.0.1"]
    assert "the server's settings" in ev.note and "Europe/Berlin" in ev.note
    assert ("jsonlog" if log.endswith("json") else "csvlog" if log.endswith("csv") else "stderr") in ev.note
