"""The whole story, end to end, on real servers.

A production PostgreSQL holds customers, sessions, tokens and voice-assistant grants (their refresh
tokens issued by a real RFC 7009 authorization server, Authlib); sessions are also in Redis. Customers
are copied (masked) into an analytics PostgreSQL, which keeps 200 of the 300. Someone switches the
analytics store's security off (trust auth, listening on a network interface); an outsider in a
second network namespace reads the copy. watch opens the exposure and the incident; the scope is
exactly the 200 people in the copy; the kill switch revokes their SQL and Redis sessions, tokens and
grants (and nobody else's); notices arrive at a real SMTP server; the timeline verifies, and stops
verifying after one byte is changed.
"""

from __future__ import annotations

import csv
import email
import hashlib
import hmac
import io
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import pg_connect
from helpers import Mailbox
from leak import Leaks
from oauth_server import start_oauth_server
from servers import (
    PASSWORD,
    REDIS_ADMIN,
    Server,
    missing,
    pg_ctl,
    redis_admin,
    start_postgres,
    stop_postgres,
)

from piiguard.catalog import Catalog
from piiguard.config import parse_config
from piiguard.masking.pipeline import plan_copy, run_copy
from piiguard.model import Store
from piiguard.scanner import scan
from piiguard.watch.service import Watcher
from piiguard.watch.sinks import JsonLines

