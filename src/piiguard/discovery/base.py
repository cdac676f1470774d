"""What discovery finds: endpoints, the services on them, and links from a found store to a source.

Every text here is safe to print and store: a banner or version string is cut to a few characters
of printable ASCII (:func:`clean`) before it is kept, and no field holds a data value.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

from piiguard.model import Finding


class Kind(enum.Enum):
    """What answered on an open port."""

    STORE = "store"  # an engine piiguard scans and checks (postgres, mysql, redis, …)
    IDENTIFY_ONLY = "identify-only"  # a data store piiguard names but does not scan (memcached, CouchDB, Cassandra)
    NOT_A_STORE = "not-a-store"  # it answered, as something else: an HTTP server, an SSH or SMTP banner
    UNKNOWN = "unknown"  # open, but said nothing piiguard recognises (silent, or closed mid-fingerprint)
    TARPIT = "tarpit"  # a host that accepts (nearly) every port it is offered: reported once, not per port


@dataclass(frozen=True, order=True)
class Endpoint:
    host: str  # an IP address, as swept
    port: int

    @property
    def address(self) -> str:
        """``host:port``, or ``[v6]:port``."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``10.0.0.5:5432`` or ``[fd00::5]:5432``; ValueError with the reason otherwise."""
        host, sep, port = text.strip().rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{text[:60]!r} is not an address with a port (host:port)")
        host = host.strip("[]")
        ipaddress.ip_address(host)  # ValueError names the problem
        return cls(host, int(port))


@dataclass(frozen=True)
class Service:
    endpoint: Endpoint
    kind: Kind
    engine: str | None = None  # piiguard's engine name (postgres, mysql, …), or the identify-only product
    product: str | None = None  # what it says it is: MariaDB, FerretDB, OpenSearch, versitygw (cleaned)
    version: str | None = None  # as it says (cleaned), None when it does not
    evidence: str = ""  # how it was told, in words (protocol behaviour, never data)
    silent: bool = False  # UNKNOWN because nothing came back within the budget: undecided, not "no store"


@dataclass(frozen=True)
class CopyLink:
    """A found or registered collection that holds people of a registered source collection."""

    store: str  # where the copy is (a configured store name, or a discovered store's address)
    collection: str
    source_store: str
    source_collection: str
    via: str  # "fingerprint", "canary" or "copy-registry"
    fields: tuple[str, ...] = ()  # the copy's fields that matched (its own names: renamed columns too)
    source_fields: tuple[str, ...] = ()  # the source's fields they matched
    people: int = 0  # estimated people of the source in the copy
    share: float = 0.0  # people / the source's people
    sampled: int = 0  # values compared
    matched: int = 0  # of them, in the source's set (after the set's false-match rate is taken off)
    from_sample: bool = False  # people estimated from a random sample of the collection, not counted


@dataclass(frozen=True)
class Discovered:
    service: Service
    registered: str | None = None  # the configured store at this address, if any
    findings: tuple[Finding, ...] = ()  # its outside checks, and discovery.unregistered-store
    links: tuple[CopyLink, ...] = ()
    open: bool = False  # an outside check that exposes failed: anyone who reaches the port gets in
    # Other ports of the same server folded into this entry: a ClickHouse found on its HTTP port and
    # its native port is one store at the HTTP port, the native port here (its ``tcp_port``).
    also: tuple[int, ...] = ()
    first_seen: str | None = None
    last_seen: str | None = None

    @property
    def name(self) -> str:
        """The configured name, or the address (how an unregistered store is named everywhere)."""
        return self.registered or self.service.endpoint.address


@dataclass(frozen=True)
class Problem:
    """Something a sweep could not do, at an address or a setting. ``setting`` marks a configuration
    problem (the discovery key): ``watch --once`` exits 2 on one, 1 on any other."""

    where: str  # an address, or a setting (discovery.key_env)
    message: str  # what went wrong, without ``where`` in front (printing adds it once)
    hint: str = ""
    setting: bool = False

    @classmethod
    def of(cls, where: str, message: str, hint: str = "", *, setting: bool = False) -> Problem:
        """A problem from an error's message, which piiguard's errors start with the place they name
        (``discovery.key_env: …``, ``127.0.0.5:6379: …``): that prefix is cut, so the place is said once."""
        while message.startswith(f"{where}: "):
            message = message[len(where) + 2:]
        return cls(where, message, hint, setting)

    def text(self) -> str:
        """``where: message (hint: …)``, as the table and watch's log print it."""
        return f"{self.where}: {self.message}" + (f" (hint: {self.hint})" if self.hint else "")


@dataclass(frozen=True)
class DiscoveryRun:
    networks: tuple[str, ...]
    ports: tuple[int, ...]
    probes: int  # connection attempts sent
    seconds: float
    stores: tuple[Discovered, ...] = ()  # kind STORE or IDENTIFY_ONLY
    others: tuple[Service, ...] = ()  # not a store, unknown, tarpits
    problems: tuple[Problem, ...] = ()


_UNSAFE = re.compile(r"[^\x21-\x7e ]+")


def clean(text: str | bytes | None, limit: int = 40) -> str | None:
    """Printable ASCII only, at most ``limit`` characters: what a hostile banner may put in a report."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    out = _UNSAFE.sub(" ", text).strip()[:limit].strip()
    return out or None
