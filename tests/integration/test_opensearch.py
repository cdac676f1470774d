"""OpenSearch 2.19 (built from Maven Central, see tests/built_servers.py): a secured node with the real
security plugin passes every check; each insecure variant fails exactly its check(s); scanning finds
seeded PII."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from built_servers import OpenSearch, start_opensearch, stop_opensearch
from conftest import pg_connect
from helpers import assert_fails_exactly, engine_checks
from servers import PASSWORD, Server

from piiguard import synthetic
from piiguard.catalog import Catalog
from piiguard.checker import check_store
from piiguard.contain.service import Containor
from piiguard.masking.pipeline import plan_copy, run_copy
from piiguard.model import Status, Store
from piiguard.scanner import scan
from piiguard.watch.service import Watcher
from piiguard.watch.sinks import JsonLines

RESTARTED = {  # variants that need their own node (settings read at start)
    "hardened": {"secured": True},
    "plain": {"secured": False},
    "admin-admin": {"secured": True, "admin_password": "admin"},
    "http-plain": {"secured": True, "http_tls": False},
    "bind-all": {"secured": True, "network_host": "0.0.0.0"},
}


@pytest.fixture(scope="module")
def nodes() -> Iterator[dict[str, OpenSearch]]:
    with ThreadPoolExecutor(len(RESTARTED)) as pool:
        futures = {name: pool.submit(start_opensearch, **kw) for name, kw in RESTARTED.items()}
    started = {name: f.result() for name, f in futures.items() if f.exception() is None}
    failed = [f.exception() for f in futures.values() if f.exception() is not None]
    if failed:  # never leave the nodes that did start running
        for node in started.values():
            stop_opensearch(node)
        raise failed[0]  # type: ignore[misc]
    yield started
    for node in started.values():
        stop_opensearch(node)


def statuses(node: OpenSearch) -> dict[str, Status]:
    return {f.check: f.status for f in check_store(node.store(), timeout=5)}


def security_config(node: OpenSearch, **http: Any) -> None:
    config = node.json("GET", "/_plugins/_security/api/securityconfig")["config"]["dynamic"]
    config["http"].update(http)
    node.json("PUT", "/_plugins/_security/api/securityconfig/config", {"dynamic": config})


def map_anonymous_to_readall(node: OpenSearch, on: bool) -> None:
    roles = ["readall", "opendistro_security_anonymous_backendrole"] if on else ["readall"]
    node.json("PUT", "/_plugins/_security/api/rolesmapping/readall", {"backend_roles": roles})


def audit(node: OpenSearch, enabled: bool) -> None:
    config = node.json("GET", "/_plugins/_security/api/audit")["config"]
    config["enabled"] = enabled
    node.json("PUT", "/_plugins/_security/api/audit/config", config)


def restore(node: OpenSearch) -> None:
    security_config(node, anonymous_auth_enabled=False)
    map_anonymous_to_readall(node, False)
    audit(node, True)
    node.request("DELETE", "/read_me")


Variant = Callable[[OpenSearch], object]
LIVE: list[tuple[str, Variant, set[str]]] = [
    ("opensearch.anonymous-access", lambda n: (security_config(n, anonymous_auth_enabled=True),
                                               map_anonymous_to_readall(n, True)),
     {"opensearch.anonymous-access", "opensearch.anonymous-role"}),
    ("opensearch.anonymous-role", lambda n: security_config(n, anonymous_auth_enabled=True),
     {"opensearch.anonymous-role"}),
    ("opensearch.audit-off", lambda n: audit(n, False), {"opensearch.audit-off"}),
    ("opensearch.ransom-indices", lambda n: n.json("PUT", "/read_me", {}), {"opensearch.ransom-indices"}),
]
SEPARATE: list[tuple[str, str, set[str]]] = [
    ("opensearch.security-disabled", "plain", {"opensearch.security-disabled", "opensearch.anonymous-access",
                                               "opensearch.no-tls", "opensearch.audit-off"}),
    ("opensearch.default-credentials", "admin-admin", {"opensearch.default-credentials"}),
    ("opensearch.no-tls", "http-plain", {"opensearch.no-tls"}),
    ("opensearch.bind-public", "bind-all", {"opensearch.bind-public"}),
]


def test_hardened_node_passes_every_check(nodes: dict[str, OpenSearch]) -> None:
    restore(nodes["hardened"])
    got = statuses(nodes["hardened"])
    assert set(got) == engine_checks("opensearch")
    assert {c: s for c, s in got.items() if s is not Status.PASS} == {}


def test_every_check_has_an_insecure_variant() -> None:
    assert {v[0] for v in LIVE} | {v[0] for v in SEPARATE} == engine_checks("opensearch")


@pytest.mark.parametrize(("check", "apply", "expected"), LIVE, ids=[v[0] for v in LIVE])
def test_live_variant_fails_its_check(nodes: dict[str, OpenSearch], check: str, apply: Variant,
                                      expected: set[str]) -> None:
    node = nodes["hardened"]
    restore(node)
    try:
        apply(node)
        got = statuses(node)
    finally:
        restore(node)
    assert_fails_exactly(got, expected)


@pytest.mark.parametrize(("check", "node", "expected"), SEPARATE, ids=[v[0] for v in SEPARATE])
def test_configured_variant_fails_its_check(nodes: dict[str, OpenSearch], check: str, node: str,
                                            expected: set[str]) -> None:
    assert_fails_exactly(statuses(nodes[node]), expected)


def test_scan_finds_seeded_pii_in_documents(nodes: dict[str, OpenSearch]) -> None:
    node = nodes["hardened"]
    lines = []
    for i in range(300):
        lines.append({"index": {"_index": "customers", "_id": str(i)}})
        lines.append({"email": f"customer{i}@example.com", "profile": {"nickname": f"cam_fan_{i}"},
                      "devices": [{"serial": f"SN-{i:08d}", "mac": f"02:42:ac:11:{i // 256:02x}:{i % 256:02x}"}],
                      "last_ip": f"198.51.100.{i % 250}", "plan": "basic"})
    body = "\n".join(json.dumps(x) for x in lines) + "\n"
    status, _ = node.request("POST", "/_bulk?refresh=true", body.encode())
    assert status == 200
    result = scan([node.store()]).stores[0]
    assert result.problems == ()
    customers = next(c for c in result.collections if c.name == "customers")
    found = {f.field: f.pii_type for f in customers.pii_fields}
    assert found["email"] == "email"
    assert found["devices[].mac"] == "mac-address"
    assert found["last_ip"] == "ip-address"
    assert "plan" not in found
    assert result.subjects is not None and result.subjects.estimate == 300


def test_watch_alerts_and_contains_when_security_is_removed(nodes: dict[str, OpenSearch], tmp_path: Path) -> None:
    """The story's store: security switched off on a running cluster → alert, exposure window, and
    reads blocked on the PII index only; undo puts the cluster back as it was."""
    node = nodes["hardened"]
    restore(node)
    node.json("PUT", "/customers/_doc/1?refresh=true", {"email": "ann@example.com", "wifi": "HomeNet"})
    node.json("PUT", "/metrics/_doc/1?refresh=true", {"cpu": 0.5, "load": 1.25})
    store = node.store()
    out = io.StringIO()
    with Catalog(tmp_path / "c.db") as cat:
        scan([store], catalog=cat)
        holdings = Containor(cat).holdings(store.name)
        assert holdings is not None and "customers" in holdings and "metrics" not in holdings
        containor = Containor(cat, mode="auto", timeout=5)
        watcher = Watcher([store], cat, [JsonLines(out)], timeout=5, containor=containor)
        watcher.cycle()
        assert cat.exposures("search") == []
        security_config(node, anonymous_auth_enabled=True)  # the employee switches security off
        map_anonymous_to_readall(node, True)
        try:
            assert node.request("GET", "/customers/_search?size=0", auth=False)[0] == 200  # open
            watcher.cycle(inside=False)
            watcher.deliver()
            alerts = [json.loads(line) for line in out.getvalue().splitlines()]
            assert any(a["check"] == "opensearch.anonymous-access" and a["event"] == "opened" for a in alerts)
            assert "ann@example.com" not in out.getvalue()
            (window,) = cat.exposures("search")
            assert window.closed_at is None and "email" in window.pii_types
            (action,) = cat.containments("search")
            assert action["status"] == "verified", action
            assert node.request("GET", "/customers/_search?size=0", auth=False)[0] == 403  # blocked
            assert node.request("GET", "/metrics/_search?size=0", auth=False)[0] == 200  # untouched
            containor.undo(action["id"], store)
            assert node.request("GET", "/customers/_search?size=0")[0] == 200
        finally:
            restore(node)
            node.request("DELETE", "/customers")
            node.request("DELETE", "/metrics")


def test_masked_copy_into_an_index_behind_an_alias(nodes: dict[str, OpenSearch], postgres: Server,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = synthetic.rows(400, seed=3, columns=synthetic.COLUMNS[:6])
    with pg_connect(postgres) as conn:
        conn.execute("DROP DATABASE IF EXISTS os_copy")
        conn.execute("CREATE DATABASE os_copy")
    with pg_connect(postgres, "os_copy") as conn:
        conn.execute(f"CREATE TABLE people ({', '.join(f'{c} text' for c in data)})")
        with conn.cursor().copy(f"COPY people ({', '.join(data)}) FROM STDIN") as copy:
            for row in zip(*data.values(), strict=True):
                copy.write_row(row)
    monkeypatch.setenv("PIIGUARD_OS_PG", PASSWORD)
    source = Store("prod", "postgres", host="127.0.0.1", port=postgres.port, database="os_copy", user="postgres",
                   password_env="PIIGUARD_OS_PG")
    node = nodes["hardened"]
    restore(node)
    with Catalog(tmp_path / "c.db") as cat:
        for key in (b"first-key-0123456789", b"second-key-0123456789"):  # the second replaces the first
            plan = plan_copy(source, "people", node.store(), "people_masked")
            assert plan.blocking == ()
            assert run_copy(plan, key, cat, owner="bi", purpose="search", expires=date(2030, 1, 1)).rows == 400
    aliases = node.json("GET", "/_alias/people_masked")
    assert len(aliases) == 1 and next(iter(aliases)).startswith("people_masked-piiguard-")
    hits = node.json("GET", "/people_masked/_search?size=500")["hits"]["hits"]
    emails = {h["_source"]["email"] for h in hits}
    assert len(hits) == 400 and all(e.endswith("@pseudonym.invalid") for e in emails)
    assert not emails & set(data["email"])
    node.request("DELETE", "/people_masked-piiguard-*")


def test_audit_indices_as_incident_evidence(nodes: dict[str, OpenSearch], tmp_path: Path) -> None:
    """With successful requests audited, the security plugin's audit log names who read which index."""
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from piiguard.response.evidence import collect

    node = nodes["hardened"]
    restore(node)
    original = node.json("GET", "/_plugins/_security/api/audit")["config"]
    audited = {**original, "audit": {**original["audit"], "disabled_rest_categories": [],
                                     "disabled_transport_categories": []}}
    node.json("PUT", "/_plugins/_security/api/audit/config", audited)
    store = replace(node.store(), allowed_networks=("10.0.0.0/8",))  # so this host's reads count as unknown
    try:
        start = datetime.now(UTC) - timedelta(seconds=2)
        node.json("PUT", "/evidence_probe/_doc/1?refresh=true", {"email": "someone@example.com"})
        deadline = time.monotonic() + 20
        while True:  # the audit sink writes asynchronously
            node.json("GET", "/evidence_probe/_search")
            node.request("POST", "/security-auditlog-*/_refresh")
            # the reader here is admin from 127.0.0.1: piiguard's own identity, listed only with include_own
            found = collect(store, start, None, tmp_path, force=True, include_own=True)
            if "evidence_probe" in found.reads.get("127.0.0.1", []) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert found.trail and found.addresses.get("127.0.0.1") == "unknown"
        assert "evidence_probe" in found.reads["127.0.0.1"]
        assert found.sha256 and "someone@example.com" not in found.note
        own = collect(store, start, None, tmp_path, force=True)
        assert "evidence_probe" not in own.reads.get("127.0.0.1", []) and own.own > 0
    finally:
        node.json("PUT", "/_plugins/_security/api/audit/config", original)
        node.request("DELETE", "/evidence_probe")
