"""The MongoDB wire protocol against a real server: FerretDB 1.24 (built from the Go module proxy) on
the throwaway PostgreSQL. Hardened = TLS-only listener and a backend that demands credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from built_servers import Ferret, start_ferretdb, stop_ferretdb
from conftest import pg_connect
from helpers import assert_fails_exactly, engine_checks
from leak import Leaks
from servers import Server

from piiguard.catalog import Catalog
from piiguard.checker import check_store
from piiguard.checks.mongodb import public_binds
from piiguard.contain.service import Containor
from piiguard.errors import UsageError
from piiguard.model import Status
from piiguard.scanner import scan
from piiguard.watch.service import Watcher

UNDECIDABLE = {"mongodb.bind-all"}  # FerretDB does not report its listen addresses: not applicable


@pytest.fixture(scope="module")
def ferrets(postgres: Server) -> Iterator[dict[str, Ferret]]:
    with pg_connect(postgres) as conn:
        for db in ("ferret_hard", "ferret_open", "ferret_plain"):
            conn.execute(f"DROP DATABASE IF EXISTS {db}")
            conn.execute(f"CREATE DATABASE {db}")
    started = {
        "hardened": start_ferretdb(postgres.port, open_backend=False, tls=True, database="ferret_hard"),
        "open": start_ferretdb(postgres.port, open_backend=True, tls=True, database="ferret_open"),
        "plain": start_ferretdb(postgres.port, open_backend=False, tls=False, database="ferret_plain"),
    }
    yield started
    for f in started.values():
        stop_ferretdb(f)


def statuses(server: Ferret) -> dict[str, Status]:
    findings = check_store(server.store(), timeout=5)
    assert not [f for f in findings if f.status is Status.ERROR]
    na = {f.check: f.evidence for f in findings if f.status is Status.NOT_APPLICABLE}
    assert set(na) == UNDECIDABLE and "does not report its listen addresses" in na["mongodb.bind-all"]
    return {f.check: f.status for f in findings if f.check not in UNDECIDABLE}


def test_hardened_ferretdb_passes(ferrets: dict[str, Ferret]) -> None:
    got = statuses(ferrets["hardened"])
    assert set(got) | UNDECIDABLE == engine_checks("mongodb")
    assert {c: s for c, s in got.items() if s is not Status.PASS} == {}


def test_open_backend_fails_auth_checks(ferrets: dict[str, Ferret]) -> None:
    assert_fails_exactly(statuses(ferrets["open"]), {"mongodb.no-auth", "mongodb.authorization-off"})


def test_plain_listener_fails_tls_check(ferrets: dict[str, Ferret]) -> None:
    assert_fails_exactly(statuses(ferrets["plain"]), {"mongodb.no-tls"})


def test_ransom_collection_is_found(ferrets: dict[str, Ferret]) -> None:
    client = ferrets["hardened"].admin()
    client.shop.create_collection("READ_ME_TO_RECOVER_YOUR_DATA")
    try:
        assert_fails_exactly(statuses(ferrets["hardened"]), {"mongodb.ransom-collections"})
    finally:
        client.shop.drop_collection("READ_ME_TO_RECOVER_YOUR_DATA")


@pytest.mark.parametrize(("net", "public"), [
    ({}, []),
    ({"bindIp": "127.0.0.1,::1"}, []),
    ({"bindIp": "localhost,/tmp/mongod.sock"}, []),
    ({"bindIp": "127.0.0.1,10.0.0.5"}, ["10.0.0.5"]),
    ({"bindIpAll": True}, ["all interfaces (bindIpAll)"]),
    ({"bindIp": "0.0.0.0"}, ["0.0.0.0"]),
])
def test_mongod_bind_options(net: dict[str, object], public: list[str]) -> None:
    """mongod's getCmdLineOpts shape (no mongod here: the parsing is tested on its documented output)."""
    assert public_binds(net) == public


def test_scan_finds_pii_in_documents(ferrets: dict[str, Ferret], leaks: Leaks) -> None:
    leaks.seed(f"user{i}@example.com" for i in range(400))
    leaks.seed(f"cam_fan_{i}" for i in range(400))
    leaks.seed(f"SN-{i:08d}" for i in range(400))
    client = ferrets["hardened"].admin()
    client.app.users.drop()
    client.app.users.insert_many([
        {"email": f"user{i}@example.com", "profile": {"nickname": f"cam_fan_{i}", "ssid": f"HOME-{i}"},
         "devices": [{"mac": f"02:42:ac:11:00:{i % 256:02x}", "serial": f"SN-{i:08d}"}], "tier": "basic"}
        for i in range(400)])
    result = scan([ferrets["hardened"].store()]).stores[0]
    assert result.problems == ()
    users = next(c for c in result.collections if c.name == "app.users")
    found = {f.field: f.pii_type for f in users.pii_fields}
    assert found["email"] == "email" and found["devices[].mac"] == "mac-address"
    assert "tier" not in found
    assert result.subjects is not None and result.subjects.estimate == 400


def test_containment_is_a_manual_plan(ferrets: dict[str, Ferret], tmp_path: Path) -> None:
    store = ferrets["open"].store()
    with Catalog(tmp_path / "c.db") as cat:
        containor = Containor(cat, mode="auto", timeout=5)
        Watcher([store], cat, [], timeout=5, containor=containor).cycle()
        (action,) = cat.containments(store.name)
        assert action["status"] == "planned" and "restart" in action["plan"]["steps"][0]
        assert any("--postgresql-url" in s for s in action["plan"]["steps"])  # FerretDB's own steps
        with pytest.raises(UsageError):
            containor.apply(action["id"], store)
    assert_fails_exactly(statuses(ferrets["open"]), {"mongodb.no-auth", "mongodb.authorization-off"})


def test_keys_and_collection_names_that_are_pii_are_shown_as_types(ferrets: dict[str, Ferret],
                                                                     tmp_path: Path) -> None:
    """Values never become names (the labels of issue 11): a document keyed by phone number, a
    collection named after a customer, a key holding Rich markup, and a document nested past 64."""
    client = ferrets["hardened"].admin()
    client.drop_database("labels")
    deep: dict[str, object] = {"email": "deep.one@example.com"}
    for _ in range(70):
        deep = {"d": deep}
    client.labels["owner.kim@example.net"].insert_many(
        [{"by_phone": {f"+1212555{3000 + i}": {"since": 2020 + i % 5}}, "[/]": f"x{i}"} for i in range(30)]
        + [deep])
    with Catalog(tmp_path / "c.db") as cat:
        result = scan([ferrets["hardened"].store()], catalog=cat).stores[0]
    coll = next(c for c in result.collections if c.name == "<email>")  # labels.owner.kim@example.net
    assert {f.field for f in coll.fields} >= {"by_phone.<phone>.since", "[/]", "_id"}
    assert [p.message for p in result.problems if p.collection == coll.name] == [
        "1 value(s) nested deeper than 64 levels skipped; 31 row(s) read"]
    text = repr(result) + b"".join(f.read_bytes() for f in tmp_path.glob("c.db*")).decode("utf-8", "replace")
    assert "2125553001" not in text and "kim@" not in text and "deep.one" not in text
