"""Network exposure: can the store be reached from outside the networks allowed to reach it?

This is the attacker's view that settings alone cannot give: a firewall rule, a security group or a
bind address may all look right and the port still be open. The probe runs from a *vantage point*
outside the store's ``allowed_networks`` — here, a Linux network namespace on this host named in the
store's ``probe_from`` (``ip netns exec NAME …``, which needs root) — and tries a TCP connection: it
sends nothing. A vantage whose own addresses fall inside the allowed networks proves nothing and is
skipped.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys

from piiguard.checks.base import Check, Outcome, Target, checks, failed, passed
from piiguard.errors import StoreError
from piiguard.model import Severity, Store, Vantage

# Runs inside the namespace: connect, send nothing, report open (0) / refused (1) / timeout (2).
PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
except socket.timeout:
    sys.exit(2)
except OSError:
    sys.exit(1)
"""


class VantageError(StoreError):
    """A vantage point could not be used (no such namespace, no permission)."""


def namespace_addresses(store: str, netns: str,
                        timeout: float) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    run = subprocess.run(["ip", "netns", "exec", netns, "ip", "-o", "addr", "show"], capture_output=True,
                         text=True, timeout=timeout + 5)
    if run.returncode != 0:
        raise VantageError(store, f"cannot enter the network namespace {netns}",
                           hint="it must exist (ip netns add) and piiguard must run as root to enter it")
    out = []
    for line in run.stdout.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[2] in ("inet", "inet6"):
            iface = ipaddress.ip_interface(fields[3])
            if not iface.ip.is_loopback and not iface.ip.is_link_local:
                out.append(iface)
    return out


def reachable(netns: str, host: str, port: int, timeout: float) -> bool:
    run = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", PROBE, host, str(port), str(timeout)],
                         capture_output=True, timeout=timeout + 10)
    return run.returncode == 0


@checks.register("network.exposed")
class Exposed(Check[Target]):
    """Reachable from outside its allowed networks.

    Risk: whatever the store's own settings, anyone on a network that reaches the port can try them —
    the motivating leak was a store the internet could reach. Proven here by connecting from a vantage
    point outside ``allowed_networks`` (``probe_from``); nothing is sent.
    Fix: firewall or security-group rules that admit only the allowed networks; bind to them.
    """

    engine = "*"
    severity, vantage = Severity.HIGH, Vantage.OUTSIDE
    exposes = True

    @classmethod
    def applies(cls, store: Store) -> bool:
        return bool(store.allowed_networks and store.probe_from)

    def run(self, target: Target) -> Outcome:
        store = target.store
        allowed = [ipaddress.ip_network(n, strict=False) for n in store.allowed_networks]
        host, port = store.host or "localhost", store.port or 0
        outside, skipped = [], []
        for netns in store.probe_from:
            addresses = namespace_addresses(store.name, netns, target.timeout)
            if addresses and all(any(a.ip in net for net in allowed) for a in addresses):
                skipped.append(netns)
                continue
            outside.append(netns)
            if reachable(netns, host, port, target.timeout):
                where = ", ".join(str(a.ip) for a in addresses) or "no address"
                return failed(f"{host}:{port} accepted a connection from {netns} ({where}), outside "
                              f"{', '.join(store.allowed_networks)}")
        if not outside:
            return passed(f"no vantage outside the allowed networks ({', '.join(skipped)} are inside them)")
        return passed(f"{host}:{port} refused or ignored connections from {', '.join(outside)}")
