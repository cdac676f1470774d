"""Scans against real PostgreSQL and MariaDB servers started by the session fixtures."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import my_connect, pg_connect
from psycopg.types.json import Jsonb
from servers import Server

from piiguard import synthetic
from piiguard.catalog import Catalog
from piiguard.model import ProblemKind, ScanMode
from piiguard.scanner import scan

N = 600
COLS = synthetic.COLUMNS[:30]
DATA = synthetic.rows(N, seed=99, columns=COLS)


@pytest.fixture(scope="module")
def pg_seeded(postgres: Server) -> Server:
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS shop")
        conn.execute("CREATE DATABASE shop")
    with pg_connect(postgres, "shop") as conn:
        cols = ", ".join(f'"{c.name}" text' for c in COLS)
        conn.execute(f"CREATE TABLE customers ({cols}, profile jsonb, PRIMARY KEY (customer_id))")
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO customers VALUES ({', '.join(['%s'] * (len(COLS) + 1))})",
                [(*(str(DATA[c.name][i]) for c in COLS),
                  Jsonb({"photo_url": DATA["avatar_url"][i], "prefs": {"theme": "dark"}})) for i in range(N)])
        conn.execute('CREATE TABLE "Ünïcode table" ("e mail" text, "count" int, blob bytea, empty text)')
        conn.execute("""INSERT INTO "Ünïcode table" SELECT 'u' || g || '@example.com', g, '\\x00ff'::bytea, NULL
                        FROM generate_series(1, 50) g""")
        conn.execute("CREATE TABLE empty_table (email text)")
        conn.execute("CREATE TABLE secret (email text)")
        conn.execute("CREATE ROLE scanner LOGIN PASSWORD 'piiguard-test-pw'")
        conn.execute("GRANT SELECT ON customers, \"Ünïcode table\", empty_table TO scanner")
        conn.execute("ANALYZE")
    return postgres


def by_field(result, store: int = 0):  # type: ignore[no-untyped-def]
    return {(f.collection, f.field): f for c in result.stores[store].collections for f in c.fields}


def test_postgres_scan_finds_every_type_and_subjects(pg_seeded: Server, pg_password: str, tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat:
        result = scan([pg_seeded.url(database="shop")], catalog=cat, sample_size=500)
    fields = by_field(result)
    for c in COLS:
        assert fields[("public.customers", c.name)].pii_type == c.label, c.name
    assert fields[("public.customers", "profile.photo_url")].pii_type == "personal-media-url"
    assert fields[("public.customers", "profile.prefs.theme")].pii_type is None
    assert fields[("public.Ünïcode table", "e mail")].pii_type == "email"
    assert fields[("public.Ünïcode table", "empty")].pii_type is None
    assert "binary" in fields[("public.Ünïcode table", "blob")].reason
    empty = next(c for c in result.stores[0].collections if c.name == "public.empty_table")
    assert empty.rows_read == 0 and [(f.field, f.pii_type, f.sampled) for f in empty.fields] == [("email", None, 0)]
    subjects = result.stores[0].subjects
    assert subjects is not None and subjects.estimate == N and subjects.field == "customer_id"
    raw = (tmp_path / "c.db").read_bytes()
    for value in (DATA["email"][0], DATA["ssn"][3], DATA["phone"][5], DATA["wifi_ssid"][7]):
        assert str(value).encode() not in raw  # the catalog holds no sampled value
    with sqlite3.connect(tmp_path / "c.db") as db:
        assert db.execute("SELECT count(*) FROM classifications WHERE pii_type = 'email'").fetchone()[0] >= 2


def test_postgres_full_scan_counts_every_row(pg_seeded: Server, pg_password: str) -> None:
    result = scan([pg_seeded.url(database="shop")], mode=ScanMode.FULL, batch_rows=128)
    f = by_field(result)[("public.customers", "email")]
    assert (f.pii_type, f.matched, f.sampled) == ("email", N, N)


def test_missing_privilege_names_the_table_and_others_continue(pg_seeded: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "piiguard-test-pw")
    result = scan([pg_seeded.url(user="scanner", database="shop")])
    problems = result.stores[0].problems
    assert [(p.collection, p.kind) for p in problems] == [("public.secret", ProblemKind.COLLECTION)]
    assert "GRANT SELECT" in (problems[0].hint or "")
    assert any(c.name == "public.customers" and c.pii_fields for c in result.stores[0].collections)


def test_wrong_password_and_unreachable_are_store_problems(pg_seeded: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "wrong-password-value")
    result = scan([pg_seeded.url(database="shop"), "postgresql://x@127.0.0.1:1/db"], timeout=2)
    first, second = result.stores
    assert "authentication failed" in first.problems[0].message
    assert "wrong-password-value" not in repr(result)
    assert "cannot connect" in second.problems[0].message


def test_sampled_scan_uses_tablesample_on_a_big_table(postgres: Server, pg_password: str) -> None:
    with pg_connect(postgres) as conn:
        conn.execute("DROP TABLE IF EXISTS big")
        conn.execute("CREATE TABLE big AS SELECT g AS id, 'user' || g || '@example.com' AS email, g % 7 AS n "
                     "FROM generate_series(1, 300000) g")
        conn.execute("ANALYZE big")
    result = scan([postgres.url()], sample_size=1000)
    big = next(c for c in result.stores[0].collections if c.name == "public.big")
    assert 500 <= big.rows_read <= 1000
    emails = next(f for f in big.fields if f.field == "email")
    assert emails.pii_type == "email"
    # TABLESAMPLE pages are spread over the table, not the first 1,000 rows
    assert result.stores[0].subjects is not None


@pytest.fixture(scope="module")
def my_seeded(mariadb: Server) -> Server:
    with my_connect(mariadb) as conn, conn.cursor() as cur:
        cols = ", ".join(f"`{c.name}` varchar(255)" for c in COLS)
        cur.execute(f"CREATE TABLE customers (id int PRIMARY KEY, {cols}, settings json)")
        cur.executemany(
            f"INSERT INTO customers VALUES (%s, {', '.join(['%s'] * len(COLS))}, %s)",
            [(i + 1, *(str(DATA[c.name][i]) for c in COLS),
              json.dumps({"wifi": {"ssid": DATA["wifi_ssid"][i]}})) for i in range(N)])
        cur.execute("CREATE TABLE secret (email varchar(64))")
        cur.execute("CREATE USER scanner@'127.0.0.1' IDENTIFIED BY 'piiguard-test-pw'")
        cur.execute("GRANT SELECT ON app.customers TO scanner@'127.0.0.1'")
        cur.execute("CREATE TABLE `weird name ñ` (`mac addr` varchar(32), payload blob)")
        cur.executemany("INSERT INTO `weird name ñ` VALUES (%s, %s)",
                        [(DATA["device_mac"][i], bytes([0, 255, i % 256])) for i in range(50)])
    return mariadb


def test_mariadb_scan(my_seeded: Server, my_password: str) -> None:
    result = scan([my_seeded.url()])
    fields = by_field(result)
    for c in COLS:
        assert fields[("app.customers", c.name)].pii_type == c.label, c.name
    assert fields[("app.customers", "settings.wifi.ssid")].pii_type == "wifi-ssid"
    assert fields[("app.weird name ñ", "mac addr")].pii_type == "mac-address"
    assert "binary" in fields[("app.weird name ñ", "payload")].reason
    assert result.stores[0].subjects is not None and result.stores[0].subjects.estimate == N


def test_mariadb_scanner_sees_only_granted_tables(my_seeded: Server, my_password: str) -> None:
    result = scan([my_seeded.url(user="scanner")])
    store = result.stores[0]
    assert [c.name for c in store.collections] == ["app.customers"]  # MariaDB hides tables without grants
    assert not store.problems and store.subjects is not None


def test_mariadb_wrong_password(my_seeded: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYSQL_PWD", "nope")
    result = scan([my_seeded.url()])
    assert "access denied" in result.stores[0].problems[0].message


def test_cli_json_output_and_exit_codes(pg_seeded: Server, pg_password: str, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "piiguard", "scan", pg_seeded.url(database="shop"),
                          "--format", "json", "--catalog", str(tmp_path / "c.db")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["stores"][0]["subjects_estimate"] == N
    row = next(f for f in doc["fields"] if f["field"] == "email")
    assert set(row) >= {"store", "collection", "field", "pii_type", "confidence", "matched", "sampled"}
    assert DATA["email"][0] not in run.stdout
    bad = subprocess.run([sys.executable, "-m", "piiguard", "scan", "postgresql://u:pw@h/db"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "environment variable" in bad.stderr
