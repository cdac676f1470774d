"""The connect sweep alone: a /22 of loopback addresses (127.78.0.0/22, all this machine) with 20
listeners on default engine ports, swept over the default port list — beside a plain sequential
``socket.create_connection`` loop over a subset and ``nmap -sT`` (connect scan) over the whole range,
in the same run.

    PYTHONPATH=src python bench/sweep.py [--rate 100000] [--concurrency 512]

Printed, never asserted. Loopback answers a closed port with a reset at once, so this measures the
sweep's own cost per probe; on a real network the timeout and the rate cap dominate.
"""

from __future__ import annotations

import argparse
import ipaddress
import resource
import shutil
import socket
import subprocess
import time

from piiguard.discovery import networks, sweep
from piiguard.discovery.settings import DEFAULT_PORTS

NET = ipaddress.ip_network("127.78.0.0/22")


def listeners(count: int) -> list[socket.socket]:
    out = []
    hosts = list(networks.hosts([NET]))
    for i in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((hosts[(i * 37) % len(hosts)], DEFAULT_PORTS[i % len(DEFAULT_PORTS)]))
        s.listen(128)
        out.append(s)
    return out


def sequential(hosts: list[str], ports: tuple[int, ...], timeout: float) -> tuple[int, int, float]:
    started, found = time.perf_counter(), 0
    for port in ports:
        for host in hosts:
            try:
                socket.create_connection((host, port), timeout=timeout).close()
                found += 1
            except OSError:
                pass
    return len(hosts) * len(ports), found, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100_000)
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--listeners", type=int, default=20)
    args = parser.parse_args()
    keep = listeners(args.listeners)
    hosts = list(networks.hosts([NET]))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(f"range {NET}: {len(hosts)} addresses x {len(DEFAULT_PORTS)} ports = {len(hosts) * len(DEFAULT_PORTS):,} "
          f"probes, {len(keep)} listeners; RLIMIT_NOFILE {soft} -> concurrency cap "
          f"{sweep.concurrency_cap(args.concurrency)}")
    for rate, concurrency in ((args.rate, args.concurrency), (2000.0, 256)):
        result = sweep.sweep(hosts, DEFAULT_PORTS, rate=rate, concurrency=concurrency, timeout=1.0)
        print(f"sweep  rate cap {rate:>8,.0f}/s, concurrency {concurrency:>4}: {result.probes:,} probes in "
              f"{result.seconds:6.2f} s = {result.probes / result.seconds:8,.0f} probes/s, {len(result.open)} open, "
              f"{len(result.tarpits)} tarpits, {result.unsent} unsent")
    subset = hosts[:100]
    probes, found, seconds = sequential(subset, DEFAULT_PORTS, 1.0)
    print(f"baseline sequential create_connection, {len(subset)} hosts: {probes:,} probes in {seconds:6.2f} s = "
          f"{probes / seconds:8,.0f} probes/s, {found} open")
    if shutil.which("nmap"):  # the Debian package; -sT is nmap's connect scan, the same kind of probe
        started = time.perf_counter()
        got = subprocess.run(["nmap", "-sT", "-n", "-Pn", "-T4", "--open", "-oG", "-", "-p",
                              ",".join(map(str, DEFAULT_PORTS)), str(NET)], capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
        probes = NET.num_addresses * len(DEFAULT_PORTS)
        print(f"baseline nmap -sT -T4, whole range: {probes:,} probes in {seconds:6.2f} s = "
              f"{probes / seconds:8,.0f} probes/s, {got.stdout.count('/open/')} open")
    # Silent ports (a full accept queue drops SYNs, as a filtering firewall does): each costs the timeout.
    silent_hosts = [f"127.78.3.{i}" for i in range(1, 21)]
    first = socket.socket()
    first.bind((silent_hosts[0], 0))
    port = first.getsockname()[1]
    first.listen(0)
    quiet = [first]
    for host in silent_hosts[1:]:
        s = socket.socket()
        s.bind((host, port))
        s.listen(0)
        quiet.append(s)
    quiet += [socket.create_connection((h, port), timeout=1) for h in silent_hosts]  # fill each queue
    result = sweep.sweep(silent_hosts, (port,), rate=args.rate, concurrency=args.concurrency, timeout=0.5)
    print(f"silent: sweep, {len(silent_hosts)} silent ports, timeout 0.5 s: {result.seconds:6.2f} s, "
          f"{len(result.open)} open")
    probes, found, seconds = sequential(silent_hosts, (port,), 0.5)
    print(f"silent: baseline sequential create_connection, same ports: {seconds:6.2f} s, {found} open")
    for s in keep + quiet:
        s.close()


if __name__ == "__main__":
    main()
