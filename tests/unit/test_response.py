"""Incident pieces that need no server: the timeline's hash chain, the log parser, configuration errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from piiguard.catalog import Catalog
from piiguard.errors import ConfigError, UsageError
from piiguard.model import Store
from piiguard.response import incidents, responders
from piiguard.response.evidence import PostgresLog
from piiguard.response.notices import NoticeOptions, describe


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
