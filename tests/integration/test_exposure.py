"""Network exposure, tested for real from a second network namespace on this machine.

Two namespaces joined by a veth pair: ``srv`` (10.231.N.1) runs a real Redis, ``out`` (10.231.N.2) is
the vantage point outside the store's allowed networks. Nothing leaves this machine: both addresses
exist only inside namespaces this test creates and deletes.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from servers import PASSWORD, free_port, missing

from piiguard.checker import check_store
from piiguard.model import Status, Store


@dataclass
class Pair:
    srv: str
    out: str
    srv_ip: str
    out_ip: str


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture(scope="module")
def namespaces() -> Iterator[Pair]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        missing("root and iproute2 (ip netns) for exposure tests")
    n = random.randint(1, 250)
    tag = f"{os.getpid() % 10000}"
    pair = Pair(f"pg-srv-{tag}", f"pg-out-{tag}", f"10.231.{n}.1", f"10.231.{n}.2")
    veth_a, veth_b = f"pga{tag}", f"pgb{tag}"
    try:
        sh("ip", "netns", "add", pair.srv)
        sh("ip", "netns", "add", pair.out)
        sh("ip", "link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        sh("ip", "link", "set", veth_a, "netns", pair.srv)
        sh("ip", "link", "set", veth_b, "netns", pair.out)
        for ns, dev, ip in ((pair.srv, veth_a, pair.srv_ip), (pair.out, veth_b, pair.out_ip)):
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/30", "dev", dev)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield pair
    finally:
        for ns in (pair.srv, pair.out):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def redis_in(ns: str, bind: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "redis-server", "--port", str(port), "--bind", bind,
                             "--save", "", "--requirepass", PASSWORD, "--protected-mode", "yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        ping = subprocess.run(["ip", "netns", "exec", ns, "redis-cli", "-h", bind, "-p", str(port), "--no-auth-warning",
                               "-a", PASSWORD, "PING"], capture_output=True, text=True)
        if ping.stdout.strip() == "PONG":
            return proc, port
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("Redis did not start in the namespace")


def exposure(store: Store) -> tuple[Status, str]:
    (finding,) = check_store(store, timeout=2, only=["network.exposed"])
    return finding.status, finding.evidence


def test_store_bound_to_a_reachable_address_is_exposed(namespaces: Pair) -> None:
    proc, port = redis_in(namespaces.srv, namespaces.srv_ip)
    try:
        store = Store("cache", "redis", host=namespaces.srv_ip, port=port, allowed_networks=("127.0.0.0/8",),
                      probe_from=(namespaces.out,))
        status, evidence = exposure(store)
        assert status is Status.FAIL and namespaces.out in evidence and namespaces.out_ip in evidence
        allowed = Store("cache", "redis", host=namespaces.srv_ip, port=port,
                        allowed_networks=(f"{namespaces.out_ip}/32",), probe_from=(namespaces.out,))
        assert exposure(allowed)[0] is Status.PASS  # the vantage is inside the allowed networks: proves nothing
    finally:
        proc.kill()
        proc.wait()


def test_same_server_bound_to_loopback_only_passes(namespaces: Pair) -> None:
    proc, port = redis_in(namespaces.srv, "127.0.0.1")
    try:
        store = Store("cache", "redis", host=namespaces.srv_ip, port=port, allowed_networks=("127.0.0.0/8",),
                      probe_from=(namespaces.out,))
        status, evidence = exposure(store)
        assert status is Status.PASS and "refused or ignored" in evidence
    finally:
        proc.kill()
        proc.wait()


def test_a_missing_vantage_is_an_error_not_a_pass() -> None:
    store = Store("cache", "redis", host="127.0.0.1", port=free_port(), allowed_networks=("10.0.0.0/8",),
                  probe_from=("piiguard-no-such-namespace",))
    status, evidence = exposure(store)
    assert status is Status.ERROR and "network namespace" in evidence
