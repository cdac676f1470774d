"""Notices on a real PostgreSQL and a real SMTP server: a spool counts as sent (and says so), a preview
counts nothing, messages carry Date and Message-ID, a subject of the wrong type names the column."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pg_connect
from helpers import Mailbox
from leak import Leaks
from servers import PASSWORD, Server

from piiguard.catalog import Catalog
from piiguard.model import Store
from piiguard.response.incidents import open_by_hand
from piiguard.response.scope import find_scope, keyed, write_subjects
from piiguard.scanner import scan

PW = "PIIGUARD_NOTICES_PW"
KEY = "notices-test-key-0123456789"
PEOPLE = 20


@pytest.fixture
def shop(postgres: Server) -> str:
    db = f"notices_{os.getpid()}"
    with pg_connect(postgres) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db}")
        conn.execute(f"CREATE DATABASE {db}")
    with pg_connect(postgres, db) as conn:
        conn.execute(f"""CREATE TABLE customers AS SELECT 'cust-' || lpad(g::text, 6, '0') AS customer_id,
            'buyer' || g || '@example.org' AS email, 'Name' || g AS first_name, g AS num
            FROM generate_series(1, {PEOPLE}) g""")
    return db


def test_spool_preview_and_headers(postgres: Server, shop: str, smtp_server: tuple[Mailbox, int], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch, leaks: Leaks) -> None:
    monkeypatch.setenv(PW, PASSWORD)
    monkeypatch.setenv("PIIGUARD_NOTICES_KEY", KEY)
    smtp_server[0].messages.clear()  # the session's server: earlier tests' messages are not this one's
    leaks.seed((f"buyer{g}@example.org" for g in range(1, PEOPLE + 1)), "email")
    prod = Store("prod", "postgres", host="127.0.0.1", port=postgres.port, database=shop, user="postgres",
                 password_env=PW)
    catalog_path = tmp_path / "c.db"
    subjects = tmp_path / "private" / "subjects.csv"
    leaks.holds_people(tmp_path / "private")
    leaks.holds_people(tmp_path / "incidents")  # the previews: names and addresses, 0600
    with Catalog(catalog_path) as cat:
        scan([prod], catalog=cat)
        incident_id = open_by_hand(cat, "prod", "2026-11-03T08:00:00+00:00")
        incident = cat.incident(incident_id)
        assert incident is not None
        found = find_scope(cat, incident, {"prod": prod}, KEY.encode())
        subjects.parent.mkdir()
        mac = write_subjects(found, subjects, key=KEY.encode())
        cat.set_scope(incident_id, keyed(found, KEY.encode()))
        cat.event(incident_id, "scoped", {"people": len(found.people), "records": found.records, "subject_file": mac})
        assert found.records == {"prod.public.customers": PEOPLE}
    box, port = smtp_server
    notices = {"store": "prod", "table": "public.customers", "subject_column": "customer_id", "email_column": "email",
               "name_column": "first_name", "smtp": "127.0.0.1", "port": port,
               "sender": "Privacy <privacy@camco.example>", "rate": 500, "company": "CamCo"}
    config = tmp_path / "piiguard.yaml"

    def piiguard(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        config.write_text(json.dumps({
            "stores": [{"name": "prod", "url": f"postgresql://postgres@127.0.0.1:{postgres.port}/{shop}",
                        "password_env": PW}],
            "respond": {"contact": {"name": "Privacy team", "email": "privacy@camco.example"}, "notices": notices}}))
        done = subprocess.run([sys.executable, "-m", "piiguard", "incident", *args, str(incident_id), "--subjects",
                               str(subjects), "--key-env", "PIIGUARD_NOTICES_KEY", "-c", str(config), "--catalog",
                               str(catalog_path)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "300"})
        assert (done.returncode == 0) == ok, done.stdout + done.stderr
        return done

    # a preview: to a 0600 file, nothing sent, nothing counted
    shown = piiguard("notify", "--preview", "3").stdout
    assert "3 notice(s) previewed in" in shown and "nothing sent" in shown
    (preview,) = (tmp_path / "incidents" / str(incident_id)).glob("notices-preview-*.txt")
    assert oct(preview.stat().st_mode & 0o777) == "0o600" and preview.read_text().count("Subject: ") == 3
    assert box.messages == []

    # a spool is a delivery: it says so, and a later SMTP run says who was notified, when and where
    spool = tmp_path / "private" / "spool"
    spooled = " ".join(piiguard("notify", "--spool", str(spool)).stdout.split())
    assert f"{PEOPLE} notice(s) spooled to {spool} and recorded as SENT" in spooled
    again = " ".join(piiguard("notify").stdout.split())
    assert "0 notice(s) sent" in again and f"all {PEOPLE} already notified: {PEOPLE} spooled to {spool} at" in again
    assert box.messages == []

    # over SMTP (a second incident): RFC 5322's Date and Message-ID, with the sender's domain
    with Catalog(catalog_path) as cat:
        incident_id = open_by_hand(cat, "prod", "2026-11-04T08:00:00+00:00")
        cat.set_scope(incident_id, keyed(found, KEY.encode()))
        cat.event(incident_id, "scoped", {"people": PEOPLE, "subject_file": mac})
    piiguard("notify")
    assert len(box.messages) == PEOPLE
    message = email.message_from_string(box.messages[0])
    assert message["Date"] and email.utils.parsedate_to_datetime(message["Date"]) is not None
    assert str(message["Message-ID"]).endswith("@camco.example>")
    assert len({email.message_from_string(m)["Message-ID"] for m in box.messages}) == PEOPLE
    body = str(message.get_payload())
    assert "We are closing access to the exposed data; it is not closed yet." in body
    assert "We closed access" not in body

    # a subject column of another type: the column and its type named, no value
    with Catalog(catalog_path) as cat:
        incident_id = open_by_hand(cat, "prod", "2026-11-05T08:00:00+00:00")
        cat.set_scope(incident_id, keyed(found, KEY.encode()))
        cat.event(incident_id, "scoped", {"people": PEOPLE, "subject_file": mac})
    notices["subject_column"] = "num"
    failed = piiguard("notify", ok=False)
    said = " ".join((failed.stdout + failed.stderr).split())
    assert "subject_column 'num' is of type integer" in said and "cust-" not in said


def test_notices_read_addresses_from_mariadb(mariadb: Server, smtp_server: tuple[Mailbox, int], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, leaks: Leaks) -> None:
    """The address look-up through the responders' MariaDB/MySQL dialect (read-only session, IN (…))."""
    from conftest import my_connect

    from piiguard.response import notices
    from piiguard.response.scope import SubjectFile

    monkeypatch.setenv(PW, PASSWORD)
    emails = [f"member{g}@example.org" for g in range(1, PEOPLE + 1)]
    leaks.seed(emails, "email")
    # a database of its own: the session's MariaDB holds other tests' tables, which the scan would read too
    database, table = f"notices_{os.getpid()}", "members"
    with my_connect(mariadb) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {database}")
        cur.execute(f"CREATE DATABASE {database}")
        cur.execute(f"CREATE TABLE {database}.{table} (customer_id VARCHAR(20) PRIMARY KEY, email TEXT, "
                    "first_name TEXT)")
        cur.executemany(f"INSERT INTO {database}.{table} VALUES (%s, %s, %s)",
                        [(f"cust-{g:06d}", e, f"Name{g}") for g, e in enumerate(emails, 1)])
    try:
        shop = Store("shop", "mysql", host="127.0.0.1", port=mariadb.port, database=database, user="root",
                     password_env=PW)
        subjects = tmp_path / "private" / "subjects.csv"
        subjects.parent.mkdir()
        leaks.holds_people(subjects.parent)
        with Catalog(tmp_path / "c.db") as cat:
            scan([shop], catalog=cat)
            incident_id = open_by_hand(cat, "shop", "2026-11-03T08:00:00+00:00")
            incident = cat.incident(incident_id)
            assert incident is not None
            found = find_scope(cat, incident, {"shop": shop}, KEY.encode())
            assert len(found.people) == PEOPLE
            write_subjects(found, subjects, key=KEY.encode())
            cat.set_scope(incident_id, keyed(found, KEY.encode()))
            box, port = smtp_server
            box.messages.clear()  # the session's server: earlier tests' messages are not this one's
            options = notices.NoticeOptions(store="shop", table=table, subject_column="customer_id",
                                            email_column="email", name_column="first_name", smtp="127.0.0.1",
                                            port=port, rate=0, sender="privacy@camco.example")
            checked = SubjectFile(subjects, cat, incident_id, KEY.encode())
            checked.check()
            sent, missing, _ = notices.send(cat, incident, checked, KEY.encode(), options, shop,
                                            {"name": "Privacy", "email": "privacy@camco.example"})
        assert (sent, missing) == (PEOPLE, 0) and len(box.messages) == PEOPLE
        assert sorted(str(email.message_from_string(m)["To"]) for m in box.messages) == sorted(emails)
        assert any("Dear Name1," in m for m in box.messages)
    finally:
        with my_connect(mariadb) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database}")
