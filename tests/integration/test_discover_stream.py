"""Big sweeps: addresses are streamed (a /12 is not held in memory before the first probe), known stores
in a sweep too big to list are still marked gone, and watch sweeps past 65,536 addresses when
discovery.max_addresses says so. Real sockets on loopback (all of 127.0.0.0/8 is this machine)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import tracemalloc
from pathlib import Path

import pytest

from piiguard.catalog import Catalog
from piiguard.config import parse_config
from piiguard.discovery import networks, sweep
from piiguard.discovery.base import Discovered, Endpoint, Kind, Service
from piiguard.errors import UsageError
from piiguard.watch.discovery import DiscoveryLoop, default_sweep


class Enough(Exception):
    pass


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_a_million_address_sweep_starts_probing_at_once_in_bounded_memory() -> None:
    nets = [ipaddress.ip_network("127.48.0.0/12")]
    addresses = networks.Addresses(nets)
    assert addresses.count == 2**20 - 2
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        raise Enough  # the first progress report: probing has begun; stop here

    tracemalloc.start()
    try:
        with pytest.raises(Enough):
            sweep.sweep(addresses, [closed_port()], count=addresses.count, rate=100_000, concurrency=64, timeout=0.2,
                        progress=progress)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen and seen[0][1] == addresses.count and 0 < seen[0][0] < addresses.count
    # A list of a million address strings alone is over 60 MB; streamed, the sweep holds a few workers' state.
    assert peak < 8 * 2**20, f"peak {peak:,} bytes"


def test_an_iterator_with_a_count_is_refused_rather_than_swept_for_one_port_only() -> None:
    with pytest.raises(ValueError, match="once per port"):
        sweep.sweep(iter(["127.0.0.1"]), [1, 2], count=1, rate=10, concurrency=1, timeout=0.1)


def test_known_stores_in_a_sweep_too_big_to_list_are_marked_gone(tmp_path: Path) -> None:
    def found(host: str, port: int) -> Discovered:
        return Discovered(Service(Endpoint(host, port), Kind.STORE, "redis", "Redis", None, "PING"))

    nets = [ipaddress.ip_network("10.0.0.0/12")]
    ports = frozenset(range(5000, 5021))  # 1M addresses × 21 ports: far past anything listed
    rows = [found("10.1.2.3", 5001), found("10.1.2.4", 5002), found("10.99.0.1", 5001), found("10.1.2.5", 6379),
            found("10.15.255.255", 5001)]
    with Catalog(tmp_path / "c.db") as cat:
        cat.record_discovered(rows, at="t1")
        cat.record_discovered([rows[0]], at="t2",
                              swept=lambda ep: ep.port in ports and networks.covers(nets, ep.host))
        left = {(r["host"], r["port"]) for r in cat.discovered()}
    # Gone: 10.1.2.4:5002. Kept: the one found again, one outside the range, one on an unswept port, and
    # the /12's broadcast address (never probed).
    assert left == {("10.1.2.3", 5001), ("10.99.0.1", 5001), ("10.1.2.5", 6379), ("10.15.255.255", 5001)}


def test_discover_marks_gone_over_the_swept_networks_and_ports(tmp_path: Path) -> None:
    from piiguard.discovery.run import discover

    port = closed_port()
    cfg = parse_config({"discovery": {"networks": ["127.61.0.0/16"], "ports": [port], "rate": 100_000,
                                      "timeout": 0.2, "max_addresses": 70_000}})
    with Catalog(tmp_path / "c.db") as cat:
        cat.record_discovered([Discovered(Service(Endpoint("127.61.3.4", port), Kind.STORE, "redis")),
                               Discovered(Service(Endpoint("127.61.3.4", port + 1), Kind.STORE, "redis"))], at="t1")
        discover(cfg, ["127.61.3.0/24"], catalog=cat)
        assert [(r["host"], r["port"]) for r in cat.discovered()] == [("127.61.3.4", port + 1)]


@pytest.mark.slow  # a real sweep of 65,540 addresses (about 17 s): benchmark-sized
def test_watch_sweeps_past_65536_addresses_when_discovery_max_addresses_allows(tmp_path: Path) -> None:
    body = {"networks": ["127.62.0.0/16", "127.63.0.0/29"], "ports": [closed_port()], "every": "1h",
            "rate": 100_000, "concurrency": 256, "timeout": 0.2}
    with Catalog(tmp_path / "c.db") as cat:
        refused = DiscoveryLoop(parse_config({"discovery": body}), tmp_path / "c.db", [], threading.Event(),
                                sweep=default_sweep)
        with pytest.raises(UsageError) as caught:  # 65,540 addresses: over the default
            refused.once(cat)
        assert "discovery.max_addresses" in (caught.value.hint or "")
        loop = DiscoveryLoop(parse_config({"discovery": {**body, "max_addresses": 65_540}}), tmp_path / "c.db", [],
                             threading.Event(), sweep=default_sweep)
        loop.once(cat)
        assert loop.sweeps == 1
