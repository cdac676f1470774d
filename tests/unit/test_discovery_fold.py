"""A ClickHouse found on its HTTP and its native port is one store (``run.fold``); a configured
ClickHouse is registered at both its ports; the adopted entry of a folded store sets ``tcp_port``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard import plugins
from piiguard.config import load_yaml, parse_config
from piiguard.discovery import inventory
from piiguard.discovery.base import Endpoint, Kind, Service
from piiguard.discovery.run import fold
from piiguard.model import Store


def http(host: str, port: int, version: str | None = None, scheme: str = "HTTP") -> Service:
    return Service(Endpoint(host, port), Kind.STORE, "clickhouse", "ClickHouse", version,
                   f"{scheme} /ping answered Ok. as ClickHouse's HTTP interface does")


def native(host: str, port: int, version: str | None = None) -> Service:
    return Service(Endpoint(host, port), Kind.STORE, "clickhouse", "ClickHouse", version,
                   "native protocol: answered the client Hello")


def test_the_http_and_native_port_of_one_host_are_one_store() -> None:
    found = [http("10.0.0.7", 8123, "18.16.1"), native("10.0.0.7", 9000, "18.16.1"),
             Service(Endpoint("10.0.0.7", 6379), Kind.STORE, "redis")]
    stores, also = fold(found, {})
    assert [s.endpoint for s in stores] == [Endpoint("10.0.0.7", 8123), Endpoint("10.0.0.7", 6379)]
    assert also == {Endpoint("10.0.0.7", 8123): (9000,)}


def test_a_native_only_clickhouse_stays_as_it_is() -> None:
    found = [native("10.0.0.7", 9000), http("10.0.0.8", 8123)]  # another host's HTTP port is another server
    assert fold(found, {}) == (found, {})


SERVERS = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["http", "https", "native"]),
                             st.sampled_from([None, "18.16.1", "23.8.1"]), st.sampled_from([None, "ch", "other"])),
                   max_size=8, unique_by=lambda t: t[:2])


@settings(max_examples=300, deadline=None)
@given(servers=SERVERS)
def test_only_an_unambiguous_pair_is_folded(servers: list[tuple[int, str, str | None, str | None]]) -> None:
    found, registered = [], {}
    for i, (host, kind, version, name) in enumerate(servers):
        address = f"10.0.0.{host}"
        s = native(address, 9000 + i, version) if kind == "native" else http(address, 8123 + i, version,
                                                                              kind.upper())
        found.append(s)
        registered[s.endpoint] = name
    stores, also = fold(found, registered)
    kept = {s.endpoint for s in stores}
    for host in {s.endpoint.host for s in found}:
        here = [s for s in found if s.endpoint.host == host]
        h = [s for s in here if not s.evidence.startswith("native")]
        n = [s for s in here if s.evidence.startswith("native")]
        pair = (len(h) == 1 and len(n) == 1 and h[0].evidence.startswith("HTTP ")
                and registered[h[0].endpoint] == registered[n[0].endpoint]
                and not (h[0].version and n[0].version and h[0].version != n[0].version))
        if pair:
            assert also[h[0].endpoint] == (n[0].endpoint.port,) and n[0].endpoint not in kept
        else:  # nothing of the host is folded or dropped
            assert all(s.endpoint in kept and s.endpoint not in also for s in here)
    assert [s for s in found if s.endpoint in kept] == stores  # the order is kept


def configured(*entries: dict[str, object]) -> tuple[Store, ...]:
    return parse_config({"stores": list(entries)}, schema=plugins.schema()).stores


def at(port: int, host: str = "127.0.0.1") -> Service:
    return Service(Endpoint(host, port), Kind.STORE, "clickhouse")


def test_a_clickhouse_without_tcp_port_is_registered_at_its_default_native_port() -> None:
    # ClickHouseTarget checks the native port 9000 when tcp_port is not set: the store is there too
    (plain,) = configured({"name": "ch", "engine": "clickhouse", "host": "127.0.0.1"})
    assert [inventory.registered_at(at(p), (plain,)) for p in (8123, 9000, 9001)] == ["ch", "ch", None]
    (moved,) = configured({"name": "ch", "engine": "clickhouse", "host": "127.0.0.1", "port": 18123,
                           "options": {"tcp_port": "19000"}})
    assert [inventory.registered_at(at(p), (moved,)) for p in (18123, 19000, 9000)] == ["ch", "ch", None]
    (pg,) = configured({"name": "pg", "engine": "postgres", "host": "127.0.0.1"})
    assert inventory.registered_at(Service(Endpoint("127.0.0.1", 9000), Kind.STORE, "clickhouse"), (pg,)) is None


def row(engine: str, port: int, also: list[int]) -> dict[str, object]:
    return {"host": "10.0.0.7", "port": port, "kind": "store", "engine": engine, "product": None, "version": None,
            "first_seen": "2026-12-02T04:00:00.000001+00:00", "also": also}


@settings(max_examples=100, deadline=None)
@given(port=st.integers(1, 65535), native_port=st.integers(1, 65535))
def test_the_entry_of_a_folded_clickhouse_sets_its_native_port(port: int, native_port: int) -> None:
    entry = inventory.adopt_entry(row("clickhouse", port, [native_port]), "chcopy")
    (store,) = parse_config(load_yaml("stores:\n" + entry, "entry"), schema=plugins.schema()).stores
    assert (store.port, dict(store.options)) == (port, {"tcp_port": str(native_port)})
    assert [inventory.registered_at(at(p, "10.0.0.7"), (store,)) for p in (port, native_port)] == ["chcopy", "chcopy"]
    # not folded: no options at all (the checks then use 9000, the default)
    assert "options" not in inventory.adopt_entry(row("clickhouse", port, []), "chcopy")
