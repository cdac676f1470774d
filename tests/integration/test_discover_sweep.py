"""The connect sweep against real listeners on loopback addresses (127.77.1.0/29 is all this machine).

Hosts: a tarpit that accepts every offered port, one that accepts 9 of 10 (a tarpit too), one that
accepts 8 of 10 (not a tarpit), one with two real listeners, a silent one (every port's accept queue
is full, so its SYNs are dropped and connects time out) and one where nothing listens (refused).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator

import pytest

from piiguard.discovery import networks, sweep
from piiguard.discovery.base import Endpoint
from piiguard.discovery.settings import AllowedNetwork, DiscoverySettings

TARPIT, NEAR_TARPIT, BUSY, TWO, SILENT, CLOSED = (f"127.77.1.{i}" for i in range(1, 7))


def listen(host: str, port: int = 0, backlog: int = 64) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.bind((host, port))
    s.listen(backlog)
    return s


@pytest.fixture(scope="module")
def lan() -> Iterator[tuple[list[int], list[socket.socket]]]:
    keep: list[socket.socket] = []
    ports: list[int] = []
    for _ in range(10):  # the tarpit's ports, picked free by the kernel, are the ports offered to every host
        s = listen(TARPIT)
        keep.append(s)
        ports.append(s.getsockname()[1])
    keep += [listen(NEAR_TARPIT, p) for p in ports[:9]]
    keep += [listen(BUSY, p) for p in ports[:8]]
    keep += [listen(TWO, ports[0]), listen(TWO, ports[3])]
    for p in ports:  # a full accept queue drops further SYNs: the host stays silent until the timeout
        s = listen(SILENT, p, backlog=0)
        filler = socket.create_connection((SILENT, p), timeout=1)
        keep += [s, filler]
    yield ports, keep
    for s in keep:
        s.close()


def targets() -> list[str]:
    cfg = DiscoverySettings(networks=(AllowedNetwork(ipaddress.ip_network("127.77.0.0/16")),))
    return list(networks.hosts(networks.targets(["127.77.1.0/29"], cfg)))


def test_open_ports_tarpits_silent_and_closed_hosts(lan: tuple[list[int], list[socket.socket]]) -> None:
    ports, _ = lan
    assert targets() == [TARPIT, NEAR_TARPIT, BUSY, TWO, SILENT, CLOSED]
    seen: list[tuple[int, int]] = []
    result = sweep.sweep(targets(), ports, rate=5000, concurrency=64, timeout=0.4,
                         progress=lambda done, total: seen.append((done, total)))
    assert result.tarpits == (TARPIT, NEAR_TARPIT)  # 10/10 and 9/10 of the offered ports: reported once each
    expected = {Endpoint(BUSY, p) for p in ports[:8]} | {Endpoint(TWO, ports[0]), Endpoint(TWO, ports[3])}
    assert set(result.open) == expected and len(result.open) == len(expected)  # no silent or closed port
    assert result.probes == 6 * 10 and result.unsent == 0
    assert seen[-1] == (60, 60) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_fewer_than_eight_ports_offered_never_makes_a_tarpit(lan: tuple[list[int], list[socket.socket]]) -> None:
    ports, _ = lan
    result = sweep.sweep([TARPIT, CLOSED], ports[:3], rate=5000, concurrency=8, timeout=0.4)
    assert result.tarpits == () and set(result.open) == {Endpoint(TARPIT, p) for p in ports[:3]}


def test_the_rate_cap_holds(lan: tuple[list[int], list[socket.socket]]) -> None:
    ports, _ = lan
    hosts = [f"127.77.2.{i}" for i in range(1, 31)]  # nothing listens: refused at once, only the cap slows it
    started = time.monotonic()
    result = sweep.sweep(hosts, ports, rate=500, concurrency=64, timeout=0.4)
    achieved = result.probes / (time.monotonic() - started)
    assert result.probes == 300 and result.open == ()
    assert achieved <= 500 * 1.15, f"{achieved:.0f} probes/s against a cap of 500"
    assert achieved >= 500 * 0.3, f"{achieved:.0f} probes/s: the cap is not what slows it this much"


def test_the_concurrency_cap_holds(lan: tuple[list[int], list[socket.socket]]) -> None:
    ports, _ = lan
    started = time.monotonic()
    result = sweep.sweep([SILENT], ports, rate=10_000, concurrency=4, timeout=0.3)
    elapsed = time.monotonic() - started
    assert result.open == () and result.probes == 10
    assert elapsed >= 3 * 0.3 * 0.95, f"10 silent ports 4 at a time took {elapsed:.2f} s: more than 4 in flight"


def test_ipv6_loopback_is_swept(lan: tuple[list[int], list[socket.socket]]) -> None:
    s = listen("::1")
    try:
        port = s.getsockname()[1]
        result = sweep.sweep(["::1"], [port], rate=100, concurrency=2, timeout=0.5)
        assert result.open == (Endpoint("::1", port),)
    finally:
        s.close()


def test_a_sweep_from_inside_an_event_loop_runs(lan: tuple[list[int], list[socket.socket]]) -> None:
    import asyncio

    ports, _ = lan

    async def inside() -> sweep.SweepResult:
        return sweep.sweep([TWO], ports, rate=5000, concurrency=8, timeout=0.4)

    assert set(asyncio.run(inside()).open) == {Endpoint(TWO, ports[0]), Endpoint(TWO, ports[3])}


@pytest.mark.parametrize(("wanted", "limit", "cap"), [(4096, 1024, 768), (10, 1024, 10), (256, 100, 36),
                                                      (256, 20000, 256), (4096, 4096, 3072), (5, 10, 1)])
def test_concurrency_stays_below_the_descriptor_limit(wanted: int, limit: int, cap: int) -> None:
    assert sweep.concurrency_cap(wanted, limit) == cap


@pytest.mark.parametrize("rate", [0.0, -5.0, float("nan")])
def test_a_rate_that_is_not_above_zero_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        sweep.sweep([CLOSED], [1], rate=rate, concurrency=1, timeout=0.1)


def test_out_of_descriptors_is_unsent_not_closed_and_the_cap_follows_the_limit(
        lan: tuple[list[int], list[socket.socket]]) -> None:
    """In a child process with a soft limit of 100 open files: the concurrency cap follows it; with every
    descriptor taken the sweep says it cannot start; with none left for probes, each is counted unsent
    (and logged), never reported as a closed port."""
    import subprocess
    import sys

    ports, _ = lan
    script = f"""
