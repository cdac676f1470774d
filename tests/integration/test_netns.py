"""The company network itself (tests/netns.py): its servers answer from the scanner namespace on the
namespaces' own addresses, and a packet to an address outside the test range is counted and dropped."""

from __future__ import annotations

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
