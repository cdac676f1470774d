"""The ``discovery:`` section of piiguard.yaml, validated.

Example::

    discovery:
      networks:                      # the allow-list: only these ranges are ever swept
        - 10.20.0.0/16
        - {network: 198.51.100.0/28, public: true}   # a public range must say so
      ports: [5432, 3306, 6379]      # default: every supported engine's usual and common ports
      every: 5m                      # watch sweeps this often (seconds, or 30s / 5m / 1h)
      rate: 2000                     # probes per second, at most (1 to 100,000)
      concurrency: 256               # connections open at once, at most
      timeout: 1.0                   # seconds a connect or an identify step may take (0.05 to 60)
      max_addresses: 65536           # a sweep of more addresses is refused (discover's --max-addresses overrides)
      guess: false                   # never try a login while identifying (the default)
      key_env: PIIGUARD_DISCOVERY_KEY   # the fingerprint and canary key, by reference (or key_file)
      canary:
        domain: canary.example.com   # planted customers' e-mails are at this domain (yours)
        trap: 0.0.0.0:8990           # watch serves the trap here (HTTP)
        trap_url: https://trap.example.com   # the base of links planted in canaries
        smtp: 0.0.0.0:2525           # optional: an SMTP receiver for mail to canary addresses
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from piiguard.discovery import addresses

# Every supported engine's usual ports and common alternates, then identify-only engines'.
STORE_PORTS: Mapping[str, tuple[int, ...]] = {
    "postgres": (5432, 5433),
    "mysql": (3306, 3307),
    "redis": (6379, 6380),
    "clickhouse": (8123, 9000, 9440, 8443),
    "opensearch": (9200, 9201),
    "mongodb": (27017, 27018),
    "s3": (9000, 7070, 8333, 7480, 9020),
}
IDENTIFY_ONLY_PORTS: Mapping[str, tuple[int, ...]] = {"memcached": (11211,), "couchdb": (5984,), "cassandra": (9042,)}
DEFAULT_PORTS: tuple[int, ...] = tuple(sorted({p for ports in (*STORE_PORTS.values(), *IDENTIFY_ONLY_PORTS.values())
                                               for p in ports}))
MAX_RATE = 100_000.0  # probes per second
MIN_RATE = 1.0  # below one probe a second a sweep of even a /24 takes hours: a typo, not a plan
MIN_TIMEOUT = 0.05  # seconds: a shorter connect timeout calls every host across a LAN "closed"
MAX_TIMEOUT = 60.0
MAX_ADDRESSES = 65_536  # a sweep of more addresses is refused unless the operator raises this
MAX_CONCURRENCY = 4096
MIN_KEY_BYTES = 16
KEYS = {"networks", "ports", "every", "rate", "concurrency", "timeout", "max_addresses", "guess", "key_env", "key_file",
        "canary"}
CANARY_KEYS = {"domain", "trap", "trap_url", "smtp"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


@dataclass(frozen=True)
class AllowedNetwork:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    public: bool = False  # listed with ``public: true``: it may hold public addresses


@dataclass(frozen=True)
class CanarySettings:
    domain: str | None = None
    trap: str | None = None  # host:port the trap listens on
    trap_url: str | None = None  # base URL planted links point to
    smtp: str | None = None  # host:port of the optional SMTP receiver


@dataclass(frozen=True)
class DiscoverySettings:
    networks: tuple[AllowedNetwork, ...] = ()
    ports: tuple[int, ...] = DEFAULT_PORTS
    every: float | None = None  # seconds between watch's sweeps; None: watch does not sweep
    rate: float = 2000.0
    concurrency: int = 256
    timeout: float = 1.0
    guess: bool = False
    key_env: str | None = None
    key_file: str | None = None
    canary: CanarySettings = field(default_factory=CanarySettings)
    max_addresses: int = MAX_ADDRESSES  # a sweep of more addresses is refused


def duration(value: Any) -> float | None:
    """Seconds from ``30``, ``30s``, ``5m`` or ``1h``; None when it is none of those."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    match = _DURATION.match(str(value))
    if not match:
        return None
    seconds = float(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2] or "s"]
    return seconds if seconds > 0 else None


def _host_port(value: Any) -> str | None:
    """A problem with a ``host:port`` listen address, or None."""
    if not isinstance(value, str) or ":" not in value:
        return "expected host:port, e.g. 0.0.0.0:8990"
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"port {port!r} is not a TCP port (1–65535)"
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"{host!r} is not an IP address to listen on"
    return None