import logging, os, resource, socket
from piiguard.discovery import sweep
logging.basicConfig(level=logging.WARNING)
resource.setrlimit(resource.RLIMIT_NOFILE, (100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
print("cap", sweep.concurrency_cap(4096))
ok = sweep.sweep([{TWO!r}], {ports!r}, rate=5000, concurrency=4096, timeout=0.4)
print("free", len(ok.open), ok.probes, ok.unsent)
hog = []
try:
    while True:
        hog.append(socket.socket())
except OSError:
    pass
from piiguard.errors import PiiguardError
try:
    sweep.sweep([{TWO!r}], {ports[:2]!r}, rate=5000, concurrency=4, timeout=0.4)
except PiiguardError as exc:
    print("none", exc.message)
for s in hog[-3:]:  # room for the event loop (its selector and self-pipe), none for a probe
    s.close()
full = sweep.sweep([{TWO!r}], {ports[:2]!r}, rate=5000, concurrency=4, timeout=0.4)
print("full", len(full.open), full.probes, full.unsent)
"""
    got = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    lines = dict(line.split(" ", 1) for line in got.stdout.splitlines())
    assert lines["cap"] == "36"
    assert lines["free"] == "2 10 0"  # capped at 36 in flight, the sweep still finds both listeners
    assert lines["none"].startswith("the sweep could not start") and "RLIMIT_NOFILE 100" in lines["none"]
    assert lines["full"] == "0 0 2"  # nothing could be sent: 2 unsent, 0 probes, not "2 closed ports"
    assert "concurrency 4096 lowered to 36" in got.stderr and "2 probe(s) could not be sent" in got.stderr
