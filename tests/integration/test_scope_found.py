"""Scope of an incident on a store nobody registered: the address is read as the inventory found it
(anonymously: it was open), its fields typed by the copy link back to the registered source, and the
report names the lineage ("copy of prod.customers (via fingerprint, ~30 people …)"). Once the store is
gone the scope says it could not be read, with the last known links — never "nobody was in it".

The inventory row and the link are recorded by hand here (helpers A/B/D record them in a sweep); the
Redis, the source's scan and the read are real.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from open_redis import HOST, OpenRedis, port_on

from piiguard.catalog import Catalog
from piiguard.connectors.base import connectors, shown_collections
from piiguard.discovery.base import CopyLink, Discovered, Endpoint, Kind, Service
from piiguard.errors import UsageError
from piiguard.model import Store
from piiguard.response.scope import find_scope, scope_lines
from piiguard.scanner import scan

KEY = b"scope-found-key-0123456789abcdef"
PEOPLE = 100
COPIED = range(10, 40)  # a subset: 30 of the 100, under renamed fields


@pytest.fixture
def copy(tmp_path: Path) -> Iterator[tuple[Store, OpenRedis, str, list[str]]]:
    source = tmp_path / "prod.db"
    db = sqlite3.connect(source)
    db.execute("CREATE TABLE customers (customer_id TEXT PRIMARY KEY, email TEXT, city TEXT)")
    ids = [str(uuid.UUID(int=i + 1, version=4)) for i in range(PEOPLE)]  # id-shaped: a customer key
    db.executemany("INSERT INTO customers VALUES (?, ?, 'Berlin')",
                   [(c, f"person.{i}@shop-example.org") for i, c in enumerate(ids)])
    db.commit()
    db.close()
    server = OpenRedis(port_on(HOST))
    r = redis.Redis(host=HOST, port=server.port)
    for i in COPIED:
        r.hset(f"member:{i}", mapping={"member_email": f"person.{i}@shop-example.org", "ref": ids[i]})
    r.close()
    try:
        yield Store("prod", "sqlite", path=str(source)), server, f"{HOST}:{server.port}", ids
    finally:
        server.stop()


def found(cat: Catalog, address: str) -> str:
    """The inventory row and copy link a sweep would have recorded; returns the copy's collection."""
    ep = Endpoint.parse(address)
    cat.record_discovered([Discovered(Service(ep, Kind.STORE, "redis", "Redis", None, "PING"), open=True)])
    with connectors.get("redis")(Store(address, "redis", host=ep.host, port=ep.port), timeout=5) as c:
        [collection] = shown_collections(c.collections())
    cat.record_links([CopyLink(address, collection, "prod", "customers", "fingerprint", ("member_email", "ref"),
                               ("email", "customer_id"), len(COPIED), len(COPIED) / PEOPLE, 60, 30)])
    return collection


def test_scope_reads_the_found_copy_and_names_its_source(copy: tuple[Store, OpenRedis, str, list[str]],
                                                          tmp_path: Path) -> None:
    prod, server, address, ids = copy
    with Catalog(tmp_path / "c.db", timeline_key=KEY) as cat:
        scan([prod], catalog=cat)
        collection = found(cat, address)
        incident = cat.incident(cat.open_incident(f"{address} exposed", [address], "2026-12-02T05:00:00+00:00",
                                                  [], None))
        assert incident is not None
        scope = find_scope(cat, incident, {"prod": prod}, KEY, timeout=5)
        assert set(scope.people) == {ids[i] for i in COPIED}  # exactly the copied people, by the renamed key
        assert {"email"} <= {t.split(" (")[0] for t in scope.people[ids[10]]}
        assert scope.collections[f"{address}.{collection}"]["field"] == "ref"
        lines = scope_lines(scope)
        assert f"{address} {collection}: copy of prod.customers (via fingerprint, ~30 people (30% of the source)), " \
               "in fields member_email, ref" in lines
        assert not any("@" in line for line in lines)

        server.stop()  # gone since: the scope says so and keeps what it was known as
        gone = find_scope(cat, incident, {"prod": prod}, KEY, timeout=2)
        assert gone.people == {} and gone.copy_of == scope.copy_of
        [warning] = gone.warnings
        assert warning.startswith(f"{address} could not be read now") and "last known: " in warning
        assert "copy of prod.customers" in warning


@pytest.mark.parametrize("case", ["not-in-inventory", "no-link-no-scan"])
def test_an_address_scope_cannot_type_is_refused_by_name(case: str, copy: tuple[Store, OpenRedis, str, list[str]],
                                                        tmp_path: Path) -> None:
    prod, _, address, _ = copy
    with Catalog(tmp_path / "c.db", timeline_key=KEY) as cat:
        if case == "no-link-no-scan":
            cat.record_discovered([Discovered(Service(Endpoint.parse(address), Kind.STORE, "redis"), open=True)])
        incident = cat.incident(cat.open_incident("x", [address], "2026-12-02T05:00:00+00:00", [], None))
        assert incident is not None
        with pytest.raises(UsageError) as err:
            find_scope(cat, incident, {"prod": prod}, KEY, timeout=2)
        assert address in err.value.message and err.value.hint
        assert ("never scanned" in err.value.message) is (case == "no-link-no-scan")


def test_incident_scope_command_names_the_lineage_in_json_and_on_the_timeline(
        copy: tuple[Store, OpenRedis, str, list[str]], tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    import jsondoc

    prod, _, address, _ = copy
    with Catalog(tmp_path / "c.db", timeline_key=KEY) as cat:
        scan([prod], catalog=cat)
        found(cat, address)
        incident = cat.open_incident(f"{address} exposed", [address], "2026-12-02T05:00:00+00:00", [], None)
    config = tmp_path / "piiguard.yaml"
    config.write_text(f"stores:\n  - name: prod\n    engine: sqlite\n    path: {prod.path}\n")
    env = {**os.environ, "SCOPE_KEY": KEY.decode(), "PIIGUARD_TIMELINE_KEY": KEY.decode()}
    run = subprocess.run([sys.executable, "-m", "piiguard", "incident", "scope", str(incident), "--out",
                          str(tmp_path / "subjects.csv"), "--key-env", "SCOPE_KEY", "-c", str(config), "--catalog",
                          str(tmp_path / "c.db"), "--format", "json"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    doc = jsondoc.check(run.stdout, "scope")
    assert doc["people"] == len(COPIED) and len(doc["copy_of"]) == 1
    assert "copy of prod.customers (via fingerprint, ~30 people" in doc["copy_of"][0]
    with Catalog(tmp_path / "c.db", timeline_key=KEY) as cat:
        [scoped] = [e for e in cat.timeline(incident) if e["kind"] == "scoped"]
    body = scoped["payload"] if isinstance(scoped.get("payload"), dict) else json.loads(str(scoped["payload"]))
    assert body["copy_of"] == doc["copy_of"]
