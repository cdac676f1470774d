"""Incident scope and copies on document stores, against real servers: an OpenSearch 2.19 node with the
security plugin (index of three shards) and a hardened FerretDB hold a raw export of 40 of 60 members,
as households — nested objects, a list of members per document, one member in two documents.

`piiguard incident scope` names exactly the 40, each with exactly the categories their own entries and
their households held, worked out here from the documents the test wrote. A flat member collection
copies (masked) from each into PostgreSQL through `piiguard copy`, and an incident on that copy traces
its pseudonyms back through the document source with the copy's key."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from built_servers import Ferret, OpenSearch, start_ferretdb, start_opensearch, stop_ferretdb, stop_opensearch
from conftest import pg_connect
from leak import Leaks
from servers import PASSWORD, Server

from piiguard.catalog import Catalog
from piiguard.connectors.opensearch import OpenSearchConnector
from piiguard.errors import CollectionError
from piiguard.masking.pipeline import find_collection
from piiguard.model import Store
from piiguard.scanner import scan

FIRSTS = ["olivia", "liam", "emma", "noah", "ava", "elijah", "sophia", "james", "mia", "lucas"]
PEOPLE, EXPOSED = 60, 40
TWICE = (3, 17)  # members of one household and of the "family" household too
PW = "PIIGUARD_DOCS_PW"
KEY = "document-scope-key-0123456789"
# what each key the test writes holds, as the scan names it
MEMBER_TYPES = {"customer_id": "customer-identifier", "email": "email", "phone": "phone",
                "profile.nickname": "username"}
HOUSEHOLD_TYPES = {"router.wifi_ssid": "wifi-ssid", "devices[].mac": "mac-address"}


def member(i: int, phone: bool | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"customer_id": f"cust-{i:05d}", "email": f"{FIRSTS[i % 10]}.{i}@example.org",
                         "profile": {"nickname": f"camfan_{i}_{FIRSTS[i % 10]}"}}
    if phone if phone is not None else i % 2 == 0:
        m["phone"] = f"+1 415 555 {1000 + i:04d}"
    return m


def households() -> list[dict[str, Any]]:
    """Members 0–39 in households of one to three; every other household has a router, every third a
    camera. Members 3 and 17 also belong to a family household, with a phone this time, beside an
    entry that names nobody."""
    docs: list[dict[str, Any]] = []
    i = n = 0
    while i < EXPOSED:
        size = 1 + n % 3
        doc: dict[str, Any] = {"members": [member(j) for j in range(i, min(i + size, EXPOSED))],
                               "plan": ["basic", "plus"][n % 2]}
        if n % 2 == 0:
            doc["router"] = {"wifi_ssid": f"HOME-{n:04d}-5G", "model": "AX3000"}
        if n % 3 == 0:
            doc["devices"] = [{"mac": f"02:42:ac:11:00:{n:02x}", "fw": "1.2.3"}]
        docs.append(doc)
        i, n = i + size, n + 1
    docs.append({"members": [member(TWICE[0], phone=True), {"email": ""}, member(TWICE[1], phone=True)],
                 "plan": "family", "devices": [{"fw": "1.0.0"}, {"mac": "02:42:ac:11:01:ff"}]})
    return docs


def people() -> list[dict[str, Any]]:
    """The same 40 members as flat documents (nested objects, no arrays): what a copy can take."""
    return [{**member(i), "router": {"wifi_ssid": f"HOME-{i:04d}-5G"}} for i in range(EXPOSED)]


def get(doc: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        doc = doc.get(key) if isinstance(doc, dict) else None  # type: ignore[assignment]
    return doc


def expected(docs: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Each member's categories, from the documents: what their own entry holds, what the household
    holds (router, devices) — unioned over every household they are in."""
    out: dict[str, set[str]] = {}
    for doc in docs:
        shared = {t for p, t in HOUSEHOLD_TYPES.items() if p != "devices[].mac" and get(doc, p)}
        if any(d.get("mac") for d in doc.get("devices", [])):
            shared.add(HOUSEHOLD_TYPES["devices[].mac"])
        for m in doc["members"]:
            if m.get("customer_id"):
                own = {t for p, t in MEMBER_TYPES.items() if get(m, p)}
                out.setdefault(m["customer_id"], set()).update(own | shared)
    return out


def seed(leaks: Leaks) -> None:
    ms = [member(i, phone=True) for i in range(PEOPLE)]
    leaks.seed((m["customer_id"] for m in ms), "customer id")
    leaks.seed((m["email"] for m in ms), "email")
    leaks.seed((m["phone"] for m in ms), "phone")
    leaks.seed((m["profile"]["nickname"] for m in ms), "nickname")
    leaks.seed((f"HOME-{n:04d}-5G" for n in range(PEOPLE)), "wifi-ssid")
    leaks.seed((f"02:42:ac:11:00:{n:02x}" for n in range(PEOPLE)), "mac-address")


