"""``discover``: sweep the allowed networks, tell what answers, check it, and link copies to sources.

The steps, each in its own module: the allow-list gives the ranges (:mod:`.networks`), a connect
sweep finds open ports (:mod:`.sweep`), each open port is identified by the engines' outside probes
(:mod:`.identify`), a found store is matched to the configured ones and checked from outside
(:mod:`.inventory`), and a store whose records can be read — open, or configured with credentials —
is compared with the fingerprints and canaries of registered collections (:mod:`.fingerprints`,
:mod:`.canaries`). The inventory is recorded in the catalog. A problem at one address is reported
with it and the sweep goes on.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace

from piiguard.catalog import Catalog
from piiguard.config import Config
from piiguard.discovery import canaries, fingerprints, identify, inventory, networks, sweep
from piiguard.discovery.base import CopyLink, Discovered, DiscoveryRun, Endpoint, Kind, Problem, Service, clean
from piiguard.errors import ConfigError, PiiguardError, StoreError
from piiguard.model import Finding

log = logging.getLogger(__name__)
LINK_LOCAL = ipaddress.ip_network("fe80::/10")
Progress = Callable[[str, int, int], None]  # (step, done, total)


def discover(config: Config, requested: Sequence[str] = (), *, catalog: Catalog | None = None,
             max_addresses: int | None = None, read_limit: int = 100_000,
             progress: Progress | None = None) -> DiscoveryRun:
    """``max_addresses`` overrides ``discovery.max_addresses`` (discover's --max-addresses)."""
    settings = config.discovery
    nets = networks.targets(requested, settings, max_addresses=max_addresses)
    started = time.monotonic()
    addresses = networks.Addresses(nets)  # streamed: a /12 is a million addresses, never held at once
    swept = sweep.sweep(addresses, settings.ports, count=addresses.count, rate=settings.rate,
                        concurrency=settings.concurrency, timeout=settings.timeout,
                        progress=(lambda done, total: progress("sweep", done, total)) if progress else None)
    services = identify.identify_all(list(swept.open), timeout=settings.timeout, guess=settings.guess,
                                     concurrency=min(settings.concurrency, 64),
                                     progress=(lambda done, total: progress("identify", done, total))
                                     if progress else None)
    problems: list[Problem] = [*_unsent(swept, nets), *_silent(services, settings.timeout)]
    key = _key(config, catalog, problems)
    found: list[Discovered] = []
    others: list[Service] = [Service(Endpoint(h, 0), Kind.TARPIT, evidence="accepted every port it was offered")
                             for h in swept.tarpits]
    candidates = [s for s in services if s.kind in (Kind.STORE, Kind.IDENTIFY_ONLY)]
    others.extend(s for s in services if s.kind not in (Kind.STORE, Kind.IDENTIFY_ONLY))
    registrations = {s.endpoint: inventory.registered_at(s, config.stores) for s in candidates}
    stores, also = fold(candidates, registrations)
    # Outside checks wait on peers, not on this host: run them side by side (each bounded by its timeout).
    checked = _check(stores, config, progress, registrations, also)
    http_clickhouse = {s.endpoint.host for s in stores if s.engine == "clickhouse" and not _native(s)}
    for i, (service, (findings, is_open)) in enumerate(zip(stores, checked, strict=True)):
        if progress and catalog is not None and key is not None:
            progress("compare", i, len(stores))  # before: reading a store for its copy links is the slow part
        item = Discovered(service, registrations[service.endpoint], tuple(findings), open=is_open,
                          also=also.get(service.endpoint, ()))
        if catalog is not None and key is not None and is_open and item.registered is None:
            if _native(service) and service.endpoint.host in http_clickhouse:
                # not folded (several ClickHouse HTTP or native ports on the host, or versions that differ):
                # an HTTP port of the host is read instead, piiguard reads ClickHouse over HTTP
                problems.append(Problem(item.name, "ClickHouse answered on this native port and on an HTTP port "
                                        "of the same host that could not be told to be the same server; its "
                                        "tables are read over that HTTP port", "register the server with "
                                        "piiguard adopt HOST:HTTP_PORT and set options.tcp_port to this port"))
            elif _native(service):
                problems.append(Problem(item.name, "ClickHouse answered on its native port only; piiguard reads "
                                        "ClickHouse over HTTP, so its tables were not compared with fingerprints",
                                        "add its HTTP port (8123 by default) to discovery.ports"))
            else:
                item = replace(item, links=tuple(_links(item, catalog, key, read_limit, problems)))
        types = inventory.linked_holdings(catalog, item.links)[0] if catalog is not None and item.links else ()
        unregistered = inventory.unregistered_finding(item, types)
        if unregistered is not None:
            item = replace(item, findings=(*item.findings, unregistered))
        found.append(item)
    if progress and catalog is not None and key is not None and stores:
        progress("compare", len(stores), len(stores))
    if catalog is not None:
        # Known rows inside the sweep and not found are gone: judged row by row (the inventory is small),
        # never by listing the swept space, so a /16 × 21 ports marks them as surely as a /29.
        ports = frozenset(settings.ports)
        catalog.record_discovered(found, swept=lambda ep: ep.port in ports and networks.covers(nets, ep.host))
        catalog.record_links([link for d in found for link in d.links])
        catalog.record_findings([f for d in found for f in d.findings])
    return DiscoveryRun(tuple(str(n) for n in nets), settings.ports, swept.probes, time.monotonic() - started,
                        tuple(found), tuple(others), tuple(problems))


def _check(stores: Sequence[Service], config: Config, progress: Progress | None,
           registrations: Mapping[Endpoint, str | None], also: Mapping[Endpoint, tuple[int, ...]]
           ) -> list[tuple[list[Finding], bool]]:
    """Each store's outside checks and whether it is open, in the order given; ``progress("check", …)``
    as each finishes. They wait on peers, not on this host: side by side, each bounded by its timeout."""
    settings = config.discovery
    if not stores:
        return []

    def one(s: Service) -> tuple[list[Finding], bool]:
        if s.kind is not Kind.STORE:
            return [], False
        return identify.outside_findings(s, timeout=settings.timeout * 5, guess=settings.guess,
                                         name=registrations.get(s.endpoint) or s.endpoint.address,
                                         tcp_port=_tcp_port(also.get(s.endpoint, ())))

    out: list[tuple[list[Finding], bool] | None] = [None] * len(stores)
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(stores)))) as pool:
        futures = {pool.submit(one, s): i for i, s in enumerate(stores)}
        if progress:
            progress("check", 0, len(stores))
        for done, future in enumerate(as_completed(futures), 1):
            out[futures[future]] = future.result()
            if progress:
                progress("check", done, len(stores))
    return [r for r in out if r is not None]
