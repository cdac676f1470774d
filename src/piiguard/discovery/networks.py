"""The allow-list: which address ranges a sweep may touch, and how many probes it would send.

A sweep is traffic to machines, and traffic to machines the operator does not own is an attack, so
nothing is swept that ``discovery.networks`` in piiguard.yaml does not list. The configuration
already refuses a public range that is not marked ``public: true``; here every requested range must
lie inside one listed range, and a sweep of more than ``max_addresses`` addresses (65,536 unless the
operator says otherwise) is refused, because a typo (``/8`` for ``/24``) should cost a message, not
sixteen million probes.

Ranges are merged before they are counted (``10.0.0.0/25`` and ``10.0.0.0/24`` are 254 addresses,
not 380). In an IPv4 range larger than /31 the network and broadcast addresses of each merged range
are skipped (nothing listens there); a /31 or /32 is swept whole, and IPv6 ranges are swept whole.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence

from piiguard.discovery import addresses
from piiguard.discovery.settings import MAX_ADDRESSES, AllowedNetwork, DiscoverySettings
from piiguard.errors import UsageError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
__all__ = ["MAX_ADDRESSES", "Addresses", "covers", "hosts", "merge", "size", "targets"]
ALLOW_HINT = "add it to discovery.networks in piiguard.yaml"
NO_LIST_HINT = "list the ranges you own in piiguard.yaml, e.g. discovery: {networks: [10.20.0.0/16]}"


def targets(requested: Sequence[str], settings: DiscoverySettings, *, max_addresses: int | None = None
            ) -> list[Network]:
    """The ranges to sweep: ``requested`` (default: every allowed network), each inside an allowed
    network; more than ``max_addresses`` (default: ``discovery.max_addresses``) in all is refused.
    Raises UsageError naming the range."""
    allowed = settings.networks
    if max_addresses is None:
        max_addresses = settings.max_addresses
    if not allowed:
        raise UsageError("no network may be swept: discovery.networks (the allow-list) is empty or missing",
                         hint=NO_LIST_HINT)
    if max_addresses < 1:
        raise UsageError(f"--max-addresses {max_addresses} allows nothing", hint="give a number of 1 or more")
    wanted = [_parse(text) for text in requested] if requested else [a.network for a in allowed]
    for net in wanted:
        _check_allowed(net, allowed)
    merged = merge(wanted)
    count = size(merged)
    if count > max_addresses:
        ranges = ", ".join(str(n) for n in merged[:4]) + (", …" if len(merged) > 4 else "")
        raise UsageError(f"{ranges}: {count:,} addresses to sweep, more than the {max_addresses:,} allowed "
                         "without saying so (discovery.max_addresses, or discover's --max-addresses)",
                         hint=f"sweep a smaller range, or set discovery.max_addresses: {count} in piiguard.yaml "
                              f"(or pass --max-addresses {count} to discover) if you mean it")
    return merged


def _parse(text: str) -> Network:
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
        meant = addresses.host_bits(text)
    except ValueError:
        raise UsageError(f"{text[:60]!r} is not an address range",
                         hint="write a range as CIDR (10.20.0.0/24) or a single address (10.20.0.5)") from None
    if meant is not None:
        raise UsageError(f"{text[:60]!r} has host bits set: it would sweep all of {meant}",
                         hint=f"write {meant} if you mean it, or the single address without a prefix")
    return net


def _check_allowed(net: Network, allowed: Sequence[AllowedNetwork]) -> None:
    inside = [a for a in allowed if a.network.version == net.version and net.subnet_of(a.network)]  # type: ignore[arg-type]
    listed = ", ".join(str(a.network) for a in allowed)
    if (kind := addresses.embedding(net)) is not None:
        # Checked first, on the request and on every listed range: settings built in code skip the
        # configuration's refusal, and ::ffff:127.0.0.1 is 127.0.0.1 — swept once, by its IPv4 form.
        raise UsageError(f"{net} overlaps the {kind} IPv6 range, which reaches IPv4 hosts",
                         hint=addresses.embedding_hint(net))
    inside = [a for a in inside if addresses.embedding(a.network) is None]
    if not inside:
        raise UsageError(f"{net} is not inside the allow-list (discovery.networks: {listed})", hint=ALLOW_HINT)
    if not addresses.is_private(net) and not any(a.public for a in inside):
        # The configuration refuses such a listing already; this holds for settings built in code too.
        raise UsageError(f"{net} holds public addresses and no listed range that holds it says public: true "
                         f"(discovery.networks: {listed})",
                         hint=f"if you own it, list it as {{network: {net}, public: true}} in discovery.networks")


def merge(networks: Sequence[Network]) -> list[Network]:
    """Overlapping and adjacent ranges merged, IPv4 first, each family in address order."""
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]


def _bounds(net: Network) -> tuple[int, int]:
    """First and last address (as integers) swept in one merged range."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4 and net.prefixlen < 31:
        first, last = first + 1, last - 1
    return first, last


def hosts(networks: Sequence[Network]) -> Iterator[str]:
    """Every address to probe, once (overlapping ranges are merged)."""
    for net in merge(networks):
        first, last = _bounds(net)
        make = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
        for value in range(first, last + 1):
            yield str(make(value))


def size(networks: Sequence[Network]) -> int:
    """How many addresses ``hosts`` yields."""
    total = 0
    for net in merge(networks):
        first, last = _bounds(net)
        total += last - first + 1
    return total


def covers(nets: Sequence[Network], host: str) -> bool:
    """``host`` is one of the addresses ``hosts(nets)`` yields (without enumerating them)."""
    try:
        value = ipaddress.ip_address(host)
    except ValueError:
        return False
    for net in merge(nets):
        if net.version == value.version:
            first, last = _bounds(net)
            if first <= int(value) <= last:
                return True
    return False


class Addresses:
    """The addresses of merged ranges, iterable again and again without being held: a sweep goes
    through them once per port, and a /12 held as strings is hundreds of megabytes."""

    def __init__(self, nets: Sequence[Network]) -> None:
        self.nets = merge(nets)
        self.count = size(self.nets)

    def __iter__(self) -> Iterator[str]:
        return hosts(self.nets)
