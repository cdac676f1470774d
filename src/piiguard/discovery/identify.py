"""Which engine answers on an open port: each engine's outside probe (the check targets' own code).

Probes run in this order, each on a fresh connection: those of the engines whose usual ports include
the port (``settings.STORE_PORTS``, then ``IDENTIFY_ONLY_PORTS``), then a read of what the peer says
first (MariaDB/MySQL greet; so do SSH, SMTP and FTP — a store does not), then every other probe. The
first that recognises its protocol decides. An HTTP server that is none of the HTTP engines, and a
banner that is no engine's, are NOT_A_STORE; a peer that says nothing recognisable is UNKNOWN, and
one that hangs up during a probe is named so, while the remaining probes still run. Every probe is
bounded by ``timeout`` and the whole identification by :data:`BUDGET` × ``timeout``: a peer dripping
bytes or streaming a gigabyte costs at most that, and nothing a peer does raises.

No password is sent while identifying: PostgreSQL gets a startup message and no password, Redis a
PING, ClickHouse user default with an empty password (what an out-of-the-box client sends), HTTP an
anonymous GET. The checks run afterwards (:func:`outside_findings`) leave out those that try
passwords from a list (``Check.guesses``) unless ``discovery.guess`` is true.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from piiguard import plugins
from piiguard.checker import check_ids, check_store
from piiguard.checks.base import checks, targets
from piiguard.discovery import probes
from piiguard.discovery.base import Endpoint, Kind, Service
from piiguard.discovery.settings import IDENTIFY_ONLY_PORTS, STORE_PORTS
from piiguard.errors import StoreError
from piiguard.model import Finding, Status, Store, Vantage

BUDGET = 4.0  # an endpoint's whole identification takes at most this many timeouts
MAX_WORKERS = 64
# Each engine's probes, by the engine names of settings.STORE_PORTS / IDENTIFY_ONLY_PORTS.
ENGINE_PROBES: dict[str, tuple[str, ...]] = {
    "postgres": ("postgres",), "mysql": ("banner",), "redis": ("redis",),
    "clickhouse": ("clickhouse-native", "http"), "opensearch": ("http",), "mongodb": ("mongodb",),
    "s3": ("http",), "memcached": ("memcached",), "couchdb": ("http",), "cassandra": ("cassandra",),
}
# After the port's own engines and the banner read: the rest, the most common first. HTTP's plain
# request is refused at once by the binary protocols (Redis hangs up on a Host: line).
OTHERS = ("http", "redis", "postgres", "mongodb", "clickhouse-native", "memcached", "cassandra")
PROBES: dict[str, probes.Probe] = {
    "postgres": probes.postgres, "redis": probes.redis, "mongodb": probes.mongodb,
    "clickhouse-native": probes.clickhouse_native, "http": probes.http, "memcached": probes.memcached,
    "cassandra": probes.cassandra,
}
LABELS = {"postgres": "PostgreSQL", "mysql": "MySQL", "redis": "Redis", "mongodb": "MongoDB",
          "clickhouse-native": "ClickHouse native", "http": "HTTP", "memcached": "memcached", "cassandra": "Cassandra"}
# A hang-up part-way through an exchange names its probe before one that came with no answer at all.
_PARTIAL = ("mid-handshake", "IncompleteRead", "EOFError")
_CLOSED = ("closed", "Reset", "RemoteDisconnected", "IncompleteRead", "EOFError", "BrokenPipe")


def order(port: int) -> list[str]:
    """The probes for ``port``, in the order they are tried."""
    usual = [p for engine, ports in (*STORE_PORTS.items(), *IDENTIFY_ONLY_PORTS.items()) if port in ports
             for p in ENGINE_PROBES[engine]]
    return list(dict.fromkeys([*usual, "banner", *OTHERS]))


def identify(endpoint: Endpoint, *, timeout: float, guess: bool = False) -> Service:
    """What answers at ``endpoint``; never raises for what the peer does (that is a Service too).

    ``guess`` changes nothing here (no probe sends a password); it is accepted so callers pass one
    policy to both steps."""
    end = time.monotonic() + BUDGET * timeout
    closed_in: str | None = None
    partial = spoke = False
    for name in order(endpoint.port):
        left = end - time.monotonic()
        if left < min(0.05, timeout):
            break
        step = min(timeout, left)
        try:
            if name == "banner":  # the speaks-first read: MySQL's greeting, another banner, or silence
                data = probes.banner(endpoint, min(step, max(timeout / 4, 0.05)))
                if not data:
                    continue
                if not probes.looks_like_mysql(data):
                    return probes.mysql_refusal(endpoint, data) or probes.not_a_store(endpoint, data)
                name = "mysql"
                found = probes.mysql(endpoint, step)
            else:
                found = PROBES[name](endpoint, step)
        except StoreError as exc:
            detail = exc.detail
            if "ConnectionRefusedError" in detail:
                return Service(endpoint, Kind.UNKNOWN, evidence="no longer accepts connections")
            if any(word in detail for word in _PARTIAL):
                closed_in = name if closed_in is None or not partial else closed_in
                partial = True
            elif any(word in detail for word in _CLOSED):
                closed_in = closed_in or name
            elif "within" not in detail and "Timeout" not in detail:
                spoke = True  # answered, in something that is not this engine's protocol
            continue
        except Exception:  # a parser tripped by a hostile answer: not this engine; go on
            spoke = True
            continue
        if found is not None:
            return found
        spoke = True  # a probe's None: it answered, in another protocol
    if closed_in is not None:
        during = LABELS.get(closed_in, closed_in)
        return Service(endpoint, Kind.UNKNOWN, evidence=f"closed the connection during the {during} probe")
    if spoke:
        return Service(endpoint, Kind.UNKNOWN, evidence="answered, but as no engine piiguard knows")
    return Service(endpoint, Kind.UNKNOWN, evidence=f"silent: nothing recognisable within {BUDGET * timeout:g} s",
                   silent=True)


def identify_all(endpoints: Sequence[Endpoint], *, timeout: float, guess: bool = False,
                 concurrency: int = 64, progress: Callable[[int, int], None] | None = None) -> list[Service]:
    """:func:`identify` on each endpoint, a bounded number at once, in the order given. ``progress``
    is called ``(done, total)`` as each endpoint is decided (in the caller's thread), and once with
    ``(0, total)`` before the first: identification is the slow step of a small sweep."""
    if not endpoints:
        return []
    total = len(endpoints)
    workers = max(1, min(concurrency, MAX_WORKERS, total))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="piiguard-identify") as pool:
        futures = {pool.submit(identify, e, timeout=timeout, guess=guess): i for i, e in enumerate(endpoints)}
        if progress is None:
            return [f.result() for f in futures]
        progress(0, total)
        out: list[Service | None] = [None] * total
        for done, future in enumerate(as_completed(futures), 1):
            out[futures[future]] = future.result()
            progress(done, total)
        return [s for s in out if s is not None]


def as_store(service: Service, name: str | None = None, *, tcp_port: int | None = None) -> Store:
    """The store checks and connectors use for a found service (no credentials).

    ClickHouse: ``tcp_port`` is the native port the same server was found on (``Discovered.also``);
    without one the found port is both the HTTP and the native port, so its checks talk only to the
    endpoint that was found; the one that speaks the other protocol is reported unreachable in the
    evidence and the other decides. S3 and OpenSearch: TLS as the probe saw it."""
    endpoint = service.endpoint
    engine = service.engine or "unknown"
    https = "HTTPS" in service.evidence or "over TLS" in service.evidence
    options: dict[str, str] = {}
    if engine == "clickhouse":
        options = {"tcp_port": str(tcp_port or endpoint.port), "secure": "true" if https else "false"}
    elif engine in ("s3", "opensearch", "mongodb"):
        options = {"tls": "true" if https else "false"}
        if engine == "opensearch" and https:
            options["verify_certs"] = "false"
    return Store(name or endpoint.address, engine, host=endpoint.host, port=endpoint.port, options=options,
                 tags={"discovered": "true"})


def outside_ids(engine: str, *, guess: bool = False) -> list[str]:
    """The engine's outside checks, without the password-guessing ones unless ``guess``."""
    return [i for i in check_ids(engine) if checks.get(i).engine == engine
            and checks.get(i).vantage is Vantage.OUTSIDE and (guess or not checks.get(i).guesses)]


def outside_findings(service: Service, *, timeout: float, name: str | None = None, guess: bool = False,
                     tcp_port: int | None = None) -> tuple[list[Finding], bool]:
    """The engine's outside checks on the found store, and whether one that exposes failed (it is open)."""
    plugins.load()
    if service.kind is not Kind.STORE or service.engine is None or service.engine not in targets:
        return [], False
    ids = outside_ids(service.engine, guess=guess)
    if not ids:
        return [], False
    findings = check_store(as_store(service, name, tcp_port=tcp_port), timeout=timeout, only=ids)
    is_open = any(f.status is Status.FAIL and checks.get(f.check).exposes for f in findings)
    return findings, is_open