PEOPLE, KEPT = 300, 200
PW = "PIIGUARD_INCIDENT_PW"
COPY_KEY = "incident-copy-key-0123456789"
CLIENT_SECRET = "alexa-client-secret"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture(scope="module")
def outside() -> Iterator[tuple[str, str, str]]:
    """A namespace joined to this host by a veth pair: (namespace, host-side address, outside address)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        missing("root and iproute2 (ip netns) for the incident test")
    n, tag = random.randint(1, 250), f"{os.getpid() % 10000}"
    ns, host_dev, ns_dev = f"inc-out-{tag}", f"inch{tag}", f"inco{tag}"
    host_ip, out_ip = f"10.233.{n}.1", f"10.233.{n}.2"
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host_dev, "type", "veth", "peer", "name", ns_dev)
        sh("ip", "link", "set", ns_dev, "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_dev)
        sh("ip", "link", "set", host_dev, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{out_ip}/30", "dev", ns_dev)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_dev, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield ns, host_ip, out_ip
    finally:
        subprocess.run(["ip", "link", "del", host_dev], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


FIRSTS = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Mia", "Lucas"]


def seed_prod(prod: Server, oauth: Any) -> list[str]:
    ids = [f"cust-{i:05d}" for i in range(PEOPLE)]
    with pg_connect(prod) as conn:
        conn.execute("DROP DATABASE IF EXISTS camprod")
        conn.execute("CREATE DATABASE camprod")
    with pg_connect(prod, "camprod") as conn:
        conn.execute("CREATE TABLE customers (id text PRIMARY KEY, email text, nickname text, wifi_ssid text, "
                     "first_name text, must_reset_password boolean DEFAULT false)")
        conn.execute("CREATE TABLE sessions (user_id text, session_id text)")
        conn.execute("CREATE TABLE access_tokens (user_id text, token text, revoked_at timestamptz)")
        conn.execute("CREATE TABLE integration_grants (user_id text, provider text, refresh_token text, "
                     "relink_required boolean DEFAULT false)")
        firsts = FIRSTS
        for i, cid in enumerate(ids):
            conn.execute("INSERT INTO customers (id, email, nickname, wifi_ssid, first_name) "
                         "VALUES (%s,%s,%s,%s,%s)",
                         (cid, f"{firsts[i % 10].lower()}.{i}@example.net", f"camfan_{i}_{firsts[i % 10].lower()}",
                          f"HOME-{i:04d}-5G", firsts[i % 10]))
            conn.execute("INSERT INTO sessions VALUES (%s, %s), (%s, %s)", (cid, f"s{i}a", cid, f"s{i}b"))
            conn.execute("INSERT INTO access_tokens VALUES (%s, %s, NULL)", (cid, f"at-{i}"))
            conn.execute("INSERT INTO integration_grants VALUES (%s, 'alexa', %s, false)", (cid, f"rt-{i}"))
            oauth.issue(f"rt-{i}")
    return ids


def restart_analytics(server: Server, listen: str, hba_first: str | None) -> None:
    hba = server.data / "data" / "pg_hba.conf"
    lines = [line for line in hba.read_text().splitlines() if "trust" not in line]
    hba.write_text("\n".join(([hba_first] if hba_first else []) + lines) + "\n")
    with pg_connect(server) as conn:
        conn.execute(f"ALTER SYSTEM SET listen_addresses = '{listen}'")
        conn.execute("ALTER SYSTEM SET pgaudit.log = 'read'")
    pg_ctl(server, "restart")  # -w: returns once the server accepts connections


def test_the_whole_story(postgres: Server, cache: Server, outside: tuple[str, str, str], smtp_server: tuple[Mailbox, int],
                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leaks: Leaks) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    monkeypatch.setenv(PW, PASSWORD)
    monkeypatch.setenv("PIIGUARD_COPY_KEY", COPY_KEY)
    monkeypatch.setenv("ALEXA_SECRET", CLIENT_SECRET)
    ns, host_ip, out_ip = outside
    oauth, oauth_http = start_oauth_server("piiguard-responder", CLIENT_SECRET, introspection=True)
    analytics = start_postgres(hardened=True)
    redis = redis_admin(cache)
    ids: list[str] = []
    try:
        ids = seed_prod(postgres, oauth)
        leaks.seed(ids, "customer id")
        leaks.seed((f"{FIRSTS[i % 10].lower()}.{i}@example.net" for i in range(PEOPLE)), "email")
        leaks.seed((f"camfan_{i}_{FIRSTS[i % 10].lower()}" for i in range(PEOPLE)), "nickname")
        leaks.seed((f"HOME-{i:04d}-5G" for i in range(PEOPLE)), "wifi-ssid")
        redis.mset({f"session:{cid}": "token" for cid in ids})
        restart_analytics(analytics, "127.0.0.1", None)  # pgaudit logs reads from now on

        prod = Store("prod", "postgres", host="127.0.0.1", port=postgres.port, database="camprod", user="postgres",
                     password_env=PW)
        store = Store("analytics", "postgres", host="127.0.0.1", port=analytics.port, user="postgres",
                      password_env=PW, options={"log_file": str(analytics.data / "log")},
                      allowed_networks=("127.0.0.0/8",), probe_from=(ns,))
        # 1. the copy: customers into analytics, masked; the analysts keep 200 of the 300
        cfg = parse_config({"masking": {"prod.public.customers": {"nickname": "keep"}}})
        catalog_path = tmp_path / "c.db"
        with Catalog(catalog_path) as cat:
            plan = plan_copy(prod, "customers", store, "customers_copy", config=cfg)
            assert plan.blocking == ()
            run_copy(plan, COPY_KEY.encode(), cat, owner="analytics", purpose="churn", expires=date(2030, 1, 1))
            with pg_connect(analytics) as conn:
                conn.execute(f"DELETE FROM customers_copy WHERE id NOT IN (SELECT id FROM customers_copy "
                             f"ORDER BY id LIMIT {KEPT})")
            scan([store], catalog=cat)
            alerts = io.StringIO()
            watcher = Watcher([store], cat, [JsonLines(alerts)], timeout=3)
            watcher.cycle()
            assert cat.incidents() == []

            # 2. an employee switches its security off; an outsider reads the copy from another network
            restart_analytics(analytics, f"127.0.0.1,{host_ip}", "host all all 0.0.0.0/0 trust")
            watcher.cycle(inside=False)
            (incident,) = cat.incidents()
            assert incident["stores"] == ["analytics"] and incident["window_end"] is None
            read = subprocess.run(["ip", "netns", "exec", ns, "psql", f"host={host_ip} port={analytics.port} "
                                   "user=postgres dbname=postgres sslmode=disable", "-tAc",
                                   "SELECT count(*) FROM customers_copy"], capture_output=True, text=True, timeout=30)
            assert read.stdout.strip() == str(KEPT), read.stderr

            # 3. security back on: the window closes
            restart_analytics(analytics, "127.0.0.1", None)
            watcher.cycle(inside=False)
            incident = cat.incident(incident["id"])
            assert incident is not None and incident["window_end"] is not None
        incident_id = str(incident["id"])

        config = tmp_path / "piiguard.yaml"
        config.write_text(json.dumps({
            "stores": [
                {"name": "prod", "url": f"postgresql://postgres@127.0.0.1:{postgres.port}/camprod", "password_env": PW},
                {"name": "analytics", "url": f"postgresql://postgres@127.0.0.1:{analytics.port}/postgres",
                 "password_env": PW, "options": {"log_file": str(analytics.data / "log")},
                 "allowed_networks": ["127.0.0.0/8"]},
                {"name": "cache", "url": f"redis://{REDIS_ADMIN}@127.0.0.1:{cache.port}/0", "password_env": PW}],
            "respond": {
                "contact": {"name": "Privacy team", "email": "privacy@example.net"},
                "responders": [
                    {"kind": "sql-sessions", "store": "prod", "table": "public.sessions", "subject_column": "user_id"},
                    {"kind": "redis-sessions", "store": "cache", "key": "session:{subject}"},
                    {"kind": "sql-tokens", "store": "prod", "table": "public.access_tokens",
                     "subject_column": "user_id"},
                    {"kind": "oauth-grants", "store": "prod", "table": "public.integration_grants",
                     "subject_column": "user_id", "token_column": "refresh_token", "provider_column": "provider",
                     "providers": {"alexa": {"revocation_endpoint": oauth.url, "client_id": "piiguard-responder",
                                             "client_secret_env": "ALEXA_SECRET",
                                             "introspection_endpoint": oauth.introspection_url}}},
                    {"kind": "password-reset", "store": "prod", "table": "public.customers",
                     "subject_column": "id"}],
                "notices": {"store": "prod", "table": "public.customers", "subject_column": "id",
                            "email_column": "email", "name_column": "first_name", "smtp": "127.0.0.1",
                            "port": smtp_server[1], "sender": "privacy@example.net", "rate": 500, "company": "CamCo"}}}))

        def piiguard(*args: str, configured: bool = True) -> subprocess.CompletedProcess[str]:
            options = ["-c", str(config)] if configured else []
            done = subprocess.run([sys.executable, "-m", "piiguard", *args, *options, "--catalog", str(catalog_path)],
                                  capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
            assert done.returncode == 0, done.stdout + done.stderr
            return done

        # 4. scope: exactly the people in the copy, traced back with the copy's key
        subjects = tmp_path / "private" / "subjects.csv"
        leaks.holds_people(subjects)  # the subject list names people, by design; it must be 0600
        piiguard("incident", "scope", incident_id, "--out", str(subjects), "--key-env", "PIIGUARD_COPY_KEY")
        with subjects.open() as f:
            rows = list(csv.DictReader(f))
        with pg_connect(analytics) as conn:  # who is in the copy, worked out independently of piiguard
            kept = {r[0] for r in conn.execute("SELECT id FROM customers_copy")}
        in_copy = sorted(c for c in ids if hmac.new(COPY_KEY.encode(), c.encode(), hashlib.sha256).hexdigest()[:20]
                         in kept)
        assert len(in_copy) == KEPT
        assert sorted(r["subject"] for r in rows) == in_copy
        assert "username" in rows[0]["exposed"] and "email (pseudonym)" in rows[0]["exposed"]
        assert oct(subjects.stat().st_mode & 0o777) == "0o600"

        # 5. evidence: the outsider's address, classed unknown, and what it read
        evidence = piiguard("incident", "evidence", incident_id)
        assert f"{out_ip}: unknown, read customers_copy" in evidence.stdout
        assert "sha256" in evidence.stdout
        said = " ".join(evidence.stdout.split())  # the terminal wraps long notes
        assert "entries attributed to piiguard itself (user postgres from 127.0.0.1) were left out" in said
        everything = " ".join(piiguard("incident", "evidence", incident_id, "--include-own", "--force").stdout.split())
        assert "attributed to piiguard itself (user postgres from 127.0.0.1) are included" in everything
        assert f"{out_ip}: unknown, read customers_copy" in everything

        # 6. the kill switch: planned, then applied, for the affected people only
        planned = piiguard("incident", "respond", incident_id, "--subjects", str(subjects),
                           "--key-env", "PIIGUARD_COPY_KEY")
        assert "nothing changed" in planned.stdout and f"delete sessions: {2 * KEPT:,} row(s)" in planned.stdout
        applied = piiguard("incident", "respond", incident_id, "--subjects", str(subjects), "--key-env",
                           "PIIGUARD_COPY_KEY", "--apply")
        assert f"oauth-grants: {KEPT:,} changed; {KEPT:,} confirmed by introspection, 0 not confirmed" in applied.stdout
        with pg_connect(postgres, "camprod") as conn:
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (2 * (PEOPLE - KEPT),)
            assert conn.execute("SELECT count(*) FROM sessions WHERE user_id = ANY(%s)", [in_copy]).fetchone() == (0,)
            revoked = {r[0] for r in conn.execute("SELECT user_id FROM access_tokens WHERE revoked_at IS NOT NULL")}
            relink = {r[0] for r in conn.execute("SELECT user_id FROM integration_grants WHERE relink_required")}
            reset = {r[0] for r in conn.execute("SELECT id FROM customers WHERE must_reset_password")}
        assert revoked == relink == reset == set(in_copy)
        assert oauth.revoked() == {f"rt-{ids.index(c)}" for c in in_copy}
        assert all(redis.exists(f"session:{c}") == 0 for c in in_copy)
        assert redis.exists(f"session:{sorted(set(ids) - set(in_copy))[0]}") == 1
        requests = oauth.requests
        piiguard("incident", "respond", incident_id, "--subjects", str(subjects), "--key-env", "PIIGUARD_COPY_KEY",
                 "--apply")
        assert oauth.requests == requests  # idempotent: nothing left to revoke

        # 7. notices: one per person, never twice
        box, _ = smtp_server
        piiguard("incident", "notify", incident_id, "--subjects", str(subjects), "--key-env", "PIIGUARD_COPY_KEY")
        assert len(box.messages) == KEPT
        body = email.message_from_string(box.messages[0]).get_payload()
        assert "pseudonym" in str(body) and "Link your voice-assistant" in str(body)
        assert "HOME-" not in str(body)  # notices name categories, never the exposed values
        piiguard("incident", "notify", incident_id, "--subjects", str(subjects), "--key-env", "PIIGUARD_COPY_KEY")
        assert len(box.messages) == KEPT

        # 8. regulator drafts, the bundle, and a timeline that detects one changed byte
        report = piiguard("incident", "report", incident_id)
        paths, head = report.stdout.split("timeline head ")  # the numbers' basis, the drafts, the head it left
        assert paths.startswith("numbers: exact:")  # the scope exists: the drafts say so
        written = {Path(p).name for p in paths.split() if p.endswith(".md")}
        assert written == {"gdpr-art33.md", "gdpr-art34.md", "california.md"}
        text = (catalog_path.parent / "incidents" / incident_id / "reports" / "gdpr-art33.md").read_text()
        assert f"{KEPT:,}" in text and "72 hours" in text and out_ip in text
        assert f"{KEPT:,} confirmed revoked by the provider's introspection endpoint (RFC 7662); 0 not confirmed" in text
        assert "were attributed to piiguard itself" in text and "--include-own" in text
        piiguard("incident", "export", incident_id, str(tmp_path / "bundle"), configured=False)
        assert (tmp_path / "bundle" / "SHA256SUMS").read_text().count("\n") >= 5
        exported = piiguard("incident", "verify", incident_id, "--head", head.strip(), configured=False).stdout
        assert "verified" in exported and "holds the recorded head" in exported
        with Catalog(catalog_path) as cat:
            (seq, payload) = cat.db.execute("SELECT seq, payload FROM timeline WHERE incident_id = ? AND kind = "
                                            "'scoped'", (int(incident_id),)).fetchone()
            cat.db.execute("UPDATE timeline SET payload = ? WHERE incident_id = ? AND seq = ?",
                           (payload.replace('"people":200', '"people":201'), int(incident_id), seq))
            cat.db.commit()
        broken = subprocess.run([sys.executable, "-m", "piiguard", "incident", "verify", incident_id, "--catalog",
                                 str(catalog_path)], capture_output=True, text=True)
        assert broken.returncode == 1 and f"broken at entry {seq}" in broken.stdout
        raw = catalog_path.read_bytes()
        assert b"olivia.0@example.net" not in raw and COPY_KEY.encode() not in raw  # the guard is not the leak
    finally:
        oauth_http.shutdown()
        if ids:
            redis.delete(*[f"session:{c}" for c in ids])
        stop_postgres(analytics)


def test_mariadb_evidence_names_the_outsider_and_leaves_out_piiguard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      leaks: Leaks) -> None:
    """The server_audit plugin of a real MariaDB as evidence, after piiguard's own check and scan (as the
    store's user) and an outsider's reads (another user, from the same host): the outsider's reads are
    listed, system tables included; piiguard's own are left out and counted, and --include-own lists them."""
    from datetime import UTC, datetime, timedelta

    import pymysql
    from conftest import my_connect
    from servers import mariadb_options, restart_mariadb, start_mariadb, stop_mariadb

    from piiguard.checker import check_store
    from piiguard.response.evidence import collect

    emails = [f"member{i}@example.org" for i in range(40)]
    leaks.seed(emails, "email")
    monkeypatch.setenv(PW, PASSWORD)
    monkeypatch.setenv("TZ", "XST5")  # the server's local time is UTC-5: server_audit writes local times
    server = start_mariadb()
    try:
        restart_mariadb(server, [*mariadb_options(server, hardened=False), "--plugin-load-add=server_audit",
                                 "--server-audit-logging=ON"])
        with my_connect(server) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE members (id INT PRIMARY KEY, email TEXT)")
            cur.executemany("INSERT INTO members VALUES (%s, %s)", list(enumerate(emails)))
            for user, grant in (("piiguard", "*.*"), ("outsider", "app.*")):
                cur.execute(f"CREATE USER {user}@'127.0.0.1' IDENTIFIED BY %s", (PASSWORD,))
                cur.execute(f"GRANT SELECT ON {grant} TO {user}@'127.0.0.1'")
        time.sleep(1.1)  # the log has whole seconds: the window starts after the setup's (its INSERT holds values)
        started = datetime.now(UTC).replace(microsecond=0)
        store = Store("shop", "mysql", host="127.0.0.1", port=server.port, user="piiguard", password_env=PW,
                      options={"log_file": str(server.data / "data" / "server_audit.log")},
                      allowed_networks=("10.0.0.0/8",))  # so this host's reads count as unknown
        check_store(store, timeout=5)  # piiguard's own reads: mysql.*, information_schema, app.members
        assert scan([store]).stores[0].problems == ()
        outsider = pymysql.connect(host="127.0.0.1", port=server.port, user="outsider", password=PASSWORD,
                                   database="app", autocommit=True)
        with outsider, outsider.cursor() as cur:
            cur.execute("SELECT email FROM members")
            cur.execute("SELECT count(*) FROM information_schema.TABLES")  # a system table, read by an outsider
        audit_log, deadline = server.data / "data" / "server_audit.log", time.monotonic() + 10
        while not any(",outsider,127.0.0.1," in line and ",DISCONNECT," in line
                      for line in audit_log.read_text().splitlines()) and time.monotonic() < deadline:
            time.sleep(0.1)  # the plugin writes a statement's event after the client has its answer
        end = datetime.now(UTC) + timedelta(seconds=1)
        time.sleep(max(0.0, end.timestamp() - time.time()) + 1.05)  # collect's own events fall after the window
        log = audit_log.read_text()
        own_lines = sum(1 for line in log.splitlines() if ",piiguard,127.0.0.1," in line)
        assert own_lines > 0 and ",outsider,127.0.0.1," in log

        found = collect(store, started, end, tmp_path)
        reads = found.reads["127.0.0.1"]
        assert found.trail and found.addresses == {"127.0.0.1": "unknown"}
        assert "app.members" in reads or "members" in reads
        assert "information_schema.TABLES" in reads  # never dropped because of what was read
        assert not any(r.startswith("mysql.") for r in reads)  # those were piiguard's check reading
        assert found.own == own_lines
        assert f"{own_lines} entries attributed to piiguard itself (user piiguard from 127.0.0.1)" in found.note
        assert "times in the server's offset now, UTC-05:00" in found.note
        assert "--include-own" in found.note and found.summary()["own_entries"] == own_lines

        everything = collect(store, started, end, tmp_path, force=True, include_own=True)
        assert any(r.startswith("mysql.") for r in everything.reads["127.0.0.1"])
        assert everything.own == own_lines and "are included" in everything.note
        assert found.sha256 == everything.sha256  # the artefact keeps every entry either way
    finally:
        stop_mariadb(server)


