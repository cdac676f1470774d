"""The allow-list: which address ranges a sweep may touch, and how many probes it would send."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence

from piiguard.discovery.settings import DiscoverySettings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ADDRESSES = 65_536


def targets(requested: Sequence[str], settings: DiscoverySettings, *, max_addresses: int = MAX_ADDRESSES
            ) -> list[Network]:
    """The ranges to sweep: ``requested`` (default: every allowed network), each inside an allowed
    network; more than ``max_addresses`` in all is refused. Raises UsageError naming the range."""
    raise NotImplementedError


def hosts(networks: Sequence[Network]) -> Iterator[str]:
    """Every address to probe, once (overlapping ranges are merged)."""
    raise NotImplementedError


def size(networks: Sequence[Network]) -> int:
    """How many addresses ``hosts`` yields."""
    raise NotImplementedError
