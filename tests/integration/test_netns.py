"""The company network itself (tests/netns.py): its servers answer from the scanner namespace on the
namespaces' own addresses, and a packet to an address outside the test range is counted and dropped."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
from pathlib import Path

import netns
import psycopg
import pytest
from netns import company_network, inside
from servers import PASSWORD


def test_servers_answer_from_the_scanner(tmp_path: Path) -> None:
    import clickhouse_driver
    import redis

    with company_network() as net:
        netns.start_postgres_in(net, "prod")
        netns.start_clickhouse_open(net, "analytics")
        netns.start_banner(net, "analytics", 3306)
        netns.start_redis_auth(net, "cache", PASSWORD)
        netns.start_http(net, "cache", 9200, tmp_path)
        with inside(net.ns("scanner")):
            with psycopg.connect(host=net.ip("prod"), port=5432, user="postgres", password=PASSWORD,
                                 dbname="postgres", connect_timeout=5) as pg:
                assert pg.execute("select inet_server_addr()::text").fetchone() == (f"{net.ip('prod')}/32",)
            ch = clickhouse_driver.Client(host=net.ip("analytics"), port=9000, connect_timeout=5)
            assert ch.execute("SELECT 1") == [(1,)]  # open: the default user, no password
            client = redis.Redis(host=net.ip("cache"), port=6379, socket_timeout=5)
            with pytest.raises(redis.AuthenticationError):
                client.ping()  # requirepass: a store with auth
            assert redis.Redis(host=net.ip("cache"), port=6379, password=PASSWORD).ping()
            with socket.create_connection((net.ip("analytics"), 3306), timeout=5) as s:
                assert s.recv(64).startswith(b"SSH-2.0-")
            with socket.create_connection((net.ip("cache"), 9200), timeout=5) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                assert s.recv(64).startswith(b"HTTP/1.0 200")
            # the root namespace's loopback servers are not here: the scanner's 127.0.0.1 is its own
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        assert net.no_route_out() == []
        assert net.isolated() == []
        assert net.escaped() == 0


def test_a_packet_outside_the_range_is_counted_and_dropped() -> None:
    with company_network(("scanner", "prod")) as net:
        # no route: the kernel refuses before any packet exists
        with inside(net.ns("scanner")), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, \
                pytest.raises(OSError):
            s.sendto(b"x", ("8.8.8.8", 53))
        assert net.escaped() == 0
        # give the scanner a route out (as a misconfigured test might): the guard counts and drops it
        net.run("scanner", "ip", "route", "add", "198.51.100.0/24", "dev", "eth0")
        before = _bridge_rx(net)
        with inside(net.ns("scanner")), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(3):
                with pytest.raises(OSError):  # EPERM: dropped by the output chain
                    s.sendto(b"x", ("198.51.100.7", 53))
        assert net.escaped() == 3
        assert _bridge_rx(net) - before < 3  # none of them reached the bridge (ARP aside, none exists)
        net.run("scanner", "ip", "route", "del", "198.51.100.0/24")
        assert net.no_route_out() == []


def _bridge_rx(net: netns.Network) -> int:
    out = subprocess.run(["ip", "netns", "exec", net.bridge_ns, "cat", "/sys/class/net/p0/statistics/rx_packets"],
                         capture_output=True, text=True, check=True).stdout
    return int(out)


def test_every_destination_outside_the_range_is_counted_and_dropped() -> None:
    """The class, not one example: with routes that cover all of IPv4 (as a default route would), a
    datagram to any address outside the test range and loopback is counted once and dropped, and one
    inside the range is not counted."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    with company_network(("scanner", "prod")) as net:
        for half in ("0.0.0.0/1", "128.0.0.0/1"):
            net.run("scanner", "ip", "route", "add", half, "dev", "eth0")
        outside = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address).filter(
            lambda a: a not in net.prefix and not a.is_loopback and not a.is_multicast and not a.is_unspecified
            and a not in ipaddress.IPv4Network("0.0.0.0/8") and a < ipaddress.IPv4Address("240.0.0.0"))

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(outside)
        def dropped(address: ipaddress.IPv4Address) -> None:
            before = net.escaped()
            with inside(net.ns("scanner")), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, \
                    pytest.raises(PermissionError):
                s.sendto(b"x", (str(address), 9))
            assert net.escaped() == before + 1, str(address)

        dropped()
        before = net.escaped()
        with inside(net.ns("scanner")), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", (net.ip("prod"), 9))  # inside the range: allowed, not counted
        assert net.escaped() == before
        assert net.no_route_out()  # the proof notices routes like these …
        for half in ("0.0.0.0/1", "128.0.0.0/1"):
            net.run("scanner", "ip", "route", "del", half)
        assert net.no_route_out() == []  # … and their removal


def test_teardown_leaves_nothing_when_the_test_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="the test failed"), company_network(("scanner", "prod")) as net:
        proc = netns.start_banner(net, "prod", 2222)
        names = [h.ns for h in net.hosts.values()] + [net.bridge_ns]
        raise RuntimeError("the test failed")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [n for n in names if n in listed.split()]
    assert proc.poll() is not None  # the server inside was killed with its namespace


def test_inside_restores_the_thread_namespace_on_error() -> None:
    own = os.readlink("/proc/thread-self/ns/net")
    with company_network(("scanner",)) as net:
        with pytest.raises(ZeroDivisionError), inside(net.ns("scanner")):
            assert os.readlink("/proc/thread-self/ns/net") != own
            1 / 0  # noqa: B018
        assert os.readlink("/proc/thread-self/ns/net") == own


def test_the_range_avoids_what_the_host_uses() -> None:
    taken = [ipaddress.IPv4Network(f"10.{100 + i}.0.0/16") for i in range(0, 150, 2)]
    for pid in range(0, 300, 7):
        got = netns.test_prefix(pid, taken)
        assert got.is_private and got.prefixlen == 16 and not any(got.overlaps(t) for t in taken)
    assert not any(netns.test_prefix().overlaps(r) for r in netns.host_ranges())


def test_the_hostile_peers_behave_as_named() -> None:
    """The tarpit accepts any port; the closer hangs up after the first byte; the hostile banner is sent
    byte for byte (escapes, NUL and all)."""
    with company_network(("scanner", "dmz", "cache")) as net:
        netns.start_tarpit(net, "dmz")
        netns.start_closer(net, "cache", 5432)
        netns.start_banner(net, "cache", 5433, netns.HOSTILE_BANNER)
        with inside(net.ns("scanner")):
            for port in (1, 5432, 27017, 65535):
                socket.create_connection((net.ip("dmz"), port), timeout=5).close()
            with socket.create_connection((net.ip("cache"), 5432), timeout=5) as s:
                s.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")  # PostgreSQL's SSLRequest
                with contextlib.suppress(ConnectionResetError):  # reset: the rest of the request unread
                    assert s.recv(16) == b""  # closed mid-fingerprint
            with socket.create_connection((net.ip("cache"), 5433), timeout=5) as s:
                got = b""
                while len(got) < len(netns.HOSTILE_BANNER):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            assert got == netns.HOSTILE_BANNER.encode("latin-1")
        assert net.escaped() == 0
