"""What a range of addresses reaches: the allow-list's judgement of "private", "public" and "IPv4 in
IPv6 clothing", used by the configuration (:mod:`.settings`) and by each sweep (:mod:`.networks`).

**Private** is an explicit list, not ``ipaddress``'s ``is_private``: that property looks only at a
range's first and last address (``0.0.0.0/1`` starts at 0.0.0.0 and ends at 127.255.255.255, both
"private", and holds 8.8.8.8), and it counts ranges as private that hold IPv4 Internet hosts
(``::ffff:0:0/96``). A range is private when every address in it lies in :data:`PRIVATE`: the ranges
an operator can own without owning public addresses — RFC 1918, loopback, link-local, shared (CGNAT)
space, ``0.0.0.0/8`` (Linux connects 0.0.0.0 to this host), IPv6 unique-local, link-local, ``::1``
and ``::``. Each of them is also not ``is_global`` (a test holds the list to that); the other
non-global ranges (documentation, benchmarking, reserved) are treated as public, which is the safe
side: they need ``public: true``.

**Embedding**: an IPv6 range that carries IPv4 addresses — IPv4-mapped ``::ffff:0:0/96`` (a socket
connects to the IPv4 address itself), IPv4-compatible ``::/96``, IPv4-translated ``::ffff:0:0:0/96``,
NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4 ``2002::/16`` and Teredo ``2001::/32`` — is
refused, with or without ``public: true``, in the configuration and in a request: write the IPv4
range itself. Judging it by the embedded IPv4 instead would have to know each translator's mapping
(Teredo's is obfuscated, NAT64's prefix is site-chosen); refusing is exact and costs nothing, since
each such address is reachable by its IPv4 form. A range that *contains* one (``::/64``,
``2000::/3``) is refused too. ``::`` and ``::1`` (inside ``::/96``) are kept: they are this host.
"""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PRIVATE: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16",
    "::/128", "::1/128", "fc00::/7", "fe80::/10"))

EMBEDDING: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple((ipaddress.IPv6Network(n), what) for n, what in (
    ("::ffff:0:0/96", "IPv4-mapped"), ("::/96", "IPv4-compatible"), ("::ffff:0:0:0/96", "IPv4-translated"),
    ("64:ff9b::/96", "NAT64"), ("64:ff9b:1::/48", "NAT64"), ("2002::/16", "6to4"), ("2001::/32", "Teredo")))
_PRIVATE_V4: tuple[Network, ...] = tuple(ipaddress.collapse_addresses(
    p for p in PRIVATE if isinstance(p, ipaddress.IPv4Network)))
_PRIVATE_V6: tuple[Network, ...] = tuple(ipaddress.collapse_addresses(
    p for p in PRIVATE if isinstance(p, ipaddress.IPv6Network)))
_THIS_HOST = ipaddress.IPv6Network("::/127")  # :: and ::1, inside ::/96 but not IPv4


def is_private(net: Network) -> bool:
    """Every address in ``net`` lies in :data:`PRIVATE` (``net`` is a CIDR block, so it lies inside one
    block of the list's collapsed form or not at all inside it)."""
    blocks = _PRIVATE_V4 if isinstance(net, ipaddress.IPv4Network) else _PRIVATE_V6
    return any(net.subnet_of(p) for p in blocks)  # type: ignore[arg-type]


def embedding(net: Network) -> str | None:
    """The kind of IPv4-carrying IPv6 range ``net`` overlaps (``"IPv4-mapped"``, ``"6to4"``, …), or None."""
    if not isinstance(net, ipaddress.IPv6Network) or net.subnet_of(_THIS_HOST):
        return None
    return next((what for prefix, what in EMBEDDING if net.overlaps(prefix)), None)


def embedding_hint(net: Network) -> str:
    """What to write instead: the IPv4 range, when ``net`` lies inside the mapped prefix."""
    mapped = ipaddress.IPv6Network("::ffff:0:0/96")
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(mapped):
        v4 = ipaddress.IPv4Network((int(net.network_address) & 0xFFFFFFFF, max(0, net.prefixlen - 96)))
        return f"write the IPv4 range itself ({v4}); IPv6 ranges that carry IPv4 addresses are never swept"
    return "write the IPv4 range itself; IPv6 ranges that carry IPv4 addresses (mapped, NAT64, 6to4, Teredo) " \
           "are never swept"


def host_bits(text: str) -> Network | None:
    """The network ``text`` would mean when it has host bits set (``10.0.0.5/16`` → 10.0.0.0/16), else None.
    Raises ValueError when ``text`` is not a range."""
    iface = ipaddress.ip_interface(text.strip())
    return iface.network if iface.ip != iface.network.network_address else None
