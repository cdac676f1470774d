"""`discover` does not call a range clean when it could not probe it (fx8, defect 1).

A connect this machine refuses at once (a link-local IPv6 address without an interface scope: EINVAL)
sent nothing, and a port that stayed silent within the timeout was not identified: both are problems
naming the range or address, and the run exits 1 ("could not be decided"), never 0.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsondoc
import pytest
from servers import free_port

from piiguard.discovery import sweep


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "piiguard", "discover", *args], capture_output=True, text=True,
                          timeout=120)


def _ipv6() -> bool:
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6(), reason="IPv6 is disabled on this machine")


@needs_ipv6
def test_link_local_connects_are_unsent_not_closed() -> None:
    closed = free_port()
    got = sweep.sweep(["fe80::1", "fe80::2", "127.0.0.1"], [closed, closed + 1 if closed < 65535 else 1],
                      rate=1000, concurrency=8, timeout=0.5)
    assert got.unsent == 4 and got.probes == 2  # loopback's refused ports were sent; link-local ones never left
    assert {h for h, _, _ in got.unsent_hosts} == {"fe80::1", "fe80::2"}
    assert all(n == 2 for _, n, _ in got.unsent_hosts)


@needs_ipv6
def test_a_link_local_range_that_could_not_be_probed_exits_1(tmp_path: Path) -> None:
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text("discovery:\n  networks: [fe80::/10]\n  ports: [5432]\n")
    got = cli("-c", str(cfg), "-f", "json", "--catalog", str(tmp_path / "c.db"), "fe80::/126")
    assert got.returncode == 1, got.stderr
    doc = jsondoc.check(got.stdout, "discovery")
    assert doc["probes"] == 0
    (problem,) = doc["problems"]
    assert problem["where"] == "fe80::/126" and "could not be sent" in problem["message"]
    assert "interface scope" in problem["hint"]
    table = cli("-c", str(cfg), "--catalog", str(tmp_path / "c.db"), "fe80::/126")
    assert table.returncode == 1 and "fe80::/126" in table.stdout


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A real listener on loopback that completes the handshake (the kernel does) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def test_a_port_silent_within_the_timeout_is_undecided_and_exits_1(tmp_path: Path, silent_port: int) -> None:
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(f"discovery:\n  networks: [127.0.0.1/32]\n  ports: [{silent_port}]\n  timeout: 0.05\n")
    got = cli("-c", str(cfg), "-f", "json", "--catalog", str(tmp_path / "c.db"))
    assert got.returncode == 1, got.stderr
    doc = jsondoc.check(got.stdout, "discovery")
    assert [o["evidence"].split(":")[0] for o in doc["others"]] == ["silent"]
    (problem,) = doc["problems"]
    assert problem["where"] == f"127.0.0.1:{silent_port}" and "silent" in problem["message"]
    assert "discovery.timeout" in problem["hint"]