def fold(stores: Sequence[Service], registered: Mapping[Endpoint, str | None]
         ) -> tuple[list[Service], dict[Endpoint, tuple[int, ...]]]:
    """The stores, with a ClickHouse found on both its HTTP and its native port as one: the HTTP
    endpoint, the native port in the returned map (``Discovered.also``, the store's ``tcp_port``).

    Only when it is unambiguous: one plain-HTTP and one native ClickHouse on the host, the same
    configured store (or none) at both, and no two versions said that differ. Otherwise each stays an
    entry of its own (a native-only ClickHouse too). An HTTPS interface is not folded with a native
    port: its ``secure`` option would send the native checks TLS the native port was not seen to speak."""
    by_host: dict[str, tuple[list[Service], list[Service]]] = {}
    for s in stores:
        if s.engine == "clickhouse" and s.kind is Kind.STORE:
            http, native = by_host.setdefault(s.endpoint.host, ([], []))
            (native if _native(s) else http).append(s)
    folded: dict[Endpoint, tuple[int, ...]] = {}
    dropped: set[Endpoint] = set()
    for http, native in by_host.values():
        if len(http) != 1 or len(native) != 1 or "HTTPS" in http[0].evidence:
            continue
        h, n = http[0], native[0]
        if registered.get(h.endpoint) != registered.get(n.endpoint) or (h.version and n.version
                                                                         and h.version != n.version):
            continue
        folded[h.endpoint] = (n.endpoint.port,)
        dropped.add(n.endpoint)
    return [s for s in stores if s.endpoint not in dropped], folded


def _tcp_port(also: Sequence[int]) -> int | None:
    return also[0] if also else None