def test_clickhouse_evidence_addresses_quoted_reads_and_any_offset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    leaks: Leaks) -> None:
    """Debian's ClickHouse 18.16: query_log's address is an IPv6 FixedString (read as text, ::ffff: mapped
    to IPv4); reads through double-quoted and backtick-quoted names are recorded; a table named by an
    e-mail address is shown as <email>, never in part; U+2028 in a query splits nothing; a window given
    at +01:00, -05:00 or Z for the same instant gives the same entries."""
    import urllib.request
    from datetime import UTC, datetime, timedelta, timezone

    from servers import clickhouse_users, restart_clickhouse, start_clickhouse, stop_clickhouse

    from piiguard.response.evidence import collect

    leaks.seed(["alice@example.com"], "email")
    leaks.holds_people(tmp_path)  # the artefact keeps every query whole
    monkeypatch.setenv(PW, PASSWORD)
    server = start_clickhouse()

    def ch(query: str, user: str = "default") -> str:
        request = urllib.request.Request(f"http://127.0.0.1:{server.port}/", data=query.encode(),
                                         headers={"X-ClickHouse-User": user, "X-ClickHouse-Key": PASSWORD})
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(response.read().decode())

    try:
        outsider = (f"<outsider><password>{PASSWORD}</password><networks><ip>127.0.0.1</ip></networks>"
                    "<profile>default</profile><quota>default</quota></outsider>")
        (server.data / "conf" / "users.xml").write_text(clickhouse_users(extra=outsider))
        restart_clickhouse(server)
        ch("CREATE DATABASE shop")
        for table in ("customers", "logins", "`alice@example.com`", "decoy"):
            ch(f"CREATE TABLE shop.{table} (email String) ENGINE = Memory")
        time.sleep(1.1)  # event_time has whole seconds: the window starts after the setup
        start = datetime.now(UTC).replace(microsecond=0)
        ch("SELECT count() FROM shop.customers")  # piiguard's user from piiguard's host: its own
        for query in ('SELECT email FROM "shop"."customers"', "SELECT count() FROM `shop`.`alice@example.com`",
                      "SELECT 1 /* \u2028 FROM shop.decoy */ FROM shop.logins"):
            ch(query, "outsider")
        ch("SYSTEM FLUSH LOGS")
        end = datetime.now(UTC) + timedelta(seconds=1)
        store = Store("olap", "clickhouse", host="127.0.0.1", port=server.port, user="default", password_env=PW,
                      allowed_networks=("10.0.0.0/8",))  # so this host's reads count as unknown
        found = [collect(store, start.astimezone(timezone(offset)), end.astimezone(timezone(offset)), tmp_path,
                         force=True) for offset in (timedelta(hours=1), timedelta(hours=-5), timedelta(0))]
        first = found[0]
        assert first.addresses == {"127.0.0.1": "unknown"}
        reads = first.reads["127.0.0.1"]
        assert {"shop.customers", "shop.logins"} <= set(reads) and any("<email>" in r for r in reads)
        assert not any("alice" in r or "example" in r for r in reads)  # never a part of the address
        assert "shop.decoy" in reads  # named in a comment: listed rather than risk hiding a read
        assert first.own >= 1  # default's own count is left out, and said
        assert "attributed to piiguard itself (user default from 127.0.0.1)" in first.note
        for other in found[1:]:
            assert (other.reads, other.addresses, other.own, other.note) == (
                first.reads, first.addresses, first.own, first.note)
        assert int(first.note.split()[0]) >= 3
    finally:
        stop_clickhouse(server)