def parse_discovery(raw: Any, add: Callable[[str, str], None]) -> DiscoverySettings:
    """Validate the section; every problem goes to ``add(path, message)``."""
    if raw is None:
        return DiscoverySettings()
    if not isinstance(raw, Mapping):
        add("discovery", "expected a mapping (networks, ports, every, rate, …)")
        return DiscoverySettings()
    for key in raw:
        if key not in KEYS:
            add(f"discovery.{key}", f"unknown key; expected one of {', '.join(sorted(KEYS))}")
    networks: list[AllowedNetwork] = []
    raw_networks = raw.get("networks") or []
    if not isinstance(raw_networks, list):
        add("discovery.networks", "expected a list of address ranges (CIDR)")
        raw_networks = []
    for i, item in enumerate(raw_networks):
        at = f"discovery.networks[{i}]"
        public = False
        if isinstance(item, Mapping):
            unknown = set(item) - {"network", "public"}
            if unknown:
                add(at, f"unknown key {sorted(unknown)[0]!r}; expected network and public")
            public = item.get("public", False)
            if not isinstance(public, bool):
                add(f"{at}.public", "expected true or false")
                public = False
            item = item.get("network")
        try:
            net = ipaddress.ip_network(str(item), strict=False)
            meant = addresses.host_bits(str(item))
        except ValueError:
            add(at, f"{str(item)[:60]!r} is not an address range; write it as CIDR, e.g. 10.20.0.0/16")
            continue
        if meant is not None:
            add(at, f"{str(item)[:60]!r} has host bits set: it would allow all of {meant}; "
                    f"write {meant} if you mean it")
            continue
        if net.prefixlen == 0:
            add(at, f"{net} is every address; list the ranges you own")
            continue
        if (kind := addresses.embedding(net)) is not None:
            add(at, f"{net} overlaps the {kind} IPv6 range, which reaches IPv4 hosts; "
                    f"{addresses.embedding_hint(net)}")
            continue
        if not public and not addresses.is_private(net):
            add(at, f"{net} holds public addresses; if you own it, list it as {{network: {net}, public: true}}")
            continue
        networks.append(AllowedNetwork(net, public))
    ports: tuple[int, ...] = DEFAULT_PORTS
    if "ports" in raw:
        got = raw["ports"]
        if not isinstance(got, list) or not got:
            add("discovery.ports", "expected a non-empty list of TCP ports")
        else:
            bad = [p for p in got if isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 65536]
            if bad:
                add("discovery.ports", f"{str(bad[0])[:20]!r} is not a TCP port (1–65535)")
            else:
                ports = tuple(sorted(set(got)))
    every = None
    if raw.get("every") is not None:
        every = duration(raw["every"])
        if every is None:
            add("discovery.every", "expected a duration: seconds, or 30s / 5m / 1h")

    def number(key: str, default: float, bottom: float, top: float, unit: str) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not bottom <= value <= top:
            add(f"discovery.{key}", f"expected {unit} from {bottom:,g} to {top:,g}")
            return default
        return float(value)

    rate = number("rate", 2000.0, MIN_RATE, MAX_RATE, "probes per second")
    concurrency = int(number("concurrency", 256, 1, MAX_CONCURRENCY, "connections at once"))
    timeout = number("timeout", 1.0, MIN_TIMEOUT, MAX_TIMEOUT, "seconds")
    max_addresses = raw.get("max_addresses", MAX_ADDRESSES)
    if isinstance(max_addresses, bool) or not isinstance(max_addresses, int) or max_addresses < 1:
        add("discovery.max_addresses", "expected a whole number of addresses, 1 or more (default 65536)")
        max_addresses = MAX_ADDRESSES
    guess = raw.get("guess", False)
    if not isinstance(guess, bool):
        add("discovery.guess", "expected true or false")
        guess = False
    key_env, key_file = raw.get("key_env"), raw.get("key_file")
    for key, value in (("key_env", key_env), ("key_file", key_file)):
        if value is not None and (not isinstance(value, str) or not value):
            add(f"discovery.{key}", "expected the name of an environment variable" if key == "key_env"
                else "expected a file path")
    if key_env and key_file:
        add("discovery.key_env", "give the key one way: key_env or key_file, not both")
    canary = CanarySettings()
    raw_canary = raw.get("canary")
    if raw_canary is not None:
        if not isinstance(raw_canary, Mapping):
            add("discovery.canary", "expected a mapping (domain, trap, trap_url, smtp)")
        else:
            for key in raw_canary:
                if key not in CANARY_KEYS:
                    add(f"discovery.canary.{key}", f"unknown key; expected one of {', '.join(sorted(CANARY_KEYS))}")
            domain = raw_canary.get("domain")
            if domain is not None and (not isinstance(domain, str) or
                                       not re.fullmatch(r"(?i)[a-z0-9-]+(\.[a-z0-9-]+)+", domain)):
                add("discovery.canary.domain", "expected a domain name you own, e.g. canary.example.com")
                domain = None
            for key in ("trap", "smtp"):
                if raw_canary.get(key) is not None and (problem := _host_port(raw_canary[key])):
                    add(f"discovery.canary.{key}", problem)
            trap_url = raw_canary.get("trap_url")
            if trap_url is not None and (not isinstance(trap_url, str) or
                                         not re.match(r"^https?://[^\s/]+", trap_url)):
                add("discovery.canary.trap_url", "expected an http:// or https:// URL")
                trap_url = None
            canary = CanarySettings(domain, raw_canary.get("trap"), trap_url, raw_canary.get("smtp"))
    return DiscoverySettings(tuple(networks), ports, every, rate, concurrency, timeout, guess,
                             key_env if isinstance(key_env, str) else None,
                             key_file if isinstance(key_file, str) else None, canary, max_addresses)