@pytest.fixture(scope="module")
def search() -> Iterator[OpenSearch]:
    node = start_opensearch(secured=True)
    try:
        node.json("PUT", "/households", {"settings": {"number_of_shards": 3, "number_of_replicas": 0}})
        bulk(node, "households", households())
        yield node
    finally:
        stop_opensearch(node)


@pytest.fixture(scope="module")
def ferret(postgres: Server) -> Iterator[Ferret]:
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS ferret_scope")
        conn.execute("CREATE DATABASE ferret_scope")
    server = start_ferretdb(postgres.port, open_backend=False, tls=True, database="ferret_scope")
    try:
        server.admin().home.households.insert_many(households())
        yield server
    finally:
        stop_ferretdb(server)


def bulk(node: OpenSearch, index: str, docs: list[dict[str, Any]]) -> None:
    body = "".join(json.dumps({"index": {"_index": index}}) + "\n" + json.dumps(d) + "\n" for d in docs)
    status, answer = node.request("POST", "/_bulk?refresh=true", body.encode())
    assert status == 200 and not json.loads(answer)["errors"]


def as_config(store: Store) -> dict[str, Any]:
    out = {"name": store.name, "engine": store.engine, "host": store.host, "port": store.port, "user": store.user,
           "database": store.database,
           "password_file": store.password_file, "options": dict(store.options)}
    return {k: v for k, v in out.items() if v is not None}