def _unsent(swept: sweep.SweepResult, nets: Sequence[networks.Network]) -> list[Problem]:
    """One problem per requested range with probes this machine could not send: those ports were not
    decided, and a sweep that sent nothing must not read as "no data store found"."""
    out = []
    for net in nets:
        inside = [(n, code) for host, n, code in swept.unsent_hosts if ipaddress.ip_address(host) in net]
        if not inside:
            continue
        probes = sum(n for n, _ in inside)
        code = Counter(c for _, c in inside).most_common(1)[0][0]
        reason = errno.errorcode.get(code, str(code))
        out.append(Problem(str(net), f"{probes} probe(s) to {len(inside)} address(es) could not be sent from this "
                           f"machine ({reason}); what listens there was not decided", _unsent_hint(net, code)))
    return out


def _unsent_hint(net: networks.Network, code: int) -> str:
    if net.version == 6 and net.overlaps(LINK_LOCAL):
        return ("link-local IPv6 addresses (fe80::/10) need an interface scope, which a swept range cannot carry: "
                "sweep the hosts' global or unique-local IPv6 addresses, or their IPv4 ones")
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "this machine has no route to the range (see `ip route`): sweep from a host that reaches it"
    if code in (errno.EPERM, errno.EACCES):
        return "a firewall rule on this machine refuses connections to the range: allow them, or sweep elsewhere"
    if code == errno.EAFNOSUPPORT:
        return "IPv6 is disabled on this machine: sweep the range from a host with IPv6"
    return "this machine ran out of file descriptors or ephemeral ports: lower discovery.concurrency or rate"


def _silent(services: Sequence[Service], timeout: float) -> list[Problem]:
    """An open port that said nothing recognisable within the budget is undecided, not "no store"."""
    return [Problem(s.endpoint.address, f"stayed silent within {identify.BUDGET * timeout:g} s: what listens "
                    "there was not decided", f"raise discovery.timeout (now {timeout:g} s) and sweep again")
            for s in services if s.silent]


def _native(service: Service) -> bool:
    return service.engine == "clickhouse" and service.evidence.startswith("native protocol")


def _key(config: Config, catalog: Catalog | None, problems: list[Problem]) -> bytes | None:
    """The discovery key, when fingerprints or canaries are recorded; a missing one is a problem reported
    with the run (the sweep's findings still stand), not the end of it."""
    if catalog is None or not (catalog.fingerprints(with_bits=False) or catalog.canaries(status="planted")):
        return None
    try:
        return fingerprints.load_key(config.discovery)
    except ConfigError as exc:  # each of its problems is "setting: what is wrong"
        for text in exc.problems:
            where, sep, _ = text.partition(": ")
            where = where if sep and where.startswith("discovery.") else "discovery.key_env"
            problems.append(Problem.of(where, clean(text, 300) or "the key could not be loaded",
                                       clean(exc.hint, 300) or "", setting=True))
        return None


def _links(item: Discovered, catalog: Catalog, key: bytes, limit: int, problems: list[Problem]) -> list[CopyLink]:
    store = identify.as_store(item.service, item.name, tcp_port=_tcp_port(item.also))
    out: list[CopyLink] = []
    for step in (fingerprints.match, canaries.find):
        try:
            out.extend(step(store, catalog, key, limit=limit))
        except PiiguardError as exc:  # one store that cannot be read is reported with it; the sweep goes on
            # a StoreError's message starts with the store (item.name), and its collection when it names one
            text = (f"{exc.collection}: {exc.detail}" if exc.collection else exc.detail) \
                if isinstance(exc, StoreError) else exc.message
            problems.append(Problem.of(item.name, clean(text, 300) or type(exc).__name__,
                                       clean(exc.hint, 300) or "check that piiguard can read the store"))
        except Exception as exc:  # a hostile peer can make a driver raise anything
            # (redis-py's AttributeError on a reply it did not expect): that peer's store is reported, the
            # sweep goes on and is recorded; the exception's text is not shown (a driver's can quote data)
            problems.append(Problem(item.name, f"reading it for copies failed inside the driver "
                                    f"({type(exc).__name__}); it answers unlike the engine it claims to be",
                                    "treat it as hostile or broken; piiguard discover -v logs the step"))
            log.info("discover: %s failed on %s (%s)", step.__name__, item.name, type(exc).__name__)
    return out
