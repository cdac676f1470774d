"""Incident pieces that need no server: the timeline's hash chain, the log parser, configuration errors,
the subject file's checks and the notices' text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from piiguard.catalog import Catalog
from piiguard.errors import ConfigError, UsageError
from piiguard.model import Store
from piiguard.response import incidents, responders
from piiguard.response.evidence import PostgresLog
from piiguard.response.notices import (
    NoticeOptions,
    _environment,
    _Letters,
    advice,
    describe,
    drafts,
    measures,
    notice_template,
)
from piiguard.response.scope import Scope, SubjectFile, keyed, read_subjects, subject_hash, write_subjects


def incident_with_events(tmp_path: Path) -> tuple[Catalog, int]:
    cat = Catalog(tmp_path / "c.db")
    incident_id = cat.open_incident("test", ["s"], "2026-11-03T08:00:00+00:00", ["email"], 10)
    for i in range(4):
        cat.event(incident_id, "note", {"i": i})
    return cat, incident_id


def test_an_intact_chain_verifies(tmp_path: Path) -> None:
    cat, incident_id = incident_with_events(tmp_path)
    result = incidents.verify(cat, incident_id)
    assert result.ok and result.entries == 5 and result.head is not None and result.head.entries == 5


@pytest.mark.parametrize(("tamper", "broken_at"), [
    ("UPDATE timeline SET payload = '{\"i\":9}' WHERE seq = 3", 3),  # an edit
    ("UPDATE timeline SET at = '2020-01-01T00:00:00+00:00' WHERE seq = 2", 2),  # a changed time
    ("DELETE FROM timeline WHERE seq = 4", 4),  # a removal
    ("UPDATE timeline SET seq = seq + 10 WHERE seq = 2", 2),  # a reordering
], ids=["edit", "time", "delete", "reorder"])
def test_any_tampering_is_found(tmp_path: Path, tamper: str, broken_at: int) -> None:
    cat, incident_id = incident_with_events(tmp_path)
    cat.db.execute(tamper)
    cat.db.commit()
    result = incidents.verify(cat, incident_id)
    assert not result.ok and result.broken_at == broken_at


def test_unknown_incident_is_a_usage_error(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat, pytest.raises(UsageError, match="no incident 7"):
        incidents.verify(cat, 7)


LOG = """\
2026-11-03 08:00:01.100 UTC [101] LOG:  connection received: host=127.0.0.1 port=50000
2026-11-03 08:00:01.200 UTC [101] LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,SELECT * FROM orders,<not logged>
2026-11-03 08:00:02.000 UTC [102] LOG:  connection received: host=198.51.100.7 port=40000
2026-11-03 08:00:02.100 UTC [102] LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,"SELECT 1",<not logged>
2026-11-03 08:00:02.200 UTC [102] LOG:  AUDIT: SESSION,2,1,READ,SELECT,,,"SELECT * FROM ""public"".""devices"" d JOIN wifi w ON true",<not logged>
2026-11-03 09:30:00.000 UTC [103] LOG:  connection received: host=203.0.113.9 port=1
"""


def test_postgres_log_classes_addresses_and_lists_reads(tmp_path: Path) -> None:
    (tmp_path / "pg.log").write_text(LOG)
    store = Store("a", "postgres", options={"log_file": str(tmp_path / "pg.log")}, allowed_networks=("127.0.0.0/8",))
    ev = PostgresLog().collect(store, datetime(2026, 11, 3, 8, 0, tzinfo=UTC), datetime(2026, 11, 3, 9, tzinfo=UTC),
                               tmp_path / "evidence")
    assert ev.addresses == {"127.0.0.1": "allowed", "198.51.100.7": "unknown"}  # 203.0.113.9 came after the window
    assert ev.reads == {"198.51.100.7": ["public.customers", "public.devices", "wifi"]}
    assert ev.trail and ev.sha256 and (tmp_path / "evidence" / str(ev.artefact)).exists()


def test_postgres_without_a_log_says_so(tmp_path: Path) -> None:
    ev = PostgresLog().collect(Store("a", "postgres"), datetime.now(UTC), None, tmp_path)
    assert not ev.trail and "no log_file option" in ev.note


def test_responder_configuration_is_checked() -> None:
    with pytest.raises(ConfigError, match="unknown responder 'sms'"):
        responders.build({"responders": [{"kind": "sms"}]}, {})
    with pytest.raises(ConfigError, match=r"responders\[0\]\.tabel: unknown option"):
        responders.build({"responders": [{"kind": "sql-sessions", "store": "p", "tabel": "t"}]}, {})
    with pytest.raises(ConfigError, match="key and/or set"):
        responders.build({"responders": [{"kind": "redis-sessions", "store": "c", "key": "session"}]}, {})
    with pytest.raises(ConfigError, match=r"respond\.notices\.smpt: unknown option"):
        NoticeOptions.parse({"store": "p", "table": "t", "subject_column": "id", "email_column": "e", "smpt": "x"})


def test_categories_read_as_a_person_would() -> None:
    assert describe("email (pseudonym)") == "your e-mail address (replaced by a pseudonym)"
    assert describe("wifi-ssid") == "the name of your Wi-Fi network"


SUBJECT_KEY = b"unit-subject-key-0123456789"


def scoped_file(tmp_path: Path, people: int, chunk: int = 3) -> tuple[Catalog, int, Path]:
    cat = Catalog(tmp_path / "c.db")
    incident_id = cat.open_incident("test", ["s"], "2026-11-03T08:00:00+00:00", ["email"], people)
    found = Scope({f"cust-{i:04d}": frozenset({"email", "username"} if i % 2 else {"email"}) for i in range(people)})
    cat.set_scope(incident_id, keyed(found, SUBJECT_KEY))
    write_subjects(found, tmp_path / "subjects.csv")
    return cat, incident_id, tmp_path / "subjects.csv"


def test_the_subject_file_is_read_in_chunks_and_checked(tmp_path: Path) -> None:
    cat, incident_id, path = scoped_file(tmp_path, 10)
    subjects = SubjectFile(path, cat, incident_id, SUBJECT_KEY, chunk=3)
    assert subjects.check() == 10 and cat.count("scope", incident_id) == 10
    chunks = list(subjects.chunks())
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    first = chunks[0][1]
    assert first == ("cust-0001", bytes.fromhex(subject_hash(SUBJECT_KEY, "cust-0001")), ("email", "username"))
    assert list(SubjectFile(path, cat, incident_id, SUBJECT_KEY, chunk=3).chunks()) == chunks  # unchecked: as read
    assert subjects.ids() == [f"cust-{i:04d}" for i in range(10)]
    assert read_subjects(path, cat, incident_id, SUBJECT_KEY)["cust-0002"] == ["email"]


@pytest.mark.parametrize(("edit", "line", "what"), [
    (lambda rows: [*rows, "cust-9999,email"], 12, "not a subject of"),  # someone added
    (lambda rows: [*rows[:5], rows[2], *rows[5:]], 7, "named twice in"),  # a person twice, other chunk
    (lambda rows: [rows[0], rows[0], *rows[1:]], 3, "named twice in"),  # twice in one chunk
    (lambda rows: [rows[0].replace("cust-0000", "cust-0000 "), *rows[1:]], 2, "not a subject of"),
], ids=["added", "twice-across-chunks", "twice-in-a-chunk", "changed"])
def test_an_edited_subject_file_is_refused(tmp_path: Path, edit: Any, line: int, what: str) -> None:
    cat, incident_id, path = scoped_file(tmp_path, 10)
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header, *edit(rows)]) + "\n")
    subjects = SubjectFile(path, cat, incident_id, SUBJECT_KEY, chunk=3)
    with pytest.raises(UsageError, match=f"line {line}: .*{what}") as refused:
        subjects.check()
    assert "cust-" not in refused.value.message  # the line number, never the identifier
    with pytest.raises(UsageError, match=what):
        list(subjects.chunks())


def test_a_subject_file_changed_after_its_check_is_refused(tmp_path: Path) -> None:
    cat, incident_id, path = scoped_file(tmp_path, 10)
    subjects = SubjectFile(path, cat, incident_id, SUBJECT_KEY, chunk=3)
    assert subjects.check() == 10
    path.write_text(path.read_text().replace("cust-0004", "cust-0012"))  # in the scope? no matter: not checked
    with pytest.raises(UsageError, match="line 6: changed since it was checked"):
        list(subjects.chunks())
    path.write_text(path.read_text().replace("cust-0012", "cust-0004") + "cust-0003,email\n")  # one more line
    with pytest.raises(UsageError, match="line 12: changed since it was checked"):
        list(subjects.chunks())


def test_the_file_scope_wrote_is_known_by_its_mac(tmp_path: Path) -> None:
    cat, incident_id, path = scoped_file(tmp_path, 10)
    mac = write_subjects(Scope({f"cust-{i:04d}": frozenset({"email"}) for i in range(10)}), path, force=True,
                         key=SUBJECT_KEY)
    cat.event(incident_id, "scoped", {"people": 10, "subject_file": mac})
    assert SubjectFile(path, cat, incident_id, SUBJECT_KEY).check() == 10
    assert SubjectFile(path, cat, incident_id, SUBJECT_KEY).ids() == [f"cust-{i:04d}" for i in range(10)]
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header, *rows[:4]]) + "\n")  # a part of the list: checked line by line
    assert SubjectFile(path, cat, incident_id, SUBJECT_KEY).check() == 4
    assert SubjectFile(path, cat, incident_id, SUBJECT_KEY).ids() == [f"cust-{i:04d}" for i in range(4)]
    path.write_text("\n".join([header, *rows, "cust-9999,email"]) + "\n")  # someone added: no MAC, no pass
    for read in (SubjectFile.check, SubjectFile.ids):
        with pytest.raises(UsageError, match="line 12: not a subject of"):
            read(SubjectFile(path, cat, incident_id, SUBJECT_KEY))
    wrong = SubjectFile(path, cat, incident_id, b"another-key-0123456789")
    with pytest.raises(UsageError, match="line 2: not a subject of"):
        wrong.check()


def test_a_subject_file_without_a_scope_is_refused(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    incident_id = cat.open_incident("test", ["s"], "2026-11-03T08:00:00+00:00", ["email"], 1)
    with pytest.raises(UsageError, match="no scope yet"):
        SubjectFile(tmp_path / "none.csv", cat, incident_id, SUBJECT_KEY)


NAMES = ["Olivia", "", "Zoë \"O'Brien\" <b>&amp; {{ name }}", "line\n\nSubject: x", "\x00piiguard-name\x00",
         "emoji 🙂 \ud800 lone", "\\u00e9 \t tab"]


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_a_notice_with_its_name_put_in_is_the_notice_rendered_whole(name: str) -> None:
    did = ["We logged you out of every device."]
    facts = {"company": "CamCo", "window_start": "2026-11-03T08:00:00+00:00", "window_end": None, "measures": did,
             "contact": {"name": "Privacy team", "email": "privacy@example.net"}, "incident_id": 4}
    template = _environment().get_template("notice.txt.j2")
    letters = _Letters(template, facts, did)
    kinds = ("email (pseudonym)", "wifi-ssid")
    whole = template.render(**facts, name=name, categories=[describe(t) for t in kinds],
                            advice=advice(["email", "wifi-ssid"], did))
    subject, _, body = whole.partition("\n\n")
    assert letters.text(kinds, name) == (subject.removeprefix("Subject: "), body)
    line = json.dumps({"to": "a@example.net", "subject": subject.removeprefix("Subject: "), "body": body}) + "\n"
    assert letters.line(kinds, "a@example.net", name) == line
    assert not name or letters.known[kinds] is not None  # the shortcut was taken, not the fallback


def test_a_template_that_changes_the_name_is_rendered_whole() -> None:
    import jinja2
    template = jinja2.Environment(autoescape=False).from_string("Subject: Hi\n\nDear {{ name | upper }},\n")
    letters = _Letters(template, {}, [])
    assert letters.text(("email",), "zoë") == ("Hi", "Dear ZOË,")
    assert letters.known[("email",)] is None


def test_measures_say_only_what_the_timeline_proves(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    incident_id = cat.open_incident("t", ["s"], "2026-11-03T08:00:00+00:00", ["email"], 10)
    cat.event(incident_id, "responded", {"responder": "sql-sessions", "changed": 0})  # ran, changed nothing
    cat.event(incident_id, "responded", {"responder": "oauth-grants", "changed": 180, "confirmed": 180,
                                         "no_introspection": 0, "not_confirmed": 5, "refused": 3,
                                         "unmapped": {"acme": 12}})
    said = measures(cat, incident_id)
    assert said == ["We are closing access to the exposed data; it is not closed yet.",
                    "We are disconnecting your voice-assistant and automation integrations; 20 could not be yet."]
    assert not any("logged you out" in m or "We closed" in m or "We disconnected" in m for m in said)
    cat.event(incident_id, "responded", {"responder": "oauth-grants", "changed": 20, "confirmed": 20,
                                         "no_introspection": 0, "not_confirmed": 0, "refused": 0, "unmapped": {}})
    cat.event(incident_id, "responded", {"responder": "sql-sessions", "changed": 4})
    cat.close_window(incident_id, "2026-11-05T10:00:00+00:00")
    assert measures(cat, incident_id) == [
        "We closed access to the exposed data at 2026-11-05T10:00:00+00:00.",
        "We logged you out of every device.",
        "We disconnected your voice-assistant and automation integrations."]
    third = measures(cat, incident_id, third_person=True)
    assert third[0] == "Access to the exposed data was closed at 2026-11-05T10:00:00+00:00."
    assert not any("you" in m.lower().split() or "your" in m.lower() for m in third)


def test_regulator_drafts_are_in_the_third_person_and_count_records_per_collection(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    incident_id = cat.open_incident("t", ["s"], "2026-11-03T08:00:00+00:00", ["email", "api-key"], 10)
    cat.set_scope(incident_id, {"a" * 64: ["email", "api-key"], "b" * 64: ["email"]})
    cat.event(incident_id, "scoped", {"people": 2, "records": {"s.public.users": 2, "s.public.keys": 7}})
    cat.event(incident_id, "responded", {"responder": "sql-sessions", "changed": 2})
    incident = cat.incident(incident_id)
    assert incident is not None
    out = drafts(cat, incident, {"name": "DPO", "email": "dpo@example.net"}, [], datetime.now(UTC))
    art33 = out["gdpr-art33"]
    assert "9 records (7 in s.public.keys, 2 in s.public.users)" in art33
    assert "one per person" not in art33
    for name in ("gdpr-art33", "california"):
        lowered = out[name].lower()
        assert "your e-mail" not in lowered and "your api" not in lowered and "you out" not in lowered, name
        assert "api keys" in lowered and "were logged out of every device" in lowered
    assert "We logged you out of every device." in out["gdpr-art34"]  # the people's own: second person
    cat.event(incident_id, "scoped", {"people": 2})  # a scope that did not count records
    assert "records concerned: unknown" in drafts(cat, incident, {"name": "D", "email": ""}, [], datetime.now(UTC))[
        "gdpr-art33"]


def test_an_operators_template_renders_sandboxed_with_the_flat_cost_shortcut(tmp_path: Path) -> None:
    path = tmp_path / "avis.txt.j2"
    path.write_text("Subject: Incident {{ incident_id }} chez {{ company }}\n\nBonjour {{ name or 'client' }},\n"
                    "{% for c in categories %}- {{ c }}\n{% endfor %}")
    options = NoticeOptions(store="p", table="t", subject_column="id", email_column="e", template=str(path))
    letters = _Letters(notice_template(options), {"incident_id": 3, "company": "CamCo"}, [])
    assert letters.text(("email",), "Zoë") == ("Incident 3 chez CamCo", "Bonjour Zoë,\n- your e-mail address\n")
    assert letters.known[("email",)] is not None  # proven equal to rendering: the shortcut holds
    path.write_text("Subject: x\n\n{{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    with pytest.raises(ConfigError, match=r"unsafe"):
        _Letters(notice_template(options), {}, []).text(("email",), "Li")
    path.write_text("Subject: x\n\n{{ nope }}\n")
    with pytest.raises(ConfigError, match="nope"):
        _Letters(notice_template(options), {}, []).text(("email",), "Li")
    path.write_text("Subject: x\n\n{% for %}\n")
    with pytest.raises(ConfigError, match="line 3"):
        notice_template(options)
    for broken in ("{{ 1/0 }}", "{{ '%s'|format(1, 2) }}", "{{ [][3] }}"):  # Python's own errors, not Jinja's
        path.write_text(f"Subject: x\n\n{broken}\n")
        with pytest.raises(ConfigError, match=r"respond\.notices\.template"):
            _Letters(notice_template(options), {}, []).text(("email",), "Li")


@given(st.text(max_size=40), st.sampled_from([",", ";", " ", "\r\n", "\n", "<", ">", "\t"]), st.text(max_size=40))
def test_a_notice_goes_to_one_plain_address_or_none(before: str, mark: str, after: str) -> None:
    """The customer data's e-mail value: one that could name a second recipient or end the headers is
    never an address a notice is sent to."""
    from piiguard.response.notices import one_address

    assert not one_address(f"{before}a@x.de{mark}{after}b@y.de")
    assert one_address("kunde@kunden-example.de") and one_address("jürgen@bücher.de")


def test_authorization_servers_are_reached_without_an_environment_proxy() -> None:
    """A proxy named by the environment would receive the client secret and the token, and could answer
    the introspection itself: the opener piiguard starts with has none (urllib reads it at start)."""
    import os
    import subprocess
    import sys

    probe = ("import urllib.request; from piiguard.response import grants; "
             "print(sum(bool(getattr(h, 'proxies', None)) for h in grants._OPENER.handlers), "
             "bool(urllib.request.build_opener().handlers and any(getattr(h, 'proxies', None) "
             "for h in urllib.request.build_opener().handlers)))")
    env = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() == ["0", "True"], done.stderr  # urllib's own opener would use it; ours does not