def run(tmp_path: Path, stores: list[Store], *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "piiguard.yaml"
    config.write_text(json.dumps({"stores": [as_config(s) for s in stores]}))
    done = subprocess.run([sys.executable, "-m", "piiguard", *args, "-c", str(config), "--catalog",
                           str(tmp_path / "c.db")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200", "PIIGUARD_SCOPE_KEY": KEY})
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def scope_by_cli(tmp_path: Path, store: Store, leaks: Leaks, *others: Store) -> dict[str, set[str]]:
    """Open an incident on the (scanned) store by hand and scope it: the subject file, read back."""
    run(tmp_path, [store, *others], "incident", "open", store.name, "--since", "2026-11-01T00:00")
    with Catalog(tmp_path / "c.db") as cat:
        incident_id = str(cat.incidents()[-1]["id"])
    subjects = tmp_path / "private" / "subjects.csv"
    leaks.holds_people(subjects)
    run(tmp_path, [store, *others], "incident", "scope", incident_id, "--out", str(subjects), "--key-env",
        "PIIGUARD_SCOPE_KEY", "--force")
    assert oct(subjects.stat().st_mode & 0o777) == "0o600"
    with subjects.open() as f:
        return {r["subject"]: set(r["exposed"].split(";")) for r in csv.DictReader(f)}


@pytest.mark.parametrize("engine", ["opensearch", "mongodb"])
def test_scope_names_each_member_with_their_own_categories(engine: str, search: OpenSearch, ferret: Ferret,
                                                           tmp_path: Path, leaks: Leaks) -> None:
    seed(leaks)
    store = search.store() if engine == "opensearch" else ferret.store()
    with Catalog(tmp_path / "c.db") as cat:
        result = scan([store], catalog=cat).stores[0]
        held = {f: t for c, f, t, _ in cat.pii_fields(store.name) if c.endswith("households")}
    # the scan names the paths as the test wrote them (else the comparison below means nothing)
    assert held == {f"members[].{p}": t for p, t in MEMBER_TYPES.items()} | HOUSEHOLD_TYPES
    assert result.problems == ()
    # the estimate before a scope counts members, not lists of members (MongoDB: one $unwind per array)
    assert result.subjects is not None and result.subjects.field == "members[].customer_id"
    assert result.subjects.estimate == EXPOSED
    got = scope_by_cli(tmp_path, store, leaks)
    want = expected(households())
    assert len(want) == EXPOSED and set(want) == {f"cust-{i:05d}" for i in range(EXPOSED)}
    assert got == want
    # the two in a second household: its phone and camera joined what the first one held
    assert "phone" in got[f"cust-{TWICE[1]:05d}"] and "mac-address" in got[f"cust-{TWICE[0]:05d}"]
    assert not any(t.startswith("<") for ts in got.values() for t in ts)


def test_an_opensearch_read_releases_its_point_in_time(search: OpenSearch) -> None:
    """Read to the end, stopped half-way, or by scroll (as on a cluster without point in time): every
    document once, and nothing left open on the server."""

    def contexts() -> tuple[int, int]:
        stats = next(iter(search.json("GET", "/_nodes/stats/indices/search")["nodes"].values()))
        found = stats["indices"]["search"]
        return found["scroll_current"], found["point_in_time_current"]

    bulk(search, "grows", [{"n": n} for n in range(1_100)])
    try:
        connector = OpenSearchConnector(search.store(), timeout=10)
        with connector:
            info = find_collection(connector, "households")
            # a cluster handing out more documents than the index reports is stopped (past 0 + a 1,000 margin)
            grows = replace(find_collection(connector, "grows"), rows_estimate=0)
            for version in (connector.version, {"distribution": "opensearch", "number": "1.3.0"}):
                connector.version = version
                batches = list(connector.read(info, ["plan", "members[].customer_id"], 4))
                assert sum(b.num_rows for b in batches) == len(households())
                assert max(b.num_rows for b in batches) == 4
                ids = [c for b in batches for cs in b.column(1).to_pylist() for c in cs if c]
                assert sorted(ids) == sorted(m["customer_id"] for d in households() for m in d["members"]
                                             if m.get("customer_id"))
                reader = connector.read(info, ["plan"], 2)
                assert isinstance(reader, Generator)
                next(reader)
                assert contexts() != (0, 0)
                reader.close()
                assert contexts() == (0, 0)
                with pytest.raises(CollectionError, match="went past the 0 documents"):
                    list(connector.read(grows, ["n"], 500))
                assert contexts() == (0, 0)
            assert connector.columns(info) == sorted({"plan", "router.model", "devices[].fw"} | set(HOUSEHOLD_TYPES)
                                                     | {f"members[].{p}" for p in MEMBER_TYPES})
    finally:
        search.request("DELETE", "/grows")


@pytest.mark.parametrize("engine", ["opensearch", "mongodb"])
def test_copy_from_documents_then_scope_the_copy(engine: str, search: OpenSearch, ferret: Ferret, postgres: Server,
                                                 tmp_path: Path, leaks: Leaks, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain paths (nested objects) copy masked into PostgreSQL; an incident on the copy traces each
    pseudonym back through the document store with the copy's key."""
    seed(leaks)
    database = f"docs_copy_{engine}"
    with pg_connect(postgres) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database}")
        conn.execute(f"CREATE DATABASE {database}")
    (tmp_path / "pg.pw").write_text(PASSWORD)
    target = Store("analytics", "postgres", host="127.0.0.1", port=postgres.port, database=database,
                   user="postgres", password_file=str(tmp_path / "pg.pw"))
    source = search.store() if engine == "opensearch" else ferret.store()
    source = replace(source, name="docs")
    collection = "people" if engine == "opensearch" else "home.people"
    if engine == "opensearch":
        bulk(search, "people", people())
    else:
        ferret.admin().home.people.insert_many(people())
    try:
        run(tmp_path, [source, target], "copy", f"docs.{collection}", "analytics.members_copy", "--key-env",
            "PIIGUARD_SCOPE_KEY", "--owner", "bi", "--purpose", "churn", "--accept-risk", "throwaway test server")
        with pg_connect(postgres, database) as conn:
            columns = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                                                  "table_name = 'members_copy' ORDER BY ordinal_position")]
            rows = conn.execute('SELECT "email", "profile.nickname", "phone" FROM members_copy').fetchall()
        assert set(columns) == {"customer_id", "email", "phone", "profile.nickname", "router.wifi_ssid"}
        assert len(rows) == EXPOSED
        assert all(e.endswith("@pseudonym.invalid") and not n.startswith("camfan") for e, n, _ in rows)
        assert sum(p is not None for _, _, p in rows) == EXPOSED // 2  # a missing phone stays missing
        with Catalog(tmp_path / "c.db") as cat:
            assert scan([target], catalog=cat).stores[0].problems == ()
        got = scope_by_cli(tmp_path, target, leaks, source)
        assert set(got) == {f"cust-{i:05d}" for i in range(EXPOSED)}  # pseudonyms traced back to members
        for i in range(EXPOSED):
            kinds = {t.split(" (")[0] for t in got[f"cust-{i:05d}"]}
            assert kinds == {"customer-identifier", "email", "username", "wifi-ssid"} | ({"phone"} if i % 2 == 0
                                                                                          else set())
    finally:
        if engine == "opensearch":
            search.request("DELETE", "/people")
        else:
            ferret.admin().home.drop_collection("people")
        with pg_connect(postgres) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database}")
