"""One ClickHouse server, found on its HTTP and its native port, is one discovered store.

A real ClickHouse (tests/servers.py, both ports on 127.0.0.1) with user default left without a
password, swept with ``piiguard discover`` over both ports: one store at the HTTP port with the native
port in ``also``, one critical finding, one exposure and one incident in watch; ``adopt`` writes its
``tcp_port``, and once adopted both ports are registered to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsondoc
import pytest
from servers import PASSWORD, Server, clickhouse_users, start_clickhouse, stop_clickhouse

from piiguard.catalog import Catalog
from piiguard.config import load_config
from piiguard.discovery import inventory
from piiguard.discovery.base import Endpoint, Kind, Service
from piiguard.discovery.run import discover
from piiguard.response.found import found_stores
from piiguard.watch.discovery import record_sweep

UNREGISTERED = "discovery.unregistered-store"


@pytest.fixture(scope="module")
def open_clickhouse() -> Iterator[Server]:
    """User default with no password: anyone who reaches either port reads every table."""
    server = start_clickhouse()
    (server.data / "conf" / "users.xml").write_text(clickhouse_users(password=False))
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/", data=b"SYSTEM RELOAD CONFIG",
                                     headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD})
    urllib.request.urlopen(request, timeout=10).read()
    yield server
    stop_clickhouse(server)


def cli(*args: str, code: int = 0) -> str:
    run = subprocess.run([sys.executable, "-m", "piiguard", *args], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "COLUMNS": "400"})
    assert run.returncode == code, run.stdout + run.stderr
    return run.stdout + (run.stderr if code else "")


def setup(tmp_path: Path, server: Server) -> tuple[Path, Path]:
    tcp = server.tcp_port  # type: ignore[attr-defined]
    catalog, config = tmp_path / "c.db", tmp_path / "piiguard.yaml"
    config.write_text(f"catalog: {catalog}\nstores: []\ndiscovery:\n  networks: [127.0.0.1/32]\n"
                      f"  ports: [{server.port}, {tcp}]\n  timeout: 2\n")
    return config, catalog


def only_store(doc: dict[str, Any]) -> dict[str, Any]:
    assert len(doc["stores"]) == 1, [s["address"] for s in doc["stores"]]
    return dict(doc["stores"][0])


def test_both_ports_are_one_store_with_one_critical_finding(tmp_path: Path, open_clickhouse: Server) -> None:
    config, catalog = setup(tmp_path, open_clickhouse)
    http, tcp = open_clickhouse.port, open_clickhouse.tcp_port  # type: ignore[attr-defined]
    doc = jsondoc.check(cli("discover", "-c", str(config), "-f", "json", "--catalog", str(catalog), code=3),
                        "discovery")
    found = only_store(doc)
    assert (found["address"], found["also"], found["engine"]) == (f"127.0.0.1:{http}", [tcp], "clickhouse")
    assert found["registered"] is None and found["open"] is True and found["severity"] == "critical"
    marks = [f for f in found["findings"] if f["check_id"] == UNREGISTERED]
    assert [(f["status"], f["severity"]) for f in marks] == [("fail", "critical")]
    # the open-door check talked to both ports of the server, not to the HTTP port twice
    (door,) = [f for f in found["findings"] if f["check_id"] == "clickhouse.default-no-password"]
    assert door["status"] == "fail" and f"HTTP {http}" in door["evidence"] and f"native {tcp}" in door["evidence"]
    assert not doc["problems"]
    table = cli("discover", "-c", str(config), "--catalog", str(catalog), code=3)
    assert f"127.0.0.1:{http} (+{tcp})" in table and f"127.0.0.1:{tcp} " not in table

    stores = jsondoc.check(cli("stores", "-c", str(config), "-f", "json", "--catalog", str(catalog)), "stores")
    rows = [s for s in stores["stores"] if s["discovered"] is not None]
    assert [(s["name"], s["discovered"]["also"]) for s in rows] == [(f"127.0.0.1:{http}", [tcp])]


def test_adopt_writes_the_native_port_and_both_ports_are_registered(tmp_path: Path, open_clickhouse: Server) -> None:
    config, catalog = setup(tmp_path, open_clickhouse)
    http, tcp = open_clickhouse.port, open_clickhouse.tcp_port  # type: ignore[attr-defined]
    cli("discover", "-c", str(config), "--catalog", str(catalog), code=3)
    refused = " ".join(cli("adopt", f"127.0.0.1:{tcp}", "--name", "chcopy", "-c", str(config), "--catalog",
                           str(catalog), code=2).split())
    assert f"native port of the ClickHouse found at 127.0.0.1:{http}" in refused
    assert f"hint: adopt that address (piiguard adopt 127.0.0.1:{http}" in refused
    printed = cli("adopt", f"127.0.0.1:{http}", "--name", "chcopy", "-c", str(config), "--catalog", str(catalog))
    assert f'    options:\n      tcp_port: "{tcp}"\n' in printed
    cli("adopt", f"127.0.0.1:{http}", "--name", "chcopy", "--write", "-c", str(config), "--catalog", str(catalog))
    cli("validate", "--skip-env", str(config))
    (store,) = load_config(config).stores
    assert (store.name, store.port, dict(store.options)) == ("chcopy", http, {"tcp_port": str(tcp)})
    for port in (http, tcp):
        assert inventory.registered_at(Service(Endpoint("127.0.0.1", port), Kind.STORE, "clickhouse"),
                                       (store,)) == "chcopy"
    # still critical (default has no password), but as the registered store: no unregistered-store finding
    doc = jsondoc.check(cli("discover", "-c", str(config), "-f", "json", "--catalog", str(catalog), code=3),
                        "discovery")
    found = only_store(doc)
    assert (found["registered"], found["also"]) == ("chcopy", [tcp])
    assert not any(f["check_id"] == UNREGISTERED for f in found["findings"])


def test_watch_opens_one_exposure_and_one_incident(tmp_path: Path, open_clickhouse: Server) -> None:
    config_path, catalog_path = setup(tmp_path, open_clickhouse)
    http, tcp = open_clickhouse.port, open_clickhouse.tcp_port  # type: ignore[attr-defined]
    config = load_config(config_path)
    with Catalog(catalog_path) as catalog:
        started = datetime.now(UTC).isoformat(timespec="microseconds")
        run = discover(config, catalog=catalog)
        alerts = record_sweep(catalog, run, started, [], [])
        address = f"127.0.0.1:{http}"
        assert [(a.event, a.store) for a in alerts] == [("discovered", address)]
        assert [e.store for e in catalog.exposures() if e.closed_at is None] == [address]
        (incident,) = catalog.incidents()
        assert incident["stores"] == [address]
        # what incident scope reads: the HTTP port, the native port as its tcp_port
        store = found_stores(catalog, incident["stores"], {})[address]
        assert (store.port, store.options["tcp_port"]) == (http, str(tcp))


def clickhouse_query(server: Server, query: str) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/", data=query.encode(),
                                     headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": ""})
    urllib.request.urlopen(request, timeout=10).read()


def test_a_copy_in_the_folded_store_is_linked_to_its_source(tmp_path: Path, open_clickhouse: Server,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3
    import uuid

    from piiguard.discovery.fingerprints import build
    from piiguard.scanner import scan

    key = "fold-e2e-key-0123456789abcdef"
    ids = [str(uuid.UUID(int=i + 1, version=4)) for i in range(100)]
    source = tmp_path / "prod.db"
    db = sqlite3.connect(source)
    db.execute("CREATE TABLE customers (customer_id TEXT PRIMARY KEY, email TEXT)")
    db.executemany("INSERT INTO customers VALUES (?, ?)", [(c, f"person.{i}@shop-example.org")
                                                             for i, c in enumerate(ids)])
    db.commit()
    db.close()
    config_path, catalog_path = setup(tmp_path, open_clickhouse)
    config_path.write_text(config_path.read_text().replace(
        "stores: []", f"stores:\n  - name: prod\n    engine: sqlite\n    path: {source}") + "  key_env: PIIGUARD_FOLD_KEY\n")
    monkeypatch.setenv("PIIGUARD_FOLD_KEY", key)
    clickhouse_query(open_clickhouse, "CREATE TABLE default.fold_copy (ref String, member_email String) ENGINE = Memory")
    try:
        clickhouse_query(open_clickhouse, "INSERT INTO default.fold_copy VALUES " + ", ".join(
            f"('{ids[i]}', 'person.{i}@shop-example.org')" for i in range(10, 40)))
        config = load_config(config_path)
        with Catalog(catalog_path) as catalog:
            scan(list(config.stores), config=config, catalog=catalog)
            assert build(config, catalog, key.encode())
            run = discover(config, catalog=catalog)
        (found,) = run.stores
        assert found.also == (open_clickhouse.tcp_port,) and not run.problems  # type: ignore[attr-defined]
        assert {(link.source_store, link.source_collection) for link in found.links if "fold_copy" in link.collection} \
            == {("prod", "customers")}
    finally:
        clickhouse_query(open_clickhouse, "DROP TABLE default.fold_copy")
