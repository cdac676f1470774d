"""Canaries found by ``scan`` and ``fingerprint match`` (not only by ``discover``), and a discovered store
named by its address: a planted set's values in a CSV folder and in an open Redis are reported as
``via: canary`` links and recorded as hits, with no fingerprint kept at all."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsondoc
import pytest
import redis
from open_redis import HOST, OpenRedis, port_on

from piiguard.catalog import Catalog
from piiguard.cli.fingerprint import where
from piiguard.discovery import canary_values as cv
from piiguard.discovery.base import Discovered, Endpoint, Kind, Service
from piiguard.discovery.canary_values import Deriver, ValueKind
from piiguard.discovery.fingerprints import key_id
from piiguard.discovery.keys import decode_key

KEY = "9c1f4e2b7a6d8e0f3b5c7a9d1e2f4a6b8c0d2e4f6a8b0c1d"  # varied: a constant key is refused (keys.weakness)
FIELDS = {"email": ValueKind.EMAIL, "token": ValueKind.TOKEN}


def _setup(tmp_path: Path, collection: str = "public.customers") -> tuple[list[dict[str, Any]], Any]:
    """A planted set of 3 in the catalog (prod.COLLECTION), and the configuration; the rows."""
    key = decode_key(KEY.encode())  # as load_key reads the variable
    rows = Deriver(key, "nonce-l", "canary.example.com").rows(3, FIELDS)
    with Catalog(tmp_path / "c.db") as cat:
        cid = cat.add_canary("prod", collection, 3, "nonce-l", key_id(key),
                             {f: k.value for f, k in FIELDS.items()}, cv.digests(key, rows, FIELDS))
        cat.set_canary(cid, "planted")
    prod = tmp_path / "prod.db"
    prod.write_bytes(b"")
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(json.dumps({"stores": [{"name": "prod", "url": f"sqlite:///{prod}"}],
                               "discovery": {"key_env": "PIIGUARD_DISCOVERY_KEY",
                                             "canary": {"domain": "canary.example.com"}}}))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "piiguard", *args, "-c", str(cfg), "--catalog",
                               str(tmp_path / "c.db")], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PIIGUARD_DISCOVERY_KEY": KEY})
    return rows, run


def _hits(tmp_path: Path) -> list[dict[str, Any]]:
    with Catalog(tmp_path / "c.db") as cat:
        return cat.canary_hits()


def test_scan_and_match_report_canaries_in_a_csv_folder(tmp_path: Path, leaks: Any) -> None:
    rows, run = _setup(tmp_path)
    if leaks is not None:
        leaks.seed([v for r in rows for v in r.values()], "canary")
    folder = tmp_path / "export"
    folder.mkdir()
    with (folder / "leads.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["contact", "secret", "city"])
        out.writerows([f"decoy{i}@example.org", "-", "Berlin"] for i in range(20))
        out.writerows([r["email"], r["token"], "Berlin"] for r in rows)
    if leaks is not None:
        leaks.source(folder / "leads.csv")
    scanned = run("scan", f"file://{folder}", "-f", "json")
    assert scanned.returncode == 0, scanned.stderr
    links = json.loads(scanned.stdout)["copy_links"]
    assert [(x["via"], x["source_store"], x["source_collection"], x["people"], sorted(x["source_fields"]))
            for x in links] == [("canary", "prod", "public.customers", 3, ["email", "token"])]
    assert [h["channel"] for h in _hits(tmp_path)] == ["scan"]
    matched = run("fingerprint", "match", f"file://{folder}", "-f", "json")
    assert matched.returncode == 0, matched.stderr
    got = jsondoc.check(matched.stdout, "fingerprint-match")["links"]
    assert [(x["via"], x["people"], x["share"]) for x in got] == [("canary", 3, 1.0)]
    assert len(_hits(tmp_path)) == 2
    text = run("fingerprint", "match", f"file://{folder}")
    assert "holds a copy of prod.public.customers (canary): about 3 people" in text.stdout, text.stdout


def test_match_names_a_discovered_store_by_address(tmp_path: Path, leaks: Any) -> None:
    rows, run = _setup(tmp_path)
    if leaks is not None:
        leaks.seed([v for r in rows for v in r.values()], "canary")
    server = OpenRedis(port_on(HOST))
    try:
        r = redis.Redis(host=HOST, port=server.port)
        for i, row in enumerate(rows):
            r.hset(f"member:{i}", mapping={"mail": row["email"], "auth": row["token"]})
        r.close()
        address = f"{HOST}:{server.port}"
        unknown = run("fingerprint", "match", address)
        assert unknown.returncode == 2 and "piiguard stores" in unknown.stderr + unknown.stdout  # not in inventory
        with Catalog(tmp_path / "c.db") as cat:
            cat.record_discovered([Discovered(Service(Endpoint.parse(address), Kind.STORE, "redis", "Redis", None,
                                                      "PING"), open=True)])
        matched = run("fingerprint", "match", address, "-f", "json")
        assert matched.returncode == 0, matched.stderr
        doc = jsondoc.check(matched.stdout, "fingerprint-match")
        assert doc["store"] == address
        assert [(x["store"], x["via"], x["people"]) for x in doc["links"]] == [(address, "canary", 3)]
    finally:
        server.stop()


@pytest.mark.parametrize(("store", "collection", "shown"), [
    ("127.0.0.4:3306/shadow", "shadow.members", "127.0.0.4:3306/shadow.members"),  # the database once
    ("127.0.0.4:5432/shadow", "public.members", "127.0.0.4:5432/shadow.public.members"),
    ("127.0.0.4:3306/", "shadow.members", "127.0.0.4:3306/shadow.members"),
    ("shadow", "shadow.members", "shadow.shadow.members"),  # a configured name is the user's, kept whole
    ("127.0.0.4:6379", "member:*", "127.0.0.4:6379.member:*"),
    ("127.0.0.4:3306/shadow", "shadowy.members", "127.0.0.4:3306/shadow.shadowy.members"),
], ids=["url-mysql", "url-postgres", "url-no-database", "configured", "address", "prefix-only"])
def test_link_location_writes_the_database_once(store: str, collection: str, shown: str) -> None:
    assert where(store, collection) == shown


def test_scope_of_a_found_copy_leaves_its_canaries_out(tmp_path: Path, leaks: Any) -> None:
    """A discovered Redis holding 5 customers and the 3 canaries: its scope (read through the inventory
    and the canary link) lists the 5, and says it left 3 records out; without the key it warns."""
    import sqlite3

    from piiguard.config import load_config
    from piiguard.response.scope import find_scope
    from piiguard.scanner import scan

    rows, run = _setup(tmp_path, "customers")
    people = [f"buyer{i}@shop-example.org" for i in range(5)]
    if leaks is not None:
        leaks.seed([v for r in rows for v in r.values()] + people, "canary")
    if leaks is not None:
        leaks.source(tmp_path / "prod.db")
    with sqlite3.connect(tmp_path / "prod.db") as db:  # the source, scanned: its fields' types
        db.execute("CREATE TABLE customers (email TEXT, token TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?)", [(p, None) for p in people] +
                       [(r["email"], r["token"]) for r in rows])
    cfg = load_config(tmp_path / "piiguard.yaml")
    server = OpenRedis(port_on(HOST))
    try:
        r = redis.Redis(host=HOST, port=server.port)
        for i, p in enumerate(people):
            r.hset(f"member:{i}", mapping={"mail": p, "auth": "-"})
        for i, row in enumerate(rows, len(people)):
            r.hset(f"member:{i}", mapping={"mail": row["email"], "auth": row["token"]})
        r.close()
        address = f"{HOST}:{server.port}"
        with Catalog(tmp_path / "c.db") as cat:
            scan(["prod"], config=cfg, catalog=cat)
            cat.record_discovered([Discovered(Service(Endpoint.parse(address), Kind.STORE, "redis", "Redis", None,
                                                      "PING"), open=True)])
        assert run("fingerprint", "match", address).returncode == 0  # records the canary link
        with Catalog(tmp_path / "c.db") as cat:
            incident = cat.incident(cat.open_incident(f"{address} exposed", [address], "2026-12-02T05:00:00+00:00",
                                                      [], None))
            assert incident is not None
            keyless = find_scope(cat, incident, {}, b"s" * 32, timeout=5)
            assert len(keyless.people) == 8 and any("may be counted" in w for w in keyless.warnings)
            found = find_scope(cat, incident, {}, b"s" * 32, timeout=5, canary_key=decode_key(KEY.encode()))
            assert set(found.people) == set(people)
            assert "left out 3 record(s) of planted canaries" in " ".join(found.warnings)
    finally:
        server.stop()
